// How a CUDA job becomes a launch: the grid, the index width and the integer
// division the kernels use. Torch-free and __host__ __device__ where it runs
// in kernels, so that the CUDA build (max_pool.cu) and the host executor that
// CI runs (host_executor.cpp) make exactly the same decisions.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../pool_geometry.h"

#if defined(__CUDA_ARCH__)
#define FASTPOOL_UMULHI(a, b) __umulhi(a, b)
#else
#define FASTPOOL_UMULHI(a, b) static_cast<uint32_t>((static_cast<uint64_t>(a) * static_cast<uint64_t>(b)) >> 32)
#endif

namespace fastpool {
namespace cuda_launch {

constexpr int64_t kThreadsPerBlock = 256;
// Blocks per SM slot the grid asks for at most; the grid-stride loop covers the rest.
constexpr int64_t kWavesPerGrid = 8;

// What the launch decisions depend on: read from the current device by the
// CUDA executor, given by the tests to the host executor (a real card's
// numbers, or a single SM to force many grid-stride steps).
struct DeviceLimits {
  int64_t sm_count;
  int64_t max_threads_per_sm;
  int64_t max_grid_x;
};

struct Grid {
  int64_t blocks;
  int64_t threads;  // per block
  FASTPOOL_HOST_DEVICE int64_t total_threads() const { return blocks * threads; }
};

// Enough blocks to fill every SM several times over, never more than the work
// needs; at least one, so that the grid is valid for any work count.
inline Grid grid_for(const DeviceLimits& dev, int64_t work_items) {
  const int64_t per_sm = std::max<int64_t>(1, dev.max_threads_per_sm / kThreadsPerBlock);
  const int64_t cap = std::max<int64_t>(1, std::min(dev.sm_count * per_sm * kWavesPerGrid, dev.max_grid_x));
  const int64_t needed = (work_items + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return {std::clamp<int64_t>(needed, 1, cap), kThreadsPerBlock};
}

// 32-bit index arithmetic is safe when every element offset a kernel forms and
// the grid-stride loop's last step (work items + threads in the grid) fit.
inline bool fits_int32(int64_t max_offset, int64_t work_items, const Grid& grid) {
  constexpr int64_t kLimit = INT32_MAX;
  return max_offset <= kLimit && work_items + grid.total_threads() <= kLimit;
}

// n / d for 0 <= n, computed without a hardware divide. int32_t: Granlund and
// Montgomery's multiply-high and shift, exact for n < 2^31 (what fits_int32
// guarantees); int64_t: plain division (64-bit jobs are rare and huge).
template <typename index_t>
struct Divider;

template <>
struct Divider<int32_t> {
  uint32_t divisor = 1, magic = 1, shift = 0;
  Divider() = default;
  explicit Divider(int64_t d) : divisor(static_cast<uint32_t>(d)) {
    while ((uint64_t{1} << shift) < divisor) ++shift;  // shift = ceil(log2(d))
    magic = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - divisor)) / divisor + 1);
  }
  FASTPOOL_HOST_DEVICE int32_t div(int32_t n) const {
    const uint32_t u = static_cast<uint32_t>(n);
    return static_cast<int32_t>((FASTPOOL_UMULHI(u, magic) + u) >> shift);
  }
};

template <>
struct Divider<int64_t> {
  int64_t divisor = 1;
  Divider() = default;
  explicit Divider(int64_t d) : divisor(d) {}
  FASTPOOL_HOST_DEVICE int64_t div(int64_t n) const { return n / divisor; }
};

// Calls f with int32_t{} or int64_t{}: the index type of the kernels.
template <typename F>
void with_index_type(bool use32, F&& f) {
  if (use32) {
    f(int32_t{});
  } else {
    f(int64_t{});
  }
}

}  // namespace cuda_launch
}  // namespace fastpool
