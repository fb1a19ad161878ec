"""fastpool's CUDA kernels on a GPU: what is specific to the device (dtype
errors, grid limits, streams, device index, the sanitizer smoke test, tensors
over 2^31 elements, determinism, adaptive autograd and gradcheck).

Run on a GPU machine by benchmarks/gpu_check.sh (`pytest -m cuda`); skipped
elsewhere. The generic properties, against PyTorch's CUDA max_pool1d/2d/3d
and adaptive_max_pool1d/2d/3d bit for bit (random shapes and parameters, all
four float dtypes, both layouts, NaN/inf/-0.0 and ties, forward with and
without indices, backward, autograd; integer dtypes forward only, against
torch CPU: PyTorch CUDA has no integer max-pool) are tests/test_ops.py's
`cuda` device (marked `cuda` too), with these comparison rules (tests/ops.py
CudaDevice):

max_pool3d backward: PyTorch CUDA scatters with atomicAdd (in scalar_t, in no
fixed order); fastpool gathers deterministically (in float for half types, in
output raster order). Where windows overlap, the exact reference is
ops.reference_backward (torch CPU's backward in that
order), and PyTorch CUDA's result is only close; where an index lies outside
its own window (windows with no in-bounds tap), PyTorch CUDA's 3-d scatter adds
the gradient there and fastpool does not.

adaptive_max_pool1d/2d/3d: forward against PyTorch CUDA bit for bit (values,
indices, layout); integers refused with PyTorch CUDA's error. Backward:
PyTorch CUDA scatters with atomicAdd (2-d always, 3-d where sizes do not
divide); where sizes divide, windows tile the input and the bits are the
same; where they do not, windows overlap and the exact reference is
ops.torch_adaptive_backward (torch CPU's, in float for
half types, rounded once), PyTorch CUDA's only close.

fractional_max_pool2d/3d: forward against PyTorch CUDA bit for bit; backward
against torch CPU's bit for bit (the same order and rounding), PyTorch CUDA's
(atomicAdd) only close, and the same bits on every run (section at the end).
"""
import math

import pytest
import torch
import torch.nn.functional as F

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)"),
]

import fastpool  # noqa: E402
from ops import DIMS, reference_backward, torch_adaptive, torch_backward  # noqa: E402
from pool_cases import FLOAT_DTYPES as DTYPES  # noqa: E402
from pool_cases import assert_identical as _assert_identical  # noqa: E402


def assert_identical(a, b):
    """Same values, NaN where NaN, the same sign on zeros, same shape, dtype and device."""
    _assert_identical(a, b, strides=False)


ops = torch.ops.fastpool


def fastpool_ops(dims):
    """(with_indices, values, backward) ops of max_pool{dims}d."""
    name = f"max_pool{dims}d"
    return getattr(ops, f"{name}_with_indices"), getattr(ops, name), getattr(ops, f"{name}_with_indices_backward")


def torch_cuda_forward(x, dims, k, s, p, d, ceil):
    """PyTorch CUDA's (values, indices): max_pool1d with indices is its 2-d op on the unsqueezed input."""
    fn = {1: torch.ops.aten.max_pool1d_with_indices, 2: torch.ops.aten.max_pool2d_with_indices,
          3: torch.ops.aten.max_pool3d_with_indices}[dims]
    return fn(x, k, s, p, d, ceil)


@pytest.mark.parametrize("dims", DIMS)
def test_bool_rejected_like_pytorch(dims):
    x = torch.zeros((1, 2) + (4,) * dims, dtype=torch.bool, device="cuda")
    k = [2] * dims
    with_indices, _, _ = fastpool_ops(dims)
    with pytest.raises((NotImplementedError, RuntimeError)) as ref:
        torch_cuda_forward(x, dims, k, [], [0] * dims, [1] * dims, False)
    with pytest.raises(type(ref.value)) as ours:
        with_indices(x, k, [], [0] * dims, [1] * dims, False)
    # Same dispatch name (max_pool3d's differs from max_pool1d/2d's) and type.
    assert str(ours.value).splitlines()[0] == str(ref.value).splitlines()[0]


def first_error_line(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e).splitlines()[0]
    return None


