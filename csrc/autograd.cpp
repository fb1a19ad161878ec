// Autograd for the forward ops (max_pool{1,2,3}d, adaptive_max_pool{1,2,3}d,
// with and without indices, fractional_max_pool{2,3}d), in C++: registered on the
// Autograd key from the op list, so a call that needs no gradient costs no
// Python, and a call that does saves the least that backward needs.
//
// Training path: the forward runs the with_offsets op, which writes each
// output's argmax as its tap within the window (uint8 for windows of up to 255
// taps); backward runs offsets_backward on those taps and the input's sizes.
// Neither the input nor int64 indices stay alive between forward and backward.
// Where a backend has no with_offsets kernel yet (CUDA), the forward saves the
// input and backward recomputes the argmax.
//
// The ops with indices save the input and the indices the caller asked for
// anyway. Double backward goes through the backward ops' own formulas
// (fastpool/_ops.py).
#include <ATen/core/dispatch/Dispatcher.h>
#include <algorithm>
#include <optional>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/dynamo/compiled_autograd.h>
#include <torch/library.h>

#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(("fastpool::" + name).c_str(), "").typed<Signature>();
}

using Ints = at::IntArrayRef;

// Backends with a with_offsets kernel (and the fake tensors of compile/export).
bool has_training_kernels(const at::Tensor& input) {
  return input.is_cpu() || input.is_meta();
}

// The backward ops' double-backward formulas are Python (fastpool/_ops.py),
// on their Autograd key. A backward that builds no graph (no create_graph)
// skips that key: its Python kernel costs more than a small map's backward.
struct SkipAutogradUnlessBuildingGraph {
  std::optional<at::AutoDispatchBelowADInplaceOrView> guard;
  SkipAutogradUnlessBuildingGraph() {
    if (!at::GradMode::is_enabled()) guard.emplace();
  }
};

// Returns {grad_input, no gradient for each other argument}.
variable_list input_gradient(at::Tensor grad_input, size_t num_args) {
  variable_list grads(num_args);
  grads[0] = std::move(grad_input);
  return grads;
}

// ------------------------------------------------- the training path's node

// The training path's backward is a Node written out, as torch's generated
// backward nodes are, not a torch::autograd::Function: a CppNode demangles
// its own type name on every backward call and keeps its state in a hash map
// of IValues, which together cost as much as a small map's whole backward.
// Compiled autograd sees this node as it sees torch's: its saved state
// collected for the cache key, its backward bound once as a functional over
// packed arguments.
//
// Spec names the node and runs the backward op:
//   static std::string name();
//   static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& offsets,
//                              c10::SymIntArrayRef input_size, Ints args);
template <typename Spec>
struct OffsetsBackwardNode final : torch::autograd::Node {
  torch::autograd::SavedVariable offsets;
  std::vector<c10::SymInt> input_size;
  std::vector<int64_t> args;  // the pooling arguments, packed by the forward

  std::string name() const override { return Spec::name(); }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return compute(grads, task_should_compute_output(0), offsets.unpack(), input_size, args);
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    offsets.reset_data();
  }

  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& saved) const override {
    saved.collect(offsets, /*is_output=*/false);
    saved.collect(input_size);
    saved.collect(args);
  }

  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& saved) override {
    using torch::dynamo::autograd::IValuePacker;
    saved.before(offsets);
    saved.before(input_size);
    saved.before(args);
    const auto& compiler = torch::dynamo::autograd::getPyCompilerInterface();
    static bool bound = false;  // compiled autograd's op namespace lives as long as the process
    if (!bound) {
      bound = true;
      compiler->bind_function(saved.get_py_compiler(), name(), &compute_packed,
                              {IValuePacker<bool>::packed_type(), IValuePacker<at::Tensor>::packed_type(),
                               IValuePacker<std::vector<c10::SymInt>>::packed_type(),
                               IValuePacker<std::vector<int64_t>>::packed_type()});
    }
    torch::dynamo::autograd::PackedArgs packed;
    packed.pack(task_should_compute_output(0));
    packed.pack(offsets.unpack());
    packed.pack(input_size);
    packed.pack(args);
    variable_list result = compiler->call_function(
        saved.get_py_compiler(), "apply_functional", name(), grads, packed.vec(),
        IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
            torch::dynamo::autograd::get_input_metadata(next_edges())));
    saved.after(offsets);
    saved.after(input_size);
    saved.after(args);
    return result;
  }

 private:
  static variable_list compute(const variable_list& grads, bool wanted, const at::Tensor& offsets,
                               c10::SymIntArrayRef input_size, Ints args) {
    variable_list grad_input(1);
    if (wanted && grads[0].defined()) {
      const SkipAutogradUnlessBuildingGraph no_graph;
      grad_input[0] = Spec::backward(grads[0], offsets, input_size, args);
    }
    return grad_input;
  }

  static variable_list compute_packed(const variable_list& grads, const std::vector<c10::IValue>& values) {
    torch::dynamo::autograd::PackedArgs packed(values);
    const bool wanted = packed.unpack<bool>();
    const at::Tensor saved_offsets = packed.unpack<at::Tensor>();
    const std::vector<c10::SymInt> sizes = packed.unpack<std::vector<c10::SymInt>>();
    const std::vector<int64_t> pool_args = packed.unpack<std::vector<int64_t>>();
    return compute(grads, wanted, saved_offsets, sizes, pool_args);
  }
};

