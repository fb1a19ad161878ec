// The CUDA max_pool{1,2,3}d and adaptive_max_pool{1,2,3}d ops, written once
// over an executor, the number of spatial dims and the kind of window (fixed
// or adaptive: windows as data, the same jobs and bodies): argument checks,
// allocation, choice of kernel body, index width, vector width and grid.
// max_pool.cu registers them over the CUDA executor (cuda_executor.cuh: a
// grid-stride kernel launch on the current stream; the per-type launches are
// compiled in max_pool_<type>.cu); host_executor.cpp runs them over the host
// executor (the same grid emulated block by block, thread by thread, step by
// step), so CI runs every host-side decision the GPU build makes and every
// kernel body.
//
// An executor provides:
//   cuda_launch::DeviceLimits limits() const;
//   bool force_index64() const;                      // tests only; false on the GPU
//   template <class Body, class index_t>
//   void launch(const cuda_launch::Grid&, const typename Body::Args&, index_t n) const;
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <tuple>
#include <type_traits>
#include <vector>

#include "../pool_shape.h"
#include "launch.h"
#include "max_pool_device.cuh"

namespace fastpool {
namespace cuda_impl {

// PyTorch CUDA's names in its "... not implemented for 'Bool'" errors. Its
// max_pool1d runs the 2-d kernels, whose forward and backward share a name;
// max_pool3d's differ. PyTorch CUDA takes float32/64, float16 and bfloat16;
// fastpool's forward also takes the integer types (as PyTorch's CPU ops do;
// pytorch/pytorch#107412), its backward does not (as PyTorch).
constexpr const char* kDispatchName2d = "max_pool2d_with_indices_out_cuda_frame";
constexpr const char* kForwardDispatchName3d = "max_pool3d_with_indices_out_frame";
constexpr const char* kBackwardDispatchName3d = "max_pool3d_with_indices_backward_out_frame";
// PyTorch CUDA's adaptive max pooling (AdaptiveMaxPooling{2,3}d.cu) takes the
// floating types only, forward and backward; adaptive_max_pool1d runs the 2-d op.
constexpr const char* kAdaptiveForwardName2d = "adaptive_max_pool2d_cuda";
constexpr const char* kAdaptiveBackwardName2d = "adaptive_max_pool2d_backward_cuda";
constexpr const char* kAdaptiveForwardName3d = "adaptive_max_pool3d_cuda";
constexpr const char* kAdaptiveBackwardName3d = "adaptive_max_pool3d_backward_cuda";

// Calls f(scalar_t*{}) for the forward's element types (floating and integer
// for fixed windows, floating for adaptive ones), or raises PyTorch's
// NotImplementedError under the op's dispatch name (which AT_DISPATCH wants as
// a constant).
template <typename F>
void dispatch_forward_types(int dims, WindowKind windows, at::ScalarType type, F&& f) {
  if (windows == WindowKind::adaptive) {
    if (dims == 3) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, kAdaptiveForwardName3d,
                                      [&] { f(static_cast<scalar_t*>(nullptr)); });
    } else {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, kAdaptiveForwardName2d,
                                      [&] { f(static_cast<scalar_t*>(nullptr)); });
    }
  } else if (dims == 3) {
    AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, type, kForwardDispatchName3d,
                               [&] { f(static_cast<scalar_t*>(nullptr)); });
  } else {
    AT_DISPATCH_ALL_TYPES_AND2(at::kHalf, at::kBFloat16, type, kDispatchName2d,
                               [&] { f(static_cast<scalar_t*>(nullptr)); });
  }
}

