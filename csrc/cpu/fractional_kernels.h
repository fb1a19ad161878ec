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
//
// The caller guarantees that every window with taps lies inside the input.
#pragma once
#include <cstdint>
#include <limits>

#include "kernel_table.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// dst[p] = the combination, in order i = 0 .. k-1, of src[p + i * stride],
// for p < len: a later element replaces the running max if it is greater or
// NaN (torch's rule). Contiguous and branch-free: the compiler vectorises it.
template <typename C, typename index_t>
void combine_strided(const C* src, const index_t* src_index, C* dst, index_t* dst_index, int64_t len, int64_t k,
                     int64_t stride) {
  for (int64_t p = 0; p < len; ++p) {
    dst[p] = src[p];
    dst_index[p] = src_index[p];
  }
  for (int64_t i = 1; i < k; ++i) {
    const C* s = src + i * stride;
    const index_t* si = src_index + i * stride;
    for (int64_t p = 0; p < len; ++p) {
      const C v = s[p];
      const bool take = v > dst[p] || v != v;
      dst[p] = take ? v : dst[p];
      dst_index[p] = take ? si[p] : dst_index[p];
    }
  }
}

// One plane, separably: the max of every kw-wide span along W, then of kh of
// those along H, then of kt along T, each a flat pass over the whole plane
// (positions whose spans cross a row's end are computed and never read), so
// that every window's max and argmax sit at its first element; then one read
// per output. Combining a window's parts in scan order (w within a row, rows
// by h, planes by t) with torch's rule equals torch's tap-by-tap scan: a later
// part replaces the running max if its max is greater or NaN (it is NaN
// exactly when the part holds a NaN, the last of which it keeps), so the first
// greatest value and the last NaN still win, and a window of -inf keeps its
// first element.
template <typename T, typename index_t>
void fractional_forward_plane(const FractionalPlan& p, const int32_t* starts, const T* in, T* out, int64_t* idx,
                              typename Scalar<T>::C* buf0, index_t* index0, typename Scalar<T>::C* buf1,
                              index_t* index1) {
  using S = Scalar<T>;
  using C = typename S::C;
  const int64_t H = p.in[1], W = p.in[2];
  const int64_t kt = p.k[0], kh = p.k[1], kw = p.k[2];
  const int32_t* starts_t = starts;
  const int32_t* starts_h = starts + p.out[0];
  const int32_t* starts_w = starts_h + p.out[1];
  const bool has_taps = kt > 0 && kh > 0 && kw > 0;
  const C* value = buf0;
  const index_t* index = index0;
  if (has_taps) {
    const int64_t spans = p.in[0] * H * W - (kw - 1);
    for (int64_t q = 0; q < spans; ++q) {
      buf0[q] = S::load(in[q]);
      index0[q] = static_cast<index_t>(q);
    }
    for (int64_t j = 1; j < kw; ++j) {
      for (int64_t q = 0; q < spans; ++q) {
        const C v = S::load(in[q + j]);
        const bool take = v > buf0[q] || v != v;
        buf0[q] = take ? v : buf0[q];
        index0[q] = take ? static_cast<index_t>(q + j) : index0[q];
      }
    }
    const int64_t rows = spans - (kh - 1) * W;
    if (kh > 1) {
      combine_strided(buf0, index0, buf1, index1, rows, kh, W);
      value = buf1;
      index = index1;
    }
    if (kt > 1) {
      C* dst = value == buf0 ? buf1 : buf0;
      index_t* dst_index = value == buf0 ? index1 : index0;
      combine_strided(value, index, dst, dst_index, rows - (kt - 1) * H * W, kt, H * W);
      value = dst;
      index = dst_index;
    }
  }
  for (int64_t ot = 0; ot < p.out[0]; ++ot) {
    for (int64_t oh = 0; oh < p.out[1]; ++oh) {
      const int64_t first_row = (starts_t[ot] * H + starts_h[oh]) * W;
      for (int64_t ow = 0; ow < p.out[2]; ++ow) {
        const int64_t first = first_row + starts_w[ow];  // the window's first element
        if (has_taps) {
          out[ow] = S::store(value[first]);
          idx[ow] = index[first];
        } else {  // no taps (kernel sizes <= 0): torch's -inf at the window's start
          out[ow] = S::store(-std::numeric_limits<C>::infinity());
          idx[ow] = first;
        }
      }
      out += p.out[2];
      idx += p.out[2];
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
  C* buf0 = new C[in_plane];
  C* buf1 = new C[in_plane];
  index_t* index0 = new index_t[in_plane];
  index_t* index1 = new index_t[in_plane];
  for (int64_t plane = begin; plane < end; ++plane)
    fractional_forward_plane<T, index_t>(p, p.starts + plane * per_plane, input + plane * in_plane,
                                         output + plane * out_plane, indices + plane * out_plane, buf0, index0, buf1,
                                         index1);
  delete[] buf0;
  delete[] buf1;
  delete[] index0;
  delete[] index1;
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
