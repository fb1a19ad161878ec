// The fastpool operator list: every op's name and schema, defined once here
// and registered by each backend (cpu/, cuda/, max_pool_meta.cpp) with one call
// per family, so that a new op is a line here and a kernel, not per-backend
// boilerplate.
//
// Families, by schema shape:
//   window pooling  max_pool{1,2,3}d: for each spatial dims kDims,
//     max_pool{k}d_with_indices(self, kernel_size, stride, padding, dilation, ceil_mode) -> (values, indices)
//     max_pool{k}d(...) -> values                    (inference: no indices written)
//     max_pool{k}d_with_indices_backward(grad_output, self, ..., indices) -> grad_input
//   adaptive pooling  adaptive_max_pool{1,2,3}d:
//     adaptive_max_pool{k}d_with_indices(self, output_size) -> (values, indices)
//     adaptive_max_pool{k}d(self, output_size) -> values
//     adaptive_max_pool{k}d_backward(grad_output, self, indices) -> grad_input
//   A backend implements a family as a class template over kDims with static
//   functions with_indices, values and backward.
// Training (what autograd calls for the ops without indices, csrc/autograd.cpp):
//     max_pool{k}d_with_offsets(self, ...) -> (values, offsets)
//     max_pool{k}d_offsets_backward(grad_output, offsets, input_size, ..., channels_last) -> grad_input
//     adaptive_max_pool{k}d_with_offsets(self, output_size) -> (values, offsets)
//     adaptive_max_pool{k}d_offsets_backward(grad_output, offsets, input_size, channels_last) -> grad_input
//   max unpooling  max_unpool{2,3}d (1-d: torch's functional runs the 2-d op
//   over the input unsqueezed to (N,) C, L, 1, and so does fastpool's):
//     max_unpool2d(self, indices, output_size) -> output     (aten's schema)
//     max_unpool3d(self, indices, output_size, stride, padding) -> output
//     max_unpool{k}d_backward(grad_output, indices) -> grad_input  (a gather)
//   A backend implements the family as a class template over kDims with
//   static functions forward(self, indices, output_size, stride, padding)
//   (2-d: stride and padding empty) and backward.
//   offsets: each output's argmax as its tap within the window (uint8 or
//   int32, pool_shape.h), so backward needs neither the input nor int64
//   indices. channels_last: the layout the forward's outputs had.
//   A backend implements them as static functions with_offsets and
//   offsets_backward of the same class.
#pragma once
#include <torch/library.h>

#include <string>

namespace fastpool {

constexpr int kWindowPoolDims[] = {1, 2, 3};

// "max_pool2d", "max_pool2d_with_indices", ...: the op's name.
inline std::string window_pool_name(int dims, const char* suffix = "") {
  return "max_pool" + std::to_string(dims) + "d" + suffix;
}

// The schemas of the window-pooling family: aten's max_pool2d schemas with the
// spatial dims as a parameter, so that argument handling (int or list,
// stride=[] meaning kernel_size) behaves identically.
inline void define_window_pool_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  for (int dims : kWindowPoolDims) {
    const std::string n = std::to_string(dims);
    const std::string args = "Tensor self, int[" + n + "] kernel_size, int[" + n + "] stride=[], int[" + n +
                             "] padding=0, int[" + n + "] dilation=1, bool ceil_mode=False";
    const std::string schemas[] = {
        window_pool_name(dims, "_with_indices") + "(" + args + ") -> (Tensor, Tensor)",
        window_pool_name(dims) + "(" + args + ") -> Tensor",
        window_pool_name(dims, "_with_indices_backward") + "(Tensor grad_output, Tensor self, int[" + n +
            "] kernel_size, int[" + n + "] stride, int[" + n + "] padding, int[" + n + "] dilation, bool ceil_mode, " +
            "Tensor indices) -> Tensor"};
    for (const std::string& schema : schemas) m.def(schema.c_str(), tags);
    const std::string training[] = {
        window_pool_name(dims, "_with_offsets") + "(" + args + ") -> (Tensor, Tensor)",
        window_pool_name(dims, "_offsets_backward") + "(Tensor grad_output, Tensor offsets, SymInt[] input_size, int[" +
            n + "] kernel_size, int[" + n + "] stride, int[" + n + "] padding, int[" + n + "] dilation, " +
            "bool ceil_mode, bool channels_last) -> Tensor"};
    for (const std::string& schema : training) m.def(schema.c_str(), tags);
  }
}

inline std::string adaptive_pool_name(int dims, const char* suffix = "") {
  return "adaptive_max_pool" + std::to_string(dims) + "d" + suffix;
}

inline void define_adaptive_pool_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  for (int dims : kWindowPoolDims) {
    const std::string args = "(Tensor self, int[" + std::to_string(dims) + "] output_size)";
    const std::string schemas[] = {
        adaptive_pool_name(dims, "_with_indices") + args + " -> (Tensor, Tensor)",
        adaptive_pool_name(dims) + args + " -> Tensor",
        adaptive_pool_name(dims, "_backward") + "(Tensor grad_output, Tensor self, Tensor indices) -> Tensor",
        adaptive_pool_name(dims, "_with_offsets") + args + " -> (Tensor, Tensor)",
        adaptive_pool_name(dims, "_offsets_backward") +
            "(Tensor grad_output, Tensor offsets, SymInt[] input_size, bool channels_last) -> Tensor"};
    for (const std::string& schema : schemas) m.def(schema.c_str(), tags);
  }
}

