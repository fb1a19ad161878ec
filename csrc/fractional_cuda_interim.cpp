// fractional_max_pool{2,3}d on CUDA tensors, for now: torch's own CUDA kernels
// (the same results as torch by construction, so that fastpool.convert keeps a
// GPU model training). fastpool has no CUDA fractional kernels yet; torch's
// backward adds with atomicAdd and is nondeterministic (README).
// Registered in every build: the CUDA dispatch key exists in CPU builds of
// torch too, where no CUDA tensor ever reaches it.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "op_list.h"

namespace fastpool {
namespace {

template <int kDims>
struct TorchFractionalPool {
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                    at::IntArrayRef output_size, const at::Tensor& random_samples) {
    if constexpr (kDims == 2) return at::fractional_max_pool2d(input, kernel_size, output_size, random_samples);
    else return at::fractional_max_pool3d(input, kernel_size, output_size, random_samples);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef output_size, const at::Tensor& indices) {
    if constexpr (kDims == 2)
      return at::fractional_max_pool2d_backward(grad_output, input, kernel_size, output_size, indices);
    else return at::fractional_max_pool3d_backward(grad_output, input, kernel_size, output_size, indices);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  impl_fractional_pool_ops<TorchFractionalPool>(m);
}

}  // namespace fastpool
