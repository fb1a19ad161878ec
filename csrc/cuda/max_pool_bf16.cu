// The CUDA max_pool{1,2,3}d kernels for c10::BFloat16 (see cuda_executor.cuh).
#include "cuda_executor.cuh"

namespace fastpool {
namespace cuda_impl {
FASTPOOL_CUDA_TYPED_LAUNCHES(, c10::BFloat16)
}  // namespace cuda_impl
}  // namespace fastpool
