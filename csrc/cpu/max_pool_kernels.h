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

// ------------------------------------------------------------ argmax sinks
//
// How a forward records each output's argmax (Argmax in kernel_table.h), and
// how a backward reads it: kAny = anything at all; kTap = the tap within the
// window (kernel order, see WindowTaps::first_tap) instead of the flat index.
// The vector paths track int32 lanes of whichever of the two the sink wants.
struct NoArgmax {
  static constexpr bool kAny = false, kTap = false;
  using E = int64_t;
};
struct FlatIndex {
  static constexpr bool kAny = true, kTap = false;
  using E = int64_t;
};
template <typename U>
struct TapOffset {
  static constexpr bool kAny = true, kTap = true;
  using E = U;
  static constexpr U kNoTap = static_cast<U>(~U(0));  // a window without in-bounds taps
};

// For the per-row and per-chunk helpers of the hot loops: as the kernels grew,
// GCC stopped inlining them (narrow NCHW rows ran 2x slower through calls).
#define FASTPOOL_ALWAYS_INLINE inline __attribute__((always_inline))

// A scratch array owned by one call (no std::vector: see the file comment).
template <typename E>
struct Scratch {
  E* data = nullptr;
  explicit Scratch(int64_t n) : data(n > 0 ? new E[n] : nullptr) {}
  ~Scratch() { delete[] data; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

// Whether a kernel's output should bypass the caches (non-temporal stores):
// when what the call touches exceeds about half a last-level cache (16 MiB of
// a server part's 32; sysconf's figure is not to be trusted in a VM: 320 MiB
// here), its output will not be in cache for the next op anyway, and
// streaming it saves reading every line before writing it (VGG's k2 s2
// channels-last backward: 1.5-1.8x).
inline bool stream_output(int64_t touched_bytes) {
  constexpr int64_t kStreamBytes = int64_t{16} << 20;
  return touched_bytes > kStreamBytes;
}

// A backward call reads grad_output and the argmaxes and writes grad_input.
template <typename T, typename Source>
inline bool stream_backward(const PoolGeometry& g) {
  const int64_t per_output = static_cast<int64_t>(sizeof(T) + sizeof(typename Source::E));
  return stream_output(g.batch * g.channels *
                       (in_plane_elems(g) * static_cast<int64_t>(sizeof(T)) + out_plane_elems(g) * per_output));
}

// How far ahead the forward kernels prefetch input: output rows (planar),
// output positions (channels last).
constexpr int64_t kPrefetchRows = 2;
constexpr int64_t kPrefetchPositions = 8;
constexpr int64_t kMaxPrefetchRowBytes = 2048;
// A run of rows (forward_planar_row_run) prefetches at least
// this far ahead: narrow rows go by in a few nanoseconds each (VGG's k2 s2
// on 56x56 planes, 1 thread: 2 rows ahead 2.1-2.4 ms, 6 rows 1.7-1.9, 12
// rows 1.6-1.7 in bf16; 4 KiB is 18 rows there, 9 in fp32).
constexpr int64_t kRunPrefetchBytes = 4096;

inline int64_t max_taps(const PoolGeometry& g) { return g.kernel[0] * g.kernel[1] * g.kernel[2]; }

// Calls f with the kernel width along W as a compile-time constant where it
// is a common one (2, 3: the tap loops unroll; kWith5: 5 too, YOLO's SPPF, for
// the kernels that take it), else 0 (read at run time).
template <bool kWith5 = false, typename F>
FASTPOOL_ALWAYS_INLINE void with_kernel_width(const PoolGeometry& g, F&& f) {
  switch (g.kernel[2]) {
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 5:
      if constexpr (kWith5) return f(std::integral_constant<int, 5>{});
      [[fallthrough]];
    default: return f(std::integral_constant<int, 0>{});
  }
}

// Calls f with the stride along W as a compile-time constant: 1 or 2, else
// (kAny) 0, read at run time. Without kAny the caller has made sure it is 1
// or 2 (bounded and paired rows).
template <bool kAny, typename F>
FASTPOOL_ALWAYS_INLINE void with_row_stride(const PoolGeometry& g, F&& f) {
  if (g.stride[2] == 1) return f(std::integral_constant<int, 1>{});
  if (!kAny || g.stride[2] == 2) return f(std::integral_constant<int, 2>{});
  if constexpr (kAny) f(std::integral_constant<int, 0>{});
}

// Window rows: the in-bounds (d, h) taps of one (od, oh), as offsets
// (id * H + ih) * W of the row starts, in scan order, and as kernel rows
// kd * KH + kh (for the tap sinks: a tap is kernel row * KW + kw).
struct WindowRows {
  int64_t count;
  int64_t first;  // PyTorch's initial argmax row, kept even when count == 0
};

// The in-bounds taps of every output coordinate along each dim, computed once
// per call: the per-output loops then need no divisions.
// needed = false: empty (a path that may not run allocates nothing per call).
struct WindowTables {
  Scratch<WindowTaps> dims[kMaxSpatialDims];
  explicit WindowTables(const PoolGeometry& g, bool needed = true)
      : dims{Scratch<WindowTaps>(needed ? g.out_size[0] : 0), Scratch<WindowTaps>(needed ? g.out_size[1] : 0),
             Scratch<WindowTaps>(needed ? g.out_size[2] : 0)} {
    for (int d = 0; needed && d < kMaxSpatialDims; ++d)
      for (int64_t o = 0; o < g.out_size[d]; ++o) dims[d].data[o] = window_taps(g, d, o);
  }
  const WindowTaps& width(int64_t ow) const { return dims[2].data[ow]; }
};

FASTPOOL_ALWAYS_INLINE WindowRows collect_rows(const PoolGeometry& g, const WindowTables& tables, int64_t od,
                                               int64_t oh, int64_t* rows, int64_t* row_taps) {
  const WindowTaps td = tables.dims[0].data[od], th = tables.dims[1].data[oh];
  const int64_t H = g.in_size[1], W = g.in_size[2], KH = g.kernel[1];
  int64_t n = 0;
  for (int64_t a = 0; a < td.count; ++a)
    for (int64_t b = 0; b < th.count; ++b) {
      row_taps[n] = (td.first_tap + a) * KH + th.first_tap + b;
      rows[n++] = ((td.first + a * g.dilation[0]) * H + th.first + b * g.dilation[1]) * W;
    }
  return {n, (td.first * H + th.first) * W};
}

// The rows of one window and their kernel rows, sized for the largest window.
struct RowScratch {
  Scratch<int64_t> rows, taps;
  explicit RowScratch(const PoolGeometry& g, bool needed = true)
      : rows(needed ? g.kernel[0] * g.kernel[1] : 0), taps(needed ? g.kernel[0] * g.kernel[1] : 0) {}
  FASTPOOL_ALWAYS_INLINE WindowRows collect(const PoolGeometry& g, const WindowTables& t, int64_t od, int64_t oh) {
    return collect_rows(g, t, od, oh, rows.data, taps.data);
  }
};

// Walks output rows (outer index, od, oh) in order without dividing per step.
struct RowCursor {
  int64_t outer, od, oh;
  const int64_t OD, OH;
  RowCursor(const PoolGeometry& g, int64_t row) : OD(g.out_size[0]), OH(g.out_size[1]) {
    oh = row % OH;
    od = (row / OH) % OD;
    outer = row / (OH * OD);
  }
  inline void next() {
    if (++oh < OH) return;
    oh = 0;
    if (++od < OD) return;
    od = 0;
    ++outer;
  }
};

// One output, PyTorch's scalar loop. Element i of the plane is at
// base[i * elem_stride] (1 for planar, C for channels last). The argmax
// starts at the first in-bounds tap (PyTorch's flat start even without one).
template <typename T, typename Sink>
inline void forward_one(const PoolGeometry& g, const T* base, int64_t elem_stride, const RowScratch& rs,
                        WindowRows wr, WindowTaps tw, T* out, typename Sink::E* index) {
  using S = Scalar<T>;
  const int64_t dil_w = g.dilation[2], KW = g.kernel[2];
  typename S::C best = S::lowest();
  int64_t best_at = wr.first + tw.first;
  if constexpr (Sink::kTap)
    best_at = wr.count > 0 && tw.count > 0 ? rs.taps.data[0] * KW + tw.first_tap : int64_t{Sink::kNoTap};
  for (int64_t r = 0; r < wr.count; ++r) {
    for (int64_t c = 0; c < tw.count; ++c) {
      const int64_t i = rs.rows.data[r] + tw.first + c * dil_w;
      const typename S::C v = S::load(base[i * elem_stride]);
      if (takes(v, best)) {
        best = v;
        best_at = Sink::kTap ? rs.taps.data[r] * KW + tw.first_tap + c : i;
      }
    }
  }
  *out = S::store(best);
  if constexpr (Sink::kAny) *index = static_cast<typename Sink::E>(best_at);
}

// ------------------------------------------------------- vector reduction

// The running max (and argmax) of one vector of outputs over the window's
// taps, in scan order. kExact applies PyTorch's rule (v > best || isnan(v))
// lane by lane. The fast variant uses plain v > best, which gives the same
// result whenever no tap is NaN, and keeps a running sum to find out: if the
// sum is NaN (a NaN tap, or +inf meeting -inf) the caller redoes the chunk
// exactly. It saves one compare per tap, the bottleneck of these loops.
template <typename Sd, typename Sink>
FASTPOOL_ALWAYS_INLINE void store_argmax(typename Sink::E* p, typename Sd::I lanes, int64_t n);

// best (and its argmax) <- v (and v_arg) in the lanes where v > best: the
// first of equals stays, the rule when no NaN can be present. Without the
// argmax, a max.
template <typename Sd, bool kArg>
FASTPOOL_ALWAYS_INLINE void take_greater(typename Sd::V& best, typename Sd::I& arg, typename Sd::V v,
                                         typename Sd::I v_arg) {
  if constexpr (kArg) {
    const typename Sd::M m = Sd::greater(v, best);
    best = Sd::select(m, best, v);
    arg = Sd::select(m, arg, v_arg);
  } else {
    best = Sd::max(v, best);
  }
}

template <typename Sd, typename Sink, bool kExact>
struct WindowMax {
  static constexpr bool kIndices = Sink::kAny;
  typename Sd::V best, sum;
  typename Sd::I best_index;

  inline void first(typename Sd::V v, typename Sd::I index) {
    best = v;
    if constexpr (!kExact) sum = v;
    if constexpr (kIndices) best_index = index;
  }
  // A start that is not a tap (bounded chunks): every tap then goes to step.
  inline void init(typename Sd::V start, typename Sd::I index) {
    best = start;
    if constexpr (!kExact) sum = Sd::splat(0);
    if constexpr (kIndices) best_index = index;
  }
  inline void step(typename Sd::V v, typename Sd::I index) {
    if constexpr (kExact) {
      const typename Sd::M m = Sd::takes(v, best);
      best = Sd::select(m, best, v);
      if constexpr (kIndices) best_index = Sd::select(m, best_index, index);
    } else {
      take_greater<Sd, kIndices>(best, best_index, v, index);
      sum = Sd::add(sum, v);
    }
  }
  inline bool trusted() const {
    if constexpr (kExact) return true;
    else return !Sd::any_nan(sum);
  }

  // Writes n outputs (all kLanes when kFull) through a buffer when partial.
  template <bool kFull, typename T>
  inline void store(T* out, typename Sink::E* index, int64_t n) const {
    if constexpr (kFull) {
      Sd::store(out, best);
    } else if constexpr (Sd::kMasked) {
      Sd::store_n(out, best, n);
    } else {
      alignas(64) ComputeT<T> values[Sd::kLanes];
      Sd::store(values, best);
      for (int64_t j = 0; j < n; ++j) out[j] = Scalar<T>::store(values[j]);
    }
    if constexpr (kIndices) store_argmax<Sd, Sink>(index, best_index, kFull ? Sd::kLanes : n);
  }
};

// The first n int32 lanes as the sink's type: flat indices widened to int64,
// taps narrowed to their 1- or 4-byte type.
template <typename Sd, typename Sink>
FASTPOOL_ALWAYS_INLINE void store_argmax(typename Sink::E* p, typename Sd::I lanes, int64_t n) {
  if constexpr (!Sink::kTap) {
    if (n == Sd::kLanes) {
      Sd::store_indices(p, lanes);
    } else if constexpr (Sd::kMasked) {
      Sd::store_indices_n(p, lanes, n);
    } else {
      alignas(64) int64_t wide[Sd::kLanes];
      Sd::store_indices(wide, lanes);
      for (int64_t j = 0; j < n; ++j) p[j] = wide[j];
    }
  } else if constexpr (Sd::kMasked) {
    Sd::store_taps_n(p, lanes, n);
  } else {
    alignas(64) int32_t taps[Sd::kLanes];
    Sd::store_index32(taps, lanes);
    for (int64_t j = 0; j < n; ++j) p[j] = static_cast<typename Sink::E>(taps[j]);
  }
}

// The first n lanes of a vector of T. Without masked loads and stores, the
// whole vector: there load_first takes n < kLanes only where the extra lanes
// may be read (and are then ignored), store_first only n == kLanes.
template <typename Sd, typename T>
FASTPOOL_ALWAYS_INLINE typename Sd::V load_first(const T* p, int64_t n) {
  if constexpr (Sd::kMasked) return Sd::load_n(p, n);
  else return Sd::load(p);
}
template <typename Sd, typename T>
FASTPOOL_ALWAYS_INLINE void store_first(T* p, typename Sd::V v, int64_t n) {
  if constexpr (Sd::kMasked) Sd::store_n(p, v, n);
  else Sd::store(p, v);
}

// `n` lanes of T at stride s (n < kLanes fills the rest with lane 0).
template <typename Sd, typename T>
inline typename Sd::V load_lanes(const T* p, int64_t s, int64_t n) {
  alignas(64) ComputeT<T> lanes[Sd::kLanes];
  for (int64_t j = 0; j < Sd::kLanes; ++j) lanes[j] = Scalar<T>::load(p[(j < n ? j : 0) * s]);
  return Sd::load(lanes);
}

// ---------------------------------------------------------- forward: planar

// kLanes consecutive outputs along W whose taps all lie inside the row: one
// vector per tap. kStride: 1, 2 or 4 (contiguous / de-interleaving loads; 4
// where the ISA has it: 1-d audio pools) or 0 (any stride, element-wise fill;
// hardware gathers were measured slower than that on AMD Zen). kKW: the kernel width when it is a
// compile-time constant (so the tap loop unrolls), else 0. kFull = false: only
// `n` < kLanes outputs remain (a row narrower than a vector); they are stored
// through a small buffer. Their loads touch only those outputs' taps where the
// ISA has masked loads; without them, the loads are whole vectors (strides
// 1, 2, 4), whose lanes past n the caller has checked stay inside the input
// (forward_planar_rows: partial_reads_fit) and which are never stored.
// Returns false (and writes nothing) when the fast variant cannot vouch for
// its result.
// kBounded: taps may lie outside the row (border outputs; stride 1 or 2,
// dilation 1): those lanes read -inf (Simd::load_where with the chunk's
// BoundedRowPlan masks, one per load: `masks`), which never wins,
// and every lane starts as PyTorch's loop does, at -inf with the argmax of its
// first in-bounds tap, so each lane's result is that of its in-bounds taps.
template <typename T, typename Sink, int kStride, int kKW, bool kFull, bool kExact, bool kBounded = false>
FASTPOOL_ALWAYS_INLINE bool forward_planar_chunk(const PoolGeometry& g, const T* plane, const RowScratch& rs,
                                                 int64_t num_rows, int64_t ow, int64_t n, T* out,
                                                 typename Sink::E* index, const uint32_t* masks = nullptr,
                                                 int64_t index_shift = 0) {
  using Sd = Simd<ComputeT<T>>;
  const int64_t s = g.stride[2], dil = g.dilation[2];
  const int64_t kw_count = kKW > 0 ? kKW : g.kernel[2];
  const int64_t base = ow * s - g.pad[2];
  const typename Sd::I lane_offsets = Sd::index_iota(static_cast<int32_t>(s));
  // Flat indices move by the dilation per tap, taps by one (interior: every
  // tap of the row is in bounds, so a row's taps start at kernel column 0).
  const typename Sd::I tap_step = Sd::index_set1(static_cast<int32_t>(Sink::kTap ? 1 : dil));
  const int64_t* rows = rs.rows.data;

  constexpr bool kWhole = kFull || !Sd::kMasked;  // whole-vector loads
  auto load_taps = [&](int64_t off) -> typename Sd::V {
    if constexpr (kWhole && kStride == 1) return Sd::load(plane + off);
    else if constexpr (kWhole && kStride == 2) return Sd::load_stride2(plane + off);
    else if constexpr (kWhole && kStride == 4) return Sd::load_stride4(plane + off);
    else if constexpr (kStride == 1 && Sd::kMasked) return Sd::load_n(plane + off, n);
    else if constexpr (kStride == 2 && Sd::kMasked) return Sd::load_stride2_n(plane + off, n);
    else return load_lanes<Sd>(plane + off, s, n);
  };

  // A bounded load of kernel column kw: the lanes of the row, the others -inf.
  const auto load_bounded = [&](int64_t off, int64_t kw) __attribute__((always_inline)) -> typename Sd::V {
    if constexpr (!kBounded) {
      return load_taps(off);
    } else {
      const auto part = [&](int64_t from, int k) __attribute__((always_inline)) {
        return Sd::load_where(plane + off + from, masks[kw * 2 + k]);
      };
      if constexpr (kStride == 1) return part(0, 0);
      else return Sd::deinterleave2(part(0, 0), part(Sd::kLanes - 1, 1));
    }
  };

  WindowMax<Sd, Sink, kExact> acc;
  if constexpr (kBounded) {
    static_assert(kStride == 1 || kStride == 2, "bounded chunks: stride 1 or 2");
    // PyTorch's start: -inf, the argmax at the first in-bounds tap (flat:
    // first row, column max(0, base + j * s); taps: first row, its column
    // max(0, -(base + j * s))).
    const typename Sd::I zero = Sd::index_set1(0);
    const typename Sd::I start_col = Sd::index_add(Sd::index_set1(static_cast<int32_t>(base)), lane_offsets);
    typename Sd::I start;
    if constexpr (Sink::kTap)
      start = Sd::index_add(Sd::index_set1(static_cast<int32_t>(rs.taps.data[0] * kw_count)),
                            Sd::index_max(zero, Sd::index_sub(zero, start_col)));
    else
      start = Sd::index_add(Sd::index_set1(static_cast<int32_t>(rows[0] + index_shift)),
                            Sd::index_max(zero, start_col));
    acc.init(Sd::splat(-std::numeric_limits<ComputeT<T>>::infinity()), start);
  }
  for (int64_t r = 0; r < num_rows; ++r) {
    const int64_t row_off = rows[r] + base;
    typename Sd::I index =
        Sink::kTap ? Sd::index_set1(static_cast<int32_t>(rs.taps.data[r] * kw_count))
                   : Sd::index_add(Sd::index_set1(static_cast<int32_t>(row_off + index_shift)), lane_offsets);
    if constexpr (kStride == 4 && kWhole && !kBounded && Sd::kHasDeinterleave4) {
      // Windows of 4 side by side (k4 s4, dilation 1): the row's 4 kLanes
      // elements de-interleaved once for all four taps (1 thread, M5's
      // 32x128x498 pool: 462 -> 286 us; with int64 indices 513 -> 400).
      if (kw_count == 4 && dil == 1) {
        typename Sd::V taps[4];
        Sd::deinterleave4(plane + row_off, taps);
        for (int kw = 0; kw < 4; ++kw) {
          if (r == 0 && kw == 0) acc.first(taps[kw], index);
          else acc.step(taps[kw], index);
          if constexpr (Sink::kAny) index = Sd::index_add(index, tap_step);
        }
        continue;
      }
    }
    for (int64_t kw = 0; kw < kw_count; ++kw) {
      if constexpr (kBounded) {
        acc.step(load_bounded(row_off + kw, kw), index);
      } else {
        const typename Sd::V v = load_taps(row_off + kw * dil);
        if (r == 0 && kw == 0) acc.first(v, index);
        else acc.step(v, index);
      }
      if constexpr (Sink::kAny) index = Sd::index_add(index, tap_step);
    }
  }
  if (!acc.trusted()) return false;
  acc.template store<kFull>(out, index, n);
  return true;
}

template <typename T, typename Sink, int kStride, int kKW, bool kFull, bool kBounded = false>
FASTPOOL_ALWAYS_INLINE void forward_planar_chunk_checked(const PoolGeometry& g, const T* plane, const RowScratch& rs,
                                                         int64_t num_rows, int64_t ow, int64_t n, T* out,
                                                         typename Sink::E* index, const uint32_t* masks = nullptr,
                                                         int64_t index_shift = 0) {
  if (!forward_planar_chunk<T, Sink, kStride, kKW, kFull, false, kBounded>(g, plane, rs, num_rows, ow, n, out, index,
                                                                            masks, index_shift))
    forward_planar_chunk<T, Sink, kStride, kKW, kFull, true, kBounded>(g, plane, rs, num_rows, ow, n, out, index,
                                                                        masks, index_shift);
}

// Outputs [lo, hi) of one row, all interior along W. A ragged end is covered
// by one more full chunk that overlaps the previous one (outputs are pure, so
// writing some twice is harmless and cheaper than a partial chunk).
template <typename T, typename Sink, int kStride, int kKW>
inline void forward_planar_interior(const PoolGeometry& g, const T* plane, const RowScratch& rs, int64_t num_rows,
                                    int64_t lo, int64_t hi, T* out, typename Sink::E* index) {
  constexpr int L = Simd<ComputeT<T>>::kLanes;
  auto at = [&](int64_t ow) { return Sink::kAny ? index + ow : nullptr; };
  if (hi - lo < L) {
    forward_planar_chunk_checked<T, Sink, kStride, kKW, false>(g, plane, rs, num_rows, lo, hi - lo, out + lo, at(lo));
    return;
  }
  int64_t ow = lo;
  for (; ow + L <= hi; ow += L)
    forward_planar_chunk_checked<T, Sink, kStride, kKW, true>(g, plane, rs, num_rows, ow, L, out + ow, at(ow));
  if (ow < hi)
    forward_planar_chunk_checked<T, Sink, kStride, kKW, true>(g, plane, rs, num_rows, hi - L, L, out + hi - L,
                                                              at(hi - L));
}

// A whole row of outputs, borders included, with bounded chunks (stride 1 or
// 2, dilation 1 along W): the border outputs of a padded pool went through
// the scalar loop, whose cost per output was some 45 vector outputs' (the
// left border column alone was a third of the ResNet stem's time; two thirds
// of a 3x3 s1 p1 pool over 28x28 planes, GoogLeNet's branch pools). A
// bounded chunk costs about two interior ones: rows of up to 2 vectors are all
// bounded chunks (fewest chunks), longer ones bounded only where [lo, hi), the
// interior outputs, ends.
//
// Which chunks a row has, and which lanes of each tap's loads lie in the row,
// is the same for every row of every plane: BoundedRowPlan works it out once
// per call (on 14-output rows, the mask arithmetic per tap was most of the
// time).
struct BoundedRowPlan {
  Scratch<int64_t> starts;  // chunk starts: the left border's, then the right's
  Scratch<uint32_t> masks;  // [(chunk * KW + kw) * 2 + load]: lanes of each load in the row
  int64_t left = 0, count = 0, lanes = 0;  // chunks before [lo, hi), in all; lanes per chunk
  bool interior = false;                   // [lo, hi) by forward_planar_interior
  // What whole-vector loads (no masked loads: AVX2) read of a window row,
  // relative to its start: [read_lo, read_hi), lanes outside the row included.
  int64_t read_lo = 0, read_hi = 0;

  // L = 0: no bounded rows, an empty plan.
  BoundedRowPlan(const PoolGeometry& g, int64_t L, int64_t lo, int64_t hi)
      : starts(max_chunks(g, L, lo, hi)), masks(max_chunks(g, L, lo, hi) * g.kernel[2] * 2) {
    if (L == 0) return;
    const int64_t OW = g.out_size[2];
    lanes = OW < L ? OW : L;
    if (OW < L) {
      starts.data[count++] = 0;
      left = count;
    } else if (OW <= 2 * L || hi - lo < L) {
      int64_t ow = 0;
      for (; ow + L <= OW; ow += L) starts.data[count++] = ow;
      if (ow < OW) starts.data[count++] = OW - L;  // an overlapping last chunk, as in forward_planar_interior
      left = count;
    } else {
      for (int64_t ow = 0; ow < lo; ow += L) starts.data[count++] = ow < OW - L ? ow : OW - L;
      left = count;
      interior = true;
      for (int64_t end = OW; end > hi; end -= L) starts.data[count++] = end - L > 0 ? end - L : 0;
    }
    // Lane j of kernel column kw's tap reads row column col + j * s (col =
    // ow * s - pad + kw): raw elements [first, end) from col are in the row;
    // a stride-2 tap is two loads, of raw elements [0, L) and [L - 1, 2L - 1).
    const int64_t s = g.stride[2], W = g.in_size[2], KW = g.kernel[2];
    const int64_t span = s == 1 ? L : 2 * L - 1;  // raw elements a tap's loads read
    read_lo = INT64_MAX;
    read_hi = INT64_MIN;
    for (int64_t c = 0; c < count; ++c)
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t col = starts.data[c] * s - g.pad[2] + kw;
        read_lo = col < read_lo ? col : read_lo;
        read_hi = col + span > read_hi ? col + span : read_hi;
        const int64_t first = col < 0 ? -col : 0;
        const int64_t end = W - col < (lanes - 1) * s + 1 ? W - col : (lanes - 1) * s + 1;
        for (int load = 0; load < 2; ++load) {
          const int64_t from = load * (L - 1);
          const int64_t lo_lane = clamp(first - from, L), hi_lane = clamp(end - from, L);
          masks.data[(c * KW + kw) * 2 + load] =
              hi_lane > lo_lane ? ((1u << hi_lane) - 1) & ~((1u << lo_lane) - 1) : 0u;
        }
      }
  }
  // Whether whole-vector loads over window rows starting at input elements
  // first_row and last_row stay inside an input of input_elems (only the
  // first and last rows of a tensor can read outside it).
  bool reads_fit(int64_t first_row, int64_t last_row, int64_t input_elems) const {
    return count == 0 || (first_row + read_lo >= 0 && last_row + read_hi <= input_elems);
  }
  static int64_t clamp(int64_t v, int64_t L) { return v < 0 ? 0 : (v > L ? L : v); }
  static int64_t max_chunks(const PoolGeometry& g, int64_t L, int64_t lo, int64_t hi) {
    return L == 0 ? 0 : (lo + L - 1) / L + (g.out_size[2] - hi + L - 1) / L + 2;
  }
  const uint32_t* chunk_masks(int64_t c, int64_t KW) const { return masks.data + c * KW * 2; }
};

template <typename T, typename Sink, int kStride, int kKW>
inline void forward_planar_bounded_row(const PoolGeometry& g, const T* plane, const RowScratch& rs, int64_t num_rows,
                                       const BoundedRowPlan& plan, int64_t lo, int64_t hi, T* out,
                                       typename Sink::E* index) {
  constexpr int L = Simd<ComputeT<T>>::kLanes;
  const int64_t KW = kKW > 0 ? kKW : g.kernel[2];
  auto at = [&](int64_t ow) { return Sink::kAny ? index + ow : nullptr; };
  const auto bounded = [&](int64_t c) __attribute__((always_inline)) {
    const int64_t ow = plan.starts.data[c];
    if (plan.lanes < L)
      forward_planar_chunk_checked<T, Sink, kStride, kKW, false, true>(g, plane, rs, num_rows, ow, plan.lanes,
                                                                       out + ow, at(ow), plan.chunk_masks(c, KW));
    else
      forward_planar_chunk_checked<T, Sink, kStride, kKW, true, true>(g, plane, rs, num_rows, ow, L, out + ow,
                                                                      at(ow), plan.chunk_masks(c, KW));
  };
  for (int64_t c = 0; c < plan.left; ++c) bounded(c);
  if (plan.interior) forward_planar_interior<T, Sink, kStride, kKW>(g, plane, rs, num_rows, lo, hi, out, index);
  for (int64_t c = plan.left; c < plan.count; ++c) bounded(c);
}

template <typename T, typename Sink, int kStride>
inline void forward_planar_bounded_row_kw(const PoolGeometry& g, const T* plane, const RowScratch& rs,
                                          int64_t num_rows, const BoundedRowPlan& plan, int64_t lo, int64_t hi,
                                          T* out, typename Sink::E* index) {
  with_kernel_width(g, [&](auto kw) {
    forward_planar_bounded_row<T, Sink, kStride, decltype(kw)::value>(g, plane, rs, num_rows, plan, lo, hi, out, index);
  });
}

// Combines per-lane results (lane j: value, flat position) in scan order,
// which is increasing flat position: the last NaN wins, else the largest
// value, the first of equals.
template <typename C>
inline void combine_lanes(const C* values, const int64_t* positions, int64_t lanes, C* best, int64_t* best_at) {
  bool any_nan = false;
  C top = values[0];
  for (int64_t j = 0; j < lanes; ++j) {  // branch-free: the compiler vectorises these loops
    any_nan |= values[j] != values[j];
    top = values[j] > top ? values[j] : top;
  }
  int64_t at = INT64_MAX, last_nan = -1;
  if (!any_nan) {
    // The first position holding the maximum; its own value, since -0.0 and
    // 0.0 compare equal but must come out as the one scanned first.
    int64_t lane = 0;
    for (int64_t j = 0; j < lanes; ++j) {
      const bool first = values[j] == top && positions[j] < at;
      at = first ? positions[j] : at;
      lane = first ? j : lane;
    }
    *best = values[lane];
    *best_at = at;
    return;
  }
  int64_t nan_lane = 0;
  for (int64_t j = 0; j < lanes; ++j)
    if (values[j] != values[j] && positions[j] > last_nan) {
      last_nan = positions[j];
      nan_lane = j;
    }
  *best = values[nan_lane];
  *best_at = last_nan;
}

// Writes one output from a lane-wise running max: its first `lanes` lanes
// combined in scan order; the lanes' positions are mapped to the sink's
// argmax by `to_argmax`.
template <typename T, typename Sink, typename Acc, typename ToArgmax>
FASTPOOL_ALWAYS_INLINE void store_combined(const Acc& acc, int64_t lanes, T* out, typename Sink::E* index,
                                           ToArgmax to_argmax) {
  using Sd = Simd<ComputeT<T>>;
  alignas(64) ComputeT<T> values[Sd::kLanes];
  alignas(64) int64_t positions[Sd::kLanes];
  Sd::store(values, acc.best);
  Sd::store_indices(positions, acc.best_index);
  ComputeT<T> best;
  int64_t best_at;
  combine_lanes(values, positions, lanes, &best, &best_at);
  *out = Scalar<T>::store(best);
  if constexpr (Sink::kAny) *index = static_cast<typename Sink::E>(to_argmax(best_at));
}

// Values only (inference): one output from a lane-wise running max without
// positions, its first `lanes` lanes reduced. The scan order across lanes is
// lost, which matters only for NaN (the sum screens for it) and for a maximum
// of zero (-0.0 and 0.0 compare equal and the first scanned is the answer):
// then it returns false and the caller redoes the window with positions.
template <typename T, typename Sd, typename Acc>
FASTPOOL_ALWAYS_INLINE bool store_max_of_lanes(const Acc& acc, int64_t lanes, T* out) {
  if (!acc.trusted()) return false;
  alignas(64) ComputeT<T> values[Sd::kLanes];
  Sd::store(values, acc.best);
  ComputeT<T> top = values[0];
  for (int64_t j = 1; j < lanes; ++j) top = values[j] > top ? values[j] : top;
  if (top == 0) return false;
  *out = Scalar<T>::store(top);
  return true;
}

// One output from a lane-wise scan of its window: `scan(acc)` feeds the
// window's vectors, with each lane's positions in scan order. Inference tries
// the cheap reduction first (store_max_of_lanes); otherwise, or when that
// cannot vouch for its answer, the lanes are rescanned with positions and
// combined in scan order, `to_argmax` mapping the winner's position to the sink.
template <typename T, typename Sink, typename Scan, typename ToArgmax>
FASTPOOL_ALWAYS_INLINE void reduce_window_lanes(const Scan& scan, int64_t lanes, T* out, typename Sink::E* index,
                                                ToArgmax to_argmax) {
  using Sd = Simd<ComputeT<T>>;
  if constexpr (!Sink::kAny) {
    WindowMax<Sd, NoArgmax, false> fast;
    scan(fast);
    if (store_max_of_lanes<T, Sd>(fast, lanes, out)) return;
  }
  WindowMax<Sd, FlatIndex, true> acc;  // lanes: flat positions, or taps for the tap sinks (both in scan order)
  scan(acc);
  store_combined<T, Sink>(acc, lanes, out, index, to_argmax);
}

// One output of a planar input whose window rows are short contiguous runs
// (dilation 1 along W, 4 to kLanes taps, e.g. adaptive pooling's windows):
// one load per window row (masked, or a whole vector where the ISA has no
// masks), lane j following column j under PyTorch's rule, then the lanes
// combined in scan order, which is increasing flat index: the last NaN wins,
// else the largest value, the first of equals. Returns false (and writes
// nothing) when the window does not fit this shape.
template <typename T, typename Sink>
inline bool forward_one_by_rows(const PoolGeometry& g, const T* plane, const RowScratch& rs, WindowRows wr,
                                WindowTaps tw, T* out, typename Sink::E* index, const T* input_end) {
  using Sd = Simd<ComputeT<T>>;
  if constexpr (!kHasVectorPath<T>) {
    return false;
  } else {
    const int64_t n = tw.count;
    if (wr.count == 0 || n < 4 || n > Sd::kLanes) return false;
    // Without masked loads, whole vectors: their lanes past n are never
    // combined, but must lie inside the input (rows ascend: the last is highest).
    if (!Sd::kMasked && plane + rs.rows.data[wr.count - 1] + tw.first + Sd::kLanes > input_end) return false;
    const typename Sd::I columns = Sd::index_iota(1);
    const auto scan = [&](auto& acc) __attribute__((always_inline)) {
      for (int64_t r = 0; r < wr.count; ++r) {
        const int64_t start = rs.rows.data[r] + tw.first;
        const int64_t first_at = Sink::kTap ? rs.taps.data[r] * g.kernel[2] + tw.first_tap : start;
        const typename Sd::V v = load_first<Sd>(plane + start, n);
        const typename Sd::I at = Sd::index_add(Sd::index_set1(static_cast<int32_t>(first_at)), columns);
        if (r == 0) acc.first(v, at);
        else acc.step(v, at);
      }
    };
    reduce_window_lanes<T, Sink>(scan, n, out, index, [](int64_t at) { return at; });
    return true;
  }
}

// One output of a planar input whose window is one contiguous run of the
// plane: whole rows, consecutive (global pooling, adaptive pooling to one row
// of outputs, 1-d windows wider than a vector). Lane j follows positions j,
// j + kLanes, ... under PyTorch's rule; then the lanes are combined. Returns
// false (and writes nothing) when the window is not such a run or is shorter
// than a vector.
template <typename T, typename Sink>
inline bool forward_one_contiguous(const PoolGeometry& g, const T* plane, const RowScratch& rs, WindowRows wr,
                                   WindowTaps tw, T* out, typename Sink::E* index) {
  using Sd = Simd<ComputeT<T>>;
  if constexpr (!kHasVectorPath<T>) {
    return false;
  } else {
    if (wr.count == 0) return false;
    const int64_t W = g.in_size[2];
    const int64_t* rows = rs.rows.data;
    const bool whole_rows = tw.first == 0 && tw.count == W;
    const int64_t run = wr.count == 1 ? tw.count : wr.count * W;
    if (run < Sd::kLanes || (wr.count > 1 && (!whole_rows || rows[wr.count - 1] - rows[0] != (wr.count - 1) * W)))
      return false;
    const int64_t start = rows[0] + tw.first;
    const typename Sd::I lane = Sd::index_iota(1);
    const auto scan = [&](auto& acc) __attribute__((always_inline)) {
      acc.first(Sd::load(plane + start), Sd::index_add(Sd::index_set1(static_cast<int32_t>(start)), lane));
      int64_t i = Sd::kLanes;
      for (; i + Sd::kLanes <= run; i += Sd::kLanes)
        acc.step(Sd::load(plane + start + i), Sd::index_add(Sd::index_set1(static_cast<int32_t>(start + i)), lane));
      if (i < run) {
        // The tail: the run's last vector, overlapping the previous one. Each
        // lane still sees increasing positions, and a position seen twice has
        // the same value, so the combined result is unchanged.
        const int64_t last = start + run - Sd::kLanes;
        acc.step(Sd::load(plane + last), Sd::index_add(Sd::index_set1(static_cast<int32_t>(last)), lane));
      }
    };
    // A tap sink's tap from the flat position: its row of the run and column.
    const auto to_argmax = [&](int64_t at) {
      if constexpr (!Sink::kTap) {
        return at;
      } else {
        const int64_t offset = at - start, r = wr.count == 1 ? 0 : offset / W;
        return rs.taps.data[r] * g.kernel[2] + tw.first_tap + (offset - r * W);
      }
    };
    reduce_window_lanes<T, Sink>(scan, Sd::kLanes, out, index, to_argmax);
    return true;
  }
}

// Picks the compile-time stride and kernel width for the common cases.
template <typename T, typename Sink, int kStride>
inline void forward_planar_interior_kw(const PoolGeometry& g, const T* plane, const RowScratch& rs, int64_t num_rows,
                                       int64_t lo, int64_t hi, T* out, typename Sink::E* index) {
  with_kernel_width(g, [&](auto kw) {
    forward_planar_interior<T, Sink, kStride, decltype(kw)::value>(g, plane, rs, num_rows, lo, hi, out, index);
  });
}

#if defined(__AVX512F__)
// Two output rows of at most 8 outputs in one vector (VGG's and GoogLeNet's
// 7-wide last pools): lanes 0-7 are row A's outputs, lanes 8-15 row B's, for
// rows whose windows have the same kernel rows, every tap inside the row
// (stride 1 or 2 along W). One vector step per tap serves both rows, where a
// row to itself left half of each vector idle and paid every row's overhead
// once per row. See forward_planar_chunk for kExact and the return value;
// shift_a, shift_b: what each row's flat indices add (a row run moves its
// first row's window rows along: forward_planar_row_run).
template <typename T, typename Sink, int kStride, int kKW, bool kExact>
FASTPOOL_ALWAYS_INLINE bool forward_planar_row_pair(const PoolGeometry& g, const T* plane_a, const T* plane_b,
                                                    const RowScratch& ra, const RowScratch& rb, int64_t num_rows,
                                                    T* out, typename Sink::E* index, int64_t shift_a = 0,
                                                    int64_t shift_b = 0) {
  using Sd = Simd<float>;
  const int64_t OW = g.out_size[2], base = -g.pad[2];
  const int64_t kw_count = kKW > 0 ? kKW : g.kernel[2];
  const __mmask16 high = 0xFF00;
  // Lane offsets within each half: j * s for lanes j and 8 + j.
  const __m512i half_iota = _mm512_mullo_epi32(_mm512_set_epi32(7, 6, 5, 4, 3, 2, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0),
                                               _mm512_set1_epi32(kStride));
  const typename Sd::I tap_step = Sd::index_set1(1);  // taps and flat positions alike: dilation 1
  WindowMax<Sd, Sink, kExact> acc;
  for (int64_t r = 0; r < num_rows; ++r) {
    const T* a = plane_a + ra.rows.data[r] + base;
    const T* b = plane_b + rb.rows.data[r] + base;
    // Flat positions of each half's first tap.
    const __m512i row_starts =
        _mm512_mask_blend_epi32(high, Sd::index_set1(static_cast<int32_t>(ra.rows.data[r] + base + shift_a)),
                                Sd::index_set1(static_cast<int32_t>(rb.rows.data[r] + base + shift_b)));
    typename Sd::I idx = Sink::kTap ? Sd::index_set1(static_cast<int32_t>(ra.taps.data[r] * kw_count))
                                    : _mm512_add_epi32(row_starts, half_iota);
    for (int64_t kw = 0; kw < kw_count; ++kw) {
      typename Sd::V v;
      if constexpr (kStride == 1) {
        const __mmask16 b_lanes = high & Sd::first(8 + OW);  // lane 8 + j reads row B's element j
        v = _mm512_mask_mov_ps(Sd::load_mask(a + kw, Sd::first(OW)), b_lanes, Sd::load_mask(b + kw - 8, b_lanes));
      } else {
        // Row A's raw elements [0, 2 OW - 1) in the first load, row B's from
        // its lane 1 in the second: the even elements of each land in lanes
        // 0-7 and 8-15 (deinterleave2).
        v = Sd::deinterleave2(Sd::load_mask(a + kw, Sd::first(2 * OW - 1)),
                              Sd::load_mask(b + kw - 1, static_cast<__mmask16>(Sd::first(2 * OW) & ~1u)));
      }
      if (r == 0 && kw == 0) acc.first(v, idx);
      else acc.step(v, idx);
      if constexpr (Sink::kAny) idx = Sd::index_add(idx, tap_step);
    }
  }
  if (!acc.trusted()) return false;
  // Row B's outputs moved next to row A's, then 2 OW stored at once.
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __mmask16 past_a = _mm512_cmpge_epi32_mask(lane, _mm512_set1_epi32(static_cast<int32_t>(OW)));
  const __m512i pack = _mm512_mask_add_epi32(lane, past_a, lane, _mm512_set1_epi32(static_cast<int32_t>(8 - OW)));
  acc.best = _mm512_permutexvar_ps(pack, acc.best);
  if constexpr (Sink::kAny) acc.best_index = _mm512_permutexvar_epi32(pack, acc.best_index);
  acc.template store<false>(out, index, 2 * OW);
  return true;
}

template <typename T, typename Sink, int kStride, int kKW>
FASTPOOL_ALWAYS_INLINE void forward_planar_row_pair_checked(const PoolGeometry& g, const T* plane_a, const T* plane_b,
                                                            const RowScratch& ra, const RowScratch& rb,
                                                            int64_t num_rows, T* out, typename Sink::E* index,
                                                            int64_t shift_a = 0, int64_t shift_b = 0) {
  if (!forward_planar_row_pair<T, Sink, kStride, kKW, false>(g, plane_a, plane_b, ra, rb, num_rows, out, index,
                                                             shift_a, shift_b))
    forward_planar_row_pair<T, Sink, kStride, kKW, true>(g, plane_a, plane_b, ra, rb, num_rows, out, index, shift_a,
                                                         shift_b);
}

template <typename T, typename Sink, int kStride>
inline void forward_planar_row_pair_kw(const PoolGeometry& g, const T* plane_a, const T* plane_b,
                                       const RowScratch& ra, const RowScratch& rb, int64_t num_rows, T* out,
                                       typename Sink::E* index) {
  with_kernel_width(g, [&](auto kw) __attribute__((always_inline)) {
    forward_planar_row_pair_checked<T, Sink, kStride, decltype(kw)::value>(g, plane_a, plane_b, ra, rb, num_rows,
                                                                          out, index);
  });
}
#endif

// n consecutive output rows whose windows lie inside the plane along H (and
// D): their window rows move down by row_step elements per row, so the first
// row's are moved along (rs is the caller's scratch) rather than collected
// again. A run may go on into the next planes (plane_rows > 0: every row of a
// plane is in runs, one output depth): it then starts again plane_rows rows
// up, one plane further; oh is the first row's. Each row is whole interior
// chunks, or (kBounded) forward_planar_bounded_row's chunks. The per-row work
// of forward_planar_rows (window rows, dispatch, the calls) was a quarter of a
// VGG k2 s2 pool's time on 56x56 planes, and the per-plane work most of it on
// 14x14 planes.
template <typename T, typename Sink, int kStride, int kKW, bool kBounded>
void forward_planar_row_run(const PoolGeometry& g, const T* plane, RowScratch& rs, int64_t num_rows, int64_t n,
                            int64_t row_step, int64_t oh, int64_t plane_rows, T* out, typename Sink::E* index,
                            int64_t prefetch_bytes, const BoundedRowPlan& plan, int64_t lo, int64_t hi) {
  constexpr int64_t L = Simd<ComputeT<T>>::kLanes;
  const int64_t OW = g.out_size[2], step_bytes = row_step * static_cast<int64_t>(sizeof(T));
  const int64_t plane_elems = in_plane_elems(g);
  // Only the lines the row prefetch_bytes on adds (the rows before it
  // fetched the rest); see forward_planar_rows.
  const int64_t new_from = prefetch_bytes > step_bytes ? prefetch_bytes - step_bytes : 0;
  if constexpr (!kBounded) {
    if (OW <= L) {
      // One chunk a row, inline (a call per row was most of the time of
      // 7-output rows): rs's window rows (collected for the first row, first_oh)
      // read from `at`, `shift` elements from where they were (the flat
      // indices count from the plane). Without masked stores, whole vectors
      // where the run's next rows take the outputs past this row's (they are
      // rewritten there): partial chunks go through a buffer element by
      // element.
      const int64_t first_oh = oh;
      const T* at = plane;
      int64_t shift = 0;
      const auto next_row = [&]() __attribute__((always_inline)) {
        if (++oh == plane_rows) {
          oh = 0;
          const int64_t top = -first_oh * row_step;  // row 0 of the next plane
          at += plane_elems - shift + top;
          shift = top;
        } else {
          at += row_step;
          shift += row_step;
        }
      };
      int64_t i = 0;
#if defined(__AVX512F__)
      // Rows of at most half a vector: two a vector (forward_planar_row_pair).
      // Single thread, VGG's pool5 (7x7 outputs): 132 us paired in runs, 171
      // one row a chunk in runs, 350 paired outside runs (each pair's window
      // rows collected again, as they were before).
      if constexpr (std::is_same_v<Simd<ComputeT<T>>, Simd<float>> && (kStride == 1 || kStride == 2)) {
        if (2 * OW <= L && g.dilation[2] == 1) {
          for (; i + 2 <= n; i += 2) {
            const char* ahead = reinterpret_cast<const char*>(at + rs.rows.data[num_rows - 1] + g.in_size[2]);
            for (int64_t b = new_from; b < prefetch_bytes + step_bytes; b += 64) __builtin_prefetch(ahead + b);
            const T* at_a = at;
            const int64_t shift_a = shift;
            next_row();
            forward_planar_row_pair_checked<T, Sink, kStride, kKW>(g, at_a, at, rs, rs, num_rows, out + i * OW,
                                                                   Sink::kAny ? index + i * OW : nullptr, shift_a,
                                                                   shift);
            next_row();
          }
        }
      }
#endif
      for (; i < n; ++i) {
        const char* ahead = reinterpret_cast<const char*>(at + rs.rows.data[num_rows - 1] + g.in_size[2]);
        for (int64_t b = new_from; b < prefetch_bytes; b += 64) __builtin_prefetch(ahead + b);
        T* row_out = out + i * OW;
        typename Sink::E* row_index = Sink::kAny ? index + i * OW : nullptr;
        if (OW == L || (!Simd<ComputeT<T>>::kMasked && i * OW + L <= n * OW))
          forward_planar_chunk_checked<T, Sink, kStride, kKW, true>(g, at, rs, num_rows, 0, L, row_out, row_index,
                                                                    nullptr, shift);
        else
          forward_planar_chunk_checked<T, Sink, kStride, kKW, false>(g, at, rs, num_rows, 0, OW, row_out, row_index,
                                                                     nullptr, shift);
        next_row();
      }
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const char* ahead = reinterpret_cast<const char*>(plane + rs.rows.data[num_rows - 1] + g.in_size[2]);
    for (int64_t b = new_from; b < prefetch_bytes; b += 64) __builtin_prefetch(ahead + b);
    typename Sink::E* row_index = Sink::kAny ? index + i * OW : nullptr;
    if constexpr (kBounded)
      forward_planar_bounded_row<T, Sink, kStride, kKW>(g, plane, rs, num_rows, plan, lo, hi, out + i * OW, row_index);
    else
      forward_planar_interior<T, Sink, kStride, kKW>(g, plane, rs, num_rows, 0, OW, out + i * OW, row_index);
    const int64_t move = ++oh == plane_rows ? -(plane_rows - 1) * row_step : row_step;
    if (oh == plane_rows) {
      oh = 0;
      plane += plane_elems;
    }
    for (int64_t k = 0; k < num_rows; ++k) rs.rows.data[k] += move;
  }
}

template <typename T, typename Sink, bool kBounded>
void forward_planar_row_run_kw(const PoolGeometry& g, const T* plane, RowScratch& rs, int64_t num_rows, int64_t n,
                               int64_t row_step, int64_t oh, int64_t plane_rows, T* out, typename Sink::E* index,
                               int64_t prefetch_bytes, const BoundedRowPlan& plan, int64_t lo, int64_t hi) {
  with_row_stride<!kBounded>(g, [&](auto stride) {
    with_kernel_width(g, [&](auto kw) {
      forward_planar_row_run<T, Sink, decltype(stride)::value, decltype(kw)::value, kBounded>(
          g, plane, rs, num_rows, n, row_step, oh, plane_rows, out, index, prefetch_bytes, plan, lo, hi);
    });
  });
}


// Global pooling of a planar input: each window is one whole plane (ResNet's
// head: 7x7 planes, adaptive output 1 or a 7x7 kernel). One contiguous run per
// output, plane after plane, without the per-row walk of forward_planar_rows,
// which cost more than the reduction itself on planes this small. The window
// is the plane, so a tap sink's tap is the flat position. With an argmax, a
// plane without NaN (the sum screens for it) is scanned with plain v > best,
// each lane keeping the first position of its maximum; the least position
// among the lanes holding the plane's maximum is PyTorch's answer (the first
// of equals, -0.0 and 0.0 included: the value is copied from there).
// Branch-free: which vector holds the maximum is random. Other planes are
// scanned lane by lane under PyTorch's rule.
template <typename T>
inline bool is_global_plane(const PoolGeometry& g) {
  if constexpr (!kHasVectorPath<T>) {
    return false;
  } else {
    for (int d = 0; d < kMaxSpatialDims; ++d)
      if (g.out_size[d] != 1 || g.kernel[d] != g.in_size[d] || g.pad[d] != 0 ||
          (g.dilation[d] != 1 && g.kernel[d] != 1))
        return false;
    const int64_t plane = in_plane_elems(g);
    return plane >= Simd<ComputeT<T>>::kLanes && plane <= std::numeric_limits<int32_t>::max();
  }
}

template <typename T, typename Sink>
void forward_global_planes(const T* input, int64_t plane, T* output, typename Sink::E* indices, int64_t begin,
                           int64_t end) {
  using Sd = Simd<ComputeT<T>>;
  if constexpr (kHasVectorPath<T>) {  // (is_global_plane)
    const typename Sd::I lane = Sd::index_iota(1);
    const auto at = [&](int64_t i) __attribute__((always_inline)) {
      return Sd::index_add(Sd::index_set1(static_cast<int32_t>(i)), lane);
    };
    for (int64_t p = begin; p < end; ++p) {
      const T* x = input + p * plane;
      const auto scan = [&](auto& acc) __attribute__((always_inline)) {
        acc.first(Sd::load(x), at(0));
        int64_t i = Sd::kLanes;
        for (; i + Sd::kLanes <= plane; i += Sd::kLanes) acc.step(Sd::load(x + i), at(i));
        if (i < plane) acc.step(Sd::load(x + plane - Sd::kLanes), at(plane - Sd::kLanes));  // overlapping tail
      };
      if constexpr (!Sink::kAny) {
        WindowMax<Sd, NoArgmax, false> fast;
        scan(fast);
        if (fast.trusted()) {
          const ComputeT<T> top = Sd::reduce_max(fast.best);
          if (top != 0) {  // (a zero takes the sign of the first one: the exact scan below)
            output[p] = Scalar<T>::store(top);
            continue;
          }
        }
      } else {
        WindowMax<Sd, FlatIndex, false> fast;
        scan(fast);
        if (fast.trusted()) {
          const int64_t first = Sd::min_index_where(fast.best, Sd::reduce_max(fast.best), fast.best_index);
          output[p] = x[first];
          indices[p] = static_cast<typename Sink::E>(first);
          continue;
        }
      }
      reduce_window_lanes<T, Sink>(scan, Sd::kLanes, output + p, Sink::kAny ? indices + p : nullptr,
                                   [](int64_t position) { return position; });
    }
  }
}

// The 4-byte taps are for windows of over 255 taps, rare and long enough that
// per-row work hardly shows: they take the general interior path (stride and
// kernel width read at run time) and the per-output one, not the paths
// specialized by stride and kernel width (interior chunks, bounded rows,
// paired rows, row runs), which would only add to every build's compile time.
template <typename Sink>
constexpr bool kSpecialized = !std::is_same_v<Sink, TapOffset<int32_t>>;

// Output rows [begin, end) of a planar input; a row is (plane, od, oh).
template <typename T, typename Sink>
void forward_planar_row_range(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices,
                              int64_t begin, int64_t end) {
  const int64_t OW = g.out_size[2], W = g.in_size[2];
  const int64_t plane_elems = in_plane_elems(g);
  if (is_global_plane<T>(g)) return forward_global_planes<T, Sink>(input, plane_elems, output, indices, begin, end);
  // The vector path keeps indices in int32 lanes.
  const bool vector_ok = kHasVectorPath<T> && plane_elems <= std::numeric_limits<int32_t>::max();
  int64_t lo = 0, hi = 0;
  interior_range(g, 2, &lo, &hi);
  // Fewer interior outputs than lanes (small planes: 16x16 in, 8x8 out)
  // still cost a whole vector per tap. That pays with masked loads (stride 1
  // or 2), or with whole-vector loads (strides 1, 2, 4; see
  // forward_planar_chunk) for two outputs or more, in rows whose extra lanes'
  // reads stay inside the input (partial_reads_fit: all but the last rows of
  // the last plane). Otherwise each vector would be filled lane by lane, and
  // the scalar loop is faster (a global 7x7 pool was 5x slower than torch).
  bool check_partial_reads = false;
  if constexpr (kHasVectorPath<T>) {
    using Sd = Simd<ComputeT<T>>;
    const int64_t s = g.stride[2];
    if (hi - lo < Sd::kLanes) {
      const bool whole_loads = s == 1 || s == 2 || (s == 4 && Sd::kHasStride4);
      const bool cheap_partial = Sd::kMasked ? s <= 2 : whole_loads && hi - lo >= 2;
      if (!cheap_partial) lo = hi = OW;
      check_partial_reads = !Sd::kMasked && hi > lo;
    }
  }
  if (!vector_ok) lo = hi = OW;
  // Whether a partial chunk's whole-vector loads over the window rows ending
  // at plane[last_row] stay inside the input.
  const T* input_end = input + g.batch * g.channels * plane_elems;
  const auto partial_reads_fit = [&](const T* plane, int64_t last_row) {
    const int64_t s = g.stride[2];
    const int64_t last = last_row + lo * s - g.pad[2] + (g.kernel[2] - 1) * g.dilation[2] +
                         (Simd<ComputeT<T>>::kLanes - 1) * s;
    return last < input_end - plane;
  };
  // Stride 1 or 2 and dilation 1 along W, border outputs present: whole rows
  // of bounded chunks (forward_planar_bounded_row). Without masked loads
  // (AVX2) a bounded chunk reads whole vectors, lanes outside the row
  // included: only rows whose reads stay inside the input (bounded_reads_fit:
  // all but the first and last of a tensor, with padding). On AVX2 they
  // replaced the scalar loop's border outputs, a third of the stem's time
  // (1 thread: bf16 stem 13.3 -> 11.0 ms, 3x3 s1 p1 over 56x56 3.8 -> 2.3).
  bool bounded_rows = false;
  if constexpr (kHasVectorPath<T> && kSpecialized<Sink>) {
    bounded_rows = vector_ok && (g.stride[2] == 1 || g.stride[2] == 2) && g.dilation[2] == 1 && !g.adaptive[2] &&
                   (lo > 0 || hi < OW);
  }
  // Rows of at most half a vector, every tap inside the row: two rows per
  // vector (forward_planar_row_pair), float compute on AVX-512: in runs, and
  // here for rows outside them with the same kernel rows.
  bool pair_rows = false;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<Simd<ComputeT<T>>, Simd<float>> && kSpecialized<Sink>)
    pair_rows = vector_ok && lo == 0 && hi == OW && OW > 0 && 2 * OW <= Simd<float>::kLanes &&
                (g.stride[2] == 1 || g.stride[2] == 2) && g.dilation[2] == 1 && !g.adaptive[2];
#endif
  const WindowTables tables(g);
  RowScratch rows(g), next_rows(g, pair_rows);
  const BoundedRowPlan plan(g, bounded_rows ? Simd<ComputeT<T>>::kLanes : 0, lo, hi);
  const int64_t input_elems = input_end - input;
  const auto bounded_reads_fit = [&](const T* plane, const WindowRows& wr) {
    const int64_t at = plane - input;
    return Simd<ComputeT<T>>::kMasked ||
           plan.reads_fit(at + rows.rows.data[0], at + rows.rows.data[wr.count - 1], input_elems);
  };
  // Whole rows of interior or bounded chunks whose windows lie inside the
  // plane along H: consecutive ones run together (forward_planar_row_run).
  // Not rows of more than 4 vectors: their per-row work is small beside
  // their chunks', and VGG's pool1 (112 outputs a row, fp32) ran 1.6x slower
  // in runs (it stalls on its input; why, not understood).
  int64_t run_lo = 0, run_hi = 0;
  // (Not bounded rows without masked loads: a run has no per-row read check.)
  if (kHasVectorPath<T> && vector_ok &&
      ((bounded_rows && Simd<ComputeT<T>>::kMasked) || (lo == 0 && hi == OW)) && OW > 0 &&
      OW <= 4 * Simd<ComputeT<T>>::kLanes && g.stride[2] != 4)
    interior_range(g, 1, &run_lo, &run_hi);
  // Every row of every plane in runs (one output depth): a run goes on into
  // the next planes (forward_planar_row_run).
  const int64_t OH = g.out_size[1];
  const bool cross_planes = run_lo == 0 && run_hi == OH && OH > 0 && g.out_size[0] == 1;

  RowCursor cursor(g, begin);
  for (int64_t r = begin; r < end; ++r, cursor.next()) {
    const T* plane = input + cursor.outer * plane_elems;
    T* out = output + r * OW;
    typename Sink::E* index = Sink::kAny ? indices + r * OW : nullptr;
    const WindowRows wr = rows.collect(g, tables, cursor.od, cursor.oh);
    if constexpr (kHasVectorPath<T> && kSpecialized<Sink>) {
      // Whether the whole-vector reads of a run of n rows stay inside the
      // input: those of its last row's last window row.
      const auto run_reads_fit = [&](int64_t n) {
        const int64_t last_planes = (cursor.oh + n - 1) / OH, last_oh = (cursor.oh + n - 1) % OH;
        return partial_reads_fit(plane, last_planes * plane_elems + rows.rows.data[wr.count - 1] +
                                            (last_oh - cursor.oh) * g.stride[1] * W);
      };
      int64_t n = min64(run_hi - cursor.oh, end - r);
      if (cross_planes && wr.count > 0) {
        // To the range's end, or (reads past the input) to its last plane.
        const int64_t last_plane_start = (end - 1) / OH * OH;
        if (!check_partial_reads || run_reads_fit(end - r)) n = end - r;
        else if (last_plane_start > r) n = last_plane_start - r;
      }
      if (cursor.oh >= run_lo && cursor.oh < run_hi && wr.count > 0 &&
          (!check_partial_reads || run_reads_fit(n))) {
        const int64_t row_bytes = W * static_cast<int64_t>(sizeof(T)), step_bytes = g.stride[1] * row_bytes;
        const int64_t ahead = kRunPrefetchBytes / step_bytes > kPrefetchRows ? kRunPrefetchBytes / step_bytes
                                                                            : kPrefetchRows;
        const int64_t prefetch_bytes = row_bytes > kMaxPrefetchRowBytes ? 0 : ahead * step_bytes;
        if (bounded_rows) {
          if constexpr (Simd<ComputeT<T>>::kMasked)
            forward_planar_row_run_kw<T, Sink, true>(g, plane, rows, wr.count, n, g.stride[1] * W, cursor.oh,
                                                     cross_planes ? OH : 0, out, index, prefetch_bytes, plan, lo, hi);
        } else {
          forward_planar_row_run_kw<T, Sink, false>(g, plane, rows, wr.count, n, g.stride[1] * W, cursor.oh,
                                                    cross_planes ? OH : 0, out, index, prefetch_bytes, plan, lo, hi);
        }
        for (int64_t i = 1; i < n; ++i) cursor.next();
        r += n - 1;
        continue;
      }
    }
    if (wr.count > 0) {
      // Input is read a few rows at a time, which the hardware prefetchers
      // follow poorly: fetch the rows the next output rows will need (planes
      // are contiguous, so this runs on into the next plane; prefetches past
      // the end of the tensor are harmless).
      const char* next = reinterpret_cast<const char*>(plane + rows.rows.data[wr.count - 1] + W);
      // Not for long rows (1-d pooling): those are streams the hardware
      // prefetchers follow, and the prefetches cost more than they save.
      const int64_t row_bytes = W * static_cast<int64_t>(sizeof(T));
      const int64_t bytes = row_bytes > kMaxPrefetchRowBytes ? 0 : kPrefetchRows * g.stride[1] * row_bytes;
      for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(next + b);
    }
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<Simd<ComputeT<T>>, Simd<float>> && kSpecialized<Sink>) {
      if (pair_rows && wr.count > 0 && r + 1 < end) {
        RowCursor next = cursor;
        next.next();
        const WindowRows next_wr = next_rows.collect(g, tables, next.od, next.oh);
        bool same_taps = next_wr.count == wr.count;
        for (int64_t k = 0; same_taps && k < wr.count; ++k) same_taps = rows.taps.data[k] == next_rows.taps.data[k];
        if (same_taps) {
          const T* next_plane = input + next.outer * plane_elems;
          with_row_stride<false>(g, [&](auto stride) __attribute__((always_inline)) {
            forward_planar_row_pair_kw<T, Sink, decltype(stride)::value>(g, plane, next_plane, rows, next_rows,
                                                                         wr.count, out, index);
          });
          ++r;
          cursor.next();
          continue;
        }
      }
    }
#endif
    if constexpr (kHasVectorPath<T> && kSpecialized<Sink>) {
      if (bounded_rows && wr.count > 0 && bounded_reads_fit(plane, wr)) {
        with_row_stride<false>(g, [&](auto stride) __attribute__((always_inline)) {
          forward_planar_bounded_row_kw<T, Sink, decltype(stride)::value>(g, plane, rows, wr.count, plan, lo, hi,
                                                                          out, index);
        });
        continue;
      }
    }
    const bool vectorize =
        wr.count > 0 && hi > lo && (!check_partial_reads || partial_reads_fit(plane, rows.rows.data[wr.count - 1]));
    auto scalar = [&](int64_t ow_begin, int64_t ow_end) __attribute__((always_inline)) {
      for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
        const WindowTaps tw = tables.width(ow);
        if constexpr (kHasVectorPath<T>) {
          if (vector_ok && g.dilation[2] == 1 &&
              (forward_one_contiguous<T, Sink>(g, plane, rows, wr, tw, out + ow, Sink::kAny ? index + ow : nullptr) ||
               forward_one_by_rows<T, Sink>(g, plane, rows, wr, tw, out + ow, Sink::kAny ? index + ow : nullptr,
                                            input_end)))
            continue;
        }
        forward_one<T, Sink>(g, plane, 1, rows, wr, tw, out + ow, Sink::kAny ? index + ow : nullptr);
      }
    };
    if (!vectorize) {
      scalar(0, OW);
      continue;
    }
    scalar(0, lo);
    if constexpr (kHasVectorPath<T> && !kSpecialized<Sink>) {
      forward_planar_interior<T, Sink, 0, 0>(g, plane, rows, wr.count, lo, hi, out, index);
    } else if constexpr (kHasVectorPath<T>) {
      switch (g.stride[2]) {
        case 1:
          forward_planar_interior_kw<T, Sink, 1>(g, plane, rows, wr.count, lo, hi, out, index);
          break;
        case 2:
          forward_planar_interior_kw<T, Sink, 2>(g, plane, rows, wr.count, lo, hi, out, index);
          break;
        case 4:
          if constexpr (Simd<ComputeT<T>>::kHasStride4) {
            forward_planar_interior_kw<T, Sink, 4>(g, plane, rows, wr.count, lo, hi, out, index);
            break;
          }
          [[fallthrough]];
        default:
          forward_planar_interior_kw<T, Sink, 0>(g, plane, rows, wr.count, lo, hi, out, index);
      }
    }
    scalar(hi, OW);
  }
}
// --------------------------------------------------- forward: separable rows

