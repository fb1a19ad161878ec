#include "layout_copy.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "huge_pages.h"

namespace fastpool::cpu {

namespace {

// Words of a size: the values are moved, not computed on.
template <int kBytes> struct Word;
template <> struct Word<1> { using E = uint8_t; };
template <> struct Word<2> { using E = uint16_t; };
template <> struct Word<4> { using E = uint32_t; };
template <> struct Word<8> { using E = uint64_t; };

// The B x B block at src (rows `ss` words apart) transposed to dst (rows `ds`
// apart), B = kBlock<kBytes>: 16 bytes a row, one SSE2 register.
template <int kBytes> constexpr int kBlock = 16 / kBytes;

template <int kBytes>
inline void transpose_block(const void* src, int64_t ss, void* dst, int64_t ds) {
  using E = typename Word<kBytes>::E;
  const E* s = static_cast<const E*>(src);
  E* d = static_cast<E*>(dst);
#if defined(__SSE2__)
  if constexpr (kBytes == 4) {
    __m128 r0 = _mm_loadu_ps(reinterpret_cast<const float*>(s));
    __m128 r1 = _mm_loadu_ps(reinterpret_cast<const float*>(s + ss));
    __m128 r2 = _mm_loadu_ps(reinterpret_cast<const float*>(s + 2 * ss));
    __m128 r3 = _mm_loadu_ps(reinterpret_cast<const float*>(s + 3 * ss));
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // shuffles only: NaN payloads pass unchanged
    _mm_storeu_ps(reinterpret_cast<float*>(d), r0);
    _mm_storeu_ps(reinterpret_cast<float*>(d + ds), r1);
    _mm_storeu_ps(reinterpret_cast<float*>(d + 2 * ds), r2);
    _mm_storeu_ps(reinterpret_cast<float*>(d + 3 * ds), r3);
    return;
  } else if constexpr (kBytes == 8) {
    const __m128i r0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i r1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + ss));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm_unpacklo_epi64(r0, r1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + ds), _mm_unpackhi_epi64(r0, r1));
    return;
  } else if constexpr (kBytes == 2) {
    __m128i r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i * ss));
    // Pairs of 16-bit words, then of 32, then of 64: three rounds of unpacks.
    __m128i a[8], b[8];
    for (int i = 0; i < 4; ++i) {
      a[2 * i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
      a[2 * i + 1] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        b[4 * i + 2 * j] = _mm_unpacklo_epi32(a[4 * i + j], a[4 * i + 2 + j]);
        b[4 * i + 2 * j + 1] = _mm_unpackhi_epi32(a[4 * i + j], a[4 * i + 2 + j]);
      }
    }
    // b[0..3] hold rows 0-3's columns (0,1), (2,3), (4,5), (6,7); b[4..7] rows 4-7's.
    for (int j = 0; j < 4; ++j) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + (2 * j) * ds), _mm_unpacklo_epi64(b[j], b[4 + j]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + (2 * j + 1) * ds), _mm_unpackhi_epi64(b[j], b[4 + j]));
    }
    return;
  }
#endif
  constexpr int B = kBlock<kBytes>;
  for (int i = 0; i < B; ++i)
    for (int j = 0; j < B; ++j) d[j * ds + i] = s[i * ss + j];
}

// dst[k * ds + r] = src[r * ss + k] for rows r in [r0, r1), columns k < K:
// B x B blocks, then the columns past the last whole block (and, where the
// rows end short of one, the last rows) word by word.
template <int kBytes>
void transpose_rows(const void* src, int64_t ss, void* dst, int64_t ds, int64_t r0, int64_t r1, int64_t K) {
  using E = typename Word<kBytes>::E;
  constexpr int64_t B = kBlock<kBytes>;
  const E* s = static_cast<const E*>(src);
  E* d = static_cast<E*>(dst);
  const int64_t k_blocks = K - K % B, r_blocks = r1 - (r1 - r0) % B;
  for (int64_t k = 0; k < k_blocks; k += B)
    for (int64_t r = r0; r < r_blocks; r += B) transpose_block<kBytes>(s + r * ss + k, ss, d + k * ds + r, ds);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t k = r < r_blocks ? k_blocks : 0; k < K; ++k) d[k * ds + r] = s[r * ss + k];
}

