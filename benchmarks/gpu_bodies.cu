// fastpool's own CUDA kernel bodies (csrc/cuda/max_pool_device.cuh, which is
// torch-free) timed side by side on one GPU without building the extension:
// for the ResNet-50 stem's pool (k3 s2 p1) and VGG's (k2 s2), float and
// bfloat16, the planar forward cut one output per item (ForwardNchw) and a
// group of a row's outputs per item (ForwardNchwRows), and the backward's
// generic band gather (BackwardBandGather) and its unrolled 2 x 2 form
// (BackwardBandGatherNarrow), planar and channels last; global pooling's
// backward as bands (today's) and as a per-input gather. Each pair's results
// are compared bit for bit; the time is the median of 30 launches. A GPU
// visit's quick check of a kernel change (about 15 s to compile):
//
//   nvcc -O3 -std=c++17 --expt-relaxed-constexpr -arch=sm_90 -Icsrc/cuda benchmarks/gpu_bodies.cu -o /tmp/bodies
//   /tmp/bodies
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "max_pool_device.cuh"

using namespace fastpool;

#define CHECK(x)                                                                                \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__);      \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

template <class Body, typename index_t>
__global__ void __launch_bounds__(cuda_launch::kThreadsPerBlock) grid_stride_kernel(const typename Body::Args args,
                                                                                    index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * static_cast<index_t>(blockDim.x);
  for (index_t i = static_cast<index_t>(blockIdx.x) * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += step)
    Body::run(args, i);
}

static cuda_launch::DeviceLimits limits() {
  cudaDeviceProp p;
  CHECK(cudaGetDeviceProperties(&p, 0));
  return {p.multiProcessorCount, p.maxThreadsPerMultiProcessor, p.maxGridSize[0]};
}