// Windows whose rows overlap from one output row to the next (KH > SH: 3x3
// at stride 1 or 2, 5x5 at stride 1). PyTorch's rule picks the
// first of equals and the last NaN in scan order, and applying it along each
// window row and then across the rows, in order, picks the same tap: so each
// input row's window maxima along W are found once (a vector of outputs at a
// time), kept in a ring of the last KH rows, and each output row combines
// its window's rows from there, where the direct kernels compare KH x KW taps
// per output vector. Plain max (v > best) over a range of rows, their taps
// summed on the side: a NaN sum (a NaN tap, or +inf meeting -inf) redoes the
// range with the exact row kernels. Single thread, kernel alone, AVX-512,
// against the row kernels in the same process: GoogLeNet's 3x3 s1 p1 over
// 16x192x28x28 2.1 -> 0.76 ms, 32x64x56x56 6.7 -> 4.3 ms, 3x3 s2 p1 over
// 8x64x56x56 0.51 -> 0.29 ms, 5x5 s1 p2 over 4x256x20x20 1.1 -> 0.56 ms, the
// ResNet stem's 32x64x112x112 (from memory) 10.9 -> 9.6 ms; AVX2 2.4x, 1.7x.
// With the argmax (SeparableArgmax: compares and selects where values take
// a max), the training taps over GoogLeNet's 2.9 -> 1.4 ms and SPPF's
// 16x256x20x20 6.9 -> 1.8 ms, flat indices 3.0 -> 2.4 and
// 7.0 -> 2.1 ms; the stem's 8x64x112x112 by the ring about even.
template <typename T>
constexpr bool kHasSeparableRows = kHasVectorPath<T> && std::is_same_v<ComputeT<T>, float>;

