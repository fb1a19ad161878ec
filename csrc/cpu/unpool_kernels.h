// max_unpool's dense path (max_unpool.cpp decides when to take it), compiled
// once per ISA (isa_*.cpp include this file). When every index of an input
// cell lies in the cell's own output block (a pool whose windows do not
// overlap, SegNet's k2 s2: UnpoolBlocks), the scatter is a dense map, written
// here as plain loops the compiler vectorises for each ISA's flags (contiguous
// compares of int64 indices against positions, and selects of 2-, 4- or 8-byte
// words whatever the dtype: values are moved, never computed on):
//   forward   out[p] = idx[cell(p)] == p ? val[cell(p)] : 0, each output
//             written once, in order (no zeroing pass);
//   backward  grad_in[cell] = grad_out[q] for the q of the cell's block
//             equal to idx[cell], grad_out read densely.
// Blocks are disjoint, so no two cells can name one output: the result equals
// the scatter's (and the gather's) exactly. Every index is checked (in the
// same pass for SegNet's 2-wide blocks, in a pass over the cell row first
// otherwise); a kernel returns false at the first index outside its cell's
// block (a bad index, an overlapping or padded pool, any other pattern) and
// the caller then runs the scatter or gather, which keep their rules (errors,
// duplicates) and write every element again. Which kernels each ISA's build
// has, and why: with_unpool at the end.
//
// No std containers or algorithms here (see max_pool_kernels.h: inline code
// built with AVX-512 flags must not be shared with other ISAs).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernel_table.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// Word types by size: the dtype does not matter to a copy. Pair: two words
// as one wider one (little endian: the first word in the low half), so that a
// 2-wide block's two outputs are one lane of a loop over cells; none for
// 8-byte words (their 2-wide blocks take the general loops).
template <int kBytes> struct UnpoolWord;
template <> struct UnpoolWord<2> { using E = uint16_t; using Pair = uint32_t; };
template <> struct UnpoolWord<4> { using E = uint32_t; using Pair = uint64_t; };
template <> struct UnpoolWord<8> { using E = uint64_t; using Pair = void; };

template <typename P, typename E>
inline P load_pair(const E* p) {
  P v;
  std::memcpy(&v, p, sizeof v);  // unaligned when a row starts at an odd position
  return v;
}

// Flat position (in the output plane) of the first element of output row
// (ot, oh).
inline int64_t unpool_row_start(const UnpoolBlocks& b, int64_t ot, int64_t oh) {
  return (ot * b.out[1] + oh) * b.out[2];
}

// The output rows of input row (t, h)'s blocks, k < s[0] * s[1]: t*s0 + a, h*s1 + r.
inline int64_t unpool_block_row(const UnpoolBlocks& b, int64_t t, int64_t h, int64_t k) {
  return unpool_row_start(b, t * b.s[0] + k / b.s[1], h * b.s[1] + k % b.s[1]);
}

// Walks rows numbered (image, i, k) with k < n_k, i < n_i, and for each the
// block coordinate k / s and its remainder, by increments: a division per row
// would cost as much as a narrow row's copy.
struct UnpoolRowCursor {
  int64_t image, i, k, block, within;
  int64_t n_i, n_k, s;
  UnpoolRowCursor(int64_t row, int64_t n_i_, int64_t n_k_, int64_t s_) : n_i(n_i_), n_k(n_k_), s(s_) {
    image = row / (n_i * n_k);
    const int64_t rest = row % (n_i * n_k);
    i = rest / n_k;
    k = rest % n_k;
    block = k / s;
    within = k % s;
  }
  void next() {
    if (++within == s) {
      within = 0;
      ++block;
    }
    if (++k == n_k) {
      k = block = within = 0;
      if (++i == n_i) {
        i = 0;
        ++image;
      }
    }
  }
};

// SegNet's 2x2 blocks (and a 1-d unpool's 2-wide ones): 1 or 2 block rows of
// width 2, for which the loops below are written with constant trip counts.
inline int unpool_rows_of_2wide(const UnpoolBlocks& b) {
  const int64_t rows = b.s[0] * b.s[1];
  return b.s[2] == 2 && rows <= 2 ? static_cast<int>(rows) : 0;
}

// Runs kernel<n>(j, n) over cells [0, cells) in pieces of kPiece with the
// count a constant (the compiler then emits whole vectors and no scalar
// remainder, which would dominate a row of 30 cells), the last piece moved
// back to end at `cells` (it redoes a few cells: the kernels' writes are
// idempotent); rows shorter than a piece run once with a runtime count.
// false as soon as a piece is.
constexpr int kUnpoolPiece = 16;
template <typename F>
inline bool unpool_in_pieces(int64_t cells, F&& kernel) {
  if (cells < kUnpoolPiece) return kernel(std::integral_constant<int, 0>{}, int64_t{0}, cells);
  for (int64_t j = 0;; j += kUnpoolPiece) {
    if (j > cells - kUnpoolPiece) j = cells - kUnpoolPiece;
    if (!kernel(std::integral_constant<int, kUnpoolPiece>{}, j, int64_t{kUnpoolPiece})) return false;
    if (j == cells - kUnpoolPiece) return true;
  }
}

