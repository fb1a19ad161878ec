// Host-side preparation shared by the CUDA launcher (max_pool.cu) and the host
// build of the kernels' logic (host_logic.cpp): argument checks and output
// shapes (pool_shape.h, exactly as the CPU backend), layout, allocation and the
// NHWC vector width. Keeping it in one place means the host tests exercise the
// same choices the GPU makes.
#pragma once
#include <ATen/ATen.h>

#include <type_traits>

#include "../pool_shape.h"
#include "max_pool_device.cuh"

namespace fastpool {
namespace cuda_impl {

// PyTorch CUDA's name in its "... not implemented for 'Long'" error (forward
// and backward alike): float32/64, float16 and bfloat16 only, as there.
constexpr const char* kDispatchName = "max_pool2d_with_indices_out_cuda_frame";

inline bool is_nhwc(at::MemoryFormat f) { return f == at::MemoryFormat::ChannelsLast; }

// The accumulation type of the kernels: float for the half types, else the
// element type.
template <typename scalar_t>
using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

// Calls f with std::integral_constant<int, V> for the NHWC vector width the
// job chose (16 bytes, 8 bytes, or scalar): the set of widths that both the
// .cu and the host build instantiate.
template <typename scalar_t, typename F>
void with_lanes(int lanes, F&& f) {
  constexpr int k8 = 8 / sizeof(scalar_t), k16 = 16 / sizeof(scalar_t);
  if (lanes == k16) {
    f(std::integral_constant<int, k16>{});
  } else if (k8 > 1 && lanes == k8) {
    f(std::integral_constant<int, (k8 > 1 ? k8 : 1)>{});
  } else {
    TORCH_CHECK(lanes == 1, "unexpected vector width ", lanes);
    f(std::integral_constant<int, 1>{});
  }
}

// Calls f with int32_t{} or int64_t{}: the index type of the kernel.
template <typename F>
void with_index_type(bool use32, F&& f) {
  if (use32) {
    f(int32_t{});
  } else {
    f(int64_t{});
  }
}

struct ForwardJob {
  PoolGeometry g;
  bool nhwc = false;
  int lanes = 1;           // NHWC channels per vector access (1 = scalar path)
  int64_t work_items = 0;  // calls of the per-element function
  int64_t max_numel = 0;   // largest tensor touched (index width)
  at::Tensor input;        // contiguous in the layout the kernel reads
  at::Tensor output, indices;
};

inline ForwardJob prepare_forward(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                  bool with_indices) {
  const char* op = "max_pool2d";
  const MaxPoolPlan plan = plan_max_pool(op, 2, self, kernel_size, stride, padding, dilation, ceil_mode);
  ForwardJob job;
  job.nhwc = is_nhwc(plan.format);
  job.output = at::empty(plan.out_shape, self.options().memory_format(plan.format));
  if (with_indices) job.indices = at::empty(plan.out_shape, self.options().dtype(at::kLong).memory_format(plan.format));
  if (job.output.numel() == 0) return job;
  job.input = self.contiguous(plan.format);  // no copy when already in that layout
  job.g = make_geometry(job.input, plan.args);
  job.max_numel = std::max(job.input.numel(), job.output.numel());
  if (job.nhwc) {
    const void* values[2] = {job.input.const_data_ptr(), job.output.const_data_ptr()};
    const void* index_ptrs[1] = {with_indices ? job.indices.const_data_ptr() : nullptr};
    job.lanes = cuda_logic::nhwc_vector_lanes(job.g.channels, self.element_size(), values, 2, index_ptrs,
                                              with_indices ? 1 : 0);
  }
  job.work_items = job.output.numel() / job.lanes;
  return job;
}

struct BackwardJob {
  PoolGeometry g;
  bool nhwc = false;
  int lanes = 1;
  int64_t work_items = 0;
  int64_t max_numel = 0;
  at::Tensor grad_output, indices;  // contiguous in the input's layout
  at::Tensor grad_input;
};

inline BackwardJob prepare_backward(const at::Tensor& grad_output, const at::Tensor& self,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                    at::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices) {
  const char* op = "max_pool2d_with_indices_backward";
  const PoolArgs args = normalize_pool_args(op, 2, kernel_size, stride, padding, dilation, ceil_mode);
  check_max_pool_backward(op, grad_output, self, indices, args);
  const at::MemoryFormat format = pool_memory_format(self);
  BackwardJob job;
  job.nhwc = is_nhwc(format);
  job.grad_input = at::empty(self.sizes(), self.options().memory_format(format));
  if (job.grad_input.numel() == 0) return job;
  job.g = make_geometry(self, args);
  job.grad_output = grad_output.contiguous(format);
  job.indices = indices.contiguous(format);
  job.max_numel = std::max(job.grad_input.numel(), job.grad_output.numel());
  if (job.nhwc) {
    const void* values[2] = {job.grad_output.const_data_ptr(), job.grad_input.const_data_ptr()};
    const void* index_ptrs[1] = {job.indices.const_data_ptr()};
    job.lanes = cuda_logic::nhwc_vector_lanes(job.g.channels, self.element_size(), values, 2, index_ptrs, 1);
  }
  job.work_items = job.grad_input.numel() / job.lanes;
  return job;
}

}  // namespace cuda_impl
}  // namespace fastpool
