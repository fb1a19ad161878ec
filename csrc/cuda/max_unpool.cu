// CUDA registration of max_unpool{2,3}d and their backward: the op of
// max_unpool_launcher.h over the CUDA executor, under a device guard.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../op_list.h"
#include "cuda_executor.cuh"
#include "max_unpool_launcher.h"

namespace fastpool {
namespace cuda_impl {
namespace {

template <int kDims>
struct CudaUnpool {
  using Sizes = at::IntArrayRef;

  static at::Tensor forward(const at::Tensor& self, const at::Tensor& indices, at::IntArrayRef output_size,
                            at::IntArrayRef stride, at::IntArrayRef padding) {
    const c10::cuda::CUDAGuard guard(self.device());
    return cuda_unpool::max_unpool(CudaExecutor{}, kDims, self, indices, output_size, stride, padding);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& indices) {
    const c10::cuda::CUDAGuard guard(grad_output.device());
    return cuda_unpool::max_unpool_backward(CudaExecutor{}, kDims, grad_output, indices);
  }
};

}  // namespace
}  // namespace cuda_impl

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  impl_unpool_ops<cuda_impl::CudaUnpool>(m);
}

}  // namespace fastpool