// Whether every index x[k] (k < n) lies in the block of its cell: the
// block's rows start at base + k * step + unpool_block_row(t, h, r), s[2]
// wide. One unsigned compare per block row bounds both sides; no early exit,
// so the loop vectorises (the indices are in L1: the caller reads them again).
inline bool unpool_in_blocks(const UnpoolBlocks& b, const int64_t* x, int64_t n, int64_t base, int64_t step,
                             int64_t t, int64_t h) {
  const uint64_t width = static_cast<uint64_t>(b.s[2]);
  const int64_t rows = b.s[0] * b.s[1];
  int miss = 0;
  if (rows <= 2) {  // unrolled (a single row compares twice)
    const int64_t r0 = base + unpool_block_row(b, t, h, 0), r1 = base + unpool_block_row(b, t, h, rows - 1);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t d = x[k] - k * step;
      miss |= (static_cast<uint64_t>(d - r0) >= width) & (static_cast<uint64_t>(d - r1) >= width);
    }
    return miss == 0;
  }
  for (int64_t k = 0; k < n; ++k) {
    const int64_t d = x[k] - k * step - base;
    int in = 0;
    for (int64_t r = 0; r < rows; ++r) in |= static_cast<uint64_t>(d - unpool_block_row(b, t, h, r)) < width;
    miss |= !in;
  }
  return miss == 0;
}

// ---------------------------------------------------------------- forward

// Planar, 2-wide blocks of kRows rows: the block rows o0 (at flat position
// pos0) and o1 (pos1) of one cell row, written in one pass that also checks
// every index (false: one outside its block).
template <int kBytes, int kRows, int kN>
inline bool unpool_rows_planar_2wide(const typename UnpoolWord<kBytes>::E* __restrict v, const int64_t* __restrict x,
                                     typename UnpoolWord<kBytes>::E* __restrict o0,
                                     typename UnpoolWord<kBytes>::E* __restrict o1, int64_t cells, int64_t pos0,
                                     int64_t pos1) {
  using E = typename UnpoolWord<kBytes>::E;
  using P = typename UnpoolWord<kBytes>::Pair;
  int miss = 0;
  for (int64_t j = 0; j < (kN ? kN : cells); ++j) {
    const int64_t d0 = x[j] - (pos0 + 2 * j), d1 = x[j] - (pos1 + 2 * j);
    if constexpr (std::is_void_v<P>) {  // 8-byte words: two stores a row
      o0[2 * j] = d0 == 0 ? v[j] : E{};
      o0[2 * j + 1] = d0 == 1 ? v[j] : E{};
      if (kRows == 2) {
        o1[2 * j] = d1 == 0 ? v[j] : E{};
        o1[2 * j + 1] = d1 == 1 ? v[j] : E{};
      }
    } else {
      const P w = v[j], high = static_cast<P>(w << (8 * kBytes));
      const P pair0 = (d0 == 0 ? w : P{0}) | (d0 == 1 ? high : P{0});
      std::memcpy(o0 + 2 * j, &pair0, sizeof pair0);
      if (kRows == 2) {
        const P pair1 = (d1 == 0 ? w : P{0}) | (d1 == 1 ? high : P{0});
        std::memcpy(o1 + 2 * j, &pair1, sizeof pair1);
      }
    }
    miss |= (static_cast<uint64_t>(d0) >= 2) & (static_cast<uint64_t>(d1) >= 2);
  }
  return miss == 0;
}

#if defined(__AVX2__)
// Four 2-wide cells' int64 indices xi against their block row starting at
// flat position pos (the cells' rows start at pos, pos + 2, pos + 4, pos + 6):
// the lanes naming the row's first word (at0) and second word (at1); `in`
// gathers the hits.
struct BlockRowHits {
  __m256i at0, at1;
};
inline BlockRowHits block_row_hits(__m256i xi, int64_t pos, __m256i& in) {
  const __m256i d = _mm256_sub_epi64(xi, _mm256_add_epi64(_mm256_set1_epi64x(pos), _mm256_setr_epi64x(0, 2, 4, 6)));
  const BlockRowHits h{_mm256_cmpeq_epi64(d, _mm256_setzero_si256()), _mm256_cmpeq_epi64(d, _mm256_set1_epi64x(1))};
  in = _mm256_or_si256(in, _mm256_or_si256(h.at0, h.at1));
  return h;
}

