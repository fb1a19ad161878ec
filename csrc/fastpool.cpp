// The fastpool operator library: the schemas of op_list.h (backends register
// implementations in cpu/, cuda/ and max_pool_meta.cpp), and the Python
// module: build information, the functional API's typed entry to the ops
// (eager_calls.cpp) and the test hooks.
#include <pybind11/pybind11.h>
#include <torch/library.h>

#include "build_info.h"
#include "op_list.h"

TORCH_LIBRARY(fastpool, m) {
  fastpool::define_window_pool_ops(m);
  fastpool::define_adaptive_pool_ops(m);
  fastpool::define_fractional_pool_ops(m);
  fastpool::define_unpool_ops(m);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fastpool native extension: operators are registered as torch.ops.fastpool.*";
  m.def("build_info", &fastpool::build_info,
        "Dict with the CPU ISA paths compiled in, the one this machine would use, and the CUDA build.");
  m.def("cpu_unpool_dense_runs", &fastpool::cpu::unpool_dense_runs,
        "How many max_unpool calls (forward or backward) took the CPU dense path, for the tests.");
  m.def("cpu_unpool_has_dense_kernel", &fastpool::cpu::unpool_has_dense_kernel, pybind11::arg("backward"),
        pybind11::arg("channels_last"), pybind11::arg("word_bytes"),
        "Whether the active CPU ISA's build has that dense max_unpool kernel, for the tests.");
  fastpool::register_test_hooks(m);
  fastpool::register_eager_calls(m);
}
