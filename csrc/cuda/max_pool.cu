// CUDA registration of the fastpool max-pooling ops: the CUDA executor (one
// grid-stride kernel template, launched on the current stream and checked)
// under the ops of max_pool_launcher.h. Everything else the ops do on the
// host is shared with the host executor that CI runs.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "max_pool_launcher.h"

namespace fastpool {
namespace cuda_impl {
namespace {

template <class Body, typename index_t>
__global__ void __launch_bounds__(cuda_launch::kThreadsPerBlock)
    grid_stride_kernel(const typename Body::Args args, index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * static_cast<index_t>(blockDim.x);
  for (index_t i = static_cast<index_t>(blockIdx.x) * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += step)
    Body::run(args, i);
}

// Launches on the current device's current stream; built after a device guard.
struct CudaExecutor {
  cuda_launch::DeviceLimits limits() const {
    const cudaDeviceProp* p = at::cuda::getCurrentDeviceProperties();
    return {p->multiProcessorCount, p->maxThreadsPerMultiProcessor, p->maxGridSize[0]};
  }
  bool force_index64() const { return false; }
  template <class Body, typename index_t>
  void launch(const cuda_launch::Grid& grid, const typename Body::Args& args, index_t n) const {
    grid_stride_kernel<Body, index_t><<<static_cast<unsigned>(grid.blocks), static_cast<unsigned>(grid.threads), 0,
                                        at::cuda::getCurrentCUDAStream()>>>(args, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

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
