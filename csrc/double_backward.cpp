// Autograd of the backward ops (double backward), in C++ on their Autograd
// key. Every backward op is linear in grad_output, so its own gradient is
// the adjoint of what it does with grad_output:
//   * the pooling backwards (with indices, adaptive, fractional, and the
//     training path's offsets) add each output's gradient at its argmax: their
//     gradient gathers at the argmax;
//   * the unpool backward gathers at the indices: its gradient adds at them.
// The nodes are those of backward_node.h, which torch.func accepts (per-sample
// gradients of a loss that is not linear in the pooled values need this
// double backward). The gradient for the other arguments (the input, read for
// its shape only; the integer indices) is none, as in torch's formulas.
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <vector>

#include "backward_node.h"
#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

using Ints = at::IntArrayRef;

// grad_grad_input at each output's position (flattened over the kDims
// spatial dims of its plane).
template <int kDims>
at::Tensor gather_at(const at::Tensor& grad_grad_input, const at::Tensor& positions) {
  return at::gather(grad_grad_input.flatten(-kDims), -1, positions.flatten(-kDims)).view(positions.sizes());
}

// The gradient of a pooling backward whose argmax positions are its indices.
template <int kDims>
struct GatherAtIndices {
  static constexpr size_t kSaved = 1;  // indices
  static std::string name() { return "FastpoolGatherAtIndices" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_grad_input, const Saved<1>& saved, c10::SymIntArrayRef, Ints) {
    check_no_forward_grad(grad_grad_input, [] { return std::string("gather at indices"); });
    return gather_at<kDims>(grad_grad_input, saved[0]);
  }
};

// The training path's argmax is a tap within the window (offsets): decoded
// into its flat position in the plane, as the kernels number taps (row-major
// over the window, radix: the kernel size, or for adaptive windows the
// largest window; the tap times the dilation from the window's start).
// Windows over 2^31-1 taps store the flat position itself (int64).
struct AxisTaps {
  at::Tensor starts;  // the window start of each output along this axis
  int64_t radix;
  int64_t dilation;
};

template <int kDims>
at::Tensor gather_at_taps(const at::Tensor& grad_grad_input, const at::Tensor& offsets,
                          c10::SymIntArrayRef input_size, const std::vector<AxisTaps>& axes) {
  if (offsets.scalar_type() == at::kLong) return gather_at<kDims>(grad_grad_input, offsets);
  at::Tensor taps = offsets.to(at::kLong);
  int64_t radix = 1;
  for (const AxisTaps& axis : axes) radix *= axis.radix;
  const at::Tensor valid = taps.ge(0).logical_and(taps.lt(radix));  // no tap: an empty window
  at::Tensor rest = at::where(valid, taps, 0);
  at::Tensor digits[kDims];
  for (int d = kDims - 1; d >= 0; --d) {
    digits[d] = rest.remainder(axes[d].radix);
    rest = rest.div(axes[d].radix, "floor");
  }
  at::Tensor position;
  const int64_t first_axis = offsets.dim() - kDims;
  for (int d = 0; d < kDims; ++d) {
    std::vector<int64_t> shape(offsets.dim(), 1);
    shape[first_axis + d] = -1;
    const at::Tensor coordinate = axes[d].starts.view(shape) + digits[d] * axes[d].dilation;
    const int64_t size = input_size[input_size.size() - kDims + d].guard_int(__FILE__, __LINE__);
    position = d == 0 ? coordinate : position * size + coordinate;
  }
  return at::where(valid, gather_at<kDims>(grad_grad_input, at::where(valid, position, 0)), 0);
}

template <int kDims>
struct GatherAtWindowTaps {
  static constexpr size_t kSaved = 1;  // offsets; args: kernel_size, stride, padding, dilation (kDims each)
  static std::string name() { return "FastpoolGatherAtTaps" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_grad_input, const Saved<1>& saved,
                             c10::SymIntArrayRef input_size, Ints args) {
    check_no_forward_grad(grad_grad_input, [] { return window_pool_name(kDims, "_offsets_backward"); });
    const at::Tensor& offsets = saved[0];
    std::vector<AxisTaps> axes;
    for (int d = 0; d < kDims; ++d) {
      const int64_t out = offsets.size(offsets.dim() - kDims + d);
      const at::Tensor o = at::arange(out, offsets.options().dtype(at::kLong));
      axes.push_back({o * args[kDims + d] - args[2 * kDims + d], args[d], args[3 * kDims + d]});
    }
    return gather_at_taps<kDims>(grad_grad_input, offsets, input_size, axes);
  }
};

