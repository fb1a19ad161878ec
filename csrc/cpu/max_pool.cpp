// CPU implementations of the fastpool max-pooling ops: validate (pool_shape.h),
// allocate, pick the kernel for layout x dtype x ISA, run it in parallel.
#include <ATen/core/Tensor.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "../op_list.h"
#include "../pool_shape.h"
#include "dispatch.h"
#include "huge_pages.h"
#include "layout_copy.h"

namespace fastpool::cpu {
namespace {

// Work per parallel_for grain, in (output element x tap) units: about 10 us
// of one thread's SIMD work here, so that a call is split only when each
// thread gets more work than waking the other thread costs (a few us on an
// idle machine; far more when other processes, such as data-loader workers,
// hold the cores). Small maps stay on the calling thread.
constexpr int64_t kGrainWork = int64_t{1} << 17;

// The dtypes fastpool's CPU kernels take; for others, torch's CPU error, which
// names its kernel (`op`).
DType dtype_of(const std::string& op, const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::f32;
    case at::kDouble: return DType::f64;
    case at::kHalf: return DType::f16;
    case at::kBFloat16: return DType::bf16;
    case at::kByte: return DType::u8;
    case at::kChar: return DType::i8;
    case at::kShort: return DType::i16;
    case at::kInt: return DType::i32;
    case at::kLong: return DType::i64;
    default: TORCH_CHECK_NOT_IMPLEMENTED(false, "\"", op, "\" not implemented for '", t.scalar_type(), "'");
  }
}

// Whether every window's taps are numbered within the offsets' type (the
// sentinel excluded). Window ops choose the type from the kernel size, so
// only adaptive windows (int32 always) can fail this, on planes over 2^31.
bool max_taps_fit(const PoolGeometry& g, Argmax kind) {
  const double taps = static_cast<double>(g.kernel[0]) * static_cast<double>(g.kernel[1]) * static_cast<double>(g.kernel[2]);
  return taps <= (kind == Argmax::tap_u8 ? 255.0 : static_cast<double>(INT32_MAX));
}

Argmax argmax_kind(at::ScalarType dtype) {
  switch (dtype) {
    case at::kByte: return Argmax::tap_u8;
    case at::kInt: return Argmax::tap_i32;
    default: return Argmax::flat;  // int64: PyTorch's indices
  }
}

int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, kGrainWork / std::max<int64_t>(1, work_per_item));
}

// Row bands per image for the channels-last backward: enough for the task
// count to be a multiple of the thread count, each band at least a few rows.
int64_t row_bands(const PoolGeometry& g, int64_t threads) {
  constexpr int64_t kMinRows = 4;
  const int64_t rows = g.in_size[0] * g.in_size[1];
  const int64_t bands = threads / std::gcd(std::max<int64_t>(g.batch, 1), threads);
  return std::max<int64_t>(1, std::min(bands, rows / kMinRows));
}

// The name torch's CPU kernel for `base` (max_pool2d, adaptive_max_pool2d, ...)
// gives itself in its dtype errors: planar and channels-last kernels differ.
std::string kernel_name(const char* base, PoolLayout layout, const char* backward = "") {
  return std::string(base) + backward + (layout == PoolLayout::channels_last ? "_channels_last" : "");
}