// Eight channels' int64 indices (xa: channels 0-3, xb: 4-7) equal to p, as
// masks in the channels' 32-bit lanes, in channel order.
inline __m256 equal_lanes32(__m256i xa, __m256i xb, int64_t p) {
  const __m256i q = _mm256_set1_epi64x(p);
  const __m256 a = _mm256_castsi256_ps(_mm256_cmpeq_epi64(xa, q)), b = _mm256_castsi256_ps(_mm256_cmpeq_epi64(xb, q));
  // (a0 a1 b0 b1 | a2 a3 b2 b3) -> (a0 a1 a2 a3 b0 b1 b2 b3)
  return _mm256_castsi256_ps(_mm256_permute4x64_epi64(
      _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
}
// The same in the channels' 16-bit lanes.
inline __m128i equal_lanes16(__m256i xa, __m256i xb, int64_t p) {
  const __m256i m = _mm256_castps_si256(equal_lanes32(xa, xb, p));
  return _mm_packs_epi32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
}

// Eight channels' words in one vector, for the hand-written channels-last
// kernels: 4-byte words in 32-bit lanes, 2-byte words in 16-bit lanes; masks
// from the channels' int64 compares (equal_lanes32/16).
struct Lanes32 {
  using W = uint32_t;
  using V = __m256;
  static V equal(__m256i xa, __m256i xb, int64_t p) { return equal_lanes32(xa, xb, p); }
  static V load(const W* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static void store(W* p, V v) { _mm256_storeu_ps(reinterpret_cast<float*>(p), v); }
  static V select(V m, V a, V b) { return _mm256_blendv_ps(a, b, m); }  // m ? b : a
  static V either(V a, V b) { return _mm256_or_ps(a, b); }
  static V both(V a, V b) { return _mm256_and_ps(a, b); }
  static V all_ones() { return _mm256_castsi256_ps(_mm256_set1_epi32(-1)); }
  static bool all(V m) { return _mm256_movemask_ps(m) == 0xff; }
};
struct Lanes16 {
  using W = uint16_t;
  using V = __m128i;
  static V equal(__m256i xa, __m256i xb, int64_t p) { return equal_lanes16(xa, xb, p); }
  static V load(const W* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void store(W* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static V select(V m, V a, V b) { return _mm_blendv_epi8(a, b, m); }
  static V either(V a, V b) { return _mm_or_si128(a, b); }
  static V both(V a, V b) { return _mm_and_si128(a, b); }
  static V all_ones() { return _mm_set1_epi32(-1); }
  static bool all(V m) { return _mm_movemask_epi8(m) == 0xffff; }
};

// 2-byte words, by hand (AVX2 and AVX-512 builds): the compiler's version of
// unpool_rows_planar_2wide, widening each cell's word to its index's 64-bit
// lane and narrowing back, was slower than the scatter. Four cells a step:
// indices compared in 64-bit lanes, each cell's two outputs built as one
// 32-bit pair in its lane, the four pairs packed into 16 bytes; the cells
// past the last step by unpool_rows_planar_2wide.
template <int kRows>
inline bool unpool_rows_planar_2wide_u16(const uint16_t* __restrict v, const int64_t* __restrict x,
                                         uint16_t* __restrict o0, uint16_t* __restrict o1, int64_t cells, int64_t pos0,
                                         int64_t pos1) {
  const __m256i low_halves = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  // (at0 ? word : 0) | (at1 ? word << 16 : 0): each cell's pair in the block row.
  const auto pair = [&](__m256i xi, __m256i w, int64_t pos, __m256i& in) {
    const BlockRowHits h = block_row_hits(xi, pos, in);
    const __m256i p = _mm256_or_si256(_mm256_and_si256(w, h.at0), _mm256_and_si256(_mm256_slli_epi64(w, 16), h.at1));
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(p, low_halves));
  };
  __m256i all_in = _mm256_set1_epi64x(-1);
  int64_t j = 0;
  for (; j + 4 <= cells; j += 4) {
    const __m256i xi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
    const __m256i w = _mm256_cvtepu16_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v + j)));
    __m256i in = _mm256_setzero_si256();
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o0 + 2 * j), pair(xi, w, pos0 + 2 * j, in));
    if (kRows == 2) _mm_storeu_si128(reinterpret_cast<__m128i*>(o1 + 2 * j), pair(xi, w, pos1 + 2 * j, in));
    all_in = _mm256_and_si256(all_in, in);
  }
  bool ok = _mm256_movemask_epi8(all_in) == -1;
  if (j < cells)
    ok &= unpool_rows_planar_2wide<2, kRows, 0>(v + j, x + j, o0 + 2 * j, o1 + 2 * j, cells - j, pos0 + 2 * j,
                                                pos1 + 2 * j);
  return ok;
}
#endif

// Channels last, 2-wide blocks of kRows rows: cell j's n channels written to
// its block's pixels (rows o0, o1; columns 2j, 2j + 1; pixels C apart),
// checking each index.
template <typename E, int kRows>
inline bool unpool_pixels_2wide(const E* __restrict v, const int64_t* __restrict x, E* __restrict o0,
                                E* __restrict o1, int64_t n, int64_t C, int64_t p0, int64_t p1) {
  int miss = 0;
  for (int64_t c = 0; c < n; ++c) {
    const int64_t i = x[c];
    o0[c] = i == p0 ? v[c] : E{};
    o0[C + c] = i == p0 + 1 ? v[c] : E{};
    int in = (i == p0) | (i == p0 + 1);
    if (kRows == 2) {
      o1[c] = i == p1 ? v[c] : E{};
      o1[C + c] = i == p1 + 1 ? v[c] : E{};
      in |= (i == p1) | (i == p1 + 1);
    }
    miss |= !in;
  }
  return miss == 0;
}

