// The CUDA executor of max_pool_launcher.h: one grid-stride kernel template,
// launched on the current stream and checked. The ops' launches for each
// element type are instantiated in a translation unit of their own
// (max_pool_<type>.cu), so that a build compiles them in parallel.
#pragma once
#include <ATen/cuda/CUDAContextLight.h>  // device properties (not CUDAContext.h: all of ATen)
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "max_pool_launcher.h"

namespace fastpool {
namespace cuda_impl {

template <class Body, typename index_t>
__global__ void __launch_bounds__(cuda_launch::kThreadsPerBlock)
    grid_stride_kernel(const typename Body::Args args, index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * static_cast<index_t>(blockDim.x);
  for (index_t i = static_cast<index_t>(blockIdx.x) * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += step)
    Body::run(args, i);
}

// Launches on the current device's current stream; used under a device guard.
struct CudaExecutor {
  cuda_launch::DeviceLimits limits() const {
    const cudaDeviceProp* p = at::cuda::getCurrentDeviceProperties();
    return {p->multiProcessorCount, p->maxThreadsPerMultiProcessor, p->maxGridSize[0]};
  }
  bool force_index64() const { return false; }
  template <class Body, typename index_t>
  void launch(const cuda_launch::Grid& grid, const typename Body::Args& args, index_t n) const {
    grid_stride_kernel<Body, index_t><<<static_cast<unsigned>(grid.blocks), static_cast<unsigned>(grid.threads), 0,
                                        c10::cuda::getCurrentCUDAStream()>>>(args, n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

// The per-type launches: `extern` where they are used, defined in
// max_pool_<type>.cu. Integer types have the forward only (PyTorch has no
// integer max-pool backward), all five in max_pool_int.cu.
#define FASTPOOL_CUDA_FORWARD_LAUNCHES(EXTERN, scalar_t) \
  EXTERN template void forward_typed<scalar_t, CudaExecutor>(const CudaExecutor&, const ForwardJob&, bool);
#define FASTPOOL_CUDA_TYPED_LAUNCHES(EXTERN, scalar_t) \
  FASTPOOL_CUDA_FORWARD_LAUNCHES(EXTERN, scalar_t)     \
  EXTERN template void backward_typed<scalar_t, CudaExecutor>(const CudaExecutor&, const BackwardJob&);

FASTPOOL_CUDA_TYPED_LAUNCHES(extern, float)
FASTPOOL_CUDA_TYPED_LAUNCHES(extern, double)
FASTPOOL_CUDA_TYPED_LAUNCHES(extern, c10::Half)
FASTPOOL_CUDA_TYPED_LAUNCHES(extern, c10::BFloat16)
FASTPOOL_CUDA_FORWARD_LAUNCHES(extern, uint8_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(extern, int8_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(extern, int16_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(extern, int32_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(extern, int64_t)

}  // namespace cuda_impl
}  // namespace fastpool