// Forward over any window description; `argmax` undefined = the inference
// path, which writes none; else PyTorch's int64 indices or the training taps
// (by its dtype). `op`: the kernel name dtype errors give.
void run_forward(const std::string& op, const at::Tensor& input, const PoolGeometry& g, PoolLayout layout,
                 int spatial_dims, at::Tensor& output, at::Tensor& argmax) {
  if (output.numel() == 0) return;
  const DType dtype = dtype_of(op, input);
  const bool cl = layout == PoolLayout::channels_last;
  const Argmax kind = argmax.defined() ? argmax_kind(argmax.scalar_type()) : Argmax::none;
  if (kind == Argmax::tap_u8 || kind == Argmax::tap_i32)
    TORCH_CHECK(max_taps_fit(g, kind), op, ": a window of this input has too many taps for the training path's ",
                argmax.scalar_type(), " offsets");
  const at::Tensor in = contiguous_in_cpu(input, layout, spatial_dims);  // no copy when already in that layout
  const ForwardFn fn = active_kernels().forward[static_cast<int>(cl ? Layout::channels_last : Layout::planar)]
                                                [static_cast<int>(dtype)][static_cast<int>(kind)];
  TORCH_CHECK_NOT_IMPLEMENTED(fn != nullptr, "\"", op, "\" not implemented for '", input.scalar_type(), "'");
  const void* in_ptr = in.const_data_ptr();
  void* out_ptr = output.mutable_data_ptr();
  void* argmax_ptr = argmax.defined() ? argmax.mutable_data_ptr() : nullptr;
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  const int64_t items = cl ? g.batch * out_plane_elems(g) : g.batch * g.channels * g.out_size[0] * g.out_size[1];
  const int64_t per_item = cl ? g.channels * taps : g.out_size[2] * taps;
  at::parallel_for(0, items, grain_for(per_item),
                   [&](int64_t begin, int64_t end) { fn(g, in_ptr, out_ptr, argmax_ptr, begin, end); });
}

// Backward of any window description: a scatter of grad_output to the argmax
// (indices or taps), which needs only the sizes in g. grad_input has
// `input_sizes` and grad_output's dtype, in the layout.
at::Tensor run_backward(const std::string& op, c10::IntArrayRef input_sizes, const PoolGeometry& g,
                        PoolLayout layout, int spatial_dims, const at::Tensor& grad_output, const at::Tensor& argmax) {
  const DType dtype = dtype_of(op, grad_output);
  const bool cl = layout == PoolLayout::channels_last;
  const BackwardFn fn = active_kernels().backward[static_cast<int>(cl ? Layout::channels_last : Layout::planar)]
                                                 [static_cast<int>(dtype)][static_cast<int>(argmax_kind(argmax.scalar_type()))];
  TORCH_CHECK_NOT_IMPLEMENTED(fn != nullptr, "\"", op, "\" not implemented for '", grad_output.scalar_type(), "'");

  at::Tensor grad_input = empty_with_huge_pages(input_sizes, grad_output.options(), layout, spatial_dims);
  if (grad_input.numel() == 0) return grad_input;
  const at::Tensor go = contiguous_in_cpu(grad_output, layout, spatial_dims);
  const at::Tensor idx = contiguous_in_cpu(argmax, layout, spatial_dims);
  const void* go_ptr = go.const_data_ptr();
  const void* idx_ptr = idx.const_data_ptr();
  void* gi_ptr = grad_input.mutable_data_ptr();

  // Channels-last tasks are (image, band of input rows). Bands only when the
  // batch alone cannot keep every thread busy: each band re-reads all of its
  // image's grad_output and argmaxes. (Splitting channels instead was measured
  // slower: strided streams, and threads sharing the same huge-page faults.)
  const int64_t bands = cl ? row_bands(g, at::get_num_threads()) : 1;
  const int64_t tasks = cl ? g.batch * bands : g.batch * g.channels;
  // A task reads its outputs and zeroes and writes its grad_input elements.
  const int64_t per_plane = in_plane_elems(g) / bands + out_plane_elems(g);
  const int64_t per_task = cl ? per_plane * g.channels : per_plane;
  at::parallel_for(0, tasks, grain_for(per_task),
                   [&](int64_t begin, int64_t end) { fn(g, go_ptr, idx_ptr, gi_ptr, bands, begin, end); });
  return grad_input;
}

