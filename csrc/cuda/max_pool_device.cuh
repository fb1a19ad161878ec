// The CUDA max_pool2d kernels' bodies: what one thread does for one work item,
// as plain __host__ __device__ code. max_pool.cu runs them in a grid-stride
// kernel on the GPU; host_executor.cpp runs the very same bodies over an
// emulated grid on the host, so the test suite checks them against torch
// without a GPU.
//
// Torch-free: scalar_t is float, double, c10::Half or c10::BFloat16 (all of
// which convert to and from acc_t on host and device). index_t is int32_t or
// int64_t, chosen by the launcher. Semantics are PyTorch CUDA's:
//   forward  a tap wins if (val > max) || isnan(val), scanning h outer, w
//            inner, so ties keep the first tap and the last NaN wins; the
//            index starts at the first in-bounds tap in NCHW but at 0 in
//            NHWC (PyTorch CUDA's channels-last kernel), which shows only
//            when no tap beats -inf.
//   backward each input sums, in acc_t (float for half types) and in output
//            raster order, grad_output over the outputs whose window span
//            covers it and whose index equals it. NCHW starts that sum at
//            0 (so -0.0 becomes 0.0); NHWC with exactly one covering output
//            copies the gradient (PyTorch CUDA does; it keeps -0.0).
// Only 2-d pooling: geometry dims 1 (H) and 2 (W), depth 1.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../pool_geometry.h"
#include "launch.h"

// Unrolls the per-lane loops on the device; the host compiler does its own.
#if defined(__CUDACC__)
#define FASTPOOL_UNROLL _Pragma("unroll")
#else
#define FASTPOOL_UNROLL
#endif

