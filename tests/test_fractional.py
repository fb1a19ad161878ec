"""fastpool.fractional_max_pool{2,3}d on the CPU against torch's: values,
indices and gradients bit for bit over shapes, dtypes, layouts, views and
special values; the same windows for the same seed; the interval rule against
a reference written here; errors; gradcheck, opcheck, compile, export; the
modules and convert."""
import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpool
from pool_cases import FLOAT_DTYPES, ISAS, LAYOUTS, assert_identical, cpu_isa, first_line, make_input

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fns(dims):
    name = f"fractional_max_pool{dims}d"
    return getattr(fastpool, name), getattr(F, name)


def aten_op(dims, backward=False):
    return getattr(torch.ops.aten, f"fractional_max_pool{dims}d" + ("_backward" if backward else ""))


def our_op(dims, backward=False, suffix=""):
    return getattr(torch.ops.fastpool, f"fractional_max_pool{dims}d" + ("_backward" if backward else suffix))


def make_samples(batch, channels, dims, dtype, seed, view):
    """Samples in [0, 1) of the input's dtype; 'extra' has more rows than the
    batch (torch reads the first), 'strided' is a non-contiguous view."""
    g = torch.Generator().manual_seed(seed)
    n = 1 if batch is None else batch
    if view == "extra":
        n += 2
    if view == "strided":
        return torch.rand(n, channels, 2 * dims, generator=g, dtype=torch.float64).to(dtype)[..., ::2]
    return torch.rand(n, channels, dims, generator=g, dtype=torch.float64).to(dtype)


@st.composite
def fractional_case(draw):
    dims = draw(st.sampled_from([2, 3]))
    max_in = {2: 20, 3: 8}[dims]
    kernel = tuple(draw(st.integers(1, 4 if dims == 2 else 3)) for _ in range(dims))
    # torch's 3-d op wants out + k - 1 < in, its 2-d op <= in.
    slack = 1 if dims == 3 else 0
    sizes = tuple(draw(st.integers(k + slack, max(k + slack, max_in))) for k in kernel)
    out = tuple(draw(st.integers(1, n - k + 1 - slack)) for n, k in zip(sizes, kernel))
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))
    channels = draw(st.integers(1, 6))
    layout = draw(st.sampled_from(LAYOUTS))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    special = draw(st.sampled_from(["normal", "ties", "specials"]))
    seed = draw(st.integers(0, 2**31 - 1))
    view = draw(st.sampled_from(["plain", "extra", "strided"]))
    x = make_input(batch, channels, sizes, dtype, layout, seed, special)
    samples = make_samples(batch, channels, dims, dtype, seed + 1, view)
    kernel_arg = kernel[0] if len(set(kernel)) == 1 and draw(st.booleans()) else kernel
    return dims, kernel_arg, out, x, samples, draw(st.sampled_from(ISAS))


def call_both(dims, x, kernel, out, samples, **kw):
    """torch's result, or the RuntimeError its kernel raises (it asserts when
    Half/BFloat16 rounding of the samples pushes a window past the input)."""
    ours, theirs = fns(dims)
    try:
        expected = theirs(x, kernel, output_size=out, _random_samples=samples, **kw)
    except RuntimeError as e:
        assert "INTERNAL ASSERT" in str(e)
        with pytest.raises(RuntimeError, match="outside the input's valid starts"):
            ours(x, kernel, output_size=out, _random_samples=samples, **kw)
        return None, None
    return ours(x, kernel, output_size=out, _random_samples=samples, **kw), expected


@PROPERTY
@given(case=fractional_case())
def test_forward_matches_torch(case):
    dims, kernel, out, x, samples, isa = case
    with cpu_isa(isa):  # each ISA's kernel build
        got, expected = call_both(dims, x, kernel, out, samples, return_indices=True)
        if expected is None:
            return
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])
        values, ref = call_both(dims, x, kernel, out, samples)
        assert_identical(values, ref)
        # The training path's forward: the same values, and taps that decode to torch's indices.
        k = [kernel] * dims if isinstance(kernel, int) else list(kernel)
        values, offsets = our_op(dims, suffix="_with_offsets")(x, k, list(out), samples)
        assert_identical(values, expected[0])
        assert offsets.dtype == (torch.uint8 if np.prod(k) <= 255 else torch.int32)
        decoded = our_op(dims, suffix="_offsets_to_indices")(offsets, list(x.shape), k, list(out), samples)
        assert_identical(decoded, expected[1])


@PROPERTY
@given(case=fractional_case())
def test_backward_matches_torch(case):
    dims, kernel, out, x, samples, _ = case
    ours, theirs = fns(dims)
    a = x.detach().clone().requires_grad_()
    b = x.detach().clone().requires_grad_()
    try:
        expected = theirs(b, kernel, output_size=out, _random_samples=samples)
    except RuntimeError:
        return  # the asserting case: test_forward_matches_torch checks fastpool's error
    got = ours(a, kernel, output_size=out, _random_samples=samples)
    g = torch.randn(expected.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(x.dtype)
    expected.backward(g)
    got.backward(g)
    assert_identical(a.grad, b.grad)


@settings(max_examples=60, deadline=None)
@given(dims=st.sampled_from([2, 3]), dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**31 - 1),
       batch=st.sampled_from([None, 1, 2]))
