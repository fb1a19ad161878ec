// The functional API's eager calls: each op called through the dispatcher with
// typed arguments. torch.ops converts every argument generically (a boxed
// stack built from the schema), which costs more than pooling a small map;
// this path converts the few argument kinds the pooling ops take directly.
// Dispatch itself is the same: autograd, fake tensors, vmap, tracing and
// torch_dispatch modes see the same op. fastpool/functional.py takes this path
// only where torch.ops would do nothing more (no __torch_function__ override,
// not while torch.compile traces) and the arguments are plain ints.
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/SmallVector.h>
#include <torch/csrc/utils/pybind.h>  // at::Tensor <-> Python (not torch/extension.h: the whole C++ frontend)

#include <string>

#include "build_info.h"
#include "op_list.h"
#include "pool_geometry.h"

namespace fastpool {
namespace {

namespace py = pybind11;
using Ints = at::IntArrayRef;
using IntList = c10::SmallVector<int64_t, kMaxSpatialDims>;

// An int[dims] argument as torch.ops passes it: one int repeated dims times,
// or a tuple or list of ints as it is (the caller checked that they are plain
// ints in int64's range).
IntList int_list(py::handle value, int dims) {
  IntList out;
  if (PyLong_Check(value.ptr())) {
    out.assign(dims, value.cast<int64_t>());
    return out;
  }
  for (py::handle item : py::reinterpret_borrow<py::sequence>(value)) out.push_back(item.cast<int64_t>());
  return out;
}

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(("fastpool::" + name).c_str(), "").typed<Signature>();
}

using WindowValues = at::Tensor(const at::Tensor&, Ints, Ints, Ints, Ints, bool);
using WindowPair = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, Ints, Ints, Ints, Ints, bool);
using AdaptiveValues = at::Tensor(const at::Tensor&, Ints);
using AdaptivePair = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, Ints);

struct EagerOps {
  c10::TypedOperatorHandle<WindowValues> window_values[kMaxSpatialDims];
  c10::TypedOperatorHandle<WindowPair> window_with_indices[kMaxSpatialDims];
  c10::TypedOperatorHandle<AdaptiveValues> adaptive_values[kMaxSpatialDims];
  c10::TypedOperatorHandle<AdaptivePair> adaptive_with_indices[kMaxSpatialDims];

  static const EagerOps& get() {
    static const EagerOps ops;
    return ops;
  }

 private:
  EagerOps()
      : window_values{find_op<WindowValues>(window_pool_name(1)), find_op<WindowValues>(window_pool_name(2)),
                      find_op<WindowValues>(window_pool_name(3))},
        window_with_indices{find_op<WindowPair>(window_pool_name(1, "_with_indices")),
                            find_op<WindowPair>(window_pool_name(2, "_with_indices")),
                            find_op<WindowPair>(window_pool_name(3, "_with_indices"))},
        adaptive_values{find_op<AdaptiveValues>(adaptive_pool_name(1)),
                        find_op<AdaptiveValues>(adaptive_pool_name(2)),
                        find_op<AdaptiveValues>(adaptive_pool_name(3))},
        adaptive_with_indices{find_op<AdaptivePair>(adaptive_pool_name(1, "_with_indices")),
                              find_op<AdaptivePair>(adaptive_pool_name(2, "_with_indices")),
                              find_op<AdaptivePair>(adaptive_pool_name(3, "_with_indices"))} {}
};

int dims_index(int dims) {
  TORCH_CHECK_VALUE(dims >= 1 && dims <= kMaxSpatialDims, "spatial dims must be 1, 2 or 3, got ", dims);
  return dims - 1;
}

py::object window_pool(int dims, bool with_indices, const at::Tensor& input, py::handle kernel_size,
                       py::handle stride, py::handle padding, py::handle dilation, bool ceil_mode) {
  const EagerOps& ops = EagerOps::get();
  const int i = dims_index(dims);
  const IntList k = int_list(kernel_size, dims), s = int_list(stride, dims), p = int_list(padding, dims),
                d = int_list(dilation, dims);
  if (with_indices) {
    std::tuple<at::Tensor, at::Tensor> out;
    {
      py::gil_scoped_release no_gil;
      out = ops.window_with_indices[i].call(input, k, s, p, d, ceil_mode);
    }
    return py::cast(out);
  }
  at::Tensor out;
  {
    py::gil_scoped_release no_gil;
    out = ops.window_values[i].call(input, k, s, p, d, ceil_mode);
  }
  return py::cast(out);
}

py::object adaptive_pool(int dims, bool with_indices, const at::Tensor& input, py::handle output_size) {
  const EagerOps& ops = EagerOps::get();
  const int i = dims_index(dims);
  const IntList size = int_list(output_size, dims);
  if (with_indices) {
    std::tuple<at::Tensor, at::Tensor> out;
    {
      py::gil_scoped_release no_gil;
      out = ops.adaptive_with_indices[i].call(input, size);
    }
    return py::cast(out);
  }
  at::Tensor out;
  {
    py::gil_scoped_release no_gil;
    out = ops.adaptive_values[i].call(input, size);
  }
  return py::cast(out);
}

}  // namespace

void register_eager_calls(py::module_& m) {
  m.def("window_pool", &window_pool,
        "max_pool{dims}d(_with_indices) through the dispatcher (plain-int arguments only).");
  m.def("adaptive_pool", &adaptive_pool,
        "adaptive_max_pool{dims}d(_with_indices) through the dispatcher (plain-int output_size only).");
}

}  // namespace fastpool