namespace fastpool {
namespace cuda_logic {

using cuda_launch::Divider;

constexpr int kMaxVectorBytes = 16;

// One spatial dim of a 2-d job, in the kernels' index type.
template <typename index_t>
struct Axis {
  index_t in, out, kernel, stride, pad, dilation;
  index_t span;  // (kernel - 1) * dilation + 1: first to last tap
  Divider<index_t> by_stride;
};

// Everything the bodies need, prepared once on the host: sizes, the 2 axes
// and the dividers that split a linear work index into coordinates.
template <typename index_t>
struct Geometry {
  Axis<index_t> h, w;
  index_t channels;
  index_t lane_groups;  // channels / lanes (NHWC)
  Divider<index_t> by_out_w, by_out_h, by_in_w, by_in_h, by_lane_groups;
};

template <typename index_t>
inline Axis<index_t> make_axis(const PoolGeometry& g, int dim) {
  Axis<index_t> a;
  a.in = static_cast<index_t>(g.in_size[dim]);
  a.out = static_cast<index_t>(g.out_size[dim]);
  a.kernel = static_cast<index_t>(g.kernel[dim]);
  a.stride = static_cast<index_t>(g.stride[dim]);
  a.pad = static_cast<index_t>(g.pad[dim]);
  a.dilation = static_cast<index_t>(g.dilation[dim]);
  a.span = (a.kernel - 1) * a.dilation + 1;
  a.by_stride = Divider<index_t>(g.stride[dim]);
  return a;
}

template <typename index_t>
inline Geometry<index_t> make_kernel_geometry(const PoolGeometry& g, int lanes) {
  Geometry<index_t> k;
  k.h = make_axis<index_t>(g, 1);
  k.w = make_axis<index_t>(g, 2);
  k.channels = static_cast<index_t>(g.channels);
  k.lane_groups = static_cast<index_t>(g.channels / lanes);
  k.by_out_w = Divider<index_t>(g.out_size[2]);
  k.by_out_h = Divider<index_t>(g.out_size[1]);
  k.by_in_w = Divider<index_t>(g.in_size[2]);
  k.by_in_h = Divider<index_t>(g.in_size[1]);
  k.by_lane_groups = Divider<index_t>(g.channels / lanes);
  return k;
}

// Coordinates of a linear work index. Planar (NCHW): i over (plane, y, x) of
// Y x X planes. Channels-last (NHWC): i over (n, y, x, group of V channels).
template <typename index_t>
struct Position {
  index_t outer;  // plane (n * C + c) for planar, image n for channels-last
  index_t y, x;
  index_t lane_group;  // channels-last only
};

template <typename index_t>
FASTPOOL_HOST_DEVICE inline Position<index_t> split_planar(index_t i, const Divider<index_t>& by_x, index_t X,
                                                           const Divider<index_t>& by_y, index_t Y) {
  Position<index_t> p;
  const index_t row = by_x.div(i);
  p.x = i - row * X;
  p.outer = by_y.div(row);
  p.y = row - p.outer * Y;
  p.lane_group = 0;
  return p;
}

template <typename index_t>
FASTPOOL_HOST_DEVICE inline Position<index_t> split_channels_last(const Geometry<index_t>& g, index_t i,
                                                                  const Divider<index_t>& by_x, index_t X,
                                                                  const Divider<index_t>& by_y, index_t Y) {
  const index_t pixel = g.by_lane_groups.div(i);
  Position<index_t> p = split_planar(pixel, by_x, X, by_y, Y);
  p.lane_group = i - pixel * g.lane_groups;
  return p;
}

// The in-bounds taps of output o's window along one axis (pool_geometry.h's
// clip_window, in the kernels' index type).
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void window_taps(const Axis<index_t>& a, index_t o, index_t* first, index_t* count) {
  const WindowTapsOf<index_t> t = clip_window<index_t>(o * a.stride - a.pad, a.span, a.dilation, a.in);
  *first = t.first;
  *count = t.count;
}

// Outputs [begin, end) along one axis whose window span covers input x.
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void covering_outputs(const Axis<index_t>& a, index_t x, index_t* begin, index_t* end) {
  const index_t p = x + a.pad;
  *begin = p < a.span ? 0 : a.by_stride.div(p - a.span) + 1;
  const index_t e = a.by_stride.div(p) + 1;
  *end = e < a.out ? e : a.out;
}

// Input positions [begin, end) along one axis that output o owns when windows
// do not overlap (span <= stride): its window lies inside, the bands of all
// outputs tile [0, in), so each input is written by exactly one thread.
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void owned_band(const Axis<index_t>& a, index_t o, index_t* begin, index_t* end) {
  *begin = o == 0 ? 0 : o * a.stride - a.pad;
  const index_t next = (o + 1) * a.stride - a.pad;
  *end = o + 1 == a.out || next > a.in ? a.in : next;
}

// V consecutive elements moved as one 8- or 16-byte access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

#if !defined(__CUDA_ARCH__)
// Host build only: how many vector accesses the host run made and how many of
// them would have been misaligned on the GPU (the tests require none).
struct VectorAccessTally {
  int64_t accesses = 0;
  int64_t misaligned = 0;
};
inline VectorAccessTally& host_vector_tally() {
  static VectorAccessTally tally;
  return tally;
}
#endif

template <typename T, int V>
FASTPOOL_HOST_DEVICE inline Pack<T, V> load_pack(const T* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Pack<T, V>*>(p);
#else
  if (V > 1) {
    ++host_vector_tally().accesses;
    if (reinterpret_cast<uintptr_t>(p) % alignof(Pack<T, V>) != 0) ++host_vector_tally().misaligned;
  }
  Pack<T, V> r;
  std::memcpy(static_cast<void*>(&r), static_cast<const void*>(p), sizeof(r));
  return r;
#endif
}

template <typename T, int V>
FASTPOOL_HOST_DEVICE inline void store_pack(T* p, const Pack<T, V>& x) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Pack<T, V>*>(p) = x;
#else
  if (V > 1) {
    ++host_vector_tally().accesses;
    if (reinterpret_cast<uintptr_t>(p) % alignof(Pack<T, V>) != 0) ++host_vector_tally().misaligned;
  }
  std::memcpy(static_cast<void*>(p), static_cast<const void*>(&x), sizeof(x));
#endif
}

// int64 indices for V lanes: 16-byte pairs (V * 8 bytes is 16-byte aligned
// whenever the value vector is), one scalar when V == 1.
template <int V>
FASTPOOL_HOST_DEVICE inline Pack<int64_t, V> load_indices(const int64_t* p) {
  Pack<int64_t, V> r;
  if (V == 1) {
    r.v[0] = *p;
  } else {
FASTPOOL_UNROLL
    for (int j = 0; j < V; j += 2) {
      const Pack<int64_t, 2> two = load_pack<int64_t, 2>(p + j);
      r.v[j] = two.v[0];
      r.v[j + 1] = two.v[1];
    }
  }
  return r;
}

template <int V>
FASTPOOL_HOST_DEVICE inline void store_indices(int64_t* p, const Pack<int64_t, V>& x) {
  if (V == 1) {
    *p = x.v[0];
  } else {
FASTPOOL_UNROLL
    for (int j = 0; j < V; j += 2) {
      Pack<int64_t, 2> two;
      two.v[0] = x.v[j];
      two.v[1] = x.v[j + 1];
      store_pack<int64_t, 2>(p + j, two);
    }
  }
}

// Lanes per NHWC vector access: 16 bytes, else 8 bytes, else scalar. A width
// is used only when the channel count is a multiple of it and every value
// pointer is aligned to it (then every pixel's channel run is aligned too);
// int64 index pointers must be 16-byte aligned for their pairs.
inline int nhwc_vector_lanes(int64_t channels, int64_t elem_size, const void* const* values, int nvalues,
                             const void* const* indices, int nindices) {
  bool index_ok = true;
  for (int i = 0; i < nindices; ++i) index_ok = index_ok && reinterpret_cast<uintptr_t>(indices[i]) % 16 == 0;
  if (!index_ok) return 1;
  for (int64_t bytes = kMaxVectorBytes; bytes >= 8; bytes /= 2) {
    const int64_t lanes = bytes / elem_size;
    if (lanes < 2 || channels % lanes != 0) continue;
    bool aligned = true;
    for (int i = 0; i < nvalues; ++i) aligned = aligned && reinterpret_cast<uintptr_t>(values[i]) % bytes == 0;
    if (aligned) return static_cast<int>(lanes);
  }
  return 1;
}

template <typename acc_t>
FASTPOOL_HOST_DEVICE inline bool is_nan(acc_t v) {
  return v != v;
}

template <typename scalar_t, typename index_t>
struct ForwardArgs {
  const scalar_t* input;
  scalar_t* output;
  int64_t* indices;  // null: the inference op, which writes none
  Geometry<index_t> g;
};

template <typename scalar_t, typename index_t>
struct BackwardArgs {
  const scalar_t* grad_output;
  const int64_t* indices;
  scalar_t* grad_input;
  Geometry<index_t> g;
};

// ---- forward -------------------------------------------------------------

// NCHW: one output per work item, i = the output's linear index over
// (n*C + c, oh, ow). Adjacent threads take adjacent outputs of a row, so each
// tap's load is coalesced across the warp; the coordinates come from
// multiply-high divisions and the window from additions (no divide unless
// dilated), which is most of what a thread does besides its loads.
// kK > 0: a kK x kK window, unrolled so that all its loads are in flight at
// once (taps outside the input are skipped, in the same h-outer, w-inner
// order); kK == 0: any window, loops over the in-bounds taps.
template <typename scalar_t, typename acc_t, typename index_t, bool kIndices, int kK>
struct ForwardNchw {
  using Args = ForwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kK == 3 ? "forward_nchw_k3" : (kK == 2 ? "forward_nchw_k2" : "forward_nchw");
  static constexpr int kLanes = 1;

