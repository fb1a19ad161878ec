// CPU implementation of max_unpool{2,3}d (op_list.h): a scatter of each input
// value to its index in a zeroed output plane, and its backward, a gather.
// Both move values without computing on them, so the kernels copy 2-, 4- or
// 8-byte words whatever the dtype.
//
// First the dense path (unpool_kernels.h, per ISA through the kernel table):
// when the shapes give every input cell its own output block (block sizes
// output / input per dim, dense_blocks) and every index lies in its cell's
// block (the kernels check; SegNet's k2 s2 pool), each output is written once
// in order and each gradient read densely, both vectorised. Any other index
// (bad, overlapping or padded windows, arbitrary) makes it give up, and the
// plain scatter / gather below run, with the rules that follow. With disjoint
// blocks no output has two values, so both paths give the same bits.
//
// Duplicate indices (PyTorch leaves the result undefined): within a plane the
// values are written in the input's raster order, so the last one wins, on
// every layout and thread count; the CUDA kernels keep the same rule. The
// forward zeroes the output in the scatter's own pass (ZeroFrontier,
// ZeroPixels), each element once and before any value goes to it, so that
// rule holds whatever the indices.
// An index outside the plane raises PyTorch's error, naming the last such
// index in the order PyTorch's CPU kernel visits them (the one it names when
// a single thread runs it; with several threads it names any), and is never
// written.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "../op_list.h"
#include "../pool_shape.h"
#include "../unpool_plane.h"
#include "dispatch.h"

namespace fastpool::cpu {

// Calls the dense path completed (forward and backward): the test suite's
// proof that it runs, as its results are by design the scatter's.
std::atomic<int64_t> dense_runs{0};
int64_t unpool_dense_runs() { return dense_runs.load(std::memory_order_relaxed); }

namespace {

// The last (forward) or first (backward) offending position over threads.
// The forward's positions count in the order PyTorch's CPU kernel for the
// output's layout visits the inputs, (N, C, spatial) or (N, spatial, C) for
// channels last, so that the error names the index PyTorch's names when one
// thread runs it (the last it saw); the backward's in (N, C, spatial) order,
// where PyTorch's gather names the first.
class BadIndex {
 public:
  explicit BadIndex(bool keep_first) : keep_first_(keep_first), pos_(keep_first ? kNone : -1) {}
  void offer(int64_t position) {
    int64_t seen = pos_.load(std::memory_order_relaxed);
    while ((keep_first_ ? position < seen : position > seen) &&
           !pos_.compare_exchange_weak(seen, position, std::memory_order_relaxed)) {
    }
  }
  bool any() const { return pos_.load() != (keep_first_ ? kNone : -1); }
  int64_t position() const { return pos_.load(); }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  bool keep_first_;
  std::atomic<int64_t> pos_;
};

// The last offending index, if any.
std::optional<int64_t> bad_index(const BadIndex& bad, bool channels_last_order, const int64_t* idx,
                                 const PlaneView& iv) {
  if (!bad.any()) return std::nullopt;
  const int64_t pos = bad.position();
  int64_t n, c, p;
  if (channels_last_order) {
    c = pos % iv.channels;
    p = (pos / iv.channels) % iv.plane;
    n = pos / iv.channels / iv.plane;
  } else {
    p = pos % iv.plane;
    c = (pos / iv.plane) % iv.channels;
    n = pos / iv.plane / iv.channels;
  }
  return idx[n * iv.n_stride + c * iv.c_stride + p * iv.p_stride];
}

bool out_of_plane(int64_t index, int64_t plane) {
  return static_cast<uint64_t>(index) >= static_cast<uint64_t>(plane);  // negative ones too
}

// Channel blocks per image for the channels-last kernels: a task for every
// thread when the batch is small (no more: each block streams the whole
// image), each block at least 16 channels wide (a cache line of fp32) so that
// the strided zeroing and scatter stay dense. The forward splits by rows
// instead where it can (scatter_rows: 2-3x faster than 2 blocks on SegNet's
// unpool); the backward, which writes planar gradients, by blocks.
int64_t channel_blocks(int64_t batch, int64_t channels) {
  const int64_t threads = at::get_num_threads();
  const int64_t wanted = (threads + std::max<int64_t>(batch, 1) - 1) / std::max<int64_t>(batch, 1);
  return std::clamp<int64_t>(wanted, 1, std::max<int64_t>(1, channels / 16));
}

// The zeroing of one plane's output, done in the scatter's pass rather than
// before it: a frontier f says that positions [0, f) of the plane are zeroed.
// Before a value goes to position t >= f, [f, t] is zeroed up to the next
// chunk boundary (a few KiB) and f moves there; at the end the rest is
// zeroed. Every element is so zeroed once, before any value is written to it,
// whatever the indices (backwards, far ahead, duplicates: the writes keep
// their order), and the lines are written while in cache: a memset of the
// whole output first, then the scatter, moves it through DRAM twice (glibc's
// memset streams large sizes past the cache, so the scatter read every line
// back).
template <typename E>
class ZeroFrontier {
 public:
  // o: the plane's first element; positions `step` elements apart.
  ZeroFrontier(E* o, int64_t plane, int64_t step)
      : o_(o), plane_(plane), step_(step), chunk_(std::max<int64_t>(1, kChunkBytes / sizeof(E))), frontier_(0) {}
  void before_write(int64_t target) {
    if (target >= frontier_) zero_to(std::min(plane_, (target / chunk_ + 1) * chunk_));
  }
  void finish() { zero_to(plane_); }

