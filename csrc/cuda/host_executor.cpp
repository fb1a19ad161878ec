// The host executor: runs the CUDA ops of max_pool_launcher.h (max_pool and
// adaptive_max_pool, 1-3 spatial dims), max_unpool_launcher.h and
// fractional_launcher.h on CPU tensors,
// each launch emulated as the GPU would run it (every block, every thread,
// every grid-stride step, in the index type the launcher chose), with a given
// card's limits. Exposed to the tests as fastpool._C.cuda_host_*; compiled in
// every build, so CI runs the CUDA ops' host-side decisions and kernel bodies
// against torch without a GPU. Only the kernel launch itself differs from
// max_pool.cu.
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/csrc/utils/pybind.h>  // at::Tensor <-> Python

#include <algorithm>
#include <limits>
#include <vector>

// Every launcher and kernel body below is instantiated here for every element
// type and index width: test code, which -O3 took 104 s of the CPU build to
// compile and -O2 69 s, running the host tests as fast.
#pragma GCC optimize("O2")
#include "../build_info.h"
#include "fractional_launcher.h"
#include "max_pool_launcher.h"
#include "max_unpool_launcher.h"

namespace fastpool {
namespace {

namespace py = pybind11;
using cuda_launch::DeviceLimits;
using cuda_launch::Grid;
using cuda_logic::host_vector_tally;

struct LaunchRecord {
  std::string body;
  int lanes;
  int index_bits;
  int64_t blocks, threads, items, max_steps, visits;
};

class HostExecutor {
 public:
  HostExecutor(DeviceLimits limits, bool force_index64) : limits_(limits), force_index64_(force_index64) {}
  DeviceLimits limits() const { return limits_; }
  bool force_index64() const { return force_index64_; }

  template <class Body, typename index_t>
  void launch(const Grid& grid, const typename Body::Args& args, index_t n) const {
    // What a real launch would reject, or get wrong, is an error here.
    TORCH_CHECK(grid.threads >= 1 && grid.threads <= 1024, "host executor: ", grid.threads, " threads per block");
    TORCH_CHECK(grid.blocks >= 1 && grid.blocks <= limits_.max_grid_x, "host executor: grid of ", grid.blocks,
                " blocks (limit ", limits_.max_grid_x, ")");
    TORCH_CHECK(n >= 0 && static_cast<int64_t>(n) + grid.total_threads() <=
                              static_cast<int64_t>(std::numeric_limits<index_t>::max()),
                "host executor: ", sizeof(index_t) * 8, "-bit index overflows in the grid-stride loop (", n,
                " items, ", grid.total_threads(), " threads)");
    const index_t step = static_cast<index_t>(grid.total_threads());
    int64_t visits = 0, max_steps = 0;
    for (int64_t block = 0; block < grid.blocks; ++block) {
      for (int64_t thread = 0; thread < grid.threads; ++thread) {
        int64_t steps = 0;
        for (index_t i = static_cast<index_t>(block * grid.threads + thread); i < n; i += step, ++steps)
          Body::run(args, i);
        visits += steps;
        max_steps = std::max(max_steps, steps);
      }
    }
    TORCH_CHECK(visits == static_cast<int64_t>(n), "host executor: ", visits, " of ", n, " items run");
    records_.push_back({Body::kName, Body::kLanes, static_cast<int>(sizeof(index_t) * 8), grid.blocks, grid.threads,
                        static_cast<int64_t>(n), max_steps, visits});
  }

  py::dict info() const {
    py::list launches;
    for (const auto& r : records_) {
      py::dict d;
      d["body"] = r.body;
      d["lanes"] = r.lanes;
      d["index_bits"] = r.index_bits;
      d["blocks"] = r.blocks;
      d["threads"] = r.threads;
      d["items"] = r.items;
      d["max_steps"] = r.max_steps;
      launches.append(d);
    }
    py::dict d;
    d["launches"] = launches;
    d["vector_accesses"] = host_vector_tally().accesses;
    d["misaligned"] = host_vector_tally().misaligned;
    return d;
  }

