"""The CUDA ops run by the host executor (csrc/cuda/host_executor.cpp), against
torch on CPU.

This is how CI checks the CUDA code without a GPU: fastpool._C.cuda_host_* run
the very functions the CUDA registration runs (max_pool_launcher.h: checks,
allocation, layout, kernel body, vector width, index width, grid), with only
the kernel launch replaced by an emulation of the grid (every block, thread
and grid-stride step, with an H100's limits or a single SM's). The reference
is torch's CPU max_pool2d, adjusted only where PyTorch's CUDA result differs
from its CPU one (the CUDA kernels match CUDA):
  * channels_last forward: when no tap beats -inf (all taps -inf), the index is
    0, not the first tap;
  * float16/bfloat16 backward: CUDA accumulates in float and rounds once, CPU
    rounds after every add; the reference is CPU's backward run in float32
    (same order of adds) rounded once;
  * backward with an index outside its own output's window (that NHWC index 0,
    or a window with no in-bounds tap, which dilation and padding allow):
    CUDA gathers only over the outputs covering each input, so such an output
    adds nothing; CPU scatters its gradient to that index.
"""
import math
import os

import pytest
import torch
import torch.nn.functional as F

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastpool  # noqa: E402
from fastpool import _C  # noqa: E402

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
HALF_TYPES = (torch.float16, torch.bfloat16)
# FASTPOOL_EXAMPLES=3000 for a deeper run. SETTINGS is also what the GPU tests
# (test_cuda.py) use; the host runs are cheap, so they take more examples.
SETTINGS = settings(max_examples=int(os.environ.get("FASTPOOL_EXAMPLES", "120")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
HOST_SETTINGS = settings(SETTINGS, max_examples=3 * SETTINGS.max_examples)


@st.composite
def pool_case(draw, min_c=1, max_c=12, channels_multiple=1):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = tuple(draw(st.integers(0, ((k[i] - 1) * d[i] + 1) // 2)) for i in range(2))
    ceil = draw(st.booleans())
    # Big enough for at least one window.
    h = draw(st.integers(max(1, (k[0] - 1) * d[0] + 1 - 2 * p[0]), 14))
    w = draw(st.integers(max(1, (k[1] - 1) * d[1] + 1 - 2 * p[1]), 14))
    c = draw(st.integers(min_c, max_c)) * channels_multiple
    batched = draw(st.integers(0, 5)) > 0
    n = draw(st.integers(0, 3)) if batched else None
    layout = draw(st.sampled_from(["contiguous", "channels_last"])) if batched else "contiguous"
    dtype = draw(st.sampled_from(DTYPES))
    special = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(k=k, s=s, p=p, d=d, ceil=ceil, shape=((n,) if batched else ()) + (c, h, w),
                layout=layout, dtype=dtype, special=special, seed=seed)


def make_input(case):
    """Small integers (many ties, exact in every dtype), optionally with NaN,
    +-inf and -0.0 sprinkled in, in the case's layout."""
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randint(-4, 5, case["shape"], generator=g).to(torch.float64)
    if case["special"] and x.numel():
        r = torch.rand(case["shape"], generator=g)
        x = torch.where(r < 0.08, torch.full_like(x, float("nan")), x)
        x = torch.where((r >= 0.08) & (r < 0.3), torch.full_like(x, -math.inf), x)
        x = torch.where((r >= 0.3) & (r < 0.35), torch.full_like(x, math.inf), x)
        x = torch.where((r >= 0.35) & (r < 0.4), torch.full_like(x, -0.0), x)
    x = x.to(case["dtype"])
    if case["layout"] == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def pool_args(case):
    return list(case["k"]), list(case["s"]), list(case["p"]), list(case["d"]), case["ceil"]


def memory_format_of(ref):
    """The layout torch gave its own result (PyTorch's rule, applied by torch)."""
    if ref.dim() == 4 and ref.is_contiguous(memory_format=torch.channels_last) and not ref.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def torch_forward(x, case):
    k, s, p, d, ceil = pool_args(case)
    return F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)


def cuda_expected_indices(info, out, idx):
    # PyTorch CUDA's channels_last kernel starts the index at 0, not the first tap.
    if info["layout"] == "nhwc":
        return torch.where(out == -math.inf, torch.zeros_like(idx), idx)
    return idx


def assert_same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(a.isnan(), b.isnan())
    fill = torch.zeros((), dtype=a.dtype)
    assert torch.equal(torch.where(a.isnan(), fill, a), torch.where(b.isnan(), fill, b))


H100_SMS = 132


def summarize(info):
    """The launch of a host run (at most one per op call): layout, lanes, index width."""
    launches = info["launches"]
    assert len(launches) <= 1
    if not launches:
        return dict(info, layout=None, lanes=1, index_bits=None, body=None)
    launch = launches[0]
    layout = "nhwc" if launch["body"].endswith("nhwc") else "nchw"
    return dict(info, layout=layout, lanes=launch["lanes"], index_bits=launch["index_bits"], body=launch["body"],
                blocks=launch["blocks"], max_steps=launch["max_steps"], items=launch["items"])


def run_forward(x, case, with_indices=True, force_index64=False, sm_count=H100_SMS):
    k, s, p, d, ceil = pool_args(case)
    out, idx, info = _C.cuda_host_max_pool2d(x, k, s, p, d, ceil, with_indices=with_indices,
                                             force_index64=force_index64, sm_count=sm_count)
    return out, idx, summarize(info)


def run_backward(grad, x, case, idx, force_index64=False, sm_count=H100_SMS):
    k, s, p, d, ceil = pool_args(case)
    gi, info = _C.cuda_host_max_pool2d_backward(grad, x, k, s, p, d, ceil, idx, force_index64=force_index64,
                                                sm_count=sm_count)
    return gi, summarize(info)


def windows_overlap(case):
    return any((k - 1) * d + 1 > s for k, s, d in zip(case["k"], case["s"], case["d"]))


def backward_kind(case):
    """The backward algorithm the launcher must pick (see max_pool_launcher.h)."""
    if not windows_overlap(case):
        return "bands"
    return "band_gather" if tuple(case["s"]) == (2, 2) else "gather"


def check_info(info, x):
    assert info["misaligned"] == 0
    c = x.shape[-3]
    assert c % info["lanes"] == 0
    assert info["lanes"] in (1, 8 // x.element_size(), 16 // x.element_size())
    if info["lanes"] > 1:
        assert info["layout"] == "nhwc"
        assert info["vector_accesses"] > 0 or x.numel() == 0


# A real card's limits, or a single SM (a smaller grid, so more grid-stride steps).
SM_COUNTS = st.sampled_from([H100_SMS, 1])


@HOST_SETTINGS
@given(pool_case(), SM_COUNTS)
def test_forward_matches_torch(case, sms):
    x = make_input(case)
    k, s, p, d, ceil = pool_args(case)
    try:
        ref_out, ref_idx = torch_forward(x, case)
    except RuntimeError as e:
        with pytest.raises(type(e)):
            run_forward(x, case, sm_count=sms)
        return
    out, idx, info = run_forward(x, case, sm_count=sms)
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx))
    assert out.stride() == ref_out.stride() and idx.stride() == ref_idx.stride()
    if out.numel() == 0:
        assert info["body"] is None  # nothing is launched for an empty output
        return
    # Square 2x2 and 3x3 NCHW windows take the unrolled bodies.
    k_square = case["k"][0] if case["k"][0] == case["k"][1] and case["k"][0] in (2, 3) else None
    assert info["body"] in ("forward_nhwc", "forward_nchw" + (f"_k{k_square}" if k_square else ""))
    if memory_format_of(ref_out) == torch.channels_last:
        assert info["layout"] == "nhwc"
    assert info["index_bits"] == 32
    assert info["items"] * info["lanes"] == out.numel()
    check_info(info, x)

    # The inference op: same values, no indices; and the 64-bit index path.
    out2, none, _ = run_forward(x, case, with_indices=False, sm_count=sms)
    assert none is None
    assert_same(out2, ref_out)
    out3, idx3, info3 = run_forward(x, case, force_index64=True, sm_count=sms)
    assert info3["index_bits"] == 64
    assert_same(out3, ref_out)
    assert torch.equal(idx3, idx)


def covered_by_own_window(idx, x_shape, case):
    """Whether each output's index lies inside that output's window span (the
    outputs a gather visits for that input)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = case["k"], case["s"], case["p"], case["d"]
    H, W = x_shape[-2], x_shape[-1]
    oh = torch.arange(idx.shape[-2]).view(-1, 1)
    ow = torch.arange(idx.shape[-1]).view(1, -1)
    h, w = idx // W, idx % W  # a flattened index aliases as it does on the GPU
    h0, w0 = oh * sh - ph, ow * sw - pw
    inside = (idx >= 0) & (idx < H * W)  # past the plane: no input has it (CPU would write out of bounds)
    return inside & (h >= h0) & (h <= h0 + (kh - 1) * dh) & (w >= w0) & (w <= w0 + (kw - 1) * dw)


def reference_backward(grad, x, case, idx):
    """PyTorch CUDA's backward, from torch CPU's: outputs whose index lies outside
    their own window add nothing (CUDA gathers over covering outputs; CPU would
    scatter there), and half types sum in float32 (same order) and round once."""
    k, s, p, d, ceil = pool_args(case)
    keep = covered_by_own_window(idx, x.shape, case)
    grad = torch.where(keep, grad, torch.zeros_like(grad))
    idx = torch.where(keep, idx, torch.full_like(idx, -1))  # CPU skips -1
    if x.dtype in HALF_TYPES:
        return torch.ops.aten.max_pool2d_with_indices_backward(grad.float(), x.float(), k, s, p, d, ceil, idx).to(
            x.dtype)
    return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, k, s, p, d, ceil, idx)


@HOST_SETTINGS
@given(pool_case(), st.integers(0, 2**31 - 1), SM_COUNTS)
def test_backward_matches_torch(case, grad_seed, sms):
    x = make_input(case)
    try:
        ref_out, ref_idx = torch_forward(x, case)
    except RuntimeError:
        return
    g = torch.Generator().manual_seed(grad_seed)
    # Grads with a few significant bits, so sums round differently per order.
    grad = (torch.randn(ref_out.shape, generator=g, dtype=torch.float64) * 3).to(x.dtype)
    grad = grad.contiguous(memory_format=memory_format_of(ref_out))
    k, s, p, d, ceil = pool_args(case)
    _, idx, _ = run_forward(x, case)  # the indices CUDA's forward gives
    gi, info = run_backward(grad, x, case, idx, sm_count=sms)
    ref = reference_backward(grad, x, case, idx)
    assert_same(gi, ref)
    assert gi.stride() == ref.stride()
    if x.numel() == 0:
        assert info["body"] is None
        return
    # Overlapping windows gather (per input, or per band for stride 2); the others write each output's band.
    kind = backward_kind(case)
    assert info["body"] == f"backward_{kind}_{info['layout']}"
    if memory_format_of(ref) == torch.channels_last:
        assert info["layout"] == "nhwc"
    assert info["items"] * info["lanes"] == (x.numel() if kind == "gather" else ref_out.numel())
    check_info(info, x)
    gi64, info64 = run_backward(grad, x, case, idx, force_index64=True, sm_count=sms)
    assert info64["index_bits"] == 64
    assert_same(gi64, gi)


@HOST_SETTINGS
@given(pool_case(min_c=1, max_c=4, channels_multiple=8), st.integers(0, 2**31 - 1))
def test_vector_paths_aligned(case, grad_seed):
    """Channel counts that take the 8/16-byte paths: full width when aligned."""
    case = dict(case, layout="channels_last", shape=(max(1, (case["shape"][0] or 1)),) + case["shape"][-3:])
    x = make_input(case)
    try:
        ref_out, ref_idx = torch_forward(x, case)
    except RuntimeError:
        return
    out, idx, info = run_forward(x, case)
    # Fresh CPU tensors are 64-byte aligned and C is a multiple of 8: 16 bytes
    # (unless H = W = 1, where torch calls the layout contiguous).
    nhwc = info["layout"] == "nhwc"
    assert info["lanes"] == (16 // x.element_size() if nhwc else 1)
    check_info(info, x)
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx))
    grad = torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(grad_seed)).to(x.dtype)
    grad = grad.contiguous(memory_format=torch.channels_last)
    k, s, p, d, ceil = pool_args(case)
    gi, binfo = run_backward(grad, x, case, ref_idx)
    assert binfo["lanes"] == (16 // x.element_size() if nhwc else 1)
    check_info(binfo, x)
    assert_same(gi, reference_backward(grad, x, case, ref_idx))


def offset_channels_last(x, offset_elems):
    """x's values in channels_last storage that starts offset_elems into its buffer."""
    n, c, h, w = x.shape
    buf = torch.empty(x.numel() + offset_elems, dtype=x.dtype)
    y = buf[offset_elems:].view(n, h, w, c).permute(0, 3, 1, 2)
    y.copy_(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and y.storage_offset() == offset_elems
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1, 2, 4])
@pytest.mark.parametrize("window", [(3, 2, 1), (3, 1, 1), (2, 2, 0)], ids=["band_gather", "gather", "bands"])
def test_vector_width_follows_alignment(dtype, offset, window):
    """Misaligned buffers drop to a narrower (8-byte) or the scalar path, never a misaligned access."""
    k, s, p = window
    case = dict(k=(k, k), s=(s, s), p=(p, p), d=(1, 1), ceil=False, shape=(2, 16, 9, 9),
                layout="channels_last", dtype=dtype, special=True, seed=offset)
    x = offset_channels_last(make_input(case), offset)
    ref_out, ref_idx = torch_forward(x, case)
    out, idx, info = run_forward(x, case)
    es = x.element_size()
    addr = (offset * es) % 16
    want = 16 // es if addr == 0 else (8 // es if addr % 8 == 0 and 8 // es > 1 else 1)
    assert info["lanes"] == want
    check_info(info, x)
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx))

    grad = offset_channels_last(torch.randn(ref_out.shape).to(dtype), offset)
    k, s, p, d, ceil = pool_args(case)
    gi, binfo = run_backward(grad, x, case, ref_idx.contiguous(memory_format=torch.channels_last))
    check_info(binfo, x)
    assert_same(gi, reference_backward(grad, x, case, ref_idx))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_all_minus_inf_window_index_and_backward(layout):
    """The one CUDA-vs-CPU index difference, and how CUDA's backward treats it."""
    x = torch.full((1, 2, 6, 6), -math.inf)
    x[:, :, 1, 1] = 1.0
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    k, s, p, d = [2, 2], [2, 2], [0, 0], [1, 1]
    out, idx, _ = _C.cuda_host_max_pool2d(x, k, s, p, d, False)
    ref_out, ref_idx = F.max_pool2d(x, 2, 2, return_indices=True)
    assert_same(out, ref_out)
    if layout == "channels_last":
        # Every window but the first is all -inf: index 0 (CPU says its first tap).
        assert (idx[:, :, 0, 0] != 0).all() and (idx.flatten(2)[:, :, 1:] == 0).all()
        assert not torch.equal(idx, ref_idx)
    else:
        assert torch.equal(idx, ref_idx)
    # Backward gathers only from outputs whose window covers the input, so index
    # 0 from a far window contributes nothing (as on PyTorch CUDA), where CPU's
    # scatter would add the eight far windows' grads into input 0.
    grad = torch.ones_like(out)
    gi, _ = _C.cuda_host_max_pool2d_backward(grad, x, k, s, p, d, False, idx)
    case = dict(k=k, s=s, p=p, d=d, ceil=False)
    assert_same(gi, reference_backward(grad, x, case, idx))
    assert gi.flatten(2)[:, :, 0].eq(0).all() and gi.flatten(2)[:, :, 7].eq(1).all()