def test_backward_op_with_colliding_indices(dims, dtype, seed, batch):
    """The backward op takes any indices: many outputs sending their gradient to
    one input element, added in torch's order and rounding (Half included)."""
    g = torch.Generator().manual_seed(seed)
    sizes = (3, 4, 5)[-dims:]
    lead = ((batch,) if batch is not None else ()) + (3,)
    x = torch.randn(lead + sizes, generator=g).to(dtype)
    out = (2, 3, 2)[-dims:]
    indices = torch.randint(0, 3, lead + out, generator=g)
    grad = (torch.randn(lead + out, generator=g) * 100).to(dtype)
    kernel = [2] * dims
    assert_identical(our_op(dims, True)(grad, x, kernel, list(out), indices),
                     aten_op(dims, True)(grad, x, kernel, list(out), indices))


# ---- the interval rule, against a reference written here ---------------------------

def reference_starts(sample, in_size, out_size, k, dtype):
    """The starts of the windows along one dim: floor((i + u) alpha) - floor(u
    alpha), alpha = (in - k) / (out - 1), each step rounded to `dtype` (as the
    kernels compute in the input's dtype), the last window at in - k."""
    def r(v):
        return float(torch.tensor(v, dtype=torch.float64).to(dtype).item())
    starts = []
    if out_size > 1:
        alpha = r(r(in_size - k) / r(out_size - 1))
        for i in range(out_size - 1):
            starts.append(int(r(r(r(i) + sample) * alpha)) - int(r(sample * alpha)))
    return starts + [in_size - k]


