#include "pool_shape.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_strided.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>
#include <sstream>
#include <string>
#include <type_traits>

namespace fastpool {
namespace {

// ---- torch's wording -----------------------------------------------------------
//
// Every check below is one of torch's, made where torch makes it, with its
// exception type and message. aten words some messages differently in its C++
// kernels (CPU, CUDA) and in the Python functions it runs on the Meta device
// (a shape is [1, 0, 8] or torch.Size([1, 0, 8]), a dtype float or
// torch.float32, a list of values has commas or not, half an effective kernel
// is rounded toward zero or down); fastpool's Meta kernels word theirs as aten's
// Meta functions do.
enum class Style { cpp, meta };

Style style_of(const at::Tensor& t) { return t.is_meta() ? Style::meta : Style::cpp; }

template <typename T>
c10::ArrayRef<T> sizes_of(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, c10::SymInt>) return t.sym_sizes();
  else return t.sizes();
}

// A shape as torch prints it.
template <typename T>
std::string shape_str(Style st, c10::ArrayRef<T> sizes) {
  std::ostringstream os;
  if (st == Style::meta) os << "torch.Size(";
  os << sizes;
  if (st == Style::meta) os << ")";
  return os.str();
}

// A dtype as torch prints it.
std::string dtype_str(Style st, const at::Tensor& t) {
  if (st == Style::meta) return "torch." + std::string(c10::getDtypeNames(t.scalar_type()).first);
  std::ostringstream os;
  os << t.dtype();
  return os.str();
}

// "kH: 2 kW: -1" (aten's C++) or "kH: 2, kW: -1" (its Meta functions): one
// name per spatial dim, prefix + T/H/W.
std::string named_values(Style st, const char* prefix, int dims, const int64_t* values) {
  static const char* const axes[] = {"T", "H", "W"};
  std::ostringstream os;
  for (int i = 0; i < dims; ++i)
    os << (i == 0 ? "" : (st == Style::meta ? ", " : " ")) << prefix << axes[3 - dims + i] << ": " << values[i];
  return os.str();
}

std::string op_name(const char* base, int dims) { return base + std::to_string(dims) + "d"; }

// Floor division (aten's div_rtn), for int64_t and SymInt.
template <typename T>
T div_rtn(const T& x, int64_t y) {
  T q = x / y;
  const T r = x % y;
  if (r != 0 && ((r < 0) != (y < 0))) q = q - 1;
  return q;
}

// ---- the checks, one function per kind of message ----------------------------------

// checkDimRange(op, self, 2, 4): torch's 1-d ops that run their 2-d ones.
void check_dim_range_2_to_3(const char* op, int64_t ndim) {
  TORCH_CHECK(ndim >= 2 && ndim < 4, "Expected 2 to 3 dimensions, but got ", ndim,
              "-dimensional tensor for argument #1 'self' (while checking arguments for ", op, ")");
}

// check1d: an argument of torch's 1-d ops that run their 2-d ones.
void check_one_int(const char* op, const char* name, c10::IntArrayRef value) {
  TORCH_CHECK(value.size() == 1, op, "() argument '", name, "' should contain one int (got ", value.size(), ")");
}

// aten's check_dim_size, from its C++ kernels or its Meta functions (whose
// message indexes the shape as a Python tuple).
template <typename T>
void check_dim_size(Style st, const at::Tensor& t, int64_t dim, int64_t dim_size, const T& size) {
  const auto sizes = sizes_of<T>(t);
  if (t.dim() == dim && sizes[dim_size] == size) return;
  if (st == Style::cpp) {
    TORCH_CHECK(false, "Expected a tensor of dimension ", dim, " and tensor.size[", dim_size, "] == ", size,
                " but got: dimension ", t.dim(), " and tensor.size[", dim_size, "] = ", t.sym_size(dim_size));
  }
  TORCH_CHECK_INDEX(dim_size < t.dim(), "tuple index out of range");
  TORCH_CHECK(false, "Expected a tensor of dimension ", dim, " and tensor.size[", dim_size, "] == ", size,
              ", but got : dimension ", t.dim(), " and tensor.size[", dim_size, "] = ", sizes[dim_size]);
}

// aten's "expected dtype" check of a backward op's grad_output (`lead` is
// "expected", or "Expected" in max_pool2d's Meta function).
void check_grad_dtype(Style st, const char* lead, const at::Tensor& input, const at::Tensor& grad_output,
                      const char* grad_name) {
  TORCH_CHECK(input.scalar_type() == grad_output.scalar_type(), lead, " dtype ", dtype_str(st, input), " for `",
              grad_name, "` but got dtype ", dtype_str(st, grad_output));
}

// The allocation of an output of negative size.
template <typename T>
void check_nonnegative_shape(c10::ArrayRef<T> shape) {
  for (const T& s : shape) TORCH_CHECK(s >= 0, "Trying to create tensor with negative dimension ", s, ": ", shape);
}

// ---- max_pool2d / max_pool3d, as aten's ops check them ---------------------------

// kernel_size, stride, padding and dilation as aten's 2-d and 3-d ops unpack
// them: one entry per spatial dim (H, W or T, H, W).
struct WindowArgs {
  int dims = 2;
  int64_t k[3], s[3], p[3], d[3];
};

// The lengths of the lists, and (in aten's C++, which narrows them to int) the
// range of their entries, in torch's order.
WindowArgs unpack_window_args(Style st, int dims, c10::IntArrayRef kernel_size, c10::IntArrayRef stride,
                              c10::IntArrayRef padding, c10::IntArrayRef dilation) {
  const std::string op = op_name("max_pool", dims) + ": ";
  const char* count = dims == 2 ? "two" : "three";
  auto take = [&](c10::IntArrayRef v, int64_t* out) {
    for (int i = 0; i < dims; ++i) {
      if (i > 0 && v.size() == 1) {
        out[i] = out[0];
        continue;
      }
      out[i] = v[i];
      TORCH_CHECK(st == Style::meta || (out[i] >= INT_MIN && out[i] <= INT_MAX),
                  "value cannot be converted to type int without overflow");
    }
  };
  auto one_or_all = [&](c10::IntArrayRef v) { return v.size() == 1 || static_cast<int>(v.size()) == dims; };
  WindowArgs w;
  w.dims = dims;
  TORCH_CHECK(one_or_all(kernel_size), op, "kernel_size must either be a single int, or a tuple of ", count, " ints");
  take(kernel_size, w.k);
  TORCH_CHECK(stride.empty() || one_or_all(stride), op,
              "stride must either be omitted, a single int, or a tuple of ", count, " ints");
  if (stride.empty()) std::copy(w.k, w.k + dims, w.s);
  else take(stride, w.s);
  TORCH_CHECK(one_or_all(padding), op, "padding must either be a single int, or a tuple of ", count, " ints");
  take(padding, w.p);
  TORCH_CHECK(one_or_all(dilation), op,
              st == Style::meta && dims == 2 ? "dilation must either be" : "dilation must be either",
              " a single int, or a tuple of ", count, " ints");
  take(dilation, w.d);
  return w;
}

// aten's pooling_output_shape: the size along one dim, after checking stride
// and padding (against half the dilated kernel, rounded as the Style does).
template <typename T>
T pooling_output_shape(Style st, const T& in, int64_t k, int64_t p, int64_t s, int64_t d, bool ceil_mode) {
  TORCH_CHECK(s != 0, "stride should not be zero");
  TORCH_CHECK(p >= 0, "pad must be non-negative, but got pad: ", p);
  const int64_t effective = (k - 1) * d + 1;
  TORCH_CHECK(p <= (st == Style::meta ? div_rtn<int64_t>(effective, 2) : effective / 2),
              "pad should be at most half of effective kernel size, but got pad=", p, ", kernel_size=", k,
              " and dilation=", d);
  T out = div_rtn<T>(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) out = out - 1;
  return out;
}

// The output sizes along the spatial dims of a valid call (T is int64_t or SymInt).
template <typename T>
std::vector<T> window_output_sizes(Style st, c10::ArrayRef<T> sizes, const WindowArgs& w, bool ceil_mode) {
  std::vector<T> out;
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  for (int i = 0; i < w.dims; ++i)
    out.push_back(pooling_output_shape<T>(st, sizes[ndim - w.dims + i], w.k[i], w.p[i], w.s[i], w.d[i], ceil_mode));
  return out;
}

// aten's pool2d_shape_check over (N,) C, H, W and the output sizes OH, OW.
template <typename T>
void pool2d_shape_check(Style st, c10::ArrayRef<T> sizes, const WindowArgs& w, const std::vector<T>& out,
                        at::MemoryFormat memory_format) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(w.k[1] > 0 && w.k[0] > 0, "kernel size should be greater than zero, but got ",
              named_values(st, "k", 2, w.k));
  TORCH_CHECK(w.s[1] > 0 && w.s[0] > 0, "stride should be greater than zero, but got ", named_values(st, "d", 2, w.s));
  TORCH_CHECK(w.d[0] > 0 && w.d[1] > 0, "dilation should be greater than zero, but got ",
              named_values(st, "dilation", 2, w.d));
  const bool valid_dims = sizes[1] != 0 && sizes[2] != 0;
  if (memory_format == at::MemoryFormat::ChannelsLast) {
    TORCH_CHECK(ndim == 4 && valid_dims && sizes[3] != 0,
                "Expected 4D (batch mode) tensor expected for input with channels_last layout with optional 0 dim "
                "batch size for input, but got: ",
                shape_str(st, sizes));
  } else {
    TORCH_CHECK((ndim == 3 && sizes[0] != 0 && valid_dims) || (ndim == 4 && valid_dims && sizes[3] != 0),
                "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but got:",
                st == Style::meta ? " " : "", shape_str(st, sizes));
  }
  TORCH_CHECK(w.k[1] / 2 >= w.p[1] && w.k[0] / 2 >= w.p[0],
              "pad should be smaller than or equal to half of kernel size, but got padW = ", w.p[1], ", padH = ",
              w.p[0], ", kW = ", w.k[1], ", kH = ", w.k[0]);
  TORCH_CHECK(out[1] >= 1 && out[0] >= 1, "Given input size: (", sizes[ndim - 3], "x", sizes[ndim - 2], "x",
              sizes[ndim - 1], "). Calculated output size: (", sizes[ndim - 3], "x", out[0], "x", out[1],
              "). Output size is too small");
}

