// The max-pooling kernels built for one ISA; setup.py compiles this file with
// that ISA's flags, once per part (tools/build_config.py: ISA_SOURCES,
// ISA_PARTS; max_pool_kernels.h: make_table). Part 0 holds the table.
#define FASTPOOL_ISA portable
#include "max_pool_kernels.h"
#include "fractional_kernels.h"
#include "unpool_kernels.h"

#if !defined(FASTPOOL_ISA_PART) || FASTPOOL_ISA_PART == 0
namespace fastpool::cpu {
const KernelTable& kernels_portable() {
  static const KernelTable table = portable::with_unpool(portable::with_fractional(portable::make_table("portable")));
  return table;
}
}  // namespace fastpool::cpu
#endif
