// Host-side preparation of the CUDA max_pool{1,2,3}d ops: argument checks and output
// shapes (pool_shape.h, exactly as the CPU backend), layout, allocation and
// the NHWC vector width. Compiled once, by the host compiler, in every build:
// the CUDA ops and the host executor call these very functions.
#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "../op_list.h"
#include "max_pool_launcher.h"

namespace fastpool {
namespace cuda_impl {
namespace {

// Values a kernel forms in its index type reach past the largest tensor by
// less than one window along each dim (a band's end, the first tap of a
// window with none in bounds), times that dim's stride in the D*H*W volume,
// times the channels in NHWC: count that in. A dim with kernel 1, stride 1
// and no padding (depth in 2-d, depth and height in 1-d) reaches nowhere.
int64_t max_offset(const PoolGeometry& g, int64_t largest_numel) {
  const int64_t volume_stride[kMaxSpatialDims] = {g.in_size[1] * g.in_size[2], g.in_size[2], 1};
  int64_t reach = 0;
  for (int d = 0; d < kMaxSpatialDims; ++d) {
    const bool trivial = g.kernel[d] == 1 && g.stride[d] == 1 && g.pad[d] == 0;
    if (!trivial) reach += (g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1 + g.pad[d]) * volume_stride[d];
  }
  return largest_numel + (reach + 1) * (g.channels + 1);
}

}  // namespace

ForwardJob prepare_forward(int dims, const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, bool with_indices) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "max_pool: ", dims, " spatial dims");
  const std::string op = window_pool_name(dims);
  const MaxPoolPlan plan = plan_max_pool(op.c_str(), dims, self, kernel_size, stride, padding, dilation, ceil_mode);
  ForwardJob job;
  job.dims = dims;
  job.nhwc = plan.layout == PoolLayout::channels_last;
  job.output = empty_in_layout<int64_t>(plan.out_shape, self.options(), plan.layout, dims);
  if (with_indices) job.indices = empty_in_layout<int64_t>(plan.out_shape, self.options().dtype(at::kLong), plan.layout, dims);
  if (job.output.numel() == 0) return job;
  job.input = contiguous_in(self, plan.layout, dims);  // no copy when already in that layout
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

BackwardJob prepare_backward(int dims, const at::Tensor& grad_output, const at::Tensor& self,
                             at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                             at::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "max_pool backward: ", dims, " spatial dims");
  const std::string op = window_pool_name(dims, "_with_indices_backward");
  const PoolArgs args = normalize_pool_args(op.c_str(), dims, kernel_size, stride, padding, dilation, ceil_mode);
  check_max_pool_backward(op.c_str(), grad_output, self, indices, args);
  const PoolLayout layout = pool_layout(self, dims);
  BackwardJob job;
  job.dims = dims;
  job.nhwc = layout == PoolLayout::channels_last;
  job.grad_input = empty_in_layout<int64_t>(self.sizes(), self.options(), layout, dims);
  if (job.grad_input.numel() == 0) return job;
  job.g = make_geometry(self, args);
  job.grad_output = contiguous_in(grad_output, layout, dims);
  job.indices = contiguous_in(indices, layout, dims);
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