// The median time of 30 launches of Body over n items, as the launcher grids them.
template <class Body>
static float time_body(const typename Body::Args& args, int n) {
  const cuda_launch::Grid grid = cuda_launch::grid_for(limits(), n);
  auto launch = [&] { grid_stride_kernel<Body, int><<<grid.blocks, grid.threads>>>(args, n); };
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
static std::vector<unsigned char> bytes_of(const T* p, size_t count) {
  std::vector<unsigned char> h(count * sizeof(T));
  CHECK(cudaMemcpy(h.data(), p, h.size(), cudaMemcpyDeviceToHost));
  return h;
}

template <typename T>
static T* device_values(int64_t n, uint64_t seed, bool specials) {
  std::vector<T> h(n);
  uint64_t x = seed;
  for (int64_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    float v = specials ? float(int(x % 64) - 32) * 0.25f : float(int(x % 2001) - 1000) * 1e-3f;
    if (specials && x % 100003 == 0) v = NAN;
    if (specials && x % 100019 == 0) v = -INFINITY;
    h[i] = T(v);
  }
  T* d;
  CHECK(cudaMalloc(&d, n * sizeof(T)));
  CHECK(cudaMemcpy(d, h.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

static void row(const char* name, const char* type, const char* layout, const char* dir, const char* body, float us,
                double bytes, float base_us, bool same) {
  std::printf("| %s | %s | %s | %s | %s | %.1f | %.0f | %.2fx | %s |\n", name, type, layout, dir, body, us,
              bytes / us * 1e-3, base_us / us, same ? "same" : "**DIFFERENT**");
}

// One pool: N x C planes of H x W, a K x K window at stride 2, padding P.
template <typename T, int K, int P>
static void run_case(const char* name, const char* type, int N, int C, int H, int W) {
  PoolGeometry pg;
  pg.batch = N;
  pg.channels = C;
  const int OH = (H + 2 * P - K) / 2 + 1, OW = (W + 2 * P - K) / 2 + 1;
  const int64_t sizes_in[3] = {1, H, W}, sizes_out[3] = {1, OH, OW}, kernel[3] = {1, K, K}, stride[3] = {1, 2, 2},
                pad[3] = {0, P, P};
  for (int d = 0; d < 3; ++d) {
    pg.in_size[d] = sizes_in[d];
    pg.out_size[d] = sizes_out[d];
    pg.kernel[d] = kernel[d];
    pg.stride[d] = stride[d];
    pg.pad[d] = pad[d];
  }
  const int64_t in_n = int64_t(N) * C * H * W, out_n = int64_t(N) * C * OH * OW;
  T* in = device_values<T>(in_n, 88172645463325252ull, true);
  T* grad = device_values<T>(out_n, 1234567ull, false);
  T *out, *gi;
  int64_t* idx;
  CHECK(cudaMalloc(&out, out_n * sizeof(T)));
  CHECK(cudaMalloc(&gi, in_n * sizeof(T)));
  CHECK(cudaMalloc(&idx, out_n * 8));
  const double in_b = in_n * sizeof(T), out_b = out_n * sizeof(T), idx_b = out_n * 8.0;

  // ---- planar forward: one output per item against a row's group per item.
  for (int with_idx = 0; with_idx < 2; ++with_idx) {
    cuda_logic::ForwardArgs<T, int> a{in, out, with_idx ? idx : nullptr,
                                      cuda_logic::make_kernel_geometry<int>(pg, 1, false)};
    float base;
    if (with_idx)
      base = time_body<cuda_logic::ForwardNchw<T, float, int, true, K>>(a, out_n);
    else
      base = time_body<cuda_logic::ForwardNchw<T, float, int, false, K>>(a, out_n);
    const auto ref_out = bytes_of(out, out_n);
    const auto ref_idx = with_idx ? bytes_of(idx, out_n) : std::vector<unsigned char>{};
    const char* dir = with_idx ? "fwd_idx" : "fwd";
    const double bytes = in_b + out_b + (with_idx ? idx_b : 0);
    row(name, type, "NCHW", dir, "ForwardNchw", base, bytes, base, true);
    CHECK(cudaMemset(out, 0xff, out_n * sizeof(T)));
    CHECK(cudaMemset(idx, 0xff, out_n * 8));
    cuda_logic::set_row_vector_flags(a.g, sizeof(T), in, out, with_idx ? idx : nullptr);
    const int items = int(out_n / OW * a.g.row_groups);
    float us;
    if (with_idx)
      us = time_body<cuda_logic::ForwardNchwRows<T, float, int, true, K, P>>(a, items);
    else
      us = time_body<cuda_logic::ForwardNchwRows<T, float, int, false, K, P>>(a, items);
    const bool same = bytes_of(out, out_n) == ref_out && (!with_idx || bytes_of(idx, out_n) == ref_idx);
    row(name, type, "NCHW", dir, a.g.row_vector_loads ? "ForwardNchwRows (vector)" : "ForwardNchwRows", us, bytes,
        base, same);
  }

  // ---- backward on those indices (overlapping windows only: VGG's take the bands body): generic band gather
  // against the unrolled one.
  if (K == 3) {
    cuda_logic::BackwardArgs<T, int> a{grad, idx, gi, cuda_logic::make_kernel_geometry<int>(pg, 1, false)};
    const int items = int(int64_t(N) * C * a.g.h.blocks * a.g.w.blocks);
    const double bytes = out_b + idx_b + in_b;
    const float base = time_body<cuda_logic::BackwardBandGather<T, float, int, false, 1, 2, 1>>(a, items);
    const auto ref = bytes_of(gi, in_n);
    row(name, type, "NCHW", "bwd", "BackwardBandGather", base, bytes, base, true);
    CHECK(cudaMemset(gi, 0xff, in_n * sizeof(T)));
    const float us = time_body<cuda_logic::BackwardBandGatherNarrow<T, float, int, false, 1>>(a, items);
    row(name, type, "NCHW", "bwd", "BackwardBandGatherNarrow", us, bytes, base, bytes_of(gi, in_n) == ref);
  }
  // ---- the same backward channels last (the planar buffers reread as N, H, W, C: only the speed matters,
  // and the indices are still in range since both layouts index the same plane size).
  if (K == 3) {
    constexpr int V = 16 / sizeof(T);
    cuda_logic::BackwardArgs<T, int> a{grad, idx, gi, cuda_logic::make_kernel_geometry<int>(pg, V, true)};
    const int items = int(int64_t(N) * a.g.h.blocks * a.g.w.blocks * (C / V));
    const double bytes = out_b + idx_b + in_b;
    const float base = time_body<cuda_logic::BackwardBandGather<T, float, int, true, V, 2, 1>>(a, items);
    const auto ref = bytes_of(gi, in_n);
    row(name, type, "NHWC", "bwd", "BackwardBandGather", base, bytes, base, true);
    CHECK(cudaMemset(gi, 0xff, in_n * sizeof(T)));
    const float us = time_body<cuda_logic::BackwardBandGatherNarrow<T, float, int, true, V>>(a, items);
    row(name, type, "NHWC", "bwd", "BackwardBandGatherNarrow", us, bytes, base, bytes_of(gi, in_n) == ref);
  }
  CHECK(cudaFree(in));
  CHECK(cudaFree(grad));
  CHECK(cudaFree(out));
  CHECK(cudaFree(gi));
  CHECK(cudaFree(idx));
}

// Global pooling's backward (adaptive output 1: one 7x7 window a plane, described as a fixed window of
// stride 7): today's bands body (an item per output writes its whole band: in NCHW a warp's 32 stores of
// one step land in 32 planes) against the per-input gather (an item per input, coalesced along W).
template <typename T>
static void run_global_backward(const char* name, const char* type, int N, int C, int H, int W) {
  PoolGeometry pg;
  pg.batch = N;
  pg.channels = C;
  pg.in_size[1] = H;
  pg.in_size[2] = W;
  pg.kernel[1] = pg.stride[1] = H;
  pg.kernel[2] = pg.stride[2] = W;
  const int64_t in_n = int64_t(N) * C * H * W, out_n = int64_t(N) * C;
  T* grad = device_values<T>(out_n, 1234567ull, false);
  std::vector<int64_t> h_idx(out_n);
  for (int64_t i = 0; i < out_n; ++i) h_idx[i] = (i * 7919) % (H * W);
  int64_t* idx;
  T* gi;
  CHECK(cudaMalloc(&idx, out_n * 8));
  CHECK(cudaMalloc(&gi, in_n * sizeof(T)));
  CHECK(cudaMemcpy(idx, h_idx.data(), out_n * 8, cudaMemcpyHostToDevice));
  cuda_logic::BackwardArgs<T, int> a{grad, idx, gi, cuda_logic::make_kernel_geometry<int>(pg, 1, false)};
  const double bytes = out_n * (sizeof(T) + 8.0) + in_n * sizeof(T);
  const float base = time_body<cuda_logic::BackwardBands<T, float, int, false, 1>>(a, int(out_n));
  const auto ref = bytes_of(gi, in_n);
  row(name, type, "NCHW", "bwd", "BackwardBands", base, bytes, base, true);
  CHECK(cudaMemset(gi, 0xff, in_n * sizeof(T)));
  const float us = time_body<cuda_logic::BackwardGather<T, float, int, false, 1>>(a, int(in_n));
  row(name, type, "NCHW", "bwd", "BackwardGather", us, bytes, base, bytes_of(gi, in_n) == ref);
  CHECK(cudaFree(grad));
  CHECK(cudaFree(idx));
  CHECK(cudaFree(gi));
}

int main() {
  cudaDeviceProp p;
  CHECK(cudaGetDeviceProperties(&p, 0));
  std::printf("%s, %d SMs\n\n", p.name, p.multiProcessorCount);
  std::printf("| case | type | layout | dir | body | us | GB/s moved | speed-up | result |\n"
              "|---|---|---|---|---|---:|---:|---:|---|\n");
  run_case<float, 3, 1>("stem k3s2p1 32x64x112x112", "f32", 32, 64, 112, 112);
  run_case<__nv_bfloat16, 3, 1>("stem k3s2p1 32x64x112x112", "bf16", 32, 64, 112, 112);
  run_case<float, 2, 0>("vgg k2s2 32x128x112x112", "f32", 32, 128, 112, 112);
  run_case<__nv_bfloat16, 2, 0>("vgg k2s2 32x128x112x112", "bf16", 32, 128, 112, 112);
  run_case<float, 3, 0>("googlenet k3s2 32x192x56x56", "f32", 32, 192, 56, 56);
  run_global_backward<float>("global 32x2048x7x7", "f32", 32, 2048, 7, 7);
  return 0;
}
