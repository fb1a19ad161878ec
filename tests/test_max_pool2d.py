"""fastpool.max_pool2d on the CPU against torch.nn.functional.max_pool2d:
values, indices, layouts, gradients, every ISA path, thread counts."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastpool
from pool_cases import (ALL_DTYPES, FLOAT_DTYPES, ISAS, LAYOUTS, assert_identical, cpu_isa, has_empty_window,
                        make_input, pool_params, torch_max_pool2d)

PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_forward(x, args, isa, expected):
    """Both forward ops on the given ISA path against torch's (values, indices)."""
    with cpu_isa(isa):
        out, idx = fastpool.max_pool2d(x, return_indices=True, **args)
        values_only = fastpool.max_pool2d(x, **args)
    assert_identical(out, expected[0])
    assert_identical(idx, expected[1])
    assert_identical(values_only, expected[0])


@st.composite
def forward_case(draw, dtypes=ALL_DTYPES):
    args, hw = draw(pool_params())
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))
    channels = draw(st.integers(1, 40))  # crosses every vector width, with remainders
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = draw(st.sampled_from(dtypes))
    special = draw(st.sampled_from(["normal", "ties", "specials"]))
    seed = draw(st.integers(0, 2**31 - 1))
    isa = draw(st.sampled_from(ISAS))
    return args, make_input(batch, channels, hw, dtype, layout, seed, special), isa


@PROPERTY
@given(case=forward_case())
def test_forward_matches_torch(case):
    args, x, isa = case
    check_forward(x, args, isa, torch_max_pool2d(x, **args))


