#include "pool_shape.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <sstream>
#include <type_traits>

namespace fastpool {
namespace {

const char* plural_ints(int n) {
  return n == 1 ? "a single int" : (n == 2 ? "a tuple of two ints" : "a tuple of three ints");
}

std::vector<int64_t> expand(const char* op, const char* name, c10::IntArrayRef value, int dims,
                            c10::IntArrayRef fallback, bool may_be_empty) {
  if (value.empty() && may_be_empty) return fallback.vec();
  TORCH_CHECK(value.size() == 1 || static_cast<int>(value.size()) == dims, op, ": ", name,
              may_be_empty ? " must either be omitted, a single int, or " : " must either be a single int, or ",
              plural_ints(dims), ", but got ", value);
  std::vector<int64_t> out(dims);
  for (int i = 0; i < dims; ++i) out[i] = value[value.size() == 1 ? 0 : i];
  return out;
}

std::string join(const std::vector<int64_t>& v) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "x" : "") << v[i];
  return os.str();
}

}  // namespace

PoolArgs normalize_pool_args(const char* op, int spatial_dims, c10::IntArrayRef kernel_size,
                             c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                             bool ceil_mode) {
  PoolArgs a;
  a.spatial_dims = spatial_dims;
  a.ceil_mode = ceil_mode;
  a.kernel = expand(op, "kernel_size", kernel_size, spatial_dims, {}, false);
  a.stride = expand(op, "stride", stride, spatial_dims, a.kernel, true);
  a.pad = expand(op, "padding", padding, spatial_dims, {}, false);
  a.dilation = expand(op, "dilation", dilation, spatial_dims, {}, false);
  for (int i = 0; i < spatial_dims; ++i) {
    TORCH_CHECK(a.kernel[i] > 0, op, ": kernel_size must be greater than zero, but got ", kernel_size);
    TORCH_CHECK(a.stride[i] > 0, op, ": stride must be greater than zero, but got ", c10::IntArrayRef(a.stride));
    TORCH_CHECK(a.dilation[i] > 0, op, ": dilation must be greater than zero, but got ", dilation);
    TORCH_CHECK(a.pad[i] >= 0, op, ": padding must be non-negative, but got ", padding);
    // PyTorch bounds padding by half the kernel itself (pool2d_shape_check:
    // kW/2 >= padW), in 1d too: its max_pool1d checks half the dilated kernel
    // and then runs the 2-d check.
    TORCH_CHECK(a.pad[i] <= a.kernel[i] / 2, op,
                ": pad should be smaller than or equal to half of kernel size, but got padding=",
                padding, ", kernel_size=", kernel_size, " and dilation=", dilation);
  }
  return a;
}

template <typename T>
std::vector<T> max_pool_output_shape(const char* op, c10::ArrayRef<T> sizes, const PoolArgs& a) {
  const int sd = a.spatial_dims;
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  bool ok = ndim == sd + 1 || ndim == sd + 2;
  // Every dim but an optional batch dim must be non-empty (PyTorch's rule).
  for (int64_t d = (ndim == sd + 2 ? 1 : 0); ok && d < ndim; ++d) ok = !(sizes[d] == 0);
  TORCH_CHECK(ok, op, ": expected input of ", sd + 1, "D (unbatched) or ", sd + 2,
              "D (batched) with non-zero sizes except an optional zero batch size, but got input of size ", sizes);
  std::vector<T> out(sizes.begin(), sizes.end());
  bool too_small = false;
  for (int i = 0; i < sd; ++i) {
    const int64_t d = ndim - sd + i;
    out[d] = pool_output_size<T>(sizes[d], a.kernel[i], a.stride[i], a.pad[i], a.dilation[i], a.ceil_mode);
    too_small = too_small || out[d] < 1;
  }
  TORCH_CHECK(!too_small, op, ": given input size ", sizes, ", the calculated output size ", c10::ArrayRef<T>(out),
              " is too small (kernel_size=", c10::IntArrayRef(a.kernel), ", stride=", c10::IntArrayRef(a.stride),
              ", padding=", c10::IntArrayRef(a.pad), ", dilation=", c10::IntArrayRef(a.dilation), ")");
  return out;
}

