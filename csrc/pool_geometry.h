// Geometry of one pooling call, shared by every backend (CPU kernels, CUDA
// kernels and their host-side test build). Plain C++ with no torch headers, so
// that the per-ISA CPU translation units and nvcc can include it safely.
//
// Every op is normalised to three spatial dims (depth, height, width): 2d is 3d
// with depth 1, 1d is 3d with depth and height 1 (kernel 1, stride 1, pad 0,
// dilation 1 in the unused dims).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define FASTPOOL_HOST_DEVICE __host__ __device__
#else
#define FASTPOOL_HOST_DEVICE
#endif

namespace fastpool {

constexpr int kMaxSpatialDims = 3;

struct PoolGeometry {
  int64_t batch = 1;
  int64_t channels = 1;
  int64_t in_size[kMaxSpatialDims] = {1, 1, 1};   // D, H, W
  int64_t out_size[kMaxSpatialDims] = {1, 1, 1};  // OD, OH, OW
  int64_t kernel[kMaxSpatialDims] = {1, 1, 1};
  int64_t stride[kMaxSpatialDims] = {1, 1, 1};
  int64_t pad[kMaxSpatialDims] = {0, 0, 0};
  int64_t dilation[kMaxSpatialDims] = {1, 1, 1};
  // Windows as data: a fixed window (kernel, stride, pad, dilation above), or
  // adaptive pooling's [floor(o*in/out), ceil((o+1)*in/out)), whose windows
  // vary in size; then kernel holds the largest window (a bound for scratch
  // space), stride the smallest step, pad 0 and dilation 1. Adaptive pooling
  // over sizes that divide evenly is a fixed window and is described as one.
  bool adaptive[kMaxSpatialDims] = {false, false, false};
  // PyTorch's fixed-window channels-last CPU kernel starts the argmax of its
  // remainder channels (past the last whole 32-byte vector) at the window's
  // first (h, w) tap without the depth term; the CPU kernels reproduce it.
  bool channels_tail_start_skips_depth = false;
};

FASTPOOL_HOST_DEVICE static inline int64_t in_plane_elems(const PoolGeometry& g) {
  return g.in_size[0] * g.in_size[1] * g.in_size[2];
}
FASTPOOL_HOST_DEVICE static inline int64_t out_plane_elems(const PoolGeometry& g) {
  return g.out_size[0] * g.out_size[1] * g.out_size[2];
}

// The taps of one window along one dim that fall inside the input: input
// coordinates first, first + dilation, ... (count of them), for a window whose
// first tap is at `start` and whose taps span `span` positions. `first` is also
// where PyTorch's argmax starts when every tap is -inf (or count is 0), so it is
// computed even when count == 0, exactly as PyTorch's loop leaves it. T is
// int64_t, or int32_t in the CUDA kernels; no division unless dilated.
template <typename T>
struct WindowTapsOf {
  T first;
  T count;
  T first_tap = 0;  // the kernel tap (0 .. kernel-1) at `first`: the in-window offset of the argmax sink
};
using WindowTaps = WindowTapsOf<int64_t>;

template <typename T>
FASTPOOL_HOST_DEVICE static inline WindowTapsOf<T> clip_window(T start, T span, T dilation, T in) {
  const T end = start + span < in ? start + span : in;  // one past the last tap inside
  if (dilation == 1) {
    const T first = start < 0 ? 0 : start;
    return {first, end > first ? end - first : 0, first - start};
  }
  const T skipped = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const T first = start + skipped * dilation;
  return {first, end > first ? (end - first + dilation - 1) / dilation : 0, skipped};
}

FASTPOOL_HOST_DEVICE static inline WindowTaps window_taps(const PoolGeometry& g, int dim, int64_t out_pos) {
  if (g.adaptive[dim]) {
    const int64_t in = g.in_size[dim], out = g.out_size[dim];
    const int64_t start = out_pos * in / out, end = ((out_pos + 1) * in + out - 1) / out;
    return {start, end - start, 0};
  }
  return clip_window<int64_t>(out_pos * g.stride[dim] - g.pad[dim], (g.kernel[dim] - 1) * g.dilation[dim] + 1,
                              g.dilation[dim], g.in_size[dim]);
}

// Output positions along `dim` whose every tap lies inside the input (no
// padding, no clipping): [lo, hi). SIMD kernels run these unclipped; the rest
// take the general path.
FASTPOOL_HOST_DEVICE static inline void interior_range(const PoolGeometry& g, int dim, int64_t* lo, int64_t* hi) {
  if (g.adaptive[dim]) {  // windows of varying size: none is regular
    *lo = *hi = g.out_size[dim];
    return;
  }
  const int64_t s = g.stride[dim];
  const int64_t span = (g.kernel[dim] - 1) * g.dilation[dim];
  int64_t l = (g.pad[dim] + s - 1) / s;  // first o with o*s - pad >= 0
  // last o with o*s - pad + span <= in - 1
  const int64_t room = g.in_size[dim] - 1 - span + g.pad[dim];
  int64_t h = room < 0 ? 0 : room / s + 1;
  if (h > g.out_size[dim]) h = g.out_size[dim];
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

// PyTorch's pooling output-size rule (floor or ceil), including the ceil_mode
// rule that the last window must start inside the input or the left padding.
// T is int64_t, or c10::SymInt for the meta kernel. Assumes validated args and
// returns a value < 1 when the input is too small (the caller reports it).
template <typename T>
FASTPOOL_HOST_DEVICE static inline T pool_output_size(T in, int64_t kernel, int64_t stride, int64_t pad,
                                                      int64_t dilation, bool ceil_mode) {
  const T span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  if (span < 0) return T(0);  // floor division of a negative span: too small either way
  T out = span / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) out = out - 1;
  return out;
}

}  // namespace fastpool