// Planes of up to this many bytes go by separable_strips, and larger ones
// when the call's whole input is this small (in cache: going down a strip
// then costs nothing; from memory the ring's row order streams better). One
// thread: 1x64x112x112 k3 s2 p1 (3.2 MB) 230 us by the ring, 184 by strips;
// 16x64x112x112 (51 MB) 4.5 ms by the ring, 6.0 by strips; bf16 112x112
// planes (25 KB) from memory 5.8 against 6.8 ms.
constexpr int64_t kStripPlaneBytes = 16 << 10;
constexpr int64_t kStripInputBytes = 4 << 20;

// Whether forward_separable_rows goes down strips (3x3 at SH 1-2, 5x5 at SH 1)
// rather than round the ring of rows.
template <typename T>
inline bool separable_by_strips(const PoolGeometry& g) {
  const int64_t K = g.kernel[1], SH = g.stride[1];
  const int64_t plane_bytes = in_plane_elems(g) * static_cast<int64_t>(sizeof(T));
  return g.kernel[2] == K && ((K == 3 && (SH == 1 || SH == 2)) || (K == 5 && SH == 1)) &&
         (plane_bytes <= kStripPlaneBytes || g.batch * g.channels * plane_bytes <= kStripInputBytes);
}

// Rows narrower than a vector (masked ISAs) only when they fill most of it:
// GoogLeNet's 28x28 k3 s2 (14 outputs) 2.6 -> 1.4 ms, where the plane blocks
// take 3.1; at 8 outputs (16x16 k3 s2 p1) the blocks are faster, 66 against
// 76 us (AVX-512, single thread, fp32).
template <typename T, typename Sink>
inline bool separable_rows(const PoolGeometry& g) {
  if constexpr (!kHasSeparableRows<T>) {
    return false;
  } else {
    // Argmaxes in int32 lanes. Flat indices only down strips: round the ring
    // their 8-byte stores lost to the row kernels (single thread, 8x64x56x56
    // 3x3 s1 p1 fp32 0.97x, the stem's 8x64x112x112 in bf16 0.87x), where
    // down strips they win 1.2-3.7x (GoogLeNet's, SPPF's).
    if (Sink::kAny && in_plane_elems(g) > std::numeric_limits<int32_t>::max()) return false;
    if (std::is_same_v<Sink, FlatIndex> && !separable_by_strips<T>(g)) return false;
    return g.in_size[0] == 1 && g.out_size[0] == 1 && !g.adaptive[1] && !g.adaptive[2] && g.dilation[1] == 1 &&
           g.dilation[2] == 1 && (g.stride[2] == 1 || g.stride[2] == 2) && g.kernel[1] > g.stride[1] &&
           (g.out_size[2] >= Simd<float>::kLanes ||
            (Simd<float>::kMasked && 4 * g.out_size[2] >= 3 * Simd<float>::kLanes));
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
// The vector chunks of an output row: BoundedRowPlan's border chunks (masks:
// which lanes of each tap's loads lie in the row), and between them the
// interior chunks (no masks), the last overlapping its neighbour as in
// forward_planar_interior. A row narrower than a vector (masked loads and
// stores only) is one chunk of `lanes` outputs.
struct SeparableChunks {
  Scratch<int64_t> starts;
  Scratch<const uint32_t*> masks;
  int64_t count = 0, lanes = 0;
  SeparableChunks(const PoolGeometry& g, const BoundedRowPlan& plan, int64_t L, int64_t lo, int64_t hi)
      : starts(plan.count + (hi - lo) / L + 1), masks(plan.count + (hi - lo) / L + 1) {
    const auto add = [&](int64_t start, const uint32_t* m) {
      starts.data[count] = start;
      masks.data[count++] = m;
    };
    for (int64_t c = 0; c < plan.left; ++c) add(plan.starts.data[c], plan.chunk_masks(c, g.kernel[2]));
    if (plan.interior) {
      int64_t ow = lo;
      for (; ow + L <= hi; ow += L) add(ow, nullptr);
      if (ow < hi) add(hi - L, nullptr);
    }
    for (int64_t c = plan.left; c < plan.count; ++c) add(plan.starts.data[c], plan.chunk_masks(c, g.kernel[2]));
    lanes = g.out_size[2] < L ? g.out_size[2] : L;
    float lowest[Simd<float>::kLanes];
    for (float& f : lowest) f = -std::numeric_limits<float>::max();
    floor = Simd<float>::load_where(lowest, static_cast<uint32_t>((uint64_t{1} << lanes) - 1));
  }
  Simd<float>::V floor;  // SeparableArgmax::check's: -FLT_MAX in the first `lanes` lanes, -inf after
  template <typename T>
  FASTPOOL_ALWAYS_INLINE void store(T* out, Simd<float>::V v) const {
    if (lanes == Simd<float>::kLanes) Simd<float>::store(out, v);
    else store_first<Simd<float>>(out, v, lanes);
  }
};

// The window maxima along W of one input row for the chunk of outputs from
// ow0 (masks: a border chunk's, see BoundedRowPlan; lanes outside the row read
// -inf); every tap added to `sum`. With kArg, `arg` gets key + kw of each
// lane's first maximum (v > best keeps the first of equals). A border lane
// whose in-row taps are all -inf may point at a tap outside the row: its
// maximum is then -inf, which the caller checks (SeparableArgmax::check).
template <typename T, int kStride, int kKW, bool kBounded, bool kArg = false>
FASTPOOL_ALWAYS_INLINE Simd<float>::V separable_row_max(const PoolGeometry& g, const T* row, int64_t ow0,
                                                        const uint32_t* masks, Simd<float>::V& sum,
                                                        Simd<float>::I* arg = nullptr, int32_t key = 0) {
  using Sd = Simd<float>;
  const int64_t KW = kKW > 0 ? kKW : g.kernel[2];
  const T* at = row + ow0 * kStride - g.pad[2];
  typename Sd::V best;
  for (int64_t kw = 0; kw < KW; ++kw) {
    typename Sd::V v;
    if constexpr (kBounded && kStride == 1)
      v = Sd::load_where(at + kw, masks[kw * 2]);
    else if constexpr (kBounded)
      v = Sd::deinterleave2(Sd::load_where(at + kw, masks[kw * 2]),
                            Sd::load_where(at + kw + Sd::kLanes - 1, masks[kw * 2 + 1]));
    else if constexpr (kStride == 1)
      v = Sd::load(at + kw);
    else
      v = Sd::load_stride2(at + kw);
    sum = Sd::add(sum, v);
    if (kw == 0) {
      best = v;
      if constexpr (kArg) *arg = Sd::index_set1(key);
    } else if constexpr (kArg) {
      take_greater<Sd, true>(best, *arg, v, Sd::index_set1(key + static_cast<int32_t>(kw)));
    } else {
      best = Sd::max(v, best);
    }
  }
  return best;
}

// The argmax side of the separable rows (Sink: FlatIndex or TapOffset<U>).
// An input row ih's maxima carry key ih * M + kw, M = W for flat indices
// (the plane position is then key + the column of kernel column 0) and KW
// for taps (the tap is key - top * KW, top the window's first row). Combining
// rows in order with v > best keeps the first row of equals: with the first
// of each row, the first tap in scan order, PyTorch's pick. Only -inf is left
// to check: a window whose taps are all -inf may have its argmax outside the
// plane (a padding row or column read as -inf), where PyTorch names the first
// in-bounds tap. check() flags any stored -inf, and the caller redoes the
// range with the exact kernels, as for a NaN.
template <typename Sink, int kStride>
struct SeparableArgmax {
  using Sd = Simd<float>;
  static constexpr bool kOn = Sink::kAny;
  int32_t M = 0;
  typename Sd::M flagged = Sd::no_lanes();
  typename Sd::I lane_columns{};

  explicit SeparableArgmax(const PoolGeometry& g) {
    if constexpr (kOn) {
      M = static_cast<int32_t>(Sink::kTap ? g.kernel[2] : g.in_size[2]);
      lane_columns = Sd::index_iota(kStride);
    }
  }
  FASTPOOL_ALWAYS_INLINE int32_t key(int64_t ih) const { return static_cast<int32_t>(ih) * M; }
  // The argmax of the chunk from ow0 of the output row whose window starts at input row top.
  FASTPOOL_ALWAYS_INLINE typename Sd::I finish(const PoolGeometry& g, typename Sd::I arg, int64_t ow0,
                                               int64_t top) const {
    if constexpr (Sink::kTap)
      return Sd::index_sub(arg, Sd::index_set1(key(top)));
    else
      return Sd::index_add(Sd::index_add(arg, lane_columns),
                           Sd::index_set1(static_cast<int32_t>(ow0 * kStride - g.pad[2])));
  }
  // floor: -FLT_MAX in the lanes that are outputs, -inf in the others.
  FASTPOOL_ALWAYS_INLINE void check(typename Sd::V best, typename Sd::V floor) {
    flagged = Sd::either(flagged, Sd::greater(floor, best));
  }
  bool any_flagged() const {
    if constexpr (kOn) return Sd::bits_of(flagged) != 0;
    else return false;
  }
};

// Square windows of 3 or 5 rows (kKH = kKW) over a small plane (within L1):
// a chunk of columns at a time, down the rows, the last kKH input rows'
// maxima in registers (rows outside the plane as -inf, which never changes a
// maximum). Row by row, the per-row work was most of the time on GoogLeNet's
// 28x28 planes (two chunks a row): 1.0 -> 0.7 ms. Returns `sum` with every
// tap added.
template <typename T, typename Sink, int kStride, int kKH, int kSH>
Simd<float>::V separable_strips(const PoolGeometry& g, const SeparableChunks& chunks, const T* plane, T* out,
                                typename Sink::E* index, SeparableArgmax<Sink, kStride>& argmax,
                                int64_t oh_begin, int64_t oh_end, Simd<float>::V sum) {
  static_assert(kSH < kKH, "window rows overlap");
  using Sd = Simd<float>;
  constexpr bool kArg = Sink::kAny;
  const int64_t H = g.in_size[1], W = g.in_size[2], OW = g.out_size[2];
  const typename Sd::V none = Sd::splat(-std::numeric_limits<float>::infinity());
  for (int64_t c = 0; c < chunks.count; ++c) {
    const int64_t ow0 = chunks.starts.data[c];
    const uint32_t* masks = chunks.masks.data[c];
    typename Sd::I args[kKH]{};
    const auto row_max = [&](int64_t ih, typename Sd::I* arg) __attribute__((always_inline)) {
      if (ih < 0 || ih >= H) return none;  // (its arg kept only for an all -inf window: redone)
      return masks ? separable_row_max<T, kStride, kKH, true, kArg>(g, plane + ih * W, ow0, masks, sum, arg,
                                                                    argmax.key(ih))
                   : separable_row_max<T, kStride, kKH, false, kArg>(g, plane + ih * W, ow0, masks, sum, arg,
                                                                     argmax.key(ih));
    };
    int64_t top = oh_begin * kSH - g.pad[1];
    typename Sd::V rows[kKH];
    for (int k = 0; k < kKH; ++k) rows[k] = row_max(top + k, &args[k]);
    for (int64_t oh = oh_begin;;) {
      typename Sd::V best = rows[0];
      typename Sd::I arg = args[0];
      for (int k = 1; k < kKH; ++k) take_greater<Sd, kArg>(best, arg, rows[k], args[k]);
      if constexpr (kArg) {
        store_argmax<Sd, Sink>(index + oh * OW + ow0, argmax.finish(g, arg, ow0, top), chunks.lanes);
        argmax.check(best, chunks.floor);
      }
      chunks.store(out + oh * OW + ow0, best);
      if (++oh == oh_end) break;
      top += kSH;
      for (int k = 0; k + kSH < kKH; ++k) {
        rows[k] = rows[k + kSH];
        if constexpr (kArg) args[k] = args[k + kSH];
      }
      for (int k = kKH - kSH; k < kKH; ++k) rows[k] = row_max(top + k, &args[k]);
    }
  }
  return sum;
}

// Output rows [begin, end) of a planar input (a row is (plane, oh)).
template <typename T, typename Sink, int kStride, int kKW>
void forward_separable_rows(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices,
                            int64_t begin, int64_t end) {
  using Sd = Simd<float>;
  constexpr bool kArg = Sink::kAny;
  constexpr int64_t L = Sd::kLanes;
  const int64_t H = g.in_size[1], W = g.in_size[2], OH = g.out_size[1], OW = g.out_size[2];
  const int64_t KH = g.kernel[1], SH = g.stride[1], plane_elems = H * W;
  int64_t lo = 0, hi = 0;
  interior_range(g, 2, &lo, &hi);
  const BoundedRowPlan plan(g, L, lo, hi);
  const SeparableChunks chunks(g, plan, L, lo, hi);
  const int64_t ring_row = OW > L ? OW : L;
  Scratch<float> ring(KH * ring_row);  // input row ih's maxima at ring + (ih % KH) * ring_row
  Scratch<int32_t> ring_args(kArg ? KH * ring_row : 0);  // and their keys (SeparableArgmax)
  Scratch<int64_t> window(KH);  // the ring rows of an output row's window rows, in order
  const int64_t input_elems = g.batch * g.channels * plane_elems;
  // Rows ahead to prefetch (as forward_planar_row_run: at least 4 KiB), not
  // for long rows, which the hardware prefetchers follow.
  const int64_t row_bytes = W * static_cast<int64_t>(sizeof(T));
  const int64_t ahead = kRunPrefetchBytes / row_bytes > kPrefetchRows ? kRunPrefetchBytes / row_bytes : kPrefetchRows;
  const int64_t prefetch_bytes = row_bytes > kMaxPrefetchRowBytes ? 0 : SH * row_bytes;
  const int64_t plane_bytes = plane_elems * static_cast<int64_t>(sizeof(T));
  const bool strips = (kKW == 3 || kKW == 5) && separable_by_strips<T>(g);

  for (int64_t r = begin; r < end;) {
    const int64_t p = r / OH, oh_begin = r % OH, oh_end = min64(OH, oh_begin + (end - r));
    const T* plane = input + p * plane_elems;
    T* out = output + p * OH * OW;
    typename Sink::E* index = kArg ? indices + p * OH * OW : nullptr;
    SeparableArgmax<Sink, kStride> argmax(g);
    // Without masked loads a border chunk reads whole vectors past the row:
    // inside the input except at its first and last rows.
    const bool reads_fit = Sd::kMasked || plan.reads_fit(p * plane_elems, p * plane_elems + (H - 1) * W, input_elems);
    typename Sd::V sum = Sd::splat(0.0f);
    if (!reads_fit) {
      // (the row kernels below take the range)
    } else if (strips) {
      const char* next_plane = reinterpret_cast<const char*>(plane + plane_elems);
      for (int64_t b = 0; b < plane_bytes; b += 64) __builtin_prefetch(next_plane + b);
      if constexpr (kKW == 3)
        sum = SH == 1 ? separable_strips<T, Sink, kStride, 3, 1>(g, chunks, plane, out, index, argmax, oh_begin,
                                                                 oh_end, sum)
                      : separable_strips<T, Sink, kStride, 3, 2>(g, chunks, plane, out, index, argmax, oh_begin,
                                                                 oh_end, sum);
      else if constexpr (kKW == 5)
        sum = separable_strips<T, Sink, kStride, 5, 1>(g, chunks, plane, out, index, argmax, oh_begin, oh_end,
                                                       sum);
    } else {
      int64_t fresh = 0;  // input rows below it are in the ring
      for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
        const int64_t top = oh * SH - g.pad[1];
        const int64_t h0 = top > 0 ? top : 0, h1 = min64(top + KH, H);
        if (fresh < h0) fresh = h0;
        if (prefetch_bytes > 0) {
          const char* next = reinterpret_cast<const char*>(plane + (h1 + ahead) * W);
          for (int64_t b = 0; b < prefetch_bytes; b += 64) __builtin_prefetch(next + b);
        }
        for (int64_t ih = h0; ih < h1; ++ih) window.data[ih - h0] = (ih % KH) * ring_row;
        const int64_t old_rows = fresh - h0, rows = h1 - h0;
        for (int64_t c = 0; c < chunks.count; ++c) {
          const int64_t ow0 = chunks.starts.data[c];
          const uint32_t* masks = chunks.masks.data[c];
          typename Sd::I arg{};
          // Window row k's maxima (and keys), computed and put in the ring, or from it.
          const auto new_row = [&](int64_t k, typename Sd::I* row_arg) __attribute__((always_inline)) {
            const T* row = plane + (h0 + k) * W;
            const int32_t key = argmax.key(h0 + k);
            const typename Sd::V v =
                masks ? separable_row_max<T, kStride, kKW, true, kArg>(g, row, ow0, masks, sum, row_arg, key)
                      : separable_row_max<T, kStride, kKW, false, kArg>(g, row, ow0, masks, sum, row_arg, key);
            Sd::store(ring.data + window.data[k] + ow0, v);
            if constexpr (kArg) Sd::store_index32(ring_args.data + window.data[k] + ow0, *row_arg);
            return v;
          };
          const auto old_row = [&](int64_t k, typename Sd::I* row_arg) __attribute__((always_inline)) {
            if constexpr (kArg) *row_arg = Sd::load_index32(ring_args.data + window.data[k] + ow0);
            return Sd::load(ring.data + window.data[k] + ow0);
          };
          // (best starts from a row, never a placeholder: kept in a register.)
          typename Sd::V best = old_rows > 0 ? old_row(0, &arg) : new_row(0, &arg);
          for (int64_t k = 1; k < rows; ++k) {
            typename Sd::I row_arg{};
            const typename Sd::V v = k < old_rows ? old_row(k, &row_arg) : new_row(k, &row_arg);
            take_greater<Sd, kArg>(best, arg, v, row_arg);
          }
          chunks.store(out + oh * OW + ow0, best);
          if constexpr (kArg) {
            store_argmax<Sd, Sink>(index + oh * OW + ow0, argmax.finish(g, arg, ow0, top), chunks.lanes);
            argmax.check(best, chunks.floor);
          }
        }
        fresh = h1;
      }
    }
    const int64_t next = r + (oh_end - oh_begin);
    if (!reads_fit || Sd::any_nan(sum) || argmax.any_flagged())
      forward_planar_row_range<T, Sink>(g, input, output, indices, r, next);
    r = next;
  }
}

template <typename T, typename Sink>
void forward_separable_rows_kw(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices,
                               int64_t begin, int64_t end) {
  with_row_stride<false>(g, [&](auto stride) {
    with_kernel_width<true>(g, [&](auto kw) {
      forward_separable_rows<T, Sink, decltype(stride)::value, decltype(kw)::value>(g, input, output, indices, begin,
                                                                                   end);
    });
  });
}
#endif

// ------------------------------------- small planes through channels last

template <typename T, typename Sink>
void forward_channels_last_positions(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices,
                                     int64_t begin, int64_t end);

// Small planes that the planar paths serve poorly are pooled in blocks of
// planes moved to channels-last order in a scratch buffer (tiles of 16 x 16,
// 8 x 8 on AVX2, transposed in registers), by the channels-last kernel, whose
// every vector step serves a vector of planes at one position, and moved
// back. Its scan order and update rule are the planar kernel's, and so are
// its results (without the remainder-channel quirk of torch's channels-last
// kernel). Taken for
// adaptive windows that do not divide evenly (one output at a time in the
// planar paths: 16x256x13x13 to 4x4, single thread, 1.86 ms -> 0.16 ms;
// 14x14 to 5x5 3.2 -> 0.17) and for padded rows narrower than a vector
// (bounded chunks half empty: 16x16 k3 s2 p1 100 -> 35 us, 12x12 k3 s1 p1
// 210 -> 108; at 16 outputs a row, 32x32 planes, it lost: 193 -> 218;
// AVX-512 figures).
// Planes of up to kBlockPlaneElems elements, kBlockPlanes a block: the
// block's input fits in L2 (256 KiB in float).
constexpr int64_t kBlockPlanes = 64;
constexpr int64_t kBlockPlaneElems = 1024;

template <typename T>
constexpr bool kHasPlaneBlocks =
#if defined(__AVX512F__) || defined(__AVX2__)
    std::is_same_v<T, float> || std::is_same_v<T, bf16_t> || std::is_same_v<T, fp16_t>;
#else
    false;
#endif

template <typename T>
inline bool planes_through_channels_last(const PoolGeometry& g) {
  if constexpr (!kHasPlaneBlocks<T>) {
    return false;
  } else {
    if (in_plane_elems(g) > kBlockPlaneElems) return false;
    if (g.adaptive[0] || g.adaptive[1] || g.adaptive[2]) return true;
    int64_t lo = 0, hi = 0;
    interior_range(g, 2, &lo, &hi);
    return (lo > 0 || hi < g.out_size[2]) && g.out_size[2] < Simd<ComputeT<T>>::kLanes &&
           (g.stride[2] == 1 || g.stride[2] == 2) && g.dilation[2] == 1;
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
// Planes [first, last): values (and the sink's argmaxes) in blocks.
template <typename T, typename Sink>
void forward_plane_blocks(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices, int64_t first,
                          int64_t last) {
  using E = typename Sink::E;
  const int64_t P = in_plane_elems(g), Q = out_plane_elems(g);
  const int64_t B = min64(kBlockPlanes, last - first);
  Scratch<T> block_in(B * P), block_out(B * Q);
  Scratch<E> block_argmax(Sink::kAny ? B * Q : 0);
  PoolGeometry b = g;
  b.batch = 1;
  b.channels_tail_start_skips_depth = false;
  for (int64_t p0 = first; p0 < last; p0 += B) {
    const int64_t planes = min64(B, last - p0);
    b.channels = planes;
    transpose_matrix(input + p0 * P, planes, P, block_in.data);  // planes x P -> P x planes
    forward_channels_last_positions<T, Sink>(b, block_in.data, block_out.data, block_argmax.data, 0, Q);
    transpose_matrix(block_out.data, Q, planes, output + p0 * Q);
    if constexpr (Sink::kAny) transpose_matrix(block_argmax.data, Q, planes, indices + p0 * Q);
  }
}
#endif

template <typename T, typename Sink>
void forward_planar_rows(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices, int64_t begin,
                         int64_t end) {
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (kSpecialized<Sink> && kHasSeparableRows<T>) {
    if (separable_rows<T, Sink>(g)) return forward_separable_rows_kw<T, Sink>(g, input, output, indices, begin, end);
  }
#endif
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (kHasPlaneBlocks<T>) {
    if (planes_through_channels_last<T>(g)) {
      // Whole planes in blocks; a range's partial planes at either end row by row.
      const int64_t rows = g.out_size[0] * g.out_size[1];
      const int64_t first = (begin + rows - 1) / rows, last = end / rows;
      // (Fewer planes than a vector's lanes: a tile's setup for a few planes,
      // 1 -> 2 us on 5 planes.)
      if (last - first >= Simd<ComputeT<T>>::kLanes) {
        if (begin < first * rows) forward_planar_row_range<T, Sink>(g, input, output, indices, begin, first * rows);
        forward_plane_blocks<T, Sink>(g, input, output, indices, first, last);
        if (last * rows < end) forward_planar_row_range<T, Sink>(g, input, output, indices, last * rows, end);
        return;
      }
    }
  }
#endif
  forward_planar_row_range<T, Sink>(g, input, output, indices, begin, end);
}

// ---------------------------------------------------- forward: channels last

// `n` channels (n == kLanes when kFull) of one output position; see
// forward_planar_chunk for kExact and the return value.
// taps: the window's in-bounds positions; at: what the sink records for
// each (the positions again, or their kernel taps).
template <typename T, typename Sink, bool kFull, bool kExact>
FASTPOOL_ALWAYS_INLINE bool forward_channels_chunk(const T* image, int64_t C, const int64_t* taps, const int64_t* at,
                                                   int64_t num_taps, int64_t n, T* out, typename Sink::E* index) {
  using Sd = Simd<ComputeT<T>>;
  auto load_at = [&](int64_t tap) -> typename Sd::V {
    if constexpr (kFull) return Sd::load(image + tap * C);
    else if constexpr (Sd::kMasked) return Sd::load_n(image + tap * C, n);
    else return load_lanes<Sd>(image + tap * C, 1, n);
  };
  WindowMax<Sd, Sink, kExact> acc;
  acc.first(load_at(taps[0]), Sd::index_set1(static_cast<int32_t>(at[0])));
  for (int64_t t = 1; t < num_taps; ++t) acc.step(load_at(taps[t]), Sd::index_set1(static_cast<int32_t>(at[t])));
  if (!acc.trusted()) return false;
  acc.template store<kFull>(out, index, n);
  return true;
}

template <typename T, typename Sink, bool kFull>
FASTPOOL_ALWAYS_INLINE void forward_channels_chunk_checked(const T* image, int64_t C, const int64_t* taps,
                                                           const int64_t* at, int64_t num_taps, int64_t n, T* out,
                                                           typename Sink::E* index) {
  if (!forward_channels_chunk<T, Sink, kFull, false>(image, C, taps, at, num_taps, n, out, index))
    forward_channels_chunk<T, Sink, kFull, true>(image, C, taps, at, num_taps, n, out, index);
}

// Global pooling of a channels-last input (ResNet's head in NHWC): each
// image is one window, a contiguous run of positions x C channels. It is read
// once in order, the running max of every channel (and its position, the
// flat index and the tap alike) kept in a scratch row under PyTorch's rule,
// position after position. The per-position path instead walks each vector
// of channels down all positions, C elements apart (ResNet-50's 7x7x2048:
// 49 streams 8 KiB apart, 0.75x torch on AVX2).
template <typename T, typename Sink>
void forward_global_channels_last(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices,
                                  int64_t begin, int64_t end) {
  using Sd = Simd<ComputeT<T>>;
  using Compute = ComputeT<T>;
  if constexpr (kHasVectorPath<T>) {
    constexpr int64_t L = Sd::kLanes;
    const int64_t C = g.channels, positions = in_plane_elems(g), whole = C - C % L;
    Scratch<Compute> best(C);
    Scratch<int32_t> best_at(Sink::kAny ? C : 0);
    for (int64_t n = begin; n < end; ++n) {
      const T* x = input + n * positions * C;
      for (int64_t c = 0; c < C; ++c) best.data[c] = Scalar<T>::load(x[c]);
      if constexpr (Sink::kAny) std::memset(best_at.data, 0, sizeof(int32_t) * C);
      for (int64_t p = 1; p < positions; ++p) {
        const T* row = x + p * C;
        const typename Sd::I here = Sd::index_set1(static_cast<int32_t>(p));
        int64_t c = 0;
        for (; c < whole; c += L) {
          const typename Sd::V v = Sd::load(row + c), b = Sd::load(best.data + c);
          const typename Sd::M m = Sd::takes(v, b);
          Sd::store(best.data + c, Sd::select(m, b, v));
          if constexpr (Sink::kAny)
            Sd::store_index32(best_at.data + c, Sd::select(m, Sd::load_index32(best_at.data + c), here));
        }
        for (; c < C; ++c) {
          const Compute v = Scalar<T>::load(row[c]);
          if (takes(v, best.data[c])) {
            best.data[c] = v;
            if constexpr (Sink::kAny) best_at.data[c] = static_cast<int32_t>(p);
          }
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        output[n * C + c] = Scalar<T>::store(best.data[c]);
        if constexpr (Sink::kAny) indices[n * C + c] = static_cast<typename Sink::E>(best_at.data[c]);
      }
    }
  }
}

// Output positions [begin, end) of a channels-last input; a position is
// (n, od, oh, ow) with all C channels, vectorised along C.
template <typename T, typename Sink>
void forward_channels_last_positions(const PoolGeometry& g, const T* input, T* output, typename Sink::E* indices,
                                     int64_t begin, int64_t end) {
  const int64_t C = g.channels;
  const int64_t OW = g.out_size[2];
  const int64_t plane_elems = in_plane_elems(g);
  const bool vector_ok = kHasVectorPath<T> && plane_elems <= std::numeric_limits<int32_t>::max();
  if (vector_ok && is_global_plane<T>(g) && C >= Simd<ComputeT<T>>::kLanes)
    return forward_global_channels_last<T, Sink>(g, input, output, indices, begin, end);
  const WindowTables tables(g);
  RowScratch rows(g);
  Scratch<int64_t> taps(max_taps(g)), tap_ids(Sink::kTap ? max_taps(g) : 0);
  RowCursor cursor(g, begin / OW);
  int64_t ow = begin % OW;
  WindowRows wr = rows.collect(g, tables, cursor.od, cursor.oh);

  for (int64_t q = begin; q < end; ++q, ++ow) {
    if (ow == OW) {
      ow = 0;
      cursor.next();
      wr = rows.collect(g, tables, cursor.od, cursor.oh);
    }
    const WindowTaps tw = tables.width(ow);
    const T* image = input + cursor.outer * plane_elems * C;
    if (wr.count > 0) {
      // As in the planar forward: fetch what the window's newest row needs a
      // few positions ahead.
      const int64_t ahead = rows.rows.data[wr.count - 1] + tw.first + kPrefetchPositions * g.stride[2];
      const char* p = reinterpret_cast<const char*>(image + ahead * C);
      const int64_t bytes = g.stride[2] * C * static_cast<int64_t>(sizeof(T));
      for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b);
    }
    T* out = output + q * C;
    typename Sink::E* index = Sink::kAny ? indices + q * C : nullptr;

    int64_t c = 0;
    if constexpr (kHasVectorPath<T>) {
      constexpr int L = Simd<ComputeT<T>>::kLanes;
      const int64_t num_taps = wr.count * tw.count;
      if (vector_ok && num_taps > 0) {
        int64_t t = 0;
        for (int64_t r = 0; r < wr.count; ++r)
          for (int64_t k = 0; k < tw.count; ++k, ++t) {
            taps.data[t] = rows.rows.data[r] + tw.first + k * g.dilation[2];
            if constexpr (Sink::kTap) tap_ids.data[t] = rows.taps.data[r] * g.kernel[2] + tw.first_tap + k;
          }
        const int64_t* at = Sink::kTap ? tap_ids.data : taps.data;
        for (; c + L <= C; c += L)
          forward_channels_chunk_checked<T, Sink, true>(image + c, C, taps.data, at, num_taps, L, out + c,
                                                        Sink::kAny ? index + c : nullptr);
        if (c < C)
          forward_channels_chunk_checked<T, Sink, false>(image + c, C, taps.data, at, num_taps, C - c, out + c,
                                                         Sink::kAny ? index + c : nullptr);
        c = C;
      }
    }
    // Scalar: integers, portable builds, huge planes, empty windows.
    for (; c < C; ++c) forward_one<T, Sink>(g, image + c, C, rows, wr, tw, out + c, Sink::kAny ? index + c : nullptr);
    if constexpr (std::is_same_v<Sink, FlatIndex>) {
      // PyTorch's channels-last CPU kernel processes channels in 32-byte
      // vectors and the remainder (the last C % lanes) one by one, and the
      // latter start their argmax at the window's first (h, w) tap without
      // the depth term. Where no tap beats the initial -inf (or the lowest
      // integer) that start is the result, so those indices lack id0 * H * W.
      const int64_t depth_offset = tables.dims[0].data[cursor.od].first * g.in_size[1] * g.in_size[2];
      constexpr int64_t kTorchLanes = 32 / static_cast<int64_t>(sizeof(T));
      if (g.channels_tail_start_skips_depth && depth_offset != 0)
        for (int64_t k = C - C % kTorchLanes; k < C; ++k)
          if (Scalar<T>::load(out[k]) == Scalar<T>::lowest()) index[k] -= depth_offset;
    }
  }
}

// ---------------------------------------------------------------- backward
//
// grad_input[argmax] += grad_output over the outputs in raster order, per
// plane (or per image and band of rows), adding in the storage type: the same
// adds in the same order as PyTorch's CPU kernels, which round float16 and
// bfloat16 after every add, so every dtype's result is identical. An argmax
// outside the plane (or a window without taps) adds nothing: PyTorch skips
// -1, and its forward returns out-of-plane indices for windows with no
// in-bounds tap (possible with dilation and padding), where its backward
// would write out of bounds.

// Where an output's argmax lies in its plane: the flat index as it is, or a
// tap decoded against the window's start. Windows start at
// o * stride - pad (fixed) or floor(o * in / out) (adaptive) along each dim,
// so position = start_d * H * W + start_h * W + start_w + offset(tap), with
// offset() the same for every window: a table for up to kTableTaps taps.
template <typename Source>
struct ArgmaxDecoder {
  explicit ArgmaxDecoder(const PoolGeometry&) {}
  FASTPOOL_ALWAYS_INLINE int64_t window_base(int64_t, int64_t) const { return 0; }
  FASTPOOL_ALWAYS_INLINE int64_t position(int64_t /*base*/, int64_t /*ow*/, int64_t index) const { return index; }
};

template <typename U>
struct ArgmaxDecoder<TapOffset<U>> {
  static constexpr int64_t kTableTaps = 4096;
  Scratch<int64_t> start[kMaxSpatialDims];  // window start along each dim, times that dim's element stride
  Scratch<int64_t> offset;                  // tap -> position relative to its window's start
  int64_t taps, KH, KW, step[kMaxSpatialDims];

  explicit ArgmaxDecoder(const PoolGeometry& g)
      : start{Scratch<int64_t>(g.out_size[0]), Scratch<int64_t>(g.out_size[1]), Scratch<int64_t>(g.out_size[2])},
        offset(max_taps(g) <= kTableTaps ? max_taps(g) : 0),
        taps(max_taps(g)),
        KH(g.kernel[1]),
        KW(g.kernel[2]) {
    const int64_t elem_stride[kMaxSpatialDims] = {g.in_size[1] * g.in_size[2], g.in_size[2], 1};
    for (int d = 0; d < kMaxSpatialDims; ++d) {
      step[d] = g.dilation[d] * elem_stride[d];
      for (int64_t o = 0; o < g.out_size[d]; ++o) {
        const int64_t s = g.adaptive[d] ? o * g.in_size[d] / g.out_size[d] : o * g.stride[d] - g.pad[d];
        start[d].data[o] = s * elem_stride[d];
      }
    }
    for (int64_t t = 0; offset.data && t < taps; ++t) offset.data[t] = relative(t);
  }
  int64_t relative(int64_t t) const { return t / (KH * KW) * step[0] + t / KW % KH * step[1] + t % KW * step[2]; }
  FASTPOOL_ALWAYS_INLINE int64_t window_base(int64_t od, int64_t oh) const {
    return start[0].data[od] + start[1].data[oh];
  }
  // Any position outside the plane for kNoTap or a tap beyond the window.
  FASTPOOL_ALWAYS_INLINE int64_t position(int64_t base, int64_t ow, U tap) const {
    const int64_t t = static_cast<int64_t>(tap);
    if (static_cast<uint64_t>(t) >= static_cast<uint64_t>(taps)) return -1;
    return base + start[2].data[ow] + (offset.data ? offset.data[t] : relative(t));
  }
};

// Zeroes grad_input one input row at a time, just before the first add into
// it: outputs go in order, so their argmaxes mostly move forward and the rows
// being added to are still in cache from their zeroing (one pass over
// grad_input instead of a memset pass and a scatter pass). Any position, even
// one far ahead, finds its row zeroed before it is added to.
template <typename T>
struct ZeroAhead {
  T* acc;                   // position i's channels: acc[i * channels + c]
  int64_t channels;
  int64_t row, positions;   // positions per input row, in all
  int64_t zeroed = 0;       // positions [0, zeroed) are zero or accumulated

  inline void reach(int64_t i) {
    if (i < zeroed) return;
    upto(min64(positions, (i / row + 1) * row));
  }
  inline void upto(int64_t stop) {
    std::memset(static_cast<void*>(acc + zeroed * channels), 0, sizeof(T) * (stop - zeroed) * channels);
    zeroed = stop;
  }
};

// One task of the channels-last backward: image n's band of input rows
// (`bands` bands per image). It scans every output of its image and adds only
// the argmaxes that fall in its own rows, so each grad_input element is
// written by one task, in output order, whatever the number of bands.
template <typename T, typename Source>
struct BandTask {
  using E = typename Source::E;
  int64_t C, first, count;  // positions [first, first + count) of the image's plane
  const T* go;
  const E* idx;
  T* gi;  // position i's channels: gi[(i - first) * C + c]
  ZeroAhead<T> zero;

  BandTask(const PoolGeometry& g, int64_t task, int64_t bands, const void* grad_output, const void* argmax,
           void* grad_input)
      : C(g.channels) {
    const int64_t n = task / bands, band = task % bands, W = g.in_size[2];
    const int64_t rows = g.in_size[0] * g.in_size[1];
    const int64_t out_elems = out_plane_elems(g);
    first = band * rows / bands * W;
    count = (band + 1) * rows / bands * W - first;
    go = static_cast<const T*>(grad_output) + n * out_elems * C;
    idx = static_cast<const E*>(argmax) + n * out_elems * C;
    gi = static_cast<T*>(grad_input) + (n * in_plane_elems(g) + first) * C;
    zero = ZeroAhead<T>{gi, C, W, count};
  }

  // grad_input[argmax] += grad_output for output o's channel c (base: the
  // decoder's window base of o's row, relative to first).
  FASTPOOL_ALWAYS_INLINE void add_scalar(const ArgmaxDecoder<Source>& decoder, int64_t base, int64_t ow, int64_t o,
                                         int64_t c) {
    const int64_t i = decoder.position(base, ow, idx[o * C + c]) - (Source::kTap ? 0 : first);
    if (static_cast<uint64_t>(i) < static_cast<uint64_t>(count)) {
      zero.reach(i);
      T& g_in = gi[i * C + c];
      g_in = Scalar<T>::store(Scalar<T>::load(g_in) + Scalar<T>::load(go[o * C + c]));
    }
  }
};

#if defined(__AVX512F__) || defined(__AVX2__)
// The argmaxes of one vector of channels of one output (Simd<float>::kLanes:
// 16 on AVX-512, 8 on AVX2), compared with one tap's key (the tap for the
// training taps, the flat plane position for int64 indices): equal() gives
// the matching lanes as a Simd<float>::M (mask bits on AVX-512, a vector of
// all-ones lanes on AVX2). AVX2 has no masked loads: there `lanes` is all.
template <typename Source>
struct ArgmaxLanes;
#endif

#if defined(__AVX512F__)

template <>
struct ArgmaxLanes<TapOffset<uint8_t>> {
  __m128i keys;
  __mmask16 lanes;
  ArgmaxLanes(const uint8_t* p, __mmask16 lanes) : keys(_mm_maskz_loadu_epi8(lanes, p)), lanes(lanes) {}
  FASTPOOL_ALWAYS_INLINE __mmask16 equal(int64_t key) const {
    return _mm_mask_cmpeq_epi8_mask(lanes, keys, _mm_set1_epi8(static_cast<char>(key)));
  }
};

template <>
struct ArgmaxLanes<TapOffset<int32_t>> {
  __m512i keys;
  __mmask16 lanes;
  ArgmaxLanes(const int32_t* p, __mmask16 lanes) : keys(_mm512_maskz_loadu_epi32(lanes, p)), lanes(lanes) {}
  FASTPOOL_ALWAYS_INLINE __mmask16 equal(int64_t key) const {
    return _mm512_mask_cmpeq_epi32_mask(lanes, keys, _mm512_set1_epi32(static_cast<int32_t>(key)));
  }
};

template <>
struct ArgmaxLanes<FlatIndex> {
  __m512i low, high;  // lanes 0-7, 8-15
  __mmask16 lanes;
  ArgmaxLanes(const int64_t* p, __mmask16 lanes)
      : low(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(lanes), p)),
        high(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(lanes >> 8), p + 8)),
        lanes(lanes) {}
  FASTPOOL_ALWAYS_INLINE __mmask16 equal(int64_t key) const {
    const __m512i k = _mm512_set1_epi64(key);
    return static_cast<__mmask16>((_mm512_cmpeq_epi64_mask(low, k) | (_mm512_cmpeq_epi64_mask(high, k) << 8)) &
                                  lanes);
  }
};
#elif defined(__AVX2__)
template <>
struct ArgmaxLanes<TapOffset<uint8_t>> {
  __m256i keys;
  ArgmaxLanes(const uint8_t* p, uint32_t) : keys(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))) {}
  FASTPOOL_ALWAYS_INLINE __m256 equal(int64_t key) const {
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(keys, _mm256_set1_epi32(static_cast<int32_t>(key))));
  }
};