@settings(max_examples=200, deadline=None)
@given(dims=st.sampled_from([2, 3]), dtype=st.sampled_from(FLOAT_DTYPES), data=st.data())
def test_windows_follow_the_interval_rule(dims, dtype, data):
    """An input increasing along one dim puts each window's argmax on its last
    element there, so the indices give every window's start: compared with the
    rule, for each sample position, and with torch."""
    dim = data.draw(st.integers(0, dims - 1))
    in_size = data.draw(st.integers(2, 200 if dtype in (torch.float32, torch.float64) else 60))
    k = data.draw(st.integers(1, min(in_size - (dims == 3), 5)))
    out_size = data.draw(st.integers(1, in_size - k + (1 if dims == 2 else 0)))
    u = data.draw(st.floats(0, 1, exclude_max=True))
    # The other dims: size 2 and one window of 1 (3-d needs out + k - 1 < in).
    sizes, kernel, out = [2] * dims, [1] * dims, [1] * dims
    sizes[dim], kernel[dim], out[dim] = in_size, k, out_size
    line = [1] * dims
    line[dim] = in_size
    x = torch.arange(in_size, dtype=torch.float64).to(dtype).reshape([1, 1] + line).expand([1, 1] + sizes).contiguous()
    samples = torch.zeros(1, 1, dims, dtype=dtype)
    slot = dims - 1 - dim if dims == 2 else dim  # torch's 2-d kernel reads W from sample 0, H from 1
    samples[0, 0, slot] = u
    u = float(samples[0, 0, slot])
    expected = reference_starts(u, in_size, out_size, k, dtype)
    if min(expected) < 0 or max(expected) > in_size - k:
        with pytest.raises(RuntimeError, match="outside the input's valid starts"):
            our_op(dims)(x, kernel, out, samples)
        return
    values, indices = our_op(dims)(x, kernel, out, samples)
    stride = int(np.prod(sizes[dim + 1:]))
    assert (indices.flatten() // stride % in_size - (k - 1)).tolist() == expected
    assert_identical(indices, aten_op(dims)(x, kernel, out, samples)[1])


def test_last_window_is_pinned_to_the_end():
    x = torch.randn(2, 3, 11, 13)
    for u in (0.0, 0.3, 0.999999):
        samples = torch.full((2, 3, 2), u)
        _, idx = fastpool.fractional_max_pool2d(x, 3, output_size=(4, 5), return_indices=True, _random_samples=samples)
        ref = F.fractional_max_pool2d(x, 3, output_size=(4, 5), return_indices=True, _random_samples=samples)[1]
        assert torch.equal(idx, ref)
    # A window over the last 3x3 block: its argmax lies there.
    last = idx[..., -1, -1]
    assert bool(((last // 13 >= 8) & (last % 13 >= 10)).all())


# ---- the random draw: same seed, same windows ------------------------------------------

@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batched", [True, False])
def test_same_seed_same_result(dims, dtype, batched):
    ours, theirs = fns(dims)
    shape = ((2,) if batched else ()) + (3,) + (9, 10, 11)[-dims:]
    x = torch.randn(shape).to(dtype)
    for kw in (dict(output_size=4), dict(output_ratio=0.6 if dims == 3 else (0.6, 0.7))):
        torch.manual_seed(1234)
        expected = theirs(x, 2, return_indices=True, **kw)
        after_theirs = torch.rand(1)
        torch.manual_seed(1234)
        got = ours(x, 2, return_indices=True, **kw)
        assert torch.equal(torch.rand(1), after_theirs)  # the same generator calls
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])


def test_module_and_convert_train_identically():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.FractionalMaxPool2d(2, output_ratio=0.7),
                                torch.nn.FractionalMaxPool2d((2, 3), output_size=(5, 4)),
                                torch.nn.Flatten(), torch.nn.LazyLinear(4))
    x = torch.randn(4, 3, 16, 16)
    model(x)
    ref = copy.deepcopy(model)
    ours = fastpool.convert(copy.deepcopy(model))
    assert isinstance(ours[1], fastpool.FractionalMaxPool2d) and isinstance(ours[1], torch.nn.FractionalMaxPool2d)
    assert type(ref[1]) is torch.nn.FractionalMaxPool2d
    for step in range(2):
        for m, seed in ((ref, step), (ours, step)):
            torch.manual_seed(seed)
            m.zero_grad()
            m(x).square().sum().backward()
        for a, b in zip(ref.parameters(), ours.parameters()):
            assert torch.equal(a.grad, b.grad)
    fastpool.unconvert(ours)
    assert type(ours[1]) is torch.nn.FractionalMaxPool2d


def test_module_with_fixed_samples_and_3d():
    samples = torch.rand(2, 3, 3)
    ref = torch.nn.FractionalMaxPool3d(2, output_size=(3, 4, 3), return_indices=True, _random_samples=samples)
    ours = fastpool.FractionalMaxPool3d(2, output_size=(3, 4, 3), return_indices=True, _random_samples=samples)
    x = torch.randn(2, 3, 6, 7, 8)
    for a, b in zip(ours(x), ref(x)):
        assert_identical(a, b)
    assert repr(ours) == repr(ref)


# ---- errors: torch's exception type and first line -----------------------------------------

x4, s2 = torch.randn(2, 3, 10, 12), torch.rand(2, 3, 2)
x5, s3 = torch.randn(2, 3, 6, 7, 8), torch.rand(2, 3, 3)
FORWARD_ERRORS = [
    (2, x4, [2, 2, 2], [5, 5], s2), (2, x4, [2, 2], [5], s2), (2, x4[0, 0], [2, 2], [5, 5], s2),
    (2, x4[:, :0], [2, 2], [5, 5], s2), (2, x4[:, :, :0], [2, 2], [5, 5], s2), (2, x4[0, :0], [2, 2], [5, 5], s2),
    (2, x4, [2, 2], [10, 5], s2), (2, x4, [2, 2], [5, 12], s2), (2, x4, [2, 2], [-1, 5], s2),
    (2, x4, [2, 2], [-1, 15], s2), (2, x4, [2, 2], [5, 5], s2[:1]), (2, x4, [2, 2], [5, 5], s2[:, :2]),
    (2, x4, [2, 2], [5, 5], s2.double()), (2, x4, [2, 2], [5, 5], torch.rand(2, 3, 3)),
    (2, x4, [2, 2], [5, 5], torch.rand(6, 2)), (2, x4.int(), [2, 2], [5, 5], s2.int()),
    (2, x4.int(), [2, 2], [5, 5], s2), (2, x4.bool(), [2, 2], [5, 5], s2.bool()),
    (2, x4[0], [2, 2], [5, 5], s2[:0]), (2, x4, [2, 2], [5, 5], s2[:1, :2, :1]),
    (3, x5, [2, 2], [3, 3, 3], s3), (3, x5, [2, 2, 2], [3, 3], s3), (3, x5[0, 0], [2, 2, 2], [3, 3, 3], s3),
    (3, x5[:, :0], [2, 2, 2], [3, 3, 3], s3), (3, x5, [2, 2, 2], [6, 3, 3], s3), (3, x5, [2, 2, 2], [3, 7, 3], s3),
    (3, x5, [2, 2, 2], [3, 3, 8], s3), (3, x5, [2, 2, 2], [-1, 3, 3], s3), (3, x5, [2, 2, 2], [3, 3, 3], s3[:1]),
    (3, x5, [2, 2, 2], [3, 3, 3], s3[..., :2]), (3, x5.int(), [2, 2, 2], [3, 3, 3], s3.int()),
    (3, x5, [2, 2, 2], [3, 3, 3], s3.double()), (3, x5[0], [2, 2, 2], [3, 3, 3], s3[0]),
]


@pytest.mark.parametrize("case", range(len(FORWARD_ERRORS)))
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_forward_errors_match_torch(case, device):
    dims, x, kernel, out, samples = FORWARD_ERRORS[case]
    x, samples = x.to(device), samples.to(device)
    expected = first_line(lambda: aten_op(dims)(x, kernel, out, samples))
    got = first_line(lambda: our_op(dims)(x, kernel, out, samples))
    if expected is None:  # torch's 3-d Meta function leaves the samples unchecked
        assert got is None
        return
    assert got == expected


@pytest.mark.parametrize("dims", [2, 3])
def test_degenerate_kernels_match_torch(dims):
    """Kernel sizes <= 0, which torch accepts: windows without taps give -inf at
    the window's start."""
    x, s = (x4, s2) if dims == 2 else (x5, s3)
    for k in (0, -1):
        kernel = [k] + [2] * (dims - 1)
        out = [4] * dims
        got, expected = our_op(dims)(x, kernel, out, s), aten_op(dims)(x, kernel, out, s)
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])


