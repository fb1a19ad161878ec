// A small SIMD wrapper: just the operations max pooling needs, for the ISA the
// including translation unit is compiled for (__AVX512F__ / __AVX2__). The
// kernels in max_pool_kernels.h are written once over it.
//
// Each wrapper `Simd<Compute>` (Compute = float or double) provides:
//   V, I, M          value vector, int32 index vector, lane mask
//   kLanes           lanes per vector
//   load(p)          kLanes contiguous elements of a storage type, as Compute
//   load_stride2(p)  elements p[0], p[2], ..., p[2*(kLanes-1)], reading
//                    nothing outside p[0 .. 2*kLanes-2] (the second load
//                    starts one element early so no lane past the end is read)
//   load_stride4(p)  p[0], p[4], ..., p[4*(kLanes-1)], reading nothing else of
//                    p[0 ..]; only where kHasStride4 (AVX-512, AVX2 float)
//   deinterleave4(p, taps)  p[0 .. 4*kLanes) as taps[t] = p[t], p[t+4], ...;
//                    only where kHasDeinterleave4 (AVX-512, AVX2 float)
//   store(p, v)      back to the storage type (exact: values come from it)
//   takes(v, best)   PyTorch's update rule, lane-wise: v > best || isnan(v)
//   greater(v, best) v > best (the rule when no NaN can be present)
//   max(v, best)     v > best ? v : best (keeps best on ties and -0.0/+0.0)
//   add, any_nan     NaN screening: a running sum is NaN if any input was
//                    (or if +inf and -inf met; callers then redo exactly)
//   select(m, a, b)  m ? b : a, for values and for indices
//   index_iota(step) lanes 0, step, 2*step, ...
//   store_indices    int32 lanes widened to int64; store_index32 as they are,
//                    load_index32 back
//   gather(base, offsets), index_gather(base, offsets)  base[offsets[lane]]
//                    of Compute values or int32 lanes (hardware gathers)
//   gather_near(base, rel), index_gather_near(base, rel)  the same for
//                    offsets 0 <= rel < 2 * kLanes, from two vector loads
//                    (base[0 .. 2*kLanes)) and permutes
//   splat(x)         every lane x
//   load_where(p, bits)  the lanes whose bit is set read p[lane], the others
//                    -inf; with masked loads only those lanes are read,
//                    without them (AVX2) the whole vector
//   deinterleave2(a, b)  load_stride2's permute of its two loads
//   index_max, index_sub  lane-wise on indices
//   kMasked          true when the ISA has masked loads/stores; then
//                    load_n / load_stride2_n / store_n / store_indices_n /
//                    store_taps_n (int32 lanes narrowed to uint8 or as int32)
//                    touch only the first n lanes' elements (n < kLanes),
//                    and add_masked(p, m, g) adds g into the lanes in m
//                    (AVX-512 float only), store_stream(p, v) a
//                    non-temporal store (Simd<float>, p aligned to its bytes)
//   rounded<T>(v)    v rounded to storage type T and back (as Scalar<T>::store)
//   reduce_max(v)    the largest lane (v without NaN); with kLanes > 0
//   min_index_where(v, x, idx)  the least of idx's lanes where v equals x
//                    (-0.0 == 0.0; v without NaN); with kLanes > 0
// And Tile<E>::transpose (AVX-512, AVX2): tiles of a vector's lanes square, of
// any element width; transpose_matrix: a whole matrix.
// Storage types: float, double, fp16_t, bf16_t (see kernel_table.h).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernel_table.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// kLanes == 0: this ISA has no vector path for Compute (integers, portable).
template <typename Compute>
struct Simd {
  static constexpr int kLanes = 0;
  static constexpr bool kMasked = false;
  static constexpr bool kHasStride4 = false;
  static constexpr bool kHasDeinterleave4 = false;
};

#if defined(__AVX512F__)

template <>
struct Simd<float> {
  using V = __m512;
  using I = __m512i;
  using M = __mmask16;
  static constexpr int kLanes = 16;