// aten's pool3d_shape_check over (N,) C, T, H, W and the output sizes OT, OH,
// OW; fn names the function that runs it.
template <typename T>
void pool3d_shape_check(Style st, const char* fn, c10::ArrayRef<T> sizes, const WindowArgs& w,
                        c10::ArrayRef<T> out) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  TORCH_CHECK(w.k[0] > 0 && w.k[2] > 0 && w.k[1] > 0, "kernel size should be greater than zero, but got ",
              named_values(st, "k", 3, w.k));
  TORCH_CHECK(w.s[0] > 0 && w.s[2] > 0 && w.s[1] > 0, "stride should be greater than zero, but got ",
              named_values(st, "d", 3, w.s));
  TORCH_CHECK(w.d[0] > 0 && w.d[2] > 0 && w.d[1] > 0, "dilation should be greater than zero, but got ",
              named_values(st, "dilation", 3, w.d));
  TORCH_CHECK(ndim == 4 || ndim == 5, fn, ": Expected 4D or 5D tensor for input, but got: ", shape_str(st, sizes));
  for (int64_t i = ndim == 5 ? 1 : 0; i < ndim; ++i)  // torch prints the size where it means the dim
    TORCH_CHECK(sizes[i] > 0, fn, ": Expected input's non-batch dimensions to have positive length, but input has a ",
                "shape of ", shape_str(st, sizes), " and non-batch dimension ", sizes[i], " has length zero!");
  TORCH_CHECK(w.k[0] / 2 >= w.p[0] && w.k[2] / 2 >= w.p[2] && w.k[1] / 2 >= w.p[1],
              "pad should be smaller than or equal to half of kernel size, but got kT: ", w.k[0], " kW: ", w.k[2],
              " kH: ", w.k[1], " padT: ", w.p[0], " padW: ", w.p[2], " padH: ", w.p[1]);
  TORCH_CHECK(out[0] >= 1 && out[2] >= 1 && out[1] >= 1, "Given input size: (", sizes[ndim - 4], "x", sizes[ndim - 3],
              "x", sizes[ndim - 2], "x", sizes[ndim - 1], "). Calculated output size: (", sizes[ndim - 4], "x", out[0],
              "x", out[1], "x", out[2], "). Output size is too small");
}

// The rank and memory format of a 2-d op's input. aten's Meta function reads
// the sizes first (an IndexError below three dims).
void check_2d_input_rank(Style st, const at::Tensor& input) {
  if (st == Style::meta) (void)input.sym_size(-3);
  const int64_t ndim = input.dim();
  const at::MemoryFormat memory_format = input.suggest_memory_format();
  if (memory_format == at::MemoryFormat::ChannelsLast) {
    TORCH_CHECK(ndim == 4, "non-empty 4D (batch mode) tensor expected for input with channels_last layout");
  } else if (memory_format == at::MemoryFormat::Contiguous) {
    TORCH_CHECK(ndim == 3 || ndim == 4, "non-empty 3D or 4D (batch mode) tensor expected for input");
  } else {
    TORCH_CHECK(false, "Unsupported memory format. Supports only ChannelsLast, Contiguous");
  }
}

// The rank and memory format of a 3-d op's input (aten's Meta functions check
// only the rank: a 4-D channels_last tensor passes).
void check_3d_input_rank(Style st, const at::Tensor& input) {
  const int64_t ndim = input.dim();
  const at::MemoryFormat memory_format =
      st == Style::meta ? at::MemoryFormat::Contiguous : input.suggest_memory_format();
  if (memory_format == at::MemoryFormat::ChannelsLast3d) {
    TORCH_CHECK(ndim == 5, "non-empty 5D (batch mode) tensor expected for input with channels_last_3d layout");
  } else if (memory_format == at::MemoryFormat::Contiguous) {
    TORCH_CHECK(ndim == 4 || ndim == 5, "non-empty 4D or 5D (batch mode) tensor expected for input");
  } else {
    TORCH_CHECK(false, "Unsupported memory format. Supports only ChannelsLast3d, Contiguous");
  }
}

