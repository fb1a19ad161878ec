// The host build of the CUDA kernels' per-element logic (max_pool_device.cuh),
// exposed to the test suite as fastpool._C.cuda_host_*: the same preparation
// (max_pool_plan.h) and the same per-element functions the .cu launches, run
// over the whole index space on CPU tensors. Compiled in every build, so CI
// checks the CUDA logic against torch without a GPU.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/extension.h>

#include <type_traits>

#include "../build_info.h"
#include "max_pool_device.cuh"
#include "max_pool_plan.h"

namespace fastpool {
namespace {

namespace py = pybind11;
using cuda_impl::acc_t;
using cuda_impl::with_index_type;
using cuda_impl::with_lanes;
using cuda_logic::host_vector_tally;

py::dict info(bool nhwc, int lanes, bool use32) {
  py::dict d;
  d["layout"] = nhwc ? "nhwc" : "nchw";
  d["lanes"] = lanes;
  d["index_bits"] = use32 ? 32 : 64;
  d["vector_accesses"] = host_vector_tally().accesses;
  d["misaligned"] = host_vector_tally().misaligned;
  return d;
}

py::tuple forward(const at::Tensor& self, std::vector<int64_t> kernel_size, std::vector<int64_t> stride,
                  std::vector<int64_t> padding, std::vector<int64_t> dilation, bool ceil_mode, bool with_indices,
                  bool force_index64) {
  TORCH_CHECK(self.device().is_cpu(), "the host run of the CUDA logic takes CPU tensors");
  cuda_impl::ForwardJob job =
      cuda_impl::prepare_forward(self, kernel_size, stride, padding, dilation, ceil_mode, with_indices);
  host_vector_tally() = {};
  const bool use32 = !force_index64 && cuda_logic::fits_int32(job.max_numel, job.work_items, 0);
  // Like PyTorch, an empty call returns before the dtype check.
  if (job.work_items == 0) return py::make_tuple(job.output, with_indices ? py::cast(job.indices) : py::none(),
                                                 info(job.nhwc, job.lanes, use32));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), cuda_impl::kDispatchName, [&] {
    cuda_logic::ForwardArgs<scalar_t> a{job.input.const_data_ptr<scalar_t>(), job.output.mutable_data_ptr<scalar_t>(),
                                        with_indices ? job.indices.mutable_data_ptr<int64_t>() : nullptr, job.g};
    with_index_type(use32, [&](auto index_zero) {
      using index_t = decltype(index_zero);
      const index_t n = static_cast<index_t>(job.work_items);
      if (!job.nhwc) {
        for (index_t i = 0; i < n; ++i) {
          if (with_indices)
            cuda_logic::forward_nchw<scalar_t, acc_t<scalar_t>, index_t, true>(a, i);
          else
            cuda_logic::forward_nchw<scalar_t, acc_t<scalar_t>, index_t, false>(a, i);
        }
        return;
      }
      with_lanes<scalar_t>(job.lanes, [&](auto lanes) {
        constexpr int V = decltype(lanes)::value;
        for (index_t i = 0; i < n; ++i) {
          if (with_indices)
            cuda_logic::forward_nhwc<scalar_t, acc_t<scalar_t>, index_t, V, true>(a, i);
          else
            cuda_logic::forward_nhwc<scalar_t, acc_t<scalar_t>, index_t, V, false>(a, i);
        }
      });
    });
  });
  py::object indices = with_indices ? py::cast(job.indices) : py::none();
  return py::make_tuple(job.output, indices, info(job.nhwc, job.lanes, use32));
}

py::tuple backward(const at::Tensor& grad_output, const at::Tensor& self, std::vector<int64_t> kernel_size,
                   std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation,
                   bool ceil_mode, const at::Tensor& indices, bool force_index64) {
  TORCH_CHECK(self.device().is_cpu(), "the host run of the CUDA logic takes CPU tensors");
  cuda_impl::BackwardJob job = cuda_impl::prepare_backward(grad_output, self, kernel_size, stride, padding, dilation,
                                                           ceil_mode, indices);
  host_vector_tally() = {};
  const bool use32 = !force_index64 && cuda_logic::fits_int32(job.max_numel, job.work_items, 0);
  if (job.work_items == 0) return py::make_tuple(job.grad_input, info(job.nhwc, job.lanes, use32));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, self.scalar_type(), cuda_impl::kDispatchName, [&] {
    cuda_logic::BackwardArgs<scalar_t> a{job.grad_output.const_data_ptr<scalar_t>(),
                                         job.indices.const_data_ptr<int64_t>(),
                                         job.grad_input.mutable_data_ptr<scalar_t>(), job.g};
    with_index_type(use32, [&](auto index_zero) {
      using index_t = decltype(index_zero);
      const index_t n = static_cast<index_t>(job.work_items);
      if (!job.nhwc) {
        for (index_t i = 0; i < n; ++i) cuda_logic::backward_nchw<scalar_t, acc_t<scalar_t>, index_t>(a, i);
        return;
      }
      with_lanes<scalar_t>(job.lanes, [&](auto lanes) {
        constexpr int V = decltype(lanes)::value;
        for (index_t i = 0; i < n; ++i) cuda_logic::backward_nhwc<scalar_t, acc_t<scalar_t>, index_t, V>(a, i);
      });
    });
  });
  return py::make_tuple(job.grad_input, info(job.nhwc, job.lanes, use32));
}

}  // namespace

void register_test_hooks(pybind11::module_& m) {
  m.def("cuda_host_max_pool2d", &forward,
        "Host run of the CUDA forward logic: (output, indices or None, info).", py::arg("input"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        py::arg("with_indices") = true, py::arg("force_index64") = false);
  m.def("cuda_host_max_pool2d_backward", &backward, "Host run of the CUDA backward logic: (grad_input, info).",
        py::arg("grad_output"), py::arg("input"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), py::arg("indices"), py::arg("force_index64") = false);
}

}  // namespace fastpool