# Wide rows and many channels, so every vector path (full chunks, overlapped
# last chunk, de-interleaving stride-2 loads) runs, not only the scalar edges.
@settings(max_examples=60, deadline=None)
@given(
    hw=st.tuples(st.integers(1, 8), st.integers(33, 140)),
    kernel=st.sampled_from([(2, 2), (3, 3), (1, 3), (3, 1), (2, 5), (4, 4)]),
    stride=st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 3), (3, 3)]),
    padding=st.sampled_from([(0, 0), (1, 1), (0, 1)]),
    dilation=st.sampled_from([(1, 1), (1, 2), (2, 1)]),
    ceil_mode=st.booleans(),
    layout=st.sampled_from(["contiguous", "channels_last"]),
    channels=st.sampled_from([1, 3, 16, 33, 64]),
    dtype=st.sampled_from(FLOAT_DTYPES),
    special=st.sampled_from(["normal", "ties", "specials"]),
    seed=st.integers(0, 2**31 - 1),
    isa=st.sampled_from(ISAS),
)
def test_forward_vector_paths(hw, kernel, stride, padding, dilation, ceil_mode, layout, channels, dtype, special, seed,
                              isa):
    padding = tuple(min(p, k // 2) for p, k in zip(padding, kernel))
    hw = tuple(max(n, (k - 1) * d + 1) for n, k, d in zip(hw, kernel, dilation))
    x = make_input(2, channels, hw, dtype, layout, seed, special)
    args = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    check_forward(x, args, isa, F.max_pool2d(x, return_indices=True, **args))


# Narrow rows with wide windows (global pooling, k >= 4 with stride > 2): one
# masked load per window row, then the lanes combined in scan order.
@settings(max_examples=80, deadline=None)
@given(
    kh=st.integers(1, 9), kw=st.integers(4, 17), extra_w=st.integers(0, 6), h_extra=st.integers(0, 3),
    stride=st.integers(3, 8), padding=st.integers(0, 2), ceil_mode=st.booleans(),
    layout=st.sampled_from(["contiguous", "sliced"]), channels=st.integers(1, 5),
    dtype=st.sampled_from(FLOAT_DTYPES), special=st.sampled_from(["normal", "ties", "specials"]),
    seed=st.integers(0, 2**31 - 1), isa=st.sampled_from(ISAS),
)
def test_forward_wide_windows_on_narrow_rows(kh, kw, extra_w, h_extra, stride, padding, ceil_mode, layout, channels,
                                             dtype, special, seed, isa):
    padding = min(padding, kh // 2, kw // 2)
    x = make_input(2, channels, (kh + h_extra, kw + extra_w), dtype, layout, seed, special)
    args = dict(kernel_size=(kh, kw), stride=stride, padding=padding, ceil_mode=ceil_mode)
    check_forward(x, args, isa, F.max_pool2d(x, return_indices=True, **args))


def _overlapping(args):
    k, s = args["kernel_size"], args["stride"]
    k = (k, k) if isinstance(k, int) else k
    s = k if s is None else ((s, s) if isinstance(s, int) else s)
    d = args["dilation"]
    d = (d, d) if isinstance(d, int) else d
    return any((ki - 1) * di + 1 > si for ki, si, di in zip(k, s, d))


@PROPERTY
@given(case=forward_case(dtypes=FLOAT_DTYPES))
def test_backward_matches_torch(case):
    args, x, isa = case
    assume(not has_empty_window(args, x.shape[-2:]))  # see test_windows_without_in_bounds_taps
    half = x.dtype in (torch.float16, torch.bfloat16)
    # float16/bfloat16 gradients accumulate in float and round once, so their
    # reference is torch's backward in float32 (same order of adds), rounded.
    ref_dtype = torch.float32 if half else x.dtype
    x_ref = x.detach().to(ref_dtype).requires_grad_()
    x_fp = x.detach().clone().requires_grad_()
    expected = F.max_pool2d(x_ref, **args)
    grad = torch.randn(expected.shape, dtype=torch.float64).to(x.dtype)
    if expected.dim() == 4 and expected.is_contiguous(memory_format=torch.channels_last):
        grad = grad.contiguous(memory_format=torch.channels_last)
    expected.backward(grad.to(ref_dtype))
    with cpu_isa(isa):
        out = fastpool.max_pool2d(x_fp, **args)
        out.backward(grad)
    assert_identical(out.detach(), F.max_pool2d(x, **args))
    assert_identical(x_fp.grad, x_ref.grad.to(x.dtype))
    if not half or not _overlapping(args):
        # Then torch's own result in the input dtype is the same, bit for bit.
        x_torch = x.detach().clone().requires_grad_()
        F.max_pool2d(x_torch, **args).backward(grad)
        assert_identical(x_fp.grad, x_torch.grad)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("isa", ISAS)
def test_backward_op_with_indices(layout, isa):
    x = make_input(2, 5, (11, 13), torch.float32, layout, seed=3, special="ties")
    out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    grad = torch.randn_like(out)
    expected = torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [3, 3], [2, 2], [1, 1], [1, 1], False, idx)
    with cpu_isa(isa):
        got = torch.ops.fastpool.max_pool2d_with_indices_backward(grad, x, [3, 3], [2, 2], [1, 1], [1, 1], False, idx)
    assert_identical(got, expected)


def test_gradcheck_float64():
    for layout in ["contiguous", "channels_last"]:
        for args in [dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=(1, 2), dilation=2),
                     dict(kernel_size=2, ceil_mode=True)]:
            # Distinct values: max pooling is differentiable away from ties.
            x = torch.randperm(2 * 3 * 7 * 8, dtype=torch.float64).reshape(2, 3, 7, 8) / 10
            if layout == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last)
            x.requires_grad_()
            assert torch.autograd.gradcheck(lambda t: fastpool.max_pool2d(t, **args), (x,))
            assert torch.autograd.gradcheck(lambda t: fastpool.max_pool2d(t, return_indices=True, **args)[0], (x,))
            assert torch.autograd.gradgradcheck(lambda t: fastpool.max_pool2d(t, **args), (x,))


# Batch 1 on two threads splits each channels-last image into row bands.
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_thread_count_does_not_change_results(layout, dtype, batch):
    x = make_input(batch, 24, (57, 61), dtype, layout, seed=11, special="ties")
    old = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out, idx = fastpool.max_pool2d(x, 3, 2, 1, return_indices=True)
            grad_in = None
            if dtype.is_floating_point:
                grad_in = torch.ops.fastpool.max_pool2d_with_indices_backward(
                    torch.ones_like(out), x, [3, 3], [2, 2], [1, 1], [1, 1], False, idx)
            results.append((out, idx, grad_in))
    finally:
        torch.set_num_threads(old)
    (o1, i1, g1), (o2, i2, g2) = results
    assert_identical(o1, o2)
    assert_identical(i1, i2)
    if g1 is not None:
        assert_identical(g1, g2)
    expected, expected_idx = torch_max_pool2d(x, kernel_size=3, stride=2, padding=1)
    assert_identical(o1, expected)
    assert_identical(i1, expected_idx)
    if dtype == torch.float32:  # exact in float32: torch adds in the same order
        assert_identical(g1, torch.ops.aten.max_pool2d_with_indices_backward(
            torch.ones_like(out), x, [3, 3], [2, 2], [1, 1], [1, 1], False, expected_idx))


