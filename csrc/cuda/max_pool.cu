// CUDA implementations of the fastpool max-pooling ops. Thin launchers: the
// checks and allocation are max_pool_plan.h (shared with the host tests), the
// per-element work is max_pool_device.cuh; each kernel is a grid-stride loop
// over it, so any batch size fits the grid limits.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>

#include "max_pool_device.cuh"
#include "max_pool_plan.h"

namespace fastpool {
namespace cuda_impl {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t, typename index_t, bool kIndices>
__global__ void __launch_bounds__(kThreads) forward_nchw_kernel(cuda_logic::ForwardArgs<scalar_t> a, index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * kThreads;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += step)
    cuda_logic::forward_nchw<scalar_t, acc_t<scalar_t>, index_t, kIndices>(a, i);
}

template <typename scalar_t, typename index_t, int V, bool kIndices>
__global__ void __launch_bounds__(kThreads) forward_nhwc_kernel(cuda_logic::ForwardArgs<scalar_t> a, index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * kThreads;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += step)
    cuda_logic::forward_nhwc<scalar_t, acc_t<scalar_t>, index_t, V, kIndices>(a, i);
}

template <typename scalar_t, typename index_t>
__global__ void __launch_bounds__(kThreads) backward_nchw_kernel(cuda_logic::BackwardArgs<scalar_t> a, index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * kThreads;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += step)
    cuda_logic::backward_nchw<scalar_t, acc_t<scalar_t>, index_t>(a, i);
}

template <typename scalar_t, typename index_t, int V>
__global__ void __launch_bounds__(kThreads) backward_nhwc_kernel(cuda_logic::BackwardArgs<scalar_t> a, index_t n) {
  const index_t step = static_cast<index_t>(gridDim.x) * kThreads;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += step)
    cuda_logic::backward_nhwc<scalar_t, acc_t<scalar_t>, index_t, V>(a, i);
}

// Enough blocks to fill the GPU several times over; the grid-stride loop
// covers the rest (and keeps grid.x far below its 2^31-1 limit).
int64_t blocks_for(int64_t work_items) {
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t cap = sms * (2048 / kThreads) * 8;
  return std::max<int64_t>(1, std::min<int64_t>((work_items + kThreads - 1) / kThreads, cap));
}

void launch_forward(const ForwardJob& job, bool with_indices) {
  if (job.work_items == 0) return;  // like PyTorch: before the dtype check
  const c10::cuda::CUDAGuard guard(job.input.device());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const int64_t blocks = blocks_for(job.work_items);
  const bool use32 = cuda_logic::fits_int32(job.max_numel, job.work_items, blocks * kThreads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, job.input.scalar_type(), kDispatchName, [&] {
    cuda_logic::ForwardArgs<scalar_t> a{job.input.const_data_ptr<scalar_t>(),
                                        job.output.mutable_data_ptr<scalar_t>(),
                                        with_indices ? job.indices.mutable_data_ptr<int64_t>() : nullptr, job.g};
    with_index_type(use32, [&](auto index_zero) {
      using index_t = decltype(index_zero);
      const index_t n = static_cast<index_t>(job.work_items);
      if (!job.nhwc) {
        if (with_indices)
          forward_nchw_kernel<scalar_t, index_t, true><<<blocks, kThreads, 0, stream>>>(a, n);
        else
          forward_nchw_kernel<scalar_t, index_t, false><<<blocks, kThreads, 0, stream>>>(a, n);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        return;
      }
      with_lanes<scalar_t>(job.lanes, [&](auto lanes) {
        constexpr int V = decltype(lanes)::value;
        if (with_indices)
          forward_nhwc_kernel<scalar_t, index_t, V, true><<<blocks, kThreads, 0, stream>>>(a, n);
        else
          forward_nhwc_kernel<scalar_t, index_t, V, false><<<blocks, kThreads, 0, stream>>>(a, n);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  });
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  ForwardJob job = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, true);
  launch_forward(job, true);
  return {job.output, job.indices};
}

at::Tensor max_pool2d(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  ForwardJob job = prepare_forward(input, kernel_size, stride, padding, dilation, ceil_mode, false);
  launch_forward(job, false);
  return job.output;
}

at::Tensor max_pool2d_with_indices_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                            at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                            at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                            const at::Tensor& indices) {
  BackwardJob job = prepare_backward(grad_output, input, kernel_size, stride, padding, dilation, ceil_mode, indices);
  // Like PyTorch, an empty call returns before the dtype check.
  if (job.work_items == 0) return job.grad_input;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), kDispatchName, [&] {
    const c10::cuda::CUDAGuard guard(input.device());
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    const int64_t blocks = blocks_for(job.work_items);
    const bool use32 = cuda_logic::fits_int32(job.max_numel, job.work_items, blocks * kThreads);
    cuda_logic::BackwardArgs<scalar_t> a{job.grad_output.const_data_ptr<scalar_t>(),
                                         job.indices.const_data_ptr<int64_t>(),
                                         job.grad_input.mutable_data_ptr<scalar_t>(), job.g};
    with_index_type(use32, [&](auto index_zero) {
      using index_t = decltype(index_zero);
      const index_t n = static_cast<index_t>(job.work_items);
      if (!job.nhwc) {
        backward_nchw_kernel<scalar_t, index_t><<<blocks, kThreads, 0, stream>>>(a, n);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        return;
      }
      with_lanes<scalar_t>(job.lanes, [&](auto lanes) {
        constexpr int V = decltype(lanes)::value;
        backward_nhwc_kernel<scalar_t, index_t, V><<<blocks, kThreads, 0, stream>>>(a, n);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  });
  return job.grad_input;
}

}  // namespace
}  // namespace cuda_impl

TORCH_LIBRARY_IMPL(fastpool, CUDA, m) {
  m.impl("max_pool2d_with_indices", &cuda_impl::max_pool2d_with_indices);
  m.impl("max_pool2d", &cuda_impl::max_pool2d);
  m.impl("max_pool2d_with_indices_backward", &cuda_impl::max_pool2d_with_indices_backward);
}

}  // namespace fastpool
