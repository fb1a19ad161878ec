// The CUDA fractional_max_pool{2,3}d op and its backward, written once over an
// executor (max_pool_launcher.h describes executors): checks
// (fractional_shape.h, shared with the CPU and Meta kernels), allocation,
// kernel bodies, index width and grid. fractional_max_pool.cu registers them
// over the CUDA executor, host_executor.cpp runs them over the host executor,
// so CI runs every host-side decision and every body.
//
// Forward: one work item per output element (the output is contiguous, as
// torch's CUDA op allocates it: its shape function is shared with the CPU op
// and gives no strides, whatever the input's layout). The input is read in
// place through its strides (any layout, views included, as torch's CUDA
// kernel reads it through an accessor). Each item computes its window's start
// along each dim from its plane's sample (fractional_pool.h) in acc_t, the
// type torch's CUDA kernel computes in: float for float, Half and BFloat16
// (the sample is converted exactly), double for double. So a Half input gets
// the windows of its float upcast, where torch's CPU kernel computes in Half.
// Then the window is scanned t, h, w with torch's rule (a tap wins if
// `v > best || isnan(v)`: the first of equal values, the last NaN), the
// running max starting at -inf with the window's first element as its index;
// windows without taps (kernel sizes <= 0) keep that. Indices are flat per
// plane ((t * H + h) * W + w), int64.
// A window with taps that would leave the input (the samples cannot place one
// there in float or double arithmetic; the check costs a compare per dim) is
// not read: its position is recorded and the host raises the CPU op's error.
//
// Backward: deterministic, no atomics on the values. grad_input is zeroed
// (a coalesced fill), then one work item per (n, c) plane adds that plane's
// grad_output into grad_input at its indices, in output raster order, each
// add rounded to the element type (Half/BFloat16: computed in float, rounded
// to the type after every add). That is the order and rounding of torch's CPU
// kernel and of fastpool's CPU op, so the gradients equal theirs bit for bit
// for every dtype; torch's CUDA kernel adds with atomicAdd in no fixed order
// (bit-equal to this only where no two outputs share an index). The backward
// op has no samples, so its indices may point anywhere in the plane: a plane
// item stops at its first index outside the plane, records its position (the
// smallest over all planes: the first in (N, C, output raster) order, by an
// integer atomicMin), and the host raises the CPU op's error after the kernel
// (a device-to-host sync per call: the price of a clean error instead of a
// write out of bounds). grad_output and indices are read as contiguous copies
// (torch's CPU op does the same); grad_input is contiguous, as torch's.
// A plane per thread leaves the GPU underused when N * C is small, and its
// reads stride by a plane across a warp (an H200, 2026-11-28: 0.32 ms for
// 1024 planes of 33x33, 4.0 ms for 64 of 32^3, torch's atomics 16-18 us);
// the gain is determinism with no atomics and no assumption on where the
// indices point. So autograd does not train through it: the training ops
// (with_offsets, offsets_backward, offsets_to_indices, as on the CPU) save
// each output's tap in its window (1 byte up to 255 taps) and the samples,
// and their backward is a gather over every input with the windows
// recomputed (OffsetsBackward below): the same bits, every input in parallel.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

#include "../fractional_pool.h"
#include "../fractional_shape.h"
#include "../op_list.h"  // fractional_pool_name
#include "../pool_shape.h"  // empty_in_layout
#include "launch.h"
#include "max_pool_launcher.h"    // launch_items, acc_t, lowest_value
#include "max_unpool_launcher.h"  // atomic_min

