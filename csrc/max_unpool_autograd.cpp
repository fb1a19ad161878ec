// Autograd of max_unpool{2,3}d in C++ (as csrc/autograd.cpp for pooling): a
// call that needs no gradient costs no Python; one that does saves only the
// indices, and backward runs the max_unpool{k}d_backward op, a gather:
// grad_input[n, c, p] = grad_output[n, c, indices[n, c, p]], PyTorch's formula
// (so with duplicate indices every input naming an element gets its gradient,
// as in PyTorch, though only the last one's value is in the output).
#include <torch/library.h>

#include "backward_node.h"
#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

template <int kDims>
struct UnpoolOps {
  using Forward = at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, at::IntArrayRef,
                             at::IntArrayRef);
  using Forward2d = at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef);
  using Backward = at::Tensor(const at::Tensor&, const at::Tensor&);
  static const UnpoolOps& get() {
    static const UnpoolOps ops;
    return ops;
  }
  at::Tensor forward(const at::Tensor& self, const at::Tensor& indices, c10::SymIntArrayRef output_size,
                     at::IntArrayRef stride, at::IntArrayRef padding) const {
    if constexpr (kDims == 2) return below_autograd(forward2d, self, indices, output_size);
    else return below_autograd(forward3d, self, indices, output_size, stride, padding);
  }
  c10::TypedOperatorHandle<Forward2d> forward2d = find_op<Forward2d>(unpool_name(2));
  c10::TypedOperatorHandle<Forward> forward3d = find_op<Forward>(unpool_name(3));
  c10::TypedOperatorHandle<Backward> backward = find_op<Backward>(unpool_name(kDims, "_backward"));
};

template <int kDims>
struct UnpoolBackward {
  static constexpr size_t kSaved = 1;  // indices
  static std::string name() { return "FastpoolMaxUnpool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<1>& saved, c10::SymIntArrayRef,
                             at::IntArrayRef) {
    check_no_forward_grad(grad_output, [] { return unpool_name(kDims, "_backward"); });
    return UnpoolOps<kDims>::get().backward.call(grad_output, saved[0]);
  }
};

template <int kDims>
at::Tensor unpool_autograd(const at::Tensor& self, const at::Tensor& indices, c10::SymIntArrayRef output_size,
                           at::IntArrayRef stride, at::IntArrayRef padding) {
  check_no_forward_grad(self, [] { return unpool_name(kDims); });
  at::Tensor output = UnpoolOps<kDims>::get().forward(self, indices, output_size, stride, padding);
  if (at::GradMode::is_enabled() && self.requires_grad())
    record_backward_node<UnpoolBackward<kDims>>(self, output, {indices}, {}, {});
  return output;
}

struct AutogradUnpool2d {
  static at::Tensor forward(const at::Tensor& self, const at::Tensor& indices, c10::SymIntArrayRef output_size) {
    return unpool_autograd<2>(self, indices, output_size, {}, {});
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Autograd, m) {
  m.impl(unpool_name(2).c_str(), &AutogradUnpool2d::forward);
  m.impl(unpool_name(3).c_str(), &unpool_autograd<3>);
}

}  // namespace fastpool