// The same for the backward's element types: floating only.
template <typename F>
void dispatch_backward_types(int dims, WindowKind windows, at::ScalarType type, F&& f) {
  if (windows == WindowKind::adaptive) {
    if (dims == 3) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, kAdaptiveBackwardName3d,
                                      [&] { f(static_cast<scalar_t*>(nullptr)); });
    } else {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, kAdaptiveBackwardName2d,
                                      [&] { f(static_cast<scalar_t*>(nullptr)); });
    }
  } else if (dims == 3) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, kBackwardDispatchName3d,
                                    [&] { f(static_cast<scalar_t*>(nullptr)); });
  } else {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, kDispatchName2d,
                                    [&] { f(static_cast<scalar_t*>(nullptr)); });
  }
}

// The accumulation type of the kernels: float for float and the half types,
// the element type for double and the integers (exact comparisons).
template <typename scalar_t>
using acc_t = std::conditional_t<std::is_same_v<scalar_t, double> || std::is_integral_v<scalar_t>, scalar_t, float>;

// PyTorch CUDA runs its 2-d kernels for max_pool1d and max_pool2d; their
// channels-last variants start the forward index at 0 and copy a lone
// gradient (max_pool_device.cuh). Integers have no PyTorch CUDA kernel and
// follow PyTorch's CPU ops (first tap). Its adaptive kernels have no
// channels-last variant (they compute on a contiguous copy): no quirk.
template <typename scalar_t>
bool torch_2d_channels_last(int dims, WindowKind windows, bool nhwc) {
  return nhwc && dims < 3 && windows == WindowKind::fixed && !std::is_integral_v<scalar_t>;
}

// A validated call with its outputs allocated and its inputs in the layout the
// kernels read. Prepared by max_pool_jobs.cpp (compiled once, for both builds).
struct ForwardJob {
  int dims = 2;  // spatial dims of the op (1, 2 or 3)
  WindowKind windows = WindowKind::fixed;
  PoolGeometry g;
  bool nhwc = false;
  int lanes = 1;           // NHWC channels per vector access (1 = scalar path)
  int64_t max_offset = 0;  // largest element offset a kernel forms (index width)
  at::Tensor input;        // contiguous in the layout the kernel reads; undefined if the output is empty
  at::Tensor output, indices;
};

struct BackwardJob {
  int dims = 2;
  WindowKind windows = WindowKind::fixed;
  PoolGeometry g;
  bool nhwc = false;
  int lanes = 1;
  int64_t max_offset = 0;
  at::Tensor grad_output, indices;  // contiguous in the input's layout
  at::Tensor grad_input;
};

// What an op's own checks decide before a job is prepared: its spatial dims
// and windows, the output's shape and layout, the geometry. The plan_*
// functions validate the arguments as PyTorch does (errors named after the
// op); prepare_* are shared by every kind of window.
struct ForwardPlan {
  int dims = 2;
  WindowKind windows = WindowKind::fixed;
  std::vector<int64_t> out_shape;
  PoolLayout layout = PoolLayout::planar;
  PoolGeometry g;
};
struct BackwardPlan {
  int dims = 2;
  WindowKind windows = WindowKind::fixed;
  PoolLayout layout = PoolLayout::planar;
  PoolGeometry g;
};

// max_pool{dims}d (checked as torch checks `call`) and its backward.
ForwardPlan plan_window_forward(int dims, const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                PoolCall call = PoolCall::with_indices);
BackwardPlan plan_window_backward(int dims, const at::Tensor& grad_output, const at::Tensor& self,
                                  at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                  at::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices);
// adaptive_max_pool{dims}d and its backward (output_size: one entry per spatial dim).
ForwardPlan plan_adaptive_forward(int dims, const at::Tensor& self, at::IntArrayRef output_size);
BackwardPlan plan_adaptive_backward(int dims, const at::Tensor& grad_output, const at::Tensor& self,
                                    const at::Tensor& indices);

// Allocates the outputs in the plan's layout, brings the inputs into it and
// picks the index-width bound and NHWC vector width.
ForwardJob prepare_forward(const ForwardPlan& plan, const at::Tensor& self, bool with_indices);
BackwardJob prepare_backward(const BackwardPlan& plan, const at::Tensor& grad_output, const at::Tensor& self,
                             const at::Tensor& indices);

