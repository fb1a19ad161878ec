// CPU implementation of fractional_max_pool{2,3}d and their backward ops:
// validate (fractional_shape.h), allocate (torch computes on a contiguous copy
// and returns contiguous tensors, whatever the input's layout), run per (n, c)
// plane in parallel.
//
// Forward: each plane's window starts are tabled once per dim from its samples
// (fractional_window_start, the rule torch uses), then every output is the max
// over its k_T x k_H x k_W window with torch's argmax rule: the first greatest
// value in raster order, a NaN replacing whatever came before it (so the last
// NaN wins), and the window's first element when every value is -inf (or the
// window is empty, for kernel sizes <= 0, which torch accepts).
// Backward: per plane, grad_output added into grad_input at the indices in
// output raster order, in the input's dtype (torch's order and rounding, so
// Half/BFloat16 gradients are bit-identical), one thread per plane: no
// atomics, deterministic.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Half.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "../fractional_pool.h"
#include "../fractional_shape.h"
#include "../op_list.h"

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

template <typename scalar_t>
inline float as_float(scalar_t v) { return static_cast<float>(v); }
inline double as_float(double v) { return v; }

// One plane's outputs, a row of outputs at a time: for each tap of the
// windows (in raster order within the window: t, h, then w), one pass over the
// row's outputs that compares and selects without branches, so the compiler
// vectorises it and random data costs no mispredictions. index_t: int32_t
// where the plane's flat indices fit (narrower selects), else int64_t.
template <typename scalar_t, typename index_t>
void forward_plane(const FractionalPlanes& p, const int64_t* starts_t, const int64_t* starts_h,
                   const index_t* starts_w, const scalar_t* in, scalar_t* out, int64_t* idx,
                   decltype(as_float(scalar_t()))* best, index_t* arg) {
  using acc_t = decltype(as_float(scalar_t()));
  const int64_t H = p.in[1], W = p.in[2], OW = p.out[2];
  for (int64_t ot = 0; ot < p.out[0]; ++ot) {
    const int64_t t0 = starts_t[ot];
    for (int64_t oh = 0; oh < p.out[1]; ++oh) {
      const int64_t h0 = starts_h[oh];
      // The window's first element: torch's argmax when no value beats -inf.
      const index_t first = static_cast<index_t>((t0 * H + h0) * W);
      for (int64_t ow = 0; ow < OW; ++ow) {
        best[ow] = -std::numeric_limits<acc_t>::infinity();
        arg[ow] = first + starts_w[ow];
      }
      for (int64_t t = t0; t < t0 + p.k[0]; ++t) {
        for (int64_t h = h0; h < h0 + p.k[1]; ++h) {
          const index_t row_start = static_cast<index_t>((t * H + h) * W);
          const scalar_t* row = in + row_start;
          for (int64_t j = 0; j < p.k[2]; ++j) {
            for (int64_t ow = 0; ow < OW; ++ow) {
              const index_t w = starts_w[ow] + static_cast<index_t>(j);
              const acc_t v = as_float(row[w]);
              // torch's rule: a greater value, or any NaN, takes the place.
              const bool take = v > best[ow] || v != v;
              best[ow] = take ? v : best[ow];
              arg[ow] = take ? row_start + w : arg[ow];
            }
          }
        }
      }
      for (int64_t ow = 0; ow < OW; ++ow) {
        out[ow] = static_cast<scalar_t>(best[ow]);
        idx[ow] = arg[ow];
      }
      out += OW;
      idx += OW;
    }
  }
}

