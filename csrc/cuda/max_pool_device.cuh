// The CUDA max_pool{1,2,3}d and adaptive_max_pool{1,2,3}d kernels' bodies:
// what one thread does for one work item, as plain __host__ __device__ code. max_pool.cu runs them in a grid-stride
// kernel on the GPU; host_executor.cpp runs the very same bodies over an
// emulated grid on the host, so the test suite checks them against torch
// without a GPU.
//
// Torch-free: scalar_t is float, double, c10::Half or c10::BFloat16 (all of
// which convert to and from acc_t on host and device), or, forward only, an
// integer type (acc_t is then the type itself). index_t is int32_t or int64_t,
// chosen by the launcher. Every job has three axes d, h, w (pool_geometry.h:
// 2-d is depth 1, 1-d also height 1); "NHWC" below means channels last
// (N,L,C / N,H,W,C / N,D,H,W,C). Semantics are PyTorch CUDA's:
//   forward  a tap wins if (val > max) || isnan(val), scanning d outer, h,
//            w inner, so ties keep the first tap and the last NaN wins; the
//            index is flattened over the D*H*W plane and starts at the first
//            in-bounds tap, except in PyTorch CUDA's 2-d channels-last kernel
//            (also max_pool1d's, which runs the 2-d kernel), which starts it
//            at 0: Geometry::nhwc_index_from_zero. It shows only when no tap
//            beats the start (-inf). Integers (no PyTorch CUDA kernel) start
//            at the type's lowest value and the first tap, as PyTorch's CPU
//            kernels do.
//   backward each input sums, in acc_t (float for half types) and in output
//            raster order, grad_output over the outputs whose window span
//            covers it and whose index equals it, starting at 0 (so -0.0
//            becomes 0.0), except that PyTorch CUDA's 2-d channels-last
//            kernel copies the gradient of a lone covering output (keeping
//            -0.0): Geometry::nhwc_copies_single. PyTorch CUDA's max_pool3d
//            backward instead scatters with atomicAdd (in scalar_t, in no
//            fixed order); ours is the same deterministic gather for every
//            dims, so overlapping 3-d windows may round differently from it
//            (see tests/test_cuda_host_executor.py).
//   adaptive windows are data (Axis::adaptive): the same bodies, with no
//            channels-last quirk (PyTorch CUDA's adaptive kernels compute
//            on a contiguous copy: index from the first tap, gradients
//            summed from 0). Its backward scatters with atomicAdd too; ours
//            gathers, as for every window.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

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
// Outputs of a row per ForwardNchwRows item.
constexpr int kRowOutputs = 4;

// One spatial dim of a job, in the kernels' index type: a fixed window
// (kernel, stride, pad, dilation), or adaptive pooling's
// [floor(o*in/out), ceil((o+1)*in/out)) (then kernel is only a bound, stride
// floor(in/out), pad 0, dilation 1; pool_geometry.h). `adaptive` is the same
// for the whole grid, so its branches never diverge a warp, and fixed axes pay
// one predictable branch.
template <typename index_t>
struct Axis {
  index_t in, out, kernel, stride, pad, dilation;
  index_t span;  // (kernel - 1) * dilation + 1: first to last tap
  index_t blocks;  // ceil(in / stride): the band gather's blocks of inputs (fixed axes)
  bool adaptive;
  Divider<index_t> by_stride, by_in, by_out, by_blocks;
};

// Everything the bodies need, prepared once on the host: sizes, the 3 axes
// and the dividers that split a linear work index into coordinates.
template <typename index_t>
struct Geometry {
  Axis<index_t> d, h, w;
  index_t channels;
  index_t lane_groups;           // channels / lanes (NHWC)
  index_t in_plane, out_plane;   // D*H*W and OD*OH*OW
  Divider<index_t> by_lane_groups;
  index_t row_groups;  // ceil(OW / kRowOutputs): ForwardNchwRows' items per output row
  Divider<index_t> by_row_groups;
  // ForwardNchwRows' vector accesses (row_vector_flags): input rows read in
  // 16-byte chunks, full groups' outputs (and indices) stored as vectors.
  bool row_vector_loads = false, row_vector_stores = false;
  // PyTorch CUDA's 2-d (and 1-d) channels-last kernels, not its 3-d ones:
  bool nhwc_index_from_zero;  // forward: the index starts at 0, not the first tap
  bool nhwc_copies_single;    // backward: a lone covering output's gradient is copied, not added to 0
};

// The band gather's blocks along one dim: the input cut every stride from 0
// (input_block below); 1 for adaptive dims, which it never takes.
inline int64_t input_blocks(const PoolGeometry& g, int dim) {
  if (g.adaptive[dim] || g.in_size[dim] <= 0) return 1;
  return (g.in_size[dim] + g.stride[dim] - 1) / g.stride[dim];
}

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
  a.blocks = static_cast<index_t>(input_blocks(g, dim));
  a.adaptive = g.adaptive[dim];
  a.by_stride = Divider<index_t>(g.stride[dim]);
  a.by_in = Divider<index_t>(g.in_size[dim]);
  a.by_out = Divider<index_t>(g.out_size[dim]);
  a.by_blocks = Divider<index_t>(a.blocks);
  return a;
}

