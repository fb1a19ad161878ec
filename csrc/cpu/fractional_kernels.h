// Fractional max-pooling CPU forward, compiled once per ISA (included by
// isa_*.cpp after max_pool_kernels.h, whose Scalar<T> loads and stores the
// storage types and whose simd.h gives the vectors). The caller
// (fractional_max_pool.cpp) tables every plane's window starts first
// (fractional_pool.h's rule, in the input's dtype) and checks them; the
// kernel reads them as data.
//
// Semantics are torch's fractional kernels': taps scanned t, h, then w; a tap
// replaces the running max if `v > best || isnan(v)` (the first of equal
// values wins, the last NaN wins); the running max starts at -inf with the
// window's first element as its index; windows without taps (kernel sizes
// <= 0) keep that. Indices are flat per plane.
//
// Work items are output rows (plane, ot, oh), so that a batch of one still
// spreads over every thread. With vectors (simd.h), a row is pooled in two
// steps: for every start w along W (contiguous, kLanes at a time) the max of
// the row's window taps starting there, scanning the taps in torch's order
// (t, h, w); then each output reads the entry at its window's start. That is
// torch's tap-by-tap scan per window, done for every start (a few more than
// the outputs: ratio > 1/2) with contiguous loads, where gathering each
// output's irregular taps was slower, and branch-free (random data would
// mispredict scalar selects). The outputs then read their starts' entries a
// vector at a time (Simd's gather_near, or hardware gathers where starts
// spread further). Without indices (the values op) no tap is tracked and
// none written; the training path's sinks (TapOffset) write each argmax as its
// tap within the window, (t * k_H + h) * k_W + w, not its flat index. The
// scan compares with plain > and screens for
// NaN (max_pool_kernels.h's WindowMax), redoing a row exactly when one may
// have decided; it tracks each lane's tap offset, not its position. Without
// a vector path (portable builds, rows narrower than a vector without masked
// loads, planes of 2^31 elements or more) the scan runs per output.
//
// The caller guarantees that every window with taps lies inside the input.
#pragma once
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernel_table.h"

