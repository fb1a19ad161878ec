"""fastpool.adaptive_max_pool{1,2,3}d on the CPU against torch's: values,
indices, layouts, gradients, every ISA path; the modules, errors, opcheck."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastpool
from pool_cases import FLOAT_DTYPES, ISAS, LAYOUTS, assert_identical, cpu_isa, make_input

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIMS = [1, 2, 3]


def fns(dims):
    name = f"adaptive_max_pool{dims}d"
    return getattr(fastpool, name), getattr(F, name)


@st.composite
def adaptive_case(draw):
    dims = draw(st.sampled_from(DIMS))
    max_in = {1: 40, 2: 17, 3: 7}[dims]
    sizes = tuple(draw(st.integers(1, max_in)) for _ in range(dims))
    # Output sizes below, equal to and above the input's (windows overlap,
    # tile exactly, or repeat inputs); evenly dividing ones take the fixed path.
    out = tuple(draw(st.integers(1, n + 3)) for n in sizes)  # zero outputs: test_empty_batch_and_zero_output
    if dims > 1 and draw(st.integers(0, 5)) == 0:
        out = tuple(None if i == 0 else o for i, o in enumerate(out))
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))
    channels = draw(st.integers(1, 40 if dims < 3 else 20))
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    special = draw(st.sampled_from(["normal", "ties", "specials"]))
    seed = draw(st.integers(0, 2**31 - 1))
    isa = draw(st.sampled_from(ISAS))
    x = make_input(batch, channels, sizes, dtype, layout, seed, special)
    output_size = out[0] if dims == 1 else out
    return dims, output_size, x, isa


@PROPERTY
@given(case=adaptive_case())
def test_forward_matches_torch(case):
    dims, output_size, x, isa = case
    ours, theirs = fns(dims)
    expected = theirs(x, output_size, return_indices=True)
    with cpu_isa(isa):
        got = ours(x, output_size, return_indices=True)
        values_only = ours(x, output_size)
    assert_identical(got[0], expected[0])
    assert_identical(got[1], expected[1])
    assert_identical(values_only, expected[0])


@PROPERTY
@given(case=adaptive_case(), return_indices=st.booleans())
def test_backward_matches_torch(case, return_indices):
    """Training through autograd (taps without indices, int64 indices with
    them): torch's gradient bit for bit in every dtype (half types round
    after every add, as torch's CPU backward does)."""
    dims, output_size, x, isa = case
    ours, theirs = fns(dims)
    x_torch = x.detach().clone().requires_grad_()
    expected = theirs(x_torch, output_size)
    grad = torch.empty_like(expected).copy_(torch.randn(expected.shape, dtype=torch.float64))
    expected.backward(grad)
    x_fp = x.detach().clone().requires_grad_()
    with cpu_isa(isa):
        got = ours(x_fp, output_size, return_indices=return_indices)
        (got[0] if return_indices else got).backward(grad)
    assert_identical(x_fp.grad, x_torch.grad)


@pytest.mark.parametrize("dims", DIMS)
def test_global_pooling_and_gradcheck(dims):
    ours, theirs = fns(dims)
    for sizes, out in [((7, 7, 7)[:dims], 1), ((5, 6, 7)[:dims], (3, 4, 2)[:dims]), ((4, 4, 4)[:dims], 2)]:
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


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("output_size", [1, 2])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_values_where_lane_order_matters(dims, output_size, dtype, isa):
    # Inference reduces a window's vector lanes without their positions; these
    # windows need them: -0.0 scanned before 0.0 (torch returns -0.0), NaN,
    # and all-negative windows narrower than a vector (masked-off lanes).
    ours, theirs = fns(dims)
    sizes = {1: (49,), 2: (7, 7), 3: (4, 7, 7)}[dims]
    base = -torch.rand((4, 3) + sizes, dtype=torch.float64).add_(0.5)
    flat = base.view(4, 3, -1)
    flat[0, :, 0], flat[0, :, -1] = -0.0, 0.0
    flat[1, :, 10], flat[1, :, 17] = -0.0, 0.0  # a later position in an earlier lane
    flat[2, :, 17] = float("nan")
    x = base.to(dtype)
    with cpu_isa(isa):
        got = ours(x, output_size)
    assert_identical(got, theirs(x, output_size))
