// Argument checks and output shapes for every pooling op and backend: the single
// source of truth used by the CPU and CUDA implementations and the Meta (fake)
// kernels. The checks are torch's own, in torch's order, raising its exception
// types with its messages (aten's Meta wording for Meta tensors).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

#include <vector>

#include "pool_geometry.h"

namespace fastpool {

// The user-facing pooling arguments after PyTorch's normalisation (single ints
// expanded, empty stride = kernel_size), one entry per spatial dim.
struct PoolArgs {
  int spatial_dims;
  std::vector<int64_t> kernel, stride, pad, dilation;
  bool ceil_mode;
};

// Which of torch's ops a forward call stands for. Their errors differ in 1-d:
// max_pool1d runs checks of its own, max_pool1d_with_indices runs
// max_pool2d's on the input unsqueezed to (N,) C, 1, L.
enum class PoolCall { values, with_indices };

// Checks a max_pool{1,2,3}d call exactly as torch's op does (same checks, same
// order, same exception types and messages: aten's C++ wording for CPU and
// CUDA tensors, that of its Meta functions for Meta tensors), and returns the
// output shape (the input's rank: batched or unbatched), filling *args.
// T is int64_t or c10::SymInt (Meta).
template <typename T>
std::vector<T> max_pool_output_shape(int spatial_dims, PoolCall call, const at::Tensor& input,
                                     c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
                                     c10::IntArrayRef dilation, bool ceil_mode, PoolArgs* args);

// Everything a kernel needs, for a validated input's sizes.
PoolGeometry make_geometry(c10::IntArrayRef input_sizes, const PoolArgs& args);
inline PoolGeometry make_geometry(const at::Tensor& input, const PoolArgs& args) {
  return make_geometry(input.sizes(), args);
}

// How the kernels read the input and how outputs (and grad_input) are laid
// out: planar NC(D)HW, or channels last N(D)HWC (NLC for 1-d).
enum class PoolLayout { planar, channels_last };

// PyTorch's rule for an op over `spatial_dims` dims. 2-d: a batched input
// suggest_memory_format calls channels_last. 3-d: an input that is
// channels_last_3d, batched or (as a batch of one) unbatched; a 4-D input that
// is channels_last in the 2-d sense raises, as PyTorch does (it would otherwise
// be read as D,H,W,C), except on the Meta device (aten's Meta function takes
// it). 1-d: a batched input stored N,L,C (PyTorch's max_pool1d with indices
// runs its 2-d kernel on the input unsqueezed to N,C,1,L).
// Adaptive pooling follows the batched rule in 1-d and 2-d and is planar in
// 3-d (PyTorch's CPU kernels; an NDHWC input is copied); nothing is refused.
enum class WindowKind { fixed, adaptive };
PoolLayout pool_layout(const at::Tensor& input, int spatial_dims, WindowKind kind = WindowKind::fixed);

// The strides of a dense tensor of `sizes` ((N,) C, spatial...) stored in
// the layout (channels last: C innermost); a dim of size 0 counts as 1, as in
// torch's contiguous strides. T is int64_t or c10::SymInt (Meta).
template <typename T>
std::vector<T> strides_in_layout(c10::ArrayRef<T> sizes, PoolLayout layout, int spatial_dims);

// An uninitialised tensor of `sizes` ((N,) C, spatial...) in the layout
// (channels last: C stored innermost); T is int64_t or c10::SymInt (Meta).
template <typename T>
at::Tensor empty_in_layout(c10::ArrayRef<T> sizes, const at::TensorOptions& options, PoolLayout layout,
                           int spatial_dims);

// Whether `t` ((N,) C, spatial...) is stored densely in the layout's order
// (dims of size 1 may have any stride, as in torch's is_contiguous).
bool stored_in_layout(const at::Tensor& t, PoolLayout layout, int spatial_dims);

// `t` ((N,) C, spatial...) stored in the layout (no copy when it already is).
at::Tensor contiguous_in(const at::Tensor& t, PoolLayout layout, int spatial_dims);

// What every backend's forward needs before allocating: validated args, the
// output shape and the layout.
struct MaxPoolPlan {
  PoolArgs args;
  std::vector<int64_t> out_shape;
  PoolLayout layout;
};
MaxPoolPlan plan_max_pool(int spatial_dims, PoolCall call, const at::Tensor& input, c10::IntArrayRef kernel_size,
                          c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                          bool ceil_mode);

// ---- adaptive pooling: windows [floor(o*in/out), ceil((o+1)*in/out)) ----

// Checks an adaptive_max_pool{1,2,3}d call exactly as torch's op does (input
// rank and sizes, output_size: one entry per spatial dim, >= 0; wording as in
// max_pool_output_shape) and returns the output shape (the input's rank).
// T is int64_t or c10::SymInt (Meta).
template <typename T>
std::vector<T> adaptive_pool_output_shape(int spatial_dims, const at::Tensor& input, c10::IntArrayRef output_size);

// Everything a kernel needs, for a validated input: evenly dividing dims as
// fixed windows (which unlocks the fixed-window fast paths: global pooling is
// one window over the plane), the others as adaptive windows.
PoolGeometry make_adaptive_geometry(c10::IntArrayRef input_sizes, int spatial_dims, c10::IntArrayRef output_size);
inline PoolGeometry make_adaptive_geometry(const at::Tensor& input, int spatial_dims, c10::IntArrayRef output_size) {
  return make_adaptive_geometry(input.sizes(), spatial_dims, output_size);
}

// Checks an adaptive backward call as torch's adaptive_max_pool{2,3}d_backward
// does (1-d: the 2-d op over the tensors unsqueezed to (N,) C, 1, L, as torch's
// autograd runs it), then what torch leaves unchecked and fastpool's kernels
// rely on: grad_output and indices of one shape, the input's leading dims.
void check_adaptive_pool_backward(int spatial_dims, const at::Tensor& grad_output, const at::Tensor& input,
                                  const at::Tensor& indices);

// Checks a max_pool{1,2,3}d_with_indices_backward call as torch's
// max_pool{2,3}d_with_indices_backward does (1-d: the 2-d op over the tensors
// unsqueezed, as torch's autograd runs it), then what torch leaves unchecked
// and fastpool's kernels rely on (grad_output and indices of the forward
// output's shape), and returns the args.
PoolArgs check_max_pool_backward(int spatial_dims, const at::Tensor& grad_output, const at::Tensor& input,
                                 c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
                                 c10::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices);

}  // namespace fastpool