def _backward_cases():
    o2, i2 = aten_op(2)(x4, [2, 2], [5, 5], s2)
    g2 = torch.randn_like(o2)
    o3, i3 = aten_op(3)(x5, [2, 2, 2], [3, 3, 3], s3)
    g3 = torch.randn_like(o3)
    return [
        (2, g2, x4, [2, 2], [4, 5], i2), (2, g2, x4, [2, 2], [5, 4], i2), (2, g2[:, :, :4], x4, [2, 2], [5, 5], i2),
        (2, g2, x4, [2, 2], [5, 5], i2[:, :, :4]), (2, g2, x4, [2, 2], [5], i2), (2, g2, x4[0], [2, 2], [5, 5], i2),
        (2, g2.double(), x4, [2, 2], [5, 5], i2), (2, g2, x4.double(), [2, 2], [5, 5], i2),
        (2, g2, x4, [2, 2], [5, 5], i2.int()), (2, g2.int(), x4.int(), [2, 2], [5, 5], i2),
        (2, g2.double(), x4, [2, 2], [5, 5], i2.int()), (2, g2[:, :2], x4, [2, 2], [5, 5], i2),
        (3, g3, x5, [2, 2, 2], [2, 3, 3], i3), (3, g3, x5, [2, 2, 2], [3, 2, 3], i3),
        (3, g3, x5, [2, 2, 2], [3, 3, 2], i3), (3, g3[0], x5, [2, 2, 2], [3, 3, 3], i3),
        (3, g3.double(), x5, [2, 2, 2], [3, 3, 3], i3), (3, g3, x5, [2, 2, 2], [3, 3, 3], i3.int()),
        (3, g3.int(), x5.int(), [2, 2, 2], [3, 3, 3], i3.int()),
    ]


BACKWARD_ERRORS = _backward_cases()


@pytest.mark.parametrize("case", range(len(BACKWARD_ERRORS)))
def test_backward_errors_match_torch(case):
    dims, *args = BACKWARD_ERRORS[case]
    expected = first_line(lambda: aten_op(dims, True)(*args))
    assert expected is not None
    assert first_line(lambda: our_op(dims, True)(*args)) == expected


def test_backward_checks_what_torch_3d_leaves_unchecked():
    o3, i3 = aten_op(3)(x5, [2, 2, 2], [3, 3, 3], s3)
    g3 = torch.randn_like(o3)
    for args in ((g3, x5, [2, 2, 2], [3, 3, 3], i3[:, :, :2]), (g3, x5[0], [2, 2, 2], [3, 3, 3], i3),
                 (g3[:, :2], x5, [2, 2, 2], [3, 3, 3], i3)):
        with pytest.raises(RuntimeError, match="fractional_max_pool3d_backward"):
            our_op(3, True)(*args)
    with pytest.raises(RuntimeError, match="outside the input plane"):
        our_op(3, True)(g3, x5, [2, 2, 2], [3, 3, 3], i3 * 1000)


@pytest.mark.parametrize("dims", [2, 3])
def test_functional_argument_errors_match_torch(dims):
    ours, theirs = fns(dims)
    x = x4 if dims == 2 else x5
    for kw in (dict(), dict(output_ratio=0.5), dict(output_ratio=[0.7]), dict(output_ratio=(0.5,) * (dims + 1)),
               dict(output_ratio=(0.5,) * (dims - 1))):
        expected = first_line(lambda: theirs(x, 2, **kw))
        got = first_line(lambda: ours(x, 2, **kw))
        if expected is None:
            assert got is None
        else:
            assert got == expected, kw


# ---- autograd checks, opcheck, compile, export -----------------------------------------------

@pytest.mark.parametrize("dims", [2, 3])
def test_gradcheck(dims):
    shape = (2, 2, 7, 8) if dims == 2 else (1, 2, 5, 6, 5)
    # Distinct values, so that finite differences never cross a tie.
    x = (torch.randperm(int(np.prod(shape)), dtype=torch.float64).reshape(shape) / 10).requires_grad_()
    samples = torch.rand(shape[0], 2, dims, dtype=torch.float64)
    out = [3] * dims
    fn = lambda t: fastpool.__dict__[f"fractional_max_pool{dims}d"](t, 2, output_size=out,  # noqa: E731
                                                                     _random_samples=samples)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))
    # Channels last: the training path's backward writes that layout.
    x_cl = x.detach().movedim(1, -1).contiguous().movedim(-1, 1).requires_grad_()
    assert torch.autograd.gradcheck(fn, (x_cl,))
    assert torch.autograd.gradgradcheck(fn, (x_cl,))