// torch_2d_channels_last: the job is channels last and PyTorch CUDA would run
// its 2-d kernel (max_pool1d/2d, floating types): the two quirks above apply.
template <typename index_t>
inline Geometry<index_t> make_kernel_geometry(const PoolGeometry& g, int lanes, bool torch_2d_channels_last) {
  Geometry<index_t> k;
  k.d = make_axis<index_t>(g, 0);
  k.h = make_axis<index_t>(g, 1);
  k.w = make_axis<index_t>(g, 2);
  k.channels = static_cast<index_t>(g.channels);
  k.lane_groups = static_cast<index_t>(g.channels / lanes);
  k.in_plane = static_cast<index_t>(in_plane_elems(g));
  k.out_plane = static_cast<index_t>(out_plane_elems(g));
  k.by_lane_groups = Divider<index_t>(g.channels / lanes);
  k.row_groups = static_cast<index_t>((g.out_size[2] + kRowOutputs - 1) / kRowOutputs);
  k.by_row_groups = Divider<index_t>(std::max<int64_t>(1, k.row_groups));
  k.nhwc_index_from_zero = torch_2d_channels_last;
  k.nhwc_copies_single = torch_2d_channels_last;
  return k;
}

// Coordinates of a linear work index. Planar (NCHW): i over (plane, z, y, x)
// of Z x Y x X volumes. Channels-last (NHWC): i over (n, z, y, x, group of V
// channels).
template <typename index_t>
struct Position {
  index_t outer;  // plane (n * C + c) for planar, image n for channels-last
  index_t z, y, x;
  index_t lane_group;  // channels-last only
};

// The sizes and dividers of one grid of positions (the outputs or the inputs).
template <typename index_t>
struct Extent {
  const Divider<index_t>& by_x;
  index_t X;
  const Divider<index_t>& by_y;
  index_t Y;
  const Divider<index_t>& by_z;
  index_t Z;
};

template <typename index_t>
FASTPOOL_HOST_DEVICE inline Extent<index_t> output_extent(const Geometry<index_t>& g) {
  return {g.w.by_out, g.w.out, g.h.by_out, g.h.out, g.d.by_out, g.d.out};
}
template <typename index_t>
FASTPOOL_HOST_DEVICE inline Extent<index_t> input_extent(const Geometry<index_t>& g) {
  return {g.w.by_in, g.w.in, g.h.by_in, g.h.in, g.d.by_in, g.d.in};
}
template <typename index_t>
FASTPOOL_HOST_DEVICE inline Extent<index_t> block_extent(const Geometry<index_t>& g) {
  return {g.w.by_blocks, g.w.blocks, g.h.by_blocks, g.h.blocks, g.d.by_blocks, g.d.blocks};
}

template <typename index_t>
FASTPOOL_HOST_DEVICE inline Position<index_t> split_planar(index_t i, const Extent<index_t>& e) {
  Position<index_t> p;
  const index_t row = e.by_x.div(i);
  p.x = i - row * e.X;
  const index_t slice = e.by_y.div(row);
  p.y = row - slice * e.Y;
  // Depth 1 (every 2-d and 1-d job, the same for the whole grid): no third division.
  if (e.Z == 1) {
    p.outer = slice;
    p.z = 0;
  } else {
    p.outer = e.by_z.div(slice);
    p.z = slice - p.outer * e.Z;
  }
  p.lane_group = 0;
  return p;
}

template <typename index_t>
FASTPOOL_HOST_DEVICE inline Position<index_t> split_channels_last(const Geometry<index_t>& g, index_t i,
                                                                  const Extent<index_t>& e) {
  const index_t pixel = g.by_lane_groups.div(i);
  Position<index_t> p = split_planar(pixel, e);
  p.lane_group = i - pixel * g.lane_groups;
  return p;
}

// The in-bounds taps of output o's window along one axis (pool_geometry.h's
// window_taps, in the kernels' index type). Adaptive: [floor(o*in/out),
// ceil((o+1)*in/out)), never empty; the products stay below (in+1)*(out+1),
// which the launcher's index width covers (max_pool_jobs.cpp).
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void window_taps(const Axis<index_t>& a, index_t o, index_t* first, index_t* count) {
  if (a.adaptive) {
    *first = a.by_out.div(o * a.in);
    *count = a.by_out.div((o + 1) * a.in + a.out - 1) - *first;
    return;
  }
  const WindowTapsOf<index_t> t = clip_window<index_t>(o * a.stride - a.pad, a.span, a.dilation, a.in);
  *first = t.first;
  *count = t.count;
}

// Outputs [begin, end) along one axis whose window span covers input x.
// Adaptive, in closed form (the windows' both ends grow with o):
//   start(o) <= x  <=>  o*in < (x+1)*out  <=>  o < ceil((x+1)*out/in)
//   end(o)   >  x  <=>  (o+1)*in > x*out  <=>  o >= floor(x*out/in)
// so [floor(x*out/in), ceil((x+1)*out/in)), within [0, out) as x < in;
// products below (in+1)*(out+1) as in window_taps. Checked against a search
// for every in, out <= 64 (tests/test_cuda_host_executor.py).
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void covering_outputs(const Axis<index_t>& a, index_t x, index_t* begin, index_t* end) {
  if (a.adaptive) {
    *begin = a.by_in.div(x * a.out);
    *end = a.by_in.div((x + 1) * a.out + a.in - 1);
    return;
  }
  const index_t p = x + a.pad;
  *begin = p < a.span ? 0 : a.by_stride.div(p - a.span) + 1;
  const index_t e = a.by_stride.div(p) + 1;
  *end = e < a.out ? e : a.out;
}