// Calls f with std::integral_constant<int, V> for the NHWC vector width the
// job chose (16 bytes, 8 bytes, or scalar).
template <typename scalar_t, typename F>
void with_lanes(int lanes, F&& f) {
  constexpr int k8 = 8 / sizeof(scalar_t), k16 = 16 / sizeof(scalar_t);
  if (lanes == k16) {
    f(std::integral_constant<int, k16>{});
  } else if (k8 > 1 && lanes == k8) {
    f(std::integral_constant<int, (k8 > 1 ? k8 : 1)>{});
  } else {
    TORCH_CHECK(lanes == 1, "unexpected vector width ", lanes);
    f(std::integral_constant<int, 1>{});
  }
}

// Calls f with std::integral_constant<int, K>: K = 3 or 2 for the square
// (h, w) windows of most networks (their NCHW forward unrolls the window
// plane; the depth taps, if any, stay a loop), else 0 (also for adaptive
// (h, w) windows, whose size varies).
template <typename F>
void with_fixed_window(const PoolGeometry& g, F&& f) {
  const bool fixed_plane = !g.adaptive[1] && !g.adaptive[2];
  const int64_t k = fixed_plane && g.kernel[1] == g.kernel[2] ? g.kernel[1] : 0;
  if (k == 3) {
    f(std::integral_constant<int, 3>{});
  } else if (k == 2) {
    f(std::integral_constant<int, 2>{});
  } else {
    f(std::integral_constant<int, 0>{});
  }
}

inline bool any_adaptive(const PoolGeometry& g) {
  return g.adaptive[0] || g.adaptive[1] || g.adaptive[2];
}

// Windows that do not overlap (span <= stride in every dim, depth included)
// let the backward write each output's band instead of gathering per input.
// Adaptive windows over sizes that do not divide always overlap (output 0's
// ends at ceil(in/out), output 1's starts at floor(in/out)); those that do
// divide are described as fixed windows (pool_geometry.h).
inline bool windows_overlap(const PoolGeometry& g) {
  if (any_adaptive(g)) return true;
  for (int d = 0; d < kMaxSpatialDims; ++d)
    if ((g.kernel[d] - 1) * g.dilation[d] + 1 > g.stride[d]) return true;
  return false;
}

// Chooses the grid and index width for `work_items` items and calls
// launch(grid, index_t{}, n): every launch of the ops goes through here.
template <class Exec, typename Launch>
void launch_items(const Exec& exec, int64_t work_items, int64_t max_offset, Launch&& launch) {
  const cuda_launch::Grid grid = cuda_launch::grid_for(exec.limits(), work_items);
  const bool use32 = !exec.force_index64() && cuda_launch::fits_int32(max_offset, work_items, grid);
  cuda_launch::with_index_type(use32, [&](auto index_zero) {
    using index_t = decltype(index_zero);
    launch(grid, index_zero, static_cast<index_t>(work_items));
  });
}

// Calls f with std::integral_constant<int, K>, std::integral_constant<int, P>
// for the w axis' kernel and padding of a ForwardNchwRows job.
template <typename F>
void with_row_window(const PoolGeometry& g, F&& f) {
  if (g.kernel[2] == 2) {
    f(std::integral_constant<int, 2>{}, std::integral_constant<int, 0>{});
  } else if (g.pad[2] == 1) {
    f(std::integral_constant<int, 3>{}, std::integral_constant<int, 1>{});
  } else {
    f(std::integral_constant<int, 3>{}, std::integral_constant<int, 0>{});
  }
}

