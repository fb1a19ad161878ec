// The CUDA max_unpool{2,3}d op and its backward, written once over an
// executor (max_pool_launcher.h describes executors): checks (pool_shape.h),
// allocation, kernel bodies, index width and grid. max_unpool.cu registers
// them over the CUDA executor, host_executor.cpp runs them over the host
// executor, so CI runs every host-side decision and every body.
//
// Duplicate indices: the last input in raster order within the plane wins,
// as on the CPU. A plain parallel scatter would let the threads race, so the
// forward takes two passes: `claim` writes, per output element, the largest
// input position naming it (an integer atomicMax, whose result does not
// depend on the order threads run in), then `fill` writes every output
// element from its winner, or 0. Cost over a plain scatter: a position buffer
// of the output's size (int32 unless a plane holds 2^31 inputs), its fill
// with -1, and one more read of it; in exchange no separate zeroing pass.
//
// Bad indices: PyTorch CUDA asserts on the device, which kills the context.
// Here the bodies never touch memory outside the tensors: an index outside
// the plane is recorded (the largest such position, by atomicMax, so the
// error names the last in (N, C, spatial) order, as PyTorch's CPU kernel on
// one thread) and skipped.
// After the kernels the host reads that one integer to raise PyTorch's CPU
// error: this costs a device-to-host sync per call (the price of a clean
// error instead of a dead context). The backward records the smallest
// position (atomicMin) and raises PyTorch's gather error for it.
//
// The backward is a gather, one thread per grad_input element, no atomics.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

#include "../pool_geometry.h"
#include "../pool_shape.h"
#include "../unpool_plane.h"
#include "launch.h"
#include "max_pool_launcher.h"  // launch_items: the grid and index width of every launch

namespace fastpool {
namespace cuda_unpool {

// Atomics on the device; the host executor runs one thread at a time, where
// a plain read-compare-write is the same operation.
template <typename T>
FASTPOOL_HOST_DEVICE inline void atomic_max(T* address, T value) {
#if defined(__CUDA_ARCH__)
  atomicMax(address, value);
#else
  if (value > *address) *address = value;
#endif
}

FASTPOOL_HOST_DEVICE inline void atomic_min(long long* address, long long value) {
#if defined(__CUDA_ARCH__)
  atomicMin(address, value);
#else
  if (value < *address) *address = value;
#endif
}

// No bad position recorded: the forward keeps the largest, the backward the smallest.
constexpr long long kNoLastBad = -1;
constexpr long long kNoFirstBad = std::numeric_limits<long long>::max();

// (n, c, p) of item i of a tensor in a PlaneView's storage order.
template <typename index_t>
struct Decoder {
  cuda_launch::Divider<index_t> by_plane, by_channels;
  bool channels_last;
  FASTPOOL_HOST_DEVICE void decode(index_t i, index_t* n, index_t* c, index_t* p) const {
    if (channels_last) {  // i = (n * P + p) * C + c
      const index_t np = by_channels.div(i);
      *c = i - np * static_cast<index_t>(by_channels.divisor);
      *n = by_plane.div(np);
      *p = np - *n * static_cast<index_t>(by_plane.divisor);
    } else {  // i = (n * C + c) * P + p
      const index_t nc = by_plane.div(i);
      *p = i - nc * static_cast<index_t>(by_plane.divisor);
      *n = by_channels.div(nc);
      *c = nc - *n * static_cast<index_t>(by_channels.divisor);
    }
  }
};

template <typename index_t>
Decoder<index_t> decoder_for(const PlaneView& v) {
  return {cuda_launch::Divider<index_t>(std::max<int64_t>(v.plane, 1)),
          cuda_launch::Divider<index_t>(std::max<int64_t>(v.channels, 1)), v.c_stride == 1 && v.channels > 1};
}

template <typename index_t>
FASTPOOL_HOST_DEVICE inline index_t at(const PlaneView& v, index_t n, index_t c, index_t p) {
  return n * static_cast<index_t>(v.n_stride) + c * static_cast<index_t>(v.c_stride) +
         p * static_cast<index_t>(v.p_stride);
}

// Pass 1 of the forward, one item per index (in the indices' storage order).
template <typename pos_t, typename index_t>
struct ClaimArgs {
  const int64_t* indices;
  PlaneView xv;  // the indices'
  Decoder<index_t> x_decoder;
  pos_t* winners;  // the output's shape and layout
  PlaneView wv;
  long long* last_bad;
};

template <typename pos_t, typename index_t>
struct Claim {
  using Args = ClaimArgs<pos_t, index_t>;
  static constexpr const char* kName = "unpool_claim";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    index_t n, c, p;
    a.x_decoder.decode(i, &n, &c, &p);
    const int64_t target = a.indices[i];
    if (target < 0 || target >= a.wv.plane) {
      atomic_max(a.last_bad, static_cast<long long>((static_cast<int64_t>(n) * a.xv.channels + c) * a.xv.plane + p));
      return;
    }
    atomic_max(a.winners + at(a.wv, n, c, static_cast<index_t>(target)), static_cast<pos_t>(p));
  }
};

// Pass 2 of the forward, one item per output element (in its storage order).
template <typename word_t, typename pos_t, typename index_t>
struct FillArgs {
  const word_t* input;
  PlaneView iv;
  const pos_t* winners;  // indexed like the output
  word_t* output;
  Decoder<index_t> o_decoder;
};

template <typename word_t, typename pos_t, typename index_t>
struct Fill {
  using Args = FillArgs<word_t, pos_t, index_t>;
  static constexpr const char* kName = "unpool_fill";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    const pos_t winner = a.winners[i];
    if (winner < 0) {
      a.output[i] = word_t{0};
      return;
    }
    index_t n, c, p;
    a.o_decoder.decode(i, &n, &c, &p);
    a.output[i] = a.input[at(a.iv, n, c, static_cast<index_t>(winner))];
  }
};

