// Fractional max-pooling CPU forward, compiled once per ISA (included by
// isa_*.cpp after max_pool_kernels.h, whose Scalar<T> loads and stores the
// storage types). The caller (fractional_max_pool.cpp) tables every plane's
// window starts first (fractional_pool.h's rule, in the input's dtype) and
// checks them; the kernel reads them as data.
//
// Semantics are torch's fractional kernels': taps scanned t, h, then w; a tap
// replaces the running max if `v > best || isnan(v)` (the first of equal
// values wins, the last NaN wins); the running max starts at -inf with the
// window's first element as its index; windows without taps (kernel sizes
// <= 0) keep that. Indices are flat per plane.
//
// Comparisons select without branches, so random data costs no
// mispredictions and the compiler vectorises the passes.
#pragma once
#include <cstdint>
#include <limits>

#include "kernel_table.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// One plane. Per output row (ot, oh), for each input row of its windows in
// order (t, then h): first the max of every kw-wide span of that input row,
// with its column (a contiguous pass, vectorised, no gathers), then each
// output takes its span's result at its column start. Scanning a window tap by
// tap with torch's rule equals combining its rows' results in order with the
// same rule: a later part replaces the running max if its max is greater or
// NaN (it is NaN exactly when the part holds a NaN, the last of which it
// keeps), so the first greatest value and the last NaN still win.
template <typename T, typename index_t>
void fractional_forward_plane(const FractionalPlan& p, const int32_t* starts, const T* in, T* out, int64_t* idx,
                              typename Scalar<T>::C* span_max, index_t* span_col, typename Scalar<T>::C* best,
                              index_t* arg) {
  using S = Scalar<T>;
  using C = typename S::C;
  const int64_t H = p.in[1], W = p.in[2], OW = p.out[2], kw = p.k[2];
  const int32_t* starts_t = starts;
  const int32_t* starts_h = starts + p.out[0];
  const int32_t* starts_w = starts_h + p.out[1];
  const bool has_taps = p.k[0] > 0 && p.k[1] > 0 && kw > 0;
  const int64_t spans = W - kw + 1;  // kw-wide spans inside a row
  for (int64_t ot = 0; ot < p.out[0]; ++ot) {
    const int64_t t0 = starts_t[ot];
    for (int64_t oh = 0; oh < p.out[1]; ++oh) {
      const int64_t h0 = starts_h[oh];
      const index_t first = static_cast<index_t>((t0 * H + h0) * W);
      for (int64_t i = 0; i < OW; ++i) {
        best[i] = -std::numeric_limits<C>::infinity();
        arg[i] = first + static_cast<index_t>(starts_w[i]);
      }
      if (has_taps) {
        for (int64_t t = t0; t < t0 + p.k[0]; ++t) {
          for (int64_t h = h0; h < h0 + p.k[1]; ++h) {
            const index_t row_start = static_cast<index_t>((t * H + h) * W);
            const T* row = in + row_start;
            for (int64_t w = 0; w < spans; ++w) {
              span_max[w] = S::load(row[w]);
              span_col[w] = static_cast<index_t>(w);
            }
            for (int64_t j = 1; j < kw; ++j) {
              for (int64_t w = 0; w < spans; ++w) {
                const C v = S::load(row[w + j]);
                const bool take = v > span_max[w] || v != v;
                span_max[w] = take ? v : span_max[w];
                span_col[w] = take ? static_cast<index_t>(w + j) : span_col[w];
              }
            }
            for (int64_t i = 0; i < OW; ++i) {
              const int32_t w = starts_w[i];
              const C v = span_max[w];
              const bool take = v > best[i] || v != v;
              best[i] = take ? v : best[i];
              arg[i] = take ? row_start + span_col[w] : arg[i];
            }
          }
        }
      }
      for (int64_t i = 0; i < OW; ++i) {
        out[i] = S::store(best[i]);
        idx[i] = arg[i];
      }
      out += OW;
      idx += OW;
    }
  }
}

template <typename T, typename index_t>
void fractional_forward_planes(const FractionalPlan& p, const T* input, T* output, int64_t* indices, int64_t begin,
                               int64_t end) {
  using C = typename Scalar<T>::C;
  const int64_t in_plane = p.in[0] * p.in[1] * p.in[2];
  const int64_t out_plane = p.out[0] * p.out[1] * p.out[2];
  const int64_t per_plane = p.out[0] + p.out[1] + p.out[2];
  // Scratch with new[] (no std containers in per-ISA code: see max_pool_kernels.h).
  C* span_max = new C[p.in[2] + 1];
  index_t* span_col = new index_t[p.in[2] + 1];
  C* best = new C[p.out[2]];
  index_t* arg = new index_t[p.out[2]];
  for (int64_t plane = begin; plane < end; ++plane)
    fractional_forward_plane<T, index_t>(p, p.starts + plane * per_plane, input + plane * in_plane,
                                         output + plane * out_plane, indices + plane * out_plane, span_max, span_col,
                                         best, arg);
  delete[] span_max;
  delete[] span_col;
  delete[] best;
  delete[] arg;
}

template <typename T>
void fractional_forward(const FractionalPlan& p, const void* input, void* output, int64_t* indices, int64_t begin,
                        int64_t end) {
  const T* in = static_cast<const T*>(input);
  T* out = static_cast<T*>(output);
  if (p.index32) fractional_forward_planes<T, int32_t>(p, in, out, indices, begin, end);
  else fractional_forward_planes<T, int64_t>(p, in, out, indices, begin, end);
}

// The table with this ISA's fractional kernels added.
inline KernelTable with_fractional(KernelTable k) {
  k.fractional_forward[static_cast<int>(DType::f32)] = &fractional_forward<float>;
  k.fractional_forward[static_cast<int>(DType::f64)] = &fractional_forward<double>;
  k.fractional_forward[static_cast<int>(DType::f16)] = &fractional_forward<fp16_t>;
  k.fractional_forward[static_cast<int>(DType::bf16)] = &fractional_forward<bf16_t>;
  return k;
}

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
