// The fastpool operator library: every op's schema in one list (backends
// register implementations in cpu/, cuda/ and max_pool_meta.cpp), and the
// Python module's build information.
#include <torch/library.h>
#include <torch/extension.h>

#include "build_info.h"

TORCH_LIBRARY(fastpool, m) {
  // Same schemas as aten's max_pool2d family, so that argument handling
  // (int or list, stride=[] meaning kernel_size) behaves identically.
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  m.def(
      "max_pool2d_with_indices(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, "
      "int[2] dilation=1, bool ceil_mode=False) -> (Tensor, Tensor)",
      tags);
  // Inference path: writes no indices at all.
  m.def(
      "max_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, int[2] dilation=1, "
      "bool ceil_mode=False) -> Tensor",
      tags);
  m.def(
      "max_pool2d_with_indices_backward(Tensor grad_output, Tensor self, int[2] kernel_size, int[2] stride, "
      "int[2] padding, int[2] dilation, bool ceil_mode, Tensor indices) -> Tensor",
      tags);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fastpool native extension: operators are registered as torch.ops.fastpool.*";
  m.def("build_info", &fastpool::build_info,
        "Dict with the CPU ISA paths compiled in, the one this machine would use, and the CUDA build.");
  fastpool::register_test_hooks(m);
}
