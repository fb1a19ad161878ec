"""The CUDA fractional_max_pool{2,3}d op and its backward run by the host
executor (fastpool._C.cuda_host_fractional_max_pool*, csrc/cuda/
fractional_launcher.h: checks, allocation, kernel bodies, index width, grid,
with only the launch replaced by an emulation of the grid), against torch on
CPU on the same samples.

Where PyTorch CUDA differs from its CPU op, the reference is adjusted:
  * Half/BFloat16: torch's CUDA kernel computes the window starts in float
    (its accumulate type), its CPU kernel in the input's dtype; the reference
    is torch CPU's op on the float upcast of the input and the samples (both
    exact), the values cast back (exact: they are input values or -inf);
  * error messages: torch CUDA's kernels name themselves differently in dtype
    errors (2-d), word the 3-d backward's size checks differently, return on an
    empty grad_input before any dtype check and check grad_output's dtype
    against the input's the other way round;
  * the backward: PyTorch CUDA adds with atomicAdd in no fixed order; fastpool
    adds per plane in output raster order, rounded to the element type after
    every add: torch CPU's order and rounding, so its backward is the exact
    reference for every dtype, colliding indices included;
  * bad indices: PyTorch CUDA asserts on the device; fastpool raises the CPU
    op's error (after a sync) and writes nothing out of bounds.
"""
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpool import _C
from pool_cases import FLOAT_DTYPES, LAYOUTS, assert_identical, first_line, make_input

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def aten(dims, backward=False):
    return getattr(torch.ops.aten, f"fractional_max_pool{dims}d" + ("_backward" if backward else ""))


def host_forward(x, kernel, out, samples, **kw):
    return _C.cuda_host_fractional_max_pool(x, list(kernel), list(out), samples, **kw)


def host_backward(grad, x, kernel, out, indices, **kw):
    return _C.cuda_host_fractional_max_pool_backward(grad, x, list(kernel), list(out), indices, **kw)


def torch_cuda_forward(dims, x, kernel, out, samples):
    """PyTorch CUDA's result, from its CPU op: windows computed in float for half types."""
    if x.dtype in (torch.float16, torch.bfloat16):
        values, indices = aten(dims)(x.float(), list(kernel), list(out), samples.float())
        return values.to(x.dtype), indices
    return aten(dims)(x, list(kernel), list(out), samples)


@st.composite
def fractional_case(draw):
    dims = draw(st.sampled_from([2, 3]))
    max_in = {2: 14, 3: 7}[dims]
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    slack = 1 if dims == 3 else 0  # torch's 3-d op wants out + k - 1 < in, its 2-d op <= in
    sizes = tuple(draw(st.integers(k + slack, max(k + slack, max_in))) for k in kernel)
    out = tuple(draw(st.integers(1, n - k + 1 - slack)) for n, k in zip(sizes, kernel))
    batch = draw(st.sampled_from([None, 0, 1, 3]))
    channels = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(st.integers(0, 2**31 - 1))
    x = make_input(batch, channels, sizes, dtype, layout, seed, draw(st.sampled_from(["normal", "ties", "specials"])))
    g = torch.Generator().manual_seed(seed + 1)
    n = (1 if batch is None else batch) + draw(st.sampled_from([0, 2]))  # torch reads the first rows
    samples = torch.rand(n, channels, 2 * dims, generator=g, dtype=torch.float64).to(dtype)
    samples = samples[..., ::2] if draw(st.booleans()) else samples[..., :dims].contiguous()  # a view or not
    if batch is None:
        samples = samples[:1]
    return dims, kernel, out, x, samples