 private:
  DeviceLimits limits_;
  bool force_index64_;
  mutable std::vector<LaunchRecord> records_;
};

// H100 SXM: 132 SMs, 2048 threads each; every card since sm_30: 2^31-1 blocks.
constexpr int64_t kDefaultSms = 132;
constexpr int64_t kThreadsPerSm = 2048;
constexpr int64_t kMaxGridX = 2147483647;

HostExecutor executor(int64_t sm_count, bool force_index64) {
  host_vector_tally() = {};
  return HostExecutor({sm_count, kThreadsPerSm, kMaxGridX}, force_index64);
}

void check_cpu(const at::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu(), "the host executor of the CUDA ops takes CPU tensors");
}

// The op's spatial dims: one per kernel_size entry (max_pool1d, 2d or 3d).
int spatial_dims(const std::vector<int64_t>& kernel_size) {
  const int dims = static_cast<int>(kernel_size.size());
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "the host hooks take one kernel_size entry per spatial dim (1 to ",
              kMaxSpatialDims, "), got ", dims);
  return dims;
}

py::tuple forward(const at::Tensor& input, std::vector<int64_t> kernel_size, std::vector<int64_t> stride,
                  std::vector<int64_t> padding, std::vector<int64_t> dilation, bool ceil_mode, bool with_indices,
                  int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const int dims = spatial_dims(kernel_size);
  const HostExecutor exec = executor(sm_count, force_index64);
  if (with_indices) {
    auto [out, idx] =
        cuda_impl::max_pool_with_indices(exec, dims, input, kernel_size, stride, padding, dilation, ceil_mode);
    return py::make_tuple(out, idx, exec.info());
  }
  at::Tensor out = cuda_impl::max_pool(exec, dims, input, kernel_size, stride, padding, dilation, ceil_mode);
  return py::make_tuple(out, py::none(), exec.info());
}

py::tuple backward(const at::Tensor& grad_output, const at::Tensor& input, std::vector<int64_t> kernel_size,
                   std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                   bool ceil_mode, const at::Tensor& indices, int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const int dims = spatial_dims(kernel_size);
  const HostExecutor exec = executor(sm_count, force_index64);
  at::Tensor gi = cuda_impl::max_pool_with_indices_backward(exec, dims, grad_output, input, kernel_size, stride,
                                                            padding, dilation, ceil_mode, indices);
  return py::make_tuple(gi, exec.info());
}

// The adaptive ops: dims = len(output_size) (forward) or given (backward, whose
// schema has no output_size).
int adaptive_dims(int64_t dims) {
  TORCH_CHECK(dims >= 1 && dims <= kMaxSpatialDims, "the adaptive host hooks take 1 to ", kMaxSpatialDims,
              " spatial dims, got ", dims);
  return static_cast<int>(dims);
}

py::tuple adaptive_forward(const at::Tensor& input, std::vector<int64_t> output_size, bool with_indices,
                           int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const int dims = adaptive_dims(static_cast<int64_t>(output_size.size()));
  const HostExecutor exec = executor(sm_count, force_index64);
  if (with_indices) {
    auto [out, idx] = cuda_impl::adaptive_max_pool_with_indices(exec, dims, input, output_size);
    return py::make_tuple(out, idx, exec.info());
  }
  at::Tensor out = cuda_impl::adaptive_max_pool(exec, dims, input, output_size);
  return py::make_tuple(out, py::none(), exec.info());
}

py::tuple adaptive_backward(const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& indices,
                            int64_t dims, int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const HostExecutor exec = executor(sm_count, force_index64);
  at::Tensor gi = cuda_impl::adaptive_max_pool_backward(exec, adaptive_dims(dims), grad_output, input, indices);
  return py::make_tuple(gi, exec.info());
}

