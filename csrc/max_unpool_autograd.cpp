// Autograd of max_unpool{2,3}d in C++ (as csrc/autograd.cpp for pooling): a
// call that needs no gradient costs no Python; one that does saves only the
// indices, and backward runs the max_unpool{k}d_backward op, a gather:
// grad_input[n, c, p] = grad_output[n, c, indices[n, c, p]], PyTorch's formula
// (so with duplicate indices every input naming an element gets its gradient,
// as in PyTorch, though only the last one's value is in the output).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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
    if constexpr (kDims == 2) return forward2d.call(self, indices, output_size);
    else return forward3d.call(self, indices, output_size, stride, padding);
  }
  template <typename Signature>
  static c10::TypedOperatorHandle<Signature> find(const std::string& name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(("fastpool::" + name).c_str(), "").typed<Signature>();
  }
  c10::TypedOperatorHandle<Forward2d> forward2d = find<Forward2d>(unpool_name(2));
  c10::TypedOperatorHandle<Forward> forward3d = find<Forward>(unpool_name(3));
  c10::TypedOperatorHandle<Backward> backward = find<Backward>(unpool_name(kDims, "_backward"));
};

template <int kDims>
struct UnpoolFunction : torch::autograd::Function<UnpoolFunction<kDims>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& self, const at::Tensor& indices,
                            c10::SymIntArrayRef output_size, at::IntArrayRef stride, at::IntArrayRef padding) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({indices});
    return UnpoolOps<kDims>::get().forward(self, indices, output_size, stride, padding);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list grads(5);
    grads[0] = UnpoolOps<kDims>::get().backward.call(grad_outputs[0], ctx->get_saved_variables()[0]);
    return grads;
  }
};

template <int kDims>
at::Tensor unpool_autograd(const at::Tensor& self, const at::Tensor& indices, c10::SymIntArrayRef output_size,
                           at::IntArrayRef stride, at::IntArrayRef padding) {
  check_no_forward_grad(self, [] { return unpool_name(kDims); });
  if (at::GradMode::is_enabled() && self.requires_grad())
    return UnpoolFunction<kDims>::apply(self, indices, output_size, stride, padding);
  at::AutoDispatchBelowADInplaceOrView guard;
  return UnpoolOps<kDims>::get().forward(self, indices, output_size, stride, padding);
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
