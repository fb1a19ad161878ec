"""fastpool's CUDA kernels against PyTorch's CUDA max_pool2d, bit for bit.

Run on a GPU machine by benchmarks/gpu_check.sh (`pytest -m cuda`); skipped
elsewhere. Same properties as the CPU tests: random shapes and parameters, all
four dtypes, both layouts, NaN/inf/-0.0 and ties, forward (with and without
indices), backward, autograd, errors; plus grid limits, streams and tensors
over 2^31 elements.
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

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastpool  # noqa: E402
from test_cuda_host_executor import DTYPES, SETTINGS, make_input, pool_args, pool_case  # noqa: E402

ops = torch.ops.fastpool


def assert_bits_equal(a, b):
    """Same values, NaN where NaN, and the same sign on zeros."""
    assert a.shape == b.shape and a.dtype == b.dtype and a.device == b.device
    a, b = a.cpu(), b.cpu()
    assert torch.equal(a.isnan(), b.isnan())
    fill = torch.zeros((), dtype=a.dtype)
    a0, b0 = torch.where(a.isnan(), fill, a), torch.where(b.isnan(), fill, b)
    assert torch.equal(a0, b0)
    assert torch.equal(torch.signbit(a0), torch.signbit(b0))


def both(fn):
    """(torch's result, its exception)."""
    try:
        return fn(), None
    except (RuntimeError, NotImplementedError, ValueError, IndexError) as e:
        return None, e


@SETTINGS
@given(pool_case())
def test_forward_parity(case):
    x = make_input(case).cuda()
    k, s, p, d, ceil = pool_args(case)
    ref, err = both(lambda: torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, ceil))
    if err is not None:
        with pytest.raises(type(err)):
            ops.max_pool2d_with_indices(x, k, s, p, d, ceil)
        return
    out, idx = ops.max_pool2d_with_indices(x, k, s, p, d, ceil)
    assert_bits_equal(out, ref[0])
    assert torch.equal(idx, ref[1])
    assert out.stride() == ref[0].stride() and idx.stride() == ref[1].stride()
    assert_bits_equal(ops.max_pool2d(x, k, s, p, d, ceil), ref[0])
    # The public API, whichever op it picks.
    out2 = fastpool.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
    assert_bits_equal(out2, F.max_pool2d(x, k, s, p, d, ceil_mode=ceil))


@SETTINGS
@given(pool_case(), st.integers(0, 2**31 - 1))
def test_backward_parity(case, grad_seed):
    x = make_input(case).cuda()
    k, s, p, d, ceil = pool_args(case)
    ref, err = both(lambda: torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, ceil))
    if err is not None:
        return
    g = torch.Generator().manual_seed(grad_seed)
    grad = (torch.randn(ref[0].shape, generator=g, dtype=torch.float64) * 3).to(x.dtype).cuda()
    if case["special"] and grad.numel():
        grad.view(-1)[0] = -0.0
    if grad.dim() == 4 and ref[0].is_contiguous(memory_format=torch.channels_last):
        grad = grad.contiguous(memory_format=torch.channels_last)
    want = torch.ops.aten.max_pool2d_with_indices_backward(grad, x, k, s, p, d, ceil, ref[1])
    got = ops.max_pool2d_with_indices_backward(grad, x, k, s, p, d, ceil, ref[1])
    assert_bits_equal(got, want)
    assert got.stride() == want.stride()


@SETTINGS
@given(pool_case())
def test_autograd_parity(case):
    x = make_input(case).cuda()
    k, s, p, d, ceil = pool_args(case)
    if both(lambda: torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, ceil))[1] is not None:
        return
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    ya = fastpool.max_pool2d(xa, k, s, p, d, ceil_mode=ceil)
    yb = F.max_pool2d(xb, k, s, p, d, ceil_mode=ceil)
    gy = torch.ones_like(yb)
    ya.backward(gy)
    yb.backward(gy)
    assert_bits_equal(ya.detach(), yb.detach())
    assert_bits_equal(xa.grad, xb.grad)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8], ids=lambda d: str(d).replace("torch.", ""))
def test_integer_dtypes_rejected_like_pytorch(dtype):
    x = torch.randint(0, 9, (1, 2, 4, 4), dtype=dtype, device="cuda")
    with pytest.raises(NotImplementedError) as ref:
        torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [], [0, 0], [1, 1], False)
    with pytest.raises(NotImplementedError) as ours:
        ops.max_pool2d_with_indices(x, [2, 2], [], [0, 0], [1, 1], False)
    assert str(ours.value).splitlines()[0] == str(ref.value).splitlines()[0]


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_batch_beyond_grid_limits(layout):
    """Far more work items than one grid covers: the grid-stride loop does the rest."""
    x = torch.randn(300_000, 3, 5, 5, device="cuda", dtype=torch.float16)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    out, idx = ops.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1], [1, 1], False)
    ref = torch.ops.aten.max_pool2d_with_indices(x, [3, 3], [2, 2], [1, 1], [1, 1], False)
    assert_bits_equal(out, ref[0])
    assert torch.equal(idx, ref[1])
    g = torch.randn_like(out)
    assert_bits_equal(ops.max_pool2d_with_indices_backward(g, x, [3, 3], [2, 2], [1, 1], [1, 1], False, idx),
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
    assert_bits_equal(out, F.max_pool2d(x, 2))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("channels", [1, 3, 4, 8, 16, 24])
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_sanitizer_smoke(dtype, layout, channels, offset):
    """Small calls through every kernel instantiation (both layouts, the 16-byte,
    8-byte and scalar NHWC paths via channel counts and buffer offsets, with and
    without indices, backward). gpu_check.sh runs it under compute-sanitizer."""
    shape = (2, channels, 7, 6)
    base = torch.randn(math.prod(shape) + offset, device="cuda").to(dtype)
    if layout == "channels_last":
        x = base[offset:].view(2, 7, 6, channels).permute(0, 3, 1, 2)
    else:
        x = base[offset:].view(shape)
    for k, s, p, d, ceil in [([3, 3], [2, 2], [1, 1], [1, 1], False), ([2, 3], [1, 2], [1, 0], [2, 1], True)]:
        out, idx = ops.max_pool2d_with_indices(x, k, s, p, d, ceil)
        ref = torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, ceil)
        assert_bits_equal(out, ref[0])
        assert torch.equal(idx, ref[1])
        assert_bits_equal(ops.max_pool2d(x, k, s, p, d, ceil), ref[0])
        g = torch.randn_like(ref[0])
        assert_bits_equal(ops.max_pool2d_with_indices_backward(g, x, k, s, p, d, ceil, idx),
                          torch.ops.aten.max_pool2d_with_indices_backward(g, x, k, s, p, d, ceil, idx))
    torch.cuda.synchronize()


def _chunked_check(x, out, idx, k, s, rows):
    """Compares a huge result with torch's in row bands (torch's own kernels
    may not take the whole tensor); k == s, no padding, so bands are exact."""
    H_out = out.shape[-2]
    for r0 in range(0, H_out, rows):
        r1 = min(H_out, r0 + rows)
        xb = x[..., r0 * s:r1 * s, :]
        ref_o, ref_i = torch.ops.aten.max_pool2d_with_indices(xb, [k, k], [s, s], [0, 0], [1, 1], False)
        assert_bits_equal(out[..., r0:r1, :], ref_o)
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