// Rows are transposed in runs: a run's rows stay in L1 while its columns
// are walked (64 rows x B words).
constexpr int64_t kRun = 64;

// dst[n][k][r] = src[n][r][k] for n < N, r < R, k < K, in parallel over
// (n, run of rows).
template <int kBytes>
void transpose_matrices(const void* src, void* dst, int64_t N, int64_t R, int64_t K) {
  using E = typename Word<kBytes>::E;
  const int64_t runs = (R + kRun - 1) / kRun;
  const E* s = static_cast<const E*>(src);
  E* d = static_cast<E*>(dst);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, kRun * K));
  // Sizes captured by value: by reference, the compiler reloads them in the
  // inner loop (the stores might alias them).
  at::parallel_for(0, N * runs, grain, [=](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / runs, r0 = (item % runs) * kRun;
      transpose_rows<kBytes>(s + n * R * K, K, d + n * R * K, R, r0, std::min(R, r0 + kRun), K);
    }
  });
}

// Copies `src` (dense in one layout) into `dst` (dense in the other, same
// sizes); false for word sizes this does not move.
bool transpose_layout(const at::Tensor& src, at::Tensor& dst, PoolLayout dst_layout, int spatial_dims) {
  const int64_t ndim = src.dim();
  const int64_t C = src.size(ndim - spatial_dims - 1);
  const int64_t N = ndim == spatial_dims + 2 ? src.size(0) : 1;
  int64_t P = 1;
  for (int64_t d = ndim - spatial_dims; d < ndim; ++d) P *= src.size(d);
  // channels last -> planar: each image a P x C matrix transposed; back: C x P.
  const int64_t R = dst_layout == PoolLayout::planar ? P : C, K = dst_layout == PoolLayout::planar ? C : P;
  const void* s = src.const_data_ptr();
  void* d = dst.mutable_data_ptr();
  switch (src.element_size()) {
    case 1: transpose_matrices<1>(s, d, N, R, K); return true;
    case 2: transpose_matrices<2>(s, d, N, R, K); return true;
    case 4: transpose_matrices<4>(s, d, N, R, K); return true;
    case 8: transpose_matrices<8>(s, d, N, R, K); return true;
    default: return false;
  }
}

PoolLayout other(PoolLayout layout) {
  return layout == PoolLayout::planar ? PoolLayout::channels_last : PoolLayout::planar;
}

}  // namespace

void transpose_words(const void* src, int64_t src_stride, void* dst, int64_t dst_stride, int64_t rows,
                     int64_t cols, int64_t bytes) {
  for (int64_t r0 = 0; r0 < rows; r0 += kRun) {
    const int64_t r1 = std::min(rows, r0 + kRun);
    switch (bytes) {
      case 1: transpose_rows<1>(src, src_stride, dst, dst_stride, r0, r1, cols); break;
      case 2: transpose_rows<2>(src, src_stride, dst, dst_stride, r0, r1, cols); break;
      case 4: transpose_rows<4>(src, src_stride, dst, dst_stride, r0, r1, cols); break;
      case 8: transpose_rows<8>(src, src_stride, dst, dst_stride, r0, r1, cols); break;
      default: TORCH_CHECK(false, "transpose_words: words of ", bytes, " bytes");
    }
  }
}

at::Tensor contiguous_in_cpu(const at::Tensor& t, PoolLayout layout, int spatial_dims) {
  if (stored_in_layout(t, layout, spatial_dims) || !stored_in_layout(t, other(layout), spatial_dims) || t.numel() == 0)
    return contiguous_in(t, layout, spatial_dims);
  return copy_in_layout_cpu(t, layout, spatial_dims);
}

at::Tensor copy_in_layout_cpu(const at::Tensor& t, PoolLayout layout, int spatial_dims) {
  at::Tensor out = empty_cpu_in_layout(t.sizes(), t.options(), layout, spatial_dims);
  if (t.numel() == 0) return out;
  if (stored_in_layout(t, other(layout), spatial_dims) && transpose_layout(t, out, layout, spatial_dims))
    return out;
  return out.copy_(t);
}

}  // namespace fastpool::cpu
