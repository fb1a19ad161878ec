// Argument checks and output shapes of fractional_max_pool{2,3}d and their
// backward ops, for every backend and the Meta kernels: torch's checks in
// torch's order with its exception types and messages (aten's C++ wording on
// CPU and CUDA tensors, that of its Meta functions on Meta tensors).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

#include <vector>

namespace fastpool {

// Checks a fractional_max_pool{2,3}d call and returns the output shape (the
// input's rank). T is int64_t or c10::SymInt (Meta). The random samples are
// checked as torch's kernels check them (on the Meta device: as its Meta
// function for 2-d does; its 3-d one leaves them unchecked).
template <typename T>
std::vector<T> fractional_pool_output_shape(int spatial_dims, const at::Tensor& input, c10::IntArrayRef kernel_size,
                                            c10::IntArrayRef output_size, const at::Tensor& random_samples);

// The name torch's kernels give themselves in dtype errors (its CPU kernels
// or, with cuda, its CUDA kernels': they name themselves differently in 2-d).
const char* fractional_forward_kernel_name(int spatial_dims, bool cuda = false);
const char* fractional_backward_kernel_name(int spatial_dims, bool cuda = false);

// Checks a fractional_max_pool{2,3}d_backward call as torch's does, then what
// torch's 3-d op leaves unchecked and fastpool's kernels rely on: grad_output
// and indices of the forward output's shape ((N,) C, output_size...), int64
// indices, grad_output of the input's dtype.
// With cuda: the sizes only, in torch CUDA's wording (its 3-d checks name
// their template); torch's CUDA kernels return on an empty grad_input before
// they look at dtypes, which they check in an order of their own, so the CUDA
// launcher (cuda/fractional_launcher.h) checks the dtypes itself.
void check_fractional_pool_backward(int spatial_dims, const at::Tensor& grad_output, const at::Tensor& input,
                                    c10::IntArrayRef output_size, const at::Tensor& indices, bool cuda = false);

// ---- training: offsets (the tap within the window) instead of indices ----

// The offsets' dtype: uint8 for windows of up to 255 taps, int32 above.
at::ScalarType fractional_offsets_dtype(c10::IntArrayRef kernel_size);

// Checks a training op's arguments (offsets_backward with grad_output,
// offsets_to_indices without): input_size (N,) C, spatial... with non-empty
// planes, kernel_size and output_size of the op's rank and within the input,
// offsets (and grad_output) of the output's shape, offsets of the dtype the
// forward writes, random_samples as the forward checks them (its dtype:
// floating, grad_output's where given). Returns the output shape.
template <typename T>
std::vector<T> check_fractional_offsets(int spatial_dims, const char* op, const at::Tensor* grad_output,
                                        const at::Tensor& offsets, c10::ArrayRef<T> input_size,
                                        c10::IntArrayRef kernel_size, c10::IntArrayRef output_size,
                                        const at::Tensor& random_samples);

// The backward's error for an index outside the input plane (torch reads
// such an index out of bounds; fastpool's backends stop and raise this).
[[noreturn]] void throw_invalid_fractional_index(int spatial_dims, int64_t index, int64_t in_plane);

}  // namespace fastpool