 private:
  static constexpr int64_t kChunkBytes = 4096;
  void zero_to(int64_t end) {
    if (step_ == 1) {
      std::memset(o_ + frontier_, 0, (end - frontier_) * sizeof(E));
    } else {
      for (int64_t v = frontier_; v < end; ++v) o_[v * step_] = E{};
    }
    frontier_ = end;
  }
  E* o_;
  int64_t plane_, step_, chunk_, frontier_;
};

// The same for channels-last pixels (the channels [c0, c1) of each), zeroed
// one by one at their first write: a byte per pixel says which are. Each
// input pixel's channels go to a few output pixels (the 4 of its 2x2 window
// in SegNet's unpool), zeroed then filled while in L1; a frontier would zero
// a whole output row ahead (the scatter fills rows 2h and 2h+1 together), and
// the writes would go to lines already out of L1 (1.5x slower).
template <typename E>
class ZeroPixels {
 public:
  ZeroPixels(E* o, int64_t begin, int64_t end, int64_t width, int64_t step)
      : o_(o), begin_(begin), width_(width), step_(step), zeroed_(end - begin, 0) {}
  void before_write(int64_t target) {
    uint8_t& z = zeroed_[target - begin_];
    if (!z) {
      std::memset(o_ + target * step_, 0, width_ * sizeof(E));
      z = 1;
    }
  }
  void finish() {
    for (size_t v = 0; v < zeroed_.size(); ++v)
      if (!zeroed_[v]) std::memset(o_ + (begin_ + static_cast<int64_t>(v)) * step_, 0, width_ * sizeof(E));
  }

