// CUDA registration of the fastpool max-pooling ops: the ops of
// max_pool_launcher.h over the CUDA executor (cuda_executor.cuh), under a
// device guard. Everything else the ops do on the host is shared with the
// host executor that CI runs; the kernels are compiled per element type in
// max_pool_<type>.cu.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda_executor.cuh"

namespace fastpool {
namespace cuda_impl {
namespace {

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices_cuda(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                                at::IntArrayRef dilation, bool ceil_mode) {
  const c10::cuda::CUDAGuard guard(input.device());
  return max_pool2d_with_indices(CudaExecutor{}, input, kernel_size, stride, padding, dilation, ceil_mode);
}

at::Tensor max_pool2d_cuda(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  const c10::cuda::CUDAGuard guard(input.device());
  return max_pool2d(CudaExecutor{}, input, kernel_size, stride, padding, dilation, ceil_mode);
}

at::Tensor max_pool2d_with_indices_backward_cuda(const at::Tensor& grad_output, const at::Tensor& input,
                                                 at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                 at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                                 const at::Tensor& indices) {
  const c10::cuda::CUDAGuard guard(input.device());
  return max_pool2d_with_indices_backward(CudaExecutor{}, grad_output, input, kernel_size, stride, padding, dilation,
                                          ceil_mode, indices);
}

}  // namespace
}  // namespace cuda_impl

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  m.impl("max_pool2d_with_indices", &cuda_impl::max_pool2d_with_indices_cuda);
  m.impl("max_pool2d", &cuda_impl::max_pool2d_cuda);
  m.impl("max_pool2d_with_indices_backward", &cuda_impl::max_pool2d_with_indices_backward_cuda);
}

}  // namespace fastpool
