// Host-side preparation of the CUDA max_pool2d ops: argument checks and output
// shapes (pool_shape.h, exactly as the CPU backend), layout, allocation and
// the NHWC vector width. Compiled once, by the host compiler, in every build:
// the CUDA ops and the host executor call these very functions.
#include <ATen/ATen.h>

#include <algorithm>

#include "max_pool_launcher.h"

namespace fastpool {
namespace cuda_impl {
namespace {

// Values a kernel forms in its index type reach past the largest tensor by
// less than one window along a dim (a band's end, the first tap of a window
// with none in bounds, that tap's row times the width): count that in.
int64_t max_offset(const PoolGeometry& g, int64_t largest_numel) {
  int64_t reach = 0;
  for (int d = 0; d < kMaxSpatialDims; ++d)
    reach = std::max(reach, g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1 + g.pad[d]);
  return largest_numel + reach * (g.in_size[2] + g.channels + 1);
}

}  // namespace

ForwardJob prepare_forward(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool with_indices) {
  const char* op = "max_pool2d";
  const MaxPoolPlan plan = plan_max_pool(op, 2, self, kernel_size, stride, padding, dilation, ceil_mode);
  ForwardJob job;
  job.nhwc = plan.layout == PoolLayout::channels_last;
  job.output = empty_in_layout<int64_t>(plan.out_shape, self.options(), plan.layout, 2);
  if (with_indices) job.indices = empty_in_layout<int64_t>(plan.out_shape, self.options().dtype(at::kLong), plan.layout, 2);
  if (job.output.numel() == 0) return job;
  job.input = contiguous_in(self, plan.layout, 2);  // no copy when already in that layout
  job.g = make_geometry(job.input, plan.args);
  job.max_offset = max_offset(job.g, std::max(job.input.numel(), job.output.numel()));
  if (job.nhwc) {
    const void* values[2] = {job.input.const_data_ptr(), job.output.const_data_ptr()};
    const void* index_ptrs[1] = {with_indices ? job.indices.const_data_ptr() : nullptr};
    job.lanes = cuda_logic::nhwc_vector_lanes(job.g.channels, self.element_size(), values, 2, index_ptrs,
                                              with_indices ? 1 : 0);
  }
  return job;
}

BackwardJob prepare_backward(const at::Tensor& grad_output, const at::Tensor& self, at::IntArrayRef kernel_size,
                             at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             const at::Tensor& indices) {
  const char* op = "max_pool2d_with_indices_backward";
  const PoolArgs args = normalize_pool_args(op, 2, kernel_size, stride, padding, dilation, ceil_mode);
  check_max_pool_backward(op, grad_output, self, indices, args);
  const PoolLayout layout = pool_layout(self, 2);
  BackwardJob job;
  job.nhwc = layout == PoolLayout::channels_last;
  job.grad_input = empty_in_layout<int64_t>(self.sizes(), self.options(), layout, 2);
  if (job.grad_input.numel() == 0) return job;
  job.g = make_geometry(self, args);
  job.grad_output = contiguous_in(grad_output, layout, 2);
  job.indices = contiguous_in(indices, layout, 2);
  job.max_offset = max_offset(job.g, std::max(job.grad_input.numel(), job.grad_output.numel()));
  if (job.nhwc) {
    const void* values[2] = {job.grad_output.const_data_ptr(), job.grad_input.const_data_ptr()};
    const void* index_ptrs[1] = {job.indices.const_data_ptr()};
    job.lanes = cuda_logic::nhwc_vector_lanes(job.g.channels, self.element_size(), values, 2, index_ptrs, 1);
  }
  return job;
}

}  // namespace cuda_impl
}  // namespace fastpool