namespace fastpool {
namespace cuda_fractional {

using cuda_impl::acc_t;

constexpr long long kNoFirstBad = std::numeric_limits<long long>::max();

// Sizes normalised to three spatial dims (2-d: a depth of 1), as the CPU op.
struct FractionalSizes {
  int dims;
  int64_t batch, channels;
  int64_t in[3], out[3], k[3];
};

inline FractionalSizes fractional_sizes(int dims, c10::IntArrayRef in_sizes, c10::IntArrayRef kernel_size,
                                        c10::IntArrayRef output_size) {
  FractionalSizes s{dims, 1, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
  const int64_t ndim = static_cast<int64_t>(in_sizes.size());
  s.channels = in_sizes[ndim - dims - 1];
  s.batch = ndim == dims + 2 ? in_sizes[0] : 1;
  for (int i = 0; i < dims; ++i) {
    s.in[3 - dims + i] = in_sizes[ndim - dims + i];
    s.out[3 - dims + i] = output_size[i];
    s.k[3 - dims + i] = kernel_size[i];
  }
  return s;
}

// The sample of spatial dim d (0 = T, 1 = H, 2 = W) among a plane's samples:
// torch's 2-d kernels read W from sample 0 and H from sample 1, its 3-d
// kernels T, H, W from samples 0, 1, 2.
FASTPOOL_HOST_DEVICE inline int sample_slot(int dims, int d) { return dims == 2 ? 2 - d : d; }

// Splits i, a linear position over (plane, t, h, w) of a volume of `size`
// (T, H, W), into x (t, h, w) with the volume's dividers; returns the plane.
template <typename index_t>
FASTPOOL_HOST_DEVICE inline index_t split_volume(index_t i, const cuda_launch::Divider<index_t> (&by)[3],
                                                 const int64_t (&size)[3], index_t (&x)[3]) {
  for (int d = 2; d >= 0; --d) {
    const index_t q = by[d].div(i);
    x[d] = i - q * static_cast<index_t>(size[d]);
    i = q;
  }
  return i;
}

template <typename scalar_t, typename index_t>
struct ForwardArgs {
  using acc = acc_t<scalar_t>;
  const scalar_t* input;
  index_t in_stride[5];  // n, c, t, h, w (elements)
  const scalar_t* samples;  // contiguous, (>= N, C, dims): plane n * C + c at (n * C + c) * dims
  scalar_t* output;         // contiguous (N, C, out...)
  void* argmax;             // contiguous (N, C, out...), argmax_t: int64 flat indices, or uint8/int32 taps
  cuda_launch::Divider<index_t> by_out[3], by_channels;  // (T, H, W) of the output
  FractionalSizes s;
  acc alpha[3];  // fractional_alpha per dim, in acc_t (what torch's kernel computes per window)
  long long* first_bad;
};

// argmax_t int64_t: each output's flat index in its plane (the indices op);
// uint8_t or int32_t: its tap within the window, (dt * k_H + dh) * k_W + dw
// (the training op with_offsets, as the CPU kernels number taps).
template <typename scalar_t, typename index_t, typename argmax_t>
struct Forward {
  using Args = ForwardArgs<scalar_t, index_t>;
  using acc = acc_t<scalar_t>;
  static constexpr bool kTaps = !std::is_same_v<argmax_t, int64_t>;
  static constexpr const char* kName = kTaps ? "fractional_forward_taps" : "fractional_forward";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const FractionalSizes& s = a.s;
    index_t o[3];
    const index_t plane = split_volume(i, a.by_out, s.out, o);  // n * C + c
    const index_t n = a.by_channels.div(plane);
    const index_t c = plane - n * static_cast<index_t>(s.channels);
    const scalar_t* u = a.samples + plane * static_cast<index_t>(s.dims);
    const bool has_taps = s.k[0] > 0 && s.k[1] > 0 && s.k[2] > 0;
    int64_t start[3];
    for (int d = 0; d < 3; ++d) {
      start[d] = d < 3 - s.dims ? 0
                                : fractional_window_start_at<acc>(static_cast<acc>(u[sample_slot(s.dims, d)]),
                                                                  a.alpha[d], s.in[d], s.out[d], s.k[d], o[d]);
      if (has_taps && (start[d] < 0 || start[d] + s.k[d] > s.in[d])) {
        cuda_unpool::atomic_min(a.first_bad, static_cast<long long>(i));
        return;
      }
    }
    acc best = cuda_logic::lowest_value<acc>();
    scalar_t best_v = static_cast<scalar_t>(best);
    int64_t at = (start[0] * s.in[1] + start[1]) * s.in[2] + start[2];
    int64_t tap = 0;  // a window without taps: tap 0, its start
    if (has_taps) {
      const index_t origin = n * a.in_stride[0] + c * a.in_stride[1];
      for (int64_t dt = 0; dt < s.k[0]; ++dt) {
        for (int64_t dh = 0; dh < s.k[1]; ++dh) {
          const int64_t t = start[0] + dt, h = start[1] + dh;
          const index_t row = origin + static_cast<index_t>(t) * a.in_stride[2] +
                              static_cast<index_t>(h) * a.in_stride[3];
          const int64_t flat_row = (t * s.in[1] + h) * s.in[2];
          for (int64_t w = start[2]; w < start[2] + s.k[2]; ++w) {
            const scalar_t v = a.input[row + static_cast<index_t>(w) * a.in_stride[4]];
            const acc vf = static_cast<acc>(v);
            if (vf > best || cuda_logic::is_nan(vf)) {
              best = vf;
              best_v = v;
              at = flat_row + w;
              if (kTaps) tap = (dt * s.k[1] + dh) * s.k[2] + (w - start[2]);
            }
          }
        }
      }
    }
    a.output[i] = best_v;
    static_cast<argmax_t*>(a.argmax)[i] = static_cast<argmax_t>(kTaps ? tap : at);
  }
};

// The training backward (offsets_backward): a gather, one item per grad_input
// element, in the order grad_input is stored (planar: plane, t, h, w;
// channels last: n, t, h, w, c), so its writes are coalesced. The windows
// come from the samples as the forward computed them (acc_t), so the
// outputs covering input x along a dim are those whose start lies in
// [x - k + 1, x], a run of consecutive outputs (starts never decrease),
// found by two binary searches per dim. Each covering output whose tap names x
// adds its gradient, in output raster order, every add rounded to scalar_t:
// the order and rounding of the scatter of torch's CPU kernel and of the
// indices backward above, so the bits are theirs; but all inputs run in
// parallel instead of a plane per thread. A tap outside its window names no
// input: it adds nothing (no device-to-host sync to raise on it; the CPU op
// raises).
template <typename scalar_t, typename offset_t, typename index_t>
struct OffsetsBackwardArgs {
  using acc = acc_t<scalar_t>;
  const scalar_t* grad_output;  // contiguous (N, C, out...)
  const offset_t* offsets;      // contiguous (N, C, out...)
  const scalar_t* samples;      // contiguous (>= N, C, dims)
  scalar_t* grad_input;
  index_t gi_stride[5];  // n, c, t, h, w (elements)
  bool channels_last;    // the items' order
  cuda_launch::Divider<index_t> by_in[3], by_channels;  // (T, H, W) of the input
  FractionalSizes s;
  acc alpha[3];
};

// The outputs [*lo, *hi) whose window along one dim covers input x.
template <typename acc>
FASTPOOL_HOST_DEVICE inline void fractional_covering(acc u, acc alpha, int64_t in, int64_t out, int64_t k, int64_t x,
                                                     int64_t* lo, int64_t* hi) {
  // First output whose start is >= v (starts never decrease along the dim).
  const auto first_start_at_least = [&](int64_t v) {
    int64_t a = 0, b = out;
    while (a < b) {
      const int64_t m = (a + b) / 2;
      if (fractional_window_start_at<acc>(u, alpha, in, out, k, m) < v) a = m + 1;
      else b = m;
    }
    return a;
  };
  *lo = first_start_at_least(x - k + 1);
  *hi = first_start_at_least(x + 1);
}

template <typename scalar_t, typename offset_t, typename index_t>
struct OffsetsBackward {
  using Args = OffsetsBackwardArgs<scalar_t, offset_t, index_t>;
  using acc = acc_t<scalar_t>;
  static constexpr const char* kName = "fractional_offsets_backward";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const FractionalSizes& s = a.s;
    index_t x[3], rest = i, q, c = 0;
    if (a.channels_last) {
      q = a.by_channels.div(rest);
      c = rest - q * static_cast<index_t>(s.channels);
      rest = q;
    }
    q = split_volume(rest, a.by_in, s.in, x);
    index_t n, plane;
    if (a.channels_last) {
      n = q;
      plane = n * static_cast<index_t>(s.channels) + c;
    } else {
      plane = q;
      n = a.by_channels.div(plane);
      c = plane - n * static_cast<index_t>(s.channels);
    }
    const scalar_t* u = a.samples + plane * static_cast<index_t>(s.dims);
    acc ud[3] = {acc(0), acc(0), acc(0)};
    int64_t lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
    for (int d = 3 - s.dims; d < 3; ++d) {
      ud[d] = static_cast<acc>(u[sample_slot(s.dims, d)]);
      fractional_covering<acc>(ud[d], a.alpha[d], s.in[d], s.out[d], s.k[d], x[d], &lo[d], &hi[d]);
    }
    const auto start = [&](int d, int64_t o) -> int64_t {
      return d < 3 - s.dims ? 0 : fractional_window_start_at<acc>(ud[d], a.alpha[d], s.in[d], s.out[d], s.k[d], o);
    };
    const index_t out_base = plane * static_cast<index_t>(s.out[0] * s.out[1] * s.out[2]);
    scalar_t sum = static_cast<scalar_t>(0);
    for (int64_t ot = lo[0]; ot < hi[0]; ++ot) {
      const int64_t dt = x[0] - start(0, ot);
      for (int64_t oh = lo[1]; oh < hi[1]; ++oh) {
        const int64_t dh = x[1] - start(1, oh);
        for (int64_t ow = lo[2]; ow < hi[2]; ++ow) {
          const int64_t tap = (dt * s.k[1] + dh) * s.k[2] + (x[2] - start(2, ow));
          const index_t o = out_base + static_cast<index_t>((ot * s.out[1] + oh) * s.out[2] + ow);
          if (static_cast<int64_t>(a.offsets[o]) == tap)
            sum = static_cast<scalar_t>(static_cast<acc>(sum) + static_cast<acc>(a.grad_output[o]));
        }
      }
    }
    a.grad_input[n * a.gi_stride[0] + c * a.gi_stride[1] + x[0] * a.gi_stride[2] + x[1] * a.gi_stride[3] +
                 x[2] * a.gi_stride[4]] = sum;
  }
};

// offsets_to_indices: one item per output, its tap turned into its flat index
// in the plane; a tap outside the window records the output's position (the
// smallest, by an integer atomicMin) for the host to raise on.
template <typename scalar_t, typename offset_t, typename index_t>
struct OffsetsToIndicesArgs {
  using acc = acc_t<scalar_t>;
  const offset_t* offsets;  // contiguous (N, C, out...)
  const scalar_t* samples;  // contiguous (>= N, C, dims)
  int64_t* indices;         // contiguous (N, C, out...)
  cuda_launch::Divider<index_t> by_out[3];  // (T, H, W) of the output
  FractionalSizes s;
  acc alpha[3];
  long long* first_bad;
};

template <typename scalar_t, typename offset_t, typename index_t>
struct OffsetsToIndices {
  using Args = OffsetsToIndicesArgs<scalar_t, offset_t, index_t>;
  using acc = acc_t<scalar_t>;
  static constexpr const char* kName = "fractional_offsets_to_indices";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const FractionalSizes& s = a.s;
    index_t o[3];
    const index_t plane = split_volume(i, a.by_out, s.out, o);
    const scalar_t* u = a.samples + plane * static_cast<index_t>(s.dims);
    // The window's extent per dim (a window without taps: its start, tap 0).
    int64_t start[3], extent[3];
    for (int d = 0; d < 3; ++d) {
      start[d] = d < 3 - s.dims ? 0
                                : fractional_window_start_at<acc>(static_cast<acc>(u[sample_slot(s.dims, d)]),
                                                                  a.alpha[d], s.in[d], s.out[d], s.k[d], o[d]);
      extent[d] = s.k[0] > 0 && s.k[1] > 0 && s.k[2] > 0 ? s.k[d] : 1;
    }
    const int64_t tap = static_cast<int64_t>(a.offsets[i]);
    if (tap < 0 || tap >= extent[0] * extent[1] * extent[2]) {
      cuda_unpool::atomic_min(a.first_bad, static_cast<long long>(i));
      a.indices[i] = 0;
      return;
    }
    const int64_t dw = tap % extent[2], dh = tap / extent[2] % extent[1], dt = tap / (extent[1] * extent[2]);
    a.indices[i] = ((start[0] + dt) * s.in[1] + start[1] + dh) * s.in[2] + start[2] + dw;
  }
};