  static inline V load(const float* p) { return _mm512_loadu_ps(p); }
  static inline V load(const fp16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static inline V load(const bf16_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  template <typename T>
  static inline V load_stride2(const T* p) { return deinterleave2(load(p), load(p + kLanes - 1)); }
  // bf16: p[0..30] read as 16 words of 32 bits, whose low halves are the even
  // elements; a bf16 shifted to the top half is its float. One load and one
  // shift instead of two widening loads and a permute (VGG's k2 s2 in bf16).
  static inline V load_stride2(const bf16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_maskz_loadu_epi16(0x7fffffff, p), 16));
  }
  // a = p[0..15], b = p[15..30]: even elements are a's even lanes, b's odd lanes.
  static inline V deinterleave2(V a, V b) {
    const __m512i even = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(a, even, b);
  }
  static constexpr bool kHasStride4 = true;
  static constexpr bool kHasDeinterleave4 = true;
  template <typename T>
  static inline V load_stride4(const T* p) {
    // Two rounds of de-interleaving: the even elements of p[0..31] and of
    // p[32..62] (the last load starts at p[45] so nothing past p[60] is
    // read; lane 15 of the second half, p[62], is not needed), then the even
    // elements of those.
    alignas(64) static constexpr int32_t kEven[16] = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
    alignas(64) static constexpr int32_t kEvenShifted[16] = {0, 2, 4, 6, 8, 10, 12, 14, 19, 21, 23, 25, 27, 29, 31, 31};
    const __m512i even = _mm512_load_si512(kEven), even_shifted = _mm512_load_si512(kEvenShifted);
    const V low = _mm512_permutex2var_ps(load(p), even, load(p + 16));
    const V high = _mm512_permutex2var_ps(load(p + 32), even_shifted, load(p + 45));
    return _mm512_permutex2var_ps(low, even, high);
  }
  // p[0..63] as four vectors of every fourth element, taps[t] lane j =
  // p[4 j + t]: the taps of 16 side-by-side windows of 4 (1-d audio pools,
  // k4 s4), two rounds of de-interleaving shared by the four taps where
  // load_stride4 takes 4 loads and 3 permutes for each.
  template <typename T>
  static inline void deinterleave4(const T* p, V taps[4]) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const V v0 = load(p), v1 = load(p + 16), v2 = load(p + 32), v3 = load(p + 48);
    const V even_low = _mm512_permutex2var_ps(v0, even, v1), odd_low = _mm512_permutex2var_ps(v0, odd, v1);
    const V even_high = _mm512_permutex2var_ps(v2, even, v3), odd_high = _mm512_permutex2var_ps(v2, odd, v3);
    taps[0] = _mm512_permutex2var_ps(even_low, even, even_high);
    taps[1] = _mm512_permutex2var_ps(odd_low, even, odd_high);
    taps[2] = _mm512_permutex2var_ps(even_low, odd, even_high);
    taps[3] = _mm512_permutex2var_ps(odd_low, odd, odd_high);
  }
  // 16 lanes in a 16-bit storage type.
  static inline __m256i narrow(const fp16_t*, V v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT); }
  static inline __m256i narrow(const bf16_t*, V v) {
    // Exact for values that came from bf16 (their low 16 bits are zero).
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16));
  }
  static inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  template <typename T>
  static inline void store(T* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), narrow(p, v)); }
  // store(p, v) past the caches (non-temporal); p aligned to the vector's bytes.
  static inline void store_stream(float* p, V v) { _mm512_stream_ps(p, v); }
  template <typename T>
  static inline void store_stream(T* p, V v) { _mm256_stream_si256(reinterpret_cast<__m256i*>(p), narrow(p, v)); }
  static inline M takes(V v, V best) {
    return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  static inline M greater(V v, V best) { return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ); }
  static inline float reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  static inline int32_t min_index_where(V v, float x, I idx) {
    return _mm512_mask_reduce_min_epi32(_mm512_cmp_ps_mask(v, _mm512_set1_ps(x), _CMP_EQ_OQ), idx);
  }
  static inline V max(V v, V best) { return _mm512_max_ps(v, best); }
  static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
  static inline bool any_nan(V v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0; }
  static inline V select(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
  static inline I select(M m, I a, I b) { return _mm512_mask_blend_epi32(m, a, b); }
  static inline V splat(float x) { return _mm512_set1_ps(x); }
  static inline I index_set1(int32_t x) { return _mm512_set1_epi32(x); }
  static inline I index_max(I a, I b) { return _mm512_max_epi32(a, b); }
  static inline I index_sub(I a, I b) { return _mm512_sub_epi32(a, b); }
  static inline I index_add(I a, I b) { return _mm512_add_epi32(a, b); }
  static inline I index_iota(int32_t step) {
    return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32(step));
  }
  static inline I load_index32(const int32_t* p) { return _mm512_loadu_si512(p); }
  static inline V gather(const float* base, I offsets) { return _mm512_i32gather_ps(offsets, base, 4); }
  static inline I index_gather(const int32_t* base, I offsets) { return _mm512_i32gather_epi32(offsets, base, 4); }
  static inline V gather_near(const float* base, I rel) {
    return _mm512_permutex2var_ps(_mm512_loadu_ps(base), rel, _mm512_loadu_ps(base + kLanes));
  }
  static inline I index_gather_near(const int32_t* base, I rel) {
    return _mm512_permutex2var_epi32(_mm512_loadu_si512(base), rel, _mm512_loadu_si512(base + kLanes));
  }
  static inline void store_index32(int32_t* p, I idx) { _mm512_storeu_si512(p, idx); }
  static inline void store_indices(int64_t* p, I idx) {
    _mm512_storeu_si512(p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(idx)));
    _mm512_storeu_si512(p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(idx, 1)));
  }

  static constexpr bool kMasked = true;
  static inline __mmask16 first(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }
  static inline V load_mask(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  static inline V load_mask(const fp16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  static inline V load_mask(const bf16_t* p, __mmask16 m) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  template <typename T>
  static inline V load_n(const T* p, int64_t n) { return load_mask(p, first(n)); }
  static inline V load_where(const float* p, M m) { return _mm512_mask_loadu_ps(_mm512_set1_ps(-__builtin_inff()), m, p); }
  template <typename T>
  static inline V load_where(const T* p, M m) {
    return _mm512_mask_blend_ps(m, _mm512_set1_ps(-__builtin_inff()), load_mask(p, m));
  }
  template <typename T>
  static inline V load_stride2_n(const T* p, int64_t n) {  // reads p[0 .. 2n-2]
    const int64_t span = 2 * n - 1;
    const __m512i even = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 14, 12, 10, 8, 6, 4, 2, 0);
    const V a = load_n(p, span < kLanes ? span : kLanes);
    const V b = span > kLanes ? load_n(p + kLanes - 1, span - kLanes + 1) : _mm512_setzero_ps();
    return _mm512_permutex2var_ps(a, even, b);
  }
  static inline void store_n(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static inline void store_n(fp16_t* p, V v, int64_t n) {
    _mm256_mask_storeu_epi16(p, first(n), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static inline void store_n(bf16_t* p, V v, int64_t n) {
    const __m512i bits = _mm512_srli_epi32(_mm512_castps_si512(v), 16);
    _mm256_mask_storeu_epi16(p, first(n), _mm512_cvtepi32_epi16(bits));
  }
  // p[l] = p[l] + g[l] for the lanes l in m, rounded to the storage type
  // after the add as Scalar<T>::store does (nearest even; a NaN stays a quiet
  // NaN of the same payload): the backward's accumulation, 16 channels at once.
  static inline V zero_unless(M m, V v) { return _mm512_maskz_mov_ps(m, v); }
  static inline M no_lanes() { return 0; }
  static inline M either(M a, M b) { return a | b; }
  static inline uint32_t bits_of(M m) { return m; }
  static inline void add_masked(float* p, M m, V g) {
    _mm512_mask_storeu_ps(p, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), g));
  }
  static inline void add_masked(fp16_t* p, M m, V g) {
    const V sum = _mm512_add_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)), g);
    _mm256_mask_storeu_epi16(p, m, _mm512_cvtps_ph(sum, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  // v rounded to the storage type T and back to float, as Scalar<T>::store
  // rounds: the gather backward's accumulation.
  template <typename T>
  static inline V rounded(V v) {
    if constexpr (std::is_same_v<T, fp16_t>) {
      return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else if constexpr (std::is_same_v<T, bf16_t>) {
      const __m512i u = _mm512_castps_si512(v);
      const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
      __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
      r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), r,
                                  _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
      return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u))));
    } else {
      return v;
    }
  }
  static inline void add_masked(bf16_t* p, M m, V g) {
    const __m512i old = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16);
    const V sum = rounded<bf16_t>(_mm512_add_ps(_mm512_castsi512_ps(old), g));
    _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(sum), 16)));
  }
  static inline void store_indices_n(int64_t* p, I idx, int64_t n) {
    const __mmask16 m = first(n);
    _mm512_mask_storeu_epi64(p, static_cast<__mmask8>(m), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(idx)));
    _mm512_mask_storeu_epi64(p + 8, static_cast<__mmask8>(m >> 8),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(idx, 1)));
  }
  static inline void store_taps_n(uint8_t* p, I idx, int64_t n) { _mm512_mask_cvtepi32_storeu_epi8(p, first(n), idx); }
  static inline void store_taps_n(int32_t* p, I idx, int64_t n) { _mm512_mask_storeu_epi32(p, first(n), idx); }
};

