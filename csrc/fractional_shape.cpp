#include "fractional_shape.h"

#include "pool_shape.h"

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <climits>

#include <sstream>
#include <string>
#include <type_traits>

namespace fastpool {
namespace {

template <typename T>
c10::ArrayRef<T> sizes_of(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, c10::SymInt>) return t.sym_sizes();
  else return t.sizes();
}

template <typename T>
std::string shape_str(bool meta, c10::ArrayRef<T> sizes) {
  std::ostringstream os;
  if (meta) os << "torch.Size(";
  os << sizes;
  if (meta) os << ")";
  return os.str();
}

// The allocation of an output of negative size (torch's message).
template <typename T>
void check_nonnegative_shape(const std::vector<T>& shape) {
  for (const T& s : shape)
    TORCH_CHECK(s >= 0, "Trying to create tensor with negative dimension ", s, ": ", c10::ArrayRef<T>(shape));
}

// torch's kernels check the samples in this order, before dispatching on dtype.
void check_random_samples(int dims, const at::Tensor& input, const at::Tensor& samples, bool meta_wording) {
  const int64_t batch = input.dim() == dims + 2 ? input.size(0) : 1;
  const int64_t channels = input.size(input.dim() - dims - 1);
  TORCH_CHECK(input.scalar_type() == samples.scalar_type(), "Expect _random_samples to have the same dtype as input");
  if (meta_wording) {
    TORCH_CHECK(samples.dim() == 3, "Expect _random samples to have 3 dimensions got, ", samples.dim());
  } else {
    TORCH_CHECK(samples.dim() == 3, "Expect _random_samples to have 3 dimensions, got ", samples.dim());
  }
  TORCH_CHECK(samples.size(0) >= batch, "Expect _random_samples.size(0) no less then input batch size.");
  TORCH_CHECK(samples.size(1) == channels, "Expect _random_samples.size(1) equals to input channel size.");
  TORCH_CHECK(samples.size(2) == dims, "Expect _random_samples.size(2) equals to ", dims, meta_wording ? " got " : "; got ",
              samples.size(2), ".");
}

const char* const kAxisName[] = {"time", "height", "width"};

template <typename T>
std::vector<T> output_shape_of(c10::ArrayRef<T> sizes, int dims, c10::IntArrayRef output_size) {
  std::vector<T> shape(sizes.begin(), sizes.end() - dims);
  for (int64_t s : output_size) shape.push_back(T(s));
  return shape;
}

}  // namespace

const char* fractional_forward_kernel_name(int dims, bool cuda) {
  if (dims == 2) return cuda ? "fractional_max_pool2d_out_cuda_frame" : "fractional_max_pool2d_out_frame";
  return "fractional_max_pool3d_out_frame";
}
const char* fractional_backward_kernel_name(int dims, bool cuda) {
  if (dims == 2)
    return cuda ? "fractional_max_pool2d_backward_out_cuda_frame" : "fractional_max_pool2d_backward_out_frame";
  return "fractional_max_pool3d_backward_out_frame";
}