template <>
struct ArgmaxLanes<TapOffset<int32_t>> {
  __m256i keys;
  ArgmaxLanes(const int32_t* p, uint32_t) : keys(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))) {}
  FASTPOOL_ALWAYS_INLINE __m256 equal(int64_t key) const {
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(keys, _mm256_set1_epi32(static_cast<int32_t>(key))));
  }
};

template <>
struct ArgmaxLanes<FlatIndex> {
  // Lanes 0, 1, 4, 5 and 2, 3, 6, 7: one 32-bit shuffle of the two 64-bit
  // compares then gives the lanes in order.
  __m256i low, high;
  ArgmaxLanes(const int64_t* p, uint32_t) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 4));
    low = _mm256_permute2x128_si256(a, b, 0x20);
    high = _mm256_permute2x128_si256(a, b, 0x31);
  }
  FASTPOOL_ALWAYS_INLINE __m256 equal(int64_t key) const {
    const __m256i k = _mm256_set1_epi64x(key);
    return _mm256_shuffle_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi64(low, k)),
                             _mm256_castsi256_ps(_mm256_cmpeq_epi64(high, k)), _MM_SHUFFLE(2, 0, 2, 0));
  }
};
#endif

#if defined(__AVX512F__) || defined(__AVX2__)

// On AVX2 (8 lanes; compares and blends where AVX-512 has mask registers)
// the lanes kernel beat the scalar one for float16 and bfloat16 (k2 s2,
// 1 thread, Zen 3: 1.4-2.3x), not for float32 (0.7-0.8x: the scalar loop's
// rows are zeroed by memset, the lanes' written through the cache). AVX2's
// float32 takes only the tiled kernel, and only from the training taps
// (lanes_backward_chosen).
template <typename T>
constexpr bool kVectorBackward = (Simd<float>::kMasked && std::is_same_v<T, float>) || std::is_same_v<T, bf16_t> ||
                                 std::is_same_v<T, fp16_t>;