  FASTPOOL_HOST_DEVICE static void take(const scalar_t* in, index_t pos, scalar_t* best, acc_t* best_f,
                                        index_t* best_i) {
    const scalar_t v = in[pos];
    const acc_t vf = static_cast<acc_t>(v);
    if (vf > *best_f || is_nan(vf)) {
      *best = v;
      *best_f = vf;
      *best_i = pos;
    }
  }

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const Position<index_t> o = split_planar(i, g.by_out_w, g.w.out, g.by_out_h, g.h.out);
    const index_t plane = o.outer, oh = o.y, ow = o.x;
    index_t h0, nh, w0, nw;
    window_taps(g.h, oh, &h0, &nh);
    window_taps(g.w, ow, &w0, &nw);
    const index_t H = g.h.in, W = g.w.in;
    const scalar_t* in = a.input + plane * (H * W);

    scalar_t best = static_cast<scalar_t>(-INFINITY);
    acc_t best_f = static_cast<acc_t>(-INFINITY);
    index_t best_i = h0 * W + w0;
    const index_t dh = g.h.dilation, dw = g.w.dilation;
    if (kK > 0) {
      const index_t hs = oh * g.h.stride - g.h.pad, ws = ow * g.w.stride - g.w.pad;
FASTPOOL_UNROLL
      for (int kh = 0; kh < kK; ++kh) {
        const index_t h = hs + kh * dh;
FASTPOOL_UNROLL
        for (int kw = 0; kw < kK; ++kw) {
          const index_t w = ws + kw * dw;
          if (h >= 0 && h < H && w >= 0 && w < W) take(in, h * W + w, &best, &best_f, &best_i);
        }
      }
    } else {
      for (index_t kh = 0; kh < nh; ++kh) {
        const index_t row_pos = (h0 + kh * dh) * W + w0;
        for (index_t kw = 0; kw < nw; ++kw) take(in, row_pos + kw * dw, &best, &best_f, &best_i);
      }
    }
    a.output[i] = best;
    if (kIndices) a.indices[i] = static_cast<int64_t>(best_i);
  }
};