namespace fastpool::cpu {
namespace FASTPOOL_ISA {

// Where output row r's window rows start.
struct FractionalRow {
  const int32_t* starts_w;  // out[2] window starts along W
  int64_t first;            // flat position of (starts_t[ot], starts_h[oh], 0) in the plane
  int64_t plane;
};

inline FractionalRow fractional_row(const FractionalPlan& p, int64_t r) {
  const int64_t rows_per_plane = p.out[0] * p.out[1];
  const int64_t plane = r / rows_per_plane;
  const int64_t rest = r - plane * rows_per_plane;
  const int64_t ot = rest / p.out[1], oh = rest - ot * p.out[1];
  const int32_t* s = p.starts + plane * (p.out[0] + p.out[1] + p.out[2]);
  return {s + p.out[0] + p.out[1], (s[ot] * p.in[1] + s[p.out[0] + oh]) * p.in[2], plane};
}

// Scalar: outputs [lo, hi) of one row.
template <typename T, typename Sink>
void fractional_row_scalar(const FractionalPlan& p, const FractionalRow& row, const T* in, T* out,
                           typename Sink::E* idx, int64_t lo, int64_t hi) {
  using S = Scalar<T>;
  using C = typename S::C;
  const int64_t H = p.in[1], W = p.in[2];
  const int64_t kt = p.k[0], kh = p.k[1], kw = p.k[2];
  for (int64_t ow = lo; ow < hi; ++ow) {
    const int64_t first = row.first + row.starts_w[ow];
    C best = -std::numeric_limits<C>::infinity();
    int64_t at = Sink::kTap ? 0 : first, tap = 0;
    for (int64_t dt = 0; dt < kt; ++dt) {
      for (int64_t dh = 0; dh < kh; ++dh) {
        const int64_t base = first + (dt * H + dh) * W;
        for (int64_t j = 0; j < kw; ++j, ++tap) {
          const C v = S::load(in[base + j]);
          const bool take = v > best || v != v;
          best = take ? v : best;
          at = take ? (Sink::kTap ? tap : base + j) : at;
        }
      }
    }
    out[ow] = S::store(best);
    if constexpr (Sink::kAny) idx[ow] = static_cast<typename Sink::E>(at);
  }
}

// Vector: the window maxima of the kLanes starts from w (n of them where
// n < kLanes: masked loads) and their positions relative to the row's first
// start, into best/at. taps[t]: tap t's offset from its window's start, in
// scan order. A WindowMax (max_pool_kernels.h) started at torch's -inf on
// tap 0: kExact applies torch's rule lane by lane; the fast scan uses plain
// > and adds its taps' sum into screen (NaN where a NaN may have decided:
// then redo exactly). kTaps > 0: n_taps known at compile time (unrolled).
// A tap sink's lanes track the tap's number t instead (at_out: the tap).
template <typename T, typename Sink, bool kExact, bool kPartial, int kTaps,
          typename Vec = Simd<typename Scalar<T>::C>>
FASTPOOL_ALWAYS_INLINE void fractional_starts_lanes(typename Vec::V& screen, const int32_t* taps, int64_t n_taps,
                                                    const T* window0, int64_t w, int64_t n,
                                                    typename Scalar<T>::C* best_out, int32_t* at_out) {
  using C = typename Scalar<T>::C;
  WindowMax<Vec, Sink, kExact> m;
  m.init(Vec::splat(-std::numeric_limits<C>::infinity()), Vec::index_set1(Sink::kTap ? 0 : taps[0]));
  if constexpr (kTaps > 0) n_taps = kTaps;
  for (int64_t t = 0; t < n_taps; ++t) {
    typename Vec::V v;
    if constexpr (kPartial) v = Vec::load_n(window0 + w + taps[t], n);
    else v = Vec::load(window0 + w + taps[t]);
    m.step(v, Vec::index_set1(Sink::kTap ? static_cast<int32_t>(t) : taps[t]));
  }
  Vec::store(best_out + w, m.best);
  if constexpr (Sink::kTap) {
    Vec::store_index32(at_out + w, m.best_index);
  } else if constexpr (Sink::kAny) {
    const typename Vec::I starts = Vec::index_add(Vec::index_iota(1), Vec::index_set1(static_cast<int32_t>(w)));
    Vec::store_index32(at_out + w, Vec::index_add(m.best_index, starts));
  }
  if constexpr (!kExact) screen = Vec::add(screen, m.sum);
}

// Every start's window max and tap along one output row (span starts),
// screened first and redone exactly where a NaN may have decided.
template <typename T, typename Sink>
void fractional_row_starts(const int32_t* taps, int64_t n_taps, const T* window0, int64_t span,
                           typename Scalar<T>::C* best, int32_t* at) {
  using Vec = Simd<typename Scalar<T>::C>;
  constexpr int L = Vec::kLanes;
  // Returns whether the row can be trusted: one NaN screen for the whole row
  // (a sum of every vector's taps), not a mask test per vector.
  const auto scan = [&](auto exact, auto taps_known) {
    constexpr bool kExact = decltype(exact)::value;
    constexpr int kTaps = decltype(taps_known)::value;
    typename Vec::V screen = Vec::splat(0);
    if (span >= L) {
      int64_t w = 0;
      for (; w + L <= span; w += L)
        fractional_starts_lanes<T, Sink, kExact, false, kTaps>(screen, taps, n_taps, window0, w, L, best, at);
      // The last starts: one more full vector overlapping the previous one
      // (pure, so computing some twice is harmless).
      if (w < span)
        fractional_starts_lanes<T, Sink, kExact, false, kTaps>(screen, taps, n_taps, window0, span - L, L, best, at);
    } else if constexpr (Vec::kMasked) {
      fractional_starts_lanes<T, Sink, kExact, true, kTaps>(screen, taps, n_taps, window0, 0, span, best, at);
    }
    return kExact || !Vec::any_nan(screen);
  };
  // The fast scan unrolled for 2x2, 2x2x2 and 3x3 windows (Graham's nets and
  // torch's example; 5-25% faster than the loop over taps here); the exact
  // redo (rare: a NaN) not.
  const auto fast = [&](auto taps_known) {
    if (!scan(std::false_type{}, taps_known)) scan(std::true_type{}, std::integral_constant<int, 0>{});
  };
  switch (n_taps) {
    case 4: return fast(std::integral_constant<int, 4>{});
    case 8: return fast(std::integral_constant<int, 8>{});
    case 9: return fast(std::integral_constant<int, 9>{});
    default: return fast(std::integral_constant<int, 0>{});
  }
}

// Sink: FlatIndex (indices written), TapOffset (taps) or NoArgmax (values only).
template <typename T, typename Sink>
void fractional_rows(const FractionalPlan& p, const void* input, void* output, void* argmax, int64_t begin,
                     int64_t end) {
  using E = typename Sink::E;
  using C = typename Scalar<T>::C;
  const T* in_all = static_cast<const T*>(input);
  T* out_all = static_cast<T*>(output);
  const int64_t in_plane = p.in[0] * p.in[1] * p.in[2];
  const int64_t H = p.in[1], W = p.in[2], OW = p.out[2];
  const bool has_taps = p.k[0] > 0 && p.k[1] > 0 && p.k[2] > 0;
  const int64_t span = W - p.k[2] + 1;  // the window starts along W
  const int64_t n_taps = p.k[0] * p.k[1] * p.k[2];
  // Per-row scratch, two vectors longer than the row, and each tap's offset
  // from its window's start (new[]: no std containers in per-ISA code, see
  // max_pool_kernels.h). Positions are int32 lanes: planes under 2^31.
  C* best = nullptr;
  int32_t* at = nullptr;
  int32_t* taps = nullptr;
  bool vector_rows = false;
  if constexpr (Simd<C>::kLanes > 0) {
    constexpr int L = Simd<C>::kLanes;
    vector_rows = has_taps && in_plane < INT32_MAX && (span >= L || Simd<C>::kMasked);
    if (vector_rows) {
      // Two vectors past the row: gather_near loads them (value-initialised:
      // read, never selected).
      best = new C[span + 2 * L]();
      at = new int32_t[span + 2 * L]();
      taps = new int32_t[n_taps];
      int32_t* o = taps;
      for (int64_t dt = 0; dt < p.k[0]; ++dt)
        for (int64_t dh = 0; dh < p.k[1]; ++dh)
          for (int64_t j = 0; j < p.k[2]; ++j) *o++ = static_cast<int32_t>((dt * H + dh) * W + j);
    }
  }
  for (int64_t r = begin; r < end; ++r) {
    const FractionalRow row = fractional_row(p, r);
    const T* in = in_all + (row.plane - p.first_plane) * in_plane;
    T* out = out_all + r * OW;
    E* idx = Sink::kAny ? static_cast<E*>(argmax) + r * OW : nullptr;
    if (!has_taps) {  // torch's -inf at the window's start (its tap 0)
      for (int64_t ow = 0; ow < OW; ++ow) {
        out[ow] = Scalar<T>::store(-std::numeric_limits<C>::infinity());
        if constexpr (Sink::kAny) idx[ow] = static_cast<E>(Sink::kTap ? 0 : row.first + row.starts_w[ow]);
      }
      continue;
    }
    if constexpr (Simd<C>::kLanes > 0) {
      if (vector_rows) {
        using Vec = Simd<C>;
        constexpr int L = Vec::kLanes;
        fractional_row_starts<T, Sink>(taps, n_taps, in + row.first, span, best, at);
        // Each output reads its start's entry, a vector of outputs at a time:
        // where their starts lie within two vectors (always for ratios over
        // 1/2, whose starts step by 1 or 2), two loads and permutes; else
        // hardware gathers. Then the scalar remainder.
        int64_t ow = 0;
        for (; ow + L <= OW; ow += L) {
          const int32_t w0 = row.starts_w[ow];
          const typename Vec::I w = Vec::load_index32(row.starts_w + ow);
          typename Vec::I at_w;
          if (row.starts_w[ow + L - 1] - w0 < 2 * L) {
            const typename Vec::I rel = Vec::index_sub(w, Vec::index_set1(w0));
            Vec::store(out + ow, Vec::gather_near(best + w0, rel));
            if constexpr (Sink::kAny) at_w = Vec::index_gather_near(at + w0, rel);
          } else {
            Vec::store(out + ow, Vec::gather(best, w));
            if constexpr (Sink::kAny) at_w = Vec::index_gather(at, w);
          }
          if constexpr (Sink::kTap)
            store_argmax<Vec, Sink>(idx + ow, at_w, L);
          else if constexpr (Sink::kAny)
            Vec::store_indices(idx + ow, Vec::index_add(at_w, Vec::index_set1(static_cast<int32_t>(row.first))));
        }
        for (; ow < OW; ++ow) {
          const int32_t w = row.starts_w[ow];
          out[ow] = Scalar<T>::store(best[w]);
          if constexpr (Sink::kAny) idx[ow] = static_cast<E>(Sink::kTap ? at[w] : row.first + at[w]);
        }
        continue;
      }
    }
    fractional_row_scalar<T, Sink>(p, row, in, out, idx, 0, OW);
  }
  delete[] best;
  delete[] at;
  delete[] taps;
}

// The table with this ISA's fractional kernels added, for every argmax sink.
template <typename T>
inline void add_fractional(KernelTable& k, DType type) {
  FractionalForwardFn* fns = k.fractional_forward[static_cast<int>(type)];
  fns[static_cast<int>(Argmax::none)] = &fractional_rows<T, NoArgmax>;
  fns[static_cast<int>(Argmax::flat)] = &fractional_rows<T, FlatIndex>;
  fns[static_cast<int>(Argmax::tap_u8)] = &fractional_rows<T, TapOffset<uint8_t>>;
  fns[static_cast<int>(Argmax::tap_i32)] = &fractional_rows<T, TapOffset<int32_t>>;
}

inline KernelTable with_fractional(KernelTable k) {
  add_fractional<float>(k, DType::f32);
  add_fractional<double>(k, DType::f64);
  add_fractional<fp16_t>(k, DType::f16);
  add_fractional<bf16_t>(k, DType::bf16);
  return k;
}

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
