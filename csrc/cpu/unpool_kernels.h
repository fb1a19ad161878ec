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
// the scatter's (and the gather's) exactly. Every cell row's indices are
// checked before use; a kernel returns false at the first index outside its
// cell's block (a bad index, an overlapping or padded pool, any other pattern)
// and the caller then runs the scatter or gather, which keep their rules
// (errors, duplicates) and write every element again.
//
// No std containers or algorithms here (see max_pool_kernels.h: inline code
// built with AVX-512 flags must not be shared with other ISAs).
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernel_table.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// Word types by size: the dtype does not matter to a copy.
template <int kBytes> struct UnpoolWord;
template <> struct UnpoolWord<2> { using E = uint16_t; };
template <> struct UnpoolWord<4> { using E = uint32_t; };
template <> struct UnpoolWord<8> { using E = uint64_t; };

// Flat position (in the output plane) of the first element of output row
// (ot, oh), and the row's block-row offsets seen from a cell row: the cells of
// input row (t, h) own output rows t*s0 + a, h*s1 + b (a < s0, b < s1).
inline int64_t unpool_row_start(const UnpoolBlocks& b, int64_t ot, int64_t oh) {
  return (ot * b.out[1] + oh) * b.out[2];
}

// Whether every index x[k * stride] (k < n) lies in the block of its cell:
// the block's rows start at base + k * step + unpool_row_start(t*s0 + a,
// h*s1 + b) and are s2 wide. One compare per block row (2 for SegNet's 2x2),
// unsigned so that one test bounds both sides; no early exit, so the loop
// vectorises (the indices are in L1: the caller then reads them again).
inline bool unpool_in_blocks(const UnpoolBlocks& b, const int64_t* x, int64_t n, int64_t stride, int64_t base,
                             int64_t step, int64_t t, int64_t h) {
  const uint64_t width = static_cast<uint64_t>(b.s[2]);
  if (b.s[0] * b.s[1] == 2) {  // the 2-d 2-row blocks, unrolled
    const int64_t r0 = base + unpool_row_start(b, t * b.s[0], h * b.s[1]);
    const int64_t r1 = base + (b.s[0] == 2 ? unpool_row_start(b, t * 2 + 1, h * b.s[1])
                                           : unpool_row_start(b, t * b.s[0], h * b.s[1] + 1));
    int miss = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t d = x[k * stride] - k * step;
      miss |= (static_cast<uint64_t>(d - r0) >= width) & (static_cast<uint64_t>(d - r1) >= width);
    }
    return miss == 0;
  }
  int miss = 0;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t d = x[k * stride] - k * step - base;
    int in = 0;
    for (int64_t a = 0; a < b.s[0]; ++a)
      for (int64_t r = 0; r < b.s[1]; ++r)
        in |= static_cast<uint64_t>(d - unpool_row_start(b, t * b.s[0] + a, h * b.s[1] + r)) < width;
    miss |= !in;
  }
  return miss == 0;
}

// Calls f(kSW) with the block width as a constant where it is SegNet's (2) or
// 1 (the compiler then vectorises the per-cell lanes), else with 0 (runtime).
template <typename F>
inline void with_block_width(int64_t sw, F&& f) {
  if (sw == 2) return f(std::integral_constant<int, 2>{});
  if (sw == 1) return f(std::integral_constant<int, 1>{});
  f(std::integral_constant<int, 0>{});
}

// ---------------------------------------------------------------- forward

// Planar: one output row of `cells` blocks, o[0] at flat position pos.
template <typename E, int kSW>
inline void unpool_row_planar(const E* v, const int64_t* x, E* o, int64_t cells, int64_t sw_runtime, int64_t pos) {
  const int64_t sw = kSW ? kSW : sw_runtime;
  for (int64_t j = 0; j < cells; ++j)
    for (int64_t q = 0; q < sw; ++q) o[j * sw + q] = x[j] == pos + j * sw + q ? v[j] : E{};
}