def test_unbatched_and_empty_batch():
    x = torch.randn(3, 7, 5)
    out, idx, info = _C.cuda_host_max_pool2d(x, [2, 2], [], [1, 1], [1, 1], True)
    ref_out, ref_idx = F.max_pool2d(x, 2, padding=1, ceil_mode=True, return_indices=True)
    assert summarize(info)["layout"] == "nchw"
    assert_same(out, ref_out) and torch.equal(idx, ref_idx)
    e = torch.randn(0, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    out, idx, _ = _C.cuda_host_max_pool2d(e, [2, 2], [], [0, 0], [1, 1], False)
    assert out.shape == (0, 4, 3, 3) and idx.shape == (0, 4, 3, 3)
    gi, _ = _C.cuda_host_max_pool2d_backward(out, e, [2, 2], [], [0, 0], [1, 1], False, idx)
    assert gi.shape == e.shape


def test_integer_dtype_rejected_like_pytorch_cuda():
    # PyTorch's CUDA max_pool2d is floating-point only; same error type and name.
    x = torch.randint(0, 9, (1, 2, 4, 4))
    with pytest.raises(NotImplementedError, match="max_pool2d_with_indices_out_cuda_frame.*Long"):
        _C.cuda_host_max_pool2d(x, [2, 2], [], [0, 0], [1, 1], False)


@pytest.mark.parametrize("kwargs", [dict(k=[0, 2]), dict(k=[2, 2], p=[2, 2]), dict(k=[2, 2], s=[0, 1]),
                                    dict(k=[2, 2], d=[0, 1]), dict(k=[5, 5]), dict(k=[2, 1], p=[2, 0], d=[3, 1])])
def test_argument_errors_match_torch(kwargs):
    x = torch.randn(1, 2, 4, 4)
    k, s, p, d = kwargs.get("k"), kwargs.get("s", []), kwargs.get("p", [0, 0]), kwargs.get("d", [1, 1])
    with pytest.raises(RuntimeError) as ref:
        torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, False)
    with pytest.raises(type(ref.value)):
        _C.cuda_host_max_pool2d(x, k, s, p, d, False)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("window", [(3, 2, 1), (3, 1, 1), (2, 2, 0)], ids=["band_gather", "gather", "bands"])