// NHWC: i is the linear index over (n, oh, ow, c / V); V channels per item.
template <typename scalar_t, typename acc_t, typename index_t, int V, bool kIndices>
struct ForwardNhwc {
  using Args = ForwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = "forward_nhwc";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const Position<index_t> o = split_channels_last(g, i, g.by_out_w, g.w.out, g.by_out_h, g.h.out);
    const index_t n = o.outer, oh = o.y, ow = o.x, cg = o.lane_group;
    index_t h0, nh, w0, nw;
    window_taps(g.h, oh, &h0, &nh);
    window_taps(g.w, ow, &w0, &nw);
    const index_t C = g.channels, W = g.w.in;
    const scalar_t* in = a.input + n * (g.h.in * W * C) + cg * V;

    Pack<scalar_t, V> best;
    acc_t best_f[V];
    Pack<int64_t, V> best_i;
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) {
      best.v[j] = static_cast<scalar_t>(-INFINITY);
      best_f[j] = static_cast<acc_t>(-INFINITY);
      best_i.v[j] = 0;  // PyTorch CUDA's channels-last start, not the first tap
    }
    for (index_t kh = 0; kh < nh; ++kh) {
      const index_t row_pos = (h0 + kh * g.h.dilation) * W + w0;
      for (index_t kw = 0; kw < nw; ++kw) {
        const index_t pos = row_pos + kw * g.w.dilation;
        const Pack<scalar_t, V> x = load_pack<scalar_t, V>(in + pos * C);
FASTPOOL_UNROLL
        for (int j = 0; j < V; ++j) {
          const acc_t vf = static_cast<acc_t>(x.v[j]);
          if (vf > best_f[j] || is_nan(vf)) {
            best.v[j] = x.v[j];
            best_f[j] = vf;
            best_i.v[j] = pos;
          }
        }
      }
    }
    // C is a multiple of V, so (n, oh, ow, cg) is exactly output offset i * V.
    store_pack<scalar_t, V>(a.output + i * V, best);
    if (kIndices) store_indices<V>(a.indices + i * V, best_i);
  }
};