namespace detail {
template <template <int> class Impl, int kDims>
void impl_window_pool(torch::Library& m) {
  m.impl(window_pool_name(kDims, "_with_indices").c_str(), &Impl<kDims>::with_indices);
  m.impl(window_pool_name(kDims).c_str(), &Impl<kDims>::values);
  m.impl(window_pool_name(kDims, "_with_indices_backward").c_str(), &Impl<kDims>::backward);
}
template <template <int> class Impl, int kDims>
void impl_adaptive_pool(torch::Library& m) {
  m.impl(adaptive_pool_name(kDims, "_with_indices").c_str(), &Impl<kDims>::with_indices);
  m.impl(adaptive_pool_name(kDims).c_str(), &Impl<kDims>::values);
  m.impl(adaptive_pool_name(kDims, "_backward").c_str(), &Impl<kDims>::backward);
}
template <template <int> class Impl, int kDims>
void impl_window_pool_training(torch::Library& m) {
  m.impl(window_pool_name(kDims, "_with_offsets").c_str(), &Impl<kDims>::with_offsets);
  m.impl(window_pool_name(kDims, "_offsets_backward").c_str(), &Impl<kDims>::offsets_backward);
}
template <template <int> class Impl, int kDims>
void impl_adaptive_pool_training(torch::Library& m) {
  m.impl(adaptive_pool_name(kDims, "_with_offsets").c_str(), &Impl<kDims>::with_offsets);
  m.impl(adaptive_pool_name(kDims, "_offsets_backward").c_str(), &Impl<kDims>::offsets_backward);
}
}  // namespace detail

// Registers Impl<1>, Impl<2>, Impl<3> for the backend of `m`.
template <template <int> class Impl>
void impl_window_pool_ops(torch::Library& m) {
  detail::impl_window_pool<Impl, 1>(m);
  detail::impl_window_pool<Impl, 2>(m);
  detail::impl_window_pool<Impl, 3>(m);
}

template <template <int> class Impl>
void impl_adaptive_pool_ops(torch::Library& m) {
  detail::impl_adaptive_pool<Impl, 1>(m);
  detail::impl_adaptive_pool<Impl, 2>(m);
  detail::impl_adaptive_pool<Impl, 3>(m);
}

// The training ops (with_offsets, offsets_backward) of both families.
template <template <int> class WindowImpl, template <int> class AdaptiveImpl>
void impl_training_ops(torch::Library& m) {
  detail::impl_window_pool_training<WindowImpl, 1>(m);
  detail::impl_window_pool_training<WindowImpl, 2>(m);
  detail::impl_window_pool_training<WindowImpl, 3>(m);
  detail::impl_adaptive_pool_training<AdaptiveImpl, 1>(m);
  detail::impl_adaptive_pool_training<AdaptiveImpl, 2>(m);
  detail::impl_adaptive_pool_training<AdaptiveImpl, 3>(m);
}


// ---- fractional pooling: fractional_max_pool{2,3}d (fractional_pool.h) ----
//   fractional_max_pool{k}d(self, kernel_size, output_size, random_samples) -> (values, indices)
//   fractional_max_pool{k}d_values(self, kernel_size, output_size, random_samples) -> values
//   fractional_max_pool{k}d_backward(grad_output, self, kernel_size, output_size, indices) -> grad_input
// aten's schemas, and a values-only op (return_indices=False: inference
// writes no indices). The windows depend on the samples, which the caller
// draws (fastpool.functional draws them as torch.nn.functional does).
// A backend implements the family as a class template over kDims with static
// functions forward, values and backward.
// Training (what autograd calls for the values op, csrc/autograd.cpp), CPU and
// Meta:
//   fractional_max_pool{k}d_with_offsets(self, kernel_size, output_size, random_samples) -> (values, offsets)
//   fractional_max_pool{k}d_offsets_backward(grad_output, offsets, input_size, kernel_size, output_size,
//                                            random_samples, channels_last) -> grad_input (in that layout:
//                                            autograd asks for the input's)
//   fractional_max_pool{k}d_offsets_to_indices(offsets, input_size, kernel_size, output_size, random_samples)
//       -> indices (torch's int64 flat indices: what double backward gathers at)
//   offsets: each output's argmax as its tap within its window (uint8 for up
//   to 255 taps, else int32); the windows come again from the samples.
//   Static functions with_offsets, offsets_backward and offsets_to_indices.
constexpr int kFractionalPoolDims[] = {2, 3};

inline std::string fractional_pool_name(int dims, const char* suffix = "") {
  return "fractional_max_pool" + std::to_string(dims) + "d" + suffix;
}

