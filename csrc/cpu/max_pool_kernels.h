// Max-pooling CPU kernels, written once over simd.h and compiled once per ISA
// (isa_avx512.cpp, isa_avx2.cpp, isa_portable.cpp define FASTPOOL_ISA and
// include this file). Everything here lives in the per-ISA namespace and uses
// no std containers or algorithms: an inline function compiled with AVX-512
// flags must never be shared with (and picked by the linker for) another ISA.
//
// Semantics are PyTorch's CPU max pooling, exactly: windows are scanned depth,
// then height, then width; a tap replaces the running max if
// `v > best || isnan(v)` (so the first of equal values wins and the last NaN
// wins); the running max starts at -inf (lowest for integers) with the index of
// the first in-bounds tap; indices are flattened within one (d, h, w) plane.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../pool_geometry.h"
#include "kernel_table.h"
#include "simd.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// ---------------------------------------------------------------- scalars

template <typename T>
struct Scalar {  // float, double and the integer types compare as themselves
  using C = T;
  static inline C load(T v) { return v; }
  static inline T store(C v) { return v; }
  static constexpr C lowest() {
    return std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                : std::numeric_limits<C>::lowest();
  }
};

inline float float_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t bits_from_float(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

template <>
struct Scalar<bf16_t> {
  using C = float;
  static inline C load(bf16_t v) { return float_from_bits(static_cast<uint32_t>(v.bits) << 16); }
  static inline bf16_t store(C f) {  // round to nearest even, NaN stays NaN
    const uint32_t u = bits_from_float(f);
    if (f != f) return bf16_t{static_cast<uint16_t>((u >> 16) | 0x40)};
    return bf16_t{static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16)};
  }
  static constexpr C lowest() { return -std::numeric_limits<float>::infinity(); }
};