template <int kDims>
struct GatherAtAdaptiveTaps {
  static constexpr size_t kSaved = 1;  // offsets
  static std::string name() { return "FastpoolGatherAtAdaptiveTaps" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_grad_input, const Saved<1>& saved,
                             c10::SymIntArrayRef input_size, Ints) {
    check_no_forward_grad(grad_grad_input, [] { return adaptive_pool_name(kDims, "_offsets_backward"); });
    const at::Tensor& offsets = saved[0];
    std::vector<AxisTaps> axes;
    for (int d = 0; d < kDims; ++d) {
      const int64_t out = offsets.size(offsets.dim() - kDims + d);
      const int64_t in = input_size[input_size.size() - kDims + d].guard_int(__FILE__, __LINE__);
      const at::Tensor o = at::arange(out, offsets.options().dtype(at::kLong));
      // The radix the kernels number taps in (make_adaptive_geometry).
      const int64_t radix = in % out == 0 ? in / out : (in + out - 1) / out + 1;
      axes.push_back({(o * in).div(out, "floor"), radix, 1});
    }
    return gather_at_taps<kDims>(grad_grad_input, offsets, input_size, axes);
  }
};

// The unpool backward gathers grad_output at the indices; its gradient adds
// at them into grad_output's shape (duplicates summed, as torch derives it).
template <int kDims>
struct AddAtIndices {
  static constexpr size_t kSaved = 1;  // indices; sizes: grad_output's
  static std::string name() { return "FastpoolAddAtIndices" + std::to_string(kDims) + "DBackward"; }
  static at::Tensor backward(const at::Tensor& grad_grad_input, const Saved<1>& saved, c10::SymIntArrayRef sizes,
                             Ints) {
    check_no_forward_grad(grad_grad_input, [] { return unpool_name(kDims, "_backward"); });
    const at::Tensor& indices = saved[0];
    at::Tensor flat = at::zeros_symint(sizes, grad_grad_input.options()).flatten(-kDims);
    return flat.scatter_add(-1, indices.flatten(-kDims), grad_grad_input.flatten(-kDims)).view_symint(sizes);
  }
};

// A backward op's autograd kernel: the op below autograd, then, where
// grad_output requires grad, the node of Spec.
template <typename Spec, typename Signature, typename... Args>
at::Tensor linear_in_grad_output(const c10::TypedOperatorHandle<Signature>& op, const Saved<1>& saved,
                                 std::vector<c10::SymInt> sizes, std::vector<int64_t> args,
                                 const at::Tensor& grad_output, const Args&... rest) {
  at::Tensor grad_input = below_autograd(op, grad_output, rest...);
  if (at::GradMode::is_enabled() && grad_output.requires_grad())
    record_backward_node<Spec>(grad_output, grad_input, saved, std::move(sizes), std::move(args));
  return grad_input;
}

template <int kDims>
struct BackwardAutograd {
  static at::Tensor window(const at::Tensor& grad_output, const at::Tensor& self, Ints kernel_size, Ints stride,
                           Ints padding, Ints dilation, bool ceil_mode, const at::Tensor& indices) {
    static const auto op =
        find_op<at::Tensor(const at::Tensor&, const at::Tensor&, Ints, Ints, Ints, Ints, bool, const at::Tensor&)>(
            window_pool_name(kDims, "_with_indices_backward"));
    check_no_forward_grad(grad_output, [] { return window_pool_name(kDims, "_with_indices_backward"); });
    return linear_in_grad_output<GatherAtIndices<kDims>>(op, {indices}, {}, {}, grad_output, self, kernel_size,
                                                         stride, padding, dilation, ceil_mode, indices);
  }

  static at::Tensor adaptive(const at::Tensor& grad_output, const at::Tensor& self, const at::Tensor& indices) {
    static const auto op = find_op<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>(
        adaptive_pool_name(kDims, "_backward"));
    check_no_forward_grad(grad_output, [] { return adaptive_pool_name(kDims, "_backward"); });
    return linear_in_grad_output<GatherAtIndices<kDims>>(op, {indices}, {}, {}, grad_output, self, indices);
  }