// The forward of the training path: output and offsets from the
// with_offsets op, then the node that owns the offsets.
template <typename Spec>
at::Tensor record_training_node(const at::Tensor& input, std::tuple<at::Tensor, at::Tensor> output_and_offsets,
                                std::vector<int64_t> args) {
  auto& [output, offsets] = output_and_offsets;
  TORCH_CHECK(!torch::autograd::isFwGradDefined(input), Spec::name(),
              ": forward-mode AD is not implemented for fastpool's pooling");
  auto node = c10::make_intrusive<OffsetsBackwardNode<Spec>>();
  node->set_next_edges(torch::autograd::collect_next_edges(input));
  node->offsets = torch::autograd::SavedVariable(offsets, /*is_output=*/false);
  node->input_size = input.sym_sizes().vec();
  node->args = std::move(args);
  torch::autograd::set_history(output, node);
  return output;
}

// ----------------------------------------------------------- window pooling

template <int kDims>
struct WindowPoolOps {
  using Forward = at::Tensor(const at::Tensor&, Ints, Ints, Ints, Ints, bool);
  using ForwardPair = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, Ints, Ints, Ints, Ints, bool);
  using OffsetsBackward = at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, Ints, Ints, Ints,
                                     Ints, bool, bool);
  using IndicesBackward = at::Tensor(const at::Tensor&, const at::Tensor&, Ints, Ints, Ints, Ints, bool,
                                     const at::Tensor&);
  static const WindowPoolOps& get() {
    static const WindowPoolOps ops;
    return ops;
  }
  c10::TypedOperatorHandle<Forward> values = find_op<Forward>(window_pool_name(kDims));
  c10::TypedOperatorHandle<ForwardPair> with_offsets = find_op<ForwardPair>(window_pool_name(kDims, "_with_offsets"));
  c10::TypedOperatorHandle<ForwardPair> with_indices = find_op<ForwardPair>(window_pool_name(kDims, "_with_indices"));
  c10::TypedOperatorHandle<OffsetsBackward> offsets_backward =
      find_op<OffsetsBackward>(window_pool_name(kDims, "_offsets_backward"));
  c10::TypedOperatorHandle<IndicesBackward> indices_backward =
      find_op<IndicesBackward>(window_pool_name(kDims, "_with_indices_backward"));
};

// The pooling arguments, kept for backward as one int list (each saved_data
// entry of a Function costs a hash-map insert and an IValue): kernel_size,
// stride, padding and dilation expanded to kDims entries each (stride [] is
// kernel_size, as the ops read it), then ceil_mode and the layout flag.
// Packed after the forward op has validated them.
template <int kDims>
std::vector<int64_t> pack_window_args(Ints kernel_size, Ints stride, Ints padding, Ints dilation, bool ceil_mode,
                                      bool channels_last = false) {
  if (stride.empty()) stride = kernel_size;
  std::vector<int64_t> packed;
  packed.reserve(4 * kDims + 2);
  for (Ints arg : {kernel_size, stride, padding, dilation})
    for (int i = 0; i < kDims; ++i) packed.push_back(arg.size() == 1 ? arg[0] : arg[i]);
  packed.push_back(ceil_mode);
  packed.push_back(channels_last);
  return packed;
}

template <int kDims>
void save_window_args(AutogradContext* ctx, Ints kernel_size, Ints stride, Ints padding, Ints dilation,
                      bool ceil_mode) {
  ctx->saved_data["args"] = pack_window_args<kDims>(kernel_size, stride, padding, dilation, ceil_mode);
}