namespace fastpool {

// ---- training: the argmax that the forward saves for the backward ----

// The dtype of a with_offsets op's argmax: the tap within the window as
// uint8 for windows of up to 255 taps (255 marks a window without in-bounds
// taps), int32 up to 2^31-1 taps (-1 marks it); beyond that (never in
// practice) PyTorch's int64 flat index. Adaptive windows vary in size with the
// input, which may be symbolic: always int32 for them.
at::ScalarType window_pool_argmax_dtype(const PoolArgs& args);
constexpr at::ScalarType kAdaptiveArgmaxDtype = at::kInt;

// Check an offsets backward call, which gets the input's sizes and not the
// input: the forward's checks on those sizes (the arguments, an input of
// (N,) C, spatial... with non-empty planes, the output shape), then
// grad_output and offsets of that output shape, offsets of the dtype the
// forward writes, grad_output floating. Returns the args (window pooling).
// T is int64_t or c10::SymInt (Meta).
template <typename T>
PoolArgs check_window_offsets_backward(int spatial_dims, const char* op, const at::Tensor& grad_output,
                                       const at::Tensor& offsets, c10::ArrayRef<T> input_size,
                                       c10::IntArrayRef kernel_size, c10::IntArrayRef stride,
                                       c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode);
template <typename T>
void check_adaptive_offsets_backward(int spatial_dims, const char* op, const at::Tensor& grad_output,
                                     const at::Tensor& offsets, c10::ArrayRef<T> input_size);

// What every offsets backward checks once the output shape is known (the
// window, adaptive and fractional families): grad_output and offsets of that
// shape, offsets of the dtype the forward writes, grad_output floating, one
// device.
template <typename T>
void check_offsets_backward(const char* op, const at::Tensor& grad_output, const at::Tensor& offsets,
                            c10::ArrayRef<T> expected_shape, at::ScalarType expected_dtype);

// The layout flag the offsets backward ops take (the forward outputs' layout).
inline PoolLayout layout_from_flag(bool channels_last) {
  return channels_last ? PoolLayout::channels_last : PoolLayout::planar;
}

}  // namespace fastpool

namespace fastpool {

// ---- max unpooling: each input value scattered to its index in the output plane ----

// Checks a max_unpool{2,3}d call exactly as torch's op does (same checks and
// order, same messages: its C++ wording for CPU and CUDA tensors, its Meta
// functions' for Meta tensors; stride and padding are 3-d only, where aten
// checks their lengths and the strides' sign and reads them no further), and
// returns the output shape: the input's, with output_size as its spatial dims.
// T is int64_t or c10::SymInt (Meta).
template <typename T>
std::vector<T> unpool_output_shape(int spatial_dims, const at::Tensor& input, const at::Tensor& indices,
                                   c10::ArrayRef<T> output_size, c10::IntArrayRef stride, c10::IntArrayRef padding);

// PyTorch's output layout: channels last for a batched 2-d input that
// suggest_memory_format calls channels_last (its CPU kernel for that layout),
// planar otherwise (3-d always: PyTorch has no channels-last 3-d unpooling).
PoolLayout unpool_layout(const at::Tensor& input, int spatial_dims);

// What fastpool's backward (a gather of grad_output at the indices) relies on:
// int64 indices, grad_output of the indices' rank and leading (N,) C dims, one
// device, a floating dtype. T as above.
template <typename T>
void check_unpool_backward(int spatial_dims, const at::Tensor& grad_output, const at::Tensor& indices);

// torch's error for an index outside the output plane (`index` the offending
// index, `output_spatial` the plane's sizes).
[[noreturn]] void throw_invalid_unpool_index(int64_t index, c10::IntArrayRef output_spatial);

// The gradient's error for such an index: PyTorch's gradient gathers from
// grad_output viewed as (N,) C, plane, and gather's bounds error names the
// flattened dim (`dim`: 1 unbatched, 2 batched) and the plane's size.
[[noreturn]] void throw_invalid_unpool_gradient_index(int64_t index, int64_t dim, int64_t plane);

// fastpool's ops have no forward-mode derivative (yet): an input that carries
// a tangent gets torch's error for such an op, never an output without one.
// `op` is called only to name the op in the error.
template <typename OpName>
void check_no_forward_grad(const at::Tensor& input, OpName op) {
  if (C10_UNLIKELY(input._fw_grad(/*level=*/0).defined()))
    TORCH_CHECK_NOT_IMPLEMENTED(false, "Trying to use forward AD with fastpool::", op(),
                                " that does not support it because it has not been implemented yet.");
}

}  // namespace fastpool