@pytest.mark.parametrize("shape", [(5, 5), (2, 5, 5), (1, 2, 3, 5, 5, 5)], ids=str)
def test_max_pool3d_rank_errors_like_pytorch_cuda(shape):
    """torch's CUDA max_pool3d reads the input's sizes before it checks the rank:
    an IndexError below four dims (torch's CPU op: a RuntimeError); the 2026-11-27
    GPU probe found fastpool raising the CPU's error on CUDA."""
    x = torch.randn(shape, device="cuda")
    args = ([2, 2, 2], [1, 1, 1], [0, 0, 0], [1, 1, 1], False)
    expected = first_error_line(lambda: torch.ops.aten.max_pool3d_with_indices(x, *args))
    assert expected is not None
    assert first_error_line(lambda: ops.max_pool3d_with_indices(x, *args)) == expected
    assert first_error_line(lambda: ops.max_pool3d(x, *args)) == expected
    grad = torch.randn((1,) * len(shape), device="cuda")
    indices = torch.zeros_like(grad, dtype=torch.long)
    expected = first_error_line(lambda: torch.ops.aten.max_pool3d_with_indices_backward(grad, x, *args, indices))
    assert expected is not None
    assert first_error_line(lambda: ops.max_pool3d_with_indices_backward(grad, x, *args, indices)) == expected


def test_max_pool3d_takes_a_4d_channels_last_input_like_pytorch_cuda():
    """A 4-D tensor stored channels_last (in the 2-d sense): torch's CPU max_pool3d
    raises "Unsupported memory format", its CUDA op pools it as the unbatched
    input it is, and so does fastpool's on CUDA."""
    x = torch.randn(3, 6, 7, 8, device="cuda").contiguous(memory_format=torch.channels_last)
    args = ([2, 3, 2], [2, 1, 2], [1, 1, 0], [1, 1, 1], True)
    ref = torch.ops.aten.max_pool3d_with_indices(x, *args)
    out = ops.max_pool3d_with_indices(x, *args)
    assert_identical(out[0], ref[0])
    assert torch.equal(out[1], ref[1]) and out[0].stride() == ref[0].stride()
    assert_identical(ops.max_pool3d(x, *args), ref[0])


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_batch_beyond_grid_limits(layout):
    """Far more work items than one grid covers: the grid-stride loop does the rest."""
    x = torch.randn(300_000, 3, 5, 5, device="cuda", dtype=torch.float16)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    out, idx = ops.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1], [1, 1], False)
    ref = torch.ops.aten.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1], [1, 1], False)
    assert_identical(out, ref[0])
    assert torch.equal(idx, ref[1])
    g = torch.randn_like(out)
    assert_identical(ops.max_pool2d_with_indices_backward(g, x, [3, 3], [2, 2], [1, 1], [1, 1], False, idx),
                      torch.ops.aten.max_pool2d_with_indices_backward(g, x, [3, 3], [2, 2], [1, 1], [1, 1], False,
                                                                      idx))


def test_runs_on_current_stream():
    """The kernels run on the current stream, ordered after its earlier work."""
    x = torch.randn(8, 64, 56, 56, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randn_like(x)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        torch.cuda._sleep(50_000_000)  # keeps s busy, so a kernel on another stream would read x early
        x.copy_(y)
        out, idx = ops.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1], [1, 1], False)
        g = torch.ones_like(out)
        gi = ops.max_pool2d_with_indices_backward(g, x, [3, 3], [2, 2], [1, 1], [1, 1], False, idx)
    torch.cuda.synchronize()
    ref = torch.ops.aten.max_pool2d_with_indices(y, [3, 3], [2, 2], [1, 1], [1, 1], False)
    assert torch.equal(out, ref[0]) and torch.equal(idx, ref[1])
    assert torch.equal(gi, torch.ops.aten.max_pool2d_with_indices_backward(g, y, [3, 3], [2, 2], [1, 1], [1, 1],
                                                                           False, ref[1]))