template <typename scalar_t, typename index_t>
struct BackwardArgs {
  const scalar_t* grad_output;  // contiguous
  const int64_t* indices;       // contiguous
  scalar_t* grad_input;         // contiguous, zeroed
  index_t in_plane, out_plane;
  long long* first_bad;
};

template <typename scalar_t, typename index_t>
struct Backward {
  using Args = BackwardArgs<scalar_t, index_t>;
  using acc = acc_t<scalar_t>;
  static constexpr const char* kName = "fractional_backward";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t plane) {
    const index_t bad = fractional_backward_plane<scalar_t, acc, index_t>(
        a.grad_output + plane * a.out_plane, a.indices + plane * a.out_plane, a.grad_input + plane * a.in_plane,
        a.in_plane, a.out_plane);
    if (bad >= 0) cuda_unpool::atomic_min(a.first_bad, static_cast<long long>(plane) * a.out_plane + bad);
  }
};

// ---- host side: shared by the CUDA build and the host executor ----

// The floating types torch's CUDA kernels dispatch, or its NotImplementedError.
template <typename F>
void with_float_type(const char* name, at::ScalarType dtype, F&& f) {
  switch (dtype) {
    case at::kFloat: return f(float{});
    case at::kDouble: return f(double{});
    case at::kHalf: return f(c10::Half{});
    case at::kBFloat16: return f(c10::BFloat16{});
    default: break;
  }
  TORCH_CHECK_NOT_IMPLEMENTED(false, "\"", name, "\" not implemented for '", dtype, "'");
}