#if defined(__AVX2__)
// 2-byte words, by hand (unpool_pixels_2wide compiled to code 6x slower than
// the scatter on AVX2): eight channels a step, each block pixel's word masked
// by its channels' compares narrowed to 16-bit lanes; the channels past the
// last step by unpool_pixels_2wide.
template <int kRows>
inline bool unpool_pixels_2wide_u16(const uint16_t* __restrict v, const int64_t* __restrict x,
                                    uint16_t* __restrict o0, uint16_t* __restrict o1, int64_t C, int64_t p0,
                                    int64_t p1) {
  using L = Lanes16;
  L::V all_in = L::all_ones();
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + c));
    const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + c + 4));
    const L::V w = L::load(v + c);
    const L::V at00 = L::equal(xa, xb, p0), at01 = L::equal(xa, xb, p0 + 1);
    L::store(o0 + c, L::both(w, at00));
    L::store(o0 + C + c, L::both(w, at01));
    L::V in = L::either(at00, at01);
    if (kRows == 2) {
      const L::V at10 = L::equal(xa, xb, p1), at11 = L::equal(xa, xb, p1 + 1);
      L::store(o1 + c, L::both(w, at10));
      L::store(o1 + C + c, L::both(w, at11));
      in = L::either(in, L::either(at10, at11));
    }
    all_in = L::both(all_in, in);
  }
  bool ok = L::all(all_in);
  if (c < C) ok &= unpool_pixels_2wide<uint16_t, kRows>(v + c, x + c, o0 + c, o1 + c, C - c, C, p0, p1);
  return ok;
}
#endif

// Input rows [begin, end), numbered (image, t, h); an image is a plane
// (planar) or all channels of a batch entry (channels last, b.channels > 1).
// Each writes the output rows of its blocks, full width (columns past the
// blocks are zero), and the last of an image's row also the rows no block
// reaches (past in * s), so every output element is written once.
template <int kBytes, bool kChannelsLast>
bool unpool_forward(const UnpoolBlocks& b, const void* values, const int64_t* indices, void* output, int64_t begin,
                    int64_t end) {
  using E = typename UnpoolWord<kBytes>::E;
  const int64_t C = b.channels, Wi = b.in[2], Wo = b.out[2];
  const int64_t in_plane = b.in[0] * b.in[1] * Wi, out_plane = b.out[0] * b.out[1] * Wo;
  const int64_t rows = b.s[0] * b.s[1], covered_w = Wi * b.s[2];
  const int rows_2wide = unpool_rows_of_2wide(b);
  UnpoolRowCursor cur(begin, b.in[0], b.in[1], 1);
  for (int64_t row = begin; row < end; ++row, cur.next()) {
    const int64_t image = cur.image, t = cur.i, h = cur.k;
    const int64_t cell0 = image * in_plane + (t * b.in[1] + h) * Wi;
    const E* v = static_cast<const E*>(values) + cell0 * C;
    const int64_t* x = indices + cell0 * C;
    E* o = static_cast<E*>(output) + image * out_plane * C;
    const int64_t pos0 = unpool_block_row(b, t, h, 0), pos1 = unpool_block_row(b, t, h, rows - 1);
    if (rows_2wide && !kChannelsLast) {
      const bool ok = unpool_in_pieces(Wi, [&](auto n, int64_t j, int64_t count) {
        E* o0 = o + pos0 + 2 * j;
        E* o1 = o + pos1 + 2 * j;
#if defined(__AVX2__)
        if constexpr (kBytes == 2)
          return rows_2wide == 2
                     ? unpool_rows_planar_2wide_u16<2>(v + j, x + j, o0, o1, count, pos0 + 2 * j, pos1 + 2 * j)
                     : unpool_rows_planar_2wide_u16<1>(v + j, x + j, o0, o1, count, pos0 + 2 * j, pos1 + 2 * j);
#endif
        return rows_2wide == 2
                   ? unpool_rows_planar_2wide<kBytes, 2, decltype(n)::value>(v + j, x + j, o0, o1, count, pos0 + 2 * j, pos1 + 2 * j)
                   : unpool_rows_planar_2wide<kBytes, 1, decltype(n)::value>(v + j, x + j, o0, o1, count, pos0 + 2 * j, pos1 + 2 * j);
      });
      if (!ok) return false;
    } else if (rows_2wide) {
      for (int64_t j = 0; j < Wi; ++j) {
        const int64_t p0 = pos0 + 2 * j, p1 = pos1 + 2 * j;
#if defined(__AVX2__) && !defined(__AVX512F__)  // AVX-512: the compiled loops (measured faster)
        if constexpr (kBytes == 2) {
          const bool ok = rows_2wide == 2 ? unpool_pixels_2wide_u16<2>(v + j * C, x + j * C, o + p0 * C, o + p1 * C, C, p0, p1)
                                          : unpool_pixels_2wide_u16<1>(v + j * C, x + j * C, o + p0 * C, o + p1 * C, C, p0, p1);
          if (!ok) return false;
          continue;
        }
#endif
        const bool ok = rows_2wide == 2 ? unpool_pixels_2wide<E, 2>(v + j * C, x + j * C, o + p0 * C, o + p1 * C, C, C, p0, p1)
                                        : unpool_pixels_2wide<E, 1>(v + j * C, x + j * C, o + p0 * C, o + p1 * C, C, C, p0, p1);
        if (!ok) return false;
      }
    } else {
      // Any other blocks: check the row's indices, then write each block row.
      if (kChannelsLast) {
        for (int64_t j = 0; j < Wi; ++j)
          if (!unpool_in_blocks(b, x + j * C, C, j * b.s[2], 0, t, h)) return false;
      } else if (!unpool_in_blocks(b, x, Wi, 0, b.s[2], t, h)) {
        return false;
      }
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t pos = unpool_block_row(b, t, h, k);
        E* ok = o + pos * C;
        if (kChannelsLast) {
          for (int64_t w = 0; w < covered_w; ++w) {
            const int64_t j = w / b.s[2], p = pos + w;
            const int64_t* __restrict xc = x + j * C;
            const E* __restrict vc = v + j * C;
            E* __restrict oc = ok + w * C;
            for (int64_t c = 0; c < C; ++c) oc[c] = xc[c] == p ? vc[c] : E{};
          }
        } else {
          for (int64_t j = 0; j < Wi; ++j)
            for (int64_t q = 0; q < b.s[2]; ++q) ok[j * b.s[2] + q] = x[j] == pos + j * b.s[2] + q ? v[j] : E{};
        }
      }
    }
    // The columns past the blocks, then the rows past them.
    if (covered_w < Wo)
      for (int64_t k = 0; k < rows; ++k)
        std::memset(o + (unpool_block_row(b, t, h, k) + covered_w) * C, 0, (Wo - covered_w) * C * sizeof(E));
    if (h == b.in[1] - 1 && b.in[1] * b.s[1] < b.out[1])
      for (int64_t a = 0; a < b.s[0]; ++a)
        std::memset(o + unpool_row_start(b, t * b.s[0] + a, b.in[1] * b.s[1]) * C, 0,
                    (b.out[1] - b.in[1] * b.s[1]) * Wo * C * sizeof(E));
    if (h == b.in[1] - 1 && t == b.in[0] - 1 && b.in[0] * b.s[0] < b.out[0])
      std::memset(o + unpool_row_start(b, b.in[0] * b.s[0], 0) * C, 0,
                  (b.out[0] - b.in[0] * b.s[0]) * b.out[1] * Wo * C * sizeof(E));
  }
  return true;
}