// Output rows [begin, end), numbered (image, ot, oh); an image is a plane
// (planar) or all channels of a batch entry (channels last, b.channels > 1).
template <int kBytes, bool kChannelsLast>
bool unpool_forward(const UnpoolBlocks& b, const void* values, const int64_t* indices, void* output, int64_t begin,
                    int64_t end) {
  using E = typename UnpoolWord<kBytes>::E;
  const int64_t C = b.channels;
  const int64_t in_plane = b.in[0] * b.in[1] * b.in[2], out_plane = b.out[0] * b.out[1] * b.out[2];
  const int64_t covered_t = b.in[0] * b.s[0], covered_h = b.in[1] * b.s[1], covered_w = b.in[2] * b.s[2];
  for (int64_t row = begin; row < end; ++row) {
    const int64_t image = row / (b.out[0] * b.out[1]), rest = row % (b.out[0] * b.out[1]);
    const int64_t ot = rest / b.out[1], oh = rest % b.out[1];
    const int64_t pos = unpool_row_start(b, ot, oh);
    E* o = static_cast<E*>(output) + (image * out_plane + pos) * C;
    if (ot >= covered_t || oh >= covered_h) {  // no cell's block reaches this row
      std::memset(o, 0, b.out[2] * C * sizeof(E));
      continue;
    }
    const int64_t t = ot / b.s[0], h = oh / b.s[1];
    const int64_t cell0 = image * in_plane + (t * b.in[1] + h) * b.in[2];
    const E* v = static_cast<const E*>(values) + cell0 * C;
    const int64_t* x = indices + cell0 * C;
    // The cell row is checked once, at its blocks' first output row.
    if (ot % b.s[0] == 0 && oh % b.s[1] == 0) {
      if (kChannelsLast) {
        for (int64_t j = 0; j < b.in[2]; ++j)
          if (!unpool_in_blocks(b, x + j * C, C, 1, j * b.s[2], 0, t, h)) return false;
      } else if (!unpool_in_blocks(b, x, b.in[2], 1, 0, b.s[2], t, h)) {
        return false;
      }
    }
    if (kChannelsLast) {
      // Each pixel: its cell's channels against one position, contiguous.
      for (int64_t w = 0; w < covered_w; ++w) {
        const int64_t j = w / b.s[2], p = pos + w;
        const int64_t* xc = x + j * C;
        const E* vc = v + j * C;
        E* oc = o + w * C;
        for (int64_t c = 0; c < C; ++c) oc[c] = xc[c] == p ? vc[c] : E{};
      }
    } else {
      with_block_width(b.s[2], [&](auto sw) { unpool_row_planar<E, decltype(sw)::value>(v, x, o, b.in[2], b.s[2], pos); });
    }
    std::memset(o + covered_w * C, 0, (b.out[2] - covered_w) * C * sizeof(E));
  }
  return true;
}

// ---------------------------------------------------------------- backward

// Planar: gi[j] = the g row's element of cell j's block columns whose
// position (pos + its column) is x[j], where this block row holds it.
template <typename E, int kSW>
inline void unpool_select_planar(const E* g, const int64_t* x, E* gi, int64_t cells, int64_t sw_runtime,
                                 int64_t pos) {
  const int64_t sw = kSW ? kSW : sw_runtime;
  for (int64_t j = 0; j < cells; ++j)
    for (int64_t q = 0; q < sw; ++q) gi[j] = x[j] == pos + j * sw + q ? g[j * sw + q] : gi[j];
}