// The function aten's 3-d op names in its shape errors.
const char* pool3d_fn(const at::Tensor& input, bool backward) {
  if (input.is_meta()) return backward ? "max_pool3d_with_indices_backward()" : "max_pool3d_with_indices()";
  if (input.is_cuda())
    return backward ? "max_pool3d_with_indices_backward_out_cuda_template()"
                    : "max_pool3d_with_indices_out_cuda_template()";
  return backward ? "max_pool3d_with_indices_backward_out_cpu_template()"
                  : "max_pool3d_with_indices_out_cpu_template()";
}

// max_pool2d_with_indices / max_pool3d_with_indices: returns the output sizes
// along the spatial dims.
template <typename T>
std::vector<T> check_window_forward(int dims, const at::Tensor& input, c10::ArrayRef<T> sizes,
                                    c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
                                    c10::IntArrayRef dilation, bool ceil_mode) {
  const Style st = style_of(input);
  const WindowArgs w = unpack_window_args(st, dims, kernel_size, stride, padding, dilation);
  if (dims == 2) {
    check_2d_input_rank(st, input);
    const std::vector<T> out = window_output_sizes<T>(st, sizes, w, ceil_mode);
    pool2d_shape_check<T>(st, sizes, w, out, input.suggest_memory_format());
    return out;
  }
  // torch's CUDA op reads the sizes before it checks the rank (an IndexError
  // below four dims) and refuses no memory format.
  if (input.is_cuda())
    (void)input.size(-4);
  else
    check_3d_input_rank(st, input);
  const std::vector<T> out = window_output_sizes<T>(st, sizes, w, ceil_mode);
  pool3d_shape_check<T>(st, pool3d_fn(input, false), sizes, w, out);
  return out;
}

// Lifts 1-d arguments to the 2-d op's (kernel 1, stride 1, padding 0, dilation 1 in H).
std::vector<int64_t> lift_to_2d(c10::IntArrayRef v, int64_t fill) {
  if (v.empty()) return {};
  return {fill, v[0]};
}

// max_pool1d_with_indices: its own checks, then max_pool2d_with_indices' over
// the input unsqueezed to (N,) C, 1, L. Returns the output length.
template <typename T>
T check_max_pool1d_with_indices(const at::Tensor& input, c10::ArrayRef<T> sizes, c10::IntArrayRef kernel_size,
                                c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                bool ceil_mode) {
  if (stride.empty()) stride = kernel_size;
  check_dim_range_2_to_3("max_pool1d", input.dim());
  check_one_int("max_pool1d", "kernel_size", kernel_size);
  check_one_int("max_pool1d", "stride", stride);
  check_one_int("max_pool1d", "padding", padding);
  check_one_int("max_pool1d", "dilation", dilation);
  std::vector<T> sizes2d(sizes.begin(), sizes.end());
  sizes2d.insert(sizes2d.end() - 1, T(1));
  return check_window_forward<T>(2, input.unsqueeze(-2), sizes2d, lift_to_2d(kernel_size, 1), lift_to_2d(stride, 1),
                                 lift_to_2d(padding, 0), lift_to_2d(dilation, 1), ceil_mode)[1];
}

// max_pool1d (no indices): aten checks the input and arguments itself, then
// (on the CPU) runs a kernel of its own, or (elsewhere) max_pool1d_with_indices.
template <typename T>
T check_max_pool1d(const at::Tensor& input, c10::ArrayRef<T> sizes, c10::IntArrayRef kernel_size,
                   c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode) {
  const int64_t ndim = input.dim();
  TORCH_CHECK((ndim == 2 && sizes[0] != 0 && sizes[1] != 0) || (ndim == 3 && sizes[1] != 0 && sizes[2] != 0),
              "max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for input, but got:",
              sizes);
  TORCH_CHECK(kernel_size.size() == 1,
              "max_pool1d() kernel_size must be an int, list of ints or tuple of ints of size 1 but got size ",
              kernel_size.size());
  TORCH_CHECK(stride.empty() || stride.size() == 1,
              "max_pool1d() stride must be None, an int, list of ints, or tuple of ints of size 1 but got size ",
              stride.size());
  TORCH_CHECK(padding.size() == 1,
              "max_pool1d() padding must be an int, list of ints, or tuple of ints of size 1 but got size ",
              padding.size());
  TORCH_CHECK(dilation.size() == 1,
              "max_pool1d() dilation must be an int, list of ints or tuple of ints of size 1 but got size ",
              dilation.size());
  const int64_t k = kernel_size[0], s = stride.empty() ? k : stride[0], p = padding[0], d = dilation[0];
  TORCH_CHECK(k > 0, "max_pool1d() kernel_size must be greater than zero, but got ", k);
  TORCH_CHECK(s > 0, "max_pool1d() stride must be greater than zero, but got ", s);
  TORCH_CHECK(p >= 0, "max_pool1d() padding must be non-negative, but got ", p);
  TORCH_CHECK(p <= k / 2, "max_pool1d() padding should be at most half of kernel size, but got padding=", p,
              " and kernel_size=", k);
  TORCH_CHECK(d > 0, "max_pool1d() dilation must be greater than zero, but got ", d);
  const T out = pooling_output_shape<T>(Style::cpp, sizes[ndim - 1], k, p, s, d, ceil_mode);
  TORCH_CHECK(out > 0, "max_pool1d() Invalid computed output size: ", out);
  if (input.is_cpu()) return out;
  return check_max_pool1d_with_indices<T>(input, sizes, kernel_size, stride, padding, dilation, ceil_mode);
}

// One entry per spatial dim, for a call the checks above accepted.
std::vector<int64_t> expand(c10::IntArrayRef value, int dims, c10::IntArrayRef fallback) {
  if (value.empty()) value = fallback;
  std::vector<int64_t> out(dims);
  for (int i = 0; i < dims; ++i) out[i] = value[value.size() == 1 ? 0 : i];
  return out;
}

PoolArgs pool_args(int dims, c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
                   c10::IntArrayRef dilation, bool ceil_mode) {
  PoolArgs a;
  a.spatial_dims = dims;
  a.ceil_mode = ceil_mode;
  a.kernel = expand(kernel_size, dims, {});
  a.stride = expand(stride, dims, kernel_size);
  a.pad = expand(padding, dims, {});
  a.dilation = expand(dilation, dims, {});
  return a;
}

}  // namespace

template <typename T>
std::vector<T> max_pool_output_shape(int sd, PoolCall call, const at::Tensor& input, c10::IntArrayRef kernel_size,
                                     c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                                     bool ceil_mode, PoolArgs* args) {
  const c10::ArrayRef<T> sizes = sizes_of<T>(input);
  std::vector<T> out(sizes.begin(), sizes.end());
  if (sd == 1) {
    out.back() =
        call == PoolCall::values
            ? check_max_pool1d<T>(input, sizes, kernel_size, stride, padding, dilation, ceil_mode)
            : check_max_pool1d_with_indices<T>(input, sizes, kernel_size, stride, padding, dilation, ceil_mode);
  } else {
    const std::vector<T> spatial =
        check_window_forward<T>(sd, input, sizes, kernel_size, stride, padding, dilation, ceil_mode);
    std::copy(spatial.begin(), spatial.end(), out.end() - sd);
  }
  if (args) *args = pool_args(sd, kernel_size, stride, padding, dilation, ceil_mode);
  return out;
}