template <>
struct Simd<double> {
  using V = __m512d;
  using I = __m256i;
  using M = __mmask8;
  static constexpr int kLanes = 8;

  static inline V load(const double* p) { return _mm512_loadu_pd(p); }
  static inline V load_stride2(const double* p) { return deinterleave2(load(p), load(p + kLanes - 1)); }
  static inline V deinterleave2(V a, V b) {  // a = p[0..7], b = p[7..14]
    const __m512i even = _mm512_set_epi64(15, 13, 11, 9, 6, 4, 2, 0);
    return _mm512_permutex2var_pd(a, even, b);
  }
  static constexpr bool kHasStride4 = true;
  static constexpr bool kHasDeinterleave4 = false;
  static inline V load_stride4(const double* p) {  // as Simd<float>'s: reads p[0..28]
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i even_shifted = _mm512_set_epi64(15, 15, 13, 11, 6, 4, 2, 0);
    const V low = _mm512_permutex2var_pd(load(p), even, load(p + 8));
    const V high = _mm512_permutex2var_pd(load(p + 16), even_shifted, load(p + 21));
    return _mm512_permutex2var_pd(low, even, high);
  }
  static inline void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static inline M takes(V v, V best) {
    return _mm512_cmp_pd_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
  }
  static inline M greater(V v, V best) { return _mm512_cmp_pd_mask(v, best, _CMP_GT_OQ); }
  static inline double reduce_max(V v) { return _mm512_reduce_max_pd(v); }
  static inline int32_t min_index_where(V v, double x, I idx) {  // idx: 8 int32 lanes
    return _mm512_mask_reduce_min_epi32(_mm512_cmp_pd_mask(v, _mm512_set1_pd(x), _CMP_EQ_OQ),
                                        _mm512_castsi256_si512(idx));
  }
  static inline V max(V v, V best) { return _mm512_max_pd(v, best); }
  static inline V add(V a, V b) { return _mm512_add_pd(a, b); }
  static inline bool any_nan(V v) { return _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q) != 0; }
  static inline V select(M m, V a, V b) { return _mm512_mask_blend_pd(m, a, b); }
  static inline I select(M m, I a, I b) { return _mm256_mask_blend_epi32(m, a, b); }
  static inline V splat(double x) { return _mm512_set1_pd(x); }
  static inline I index_set1(int32_t x) { return _mm256_set1_epi32(x); }
  static inline I index_max(I a, I b) { return _mm256_max_epi32(a, b); }
  static inline I index_sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static inline I index_add(I a, I b) { return _mm256_add_epi32(a, b); }
  static inline I index_iota(int32_t step) {
    return _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(step));
  }
  static inline I load_index32(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static inline V gather(const double* base, I offsets) { return _mm512_i32gather_pd(offsets, base, 8); }
  static inline I index_gather(const int32_t* base, I offsets) { return _mm256_i32gather_epi32(base, offsets, 4); }
  static inline V gather_near(const double* base, I rel) {
    return _mm512_permutex2var_pd(_mm512_loadu_pd(base), _mm512_cvtepi32_epi64(rel), _mm512_loadu_pd(base + kLanes));
  }
  static inline I index_gather_near(const int32_t* base, I rel) {
    return _mm256_permutex2var_epi32(load_index32(base), rel, load_index32(base + kLanes));
  }
  static inline void store_index32(int32_t* p, I idx) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), idx); }
  static inline void store_indices(int64_t* p, I idx) { _mm512_storeu_si512(p, _mm512_cvtepi32_epi64(idx)); }

  static constexpr bool kMasked = true;
  static inline __mmask8 first(int64_t n) { return static_cast<__mmask8>((1u << n) - 1); }
  static inline V load_n(const double* p, int64_t n) { return _mm512_maskz_loadu_pd(first(n), p); }
  static inline V load_where(const double* p, M m) { return _mm512_mask_loadu_pd(_mm512_set1_pd(-__builtin_inf()), m, p); }
  static inline V load_stride2_n(const double* p, int64_t n) {
    const int64_t span = 2 * n - 1;
    const __m512i even = _mm512_set_epi64(15, 13, 11, 9, 6, 4, 2, 0);
    const V a = load_n(p, span < kLanes ? span : kLanes);
    const V b = span > kLanes ? load_n(p + kLanes - 1, span - kLanes + 1) : _mm512_setzero_pd();
    return _mm512_permutex2var_pd(a, even, b);
  }
  static inline void store_n(double* p, V v, int64_t n) { _mm512_mask_storeu_pd(p, first(n), v); }
  static inline void store_indices_n(int64_t* p, I idx, int64_t n) {
    _mm512_mask_storeu_epi64(p, first(n), _mm512_cvtepi32_epi64(idx));
  }
  static inline void store_taps_n(uint8_t* p, I idx, int64_t n) { _mm256_mask_cvtepi32_storeu_epi8(p, first(n), idx); }
  static inline void store_taps_n(int32_t* p, I idx, int64_t n) { _mm256_mask_storeu_epi32(p, first(n), idx); }
};