// The check a typed accessor makes: torch's "expected scalar type" error.
inline void check_dtype(const at::Tensor& t, at::ScalarType expected) {
  TORCH_CHECK(t.scalar_type() == expected, "expected scalar type ", expected, " but found ", t.scalar_type());
}

// Calls f(T{}) for the argmax type: int64 (indices), uint8 or int32 (taps).
template <typename F>
void with_argmax_type(at::ScalarType dtype, F&& f) {
  switch (dtype) {
    case at::kLong: return f(int64_t{});
    case at::kByte: return f(uint8_t{});
    case at::kInt: return f(int32_t{});
    default: TORCH_CHECK(false, "fractional argmax of dtype ", dtype);
  }
}

// The forward; argmax_dtype kLong: indices (the op), else the training op's
// taps (fractional_offsets_dtype).
template <class Exec>
std::tuple<at::Tensor, at::Tensor> fractional_max_pool(const Exec& exec, int dims, const at::Tensor& input,
                                                       at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                                                       const at::Tensor& random_samples,
                                                       at::ScalarType argmax_dtype = at::kLong) {
  const auto shape = fractional_pool_output_shape<int64_t>(dims, input, kernel_size, output_size, random_samples);
  at::Tensor output = at::empty(shape, input.options());
  at::Tensor indices = at::empty(shape, input.options().dtype(argmax_dtype));
  if (output.numel() == 0) return {output, indices};  // like torch's CUDA op: before the dtype dispatch
  with_float_type(fractional_forward_kernel_name(dims, true), input.scalar_type(), [&](auto zero) {
    using scalar_t = std::decay_t<decltype(zero)>;  // (decay: GCC 12 sees a reference in nested generic lambdas)
    using acc = acc_t<scalar_t>;
    const FractionalSizes s = fractional_sizes(dims, input.sizes(), kernel_size, output_size);
    const at::Tensor samples = random_samples.contiguous();
    // The input's strides as (n, c, t, h, w): read in place, whatever its layout.
    const int64_t ndim = input.dim();
    int64_t stride[5] = {0, 0, 0, 0, 0}, size[5] = {1, 1, 1, 1, 1};
    const int64_t lead = ndim - dims - 1;  // the channel dim
    if (lead == 1) {
      stride[0] = input.stride(0);
      size[0] = input.size(0);
    }
    stride[1] = input.stride(lead);
    size[1] = input.size(lead);
    for (int i = 0; i < dims; ++i) {
      stride[5 - dims + i] = input.stride(ndim - dims + i);
      size[5 - dims + i] = input.size(ndim - dims + i);
    }
    int64_t reach = 1;  // one past the largest element offset the kernel reads
    for (int d = 0; d < 5; ++d) reach += (size[d] - 1) * stride[d];
    const at::Tensor first_bad = at::full({1}, kNoFirstBad, indices.options().dtype(at::kLong));
    const int64_t max_offset = std::max<int64_t>({reach, output.numel(), samples.numel()}) + 1;
    cuda_impl::launch_items(exec, output.numel(), max_offset, [&](const cuda_launch::Grid& grid, auto index_zero,
                                                                  auto n) {
      using index_t = decltype(index_zero);
      ForwardArgs<scalar_t, index_t> a{};
      a.input = static_cast<const scalar_t*>(input.const_data_ptr());
      for (int d = 0; d < 5; ++d) a.in_stride[d] = static_cast<index_t>(stride[d]);
      a.samples = static_cast<const scalar_t*>(samples.const_data_ptr());
      a.output = static_cast<scalar_t*>(output.mutable_data_ptr());
      a.argmax = indices.mutable_data_ptr();
      for (int d = 0; d < 3; ++d) a.by_out[d] = cuda_launch::Divider<index_t>(s.out[d]);
      a.by_channels = cuda_launch::Divider<index_t>(s.channels);
      a.s = s;
      for (int d = 0; d < 3; ++d) a.alpha[d] = fractional_alpha<acc>(s.in[d], s.out[d], s.k[d]);
      a.first_bad = reinterpret_cast<long long*>(first_bad.data_ptr());
      with_argmax_type(argmax_dtype, [&](auto argmax_zero) {
        exec.template launch<Forward<scalar_t, index_t, std::decay_t<decltype(argmax_zero)>>>(grid, a, n);
      });
    });
    const int64_t bad = first_bad.item<int64_t>();  // the sync
    if (bad != kNoFirstBad) {
      // The output element's (plane, o) and the first dim whose window leaves the input, for the CPU op's error.
      int64_t rest = bad, o[3];
      for (int d = 2; d >= 0; --d) {
        o[d] = rest % s.out[d];
        rest /= s.out[d];
      }
      const int64_t plane = rest;
      const at::Tensor u = samples.reshape({-1, dims});
      for (int d = 3 - dims; d < 3; ++d) {
        const scalar_t sample = u[plane][sample_slot(dims, d)].template item<scalar_t>();
        const int64_t start = fractional_window_start_at<acc>(
            static_cast<acc>(sample), fractional_alpha<acc>(s.in[d], s.out[d], s.k[d]), s.in[d], s.out[d], s.k[d],
            o[d]);
        if (start < 0 || start + s.k[d] > s.in[d])
          TORCH_CHECK(false, "fractional_max_pool", dims, "d: the window of output ", o[d], " along spatial dim ",
                      d - (3 - dims), " starts at ", start, ", outside the input's valid starts [0, ",
                      s.in[d] - s.k[d], "] (the random samples round so in this dtype)");
      }
      TORCH_CHECK(false, "fractional_max_pool", dims, "d: a window leaves the input");  // not reached
    }
  });
  return {output, indices};
}