def test_other_device_index():
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    x = torch.randn(2, 3, 9, 9, device="cuda:1")
    out = ops.max_pool2d(x, [2, 2], [], [0, 0], [1, 1], False)
    assert out.device == x.device
    assert_identical(out, F.max_pool2d(x, 2))


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", DTYPES + [torch.int32, torch.uint8], ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("channels", [1, 3, 4, 8, 16, 24])
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_sanitizer_smoke(dims, dtype, layout, channels, offset):
    """Small calls through every kernel instantiation (both layouts, the 16-byte,
    8-byte and scalar NHWC paths via channel counts and buffer offsets, with and
    without indices, backward for float types; depth band gather in 3-d; the
    planar rows forward, its chunked loads where the buffer is aligned, on rows
    of 16: 8 outputs with k3 p1, 8 with k3 p0 ceil, a partial group in 1-d).
    gpu_check.sh runs it under compute-sanitizer."""
    spatial = {1: (11,), 2: (7, 16), 3: (5, 7, 16)}[dims]
    shape = (2, channels) + spatial
    base = (torch.randn(math.prod(shape) + offset, device="cuda") * 50).to(dtype)
    if layout == "channels_last":
        x = base[offset:].view((2,) + spatial + (channels,)).permute([0, dims + 1] + list(range(1, dims + 1)))
    else:
        x = base[offset:].view(shape)
    with_indices, values, backward = fastpool_ops(dims)
    windows = [([3] * dims, [2] * dims, [1] * dims, [1] * dims, False),
               ([2] + [3] * (dims - 1), [1] + [2] * (dims - 1), [1] + [0] * (dims - 1), [2] + [1] * (dims - 1), True)]
    for k, s, p, d, ceil in windows:
        out, idx = with_indices(x, k, s, p, d, ceil)
        if not dtype.is_floating_point:  # no PyTorch CUDA kernel: torch CPU's planar result (its
            # channels-last 3-d kernels refuse 1-byte integers past 127-element planes; a
            # one-channel channels_last tensor is also "contiguous", so clone to plain strides)
            ref = torch_cuda_forward(x.cpu().clone(memory_format=torch.contiguous_format), dims, k, s, p, d, ceil)
            assert torch.equal(out.cpu(), ref[0]) and torch.equal(idx.cpu(), ref[1])
            assert torch.equal(values(x, k, s, p, d, ceil).cpu(), ref[0])
            continue
        ref = torch_cuda_forward(x, dims, k, s, p, d, ceil)
        assert_identical(out, ref[0])
        assert torch.equal(idx, ref[1])
        assert_identical(values(x, k, s, p, d, ceil), ref[0])
        g = torch.randn_like(ref[0])
        case = dict(dims=dims, k=k, s=s, p=p, d=d, ceil=ceil)
        got = backward(g, x, k, s, p, d, ceil, idx)
        if dims < 3:
            assert_identical(got, torch_backward(g, x, case, idx))
        else:
            assert_identical(got.cpu(), reference_backward(g.cpu(), x.cpu(), case, idx.cpu()))
    torch.cuda.synchronize()


def _chunked_check(x, out, idx, k, s, rows):
    """Compares a huge result with torch's in row bands (torch's own kernels
    may not take the whole tensor); k == s, no padding, so bands are exact."""
    H_out = out.shape[-2]
    for r0 in range(0, H_out, rows):
        r1 = min(H_out, r0 + rows)
        xb = x[..., r0 * s:r1 * s, :]
        ref_o, ref_i = torch.ops.aten.max_pool2d_with_indices(xb, [k, k], [s, s], [0, 0], [1, 1], False)
        assert_identical(out[..., r0:r1, :], ref_o)
        assert torch.equal(idx[..., r0:r1, :] - r0 * s * x.shape[-1], ref_i)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_over_2_pow_31_elements(layout):
    """64-bit index arithmetic: an input of more than 2^31 elements."""
    free, _ = torch.cuda.mem_get_info()
    if free < 24 * 2**30:
        pytest.skip("needs 24 GiB of free GPU memory")
    if layout == "contiguous":
        shape = (1, 1, 46_342, 46_342)  # one plane past 2^31 elements
    else:
        shape = (1, 64, 5_794, 5_794)
    x = torch.empty(shape, dtype=torch.float16, device="cuda")
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    x.normal_()
    assert x.numel() > 2**31
    out, idx = ops.max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1], False)
    _chunked_check(x, out, idx, 2, 2, rows=1024)
    del out
    g = torch.ones(idx.shape, dtype=x.dtype, device="cuda")
    if layout == "channels_last":
        g = g.contiguous(memory_format=torch.channels_last)
    gi = ops.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
    # k == s: every input is covered once; its grad is 1 exactly where it was the max.
    hit = torch.zeros(x.shape, dtype=torch.bool, device="cuda")
    flat = hit.view(-1) if layout == "contiguous" else None
    if flat is not None:
        flat[idx.view(-1)] = True
        assert torch.equal(gi.bool(), hit)
    else:
        assert int(gi.sum(dtype=torch.float64).item()) == idx.numel()


