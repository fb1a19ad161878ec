// Meta kernels: output shapes and layouts without data, for fake tensors,
// torch.compile and torch.export. SymInt-aware through pool_shape.h's
// templated output-size math (the same code the CPU and CUDA paths use).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "pool_shape.h"

namespace fastpool {
namespace {

at::Tensor empty_output(const at::Tensor& input, const PoolArgs& args, const char* op, at::ScalarType dtype) {
  const auto shape = max_pool_output_shape<c10::SymInt>(op, input.sym_sizes(), args);
  return at::empty_symint(shape, input.options().dtype(dtype), pool_memory_format(input));
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices_meta(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                                at::IntArrayRef dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  const PoolArgs args = normalize_pool_args(op, 2, kernel_size, stride, padding, dilation, ceil_mode);
  return {empty_output(input, args, op, input.scalar_type()), empty_output(input, args, op, at::kLong)};
}

at::Tensor max_pool2d_meta(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  const PoolArgs args = normalize_pool_args(op, 2, kernel_size, stride, padding, dilation, ceil_mode);
  return empty_output(input, args, op, input.scalar_type());
}

at::Tensor max_pool2d_with_indices_backward_meta(const at::Tensor& grad_output, const at::Tensor& input,
                                                 at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                 at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                                 const at::Tensor& indices) {
  const char* op = "max_pool2d_with_indices_backward";
  const PoolArgs args = normalize_pool_args(op, 2, kernel_size, stride, padding, dilation, ceil_mode);
  const auto expected = max_pool_output_shape<c10::SymInt>(op, input.sym_sizes(), args);
  TORCH_CHECK(grad_output.sym_sizes().equals(expected), op, ": grad_output must have size ",
                  c10::SymIntArrayRef(expected), " (the forward output's), but got ", grad_output.sym_sizes());
  TORCH_CHECK(indices.sym_sizes().equals(expected), op, ": indices must have size ",
                  c10::SymIntArrayRef(expected), " (the forward output's), but got ", indices.sym_sizes());
  return at::empty_symint(input.sym_sizes(), input.options(), pool_memory_format(input));
}

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Meta, m) {
  m.impl("max_pool2d_with_indices", &max_pool2d_with_indices_meta);
  m.impl("max_pool2d", &max_pool2d_meta);
  m.impl("max_pool2d_with_indices_backward", &max_pool2d_with_indices_backward_meta);
}

}  // namespace fastpool