template <typename T>
std::vector<T> fractional_pool_output_shape(int dims, const at::Tensor& input, c10::IntArrayRef kernel_size,
                                            c10::IntArrayRef output_size, const at::Tensor& random_samples) {
  const c10::ArrayRef<T> sizes = sizes_of<T>(input);
  const int64_t ndim = input.dim();
  const bool meta = input.is_meta();
  if (meta && dims == 2) {
    // aten's Meta function for 2-d (torch/_meta_registrations.py): its own
    // wording and order, samples checked before the sizes.
    TORCH_CHECK(ndim == 3 || ndim == 4, "fractional_max_pool2d: Expected 3D or 4D tensor, but got: ", ndim);
    for (int64_t d = ndim - 3; d < ndim; ++d)
      TORCH_CHECK(sizes[d] > 0, "fractional_max_pool2d: Expected input to have non-zero  size for non-batch "
                  "dimensions, but got ", shape_str(true, sizes), " with dimension ", d, " empty");
    TORCH_CHECK(kernel_size.size() == 2, "fractional_max_pool2d: kernel_size musteither be a single int or tuple of Ints");
    TORCH_CHECK(output_size.size() == 2, "fractional_max_pool2d: output_size must either be a single int or tuple of Ints");
    check_random_samples(2, input, random_samples, true);
    TORCH_CHECK(output_size[0] + kernel_size[0] - 1 <= sizes[ndim - 2], "fractional_max_pool2d: kernel height ",
                kernel_size[0], " is too large relative to input height ", sizes[ndim - 2]);
    TORCH_CHECK(output_size[1] + kernel_size[1] - 1 <= sizes[ndim - 1], "fractional_max_pool2d: kernel width ",
                kernel_size[1], " is too large relative to input width ", sizes[ndim - 1]);
    const auto shape = output_shape_of<T>(sizes, dims, output_size);
    check_nonnegative_shape(shape);
    return shape;
  }
  // aten's C++ (its structured Meta function, then the kernel's sample checks).
  const std::string op = "fractional_max_pool" + std::to_string(dims) + "d";
  const std::string where = dims == 2 ? op + "()" : op + "_out()";
  TORCH_CHECK(static_cast<int>(kernel_size.size()) == dims, op, ": kernel_size must either be a single Int or tuple of ",
              dims == 2 ? "Ints" : "three Ints");
  TORCH_CHECK(static_cast<int>(output_size.size()) == dims, op, ": output_size must either be a single Int or tuple of ",
              dims == 2 ? "Ints" : "three Ints");
  TORCH_CHECK(ndim == dims + 1 || ndim == dims + 2, where, ": Expected ", dims + 1, "D or ", dims + 2,
              "D tensor, but got: ", sizes);
  for (int64_t d = 1; d < ndim; ++d)
    TORCH_CHECK(sizes[d] > 0, where, ": Expected input to have non-zero size for non-batch dimensions, but got",
                sizes, " with dimension ", d, " being empty.");
  for (int i = 0; i < dims; ++i) {
    const char* axis = kAxisName[3 - dims + i];
    // torch's 3-d check is one stricter than its 2-d one: output + k - 1 < in.
    const T& in = sizes[ndim - dims + i];
    TORCH_CHECK(dims == 2 ? output_size[i] + kernel_size[i] - 1 <= in : output_size[i] + kernel_size[i] - 1 < in,
                where, ": pool ", axis, " ",
                kernel_size[i], " too large relative to input ", axis, " ", sizes[ndim - dims + i]);
  }
  const auto shape = output_shape_of<T>(sizes, dims, output_size);
  check_nonnegative_shape(shape);
  if (!meta) check_random_samples(dims, input, random_samples, false);
  return shape;
}

template std::vector<int64_t> fractional_pool_output_shape<int64_t>(int, const at::Tensor&, c10::IntArrayRef,
                                                                    c10::IntArrayRef, const at::Tensor&);
template std::vector<c10::SymInt> fractional_pool_output_shape<c10::SymInt>(int, const at::Tensor&, c10::IntArrayRef,
                                                                            c10::IntArrayRef, const at::Tensor&);

void check_fractional_pool_backward(int dims, const at::Tensor& grad_output, const at::Tensor& input,
                                    c10::IntArrayRef output_size, const at::Tensor& indices, bool cuda) {
  const std::string op = "fractional_max_pool" + std::to_string(dims) + "d_backward";
  const auto in_sizes = input.sym_sizes();
  const int64_t ndim = input.dim();
  if (dims == 2) {
    // torch compares both with the input's sizes and output_size.
    std::vector<c10::SymInt> expected(in_sizes.begin(), in_sizes.end() - std::min<int64_t>(2, ndim));
    for (int64_t s : output_size) expected.emplace_back(s);
    TORCH_CHECK(grad_output.sym_sizes() == expected, op, "(): gradOutput sizes unexpected");
    TORCH_CHECK(indices.sym_sizes() == expected, op, "(): indices sizes unexpected");
  } else {
    // torch checks each spatial size of grad_output against output_size.
    const int64_t batched = ndim == 5 ? 1 : 0;
    for (int i = 0; i < 3 && i < static_cast<int>(output_size.size()); ++i) {
      const c10::SymInt size = grad_output.sym_size(batched + 1 + i);  // torch's IndexError when out of range
      TORCH_CHECK(size == output_size[i], op, cuda ? "_out_cuda_template(): " : "_out(): ", "gradOutput ",
                  kAxisName[i], " unexpected");
    }
    // What torch leaves unchecked (it reads outside the tensors otherwise).
    TORCH_CHECK(output_size.size() == 3, op, ": output_size must have three entries, but got ", output_size);
    TORCH_CHECK(ndim == 4 || ndim == 5, op, ": expected a 4D or 5D input, but got: ", in_sizes);
    std::vector<c10::SymInt> expected_sizes(in_sizes.begin(), in_sizes.end() - 3);
    for (int64_t s : output_size) expected_sizes.emplace_back(s);
    const c10::SymIntArrayRef expected(expected_sizes);
    TORCH_CHECK(grad_output.sym_sizes() == expected, op, ": grad_output of size ", expected,
                " expected, but got ", grad_output.sym_sizes());
    TORCH_CHECK(indices.sym_sizes() == expected, op, ": indices of size ", expected,
                " expected, but got ", indices.sym_sizes());
  }
  if (cuda) return;
  // torch's kernel: dispatch on the input's dtype, then typed reads.
  TORCH_CHECK_NOT_IMPLEMENTED(at::isFloatingType(input.scalar_type()), "\"", fractional_backward_kernel_name(dims),
                              "\" not implemented for '", input.scalar_type(), "'");
  TORCH_CHECK(grad_output.scalar_type() == input.scalar_type(), "expected scalar type ", input.scalar_type(),
              " but found ", grad_output.scalar_type());
  TORCH_CHECK(indices.scalar_type() == at::kLong, "expected scalar type Long but found ", indices.scalar_type());
}