template std::vector<int64_t> max_pool_output_shape<int64_t>(int, PoolCall, const at::Tensor&, c10::IntArrayRef,
                                                             c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef,
                                                             bool, PoolArgs*);
template std::vector<c10::SymInt> max_pool_output_shape<c10::SymInt>(int, PoolCall, const at::Tensor&,
                                                                     c10::IntArrayRef, c10::IntArrayRef,
                                                                     c10::IntArrayRef, c10::IntArrayRef, bool,
                                                                     PoolArgs*);

PoolGeometry make_geometry(c10::IntArrayRef input, const PoolArgs& a) {
  PoolGeometry g;
  const int sd = a.spatial_dims;
  const int64_t ndim = static_cast<int64_t>(input.size());
  g.batch = ndim == sd + 2 ? input[0] : 1;
  g.channels = input[ndim - sd - 1];
  for (int i = 0; i < sd; ++i) {
    const int dim = kMaxSpatialDims - sd + i;  // right-align: 2d fills H, W
    g.in_size[dim] = input[ndim - sd + i];
    g.kernel[dim] = a.kernel[i];
    g.stride[dim] = a.stride[i];
    g.pad[dim] = a.pad[i];
    g.dilation[dim] = a.dilation[i];
    g.out_size[dim] = pool_output_size<int64_t>(g.in_size[dim], a.kernel[i], a.stride[i], a.pad[i],
                                                a.dilation[i], a.ceil_mode);
  }
  return g;
}

PoolLayout pool_layout(const at::Tensor& input, int spatial_dims, WindowKind kind) {
  const int64_t ndim = input.dim();
  const bool batched = ndim == spatial_dims + 2;
  switch (spatial_dims) {
    case 1:
      return batched && input.unsqueeze(-2).suggest_memory_format() == at::MemoryFormat::ChannelsLast
                 ? PoolLayout::channels_last
                 : PoolLayout::planar;
    case 2:
      return batched && input.suggest_memory_format() == at::MemoryFormat::ChannelsLast ? PoolLayout::channels_last
                                                                                        : PoolLayout::planar;
    default: {
      // PyTorch's adaptive 3-d CPU pooling returns contiguous tensors always.
      if (kind == WindowKind::adaptive) return PoolLayout::planar;
      // (max_pool_output_shape has refused it where torch does; aten's Meta
      // functions and torch's CUDA op take it, as the unbatched input it reads it as.)
      TORCH_CHECK(input.is_meta() || input.is_cuda() || input.suggest_memory_format() != at::MemoryFormat::ChannelsLast,
                  "Unsupported memory format. Supports only ChannelsLast3d, Contiguous");
      if (batched)
        return input.suggest_memory_format() == at::MemoryFormat::ChannelsLast3d ? PoolLayout::channels_last
                                                                                  : PoolLayout::planar;
      // PyTorch's 3-d kernels take an unbatched input as a batch of one that
      // is channels_last_3d when it is only contiguous so (not by
      // suggest_memory_format, whose guess differs where sizes are 1).
      const at::Tensor as_batch = input.unsqueeze(0);
      return !as_batch.is_contiguous() && as_batch.is_contiguous(at::MemoryFormat::ChannelsLast3d)
                 ? PoolLayout::channels_last
                 : PoolLayout::planar;
    }
  }
}

namespace {
// The permutation from (N,) C, spatial... to the storage order (N,) spatial..., C.
std::vector<int64_t> channels_last_order(int64_t ndim, int spatial_dims) {
  const int64_t channel = ndim - spatial_dims - 1;
  std::vector<int64_t> order;
  for (int64_t d = 0; d < ndim; ++d)
    if (d != channel) order.push_back(d);
  order.push_back(channel);
  return order;
}
// ... and back (its inverse).
std::vector<int64_t> channels_first_order(int64_t ndim, int spatial_dims) {
  const std::vector<int64_t> order = channels_last_order(ndim, spatial_dims);
  std::vector<int64_t> inverse(ndim);
  for (int64_t i = 0; i < ndim; ++i) inverse[order[i]] = i;
  return inverse;
}
}  // namespace

template <typename T>
std::vector<T> strides_in_layout(c10::ArrayRef<T> sizes, PoolLayout layout, int spatial_dims) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  const int64_t channel = ndim - spatial_dims - 1;
  std::vector<T> strides(ndim);
  T stride = 1;
  const auto step = [&](int64_t d) {
    strides[d] = stride;
    if constexpr (std::is_same_v<T, c10::SymInt>) stride = stride * sizes[d].max(1);
    else stride *= std::max<int64_t>(sizes[d], 1);
  };
  if (layout == PoolLayout::channels_last) step(channel);
  for (int64_t d = ndim - 1; d >= 0; --d)
    if (d != channel || layout == PoolLayout::planar) step(d);
  return strides;
}
template std::vector<int64_t> strides_in_layout<int64_t>(c10::ArrayRef<int64_t>, PoolLayout, int);
template std::vector<c10::SymInt> strides_in_layout<c10::SymInt>(c10::ArrayRef<c10::SymInt>, PoolLayout, int);

template <typename T>
at::Tensor empty_in_layout(c10::ArrayRef<T> sizes, const at::TensorOptions& options, PoolLayout layout,
                           int spatial_dims) {
  if constexpr (std::is_same_v<T, c10::SymInt>) {
    if (layout == PoolLayout::planar) return at::empty_symint(sizes, options);
    return at::empty_strided_symint(sizes, strides_in_layout<T>(sizes, layout, spatial_dims), options);
  } else {
    if (layout == PoolLayout::planar) return at::empty(sizes, options);
    return at::empty_strided(sizes, strides_in_layout<T>(sizes, layout, spatial_dims), options);
  }
}
template at::Tensor empty_in_layout<int64_t>(c10::ArrayRef<int64_t>, const at::TensorOptions&, PoolLayout, int);
template at::Tensor empty_in_layout<c10::SymInt>(c10::ArrayRef<c10::SymInt>, const at::TensorOptions&, PoolLayout,
                                                 int);

bool stored_in_layout(const at::Tensor& t, PoolLayout layout, int spatial_dims) {
  const std::vector<int64_t> expected = strides_in_layout(t.sizes(), layout, spatial_dims);
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1 && t.stride(d) != expected[d]) return false;
  return true;
}

at::Tensor contiguous_in(const at::Tensor& t, PoolLayout layout, int spatial_dims) {
  if (layout == PoolLayout::planar) return t.contiguous();
  if (stored_in_layout(t, layout, spatial_dims)) return t;
  const int64_t ndim = t.dim();
  return t.permute(channels_last_order(ndim, spatial_dims)).contiguous().permute(channels_first_order(ndim, spatial_dims));
}

MaxPoolPlan plan_max_pool(int spatial_dims, PoolCall call, const at::Tensor& input, c10::IntArrayRef kernel_size,
                          c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                          bool ceil_mode) {
  MaxPoolPlan plan;
  plan.out_shape = max_pool_output_shape<int64_t>(spatial_dims, call, input, kernel_size, stride, padding, dilation,
                                                  ceil_mode, &plan.args);
  plan.layout = pool_layout(input, spatial_dims);
  return plan;
}