@PROPERTY
@given(case=fractional_case(), sm_count=st.sampled_from([1, 132]), index64=st.booleans())
def test_forward_and_backward_match_torch(case, sm_count, index64):
    dims, kernel, out, x, samples = case
    values, indices, info = host_forward(x, kernel, out, samples, sm_count=sm_count, force_index64=index64)
    expected = torch_cuda_forward(dims, x, kernel, out, samples)
    assert_identical(values, expected[0])
    assert_identical(indices, expected[1])
    if values.numel():
        assert [(launch["body"], launch["index_bits"]) for launch in info["launches"]] == [
            ("fractional_forward", 64 if index64 else 32)]
    # The backward: torch CPU's, bit for bit (same order and rounding), on the forward's indices.
    g = torch.Generator().manual_seed(5)
    grad = (torch.randn(values.shape, generator=g, dtype=torch.float64) * 10).to(x.dtype)
    gi, info = host_backward(grad, x, kernel, out, indices, sm_count=sm_count, force_index64=index64)
    assert_identical(gi, aten(dims, True)(grad, x, list(kernel), list(out), indices))
    if x.numel():
        assert [(launch["body"], launch["index_bits"]) for launch in info["launches"]] == [
            ("fractional_backward", 64 if index64 else 32)]


def offsets_dtype(kernel):
    return torch.uint8 if math.prod(max(k, 0) for k in kernel) <= 255 else torch.int32


@PROPERTY
@given(case=fractional_case(), sm_count=st.sampled_from([1, 132]), index64=st.booleans(),
       channels_last=st.booleans())
def test_training_ops_match_the_indices_ops(case, sm_count, index64, channels_last):
    """The CUDA training ops (autograd's path): with_offsets gives the forward's
    values and each argmax's tap (offsets_to_indices turns them back into the
    forward's indices), and offsets_backward, a gather over every input with
    the windows recomputed from the samples, gives the indices backward's
    bits (torch CPU's scatter order and rounding), in the layout asked for."""
    dims, kernel, out, x, samples = case
    kw = dict(sm_count=sm_count, force_index64=index64)
    values, indices, _ = host_forward(x, kernel, out, samples, **kw)
    values_t, taps, info = _C.cuda_host_fractional_with_offsets(x, list(kernel), list(out), samples, **kw)
    assert_identical(values_t, values)
    assert taps.dtype == offsets_dtype(kernel) and taps.shape == values.shape and taps.is_contiguous()
    if values.numel():
        assert [launch["body"] for launch in info["launches"]] == ["fractional_forward_taps"]
    sizes = list(x.shape)
    back, _ = _C.cuda_host_fractional_offsets_to_indices(taps, sizes, list(kernel), list(out), samples, **kw)
    assert_identical(back, indices)
    g = torch.Generator().manual_seed(7)
    grad = (torch.randn(values.shape, generator=g, dtype=torch.float64) * 10).to(x.dtype)
    expected, _ = host_backward(grad, x, kernel, out, indices, **kw)
    gi, info = _C.cuda_host_fractional_offsets_backward(grad, taps, sizes, list(kernel), list(out), samples,
                                                        channels_last, **kw)
    assert_identical(gi, expected, strides=False)
    # Channels last: C stored innermost, unbatched inputs too (pool_shape.h's empty_in_layout).
    assert (gi.movedim(-dims - 1, -1).is_contiguous() if channels_last else gi.is_contiguous())
    if x.numel():
        assert [(launch["body"], launch["index_bits"]) for launch in info["launches"]] == [
            ("fractional_offsets_backward", 64 if index64 else 32)]


@pytest.mark.parametrize("dims", [2, 3])
def test_offsets_outside_their_window(dims):
    """A tap past its window: offsets_to_indices raises the CPU op's error; the
    backward gather finds no input it names, so that output adds nothing (no
    sync to raise on it)."""
    x = torch.randn((2, 3) + (7,) * dims)
    samples = torch.rand(2, 3, dims, generator=torch.Generator().manual_seed(1))
    kernel, out = [2] * dims, [3] * dims
    _, indices, _ = host_forward(x, kernel, out, samples)
    _, taps, _ = _C.cuda_host_fractional_with_offsets(x, kernel, out, samples)
    bad = taps.clone()
    bad.view(-1)[4] = 2**dims  # one past the last tap
    with pytest.raises(RuntimeError, match=f"^fractional_max_pool{dims}d_offsets_to_indices: an offset lies "
                                           f"outside its window of {2**dims} taps"):
        _C.cuda_host_fractional_offsets_to_indices(bad, list(x.shape), kernel, out, samples)
    grad = torch.randn(taps.shape)
    gi, _ = _C.cuda_host_fractional_offsets_backward(grad, bad, list(x.shape), kernel, out, samples, False)
    dropped = grad.clone()
    dropped.view(-1)[4] = 0
    expected, _ = host_backward(dropped, x, kernel, out, indices)
    assert_identical(gi, expected)


