// Meta (fake) kernels of fractional_max_pool{2,3}d: shapes from the same
// checks as the CPU path (fractional_shape.h), contiguous outputs as torch's.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "fractional_shape.h"
#include "pool_shape.h"
#include "op_list.h"

namespace fastpool {
namespace {

template <int kDims>
struct MetaFractionalPool {
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                    at::IntArrayRef output_size, const at::Tensor& random_samples) {
    const auto shape =
        fractional_pool_output_shape<c10::SymInt>(kDims, input, kernel_size, output_size, random_samples);
    return {at::empty_symint(shape, input.options()), at::empty_symint(shape, input.options().dtype(at::kLong))};
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                           const at::Tensor& random_samples) {
    return at::empty_symint(
        fractional_pool_output_shape<c10::SymInt>(kDims, input, kernel_size, output_size, random_samples),
        input.options());
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef output_size, const at::Tensor& indices) {
    check_fractional_pool_backward(kDims, grad_output, input, output_size, indices);
    return at::empty_symint(input.sym_sizes(), input.options().memory_format(at::MemoryFormat::Contiguous));
  }

  static std::tuple<at::Tensor, at::Tensor> with_offsets(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef output_size,
                                                         const at::Tensor& random_samples) {
    const auto shape =
        fractional_pool_output_shape<c10::SymInt>(kDims, input, kernel_size, output_size, random_samples);
    return {at::empty_symint(shape, input.options()),
            at::empty_symint(shape, input.options().dtype(fractional_offsets_dtype(kernel_size)))};
  }

  static at::Tensor offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                     at::IntArrayRef output_size, const at::Tensor& random_samples,
                                     bool channels_last) {
    const std::string op = fractional_pool_name(kDims, "_offsets_backward");
    check_fractional_offsets<c10::SymInt>(kDims, op.c_str(), &grad_output, offsets, input_size, kernel_size,
                                          output_size, random_samples);
    return empty_in_layout<c10::SymInt>(input_size, grad_output.options(), layout_from_flag(channels_last), kDims);
  }

  static at::Tensor offsets_to_indices(const at::Tensor& offsets, c10::SymIntArrayRef input_size,
                                       at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                                       const at::Tensor& random_samples) {
    const std::string op = fractional_pool_name(kDims, "_offsets_to_indices");
    return at::empty_symint(check_fractional_offsets<c10::SymInt>(kDims, op.c_str(), nullptr, offsets, input_size,
                                                                  kernel_size, output_size, random_samples),
                            offsets.options().dtype(at::kLong));
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, Meta, m) {
  impl_fractional_pool_ops<MetaFractionalPool>(m);
  impl_fractional_training_ops<MetaFractionalPool>(m);
}

}  // namespace fastpool
