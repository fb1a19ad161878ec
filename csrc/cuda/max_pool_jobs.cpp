// Host-side preparation of the CUDA max_pool{1,2,3}d and
// adaptive_max_pool{1,2,3}d ops: argument checks and output shapes
// (pool_shape.h, exactly as the CPU backend) in a plan per kind of window,
// then one preparation for every plan: layout, allocation, index-width bound
// and the NHWC vector width. Compiled once, by the host compiler, in every build:
// the CUDA ops and the host executor call these very functions.
#include <ATen/core/Tensor.h>

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
// and no padding (depth in 2-d, depth and height in 1-d) reaches nowhere. An
// adaptive dim's window bounds and covering outputs divide products below
// (in + 1) * (out + 1) (max_pool_device.cuh), which must fit too.
int64_t max_offset(const PoolGeometry& g, int64_t largest_numel) {
  const int64_t volume_stride[kMaxSpatialDims] = {g.in_size[1] * g.in_size[2], g.in_size[2], 1};
  int64_t reach = 0, adaptive_products = 0;
  for (int d = 0; d < kMaxSpatialDims; ++d) {
    const bool trivial = g.kernel[d] == 1 && g.stride[d] == 1 && g.pad[d] == 0;
    if (!trivial) reach += (g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1 + g.pad[d]) * volume_stride[d];
    if (g.adaptive[d]) adaptive_products = std::max(adaptive_products, (g.in_size[d] + 1) * (g.out_size[d] + 1));
  }
  return std::max(largest_numel + (reach + 1) * (g.channels + 1), adaptive_products);
}

}  // namespace

ForwardPlan plan_window_forward(int dims, const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode, PoolCall call) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "max_pool: ", dims, " spatial dims");
  const MaxPoolPlan checked = plan_max_pool(dims, call, self, kernel_size, stride, padding, dilation, ceil_mode);
  ForwardPlan plan;
  plan.dims = dims;
  plan.windows = WindowKind::fixed;
  plan.out_shape = checked.out_shape;
  plan.layout = checked.layout;
  plan.g = make_geometry(self, checked.args);
  return plan;
}

BackwardPlan plan_window_backward(int dims, const at::Tensor& grad_output, const at::Tensor& self,
                                  at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                  at::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "max_pool backward: ", dims, " spatial dims");
  const PoolArgs args =
      check_max_pool_backward(dims, grad_output, self, kernel_size, stride, padding, dilation, ceil_mode, indices);
  BackwardPlan plan;
  plan.dims = dims;
  plan.windows = WindowKind::fixed;
  plan.layout = pool_layout(self, dims);
  plan.g = make_geometry(self, args);
  return plan;
}

ForwardPlan plan_adaptive_forward(int dims, const at::Tensor& self, at::IntArrayRef output_size) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "adaptive_max_pool: ", dims, " spatial dims");
  ForwardPlan plan;
  plan.dims = dims;
  plan.windows = WindowKind::adaptive;
  plan.out_shape = adaptive_pool_output_shape<int64_t>(dims, self, output_size);
  plan.layout = pool_layout(self, dims, WindowKind::adaptive);
  plan.g = make_adaptive_geometry(self, dims, output_size);
  return plan;
}

BackwardPlan plan_adaptive_backward(int dims, const at::Tensor& grad_output, const at::Tensor& self,
                                    const at::Tensor& indices) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "adaptive_max_pool backward: ", dims, " spatial dims");
  check_adaptive_pool_backward(dims, grad_output, self, indices);
  BackwardPlan plan;
  plan.dims = dims;
  plan.windows = WindowKind::adaptive;
  plan.layout = pool_layout(self, dims, WindowKind::adaptive);
  plan.g = make_adaptive_geometry(self, dims, grad_output.sizes().slice(grad_output.dim() - dims));
  return plan;
}

ForwardJob prepare_forward(const ForwardPlan& plan, const at::Tensor& self, bool with_indices) {
  ForwardJob job;
  job.dims = plan.dims;
  job.windows = plan.windows;
  job.nhwc = plan.layout == PoolLayout::channels_last;
  job.output = empty_in_layout<int64_t>(plan.out_shape, self.options(), plan.layout, plan.dims);
  if (with_indices)
    job.indices = empty_in_layout<int64_t>(plan.out_shape, self.options().dtype(at::kLong), plan.layout, plan.dims);
  if (job.output.numel() == 0) return job;
  job.input = contiguous_in(self, plan.layout, plan.dims);  // no copy when already in that layout
  job.g = plan.g;
  job.max_offset = max_offset(job.g, std::max(job.input.numel(), job.output.numel()));
  if (job.nhwc) {
    const void* values[2] = {job.input.const_data_ptr(), job.output.const_data_ptr()};
    const void* index_ptrs[1] = {with_indices ? job.indices.const_data_ptr() : nullptr};
    job.lanes = cuda_logic::nhwc_vector_lanes(job.g.channels, self.element_size(), values, 2, index_ptrs,
                                              with_indices ? 1 : 0);
  }
  return job;
}

BackwardJob prepare_backward(const BackwardPlan& plan, const at::Tensor& grad_output, const at::Tensor& self,
                             const at::Tensor& indices) {
  BackwardJob job;
  job.dims = plan.dims;
  job.windows = plan.windows;
  job.nhwc = plan.layout == PoolLayout::channels_last;
  job.grad_input = empty_in_layout<int64_t>(self.sizes(), self.options(), plan.layout, plan.dims);
  if (job.grad_input.numel() == 0) return job;
  if (grad_output.numel() == 0) {  // adaptive output_size 0: no output, no gradient
    job.grad_input.zero_();
    return job;
  }
  job.g = plan.g;
  job.grad_output = contiguous_in(grad_output, plan.layout, plan.dims);
  job.indices = contiguous_in(indices, plan.layout, plan.dims);
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