template <typename T>
constexpr bool kLanesBackwardBuilt = kVectorBackward<T> || std::is_same_v<T, float>;

// Where the lanes kernel was measured faster than the scalar one: small
// fixed windows that do not overlap (VGG's and U-Net's k2 s2: 1.3-1.5x in
// bfloat16). Every tap costs a compare per vector of channels (a global 7x7
// window: 49), and overlapping windows re-add into rows a masked store has
// just written (no store-to-load forwarding): both measured slower (stem k3
// s2, global pooling), as were fewer than 4 channels, and on AVX2 windows of
// 9 taps (k3 s3 in bfloat16: 0.74x).
inline bool lanes_backward_pays(const PoolGeometry& g) {
  constexpr int64_t kMinChannels = 4, kMaxTaps = Simd<float>::kMasked ? 9 : 4;
  if (g.channels < kMinChannels || max_taps(g) > kMaxTaps) return false;
  for (int d = 0; d < kMaxSpatialDims; ++d)
    if (g.adaptive[d] || (g.kernel[d] - 1) * g.dilation[d] + 1 > g.stride[d]) return false;
  return true;
}

// Windows that tile the input (stride = kernel, no padding or dilation):
// every input position is a tap of at most one window, so its gradient is
// that window's, or zero. VGG's and U-Net's k2 s2.
inline bool windows_tile(const PoolGeometry& g) {
  for (int d = 0; d < kMaxSpatialDims; ++d)
    if (g.adaptive[d] || g.pad[d] != 0 || g.stride[d] != g.kernel[d] || (g.kernel[d] > 1 && g.dilation[d] != 1))
      return false;
  return true;
}