template <class Exec>
at::Tensor fractional_max_pool_backward(const Exec& exec, int dims, const at::Tensor& grad_output,
                                        const at::Tensor& input, at::IntArrayRef kernel_size,
                                        at::IntArrayRef output_size, const at::Tensor& indices) {
  check_fractional_pool_backward(dims, grad_output, input, output_size, indices, /*cuda=*/true);
  // torch's CUDA kernels: an empty grad_input returns before any dtype check;
  // then 2-d reads the indices (int64) before it dispatches on grad_output's
  // dtype, 3-d after; both take grad_input (the input's dtype) as grad_output's.
  at::Tensor grad_input = at::zeros(input.sizes(), input.options().memory_format(at::MemoryFormat::Contiguous));
  if (grad_input.numel() == 0) return grad_input;
  if (dims == 2) check_dtype(indices, at::kLong);
  with_float_type(fractional_backward_kernel_name(dims, true), grad_output.scalar_type(), [&](auto zero) {
    using scalar_t = decltype(zero);
    check_dtype(grad_input, grad_output.scalar_type());
    check_dtype(indices, at::kLong);
    const FractionalSizes s = fractional_sizes(dims, input.sizes(), kernel_size, output_size);
    const at::Tensor go = grad_output.contiguous();
    const at::Tensor idx = indices.contiguous();
    const int64_t in_plane = s.in[0] * s.in[1] * s.in[2];
    const int64_t out_plane = s.out[0] * s.out[1] * s.out[2];
    const int64_t planes = s.batch * s.channels;
    const at::Tensor first_bad = at::full({1}, kNoFirstBad, idx.options());
    const int64_t max_offset = std::max<int64_t>(grad_input.numel(), go.numel()) + 1;
    cuda_impl::launch_items(exec, planes, max_offset, [&](const cuda_launch::Grid& grid, auto index_zero, auto n) {
      using index_t = decltype(index_zero);
      const BackwardArgs<scalar_t, index_t> a{static_cast<const scalar_t*>(go.const_data_ptr()),
                                              idx.const_data_ptr<int64_t>(),
                                              static_cast<scalar_t*>(grad_input.mutable_data_ptr()),
                                              static_cast<index_t>(in_plane), static_cast<index_t>(out_plane),
                                              reinterpret_cast<long long*>(first_bad.data_ptr())};
      exec.template launch<Backward<scalar_t, index_t>>(grid, a, n);
    });
    const int64_t bad = first_bad.item<int64_t>();  // the sync
    if (bad != kNoFirstBad) throw_invalid_fractional_index(dims, idx.reshape({-1})[bad].item<int64_t>(), in_plane);
  });
  return grad_input;
}