@settings(max_examples=30, deadline=None)
@given(dims=st.sampled_from([2, 3]), dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**31 - 1),
       batch=st.sampled_from([None, 1, 3]), sm_count=st.sampled_from([1, 132]), layout=st.sampled_from(LAYOUTS))
def test_backward_with_colliding_indices(dims, dtype, seed, batch, sm_count, layout):
    """Any indices in the plane, many outputs sending their gradient to one
    input element: torch CPU's sums bit for bit (Half/BFloat16 rounded after
    every add, as torch's CPU kernel; torch CUDA's atomicAdd rounds the same
    way but in no fixed order), whatever the layouts of grad_output and indices."""
    g = torch.Generator().manual_seed(seed)
    sizes = (3, 4, 5)[-dims:]
    lead = ((batch,) if batch is not None else ()) + (3,)
    x = torch.randn(lead + sizes, generator=g).to(dtype)
    out = (2, 3, 2)[-dims:]
    indices = torch.randint(0, 4, lead + out, generator=g)
    grad = (torch.randn(lead + out, generator=g) * 100).to(dtype)
    expected = aten(dims, True)(grad, x, [2] * dims, list(out), indices)
    if layout == "channels_last" and batch is not None:
        fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
        grad, indices = grad.contiguous(memory_format=fmt), indices.contiguous(memory_format=fmt)
    gi, _ = host_backward(grad, x, [2] * dims, out, indices, sm_count=sm_count)
    assert_identical(gi, expected)


def test_degenerate_kernels_match_torch():
    """Kernel sizes <= 0 (torch accepts them): no taps, -inf at the window's start."""
    x4, s2 = torch.randn(2, 3, 10, 12), torch.rand(2, 3, 2)
    x5, s3 = torch.randn(2, 3, 6, 7, 8), torch.rand(2, 3, 3)
    for dims, x, s in ((2, x4, s2), (3, x5, s3)):
        for k in (0, -1):
            kernel, out = [k] + [2] * (dims - 1), [4] * dims
            try:
                expected = aten(dims)(x, kernel, out, s)
            except RuntimeError as e:  # torch 2.14 refuses them; the shared shape checks follow torch 2.13's
                pytest.skip(f"this torch refuses kernel sizes <= 0: {str(e).splitlines()[0]}")
            values, indices, _ = host_forward(x, kernel, out, s)
            assert_identical(values, expected[0])
            assert_identical(indices, expected[1])


def test_bad_indices_raise_the_cpu_error():
    """Indices outside the plane: nothing written out of bounds; the first in
    (N, C, output raster) order is named, as the CPU op names its plane's first."""
    x = torch.randn(2, 3, 6, 6)
    values, indices, _ = host_forward(x, [2, 2], [3, 3], torch.rand(2, 3, 2))
    grad = torch.randn_like(values)
    for bad, where in ((36, (1, 2, 2, 2)), (-1, (1, 0, 0, 1)), (1000, (0, 1, 1, 0))):
        indices[where] = bad
    with pytest.raises(RuntimeError, match=r"^fractional_max_pool2d_backward: index 1000 is outside the input "
                                           r"plane of 36 elements"):
        host_backward(grad, x, [2, 2], [3, 3], indices)
    with pytest.raises(RuntimeError, match=r"^fractional_max_pool2d_backward: index 1000 is outside"):
        torch.ops.fastpool.fractional_max_pool2d_backward(grad, x, [2, 2], [3, 3], indices)  # the CPU op's words
    x5 = torch.randn(4, 4, 4, 4)
    _, i3, _ = host_forward(x5, [2, 2, 2], [2, 2, 2], torch.rand(1, 4, 3))
    with pytest.raises(RuntimeError, match=r"^fractional_max_pool3d_backward: index 64 is outside"):
        host_backward(torch.randn(4, 2, 2, 2), x5, [2, 2, 2], [2, 2, 2], torch.full_like(i3, 64))


