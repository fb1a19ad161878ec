"""fastpool.adaptive_max_pool{1,2,3}d on the CPU: global pooling and
gradcheck, the modules, errors, opcheck, zero output sizes. Values, indices,
layouts, special values, batches and gradients against torch on every ISA
path are the generic tests of tests/test_ops.py (op table: tests/ops.py)."""
import contextlib

import pytest
import torch
import torch.nn.functional as F

import fastpool
from pool_cases import FLOAT_DTYPES, ISAS, assert_identical, before_guard_page, cpu_isa, make_input, torch_threads

DIMS = [1, 2, 3]


def fns(dims):
    name = f"adaptive_max_pool{dims}d"
    return getattr(fastpool, name), getattr(F, name)


def assert_pair_matches(ours, theirs, x, arg, grad, isa, threads=None, strides=True):
    """Values, indices and the training path's gradient of ours(x, arg) on
    that ISA (and thread count) against theirs(x, arg)."""
    with cpu_isa(isa), (torch_threads(threads) if threads else contextlib.nullcontext()):
        got = [ours(x, arg), *ours(x, arg, return_indices=True)]
        xr = x.clone().requires_grad_()
        ours(xr, arg).backward(grad)
    xt = x.clone().requires_grad_()
    theirs(xt, arg).backward(grad)
    for a, b in zip(got + [xr.grad], [theirs(x, arg), *theirs(x, arg, return_indices=True), xt.grad]):
        assert_identical(a, b, strides=strides)


@pytest.mark.parametrize("dims", DIMS)
def test_global_pooling_and_gradcheck(dims):
    ours, theirs = fns(dims)
    # (3-d global: 3x4x5, whose plane still takes the vector path; gradgradcheck over 7x7x7 took half a minute)
    global_sizes = (7, 7)[:dims] if dims < 3 else (3, 4, 5)
    for sizes, out in [(global_sizes, 1), ((5, 6, 7)[:dims], (3, 4, 2)[:dims]), ((4, 4, 4)[:dims], 2)]:
        for layout in ["contiguous", "channels_last"]:
            x = make_input(2, 3, sizes, torch.float64, layout, seed=0, special="normal")
            x = x.detach().copy_(torch.randperm(x.numel(), dtype=torch.float64).view(x.shape) / 10).requires_grad_()
            out = out if dims > 1 or isinstance(out, int) else out[0]
            for got, expected in zip(ours(x, out, return_indices=True), theirs(x, out, return_indices=True)):
                assert_identical(got, expected)
            assert torch.autograd.gradcheck(lambda t: ours(t, out), (x,))
            assert torch.autograd.gradcheck(lambda t: ours(t, out, return_indices=True)[0], (x,))
            assert torch.autograd.gradgradcheck(lambda t: ours(t, out), (x,))
            assert torch.autograd.gradgradcheck(lambda t: ours(t, out, return_indices=True)[0], (x,))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dims", DIMS)