// Whether PyTorch's channels-last CPU kernel gives a result for this dtype and
// plane: it numbers an integer plane in the signed integer of the dtype's
// width and raises when the plane has more elements than that holds (fastpool
// computes it; its result then follows the planar rule, without the
// remainder-channel quirk that only reproduces torch's own results).
bool torch_computes_in_channels_last(at::ScalarType dtype, const PoolGeometry& g) {
  if (at::isFloatingType(dtype)) return true;
  const double limit = std::ldexp(1.0, 8 * static_cast<int>(c10::elementSize(dtype)) - 1) - 1;
  return static_cast<double>(in_plane_elems(g)) <= limit;
}

// What a forward writes besides the values.
enum class ArgmaxOut { none, indices, taps };

template <int kDims>
struct CpuWindowPool {
  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation, bool ceil_mode) {
    return forward(input, kernel_size, stride, padding, dilation, ceil_mode, ArgmaxOut::indices);
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
    return std::get<0>(forward(input, kernel_size, stride, padding, dilation, ceil_mode, ArgmaxOut::none));
  }

  static std::tuple<at::Tensor, at::Tensor> with_offsets(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation, bool ceil_mode) {
    return forward(input, kernel_size, stride, padding, dilation, ceil_mode, ArgmaxOut::taps);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             const at::Tensor& indices) {
    const PoolArgs args =
        check_max_pool_backward(kDims, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode, indices);
    // torch's CPU backward picks its planar or channels-last kernel (whose name
    // its dtype errors give) by grad_output's memory format.
    const PoolLayout grad_layout = kDims == 3 && grad_output.suggest_memory_format() == at::MemoryFormat::ChannelsLast
                                       ? PoolLayout::planar
                                       : pool_layout(grad_output, kDims);
    return run_backward(kernel_name(kDims == 3 ? "max_pool3d" : "max_pool2d", grad_layout, "_backward"),
                        input.sizes(), make_geometry(input, args), pool_layout(input, kDims), kDims, grad_output,
                        indices);
  }

  static at::Tensor offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     at::IntArrayRef input_size, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                     at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                     bool channels_last) {
    static const std::string op = window_pool_name(kDims, "_offsets_backward");
    const PoolArgs args = check_window_offsets_backward<int64_t>(kDims, op.c_str(), grad_output, offsets, input_size,
                                                                 kernel_size, stride, padding, dilation, ceil_mode);
    return run_backward(op, input_size, make_geometry(input_size, args), layout_from_flag(channels_last), kDims,
                        grad_output, offsets);
  }

 private:
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                    at::IntArrayRef stride, at::IntArrayRef padding,
                                                    at::IntArrayRef dilation, bool ceil_mode, ArgmaxOut want) {
    const bool with_indices = want == ArgmaxOut::indices;
    const MaxPoolPlan p = plan_max_pool(kDims, with_indices ? PoolCall::with_indices : PoolCall::values, input,
                                        kernel_size, stride, padding, dilation, ceil_mode);
    // torch's max_pool1d without indices runs a kernel of its own (which takes
    // floating types only; fastpool's takes integers too), the others max_pool2d's.
    static const std::string max_pool1d_impl = "max_pool1d_impl";
    static const std::string names[2] = {kernel_name(kDims == 3 ? "max_pool3d" : "max_pool2d", PoolLayout::planar),
                                         kernel_name(kDims == 3 ? "max_pool3d" : "max_pool2d",
                                                     PoolLayout::channels_last)};
    const std::string& op =
        kDims == 1 && !with_indices ? max_pool1d_impl : names[p.layout == PoolLayout::channels_last];
    dtype_of(op, input);
    at::Tensor output = empty_cpu_in_layout(p.out_shape, input.options(), p.layout, kDims);
    at::Tensor argmax;
    if (want != ArgmaxOut::none) {
      const at::ScalarType type = with_indices ? at::kLong : window_pool_argmax_dtype(p.args);
      argmax = empty_cpu_in_layout(p.out_shape, input.options().dtype(type), p.layout, kDims);
    }
    if (output.numel() == 0) return {output, argmax};
    PoolGeometry g = make_geometry(input, p.args);
    g.channels_tail_start_skips_depth = torch_computes_in_channels_last(input.scalar_type(), g);
    run_forward(op, input, g, p.layout, kDims, output, argmax);
    return {output, argmax};
  }
};