 private:
  E* o_;
  int64_t begin_, width_, step_;
  std::vector<uint8_t> zeroed_;
};

// The forward of channels-last images when there are fewer images than
// threads, split by rows rather than channels: task (n, k) takes input rows
// [h_k, h_k+1) and owns the output rows they pool from, [H_k, H_k+1) with
// H_k = h_k * out_rows / in_rows, all channels (contiguous pixels: channel
// blocks would zero and scatter in strided pieces, several times slower).
// That is exact when every index of those input rows falls in those output
// rows (a pool whose windows do not overlap across the split, SegNet's 2x2),
// as each output element then gets its values from one task, in raster
// order. A task that meets an index outside its rows stops and returns false:
// the caller then runs scatter() instead, which zeroes and writes everything
// again. Bad (out-of-plane) indices are offered as scatter() does.
template <typename E>
bool scatter_rows(const E* in, const PlaneView& iv, const int64_t* idx, E* out, const PlaneView& ov, int64_t in_rows,
                  int64_t out_rows, int64_t bands, BadIndex& bad) {
  const int64_t channels = ov.channels, in_width = iv.plane / in_rows, out_width = ov.plane / out_rows;
  std::atomic<bool> straddles{false};
  at::parallel_for(0, ov.batch * bands, 1, [&](int64_t begin, int64_t end) {
    int64_t last_bad = -1;
    for (int64_t task = begin; task < end && !straddles.load(std::memory_order_relaxed); ++task) {
      const int64_t n = task / bands, k = task % bands;
      const int64_t h0 = k * in_rows / bands, h1 = (k + 1) * in_rows / bands;
      const int64_t lo = h0 * out_rows / in_rows * out_width, hi = h1 * out_rows / in_rows * out_width;
      E* o = out + n * ov.n_stride;
      const E* i = in + n * iv.n_stride;
      const int64_t* x = idx + n * iv.n_stride;  // the indices' strides are the input's (both channels last)
      ZeroPixels<E> zero(o, lo, hi, channels, channels);
      for (int64_t p = h0 * in_width; p < h1 * in_width; ++p) {
        const int64_t* xr = x + p * channels;
        const E* ir = i + p * channels;
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t target = xr[c];
          if (static_cast<uint64_t>(target - lo) >= static_cast<uint64_t>(hi - lo)) {  // one test for both
            if (out_of_plane(target, ov.plane)) {
              last_bad = std::max(last_bad, (n * iv.plane + p) * channels + c);
              continue;
            }
            straddles.store(true, std::memory_order_relaxed);
            return;
          }
          zero.before_write(target);
          o[target * channels + c] = ir[c];
        }
      }
      zero.finish();
    }
    if (last_bad >= 0) bad.offer(last_bad);
  });
  return !straddles.load();
}

// The forward: element type E is a word of the dtype's size (the values are
// copied, never computed on). Each task zeroes and fills channels [c0, c1) of
// one image, in raster order per plane (last duplicate wins).
template <typename E>
void scatter(const E* in, const PlaneView& iv, const int64_t* idx, const PlaneView& xv, E* out, const PlaneView& ov,
             BadIndex& bad) {
  const bool channels_last = ov.c_stride == 1 && ov.channels > 1;
  const int64_t blocks = channels_last ? channel_blocks(ov.batch, ov.channels) : ov.channels;
  const int64_t block = (ov.channels + blocks - 1) / blocks;
  const int64_t work = block * std::max(iv.plane, ov.plane);
  at::parallel_for(0, ov.batch * blocks, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work)),
                   [&](int64_t begin, int64_t end) {
    int64_t last_bad = -1;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, c0 = (task % blocks) * block, c1 = std::min(ov.channels, c0 + block);
      if (c0 >= c1) continue;
      E* o = out + n * ov.n_stride;
      const E* i = in + n * iv.n_stride;
      const int64_t* x = idx + n * xv.n_stride;
      // A planar task is one plane (c1 == c0 + 1); a channels-last one, pixels of channels [c0, c1).
      const auto fill = [&](auto& zero) {
        const auto one = [&](int64_t c, int64_t p) {
          const int64_t target = x[c * xv.c_stride + p * xv.p_stride];
          if (out_of_plane(target, ov.plane)) {
            last_bad = std::max(last_bad, channels_last ? (n * iv.plane + p) * ov.channels + c
                                                        : (n * ov.channels + c) * iv.plane + p);
            return;
          }
          zero.before_write(target);
          o[c * ov.c_stride + target * ov.p_stride] = i[c * iv.c_stride + p * iv.p_stride];
        };
        const bool all_planar = !channels_last && iv.p_stride == 1 && xv.p_stride == 1 && ov.p_stride == 1;
        const bool all_channels_last = channels_last && iv.c_stride == 1 && xv.c_stride == 1;
        if (all_planar) {  // the common layouts with their strides known: no stride products per element
          const int64_t c = c0;
          const int64_t* xr = x + c * xv.c_stride;
          const E* ir = i + c * iv.c_stride;
          E* oc = o + c * ov.c_stride;
          for (int64_t p = 0; p < iv.plane; ++p) {
            const int64_t target = xr[p];
            if (out_of_plane(target, ov.plane)) {
              last_bad = std::max(last_bad, (n * ov.channels + c) * iv.plane + p);
              continue;
            }
            zero.before_write(target);
            oc[target] = ir[p];
          }
        } else if (all_channels_last) {
          const int64_t channels = ov.channels;
          for (int64_t p = 0; p < iv.plane; ++p) {
            const int64_t* xr = x + p * channels;
            const E* ir = i + p * channels;
            for (int64_t c = c0; c < c1; ++c) {
              const int64_t target = xr[c];
              if (out_of_plane(target, ov.plane)) {
                last_bad = std::max(last_bad, (n * iv.plane + p) * channels + c);
                continue;
              }
              zero.before_write(target);
              o[target * channels + c] = ir[c];
            }
          }
        } else if (xv.c_stride == 1 && xv.channels > 1) {  // indices stored channels last: read them in order
          for (int64_t p = 0; p < iv.plane; ++p)
            for (int64_t c = c0; c < c1; ++c) one(c, p);
        } else {
          for (int64_t c = c0; c < c1; ++c)
            for (int64_t p = 0; p < iv.plane; ++p) one(c, p);
        }
        zero.finish();
      };
      if (channels_last) {
        ZeroPixels<E> zero(o + c0, 0, ov.plane, c1 - c0, ov.p_stride);
        fill(zero);
      } else {
        ZeroFrontier<E> zero(o + c0 * ov.c_stride, ov.plane, ov.p_stride);
        fill(zero);
      }
    }
    if (last_bad >= 0) bad.offer(last_bad);
  });
}