// A view of packed window arguments.
template <int kDims>
struct WindowArgs {
  Ints packed;
  Ints kernel_size() const { return packed.slice(0, kDims); }
  Ints stride() const { return packed.slice(kDims, kDims); }
  Ints padding() const { return packed.slice(2 * kDims, kDims); }
  Ints dilation() const { return packed.slice(3 * kDims, kDims); }
  bool ceil_mode() const { return packed[4 * kDims] != 0; }
  bool channels_last() const { return packed[4 * kDims + 1] != 0; }
};

template <int kDims>
struct WindowPoolTraining {
  static std::string name() { return "FastpoolMaxPool" + std::to_string(kDims) + "DBackward"; }

  static at::Tensor forward(const at::Tensor& input, Ints kernel_size, Ints stride, Ints padding, Ints dilation,
                            bool ceil_mode) {
    std::tuple<at::Tensor, at::Tensor> output_and_offsets;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      output_and_offsets =
          WindowPoolOps<kDims>::get().with_offsets.call(input, kernel_size, stride, padding, dilation, ceil_mode);
    }
    return record_training_node<WindowPoolTraining>(
        input, std::move(output_and_offsets),
        pack_window_args<kDims>(kernel_size, stride, padding, dilation, ceil_mode,
                                pool_layout(input, kDims) == PoolLayout::channels_last));
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& offsets, c10::SymIntArrayRef input_size,
                             Ints packed) {
    const WindowArgs<kDims> a{packed};
    return WindowPoolOps<kDims>::get().offsets_backward.call(grad_output, offsets, input_size, a.kernel_size(),
                                                             a.stride(), a.padding(), a.dilation(), a.ceil_mode(),
                                                             a.channels_last());
  }
};

template <int kDims>
struct WindowPoolRecompute : torch::autograd::Function<WindowPoolRecompute<kDims>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, Ints kernel_size, Ints stride,
                            Ints padding, Ints dilation, bool ceil_mode) {
    at::AutoDispatchBelowADInplaceOrView guard;
    at::Tensor output =
        WindowPoolOps<kDims>::get().values.call(input, kernel_size, stride, padding, dilation, ceil_mode);
    ctx->save_for_backward({input});
    save_window_args<kDims>(ctx, kernel_size, stride, padding, dilation, ceil_mode);
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const SkipAutogradUnlessBuildingGraph no_graph;
    const std::vector<int64_t> packed = ctx->saved_data["args"].toIntVector();
    const WindowArgs<kDims> a{packed};
    const at::Tensor input = ctx->get_saved_variables()[0];
    const auto& ops = WindowPoolOps<kDims>::get();
    at::Tensor indices;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      indices = std::get<1>(
          ops.with_indices.call(input, a.kernel_size(), a.stride(), a.padding(), a.dilation(), a.ceil_mode()));
    }
    return input_gradient(ops.indices_backward.call(grad_outputs[0], input, a.kernel_size(), a.stride(), a.padding(),
                                                    a.dilation(), a.ceil_mode(), indices),
                          6);
  }
};

// The op with indices: saves the input (the backward op reads its shape and
// layout) and the indices, which the caller keeps anyway. The indices, being
// integers, get no gradient without mark_non_differentiable (which compiled
// autograd does not take for C++ functions).
template <int kDims>
struct WindowPoolWithIndices : torch::autograd::Function<WindowPoolWithIndices<kDims>> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, Ints kernel_size, Ints stride,
                               Ints padding, Ints dilation, bool ceil_mode) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [output, indices] =
        WindowPoolOps<kDims>::get().with_indices.call(input, kernel_size, stride, padding, dilation, ceil_mode);
    ctx->save_for_backward({input, indices});
    save_window_args<kDims>(ctx, kernel_size, stride, padding, dilation, ceil_mode);
    return {output, indices};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const SkipAutogradUnlessBuildingGraph no_graph;
    const std::vector<int64_t> packed = ctx->saved_data["args"].toIntVector();
    const WindowArgs<kDims> a{packed};
    const variable_list saved = ctx->get_saved_variables();
    return input_gradient(WindowPoolOps<kDims>::get().indices_backward.call(
                              grad_outputs[0], saved[0], a.kernel_size(), a.stride(), a.padding(), a.dilation(),
                              a.ceil_mode(), saved[1]),
                          6);
  }
};

template <int kDims>
std::tuple<at::Tensor, at::Tensor> window_pool_with_indices_autograd(const at::Tensor& input, Ints kernel_size,
                                                                     Ints stride, Ints padding, Ints dilation,
                                                                     bool ceil_mode) {
  check_no_forward_grad(input, [] { return window_pool_name(kDims, "_with_indices"); });
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    variable_list out = WindowPoolWithIndices<kDims>::apply(input, kernel_size, stride, padding, dilation, ceil_mode);
    return {std::move(out[0]), std::move(out[1])};
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return WindowPoolOps<kDims>::get().with_indices.call(input, kernel_size, stride, padding, dilation, ceil_mode);
}

