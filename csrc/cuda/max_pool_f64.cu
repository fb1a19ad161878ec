// The CUDA max_pool{1,2,3}d kernels for double (see cuda_executor.cuh).
#include "cuda_executor.cuh"

namespace fastpool {
namespace cuda_impl {
FASTPOOL_CUDA_TYPED_LAUNCHES(, double)
}  // namespace cuda_impl
}  // namespace fastpool
