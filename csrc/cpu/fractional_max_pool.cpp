// CPU implementation of fractional_max_pool{2,3}d and their backward ops:
// validate (fractional_shape.h), allocate (torch returns contiguous tensors,
// whatever the input's layout), run per (n, c) plane in parallel.
//
// Forward: every plane's window starts are tabled once per dim from its
// samples (fractional_window_start, the rule torch uses, in the input's
// dtype) and checked; then the ISA's kernel (fractional_kernels.h, picked at
// run time as the max_pool kernels are) takes each output's max over its
// k_T x k_H x k_W window with torch's argmax rule, in parallel over output
// rows (channels-last inputs: over blocks of planes transposed on the fly).
// Backward: per plane, grad_output added into grad_input at the indices in
// output raster order, in the input's dtype (torch's order and rounding, so
// Half/BFloat16 gradients are bit-identical), one thread per plane: no
// atomics, deterministic.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/Parallel.h>
#include <c10/util/Half.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "../fractional_pool.h"
#include "../fractional_shape.h"
#include "../op_list.h"
#include "dispatch.h"
#include "layout_copy.h"

namespace fastpool::cpu {
namespace {

constexpr int64_t kGrainWork = 32768;

// Sizes normalised to three spatial dims (2-d: a depth of 1).
struct FractionalPlanes {
  int64_t planes = 0;    // N * C
  int64_t channels = 1;  // C: samples are indexed (n, c)
  int64_t in[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t k[3] = {1, 1, 1};
};

FractionalPlanes describe(int dims, c10::IntArrayRef in_sizes, c10::IntArrayRef kernel_size,
                          c10::IntArrayRef output_size) {
  FractionalPlanes p;
  const int64_t ndim = static_cast<int64_t>(in_sizes.size());
  p.channels = in_sizes[ndim - dims - 1];
  p.planes = p.channels * (ndim == dims + 2 ? in_sizes[0] : 1);
  for (int i = 0; i < dims; ++i) {
    p.in[3 - dims + i] = in_sizes[ndim - dims + i];
    p.out[3 - dims + i] = output_size[i];
    p.k[3 - dims + i] = kernel_size[i];
  }
  return p;
}

bool is_fractional_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

// The sample of spatial dim d (0 = T, 1 = H, 2 = W) in a plane's samples:
// torch's 2-d kernel reads W from sample 0 and H from sample 1; its 3-d kernel
// T, H, W from samples 0, 1, 2.
inline int sample_slot(int dims, int d) { return dims == 2 ? 2 - d : d; }

// Every plane's window starts (T, H, W), from its samples, checked as torch's
// kernel asserts them: a window with taps lies inside the input (Half and
// BFloat16 rounding of the samples can push a start past in - k).
template <typename scalar_t>
void table_starts(int dims, const FractionalPlanes& p, const scalar_t* samples, int32_t* starts, int64_t begin,
                  int64_t end) {
  const bool has_taps = p.k[0] > 0 && p.k[1] > 0 && p.k[2] > 0;
  const int64_t per_plane = p.out[0] + p.out[1] + p.out[2];
  scalar_t alpha[3];
  for (int d = 0; d < 3; ++d) alpha[d] = fractional_alpha<scalar_t>(p.in[d], p.out[d], p.k[d]);
  for (int64_t plane = begin; plane < end; ++plane) {
    const scalar_t* u = samples + plane * dims;  // samples are (n, c, dims), plane = n * C + c
    int32_t* s = starts + plane * per_plane;
    for (int d = 0; d < 3; ++d) {
      for (int64_t o = 0; o < p.out[d]; ++o) {
        const int64_t start = d < 3 - dims ? 0
                                           : fractional_window_start_at<scalar_t>(u[sample_slot(dims, d)], alpha[d],
                                                                                  p.in[d], p.out[d], p.k[d], o);
        if (has_taps && (start < 0 || start + p.k[d] > p.in[d]))
          TORCH_CHECK(false, "fractional_max_pool", dims, "d: the window of output ", o, " along spatial dim ",
                      d - (3 - dims), " starts at ", start, ", outside the input's valid starts [0, ",
                      p.in[d] - p.k[d], "] (the random samples round so in this dtype)");
        *s++ = static_cast<int32_t>(start);
      }
    }
  }
}

DType kernel_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::f32;
    case at::kDouble: return DType::f64;
    case at::kHalf: return DType::f16;
    default: return DType::bf16;
  }
}

template <typename scalar_t>
void backward_planes(int dims, int64_t in_plane, int64_t out_plane, const scalar_t* grad_output,
                     const int64_t* indices, scalar_t* grad_input, int64_t begin, int64_t end) {
  for (int64_t plane = begin; plane < end; ++plane) {
    scalar_t* gi = grad_input + plane * in_plane;
    const scalar_t* go = grad_output + plane * out_plane;
    const int64_t* idx = indices + plane * out_plane;
    std::fill(gi, gi + in_plane, scalar_t(0));
    // The same per-plane loop as the CUDA kernel (fractional_pool.h).
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const int64_t bad = fractional_backward_plane<scalar_t, acc_t, int64_t>(go, idx, gi, in_plane, out_plane);
    if (bad >= 0) throw_invalid_fractional_index(dims, idx[bad], in_plane);
  }
}

template <typename F>
void dispatch_fractional(at::ScalarType type, const char* name, F&& f) {
  switch (type) {
    case at::kFloat: return f(float());
    case at::kDouble: return f(double());
    case at::kHalf: return f(c10::Half());
    case at::kBFloat16: return f(c10::BFloat16());
    default: TORCH_CHECK_NOT_IMPLEMENTED(false, "\"", name, "\" not implemented for '", type, "'");
  }
}

int64_t grain_for(int64_t work_per_plane) {
  return std::max<int64_t>(1, kGrainWork / std::max<int64_t>(1, work_per_plane));
}

template <int kDims>
struct CpuFractionalPool {
  static std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                    at::IntArrayRef output_size, const at::Tensor& random_samples) {
    return run(input, kernel_size, output_size, random_samples, true);
  }

