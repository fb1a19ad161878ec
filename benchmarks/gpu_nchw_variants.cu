// How should the NCHW kernels cut their work? A standalone experiment (no
// torch, no fastpool build) for one GPU visit: the ResNet-50 stem's max pool
// (k3 s2 p1, 112x112 -> 56x56, 32 x 64 planes) and VGG's (k2 s2, 112 -> 56),
// float and bfloat16, forward (values, values + int64 indices) and the
// backward's gather, each cut as the fastpool kernels cut it today (one output
// or one 2x2 input block per thread) and as R outputs (R blocks) along a row
// per thread with vector loads and stores. Every variant's result is compared
// bit for bit with the first one's; the time is the median of 30 launches.
//
//   nvcc -O3 -std=c++17 -arch=sm_90 benchmarks/gpu_nchw_variants.cu -o /tmp/nchw_variants && /tmp/nchw_variants
//
// The semantics are PyTorch CUDA's (max_pool_device.cuh): a tap wins if
// greater or NaN, scanning h outer, w inner; the index starts at the first
// in-bounds tap; a gradient is the float sum, from 0 and in output raster
// order, of the covering outputs whose index names the input.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(x)                                                                      \
  do {                                                                                \
    cudaError_t e_ = (x);                                                             \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

struct Shape {
  int planes, H, W, OH, OW, K, S, P;
};

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// ---- forward ---------------------------------------------------------------

// Today's cut: one output per thread, the kK x kK window unrolled.
template <typename T, int kK, bool kIdx>
__global__ void fwd_one(const T* __restrict__ in, T* __restrict__ out, int64_t* __restrict__ idx, Shape s, int n) {
  const int step = gridDim.x * blockDim.x;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    const int ox = i % s.OW, r = i / s.OW, oy = r % s.OH, plane = r / s.OH;
    const T* p = in + (int64_t)plane * s.H * s.W;
    const int hs = oy * s.S - s.P, ws = ox * s.S - s.P;
    float best = -INFINITY;
    T bestv = from_f<T>(-INFINITY);
    int bi = max(hs, 0) * s.W + max(ws, 0);
#pragma unroll
    for (int kh = 0; kh < kK; ++kh)
#pragma unroll
      for (int kw = 0; kw < kK; ++kw) {
        const int h = hs + kh, w = ws + kw;
        if (h >= 0 && h < s.H && w >= 0 && w < s.W) {
          const T v = p[h * s.W + w];
          const float f = to_f(v);
          if (f > best || f != f) {
            best = f;
            bestv = v;
            bi = h * s.W + w;
          }
        }
      }
    out[i] = bestv;
    if (kIdx) idx[i] = bi;
  }
}

// R outputs along a row per thread (OW % R == 0, stride 2): the 2R inputs from
// column 2*ox0 loaded as one vector per window row (plus column 2*ox0 - 1 for
// k3 p1, the previous vector's last element, read as a scalar).
template <typename T, int kK, int R, bool kIdx>
__global__ void fwd_rows(const T* __restrict__ in, T* __restrict__ out, int64_t* __restrict__ idx, Shape s, int n) {
  constexpr int L = 2 * R;             // inputs per vector
  constexpr int kP = kK == 3 ? 1 : 0;  // the stem's padding, VGG's none
  const int step = gridDim.x * blockDim.x;
  const int groups = s.OW / R;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    const int gx = i % groups, r = i / groups, oy = r % s.OH, plane = r / s.OH;
    const int ox0 = gx * R;
    const T* p = in + (int64_t)plane * s.H * s.W;
    const int hs = oy * 2 - kP, c0 = ox0 * 2;  // first column of the vector
    float best[R];
    T bestv[R];
    int bi[R];
#pragma unroll
    for (int j = 0; j < R; ++j) {
      best[j] = -INFINITY;
      bestv[j] = from_f<T>(-INFINITY);
      bi[j] = max(hs, 0) * s.W + max(c0 + 2 * j - kP, 0);
    }
#pragma unroll
    for (int kh = 0; kh < kK; ++kh) {
      const int h = hs + kh;
      if (h < 0 || h >= s.H) continue;
      const T* row = p + h * s.W;
      const Vec<T, L> x = *reinterpret_cast<const Vec<T, L>*>(row + c0);
      T left = from_f<T>(-INFINITY);
      if (kP == 1 && c0 > 0) left = row[c0 - 1];
#pragma unroll
      for (int j = 0; j < R; ++j) {
#pragma unroll
        for (int kw = 0; kw < kK; ++kw) {
          const int c = 2 * j - kP + kw;  // column relative to c0: -1 .. L - 1 (the window's right end stays in the vector)
          if (c < 0 && c0 == 0) continue;  // the padding column
          const T v = c < 0 ? left : x.v[c < 0 ? 0 : c];
          const float f = to_f(v);
          if (f > best[j] || f != f) {
            best[j] = f;
            bestv[j] = v;
            bi[j] = h * s.W + c0 + c;
          }
        }
      }
    }
    const int o = (plane * s.OH + oy) * s.OW + ox0;
    Vec<T, R> ov;
#pragma unroll
    for (int j = 0; j < R; ++j) ov.v[j] = bestv[j];
    *reinterpret_cast<Vec<T, R>*>(out + o) = ov;
    if (kIdx) {
#pragma unroll
      for (int j = 0; j < R; j += 2) {
        Vec<int64_t, 2> two;
        two.v[0] = bi[j];
        two.v[1] = bi[j + 1];
        *reinterpret_cast<Vec<int64_t, 2>*>(idx + o + j) = two;
      }
    }
  }
}