template <typename scalar_t>
void forward_planes(int dims, const FractionalPlanes& p, const scalar_t* input, const scalar_t* samples,
                    scalar_t* output, int64_t* indices, int64_t begin, int64_t end) {
  using acc_t = decltype(as_float(scalar_t()));
  std::vector<int64_t> starts[3];
  for (int d = 0; d < 3; ++d) starts[d].resize(p.out[d]);
  std::vector<int32_t> starts_w32(p.out[2]), arg32(p.out[2]);
  std::vector<int64_t> arg64(p.out[2]);
  std::vector<acc_t> best(p.out[2]);
  const int64_t in_plane = p.in[0] * p.in[1] * p.in[2];
  const int64_t out_plane = p.out[0] * p.out[1] * p.out[2];
  const bool has_taps = p.k[0] > 0 && p.k[1] > 0 && p.k[2] > 0;
  // Windows with kernel sizes <= 0 may start past the plane; their "indices" too.
  const bool narrow = in_plane + (has_taps ? 0 : 2 * (p.in[1] + 1) * (p.in[2] + 1) * (p.in[0] + 1)) < INT32_MAX;
  for (int64_t plane = begin; plane < end; ++plane) {
    const scalar_t* u = samples + plane * dims;  // samples are (n, c, dims), n = plane / C, c = plane % C
    for (int d = 0; d < 3; ++d) {
      for (int64_t o = 0; o < p.out[d]; ++o) {
        starts[d][o] = d < 3 - dims ? 0 : fractional_window_start<scalar_t>(u[sample_slot(dims, d)], p.in[d], p.out[d], p.k[d], o);
        // torch asserts every tap lies inside the input; windows of these
        // samples would not (Half/BFloat16 rounding can push a start past in - k).
        TORCH_CHECK(!has_taps || (starts[d][o] >= 0 && starts[d][o] + p.k[d] <= p.in[d]),
                    "fractional_max_pool", dims, "d: the window of output ", o, " along spatial dim ",
                    d - (3 - dims), " starts at ", starts[d][o], ", outside the input's valid starts [0, ",
                    p.in[d] - p.k[d], "] (the random samples round so in this dtype)");
      }
    }
    const scalar_t* in = input + plane * in_plane;
    if (narrow) {
      for (int64_t o = 0; o < p.out[2]; ++o) starts_w32[o] = static_cast<int32_t>(starts[2][o]);
      forward_plane<scalar_t, int32_t>(p, starts[0].data(), starts[1].data(), starts_w32.data(), in,
                                       output + plane * out_plane, indices + plane * out_plane, best.data(),
                                       arg32.data());
    } else {
      forward_plane<scalar_t, int64_t>(p, starts[0].data(), starts[1].data(), starts[2].data(), in,
                                       output + plane * out_plane, indices + plane * out_plane, best.data(),
                                       arg64.data());
    }
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
    for (int64_t o = 0; o < out_plane; ++o) {
      const int64_t i = idx[o];
      TORCH_CHECK(i >= 0 && i < in_plane, "fractional_max_pool", dims, "d_backward: index ", i,
                  " is outside the input plane of ", in_plane, " elements");
      gi[i] += go[o];
    }
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
    const auto shape = fractional_pool_output_shape<int64_t>(kDims, input, kernel_size, output_size, random_samples);
    const char* name = fractional_forward_kernel_name(kDims);
    TORCH_CHECK_NOT_IMPLEMENTED(is_fractional_dtype(input.scalar_type()), "\"", name, "\" not implemented for '",
                                input.scalar_type(), "'");
    at::Tensor output = at::empty(shape, input.options());
    at::Tensor indices = at::empty(shape, input.options().dtype(at::kLong));
    if (output.numel() == 0) return {output, indices};
    const at::Tensor in = input.contiguous();
    const at::Tensor samples = random_samples.contiguous();
    const FractionalPlanes p = describe(kDims, input.sizes(), kernel_size, output_size);
    const int64_t work = std::max<int64_t>(1, p.out[0] * p.out[1] * p.out[2]) *
                         std::max<int64_t>(1, p.k[0] * p.k[1] * p.k[2]);
    dispatch_fractional(input.scalar_type(), name, [&](auto zero) {
      using scalar_t = decltype(zero);
      const scalar_t* in_ptr = in.const_data_ptr<scalar_t>();
      const scalar_t* s_ptr = samples.const_data_ptr<scalar_t>();
      scalar_t* out_ptr = output.mutable_data_ptr<scalar_t>();
      int64_t* idx_ptr = indices.mutable_data_ptr<int64_t>();
      at::parallel_for(0, p.planes, grain_for(work), [&](int64_t begin, int64_t end) {
        forward_planes<scalar_t>(kDims, p, in_ptr, s_ptr, out_ptr, idx_ptr, begin, end);
      });
    });
    return {output, indices};
  }

  static at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                             at::IntArrayRef output_size, const at::Tensor& indices) {
    check_fractional_pool_backward(kDims, grad_output, input, output_size, indices);
    at::Tensor grad_input = at::empty(input.sizes(), input.options().memory_format(at::MemoryFormat::Contiguous));
    if (grad_input.numel() == 0) return grad_input;
    const at::Tensor go = grad_output.contiguous();
    const at::Tensor idx = indices.contiguous();
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