// The backward: grad_input[n, c, p] = grad_output[n, c, indices[n, c, p]],
// planar (PyTorch's gradient is contiguous whatever the layouts).
template <typename E>
void gather(const E* go, const PlaneView& gv, const int64_t* idx, const PlaneView& xv, E* gi, BadIndex& bad) {
  if (xv.c_stride == 1 && gv.c_stride == 1 && xv.channels > 1) {
    // Both channels last: per image and block of channels, pixel by pixel
    // (reads in order, writes a few planar streams), not plane by plane
    // (which would read every pixel's line once per channel).
    const int64_t channels = xv.channels;
    const int64_t blocks = channel_blocks(xv.batch, channels), block = (channels + blocks - 1) / blocks;
    at::parallel_for(0, xv.batch * blocks, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, block * xv.plane)),
                     [&](int64_t begin, int64_t end) {
      int64_t first_bad = std::numeric_limits<int64_t>::max();
      for (int64_t task = begin; task < end; ++task) {
        const int64_t n = task / blocks, c0 = (task % blocks) * block, c1 = std::min(channels, c0 + block);
        const int64_t* x = idx + n * xv.n_stride;
        const E* g = go + n * gv.n_stride;
        E* out = gi + n * channels * xv.plane;
        // The gradient's lines are read in a pattern the hardware prefetchers
        // miss: each index of the next pixel is prefetched (4-8 byte words:
        // SegNet's unpool 1.5x faster; 2-byte words run slower with it).
        constexpr int64_t D = sizeof(E) >= 4 ? 1 : 0;
        for (int64_t p = 0; p < xv.plane; ++p) {
          if (D && p + D < xv.plane) {
            for (int64_t c = c0; c < c1; ++c) {
              const int64_t ahead = x[(p + D) * channels + c];
              if (!out_of_plane(ahead, gv.plane)) __builtin_prefetch(g + ahead * channels + c);
            }
          }
          for (int64_t c = c0; c < c1; ++c) {
            const int64_t source = x[p * channels + c];
            if (out_of_plane(source, gv.plane)) {
              first_bad = std::min(first_bad, (n * channels + c) * xv.plane + p);
              out[c * xv.plane + p] = E{};
              continue;
            }
            out[c * xv.plane + p] = g[source * channels + c];
          }
        }
      }
      if (first_bad != std::numeric_limits<int64_t>::max()) bad.offer(first_bad);
    });
    return;
  }
  const int64_t planes = xv.batch * xv.channels;
  at::parallel_for(0, planes, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, xv.plane)),
                   [&](int64_t begin, int64_t end) {
    int64_t first_bad = std::numeric_limits<int64_t>::max();
    for (int64_t nc = begin; nc < end; ++nc) {
      const int64_t n = nc / xv.channels, c = nc % xv.channels;
      const int64_t* x = idx + n * xv.n_stride + c * xv.c_stride;
      const E* g = go + n * gv.n_stride + c * gv.c_stride;
      E* out = gi + nc * xv.plane;
      // Each read of the gradient prefetches the one D indices ahead (a few
      // output rows): SegNet's unpool backward 1.3-1.6x faster; the best
      // distances measured, by word size.
      constexpr int64_t D = sizeof(E) >= 4 ? 256 : 32;
      for (int64_t p = 0; p < xv.plane; ++p) {
        if (p + D < xv.plane) {
          const int64_t ahead = x[(p + D) * xv.p_stride];
          if (!out_of_plane(ahead, gv.plane)) __builtin_prefetch(g + ahead * gv.p_stride);
        }
        const int64_t source = x[p * xv.p_stride];
        if (out_of_plane(source, gv.plane)) {
          first_bad = std::min(first_bad, nc * xv.plane + p);
          out[p] = E{};
          continue;
        }
        out[p] = g[source * gv.p_stride];
      }
    }
    if (first_bad != std::numeric_limits<int64_t>::max()) bad.offer(first_bad);
  });
}