namespace {
template <typename T>
std::vector<T> adaptive_output_shape(Style st, int sd, c10::ArrayRef<T> sizes, c10::IntArrayRef output_size) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  const std::string op = op_name("adaptive_max_pool", sd);
  if (sd == 1) {
    // aten's adaptive_max_pool1d checks these, then runs adaptive_max_pool2d
    // over the input unsqueezed to (N,) C, 1, L (which finds nothing more).
    check_dim_range_2_to_3(op.c_str(), ndim);
    check_one_int(op.c_str(), "output_size", output_size);
  } else {
    TORCH_CHECK(ndim == sd + 1 || ndim == sd + 2, op, "(): Expected ", sd + 1, "D or ", sd + 2, "D tensor, but got: ",
                shape_str(st, sizes));
  }
  // Dims 1.. only: an unbatched input may have no channels.
  for (int64_t d = 1; d < ndim; ++d)
    TORCH_CHECK(sizes[d] > 0, op, "(): Expected input to have non-zero size for non-batch dimensions, but input has ",
                "sizes ", sd == 1 ? shape_str(Style::cpp, sizes) : shape_str(st, sizes), " with dimension ", d,
                " being empty");
  TORCH_CHECK(static_cast<int>(output_size.size()) == sd, op, "(): internal error: output_size.size() must be ", sd);
  std::vector<T> out(sizes.begin(), sizes.end());
  for (int i = 0; i < sd; ++i) out[ndim - sd + i] = T(output_size[i]);
  // The allocation refuses a negative size (1-d: of the 2-d op's output).
  std::vector<T> allocated = out;
  if (sd == 1) allocated.insert(allocated.end() - 1, T(1));
  check_nonnegative_shape<T>(allocated);
  return out;
}
}  // namespace

template <typename T>
std::vector<T> adaptive_pool_output_shape(int sd, const at::Tensor& input, c10::IntArrayRef output_size) {
  return adaptive_output_shape<T>(style_of(input), sd, sizes_of<T>(input), output_size);
}

template std::vector<int64_t> adaptive_pool_output_shape<int64_t>(int, const at::Tensor&, c10::IntArrayRef);
template std::vector<c10::SymInt> adaptive_pool_output_shape<c10::SymInt>(int, const at::Tensor&, c10::IntArrayRef);

PoolGeometry make_adaptive_geometry(c10::IntArrayRef input, int sd, c10::IntArrayRef output_size) {
  PoolGeometry g;
  const int64_t ndim = static_cast<int64_t>(input.size());
  g.batch = ndim == sd + 2 ? input[0] : 1;
  g.channels = input[ndim - sd - 1];
  for (int i = 0; i < sd; ++i) {
    const int dim = kMaxSpatialDims - sd + i;
    const int64_t in = input[ndim - sd + i], out = output_size[i];
    g.in_size[dim] = in;
    g.out_size[dim] = out;
    if (out > 0 && in % out == 0) {  // a fixed window: kernel = stride = in / out
      g.kernel[dim] = g.stride[dim] = in / out;
    } else {
      g.adaptive[dim] = true;
      g.kernel[dim] = out > 0 ? (in + out - 1) / out + 1 : 1;
      g.stride[dim] = out > 0 ? std::max<int64_t>(1, in / out) : 1;
    }
  }
  return g;
}

namespace {

// The backward ops' checks of what torch leaves unchecked and fastpool's
// kernels rely on (not made on Meta tensors, as aten's Meta functions make
// none): indices of int64, grad_output and indices of the forward output's
// shape (`expected`), one device.
void check_fits_kernels(const char* op, const at::Tensor& grad_output, const at::Tensor& input,
                        const at::Tensor& indices, c10::IntArrayRef expected) {
  TORCH_CHECK(indices.scalar_type() == at::kLong, "expected scalar type Long but found ", indices.scalar_type());
  TORCH_CHECK(grad_output.sizes() == expected, op, ": grad_output must have size ", expected,
              " (the forward output's), but got ", grad_output.sizes());
  TORCH_CHECK(indices.sizes() == expected, op, ": indices must have size ", expected,
              " (the forward output's), but got ", indices.sizes());
  TORCH_CHECK(grad_output.device() == input.device() && indices.device() == input.device(), op,
              ": grad_output, input and indices must be on the same device, but got ", grad_output.device(), ", ",
              input.device(), " and ", indices.device());
}

// max_pool2d_with_indices_backward / max_pool3d_with_indices_backward.
template <typename T>
void check_window_backward(int dims, const at::Tensor& grad_output, const at::Tensor& input,
                           c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
                           c10::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices) {
  const Style st = style_of(input);
  const c10::ArrayRef<T> sizes = sizes_of<T>(input);
  const int64_t ndim = input.dim();
  const WindowArgs w = unpack_window_args(st, dims, kernel_size, stride, padding, dilation);
  if (dims == 2) {
    if (st == Style::cpp) check_grad_dtype(st, "expected", input, grad_output, "gradOutput");
    check_2d_input_rank(st, input);
    const std::vector<T> out = window_output_sizes<T>(st, sizes, w, ceil_mode);
    pool2d_shape_check<T>(st, sizes, w, out, input.suggest_memory_format());
    if (st == Style::meta) check_grad_dtype(st, "Expected", input, grad_output, "gradOutput");
    for (const at::Tensor* t : {&grad_output, &indices}) {
      check_dim_size<T>(st, *t, ndim, ndim - 3, sizes[ndim - 3]);
      check_dim_size<T>(st, *t, ndim, ndim - 2, out[0]);
      check_dim_size<T>(st, *t, ndim, ndim - 1, out[1]);
    }
    if (st == Style::cpp && ndim == 4)
      for (const at::Tensor* t : {&grad_output, &indices}) check_dim_size<T>(st, *t, ndim, 0, sizes[0]);
    return;
  }
  // aten's 3-d backward takes the output sizes from grad_output.
  if (st == Style::cpp) check_grad_dtype(st, "expected", input, grad_output, "gradOutput");
  if (input.is_cuda()) {  // torch's CUDA op: its own words (naming the 2-d op), no memory format refused
    TORCH_CHECK(ndim == 4 || ndim == 5, "max_pool2d_with_indices_backward_out_cuda_template(): ",
                "Expected 4D or 5D input tensor, but got ", input.sizes());
    TORCH_CHECK(grad_output.dim() == 4 || grad_output.dim() == 5,
                "max_pool2d_with_indices_backward_out_cuda_template(): ",
                "Expected 4D or 5D gradOutput tensor, but got ", grad_output.sizes());
  } else {
    check_3d_input_rank(st, input);
  }
  for (int64_t d = -3; d < 0; ++d) (void)grad_output.sym_size(d);  // an IndexError below three dims
  const c10::ArrayRef<T> grad_sizes = sizes_of<T>(grad_output);
  const std::vector<T> grad_out(grad_sizes.end() - 3, grad_sizes.end());
  pool3d_shape_check<T>(st, pool3d_fn(input, true), sizes, w, grad_out);
  for (const at::Tensor* t : {&grad_output, &indices}) {
    check_dim_size<T>(st, *t, ndim, ndim - 4, sizes[ndim - 4]);
    for (int i = 0; i < 3; ++i) check_dim_size<T>(st, *t, ndim, ndim - 3 + i, grad_out[i]);
  }
}

// adaptive_max_pool2d_backward / adaptive_max_pool3d_backward.
template <typename T>
void check_adaptive_backward(int dims, const at::Tensor& grad_output, const at::Tensor& input) {
  const Style st = style_of(input);
  const c10::ArrayRef<T> grad_sizes = sizes_of<T>(grad_output);
  const int64_t grad_dim = grad_output.dim();
  const std::string op = op_name("adaptive_max_pool", dims) + "_backward";
  if (dims == 2) {
    TORCH_CHECK(grad_dim == 3 || grad_dim == 4, "adaptive_max_pooling2d_backward(): Expected 3D or 4D grad_output, ",
                "but got: ", shape_str(st, grad_sizes));
  } else if (st == Style::cpp) {
    TORCH_CHECK(grad_dim == 4 || grad_dim == 5, op, "(): Expected 4D or 5D gradOutput, but got: ",
                shape_str(st, grad_sizes));
  }
  for (int64_t d = 1; d < grad_dim; ++d)
    TORCH_CHECK(grad_sizes[d] > 0, op, "(): Expected grad_output to have non-zero size for non-batch dimensions, ",
                "but grad_output has sizes ", shape_str(st, grad_sizes), " with dimension ", d, " being empty");
  if (dims == 2 || st == Style::cpp)
    check_grad_dtype(st, "expected", input, grad_output, dims == 2 ? "grad_output" : "gradOutput");
}

}  // namespace

