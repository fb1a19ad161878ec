// The interface between the dispatcher-facing CPU code (max_pool.cpp, normal
// compiler flags, uses ATen) and the per-ISA kernel builds (isa_*.cpp, special
// flags, no torch headers: inline torch code compiled with AVX-512 flags could
// otherwise be picked by the linker for every caller and fault on older CPUs).
#pragma once
#include <cstdint>

#include "../pool_geometry.h"

namespace fastpool::cpu {

// Storage types. Layout-compatible with c10::Half / c10::BFloat16; the kernels
// convert with their own code so they need no torch headers.
struct fp16_t { uint16_t bits; };
struct bf16_t { uint16_t bits; };

enum class DType : int { f32, f64, f16, bf16, u8, i8, i16, i32, i64, count };
enum class Layout : int { planar, channels_last, count };  // NC(D)HW / N(D)HWC

constexpr int kNumDTypes = static_cast<int>(DType::count);
constexpr int kNumLayouts = static_cast<int>(Layout::count);

// Forward over a range of work items: planar = output rows (plane, od, oh);
// channels_last = output positions (n, od, oh, ow), all channels each.
// indices == nullptr: values only (the inference path writes no indices).
using ForwardFn = void (*)(const PoolGeometry& g, const void* input, void* output, int64_t* indices,
                           int64_t begin, int64_t end);

// Backward over a range of tasks: planar = planes (n, c); channels_last =
// (image n, band of input rows), `bands` bands per image. Each task owns the
// grad_input elements it writes, so results do not depend on threading.
// Indices outside the input plane add nothing (see max_pool_kernels.h).
using BackwardFn = void (*)(const PoolGeometry& g, const void* grad_output, const int64_t* indices,
                            void* grad_input, int64_t bands, int64_t begin, int64_t end);

struct KernelTable {
  const char* isa;
  int vector_bits;  // width of the float SIMD path (0: scalar)
  ForwardFn forward[kNumLayouts][kNumDTypes];
  BackwardFn backward[kNumLayouts][kNumDTypes];
};

const KernelTable& kernels_avx512();
const KernelTable& kernels_avx2();
const KernelTable& kernels_portable();

}  // namespace fastpool::cpu