// ---- the dense path (unpool_kernels.h) ----

// plane_view's two layouts: planar views have p_stride 1, channels-last ones
// p_stride = channels > 1 (c_stride alone is ambiguous for 1-element planes).
bool channels_last_view(const PlaneView& v) { return v.p_stride != 1; }

// The blocks for planes of `in` cells unpooled to `out` (spatial sizes): per
// dim s = out / in (output rows or columns past in * s are then all zero, as
// a pool's uncovered tail leaves them). None when a dim shrinks or is empty.
// Dims of size 1 on both sides are dropped first (a 1-d unpool runs the 2-d op
// on L x 1 planes: its L becomes the contiguous row).
std::optional<UnpoolBlocks> dense_blocks(at::IntArrayRef in, at::IntArrayRef out, int64_t channels) {
  UnpoolBlocks b{};
  int d = 3;
  for (int64_t k = static_cast<int64_t>(in.size()) - 1; k >= 0; --k) {
    if (in[k] == 1 && out[k] == 1) continue;
    if (in[k] < 1 || out[k] < in[k]) return std::nullopt;
    --d;
    b.in[d] = in[k];
    b.out[d] = out[k];
    b.s[d] = out[k] / in[k];
  }
  while (d > 0) {
    --d;
    b.in[d] = b.out[d] = b.s[d] = 1;
  }
  b.channels = channels;
  return b;
}

// The active ISA's dense kernels for a layout and word size (null where its
// build has none: unpool_kernels.h's with_unpool).
std::pair<UnpoolForwardFn, UnpoolBackwardFn> dense_kernels(bool channels_last, size_t word_bytes) {
  const KernelTable& k = active_kernels();
  const int layout = static_cast<int>(channels_last ? Layout::channels_last : Layout::planar);
  const int word = word_bytes == 2 ? 0 : word_bytes == 4 ? 1 : 2;
  return {k.unpool_forward[layout][word], k.unpool_backward[layout][word]};
}

}  // namespace

bool unpool_has_dense_kernel(bool backward, bool channels_last, int64_t word_bytes) {
  const auto fns = dense_kernels(channels_last, static_cast<size_t>(word_bytes));
  return backward ? fns.second != nullptr : fns.first != nullptr;
}