// One adaptive axis as the kernels see it (max_pool_device.cuh, in the index
// type a job of these sizes would get, or int64): each output's window
// [first, first + count) and each input's covering outputs [begin, end).
py::tuple adaptive_axis(int64_t in, int64_t out, bool index64) {
  TORCH_CHECK(in >= 1 && out >= 1, "adaptive_axis: sizes must be positive");
  // Adaptive even where the sizes divide (jobs describe those as fixed
  // windows), so that the closed forms are checked for every pair.
  PoolGeometry g;
  g.in_size[2] = in;
  g.out_size[2] = out;
  g.adaptive[2] = true;
  at::Tensor windows = at::empty({out, 2}, at::kLong), covering = at::empty({in, 2}, at::kLong);
  int64_t* w = windows.mutable_data_ptr<int64_t>();
  int64_t* c = covering.mutable_data_ptr<int64_t>();
  cuda_launch::with_index_type(!index64 && (in + 1) * (out + 1) <= INT32_MAX, [&](auto index_zero) {
    using index_t = decltype(index_zero);
    const cuda_logic::Axis<index_t> a = cuda_logic::make_axis<index_t>(g, 2);
    for (index_t o = 0; o < a.out; ++o) {
      index_t first, count;
      cuda_logic::window_taps(a, o, &first, &count);
      w[2 * o] = first;
      w[2 * o + 1] = first + count;
    }
    for (index_t x = 0; x < a.in; ++x) {
      index_t begin, end;
      cuda_logic::covering_outputs(a, x, &begin, &end);
      c[2 * x] = begin;
      c[2 * x + 1] = end;
    }
  });
  return py::make_tuple(windows, covering);
}

// The launch decisions alone, for sizes too large to run on the host.
py::dict launch_plan(int64_t work_items, int64_t max_offset, int64_t sm_count) {
  const Grid grid = cuda_launch::grid_for({sm_count, kThreadsPerSm, kMaxGridX}, work_items);
  py::dict d;
  d["blocks"] = grid.blocks;
  d["threads"] = grid.threads;
  d["index_bits"] = cuda_launch::fits_int32(max_offset, work_items, grid) ? 32 : 64;
  return d;
}

// The kernels' multiply-high division, element by element (int32 range).
at::Tensor divide(const at::Tensor& numerators, int64_t divisor) {
  TORCH_CHECK(divisor >= 1 && divisor <= INT32_MAX, "divisor out of range");
  const cuda_launch::Divider<int32_t> by(divisor);
  at::Tensor n = numerators.to(at::kLong).contiguous();
  at::Tensor q = at::empty_like(n);
  const int64_t* src = n.const_data_ptr<int64_t>();
  int64_t* dst = q.mutable_data_ptr<int64_t>();
  for (int64_t i = 0; i < n.numel(); ++i) {
    TORCH_CHECK(src[i] >= 0 && src[i] <= INT32_MAX, "numerator out of range");
    dst[i] = by.div(static_cast<int32_t>(src[i]));
  }
  return q;
}

// max_unpool{2,3}d (dims = len(output_size)) and its backward.
py::tuple unpool_forward(const at::Tensor& input, const at::Tensor& indices, std::vector<int64_t> output_size,
                         std::vector<int64_t> stride, std::vector<int64_t> padding, int64_t sm_count,
                         bool force_index64) {
  check_cpu(input);
  const HostExecutor exec = executor(sm_count, force_index64);
  const int dims = output_size.size() == 3 ? 3 : 2;
  at::Tensor out = cuda_unpool::max_unpool(exec, dims, input, indices, output_size, stride, padding);
  return py::make_tuple(out, exec.info());
}

py::tuple unpool_backward(const at::Tensor& grad_output, const at::Tensor& indices, int64_t dims, int64_t sm_count,
                          bool force_index64) {
  check_cpu(grad_output);
  TORCH_CHECK(dims == 2 || dims == 3, "the unpool host hooks take 2 or 3 spatial dims, got ", dims);
  const HostExecutor exec = executor(sm_count, force_index64);
  at::Tensor gi = cuda_unpool::max_unpool_backward(exec, static_cast<int>(dims), grad_output, indices);
  return py::make_tuple(gi, exec.info());
}

// fractional_max_pool{2,3}d and its backward; dims 0: len(output_size).
int fractional_dims(int64_t dims, size_t output_size_len) {
  if (dims == 0) dims = output_size_len == 3 ? 3 : 2;
  TORCH_CHECK(dims == 2 || dims == 3, "the fractional host hooks take 2 or 3 spatial dims, got ", dims);
  return static_cast<int>(dims);
}