// ---- backward (k3 s2 p1 or k2 s2 p0) ------------------------------------------

// Today's cut for overlapping windows: one 2x2 input block per thread, its
// candidate outputs (by..by+1) x (bx..bx+1) read once each.
template <typename T>
__global__ void bwd_block(const T* __restrict__ go, const int64_t* __restrict__ idx, T* __restrict__ gi, Shape s,
                          int n) {
  const int step = gridDim.x * blockDim.x;
  const int BW = s.W / 2, BH = s.H / 2;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    const int bx = i % BW, r = i / BW, by = r % BH, plane = r / BH;
    const int64_t ob = (int64_t)plane * s.OH * s.OW, ib = (int64_t)plane * s.H * s.W;
    float sum[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
    const int oy1 = s.P ? min(by + 2, s.OH) : by + 1, ox1 = s.P ? min(bx + 2, s.OW) : bx + 1;
    for (int oy = by; oy < oy1; ++oy)
      for (int ox = bx; ox < ox1; ++ox) {
        const int o = oy * s.OW + ox;
        const int64_t t = idx[ob + o];
        const float g = to_f(go[ob + o]);
#pragma unroll
        for (int y = 0; y < 2; ++y)
#pragma unroll
          for (int x = 0; x < 2; ++x) {
            const int h = 2 * by + y, w = 2 * bx + x;
            if (t == h * s.W + w) sum[y][x] += g;
          }
      }
#pragma unroll
    for (int y = 0; y < 2; ++y)
#pragma unroll
      for (int x = 0; x < 2; ++x) gi[ib + (2 * by + y) * s.W + 2 * bx + x] = from_f<T>(sum[y][x]);
  }
}

// R blocks along a row per thread: inputs (2by..2by+1) x (2bx0..2bx0+2R-1),
// outputs (by..by+1) x (bx0..bx0+R) for k3 p1 (one extra column and row),
// each output's gradient and index loaded once into registers, the block's
// rows stored as vectors.
template <typename T, int R>
__global__ void bwd_rows(const T* __restrict__ go, const int64_t* __restrict__ idx, T* __restrict__ gi, Shape s,
                         int n) {
  constexpr int L = 2 * R;
  const int step = gridDim.x * blockDim.x;
  const int groups = s.W / L, BH = s.H / 2;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
    const int gx = i % groups, r = i / groups, by = r % BH, plane = r / BH;
    const int bx0 = gx * R;
    const int64_t ob = (int64_t)plane * s.OH * s.OW, ib = (int64_t)plane * s.H * s.W;
    float sum[2][L];
#pragma unroll
    for (int y = 0; y < 2; ++y)
#pragma unroll
      for (int x = 0; x < L; ++x) sum[y][x] = 0.f;
    const int rows = s.P ? 2 : 1, cols = s.P ? R + 1 : R;
#pragma unroll
    for (int dy = 0; dy < 2; ++dy) {
      const int oy = by + dy;
      if (dy >= rows || oy >= s.OH) break;
#pragma unroll
      for (int dx = 0; dx < R + 1; ++dx) {
        const int ox = bx0 + dx;
        if (dx >= cols || ox >= s.OW) break;
        const int o = oy * s.OW + ox;
        const int64_t t = idx[ob + o];
        const float g = to_f(go[ob + o]);
        // The block inputs this output covers: rows 2oy-P .. 2oy-P+K-1, likewise columns.
#pragma unroll
        for (int y = 0; y < 2; ++y)
#pragma unroll
          for (int x = 0; x < L; ++x) {
            const int h = 2 * by + y, w = 2 * bx0 + x;
            const int ry = h - (2 * oy - s.P), rx = w - (2 * ox - s.P);
            if (ry >= 0 && ry < s.K && rx >= 0 && rx < s.K && t == h * s.W + w) sum[y][x] += g;
          }
      }
    }
#pragma unroll
    for (int y = 0; y < 2; ++y) {
      Vec<T, L> v;
#pragma unroll
      for (int x = 0; x < L; ++x) v.v[x] = from_f<T>(sum[y][x]);
      *reinterpret_cast<Vec<T, L>*>(gi + ib + (2 * by + y) * s.W + 2 * bx0) = v;
    }
  }
}