template std::vector<int64_t> max_pool_output_shape<int64_t>(const char*, c10::ArrayRef<int64_t>, const PoolArgs&);
template std::vector<c10::SymInt> max_pool_output_shape<c10::SymInt>(const char*, c10::ArrayRef<c10::SymInt>,
                                                                      const PoolArgs&);

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
      TORCH_CHECK(input.suggest_memory_format() != at::MemoryFormat::ChannelsLast,
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
at::Tensor empty_in_layout(c10::ArrayRef<T> sizes, const at::TensorOptions& options, PoolLayout layout,
                           int spatial_dims) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  std::vector<T> stored(sizes.begin(), sizes.end());
  if (layout == PoolLayout::channels_last) {
    const std::vector<int64_t> order = channels_last_order(ndim, spatial_dims);
    for (int64_t i = 0; i < ndim; ++i) stored[i] = sizes[order[i]];
  }
  at::Tensor t;
  if constexpr (std::is_same_v<T, c10::SymInt>) t = at::empty_symint(stored, options);
  else t = at::empty(stored, options);
  return layout == PoolLayout::channels_last ? t.permute(channels_first_order(ndim, spatial_dims)) : t;
}
template at::Tensor empty_in_layout<int64_t>(c10::ArrayRef<int64_t>, const at::TensorOptions&, PoolLayout, int);
template at::Tensor empty_in_layout<c10::SymInt>(c10::ArrayRef<c10::SymInt>, const at::TensorOptions&, PoolLayout,
                                                 int);

at::Tensor contiguous_in(const at::Tensor& t, PoolLayout layout, int spatial_dims) {
  if (layout == PoolLayout::planar) return t.contiguous();
  const int64_t ndim = t.dim();
  return t.permute(channels_last_order(ndim, spatial_dims)).contiguous().permute(channels_first_order(ndim, spatial_dims));
}

MaxPoolPlan plan_max_pool(const char* op, int spatial_dims, const at::Tensor& input, c10::IntArrayRef kernel_size,
                          c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                          bool ceil_mode) {
  MaxPoolPlan plan;
  plan.args = normalize_pool_args(op, spatial_dims, kernel_size, stride, padding, dilation, ceil_mode);
  plan.out_shape = max_pool_output_shape<int64_t>(op, input.sizes(), plan.args);
  plan.layout = pool_layout(input, spatial_dims);
  return plan;
}

template <typename T>
std::vector<T> adaptive_pool_output_shape(const char* op, int sd, c10::ArrayRef<T> sizes,
                                          c10::IntArrayRef output_size) {
  const int64_t ndim = static_cast<int64_t>(sizes.size());
  if (sd == 1) {
    TORCH_CHECK(ndim == 2 || ndim == 3, "Expected 2 to 3 dimensions, but got ", ndim,
                "-dimensional tensor for argument #1 'self' (while checking arguments for ", op, ")");
  } else {
    TORCH_CHECK(ndim == sd + 1 || ndim == sd + 2, op, "(): Expected ", sd + 1, "D or ", sd + 2,
                "D tensor, but got: ", sizes);
  }
  for (int64_t d = ndim - sd - 1; d < ndim; ++d)
    TORCH_CHECK(!(sizes[d] == 0), op, "(): Expected input to have non-zero size for non-batch dimensions, "
                "but input has sizes ", sizes, " with dimension ", d, " being empty");
  TORCH_CHECK(static_cast<int>(output_size.size()) == sd, op, "(): internal error: output_size.size() must be ", sd);
  std::vector<T> out(sizes.begin(), sizes.end());
  for (int i = 0; i < sd; ++i) out[ndim - sd + i] = T(output_size[i]);
  for (int i = 0; i < sd; ++i) {
    if (output_size[i] >= 0) continue;
    // PyTorch's 1-d op runs its 2-d kernel on the input unsqueezed to (N,) C, 1, L.
    std::vector<T> shown = out;
    if (sd == 1) shown.insert(shown.end() - 1, T(1));
    TORCH_CHECK(false, "Trying to create tensor with negative dimension ", output_size[i], ": ",
                c10::ArrayRef<T>(shown));
  }
  return out;
}