// The launches for one element type. A template of its own so that the CUDA
// build can compile each element type in a translation unit of its own
// (max_pool_<type>.cu), in parallel.
template <typename scalar_t, class Exec>
void forward_typed(const Exec& exec, const ForwardJob& job, bool with_indices) {
  using acc = acc_t<scalar_t>;
  // Planar floating jobs with the common windows along w: a group of outputs
  // of a row per item (integers keep one output per item: no PyTorch CUDA
  // kernel to keep pace with, fewer kernels to compile).
  const bool rows = !job.nhwc && !std::is_integral_v<scalar_t> && cuda_logic::nchw_rows_apply(job.g);
  const int64_t items = rows ? job.output.numel() / job.g.out_size[2] *
                                   ((job.g.out_size[2] + cuda_logic::kRowOutputs - 1) / cuda_logic::kRowOutputs)
                             : job.output.numel() / job.lanes;
  launch_items(exec, items, job.max_offset, [&](const cuda_launch::Grid& grid, auto index_zero, auto n) {
    using index_t = decltype(index_zero);
    int64_t* indices = with_indices ? job.indices.mutable_data_ptr<int64_t>() : nullptr;
    cuda_logic::Geometry<index_t> geometry = cuda_logic::make_kernel_geometry<index_t>(
        job.g, job.lanes, torch_2d_channels_last<scalar_t>(job.dims, job.windows, job.nhwc));
    if (rows)
      cuda_logic::set_row_vector_flags(geometry, sizeof(scalar_t), job.input.const_data_ptr(),
                                       job.output.const_data_ptr(), indices);
    const cuda_logic::ForwardArgs<scalar_t, index_t> a{job.input.const_data_ptr<scalar_t>(),
                                                       job.output.mutable_data_ptr<scalar_t>(), indices, geometry};
    if (rows) {
      if constexpr (!std::is_integral_v<scalar_t>) {
        with_row_window(job.g, [&](auto kernel, auto pad) {
          constexpr int K = decltype(kernel)::value, P = decltype(pad)::value;
          if (with_indices)
            exec.template launch<cuda_logic::ForwardNchwRows<scalar_t, acc, index_t, true, K, P>>(grid, a, n);
          else
            exec.template launch<cuda_logic::ForwardNchwRows<scalar_t, acc, index_t, false, K, P>>(grid, a, n);
        });
      }
      return;
    }
    if (!job.nhwc) {
      with_fixed_window(job.g, [&](auto fixed) {
        constexpr int K = decltype(fixed)::value;
        if (with_indices)
          exec.template launch<cuda_logic::ForwardNchw<scalar_t, acc, index_t, true, K>>(grid, a, n);
        else
          exec.template launch<cuda_logic::ForwardNchw<scalar_t, acc, index_t, false, K>>(grid, a, n);
      });
      return;
    }
    with_lanes<scalar_t>(job.lanes, [&](auto lanes) {
      constexpr int V = decltype(lanes)::value;
      if (with_indices)
        exec.template launch<cuda_logic::ForwardNhwc<scalar_t, acc, index_t, V, true>>(grid, a, n);
      else
        exec.template launch<cuda_logic::ForwardNhwc<scalar_t, acc, index_t, V, false>>(grid, a, n);
    });
  });
}

template <class Exec>
void run_forward(const Exec& exec, const ForwardJob& job, bool with_indices) {
  if (job.output.numel() == 0) return;  // like PyTorch: before the dtype check
  // Floating types, and uint8, int8, int16, int32, int64 for fixed windows.
  dispatch_forward_types(job.dims, job.windows, job.input.scalar_type(), [&](auto* type_tag) {
    forward_typed<std::remove_pointer_t<decltype(type_tag)>>(exec, job, with_indices);
  });
}

// The backward's algorithm (max_pool_device.cuh): bands where windows do not
// overlap, band gather for overlapping fixed windows of stride 2 in h and w
// and 1 or 2 in depth (bands of at most 1 or 2 x 2 x 2 inputs; its narrow
// form where they overlap by one input along h and w at depth stride 1), else
// (adaptive windows included) the per-input gather.
enum class BackwardKind { gather, bands, band_gather_s2, band_gather_s2_deep, band_gather_narrow };

