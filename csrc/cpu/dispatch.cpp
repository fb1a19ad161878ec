#include "dispatch.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>

namespace fastpool::cpu {
namespace {

struct IsaEntry {
  const char* name;
  const KernelTable& (*kernels)();
  bool (*supported)();
};

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  // The kernels use F, BW, VL and DQ; __builtin_cpu_supports also checks that
  // the OS saves the AVX-512 state.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool always() { return true; }

const IsaEntry kIsas[] = {
    {"avx512", &kernels_avx512, &cpu_has_avx512},
    {"avx2", &kernels_avx2, &cpu_has_avx2},
    {"portable", &kernels_portable, &always},
};

}  // namespace

std::vector<std::string> compiled_isas() {
  std::vector<std::string> names;
  for (const auto& e : kIsas) names.emplace_back(e.name);
  return names;
}

std::vector<std::string> supported_isas() {
  std::vector<std::string> names;
  for (const auto& e : kIsas)
    if (e.supported()) names.emplace_back(e.name);
  return names;
}

const KernelTable& active_kernels() {
  static const IsaEntry* best = [] {
    for (const auto& e : kIsas)
      if (e.supported()) return &e;
    return &kIsas[2];
  }();
  const char* forced = std::getenv("FASTPOOL_CPU_ISA");
  if (forced == nullptr || forced[0] == '\0') return best->kernels();
  for (const auto& e : kIsas) {
    if (std::strcmp(forced, e.name) == 0) {
      TORCH_CHECK(e.supported(), "FASTPOOL_CPU_ISA=", forced, " but this CPU does not support ", e.name,
                  "; supported here: ", c10::Join(", ", supported_isas()));
      return e.kernels();
    }
  }
  TORCH_CHECK_VALUE(false, "FASTPOOL_CPU_ISA must be one of avx512, avx2, portable (or unset), but got '", forced,
                    "'");
}

}  // namespace fastpool::cpu