py::tuple fractional_forward(const at::Tensor& input, std::vector<int64_t> kernel_size,
                             std::vector<int64_t> output_size, const at::Tensor& random_samples, int64_t dims,
                             int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const HostExecutor exec = executor(sm_count, force_index64);
  auto [out, idx] = cuda_fractional::fractional_max_pool(exec, fractional_dims(dims, output_size.size()), input,
                                                         kernel_size, output_size, random_samples);
  return py::make_tuple(out, idx, exec.info());
}

py::tuple fractional_backward(const at::Tensor& grad_output, const at::Tensor& input,
                              std::vector<int64_t> kernel_size, std::vector<int64_t> output_size,
                              const at::Tensor& indices, int64_t dims, int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const HostExecutor exec = executor(sm_count, force_index64);
  at::Tensor gi = cuda_fractional::fractional_max_pool_backward(exec, fractional_dims(dims, output_size.size()),
                                                                grad_output, input, kernel_size, output_size,
                                                                indices);
  return py::make_tuple(gi, exec.info());
}

py::tuple fractional_with_offsets(const at::Tensor& input, std::vector<int64_t> kernel_size,
                                  std::vector<int64_t> output_size, const at::Tensor& random_samples,
                                  int64_t sm_count, bool force_index64) {
  check_cpu(input);
  const HostExecutor exec = executor(sm_count, force_index64);
  auto [out, taps] = cuda_fractional::fractional_max_pool(exec, fractional_dims(0, output_size.size()), input,
                                                          kernel_size, output_size, random_samples,
                                                          fractional_offsets_dtype(kernel_size));
  return py::make_tuple(out, taps, exec.info());
}

py::tuple fractional_offsets_backward(const at::Tensor& grad_output, const at::Tensor& offsets,
                                      std::vector<int64_t> input_size, std::vector<int64_t> kernel_size,
                                      std::vector<int64_t> output_size, const at::Tensor& random_samples,
                                      bool channels_last, int64_t sm_count, bool force_index64) {
  check_cpu(grad_output);
  const HostExecutor exec = executor(sm_count, force_index64);
  at::Tensor gi = cuda_fractional::fractional_offsets_backward(exec, fractional_dims(0, output_size.size()),
                                                               grad_output, offsets, input_size, kernel_size,
                                                               output_size, random_samples, channels_last);
  return py::make_tuple(gi, exec.info());
}

py::tuple fractional_offsets_to_indices(const at::Tensor& offsets, std::vector<int64_t> input_size,
                                        std::vector<int64_t> kernel_size, std::vector<int64_t> output_size,
                                        const at::Tensor& random_samples, int64_t sm_count, bool force_index64) {
  check_cpu(offsets);
  const HostExecutor exec = executor(sm_count, force_index64);
  at::Tensor idx = cuda_fractional::fractional_offsets_to_indices(exec, fractional_dims(0, output_size.size()),
                                                                  offsets, input_size, kernel_size, output_size,
                                                                  random_samples);
  return py::make_tuple(idx, exec.info());
}

}  // namespace

