// The backward node of every fastpool forward op (autograd.cpp,
// max_unpool_autograd.cpp), and what their autograd kernels share.
#pragma once
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/dynamo/compiled_autograd.h>

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace fastpool {

using torch::autograd::variable_list;

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(("fastpool::" + name).c_str(), "").typed<Signature>();
}

// Calls an op below the autograd keys: the backends' kernels (and functorch's
// outer levels, which see the op itself).
template <typename Signature, typename... Args>
auto below_autograd(const c10::TypedOperatorHandle<Signature>& op, const Args&... args) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(args...);
}

// The backward ops have autograd kernels of their own (double backward,
// double_backward.cpp). A backward that builds no graph (no create_graph)
// skips that key: one dispatch fewer per backward.
struct SkipAutogradUnlessBuildingGraph {
  std::optional<at::AutoDispatchBelowADInplaceOrView> guard;
  SkipAutogradUnlessBuildingGraph() {
    if (!at::GradMode::is_enabled()) guard.emplace();
  }
};

// ------------------------------------------------------ the backward nodes

// Every backward here is a Node written out, as torch's generated backward
// nodes are, not a torch::autograd::Function: a CppNode demangles its own type
// name on every backward call, keeps its state in a hash map of IValues
// (together as much as a small map's whole backward), and torch.func refuses
// it ("cannot use C++ torch::autograd::Function with functorch transforms").
// Compiled autograd sees these nodes as it sees torch's: their saved state
// collected for the cache key, their backward bound once as a functional over
// packed arguments.
//
// Spec names the node and runs the backward op on what the forward saved:
//   static constexpr size_t kSaved;   // saved tensors
//   static std::string name();
//   static at::Tensor backward(const at::Tensor& grad_output, const Saved<kSaved>& saved,
//                              c10::SymIntArrayRef sizes, at::IntArrayRef args);
template <size_t kSaved>
using Saved = std::array<at::Tensor, kSaved>;

template <typename Spec>
struct PoolBackwardNode final : torch::autograd::Node {
  static constexpr size_t kSaved = Spec::kSaved;
  std::array<torch::autograd::SavedVariable, kSaved> saved;
  std::vector<c10::SymInt> sizes;  // the input's sizes, where the backward op takes them
  std::vector<int64_t> args;       // the pooling arguments, packed by the forward

  std::string name() const override { return Spec::name(); }

  variable_list apply(variable_list&& grads) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return compute(grads, task_should_compute_output(0), unpack(), sizes, args);
  }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& variable : saved) variable.reset_data();
  }

  void compiled_args(torch::dynamo::autograd::CompiledNodeArgs& collected) const override {
    for (const auto& variable : saved) collected.collect(variable, /*is_output=*/false);
    collected.collect(sizes);
    collected.collect(args);
  }

  variable_list apply_with_saved(const variable_list& grads,
                                 torch::dynamo::autograd::SwapSavedVariables& swap) override {
    using torch::dynamo::autograd::IValuePacker;
    for (auto& variable : saved) swap.before(variable);
    swap.before(sizes);
    swap.before(args);
    const auto& compiler = torch::dynamo::autograd::getPyCompilerInterface();
    static bool bound = false;  // compiled autograd's op namespace lives as long as the process
    if (!bound) {
      bound = true;
      std::vector<at::TypePtr> types{IValuePacker<bool>::packed_type()};
      for (size_t i = 0; i < kSaved; ++i) types.push_back(IValuePacker<at::Tensor>::packed_type());
      types.push_back(IValuePacker<std::vector<c10::SymInt>>::packed_type());
      types.push_back(IValuePacker<std::vector<int64_t>>::packed_type());
      compiler->bind_function(swap.get_py_compiler(), name(), &compute_packed, std::move(types));
    }
    torch::dynamo::autograd::PackedArgs packed;
    packed.pack(task_should_compute_output(0));
    for (const at::Tensor& tensor : unpack()) packed.pack(tensor);
    packed.pack(sizes);
    packed.pack(args);
    variable_list result = compiler->call_function(
        swap.get_py_compiler(), "apply_functional", name(), grads, packed.vec(),
        IValuePacker<std::vector<std::optional<torch::autograd::InputMetadata>>>::pack(
            torch::dynamo::autograd::get_input_metadata(next_edges())));
    for (auto& variable : saved) swap.after(variable);
    swap.after(sizes);
    swap.after(args);
    return result;
  }

 private:
  Saved<kSaved> unpack() const {
    Saved<kSaved> tensors;
    for (size_t i = 0; i < kSaved; ++i) tensors[i] = saved[i].unpack();
    return tensors;
  }

  static variable_list compute(const variable_list& grads, bool wanted, const Saved<kSaved>& tensors,
                               c10::SymIntArrayRef input_sizes, at::IntArrayRef pool_args) {
    variable_list grad_input(1);
    if (wanted && grads[0].defined()) {
      const SkipAutogradUnlessBuildingGraph no_graph;
      grad_input[0] = Spec::backward(grads[0], tensors, input_sizes, pool_args);
    }
    return grad_input;
  }

  static variable_list compute_packed(const variable_list& grads, const std::vector<c10::IValue>& values) {
    torch::dynamo::autograd::PackedArgs packed(values);
    const bool wanted = packed.unpack<bool>();
    Saved<kSaved> tensors;
    for (auto& tensor : tensors) tensor = packed.unpack<at::Tensor>();
    const std::vector<c10::SymInt> input_sizes = packed.unpack<std::vector<c10::SymInt>>();
    const std::vector<int64_t> pool_args = packed.unpack<std::vector<int64_t>>();
    return compute(grads, wanted, tensors, input_sizes, pool_args);
  }
};

// torch 2.13 made autograd nodes intrusive_ptr targets; before, they were
// held by std::shared_ptr (torch 2.11 is what the GPU machines have).
template <typename NodeT>
auto make_node() {
  if constexpr (std::is_base_of_v<c10::intrusive_ptr_target, NodeT>)
    return c10::make_intrusive<NodeT>();
  else
    return std::make_shared<NodeT>();
}

// Makes `output` the differentiable result of `input` through a Spec node
// that keeps `tensors` (the tensors the backward op reads), `sizes` and `args`.
template <typename Spec>
void record_backward_node(const at::Tensor& input, const at::Tensor& output, const Saved<Spec::kSaved>& tensors,
                          std::vector<c10::SymInt> sizes, std::vector<int64_t> args) {
  auto node = make_node<PoolBackwardNode<Spec>>();
  node->set_next_edges(torch::autograd::collect_next_edges(input));
  for (size_t i = 0; i < Spec::kSaved; ++i)
    node->saved[i] = torch::autograd::SavedVariable(tensors[i], /*is_output=*/false);
  node->sizes = std::move(sizes);
  node->args = std::move(args);
  torch::autograd::set_history(output, node);
}

}  // namespace fastpool
