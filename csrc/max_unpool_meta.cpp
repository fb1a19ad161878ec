// Meta (fake) kernels of max_unpool{2,3}d and their backward: shapes and
// layouts without data, for fake tensors, torch.compile and torch.export,
// through pool_shape's checks (the ones the CPU and CUDA ops make).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

template <int kDims>
struct MetaUnpool {
  using Sizes = c10::SymIntArrayRef;

  static at::Tensor forward(const at::Tensor& self, const at::Tensor& indices, c10::SymIntArrayRef output_size,
                            at::IntArrayRef stride, at::IntArrayRef padding) {
    const auto shape = unpool_output_shape<c10::SymInt>(kDims, self, indices, output_size, stride, padding);
    return empty_in_layout<c10::SymInt>(shape, self.options(), unpool_layout(self, kDims), kDims);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& indices) {
    check_unpool_backward<c10::SymInt>(kDims, grad_output, indices);
    return at::empty_symint(indices.sym_sizes(), grad_output.options());
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Meta, m) {
  impl_unpool_ops<MetaUnpool>(m);
}

}  // namespace fastpool