template <int kDims>
at::Tensor window_pool_autograd(const at::Tensor& input, Ints kernel_size, Ints stride, Ints padding, Ints dilation,
                                bool ceil_mode) {
  check_no_forward_grad(input, [] { return window_pool_name(kDims); });
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    if (has_training_kernels(input))
      return WindowPoolTraining<kDims>::forward(input, kernel_size, stride, padding, dilation, ceil_mode);
    return WindowPoolRecompute<kDims>::apply(input, kernel_size, stride, padding, dilation, ceil_mode);
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return WindowPoolOps<kDims>::get().values.call(input, kernel_size, stride, padding, dilation, ceil_mode);
}

// --------------------------------------------------------- adaptive pooling

template <int kDims>
struct AdaptivePoolOps {
  using Forward = at::Tensor(const at::Tensor&, Ints);
  using ForwardPair = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, Ints);
  using OffsetsBackward = at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, bool);
  using IndicesBackward = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&);
  static const AdaptivePoolOps& get() {
    static const AdaptivePoolOps ops;
    return ops;
  }
  c10::TypedOperatorHandle<Forward> values = find_op<Forward>(adaptive_pool_name(kDims));
  c10::TypedOperatorHandle<ForwardPair> with_offsets =
      find_op<ForwardPair>(adaptive_pool_name(kDims, "_with_offsets"));
  c10::TypedOperatorHandle<ForwardPair> with_indices =
      find_op<ForwardPair>(adaptive_pool_name(kDims, "_with_indices"));
  c10::TypedOperatorHandle<OffsetsBackward> offsets_backward =
      find_op<OffsetsBackward>(adaptive_pool_name(kDims, "_offsets_backward"));
  c10::TypedOperatorHandle<IndicesBackward> indices_backward =
      find_op<IndicesBackward>(adaptive_pool_name(kDims, "_backward"));
};

// An output size with a 0 has no output, so no gradient (the backward op,
// like torch's, refuses an empty grad_output).
bool has_empty_output(Ints output_size) {
  return std::find(output_size.begin(), output_size.end(), 0) != output_size.end();
}

template <int kDims>
struct AdaptivePoolTraining {
  static std::string name() { return "FastpoolAdaptiveMaxPool" + std::to_string(kDims) + "DBackward"; }

  static at::Tensor forward(const at::Tensor& input, Ints output_size) {
    std::tuple<at::Tensor, at::Tensor> output_and_offsets;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      output_and_offsets = AdaptivePoolOps<kDims>::get().with_offsets.call(input, output_size);
    }
    const bool channels_last = pool_layout(input, kDims, WindowKind::adaptive) == PoolLayout::channels_last;
    return record_training_node<AdaptivePoolTraining>(input, std::move(output_and_offsets), {channels_last});
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& offsets, c10::SymIntArrayRef input_size,
                             Ints channels_last) {
    return AdaptivePoolOps<kDims>::get().offsets_backward.call(grad_output, offsets, input_size,
                                                               channels_last[0] != 0);
  }
};

template <int kDims>
struct AdaptivePoolRecompute : torch::autograd::Function<AdaptivePoolRecompute<kDims>> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, Ints output_size) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({input});
    ctx->saved_data["output_size"] = output_size;
    return AdaptivePoolOps<kDims>::get().values.call(input, output_size);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const SkipAutogradUnlessBuildingGraph no_graph;
    const at::Tensor input = ctx->get_saved_variables()[0];
    const auto output_size = ctx->saved_data["output_size"].toIntVector();
    if (has_empty_output(output_size)) return input_gradient(at::zeros_like(input), 2);
    const auto& ops = AdaptivePoolOps<kDims>::get();
    at::Tensor indices;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      indices = std::get<1>(ops.with_indices.call(input, output_size));
    }
    return input_gradient(ops.indices_backward.call(grad_outputs[0], input, indices), 2);
  }
};

template <int kDims>
struct AdaptivePoolWithIndices : torch::autograd::Function<AdaptivePoolWithIndices<kDims>> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, Ints output_size) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [output, indices] = AdaptivePoolOps<kDims>::get().with_indices.call(input, output_size);
    ctx->save_for_backward({input, indices});
    ctx->saved_data["empty_output"] = has_empty_output(output_size);
    return {output, indices};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const SkipAutogradUnlessBuildingGraph no_graph;
    const variable_list saved = ctx->get_saved_variables();
    if (ctx->saved_data["empty_output"].toBool()) return input_gradient(at::zeros_like(saved[0]), 2);
    return input_gradient(AdaptivePoolOps<kDims>::get().indices_backward.call(grad_outputs[0], saved[0], saved[1]), 2);
  }
};

