// The CUDA max_pool{1,2,3}d kernels for c10::Half (see cuda_executor.cuh).
#include "cuda_executor.cuh"

namespace fastpool {
namespace cuda_impl {
FASTPOOL_CUDA_TYPED_LAUNCHES(, c10::Half)
}  // namespace cuda_impl
}  // namespace fastpool