@pytest.mark.parametrize("dims", [2, 3])
def test_backward_deterministic_where_torch_refuses(dims):
    """torch's CUDA max_pool3d backward adds with atomics and raises under
    torch.use_deterministic_algorithms(True) (pytorch/pytorch#107011); fastpool's
    gather runs there and gives the same bits on every run."""
    x = torch.randn((4, 16) + (24,) * dims, device="cuda", requires_grad=True)
    kwargs = dict(kernel_size=3, stride=2, padding=1)  # overlapping windows
    fp = getattr(fastpool, f"max_pool{dims}d")
    grad = torch.randn_like(fp(x, **kwargs))
    grads = grads_under_deterministic_algorithms(lambda t: fp(t, **kwargs), x, grad)
    for g in grads[1:]:
        assert_identical(g, grads[0])


def grads_under_deterministic_algorithms(pool, x, grad, runs=3):
    """x's gradient through pool, `runs` times, under torch.use_deterministic_algorithms(True)."""
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        grads = []
        for _ in range(runs):
            x.grad = None
            pool(x).backward(grad)
            grads.append(x.grad.clone())
    finally:
        torch.use_deterministic_algorithms(old)
    return grads

# ---- adaptive_max_pool1d/2d/3d ---------------------------------------------


def fastpool_adaptive_ops(dims):
    """(with_indices, values, backward) ops of adaptive_max_pool{dims}d."""
    name = f"adaptive_max_pool{dims}d"
    return getattr(ops, f"{name}_with_indices"), getattr(ops, name), getattr(ops, f"{name}_backward")


@pytest.mark.parametrize("dims", DIMS)
def test_adaptive_autograd(dims):
    x = torch.randn((2, 8) + (7, 9, 5)[:dims], device="cuda", dtype=torch.float64, requires_grad=True)
    out_size = (3, 4, 6)[:dims]
    fn = getattr(fastpool, f"adaptive_max_pool{dims}d")
    ref_fn = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[dims]
    arg = out_size[0] if dims == 1 else out_size
    fn(x, arg).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    ref_fn(x, arg).sum().backward()
    assert torch.allclose(ours, x.grad)
    assert torch.autograd.gradcheck(lambda t: fn(t, arg), (x[:1, :2].detach().clone().requires_grad_(),))


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool], ids=str)
def test_adaptive_integers_rejected_like_pytorch(dims, dtype):
    x = torch.zeros((1, 2) + (4,) * dims, dtype=dtype, device="cuda")
    with_indices, _, _ = fastpool_adaptive_ops(dims)
    with pytest.raises((NotImplementedError, RuntimeError)) as ref:
        torch_adaptive(x, (2,) * dims)
    with pytest.raises(type(ref.value)) as ours:
        with_indices(x, [2] * dims)
    assert str(ours.value).splitlines()[0] == str(ref.value).splitlines()[0]

# ---- fractional_max_pool2d/3d ------------------------------------------------
# Forward against PyTorch CUDA bit for bit (values, indices, strides: its
# windows are computed in float for half types, as fastpool's); backward
# against torch CPU's backward bit for bit (fastpool adds per plane in output
# raster order, rounded to the dtype after every add, as torch's CPU kernel)
# and PyTorch CUDA's atomicAdd result to a tolerance; the same bits on every
# run, also where torch refuses (use_deterministic_algorithms); errors with
# PyTorch CUDA's first line (the host-executor cases of
# test_cuda_host_fractional.py, here against torch CUDA itself).

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from ops import hypothesis_settings  # noqa: E402
from test_cuda_host_fractional import BACKWARD_ERRORS as FRACTIONAL_BACKWARD_ERRORS  # noqa: E402
from test_cuda_host_fractional import FORWARD_ERRORS as FRACTIONAL_FORWARD_ERRORS  # noqa: E402
from test_cuda_host_fractional import first_line, fractional_case  # noqa: E402