// ---------------------------------------------------------------- backward

// Planar, 2-wide blocks of kRows rows (unpool_rows_of_2wide): gi[j] = the
// gradient of the block position x[j] names, each block row read as pairs;
// one pass that also checks every index (false: one outside its block).
template <int kBytes, int kRows, int kN>
inline bool unpool_select_planar_2wide(const typename UnpoolWord<kBytes>::E* __restrict g, const int64_t* __restrict x,
                                       typename UnpoolWord<kBytes>::E* __restrict gi, int64_t cells,
                                       int64_t pos0, int64_t pos1) {
  using E = typename UnpoolWord<kBytes>::E;
  using P = typename UnpoolWord<kBytes>::Pair;
  int miss = 0;
  for (int64_t j = 0; j < (kN ? kN : cells); ++j) {
    E lo0, hi0, lo1, hi1;
    if constexpr (std::is_void_v<P>) {  // 8-byte words: two loads
      lo0 = g[pos0 + 2 * j], hi0 = g[pos0 + 2 * j + 1], lo1 = g[pos1 + 2 * j], hi1 = g[pos1 + 2 * j + 1];
    } else {
      const P p0 = load_pair<P>(g + pos0 + 2 * j), p1 = load_pair<P>(g + pos1 + 2 * j);
      lo0 = static_cast<E>(p0), hi0 = static_cast<E>(p0 >> (8 * kBytes));
      lo1 = static_cast<E>(p1), hi1 = static_cast<E>(p1 >> (8 * kBytes));
    }
    const int64_t d0 = x[j] - (pos0 + 2 * j);
    E r = d0 == 0 ? lo0 : hi0;
    int in = static_cast<uint64_t>(d0) < 2;
    if (kRows == 2) {
      const int64_t d1 = x[j] - (pos1 + 2 * j);
      r = d1 == 0 ? lo1 : d1 == 1 ? hi1 : r;
      in |= static_cast<uint64_t>(d1) < 2;
    }
    gi[j] = r;
    miss |= !in;
  }
  return miss == 0;
}