inline BackwardKind backward_kind(const PoolGeometry& g) {
  if (!windows_overlap(g)) return BackwardKind::bands;
  if (any_adaptive(g)) return BackwardKind::gather;
  if (g.stride[1] == 2 && g.stride[2] == 2) {
    const auto span = [&](int d) { return (g.kernel[d] - 1) * g.dilation[d] + 1; };
    if (g.stride[0] == 1) {  // every 2-d job
      // Windows overlapping by at most one input along h and w: 2 x 2 candidates a block.
      if (span(1) <= 3 && span(2) <= 3) return BackwardKind::band_gather_narrow;
      return BackwardKind::band_gather_s2;
    }
    if (g.stride[0] == 2) return BackwardKind::band_gather_s2_deep;
  }
  return BackwardKind::gather;
}

// The band gather's work items: a block of inputs (the input cut every stride
// along each axis) per plane, or per image and V channels.
inline int64_t band_gather_items(const BackwardJob& job) {
  int64_t out = 1, blocks = 1;
  for (int d = 0; d < kMaxSpatialDims; ++d) {
    out *= job.g.out_size[d];
    blocks *= cuda_logic::input_blocks(job.g, d);
  }
  return job.grad_output.numel() / out * blocks / job.lanes;
}

template <typename scalar_t, class Exec>
void backward_typed(const Exec& exec, const BackwardJob& job) {
  using acc = acc_t<scalar_t>;
  const BackwardKind kind = backward_kind(job.g);
  // Gather: one item per input (per V channels); bands: one per output; band
  // gather: one per block of inputs.
  const int64_t items = kind == BackwardKind::gather ? job.grad_input.numel() / job.lanes
                        : kind == BackwardKind::bands ? job.grad_output.numel() / job.lanes
                                                      : band_gather_items(job);
  launch_items(exec, items, job.max_offset, [&](const cuda_launch::Grid& grid, auto index_zero, auto n) {
    using index_t = decltype(index_zero);
    const cuda_logic::BackwardArgs<scalar_t, index_t> a{
        job.grad_output.const_data_ptr<scalar_t>(), job.indices.const_data_ptr<int64_t>(),
        job.grad_input.mutable_data_ptr<scalar_t>(),
        cuda_logic::make_kernel_geometry<index_t>(
            job.g, job.lanes, torch_2d_channels_last<scalar_t>(job.dims, job.windows, job.nhwc))};
    with_lanes<scalar_t>(job.lanes, [&](auto lanes) {
      constexpr int V = decltype(lanes)::value;
      const auto launch = [&](auto nhwc) {
        constexpr bool kNhwc = decltype(nhwc)::value;
        switch (kind) {
          case BackwardKind::bands:
            exec.template launch<cuda_logic::BackwardBands<scalar_t, acc, index_t, kNhwc, V>>(grid, a, n);
            break;
          case BackwardKind::band_gather_s2:
            exec.template launch<cuda_logic::BackwardBandGather<scalar_t, acc, index_t, kNhwc, V, 2, 1>>(grid, a, n);
            break;
          case BackwardKind::band_gather_narrow:
            exec.template launch<cuda_logic::BackwardBandGatherNarrow<scalar_t, acc, index_t, kNhwc, V>>(grid, a, n);
            break;
          case BackwardKind::band_gather_s2_deep:
            exec.template launch<cuda_logic::BackwardBandGather<scalar_t, acc, index_t, kNhwc, V, 2, 2>>(grid, a, n);
            break;
          case BackwardKind::gather:
            exec.template launch<cuda_logic::BackwardGather<scalar_t, acc, index_t, kNhwc, V>>(grid, a, n);
            break;
        }
      };
      if (job.nhwc) {
        launch(std::true_type{});
      } else {
        if constexpr (V == 1) {
          launch(std::false_type{});
        } else {
          TORCH_CHECK(false, "NCHW jobs take the scalar path, got ", V, " lanes");
        }
      }
    });
  });
}