// Input positions [begin, end) along one axis that output o owns: from its
// window's start to the next output's, clamped to [0, in), the last output
// taking the rest, so the bands of all outputs tile [0, in) and each input is
// written by exactly one thread. A band may be empty: with padding larger
// than the stride (overlapping windows, e.g. kernel 5 or more at stride 2,
// or depth kernel 4 at stride 1) the first outputs start before the input.
// When windows do not overlap (span <= stride) each window lies inside its
// band. Fixed axes only: uneven adaptive windows take the gather.
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void owned_band(const Axis<index_t>& a, index_t o, index_t* begin, index_t* end) {
  const index_t start = o * a.stride - a.pad, next = start + a.stride;
  *begin = start < 0 ? 0 : (start > a.in ? a.in : start);
  *end = o + 1 == a.out || next > a.in ? a.in : (next < 0 ? 0 : next);
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
  return v != v;  // always false for integers, so the test compiles away
}

// Where the running max starts: -inf, or an integer type's lowest value.
template <typename T>
FASTPOOL_HOST_DEVICE inline T lowest_value() {
  if constexpr (std::is_integral_v<T>) {
    return std::numeric_limits<T>::lowest();
  } else {
    return static_cast<T>(-INFINITY);
  }
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

// The in-bounds taps of one output's window in all three axes, and the index
// of its first tap (where PyTorch starts the argmax).
template <typename index_t>
struct Window {
  index_t d0, nd, h0, nh, w0, nw;
};

template <typename index_t>
FASTPOOL_HOST_DEVICE inline Window<index_t> window_of(const Geometry<index_t>& g, const Position<index_t>& o) {
  Window<index_t> t;
  window_taps(g.d, o.z, &t.d0, &t.nd);
  window_taps(g.h, o.y, &t.h0, &t.nh);
  window_taps(g.w, o.x, &t.w0, &t.nw);
  return t;
}

// NCHW: one output per work item, i = the output's linear index over
// (n*C + c, od, oh, ow). Adjacent threads take adjacent outputs of a row, so
// each tap's load is coalesced across the warp; the coordinates come from
// multiply-high divisions and the window from additions (no divide unless
// dilated), which is most of what a thread does besides its loads.
// kK > 0: a kK x kK window in (h, w), unrolled so that all its loads are in
// flight at once (taps outside the input are skipped, in the same h-outer,
// w-inner order), under a loop over the depth taps (one for 2-d); kK == 0:
// any window, loops over the in-bounds taps.
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
    const Position<index_t> o = split_planar(i, output_extent(g));
    const Window<index_t> t = window_of(g, o);
    const index_t H = g.h.in, W = g.w.in, HW = H * W;
    const scalar_t* in = a.input + o.outer * g.in_plane;

    scalar_t best = lowest_value<scalar_t>();
    acc_t best_f = lowest_value<acc_t>();
    index_t best_i = (t.d0 * H + t.h0) * W + t.w0;
    const index_t dd = g.d.dilation, dh = g.h.dilation, dw = g.w.dilation;
    if (kK > 0) {
      const index_t hs = o.y * g.h.stride - g.h.pad, ws = o.x * g.w.stride - g.w.pad;
      for (index_t kd = 0; kd < t.nd; ++kd) {
        const index_t slab = (t.d0 + kd * dd) * HW;
FASTPOOL_UNROLL
        for (int kh = 0; kh < kK; ++kh) {
          const index_t h = hs + kh * dh;
FASTPOOL_UNROLL
          for (int kw = 0; kw < kK; ++kw) {
            const index_t w = ws + kw * dw;
            if (h >= 0 && h < H && w >= 0 && w < W) take(in, slab + h * W + w, &best, &best_f, &best_i);
          }
        }
      }
    } else {
      for (index_t kd = 0; kd < t.nd; ++kd) {
        for (index_t kh = 0; kh < t.nh; ++kh) {
          const index_t row_pos = ((t.d0 + kd * dd) * H + t.h0 + kh * dh) * W + t.w0;
          for (index_t kw = 0; kw < t.nw; ++kw) take(in, row_pos + kw * dw, &best, &best_f, &best_i);
        }
      }
    }
    a.output[i] = best;
    if (kIndices) a.indices[i] = static_cast<int64_t>(best_i);
  }
};

