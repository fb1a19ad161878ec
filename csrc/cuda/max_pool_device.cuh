// Per-element logic of the CUDA max_pool2d kernels: one output (forward) or one
// input (backward) per call, as plain __host__ __device__ code. max_pool.cu's
// kernels are grid-stride loops over these functions; host_logic.cpp runs the
// very same functions over the whole index space on the host so that the test
// suite checks them against torch without a GPU.
//
// Torch-free: scalar_t is float, double, c10::Half or c10::BFloat16 (all of
// which convert to and from acc_t on host and device). Semantics are PyTorch
// CUDA's (aten/src/ATen/native/cuda/DilatedMaxPool2d.cu):
//   forward  a tap wins if (val > max) || isnan(val), scanning h outer, w
//            inner, so ties keep the first tap and the last NaN wins; the
//            index starts at the first in-bounds tap in NCHW but at 0 in
//            NHWC (PyTorch CUDA's channels-last kernel), which shows only
//            when no tap beats -inf.
//   backward gather over the outputs whose window span covers the input
//            (covering_outputs), adding grad_output where the index equals
//            this input, in acc_t (float for half types), h outer, w inner.
//            NHWC with exactly one covering output copies the gradient
//            without the add (PyTorch CUDA does; it keeps -0.0).
// Only 2-d pooling: geometry dims 1 (H) and 2 (W), depth 1.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../pool_geometry.h"

// Unrolls the per-lane loops on the device; the host compiler does its own.
#if defined(__CUDACC__)
#define FASTPOOL_UNROLL _Pragma("unroll")
#else
#define FASTPOOL_UNROLL
#endif

