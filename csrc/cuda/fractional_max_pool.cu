// CUDA registration of fractional_max_pool{2,3}d and their backward: the op of
// fractional_launcher.h over the CUDA executor, under a device guard.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../op_list.h"
#include "cuda_executor.cuh"
#include "fractional_launcher.h"

namespace fastpool {
namespace cuda_impl {
namespace {

template <int kDims>
struct CudaFractionalPool {
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                    at::IntArrayRef output_size, const at::Tensor& random_samples) {
    const c10::cuda::CUDAGuard guard(input.device());
    return cuda_fractional::fractional_max_pool(CudaExecutor{}, kDims, input, kernel_size, output_size,
                                                random_samples);
  }

  // The kernel writes indices either way: the values op drops them.
  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                           const at::Tensor& random_samples) {
    return std::get<0>(forward(input, kernel_size, output_size, random_samples));
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef output_size, const at::Tensor& indices) {
    const c10::cuda::CUDAGuard guard(input.device());
    return cuda_fractional::fractional_max_pool_backward(CudaExecutor{}, kDims, grad_output, input, kernel_size,
                                                         output_size, indices);
  }
};

}  // namespace
}  // namespace cuda_impl

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  impl_fractional_pool_ops<cuda_impl::CudaFractionalPool>(m);
}

}  // namespace fastpool