namespace {

// The dense planar kernels and the channels-last backward beat the scatter
// and gather while the call's traffic stays in the caches, and lose beyond
// them (one thread, AMD EPYC, ms, scatter/gather -> dense: SegNet's unpool4,
// 9.5 MB fp32: planar fwd 0.36 -> 0.25, bwd 0.28 -> 0.23, channels-last bwd
// 0.57 -> 0.30; unpool2, 38 MB: planar fwd 1.6 -> 2.6, bwd 2.2 -> 2.9,
// channels-last bwd 2.8 -> 3.5): their output lines are read before being
// written (no streaming stores) and nothing prefetches the gather's rows. So
// they run up to this many bytes moved; the channels-last forward (faster at
// both sizes: 0.46 -> 0.16 and 2.1 -> 1.8) always, and the channels-last
// backward on more than one thread: the scalar gather hardly gains from a
// second (unpool2, 2026-11-27, ms, 1 -> 2 threads: fp32 2.6 -> 2.3, bf16 1.6
// -> 1.3), the dense one halves (fp32 3.2 -> 1.55, bf16 1.8 -> 1.0).
constexpr int64_t kDenseCachedBytes = int64_t{16} << 20;

int64_t bytes_moved(int64_t in_numel, int64_t out_numel, size_t word_bytes) {
  return in_numel * static_cast<int64_t>(sizeof(int64_t) + word_bytes) + out_numel * static_cast<int64_t>(word_bytes);
}

// Runs a dense kernel over `rows` rows (fn(begin, end) -> false: an index
// outside its block) on every thread, in pieces of about 32K elements so that
// the others stop soon after one fails; true when none did.
template <typename Fn>
bool run_dense(int64_t rows, int64_t row_elements, Fn&& fn) {
  std::atomic<bool> failed{false};
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row_elements));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end && !failed.load(std::memory_order_relaxed); b += grain)
      if (!fn(b, std::min(end, b + grain))) failed.store(true, std::memory_order_relaxed);
  });
  if (failed.load()) return false;
  dense_runs.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// Calls f with a word type of t's element size, for the dtypes PyTorch's CPU
// unpooling takes; others raise its error, which names its kernel `op`.
template <typename F>
void with_word_type(const std::string& op, at::ScalarType dtype, F&& f) {
  switch (dtype) {
    case at::kHalf:
    case at::kBFloat16: return f(uint16_t{});
    case at::kFloat: return f(uint32_t{});
    case at::kDouble: return f(uint64_t{});
    default: TORCH_CHECK_NOT_IMPLEMENTED(false, "\"", op, "\" not implemented for '", dtype, "'");
  }
}

template <int kDims>
struct CpuUnpool {
  using Sizes = at::IntArrayRef;

