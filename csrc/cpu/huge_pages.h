// Allocation of the CPU kernels' outputs: straight from the CPU allocator (as
// torch's own CPU kernels allocate; an at::empty call is a dispatcher round
// trip, ~1 us a tensor, which a small map's call notices), in a layout.
//
// grad_input allocation for the CPU backward. A large grad_input is fresh
// memory that the kernel writes once; with 4 KiB pages the page faults cost
// more than the pooling itself. Measured in a plain script (2 threads, default
// environment, ResNet-stem shape 32x64x112x112 fp32, median of 15 calls): a
// training step through autograd took 18-23 ms with the hint and 48-54 ms
// without. The forward's outputs get no hint: there the hint lost (the forward
// with indices took 63 ms median, 11 ms at best, against 29 ms without: the
// kernel's madvise can stall in memory compaction).
#pragma once
#include <ATen/core/Tensor.h>

#include "../pool_shape.h"

namespace fastpool::cpu {

// An uninitialised CPU tensor of `sizes` ((N,) C, spatial...) in the layout.
at::Tensor empty_cpu_in_layout(at::IntArrayRef sizes, const at::TensorOptions& options, PoolLayout layout,
                               int spatial_dims);

// empty_cpu_in_layout, plus a hint to back the buffer with transparent huge pages when it
// is large (Linux; FASTPOOL_HUGE_PAGES=0 turns the hint off). For grad_input only. The tensor is an
// ordinary torch allocation: only the kernel's paging of it changes.
at::Tensor empty_with_huge_pages(at::IntArrayRef sizes, const at::TensorOptions& options, PoolLayout layout,
                                 int spatial_dims);

}  // namespace fastpool::cpu