// Where the gather (backward_channels_last_gather) replaces the scatter of
// the training taps: fixed windows, at least a vector of channels (fewer
// take the gather's scalar remainder, which lost to the scatter: 3 and 5
// channels, k3 s1 p1 and k3 s2, 0.4-0.6x). The training step with it, AVX2,
// Zen 3, 2 threads: the stem's k3 s2 p1 (32x64x112x112) 1.05x (bf16) and
// 1.12-1.23x (fp32), GoogLeNet's k3 s1 p1 (16x192x28x28) 1.19x and 1.37x.
// Streaming its stores (written in order) measured no better.
inline bool gather_backward_pays(const PoolGeometry& g) {
  if (g.channels < Simd<float>::kLanes) return false;
  for (int d = 0; d < kMaxSpatialDims; ++d)
    if (g.adaptive[d]) return false;
  return true;
}

// Whether the channels-last backward takes the lanes kernel (tiled windows
// first). On AVX2, float32 only where the windows tile and the argmaxes are
// the training taps: there the tiled kernel's compare of 8 one-byte taps
// beat the scalar scatter's memset and adds (the k2 s2 training step of
// U-Net's and VGG's pools, Zen 3: 1.02-1.16x on 2 threads, 1.09-1.16x on 1),
// where 8 int64 indices (two 64-bit compares and a shuffle per tap) were
// slower on every shape but the largest.
template <typename T, typename Source>
inline bool lanes_backward_chosen(const PoolGeometry& g) {
  if (!lanes_backward_pays(g)) return false;
  if constexpr (kVectorBackward<T>) return true;
  return std::is_same_v<T, float> && Source::kTap && windows_tile(g);
}

