// Fractional max pooling (Graham, arXiv:1412.6071): windows of a fixed size k
// whose starts follow a pseudorandom sequence drawn per (n, c) plane from a
// sample u in [0, 1) per spatial dim. The window math is here, once, for every
// backend; the argument checks and output shapes for CPU and Meta are in
// fractional_shape.cpp.
#pragma once
#include <cstdint>

#include "pool_geometry.h"

namespace fastpool {

// The start of window `i` of `out` along one dim of size `in`, for sample u:
// floor((i + u) * alpha) - floor(u * alpha) with alpha = (in - k) / (out - 1),
// and in - k for the last window (pinned to the input's end). Every operation
// is carried out in scalar_t, the input's dtype, exactly as PyTorch does: a
// float input's windows come from float arithmetic, a Half input's from Half
// arithmetic (each step rounded to Half), so the same samples give the same
// windows bit for bit. Truncation toward zero, like PyTorch's int cast.
//
// alpha depends on the sizes only, so a caller tabling many windows computes
// it once (fractional_alpha) and passes it to fractional_window_start_at: the
// same value torch computes per window, without a division per window.
template <typename scalar_t>
FASTPOOL_HOST_DEVICE inline scalar_t fractional_alpha(int64_t in, int64_t out, int64_t k) {
  return static_cast<scalar_t>(static_cast<int>(in - k)) / static_cast<scalar_t>(static_cast<int>(out - 1));
}

template <typename scalar_t>
FASTPOOL_HOST_DEVICE inline int64_t fractional_window_start_at(scalar_t u, scalar_t alpha, int64_t in, int64_t out,
                                                               int64_t k, int64_t i) {
  if (i == out - 1) return in - k;
  const scalar_t shifted = static_cast<scalar_t>(static_cast<int>(i)) + u;
  return static_cast<int64_t>(static_cast<int>(static_cast<float>(static_cast<scalar_t>(shifted * alpha)))) -
         static_cast<int64_t>(static_cast<int>(static_cast<float>(static_cast<scalar_t>(u * alpha))));
}

// double keeps its own precision when truncated (the float detour above is for
// Half/BFloat16, whose conversion to int goes through float anyway).
template <>
FASTPOOL_HOST_DEVICE inline int64_t fractional_window_start_at<double>(double u, double alpha, int64_t in, int64_t out,
                                                                       int64_t k, int64_t i) {
  if (i == out - 1) return in - k;
  return static_cast<int64_t>(static_cast<int>((static_cast<double>(static_cast<int>(i)) + u) * alpha)) -
         static_cast<int64_t>(static_cast<int>(u * alpha));
}

template <typename scalar_t>
FASTPOOL_HOST_DEVICE inline int64_t fractional_window_start(scalar_t u, int64_t in, int64_t out, int64_t k,
                                                            int64_t i) {
  if (i == out - 1) return in - k;
  return fractional_window_start_at<scalar_t>(u, fractional_alpha<scalar_t>(in, out, k), in, out, k, i);
}

// The backward of one (n, c) plane, for the CPU op and the CUDA kernel alike:
// each output's gradient added at its index into the (zeroed) grad_input
// plane, in output raster order, every add computed in acc_t (float for
// Half/BFloat16) and rounded to scalar_t, as torch's CPU kernel adds. No
// atomics: the caller runs one plane per thread. Returns the first output
// whose index lies outside the plane (the plane is then partly written, never
// outside it), or -1.
template <typename scalar_t, typename acc_t, typename index_t>
FASTPOOL_HOST_DEVICE inline index_t fractional_backward_plane(const scalar_t* grad_output, const int64_t* indices,
                                                              scalar_t* grad_input, index_t in_plane,
                                                              index_t out_plane) {
  for (index_t o = 0; o < out_plane; ++o) {
    const int64_t i = indices[o];
    if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(in_plane)) return o;  // one compare for both bounds
    grad_input[i] = static_cast<scalar_t>(static_cast<acc_t>(grad_input[i]) + static_cast<acc_t>(grad_output[o]));
  }
  return -1;
}

}  // namespace fastpool