template <>
struct Scalar<fp16_t> {
  using C = float;
  static inline C load(fp16_t v) {
    const uint32_t h = v.bits;
    const uint32_t sign = (h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    if (exponent == 0x1f) return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0) return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
    if (mantissa == 0) return float_from_bits(sign);
    int32_t e = 113;  // subnormal: normalise the mantissa
    while (!(mantissa & 0x400)) {
      mantissa <<= 1;
      --e;
    }
    return float_from_bits(sign | (static_cast<uint32_t>(e) << 23) | ((mantissa & 0x3ff) << 13));
  }
  static inline fp16_t store(C f) {  // round to nearest even
    uint32_t u = bits_from_float(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    u &= 0x7fffffffu;
    uint16_t h;
    if (u >= 0x7f800000u) {
      h = u > 0x7f800000u ? static_cast<uint16_t>(0x7e00 | ((u >> 13) & 0x3ff)) : 0x7c00;
    } else if (u >= 0x477ff000u) {
      h = 0x7c00;  // rounds past the largest half
    } else if (u < 0x38800000u) {
      // Subnormal (or zero): let the FPU round at 2^-24 granularity.
      h = static_cast<uint16_t>(bits_from_float(float_from_bits(u) + 0.5f) - bits_from_float(0.5f));
    } else {
      const uint32_t odd = (u >> 13) & 1;
      u += 0xc8000fffu + odd;  // rebias exponent by -112 and round
      h = static_cast<uint16_t>(u >> 13);
    }
    return fp16_t{static_cast<uint16_t>(sign | h)};
  }
  static constexpr C lowest() { return -std::numeric_limits<float>::infinity(); }
};

template <typename T>
using ComputeT = typename Scalar<T>::C;

template <typename T>
constexpr bool kHasVectorPath = Simd<ComputeT<T>>::kLanes > 0 &&
                                (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                 std::is_same_v<T, bf16_t> || std::is_same_v<T, fp16_t>);

template <typename C>
inline bool takes(C v, C best) {  // PyTorch's update rule; v != v is isnan (false for integers)
  return v > best || v != v;
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// A scratch array owned by one call (no std::vector: see the file comment).
template <typename E>
struct Scratch {
  E* data = nullptr;
  explicit Scratch(int64_t n) : data(n > 0 ? new E[n] : nullptr) {}
  ~Scratch() { delete[] data; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// The in-bounds taps of one output position, as flattened (d, h, w) offsets in
// scan order. Returns how many; `first` gets PyTorch's initial argmax.
inline int64_t collect_taps(const PoolGeometry& g, int64_t od, int64_t oh, int64_t ow, int64_t* taps,
                            int64_t* first) {
  const WindowTaps td = window_taps(g, 0, od), th = window_taps(g, 1, oh), tw = window_taps(g, 2, ow);
  const int64_t H = g.in_size[1], W = g.in_size[2];
  *first = (td.first * H + th.first) * W + tw.first;
  int64_t n = 0;
  for (int64_t a = 0; a < td.count; ++a) {
    const int64_t id = td.first + a * g.dilation[0];
    for (int64_t b = 0; b < th.count; ++b) {
      const int64_t row = (id * H + th.first + b * g.dilation[1]) * W;
      for (int64_t c = 0; c < tw.count; ++c) taps[n++] = row + tw.first + c * g.dilation[2];
    }
  }
  return n;
}

inline int64_t max_taps(const PoolGeometry& g) { return g.kernel[0] * g.kernel[1] * g.kernel[2]; }

// ---------------------------------------------------------- forward: planar

// One output of a planar (N, C, D, H, W) input, PyTorch's scalar loop.
template <typename T, bool kIndices>
inline void forward_planar_one(const PoolGeometry& g, const T* plane, int64_t od, int64_t oh, int64_t ow, T* out,
                               int64_t* index) {
  using S = Scalar<T>;
  const WindowTaps td = window_taps(g, 0, od), th = window_taps(g, 1, oh), tw = window_taps(g, 2, ow);
  const int64_t H = g.in_size[1], W = g.in_size[2];
  typename S::C best = S::lowest();
  int64_t best_index = (td.first * H + th.first) * W + tw.first;
  for (int64_t a = 0; a < td.count; ++a) {
    const int64_t id = td.first + a * g.dilation[0];
    for (int64_t b = 0; b < th.count; ++b) {
      const int64_t row = (id * H + th.first + b * g.dilation[1]) * W;
      for (int64_t c = 0; c < tw.count; ++c) {
        const int64_t i = row + tw.first + c * g.dilation[2];
        const typename S::C v = S::load(plane[i]);
        if (takes(v, best)) {
          best = v;
          best_index = i;
        }
      }
    }
  }
  *out = S::store(best);
  if (kIndices) *index = best_index;
}

// kLanes consecutive outputs along W whose taps are all inside the row, one
// vector per tap. kStride: 1 or 2 (contiguous / de-interleaving loads) or 0
// (any stride, element-wise fill). kFull = false handles a last partial chunk
// of `n` outputs through a small buffer, so nothing is read or written past it.
template <typename T, bool kIndices, int kStride, bool kFull>
inline void forward_planar_chunk(const PoolGeometry& g, const T* plane, const int64_t* rows, int64_t num_rows,
                                 int64_t ow, int64_t n, T* out, int64_t* index) {
  using Sd = Simd<ComputeT<T>>;
  using C = ComputeT<T>;
  constexpr int L = Sd::kLanes;
  const int64_t s = g.stride[2], dil = g.dilation[2], kw_count = g.kernel[2];
  const int64_t base = ow * s - g.pad[2];
  const typename Sd::I lane_offsets = Sd::index_iota(static_cast<int32_t>(s));

  auto load_taps = [&](int64_t off) -> typename Sd::V {
    const T* p = plane + off;
    if constexpr (kFull && kStride == 1) {
      return Sd::load(p);
    } else if constexpr (kFull && kStride == 2) {
      return Sd::load_stride2(p);
    } else {
      alignas(64) C lanes[L];
      for (int j = 0; j < L; ++j) lanes[j] = Scalar<T>::load(p[(j < n ? j : 0) * s]);
      return Sd::load(lanes);
    }
  };

  typename Sd::V best = load_taps(rows[0] + base);
  typename Sd::I best_index = Sd::index_add(Sd::index_set1(static_cast<int32_t>(rows[0] + base)), lane_offsets);
  for (int64_t r = 0; r < num_rows; ++r) {
    for (int64_t kw = (r == 0 ? 1 : 0); kw < kw_count; ++kw) {
      const int64_t off = rows[r] + base + kw * dil;
      const typename Sd::V v = load_taps(off);
      const typename Sd::M m = Sd::takes(v, best);
      best = Sd::select(m, best, v);
      if constexpr (kIndices) {
        best_index =
            Sd::select(m, best_index, Sd::index_add(Sd::index_set1(static_cast<int32_t>(off)), lane_offsets));
      }
    }
  }
  if constexpr (kFull) {
    Sd::store(out, best);
    if constexpr (kIndices) Sd::store_indices(index, best_index);
  } else {
    alignas(64) C values[L];
    alignas(64) int64_t idx[L];
    Sd::store(values, best);
    if constexpr (kIndices) Sd::store_indices(idx, best_index);
    for (int64_t j = 0; j < n; ++j) {
      out[j] = Scalar<T>::store(values[j]);
      if constexpr (kIndices) index[j] = idx[j];
    }
  }
}

// Outputs [lo, hi) of one row, all interior along W.
template <typename T, bool kIndices, int kStride>
inline void forward_planar_interior(const PoolGeometry& g, const T* plane, const int64_t* rows, int64_t num_rows,
                                    int64_t lo, int64_t hi, T* out, int64_t* index) {
  constexpr int L = Simd<ComputeT<T>>::kLanes;
  const int64_t s = g.stride[2], W = g.in_size[2];
  const int64_t span = (g.kernel[2] - 1) * g.dilation[2];
  // Last element a full chunk reads: stride-2 loads read 2*L elements per tap.
  const int64_t reach = kStride == 2 ? 2 * L - 1 : (L - 1) * (kStride == 0 ? s : 1);
  int64_t ow = lo;
  for (; ow + L <= hi && ow * s - g.pad[2] + span + reach <= W - 1; ow += L) {
    forward_planar_chunk<T, kIndices, kStride, true>(g, plane, rows, num_rows, ow, L, out + ow,
                                                     kIndices ? index + ow : nullptr);
  }
  for (; ow < hi; ow += L) {
    const int64_t n = min64(L, hi - ow);
    forward_planar_chunk<T, kIndices, kStride, false>(g, plane, rows, num_rows, ow, n, out + ow,
                                                      kIndices ? index + ow : nullptr);
  }
}

// Output rows [begin, end) of a planar input; a row is (plane, od, oh).
template <typename T, bool kIndices>
void forward_planar_rows(const PoolGeometry& g, const T* input, T* output, int64_t* indices, int64_t begin,
                         int64_t end) {
  const int64_t OD = g.out_size[0], OH = g.out_size[1], OW = g.out_size[2];
  const int64_t H = g.in_size[1], W = g.in_size[2];
  const int64_t plane_elems = in_plane_elems(g);
  // The vector path keeps indices in int32 lanes.
  const bool vector_ok = kHasVectorPath<T> && plane_elems <= std::numeric_limits<int32_t>::max();
  int64_t lo = 0, hi = 0;
  interior_range(g, 2, &lo, &hi);
  Scratch<int64_t> rows(g.kernel[0] * g.kernel[1]);

  for (int64_t r = begin; r < end; ++r) {
    const int64_t oh = r % OH, od = (r / OH) % OD, p = r / (OH * OD);
    const T* plane = input + p * plane_elems;
    T* out = output + r * OW;
    int64_t* index = kIndices ? indices + r * OW : nullptr;

    int64_t num_rows = 0;
    if constexpr (kHasVectorPath<T>) {
      const WindowTaps td = window_taps(g, 0, od), th = window_taps(g, 1, oh);
      for (int64_t a = 0; a < td.count; ++a)
        for (int64_t b = 0; b < th.count; ++b)
          rows.data[num_rows++] = ((td.first + a * g.dilation[0]) * H + th.first + b * g.dilation[1]) * W;
    }
    const bool vectorize = vector_ok && num_rows > 0 && hi > lo;
    const int64_t scalar_end = vectorize ? lo : OW;
    for (int64_t ow = 0; ow < scalar_end; ++ow)
      forward_planar_one<T, kIndices>(g, plane, od, oh, ow, out + ow, kIndices ? index + ow : nullptr);
    if (!vectorize) continue;
    if constexpr (kHasVectorPath<T>) {
      switch (g.stride[2]) {
        case 1:
          forward_planar_interior<T, kIndices, 1>(g, plane, rows.data, num_rows, lo, hi, out, index);
          break;
        case 2:
          forward_planar_interior<T, kIndices, 2>(g, plane, rows.data, num_rows, lo, hi, out, index);
          break;
        default:
          forward_planar_interior<T, kIndices, 0>(g, plane, rows.data, num_rows, lo, hi, out, index);
      }
    }
    for (int64_t ow = hi; ow < OW; ++ow)
      forward_planar_one<T, kIndices>(g, plane, od, oh, ow, out + ow, kIndices ? index + ow : nullptr);
  }
}

// ---------------------------------------------------- forward: channels last

// `n` channels (n == kLanes when kFull) of one output position.
template <typename T, bool kIndices, bool kFull>
inline void forward_channels_chunk(const T* image, int64_t C, const int64_t* taps, int64_t num_taps, int64_t n,
                                   T* out, int64_t* index) {
  using Sd = Simd<ComputeT<T>>;
  using CT = ComputeT<T>;
  constexpr int L = Sd::kLanes;
  auto load_at = [&](int64_t tap) -> typename Sd::V {
    const T* p = image + tap * C;
    if constexpr (kFull) {
      return Sd::load(p);
    } else {
      alignas(64) CT lanes[L];
      for (int j = 0; j < L; ++j) lanes[j] = Scalar<T>::load(p[j < n ? j : 0]);
      return Sd::load(lanes);
    }
  };
  typename Sd::V best = load_at(taps[0]);
  typename Sd::I best_index = Sd::index_set1(static_cast<int32_t>(taps[0]));
  for (int64_t t = 1; t < num_taps; ++t) {
    const typename Sd::V v = load_at(taps[t]);
    const typename Sd::M m = Sd::takes(v, best);
    best = Sd::select(m, best, v);
    if constexpr (kIndices) best_index = Sd::select(m, best_index, Sd::index_set1(static_cast<int32_t>(taps[t])));
  }
  if constexpr (kFull) {
    Sd::store(out, best);
    if constexpr (kIndices) Sd::store_indices(index, best_index);
  } else {
    alignas(64) CT values[L];
    alignas(64) int64_t idx[L];
    Sd::store(values, best);
    if constexpr (kIndices) Sd::store_indices(idx, best_index);
    for (int64_t j = 0; j < n; ++j) {
      out[j] = Scalar<T>::store(values[j]);
      if constexpr (kIndices) index[j] = idx[j];
    }
  }
}

// Output positions [begin, end) of a channels-last input; a position is
// (n, od, oh, ow) with all C channels, vectorised along C.
template <typename T, bool kIndices>
void forward_channels_last_positions(const PoolGeometry& g, const T* input, T* output, int64_t* indices,
                                     int64_t begin, int64_t end) {
  using S = Scalar<T>;
  const int64_t C = g.channels;
  const int64_t OD = g.out_size[0], OH = g.out_size[1], OW = g.out_size[2];
  const int64_t plane_elems = in_plane_elems(g);
  const bool vector_ok = kHasVectorPath<T> && plane_elems <= std::numeric_limits<int32_t>::max();
  Scratch<int64_t> taps(max_taps(g));

  for (int64_t q = begin; q < end; ++q) {
    const int64_t ow = q % OW, oh = (q / OW) % OH, od = (q / (OW * OH)) % OD, n = q / (OW * OH * OD);
    const T* image = input + n * plane_elems * C;
    T* out = output + q * C;
    int64_t* index = kIndices ? indices + q * C : nullptr;
    int64_t first = 0;
    const int64_t num_taps = collect_taps(g, od, oh, ow, taps.data, &first);

    int64_t c = 0;
    if constexpr (kHasVectorPath<T>) {
      constexpr int L = Simd<ComputeT<T>>::kLanes;
      if (vector_ok && num_taps > 0) {
        for (; c + L <= C; c += L)
          forward_channels_chunk<T, kIndices, true>(image + c, C, taps.data, num_taps, L, out + c,
                                                    kIndices ? index + c : nullptr);
        if (c < C)
          forward_channels_chunk<T, kIndices, false>(image + c, C, taps.data, num_taps, C - c, out + c,
                                                     kIndices ? index + c : nullptr);
        c = C;
      }
    }
    for (; c < C; ++c) {  // scalar: integers, portable builds, huge planes, empty windows
      typename S::C best = S::lowest();
      int64_t best_index = first;
      for (int64_t t = 0; t < num_taps; ++t) {
        const typename S::C v = S::load(image[taps.data[t] * C + c]);
        if (takes(v, best)) {
          best = v;
          best_index = taps.data[t];
        }
      }
      out[c] = S::store(best);
      if (kIndices) index[c] = best_index;
    }
  }
}

// ---------------------------------------------------------------- backward
//
// grad_input[index] += grad_output over the outputs in order, per plane (or
// per image and channel block): the same summation order as PyTorch, so
// float32/float64 results are identical. bf16/fp16 accumulate in float.
// Index -1 is skipped (as PyTorch does); any other index outside the plane
// makes the call fail before it is used.

template <typename T>
using GradAcc = std::conditional_t<std::is_same_v<T, bf16_t> || std::is_same_v<T, fp16_t>, float, T>;

template <typename T>
bool backward_planar(const PoolGeometry& g, const void* grad_output, const int64_t* indices, void* grad_input,
                     int64_t /*channel_block*/, int64_t begin, int64_t end) {
  using Acc = GradAcc<T>;
  constexpr bool kDirect = std::is_same_v<Acc, T>;
  const int64_t in_elems = in_plane_elems(g), out_elems = out_plane_elems(g);
  Scratch<Acc> scratch(kDirect ? 0 : in_elems);
  for (int64_t p = begin; p < end; ++p) {
    const T* go = static_cast<const T*>(grad_output) + p * out_elems;
    const int64_t* idx = indices + p * out_elems;
    T* gi = static_cast<T*>(grad_input) + p * in_elems;
    Acc* acc = kDirect ? reinterpret_cast<Acc*>(gi) : scratch.data;
    std::memset(static_cast<void*>(acc), 0, sizeof(Acc) * in_elems);
    for (int64_t o = 0; o < out_elems; ++o) {
      const int64_t i = idx[o];
      if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(in_elems)) {
        if (i == -1) continue;
        return false;
      }
      acc[i] += Scalar<T>::load(go[o]);
    }
    if constexpr (!kDirect)
      for (int64_t i = 0; i < in_elems; ++i) gi[i] = Scalar<T>::store(acc[i]);
  }
  return true;
}

template <typename T>
bool backward_channels_last(const PoolGeometry& g, const void* grad_output, const int64_t* indices,
                            void* grad_input, int64_t channel_block, int64_t begin, int64_t end) {
  using Acc = GradAcc<T>;
  constexpr bool kDirect = std::is_same_v<Acc, T>;
  const int64_t C = g.channels;
  const int64_t in_elems = in_plane_elems(g), out_elems = out_plane_elems(g);
  const int64_t blocks = (C + channel_block - 1) / channel_block;
  Scratch<Acc> scratch(kDirect ? 0 : in_elems * channel_block);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t n = task / blocks, c0 = (task % blocks) * channel_block;
    const int64_t width = min64(channel_block, C - c0);
    const T* go = static_cast<const T*>(grad_output) + n * out_elems * C + c0;
    const int64_t* idx = indices + n * out_elems * C + c0;
    T* gi = static_cast<T*>(grad_input) + n * in_elems * C + c0;
    // acc[i * acc_stride + c]: grad_input itself, or a dense float block.
    Acc* acc = kDirect ? reinterpret_cast<Acc*>(gi) : scratch.data;
    const int64_t acc_stride = kDirect ? C : width;
    for (int64_t i = 0; i < in_elems; ++i) std::memset(static_cast<void*>(acc + i * acc_stride), 0, sizeof(Acc) * width);
    for (int64_t o = 0; o < out_elems; ++o) {
      for (int64_t c = 0; c < width; ++c) {
        const int64_t i = idx[o * C + c];
        if (static_cast<uint64_t>(i) >= static_cast<uint64_t>(in_elems)) {
          if (i == -1) continue;
          return false;
        }
        acc[i * acc_stride + c] += Scalar<T>::load(go[o * C + c]);
      }
    }
    if constexpr (!kDirect)
      for (int64_t i = 0; i < in_elems; ++i)
        for (int64_t c = 0; c < width; ++c) gi[i * C + c] = Scalar<T>::store(acc[i * acc_stride + c]);
  }
  return true;
}

// ------------------------------------------------------------------- table

template <typename T>
void forward_planar(const PoolGeometry& g, const void* in, void* out, int64_t* indices, int64_t begin,
                    int64_t end) {
  if (indices)
    forward_planar_rows<T, true>(g, static_cast<const T*>(in), static_cast<T*>(out), indices, begin, end);
  else
    forward_planar_rows<T, false>(g, static_cast<const T*>(in), static_cast<T*>(out), nullptr, begin, end);
}

template <typename T>
void forward_channels_last(const PoolGeometry& g, const void* in, void* out, int64_t* indices, int64_t begin,
                           int64_t end) {
  if (indices)
    forward_channels_last_positions<T, true>(g, static_cast<const T*>(in), static_cast<T*>(out), indices, begin,
                                             end);
  else
    forward_channels_last_positions<T, false>(g, static_cast<const T*>(in), static_cast<T*>(out), nullptr, begin,
                                              end);
}

template <typename T>
void set_entries(KernelTable& k, DType dtype, bool differentiable) {
  const int d = static_cast<int>(dtype);
  k.forward[static_cast<int>(Layout::planar)][d] = &forward_planar<T>;
  k.forward[static_cast<int>(Layout::channels_last)][d] = &forward_channels_last<T>;
  if (differentiable) {
    k.backward[static_cast<int>(Layout::planar)][d] = &backward_planar<T>;
    k.backward[static_cast<int>(Layout::channels_last)][d] = &backward_channels_last<T>;
  }
}

inline KernelTable make_table(const char* isa) {
  KernelTable k{};
  k.isa = isa;
  k.vector_bits = Simd<float>::kLanes * 32;
  set_entries<float>(k, DType::f32, true);
  set_entries<double>(k, DType::f64, true);
  set_entries<fp16_t>(k, DType::f16, true);
  set_entries<bf16_t>(k, DType::bf16, true);
  set_entries<uint8_t>(k, DType::u8, false);
  set_entries<int8_t>(k, DType::i8, false);
  set_entries<int16_t>(k, DType::i16, false);
  set_entries<int32_t>(k, DType::i32, false);
  set_entries<int64_t>(k, DType::i64, false);
  return k;
}

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