#if defined(__AVX2__)
// 2-byte words, by hand (as unpool_rows_planar_2wide_u16): four cells a
// step, each block row's four pairs loaded as 16 bytes and widened to the
// cells' 64-bit lanes, the named word shifted down and the four packed into
// 8 bytes; the cells past the last step by unpool_select_planar_2wide.
template <int kRows>
inline bool unpool_select_planar_2wide_u16(const uint16_t* __restrict g, const int64_t* __restrict x,
                                           uint16_t* __restrict gi, int64_t cells, int64_t pos0, int64_t pos1) {
  const __m256i low_halves = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  // The word x names in the block row at pos, where it lies there (else r).
  const auto select = [&](__m256i xi, int64_t pos, __m256i r, __m256i& in) {
    const BlockRowHits h = block_row_hits(xi, pos, in);
    const __m256i pairs = _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + pos)));
    r = _mm256_blendv_epi8(r, pairs, h.at0);
    return _mm256_blendv_epi8(r, _mm256_srli_epi64(pairs, 16), h.at1);
  };
  __m256i all_in = _mm256_set1_epi64x(-1);
  int64_t j = 0;
  for (; j + 4 <= cells; j += 4) {
    const __m256i xi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j));
    __m256i in = _mm256_setzero_si256();
    __m256i r = select(xi, pos0 + 2 * j, _mm256_setzero_si256(), in);
    if (kRows == 2) r = select(xi, pos1 + 2 * j, r, in);
    // Each lane's word in its low 16 bits (the rest: the pair's other word or 0).
    const __m128i words = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(r, low_halves));
    const __m128i low = _mm_and_si128(words, _mm_set1_epi32(0xffff));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(gi + j), _mm_packus_epi32(low, low));
    all_in = _mm256_and_si256(all_in, in);
  }
  bool ok = _mm256_movemask_epi8(all_in) == -1;
  if (j < cells)
    ok &= unpool_select_planar_2wide<2, kRows, 0>(g, x + j, gi + j, cells - j, pos0 + 2 * j, pos1 + 2 * j);
  return ok;
}
#endif

// Channels last, 2-wide blocks of kRows rows: the C channels of cell j's
// gradients (tile row), selected from its block's kRows x 2 pixels; checks
// each index as it goes.
template <typename E, int kRows>
inline bool unpool_select_channels_2wide(const E* __restrict g, const int64_t* __restrict x, E* __restrict tile,
                                         int64_t n, int64_t C, int64_t p0, int64_t p1) {
  const E* g00 = g + p0 * C;
  const E* g01 = g00 + C;
  const E* g10 = g + p1 * C;
  const E* g11 = g10 + C;
  int miss = 0;
  for (int64_t c = 0; c < n; ++c) {
    const int64_t v = x[c];
    E r = v == p0 ? g00[c] : g01[c];
    int in = (v == p0) | (v == p0 + 1);
    if (kRows == 2) {
      r = v == p1 ? g10[c] : v == p1 + 1 ? g11[c] : r;
      in |= (v == p1) | (v == p1 + 1);
    }
    tile[c] = r;
    miss |= !in;
  }
  return miss == 0;
}

#if defined(__AVX2__)
// 2- and 4-byte words, by hand (AVX2 builds): the compiler's version of the
// loop above (int64 compares steering 16- or 32-bit selects) was slower than
// the gather on AVX2 (4-byte: 2.7x). Eight channels a step: each block
// pixel's compares narrowed to the channels' lanes, then blends in the
// loop's order; the channels past the last step by
// unpool_select_channels_2wide.
template <typename L, int kRows>
inline bool unpool_select_channels_2wide_lanes(const typename L::W* __restrict g, const int64_t* __restrict x,
                                               typename L::W* __restrict tile, int64_t n, int64_t C, int64_t p0,
                                               int64_t p1) {
  using W = typename L::W;
  const W* g00 = g + p0 * C;
  const W* g01 = g00 + C;
  const W* g10 = g + p1 * C;
  const W* g11 = g10 + C;
  typename L::V all_in = L::all_ones();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + c));
    const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + c + 4));
    const typename L::V at00 = L::equal(xa, xb, p0), at01 = L::equal(xa, xb, p0 + 1);
    typename L::V r = L::select(at00, L::load(g01 + c), L::load(g00 + c));
    typename L::V in = L::either(at00, at01);
    if (kRows == 2) {
      const typename L::V at10 = L::equal(xa, xb, p1), at11 = L::equal(xa, xb, p1 + 1);
      r = L::select(at11, r, L::load(g11 + c));
      r = L::select(at10, r, L::load(g10 + c));
      in = L::either(in, L::either(at10, at11));
    }
    L::store(tile + c, r);
    all_in = L::both(all_in, in);
  }
  bool ok = L::all(all_in);
  if (c < n) ok &= unpool_select_channels_2wide<W, kRows>(g + c, x + c, tile + c, n - c, C, p0, p1);
  return ok;
}
#endif

