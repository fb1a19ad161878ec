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
};

FASTPOOL_HOST_DEVICE static inline int64_t in_plane_elems(const PoolGeometry& g) {
  return g.in_size[0] * g.in_size[1] * g.in_size[2];
}
FASTPOOL_HOST_DEVICE static inline int64_t out_plane_elems(const PoolGeometry& g) {
  return g.out_size[0] * g.out_size[1] * g.out_size[2];
}

// The taps of one window along one dim that fall inside the input: input
// coordinates first, first + dilation, ... (count of them). `first` is also
// where PyTorch's argmax starts when every tap is -inf (or count is 0), so it is
// computed even when count == 0, exactly as PyTorch's loop leaves it.
struct WindowTaps {
  int64_t first;
  int64_t count;
};

FASTPOOL_HOST_DEVICE static inline WindowTaps window_taps(const PoolGeometry& g, int dim, int64_t out_pos) {
  const int64_t start = out_pos * g.stride[dim] - g.pad[dim];
  const int64_t dil = g.dilation[dim];
  const int64_t k_first = start < 0 ? (-start + dil - 1) / dil : 0;
  const int64_t end = start + (g.kernel[dim] - 1) * dil + 1;  // one past the last tap
  const int64_t stop = end < g.in_size[dim] ? end : g.in_size[dim];
  const int64_t first = start + k_first * dil;
  const int64_t count = stop > first ? (stop - first + dil - 1) / dil : 0;
  return {first, count};
}

// Output positions along `dim` whose every tap lies inside the input (no
// padding, no clipping): [lo, hi). SIMD kernels run these unclipped; the rest
// take the general path.
FASTPOOL_HOST_DEVICE static inline void interior_range(const PoolGeometry& g, int dim, int64_t* lo, int64_t* hi) {
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

namespace fastpool {

// The inverse of window_taps along one dim: output positions [begin, end) whose
// window span (first to last tap, dilation gaps included) contains input
// position in_pos. A gather-style backward visits exactly these outputs; it is
// also the range PyTorch's CUDA backward visits, which matters when an index
// points outside its own window (PyTorch CUDA's channels-last index 0).
struct OutputRange {
  int64_t begin;
  int64_t end;
};

FASTPOOL_HOST_DEVICE static inline OutputRange covering_outputs(const PoolGeometry& g, int dim, int64_t in_pos) {
  const int64_t span = (g.kernel[dim] - 1) * g.dilation[dim] + 1;
  const int64_t p = in_pos + g.pad[dim];
  const int64_t begin = p < span ? 0 : (p - span) / g.stride[dim] + 1;
  const int64_t end = p / g.stride[dim] + 1;
  return {begin, end < g.out_size[dim] ? end : g.out_size[dim]};
}

}  // namespace fastpool