def test_grid_stride_steps_on_one_sm(layout, window):
    """A single SM's grid (64 blocks of 256 threads) covers these jobs in several
    grid-stride steps: every item still runs once, and the results are torch's."""
    k, s, p = window
    case = dict(k=(k, k), s=(s, s), p=(p, p), d=(1, 1), ceil=False, shape=(2, 24, 96, 80),
                layout=layout, dtype=torch.float32, special=True, seed=7)
    x = make_input(case)
    ref_out, ref_idx = torch_forward(x, case)
    out, idx, info = run_forward(x, case, sm_count=1)
    assert info["blocks"] == 64 and info["max_steps"] > 1
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx))
    grad = torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(3)).contiguous(
        memory_format=memory_format_of(ref_out))
    gi, binfo = run_backward(grad, x, case, idx, sm_count=1)
    assert binfo["max_steps"] > 1
    assert_same(gi, reference_backward(grad, x, case, idx))
    # The same job on an H100's grid: one step, same bits.
    gi_h100, hinfo = run_backward(grad, x, case, idx)
    assert hinfo["max_steps"] == 1 and hinfo["blocks"] > 64
    assert_same(gi_h100, gi)


def test_launch_plan():
    """The grid and index width the launcher picks (the same function the GPU
    build calls): blocks enough for the work, at most 8 waves of the card's SMs,
    and 32-bit indices only while work items plus the grid's threads (the
    grid-stride loop's last step) and every offset fit in int32."""
    limit = 2**31 - 1
    for sms in (1, 132):
        cap = sms * (2048 // 256) * 8
        for items in (1, 255, 256, 257, 10**6, 10**9):
            plan = _C.cuda_launch_plan(items, items, sms)
            assert plan["threads"] == 256
            assert plan["blocks"] == min(-(-items // 256), cap)
            assert plan["index_bits"] == (32 if items + plan["blocks"] * 256 <= limit else 64)
    # Fits alone, not with the grid's threads added: 64-bit.
    assert _C.cuda_launch_plan(limit - 1000, 1000)["index_bits"] == 64
    assert _C.cuda_launch_plan(limit - 132 * 64 * 256, 1000)["index_bits"] == 32
    # Offsets past int32 (a large input behind a small output): 64-bit.
    assert _C.cuda_launch_plan(1000, limit + 1)["index_bits"] == 64


@pytest.mark.parametrize("divisor", list(range(1, 70)) + [97, 255, 256, 1000, 4095, 65537, 2**20 + 7, 2**30 - 1,
                                                          2**30, 2**31 - 2, 2**31 - 1])
def test_divider_is_exact(divisor):
    """The kernels' multiply-high division equals integer division on the whole int32 range."""
    g = torch.Generator().manual_seed(divisor)
    top = 2**31 - 1
    edges = [0, 1, divisor - 1, divisor, divisor + 1, top, top - 1, top - top % divisor, top - top % divisor - 1]
    n = torch.cat([torch.tensor([e for e in edges if 0 <= e <= top]),
                   torch.randint(0, top, (2000,), generator=g),
                   torch.randint(0, 1 << 16, (500,), generator=g)])
    assert torch.equal(_C.cuda_divide(n, divisor), n // divisor)


@pytest.mark.skipif(not fastpool.build_info()["cuda"], reason="the CPU-only build registers no CUDA kernels; "
                    "tools/cuda_build_check.sh runs this in the CUDA build")
@pytest.mark.parametrize("kwargs", [dict(k=[2, 2], p=[2, 2]), dict(k=[0, 2]), dict(k=[5, 5]),
                                    dict(k=[3, 3], p=[2, 2], d=[3, 3], shape=(0, 2, 5, 5)),
                                    dict(k=[2, 2], shape=(2, 5, 5), p=[2, 2])])
def test_cuda_kernels_raise_before_touching_the_device(kwargs):
    """The CUDA build's registered kernels themselves (reached by redispatching to
    the CUDA key, no GPU needed) raise torch's exception for bad arguments, from
    the same frames a GPU call goes through, before any device call."""
    x = torch.randn(kwargs.get("shape", (1, 2, 4, 4)))
    k, s, p, d = kwargs.get("k"), kwargs.get("s", []), kwargs.get("p", [0, 0]), kwargs.get("d", [1, 1])
    with pytest.raises(RuntimeError) as ref:
        torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, False)
    cuda = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    for op in (torch.ops.fastpool.max_pool2d_with_indices.default, torch.ops.fastpool.max_pool2d.default):
        with pytest.raises(type(ref.value)):
            op.redispatch(cuda, x, k, s, p, d, False)
    out = torch.ops.aten.max_pool2d_with_indices(x, [1, 1], [1, 1], [0, 0], [1, 1], False)
    with pytest.raises(type(ref.value)):
        torch.ops.fastpool.max_pool2d_with_indices_backward.default.redispatch(
            cuda, out[0], x, k, s, p, d, False, out[1])