template <class Exec>
void run_backward(const Exec& exec, const BackwardJob& job) {
  // Like PyTorch, an empty call returns before the dtype check (an empty
  // grad_output with a non-empty input, adaptive output_size 0, was zeroed
  // by prepare_backward).
  if (job.grad_input.numel() == 0 || job.grad_output.numel() == 0) return;
  dispatch_backward_types(job.dims, job.windows, job.grad_input.scalar_type(), [&](auto* type_tag) {
    backward_typed<std::remove_pointer_t<decltype(type_tag)>>(exec, job);
  });
}

// ---- the ops, as registered for CUDA (and run by the host executor) -------
// dims: 1, 2 or 3; one code path for all dims and both kinds of window.

template <class Exec>
std::tuple<at::Tensor, at::Tensor> pool_with_indices(const Exec& exec, const ForwardPlan& plan,
                                                     const at::Tensor& input) {
  const ForwardJob job = prepare_forward(plan, input, true);
  run_forward(exec, job, true);
  return {job.output, job.indices};
}

template <class Exec>
at::Tensor pool_values(const Exec& exec, const ForwardPlan& plan, const at::Tensor& input) {
  const ForwardJob job = prepare_forward(plan, input, false);
  run_forward(exec, job, false);
  return job.output;
}

template <class Exec>
at::Tensor pool_backward(const Exec& exec, const BackwardPlan& plan, const at::Tensor& grad_output,
                         const at::Tensor& input, const at::Tensor& indices) {
  const BackwardJob job = prepare_backward(plan, grad_output, input, indices);
  run_backward(exec, job);
  return job.grad_input;
}

// max_pool{dims}d
template <class Exec>
std::tuple<at::Tensor, at::Tensor> max_pool_with_indices(const Exec& exec, int dims, const at::Tensor& input,
                                                         at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                         at::IntArrayRef padding, at::IntArrayRef dilation,
                                                         bool ceil_mode) {
  return pool_with_indices(exec, plan_window_forward(dims, input, kernel_size, stride, padding, dilation, ceil_mode),
                           input);
}

template <class Exec>
at::Tensor max_pool(const Exec& exec, int dims, const at::Tensor& input, at::IntArrayRef kernel_size,
                    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  return pool_values(exec,
                     plan_window_forward(dims, input, kernel_size, stride, padding, dilation, ceil_mode,
                                         PoolCall::values),
                     input);
}

template <class Exec>
at::Tensor max_pool_with_indices_backward(const Exec& exec, int dims, const at::Tensor& grad_output,
                                          const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                          at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                                          const at::Tensor& indices) {
  return pool_backward(
      exec,
      plan_window_backward(dims, grad_output, input, kernel_size, stride, padding, dilation, ceil_mode, indices),
      grad_output, input, indices);
}

// adaptive_max_pool{dims}d
template <class Exec>
std::tuple<at::Tensor, at::Tensor> adaptive_max_pool_with_indices(const Exec& exec, int dims, const at::Tensor& input,
                                                                  at::IntArrayRef output_size) {
  return pool_with_indices(exec, plan_adaptive_forward(dims, input, output_size), input);
}

template <class Exec>
at::Tensor adaptive_max_pool(const Exec& exec, int dims, const at::Tensor& input, at::IntArrayRef output_size) {
  return pool_values(exec, plan_adaptive_forward(dims, input, output_size), input);
}

template <class Exec>
at::Tensor adaptive_max_pool_backward(const Exec& exec, int dims, const at::Tensor& grad_output,
                                      const at::Tensor& input, const at::Tensor& indices) {
  return pool_backward(exec, plan_adaptive_backward(dims, grad_output, input, indices), grad_output, input, indices);
}

}  // namespace cuda_impl
}  // namespace fastpool