// ---- harness ---------------------------------------------------------------

static int grid_for(int n) {
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  return std::max(1, std::min((n + 255) / 256, sms * 8 * 8));
}

template <typename F>
static float median_us(F&& launch) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) launch();
  CHECK(cudaGetLastError());
  std::vector<float> t;
  for (int i = 0; i < 30; ++i) {
    CHECK(cudaEventRecord(a));
    launch();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.f);
  }
  CHECK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <typename T>
static std::vector<unsigned char> fetch(const T* p, size_t count) {
  std::vector<unsigned char> h(count * sizeof(T));
  CHECK(cudaMemcpy(h.data(), p, h.size(), cudaMemcpyDeviceToHost));
  return h;
}

__global__ void copy_kernel(const float4* __restrict__ a, float4* __restrict__ b, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    b[i] = a[i];
}

template <typename T>
static void run_case(const char* name, const char* type, Shape s) {
  const int64_t in_n = (int64_t)s.planes * s.H * s.W, out_n = (int64_t)s.planes * s.OH * s.OW;
  T *in, *out, *go, *gi;
  int64_t* idx;
  CHECK(cudaMalloc(&in, in_n * sizeof(T)));
  CHECK(cudaMalloc(&gi, in_n * sizeof(T)));
  CHECK(cudaMalloc(&out, out_n * sizeof(T)));
  CHECK(cudaMalloc(&go, out_n * sizeof(T)));
  CHECK(cudaMalloc(&idx, out_n * sizeof(int64_t)));
  {
    // Inputs with ties (values on a coarse grid), a few NaNs and infinities.
    std::vector<T> h(in_n);
    uint64_t x = 88172645463325252ull;
    for (int64_t i = 0; i < in_n; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      float v = float(int(x % 64) - 32) * 0.25f;
      if (x % 100003 == 0) v = NAN;
      if (x % 100019 == 0) v = -INFINITY;
      if constexpr (sizeof(T) == 4) h[i] = v; else h[i] = __float2bfloat16(v);
    }
    CHECK(cudaMemcpy(in, h.data(), in_n * sizeof(T), cudaMemcpyHostToDevice));
    std::vector<T> g(out_n);
    for (int64_t i = 0; i < out_n; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const float v = float(int(x % 2001) - 1000) * 1e-3f;
      if constexpr (sizeof(T) == 4) g[i] = v; else g[i] = __float2bfloat16(v);
    }
    CHECK(cudaMemcpy(go, g.data(), out_n * sizeof(T), cudaMemcpyHostToDevice));
  }
  const double in_b = in_n * sizeof(T), out_b = out_n * sizeof(T), idx_b = out_n * 8.0;
  auto report = [&](const char* dir, const char* variant, float us, double bytes, bool same) {
    std::printf("| %s | %s | %s | %s | %.1f | %.0f | %s |\n", name, type, dir, variant, us, bytes / us * 1e-3,
                same ? "same" : "**DIFFERENT**");
  };
  const int n1 = out_n;
  std::vector<unsigned char> ref_out, ref_idx, ref_gi;
  // Forward, values and values + indices.
  for (int with_idx = 0; with_idx < 2; ++with_idx) {
    const char* dir = with_idx ? "fwd_idx" : "fwd";
    const double bytes = in_b + out_b + (with_idx ? idx_b : 0);
    auto check = [&](bool first) {
      auto o = fetch(out, out_n);
      auto ix = with_idx ? fetch(idx, out_n) : std::vector<unsigned char>{};
      if (first) {
        ref_out = o;
        if (with_idx) ref_idx = ix;
        return true;
      }
      return o == ref_out && (!with_idx || ix == ref_idx);
    };
    auto one = [&](auto kernel, int items, const char* variant, bool first) {
      CHECK(cudaMemset(out, 0xff, out_n * sizeof(T)));
      CHECK(cudaMemset(idx, 0xff, out_n * 8));
      const float us = median_us([&] { kernel<<<grid_for(items), 256>>>(in, out, idx, s, items); });
      report(dir, variant, us, bytes, check(first));
    };
    if (s.K == 3) {
      if (with_idx) {
        one(fwd_one<T, 3, true>, n1, "1 output/thread", true);
        one(fwd_rows<T, 3, 2, true>, n1 / 2, "2 outputs/thread", false);
        one(fwd_rows<T, 3, 4, true>, n1 / 4, "4 outputs/thread", false);
      } else {
        one(fwd_one<T, 3, false>, n1, "1 output/thread", true);
        one(fwd_rows<T, 3, 2, false>, n1 / 2, "2 outputs/thread", false);
        one(fwd_rows<T, 3, 4, false>, n1 / 4, "4 outputs/thread", false);
      }
    } else {
      if (with_idx) {
        one(fwd_one<T, 2, true>, n1, "1 output/thread", true);
        one(fwd_rows<T, 2, 2, true>, n1 / 2, "2 outputs/thread", false);
        one(fwd_rows<T, 2, 4, true>, n1 / 4, "4 outputs/thread", false);
      } else {
        one(fwd_one<T, 2, false>, n1, "1 output/thread", true);
        one(fwd_rows<T, 2, 2, false>, n1 / 2, "2 outputs/thread", false);
        one(fwd_rows<T, 2, 4, false>, n1 / 4, "4 outputs/thread", false);
      }
    }
  }
  // Backward on the forward's indices (left by the last forward with indices).
  {
    const double bytes = out_b + idx_b + in_b;
    const int blocks = s.planes * (s.H / 2) * (s.W / 2);
    auto one = [&](auto kernel, int items, const char* variant, bool first) {
      CHECK(cudaMemset(gi, 0xff, in_n * sizeof(T)));
      const float us = median_us([&] { kernel<<<grid_for(items), 256>>>(go, idx, gi, s, items); });
      auto g = fetch(gi, in_n);
      if (first) ref_gi = g;
      report("bwd", variant, us, bytes, first || g == ref_gi);
    };
    one(bwd_block<T>, blocks, "1 block/thread", true);
    one(bwd_rows<T, 2>, blocks / 2, "2 blocks/thread", false);
    one(bwd_rows<T, 4>, blocks / 4, "4 blocks/thread", false);
  }
  CHECK(cudaFree(in));
  CHECK(cudaFree(gi));
  CHECK(cudaFree(out));
  CHECK(cudaFree(go));
  CHECK(cudaFree(idx));
}