// Tile<E>: a kSize x kSize tile (16 on AVX-512, 8 on AVX2) of 1-, 2-, 4- or
// 8-byte elements moved through int32 lanes, a vector a row (8-byte ones are
// narrowed: flat indices and positions below 2^31, which is all that goes
// through here), and transposed in registers. transpose(src, src_ld, rows,
// cols, dst, dst_ld): rows x cols elements, row r at src + r * src_ld, are
// written as cols x rows, row c at dst + c * dst_ld; nothing outside them is
// read or written. (transpose_matrix below: a whole matrix, tile by tile.)
template <typename E>
struct Tile {
  static constexpr int64_t kSize = 16;
  static_assert(sizeof(E) == 1 || sizeof(E) == 2 || sizeof(E) == 4 || sizeof(E) == 8, "element width");
  static inline __m512i load(const E* p, __mmask16 m) {
    if constexpr (sizeof(E) == 1) return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
    else if constexpr (sizeof(E) == 2) return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    else if constexpr (sizeof(E) == 4) return _mm512_maskz_loadu_epi32(m, p);
    else
      return _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m), p))),
          _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m >> 8), p + 8)), 1);
  }
  static inline void store(E* p, __mmask16 m, __m512i v) {
    if constexpr (sizeof(E) == 1) {
      _mm512_mask_cvtepi32_storeu_epi8(p, m, v);
    } else if constexpr (sizeof(E) == 2) {
      _mm512_mask_cvtepi32_storeu_epi16(p, m, v);
    } else if constexpr (sizeof(E) == 4) {
      _mm512_mask_storeu_epi32(p, m, v);
    } else {
      _mm512_mask_storeu_epi64(p, static_cast<__mmask8>(m), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
      _mm512_mask_storeu_epi64(p + 8, static_cast<__mmask8>(m >> 8),
                               _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
    }
  }
  // The 16 x 16 transpose of 32-bit lanes: pairs, quads, then 128-bit blocks.
  static inline void transpose_lanes(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
      t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
      t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 4; ++i) {
      r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
      r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
      r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
    }
  }
  static inline void transpose(const E* src, int64_t src_ld, int64_t rows, int64_t cols, E* dst, int64_t dst_ld) {
    const __mmask16 col_mask = static_cast<__mmask16>((1u << cols) - 1);
    const __mmask16 row_mask = static_cast<__mmask16>((1u << rows) - 1);
    __m512 r[16];
    for (int64_t i = 0; i < 16; ++i)
      r[i] = i < rows ? _mm512_castsi512_ps(load(src + i * src_ld, col_mask)) : _mm512_setzero_ps();
    transpose_lanes(r);
    for (int64_t c = 0; c < cols; ++c) store(dst + c * dst_ld, row_mask, _mm512_castps_si512(r[c]));
  }
};