// Input rows [begin, end), numbered (image, t, h); grad_input is planar in
// both layouts (PyTorch's gradient is contiguous): channels last goes through
// a small tile (kJ cells x kC channels) so that each plane's row is written
// in runs of kJ cells rather than one element per line.
template <int kBytes, bool kChannelsLast>
bool unpool_backward(const UnpoolBlocks& b, const void* grad_output, const int64_t* indices, void* grad_input,
                     int64_t begin, int64_t end) {
  using E = typename UnpoolWord<kBytes>::E;
  const int64_t C = b.channels;
  const int64_t in_plane = b.in[0] * b.in[1] * b.in[2], out_plane = b.out[0] * b.out[1] * b.out[2];
  const int64_t W = b.in[2], rows = b.s[0] * b.s[1];
  const int rows_2wide = unpool_rows_of_2wide(b);
  UnpoolRowCursor cur(begin, b.in[0], b.in[1], 1);
  for (int64_t row = begin; row < end; ++row, cur.next()) {
    const int64_t image = cur.image, t = cur.i, h = cur.k;
    const int64_t cell0 = (t * b.in[1] + h) * W;
    const int64_t* x = indices + (image * in_plane + cell0) * C;
    const E* g = static_cast<const E*>(grad_output) + image * out_plane * C;
    E* gi = static_cast<E*>(grad_input) + image * C * in_plane + cell0;
    const int64_t pos0 = unpool_block_row(b, t, h, 0), pos1 = unpool_block_row(b, t, h, rows - 1);
    if (!kChannelsLast) {
      if (rows_2wide) {
        const bool ok = unpool_in_pieces(W, [&](auto n, int64_t j, int64_t count) {
#if defined(__AVX2__)
          if constexpr (kBytes == 2)
            return rows_2wide == 2
                       ? unpool_select_planar_2wide_u16<2>(g, x + j, gi + j, count, pos0 + 2 * j, pos1 + 2 * j)
                       : unpool_select_planar_2wide_u16<1>(g, x + j, gi + j, count, pos0 + 2 * j, pos1 + 2 * j);
#endif
          return rows_2wide == 2
                     ? unpool_select_planar_2wide<kBytes, 2, decltype(n)::value>(g, x + j, gi + j, count, pos0 + 2 * j, pos1 + 2 * j)
                     : unpool_select_planar_2wide<kBytes, 1, decltype(n)::value>(g, x + j, gi + j, count, pos0 + 2 * j, pos1 + 2 * j);
        });
        if (!ok) return false;
        continue;
      }
      if (!unpool_in_blocks(b, x, W, 0, b.s[2], t, h)) return false;
      for (int64_t j = 0; j < W; ++j) gi[j] = E{};
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t pos = unpool_block_row(b, t, h, k);
        for (int64_t j = 0; j < W; ++j)
          for (int64_t q = 0; q < b.s[2]; ++q)
            gi[j] = x[j] == pos + j * b.s[2] + q ? g[pos + j * b.s[2] + q] : gi[j];
      }
      continue;
    }
    if (!rows_2wide)
      for (int64_t j = 0; j < W; ++j)
        if (!unpool_in_blocks(b, x + j * C, C, j * b.s[2], 0, t, h)) return false;
    // A tile row is 1 KiB of channels: a cell's gradients are read as two
    // sequential streams (its block rows) when C fits, which the hardware
    // prefetches; 8 rows keep the tile in L1 (8 KiB).
    constexpr int64_t kJ = 8, kC = 1024 / sizeof(E);
    E tile[kJ * kC];
    for (int64_t j0 = 0; j0 < W; j0 += kJ) {
      const int64_t nj = W - j0 < kJ ? W - j0 : kJ;
      for (int64_t c0 = 0; c0 < C; c0 += kC) {
        const int64_t nc = C - c0 < kC ? C - c0 : kC;
        for (int64_t jj = 0; jj < nj; ++jj) {
          const int64_t j = j0 + jj;
          const int64_t* xc = x + j * C + c0;
          E* tc = tile + jj * kC;
          if (rows_2wide) {
#if defined(__AVX2__) && !defined(__AVX512F__)  // AVX-512: the compiled loops (measured faster)
            if constexpr (kBytes == 2 || kBytes == 4) {
              using L = std::conditional_t<kBytes == 2, Lanes16, Lanes32>;
              const bool ok = rows_2wide == 2
                                  ? unpool_select_channels_2wide_lanes<L, 2>(g + c0, xc, tc, nc, C, pos0 + 2 * j, pos1 + 2 * j)
                                  : unpool_select_channels_2wide_lanes<L, 1>(g + c0, xc, tc, nc, C, pos0 + 2 * j, pos1 + 2 * j);
              if (!ok) return false;
              continue;
            }
#endif
            const bool ok = rows_2wide == 2
                                ? unpool_select_channels_2wide<E, 2>(g + c0, xc, tc, nc, C, pos0 + 2 * j, pos1 + 2 * j)
                                : unpool_select_channels_2wide<E, 1>(g + c0, xc, tc, nc, C, pos0 + 2 * j, pos1 + 2 * j);
            if (!ok) return false;
            continue;
          }
          for (int64_t c = 0; c < nc; ++c) tc[c] = E{};
          for (int64_t k = 0; k < rows; ++k)
            for (int64_t q = 0; q < b.s[2]; ++q) {
              const int64_t p = unpool_block_row(b, t, h, k) + j * b.s[2] + q;
              const E* gc = g + p * C + c0;
              for (int64_t c = 0; c < nc; ++c) tc[c] = xc[c] == p ? gc[c] : tc[c];
            }
        }
        if (nj == kJ) {  // the usual full tile, unrolled
          for (int64_t c = 0; c < nc; ++c) {
            E* out = gi + (c0 + c) * in_plane + j0;
            // Each row's next line, for writing: 1024 rows are more
            // streams than the prefetchers follow (1.1-1.2x faster).
            __builtin_prefetch(out + 64 / sizeof(E), 1);
            for (int64_t jj = 0; jj < kJ; ++jj) out[jj] = tile[jj * kC + c];
          }
        } else {
          for (int64_t c = 0; c < nc; ++c) {
            E* out = gi + (c0 + c) * in_plane + j0;
            for (int64_t jj = 0; jj < nj; ++jj) out[jj] = tile[jj * kC + c];
          }
        }
      }
    }
  }
  return true;
}

