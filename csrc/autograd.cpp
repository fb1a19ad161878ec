// Autograd for the forward ops (max_pool{1,2,3}d, adaptive_max_pool{1,2,3}d,
// with and without indices, fractional_max_pool{2,3}d and its values op), in
// C++: registered on the Autograd key from the op list, so a call that needs no gradient costs no
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
// anyway. Each backward is a node of backward_node.h. Double backward goes
// through the backward ops' own autograd (double_backward.cpp).
#include <ATen/TensorSubclassLikeUtils.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <algorithm>

#include "backward_node.h"
#include "cpu/layout_copy.h"
#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

using Ints = at::IntArrayRef;

// Backends with a with_offsets kernel (and the fake tensors of compile/export).
bool has_training_kernels(const at::Tensor& input) {
  return input.is_cpu() || input.is_meta();
}

// Fractional pooling trains on taps on CUDA too: its indices backward runs a
// plane per thread (it cannot know the windows), the taps' backward is a
// gather over every input (fractional_launcher.h).
bool has_fractional_training_kernels(const at::Tensor& input) {
  return has_training_kernels(input) || input.is_cuda();
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

// The training path (max_pool{k}d without indices on backends with a
// with_offsets kernel): saves the offsets and the input's sizes.
template <int kDims>
struct WindowPoolTraining {
  static constexpr size_t kSaved = 1;  // offsets
  static std::string name() { return "FastpoolMaxPool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<1>& saved, c10::SymIntArrayRef input_size,
                             Ints packed) {
    check_no_forward_grad(grad_output, [] { return window_pool_name(kDims, "_offsets_backward"); });
    const WindowArgs<kDims> a{packed};
    return WindowPoolOps<kDims>::get().offsets_backward.call(grad_output, saved[0], input_size, a.kernel_size(),
                                                             a.stride(), a.padding(), a.dilation(), a.ceil_mode(),
                                                             a.channels_last());
  }
};

// max_pool{k}d without indices elsewhere (CUDA): saves the input, and
// backward recomputes the argmax.
template <int kDims>
struct WindowPoolRecompute {
  static constexpr size_t kSaved = 1;  // input
  static std::string name() { return "FastpoolMaxPool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<1>& saved, c10::SymIntArrayRef,
                             Ints packed) {
    check_no_forward_grad(grad_output, [] { return window_pool_name(kDims, "_with_indices_backward"); });
    const WindowArgs<kDims> a{packed};
    const auto& ops = WindowPoolOps<kDims>::get();
    const at::Tensor indices = std::get<1>(below_autograd(ops.with_indices, saved[0], a.kernel_size(), a.stride(),
                                                          a.padding(), a.dilation(), a.ceil_mode()));
    return ops.indices_backward.call(grad_output, saved[0], a.kernel_size(), a.stride(), a.padding(),
                                     a.dilation(), a.ceil_mode(), indices);
  }
};

// The op with indices: saves the input (the backward op reads its shape and
// layout) and the indices, which the caller keeps anyway. The indices are
// integers: not differentiable, they get no history.
template <int kDims>
struct WindowPoolWithIndices {
  static constexpr size_t kSaved = 2;  // input, indices
  static std::string name() { return "FastpoolMaxPool" + std::to_string(kDims) + "DWithIndicesBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<2>& saved, c10::SymIntArrayRef,
                             Ints packed) {
    check_no_forward_grad(grad_output, [] { return window_pool_name(kDims, "_with_indices_backward"); });
    const WindowArgs<kDims> a{packed};
    return WindowPoolOps<kDims>::get().indices_backward.call(grad_output, saved[0], a.kernel_size(),
                                                             a.stride(), a.padding(), a.dilation(), a.ceil_mode(),
                                                             saved[1]);
  }
};

template <int kDims>
std::tuple<at::Tensor, at::Tensor> window_pool_with_indices_autograd(const at::Tensor& input, Ints kernel_size,
                                                                     Ints stride, Ints padding, Ints dilation,
                                                                     bool ceil_mode) {
  check_no_forward_grad(input, [] { return window_pool_name(kDims, "_with_indices"); });
  auto result = below_autograd(WindowPoolOps<kDims>::get().with_indices, input, kernel_size, stride, padding,
                               dilation, ceil_mode);
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    const auto& [output, indices] = result;
    record_backward_node<WindowPoolWithIndices<kDims>>(
        input, output, {input, indices}, {},
        pack_window_args<kDims>(kernel_size, stride, padding, dilation, ceil_mode));
  }
  return result;
}