// NCHW rows: kRowOutputs consecutive outputs of a row per work item, for the
// windows most networks pool with along w (nchw_rows_apply: stride 2, no
// dilation, kernel kKW = 3 with padding kPW = 1 or 0, or 2 without; h and d:
// any fixed or adaptive window).
// One output per thread (ForwardNchw) spends most of its time on coordinates
// and per-tap instructions (Nsight Compute on an H200, 2026-11-28: the stem's
// forward compute-bound at 77% SM throughput, DRAM 38%); here an item reads
// each column of its window rows once, the 2 * kRowOutputs columns from its
// first as 16-byte chunks where the launcher found them aligned, into
// registers, and its outputs take their taps from there in the same (d, h, w)
// order, so ties, NaNs and indices are ForwardNchw's. A standalone H200
// experiment (`22176f4`, benchmarks/gpu_nchw_variants.cu) timed this cut at 0.70x the
// one-output kernel's time in float and 0.55x in bfloat16 on the stem.
// Columns outside the input read as -inf, which never wins (a strict > or a
// NaN), so they act as the skipped taps they are.
template <typename scalar_t, typename acc_t, typename index_t, bool kIndices, int kKW, int kPW>
struct ForwardNchwRows {
  using Args = ForwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = "forward_nchw_rows";
  static constexpr int kLanes = 1;
  static constexpr int kR = kRowOutputs;
  static constexpr int kLeft = kPW;                // column c0 - 1 (padding 1)
  static constexpr int kRight = kKW - kPW == 3;    // column c0 + 2R (kernel 3, no padding)
  static constexpr int kCols = kLeft + 2 * kR + kRight;
  static constexpr int kChunk = kMaxVectorBytes / sizeof(scalar_t) < 2 * kR ? kMaxVectorBytes / sizeof(scalar_t)
                                                                             : 2 * kR;
  static constexpr int kStoreChunk = kChunk < kR ? kChunk : kR;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const Extent<index_t> groups{g.by_row_groups, g.row_groups, g.h.by_out, g.h.out, g.d.by_out, g.d.out};
    const index_t row = g.by_row_groups.div(i);  // (plane, od, oh) of the item's output row
    const Position<index_t> o = split_planar(i, groups);
    const index_t OW = g.w.out, W = g.w.in, H = g.h.in;
    const index_t ox0 = (i - row * g.row_groups) * kR, c0 = 2 * ox0;  // c0: the first vector column
    const index_t valid = OW - ox0 < kR ? OW - ox0 : kR;
    index_t d0, nd, h0, nh;
    window_taps(g.d, o.z, &d0, &nd);
    window_taps(g.h, o.y, &h0, &nh);
    const scalar_t* plane = a.input + o.outer * g.in_plane;

    scalar_t best[kR];
    acc_t best_f[kR];
    index_t best_i[kR];
FASTPOOL_UNROLL
    for (int j = 0; j < kR; ++j) {
      const index_t w0 = c0 + 2 * j - kPW;
      best[j] = lowest_value<scalar_t>();
      best_f[j] = lowest_value<acc_t>();
      best_i[j] = (d0 * H + h0) * W + (w0 > 0 ? w0 : 0);
    }
    const bool vector_row = g.row_vector_loads && c0 + 2 * kR <= W;
    for (index_t kd = 0; kd < nd; ++kd) {
      for (index_t kh = 0; kh < nh; ++kh) {
        const index_t row_pos = ((d0 + kd * g.d.dilation) * H + h0 + kh * g.h.dilation) * W;
        const scalar_t* in = plane + row_pos;
        scalar_t x[kCols];
        if (vector_row) {
FASTPOOL_UNROLL
          for (int c = 0; c < 2 * kR; c += kChunk) {
            const Pack<scalar_t, kChunk> chunk = load_pack<scalar_t, kChunk>(in + c0 + c);
FASTPOOL_UNROLL
            for (int e = 0; e < kChunk; ++e) x[kLeft + c + e] = chunk.v[e];
          }
        } else {
FASTPOOL_UNROLL
          for (int c = 0; c < 2 * kR; ++c) x[kLeft + c] = c0 + c < W ? in[c0 + c] : lowest_value<scalar_t>();
        }
        if (kLeft) x[0] = c0 > 0 ? in[c0 - 1] : lowest_value<scalar_t>();
        if (kRight) x[kCols - 1] = c0 + 2 * kR < W ? in[c0 + 2 * kR] : lowest_value<scalar_t>();
FASTPOOL_UNROLL
        for (int j = 0; j < kR; ++j) {
FASTPOOL_UNROLL
          for (int kw = 0; kw < kKW; ++kw) {
            const int c = 2 * j - kPW + kw;  // relative to c0: -kLeft .. 2R - 1 + kRight
            const scalar_t v = x[kLeft + c];
            const acc_t vf = static_cast<acc_t>(v);
            if (vf > best_f[j] || is_nan(vf)) {
              best[j] = v;
              best_f[j] = vf;
              best_i[j] = row_pos + c0 + c;
            }
          }
        }
      }
    }
    const index_t out = row * OW + ox0;
    if (g.row_vector_stores && valid == kR) {
FASTPOOL_UNROLL
      for (int j = 0; j < kR; j += kStoreChunk) {
        Pack<scalar_t, kStoreChunk> chunk;
FASTPOOL_UNROLL
        for (int e = 0; e < kStoreChunk; ++e) chunk.v[e] = best[j + e];
        store_pack<scalar_t, kStoreChunk>(a.output + out + j, chunk);
      }
      if (kIndices) {
        Pack<int64_t, kR> idx;
FASTPOOL_UNROLL
        for (int j = 0; j < kR; ++j) idx.v[j] = static_cast<int64_t>(best_i[j]);
        store_indices<kR>(a.indices + out, idx);
      }
      return;
    }
FASTPOOL_UNROLL
    for (int j = 0; j < kR; ++j) {
      if (j < valid) {
        a.output[out + j] = best[j];
        if (kIndices) a.indices[out + j] = static_cast<int64_t>(best_i[j]);
      }
    }
  }
};

// Whether ForwardNchwRows takes a planar job: fixed windows of stride 2 and
// no dilation along w, kernel 3 with padding 1 (ResNet's stem) or 0
// (GoogLeNet, SqueezeNet, AlexNet) or kernel 2 without padding (VGG, U-Net),
// at least one full group of outputs a row.
inline bool nchw_rows_apply(const PoolGeometry& g) {
  const bool window = (g.kernel[2] == 3 && (g.pad[2] == 0 || g.pad[2] == 1)) || (g.kernel[2] == 2 && g.pad[2] == 0);
  return !g.adaptive[2] && g.stride[2] == 2 && g.dilation[2] == 1 && window && g.out_size[2] >= kRowOutputs;
}

