// CUDA registration of the fastpool max-pooling ops (max_pool1d/2d/3d and
// adaptive_max_pool1d/2d/3d): the ops of max_pool_launcher.h over the CUDA
// executor (cuda_executor.cuh),
// under a device guard. Everything else the ops do on the host is shared with
// the host executor that CI runs; the kernels are compiled per element type
// in max_pool_<type>.cu.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../op_list.h"
#include "cuda_executor.cuh"

namespace fastpool {
namespace cuda_impl {
namespace {

// The window-pooling family over kDims spatial dims (op_list.h).
template <int kDims>
struct CudaWindowPool {
  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation, bool ceil_mode) {
    const c10::cuda::CUDAGuard guard(input.device());
    return max_pool_with_indices(CudaExecutor{}, kDims, input, kernel_size, stride, padding, dilation, ceil_mode);
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
    const c10::cuda::CUDAGuard guard(input.device());
    return max_pool(CudaExecutor{}, kDims, input, kernel_size, stride, padding, dilation, ceil_mode);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             const at::Tensor& indices) {
    const c10::cuda::CUDAGuard guard(input.device());
    return max_pool_with_indices_backward(CudaExecutor{}, kDims, grad_output, input, kernel_size, stride, padding,
                                          dilation, ceil_mode, indices);
  }
};

// The adaptive-pooling family over kDims spatial dims (op_list.h).
template <int kDims>
struct CudaAdaptivePool {
  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef output_size) {
    const c10::cuda::CUDAGuard guard(input.device());
    return adaptive_max_pool_with_indices(CudaExecutor{}, kDims, input, output_size);
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef output_size) {
    const c10::cuda::CUDAGuard guard(input.device());
    return adaptive_max_pool(CudaExecutor{}, kDims, input, output_size);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& indices) {
    const c10::cuda::CUDAGuard guard(input.device());
    return adaptive_max_pool_backward(CudaExecutor{}, kDims, grad_output, input, indices);
  }
};

}  // namespace
}  // namespace cuda_impl

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  impl_window_pool_ops<cuda_impl::CudaWindowPool>(m);
  impl_adaptive_pool_ops<cuda_impl::CudaAdaptivePool>(m);
}

}  // namespace fastpool
