// Runtime choice of the CPU kernel build.
#pragma once
#include <string>
#include <vector>

#include "kernel_table.h"

namespace fastpool::cpu {

// The ISA paths this build contains, best first.
std::vector<std::string> compiled_isas();
// Those of them this CPU can run, best first.
std::vector<std::string> supported_isas();
// The kernels to use now: the best supported ISA, or the one named by the
// environment variable FASTPOOL_CPU_ISA (avx512 | avx2 | portable), read on
// every call so tests can switch paths. Raises if that ISA is unknown or
// this CPU cannot run it.
const KernelTable& active_kernels();

}  // namespace fastpool::cpu