template <int kDims>
at::Tensor window_pool_autograd(const at::Tensor& input, Ints kernel_size, Ints stride, Ints padding, Ints dilation,
                                bool ceil_mode) {
  check_no_forward_grad(input, [] { return window_pool_name(kDims); });
  const auto& ops = WindowPoolOps<kDims>::get();
  if (!(at::GradMode::is_enabled() && input.requires_grad()))
    return below_autograd(ops.values, input, kernel_size, stride, padding, dilation, ceil_mode);
  if (has_training_kernels(input)) {
    auto [output, offsets] = below_autograd(ops.with_offsets, input, kernel_size, stride, padding, dilation, ceil_mode);
    const bool channels_last = pool_layout(input, kDims) == PoolLayout::channels_last;
    record_backward_node<WindowPoolTraining<kDims>>(
        input, output, {offsets}, input.sym_sizes().vec(),
        pack_window_args<kDims>(kernel_size, stride, padding, dilation, ceil_mode, channels_last));
    return output;
  }
  at::Tensor output = below_autograd(ops.values, input, kernel_size, stride, padding, dilation, ceil_mode);
  record_backward_node<WindowPoolRecompute<kDims>>(input, output, {input}, {},
                                                   pack_window_args<kDims>(kernel_size, stride, padding, dilation,
                                                                           ceil_mode));
  return output;
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
  static constexpr size_t kSaved = 1;  // offsets; args: {channels_last}
  static std::string name() { return "FastpoolAdaptiveMaxPool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<1>& saved, c10::SymIntArrayRef input_size,
                             Ints channels_last) {
    check_no_forward_grad(grad_output, [] { return adaptive_pool_name(kDims, "_offsets_backward"); });
    return AdaptivePoolOps<kDims>::get().offsets_backward.call(grad_output, saved[0], input_size,
                                                               channels_last[0] != 0);
  }
};

template <int kDims>
struct AdaptivePoolRecompute {
  static constexpr size_t kSaved = 1;  // input; args: output_size
  static std::string name() { return "FastpoolAdaptiveMaxPool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<1>& saved, c10::SymIntArrayRef,
                             Ints output_size) {
    check_no_forward_grad(grad_output, [] { return adaptive_pool_name(kDims, "_backward"); });
    if (has_empty_output(output_size)) return at::zeros_like(saved[0]);
    const auto& ops = AdaptivePoolOps<kDims>::get();
    const at::Tensor indices = std::get<1>(below_autograd(ops.with_indices, saved[0], output_size));
    return ops.indices_backward.call(grad_output, saved[0], indices);
  }
};

template <int kDims>
struct AdaptivePoolWithIndices {
  static constexpr size_t kSaved = 2;  // input, indices; args: {empty output}
  static std::string name() { return "FastpoolAdaptiveMaxPool" + std::to_string(kDims) + "DWithIndicesBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<2>& saved, c10::SymIntArrayRef,
                             Ints empty_output) {
    check_no_forward_grad(grad_output, [] { return adaptive_pool_name(kDims, "_backward"); });
    if (empty_output[0]) return at::zeros_like(saved[0]);
    return AdaptivePoolOps<kDims>::get().indices_backward.call(grad_output, saved[0], saved[1]);
  }
};

template <int kDims>
std::tuple<at::Tensor, at::Tensor> adaptive_pool_with_indices_autograd(const at::Tensor& input, Ints output_size) {
  check_no_forward_grad(input, [] { return adaptive_pool_name(kDims, "_with_indices"); });
  auto result = below_autograd(AdaptivePoolOps<kDims>::get().with_indices, input, output_size);
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    const auto& [output, indices] = result;
    record_backward_node<AdaptivePoolWithIndices<kDims>>(input, output, {input, indices}, {},
                                                         {has_empty_output(output_size)});
  }
  return result;
}