namespace fastpool {
namespace cuda_logic {

constexpr int kMaxVectorBytes = 16;

template <typename scalar_t>
struct ForwardArgs {
  const scalar_t* input;
  scalar_t* output;
  int64_t* indices;  // null: the inference op, which writes none
  PoolGeometry g;
};

template <typename scalar_t>
struct BackwardArgs {
  const scalar_t* grad_output;
  const int64_t* indices;
  scalar_t* grad_input;
  PoolGeometry g;
};

// V consecutive elements moved as one 8- or 16-byte access.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

#if !defined(__CUDA_ARCH__)
// Host build only: how many vector accesses the host run made and how many of
// them would have been misaligned on the GPU (the tests require none).
struct VectorAccessTally {
  int64_t accesses = 0;
  int64_t misaligned = 0;
};
inline VectorAccessTally& host_vector_tally() {
  static VectorAccessTally tally;
  return tally;
}
#endif

template <typename T, int V>
FASTPOOL_HOST_DEVICE inline Pack<T, V> load_pack(const T* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const Pack<T, V>*>(p);
#else
  if (V > 1) {
    ++host_vector_tally().accesses;
    if (reinterpret_cast<uintptr_t>(p) % alignof(Pack<T, V>) != 0) ++host_vector_tally().misaligned;
  }
  Pack<T, V> r;
  std::memcpy(static_cast<void*>(&r), static_cast<const void*>(p), sizeof(r));
  return r;
#endif
}

template <typename T, int V>
FASTPOOL_HOST_DEVICE inline void store_pack(T* p, const Pack<T, V>& x) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<Pack<T, V>*>(p) = x;
#else
  if (V > 1) {
    ++host_vector_tally().accesses;
    if (reinterpret_cast<uintptr_t>(p) % alignof(Pack<T, V>) != 0) ++host_vector_tally().misaligned;
  }
  std::memcpy(static_cast<void*>(p), static_cast<const void*>(&x), sizeof(x));
#endif
}

// int64 indices for V lanes: 16-byte pairs (V * 8 bytes is 16-byte aligned
// whenever the value vector is), one scalar when V == 1.
template <int V>
FASTPOOL_HOST_DEVICE inline Pack<int64_t, V> load_indices(const int64_t* p) {
  Pack<int64_t, V> r;
  if (V == 1) {
    r.v[0] = *p;
  } else {
FASTPOOL_UNROLL
    for (int j = 0; j < V; j += 2) {
      const Pack<int64_t, 2> two = load_pack<int64_t, 2>(p + j);
      r.v[j] = two.v[0];
      r.v[j + 1] = two.v[1];
    }
  }
  return r;
}

template <int V>
FASTPOOL_HOST_DEVICE inline void store_indices(int64_t* p, const Pack<int64_t, V>& x) {
  if (V == 1) {
    *p = x.v[0];
  } else {
FASTPOOL_UNROLL
    for (int j = 0; j < V; j += 2) {
      Pack<int64_t, 2> two;
      two.v[0] = x.v[j];
      two.v[1] = x.v[j + 1];
      store_pack<int64_t, 2>(p + j, two);
    }
  }
}

// Lanes per NHWC vector access: 16 bytes, else 8 bytes, else scalar. A width
// is used only when the channel count is a multiple of it and every value
// pointer is aligned to it (then every pixel's channel run is aligned too);
// int64 index pointers must be 16-byte aligned for their pairs.
inline int nhwc_vector_lanes(int64_t channels, int64_t elem_size, const void* const* values, int nvalues,
                             const void* const* indices, int nindices) {
  bool index_ok = true;
  for (int i = 0; i < nindices; ++i) index_ok = index_ok && reinterpret_cast<uintptr_t>(indices[i]) % 16 == 0;
  if (!index_ok) return 1;
  for (int64_t bytes = kMaxVectorBytes; bytes >= 8; bytes /= 2) {
    const int64_t lanes = bytes / elem_size;
    if (lanes < 2 || channels % lanes != 0) continue;
    bool aligned = true;
    for (int i = 0; i < nvalues; ++i) aligned = aligned && reinterpret_cast<uintptr_t>(values[i]) % bytes == 0;
    if (aligned) return static_cast<int>(lanes);
  }
  return 1;
}

// 32-bit index arithmetic is safe when every element offset and the
// grid-stride loop's last step fit in int32.
inline bool fits_int32(int64_t max_numel, int64_t work_items, int64_t threads_in_grid) {
  const int64_t limit = INT32_MAX;
  return max_numel <= limit && work_items + threads_in_grid <= limit;
}

template <typename acc_t>
FASTPOOL_HOST_DEVICE inline bool is_nan(acc_t v) {
  return v != v;
}

// ---- forward -------------------------------------------------------------

// NCHW: i is the output's linear index over (n*C + c, oh, ow).
template <typename scalar_t, typename acc_t, typename index_t, bool kIndices>
FASTPOOL_HOST_DEVICE inline void forward_nchw(const ForwardArgs<scalar_t>& a, index_t i) {
  const PoolGeometry& g = a.g;
  const index_t OW = static_cast<index_t>(g.out_size[2]);
  const index_t OH = static_cast<index_t>(g.out_size[1]);
  const index_t W = static_cast<index_t>(g.in_size[2]);
  const index_t H = static_cast<index_t>(g.in_size[1]);
  const index_t ow = i % OW;
  const index_t t = i / OW;
  const index_t oh = t % OH;
  const index_t plane = t / OH;
  const WindowTaps th = window_taps(g, 1, oh);
  const WindowTaps tw = window_taps(g, 2, ow);
  const index_t dh = static_cast<index_t>(g.dilation[1]);
  const index_t dw = static_cast<index_t>(g.dilation[2]);
  const index_t h0 = static_cast<index_t>(th.first);
  const index_t w0 = static_cast<index_t>(tw.first);
  const index_t nh = static_cast<index_t>(th.count);
  const index_t nw = static_cast<index_t>(tw.count);
  const scalar_t* in = a.input + plane * (H * W);

  scalar_t best = static_cast<scalar_t>(-INFINITY);
  acc_t best_f = static_cast<acc_t>(-INFINITY);
  index_t best_i = h0 * W + w0;
  for (index_t kh = 0; kh < nh; ++kh) {
    const index_t row = (h0 + kh * dh) * W;
    for (index_t kw = 0; kw < nw; ++kw) {
      const index_t pos = row + w0 + kw * dw;
      const scalar_t v = in[pos];
      const acc_t vf = static_cast<acc_t>(v);
      if (vf > best_f || is_nan(vf)) {
        best = v;
        best_f = vf;
        best_i = pos;
      }
    }
  }
  a.output[i] = best;
  if (kIndices) a.indices[i] = static_cast<int64_t>(best_i);
}

// NHWC: i is the linear index over (n, oh, ow, c / V); V channels per call.
template <typename scalar_t, typename acc_t, typename index_t, int V, bool kIndices>
FASTPOOL_HOST_DEVICE inline void forward_nhwc(const ForwardArgs<scalar_t>& a, index_t i) {
  const PoolGeometry& g = a.g;
  const index_t C = static_cast<index_t>(g.channels);
  const index_t CG = C / V;
  const index_t OW = static_cast<index_t>(g.out_size[2]);
  const index_t OH = static_cast<index_t>(g.out_size[1]);
  const index_t W = static_cast<index_t>(g.in_size[2]);
  const index_t H = static_cast<index_t>(g.in_size[1]);
  const index_t cg = i % CG;
  index_t t = i / CG;
  const index_t ow = t % OW;
  t /= OW;
  const index_t oh = t % OH;
  const index_t n = t / OH;
  const WindowTaps th = window_taps(g, 1, oh);
  const WindowTaps tw = window_taps(g, 2, ow);
  const index_t dh = static_cast<index_t>(g.dilation[1]);
  const index_t dw = static_cast<index_t>(g.dilation[2]);
  const index_t h0 = static_cast<index_t>(th.first);
  const index_t w0 = static_cast<index_t>(tw.first);
  const index_t nh = static_cast<index_t>(th.count);
  const index_t nw = static_cast<index_t>(tw.count);
  const scalar_t* in = a.input + n * (H * W * C) + cg * V;

  Pack<scalar_t, V> best;
  acc_t best_f[V];
  Pack<int64_t, V> best_i;
FASTPOOL_UNROLL
  for (int j = 0; j < V; ++j) {
    best.v[j] = static_cast<scalar_t>(-INFINITY);
    best_f[j] = static_cast<acc_t>(-INFINITY);
    best_i.v[j] = 0;  // PyTorch CUDA's channels-last start, not the first tap
  }
  for (index_t kh = 0; kh < nh; ++kh) {
    const index_t h = h0 + kh * dh;
    for (index_t kw = 0; kw < nw; ++kw) {
      const index_t pos = h * W + w0 + kw * dw;
      const Pack<scalar_t, V> x = load_pack<scalar_t, V>(in + pos * C);
FASTPOOL_UNROLL
      for (int j = 0; j < V; ++j) {
        const acc_t vf = static_cast<acc_t>(x.v[j]);
        if (vf > best_f[j] || is_nan(vf)) {
          best.v[j] = x.v[j];
          best_f[j] = vf;
          best_i.v[j] = pos;
        }
      }
    }
  }
  // C is a multiple of V, so (n, oh, ow, cg) is exactly output offset i * V.
  store_pack<scalar_t, V>(a.output + i * V, best);
  if (kIndices) store_indices<V>(a.indices + i * V, best_i);
}

// ---- backward ------------------------------------------------------------

// NCHW: i is the input's linear index over (n*C + c, h, w).
template <typename scalar_t, typename acc_t, typename index_t>
FASTPOOL_HOST_DEVICE inline void backward_nchw(const BackwardArgs<scalar_t>& a, index_t i) {
  const PoolGeometry& g = a.g;
  const index_t W = static_cast<index_t>(g.in_size[2]);
  const index_t H = static_cast<index_t>(g.in_size[1]);
  const index_t OW = static_cast<index_t>(g.out_size[2]);
  const index_t OH = static_cast<index_t>(g.out_size[1]);
  const index_t w = i % W;
  const index_t t = i / W;
  const index_t h = t % H;
  const index_t plane = t / H;
  const OutputRange rh = covering_outputs(g, 1, h);
  const OutputRange rw = covering_outputs(g, 2, w);
  const int64_t target = static_cast<int64_t>(h * W + w);
  const scalar_t* go = a.grad_output + plane * (OH * OW);
  const int64_t* ind = a.indices + plane * (OH * OW);
  acc_t sum = acc_t(0);
  for (index_t oh = static_cast<index_t>(rh.begin); oh < static_cast<index_t>(rh.end); ++oh) {
    for (index_t ow = static_cast<index_t>(rw.begin); ow < static_cast<index_t>(rw.end); ++ow) {
      const index_t o = oh * OW + ow;
      if (ind[o] == target) sum += static_cast<acc_t>(go[o]);
    }
  }
  a.grad_input[i] = static_cast<scalar_t>(sum);
}

// NHWC: i is the linear index over (n, h, w, c / V); V channels per call.
template <typename scalar_t, typename acc_t, typename index_t, int V>
FASTPOOL_HOST_DEVICE inline void backward_nhwc(const BackwardArgs<scalar_t>& a, index_t i) {
  const PoolGeometry& g = a.g;
  const index_t C = static_cast<index_t>(g.channels);
  const index_t CG = C / V;
  const index_t W = static_cast<index_t>(g.in_size[2]);
  const index_t H = static_cast<index_t>(g.in_size[1]);
  const index_t OW = static_cast<index_t>(g.out_size[2]);
  const index_t OH = static_cast<index_t>(g.out_size[1]);
  const index_t cg = i % CG;
  index_t t = i / CG;
  const index_t w = t % W;
  t /= W;
  const index_t h = t % H;
  const index_t n = t / H;
  const OutputRange rh = covering_outputs(g, 1, h);
  const OutputRange rw = covering_outputs(g, 2, w);
  const int64_t target = static_cast<int64_t>(h * W + w);
  const index_t base = n * (OH * OW * C) + cg * V;
  const scalar_t* go = a.grad_output + base;
  const int64_t* ind = a.indices + base;

  Pack<scalar_t, V> out;
  if (rh.end - rh.begin == 1 && rw.end - rw.begin == 1) {
    const index_t o = (static_cast<index_t>(rh.begin) * OW + static_cast<index_t>(rw.begin)) * C;
    const Pack<int64_t, V> idx = load_indices<V>(ind + o);
    const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(go + o);
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) out.v[j] = idx.v[j] == target ? gv.v[j] : static_cast<scalar_t>(0);
  } else {
    acc_t sum[V];
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) sum[j] = acc_t(0);
    for (index_t oh = static_cast<index_t>(rh.begin); oh < static_cast<index_t>(rh.end); ++oh) {
      for (index_t ow = static_cast<index_t>(rw.begin); ow < static_cast<index_t>(rw.end); ++ow) {
        const index_t o = (oh * OW + ow) * C;
        const Pack<int64_t, V> idx = load_indices<V>(ind + o);
        const Pack<scalar_t, V> gv = load_pack<scalar_t, V>(go + o);
FASTPOOL_UNROLL
        for (int j = 0; j < V; ++j)
          if (idx.v[j] == target) sum[j] += static_cast<acc_t>(gv.v[j]);
      }
    }
FASTPOOL_UNROLL
    for (int j = 0; j < V; ++j) out.v[j] = static_cast<scalar_t>(sum[j]);
  }
  store_pack<scalar_t, V>(a.grad_input + i * V, out);
}

}  // namespace cuda_logic
}  // namespace fastpool