// ---- backward ------------------------------------------------------------
//
// Three ways to the same sums, picked by the launcher from the geometry:
//   gather       one item per input (per V channels): sums over its covering
//                outputs. Any window.
//   bands        windows that do not overlap (span <= stride): every input
//                has at most one covering output, and the band each output
//                owns (owned_band) holds its window. One item per output
//                reads its index and gradient once and writes its whole band;
//                no input is written twice or missed, no zeroing pass.
//   band gather  overlapping windows with stride kS (the ResNet stem: k3 s2):
//                one item per output band of at most kS x kS inputs loads each
//                candidate output (those covering any input of the band) once
//                and adds it to the band input its index names, in output
//                raster order; larger edge bands fall back to the gather.
// All three give each input the gather's value bit for bit.

// One plane (NCHW, V = 1) or one image's group of V channels (NHWC): where its
// outputs and inputs live. Pixel p of either is at p * step.
template <typename scalar_t, typename index_t>
struct BackwardSlice {
  const scalar_t* grad_output;
  const int64_t* indices;
  scalar_t* grad_input;
  index_t step;  // 1 (NCHW) or C (NHWC)
};

template <typename scalar_t, typename index_t, bool kNhwc, int V>
FASTPOOL_HOST_DEVICE inline BackwardSlice<scalar_t, index_t> backward_slice(const BackwardArgs<scalar_t, index_t>& a,
                                                                           index_t outer, index_t lane_group) {
  const Geometry<index_t>& g = a.g;
  const index_t step = kNhwc ? g.channels : 1;
  const index_t lane0 = kNhwc ? lane_group * V : 0;
  const index_t out_base = outer * (g.h.out * g.w.out * step) + lane0;
  const index_t in_base = outer * (g.h.in * g.w.in * step) + lane0;
  return {a.grad_output + out_base, a.indices + out_base, a.grad_input + in_base, step};
}

// The value of input (h, w): the sum in acc_t, from 0 and in output raster
// order, of the gradients of its covering outputs whose index is this input.
// kCopyOne (NHWC, as PyTorch CUDA): exactly one covering output copies its
// gradient instead (keeping -0.0).
template <typename scalar_t, typename acc_t, typename index_t, int V, bool kCopyOne>
FASTPOOL_HOST_DEVICE inline Pack<scalar_t, V> gather_input(const Geometry<index_t>& g,
                                                           const BackwardSlice<scalar_t, index_t>& s, index_t h,
                                                           index_t w) {
  index_t oh0, oh1, ow0, ow1;
  covering_outputs(g.h, h, &oh0, &oh1);
  covering_outputs(g.w, w, &ow0, &ow1);
  const int64_t target = static_cast<int64_t>(h * g.w.in + w);
  Pack<scalar_t, V> out;
  if (kCopyOne && oh1 - oh0 == 1 && ow1 - ow0 == 1) {
    const index_t o = (oh0 * g.w.out + ow0) * s.step;
    const Pack<int64_t, V> idx = load_indices<V>(s.indices + o);
    const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + o);
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) out.v[j] = idx.v[j] == target ? gv.v[j] : static_cast<scalar_t>(0);
    return out;
  }
  acc_t sum[V];
FASTPOOL_UNROLL
  for (int j = 0; j < V; ++j) sum[j] = acc_t(0);
  for (index_t oh = oh0; oh < oh1; ++oh) {
    for (index_t ow = ow0; ow < ow1; ++ow) {
      const index_t o = (oh * g.w.out + ow) * s.step;
      const Pack<int64_t, V> idx = load_indices<V>(s.indices + o);
      const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + o);
FASTPOOL_UNROLL
      for (int j = 0; j < V; ++j)
        if (idx.v[j] == target) sum[j] += static_cast<acc_t>(gv.v[j]);
    }
  }
FASTPOOL_UNROLL
  for (int j = 0; j < V; ++j) out.v[j] = static_cast<scalar_t>(sum[j]);
  return out;
}

// The position of backward item i: an output (bands, band gather) or an input (gather).
template <typename index_t, bool kNhwc>
FASTPOOL_HOST_DEVICE inline Position<index_t> split_items(const Geometry<index_t>& g, index_t i, bool over_outputs) {
  const Divider<index_t>& by_x = over_outputs ? g.by_out_w : g.by_in_w;
  const Divider<index_t>& by_y = over_outputs ? g.by_out_h : g.by_in_h;
  const index_t X = over_outputs ? g.w.out : g.w.in, Y = over_outputs ? g.h.out : g.h.in;
  return kNhwc ? split_channels_last(g, i, by_x, X, by_y, Y) : split_planar(i, by_x, X, by_y, Y);
}

