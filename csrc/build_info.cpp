#include "build_info.h"

#include <pybind11/stl.h>

#include "cpu/dispatch.h"

#ifndef FASTPOOL_CUDA_BUILD
#define FASTPOOL_CUDA_BUILD 0
#endif
#ifndef FASTPOOL_CUDA_ARCH_LIST
#define FASTPOOL_CUDA_ARCH_LIST ""
#endif

namespace fastpool {

pybind11::dict build_info() {
  pybind11::dict info;
  info["cpu_isas_compiled"] = cpu::compiled_isas();
  info["cpu_isas_supported"] = cpu::supported_isas();
  info["cpu_isa_active"] = std::string(cpu::active_kernels().isa);
  info["cpu_vector_bits"] = cpu::active_kernels().vector_bits;
  info["cuda"] = static_cast<bool>(FASTPOOL_CUDA_BUILD);
  info["cuda_arch_list"] = std::string(FASTPOOL_CUDA_ARCH_LIST);
  return info;
}

}  // namespace fastpool
