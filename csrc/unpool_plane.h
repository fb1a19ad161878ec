// How max unpooling addresses its tensors: (N,) C, spatial... viewed as
// N x C x P (P: the spatial dims flattened), in either layout the kernels
// read without a copy (planar, or channels last for batched 2-d tensors).
// The struct is plain data, passed to the CPU kernels and the CUDA bodies;
// plane_view (host code) picks the strides, copying a tensor in neither layout.
#pragma once
#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

namespace fastpool {

// The element (n, c, p) sits at n * n_stride + c * c_stride + p * p_stride.
struct PlaneView {
  int64_t batch, channels, plane;
  int64_t n_stride, c_stride, p_stride;
};

// `t` as a PlaneView over `spatial_dims` dims: as stored when it is planar or
// (batched 2-d) channels last, else a planar copy.
inline std::pair<at::Tensor, PlaneView> plane_view(const at::Tensor& t, int spatial_dims) {
  const int64_t ndim = t.dim();
  const bool batched = ndim == spatial_dims + 2;
  PlaneView v;
  v.batch = batched ? t.size(0) : 1;
  v.channels = t.size(ndim - spatial_dims - 1);
  v.plane = 1;
  for (int64_t d = ndim - spatial_dims; d < ndim; ++d) v.plane *= t.size(d);
  if (spatial_dims == 2 && batched && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    v.n_stride = v.plane * v.channels;
    v.c_stride = 1;
    v.p_stride = v.channels;
    return {t, v};
  }
  v.n_stride = v.channels * v.plane;
  v.c_stride = v.plane;
  v.p_stride = 1;
  return {t.contiguous(), v};
}

}  // namespace fastpool