template std::vector<int64_t> adaptive_pool_output_shape<int64_t>(const char*, int, c10::ArrayRef<int64_t>,
                                                                  c10::IntArrayRef);
template std::vector<c10::SymInt> adaptive_pool_output_shape<c10::SymInt>(const char*, int,
                                                                          c10::ArrayRef<c10::SymInt>,
                                                                          c10::IntArrayRef);

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

void check_adaptive_pool_backward(const char* op, int sd, const at::Tensor& grad_output, const at::Tensor& input,
                                  const at::Tensor& indices) {
  const int64_t ndim = input.dim();
  TORCH_CHECK(grad_output.dim() == ndim && indices.sizes() == grad_output.sizes(), op,
              ": grad_output and indices must have the forward output's size, but got ", grad_output.sizes(), " and ",
              indices.sizes(), " for input of size ", input.sizes());
  for (int64_t d = 0; d < ndim - sd; ++d)
    TORCH_CHECK(grad_output.size(d) == input.size(d), op, ": grad_output must have size ", input.sizes().slice(0, ndim - sd),
                " in its leading dims, but got ", grad_output.sizes());
  TORCH_CHECK(indices.scalar_type() == at::kLong, op, ": indices must be int64, but got ", indices.scalar_type());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(), op, ": grad_output must have the input's dtype ",
              input.scalar_type(), ", but got ", grad_output.scalar_type());
  TORCH_CHECK(grad_output.device() == input.device() && indices.device() == input.device(), op,
              ": grad_output, input and indices must be on the same device");
}

void check_max_pool_backward(const char* op, const at::Tensor& grad_output, const at::Tensor& input,
                             const at::Tensor& indices, const PoolArgs& args) {
  const auto expected = max_pool_output_shape<int64_t>(op, input.sizes(), args);
  TORCH_CHECK(grad_output.sizes() == c10::IntArrayRef(expected), op, ": grad_output must have size ",
              c10::IntArrayRef(expected), " (the forward output's), but got ", grad_output.sizes());
  TORCH_CHECK(indices.sizes() == c10::IntArrayRef(expected), op, ": indices must have size ",
              c10::IntArrayRef(expected), " (the forward output's), but got ", indices.sizes());
  TORCH_CHECK(indices.scalar_type() == at::kLong, op, ": indices must be int64, but got ", indices.scalar_type());
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(), op, ": grad_output must have the input's dtype ",
              input.scalar_type(), ", but got ", grad_output.scalar_type());
  TORCH_CHECK(grad_output.device() == input.device() && indices.device() == input.device(), op,
              ": grad_output, input and indices must be on the same device, but got ", grad_output.device(), ", ",
              input.device(), " and ", indices.device());
}

}  // namespace fastpool

namespace fastpool {

at::ScalarType window_pool_argmax_dtype(const PoolArgs& args) {
  int64_t taps = 1;
  for (int64_t k : args.kernel) taps = taps > INT32_MAX / k ? int64_t{INT32_MAX} + 1 : taps * k;
  if (taps <= 255) return at::kByte;
  return taps <= INT32_MAX ? at::kInt : at::kLong;
}

namespace {
template <typename T>
c10::ArrayRef<T> sizes_of(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, c10::SymInt>) return t.sym_sizes();
  else return t.sizes();
}
}  // namespace

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

}  // namespace fastpool
