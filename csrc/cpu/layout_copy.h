// Copies between the planar (NC(D)HW) and channels-last (N(D)HWC) layouts on
// the CPU. torch's own copy between them (`.contiguous()` of a channels-last
// tensor, `copy_` into the other layout) ran at 2-3.5 GB/s here, 10x slower
// than a memcpy of the same bytes; these transpose in blocks of SSE2
// registers, near memcpy's speed (AMD EPYC, 2 threads, 9 MB fp32
// 8x32x94x94: torch 2.6-5.9 ms, this 0.3-0.4 ms). Values are moved, never
// computed on: any dtype of 1, 2, 4 or 8 bytes, bit for bit.
#pragma once
#include <ATen/core/Tensor.h>

#include "../pool_shape.h"

namespace fastpool::cpu {

// `t` ((N,) C, spatial...) stored in `layout`: `t` itself when it already is
// (as contiguous_in), a transposed copy when it is dense in the other layout,
// else contiguous_in's copy.
at::Tensor contiguous_in_cpu(const at::Tensor& t, PoolLayout layout, int spatial_dims);

// A new tensor holding `t`'s values with the strides of `layout`, always a
// copy (the results torch returns: its strides exactly, size-1 dims
// included). `t` dense in the other layout is transposed here.
at::Tensor copy_in_layout_cpu(const at::Tensor& t, PoolLayout layout, int spatial_dims);

// On the calling thread: the rows x cols matrix of `bytes`-byte words at src
// (rows src_stride words apart) transposed into dst (cols rows of `rows`
// words, dst_stride words apart). bytes: 1, 2, 4 or 8.
void transpose_words(const void* src, int64_t src_stride, void* dst, int64_t dst_stride, int64_t rows,
                     int64_t cols, int64_t bytes);

}  // namespace fastpool::cpu