PoolArgs check_max_pool_backward(int sd, const at::Tensor& grad_output, const at::Tensor& input,
                                 c10::IntArrayRef kernel_size, c10::IntArrayRef stride, c10::IntArrayRef padding,
                                 c10::IntArrayRef dilation, bool ceil_mode, const at::Tensor& indices) {
  if (sd == 1) {
    // torch's 1-d pooling is its 2-d op over (N,) C, 1, L; so is its gradient.
    check_one_int("max_pool1d", "kernel_size", kernel_size);
    if (!stride.empty()) check_one_int("max_pool1d", "stride", stride);
    check_one_int("max_pool1d", "padding", padding);
    check_one_int("max_pool1d", "dilation", dilation);
  }
  const auto lifted = [&](c10::IntArrayRef v, int64_t fill) {
    return sd == 1 ? lift_to_2d(v, fill) : v.vec();
  };
  const auto as_2d = [&](const at::Tensor& t) { return sd == 1 ? t.unsqueeze(-2) : t; };
  const int dims = sd == 1 ? 2 : sd;
  if (input.is_meta()) {
    check_window_backward<c10::SymInt>(dims, as_2d(grad_output), as_2d(input), lifted(kernel_size, 1),
                                       lifted(stride, 1), lifted(padding, 0), lifted(dilation, 1), ceil_mode,
                                       as_2d(indices));
    return pool_args(sd, kernel_size, stride, padding, dilation, ceil_mode);
  }
  check_window_backward<int64_t>(dims, as_2d(grad_output), as_2d(input), lifted(kernel_size, 1), lifted(stride, 1),
                                 lifted(padding, 0), lifted(dilation, 1), ceil_mode, as_2d(indices));
  PoolArgs args;
  const std::vector<int64_t> expected = max_pool_output_shape<int64_t>(
      sd, PoolCall::with_indices, input, kernel_size, stride, padding, dilation, ceil_mode, &args);
  check_fits_kernels(op_name("max_pool", sd).append("_with_indices_backward").c_str(), grad_output, input, indices,
                     expected);
  return args;
}

void check_adaptive_pool_backward(int sd, const at::Tensor& grad_output, const at::Tensor& input,
                                  const at::Tensor& indices) {
  // 1-d: torch's gradient is its 2-d op's over (N,) C, 1, L.
  const at::Tensor grad2 = sd == 1 ? grad_output.unsqueeze(-2) : grad_output;
  const at::Tensor input2 = sd == 1 ? input.unsqueeze(-2) : input;
  const int dims = sd == 1 ? 2 : sd;
  if (input.is_meta()) {
    check_adaptive_backward<c10::SymInt>(dims, grad2, input2);
    return;
  }
  check_adaptive_backward<int64_t>(dims, grad2, input2);
  // What fastpool's kernels rely on: grad_output and indices of one shape, of
  // the input's rank, leading dims and (indices computed by a forward over it)
  // spatial dims of an output of it.
  std::vector<int64_t> expected = input.sizes().vec();
  const int64_t ndim = input.dim();
  TORCH_CHECK(grad_output.dim() == ndim, op_name("adaptive_max_pool", sd), "_backward: grad_output must have ", ndim,
              " dims (the input's), but got ", grad_output.sizes());
  for (int i = 0; i < sd; ++i) expected[ndim - sd + i] = grad_output.size(ndim - sd + i);
  check_fits_kernels((op_name("adaptive_max_pool", sd) + "_backward").c_str(), grad_output, input, indices, expected);
}

}  // namespace fastpool