// The entries this ISA's build has: where the dense loops are slower than
// the scatter or gather they replace, none (the caller then runs those).
// Measured on SegNet's unpool4 (512 x 22x30 -> 44x60, cache-resident), one
// thread, AMD EPYC; before -> after, ms:
//   AVX-512  fp32 planar fwd 0.36 -> 0.25, bwd 0.28 -> 0.23; channels last
//            fwd 0.46 -> 0.16, bwd 0.57 -> 0.30; bf16 channels last fwd
//            0.35 -> 0.12, bwd 0.33 -> 0.24; but bf16 planar fwd 0.32 ->
//            0.45, bwd 0.27 -> 0.39 (2-byte words: no planar entries);
//   AVX2     fp32 fwd planar 0.35 -> 0.35, channels last 0.41 -> 0.21; but
//            bwd planar 0.28 -> 0.41, channels last 0.48 -> 1.3, and 2-byte
//            words 6x slower (forward entries for 4- and 8-byte words only);
//   portable (SSE2: no 64-bit compares) 4-5x slower everywhere: none.
// The 2-byte planar kernels are since written by hand (the *_u16 functions),
// for both ISAs: AVX2, SegNet's unpool4 bf16, whole op on 2 threads (best of
// 40, alternating builds): forward 0.50-0.54 -> 0.27-0.33 ms, training step
// 1.0 -> 0.65-0.75 ms (torch 1.3-1.5). So is the channels-last backward for
// 4-byte words (unpool_select_channels_2wide_lanes), now an AVX2 entry: fp32
// unpool4 0.45-0.60 -> 0.24-0.35 ms, unpool2 (128 x 90x120) 3.8-4.0 -> 2.4-2.7
// ms. And the 2-byte channels-last kernels (unpool_pixels_2wide_u16,
// unpool_select_channels_2wide_lanes), now AVX2 entries: bf16 NHWC unpool4
// forward 0.48-0.52 -> 0.15-0.26 ms, unpool2 forward 2.1-2.3 -> 0.8-1.3 ms,
// backward 5.8-7.4 -> 1.1-1.6 ms. The AVX-512 build keeps its compiled
// channels-last loops (measured above) and takes the hand-written 2-byte
// planar ones (it had none), not measured on an AVX-512 machine.
template <int kBytes>
void set_unpool_entries(KernelTable& k, bool forward_planar, bool forward_channels_last, bool backward_planar,
                        bool backward_channels_last) {
  constexpr int w = kBytes == 2 ? 0 : kBytes == 4 ? 1 : 2;
  constexpr int P = static_cast<int>(Layout::planar), CL = static_cast<int>(Layout::channels_last);
  if (forward_planar) k.unpool_forward[P][w] = &unpool_forward<kBytes, false>;
  if (forward_channels_last) k.unpool_forward[CL][w] = &unpool_forward<kBytes, true>;
  if (backward_planar) k.unpool_backward[P][w] = &unpool_backward<kBytes, false>;
  if (backward_channels_last) k.unpool_backward[CL][w] = &unpool_backward<kBytes, true>;
}

inline KernelTable with_unpool(KernelTable k) {
#if defined(__AVX512F__)
  set_unpool_entries<2>(k, true, true, true, true);
  set_unpool_entries<4>(k, true, true, true, true);
  set_unpool_entries<8>(k, true, true, true, true);
#elif defined(__AVX2__)
  set_unpool_entries<2>(k, true, true, true, true);
  set_unpool_entries<4>(k, true, true, false, true);
  set_unpool_entries<8>(k, true, true, false, false);
#endif
  return k;
}

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
