// The CUDA max-pool forward kernels for the integer types (see
// cuda_executor.cuh): forward only, all five in one translation unit (their
// bodies are small: no NaN test, no backward).
#include "cuda_executor.cuh"

namespace fastpool {
namespace cuda_impl {
FASTPOOL_CUDA_FORWARD_LAUNCHES(, uint8_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(, int8_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(, int16_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(, int32_t)
FASTPOOL_CUDA_FORWARD_LAUNCHES(, int64_t)
}  // namespace cuda_impl
}  // namespace fastpool
