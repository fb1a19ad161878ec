// CPU implementations of the fastpool max-pooling ops: validate (pool_shape.h),
// allocate, pick the kernel for layout x dtype x ISA, run it in parallel.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <numeric>

#include "../op_list.h"
#include "../pool_shape.h"
#include "dispatch.h"
#include "huge_pages.h"

namespace fastpool::cpu {
namespace {

// Work per parallel_for grain, in (output element x tap) units; small calls
// stay on one thread.
constexpr int64_t kGrainWork = 32768;

DType dtype_of(const char* op, const at::Tensor& t) {
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

// Forward; `indices` undefined = the inference path, which writes none.
void run_forward(const char* op, const at::Tensor& input, const MaxPoolPlan& plan, at::Tensor& output,
                 at::Tensor* indices) {
  if (output.numel() == 0) return;
  const DType dtype = dtype_of(op, input);
  const PoolGeometry g = make_geometry(input, plan.args);
  const bool cl = plan.layout == PoolLayout::channels_last;
  const at::Tensor in = contiguous_in(input, plan.layout, plan.args.spatial_dims);  // no copy when already in that layout
  const ForwardFn fn = active_kernels().forward[static_cast<int>(cl ? Layout::channels_last : Layout::planar)]
                                                [static_cast<int>(dtype)];
  const void* in_ptr = in.const_data_ptr();
  void* out_ptr = output.mutable_data_ptr();
  int64_t* idx_ptr = indices ? indices->mutable_data_ptr<int64_t>() : nullptr;
  const int64_t taps = g.kernel[0] * g.kernel[1] * g.kernel[2];
  const int64_t items = cl ? g.batch * out_plane_elems(g) : g.batch * g.channels * g.out_size[0] * g.out_size[1];
  const int64_t per_item = cl ? g.channels * taps : g.out_size[2] * taps;
  at::parallel_for(0, items, grain_for(per_item),
                   [&](int64_t begin, int64_t end) { fn(g, in_ptr, out_ptr, idx_ptr, begin, end); });
}

template <int kDims>
struct CpuWindowPool {
  static MaxPoolPlan plan(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
    const std::string op = window_pool_name(kDims);
    MaxPoolPlan p = plan_max_pool(op.c_str(), kDims, input, kernel_size, stride, padding, dilation, ceil_mode);
    dtype_of(op.c_str(), input);
    return p;
  }

  static std::tuple<at::Tensor, at::Tensor> with_indices(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                         at::IntArrayRef stride, at::IntArrayRef padding,
                                                         at::IntArrayRef dilation, bool ceil_mode) {
    const MaxPoolPlan p = plan(input, kernel_size, stride, padding, dilation, ceil_mode);
    at::Tensor output = empty_with_huge_pages(p.out_shape, input.options(), p.layout, kDims);
    at::Tensor indices = empty_with_huge_pages(p.out_shape, input.options().dtype(at::kLong), p.layout, kDims);
    run_forward(window_pool_name(kDims).c_str(), input, p, output, &indices);
    return {output, indices};
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
    const MaxPoolPlan p = plan(input, kernel_size, stride, padding, dilation, ceil_mode);
    at::Tensor output = empty_with_huge_pages(p.out_shape, input.options(), p.layout, kDims);
    run_forward(window_pool_name(kDims).c_str(), input, p, output, nullptr);
    return output;
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                             const at::Tensor& indices) {
    const std::string name = window_pool_name(kDims, "_with_indices_backward");
    const char* op = name.c_str();
    const PoolArgs args = normalize_pool_args(op, kDims, kernel_size, stride, padding, dilation, ceil_mode);
    check_max_pool_backward(op, grad_output, input, indices, args);
    const DType dtype = dtype_of(op, input);
    const PoolLayout layout = pool_layout(input, kDims);
    const bool cl = layout == PoolLayout::channels_last;
    const BackwardFn fn =
        active_kernels().backward[static_cast<int>(cl ? Layout::channels_last : Layout::planar)][static_cast<int>(dtype)];
    TORCH_CHECK_NOT_IMPLEMENTED(fn != nullptr, "\"", op, "\" not implemented for '", input.scalar_type(), "'");

    at::Tensor grad_input = empty_with_huge_pages(input.sizes(), input.options(), layout, kDims);
    if (grad_input.numel() == 0) return grad_input;
    const PoolGeometry g = make_geometry(input, args);
    const at::Tensor go = contiguous_in(grad_output, layout, kDims);
    const at::Tensor idx = contiguous_in(indices, layout, kDims);
    const void* go_ptr = go.const_data_ptr();
    const int64_t* idx_ptr = idx.const_data_ptr<int64_t>();
    void* gi_ptr = grad_input.mutable_data_ptr();

    // Channels-last tasks are (image, band of input rows). Bands only when the
    // batch alone cannot keep every thread busy: each band re-reads all of its
    // image's grad_output and indices. (Splitting channels instead was measured
    // slower: strided streams, and threads sharing the same huge-page faults.)
    const int64_t bands = cl ? row_bands(g, at::get_num_threads()) : 1;
    const int64_t tasks = cl ? g.batch * bands : g.batch * g.channels;
    const int64_t per_task = cl ? out_plane_elems(g) * g.channels : out_plane_elems(g);
    at::parallel_for(0, tasks, grain_for(per_task),
                     [&](int64_t begin, int64_t end) { fn(g, go_ptr, idx_ptr, gi_ptr, bands, begin, end); });
    return grad_input;
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, CPU, m) { impl_window_pool_ops<CpuWindowPool>(m); }

}  // namespace fastpool::cpu