  static at::Tensor window_offsets(const at::Tensor& grad_output, const at::Tensor& offsets,
                                   c10::SymIntArrayRef input_size, Ints kernel_size, Ints stride, Ints padding,
                                   Ints dilation, bool ceil_mode, bool channels_last) {
    static const auto op = find_op<at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, Ints, Ints,
                                              Ints, Ints, bool, bool)>(window_pool_name(kDims, "_offsets_backward"));
    check_no_forward_grad(grad_output, [] { return window_pool_name(kDims, "_offsets_backward"); });
    std::vector<int64_t> args;
    for (Ints arg : {kernel_size, stride.empty() ? kernel_size : stride, padding, dilation})
      for (int d = 0; d < kDims; ++d) args.push_back(arg.size() == 1 ? arg[0] : arg[d]);
    return linear_in_grad_output<GatherAtWindowTaps<kDims>>(op, {offsets}, input_size.vec(), std::move(args),
                                                            grad_output, offsets, input_size, kernel_size, stride,
                                                            padding, dilation, ceil_mode, channels_last);
  }

  static at::Tensor adaptive_offsets(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     c10::SymIntArrayRef input_size, bool channels_last) {
    static const auto op = find_op<at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, bool)>(
        adaptive_pool_name(kDims, "_offsets_backward"));
    check_no_forward_grad(grad_output, [] { return adaptive_pool_name(kDims, "_offsets_backward"); });
    return linear_in_grad_output<GatherAtAdaptiveTaps<kDims>>(op, {offsets}, input_size.vec(), {}, grad_output,
                                                              offsets, input_size, channels_last);
  }

  static at::Tensor fractional(const at::Tensor& grad_output, const at::Tensor& self, Ints kernel_size,
                               Ints output_size, const at::Tensor& indices) {
    static const auto op = find_op<at::Tensor(const at::Tensor&, const at::Tensor&, Ints, Ints, const at::Tensor&)>(
        fractional_pool_name(kDims, "_backward"));
    check_no_forward_grad(grad_output, [] { return fractional_pool_name(kDims, "_backward"); });
    return linear_in_grad_output<GatherAtIndices<kDims>>(op, {indices}, {}, {}, grad_output, self, kernel_size,
                                                         output_size, indices);
  }

  // The training path's fractional backward: where a graph is built over it,
  // its argmax positions are decoded once (offsets_to_indices) and its
  // gradient gathers there.
  static at::Tensor fractional_offsets(const at::Tensor& grad_output, const at::Tensor& offsets,
                                       c10::SymIntArrayRef input_size, Ints kernel_size, Ints output_size,
                                       const at::Tensor& random_samples, bool channels_last) {
    static const auto op = find_op<at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef, Ints, Ints,
                                              const at::Tensor&, bool)>(fractional_pool_name(kDims, "_offsets_backward"));
    static const auto to_indices =
        find_op<at::Tensor(const at::Tensor&, c10::SymIntArrayRef, Ints, Ints, const at::Tensor&)>(
            fractional_pool_name(kDims, "_offsets_to_indices"));
    check_no_forward_grad(grad_output, [] { return fractional_pool_name(kDims, "_offsets_backward"); });
    at::Tensor grad_input = below_autograd(op, grad_output, offsets, input_size, kernel_size, output_size,
                                           random_samples, channels_last);
    if (at::GradMode::is_enabled() && grad_output.requires_grad()) {
      const at::Tensor indices = below_autograd(to_indices, offsets, input_size, kernel_size, output_size,
                                                random_samples);
      record_backward_node<GatherAtIndices<kDims>>(grad_output, grad_input, {indices}, {}, {});
    }
    return grad_input;
  }

  static at::Tensor unpool(const at::Tensor& grad_output, const at::Tensor& indices) {
    static const auto op =
        find_op<at::Tensor(const at::Tensor&, const at::Tensor&)>(unpool_name(kDims, "_backward"));
    check_no_forward_grad(grad_output, [] { return unpool_name(kDims, "_backward"); });
    return linear_in_grad_output<AddAtIndices<kDims>>(op, {indices}, grad_output.sym_sizes().vec(), {},
                                                      grad_output, indices);
  }
};

template <int kDims>
void register_pooling_backwards(torch::Library& m) {
  m.impl(window_pool_name(kDims, "_with_indices_backward").c_str(), &BackwardAutograd<kDims>::window);
  m.impl(adaptive_pool_name(kDims, "_backward").c_str(), &BackwardAutograd<kDims>::adaptive);
  m.impl(window_pool_name(kDims, "_offsets_backward").c_str(), &BackwardAutograd<kDims>::window_offsets);
  m.impl(adaptive_pool_name(kDims, "_offsets_backward").c_str(), &BackwardAutograd<kDims>::adaptive_offsets);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Autograd, m) {
  register_pooling_backwards<1>(m);
  register_pooling_backwards<2>(m);
  register_pooling_backwards<3>(m);
  m.impl(fractional_pool_name(2, "_backward").c_str(), &BackwardAutograd<2>::fractional);
  m.impl(fractional_pool_name(3, "_backward").c_str(), &BackwardAutograd<3>::fractional);
  m.impl(fractional_pool_name(2, "_offsets_backward").c_str(), &BackwardAutograd<2>::fractional_offsets);
  m.impl(fractional_pool_name(3, "_offsets_backward").c_str(), &BackwardAutograd<3>::fractional_offsets);
  m.impl(unpool_name(2, "_backward").c_str(), &BackwardAutograd<2>::unpool);
  m.impl(unpool_name(3, "_backward").c_str(), &BackwardAutograd<3>::unpool);
}

}  // namespace fastpool
