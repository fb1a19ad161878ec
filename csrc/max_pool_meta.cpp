// Meta kernels: output shapes and layouts without data, for fake tensors,
// torch.compile and torch.export. SymInt-aware through pool_shape.h's
// templated output-size math (the same code the CPU and CUDA paths use).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "op_list.h"
#include "pool_shape.h"

namespace fastpool {
namespace {

template <int kDims>
struct MetaWindowPool {
  static at::Tensor empty_output(const at::Tensor& input, const std::vector<c10::SymInt>& shape, at::ScalarType dtype) {
    return empty_in_layout<c10::SymInt>(shape, input.options().dtype(dtype), pool_layout(input, kDims), kDims);
  }

  static std::vector<c10::SymInt> output_shape(PoolCall call, const at::Tensor& input, at::IntArrayRef kernel_size,
                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                               at::IntArrayRef dilation, bool ceil_mode) {
    return max_pool_output_shape<c10::SymInt>(kDims, call, input, kernel_size, stride, padding, dilation, ceil_mode,
                                              nullptr);
  }

  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation, bool ceil_mode) {
    const auto shape = output_shape(PoolCall::with_indices, input, kernel_size, stride, padding, dilation, ceil_mode);
    return {empty_output(input, shape, input.scalar_type()), empty_output(input, shape, at::kLong)};
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
    const auto shape = output_shape(PoolCall::values, input, kernel_size, stride, padding, dilation, ceil_mode);
    return empty_output(input, shape, input.scalar_type());
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             const at::Tensor& indices) {
    check_max_pool_backward(kDims, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode, indices);
    return empty_in_layout<c10::SymInt>(input.sym_sizes(), input.options(), pool_layout(input, kDims), kDims);
  }

  static std::tuple<at::Tensor, at::Tensor> with_offsets(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation, bool ceil_mode) {
    PoolArgs a;
    const auto shape = max_pool_output_shape<c10::SymInt>(kDims, PoolCall::values, input, kernel_size, stride,
                                                          padding, dilation, ceil_mode, &a);
    return {empty_output(input, shape, input.scalar_type()), empty_output(input, shape, window_pool_argmax_dtype(a))};
  }

  static at::Tensor offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                     at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                                     bool ceil_mode, bool channels_last) {
    const std::string op = window_pool_name(kDims, "_offsets_backward");
    check_window_offsets_backward<c10::SymInt>(kDims, op.c_str(), grad_output, offsets, input_size, kernel_size,
                                               stride, padding, dilation, ceil_mode);
    return empty_in_layout<c10::SymInt>(input_size, grad_output.options(), layout_from_flag(channels_last), kDims);
  }
};

template <int kDims>
struct MetaAdaptivePool {
  static at::Tensor empty_output(const at::Tensor& input, at::IntArrayRef output_size, at::ScalarType dtype) {
    const auto shape = adaptive_pool_output_shape<c10::SymInt>(kDims, input, output_size);
    return empty_in_layout<c10::SymInt>(shape, input.options().dtype(dtype),
                                        pool_layout(input, kDims, WindowKind::adaptive), kDims);
  }
  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef output_size) {
    return {empty_output(input, output_size, input.scalar_type()), empty_output(input, output_size, at::kLong)};
  }
  static at::Tensor values(const at::Tensor& input, at::IntArrayRef output_size) {
    return empty_output(input, output_size, input.scalar_type());
  }
  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& indices) {
    check_adaptive_pool_backward(kDims, grad_output, input, indices);
    return empty_in_layout<c10::SymInt>(input.sym_sizes(), input.options(),
                                        pool_layout(input, kDims, WindowKind::adaptive), kDims);
  }
  static std::tuple<at::Tensor, at::Tensor> with_offsets(const at::Tensor& input, at::IntArrayRef output_size) {
    return {empty_output(input, output_size, input.scalar_type()),
            empty_output(input, output_size, kAdaptiveArgmaxDtype)};
  }
  static at::Tensor offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     c10::SymIntArrayRef input_size, bool channels_last) {
    const std::string op = adaptive_pool_name(kDims, "_offsets_backward");
    check_adaptive_offsets_backward<c10::SymInt>(kDims, op.c_str(), grad_output, offsets, input_size);
    return empty_in_layout<c10::SymInt>(input_size, grad_output.options(), layout_from_flag(channels_last), kDims);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Meta, m) {
  impl_window_pool_ops<MetaWindowPool>(m);
  impl_adaptive_pool_ops<MetaAdaptivePool>(m);
  impl_training_ops<MetaWindowPool, MetaAdaptivePool>(m);
}

}  // namespace fastpool