int main() {
  cudaDeviceProp p;
  CHECK(cudaGetDeviceProperties(&p, 0));
  std::printf("%s, %d SMs\n\n", p.name, p.multiProcessorCount);
  {
    const int64_t n = (int64_t)1 << 28;  // 1 GiB each way
    float4 *a, *b;
    CHECK(cudaMalloc(&a, n * 4));
    CHECK(cudaMalloc(&b, n * 4));
    CHECK(cudaMemset(a, 0, n * 4));
    const float us = median_us([&] { copy_kernel<<<p.multiProcessorCount * 8, 256>>>(a, b, n / 4); });
    std::printf("copy 1 GiB: %.1f us, %.0f GB/s (read + write)\n\n", us, 2.0 * n * 4 / us * 1e-3);
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
  }
  std::printf("| case | type | dir | variant | us | GB/s moved | result |\n|---|---|---|---|---:|---:|---|\n");
  const Shape stem{32 * 64, 112, 112, 56, 56, 3, 2, 1};
  const Shape vgg{32 * 128, 112, 112, 56, 56, 2, 2, 0};
  run_case<float>("stem k3s2p1", "f32", stem);
  run_case<__nv_bfloat16>("stem k3s2p1", "bf16", stem);
  run_case<float>("vgg k2s2", "f32", vgg);
  run_case<__nv_bfloat16>("vgg k2s2", "bf16", vgg);
  return 0;
}