x4, s2 = torch.randn(2, 3, 10, 12), torch.rand(2, 3, 2)
x5, s3 = torch.randn(2, 3, 6, 7, 8), torch.rand(2, 3, 3)
# (dims, input, kernel, output_size, samples, torch CUDA's message where it differs from torch CPU's)
FORWARD_ERRORS = [
    (2, x4, [2, 2, 2], [5, 5], s2, None), (2, x4, [2, 2], [5], s2, None), (2, x4[0, 0], [2, 2], [5, 5], s2, None),
    (2, x4[:, :0], [2, 2], [5, 5], s2, None), (2, x4, [2, 2], [10, 5], s2, None),
    (2, x4, [2, 2], [5, 12], s2, None), (2, x4, [2, 2], [-1, 5], s2, None), (2, x4, [2, 2], [5, 5], s2[:1], None),
    (2, x4, [2, 2], [5, 5], s2[:, :2], None), (2, x4, [2, 2], [5, 5], s2.double(), None),
    (2, x4, [2, 2], [5, 5], torch.rand(2, 3, 3), None), (2, x4, [2, 2], [5, 5], torch.rand(6, 2), None),
    (2, x4.int(), [2, 2], [5, 5], s2.int(),
     (NotImplementedError, "\"fractional_max_pool2d_out_cuda_frame\" not implemented for 'Int'")),
    (2, x4.bool(), [2, 2], [5, 5], s2.bool(),
     (NotImplementedError, "\"fractional_max_pool2d_out_cuda_frame\" not implemented for 'Bool'")),
    (3, x5, [2, 2], [3, 3, 3], s3, None), (3, x5[0, 0], [2, 2, 2], [3, 3, 3], s3, None),
    (3, x5, [2, 2, 2], [6, 3, 3], s3, None), (3, x5, [2, 2, 2], [3, 3, 8], s3, None),
    (3, x5, [2, 2, 2], [3, 3, 3], s3[:1], None), (3, x5, [2, 2, 2], [3, 3, 3], s3[..., :2], None),
    (3, x5.int(), [2, 2, 2], [3, 3, 3], s3.int(), None), (3, x5, [2, 2, 2], [3, 3, 3], s3.double(), None),
]


@pytest.mark.parametrize("case", range(len(FORWARD_ERRORS)))
def test_forward_errors_match_torch_cuda(case):
    """torch CUDA shares its shape checks with its CPU op (one structured Meta
    function and the same sample checks); only the 2-d dispatch name differs."""
    dims, x, kernel, out, samples, cuda_message = FORWARD_ERRORS[case]
    expected = cuda_message or first_line(lambda: aten(dims)(x, kernel, out, samples))
    assert expected is not None
    assert first_line(lambda: host_forward(x, kernel, out, samples, dims=dims)) == expected