template <int kDims>
struct CpuAdaptivePool {
  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef output_size) {
    return forward(input, output_size, ArgmaxOut::indices);
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef output_size) {
    return std::get<0>(forward(input, output_size, ArgmaxOut::none));
  }

  static std::tuple<at::Tensor, at::Tensor> with_offsets(const at::Tensor& input, at::IntArrayRef output_size) {
    return forward(input, output_size, ArgmaxOut::taps);
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& indices) {
    check_adaptive_pool_backward(kDims, grad_output, input, indices);
    const PoolGeometry g = make_adaptive_geometry(input, kDims, grad_output.sizes().slice(grad_output.dim() - kDims));
    const PoolLayout layout = pool_layout(input, kDims, WindowKind::adaptive);
    const std::string op = kDims == 3 ? std::string("adaptive_max_pool3d_backward")
                                      : kernel_name("adaptive_max_pool2d", layout, "_backward");
    return run_backward(op, input.sizes(), g, layout, kDims, grad_output, indices);
  }

  static at::Tensor offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                     at::IntArrayRef input_size, bool channels_last) {
    static const std::string op = adaptive_pool_name(kDims, "_offsets_backward");
    check_adaptive_offsets_backward<int64_t>(kDims, op.c_str(), grad_output, offsets, input_size);
    const at::IntArrayRef output_size = grad_output.sizes().slice(grad_output.dim() - kDims);
    return run_backward(op, input_size, make_adaptive_geometry(input_size, kDims, output_size),
                        layout_from_flag(channels_last), kDims, grad_output, offsets);
  }

 private:
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, at::IntArrayRef output_size,
                                                    ArgmaxOut want) {
    const auto shape = adaptive_pool_output_shape<int64_t>(kDims, input, output_size);
    const PoolLayout layout = pool_layout(input, kDims, WindowKind::adaptive);
    // PyTorch's adaptive max pooling takes floating types only; its error
    // names the kernel (1-d runs the 2-d one).
    const std::string op = kDims == 3 ? std::string("adaptive_max_pool3d_cpu")
                                      : kernel_name("adaptive_max_pool2d", layout);
    TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(input.scalar_type()), "\"", op, "\" not implemented for '",
                                input.scalar_type(), "'");
    // PyTorch returns 3-d results contiguous even for a channels_last_3d
    // input: reading that input in place and reordering the (smaller) output
    // beats copying the input.
    const PoolLayout kernel_layout = kDims == 3 && input.dim() == 5 &&
                                             input.suggest_memory_format() == at::MemoryFormat::ChannelsLast3d
                                         ? PoolLayout::channels_last
                                         : layout;
    at::Tensor output = empty_cpu_in_layout(shape, input.options(), kernel_layout, kDims);
    at::Tensor argmax;
    if (want != ArgmaxOut::none) {
      const at::ScalarType type = want == ArgmaxOut::indices ? at::kLong : kAdaptiveArgmaxDtype;
      argmax = empty_cpu_in_layout(shape, input.options().dtype(type), kernel_layout, kDims);
    }
    if (output.numel() > 0)
      run_forward(op, input, make_adaptive_geometry(input, kDims, output_size), kernel_layout, kDims, output, argmax);
    if (kernel_layout != layout) {  // a copy with torch's strides (.contiguous() may keep others where sizes are 1)
      output = copy_in_layout_cpu(output, layout, kDims);
      if (argmax.defined()) argmax = copy_in_layout_cpu(argmax, layout, kDims);
    }
    return {output, argmax};
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, CPU, m) {
  impl_window_pool_ops<CpuWindowPool>(m);
  impl_adaptive_pool_ops<CpuAdaptivePool>(m);
  impl_training_ops<CpuWindowPool, CpuAdaptivePool>(m);
}

}  // namespace fastpool::cpu
