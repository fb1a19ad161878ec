// CUDA registration of fractional_max_pool{2,3}d, their backward and their
// training ops: the ops of fractional_launcher.h over the CUDA executor, under
// a device guard.
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

  // The training ops (autograd.cpp's FractionalPoolTraining): taps, their gather backward, and indices on demand.
  static std::tuple<at::Tensor, at::Tensor> with_offsets(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef output_size,
                                                         const at::Tensor& random_samples) {
    const c10::cuda::CUDAGuard guard(input.device());
    return cuda_fractional::fractional_max_pool(CudaExecutor{}, kDims, input, kernel_size, output_size,
                                                random_samples, fractional_offsets_dtype(kernel_size));
  }

  static at::Tensor offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     at::IntArrayRef input_size, at::IntArrayRef kernel_size,
                                     at::IntArrayRef output_size, const at::Tensor& random_samples,
                                     bool channels_last) {
    const c10::cuda::CUDAGuard guard(grad_output.device());
    return cuda_fractional::fractional_offsets_backward(CudaExecutor{}, kDims, grad_output, offsets, input_size,
                                                        kernel_size, output_size, random_samples, channels_last);
  }

  static at::Tensor offsets_to_indices(const at::Tensor& offsets, at::IntArrayRef input_size,
                                       at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                                       const at::Tensor& random_samples) {
    const c10::cuda::CUDAGuard guard(offsets.device());
    return cuda_fractional::fractional_offsets_to_indices(CudaExecutor{}, kDims, offsets, input_size, kernel_size,
                                                          output_size, random_samples);
  }
};

}  // namespace
}  // namespace cuda_impl

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  impl_fractional_pool_ops<cuda_impl::CudaFractionalPool>(m);
  impl_fractional_training_ops<cuda_impl::CudaFractionalPool>(m);
}

}  // namespace fastpool
