"""Errors are torch's: for every bad call, fastpool raises torch's exception
type with the first line of torch's message (torch's own test suite matches on
these), before any kernel runs.

Each case below is a pair of calls, torch's and fastpool's, over the same
arguments:

* the functional API and the modules against torch.nn's (both values-only and
  with indices: torch's messages differ between the two paths, in 1-d most);
* the raw ops torch.ops.fastpool.* against the aten op each matches, on the CPU
  and on the Meta device (aten's Meta kernels word some errors differently
  from its CPU ones, and fastpool's Meta kernels follow them);
* the backward ops against aten's backward ops (the 1-d ones against the 2-d
  op over the inputs unsqueezed to (N,) C, 1, L, which is what torch's 1-d
  autograd runs).

A case where torch raises nothing is a call fastpool must accept too. The few
exceptions, fastpool's extensions and what it cannot reproduce, are listed in
DEVIATIONS with what each side does.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastpool

aten = torch.ops.aten
ops = torch.ops.fastpool
DIMS = [1, 2, 3]
DEVICES = ["cpu", "meta"]


def outcome(call):
    """(exception type, first line of its message), or None if nothing raised."""
    try:
        call()
    except Exception as e:  # noqa: BLE001 - every exception type is compared
        lines = str(e).splitlines()
        return type(e), lines[0] if lines else ""
    return None


def assert_same_outcome(theirs, ours, deviation=None):
    """Same outcome, or for a documented deviation (see DEVIATIONS) the outcome
    documented there."""
    if deviation is not None:
        expected_torch, expected_ours = deviation
        if expected_torch is not CRASHES:
            assert _matches(outcome(theirs), expected_torch), "torch no longer does what DEVIATIONS says"
        assert _matches(outcome(ours), expected_ours), f"fastpool: {outcome(ours)}"
        return
    expected, got = outcome(theirs), outcome(ours)
    assert got == expected, f"\n  torch:    {expected}\n  fastpool: {got}"


def _matches(got, expected):
    if expected is None:
        return got is None
    return got is not None and got[0] is expected[0] and expected[1] in got[1]


# Where fastpool does not do what torch does, on purpose or out of its reach:
# (test, dims, device or path, case) -> (torch's outcome, fastpool's), each
# None (no error) or (type, a part of the first line). CRASHES: torch's call is
# not run (it takes the process down).
CRASHES = object()
_SIZE_REFUSED = (RuntimeError, "(the forward output's), but got")
DEVIATIONS = {
    # fastpool's max_pool1d without indices takes integers (torch's only with indices).
    ("window", 1, "cpu values", "dtype torch.int32"): ((NotImplementedError, "max_pool1d_impl"), None),
    # torch's max_pool1d without indices takes its with-indices path when the
    # input requires grad under grad mode, which fastpool's kernel cannot see.
    ("window", 1, "values requires_grad", "dtype torch.complex64"): ((NotImplementedError, '"max_pool2d"'),
                                                                    (NotImplementedError, '"max_pool1d_impl"')),
    ("window", 1, "values requires_grad", "stride beyond int32"): ((RuntimeError, "cannot be converted"), None),
    # torch's 3-d CPU backward takes the output size from grad_output and
    # checks it against indices, not against the input: it scatters whatever it
    # is given (a larger batch of grad_output takes the process down). fastpool
    # refuses an output size its forward would not give.
    ("window backward", 3, "cpu", "grad_output larger batch"): (CRASHES, _SIZE_REFUSED),
    ("window backward", 3, "cpu", "indices larger batch"): (None, _SIZE_REFUSED),
    ("window backward", 3, "cpu", "grad_output and indices larger"): (None, _SIZE_REFUSED),
    ("window backward", 3, "cpu", "kernel larger than input"): (None, (RuntimeError, "Output size is too small")),
    # torch's parser fails an internal assert on a (non-numpy) object with
    # __index__ given for an int list; fastpool takes its value.
    ("types", None, None, "kernel index object"): ((RuntimeError, "INTERNAL ASSERT FAILED"), None),
}


def tensor(shape, dtype=torch.float32, device="cpu", layout="contiguous"):
    if device == "meta":
        x = torch.empty(shape, dtype=dtype, device="meta")
    elif dtype.is_floating_point or dtype.is_complex:
        x = torch.randn(shape, dtype=dtype)
    else:
        x = torch.randint(0, 5, shape).to(dtype)
    if layout == "channels_last":  # C stored innermost, any rank
        x = x.movedim(1 if x.dim() > 2 else 0, -1).contiguous().movedim(-1, 1 if x.dim() > 2 else 0)
    elif layout == "channels_last_2d":  # torch.channels_last on a 4-D tensor
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# ---- window pooling (max_pool{1,2,3}d) ---------------------------------------

def window_cases(d):
    """(id, input shape, kernel_size, stride, padding, dilation, ceil_mode, dtype, layout) for d dims."""
    B = (1, 2) + (8,) * d
    k, s, p, dil = [2] * d, [], [0] * d, [1] * d

    def last(v, x):  # v with its last entry replaced
        return v[:-1] + [x]

    cases = [
        ("valid", B, k, s, p, dil, False),
        ("valid ceil_mode", B, [3] * d, [2] * d, [1] * d, dil, True),
        ("valid one-int lists", B, [3], [2], [1], [1], False),
        ("valid zero batch", (0, 2) + (8,) * d, k, s, p, dil, False),
        ("valid unbatched", (2,) + (8,) * d, k, s, p, dil, False),
        ("kernel 0", B, [0] * d, s, p, dil, False),
        ("kernel -1", B, [-1] * d, s, p, dil, False),
        ("kernel last 0", B, last([2] * d, 0), s, p, dil, False),
        ("kernel last -1", B, last([2] * d, -1), s, p, dil, False),
        ("kernel -1 stride 1", B, [-1] * d, [1], p, dil, False),
        ("kernel 0 stride 1", B, [0] * d, [1], p, dil, False),
        ("kernel -3 stride 1", B, [-3] * d, [1], p, dil, False),
        ("stride 0", B, k, [0], p, dil, False),
        ("stride -2", B, k, [-2], p, dil, False),
        ("stride last 0", B, k, last([1] * d, 0), p, dil, False),
        ("stride last -1", B, k, last([1] * d, -1), p, dil, False),
        ("padding -1", B, k, s, [-1], dil, False),
        ("padding last -1", B, k, s, last([0] * d, -1), dil, False),
        ("padding 2 kernel 2", B, k, s, [2], dil, False),
        ("padding 1 kernel 1", B, [1], s, [1], dil, False),
        ("padding 2 kernel 3 dilation 2", B, [3], s, [2], [2], False),
        ("padding 3 kernel 3 dilation 3", B, [3], s, [3], [3], False),
        ("padding 1 kernel 1 dilation 3", B, [1], s, [1], [3], False),
        ("padding last 2", B, [3] * d, s, last([0] * d, 2), [2], False),
        ("dilation 0", B, k, s, p, [0], False),
        ("dilation -1", B, k, s, p, [-1], False),
        ("dilation last 0", B, k, s, p, last([1] * d, 0), False),
        ("kernel too long", B, [2] * (d + 1), s, p, dil, False),
        ("kernel empty", B, [], s, p, dil, False),
        ("stride too long", B, k, [1] * (d + 1), p, dil, False),
        ("padding too long", B, k, s, [0] * (d + 1), dil, False),
        ("padding empty", B, k, s, [], dil, False),
        ("dilation too long", B, k, s, p, [1] * (d + 1), False),
        ("dilation empty", B, k, s, p, [], False),
        ("kernel larger than input", B, [9], s, p, dil, False),
        ("dilated kernel larger than input", B, [3], s, p, [4], False),
        ("kernel larger than input ceil_mode", B, [9], s, p, dil, True),
        ("last dim too small", (1, 2) + (8,) * (d - 1) + (1,), k, s, p, dil, False),
        ("kernel beyond int32", B, [2**31], s, p, dil, False),
        ("stride beyond int32", B, k, [2**32 + 1], p, dil, False),
        ("rank 0", (), k, s, p, dil, False),
        ("rank too low", (8,) * d, k, s, p, dil, False),
        ("rank too high", (1, 1, 1) + (8,) * d, k, s, p, dil, False),
        ("zero channels", (1, 0) + (8,) * d, k, s, p, dil, False),
        ("zero last dim", (1, 2) + (8,) * (d - 1) + (0,), k, s, p, dil, False),
        ("zero first spatial dim", (1, 2, 0) + (8,) * (d - 1), k, s, p, dil, False),
        ("unbatched zero channels", (0,) + (8,) * d, k, s, p, dil, False),
        ("unbatched zero last dim", (2,) + (8,) * (d - 1) + (0,), k, s, p, dil, False),
        ("zero batch and channels", (0, 0) + (8,) * d, k, s, p, dil, False),
        # Which check comes first.
        ("rank too low and kernel 0", (8,) * d, [0] * d, s, p, dil, False),
        ("rank too low and kernel too long", (8,) * d, [2] * (d + 1), s, p, dil, False),
        ("zero channels and kernel 0", (1, 0) + (8,) * d, [0] * d, s, p, dil, False),
        ("zero channels and kernel -1", (1, 0) + (8,) * d, [-1] * d, [1], p, dil, False),
        ("zero channels and padding 2", (1, 0) + (8,) * d, k, s, [2], dil, False),
        ("zero channels and padding 2 kernel 3 dilation 2", (1, 0) + (8,) * d, [3], s, [2], [2], False),
        ("zero channels and kernel too large", (1, 0) + (8,) * d, [9], s, p, dil, False),
        ("zero last dim and kernel too large", (1, 2) + (8,) * (d - 1) + (0,), [9], s, p, dil, False),
        ("kernel -1 and dilation 0", B, [-1] * d, [1], p, [0], False),
        ("stride -1 and dilation 0", B, k, [-1], p, [0], False),
        ("padding 2 and kernel too large", B, [3], s, [2], [2], False),
        ("kernel 0 and padding too long", B, [0] * d, s, [0] * (d + 1), dil, False),
    ]
    cases = [(name, shape, k_, s_, p_, d_, c, torch.float32, "contiguous")
             for name, shape, k_, s_, p_, d_, c in cases]
    for dtype in (torch.bool, torch.complex64, torch.int32, torch.float16, torch.bfloat16):
        cases.append((f"dtype {dtype}", B, k, s, p, dil, False, dtype, "contiguous"))
        cases.append((f"dtype {dtype} and kernel 0", B, [0] * d, s, p, dil, False, dtype, "contiguous"))
        cases.append((f"dtype {dtype} and zero channels", (1, 0) + (8,) * d, k, s, p, dil, False, dtype,
                      "contiguous"))
    cases += [
        ("channels last", B, k, s, p, dil, False, torch.float32, "channels_last"),
        ("channels last zero channels", (2, 0) + (8,) * d, k, s, p, dil, False, torch.float32, "channels_last"),
        ("channels last zero last dim", (2, 3) + (8,) * (d - 1) + (0,), k, s, p, dil, False, torch.float32,
         "channels_last"),
        ("channels last zero batch", (0, 3) + (8,) * d, k, s, p, dil, False, torch.float32, "channels_last"),
        ("channels last kernel 0", (2, 3) + (8,) * d, [0] * d, s, p, dil, False, torch.float32, "channels_last"),
        ("channels last bool", (2, 3) + (8,) * d, k, s, p, dil, False, torch.bool, "channels_last"),
    ]
    if d == 3:
        # A 4-D input that is channels_last in the 2-d sense: 3-d pooling refuses it.
        for name, shape, k_, p_ in [("4-D channels_last", (2, 3, 4, 5), k, p),
                                    ("4-D channels_last and kernel too long", (2, 3, 4, 5), [2] * 4, p),
                                    ("4-D channels_last and kernel 0", (2, 3, 4, 5), [0] * 3, p),
                                    ("4-D channels_last and zero size", (2, 3, 4, 0), k, p),
                                    ("4-D channels_last and kernel too large", (2, 3, 4, 5), [9] * 3, p)]:
            cases.append((name, shape, k_, s, p_, dil, False, torch.float32, "channels_last_2d"))
        cases.append(("unbatched stored D,H,W,C", (3, 4, 5, 6), k, s, p, dil, False, torch.float32, "channels_last"))
    if d == 2:
        cases.append(("5-D channels_last_3d", (2, 3, 4, 5, 6), k, s, p, dil, False, torch.float32, "channels_last"))
        cases.append(("channels_last zero height", (2, 3, 0, 4), k, s, p, dil, False, torch.float32,
                      "channels_last_2d"))
        cases.append(("channels_last zero width", (2, 3, 4, 0), k, s, p, dil, False, torch.float32,
                      "channels_last_2d"))
    if d == 1:
        cases.append(("N,L,C zero channels", (2, 0, 8), k, s, p, dil, False, torch.float32, "channels_last"))
    return cases


def window_params():
    return [pytest.param(d, *case, id=f"{d}d-{case[0]}") for d in DIMS for case in window_cases(d)]


@pytest.mark.parametrize("d,name,shape,kernel,stride,padding,dilation,ceil_mode,dtype,layout", window_params())
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_indices", [False, True], ids=["values", "with_indices"])
def test_window_op(with_indices, device, d, name, shape, kernel, stride, padding, dilation, ceil_mode, dtype,
                   layout):
    x = tensor(shape, dtype, device, layout)
    suffix = "_with_indices" if with_indices else ""
    theirs = getattr(aten, f"max_pool{d}d{suffix}")
    ours = getattr(ops, f"max_pool{d}d{suffix}")
    args = (kernel, stride, padding, dilation, ceil_mode)
    deviation = DEVIATIONS.get(("window", d, f"{device} {'with_indices' if with_indices else 'values'}", name))
    assert_same_outcome(lambda: theirs(x, *args), lambda: ours(x, *args), deviation)


@pytest.mark.parametrize("d,name,shape,kernel,stride,padding,dilation,ceil_mode,dtype,layout", window_params())
@pytest.mark.parametrize("requires_grad", [False, True], ids=["", "requires_grad"])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "with_indices"])
def test_window_functional(return_indices, requires_grad, d, name, shape, kernel, stride, padding, dilation,
                           ceil_mode, dtype, layout):
    x = tensor(shape, dtype, "cpu", layout)
    if requires_grad:
        if not (dtype.is_floating_point or dtype.is_complex):
            pytest.skip("only floating tensors require grad")
        x.requires_grad_()
    kwargs = dict(kernel_size=kernel, stride=stride or None, padding=padding, dilation=dilation,
                  ceil_mode=ceil_mode, return_indices=return_indices)
    theirs, ours = getattr(F, f"max_pool{d}d"), getattr(fastpool, f"max_pool{d}d")
    path = ("with_indices" if return_indices else "values") + (" requires_grad" if requires_grad else "")
    deviation = DEVIATIONS.get(("window", d, path, name), DEVIATIONS.get(("window", d, f"cpu {path}", name)))
    assert_same_outcome(lambda: theirs(x, **kwargs), lambda: ours(x, **kwargs), deviation)


# ---- window pooling backward -------------------------------------------------

def window_backward_cases(d):
    """(id, changes) over a valid call (x: 1, 2, 8..., kernel 2, stride 2, padding 0, dilation 1)."""
    def sp(*shape):  # spatial sizes padded to d dims with the valid output's 4
        return tuple(shape) + (4,) * (d - len(shape))
    return [
        ("valid", {}),
        ("grad_output wider", dict(grad_shape=(1, 2) + sp(5))),
        ("grad_output last dim larger", dict(grad_shape=(1, 2) + (4,) * (d - 1) + (5,))),
        ("grad_output more channels", dict(grad_shape=(1, 3) + sp())),
        ("grad_output larger batch", dict(grad_shape=(2, 2) + sp())),
        ("grad_output unbatched", dict(grad_shape=(2,) + sp())),
        ("grad_output one dim more", dict(grad_shape=(1, 1, 2) + sp())),
        ("indices last dim larger", dict(indices_shape=(1, 2) + (4,) * (d - 1) + (5,))),
        ("indices more channels", dict(indices_shape=(1, 3) + sp())),
        ("indices larger batch", dict(indices_shape=(2, 2) + sp())),
        ("indices unbatched", dict(indices_shape=(2,) + sp())),
        ("grad_output and indices larger", dict(grad_shape=(1, 2) + sp(5), indices_shape=(1, 2) + sp(5))),
        ("grad_output float64", dict(grad_dtype=torch.float64)),
        ("grad_output float64 and wider", dict(grad_dtype=torch.float64, grad_shape=(1, 2) + sp(5))),
        ("kernel 0", dict(kernel=[0] * d)),
        ("stride 0", dict(stride=[0] * d)),
        ("padding 2", dict(padding=[2] * d)),
        ("kernel too long", dict(kernel=[2] * (d + 1))),
        ("stride too long", dict(stride=[2] * (d + 1))),
        ("kernel larger than input", dict(kernel=[9] * d)),
        ("input rank too low", dict(x_shape=(8,) * d)),
        ("input zero channels", dict(x_shape=(1, 0) + (8,) * d)),
        ("input unbatched", dict(x_shape=(2,) + (8,) * d)),
        ("indices int32", dict(indices_dtype=torch.int32)),
        ("input int64", dict(x_dtype=torch.int64)),
        ("input int64 channels last", dict(x_dtype=torch.int64, layout="channels_last")),
        ("input and grad_output int64 channels last", dict(x_dtype=torch.int64, layout="channels_last",
                                                           grad_layout="channels_last")),
        ("grad_output int64 channels last", dict(x_dtype=torch.int64, grad_layout="channels_last")),
        ("input float64 channels last", dict(x_dtype=torch.float64, layout="channels_last")),
    ]


def window_backward_params():
    return [pytest.param(d, name, changes, id=f"{d}d-{name}") for d in DIMS for name, changes in
            window_backward_cases(d)]


@pytest.mark.parametrize("d,name,changes", window_backward_params())
@pytest.mark.parametrize("device", DEVICES)
def test_window_backward_op(device, d, name, changes):
    x_dtype = changes.get("x_dtype", torch.float32)
    layout = changes.get("layout", "contiguous")
    x = tensor(changes.get("x_shape", (1, 2) + (8,) * d), x_dtype, device, layout)
    valid = tensor((1, 2) + (8,) * d, layout=layout)
    _, idx = getattr(aten, f"max_pool{d}d_with_indices")(valid, [2] * d, [2] * d, [0] * d, [1] * d, False)
    grad = tensor(changes.get("grad_shape", idx.shape), changes.get("grad_dtype", x_dtype), device,
                  changes.get("grad_layout", "contiguous"))
    idx_shape = changes.get("indices_shape", idx.shape)
    idx = torch.zeros(idx_shape, dtype=torch.int64) if tuple(idx_shape) != tuple(idx.shape) else idx
    idx = idx.to(device, changes.get("indices_dtype", torch.int64))
    args = (changes.get("kernel", [2] * d), changes.get("stride", [2] * d), changes.get("padding", [0] * d),
            [1] * d, False)
    ours = getattr(ops, f"max_pool{d}d_with_indices_backward")
    if d == 1:
        # torch's 1-d pooling is its 2-d op over (N,) C, 1, L; so is its gradient.
        def lift(v, fill):
            return [fill] + list(v) if len(v) == 1 else list(v)

        k, s, p, dl, c = args
        args2 = (lift(k, 1), lift(s, 1), lift(p, 0), lift(dl, 1), c)
        if len(k) != 1 or len(s) != 1:
            pytest.skip("no 2-d counterpart of a 1-d call with lists of two")

        def theirs():
            return aten.max_pool2d_with_indices_backward(grad.unsqueeze(-2), x.unsqueeze(-2), *args2,
                                                         idx.unsqueeze(-2))
    else:
        def theirs():
            return getattr(aten, f"max_pool{d}d_with_indices_backward")(grad, x, *args, idx)
    deviation = DEVIATIONS.get(("window backward", d, device, name))
    assert_same_outcome(theirs, lambda: ours(grad, x, *args, idx), deviation)


# ---- adaptive pooling ----------------------------------------------------------

def adaptive_cases(d):
    """(id, input shape, output_size, dtype)."""
    B = (1, 2) + (7,) * d
    out = [3] * d
    cases = [
        ("valid", B, out),
        ("valid larger output", B, [9] * d),
        ("valid zero output", B, [0] * d),
        ("valid zero batch", (0, 2) + (7,) * d, out),
        ("valid unbatched", (2,) + (7,) * d, out),
        ("output negative", B, [-1] * d),
        ("output last negative", B, out[:-1] + [-1]),
        ("output first negative", B, [-2] + out[1:]),
        ("output too long", B, [3] * (d + 1)),
        ("output empty", B, []),
        ("rank 0", (), out),
        ("rank too low", (7,) * d, out),
        ("rank too high", (1, 1, 1) + (7,) * d, out),
        ("zero channels", (1, 0) + (7,) * d, out),
        ("zero last dim", (1, 2) + (7,) * (d - 1) + (0,), out),
        ("unbatched zero channels", (0,) + (7,) * d, out),
        ("unbatched zero last dim", (2,) + (7,) * (d - 1) + (0,), out),
        ("rank too low and output negative", (7,) * d, [-1] * d),
        ("rank too low and output too long", (7,) * d, [3] * (d + 1)),
        ("zero channels and output too long", (1, 0) + (7,) * d, [3] * (d + 1)),
        ("zero channels and output negative", (1, 0) + (7,) * d, [-1] * d),
        ("output too long and negative", B, [-1] * (d + 1)),
    ]
    cases = [(name, shape, o, torch.float32) for name, shape, o in cases]
    cases.append(("valid channels last", B, out, torch.float32, "channels_last"))
    for dtype in (torch.int64, torch.uint8, torch.bool, torch.complex64, torch.float16, torch.bfloat16):
        cases.append((f"dtype {dtype}", B, out, dtype))
        cases.append((f"dtype {dtype} channels last", B, out, dtype, "channels_last"))
        cases.append((f"dtype {dtype} and output negative", B, [-1] * d, dtype))
        cases.append((f"dtype {dtype} and zero channels", (1, 0) + (7,) * d, out, dtype))
    return cases


def adaptive_params():
    return [pytest.param(d, *(case + ("contiguous",) * (5 - len(case))), id=f"{d}d-{case[0]}") for d in DIMS
            for case in adaptive_cases(d)]


@pytest.mark.parametrize("d,name,shape,output_size,dtype,layout", adaptive_params())
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_indices", [False, True], ids=["values", "with_indices"])
def test_adaptive_op(with_indices, device, d, name, shape, output_size, dtype, layout):
    x = tensor(shape, dtype, device, layout)
    theirs = getattr(aten, f"adaptive_max_pool{d}d")
    ours = getattr(ops, f"adaptive_max_pool{d}d" + ("_with_indices" if with_indices else ""))
    assert_same_outcome(lambda: theirs(x, output_size), lambda: ours(x, output_size))


@pytest.mark.parametrize("d,name,shape,output_size,dtype,layout", adaptive_params())
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "with_indices"])
def test_adaptive_functional(return_indices, d, name, shape, output_size, dtype, layout):
    x = tensor(shape, dtype, layout=layout)
    theirs, ours = getattr(F, f"adaptive_max_pool{d}d"), getattr(fastpool, f"adaptive_max_pool{d}d")
    assert_same_outcome(lambda: theirs(x, output_size, return_indices),
                        lambda: ours(x, output_size, return_indices))


# output_size as the functional API takes it: an int, None entries (the input's
# size there, in 2-d and 3-d), tuples of other lengths (torch's own check, in
# Python, of the input's rank against them).
def adaptive_output_size_cases(d):
    return [
        ("int", (1, 2) + (7,) * d, 3),
        ("int negative", (1, 2) + (7,) * d, -1),
        ("tuple of one", (1, 2) + (7,) * d, (3,)),
        ("tuple of d", (1, 2) + (7,) * d, (3,) * d),
        ("tuple of d + 1", (1, 2) + (7,) * d, (3,) * (d + 1)),
        ("tuple of d + 2", (1, 2) + (7,) * d, (3,) * (d + 2)),
        ("tuple of d + 3", (1, 2) + (7,) * d, (3,) * (d + 3)),
        ("empty tuple", (1, 2) + (7,) * d, ()),
        ("all None", (1, 2) + (7,) * d, (None,) * d),
        ("last None", (1, 2) + (7,) * d, (3,) * (d - 1) + (None,)),
        ("None and negative", (1, 2) + (7,) * d, (-1,) * (d - 1) + (None,)),
        ("None on unbatched", (2,) + (7,) * d, (None,) * d),
        ("None on rank too high", (1, 1, 1) + (7,) * d, (None,) * d),
        ("None on rank too low", (7,) * d, (None,) * d),
        ("None on rank 0", (), (None,) * d),
        ("tuple on rank 0", (), (3,) * d),
        ("None on zero channels", (1, 0) + (7,) * d, (None,) * d),
        ("None alone", (1, 2) + (7,) * d, None),
        ("float", (1, 2) + (7,) * d, 2.5),
        ("tuple of floats", (1, 2) + (7,) * d, (2.5,) * d),
        ("tuple with a float last", (1, 2) + (7,) * d, (2,) * (d - 1) + (2.5,)),
        ("bool", (1, 2) + (7,) * d, True),
        ("string", (1, 2) + (7,) * d, "3"),
        ("list", (1, 2) + (7,) * d, [3] * d),
        ("numpy int", (1, 2) + (7,) * d, np.int64(3)),
        ("tensor int", (1, 2) + (7,) * d, torch.tensor(3)),
        ("tuple of numpy ints", (1, 2) + (7,) * d, (np.int64(3),) * d),
    ]


@pytest.mark.parametrize("d,name,shape,output_size",
                         [pytest.param(d, *c, id=f"{d}d-{c[0]}") for d in DIMS for c in adaptive_output_size_cases(d)])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "with_indices"])
def test_adaptive_functional_output_size(return_indices, d, name, shape, output_size):
    x = tensor(shape)
    theirs, ours = getattr(F, f"adaptive_max_pool{d}d"), getattr(fastpool, f"adaptive_max_pool{d}d")
    assert_same_outcome(lambda: theirs(x, output_size, return_indices),
                        lambda: ours(x, output_size, return_indices))
    module = f"AdaptiveMaxPool{d}d"
    if name not in ("string",):
        assert_same_outcome(lambda: getattr(torch.nn, module)(output_size, return_indices)(x),
                            lambda: getattr(fastpool, module)(output_size, return_indices)(x))


# ---- adaptive pooling backward ------------------------------------------------

def adaptive_backward_cases(d):
    return [
        ("valid", {}),
        ("grad_output rank too low", dict(grad_shape=(2,) * d)),
        ("grad_output rank too high", dict(grad_shape=(1, 1, 2) + (3,) * d)),
        ("grad_output zero size", dict(grad_shape=(1, 2) + (3,) * (d - 1) + (0,), indices_shape="grad")),
        ("grad_output zero channels", dict(grad_shape=(1, 0) + (3,) * d, indices_shape="grad")),
        ("grad_output float64", dict(grad_dtype=torch.float64)),
        ("grad_output float64 and rank too low", dict(grad_dtype=torch.float64, grad_shape=(2,) * d)),
        ("input float64", dict(x_dtype=torch.float64)),
        ("grad_output zero size and float64", dict(grad_shape=(1, 2) + (3,) * (d - 1) + (0,),
                                                    indices_shape="grad", grad_dtype=torch.float64)),
        ("indices int32", dict(indices_dtype=torch.int32)),
        ("input int64", dict(x_dtype=torch.int64, grad_dtype=torch.int64)),
        ("input int64 channels last", dict(x_dtype=torch.int64, grad_dtype=torch.int64, layout="channels_last")),
    ]


@pytest.mark.parametrize("d,name,changes", [pytest.param(d, n, c, id=f"{d}d-{n}") for d in DIMS
                                            for n, c in adaptive_backward_cases(d)])
@pytest.mark.parametrize("device", DEVICES)
def test_adaptive_backward_op(device, d, name, changes):
    layout = changes.get("layout", "contiguous")
    x = tensor((1, 2) + (7,) * d, changes.get("x_dtype", torch.float32), device, layout)
    valid = tensor((1, 2) + (7,) * d, layout=layout)
    _, idx = getattr(F, f"adaptive_max_pool{d}d")(valid, 3, return_indices=True)
    grad_shape = changes.get("grad_shape", idx.shape)
    grad = torch.ones(grad_shape, dtype=changes.get("grad_dtype", torch.float32), device=device)
    if changes.get("indices_shape") == "grad":
        idx = torch.zeros(grad_shape, dtype=torch.int64)
    idx = idx.to(device, changes.get("indices_dtype", torch.int64))
    ours = getattr(ops, f"adaptive_max_pool{d}d_backward")
    if d == 1:
        def theirs():
            return aten.adaptive_max_pool2d_backward(grad.unsqueeze(-2), x.unsqueeze(-2), idx.unsqueeze(-2))
    else:
        def theirs():
            return getattr(aten, f"adaptive_max_pool{d}d_backward")(grad, x, idx)
    assert_same_outcome(theirs, lambda: ours(grad, x, idx))


# ---- Python-level arguments of the functional API and the modules ----------------

class _IntLike:
    def __index__(self):
        return 2


def bad_argument_cases():
    x = tensor((1, 2, 8, 8))
    return [
        ("input list", dict(input=[[1.0, 2.0]])),
        ("input None", dict(input=None)),
        ("input int", dict(input=3)),
        ("input numpy", dict(input=np.zeros((1, 2, 8, 8), dtype=np.float32))),
        ("kernel float", dict(kernel_size=2.5)),
        ("kernel bool", dict(kernel_size=True)),
        ("kernel None", dict(kernel_size=None)),
        ("kernel string", dict(kernel_size="2")),
        ("kernel tuple with float first", dict(kernel_size=(2.5, 2))),
        ("kernel tuple with float last", dict(kernel_size=(2, 2.5))),
        ("kernel tuple with bool first", dict(kernel_size=(True, 2))),
        ("kernel tuple with bool last", dict(kernel_size=(2, True))),
        ("kernel tuple with None", dict(kernel_size=(2, None))),
        ("kernel tuple with string first", dict(kernel_size=("2", 2))),
        ("kernel tuple of tuples", dict(kernel_size=((2,), 2))),
        ("kernel numpy int", dict(kernel_size=np.int64(2))),
        ("kernel numpy float", dict(kernel_size=np.float64(2))),
        ("kernel numpy bool", dict(kernel_size=np.bool_(True))),
        ("kernel tuple with numpy int", dict(kernel_size=(2, np.int64(2)))),
        ("kernel tuple with numpy float last", dict(kernel_size=(2, np.float32(2)))),
        ("kernel tuple with numpy float first", dict(kernel_size=(np.float32(2), 2))),
        ("kernel tuple with numpy bool last", dict(kernel_size=(2, np.bool_(True)))),
        ("kernel int tensor", dict(kernel_size=torch.tensor(2))),
        ("kernel float tensor", dict(kernel_size=torch.tensor(2.0))),
        ("kernel tuple with int tensor", dict(kernel_size=(2, torch.tensor(2)))),
        ("kernel tuple with float tensor last", dict(kernel_size=(2, torch.tensor(2.0)))),
        ("kernel tuple with float tensor first", dict(kernel_size=(torch.tensor(2.0), 2))),
        ("kernel index object", dict(kernel_size=_IntLike())),
        ("kernel range", dict(kernel_size=range(2, 4))),
        ("kernel torch.Size", dict(kernel_size=torch.Size([2, 2]))),
        ("kernel huge int", dict(kernel_size=2**63)),
        ("kernel tuple with huge int", dict(kernel_size=(2, 2**64))),
        ("stride float", dict(stride=2.0)),
        ("stride empty tuple", dict(stride=())),
        ("stride tuple with float", dict(stride=(2, 2.0))),
        ("padding None", dict(padding=None)),
        ("padding float", dict(padding=0.0)),
        ("dilation float", dict(dilation=1.0)),
        ("dilation tuple with None", dict(dilation=(None, 1))),
        ("ceil_mode int", dict(ceil_mode=1)),
        ("ceil_mode None", dict(ceil_mode=None)),
        ("ceil_mode numpy bool", dict(ceil_mode=np.bool_(True))),
        ("ceil_mode string", dict(ceil_mode="yes")),
        ("input list and kernel float", dict(input=[1.0], kernel_size=2.5)),
        ("kernel float and ceil_mode int", dict(kernel_size=(2, 2.5), ceil_mode=1)),
        ("kernel float last and stride float", dict(kernel_size=(2, 2.5), stride=2.0)),
        ("kernel float last and stride float last", dict(kernel_size=(2, 2.5), stride=(2, 2.5))),
        ("kernel 0 and stride float", dict(kernel_size=0, stride=2.5)),
    ], x


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("case", [c[0] for c in bad_argument_cases()[0]])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "with_indices"])
def test_functional_argument_types(return_indices, case, d):
    changes = dict(bad_argument_cases()[0])[case]
    kwargs = dict(input=tensor((1, 2) + (8,) * d), kernel_size=2, stride=None, padding=0, dilation=1,
                  ceil_mode=False, return_indices=return_indices)
    kwargs.update(changes)
    for key in ("kernel_size", "stride", "padding", "dilation"):  # tuples of two for 2-d: adapt to d
        v = kwargs[key]
        if isinstance(v, tuple) and len(v) == 2 and d != 2:
            kwargs[key] = (v[0],) * (d - 1) + (v[1],) if d > 1 else (v[1],) if case.endswith("last") else (v[0],)
    args = list(kwargs.values())
    theirs, ours = getattr(F, f"max_pool{d}d"), getattr(fastpool, f"max_pool{d}d")
    deviation = DEVIATIONS.get(("types", None, None, case))
    assert_same_outcome(lambda: theirs(*args), lambda: ours(*args), deviation)
    module = f"MaxPool{d}d"
    m_kwargs = {k: v for k, v in kwargs.items() if k != "input"}
    try:
        theirs_module = getattr(torch.nn, module)(**m_kwargs)
    except Exception:  # noqa: BLE001 - a constructor that refuses: nothing to run
        return
    ours_module = getattr(fastpool, module)(**m_kwargs)
    assert_same_outcome(lambda: theirs_module(kwargs["input"]), lambda: ours_module(kwargs["input"]), deviation)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "with_indices"])
@pytest.mark.parametrize("case", ["input list", "input None", "input numpy"])
def test_adaptive_functional_input_type(case, return_indices, d):
    x = {"input list": [[1.0]], "input None": None, "input numpy": np.zeros((1, 2) + (7,) * d)}[case]
    for output_size in (3, (3,) * d):
        theirs, ours = getattr(F, f"adaptive_max_pool{d}d"), getattr(fastpool, f"adaptive_max_pool{d}d")
        assert_same_outcome(lambda: theirs(x, output_size, return_indices),
                            lambda: ours(x, output_size, return_indices))


# ---- the modules -----------------------------------------------------------------

def test_issue_example():
    # nn.MaxPool2d(3, stride=2) on an input with zero channels.
    x = torch.randn(1, 0, 50, 32)
    assert_same_outcome(lambda: torch.nn.MaxPool2d(3, stride=2)(x), lambda: fastpool.MaxPool2d(3, stride=2)(x))
    with pytest.raises(RuntimeError) as e:
        fastpool.MaxPool2d(3, stride=2)(x)
    assert str(e.value).splitlines()[0] == ("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size "
                                            "for input, but got:[1, 0, 50, 32]")


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "with_indices"])
@pytest.mark.parametrize("case", ["zero channels", "rank", "padding", "too small", "dilation 0", "bool"])
def test_modules(case, return_indices, d):
    x, kwargs = tensor((1, 2) + (8,) * d), dict(kernel_size=3, stride=2)
    if case == "zero channels":
        x = tensor((1, 0) + (8,) * d)
    elif case == "rank":
        x = tensor((8,) * d)
    elif case == "padding":
        kwargs["padding"] = 2
    elif case == "too small":
        kwargs["kernel_size"] = 9
    elif case == "dilation 0":
        kwargs["dilation"] = 0
    else:
        x = x.bool()
    name = f"MaxPool{d}d"
    assert_same_outcome(lambda: getattr(torch.nn, name)(**kwargs, return_indices=return_indices)(x),
                        lambda: getattr(fastpool, name)(**kwargs, return_indices=return_indices)(x))
    name = f"AdaptiveMaxPool{d}d"
    assert_same_outcome(lambda: getattr(torch.nn, name)(3, return_indices=return_indices)(x),
                        lambda: getattr(fastpool, name)(3, return_indices=return_indices)(x))