  static at::Tensor forward(const at::Tensor& self, const at::Tensor& indices, at::IntArrayRef output_size,
                            at::IntArrayRef stride, at::IntArrayRef padding) {
    const auto shape = unpool_output_shape<int64_t>(kDims, self, indices, output_size, stride, padding);
    const PoolLayout layout = unpool_layout(self, kDims);
    at::Tensor output = empty_in_layout<int64_t>(shape, self.options(), layout, kDims);
    if (output.numel() == 0) return output;  // PyTorch's kernel does not run: no dtype error
    with_word_type(unpool_name(kDims), self.scalar_type(), [&](auto word) {
      using E = decltype(word);
      const auto in_view = plane_view(self, kDims);
      const at::Tensor& in = in_view.first;
      const PlaneView& iv = in_view.second;
      const auto idx_view = plane_view(indices, kDims);
      const at::Tensor& idx = idx_view.first;
      const PlaneView& xv = idx_view.second;
      const auto out_view = plane_view(output, kDims);
      const at::Tensor& out = out_view.first;
      const PlaneView& ov = out_view.second;  // no copy: output is in one of the two layouts
      BadIndex bad(/*keep_first=*/false);
      const E* in_data = static_cast<const E*>(in.const_data_ptr());
      E* out_data = static_cast<E*>(out.mutable_data_ptr());
      // Channels last, all three tensors, fewer images than threads: split by rows (scatter_rows).
      const int64_t threads = at::get_num_threads();
      const int64_t in_rows = self.size(-2), out_rows = output.size(-2);
      const int64_t bands = std::min(in_rows, (threads + ov.batch - 1) / ov.batch);
      const bool cl = channels_last_view(ov);
      std::optional<UnpoolBlocks> blocks;
      if (cl == channels_last_view(iv) && cl == channels_last_view(xv))
        blocks = dense_blocks(self.sizes().slice(self.dim() - kDims), output.sizes().slice(output.dim() - kDims),
                              cl ? ov.channels : 1);
      const UnpoolForwardFn fn = dense_kernels(cl, sizeof(E)).first;
      const bool cached = bytes_moved(self.numel(), output.numel(), sizeof(E)) <= kDenseCachedBytes;
      if (blocks && fn && (cl || cached)) {
        const int64_t images = cl ? ov.batch : ov.batch * ov.channels;
        const bool done = run_dense(images * blocks->in[0] * blocks->in[1],
                                    blocks->out[2] * blocks->channels * blocks->s[0] * blocks->s[1],
                                    [&](int64_t begin, int64_t end) {
          return fn(*blocks, in_data, idx.const_data_ptr<int64_t>(), out_data, begin, end);
        });
        if (done) return;
      }
      const bool by_rows = kDims == 2 && ov.c_stride == 1 && ov.channels > 1 && iv.c_stride == 1 &&
                           xv.c_stride == 1 && ov.batch < threads && bands > 1 && out_rows > 0 &&
                           iv.plane * ov.channels / bands >= 32768;
      if (!by_rows || !scatter_rows<E>(in_data, iv, idx.const_data_ptr<int64_t>(), out_data, ov, in_rows,
                                       out_rows, bands, bad))
        scatter<E>(in_data, iv, idx.const_data_ptr<int64_t>(), xv, out_data, ov, bad);
      if (const auto index = bad_index(bad, layout == PoolLayout::channels_last, idx.const_data_ptr<int64_t>(), xv))
        throw_invalid_unpool_index(*index, output_size);
    });
    return output;
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& indices) {
    check_unpool_backward<int64_t>(kDims, grad_output, indices);
    at::Tensor grad_input = at::empty(indices.sizes(), grad_output.options());
    if (grad_input.numel() == 0) return grad_input;
    with_word_type(unpool_name(kDims, "_backward"), grad_output.scalar_type(), [&](auto word) {
      using E = decltype(word);
      const auto go_view = plane_view(grad_output, kDims);
      const at::Tensor& go = go_view.first;
      const PlaneView& gv = go_view.second;
      const auto idx_view = plane_view(indices, kDims);
      const at::Tensor& idx = idx_view.first;
      const PlaneView& xv = idx_view.second;
      const bool cl = channels_last_view(gv);
      const UnpoolBackwardFn fn = dense_kernels(cl, sizeof(E)).second;
      const bool cached = bytes_moved(indices.numel(), grad_output.numel(), sizeof(E)) <= kDenseCachedBytes;
      if (cl == channels_last_view(xv) && fn && (cached || (cl && at::get_num_threads() > 1))) {
        if (const auto blocks = dense_blocks(indices.sizes().slice(indices.dim() - kDims),
                                             grad_output.sizes().slice(grad_output.dim() - kDims),
                                             cl ? xv.channels : 1)) {
          const int64_t images = cl ? xv.batch : xv.batch * xv.channels;
          const bool done = run_dense(images * blocks->in[0] * blocks->in[1],
                                      blocks->in[2] * blocks->channels * blocks->s[0] * blocks->s[1] * blocks->s[2],
                                      [&](int64_t begin, int64_t end) {
            return fn(*blocks, go.const_data_ptr(), idx.const_data_ptr<int64_t>(), grad_input.mutable_data_ptr(),
                      begin, end);
          });
          if (done) return;
        }
      }
      BadIndex bad(/*keep_first=*/true);
      gather<E>(static_cast<const E*>(go.const_data_ptr()), gv, idx.const_data_ptr<int64_t>(), xv,
                static_cast<E*>(grad_input.mutable_data_ptr()), bad);
      if (const auto index = bad_index(bad, false, idx.const_data_ptr<int64_t>(), xv))
        throw_invalid_unpool_gradient_index(*index, indices.dim() - kDims, gv.plane);
    });
    return grad_input;
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, CPU, m) {
  impl_unpool_ops<CpuUnpool>(m);
}

}  // namespace fastpool::cpu