// Calls f(scalar_t{}, offset_t{}) for a training op's floating type and its
// taps' type (uint8 or int32: check_fractional_offsets has checked it).
template <typename F>
void with_offsets_types(const char* name, at::ScalarType dtype, at::ScalarType offsets_dtype, F&& f) {
  with_float_type(name, dtype, [&](auto zero) {
    if (offsets_dtype == at::kByte) f(zero, uint8_t{});
    else f(zero, int32_t{});
  });
}

// The training ops' shared preparation: checked sizes, the samples and
// offsets as contiguous tensors, alpha per dim in acc_t.
struct OffsetsJob {
  FractionalSizes s;
  at::Tensor offsets, samples;
};

inline OffsetsJob offsets_job(int dims, const char* op, const at::Tensor* grad_output, const at::Tensor& offsets,
                              at::IntArrayRef input_size, at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                              const at::Tensor& random_samples) {
  check_fractional_offsets<int64_t>(dims, op, grad_output, offsets, input_size, kernel_size, output_size,
                                    random_samples);
  return {fractional_sizes(dims, input_size, kernel_size, output_size), offsets.contiguous(),
          random_samples.contiguous()};
}

template <class Exec>
at::Tensor fractional_offsets_backward(const Exec& exec, int dims, const at::Tensor& grad_output,
                                       const at::Tensor& offsets, at::IntArrayRef input_size,
                                       at::IntArrayRef kernel_size, at::IntArrayRef output_size,
                                       const at::Tensor& random_samples, bool channels_last) {
  const std::string op = fractional_pool_name(dims, "_offsets_backward");
  const OffsetsJob job = offsets_job(dims, op.c_str(), &grad_output, offsets, input_size, kernel_size, output_size,
                                     random_samples);
  at::Tensor grad_input =
      empty_in_layout<int64_t>(input_size, grad_output.options(), layout_from_flag(channels_last), dims);
  if (grad_input.numel() == 0) return grad_input;
  const at::Tensor go = grad_output.contiguous();
  const FractionalSizes& s = job.s;
  // grad_input's strides as (n, c, t, h, w).
  const int64_t ndim = grad_input.dim(), lead = ndim - dims - 1;
  int64_t stride[5] = {0, grad_input.stride(lead), 0, 0, 0};
  if (lead == 1) stride[0] = grad_input.stride(0);
  for (int i = 0; i < dims; ++i) stride[5 - dims + i] = grad_input.stride(ndim - dims + i);
  const int64_t max_offset = std::max<int64_t>({grad_input.numel(), go.numel(), job.samples.numel()}) + 1;
  with_offsets_types(op.c_str(), grad_output.scalar_type(), job.offsets.scalar_type(), [&](auto zero,
                                                                                           auto offset_zero) {
    using scalar_t = std::decay_t<decltype(zero)>;  // (decay: GCC 12 sees a reference in nested generic lambdas)
    using offset_t = std::decay_t<decltype(offset_zero)>;
    using acc = acc_t<scalar_t>;
    cuda_impl::launch_items(exec, grad_input.numel(), max_offset, [&](const cuda_launch::Grid& grid,
                                                                      auto index_zero, auto n) {
      using index_t = decltype(index_zero);
      OffsetsBackwardArgs<scalar_t, offset_t, index_t> a{};
      a.grad_output = static_cast<const scalar_t*>(go.const_data_ptr());
      a.offsets = static_cast<const offset_t*>(job.offsets.const_data_ptr());
      a.samples = static_cast<const scalar_t*>(job.samples.const_data_ptr());
      a.grad_input = static_cast<scalar_t*>(grad_input.mutable_data_ptr());
      for (int d = 0; d < 5; ++d) a.gi_stride[d] = static_cast<index_t>(stride[d]);
      a.channels_last = channels_last;
      for (int d = 0; d < 3; ++d) a.by_in[d] = cuda_launch::Divider<index_t>(s.in[d]);
      a.by_channels = cuda_launch::Divider<index_t>(s.channels);
      a.s = s;
      for (int d = 0; d < 3; ++d) a.alpha[d] = fractional_alpha<acc>(s.in[d], s.out[d], s.k[d]);
      exec.template launch<OffsetsBackward<scalar_t, offset_t, index_t>>(grid, a, n);
    });
  });
  return grad_input;
}

