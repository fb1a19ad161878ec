// Output allocation for the CPU kernels. Large outputs are fresh memory that
// the kernel writes once; with 4 KiB pages the page faults cost more than the
// pooling itself (measured: 20 ms of a 33 ms backward on the ResNet-stem shape).
#pragma once
#include <ATen/core/Tensor.h>

#include "../pool_shape.h"

namespace fastpool::cpu {

// empty_in_layout, plus a hint to back the buffer with transparent huge pages when it
// is large (Linux; FASTPOOL_HUGE_PAGES=0 turns the hint off). The tensor is an
// ordinary torch allocation: only the kernel's paging of it changes.
at::Tensor empty_with_huge_pages(at::IntArrayRef sizes, const at::TensorOptions& options, PoolLayout layout,
                                 int spatial_dims);

}  // namespace fastpool::cpu
