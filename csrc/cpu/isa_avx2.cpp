// The max-pooling kernels built for one ISA; setup.py compiles this file with
// that ISA's flags (tools/build_config.py: ISA_SOURCES).
#define FASTPOOL_ISA avx2
#include "max_pool_kernels.h"
#include "fractional_kernels.h"
#include "unpool_kernels.h"

namespace fastpool::cpu {
const KernelTable& kernels_avx2() {
  static const KernelTable table = avx2::with_unpool(avx2::with_fractional(avx2::make_table("avx2")));
  return table;
}
}  // namespace fastpool::cpu