namespace fastpool {

at::ScalarType window_pool_argmax_dtype(const PoolArgs& args) {
  int64_t taps = 1;
  for (int64_t k : args.kernel) taps = taps > INT32_MAX / k ? int64_t{INT32_MAX} + 1 : taps * k;
  if (taps <= 255) return at::kByte;
  return taps <= INT32_MAX ? at::kInt : at::kLong;
}

template <typename T>
void check_offsets_backward(const char* op, const at::Tensor& grad_output, const at::Tensor& offsets,
                            c10::ArrayRef<T> expected_shape, at::ScalarType expected_dtype) {
  TORCH_CHECK(sizes_of<T>(grad_output).equals(expected_shape), op, ": grad_output must have size ", expected_shape,
              " (the forward output's), but got ", sizes_of<T>(grad_output));
  TORCH_CHECK(sizes_of<T>(offsets).equals(expected_shape), op, ": offsets must have size ", expected_shape,
              " (the forward output's), but got ", sizes_of<T>(offsets));
  TORCH_CHECK(offsets.scalar_type() == expected_dtype, op, ": offsets must be ", expected_dtype,
              " (what the forward writes for these windows), but got ", offsets.scalar_type());
  TORCH_CHECK(at::isFloatingType(grad_output.scalar_type()), op, ": grad_output must be floating point, but got ",
              grad_output.scalar_type());
  TORCH_CHECK(grad_output.device() == offsets.device(), op, ": grad_output and offsets must be on the same device, but got ",
              grad_output.device(), " and ", offsets.device());
}
template void check_offsets_backward<int64_t>(const char*, const at::Tensor&, const at::Tensor&,
                                              c10::ArrayRef<int64_t>, at::ScalarType);
template void check_offsets_backward<c10::SymInt>(const char*, const at::Tensor&, const at::Tensor&,
                                                  c10::ArrayRef<c10::SymInt>, at::ScalarType);

namespace {


// The input_size of an offsets backward: (N,) C, then spatial_dims sizes.
template <typename T>
void check_input_size_rank(int sd, const char* op, c10::ArrayRef<T> input_size) {
  const auto ndim = static_cast<int64_t>(input_size.size());
  TORCH_CHECK(ndim == sd + 1 || ndim == sd + 2, op, ": input_size must have ", sd + 1, " or ", sd + 2,
              " entries, but got ", input_size);
}
}  // namespace

template <typename T>
PoolArgs check_window_offsets_backward(int sd, const char* op, const at::Tensor& grad_output,
                                       const at::Tensor& offsets, c10::ArrayRef<T> input_size,
                                       c10::IntArrayRef kernel_size, c10::IntArrayRef stride,
                                       c10::IntArrayRef padding, c10::IntArrayRef dilation, bool ceil_mode) {
  check_input_size_rank<T>(sd, op, input_size);
  // The forward's checks on the sizes, as its with_indices op makes them
  // (1-d: the 2-d op's, over (N,) C, 1, L); the input was planar or channels
  // last, which the checks of a batched input do not tell apart.
  const Style st = style_of(grad_output);
  const int dims = sd == 1 ? 2 : sd;
  if (sd == 1) {
    check_one_int(op, "kernel_size", kernel_size);
    check_one_int(op, "stride", stride.empty() ? kernel_size : stride);
    check_one_int(op, "padding", padding);
    check_one_int(op, "dilation", dilation);
  }
  c10::SmallVector<T, 5> sizes(input_size.begin(), input_size.end());  // (no allocation: a per-step path)
  if (sd == 1) sizes.insert(sizes.end() - 1, T(1));
  const auto lift = [sd](c10::IntArrayRef v, int64_t fill) {
    c10::SmallVector<int64_t, 3> out(v.begin(), v.end());
    if (sd == 1 && !v.empty()) out.insert(out.begin(), fill);
    return out;
  };
  const WindowArgs w =
      unpack_window_args(st, dims, lift(kernel_size, 1), lift(stride, 1), lift(padding, 0), lift(dilation, 1));
  const std::vector<T> spatial = window_output_sizes<T>(st, sizes, w, ceil_mode);
  if (dims == 2) pool2d_shape_check<T>(st, sizes, w, spatial, at::MemoryFormat::Contiguous);
  else pool3d_shape_check<T>(st, op, sizes, w, spatial);
  std::vector<T> expected(input_size.begin(), input_size.end());
  std::copy(spatial.end() - sd, spatial.end(), expected.end() - sd);
  const PoolArgs args = pool_args(sd, kernel_size, stride, padding, dilation, ceil_mode);
  check_offsets_backward<T>(op, grad_output, offsets, expected, window_pool_argmax_dtype(args));
  return args;
}

template <typename T>
void check_adaptive_offsets_backward(int sd, const char* op, const at::Tensor& grad_output,
                                     const at::Tensor& offsets, c10::ArrayRef<T> input_size) {
  check_input_size_rank<T>(sd, op, input_size);
  TORCH_CHECK(grad_output.dim() == static_cast<int64_t>(input_size.size()), op,
              ": grad_output must have as many dims as the input, but got ", sizes_of<T>(grad_output),
              " for input size ", input_size);
  // The output size is a list of ints in the forward's schema: concrete.
  std::vector<int64_t> output_size;
  for (const T& o : sizes_of<T>(grad_output).slice(grad_output.dim() - sd)) {
    if constexpr (std::is_same_v<T, c10::SymInt>) output_size.push_back(o.guard_int(__FILE__, __LINE__));
    else output_size.push_back(o);
  }
  const std::vector<T> expected = adaptive_output_shape<T>(style_of(grad_output), sd, input_size, output_size);
  check_offsets_backward<T>(op, grad_output, offsets, expected, kAdaptiveArgmaxDtype);
}

template PoolArgs check_window_offsets_backward<int64_t>(int, const char*, const at::Tensor&, const at::Tensor&,
                                                         c10::ArrayRef<int64_t>, c10::IntArrayRef,
                                                         c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, bool);
template PoolArgs check_window_offsets_backward<c10::SymInt>(int, const char*, const at::Tensor&, const at::Tensor&,
                                                             c10::ArrayRef<c10::SymInt>, c10::IntArrayRef,
                                                             c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef,
                                                             bool);
template void check_adaptive_offsets_backward<int64_t>(int, const char*, const at::Tensor&, const at::Tensor&,
                                                       c10::ArrayRef<int64_t>);
template void check_adaptive_offsets_backward<c10::SymInt>(int, const char*, const at::Tensor&, const at::Tensor&,
                                                           c10::ArrayRef<c10::SymInt>);

}  // namespace fastpool