// The backward, one item per grad_input element (planar).
template <typename word_t, typename index_t>
struct GatherArgs {
  const word_t* grad_output;
  PlaneView gv;
  const int64_t* indices;
  PlaneView xv;
  word_t* grad_input;
  Decoder<index_t> planar;
  long long* first_bad;
};

template <typename word_t, typename index_t>
struct Gather {
  using Args = GatherArgs<word_t, index_t>;
  static constexpr const char* kName = "unpool_gather";
  static constexpr int kLanes = 1;
  FASTPOOL_HOST_DEVICE static void run(const Args& a, index_t i) {
    index_t n, c, p;
    a.planar.decode(i, &n, &c, &p);
    const int64_t source = a.indices[at(a.xv, n, c, p)];
    if (source < 0 || source >= a.gv.plane) {
      atomic_min(a.first_bad, static_cast<long long>(i));
      a.grad_input[i] = word_t{0};
      return;
    }
    a.grad_input[i] = a.grad_output[at(a.gv, n, c, static_cast<index_t>(source))];
  }
};

// ---- host side: shared by the CUDA build and the host executor ----

// PyTorch CUDA's dispatch names (its forward takes every integer and
// floating type but bool).
inline const char* forward_dispatch_name(int dims) {
  return dims == 3 ? "max_unpooling3d_forward_kernel" : "max_unpooling2d_forward_kernel";
}

// Calls f with a word type of the dtype's size (values are copied, never
// computed on), or raises PyTorch's NotImplementedError for `op`.
template <typename F>
void with_word_type(const char* op, at::ScalarType dtype, bool integers, F&& f) {
  switch (dtype) {
    case at::kByte:
    case at::kChar:
      if (integers) return f(uint8_t{});
      break;
    case at::kShort:
      if (integers) return f(uint16_t{});
      break;
    case at::kInt:
      if (integers) return f(uint32_t{});
      break;
    case at::kLong:
      if (integers) return f(uint64_t{});
      break;
    case at::kHalf:
    case at::kBFloat16: return f(uint16_t{});
    case at::kFloat: return f(uint32_t{});
    case at::kDouble: return f(uint64_t{});
    default: break;
  }
  TORCH_CHECK_NOT_IMPLEMENTED(false, "\"", op, "\" not implemented for '", dtype, "'");
}

// The sync: the index at the last bad position the kernels recorded, if any.
inline std::optional<int64_t> bad_index(const at::Tensor& bad, long long none, const at::Tensor& indices,
                                        const PlaneView& xv) {
  const int64_t pos = bad.item<int64_t>();
  if (pos == none) return std::nullopt;
  const int64_t p = pos % xv.plane, nc = pos / xv.plane;
  const int64_t n = nc / xv.channels, c = nc % xv.channels;
  const int64_t element = n * xv.n_stride + c * xv.c_stride + p * xv.p_stride;
  return indices.as_strided({1}, {1}, indices.storage_offset() + element).item<int64_t>();
}