void register_test_hooks(pybind11::module_& m) {
  m.def("cuda_host_max_pool", &forward,
        "The CUDA forward op max_pool{len(kernel_size)}d run by the host executor: (output, indices or None, info).",
        py::arg("input"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        py::arg("with_indices") = true, py::arg("sm_count") = kDefaultSms, py::arg("force_index64") = false);
  m.def("cuda_host_max_pool_backward", &backward,
        "The CUDA backward op max_pool{len(kernel_size)}d_with_indices_backward run by the host executor: "
        "(grad_input, info).",
        py::arg("grad_output"),
        py::arg("input"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("ceil_mode"), py::arg("indices"), py::arg("sm_count") = kDefaultSms,
        py::arg("force_index64") = false);
  m.def("cuda_host_adaptive_max_pool", &adaptive_forward,
        "The CUDA forward op adaptive_max_pool{len(output_size)}d run by the host executor: "
        "(output, indices or None, info).",
        py::arg("input"), py::arg("output_size"), py::arg("with_indices") = true, py::arg("sm_count") = kDefaultSms,
        py::arg("force_index64") = false);
  m.def("cuda_host_adaptive_max_pool_backward", &adaptive_backward,
        "The CUDA backward op adaptive_max_pool{dims}d_backward run by the host executor: (grad_input, info).",
        py::arg("grad_output"), py::arg("input"), py::arg("indices"), py::arg("dims"),
        py::arg("sm_count") = kDefaultSms, py::arg("force_index64") = false);
  m.def("cuda_host_max_unpool", &unpool_forward,
        "The CUDA op max_unpool{len(output_size)}d run by the host executor: (output, info).", py::arg("input"),
        py::arg("indices"), py::arg("output_size"), py::arg("stride") = std::vector<int64_t>{},
        py::arg("padding") = std::vector<int64_t>{}, py::arg("sm_count") = kDefaultSms,
        py::arg("force_index64") = false);
  m.def("cuda_host_max_unpool_backward", &unpool_backward,
        "The CUDA op max_unpool{dims}d_backward run by the host executor: (grad_input, info).",
        py::arg("grad_output"), py::arg("indices"), py::arg("dims"), py::arg("sm_count") = kDefaultSms,
        py::arg("force_index64") = false);
  m.def("cuda_host_fractional_max_pool", &fractional_forward,
        "The CUDA op fractional_max_pool{dims}d (dims 0: len(output_size)) run by the host executor: "
        "(output, indices, info).",
        py::arg("input"), py::arg("kernel_size"), py::arg("output_size"), py::arg("random_samples"),
        py::arg("dims") = 0, py::arg("sm_count") = kDefaultSms, py::arg("force_index64") = false);
  m.def("cuda_host_fractional_max_pool_backward", &fractional_backward,
        "The CUDA op fractional_max_pool{dims}d_backward (dims 0: len(output_size)) run by the host executor: "
        "(grad_input, info).",
        py::arg("grad_output"), py::arg("input"), py::arg("kernel_size"), py::arg("output_size"),
        py::arg("indices"), py::arg("dims") = 0, py::arg("sm_count") = kDefaultSms,
        py::arg("force_index64") = false);
  m.def("cuda_host_fractional_with_offsets", &fractional_with_offsets,
        "The CUDA op fractional_max_pool{len(output_size)}d_with_offsets run by the host executor: "
        "(output, offsets, info).",
        py::arg("input"), py::arg("kernel_size"), py::arg("output_size"), py::arg("random_samples"),
        py::arg("sm_count") = kDefaultSms, py::arg("force_index64") = false);
  m.def("cuda_host_fractional_offsets_backward", &fractional_offsets_backward,
        "The CUDA op fractional_max_pool{len(output_size)}d_offsets_backward run by the host executor: "
        "(grad_input, info).",
        py::arg("grad_output"), py::arg("offsets"), py::arg("input_size"), py::arg("kernel_size"),
        py::arg("output_size"), py::arg("random_samples"), py::arg("channels_last"),
        py::arg("sm_count") = kDefaultSms, py::arg("force_index64") = false);
  m.def("cuda_host_fractional_offsets_to_indices", &fractional_offsets_to_indices,
        "The CUDA op fractional_max_pool{len(output_size)}d_offsets_to_indices run by the host executor: "
        "(indices, info).",
        py::arg("offsets"), py::arg("input_size"), py::arg("kernel_size"), py::arg("output_size"),
        py::arg("random_samples"), py::arg("sm_count") = kDefaultSms, py::arg("force_index64") = false);
  m.def("cuda_adaptive_axis", &adaptive_axis,
        "One adaptive axis as the CUDA kernels compute it: (windows [out, 2], covering outputs [in, 2]).",
        py::arg("in_size"), py::arg("out_size"), py::arg("index64") = false);
  m.def("cuda_launch_plan", &launch_plan, "The CUDA launcher's grid and index width for a job size.",
        py::arg("work_items"), py::arg("max_offset"), py::arg("sm_count") = kDefaultSms);
  m.def("cuda_divide", &divide, "The CUDA kernels' integer division, on the host.", py::arg("numerators"),
        py::arg("divisor"));
}

}  // namespace fastpool