// Gather: i over the inputs (NCHW: plane, h, w; NHWC: n, h, w, c / V).
template <typename scalar_t, typename acc_t, typename index_t, bool kNhwc, int V>
struct BackwardGather {
  using Args = BackwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kNhwc ? "backward_gather_nhwc" : "backward_gather_nchw";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Position<index_t> x = split_items<index_t, kNhwc>(a.g, i, false);
    const BackwardSlice<scalar_t, index_t> s = backward_slice<scalar_t, index_t, kNhwc, V>(a, x.outer, x.lane_group);
    store_pack<scalar_t, V>(s.grad_input + (x.y * a.g.w.in + x.x) * s.step,
                            gather_input<scalar_t, acc_t, index_t, V, kNhwc>(a.g, s, x.y, x.x));
  }
};

template <typename index_t>
FASTPOOL_HOST_DEVICE inline bool in_span(const Axis<index_t>& a, index_t o, index_t x) {
  const index_t start = o * a.stride - a.pad;
  return x >= start && x < start + a.span;
}

// The output of band item i, its slice, and the inputs [h0, h1) x [w0, w1) it owns.
template <typename scalar_t, typename index_t>
struct OwnedBand {
  Position<index_t> output;
  BackwardSlice<scalar_t, index_t> slice;
  index_t h0, h1, w0, w1;
};

template <typename scalar_t, typename index_t, bool kNhwc, int V>
FASTPOOL_HOST_DEVICE inline OwnedBand<scalar_t, index_t> output_band(const BackwardArgs<scalar_t, index_t>& a,
                                                                     index_t i) {
  OwnedBand<scalar_t, index_t> b;
  b.output = split_items<index_t, kNhwc>(a.g, i, true);
  b.slice = backward_slice<scalar_t, index_t, kNhwc, V>(a, b.output.outer, b.output.lane_group);
  owned_band(a.g.h, b.output.y, &b.h0, &b.h1);
  owned_band(a.g.w, b.output.x, &b.w0, &b.w1);
  return b;
}

// Bands: i over the outputs (NCHW: plane, oh, ow; NHWC: n, oh, ow, c / V).
template <typename scalar_t, typename acc_t, typename index_t, bool kNhwc, int V>
struct BackwardBands {
  using Args = BackwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kNhwc ? "backward_bands_nhwc" : "backward_bands_nchw";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const OwnedBand<scalar_t, index_t> b = output_band<scalar_t, index_t, kNhwc, V>(a, i);
    const Position<index_t>& o = b.output;
    const BackwardSlice<scalar_t, index_t>& s = b.slice;
    const index_t h0 = b.h0, h1 = b.h1, w0 = b.w0, w1 = b.w1;
    const index_t own = (o.y * g.w.out + o.x) * s.step;
    const Pack<int64_t, V> idx = load_indices<V>(s.indices + own);
    Pack<scalar_t, V> grad = load_pack<scalar_t, V>(s.grad_output + own);
    if (!kNhwc) {
FASTPOOL_UNROLL
      for (int j = 0; j < V; ++j)  // as the NCHW gather: a sum that starts at 0
        grad.v[j] = static_cast<scalar_t>(acc_t(0) + static_cast<acc_t>(grad.v[j]));
    }
    for (index_t h = h0; h < h1; ++h) {
      const bool row_in = in_span(g.h, o.y, h);
      for (index_t w = w0; w < w1; ++w) {
        const index_t pos = h * g.w.in + w;
        const bool covered = row_in && in_span(g.w, o.x, w);
        Pack<scalar_t, V> out;
FASTPOOL_UNROLL
        for (int j = 0; j < V; ++j)
          out.v[j] = covered && idx.v[j] == static_cast<int64_t>(pos) ? grad.v[j] : static_cast<scalar_t>(0);
        store_pack<scalar_t, V>(s.grad_input + pos * s.step, out);
      }
    }
  }
};