template <int kDims>
std::tuple<at::Tensor, at::Tensor> adaptive_pool_with_indices_autograd(const at::Tensor& input, Ints output_size) {
  check_no_forward_grad(input, [] { return adaptive_pool_name(kDims, "_with_indices"); });
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    variable_list out = AdaptivePoolWithIndices<kDims>::apply(input, output_size);
    return {std::move(out[0]), std::move(out[1])};
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return AdaptivePoolOps<kDims>::get().with_indices.call(input, output_size);
}

template <int kDims>
at::Tensor adaptive_pool_autograd(const at::Tensor& input, Ints output_size) {
  check_no_forward_grad(input, [] { return adaptive_pool_name(kDims); });
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    if (has_training_kernels(input)) return AdaptivePoolTraining<kDims>::forward(input, output_size);
    return AdaptivePoolRecompute<kDims>::apply(input, output_size);
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return AdaptivePoolOps<kDims>::get().values.call(input, output_size);
}

// ------------------------------------------------------- fractional pooling

// fractional_max_pool{2,3}d (torch's formula): the op returns the indices
// anyway (aten's schema), so backward keeps them and the input (for its shape
// and dtype). In C++ like the ops above: a Python autograd kernel cost more per
// training step than pooling a small map.
template <int kDims>
struct FractionalPoolOps {
  using Forward = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, Ints, Ints, const at::Tensor&);
  using Backward = at::Tensor(const at::Tensor&, const at::Tensor&, Ints, Ints, const at::Tensor&);
  static const FractionalPoolOps& get() {
    static const FractionalPoolOps ops;
    return ops;
  }
  c10::TypedOperatorHandle<Forward> forward = find_op<Forward>(fractional_pool_name(kDims));
  c10::TypedOperatorHandle<Backward> backward = find_op<Backward>(fractional_pool_name(kDims, "_backward"));
};

template <int kDims>
struct FractionalPool : torch::autograd::Function<FractionalPool<kDims>> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, Ints kernel_size, Ints output_size,
                               const at::Tensor& random_samples) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [output, indices] = FractionalPoolOps<kDims>::get().forward.call(input, kernel_size, output_size,
                                                                          random_samples);
    ctx->save_for_backward({input, indices});
    std::vector<int64_t> sizes(kernel_size.begin(), kernel_size.end());
    sizes.insert(sizes.end(), output_size.begin(), output_size.end());
    ctx->saved_data["sizes"] = std::move(sizes);
    return {output, indices};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    if (!grad_outputs[0].defined()) return variable_list(4);
    const SkipAutogradUnlessBuildingGraph no_graph;
    const std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    const variable_list saved = ctx->get_saved_variables();
    return input_gradient(FractionalPoolOps<kDims>::get().backward.call(grad_outputs[0], saved[0],
                                                                         Ints(sizes).slice(0, kDims),
                                                                         Ints(sizes).slice(kDims, kDims), saved[1]),
                          4);
  }
};

template <int kDims>
std::tuple<at::Tensor, at::Tensor> fractional_pool_autograd(const at::Tensor& input, Ints kernel_size,
                                                            Ints output_size, const at::Tensor& random_samples) {
  check_no_forward_grad(input, [] { return fractional_pool_name(kDims); });
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    variable_list out = FractionalPool<kDims>::apply(input, kernel_size, output_size, random_samples);
    return {std::move(out[0]), std::move(out[1])};
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return FractionalPoolOps<kDims>::get().forward.call(input, kernel_size, output_size, random_samples);
}

template <int kDims>
void register_autograd(torch::Library& m) {
  m.impl(window_pool_name(kDims).c_str(), &window_pool_autograd<kDims>);
  m.impl(window_pool_name(kDims, "_with_indices").c_str(), &window_pool_with_indices_autograd<kDims>);
  m.impl(adaptive_pool_name(kDims).c_str(), &adaptive_pool_autograd<kDims>);
  m.impl(adaptive_pool_name(kDims, "_with_indices").c_str(), &adaptive_pool_with_indices_autograd<kDims>);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Autograd, m) {
  register_autograd<1>(m);
  register_autograd<2>(m);
  register_autograd<3>(m);
  m.impl(fractional_pool_name(2).c_str(), &fractional_pool_autograd<2>);
  m.impl(fractional_pool_name(3).c_str(), &fractional_pool_autograd<3>);
}

}  // namespace fastpool