// The lanes backward of one task over tiling windows: each tap's lanes are
// written once, the gradient where the argmax is that tap and zero elsewhere,
// instead of zeroing grad_input and adding into it (a memset pass and a
// load-add-store per tap). Zero plus the gradient is what PyTorch stores
// (-0.0 becomes 0.0). Returns false, having written only its own band, when
// an argmax is no tap of its window (int64 indices may point anywhere): then
// the adds in output order are the answer, and the caller redoes the task.
// Every task checks every output of its image, since such an argmax may
// point into any band.
template <typename T, typename Source>
bool backward_tiled_task(const PoolGeometry& g, const BandTask<T, Source>& t, const WindowTables& tables,
                         RowScratch& rs) {
  using S = Simd<float>;
  constexpr int64_t kLanes = S::kLanes;
  const int64_t C = g.channels, W = g.in_size[2], H = g.in_size[1], KW = g.kernel[2];
  // Positions past the last window along some dim get zero.
  const int64_t covered_d = min64(g.in_size[0], g.out_size[0] * g.kernel[0]);
  const int64_t covered_h = min64(H, g.out_size[1] * g.kernel[1]), covered_w = min64(W, g.out_size[2] * KW);
  for (int64_t row = t.first / W; row < (t.first + t.count) / W; ++row) {
    const int64_t from = row / H < covered_d && row % H < covered_h ? covered_w : 0;
    if (from < W)
      std::memset(static_cast<void*>(t.gi + (row * W - t.first + from) * C), 0, sizeof(T) * (W - from) * C);
  }
  const S::V zero = S::splat(0.0f);
  // Whole vectors only (see backward_planar), each a whole 64-byte line: a
  // task's taps keep several lines open at once, filled a vector at a time
  // a tap apart, and streaming them in parts lost to caching them (AVX2's
  // 16-byte bfloat16 stores, Zen 3: int64-index backward 2.4-2.9x slower on
  // 8x128x112x112 and 1x256x136x136, 1 and 2 threads).
  const bool stream = C % kLanes == 0 && kLanes * sizeof(T) == 64 && stream_backward<T, Source>(g);
  int64_t o = 0;
  for (int64_t od = 0; od < g.out_size[0]; ++od)
    for (int64_t oh = 0; oh < g.out_size[1]; ++oh) {
      const WindowRows wr = rs.collect(g, tables, od, oh);
      // Each tap of output o's window: its position in the plane and its key.
      const auto for_each_tap = [&](const WindowTaps& tw, auto&& f) __attribute__((always_inline)) {
        for (int64_t r = 0; r < wr.count; ++r)
          for (int64_t j = 0; j < tw.count; ++j) {
            const int64_t position = rs.rows.data[r] + tw.first + j;
            f(position, Source::kTap ? rs.taps.data[r] * KW + tw.first_tap + j : position);
          }
      };
      for (int64_t ow = 0; ow < g.out_size[2]; ++ow, ++o) {
        const WindowTaps& tw = tables.width(ow);
        for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
          const int64_t lanes = min64(kLanes, C - c0);
          if (!S::kMasked && lanes < kLanes) {
            // Without masked loads and stores (AVX2): the last channels one
            // at a time, as the lanes would.
            for (int64_t c = c0; c < C; ++c) {
              const int64_t key = static_cast<int64_t>(t.idx[o * C + c]);
              const ComputeT<T> grad = Scalar<T>::load(t.go[o * C + c]) + ComputeT<T>(0);
              bool matched = false;
              for_each_tap(tw, [&](int64_t position, int64_t tap_key) __attribute__((always_inline)) {
                const bool m = key == tap_key;
                matched |= m;
                const int64_t i = position - t.first;
                if (static_cast<uint64_t>(i) < static_cast<uint64_t>(t.count))
                  t.gi[i * C + c] = Scalar<T>::store(m ? grad : ComputeT<T>(0));
              });
              if (!matched) {
                _mm_sfence();
                return false;
              }
            }
            break;
          }
          const uint32_t all = static_cast<uint32_t>((uint64_t{1} << lanes) - 1);
          const ArgmaxLanes<Source> keys(t.idx + o * C + c0, all);
          const S::V grad = S::add(load_first<S>(t.go + o * C + c0, lanes), zero);
          S::M matched = S::no_lanes();
          for_each_tap(tw, [&](int64_t position, int64_t tap_key) __attribute__((always_inline)) {
            const S::M m = keys.equal(tap_key);
            matched = S::either(matched, m);
            const int64_t i = position - t.first;
            if (static_cast<uint64_t>(i) < static_cast<uint64_t>(t.count)) {
              T* dst = t.gi + i * C + c0;
              const S::V v = S::zero_unless(m, grad);
              if (lanes < kLanes) store_first<S>(dst, v, lanes);
              else if (stream && reinterpret_cast<uintptr_t>(dst) % (kLanes * sizeof(T)) == 0) S::store_stream(dst, v);
              else S::store(dst, v);
            }
          });
          if (S::bits_of(matched) != all) {
            _mm_sfence();
            return false;
          }
        }
      }
    }
  _mm_sfence();
  return true;
}

// The channels-last backward 16 channels at a time: for each in-bounds tap of
// a window, in scan order, the lanes whose argmax is that tap add their
// gradient at the tap's input position, rounded to the storage type after
// the add (Simd::add_masked). Each element gets the same adds in the same
// (output) order as from the scalar loop, so the same bits. Lanes whose
// argmax is no in-bounds tap of the window (int64 indices may point anywhere
// in the plane; a window may have no tap) take the scalar step, at the same
// output.
template <typename T, typename Source>
void backward_channels_last_lanes(const PoolGeometry& g, const void* grad_output, const void* argmax,
                                  void* grad_input, int64_t bands, int64_t begin, int64_t end) {
  using S = Simd<float>;
  constexpr int64_t kLanes = S::kLanes;
  const int64_t C = g.channels, KW = g.kernel[2], dil_w = g.dilation[2];
  const ArgmaxDecoder<Source> decoder(g);
  const WindowTables tables(g);
  RowScratch rs(g);
  const bool tiled = windows_tile(g);
  for (int64_t task = begin; task < end; ++task) {
    BandTask<T, Source> t(g, task, bands, grad_output, argmax, grad_input);
    if (tiled && backward_tiled_task<T, Source>(g, t, tables, rs)) continue;
    int64_t o = 0;
    for (int64_t od = 0; od < g.out_size[0]; ++od)
      for (int64_t oh = 0; oh < g.out_size[1]; ++oh) {
        const WindowRows wr = rs.collect(g, tables, od, oh);
        const int64_t base = decoder.window_base(od, oh) - t.first;
        for (int64_t ow = 0; ow < g.out_size[2]; ++ow, ++o) {
          const WindowTaps& tw = tables.width(ow);
          for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
            const int64_t lanes = min64(kLanes, C - c0);
            if (!S::kMasked && lanes < kLanes) {  // AVX2: the last channels by the scalar step
              for (int64_t c = c0; c < C; ++c) t.add_scalar(decoder, base, ow, o, c);
              break;
            }
            uint32_t left = static_cast<uint32_t>((uint64_t{1} << lanes) - 1);
            const ArgmaxLanes<Source> keys(t.idx + o * C + c0, left);
            const S::V grad = load_first<S>(t.go + o * C + c0, lanes);
            for (int64_t r = 0; r < wr.count && left; ++r) {
              for (int64_t j = 0; j < tw.count; ++j) {
                const int64_t position = rs.rows.data[r] + tw.first + j * dil_w;  // in the plane
                // (a lane matches one tap at most: the window's keys differ)
                const S::M m = keys.equal(Source::kTap ? rs.taps.data[r] * KW + tw.first_tap + j : position);
                const uint32_t bits = S::bits_of(m);
                if (!bits) continue;
                left &= ~bits;
                const int64_t i = position - t.first;
                if (static_cast<uint64_t>(i) < static_cast<uint64_t>(t.count)) {
                  t.zero.reach(i);
                  S::add_masked(t.gi + i * C + c0, m, grad);
                }
                if (!left) break;
              }
            }
            for (; left; left &= left - 1)  // the scalar step, lane by lane
              t.add_scalar(decoder, base, ow, o, c0 + __builtin_ctz(left));
          }
        }
      }
    t.zero.upto(t.count);
  }
}

// The outputs whose windows cover each input coordinate along one dim, in
// increasing order, each with the tap (kernel index along the dim) that the
// coordinate is in its window: coordinate x's are entries [begin[x], begin[x + 1]).
struct CoverTable {
  Scratch<int64_t> begin, output, tap;
  CoverTable(const PoolGeometry& g, int d)
      : begin(g.in_size[d] + 1), output(g.out_size[d] * g.kernel[d]), tap(g.out_size[d] * g.kernel[d]) {
    const int64_t in = g.in_size[d];
    const auto each = [&](auto&& f) {
      for (int64_t o = 0; o < g.out_size[d]; ++o)
        for (int64_t j = 0; j < g.kernel[d]; ++j) {
          const int64_t x = o * g.stride[d] - g.pad[d] + j * g.dilation[d];
          if (x >= 0 && x < in) f(x, o, j);
        }
    };
    for (int64_t x = 0; x <= in; ++x) begin.data[x] = 0;
    each([&](int64_t x, int64_t, int64_t) { ++begin.data[x + 1]; });
    for (int64_t x = 0; x < in; ++x) begin.data[x + 1] += begin.data[x];
    Scratch<int64_t> next(in);
    for (int64_t x = 0; x < in; ++x) next.data[x] = begin.data[x];
    each([&](int64_t x, int64_t o, int64_t j) {
      output.data[next.data[x]] = o;
      tap.data[next.data[x]++] = j;
    });
  }
};

// The channels-last backward from the training taps as a gather, for fixed
// windows the lanes kernel does not take (those that overlap, as the stem's
// k3 s2 and k3 s1 p1; on AVX2 also float32's and 9-tap ones): each input position's
// channels sum the gradients of the outputs whose windows cover it and
// whose tap it is, in output raster order, rounded to the storage type
// after every add: the adds of the scatter in raster order (so torch's
// bits), but each grad_input element written once, with no zeroing pass and
// no read-modify-write. A lane that does not match keeps its sum as it is.
template <typename T, typename Source>
void backward_channels_last_gather(const PoolGeometry& g, const void* grad_output, const void* argmax,
                                   void* grad_input, int64_t bands, int64_t begin, int64_t end) {
  using S = Simd<float>;
  constexpr int64_t kLanes = S::kLanes;
  const int64_t C = g.channels, H = g.in_size[1], W = g.in_size[2];
  const int64_t OH = g.out_size[1], OW = g.out_size[2], KH = g.kernel[1], KW = g.kernel[2];
  const CoverTable cover[kMaxSpatialDims] = {CoverTable(g, 0), CoverTable(g, 1), CoverTable(g, 2)};
  // One input row's covering output rows (their first output, their tap's
  // row part), then one position's covering outputs: where their channels
  // start, and the tap that is this position in each (at most one per tap).
  Scratch<int64_t> row_outputs(g.kernel[0] * g.kernel[1]), row_keys(g.kernel[0] * g.kernel[1]);
  Scratch<int64_t> offsets(max_taps(g)), keys(max_taps(g));
  for (int64_t task = begin; task < end; ++task) {
    const BandTask<T, Source> t(g, task, bands, grad_output, argmax, grad_input);
    for (int64_t row = t.first / W; row < (t.first + t.count) / W; ++row) {
      const int64_t x0 = row / H, x1 = row % H;
      int64_t rows = 0;
      for (int64_t e0 = cover[0].begin.data[x0]; e0 < cover[0].begin.data[x0 + 1]; ++e0)
        for (int64_t e1 = cover[1].begin.data[x1]; e1 < cover[1].begin.data[x1 + 1]; ++e1, ++rows) {
          row_outputs.data[rows] = (cover[0].output.data[e0] * OH + cover[1].output.data[e1]) * OW;
          row_keys.data[rows] = (cover[0].tap.data[e0] * KH + cover[1].tap.data[e1]) * KW;
        }
      for (int64_t x2 = 0; x2 < W; ++x2) {
        int64_t n = 0;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t e2 = cover[2].begin.data[x2]; e2 < cover[2].begin.data[x2 + 1]; ++e2, ++n) {
            offsets.data[n] = (row_outputs.data[r] + cover[2].output.data[e2]) * C;
            keys.data[n] = row_keys.data[r] + cover[2].tap.data[e2];
          }
        T* dst = t.gi + (row * W + x2 - t.first) * C;
        for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
          const int64_t lanes = min64(kLanes, C - c0);
          if (!S::kMasked && lanes < kLanes) {  // AVX2: the last channels one at a time
            for (int64_t c = c0; c < C; ++c) {
              ComputeT<T> sum = 0;
              for (int64_t e = 0; e < n; ++e)
                if (static_cast<int64_t>(t.idx[offsets.data[e] + c]) == keys.data[e])
                  sum = Scalar<T>::load(Scalar<T>::store(sum + Scalar<T>::load(t.go[offsets.data[e] + c])));
              dst[c] = Scalar<T>::store(sum);
            }
            break;
          }
          const uint32_t all = static_cast<uint32_t>((uint64_t{1} << lanes) - 1);
          // The first add needs no rounding (0 + g is g, and +0.0 for -0.0 as torch's).
          const S::V zero = S::splat(0.0f);
          S::V sum = zero;
          for (int64_t e = 0; e < n; ++e) {
            const S::M m = ArgmaxLanes<Source>(t.idx + offsets.data[e] + c0, all).equal(keys.data[e]);
            const S::V added = S::add(sum, load_first<S>(t.go + offsets.data[e] + c0, lanes));
            sum = S::select(m, sum, e == 0 ? added : S::template rounded<T>(added));
          }
          store_first<S>(dst + c0, sum, lanes);
        }
      }
    }
  }
}
#endif