// ForwardNchwRows' vector accesses: loads when every row of every plane starts
// on a 16-byte chunk of the vector's columns (W a multiple of the chunk and
// the input 16-byte aligned); stores when every group is a whole vector of
// outputs (OW a multiple of kRowOutputs) at aligned values and indices.
template <typename index_t>
inline void set_row_vector_flags(Geometry<index_t>& k, int64_t elem_size, const void* input, const void* output,
                                 const void* indices) {
  const int64_t chunk = std::min<int64_t>(kMaxVectorBytes / elem_size, 2 * kRowOutputs);
  const int64_t store_bytes = std::min<int64_t>(chunk, kRowOutputs) * elem_size;
  const auto aligned = [](const void* p, int64_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; };
  k.row_vector_loads = k.w.in % chunk == 0 && aligned(input, kMaxVectorBytes);
  k.row_vector_stores = k.w.out % kRowOutputs == 0 && aligned(output, store_bytes) &&
                        (indices == nullptr || aligned(indices, kMaxVectorBytes));
}

// NHWC: i is the linear index over (n, od, oh, ow, c / V); V channels per item.
template <typename scalar_t, typename acc_t, typename index_t, int V, bool kIndices>
struct ForwardNhwc {
  using Args = ForwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = "forward_nhwc";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const Position<index_t> o = split_channels_last(g, i, output_extent(g));
    const Window<index_t> t = window_of(g, o);
    const index_t C = g.channels, H = g.h.in, W = g.w.in;
    const scalar_t* in = a.input + o.outer * (g.in_plane * C) + o.lane_group * V;

    Pack<scalar_t, V> best;
    acc_t best_f[V];
    Pack<int64_t, V> best_i;
    const int64_t start = g.nhwc_index_from_zero ? 0 : static_cast<int64_t>((t.d0 * H + t.h0) * W + t.w0);
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) {
      best.v[j] = lowest_value<scalar_t>();
      best_f[j] = lowest_value<acc_t>();
      best_i.v[j] = start;
    }
    for (index_t kd = 0; kd < t.nd; ++kd) {
      for (index_t kh = 0; kh < t.nh; ++kh) {
        const index_t row_pos = ((t.d0 + kd * g.d.dilation) * H + t.h0 + kh * g.h.dilation) * W + t.w0;
        for (index_t kw = 0; kw < t.nw; ++kw) {
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
    }
    // C is a multiple of V, so (n, od, oh, ow, cg) is exactly output offset i * V.
    store_pack<scalar_t, V>(a.output + i * V, best);
    if (kIndices) store_indices<V>(a.indices + i * V, best_i);
  }
};

// ---- backward ------------------------------------------------------------
//
// Three ways to the same sums (the band gather in two forms), picked by the
// launcher from the geometry:
//   gather       one item per input (per V channels): sums over its covering
//                outputs. Any window.
//   bands        windows that do not overlap (span <= stride in every axis):
//                every input has at most one covering output, and the band
//                each output owns (owned_band) holds its window. One item per
//                output reads its index and gradient once and writes its
//                whole band; no input is written twice or missed, no zeroing
//                pass.
//   band gather  overlapping windows with stride kS in h and w and kSD in d
//                (the ResNet stem: k3 s2; kSD = 1 for 2-d): one item per
//                block of at most kSD x kS x kS inputs (the input cut every
//                stride from 0, input_block) loads each candidate output
//                (those covering any input of the block) once and adds it to
//                the block input its index names, in output raster order.
//                Every block fits the item's arrays, edges included: with
//                blocks owned by outputs, the last output's (the input's
//                remainder, 3 wide for the stem) took a per-input gather, one
//                thread of most NCHW warps on a slow path the other 31 waited
//                for. Windows overlapping by one input along h and w (span
//                <= 3) with a depth stride of 1 take BackwardBandGatherNarrow,
//                the same work with its 2 x 2 candidates unrolled.
// All three give each input the gather's value bit for bit, and none uses
// atomics: every input is written by one thread, in a fixed order.

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
  const index_t out_base = outer * (g.out_plane * step) + lane0;
  const index_t in_base = outer * (g.in_plane * step) + lane0;
  return {a.grad_output + out_base, a.indices + out_base, a.grad_input + in_base, step};
}

// Flattened positions in the input and output volumes.
template <typename index_t>
FASTPOOL_HOST_DEVICE inline index_t input_pos(const Geometry<index_t>& g, index_t t, index_t h, index_t w) {
  return (t * g.h.in + h) * g.w.in + w;
}
template <typename index_t>
FASTPOOL_HOST_DEVICE inline index_t output_pos(const Geometry<index_t>& g, index_t od, index_t oh, index_t ow) {
  return (od * g.h.out + oh) * g.w.out + ow;
}

// The value of input (t, h, w): the sum in acc_t, from 0 and in output raster
// order, of the gradients of its covering outputs whose index is this input.
// kNhwc and g.nhwc_copies_single (PyTorch CUDA's 2-d channels-last backward):
// exactly one covering output copies its gradient instead (keeping -0.0).
template <typename scalar_t, typename acc_t, typename index_t, int V, bool kNhwc>
FASTPOOL_HOST_DEVICE inline Pack<scalar_t, V> gather_input(const Geometry<index_t>& g,
                                                           const BackwardSlice<scalar_t, index_t>& s, index_t t,
                                                           index_t h, index_t w) {
  index_t od0, od1, oh0, oh1, ow0, ow1;
  covering_outputs(g.d, t, &od0, &od1);
  covering_outputs(g.h, h, &oh0, &oh1);
  covering_outputs(g.w, w, &ow0, &ow1);
  const int64_t target = static_cast<int64_t>(input_pos(g, t, h, w));
  Pack<scalar_t, V> out;
  if (kNhwc && g.nhwc_copies_single && od1 - od0 == 1 && oh1 - oh0 == 1 && ow1 - ow0 == 1) {
    const index_t o = output_pos(g, od0, oh0, ow0) * s.step;
    const Pack<int64_t, V> idx = load_indices<V>(s.indices + o);
    const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + o);
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) out.v[j] = idx.v[j] == target ? gv.v[j] : static_cast<scalar_t>(0);
    return out;
  }
  acc_t sum[V];