@pytest.mark.parametrize("dims", [2, 3])
def test_opcheck(dims):
    x = torch.randn((2, 3, 9, 10, 8)[:dims + 2], requires_grad=True)
    samples = torch.rand(2, 3, dims)
    kernel, out = [2] * dims, [4] * dims
    torch.library.opcheck(our_op(dims), (x, kernel, out, samples))
    torch.library.opcheck(our_op(dims, suffix="_values"), (x, kernel, out, samples))
    values, indices = our_op(dims)(x.detach(), kernel, out, samples)
    torch.library.opcheck(our_op(dims, True), (torch.randn_like(values), x.detach(), kernel, out, indices))
    torch.library.opcheck(our_op(dims, suffix="_with_offsets"), (x.detach(), kernel, out, samples))  # no derivative
    _, offsets = our_op(dims, suffix="_with_offsets")(x.detach(), kernel, out, samples)
    grad = torch.randn_like(values, requires_grad=True)
    for channels_last in (False, True):
        torch.library.opcheck(our_op(dims, suffix="_offsets_backward"),
                              (grad, offsets, list(x.shape), kernel, out, samples, channels_last))
    torch.library.opcheck(our_op(dims, suffix="_offsets_to_indices"), (offsets, list(x.shape), kernel, out, samples))


@pytest.mark.parametrize("kernel", [2, 16])
@pytest.mark.parametrize("dims", [2, 3])
def test_training_saves_taps_not_indices(dims, kernel):
    """Under autograd the values op keeps each output's tap within its window (uint8 up to 255
    taps, int32 above) and the samples, not the input and int64 indices; its gradient is
    torch's, bit for bit, in float and in bfloat16 (torch's adds and roundings)."""
    kernel = min(kernel, 6) if dims == 3 else kernel
    shape, out = ((2, 3, 21, 20), [4, 3]) if dims == 2 else ((2, 2, 9, 8, 10), [2, 2, 3])
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        samples = torch.rand(shape[0], shape[1], dims, generator=torch.Generator().manual_seed(2)).to(dtype)
        saved = []
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            y = fns(dims)[0](a, kernel, output_size=out, _random_samples=samples)
        taps = kernel ** dims
        assert sorted(str(t.dtype) for t in saved) == sorted([str(dtype), "torch.uint8" if taps <= 255 else "torch.int32"])
        assert [t.shape for t in saved if t.dtype == dtype] == [samples.shape]
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(3)).to(dtype)
        y.backward(g)
        fns(dims)[1](b, kernel, output_size=out, _random_samples=samples).backward(g)
        assert_identical(a.grad, b.grad)


def test_offsets_backward_refuses_bad_offsets():
    x, samples = torch.randn(1, 2, 9, 9), torch.rand(1, 2, 2)
    values, offsets = our_op(2, suffix="_with_offsets")(x, [2, 2], [4, 4], samples)
    backward = our_op(2, suffix="_offsets_backward")
    for channels_last in (False, True):
        with pytest.raises(RuntimeError, match="outside its window of 4 taps"):
            backward(values, torch.full_like(offsets, 4), [1, 2, 9, 9], [2, 2], [4, 4], samples, channels_last)
    with pytest.raises(RuntimeError, match="offsets must be Byte"):
        backward(values, offsets.int(), [1, 2, 9, 9], [2, 2], [4, 4], samples, False)
    with pytest.raises(RuntimeError, match="offsets must have size"):
        backward(values, offsets[..., :3], [1, 2, 9, 9], [2, 2], [4, 4], samples, False)
    with pytest.raises(RuntimeError, match="random_samples must have size"):
        backward(values, offsets, [1, 2, 9, 9], [2, 2], [4, 4], samples[:, :1], False)
    with pytest.raises(RuntimeError, match="do not fit input_size"):
        backward(values, offsets, [1, 2, 4, 9], [2, 2], [4, 4], samples, False)


@pytest.mark.parametrize("dims", [2, 3])
def test_compile_fullgraph(dims):
    ours, theirs = fns(dims)

    def step(x, samples):
        values, indices = ours(x, 2, output_ratio=(0.6,) * dims, return_indices=True, _random_samples=samples)
        return values, indices

    compiled = torch.compile(step, fullgraph=True, dynamic=True)
    for shape in ((2, 3, 11, 12, 10), (1, 4, 9, 13, 8)):
        x = torch.randn(shape[:dims + 2])
        samples = torch.rand(shape[0], shape[1], dims)
        got = compiled(x, samples)
        expected = theirs(x, 2, output_ratio=(0.6,) * dims, return_indices=True, _random_samples=samples)
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])

    # Drawing the samples inside the compiled graph: torch.rand as torch's functional calls it.
    def draw(x):
        return ours(x, 2, output_size=3)

    x = torch.randn((2, 3, 8, 9, 7)[:dims + 2], requires_grad=True)
    got = torch.compile(draw, fullgraph=True)(x)
    assert got.shape == x.shape[:2] + (3,) * dims
    got.sum().backward()
    assert x.grad.sum() == got.numel()