#elif defined(__AVX2__)

template <>
struct Simd<float> {
  using V = __m256;
  using I = __m256i;
  using M = __m256;  // all-ones lanes
  static constexpr int kLanes = 8;
  static constexpr bool kMasked = false;

  static inline V load(const float* p) { return _mm256_loadu_ps(p); }
  static inline V load(const fp16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static inline V load(const bf16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  template <typename T>
  static inline V load_stride2(const T* p) { return deinterleave2(load(p), load(p + kLanes - 1)); }
  // a = p[0..7], b = p[7..14]: per 128-bit half take a's even and b's odd
  // lanes (0 2 8 10 | 4 6 12 14), then put the 64-bit pairs in order.
  static inline V deinterleave2(V a, V b) {
    const V mixed = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // The lanes whose bit is set read p[lane], the others -inf. Without masked
  // loads the whole vector is read: callers keep it inside the input.
  template <typename T>
  static inline V load_where(const T* p, uint32_t bits) {
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i in = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int32_t>(bits)), lane), lane);
    return _mm256_blendv_ps(splat(-__builtin_inff()), load(p), _mm256_castsi256_ps(in));
  }
  // bf16: p[0..7] and p[7..14] as the two 128-bit halves, whose even
  // elements are words 0 2 4 6 of the first and 1 3 5 7 of the second
  // (p[8] ... p[14]); one byte shuffle moves each to the top of its 32-bit
  // lane, zeros below, which is its float. Two loads and a shuffle instead of
  // two widening loads, two shifts and two permutes (the stem's k3 s2 in bf16
  // was bound by them, not by memory: 1 thread 16.1 -> 13.3 ms, Zen 3; the
  // same gather for fp16, before its conversion, measured slower).
  static inline V load_stride2(const bf16_t* p) {
    const __m256i halves =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
                                _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kLanes - 1)), 1);
    const __m256i to_top = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 4, 5, -1, -1, 8, 9, -1, -1, 12, 13,  //
                                            -1, -1, 2, 3, -1, -1, 6, 7, -1, -1, 10, 11, -1, -1, 14, 15);
    return _mm256_castsi256_ps(_mm256_shuffle_epi8(halves, to_top));
  }
  static constexpr bool kHasStride4 = true;
  static constexpr bool kHasDeinterleave4 = true;
  // As AVX-512's: p[0..31] as taps[t] lane j = p[4 j + t]. Each 128-bit half
  // of the four loads is one window; a 4 x 4 transpose per half gives the
  // windows in the order 0 2 4 6 | 1 3 5 7, which one permute puts right.
  template <typename T>
  static inline void deinterleave4(const T* p, V taps[4]) {
    const V v0 = load(p), v1 = load(p + 8), v2 = load(p + 16), v3 = load(p + 24);
    const V lo01 = _mm256_unpacklo_ps(v0, v1), hi01 = _mm256_unpackhi_ps(v0, v1);
    const V lo23 = _mm256_unpacklo_ps(v2, v3), hi23 = _mm256_unpackhi_ps(v2, v3);
    const __m256i order = _mm256_set_epi32(7, 3, 6, 2, 5, 1, 4, 0);
    taps[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0)), order);
    taps[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2)), order);
    taps[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0)), order);
    taps[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2)), order);
  }
  template <typename T>
  static inline V load_stride4(const T* p) {
    // a = p[0..7], b = p[8..15], c = p[16..23], d = p[21..28] (nothing past
    // p[28] read): per 128-bit half, a's and b's lane 0 beside c's lane 0
    // and d's lane 3 (0 8 16 24 | 4 12 20 28), then the lanes in order.
    const V ab = _mm256_shuffle_ps(load(p), load(p + 8), _MM_SHUFFLE(0, 0, 0, 0));
    const V cd = _mm256_shuffle_ps(load(p + 16), load(p + 21), _MM_SHUFFLE(3, 3, 0, 0));
    const V mixed = _mm256_shuffle_ps(ab, cd, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_permutevar8x32_ps(mixed, _mm256_set_epi32(7, 3, 6, 2, 5, 1, 4, 0));
  }
  static inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static inline void store(fp16_t* p, V v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static inline void store_stream(float* p, V v) { _mm256_stream_ps(p, v); }
  static inline void store_stream(fp16_t* p, V v) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static inline void store_stream(bf16_t* p, V v) { _mm_stream_si128(reinterpret_cast<__m128i*>(p), narrow_bf16(v)); }
  static inline V zero_unless(M m, V v) { return _mm256_and_ps(m, v); }
  static inline M no_lanes() { return _mm256_setzero_ps(); }
  static inline M either(M a, M b) { return _mm256_or_ps(a, b); }
  static inline uint32_t bits_of(M m) { return static_cast<uint32_t>(_mm256_movemask_ps(m)); }
  // p[l] = p[l] + g[l] for the lanes l in m, rounded to the storage type
  // after the add as Scalar<T>::store does. Without masked stores every lane
  // is written back: the others unchanged, since a value of the storage type
  // is exact in float and grad_input holds no signaling NaN (it starts at
  // zero and every add quiets one).
  template <typename T>
  static inline void add_masked(T* p, M m, V g) {
    const V old = load(p);
    store_rounded(p, select(m, old, add(old, g)));
  }
  template <typename T>
  static inline void store_rounded(T* p, V v) { store(p, rounded<T>(v)); }
  // v rounded to the storage type T and back to float, as Scalar<T>::store
  // rounds: nearest even; a NaN stays a quiet NaN of the same payload.
  template <typename T>
  static inline V rounded(V v) {
    if constexpr (std::is_same_v<T, fp16_t>) {
      return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else if constexpr (std::is_same_v<T, bf16_t>) {
      const __m256i u = _mm256_castps_si256(v);
      const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
      const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd));
      const __m256i quiet = _mm256_or_si256(u, _mm256_set1_epi32(0x400000));
      const V nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
      const V either = _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(quiet), nan);
      return _mm256_and_ps(either, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int32_t>(0xffff0000u))));
    } else {
      return v;
    }
  }
  // The high halves of v's lanes (exact for values that came from bf16).
  static inline __m128i narrow_bf16(V v) {
    const __m256i bits = _mm256_srli_epi32(_mm256_castps_si256(v), 16);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(bits, bits), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static inline void store(bf16_t* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), narrow_bf16(v)); }
  static inline M takes(V v, V best) {
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static inline M greater(V v, V best) { return _mm256_cmp_ps(v, best, _CMP_GT_OQ); }
  static inline float reduce_max(V v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static inline int32_t min_index_where(V v, float x, I idx) {
    // Lanes not equal to x become INT32_MAX, then the least lane wins.
    const I masked = select(_mm256_cmp_ps(v, splat(x), _CMP_EQ_OQ), _mm256_set1_epi32(INT32_MAX), idx);
    __m128i m = _mm_min_epi32(_mm256_castsi256_si128(masked), _mm256_extracti128_si256(masked, 1));
    m = _mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtsi128_si32(_mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1))));
  }
  static inline V max(V v, V best) { return _mm256_max_ps(v, best); }
  static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
  static inline bool any_nan(V v) { return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0; }
  static inline V select(M m, V a, V b) { return _mm256_blendv_ps(a, b, m); }
  static inline I select(M m, I a, I b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m));
  }
  static inline V splat(float x) { return _mm256_set1_ps(x); }
  static inline I index_set1(int32_t x) { return _mm256_set1_epi32(x); }
  static inline I index_max(I a, I b) { return _mm256_max_epi32(a, b); }
  static inline I index_sub(I a, I b) { return _mm256_sub_epi32(a, b); }
  static inline I index_add(I a, I b) { return _mm256_add_epi32(a, b); }
  static inline I index_iota(int32_t step) {
    return _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0), _mm256_set1_epi32(step));
  }
  static inline I load_index32(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static inline V gather(const float* base, I offsets) { return _mm256_i32gather_ps(base, offsets, 4); }
  static inline I index_gather(const int32_t* base, I offsets) { return _mm256_i32gather_epi32(base, offsets, 4); }
  static inline V gather_near(const float* base, I rel) {
    const __m256 high = _mm256_castsi256_ps(_mm256_cmpgt_epi32(rel, _mm256_set1_epi32(kLanes - 1)));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(base), rel),
                            _mm256_permutevar8x32_ps(_mm256_loadu_ps(base + kLanes), rel), high);
  }
  static inline I index_gather_near(const int32_t* base, I rel) {
    const __m256i high = _mm256_cmpgt_epi32(rel, _mm256_set1_epi32(kLanes - 1));
    return _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(load_index32(base), rel),
                              _mm256_permutevar8x32_epi32(load_index32(base + kLanes), rel), high);
  }
  static inline void store_index32(int32_t* p, I idx) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), idx); }
  static inline void store_indices(int64_t* p, I idx) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(idx)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(idx, 1)));
  }
};