FASTPOOL_UNROLL
  for (int j = 0; j < V; ++j) sum[j] = acc_t(0);
  for (index_t od = od0; od < od1; ++od) {
    for (index_t oh = oh0; oh < oh1; ++oh) {
      for (index_t ow = ow0; ow < ow1; ++ow) {
        const index_t o = output_pos(g, od, oh, ow) * s.step;
        const Pack<int64_t, V> idx = load_indices<V>(s.indices + o);
        const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + o);
FASTPOOL_UNROLL
        for (int j = 0; j < V; ++j)
          if (idx.v[j] == target) sum[j] += static_cast<acc_t>(gv.v[j]);
      }
    }
  }
FASTPOOL_UNROLL
  for (int j = 0; j < V; ++j) out.v[j] = static_cast<scalar_t>(sum[j]);
  return out;
}

// The position of backward item i: an output (bands, band gather) or an input (gather).
template <typename index_t, bool kNhwc>
FASTPOOL_HOST_DEVICE inline Position<index_t> split_items(const Geometry<index_t>& g, index_t i, bool over_outputs) {
  const Extent<index_t> e = over_outputs ? output_extent(g) : input_extent(g);
  return kNhwc ? split_channels_last(g, i, e) : split_planar(i, e);
}

// Gather: i over the inputs (NCHW: plane, d, h, w; NHWC: n, d, h, w, c / V).
template <typename scalar_t, typename acc_t, typename index_t, bool kNhwc, int V>
struct BackwardGather {
  using Args = BackwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kNhwc ? "backward_gather_nhwc" : "backward_gather_nchw";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Position<index_t> x = split_items<index_t, kNhwc>(a.g, i, false);
    const BackwardSlice<scalar_t, index_t> s = backward_slice<scalar_t, index_t, kNhwc, V>(a, x.outer, x.lane_group);
    store_pack<scalar_t, V>(s.grad_input + input_pos(a.g, x.z, x.y, x.x) * s.step,
                            gather_input<scalar_t, acc_t, index_t, V, kNhwc>(a.g, s, x.z, x.y, x.x));
  }
};

// Whether output o's window span covers input x (fixed axes: bands and band gather).
template <typename index_t>
FASTPOOL_HOST_DEVICE inline bool in_span(const Axis<index_t>& a, index_t o, index_t x) {
  const index_t start = o * a.stride - a.pad;
  return x >= start && x < start + a.span;
}

// The output of band item i, its slice, and the inputs [d0, d1) x [h0, h1) x
// [w0, w1) it owns.
template <typename scalar_t, typename index_t>
struct OwnedBand {
  Position<index_t> output;
  BackwardSlice<scalar_t, index_t> slice;
  index_t d0, d1, h0, h1, w0, w1;
};

template <typename scalar_t, typename index_t, bool kNhwc, int V>
FASTPOOL_HOST_DEVICE inline OwnedBand<scalar_t, index_t> output_band(const BackwardArgs<scalar_t, index_t>& a,
                                                                     index_t i) {
  OwnedBand<scalar_t, index_t> b;
  b.output = split_items<index_t, kNhwc>(a.g, i, true);
  b.slice = backward_slice<scalar_t, index_t, kNhwc, V>(a, b.output.outer, b.output.lane_group);
  owned_band(a.g.d, b.output.z, &b.d0, &b.d1);
  owned_band(a.g.h, b.output.y, &b.h0, &b.h1);
  owned_band(a.g.w, b.output.x, &b.w0, &b.w1);
  return b;
}

// Bands: i over the outputs (NCHW: plane, od, oh, ow; NHWC: n, od, oh, ow, c / V).
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
    const index_t own = output_pos(g, o.z, o.y, o.x) * s.step;
    const Pack<int64_t, V> idx = load_indices<V>(s.indices + own);
    Pack<scalar_t, V> grad = load_pack<scalar_t, V>(s.grad_output + own);
    if (!(kNhwc && g.nhwc_copies_single)) {
FASTPOOL_UNROLL
      for (int j = 0; j < V; ++j)  // as the gather: a sum that starts at 0
        grad.v[j] = static_cast<scalar_t>(acc_t(0) + static_cast<acc_t>(grad.v[j]));
    }
    for (index_t t = b.d0; t < b.d1; ++t) {
      const bool slab_in = in_span(g.d, o.z, t);
      for (index_t h = b.h0; h < b.h1; ++h) {
        const bool row_in = slab_in && in_span(g.h, o.y, h);
        for (index_t w = b.w0; w < b.w1; ++w) {
          const index_t pos = input_pos(g, t, h, w);
          const bool covered = row_in && in_span(g.w, o.x, w);
          Pack<scalar_t, V> out;
FASTPOOL_UNROLL
          for (int j = 0; j < V; ++j)
            out.v[j] = covered && idx.v[j] == static_cast<int64_t>(pos) ? grad.v[j] : static_cast<scalar_t>(0);
          store_pack<scalar_t, V>(s.grad_input + pos * s.step, out);
        }
      }
    }
  }
};

