#pragma once
#include <pybind11/pybind11.h>

namespace fastpool {
// Which CPU ISA paths were compiled, which one this machine uses, whether
// CUDA kernels were built (and for which archs).
pybind11::dict build_info();
// Hooks for the test suite (e.g. running the CUDA per-element logic on the host).
void register_test_hooks(pybind11::module_& m);
// How many max_unpool calls took the CPU dense path (cpu/max_unpool.cpp).
namespace cpu {
int64_t unpool_dense_runs();
// Whether the active ISA's build has that dense kernel (where the tests expect the path).
bool unpool_has_dense_kernel(bool backward, bool channels_last, int64_t word_bytes);
}
// The functional API's eager calls (eager_calls.cpp).
void register_eager_calls(pybind11::module_& m);
}  // namespace fastpool
