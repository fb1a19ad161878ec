#include "huge_pages.h"

#include <ATen/core/Tensor.h>
#include <ATen/EmptyTensor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fastpool::cpu {
namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
// Below two huge pages the aligned interior is small or empty.
constexpr int64_t kMinBytes = int64_t{4} << 20;

bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* v = std::getenv("FASTPOOL_HUGE_PAGES");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return wanted;
}

// Advises the 2 MiB-aligned interior of [data, data + bytes), so nothing
// outside the tensor's own buffer changes. A hint only: pages that are
// already mapped (a reused heap block) stay as they are.
void advise_huge_pages(void* data, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < kMinBytes || !huge_pages_wanted()) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + static_cast<uintptr_t>(bytes)) & ~(kHugePage - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace

at::Tensor empty_cpu_in_layout(at::IntArrayRef sizes, const at::TensorOptions& options, PoolLayout layout,
                               int spatial_dims) {
  if (layout == PoolLayout::planar) return at::detail::empty_cpu(sizes, options);
  return at::detail::empty_strided_cpu(sizes, strides_in_layout(sizes, layout, spatial_dims), options);
}

at::Tensor empty_with_huge_pages(at::IntArrayRef sizes, const at::TensorOptions& options, PoolLayout layout,
                                 int spatial_dims) {
  at::Tensor t = empty_cpu_in_layout(sizes, options, layout, spatial_dims);
  advise_huge_pages(t.data_ptr(), static_cast<int64_t>(t.nbytes()));
  return t;
}

}  // namespace fastpool::cpu