template <int kDims>
at::Tensor adaptive_pool_autograd(const at::Tensor& input, Ints output_size) {
  check_no_forward_grad(input, [] { return adaptive_pool_name(kDims); });
  const auto& ops = AdaptivePoolOps<kDims>::get();
  if (!(at::GradMode::is_enabled() && input.requires_grad())) return below_autograd(ops.values, input, output_size);
  if (has_training_kernels(input)) {
    auto [output, offsets] = below_autograd(ops.with_offsets, input, output_size);
    const bool channels_last = pool_layout(input, kDims, WindowKind::adaptive) == PoolLayout::channels_last;
    record_backward_node<AdaptivePoolTraining<kDims>>(input, output, {offsets}, input.sym_sizes().vec(),
                                                      {channels_last});
    return output;
  }
  at::Tensor output = below_autograd(ops.values, input, output_size);
  record_backward_node<AdaptivePoolRecompute<kDims>>(input, output, {input}, {}, output_size.vec());
  return output;
}

// ------------------------------------------------------- fractional pooling

// fractional_max_pool{2,3}d (torch's formula): the op returns the indices
// anyway (aten's schema), so backward keeps them and the input (for its shape
// and dtype).
template <int kDims>
struct FractionalPoolOps {
  using Forward = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, Ints, Ints, const at::Tensor&);
  using Backward = at::Tensor(const at::Tensor&, const at::Tensor&, Ints, Ints, const at::Tensor&);
  static const FractionalPoolOps& get() {
    static const FractionalPoolOps ops;
    return ops;
  }
  using Values = at::Tensor(const at::Tensor&, Ints, Ints, const at::Tensor&);
  using OffsetsBackward =
      at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, Ints, Ints, const at::Tensor&, bool);
  c10::TypedOperatorHandle<Forward> forward = find_op<Forward>(fractional_pool_name(kDims));
  c10::TypedOperatorHandle<Forward> with_offsets = find_op<Forward>(fractional_pool_name(kDims, "_with_offsets"));
  c10::TypedOperatorHandle<OffsetsBackward> offsets_backward =
      find_op<OffsetsBackward>(fractional_pool_name(kDims, "_offsets_backward"));
  c10::TypedOperatorHandle<Values> values = find_op<Values>(fractional_pool_name(kDims, "_values"));
  c10::TypedOperatorHandle<Backward> backward = find_op<Backward>(fractional_pool_name(kDims, "_backward"));
};

// The fractional backward op with indices returns a contiguous gradient
// whatever the input's layout, as torch's does. A channels-last leaf's x.grad
// must be channels-last, and AccumulateGrad makes it so with torch's copy: 6
// ms of a 9.5 ms training step (8x32x94x94 fp32, AVX2, 2 threads). On the CPU
// the node hands the gradient over in the input's layout instead, through
// fastpool's transpose (the step then took 7.4 ms, not 9.6), where no graph
// is built over this backward (the copy is not differentiable) and the
// tensors are plain ones. channels_last: the input was stored so (and not
// also planar: a tensor can be both). (The training path's offsets backward
// writes the input's layout itself.)
bool stored_channels_last(const at::Tensor& input, int dims) {
  return !input.unsafeGetTensorImpl()->has_symbolic_sizes_strides() &&
         stored_in_layout(input, PoolLayout::channels_last, dims) && !stored_in_layout(input, PoolLayout::planar, dims);
}

at::Tensor in_input_layout(const at::Tensor& grad, bool channels_last, int dims) {
  if (!channels_last || at::GradMode::is_enabled() || !grad.is_cpu() || at::isTensorSubclassLike(grad) ||
      grad.unsafeGetTensorImpl()->has_symbolic_sizes_strides() || grad.numel() == 0)
    return grad;
  return cpu::copy_in_layout_cpu(grad, PoolLayout::channels_last, dims);
}

template <int kDims>
struct FractionalPool {
  static constexpr size_t kSaved = 2;  // input, indices; args: kernel_size, then output_size
  static std::string name() { return "FastpoolFractionalMaxPool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<2>& saved, c10::SymIntArrayRef,
                             Ints sizes) {
    check_no_forward_grad(grad_output, [] { return fractional_pool_name(kDims, "_backward"); });
    const at::Tensor& input = saved[0];
    return in_input_layout(FractionalPoolOps<kDims>::get().backward.call(grad_output, input, sizes.slice(0, kDims),
                                                                         sizes.slice(kDims, kDims), saved[1]),
                           !at::isTensorSubclassLike(input) && stored_channels_last(input, kDims), kDims);
  }
};