def _backward_cases():
    o2, i2 = aten(2)(x4, [2, 2], [5, 5], s2)
    g2 = torch.randn_like(o2)
    o3, i3 = aten(3)(x5, [2, 2, 2], [3, 3, 3], s3)
    g3 = torch.randn_like(o3)
    cuda3 = "fractional_max_pool3d_backward_out_cuda_template(): gradOutput {} unexpected"
    return [
        (2, (g2, x4, [2, 2], [4, 5], i2), None), (2, (g2, x4, [2, 2], [5, 4], i2), None),
        (2, (g2[:, :, :4], x4, [2, 2], [5, 5], i2), None), (2, (g2, x4, [2, 2], [5, 5], i2[:, :, :4]), None),
        (2, (g2, x4[0], [2, 2], [5, 5], i2), None),
        # torch CUDA dispatches on grad_output's dtype and reads grad_input (the input's dtype) as it
        (2, (g2.double(), x4, [2, 2], [5, 5], i2), (RuntimeError, "expected scalar type Double but found Float")),
        (2, (g2, x4.double(), [2, 2], [5, 5], i2), (RuntimeError, "expected scalar type Float but found Double")),
        (2, (g2, x4, [2, 2], [5, 5], i2.int()), None),
        (2, (g2.int(), x4.int(), [2, 2], [5, 5], i2),
         (NotImplementedError, "\"fractional_max_pool2d_backward_out_cuda_frame\" not implemented for 'Int'")),
        # 2-d reads the indices before it dispatches
        (2, (g2.double(), x4, [2, 2], [5, 5], i2.int()), (RuntimeError, "expected scalar type Long but found Int")),
        (3, (g3, x5, [2, 2, 2], [2, 3, 3], i3), (RuntimeError, cuda3.format("time"))),
        (3, (g3, x5, [2, 2, 2], [3, 2, 3], i3), (RuntimeError, cuda3.format("height"))),
        (3, (g3, x5, [2, 2, 2], [3, 3, 2], i3), (RuntimeError, cuda3.format("width"))),
        (3, (g3.double(), x5, [2, 2, 2], [3, 3, 3], i3),
         (RuntimeError, "expected scalar type Double but found Float")),
        (3, (g3, x5, [2, 2, 2], [3, 3, 3], i3.int()), None),
        (3, (g3.int(), x5.int(), [2, 2, 2], [3, 3, 3], i3.int()), None),
    ]


BACKWARD_ERRORS = _backward_cases()


@pytest.mark.parametrize("case", range(len(BACKWARD_ERRORS)))
def test_backward_errors_match_torch_cuda(case):
    dims, args, cuda_message = BACKWARD_ERRORS[case]
    expected = cuda_message or first_line(lambda: aten(dims, True)(*args))
    assert expected is not None
    assert first_line(lambda: host_backward(*args, dims=dims)) == expected


def test_empty_calls_skip_the_dtype_checks():
    """torch's CUDA ops return an empty result before they dispatch on the dtype."""
    values, indices, info = host_forward(torch.zeros(0, 3, 5, 5, dtype=torch.int32), [2, 2], [2, 2],
                                         torch.zeros(0, 3, 2, dtype=torch.int32))
    assert values.shape == indices.shape == (0, 3, 2, 2) and values.dtype == torch.int32
    assert info["launches"] == []
    gi, _ = host_backward(torch.zeros(0, 3, 2, 2), torch.zeros(0, 3, 5, 5, dtype=torch.int32), [2, 2], [2, 2],
                          torch.zeros(0, 3, 2, 2, dtype=torch.int32))
    assert gi.shape == (0, 3, 5, 5) and gi.dtype == torch.int32


def test_channels_last_input_gives_contiguous_outputs():
    """torch CUDA's outputs (and grad_input) are contiguous whatever the input's layout."""
    x = torch.randn(2, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    values, indices, _ = host_forward(x, [2, 2], [4, 4], torch.rand(2, 8, 2))
    assert values.is_contiguous() and indices.is_contiguous()
    gi, _ = host_backward(torch.randn_like(values), x, [2, 2], [4, 4], indices)
    assert gi.is_contiguous()


def test_large_planes_pick_64_bit_indexing():
    """A launch whose offsets pass 2^31 takes int64 (the plan alone: such tensors are too big to run here)."""
    plan = _C.cuda_launch_plan(work_items=2**20, max_offset=2**31 + 5)
    assert plan["index_bits"] == 64