// Band gather: i over the outputs, like bands; kS = the stride in both dims.
template <typename scalar_t, typename acc_t, typename index_t, bool kNhwc, int V, int kS>
struct BackwardBandGather {
  using Args = BackwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kNhwc ? "backward_band_gather_nhwc" : "backward_band_gather_nchw";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const OwnedBand<scalar_t, index_t> b = output_band<scalar_t, index_t, kNhwc, V>(a, i);
    const Position<index_t>& o = b.output;
    const BackwardSlice<scalar_t, index_t>& s = b.slice;
    const index_t h0 = b.h0, h1 = b.h1, w0 = b.w0, w1 = b.w1;
    if (h1 - h0 > kS || w1 - w0 > kS) {  // a last band that holds the input's remainder
      for (index_t h = h0; h < h1; ++h)
        for (index_t w = w0; w < w1; ++w)
          store_pack<scalar_t, V>(s.grad_input + (h * g.w.in + w) * s.step,
                                  gather_input<scalar_t, acc_t, index_t, V, kNhwc>(g, s, h, w));
      return;
    }
    // The candidates: outputs covering the band's first row (column) to its last.
    index_t oh0, oh1, ow0, ow1, unused;
    covering_outputs(g.h, h0, &oh0, &unused);
    covering_outputs(g.h, h1 - 1, &unused, &oh1);
    covering_outputs(g.w, w0, &ow0, &unused);
    covering_outputs(g.w, w1 - 1, &unused, &ow1);
    acc_t sum[kS][kS][V];
    int covers[kS][kS];  // covering outputs per band input (NHWC copies when it is 1)
    Pack<scalar_t, V> single[kS][kS];
FASTPOOL_UNROLL
    for (int y = 0; y < kS; ++y)
FASTPOOL_UNROLL
      for (int x = 0; x < kS; ++x) {
        covers[y][x] = 0;
FASTPOOL_UNROLL
        for (int j = 0; j < V; ++j) {
          sum[y][x][j] = acc_t(0);
          single[y][x].v[j] = static_cast<scalar_t>(0);
        }
      }
    for (index_t oh = oh0; oh < oh1; ++oh) {
      for (index_t ow = ow0; ow < ow1; ++ow) {
        const index_t off = (oh * g.w.out + ow) * s.step;
        const Pack<int64_t, V> idx = load_indices<V>(s.indices + off);
        const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + off);
FASTPOOL_UNROLL
        for (int y = 0; y < kS; ++y) {
          const index_t h = h0 + y;
          const bool row_in = h < h1 && in_span(g.h, oh, h);
FASTPOOL_UNROLL
          for (int x = 0; x < kS; ++x) {
            const index_t w = w0 + x;
            if (!(row_in && w < w1 && in_span(g.w, ow, w))) continue;
            ++covers[y][x];
            const int64_t target = static_cast<int64_t>(h * g.w.in + w);
FASTPOOL_UNROLL
            for (int j = 0; j < V; ++j) {
              if (idx.v[j] == target) {
                sum[y][x][j] += static_cast<acc_t>(gv.v[j]);
                single[y][x].v[j] = gv.v[j];
              }
            }
          }
        }
      }
    }
FASTPOOL_UNROLL
    for (int y = 0; y < kS; ++y) {
FASTPOOL_UNROLL
      for (int x = 0; x < kS; ++x) {
        if (h0 + y >= h1 || w0 + x >= w1) continue;
        Pack<scalar_t, V> out;
FASTPOOL_UNROLL
        for (int j = 0; j < V; ++j)
          out.v[j] = kNhwc && covers[y][x] == 1 ? single[y][x].v[j] : static_cast<scalar_t>(sum[y][x][j]);
        store_pack<scalar_t, V>(s.grad_input + ((h0 + y) * g.w.in + w0 + x) * s.step, out);
      }
    }
  }
};

}  // namespace cuda_logic
}  // namespace fastpool