@pytest.mark.parametrize("dims", [2, 3])
def test_export(dims):
    class Pool(torch.nn.Module):
        def forward(self, x, samples):
            return fastpool.__dict__[f"fractional_max_pool{dims}d"](x, 2, output_size=3, return_indices=True,
                                                                    _random_samples=samples)

    x = torch.randn((2, 3, 8, 9, 7)[:dims + 2])
    samples = torch.rand(2, 3, dims)
    program = torch.export.export(Pool(), (x, samples))
    assert any(f"fractional_max_pool{dims}d" in str(n.target) for n in program.graph.nodes)
    got = program.module()(x, samples)
    expected = fns(dims)[1](x, 2, output_size=3, return_indices=True, _random_samples=samples)
    assert_identical(got[0], expected[0])
    assert_identical(got[1], expected[1])


def test_backward_is_deterministic():
    x = torch.randint(0, 3, (2, 4, 30, 30)).float().requires_grad_()
    samples = torch.rand(2, 4, 2)
    grads = []
    for _ in range(2):
        x.grad = None
        fastpool.fractional_max_pool2d(x, 3, output_size=20, _random_samples=samples).sum().backward()
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kernel", [2, 3])
def test_graham_sized_planes_match_torch(dtype, kernel, isa):
    """Planes as Graham's nets pool them (ratio 1/sqrt(2)), wider than the
    property tests draw, with ties and NaN; forward and gradient."""
    x = make_input(2, 5, (61, 400), dtype, "contiguous", 3, "specials").requires_grad_()
    y = x.detach().clone().requires_grad_()
    samples = torch.rand(2, 5, 2, dtype=torch.float64).to(dtype)
    kw = dict(output_ratio=(0.7071, 0.7071), return_indices=True, _random_samples=samples)
    with cpu_isa(isa):  # rows wider than a vector and than the kernel's chunk of outputs
        got = fastpool.fractional_max_pool2d(x, kernel, **kw)
        with torch.no_grad():  # the values op, as inference calls it
            values = fastpool.fractional_max_pool2d(x, kernel, **dict(kw, return_indices=False))
    expected = F.fractional_max_pool2d(y, kernel, **kw)
    assert_identical(got[0].detach(), expected[0].detach())
    assert_identical(got[1], expected[1])
    assert_identical(values, expected[0].detach())
    g = torch.randn(expected[0].shape, dtype=torch.float64).to(dtype)
    got[0].backward(g)
    expected[0].backward(g)
    assert_identical(x.grad, y.grad)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("dims", [2, 3])
def test_row_widths_around_vector_lengths(dims, dtype, isa):
    """The forward pools a row's window starts a vector at a time: rows of
    fewer starts than a vector (masked, or scalar without masks), exactly
    one or two vectors, and an overlapping last vector; then reads each
    output's start, a vector of outputs at a time: by permutes where their
    starts span under two vectors (ratio 2/3), by hardware gathers where
    they do not (ratio 1/5); with ties and NaN, in a batch of one (work split
    over output rows); with indices and without."""
    for width in (3, 8, 9, 16, 17, 18, 33, 34, 70, 130):
        for kernel, ratio in itertools.product((1, 2, 3), (2 / 3, 1 / 5)):
            if width < kernel + 2:
                continue
            sizes = (5, 7, width) if dims == 3 else (9, width)
            x = make_input(1, 3, sizes, dtype, "contiguous", width * 7 + kernel, "specials")
            out = tuple(max(1, int((n - kernel) * ratio)) for n in sizes)
            samples = make_samples(1, 3, dims, dtype, width + kernel, "plain")
            with cpu_isa(isa):
                got, expected = call_both(dims, x, kernel, out, samples, return_indices=True)
                values, _ = call_both(dims, x, kernel, out, samples)
            if expected is None:
                continue
            assert_identical(got[0], expected[0])
            assert_identical(got[1], expected[1])
            assert_identical(values, expected[0])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("dims", [2, 3])