inline void define_fractional_pool_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  for (int dims : kFractionalPoolDims) {
    const std::string n = std::to_string(dims);
    m.def((fractional_pool_name(dims) + "(Tensor self, int[" + n + "] kernel_size, int[" + n +
           "] output_size, Tensor random_samples) -> (Tensor, Tensor)").c_str(), tags);
    m.def((fractional_pool_name(dims, "_values") + "(Tensor self, int[" + n + "] kernel_size, int[" + n +
           "] output_size, Tensor random_samples) -> Tensor").c_str(), tags);
    m.def((fractional_pool_name(dims, "_backward") + "(Tensor grad_output, Tensor self, int[" + n +
           "] kernel_size, int[" + n + "] output_size, Tensor indices) -> Tensor").c_str(), tags);
    const std::string windows =
        "SymInt[] input_size, int[" + n + "] kernel_size, int[" + n + "] output_size, Tensor random_samples";
    m.def((fractional_pool_name(dims, "_with_offsets") + "(Tensor self, int[" + n + "] kernel_size, int[" + n +
           "] output_size, Tensor random_samples) -> (Tensor, Tensor)").c_str(), tags);
    m.def((fractional_pool_name(dims, "_offsets_backward") + "(Tensor grad_output, Tensor offsets, " + windows +
           ", bool channels_last) -> Tensor").c_str(), tags);
    m.def((fractional_pool_name(dims, "_offsets_to_indices") + "(Tensor offsets, " + windows + ") -> Tensor").c_str(),
          tags);
  }
}

namespace detail {
template <template <int> class Impl, int kDims>
void impl_fractional_pool(torch::Library& m) {
  m.impl(fractional_pool_name(kDims).c_str(), &Impl<kDims>::forward);
  m.impl(fractional_pool_name(kDims, "_values").c_str(), &Impl<kDims>::values);
  m.impl(fractional_pool_name(kDims, "_backward").c_str(), &Impl<kDims>::backward);
}
}  // namespace detail

// Registers Impl<2>, Impl<3> (static functions forward, values, backward).
template <template <int> class Impl>
void impl_fractional_pool_ops(torch::Library& m) {
  detail::impl_fractional_pool<Impl, 2>(m);
  detail::impl_fractional_pool<Impl, 3>(m);
}

// The training ops (with_offsets, offsets_backward, offsets_to_indices).
template <template <int> class Impl>
void impl_fractional_training_ops(torch::Library& m) {
  for (int dims : kFractionalPoolDims) {
    const bool two = dims == 2;
    m.impl(fractional_pool_name(dims, "_with_offsets").c_str(), two ? &Impl<2>::with_offsets : &Impl<3>::with_offsets);
    m.impl(fractional_pool_name(dims, "_offsets_backward").c_str(),
           two ? &Impl<2>::offsets_backward : &Impl<3>::offsets_backward);
    m.impl(fractional_pool_name(dims, "_offsets_to_indices").c_str(),
           two ? &Impl<2>::offsets_to_indices : &Impl<3>::offsets_to_indices);
  }
}

// ---- max unpooling: the inverse of max pooling, a scatter of each value to its index ----

constexpr int kUnpoolDims[] = {2, 3};

inline std::string unpool_name(int dims, const char* suffix = "") {
  return "max_unpool" + std::to_string(dims) + "d" + suffix;
}

// aten's max_unpool2d/3d schemas (3-d takes stride and padding, which only
// its checks read), and a backward of their own so that compile, export and
// double backward see an op.
inline void define_unpool_ops(torch::Library& m) {
  const std::vector<at::Tag> tags = {at::Tag::pt2_compliant_tag};
  m.def("max_unpool2d(Tensor self, Tensor indices, SymInt[2] output_size) -> Tensor", tags);
  m.def("max_unpool3d(Tensor self, Tensor indices, SymInt[3] output_size, int[3] stride, int[3] padding) -> Tensor",
        tags);
  for (int dims : kUnpoolDims)
    m.def((unpool_name(dims, "_backward") + "(Tensor grad_output, Tensor indices) -> Tensor").c_str(), tags);
}

namespace detail {
// aten's 2-d schema has no stride and padding: the backends take one
// signature, forward(self, indices, output_size, stride, padding), with
// output_size as Impl::Sizes (IntArrayRef, or SymIntArrayRef on Meta).
template <template <int> class Impl>
at::Tensor unpool2d_forward(const at::Tensor& self, const at::Tensor& indices, typename Impl<2>::Sizes output_size) {
  return Impl<2>::forward(self, indices, output_size, {}, {});
}
}  // namespace detail

template <template <int> class Impl>
void impl_unpool_ops(torch::Library& m) {
  m.impl(unpool_name(2).c_str(), &detail::unpool2d_forward<Impl>);
  m.impl(unpool_name(3).c_str(), &Impl<3>::forward);
  m.impl(unpool_name(2, "_backward").c_str(), &Impl<2>::backward);
  m.impl(unpool_name(3, "_backward").c_str(), &Impl<3>::backward);
}

}  // namespace fastpool