template <class Exec>
at::Tensor max_unpool(const Exec& exec, int dims, const at::Tensor& self, const at::Tensor& indices,
                      at::IntArrayRef output_size, at::IntArrayRef stride, at::IntArrayRef padding) {
  const auto shape = unpool_output_shape<int64_t>(dims, self, indices, output_size, stride, padding);
  // PyTorch CUDA writes a contiguous output whatever the input's layout.
  at::Tensor output = at::empty(shape, self.options());
  if (output.numel() == 0) return output;  // like PyTorch: before the dtype check
  with_word_type(forward_dispatch_name(dims), self.scalar_type(), true, [&](auto word) {
    using word_t = decltype(word);
    const auto in_view = plane_view(self, dims);
    const at::Tensor& in = in_view.first;
    const PlaneView& iv = in_view.second;
    const auto idx_view = plane_view(indices, dims);
    const at::Tensor& idx = idx_view.first;
    const PlaneView& xv = idx_view.second;
    const auto out_view = plane_view(output, dims);
    const at::Tensor& out = out_view.first;
    const PlaneView& ov = out_view.second;
    const at::Tensor last_bad = at::full({1}, kNoLastBad, indices.options());
    const int64_t max_offset = std::max<int64_t>({in.numel(), idx.numel(), out.numel()}) + 1;
    const auto run = [&](auto pos_zero) {
      using pos_t = decltype(pos_zero);
      const at::Tensor winners =
          at::full(shape, -1, output.options().dtype(sizeof(pos_t) == 4 ? at::kInt : at::kLong));
      const auto claim = [&](const cuda_launch::Grid& grid, auto index_zero, auto n) {
        using index_t = decltype(index_zero);
        const ClaimArgs<pos_t, index_t> a{idx.template const_data_ptr<int64_t>(), xv, decoder_for<index_t>(xv),
                                          static_cast<pos_t*>(winners.data_ptr()), ov,
                                          reinterpret_cast<long long*>(last_bad.data_ptr())};
        exec.template launch<Claim<pos_t, index_t>>(grid, a, n);
      };
      const auto fill = [&](const cuda_launch::Grid& grid, auto index_zero, auto n) {
        using index_t = decltype(index_zero);
        const FillArgs<word_t, pos_t, index_t> a{static_cast<const word_t*>(in.const_data_ptr()), iv,
                                                 static_cast<const pos_t*>(winners.const_data_ptr()),
                                                 static_cast<word_t*>(out.mutable_data_ptr()),
                                                 decoder_for<index_t>(ov)};
        exec.template launch<Fill<word_t, pos_t, index_t>>(grid, a, n);
      };
      cuda_impl::launch_items(exec, idx.numel(), max_offset, claim);
      cuda_impl::launch_items(exec, out.numel(), max_offset, fill);
    };
    // Positions as int or long long: the types CUDA's atomicMax takes.
    if (iv.plane <= std::numeric_limits<int32_t>::max()) run(int{});
    else run(static_cast<long long>(0));
    if (const auto index = bad_index(last_bad, kNoLastBad, idx, xv)) throw_invalid_unpool_index(*index, output_size);
  });
  return output;
}

template <class Exec>
at::Tensor max_unpool_backward(const Exec& exec, int dims, const at::Tensor& grad_output, const at::Tensor& indices) {
  check_unpool_backward<int64_t>(dims, grad_output, indices);
  at::Tensor grad_input = at::empty(indices.sizes(), grad_output.options());
  if (grad_input.numel() == 0) return grad_input;
  const std::string op = "max_unpool" + std::to_string(dims) + "d_backward";
  with_word_type(op.c_str(), grad_output.scalar_type(), false, [&](auto word) {
    using word_t = decltype(word);
    const auto go_view = plane_view(grad_output, dims);
    const at::Tensor& go = go_view.first;
    const PlaneView& gv = go_view.second;
    const auto idx_view = plane_view(indices, dims);
    const at::Tensor& idx = idx_view.first;
    const PlaneView& xv = idx_view.second;
    const auto gi_view = plane_view(grad_input, dims);
    const at::Tensor& gi = gi_view.first;
    const PlaneView& planar = gi_view.second;
    const at::Tensor first_bad = at::full({1}, kNoFirstBad, indices.options());
    const int64_t max_offset = std::max<int64_t>({go.numel(), idx.numel(), gi.numel()}) + 1;
    cuda_impl::launch_items(exec, gi.numel(), max_offset, [&](const cuda_launch::Grid& grid, auto index_zero, auto n) {
      using index_t = decltype(index_zero);
      const GatherArgs<word_t, index_t> a{static_cast<const word_t*>(go.const_data_ptr()), gv,
                                          idx.template const_data_ptr<int64_t>(), xv,
                                          static_cast<word_t*>(gi.mutable_data_ptr()), decoder_for<index_t>(planar),
                                          reinterpret_cast<long long*>(first_bad.data_ptr())};
      exec.template launch<Gather<word_t, index_t>>(grid, a, n);
    });
    // Positions count in grad_input, planar: the same (N, C, spatial) order bad_index decodes.
    // The first, as PyTorch's gather names it.
    if (const auto index = bad_index(first_bad, kNoFirstBad, idx, xv))
      throw_invalid_unpool_gradient_index(*index, indices.dim() - dims, gv.plane);
  });
  return grad_input;
}

}  // namespace cuda_unpool
}  // namespace fastpool