template <>
struct Simd<double> {
  using V = __m256d;
  using I = __m128i;
  using M = __m256d;
  static constexpr int kLanes = 4;
  static constexpr bool kMasked = false;
  static constexpr bool kHasStride4 = false;
  static constexpr bool kHasDeinterleave4 = false;

  static inline V load(const double* p) { return _mm256_loadu_pd(p); }
  static inline V load_stride2(const double* p) { return deinterleave2(load(p), load(p + kLanes - 1)); }
  static inline V deinterleave2(V a, V b) {
    const V mixed = _mm256_shuffle_pd(a, b, 0xA);  // a = p[0..3], b = p[3..6]: 0 4 2 6
    return _mm256_permute4x64_pd(mixed, _MM_SHUFFLE(3, 1, 2, 0));
  }
  // As Simd<float>'s: the whole vector is read.
  static inline V load_where(const double* p, uint32_t bits) {
    const __m256i lane = _mm256_setr_epi64x(1, 2, 4, 8);
    const __m256i in = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(bits), lane), lane);
    return _mm256_blendv_pd(splat(-__builtin_inf()), load(p), _mm256_castsi256_pd(in));
  }
  static inline void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static inline M takes(V v, V best) {
    return _mm256_or_pd(_mm256_cmp_pd(v, best, _CMP_GT_OQ), _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
  }
  static inline M greater(V v, V best) { return _mm256_cmp_pd(v, best, _CMP_GT_OQ); }
  static inline double reduce_max(V v) {
    const __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
  }
  static inline int32_t min_index_where(V v, double x, I idx) {  // idx: 4 int32 lanes
    const I masked = select(_mm256_cmp_pd(v, splat(x), _CMP_EQ_OQ), _mm_set1_epi32(INT32_MAX), idx);
    const __m128i m = _mm_min_epi32(masked, _mm_shuffle_epi32(masked, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_cvtsi128_si32(_mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1))));
  }
  static inline V max(V v, V best) { return _mm256_max_pd(v, best); }
  static inline V add(V a, V b) { return _mm256_add_pd(a, b); }
  static inline bool any_nan(V v) { return _mm256_movemask_pd(_mm256_cmp_pd(v, v, _CMP_UNORD_Q)) != 0; }
  static inline V select(M m, V a, V b) { return _mm256_blendv_pd(a, b, m); }
  static inline I select(M m, I a, I b) {
    // Narrow the 64-bit lane mask to 32-bit lanes.
    const __m256i narrowed =
        _mm256_permutevar8x32_epi32(_mm256_castpd_si256(m), _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0));
    return _mm_castps_si128(
        _mm_blendv_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _mm_castsi128_ps(_mm256_castsi256_si128(narrowed))));
  }
  static inline V splat(double x) { return _mm256_set1_pd(x); }
  static inline I index_set1(int32_t x) { return _mm_set1_epi32(x); }
  static inline I index_max(I a, I b) { return _mm_max_epi32(a, b); }
  static inline I index_sub(I a, I b) { return _mm_sub_epi32(a, b); }
  static inline I index_add(I a, I b) { return _mm_add_epi32(a, b); }
  static inline I index_iota(int32_t step) { return _mm_mullo_epi32(_mm_set_epi32(3, 2, 1, 0), _mm_set1_epi32(step)); }
  static inline I load_index32(const int32_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static inline V gather(const double* base, I offsets) { return _mm256_i32gather_pd(base, offsets, 8); }
  static inline I index_gather(const int32_t* base, I offsets) { return _mm_i32gather_epi32(base, offsets, 4); }
  static inline V gather_near(const double* base, I rel) {
    // Each double as its two floats: lane r reads floats 2r and 2r+1 (mod 8) of either half.
    const __m256i r64 = _mm256_cvtepi32_epi64(rel);
    const __m256i low = _mm256_slli_epi64(r64, 1);
    const __m256i pairs = _mm256_or_si256(low, _mm256_slli_epi64(_mm256_add_epi64(low, _mm256_set1_epi64x(1)), 32));
    const __m256d high = _mm256_castsi256_pd(_mm256_cmpgt_epi64(r64, _mm256_set1_epi64x(kLanes - 1)));
    const auto half = [&](const double* p) {
      return _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_loadu_pd(p)), pairs));
    };
    return _mm256_blendv_pd(half(base), half(base + kLanes), high);
  }
  static inline I index_gather_near(const int32_t* base, I rel) {
    const __m128 high = _mm_castsi128_ps(_mm_cmpgt_epi32(rel, _mm_set1_epi32(kLanes - 1)));
    const auto half = [&](const int32_t* p) { return _mm_permutevar_ps(_mm_castsi128_ps(load_index32(p)), rel); };
    return _mm_castps_si128(_mm_blendv_ps(half(base), half(base + kLanes), high));
  }
  static inline void store_index32(int32_t* p, I idx) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), idx); }
  static inline void store_indices(int64_t* p, I idx) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_cvtepi32_epi64(idx));
  }
};