namespace fastpool {

namespace {
// aten's CUDA unpooling checks, in their order and wording (which differ from
// its CPU ones; taken from PyTorch's source, there being no GPU in CI).
void check_unpool_cuda(int sd, const at::Tensor& input, const at::Tensor& indices, size_t output_dims,
                       c10::IntArrayRef stride, c10::IntArrayRef padding) {
  const int64_t ndim = input.dim();
  const std::string fn = op_name("max_unpooling", sd) + "_forward_out_cuda()";
  TORCH_CHECK(indices.scalar_type() == at::kLong, "elements in indices should be type int64 but got: ",
              indices.scalar_type());
  const auto non_empty = [&] {
    for (int64_t d = 1; d < ndim; ++d)
      TORCH_CHECK(input.size(d) > 0, fn, ": Expected input to have non-zero size for non-batch dimensions, but got ",
                  input.sizes(), " with dimension ", d, " being empty.");
  };
  const auto same_shape = [&] {
    TORCH_CHECK(input.sizes() == indices.sizes(), "Expected shape of indices to be: ", input.sizes(), " but got: ",
                indices.sizes());
  };
  if (sd == 2) {
    TORCH_CHECK(indices.device() == input.device(), "max_unpool2d: indices must be on the input's device (",
                input.device(), "), but got ", indices.device());
    non_empty();
    TORCH_CHECK(ndim == 3 || ndim == 4, "Input to max_unpooling2d should be a 3d or 4d Tensor, but got tensor with ",
                "dimension: ", ndim);
    same_shape();
    TORCH_CHECK(output_dims == 2, "There should be exactly two elements (height, width) in output_size, but got ",
                output_dims, " elements.");
    return;
  }
  TORCH_CHECK(ndim == 4 || ndim == 5, "Input to max_unpooling3d should be a 4d or 5d Tensor, but got a tensor ",
              "with dim ", ndim);
  TORCH_CHECK(output_dims == 3,
              "There should be exactly three elements (depth, height, width) in output_size, but got ", output_dims,
              " elements.");
  TORCH_CHECK(stride.size() == 3, "There should be exactly three elements (depth, height, width) in stride, but got: ",
              stride.size(), " elements.");
  TORCH_CHECK(padding.size() == 3,
              "There should be exactly three elements (depth, height, width) in padding, but got: ", padding.size(),
              " elements.");
  same_shape();
  non_empty();
  TORCH_CHECK(stride[0] > 0 && stride[1] > 0 && stride[2] > 0, "strides should be greater than zero, but got stride: ",
              stride);
}
}  // namespace

namespace {
// aten's CPU checks (its C++ wording) and its Meta functions' (their wording).
template <typename T>
void check_unpool_cpu_or_meta(int sd, const at::Tensor& input, const at::Tensor& indices, size_t output_dims,
                              c10::IntArrayRef stride, c10::IntArrayRef padding) {
  const Style st = style_of(input);
  const c10::ArrayRef<T> sizes = sizes_of<T>(input);
  const int64_t ndim = input.dim();
  if (sd == 2) {
    // aten's 2-d check names the dtype (Int; torch.int32 on Meta), its 3-d one does not.
    TORCH_CHECK(indices.scalar_type() == at::kLong, "elements in indices should be type int64 but got: ",
                st == Style::meta ? "torch." + std::string(c10::getDtypeNames(indices.scalar_type()).first)
                                  : std::string(c10::toString(indices.scalar_type())));
    TORCH_CHECK(output_dims == 2, "There should be exactly two elements (height, width) in output_size, but got ",
                output_dims, " elements.");
    TORCH_CHECK(ndim == 3 || ndim == 4, "Input to max_unpooling2d should be a 3d or 4d Tensor, but got a tensor ",
                "with ", ndim, " dimensions.");
  } else {
    TORCH_CHECK(indices.scalar_type() == at::kLong, "elements in indices should be type int64");
    TORCH_CHECK(ndim == 4 || ndim == 5, "Input to max_unpooling3d should be a 4d or 5d Tensor, but got a tensor ",
                "with ", ndim, " dimensions.");
    TORCH_CHECK(output_dims == 3,
                "There should be exactly three elements (depth, height, width) in output_size, but got ", output_dims,
                " elements.");
    TORCH_CHECK(stride.size() == 3,
                "There should be exactly three elements (depth, height, width) in stride, but got: ", stride.size(),
                " elements.");
    TORCH_CHECK(padding.size() == 3,
                "There should be exactly three elements (depth, height, width) in padding, but got: ", padding.size(),
                " elements.");
  }
  const c10::ArrayRef<T> index_sizes = sizes_of<T>(indices);
  TORCH_CHECK(sizes.equals(index_sizes), "Expected shape of indices to be same as that of the input tensor (",
              shape_str(st, sizes), ") but got indices tensor with shape: ", shape_str(st, index_sizes));
  // Dims 1.. only: an unbatched input may have no channels.
  const std::string op = op_name("max_unpooling", sd);
  const std::string fn = st == Style::meta ? op : op + "_forward_out_cpu";
  for (int64_t d = 1; d < ndim; ++d)
    TORCH_CHECK(sizes[d] > 0, fn, "(): Expected input to have non-zero size for non-batch dimensions, but got ",
                shape_str(st, sizes), " with dimension ", d, " being empty.");
  if (sd == 3)
    TORCH_CHECK(stride[0] > 0 && stride[1] > 0 && stride[2] > 0,
                "strides should be greater than zero, but got stride: ", stride);
}
}  // namespace

template <typename T>
std::vector<T> unpool_output_shape(int sd, const at::Tensor& input, const at::Tensor& indices,
                                   c10::ArrayRef<T> output_size, c10::IntArrayRef stride, c10::IntArrayRef padding) {
  const Style st = style_of(input);
  const c10::ArrayRef<T> sizes = sizes_of<T>(input);
  const int64_t ndim = input.dim();
  const std::string op = op_name("max_unpooling", sd);
  if (std::is_same_v<T, int64_t> && input.is_cuda()) {  // (a fake CUDA tensor: the Meta wording)
    check_unpool_cuda(sd, input, indices, output_size.size(), stride, padding);
  } else {
    check_unpool_cpu_or_meta<T>(sd, input, indices, output_size.size(), stride, padding);
  }
  for (int i = 0; i < sd; ++i) {
    if (output_size[i] >= 0) continue;
    std::ostringstream os;  // aten's C++ prints every size, its Meta functions the first negative one
    if (st == Style::meta) {
      os << "output_size[" << i << "]=" << output_size[i];
    } else {
      os << "output_size=(";
      for (int j = 0; j < sd; ++j) os << (j ? ", " : "") << output_size[j];
      os << ")";
    }
    TORCH_CHECK(false, op, "(): output_size must contain non-negative spatial dimensions, but got ", os.str());
  }
  TORCH_CHECK(indices.device() == input.device(), "max_unpool", sd, "d: indices must be on the input's device (",
              input.device(), "), but got ", indices.device());
  std::vector<T> out(sizes.begin(), sizes.end());
  for (int i = 0; i < sd; ++i) out[ndim - sd + i] = output_size[i];
  return out;
}

template std::vector<int64_t> unpool_output_shape<int64_t>(int, const at::Tensor&, const at::Tensor&,
                                                           c10::ArrayRef<int64_t>, c10::IntArrayRef, c10::IntArrayRef);
template std::vector<c10::SymInt> unpool_output_shape<c10::SymInt>(int, const at::Tensor&, const at::Tensor&,
                                                                   c10::ArrayRef<c10::SymInt>, c10::IntArrayRef,
                                                                   c10::IntArrayRef);

PoolLayout unpool_layout(const at::Tensor& input, int spatial_dims) {
  // PyTorch CUDA's kernel writes NCHW whatever the input's layout. A fake
  // tensor of a CUDA input reaches the Meta kernel with its CUDA device (if
  // the Meta tensor has lost it, the CPU rule applies).
  if (input.is_cuda()) return PoolLayout::planar;
  return spatial_dims == 2 && input.dim() == 4 && input.suggest_memory_format() == at::MemoryFormat::ChannelsLast
             ? PoolLayout::channels_last
             : PoolLayout::planar;
}

template <typename T>
void check_unpool_backward(int sd, const at::Tensor& grad_output, const at::Tensor& indices) {
  const std::string op = op_name("max_unpool", sd) + "_backward";
  TORCH_CHECK(indices.scalar_type() == at::kLong, op, ": indices must be int64, but got ", indices.scalar_type());
  TORCH_CHECK(at::isFloatingType(grad_output.scalar_type()), op, ": grad_output must be floating point, but got ",
              grad_output.scalar_type());
  const int64_t ndim = indices.dim();
  TORCH_CHECK(ndim == sd + 1 || ndim == sd + 2, op, ": indices must have ", sd + 1, " or ", sd + 2,
              " dims, but got ", ndim);
  const c10::ArrayRef<T> grad_sizes = sizes_of<T>(grad_output), index_sizes = sizes_of<T>(indices);
  const bool same_leading_dims =
      grad_output.dim() == ndim && grad_sizes.slice(0, ndim - sd).equals(index_sizes.slice(0, ndim - sd));
  TORCH_CHECK(same_leading_dims, op, ": grad_output must have the indices' rank and leading dims, but got ",
              grad_sizes, " for indices of size ", index_sizes);
  TORCH_CHECK(grad_output.device() == indices.device(), op,
              ": grad_output and indices must be on the same device, but got ", grad_output.device(), " and ",
              indices.device());
}

template void check_unpool_backward<int64_t>(int, const at::Tensor&, const at::Tensor&);
template void check_unpool_backward<c10::SymInt>(int, const at::Tensor&, const at::Tensor&);

void throw_invalid_unpool_index(int64_t index, c10::IntArrayRef output_spatial) {
  std::ostringstream sizes;
  for (size_t i = 0; i < output_spatial.size(); ++i) sizes << (i ? "x" : "") << output_spatial[i];
  TORCH_CHECK(false, "Found an invalid max index: ", index, " (output volumes are of size ", sizes.str(), ")");
}

void throw_invalid_unpool_gradient_index(int64_t index, int64_t dim, int64_t plane) {
  TORCH_CHECK(false, "index ", index, " is out of bounds for dimension ", dim, " with size ", plane);
}

}  // namespace fastpool