#if defined(__AVX512F__)
// The planar backward of one plane over windows that tile it with kernel 2
// along W (VGG's and U-Net's k2 s2), 16 input columns (8 windows) at a time:
// each column gets its window's gradient where the argmax is that column,
// else zero, written once as in backward_tiled_task instead of a memset and
// a scatter. False (the plane partly written) when an argmax is no tap of its
// window: the caller redoes the plane by adds.
template <typename T, typename Source>
bool backward_planar_tiled_w2(const PoolGeometry& g, const T* go, const typename Source::E* idx, T* gi,
                              const WindowTables& tables, RowScratch& rs, bool stream) {
  using S = Simd<float>;
  const int64_t W = g.in_size[2], H = g.in_size[1], OW = g.out_size[2];
  const int64_t covered_d = min64(g.in_size[0], g.out_size[0] * g.kernel[0]);
  const int64_t covered_h = min64(H, g.out_size[1] * g.kernel[1]), covered_w = min64(W, 2 * OW);
  if (covered_d < g.in_size[0] || covered_h < H || covered_w < W)  // zero what no window covers
    for (int64_t d = 0, row = 0; d < g.in_size[0]; ++d)
      for (int64_t h = 0; h < H; ++h, ++row) {
        const int64_t from = d < covered_d && h < covered_h ? covered_w : 0;
        if (from < W) std::memset(static_cast<void*>(gi + row * W + from), 0, sizeof(T) * (W - from));
      }
  const S::V zero = S::splat(0.0f);
  const __m512i pairs = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i column_tap = _mm512_and_si512(lane, _mm512_set1_epi32(1));
  int64_t o = 0;
  for (int64_t od = 0; od < g.out_size[0]; ++od)
    for (int64_t oh = 0; oh < g.out_size[1]; ++oh, o += OW) {
      const WindowRows wr = rs.collect(g, tables, od, oh);
      for (int64_t ow0 = 0; ow0 < OW; ow0 += 8) {
        const int64_t n = min64(8, OW - ow0);  // windows in this chunk
        const int64_t w0 = 2 * ow0, columns = min64(2 * n, W - w0);
        const __mmask16 in_row = S::first(columns);
        // Each window's gradient and argmax, twice: lanes 2j and 2j + 1 are window j's columns.
        const S::V grad = S::add(_mm512_permutexvar_ps(pairs, S::load_n(go + o + ow0, n)), zero);
        __m512i keys;
        if constexpr (Source::kTap) {
          __m512i k;
          if constexpr (sizeof(typename Source::E) == 1)
            k = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(S::first(n), idx + o + ow0));
          else
            k = _mm512_maskz_loadu_epi32(S::first(n), idx + o + ow0);
          keys = _mm512_permutexvar_epi32(pairs, k);
        } else {
          // int64 positions: any not in [0, 2^31) matches no column; clamp to -1.
          const __m512i k = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(S::first(n)), idx + o + ow0);
          const __mmask8 fits = _mm512_cmplt_epu64_mask(k, _mm512_set1_epi64(int64_t{1} << 31));
          keys = _mm512_permutexvar_epi32(pairs, _mm512_castsi256_si512(_mm512_mask_cvtepi64_epi32(
                                                      _mm256_set1_epi32(-1), fits, k)));
        }
        __mmask16 matched = 0;
        for (int64_t r = 0; r < wr.count; ++r) {
          const int64_t row = rs.rows.data[r];
          const __m512i expect =
              Source::kTap ? _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(rs.taps.data[r] * 2)), column_tap)
                           : _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(row + w0)), lane);
          const __mmask16 m = _mm512_cmpeq_epi32_mask(keys, expect) & in_row;
          matched |= m;
          T* dst = gi + row + w0;
          const S::V v = _mm512_maskz_mov_ps(m, grad);
          if (columns < 16) S::store_n(dst, v, columns);
          else if (stream && reinterpret_cast<uintptr_t>(dst) % (16 * sizeof(T)) == 0) S::store_stream(dst, v);
          else S::store(dst, v);
        }
        // Every window's argmax one of its columns: bit 2j or 2j + 1.
        const uint32_t found = (matched | (matched >> 1)) & 0x5555u;
        if (found != (0x5555u & ((1u << (2 * n)) - 1))) return false;
      }
    }
  return true;
}
#endif

// One plane's scatter: grad_input[argmax] += grad_output in output order.
template <typename T, typename Source>
inline void backward_plane_scatter(const PoolGeometry& g, const ArgmaxDecoder<Source>& decoder, const T* go,
                                   const typename Source::E* idx, T* gi) {
  const int64_t in_elems = in_plane_elems(g);
  // A plane usually fits in L1/L2: zero it at once (cheaper than ZeroAhead's checks).
  std::memset(static_cast<void*>(gi), 0, sizeof(T) * in_elems);
  int64_t o = 0;
  for (int64_t od = 0; od < g.out_size[0]; ++od)
    for (int64_t oh = 0; oh < g.out_size[1]; ++oh) {
      const int64_t base = decoder.window_base(od, oh);
      for (int64_t ow = 0; ow < g.out_size[2]; ++ow, ++o) {
        const int64_t i = decoder.position(base, ow, idx[o]);
        if (static_cast<uint64_t>(i) < static_cast<uint64_t>(in_elems))
          gi[i] = Scalar<T>::store(Scalar<T>::load(gi[i]) + Scalar<T>::load(go[o]));
      }
    }
}

#if defined(__AVX512F__)
// The 1-byte training taps decoded to plane positions (ArgmaxDecoder::position
// 16 outputs at once, its offset table in two registers: windows of up to 32
// taps), a block of output rows ahead of the adds, which then only add, as
// from int64 indices. In the extension, 2 threads, GoogLeNet's 3x3 s1 p1
// backward over 16x192x28x28 (fp32) 1.22-1.27 -> 1.0-1.07 ms; one thread in
// a harness 1.0-1.6x, depending on how the decoder's loop was inlined there
// (fp32 and bf16, 3x3 s1/s2, 5x5 s1). Decoded 16 outputs just ahead, it was
// slower than the decoder (0.74x): the adds' loads of the positions waited
// on the vector store that wrote them.
struct TapPositions {
  static constexpr int64_t kMaxTaps = 32, kBlockOutputs = 4096;
  bool on;
  int64_t block_rows;        // output rows decoded at a time
  Scratch<int32_t> columns;  // each output column's window start along W (ArgmaxDecoder::start[2]), 16 spare
  Scratch<int32_t> positions;
  __m512i low, high;  // offset(tap) of taps 0-15, 16-31
  int32_t taps;

  template <typename U>
  TapPositions(const PoolGeometry& g, const ArgmaxDecoder<TapOffset<U>>& decoder)
      : on(sizeof(U) == 1 && decoder.taps <= kMaxTaps && decoder.offset.data != nullptr &&
           in_plane_elems(g) < (int64_t{1} << 30)),
        block_rows(g.out_size[2] >= kBlockOutputs ? 1 : kBlockOutputs / (g.out_size[2] > 0 ? g.out_size[2] : 1)),
        columns(on ? g.out_size[2] + 16 : 0),
        positions(on ? block_rows * g.out_size[2] + 16 : 0),
        taps(static_cast<int32_t>(decoder.taps)) {
    alignas(64) int32_t table[kMaxTaps] = {};
    for (int64_t ow = 0; on && ow < g.out_size[2] + 16; ++ow)
      columns.data[ow] = ow < g.out_size[2] ? static_cast<int32_t>(decoder.start[2].data[ow]) : 0;
    for (int64_t t = 0; on && t < decoder.taps; ++t) table[t] = static_cast<int32_t>(decoder.offset.data[t]);
    low = _mm512_load_si512(table);
    high = _mm512_load_si512(table + 16);
  }
  // Outputs ow0 .. ow0 + n - 1 (n <= 16) of a row whose windows start at
  // base: their positions, -1 where the tap is none of the window's.
  FASTPOOL_ALWAYS_INLINE void decode(int64_t base, int64_t ow0, const uint8_t* tap, int64_t n, int32_t* out) const {
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
    const __m512i t = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, tap));
    const __mmask16 known = _mm512_mask_cmplt_epu32_mask(m, t, _mm512_set1_epi32(taps));
    const __m512i at = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(base)),
                                        _mm512_loadu_si512(columns.data + ow0));
    const __m512i position = _mm512_add_epi32(at, _mm512_permutex2var_epi32(low, t, high));
    _mm512_mask_storeu_epi32(out, m, _mm512_mask_blend_epi32(known, _mm512_set1_epi32(-1), position));
  }
};

// backward_plane_scatter from 1-byte taps through TapPositions.
template <typename T>
void backward_plane_scatter_decoded(const PoolGeometry& g, const ArgmaxDecoder<TapOffset<uint8_t>>& decoder,
                                    TapPositions& tp, const T* go, const uint8_t* idx, T* gi) {
  const int64_t in_elems = in_plane_elems(g), OH = g.out_size[1], OW = g.out_size[2];
  const int64_t rows = g.out_size[0] * OH;
  std::memset(static_cast<void*>(gi), 0, sizeof(T) * in_elems);
  int32_t* positions = tp.positions.data;
  for (int64_t r0 = 0; r0 < rows; r0 += tp.block_rows) {
    const int64_t r1 = min64(rows, r0 + tp.block_rows);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t base = decoder.window_base(r / OH, r % OH);
      for (int64_t ow0 = 0; ow0 < OW; ow0 += 16)
        tp.decode(base, ow0, idx + r * OW + ow0, min64(16, OW - ow0), positions + (r - r0) * OW + ow0);
    }
    const T* g_out = go + r0 * OW;
    const int64_t count = (r1 - r0) * OW;
    for (int64_t j = 0; j < count; ++j) {
      const int64_t i = positions[j];
      if (static_cast<uint64_t>(i) < static_cast<uint64_t>(in_elems))
        gi[i] = Scalar<T>::store(Scalar<T>::load(gi[i]) + Scalar<T>::load(g_out[j]));
    }
  }
}
#endif

template <typename T, typename Source>
void backward_planar(const PoolGeometry& g, const void* grad_output, const void* argmax, void* grad_input,
                     int64_t /*bands*/, int64_t begin, int64_t end) {
  using E = typename Source::E;
  const int64_t in_elems = in_plane_elems(g), out_elems = out_plane_elems(g);
  const ArgmaxDecoder<Source> decoder(g);
#if defined(__AVX512F__)
  // Windows that tile the plane, 2 wide (16 columns in one int32 vector of
  // positions), on rows wide enough to pay: each chunk's setup (argmaxes
  // widened and paired, gradients paired) costs more than the scalar
  // scatter's 1 ns per output on narrower rows, more so for int64 indices
  // (1 thread: 28 columns 1.7x slower, 56 columns 1.7x faster with taps and
  // even with int64, 224 columns 2.5-3x faster).
  const bool tiled_w2 = kVectorBackward<T> && windows_tile(g) && g.kernel[2] == 2 &&
                        g.in_size[2] >= (Source::kTap ? 48 : 64) && in_elems < (int64_t{1} << 31);
  const WindowTables tables(g, tiled_w2);
  RowScratch rs(g, tiled_w2);
  // Streamed only where every store is a whole vector (rows of 16 columns):
  // a line both streamed and written through the cache is evicted and fetched
  // back (a 28-wide row was 2.3x slower so).
  const bool stream = g.in_size[2] % 16 == 0 && stream_backward<T, Source>(g);
  constexpr bool kDecoded = std::is_same_v<Source, TapOffset<uint8_t>>;
  auto positions = [&]() {
    if constexpr (kDecoded) return TapPositions(g, decoder);
    else return 0;
  }();
#endif
  for (int64_t p = begin; p < end; ++p) {
    const T* go = static_cast<const T*>(grad_output) + p * out_elems;
    const E* idx = static_cast<const E*>(argmax) + p * out_elems;
    T* gi = static_cast<T*>(grad_input) + p * in_elems;
#if defined(__AVX512F__)
    if constexpr (kVectorBackward<T>) {
      if (tiled_w2 && backward_planar_tiled_w2<T, Source>(g, go, idx, gi, tables, rs, stream)) continue;
    }
    if constexpr (kDecoded) {
      if (positions.on) {
        backward_plane_scatter_decoded<T>(g, decoder, positions, go, idx, gi);
        continue;
      }
    }
#endif
    backward_plane_scatter<T, Source>(g, decoder, go, idx, gi);
  }
#if defined(__AVX512F__)
  if (stream) _mm_sfence();  // streamed stores are weakly ordered: done before the task is
#endif
}

// The backward over channels-last tasks (BandTask; bands > 1 lets a small
// batch use every thread, each band its own contiguous stretch of memory).
template <typename T, typename Source>
void backward_channels_last(const PoolGeometry& g, const void* grad_output, const void* argmax, void* grad_input,
                            int64_t bands, int64_t begin, int64_t end) {
#if defined(__AVX512F__) || defined(__AVX2__)
  if constexpr (kLanesBackwardBuilt<T>) {
    if (lanes_backward_chosen<T, Source>(g))
      return backward_channels_last_lanes<T, Source>(g, grad_output, argmax, grad_input, bands, begin, end);
    if constexpr (Source::kTap) {
      if (gather_backward_pays(g))
        return backward_channels_last_gather<T, Source>(g, grad_output, argmax, grad_input, bands, begin, end);
    }
  }
#endif
  const ArgmaxDecoder<Source> decoder(g);
  for (int64_t task = begin; task < end; ++task) {
    BandTask<T, Source> t(g, task, bands, grad_output, argmax, grad_input);
    int64_t o = 0;
    for (int64_t od = 0; od < g.out_size[0]; ++od)
      for (int64_t oh = 0; oh < g.out_size[1]; ++oh) {
        const int64_t base = decoder.window_base(od, oh) - t.first;
        for (int64_t ow = 0; ow < g.out_size[2]; ++ow, ++o)
          for (int64_t c = 0; c < g.channels; ++c) t.add_scalar(decoder, base, ow, o, c);
      }
    t.zero.upto(t.count);
  }
}

// ------------------------------------------------------------------- table

template <typename T, typename Sink>
void forward_planar(const PoolGeometry& g, const void* in, void* out, void* argmax, int64_t begin, int64_t end) {
  forward_planar_rows<T, Sink>(g, static_cast<const T*>(in), static_cast<T*>(out),
                               static_cast<typename Sink::E*>(argmax), begin, end);
}

template <typename T, typename Sink>
void forward_channels_last(const PoolGeometry& g, const void* in, void* out, void* argmax, int64_t begin,
                           int64_t end) {
  forward_channels_last_positions<T, Sink>(g, static_cast<const T*>(in), static_cast<T*>(out),
                                           static_cast<typename Sink::E*>(argmax), begin, end);
}

template <typename T, typename Sink, Layout kLayout>
void set_forward(KernelTable& k, DType dtype, Argmax argmax) {
  auto& entry = k.forward[static_cast<int>(kLayout)][static_cast<int>(dtype)][static_cast<int>(argmax)];
  if constexpr (kLayout == Layout::planar)
    entry = &forward_planar<T, Sink>;
  else
    entry = &forward_channels_last<T, Sink>;
}

// Every dtype has inference and indices; the differentiable ones also the
// training taps.
template <typename T, Layout kLayout>
void set_forwards(KernelTable& k, DType dtype, bool differentiable) {
  set_forward<T, NoArgmax, kLayout>(k, dtype, Argmax::none);
  set_forward<T, FlatIndex, kLayout>(k, dtype, Argmax::flat);
  if (!differentiable) return;
  set_forward<T, TapOffset<uint8_t>, kLayout>(k, dtype, Argmax::tap_u8);
  set_forward<T, TapOffset<int32_t>, kLayout>(k, dtype, Argmax::tap_i32);
}

// The forwards of one layout in two dtype groups: float32, float64 and the
// integer types; float16 and bfloat16.
template <Layout kLayout>
void set_forwards_full_width(KernelTable& k) {
  set_forwards<float, kLayout>(k, DType::f32, true);
  set_forwards<double, kLayout>(k, DType::f64, true);
  set_forwards<uint8_t, kLayout>(k, DType::u8, false);
  set_forwards<int8_t, kLayout>(k, DType::i8, false);
  set_forwards<int16_t, kLayout>(k, DType::i16, false);
  set_forwards<int32_t, kLayout>(k, DType::i32, false);
  set_forwards<int64_t, kLayout>(k, DType::i64, false);
}

template <Layout kLayout>
void set_forwards_half_width(KernelTable& k) {
  set_forwards<fp16_t, kLayout>(k, DType::f16, true);
  set_forwards<bf16_t, kLayout>(k, DType::bf16, true);
}

template <typename T>
void set_backwards(KernelTable& k, DType dtype) {
  const int d = static_cast<int>(dtype);
  auto set = [&](auto source, Argmax argmax) {
    using Source = decltype(source);
    const int a = static_cast<int>(argmax);
    k.backward[static_cast<int>(Layout::planar)][d][a] = &backward_planar<T, Source>;
    k.backward[static_cast<int>(Layout::channels_last)][d][a] = &backward_channels_last<T, Source>;
  };
  set(FlatIndex{}, Argmax::flat);
  set(TapOffset<uint8_t>{}, Argmax::tap_u8);
  set(TapOffset<int32_t>{}, Argmax::tap_i32);
}

// The planar forwards are most of the compile time of an ISA's kernels, so
// setup.py compiles each isa_*.cpp in parts (FASTPOOL_ISA_PART; build_config's
// ISA_PARTS) that a build runs side by side: part 1 and part 2 the planar
// forwards of either dtype group, part 0 the rest and the table. Without
// FASTPOOL_ISA_PART, one object holds everything.
#if !defined(FASTPOOL_ISA_PART) || FASTPOOL_ISA_PART == 1
void set_planar_forwards_full_width(KernelTable& k) { set_forwards_full_width<Layout::planar>(k); }
#else
void set_planar_forwards_full_width(KernelTable& k);
#endif
#if !defined(FASTPOOL_ISA_PART) || FASTPOOL_ISA_PART == 2
void set_planar_forwards_half_width(KernelTable& k) { set_forwards_half_width<Layout::planar>(k); }
#else
void set_planar_forwards_half_width(KernelTable& k);
#endif

inline KernelTable make_table(const char* isa) {
  KernelTable k{};
  k.isa = isa;
  k.vector_bits = Simd<float>::kLanes * 32;
  set_planar_forwards_full_width(k);
  set_planar_forwards_half_width(k);
  set_forwards_full_width<Layout::channels_last>(k);
  set_forwards_half_width<Layout::channels_last>(k);
  set_backwards<float>(k, DType::f32);
  set_backwards<double>(k, DType::f64);
  set_backwards<fp16_t>(k, DType::f16);
  set_backwards<bf16_t>(k, DType::bf16);
  return k;
}

}  // namespace FASTPOOL_ISA
}  // namespace fastpool::cpu