def test_global_planes_match_torch(dims, layout, dtype, isa):
    # Global pooling has paths of its own: planar (whole planes, the lanes'
    # maxima combined at the end; planes of a vector or more) and channels
    # last (the image read once in order, a running max per channel; 21
    # channels: whole vectors and a remainder on every ISA): special values,
    # ties, zeros of either sign as the maximum, with and without indices,
    # the training path's gradient, on every ISA.
    sizes = ((50,), (7, 7), (3, 4, 5))[dims - 1]
    channels = 21 if layout == "channels_last" else 5
    ours_adaptive, theirs_adaptive = fns(dims)
    ours_window = getattr(fastpool, f"max_pool{dims}d")
    theirs_window = getattr(F, f"max_pool{dims}d")
    calls = [(ours_adaptive, theirs_adaptive, (1,) * dims), (ours_window, theirs_window, sizes)]
    for seed, special in enumerate(["specials", "lowest", "ties", "normal", "zeros"] * 2):
        if special == "zeros":  # a maximum of -0.0 or 0.0, the first of which decides the sign
            x = make_input(3, channels, sizes, torch.float64, layout, seed, "normal")
            x = torch.where(x > 0.5, -0.0, torch.where(x < -1, -1.0, 0.0)).to(dtype)
        else:
            x = make_input(3, channels, sizes, dtype, layout, seed, special)
        grad = torch.randn(x.shape[:2] + (1,) * dims, generator=torch.Generator().manual_seed(seed)).to(dtype)
        for ours, theirs, arg in calls:
            # (the results' strides of size-1 dims are free: either layout is the same memory)
            assert_pair_matches(ours, theirs, x, arg, grad, isa, strides="sized")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_uneven_windows_over_small_planes(dtype, isa):
    # Windows that do not tile the plane, over planar planes of up to 1024
    # elements, 16 planes or more: channels-last blocks on AVX-512 (float,
    # bfloat16, float16; tests/test_max_pool.py: test_small_planes_in_
    # channels_last_blocks), partial tiles, blocks of 64 planes and a
    # remainder, ranges that start mid-plane; NaN, ties, -inf windows and
    # zeros of either sign: values, indices and the training path's gradient.
    cases = [((13, 13), (4, 4)), ((14, 14), (5, 3)), ((7, 7), (3, 3)), ((40,), (7,)), ((7, 6, 5), (3, 4, 2)),
             ((9, 31), (2, 7))]
    for seed, (sizes, out) in enumerate(cases):
        dims = len(sizes)
        ours, theirs = fns(dims)
        arg = out[0] if dims == 1 else out
        for (batch, channels), threads, special in [((1, 16), 1, "normal"), ((3, 23), 2, "specials"),
                                                    ((2, 37), 3, "ties"), ((5, 32), 2, "lowest")]:
            x = make_input(batch, channels, sizes, dtype, "contiguous", seed, special)
            grad = torch.randn(theirs(x, arg).shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
            assert_pair_matches(ours, theirs, x, arg, grad, isa, threads)


@pytest.mark.parametrize("dims", DIMS)
def test_modules_match_torchs(dims):
    name = f"AdaptiveMaxPool{dims}d"
    for kwargs in [dict(output_size=3), dict(output_size=(2, 5, 1)[:dims] if dims > 1 else 2, return_indices=True)]:
        ours, theirs = getattr(fastpool, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        assert isinstance(ours, getattr(torch.nn, name))
        assert repr(ours) == repr(theirs)
        x = torch.randn((2, 3) + (9, 10, 7)[:dims])
        got, expected = ours(x), theirs(x)
        for a, b in zip(got if kwargs.get("return_indices") else [got], expected if kwargs.get("return_indices")
                        else [expected]):
            assert_identical(a, b)


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("case", ["rank", "zero channels", "zero size", "output size length", "negative output",
                                  "integer dtype"])
def test_errors_match_torch(dims, case):
    ours, theirs = fns(dims)
    x, out = torch.randn((2, 3) + (7,) * dims), 2
    if case == "rank":
        x = torch.randn((7,) * dims)
    elif case == "zero channels":
        x = torch.randn((1, 0) + (7,) * dims)
    elif case == "zero size":
        x = torch.randn((1, 2) + (7,) * (dims - 1) + (0,))
    elif case == "output size length":
        out = (2,) * (dims + 1)
    elif case == "negative output":
        out = -1
    else:
        x = torch.ones((1, 2) + (4,) * dims, dtype=torch.int32)
    for return_indices in (False, True):
        with pytest.raises(Exception) as expected:
            theirs(x, out, return_indices=return_indices)
        with pytest.raises(type(expected.value)) as got:
            ours(x, out, return_indices=return_indices)
        assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]


def test_empty_batch_and_zero_output():
    for dims in DIMS:
        ours, theirs = fns(dims)
        for shape, out in [((0, 3) + (7,) * dims, 2), ((2, 3) + (7,) * dims, 0)]:
            x = torch.randn(shape, requires_grad=True)
            for got, expected in zip(ours(x, out, return_indices=True), theirs(x, out, return_indices=True)):
                assert_identical(got.detach(), expected.detach())
            ours(x, out).sum().backward()
            assert x.grad.shape == x.shape and not x.grad.any()


@pytest.mark.parametrize("sample", range(4))
def test_opcheck(sample):
    x, out = [(torch.randn(2, 3, 17, requires_grad=True), [5]),
              (torch.randn(2, 3, 9, 10).contiguous(memory_format=torch.channels_last).requires_grad_(), [4, 3]),
              (torch.randn(3, 5, 6, 7, dtype=torch.float64, requires_grad=True), [2, 4, 3]),
              (torch.randn(0, 3, 5, 5), [1, 1])][sample]
    name = f"adaptive_max_pool{len(out)}d"
    for op in (name + "_with_indices", name):
        torch.library.opcheck(getattr(torch.ops.fastpool, op).default, (x, out))
    _, idx = getattr(torch.ops.fastpool, name + "_with_indices")(x.detach(), out)
    grad = torch.randn(idx.shape, dtype=x.dtype).requires_grad_()
    torch.library.opcheck(getattr(torch.ops.fastpool, name + "_backward").default, (grad, x.detach(), idx))



@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_window_rows_by_vectors_at_the_end_of_the_input(dtype, isa):
    # Adaptive windows whose rows are 4 to 8 taps load a vector per window
    # row; without masked loads (AVX2) a whole one, whose extra lanes must not
    # read past the input: it ends at a page that cannot be read. SPP's
    # bins over 13x13 maps, 1-d and 3-d, NaN and ties; values and indices.
    cases = [((13, 13), (2, 4)), ((13, 13), 3), ((11, 9), (2, 1)), ((29,), 4), ((5, 9, 13), (1, 2, 3))]
    for seed, (sizes, out) in enumerate(cases):
        ours, theirs = fns(len(sizes))
        for special in ["normal", "specials", "ties"]:
            x = make_input(2, 3, sizes, dtype, "contiguous", seed, special)
            expected = [theirs(x, out), *theirs(x, out, return_indices=True)]
            with before_guard_page(x) as guarded, cpu_isa(isa):
                got = [ours(guarded, out), *ours(guarded, out, return_indices=True)]
            for a, b in zip(got, expected):
                assert_identical(a, b)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batch", [None, 2])
def test_3d_channels_last_input_gives_torchs_contiguous_results(dtype, batch):
    # torch's adaptive 3-d pooling returns contiguous results for an NDHWC
    # input; fastpool pools the input in place and transposes the results
    # (layout_copy.cpp). 37 channels and 3x4x5 outputs leave remainder rows
    # and channels in the transposer's blocks for every word size.
    ours, theirs = fns(3)
    x = make_input(batch, 37, (5, 6, 9), dtype, "channels_last", 11, "specials")
    for kw in ({}, {"return_indices": True}):
        got, expected = ours(x, (3, 4, 5), **kw), theirs(x, (3, 4, 5), **kw)
        for a, b in zip(got if kw else [got], expected if kw else [expected]):
            assert_identical(a, b)