def test_channels_last_input_pooled_by_blocks_of_planes(dims, dtype, isa):
    """A channels-last input is pooled without a planar copy: blocks of 64
    bytes of channels (8 to 32 planes by dtype) are transposed into a
    scratch buffer and pooled from there. 37 channels leave a partial last
    block; batched and unbatched, with ties and NaN."""
    sizes = (5, 7, 9) if dims == 3 else (13, 17)
    out = tuple(n * 2 // 3 for n in sizes)
    for batch in (None, 2):
        x = make_input(batch, 37, sizes, dtype, "channels_last", 3 + dims, "specials")
        samples = make_samples(batch, 37, dims, dtype, 9, "plain")
        with cpu_isa(isa):
            got, expected = call_both(dims, x, 2, out, samples, return_indices=True)
            values, _ = call_both(dims, x, 2, out, samples)
        if expected is None:
            continue
        assert_identical(got[0], expected[0])
        assert_identical(got[1], expected[1])
        assert_identical(values, expected[0])


# ---- TorchScript ---------------------------------------------------------------------------

def _script_calls(pool):
    from typing import List

    def calls(x2: torch.Tensor, x3: torch.Tensor, s2: torch.Tensor, s3: torch.Tensor) -> List[torch.Tensor]:
        a, i = pool.fractional_max_pool2d(x2, 2, (4, 5), None, True, s2)
        b = pool.fractional_max_pool2d(x2, [3, 2], output_ratio=[0.5, 0.6], _random_samples=s2)
        d, j = pool.fractional_max_pool3d(x3, (2, 2, 1), None, (0.5, 0.5, 0.7), True, s3)
        e = pool.fractional_max_pool3d(x3, 2, output_size=3, _random_samples=s3)
        return [a, i, b, d, j, e]
    return calls


def test_torchscript_functions_and_modules(tmp_path):
    ours, theirs = torch.jit.script(_script_calls(fastpool)), torch.jit.script(_script_calls(F))
    assert "fastpool::fractional_max_pool2d" in str(ours.inlined_graph)
    args = (torch.randn(2, 3, 10, 11), torch.randn(2, 3, 7, 8, 9), torch.rand(2, 3, 2), torch.rand(2, 3, 3))
    for got, expected in zip(ours(*args), theirs(*args)):
        assert_identical(got, expected)
    for dims, kw in ((2, dict(output_ratio=0.6)), (3, dict(output_size=(3, 4, 3), return_indices=True))):
        name = f"FractionalMaxPool{dims}d"
        module = torch.jit.script(getattr(fastpool, name)(2, **kw))
        path = tmp_path / f"{name}.pt"
        module.save(str(path))
        loaded = torch.jit.load(str(path))
        x = torch.randn((2, 3, 8, 9, 10)[:dims + 2])
        results = []
        for m in (getattr(torch.nn, name)(2, **kw), module, loaded):
            torch.manual_seed(5)  # the samples are drawn inside: the same seed, the same windows
            results.append(m(x))
        for r in results[1:]:
            for got, expected in zip(r if isinstance(r, tuple) else (r,),
                                     results[0] if isinstance(results[0], tuple) else (results[0],)):
                assert_identical(got, expected)


# ---- ONNX: both exporters refuse, saying why --------------------------------------------------

@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_onnx_export_raises(dims, dynamo, tmp_path):
    import io

    pytest.importorskip("onnxscript")  # the dynamo exporter's dependency (installed with the test extras)

    class Pool(torch.nn.Module):
        def forward(self, x, samples):
            return fastpool.__dict__[f"fractional_max_pool{dims}d"](x, 2, output_size=3, _random_samples=samples)

    args = (torch.randn((2, 3, 8, 9, 7)[:dims + 2]), torch.rand(2, 3, dims))
    with pytest.raises(torch.onnx.errors.OnnxExporterError, match="ONNX cannot express fractional max pooling"):
        if dynamo:
            fastpool.onnx.export(Pool(), args, dynamo=True, verbose=False)
        else:
            torch.onnx.export(Pool(), args, io.BytesIO(), dynamo=False)


# ---- a reference written here: torch.compile and views -----------------------------------------
#
# torch's own torch.compile of F.fractional_max_pool2d (Inductor's lowering,
# which computes the windows in float) picks other windows than its eager
# kernel for float16/bfloat16 samples (see pytorch/pytorch#183249 for its
# fractional-pooling compile bugs). fastpool's ops are opaque to Inductor: the
# compiled graph runs the same kernels, so the same windows as eager. Checked
# against this reference (the interval rule above, explicit windows, torch's
# argmax rule), which does not depend on torch's kernels.

def reference_fractional(x, kernel, out, samples):
    dims = len(kernel)
    batched = x.dim() == dims + 2
    xb = x if batched else x.unsqueeze(0)
    n, c = xb.shape[:2]
    spatial = xb.shape[2:]
    values = torch.empty((n, c) + tuple(out), dtype=x.dtype)
    indices = torch.empty((n, c) + tuple(out), dtype=torch.long)
    for b in range(n):
        for ch in range(c):
            u = samples[b, ch]
            slots = [dims - 1 - d if dims == 2 else d for d in range(dims)]
            starts = [torch.tensor(reference_starts(float(u[slots[d]]), spatial[d], out[d], kernel[d], x.dtype))
                      for d in range(dims)]
            # flat index of every tap of every window: (*out, *kernel), taps in raster order
            flat = torch.zeros(tuple(out) + tuple(kernel), dtype=torch.long)
            for d in range(dims):
                shape = [1] * (2 * dims)
                shape[d] = out[d]
                coordinate = starts[d].view(shape)
                shape = [1] * (2 * dims)
                shape[dims + d] = kernel[d]
                coordinate = coordinate + torch.arange(kernel[d]).view(shape)
                flat = flat * spatial[d] + coordinate
            flat = flat.reshape(tuple(out) + (-1,))
            taps = xb[b, ch].flatten()[flat].double()
            nan = taps.isnan()
            positions = torch.arange(taps.shape[-1])
            last_nan = torch.where(nan, positions, -1).amax(-1)
            best = torch.where(nan, float("-inf"), taps).amax(-1, keepdim=True)
            first_max = torch.where(taps == best, positions, taps.shape[-1]).amin(-1)
            first_max = torch.where(first_max == taps.shape[-1], 0, first_max)  # all -inf: the first tap
            pick = torch.where(last_nan >= 0, last_nan, first_max)
            indices[b, ch] = flat.gather(-1, pick.unsqueeze(-1)).squeeze(-1)
            values[b, ch] = xb[b, ch].flatten()[indices[b, ch]]
    return (values, indices) if batched else (values[0], indices[0])


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_compiled_and_views_match_the_reference(dims, dtype):
    torch._dynamo.reset()  # a fresh cache: every parametrization compiles the same lambda's code
    fn, out = fns(dims)[0], (9, 7, 5)[:dims]
    ours = torch.compile(lambda x, s: fn(x, 2, output_size=out, return_indices=True, _random_samples=s),
                         fullgraph=True)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        shape = (2, 3, 19, 23, 12)[:dims + 2]
        x = make_input(2, 3, shape[2:], dtype, ("contiguous", "transposed", "sliced")[seed], seed, "specials")
        samples = torch.rand(4, 3, 2 * dims, generator=g, dtype=torch.float64).to(dtype)[::2, :, ::2]  # a view
        expected = reference_fractional(x, [2] * dims, (9, 7, 5)[:dims], samples)
        for got in (ours(x, samples), fn(x, 2, output_size=out, return_indices=True, _random_samples=samples)):
            assert_identical(got[1], expected[1])
            assert_identical(got[0], expected[0])


# ---- CUDA: fastpool's kernels (csrc/cuda/fractional_launcher.h; tests/test_cuda_host_fractional.py,
# and tests/test_cuda.py on a GPU) -------------------------------------------------------------

@pytest.mark.skipif(not fastpool.build_info()["cuda"], reason="a CPU build has no CUDA kernels")
def test_cuda_kernels_are_registered():
    for dims in (2, 3):
        for suffix in ("", "_backward", "_with_offsets", "_offsets_backward", "_offsets_to_indices"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"fastpool::fractional_max_pool{dims}d{suffix}",
                                                                 "CUDA")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 5, 13, 11), (5, 13, 11), (2, 1, 9, 9), (2, 5, 9, 8, 7), (2, 17, 9, 8)],
                         ids=str)