// Input rows [begin, end), numbered (image, t, h); grad_input is planar in
// both layouts (PyTorch's gradient is contiguous): channels last transposes
// through a small tile so that each plane's row is written contiguously.
template <int kBytes, bool kChannelsLast>
bool unpool_backward(const UnpoolBlocks& b, const void* grad_output, const int64_t* indices, void* grad_input,
                     int64_t begin, int64_t end) {
  using E = typename UnpoolWord<kBytes>::E;
  const int64_t C = b.channels;
  const int64_t in_plane = b.in[0] * b.in[1] * b.in[2], out_plane = b.out[0] * b.out[1] * b.out[2];
  const int64_t W = b.in[2];
  for (int64_t row = begin; row < end; ++row) {
    const int64_t image = row / (b.in[0] * b.in[1]), rest = row % (b.in[0] * b.in[1]);
    const int64_t t = rest / b.in[1], h = rest % b.in[1];
    const int64_t cell0 = (t * b.in[1] + h) * W;
    const int64_t* x = indices + (image * in_plane + cell0) * C;
    const E* g = static_cast<const E*>(grad_output) + image * out_plane * C;
    E* gi = static_cast<E*>(grad_input) + image * C * in_plane + cell0;
    if (!kChannelsLast) {
      if (!unpool_in_blocks(b, x, W, 1, 0, b.s[2], t, h)) return false;
      for (int64_t j = 0; j < W; ++j) gi[j] = E{};
      for (int64_t a = 0; a < b.s[0]; ++a)
        for (int64_t r = 0; r < b.s[1]; ++r) {
          const int64_t pos = unpool_row_start(b, t * b.s[0] + a, h * b.s[1] + r);
          with_block_width(b.s[2], [&](auto sw) { unpool_select_planar<E, decltype(sw)::value>(g + pos, x, gi, W, b.s[2], pos); });
        }
      continue;
    }
    for (int64_t j = 0; j < W; ++j)
      if (!unpool_in_blocks(b, x + j * C, C, 1, j * b.s[2], 0, t, h)) return false;
    // Tiles of kJ cells x kC channels: selected pixel by pixel (contiguous
    // channels), then written out channel by channel (kJ contiguous cells).
    constexpr int64_t kJ = 16, kC = 64;
    E tile[kJ * kC];
    for (int64_t j0 = 0; j0 < W; j0 += kJ) {
      const int64_t nj = W - j0 < kJ ? W - j0 : kJ;
      for (int64_t c0 = 0; c0 < C; c0 += kC) {
        const int64_t nc = C - c0 < kC ? C - c0 : kC;
        for (int64_t jj = 0; jj < nj; ++jj) {
          const int64_t j = j0 + jj;
          const int64_t* xc = x + j * C + c0;
          E* tc = tile + jj * kC;
          for (int64_t c = 0; c < nc; ++c) tc[c] = E{};
          for (int64_t a = 0; a < b.s[0]; ++a)
            for (int64_t r = 0; r < b.s[1]; ++r)
              for (int64_t q = 0; q < b.s[2]; ++q) {
                const int64_t p = unpool_row_start(b, t * b.s[0] + a, h * b.s[1] + r) + j * b.s[2] + q;
                const E* gc = g + p * C + c0;
                for (int64_t c = 0; c < nc; ++c) tc[c] = xc[c] == p ? gc[c] : tc[c];
              }
        }
        for (int64_t c = 0; c < nc; ++c) {
          E* out = gi + (c0 + c) * in_plane + j0;
          for (int64_t jj = 0; jj < nj; ++jj) out[jj] = tile[jj * kC + c];
        }
      }
    }
  }
  return true;
}

template <int kBytes>
void set_unpool_entries(KernelTable& k) {
  constexpr int w = kBytes == 2 ? 0 : kBytes == 4 ? 1 : 2;
  k.unpool_forward[static_cast<int>(Layout::planar)][w] = &unpool_forward<kBytes, false>;
  k.unpool_forward[static_cast<int>(Layout::channels_last)][w] = &unpool_forward<kBytes, true>;
  k.unpool_backward[static_cast<int>(Layout::planar)][w] = &unpool_backward<kBytes, false>;
  k.unpool_backward[static_cast<int>(Layout::channels_last)][w] = &unpool_backward<kBytes, true>;
}

inline KernelTable with_unpool(KernelTable k) {
  set_unpool_entries<2>(k);
  set_unpool_entries<4>(k);
  set_unpool_entries<8>(k);
  return k;
}

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