template <typename E>
struct Tile {  // see the AVX-512 Tile
  static constexpr int64_t kSize = 8;
  static_assert(sizeof(E) == 1 || sizeof(E) == 2 || sizeof(E) == 4 || sizeof(E) == 8, "element width");
  static inline __m256i lanes_below(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0));
  }
  // 8-byte elements: the low halves of p[0..n), the rest 0.
  static inline __m256i load_narrowed(const E* p, int64_t n) {
    const __m256i lanes = lanes_below(n);
    const __m256i take = _mm256_set_epi32(7, 6, 5, 4, 6, 4, 2, 0);  // low dwords of the 4 int64 to lanes 0-3
    const __m256i lo = _mm256_maskload_epi64(reinterpret_cast<const long long*>(p),
                                             _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lanes)));
    const __m256i hi = _mm256_maskload_epi64(reinterpret_cast<const long long*>(p + 4),
                                             _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lanes, 1)));
    return _mm256_permute2x128_si256(_mm256_permutevar8x32_epi32(lo, take), _mm256_permutevar8x32_epi32(hi, take),
                                     0x20);
  }
  static inline __m256i load(const E* p, int64_t n) {
    if constexpr (sizeof(E) == 4) {
      return _mm256_maskload_epi32(reinterpret_cast<const int*>(p), lanes_below(n));
    } else if constexpr (sizeof(E) == 8) {
      return load_narrowed(p, n);
    } else {  // no masked 1- and 2-byte loads: a partial row through a buffer
      alignas(16) E row[8] = {};
      std::memcpy(row, p, sizeof(E) * n);
      if constexpr (sizeof(E) == 1) return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row)));
      else return _mm256_cvtepu16_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(row)));
    }
  }
  static inline void store(E* p, int64_t n, __m256i v) {
    if constexpr (sizeof(E) == 4) {
      _mm256_maskstore_epi32(reinterpret_cast<int*>(p), lanes_below(n), v);
    } else if constexpr (sizeof(E) == 8) {
      const __m256i lanes = lanes_below(n);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(p), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(lanes)),
                             _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(p + 4),
                             _mm256_cvtepi32_epi64(_mm256_extracti128_si256(lanes, 1)),
                             _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    } else {  // lanes hold zero-extended 1- or 2-byte values: packing never saturates
      alignas(16) E row[16 / sizeof(E)];
      __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      if constexpr (sizeof(E) == 1) packed = _mm_packus_epi16(packed, packed);
      _mm_store_si128(reinterpret_cast<__m128i*>(row), packed);
      std::memcpy(p, row, sizeof(E) * n);
    }
  }
  // The 8 x 8 transpose of 32-bit lanes: pairs, quads, then 128-bit halves.
  static inline void transpose_lanes(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
      t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; ++i) r[i] = t[i];
  }
  static inline void transpose(const E* src, int64_t src_ld, int64_t rows, int64_t cols, E* dst, int64_t dst_ld) {
    __m256 r[8];
    for (int64_t i = 0; i < 8; ++i)
      r[i] = i < rows ? _mm256_castsi256_ps(load(src + i * src_ld, cols)) : _mm256_setzero_ps();
    transpose_lanes(r);
    for (int64_t c = 0; c < cols; ++c) store(dst + c * dst_ld, rows, _mm256_castps_si256(r[c]));
  }
};

#endif  // portable builds keep kLanes == 0: the kernels use their scalar loops

#if defined(__AVX512F__) || defined(__AVX2__)
// A whole rows x cols matrix (row-major) to its cols x rows transpose, tile
// by tile.
template <typename E>
inline void transpose_matrix(const E* src, int64_t rows, int64_t cols, E* dst) {
  constexpr int64_t S = Tile<E>::kSize;
  for (int64_t r0 = 0; r0 < rows; r0 += S)
    for (int64_t c0 = 0; c0 < cols; c0 += S)
      Tile<E>::transpose(src + r0 * cols + c0, cols, rows - r0 < S ? rows - r0 : S, cols - c0 < S ? cols - c0 : S,
                         dst + c0 * rows + r0, rows);
}
#endif

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