def fractional_ops(dims):
    name = f"fractional_max_pool{dims}d"
    return (getattr(ops, name), getattr(ops, name + "_backward"), getattr(torch.ops.aten, name),
            getattr(torch.ops.aten, name + "_backward"))


def test_fractional_forward_and_backward_parity():
    @hypothesis_settings(60)
    @given(fractional_case(), st.integers(0, 2**31 - 1))
    def check(case, grad_seed):
        dims, kernel, out, x_cpu, samples_cpu = case
        x, samples = x_cpu.cuda(), samples_cpu.cuda()
        ours, ours_bw, theirs, theirs_bw = fractional_ops(dims)
        values, indices = ours(x, list(kernel), list(out), samples)
        ref_values, ref_indices = theirs(x, list(kernel), list(out), samples)
        assert_identical(values, ref_values)
        assert torch.equal(indices, ref_indices)
        assert values.stride() == ref_values.stride() and indices.stride() == ref_indices.stride()
        g = torch.Generator().manual_seed(grad_seed)
        grad = (torch.randn(values.shape, generator=g, dtype=torch.float64) * 3).to(x.dtype).cuda()
        got = ours_bw(grad, x, list(kernel), list(out), indices)
        assert_identical(got, ours_bw(grad, x, list(kernel), list(out), indices))  # deterministic
        assert_identical(got.cpu(), theirs_bw(grad.cpu(), x_cpu, list(kernel), list(out), indices.cpu()))
        want = theirs_bw(grad, x, list(kernel), list(out), indices)
        tol = 2e-2 if x.dtype in (torch.float16, torch.bfloat16) else 1e-5
        assert got.stride() == want.stride()
        assert torch.allclose(got.double(), want.double(), rtol=tol, atol=tol, equal_nan=True)

    check()


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fractional_functional_and_autograd(dims, dtype):
    x = torch.randn((2, 3, 9, 11, 10)[:dims + 2], device="cuda").to(dtype)
    fn, ref = getattr(fastpool, f"fractional_max_pool{dims}d"), getattr(F, f"fractional_max_pool{dims}d")
    torch.manual_seed(3)
    ratio = (0.6,) * dims  # (torch's 2-d function takes no bare float ratio: a TypeError)
    a = fn(x, 2, output_ratio=ratio, return_indices=True)
    torch.manual_seed(3)
    b = ref(x, 2, output_ratio=ratio, return_indices=True)
    assert_identical(a[0], b[0])
    assert torch.equal(a[1], b[1])
    xg = x.detach().clone().requires_grad_()
    torch.manual_seed(3)
    fn(xg, 2, output_size=4).sum().backward()
    xr = x.detach().clone().requires_grad_()
    torch.manual_seed(3)
    ref(xr, 2, output_size=4).sum().backward()
    assert_identical(xg.grad, xr.grad)  # fractional windows do not overlap for k=2 here: no sums to reorder


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fractional_training_on_taps(dims, channels_last):
    """Training on CUDA saves the 1-byte taps and the samples, not int64
    indices, and its backward (a gather over every input) gives the indices
    backward's bits, contiguous as torch CUDA's gradient; overlapping windows
    (k3), so that sums are reordered if anything is."""
    x = torch.randn((4, 8) + (17,) * dims, device="cuda")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    samples = torch.rand(4, 8, dims, device="cuda")
    fn = getattr(fastpool, f"fractional_max_pool{dims}d")
    xg = x.detach().requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = fn(xg, 3, output_size=9, _random_samples=samples)
    assert sorted(str(t.dtype) for t in saved) == ["torch.float32", "torch.uint8"]
    grad = torch.randn_like(y)
    (got,) = torch.autograd.grad(y, xg, grad)  # the node's own output (no AccumulateGrad restriding)
    op = getattr(torch.ops.fastpool, f"fractional_max_pool{dims}d")
    values, indices = op(x, [3] * dims, [9] * dims, samples)
    expected = getattr(torch.ops.fastpool, f"fractional_max_pool{dims}d_backward")(grad, x, [3] * dims, [9] * dims,
                                                                                   indices)
    assert_identical(y, values)
    assert_identical(got, expected)
    assert got.is_contiguous()