// The values op under autograd where the backend has training kernels: the
// forward writes each argmax as its tap within the window and the node keeps
// those and the samples (the windows), not the input and int64 indices. Its
// backward writes the gradient in the input's layout itself (a channels-last
// one by blocks of planes, without the contiguous gradient and the copy).
template <int kDims>
struct FractionalPoolTraining {
  static constexpr size_t kSaved = 2;  // offsets, random_samples; args: kernel_size, output_size, channels_last
  static std::string name() { return "FastpoolFractionalMaxPool" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_output, const Saved<2>& saved, c10::SymIntArrayRef input_size,
                             Ints args) {
    check_no_forward_grad(grad_output, [] { return fractional_pool_name(kDims, "_offsets_backward"); });
    return FractionalPoolOps<kDims>::get().offsets_backward.call(grad_output, saved[0], input_size,
                                                                 args.slice(0, kDims), args.slice(kDims, kDims),
                                                                 saved[1], args[2 * kDims] != 0);
  }
};

template <int kDims>
std::tuple<at::Tensor, at::Tensor> fractional_pool_autograd(const at::Tensor& input, Ints kernel_size,
                                                            Ints output_size, const at::Tensor& random_samples) {
  check_no_forward_grad(input, [] { return fractional_pool_name(kDims); });
  auto result = below_autograd(FractionalPoolOps<kDims>::get().forward, input, kernel_size, output_size,
                               random_samples);
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    const auto& [output, indices] = result;
    std::vector<int64_t> sizes(kernel_size.begin(), kernel_size.end());
    sizes.insert(sizes.end(), output_size.begin(), output_size.end());
    record_backward_node<FractionalPool<kDims>>(input, output, {input, indices}, {}, std::move(sizes));
  }
  return result;
}

// The values-only op: without a gradient to record, no indices are written;
// with one, the training path (offsets) on backends that have it, else the
// op with indices, whose node keeps them.
template <int kDims>
at::Tensor fractional_pool_values_autograd(const at::Tensor& input, Ints kernel_size, Ints output_size,
                                           const at::Tensor& random_samples) {
  check_no_forward_grad(input, [] { return fractional_pool_name(kDims, "_values"); });
  const auto& ops = FractionalPoolOps<kDims>::get();
  if (!(at::GradMode::is_enabled() && input.requires_grad()))
    return below_autograd(ops.values, input, kernel_size, output_size, random_samples);
  if (!has_fractional_training_kernels(input))
    return std::get<0>(fractional_pool_autograd<kDims>(input, kernel_size, output_size, random_samples));
  auto [output, offsets] = below_autograd(ops.with_offsets, input, kernel_size, output_size, random_samples);
  std::vector<int64_t> args(kernel_size.begin(), kernel_size.end());
  args.insert(args.end(), output_size.begin(), output_size.end());
  // torch's CPU backward writes a channels-last input's gradient channels last, its CUDA backward contiguous.
  args.push_back(!input.is_cuda() && stored_channels_last(input, kDims));
  record_backward_node<FractionalPoolTraining<kDims>>(input, output, {offsets, random_samples},
                                                      input.sym_sizes().vec(), std::move(args));
  return output;
}

template <int kDims>
void register_autograd(torch::Library& m) {
  // The training ops are called below autograd by the kernels above. Under
  // nested torch.func transforms an outer forward-AD level still sees them:
  // torch's not-implemented kernel makes a tangent there raise instead of
  // vanishing (it would make torch.func.hessian silently zero).
  m.impl(window_pool_name(kDims, "_with_offsets").c_str(), torch::autograd::autogradNotImplementedFallback());
  m.impl(adaptive_pool_name(kDims, "_with_offsets").c_str(), torch::autograd::autogradNotImplementedFallback());
  if (kDims > 1) {
    m.impl(fractional_pool_name(kDims, "_with_offsets").c_str(), torch::autograd::autogradNotImplementedFallback());
    m.impl(fractional_pool_name(kDims, "_offsets_to_indices").c_str(),
           torch::autograd::autogradNotImplementedFallback());
  }
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
  m.impl(fractional_pool_name(2, "_values").c_str(), &fractional_pool_values_autograd<2>);
  m.impl(fractional_pool_name(3, "_values").c_str(), &fractional_pool_values_autograd<3>);
}

}  // namespace fastpool