// Inputs [begin, end) of block b along one axis: [b * stride, (b + 1) * stride)
// within [0, in); never empty (b < blocks).
template <typename index_t>
FASTPOOL_HOST_DEVICE inline void input_block(const Axis<index_t>& a, index_t b, index_t* begin, index_t* end) {
  *begin = b * a.stride;
  const index_t next = *begin + a.stride;
  *end = next < a.in ? next : a.in;
}

// A band gather item's block of inputs (NCHW: plane, block d, h, w; NHWC: n,
// block d, h, w, c / V) and the slice it lives in.
template <typename scalar_t, typename index_t>
struct GatherBlock {
  Position<index_t> block;
  BackwardSlice<scalar_t, index_t> slice;
};

template <typename scalar_t, typename index_t, bool kNhwc, int V>
FASTPOOL_HOST_DEVICE inline GatherBlock<scalar_t, index_t> gather_block(const BackwardArgs<scalar_t, index_t>& a,
                                                                        index_t i) {
  const Extent<index_t> e = block_extent(a.g);
  const Position<index_t> block = kNhwc ? split_channels_last(a.g, i, e) : split_planar(i, e);
  return {block, backward_slice<scalar_t, index_t, kNhwc, V>(a, block.outer, block.lane_group)};
}

// The running sums of a block's kN inputs: each one's sum in acc_t from 0,
// its covering outputs counted, and the last gradient its index named (PyTorch
// CUDA's 2-d channels-last backward copies a lone covering output's
// gradient: nhwc_copies_single).
template <typename scalar_t, typename acc_t, int V, int kN>
struct BlockSums {
  acc_t sum[kN][V];
  int covers[kN];
  Pack<scalar_t, V> single[kN];

  FASTPOOL_HOST_DEVICE BlockSums() {
FASTPOOL_UNROLL
    for (int n = 0; n < kN; ++n) {
      covers[n] = 0;
FASTPOOL_UNROLL
      for (int j = 0; j < V; ++j) {
        sum[n][j] = acc_t(0);
        single[n].v[j] = static_cast<scalar_t>(0);
      }
    }
  }
  // A covering output of block input n (flat position target): its index and gradient.
  FASTPOOL_HOST_DEVICE void add(int n, int64_t target, const Pack<int64_t, V>& idx, const Pack<scalar_t, V>& gv) {
    ++covers[n];
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) {
      if (idx.v[j] == target) {
        sum[n][j] += static_cast<acc_t>(gv.v[j]);
        single[n].v[j] = gv.v[j];
      }
    }
  }
  FASTPOOL_HOST_DEVICE Pack<scalar_t, V> value(int n, bool copy_single) const {
    Pack<scalar_t, V> out;
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j)
      out.v[j] = copy_single && covers[n] == 1 ? single[n].v[j] : static_cast<scalar_t>(sum[n][j]);
    return out;
  }
};

// Band gather: i over the input blocks (NCHW: plane, block d, h, w; NHWC: n,
// block d, h, w, c / V); kS = the stride in h and w, kSD the depth stride
// (1 for 2-d), so a block holds at most kSD x kS x kS inputs.
template <typename scalar_t, typename acc_t, typename index_t, bool kNhwc, int V, int kS, int kSD>
struct BackwardBandGather {
  using Args = BackwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kNhwc ? "backward_band_gather_nhwc" : "backward_band_gather_nchw";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const GatherBlock<scalar_t, index_t> item = gather_block<scalar_t, index_t, kNhwc, V>(a, i);
    const Position<index_t>& block = item.block;
    const BackwardSlice<scalar_t, index_t>& s = item.slice;
    index_t d0, d1, h0, h1, w0, w1;
    input_block(g.d, block.z, &d0, &d1);
    input_block(g.h, block.y, &h0, &h1);
    input_block(g.w, block.x, &w0, &w1);
    // The candidates: outputs covering the block's first slab (row, column) to its last.
    index_t od0, od1, oh0, oh1, ow0, ow1, unused;
    covering_outputs(g.d, d0, &od0, &unused);
    covering_outputs(g.d, d1 - 1, &unused, &od1);
    covering_outputs(g.h, h0, &oh0, &unused);
    covering_outputs(g.h, h1 - 1, &unused, &oh1);
    covering_outputs(g.w, w0, &ow0, &unused);
    covering_outputs(g.w, w1 - 1, &unused, &ow1);
    BlockSums<scalar_t, acc_t, V, kSD * kS * kS> sums;  // block input (z, y, x) at (z * kS + y) * kS + x
    for (index_t od = od0; od < od1; ++od) {
      for (index_t oh = oh0; oh < oh1; ++oh) {
        for (index_t ow = ow0; ow < ow1; ++ow) {
          const index_t off = output_pos(g, od, oh, ow) * s.step;
          const Pack<int64_t, V> idx = load_indices<V>(s.indices + off);
          const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + off);
FASTPOOL_UNROLL
          for (int z = 0; z < kSD; ++z) {
            const index_t t = d0 + z;
            const bool slab_in = t < d1 && in_span(g.d, od, t);
FASTPOOL_UNROLL
            for (int y = 0; y < kS; ++y) {
              const index_t h = h0 + y;
              const bool row_in = slab_in && h < h1 && in_span(g.h, oh, h);
FASTPOOL_UNROLL
              for (int x = 0; x < kS; ++x) {
                const index_t w = w0 + x;
                if (!(row_in && w < w1 && in_span(g.w, ow, w))) continue;
                sums.add((z * kS + y) * kS + x, static_cast<int64_t>(input_pos(g, t, h, w)), idx, gv);
              }
            }
          }
        }
      }
    }
    const bool copy_single = kNhwc && g.nhwc_copies_single;