@pytest.mark.parametrize("dims", [2, 3])
def test_fractional_backward_deterministic_where_torch_refuses(dims):
    """torch's CUDA backward adds with atomicAdd and raises under
    torch.use_deterministic_algorithms(True); fastpool's runs and repeats its bits."""
    x = torch.randn((4, 16) + (24,) * dims, device="cuda", requires_grad=True)
    fn = getattr(fastpool, f"fractional_max_pool{dims}d")
    samples = torch.rand(4, 16, dims, device="cuda")
    grad = torch.randn((4, 16) + (10,) * dims, device="cuda")
    pool = lambda t: fn(t, 4, output_size=10, _random_samples=samples)  # noqa: E731  (overlapping windows)
    grads = grads_under_deterministic_algorithms(pool, x, grad)
    for g in grads[1:]:
        assert_identical(g, grads[0])


def test_fractional_bad_indices_raise():
    x = torch.randn(2, 3, 6, 6, device="cuda")
    values, indices = ops.fractional_max_pool2d(x, [2, 2], [3, 3], torch.rand(2, 3, 2, device="cuda"))
    indices[1, 2, 2, 2] = 36
    with pytest.raises(RuntimeError, match="index 36 is outside the input plane of 36 elements"):
        ops.fractional_max_pool2d_backward(torch.randn_like(values), x, [2, 2], [3, 3], indices)
    torch.cuda.synchronize()  # the context survives


@pytest.mark.parametrize("case", range(len(FRACTIONAL_FORWARD_ERRORS)))
def test_fractional_forward_errors_match_torch(case):
    dims, x, kernel, out, samples, _ = FRACTIONAL_FORWARD_ERRORS[case]
    x, samples = x.cuda(), samples.cuda()
    name = f"fractional_max_pool{dims}d"
    expected = first_line(lambda: getattr(torch.ops.aten, name)(x, kernel, out, samples))
    assert expected is not None
    assert first_line(lambda: getattr(ops, name)(x, kernel, out, samples)) == expected


@pytest.mark.parametrize("case", range(len(FRACTIONAL_BACKWARD_ERRORS)))
def test_fractional_backward_errors_match_torch(case):
    dims, args, _ = FRACTIONAL_BACKWARD_ERRORS[case]
    args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)
    name = f"fractional_max_pool{dims}d_backward"
    expected = first_line(lambda: getattr(torch.ops.aten, name)(*args))
    assert expected is not None
    assert first_line(lambda: getattr(ops, name)(*args)) == expected


# ---- max_unpool2d/3d ------------------------------------------------------
# Against PyTorch CUDA itself, for indices a max-pool made (unique, so PyTorch
# CUDA's scatter has one answer); duplicates, integers and bad indices are
# tests/test_cuda_host_unpool.py's (the host executor, where torch CUDA races
# or asserts).

from test_unpool import in_layout  # noqa: E402


@pytest.mark.parametrize("dims", [2, 3])
def test_unpool_matches_pytorch_cuda(dims):
    @hypothesis_settings(40)
    @given(batch=st.sampled_from([None, 0, 1, 3]), channels=st.integers(1, 20), side=st.integers(1, 7),
           k=st.integers(1, 3), layout=st.sampled_from(["contiguous", "channels_last"]),
           dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**31 - 1))
    def check(batch, channels, side, k, layout, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        sizes = (max(side, k),) * dims
        shape = ((batch,) if batch is not None else ()) + (channels,) + sizes
        x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype).cuda()
        pooled, idx = getattr(F, f"max_pool{dims}d")(x, k, return_indices=True)
        pooled, idx = in_layout(pooled, layout, dims), in_layout(idx, layout, dims)
        ours = getattr(fastpool, f"max_unpool{dims}d")
        theirs = getattr(F, f"max_unpool{dims}d")
        assert_identical(ours(pooled, idx, k, output_size=sizes), theirs(pooled, idx, k, output_size=sizes))
        a, b = pooled.detach().clone().requires_grad_(), pooled.detach().clone().requires_grad_()
        grad = torch.randn(x.shape, generator=g, dtype=torch.float64).to(dtype).cuda()
        ours(a, idx, k, output_size=sizes).backward(grad)
        theirs(b, idx, k, output_size=sizes).backward(grad)
        assert_identical(a.grad, b.grad)

    check()