at::ScalarType fractional_offsets_dtype(c10::IntArrayRef kernel_size) {
  int64_t taps = 1;
  for (int64_t k : kernel_size) taps = k <= 0 ? 0 : (taps > INT32_MAX / k ? int64_t{INT32_MAX} + 1 : taps * k);
  return taps <= 255 ? at::kByte : at::kInt;
}

template <typename T>
std::vector<T> check_fractional_offsets(int dims, const char* op, const at::Tensor* grad_output,
                                        const at::Tensor& offsets, c10::ArrayRef<T> input_size,
                                        c10::IntArrayRef kernel_size, c10::IntArrayRef output_size,
                                        const at::Tensor& random_samples) {
  const int64_t ndim = static_cast<int64_t>(input_size.size());
  TORCH_CHECK(static_cast<int>(kernel_size.size()) == dims && static_cast<int>(output_size.size()) == dims, op,
              ": kernel_size and output_size must have ", dims, " entries, but got ", kernel_size, " and ",
              output_size);
  TORCH_CHECK(ndim == dims + 1 || ndim == dims + 2, op, ": input_size must be (N,) C and ", dims,
              " spatial sizes, but got ", input_size);
  for (int64_t d = ndim - dims - 1; d < ndim; ++d)
    TORCH_CHECK(input_size[d] > 0, op, ": input_size must have non-empty planes, but got ", input_size);
  int64_t taps = 1;
  for (int i = 0; i < dims; ++i) {
    const T& in = input_size[ndim - dims + i];
    TORCH_CHECK(output_size[i] > 0 && output_size[i] + kernel_size[i] - 1 <= in, op, ": output_size ", output_size,
                " and kernel_size ", kernel_size, " do not fit input_size ", input_size);
    taps *= kernel_size[i] > 0 ? kernel_size[i] : 0;
  }
  TORCH_CHECK(taps <= INT32_MAX, op, ": windows of over 2^31-1 taps are not supported");
  std::vector<T> expected(input_size.begin(), input_size.end() - dims);
  for (int64_t s : output_size) expected.emplace_back(s);
  const c10::ArrayRef<T> shape(expected);
  const at::ScalarType dtype = fractional_offsets_dtype(kernel_size);
  if (grad_output) {
    check_offsets_backward<T>(op, *grad_output, offsets, shape, dtype);
  } else {  // offsets_to_indices: the offsets' part of those checks
    TORCH_CHECK(sizes_of<T>(offsets).equals(shape), op, ": offsets must have size ", shape,
                " (the forward output's), but got ", sizes_of<T>(offsets));
    TORCH_CHECK(offsets.scalar_type() == dtype, op, ": offsets must be ", dtype,
                " (what the forward writes for these windows), but got ", offsets.scalar_type());
  }
  const T batch = ndim == dims + 2 ? input_size[0] : T(1);
  TORCH_CHECK(at::isFloatingType(random_samples.scalar_type()) &&
                  (!grad_output || random_samples.scalar_type() == grad_output->scalar_type()),
              op, ": random_samples must be floating", grad_output ? " and of grad_output's dtype" : "", ", but got ",
              random_samples.scalar_type());
  TORCH_CHECK(random_samples.dim() == 3 && sizes_of<T>(random_samples)[0] >= batch &&
                  sizes_of<T>(random_samples)[1] == input_size[ndim - dims - 1] && sizes_of<T>(random_samples)[2] == dims,
              op, ": random_samples must have size (N, C, ", dims, ") for input_size ", input_size, ", but got ",
              sizes_of<T>(random_samples));
  TORCH_CHECK(offsets.device() == random_samples.device(), op, ": offsets and random_samples must be on the same device");
  return expected;
}

template std::vector<int64_t> check_fractional_offsets<int64_t>(int, const char*, const at::Tensor*, const at::Tensor&,
                                                                c10::ArrayRef<int64_t>, c10::IntArrayRef,
                                                                c10::IntArrayRef, const at::Tensor&);
template std::vector<c10::SymInt> check_fractional_offsets<c10::SymInt>(int, const char*, const at::Tensor*,
                                                                        const at::Tensor&, c10::ArrayRef<c10::SymInt>,
                                                                        c10::IntArrayRef, c10::IntArrayRef,
                                                                        const at::Tensor&);

void throw_invalid_fractional_index(int spatial_dims, int64_t index, int64_t in_plane) {
  TORCH_CHECK(false, "fractional_max_pool", spatial_dims, "d_backward: index ", index,
              " is outside the input plane of ", in_plane, " elements");
}

}  // namespace fastpool