FASTPOOL_UNROLL
    for (int z = 0; z < kSD; ++z) {
FASTPOOL_UNROLL
      for (int y = 0; y < kS; ++y) {
FASTPOOL_UNROLL
        for (int x = 0; x < kS; ++x) {
          if (d0 + z >= d1 || h0 + y >= h1 || w0 + x >= w1) continue;
          store_pack<scalar_t, V>(s.grad_input + input_pos(g, d0 + z, h0 + y, w0 + x) * s.step,
                                  sums.value((z * kS + y) * kS + x, copy_single));
        }
      }
    }
  }
};

// Band gather for windows that overlap by at most one input along h and w
// (span <= 3 at stride 2: the ResNet stem's k3 s2 p1, GoogLeNet's k3 s2) and
// a depth stride of 1 (one slab per block; every 2-d job): a 2 x 2 block has
// at most 2 x 2 candidate outputs, so candidates, coverage tests and the
// block's sums are unrolled, each test a compare of a per-block offset with a
// constant, and no coverage is worked out per candidate and input. The
// generic body above took 183 us for the stem's float backward on an H200
// (2026-11-28; Nsight Compute: compute-bound, DRAM 18%), where a standalone
// kernel cut like this one took 82 us (an experiment, `22176f4`).
// Same sums, same order (output raster order), same bits.
template <typename scalar_t, typename acc_t, typename index_t, bool kNhwc, int V>
struct BackwardBandGatherNarrow {
  using Args = BackwardArgs<scalar_t, index_t>;
  static constexpr const char* kName = kNhwc ? "backward_band_gather_narrow_nhwc" : "backward_band_gather_narrow_nchw";
  static constexpr int kLanes = V;

  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const Geometry<index_t>& g = a.g;
    const GatherBlock<scalar_t, index_t> item = gather_block<scalar_t, index_t, kNhwc, V>(a, i);
    const BackwardSlice<scalar_t, index_t>& s = item.slice;
    const index_t t = item.block.z;  // depth stride 1: the block's one slab
    index_t h0, h1, w0, w1, od0, od1, oh0, ow0, unused;
    input_block(g.h, item.block.y, &h0, &h1);
    input_block(g.w, item.block.x, &w0, &w1);
    covering_outputs(g.d, t, &od0, &od1);
    covering_outputs(g.h, h0, &oh0, &unused);
    covering_outputs(g.w, w0, &ow0, &unused);
    // Block row y lies in candidate row oh0 + c's window iff 0 <= rh + y - 2c < span (likewise columns).
    const index_t rh = h0 + g.h.pad - oh0 * 2, rw = w0 + g.w.pad - ow0 * 2;
    bool row_in[2][2], col_in[2][2];  // [candidate][block row / column]
FASTPOOL_UNROLL
    for (int c = 0; c < 2; ++c) {
FASTPOOL_UNROLL
      for (int y = 0; y < 2; ++y) {
        const index_t r = rh + y - 2 * c, q = rw + y - 2 * c;
        row_in[c][y] = oh0 + c < g.h.out && h0 + y < h1 && r >= 0 && r < g.h.span;
        col_in[c][y] = ow0 + c < g.w.out && w0 + y < w1 && q >= 0 && q < g.w.span;
      }
    }
    const int64_t W = g.w.in;
    BlockSums<scalar_t, acc_t, V, 4> sums;  // block input (y, x) at 2 * y + x
    const int64_t base = static_cast<int64_t>(input_pos(g, t, h0, w0));
    for (index_t od = od0; od < od1; ++od) {
FASTPOOL_UNROLL
      for (int ch = 0; ch < 2; ++ch) {
        if (!(row_in[ch][0] || row_in[ch][1])) continue;
FASTPOOL_UNROLL
        for (int cw = 0; cw < 2; ++cw) {
          if (!(col_in[cw][0] || col_in[cw][1])) continue;
          const index_t off = output_pos(g, od, oh0 + ch, ow0 + cw) * s.step;
          const Pack<int64_t, V> idx = load_indices<V>(s.indices + off);
          const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(s.grad_output + off);
FASTPOOL_UNROLL
          for (int y = 0; y < 2; ++y) {
FASTPOOL_UNROLL
            for (int x = 0; x < 2; ++x) {
              if (!(row_in[ch][y] && col_in[cw][x])) continue;
              sums.add(2 * y + x, base + y * W + x, idx, gv);
            }
          }
        }
      }
    }
    const bool copy_single = kNhwc && g.nhwc_copies_single;
FASTPOOL_UNROLL
    for (int y = 0; y < 2; ++y) {
FASTPOOL_UNROLL
      for (int x = 0; x < 2; ++x) {
        if (h0 + y >= h1 || w0 + x >= w1) continue;
        store_pack<scalar_t, V>(s.grad_input + input_pos(g, t, h0 + y, w0 + x) * s.step,
                                sums.value(2 * y + x, copy_single));
      }
    }
  }
};

}  // namespace cuda_logic
}  // namespace fastpool