template <class Exec>
at::Tensor fractional_offsets_to_indices(const Exec& exec, int dims, const at::Tensor& offsets,
                                         at::IntArrayRef input_size, at::IntArrayRef kernel_size,
                                         at::IntArrayRef output_size, const at::Tensor& random_samples) {
  const std::string op = fractional_pool_name(dims, "_offsets_to_indices");
  const OffsetsJob job =
      offsets_job(dims, op.c_str(), nullptr, offsets, input_size, kernel_size, output_size, random_samples);
  at::Tensor indices = at::empty(offsets.sizes(), offsets.options().dtype(at::kLong));
  if (indices.numel() == 0) return indices;
  const FractionalSizes& s = job.s;
  const at::Tensor first_bad = at::full({1}, kNoFirstBad, indices.options());
  const int64_t max_offset = std::max<int64_t>(indices.numel(), job.samples.numel()) + 1;
  with_offsets_types(op.c_str(), job.samples.scalar_type(), job.offsets.scalar_type(), [&](auto zero,
                                                                                          auto offset_zero) {
    using scalar_t = std::decay_t<decltype(zero)>;
    using offset_t = std::decay_t<decltype(offset_zero)>;
    using acc = acc_t<scalar_t>;
    cuda_impl::launch_items(exec, indices.numel(), max_offset, [&](const cuda_launch::Grid& grid,
                                                                   auto index_zero, auto n) {
      using index_t = decltype(index_zero);
      OffsetsToIndicesArgs<scalar_t, offset_t, index_t> a{};
      a.offsets = static_cast<const offset_t*>(job.offsets.const_data_ptr());
      a.samples = static_cast<const scalar_t*>(job.samples.const_data_ptr());
      a.indices = indices.mutable_data_ptr<int64_t>();
      for (int d = 0; d < 3; ++d) a.by_out[d] = cuda_launch::Divider<index_t>(s.out[d]);
      a.s = s;
      for (int d = 0; d < 3; ++d) a.alpha[d] = fractional_alpha<acc>(s.in[d], s.out[d], s.k[d]);
      a.first_bad = reinterpret_cast<long long*>(first_bad.data_ptr());
      exec.template launch<OffsetsToIndices<scalar_t, offset_t, index_t>>(grid, a, n);
    });
  });
  const int64_t bad = first_bad.item<int64_t>();  // the sync (a rare op: double backward, indices on demand)
  int64_t taps = 1;
  for (int d = 0; d < 3; ++d) taps *= s.k[0] > 0 && s.k[1] > 0 && s.k[2] > 0 ? s.k[d] : 1;
  TORCH_CHECK(bad == kNoFirstBad, op, ": an offset lies outside its window of ", taps, " taps");
  return indices;
}

}  // namespace cuda_fractional
}  // namespace fastpool