  static at::Tensor values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                           const at::Tensor& random_samples) {
    return std::get<0>(run(input, kernel_size, output_size, random_samples, false));
  }

  // The output, and its int64 indices where with_indices (else undefined).
  static std::tuple<at::Tensor, at::Tensor> run(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                at::IntArrayRef output_size, const at::Tensor& random_samples,
                                                bool with_indices) {
    const auto shape = fractional_pool_output_shape<int64_t>(kDims, input, kernel_size, output_size, random_samples);
    const char* name = fractional_forward_kernel_name(kDims);
    TORCH_CHECK_NOT_IMPLEMENTED(is_fractional_dtype(input.scalar_type()), "\"", name, "\" not implemented for '",
                                input.scalar_type(), "'");
    at::Tensor output = at::empty(shape, input.options());
    at::Tensor indices = with_indices ? at::empty(shape, input.options().dtype(at::kLong)) : at::Tensor();
    if (output.numel() == 0) return {output, indices};
    // torch's kernel computes on a contiguous copy; its sizes are ints.
    TORCH_CHECK(input.size(-1) <= INT32_MAX && input.size(-2) <= INT32_MAX && input.size(-3) <= INT32_MAX,
                "fractional_max_pool", kDims, "d: input sizes beyond 2^31-1 are not supported");
    const at::Tensor samples = random_samples.contiguous();
    const FractionalPlanes p = describe(kDims, input.sizes(), kernel_size, output_size);
    std::vector<int32_t> starts(p.planes * (p.out[0] + p.out[1] + p.out[2]));
    dispatch_fractional(input.scalar_type(), name, [&](auto zero) {
      using scalar_t = decltype(zero);
      const scalar_t* s_ptr = samples.const_data_ptr<scalar_t>();
      at::parallel_for(0, p.planes, grain_for(p.out[0] + p.out[1] + p.out[2]), [&](int64_t begin, int64_t end) {
        table_starts<scalar_t>(kDims, p, s_ptr, starts.data(), begin, end);
      });
    });
    FractionalPlan plan{};
    for (int d = 0; d < 3; ++d) {
      plan.in[d] = p.in[d];
      plan.out[d] = p.out[d];
      plan.k[d] = p.k[d];
    }
    plan.starts = starts.data();
    const FractionalForwardFn fn = active_kernels().fractional_forward[static_cast<int>(kernel_dtype(input.scalar_type()))];
    void* out_ptr = output.mutable_data_ptr();
    int64_t* idx_ptr = with_indices ? indices.mutable_data_ptr<int64_t>() : nullptr;  // null: values only
    const int64_t rows_per_plane = p.out[0] * p.out[1];
    if (!stored_in_layout(input, PoolLayout::planar, kDims) && stored_in_layout(input, PoolLayout::channels_last, kDims)) {
      forward_channels_last(input, p, plan, fn, out_ptr, idx_ptr);
      return {output, indices};
    }
    const at::Tensor in = input.contiguous();
    // Work items are output rows (plane, ot, oh): a batch of one spreads too.
    const int64_t work = std::max<int64_t>(1, p.out[2]) * std::max<int64_t>(1, p.k[0] * p.k[1] * p.k[2]);
    const void* in_ptr = in.const_data_ptr();
    at::parallel_for(0, p.planes * rows_per_plane, grain_for(work),
                     [&](int64_t begin, int64_t end) { fn(plan, in_ptr, out_ptr, idx_ptr, begin, end); });
    return {output, indices};
  }

  // A channels-last input, pooled without a planar copy of it: work items are
  // (image, block of channels); each block's planes are transposed into a
  // scratch buffer of the thread's (64 bytes of channels a position: one
  // cache line read per position, the planes ~0.5 MB for a 94x94 map, in L2)
  // and pooled from there. Against a planar copy of the whole input first
  // (written to memory and read back), 2x faster on Graham's 94x94 layer.
  static void forward_channels_last(const at::Tensor& input, const FractionalPlanes& p, const FractionalPlan& plan,
                                    FractionalForwardFn fn, void* out_ptr, int64_t* idx_ptr) {
    const int64_t bytes = input.element_size();
    const int64_t C = p.channels, in_plane = p.in[0] * p.in[1] * p.in[2];
    const int64_t block = std::min<int64_t>(C, std::max<int64_t>(1, 64 / bytes));
    const int64_t blocks = (C + block - 1) / block;
    const int64_t rows_per_plane = p.out[0] * p.out[1];
    const char* in_ptr = static_cast<const char*>(input.const_data_ptr());
    at::parallel_for(0, (p.planes / C) * blocks, 1, [&](int64_t begin, int64_t end) {
      const std::unique_ptr<char[]> scratch(new char[block * in_plane * bytes]);
      FractionalPlan q = plan;
      for (int64_t item = begin; item < end; ++item) {
        const int64_t n = item / blocks, c0 = (item % blocks) * block, nc = std::min(block, C - c0);
        // (position, channel) of image n from c0 -> (channel, position).
        transpose_words(in_ptr + (n * in_plane * C + c0) * bytes, C, scratch.get(), in_plane, in_plane, nc, bytes);
        q.first_plane = n * C + c0;
        fn(q, scratch.get(), out_ptr, idx_ptr, q.first_plane * rows_per_plane, (q.first_plane + nc) * rows_per_plane);
      }
    });
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef output_size, const at::Tensor& indices) {
    check_fractional_pool_backward(kDims, grad_output, input, output_size, indices);
    at::Tensor grad_input = at::empty(input.sizes(), input.options().memory_format(at::MemoryFormat::Contiguous));
    if (grad_input.numel() == 0) return grad_input;
    const at::Tensor go = contiguous_in_cpu(grad_output, PoolLayout::planar, kDims);
    const at::Tensor idx = contiguous_in_cpu(indices, PoolLayout::planar, kDims);
    const FractionalPlanes p = describe(kDims, input.sizes(), kernel_size, output_size);
    const int64_t in_plane = p.in[0] * p.in[1] * p.in[2];
    const int64_t out_plane = p.out[0] * p.out[1] * p.out[2];
    dispatch_fractional(input.scalar_type(), fractional_backward_kernel_name(kDims), [&](auto zero) {
      using scalar_t = decltype(zero);
      const scalar_t* go_ptr = go.const_data_ptr<scalar_t>();
      const int64_t* idx_ptr = idx.const_data_ptr<int64_t>();
      scalar_t* gi_ptr = grad_input.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, p.planes, grain_for(in_plane + out_plane), [&](int64_t begin, int64_t end) {
        backward_planes<scalar_t>(kDims, in_plane, out_plane, go_ptr, idx_ptr, gi_ptr, begin, end);
      });
    });
    return grad_input;
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastpool, CPU, m) {
  impl_fractional_pool_ops<CpuFractionalPool>(m);
}

}  // namespace fastpool::cpu