def test_empty_batch_and_unbatched():
    for shape in [(0, 3, 8, 8), (3, 8, 8), (1, 1, 1, 1)]:
        x = torch.randn(shape)
        for args in [dict(kernel_size=2), dict(kernel_size=1), dict(kernel_size=3, padding=1, ceil_mode=True)]:
            if min(shape[-2:]) < 2 and args["kernel_size"] == 2:
                continue
            expected = F.max_pool2d(x, return_indices=True, **args)
            got = fastpool.max_pool2d(x, return_indices=True, **args)
            assert_identical(got[0], expected[0])
            assert_identical(got[1], expected[1])
    x = torch.randn(0, 3, 8, 8, requires_grad=True)
    fastpool.max_pool2d(x, 2).sum().backward()
    assert x.grad.shape == x.shape


def test_every_isa_path_is_available_here():
    info = fastpool.build_info()
    assert info["cpu_isas_compiled"] == ["avx512", "avx2", "portable"]
    assert info["cpu_isa_active"] == info["cpu_isas_supported"][0]
    for isa in info["cpu_isas_supported"]:
        with cpu_isa(isa):
            assert fastpool.build_info()["cpu_isa_active"] == isa


def test_unknown_isa_is_rejected():
    x = torch.randn(1, 1, 4, 4)
    with cpu_isa("sse9"), pytest.raises(ValueError, match="FASTPOOL_CPU_ISA"):
        fastpool.max_pool2d(x, 2)


def _scatter_reference(grad, indices, input):
    """grad_input from torch's scatter_add, in float64, over in-plane indices only."""
    plane = input.shape[-2] * input.shape[-1]
    g = grad.double().flatten(-2)
    i = indices.flatten(-2)
    valid = (i >= 0) & (i < plane)
    out = torch.zeros(input.shape[:-2] + (plane,), dtype=torch.float64)
    out.scatter_add_(-1, torch.where(valid, i, 0), torch.where(valid, g, 0))
    return out.view(input.shape)


def test_backward_ignores_out_of_plane_indices():
    # Never written out of bounds: an index outside the plane adds nothing.
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    out, idx = fastpool.max_pool2d(x, 2, return_indices=True)
    for bad in (36, -1, -2, 10**12):
        broken = idx.clone()
        broken[0, 1, 2, 0] = bad
        grad = torch.randn_like(out)
        got = torch.ops.fastpool.max_pool2d_with_indices_backward(
            grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, broken)
        assert_identical(got, _scatter_reference(grad, broken, x))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_windows_without_in_bounds_taps(layout):
    # H=2, kernel 2, dilation 3, padding 1: the first output row's taps are
    # rows -1 and 2, both outside. torch returns -inf and an out-of-plane
    # index there; its gradient goes nowhere.
    x = make_input(2, 3, (2, 7), torch.float64, layout, seed=5, special="normal").requires_grad_()
    args = dict(kernel_size=(2, 2), stride=1, padding=1, dilation=3)
    expected, expected_idx = F.max_pool2d(x.detach(), return_indices=True, **args)
    out, idx = fastpool.max_pool2d(x, return_indices=True, **args)
    assert_identical(out.detach(), expected)
    assert_identical(idx, expected_idx)
    assert bool((idx >= 14).any())
    grad = torch.randn_like(out)
    out.backward(grad)
    torch.testing.assert_close(x.grad, _scatter_reference(grad, expected_idx, x), rtol=0, atol=0)


@pytest.mark.slow
def test_tensors_over_2_pow_31_elements():
    # A plane over 2^31 elements (int64 flat indices, the scalar path) and a
    # batch over 2^31 elements with small planes (64-bit offsets, vector path).
    for shape, kernel in [((1, 1, 2**16 + 3, 2**15 + 1), (1, 256)), ((2**14 + 1, 2, 257, 256), (2, 256))]:
        x = torch.zeros(shape, dtype=torch.uint8)
        x.view(-1)[:: 2**20 + 7] = 200  # sparse maxima far into the tensor
        x.view(-1)[-1] = 255
        expected = F.max_pool2d(x, kernel, return_indices=True)
        got = fastpool.max_pool2d(x, kernel, return_indices=True)
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])
        del x, expected, got