def test_channels_last_training_gradient(shape, dtype):
    """A channels-last input's x.grad: torch's bits and torch's (channels-last) strides. The
    training path's backward writes it in the input's layout (by blocks of planes, 17 channels:
    a partial block too), not AccumulateGrad's copy of a contiguous one."""
    dims = 3 if len(shape) == 5 else 2
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3)).to(dtype)
    x = x.movedim(-dims - 1, -1).contiguous().movedim(-1, -dims - 1)  # channels last, batched or not
    samples = torch.rand((shape[0] if len(shape) > 3 else 1, shape[-dims - 1], dims),
                         generator=torch.Generator().manual_seed(4)).to(dtype)
    out = [4] * dims
    ours, theirs = getattr(fastpool, f"fractional_max_pool{dims}d"), getattr(F, f"fractional_max_pool{dims}d")
    a, b = x.detach().requires_grad_(), x.detach().requires_grad_()
    y = ours(a, 2, output_size=out, _random_samples=samples)
    grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(5)).to(dtype)
    y.backward(grad)
    theirs(b, 2, output_size=out, _random_samples=samples).backward(grad)
    assert_identical(a.grad, b.grad)
    # The node's own output (autograd.grad: no AccumulateGrad) is already in the input's layout.
    d = x.detach().requires_grad_()
    (h,) = torch.autograd.grad(ours(d, 2, output_size=out, _random_samples=samples), d, grad)
    assert_identical(h, b.grad)
    # Where a graph is built over the backward (create_graph): the same.
    c = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(ours(c, 2, output_size=out, _random_samples=samples), c, grad, create_graph=True)
    assert_identical(g, b.grad)
    # With indices (the op with indices keeps them): the backward op's contiguous gradient,
    # handed over channels last.
    e = x.detach().requires_grad_()
    ours(e, 2, output_size=out, _random_samples=samples, return_indices=True)[0].backward(grad)
    assert_identical(e.grad, b.grad)
