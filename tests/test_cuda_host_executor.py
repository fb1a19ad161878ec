"""The CUDA ops run by the host executor (csrc/cuda/host_executor.cpp), against
torch on CPU, for max_pool1d/2d/3d and adaptive_max_pool1d/2d/3d (the latter
at the end of the file, with their own notes on PyTorch CUDA's semantics).

This is how CI checks the CUDA code without a GPU: fastpool._C.cuda_host_* run
the very functions the CUDA registration runs (max_pool_launcher.h: checks,
allocation, layout, kernel body, vector width, index width, grid), with only
the kernel launch replaced by an emulation of the grid (every block, thread
and grid-stride step, with an H100's limits or a single SM's). The spatial
dims of a call are len(kernel_size). The reference is torch's CPU
max_pool{1,2,3}d, adjusted only where PyTorch's CUDA result differs from its
CPU one (the CUDA kernels match CUDA), or where fastpool's CUDA ops differ
from PyTorch's CUDA ops on purpose:
  * channels_last forward of max_pool1d/2d (PyTorch CUDA runs its 2-d kernel
    for both): when no tap beats -inf (all taps -inf), the index is 0, not
    the first tap. max_pool3d's channels-last kernel starts at the first tap,
    like CPU; so do the integer types (PyTorch CUDA has no integer kernel,
    fastpool follows PyTorch CPU);
  * torch CPU's own quirk: its 3-d channels-last kernel, in the channels it
    does not vectorise (C below or past its vector width), starts the index
    without the depth term (h0*W + w0), which shows when no tap beats the
    start; the reference takes the index from torch CPU's planar kernel there
    (the full first tap, as PyTorch CUDA's 3-d kernels and fastpool, integers
    included); and its channels-last kernels (every dims) raise for 1-byte
    integers once a plane passes 127 elements, so for channels-last integers
    the reference is its planar kernel's result;
  * float16/bfloat16 backward: CUDA accumulates in float and rounds once, CPU
    rounds after every add; the reference is CPU's backward run in float32
    (same order of adds) rounded once;
  * backward with an index outside its own output's window (that NHWC index 0,
    or a window with no in-bounds tap, which dilation and padding allow):
    fastpool gathers only over the outputs covering each input, so such an
    output adds nothing; CPU scatters its gradient to that index. PyTorch
    CUDA's max_pool1d/2d gather as fastpool does; its max_pool3d scatters,
    like CPU, so there fastpool differs from PyTorch CUDA;
  * max_pool3d backward, overlapping windows: PyTorch CUDA scatters with
    atomicAdd, in scalar_t and in no fixed order (float16/bfloat16 round
    after every add; float32 sums may differ run to run). fastpool sums
    deterministically, in output raster order and in float for the half
    types, which is the reference here; results may differ from PyTorch
    CUDA's in the last bits. Non-overlapping windows give the same bits;
  * adaptive_max_pool backward, uneven sizes (overlapping windows): PyTorch
    CUDA scatters with atomicAdd (AdaptiveMaxPooling{2,3}d.cu), in scalar_t
    and in no fixed order; fastpool gathers in output raster order, in float
    for the half types, rounding once: the reference here is torch CPU's
    backward in that order (float32 for half types, rounded once); PyTorch
    CUDA's result may differ in the last bits. Sizes that divide give the
    same bits (the windows tile the input);
  * integer dtypes: PyTorch CUDA refuses them (pytorch/pytorch#107412);
    fastpool's CUDA forward takes uint8/int8/int16/int32/int64 and returns
    PyTorch CPU's values and indices; its backward raises NotImplementedError
    like PyTorch. Adaptive max pooling refuses integers, forward and
    backward, with PyTorch CUDA's NotImplementedError (it has floating
    kernels only, and so does PyTorch CPU).
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
INT_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
HALF_TYPES = (torch.float16, torch.bfloat16)
DIMS = [1, 2, 3]
# FASTPOOL_EXAMPLES=3000 for a deeper run. SETTINGS is also what the GPU tests
# (test_cuda.py) use, per dims; the host runs are cheap, so they take more.
SETTINGS = settings(max_examples=int(os.environ.get("FASTPOOL_EXAMPLES", "100")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
HOST_SETTINGS = settings(SETTINGS, max_examples=2 * SETTINGS.max_examples)

# Largest spatial size drawn per dims: 3-d volumes stay small (host runs emulate every thread).
MAX_SIZE = {1: 24, 2: 14, 3: 7}


@st.composite
def pool_case(draw, dims=2, min_c=1, max_c=12, channels_multiple=1, dtypes=DTYPES):
    # Kernels up to 7 (5 in 3-d): padding can then exceed the stride, so the
    # first outputs' bands start before the input (see owned_band).
    k = tuple(draw(st.integers(1, 7 if dims < 3 else 5)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    d = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    # Padding up to half the kernel: torch's bound in every dims (argument
    # errors are tested on their own).
    p = tuple(draw(st.integers(0, k[i] // 2)) for i in range(dims))
    ceil = draw(st.booleans())
    # Big enough for at least one window.
    spatial = tuple(draw(st.integers(max(1, (k[i] - 1) * d[i] + 1 - 2 * p[i]), max(MAX_SIZE[dims],
                                                                               (k[i] - 1) * d[i] + 1)))
                    for i in range(dims))
    c = draw(st.integers(min_c, max_c if dims < 3 else min(max_c, 6))) * channels_multiple
    batched = draw(st.integers(0, 5)) > 0
    n = draw(st.integers(0, 3 if dims < 3 else 2)) if batched else None
    layout = draw(st.sampled_from(["contiguous", "channels_last"])) if batched else "contiguous"
    dtype = draw(st.sampled_from(dtypes))
    special = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(dims=dims, k=k, s=s, p=p, d=d, ceil=ceil, shape=((n,) if batched else ()) + (c,) + spatial,
                layout=layout, dtype=dtype, special=special, seed=seed)


def to_layout(x, dims, layout):
    """x stored channels last (N,L,C / N,H,W,C / N,D,H,W,C) if asked; batched only."""
    if layout != "channels_last":
        return x
    if dims > 1:  # torch's own formats (they fix the strides of size-1 dims)
        return x.contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    order = [0] + list(range(2, x.dim())) + [1]
    back = [0, x.dim() - 1] + list(range(1, x.dim() - 1))
    return x.permute(order).contiguous().permute(back)


def make_input(case):
    """Small integers (many ties, exact in every dtype), optionally with NaN,
    +-inf and -0.0 sprinkled in (for integer types: the type's lowest and
    highest values), in the case's layout."""
    g = torch.Generator().manual_seed(case["seed"])
    dtype = case["dtype"]
    x = torch.randint(-4, 5, case["shape"], generator=g).to(torch.float64)
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        x = x.to(torch.int64) + (4 if info.min == 0 else 0)
        if case["special"] and x.numel():
            r = torch.rand(case["shape"], generator=g)
            x = torch.where(r < 0.3, torch.full_like(x, info.min), x)
            x = torch.where((r >= 0.3) & (r < 0.35), torch.full_like(x, info.max), x)
        return to_layout(x.to(dtype), case["dims"], case["layout"])
    if case["special"] and x.numel():
        r = torch.rand(case["shape"], generator=g)
        x = torch.where(r < 0.08, torch.full_like(x, float("nan")), x)
        x = torch.where((r >= 0.08) & (r < 0.3), torch.full_like(x, -math.inf), x)
        x = torch.where((r >= 0.3) & (r < 0.35), torch.full_like(x, math.inf), x)
        x = torch.where((r >= 0.35) & (r < 0.4), torch.full_like(x, -0.0), x)
    return to_layout(x.to(dtype), case["dims"], case["layout"])


def pool_args(case):
    return list(case["k"]), list(case["s"]), list(case["p"]), list(case["d"]), case["ceil"]


def padded3(values, fill):
    """A per-dim tuple right-aligned into (D, H, W), as the kernels see it."""
    return (fill,) * (3 - len(values)) + tuple(values)


def is_channels_last(t, dims):
    """Whether a batched result is stored channels last (and not also contiguous)."""
    if t.dim() != dims + 2 or t.is_contiguous():
        return False
    return to_layout(t, dims, "channels_last").stride() == t.stride()


def torch_forward(x, case):
    """torch CPU's values and indices; for 3-d channels-last inputs, the index
    of windows where no tap beats the start comes from torch's planar kernel
    (see the module docstring: torch CPU's channels-last one drops the depth
    term in its scalar channels)."""
    k, s, p, d, ceil = pool_args(case)
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[case["dims"]]
    if is_channels_last(x, case["dims"]) and not x.dtype.is_floating_point:
        # torch CPU's channels-last kernels raise for 1-byte integers once a
        # plane passes 127 elements: its planar kernel's result, stored channels last.
        # (Its layout: that of torch's result for a float copy.)
        out, idx = fn(x.contiguous(), k, s, p, d, ceil_mode=ceil, return_indices=True)
        like, _ = fn(x.double(), k, s, p, d, ceil_mode=ceil, return_indices=True)  # (1-d without indices: planar)
        return torch.empty_like(like, dtype=x.dtype).copy_(out), torch.empty_like(like, dtype=torch.int64).copy_(idx)
    out, idx = fn(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    if case["dims"] == 3 and is_channels_last(x, 3) and out.numel():
        _, planar_idx = fn(x.contiguous(), k, s, p, d, ceil_mode=ceil, return_indices=True)
        lowest = -math.inf if x.dtype.is_floating_point else torch.iinfo(x.dtype).min
        idx = torch.empty_like(idx).copy_(torch.where(out == lowest, planar_idx, idx))  # keeping idx's strides
    return out, idx


def torch_backward(grad, x, case, idx):
    """torch's max_pool{1,2,3}d backward (1-d: the 2-d op on the unsqueezed tensors, as torch's own autograd)."""
    k, s, p, d, ceil = pool_args(case)
    if case["dims"] == 1:
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad.unsqueeze(-2), x.unsqueeze(-2), [1] + k, [1] + s, [0] + p, [1] + d, ceil, idx.unsqueeze(-2)).squeeze(-2)
    op = torch.ops.aten.max_pool2d_with_indices_backward if case["dims"] == 2 else \
        torch.ops.aten.max_pool3d_with_indices_backward
    return op(grad, x, k, s, p, d, ceil, idx)


def index_starts_at_zero(case, dtype):
    """PyTorch CUDA's 2-d channels-last forward (max_pool1d and 2d) starts the index at 0."""
    return case["dims"] < 3 and dtype.is_floating_point


def cuda_expected_indices(info, out, idx, case):
    if info["layout"] == "nhwc" and index_starts_at_zero(case, out.dtype):
        return torch.where(out == -math.inf, torch.zeros_like(idx), idx)
    return idx


def assert_same(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    if not a.dtype.is_floating_point:
        assert torch.equal(a, b)
        return
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
    out, idx, info = _C.cuda_host_max_pool(x, k, s, p, d, ceil, with_indices=with_indices,
                                           force_index64=force_index64, sm_count=sm_count)
    return out, idx, summarize(info)


def run_backward(grad, x, case, idx, force_index64=False, sm_count=H100_SMS):
    k, s, p, d, ceil = pool_args(case)
    gi, info = _C.cuda_host_max_pool_backward(grad, x, k, s, p, d, ceil, idx, force_index64=force_index64,
                                              sm_count=sm_count)
    return gi, summarize(info)


def windows_overlap(case):
    return any((k - 1) * d + 1 > s for k, s, d in zip(case["k"], case["s"], case["d"]))


def backward_kind(case):
    """The backward algorithm the launcher must pick (see max_pool_launcher.h)."""
    if not windows_overlap(case):
        return "bands"
    sd, sh, sw = padded3(case["s"], 1)
    return "band_gather" if (sh, sw) == (2, 2) and sd in (1, 2) else "gather"


def check_info(info, x, dims):
    assert info["misaligned"] == 0
    c = x.shape[-dims - 1]
    assert c % info["lanes"] == 0
    assert info["lanes"] in (1, 8 // x.element_size(), 16 // x.element_size())
    if info["lanes"] > 1:
        assert info["layout"] == "nhwc"
        assert info["vector_accesses"] > 0 or x.numel() == 0


# A real card's limits, or a single SM (a smaller grid, so more grid-stride steps).
SM_COUNTS = st.sampled_from([H100_SMS, 1])


def check_forward(case, sms):
    x = make_input(case)
    try:
        ref_out, ref_idx = torch_forward(x, case)
    except RuntimeError as e:
        with pytest.raises(type(e)):
            run_forward(x, case, sm_count=sms)
        return
    out, idx, info = run_forward(x, case, sm_count=sms)
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx, case))
    assert out.stride() == ref_out.stride() and idx.stride() == ref_idx.stride()
    if out.numel() == 0:
        assert info["body"] is None  # nothing is launched for an empty output
        return
    # Square 2x2 and 3x3 (h, w) windows in NCHW take the unrolled bodies.
    _, kh, kw = padded3(case["k"], 1)
    k_square = kh if kh == kw and kh in (2, 3) else None
    assert info["body"] in ("forward_nhwc", "forward_nchw" + (f"_k{k_square}" if k_square else ""))
    if is_channels_last(ref_out, case["dims"]):
        assert info["layout"] == "nhwc"
    assert info["index_bits"] == 32
    assert info["items"] * info["lanes"] == out.numel()
    check_info(info, x, case["dims"])

    # The inference op: same values, no indices; and the 64-bit index path.
    out2, none, _ = run_forward(x, case, with_indices=False, sm_count=sms)
    assert none is None
    assert_same(out2, ref_out)
    out3, idx3, info3 = run_forward(x, case, force_index64=True, sm_count=sms)
    assert info3["index_bits"] == 64
    assert_same(out3, ref_out)
    assert torch.equal(idx3, idx)


@pytest.mark.parametrize("dims", DIMS)
def test_forward_matches_torch(dims):
    @HOST_SETTINGS
    @given(pool_case(dims), SM_COUNTS)
    def check(case, sms):
        check_forward(case, sms)

    check()


@pytest.mark.parametrize("dims", DIMS)
def test_integer_forward_matches_torch_cpu(dims):
    """Integer inputs (no PyTorch CUDA kernel): PyTorch CPU's values and indices,
    the running max starting at the type's lowest value."""
    @settings(SETTINGS, max_examples=SETTINGS.max_examples // 2)
    @given(pool_case(dims, dtypes=INT_DTYPES), SM_COUNTS)
    def check(case, sms):
        check_forward(case, sms)

    check()


def covered_by_own_window(idx, x_shape, case):
    """Whether each output's index lies inside that output's window span (the
    outputs a gather visits for that input)."""
    dims = case["dims"]
    sizes = x_shape[-dims:]
    inside = (idx >= 0) & (idx < math.prod(sizes))  # past the volume: no input has it
    rest = idx.clone()
    for axis in reversed(range(dims)):  # a flattened index aliases as it does on the GPU
        pos = rest % sizes[axis]
        rest = rest // sizes[axis]
        shape = [1] * dims
        shape[axis] = -1
        o = torch.arange(idx.shape[-dims + axis]).view(shape)
        start = o * case["s"][axis] - case["p"][axis]
        inside &= (pos >= start) & (pos <= start + (case["k"][axis] - 1) * case["d"][axis])
    return inside


def reference_backward(grad, x, case, idx):
    """fastpool CUDA's backward (PyTorch CUDA's for 1-d/2-d), from torch CPU's:
    outputs whose index lies outside their own window add nothing (a gather
    over covering outputs; CPU would scatter there), and half types sum in
    float32 (same order) and round once."""
    keep = covered_by_own_window(idx, x.shape, case)
    grad = torch.where(keep, grad, torch.zeros_like(grad))
    idx = torch.where(keep, idx, torch.full_like(idx, -1))  # CPU skips -1
    if x.dtype in HALF_TYPES:
        return torch_backward(grad.float(), x.float(), case, idx).to(x.dtype)
    return torch_backward(grad, x, case, idx)


def check_backward(case, grad_seed, sms):
    x = make_input(case)
    try:
        ref_out, _ = torch_forward(x, case)
    except RuntimeError:
        return
    g = torch.Generator().manual_seed(grad_seed)
    # Grads with a few significant bits, so sums round differently per order.
    grad = (torch.randn(ref_out.shape, generator=g, dtype=torch.float64) * 3).to(x.dtype)
    grad = torch.empty_like(ref_out).copy_(grad)  # in the forward output's layout
    _, idx, _ = run_forward(x, case)  # the indices CUDA's forward gives
    gi, info = run_backward(grad, x, case, idx, sm_count=sms)
    ref = reference_backward(grad, x, case, idx)
    assert_same(gi, ref)
    assert gi.stride() == ref.stride() or x.numel() == 0
    if x.numel() == 0:
        assert info["body"] is None
        return
    # Overlapping windows gather (per input, or per band for stride 2); the others write each output's band.
    kind = backward_kind(case)
    assert info["body"] == f"backward_{kind}_{info['layout']}"
    if is_channels_last(x, case["dims"]):
        assert info["layout"] == "nhwc"
    assert info["items"] * info["lanes"] == (x.numel() if kind == "gather" else ref_out.numel())
    check_info(info, x, case["dims"])
    gi64, info64 = run_backward(grad, x, case, idx, force_index64=True, sm_count=sms)
    assert info64["index_bits"] == 64
    assert_same(gi64, gi)


@pytest.mark.parametrize("dims", DIMS)
def test_backward_matches_torch(dims):
    @HOST_SETTINGS
    @given(pool_case(dims), st.integers(0, 2**31 - 1), SM_COUNTS)
    def check(case, grad_seed, sms):
        check_backward(case, grad_seed, sms)

    check()


@pytest.mark.parametrize("dims", DIMS)
def test_vector_paths_aligned(dims):
    """Channel counts that take the 8/16-byte paths: full width when aligned."""
    @HOST_SETTINGS
    @given(pool_case(dims, min_c=1, max_c=4, channels_multiple=8), st.integers(0, 2**31 - 1))
    def check(case, grad_seed):
        case = dict(case, layout="channels_last", shape=(max(1, (case["shape"][0] or 1)),) + case["shape"][-dims - 1:])
        x = make_input(case)
        try:
            ref_out, ref_idx = torch_forward(x, case)
        except RuntimeError:
            return
        out, idx, info = run_forward(x, case)
        # Fresh CPU tensors are 64-byte aligned and C is a multiple of 8: 16
        # bytes (unless the spatial size is 1, where torch calls the layout contiguous).
        nhwc = info["layout"] == "nhwc"
        assert info["lanes"] == (16 // x.element_size() if nhwc else 1)
        check_info(info, x, dims)
        assert_same(out, ref_out)
        assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx, case))
        grad = torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(grad_seed)).to(x.dtype)
        grad = torch.empty_like(ref_out).copy_(grad)
        gi, binfo = run_backward(grad, x, case, idx)
        assert binfo["lanes"] == (16 // x.element_size() if nhwc else 1)
        check_info(binfo, x, dims)
        assert_same(gi, reference_backward(grad, x, case, idx))

    check()


def offset_channels_last(x, offset_elems):
    """x's values in channels-last storage that starts offset_elems into its buffer."""
    dims = x.dim() - 2
    buf = torch.empty(x.numel() + offset_elems, dtype=x.dtype)
    stored = (x.shape[0],) + tuple(x.shape[2:]) + (x.shape[1],)
    y = buf[offset_elems:].view(stored).permute([0, dims + 1] + list(range(1, dims + 1)))
    y.copy_(x)
    assert y.stride() == to_layout(x, dims, "channels_last").stride() and y.storage_offset() == offset_elems
    return y


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1, 2, 4])
@pytest.mark.parametrize("window", [(3, 2, 1), (3, 1, 1), (2, 2, 0)], ids=["band_gather", "gather", "bands"])
def test_vector_width_follows_alignment(dims, dtype, offset, window):
    """Misaligned buffers drop to a narrower (8-byte) or the scalar path, never a misaligned access."""
    k, s, p = window
    spatial = {1: (17,), 2: (9, 9), 3: (5, 6, 5)}[dims]
    case = dict(dims=dims, k=(k,) * dims, s=(s,) * dims, p=(p,) * dims, d=(1,) * dims, ceil=False,
                shape=(2, 16) + spatial, layout="channels_last", dtype=dtype, special=True, seed=offset)
    x = offset_channels_last(make_input(case), offset)
    ref_out, ref_idx = torch_forward(x, case)
    out, idx, info = run_forward(x, case)
    es = x.element_size()
    addr = (offset * es) % 16
    want = 16 // es if addr == 0 else (8 // es if addr % 8 == 0 and 8 // es > 1 else 1)
    assert info["lanes"] == want
    check_info(info, x, dims)
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx, case))

    grad = offset_channels_last(torch.randn(ref_out.shape).to(dtype), offset)
    gi, binfo = run_backward(grad, x, case, offset_channels_last(idx, 0))
    check_info(binfo, x, dims)
    assert_same(gi, reference_backward(grad, x, case, idx))


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("k,s,p", [((7, 7), (2, 2), (3, 3)), ((6, 5), (2, 2), (3, 2)), ((4, 3, 3), (1, 2, 2), (2, 1, 1)),
                                   ((5, 2, 2), (1, 2, 2), (2, 0, 0))])
def test_band_backward_with_padding_past_the_stride(layout, k, s, p):
    """Overlapping windows whose padding exceeds the stride: the first outputs'
    bands start before the input. They once did so unclamped, and the band
    gather wrote in front of grad_input (found by AddressSanitizer)."""
    dims = len(k)
    case = dict(dims=dims, k=k, s=s, p=p, d=(1,) * dims, ceil=False, shape=(2, 8) + (11, 10, 9)[3 - dims:],
                layout=layout, dtype=torch.float32, special=False, seed=5)
    x = make_input(case)
    ref_out, _ = torch_forward(x, case)
    _, idx, _ = run_forward(x, case)
    grad = torch.empty_like(ref_out).copy_(torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(1)))
    gi, info = run_backward(grad, x, case, idx)
    assert info["body"].startswith("backward_band_gather")
    assert_same(gi, reference_backward(grad, x, case, idx))


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_all_minus_inf_window_index_and_backward(dims, layout):
    """The CUDA-vs-CPU index difference (2-d channels-last kernel: max_pool1d
    and 2d), its absence in max_pool3d, and how the backward treats it."""
    spatial = (6,) * dims
    x = torch.full((1, 2) + spatial, -math.inf)
    x[(slice(None), slice(None)) + (1,) * dims] = 1.0
    x = to_layout(x, dims, layout)
    k, s, p, d = [2] * dims, [2] * dims, [0] * dims, [1] * dims
    case = dict(dims=dims, k=k, s=s, p=p, d=d, ceil=False)
    out, idx, _ = _C.cuda_host_max_pool(x, k, s, p, d, False)
    ref_out, ref_idx = torch_forward(x, case)
    assert_same(out, ref_out)
    peak = sum(6**a for a in range(dims))  # the 1.0, in the first window
    assert (idx.flatten(2)[:, :, 0] == peak).all()
    index_zero = layout == "channels_last" and dims < 3
    if index_zero:
        # Every window but the first is all -inf: index 0 (CPU says its first tap).
        assert (idx.flatten(2)[:, :, 1:] == 0).all()
        assert not torch.equal(idx, ref_idx)
    else:
        assert torch.equal(idx, ref_idx)
    # Backward gathers only from outputs whose window covers the input, so index
    # 0 from a far window contributes nothing (as on PyTorch CUDA), where CPU's
    # scatter would add the far windows' grads into input 0.
    grad = torch.ones_like(out)
    gi, _ = _C.cuda_host_max_pool_backward(grad, x, k, s, p, d, False, idx)
    assert_same(gi, reference_backward(grad, x, case, idx))
    flat = gi.flatten(2)
    assert flat[:, :, 0].eq(0).all() and flat[:, :, peak].eq(1).all()
    windows = out.flatten(2).shape[-1]
    assert gi.sum() == 2 * (1 if index_zero else windows)  # else every far window's first tap


@pytest.mark.parametrize("dims", DIMS)
def test_unbatched_and_empty_batch(dims):
    x = torch.randn((3,) + (7, 5, 6)[:dims])
    k, p = [2] * dims, [1] * dims
    case = dict(dims=dims, k=k, s=k, p=p, d=[1] * dims, ceil=True)
    out, idx, info = _C.cuda_host_max_pool(x, k, [], p, [1] * dims, True)
    ref_out, ref_idx = torch_forward(x, case)
    assert summarize(info)["layout"] == "nchw"
    assert_same(out, ref_out) and torch.equal(idx, ref_idx)
    e = to_layout(torch.randn((0, 4) + (6,) * dims), dims, "channels_last")
    out, idx, _ = _C.cuda_host_max_pool(e, k, [], [0] * dims, [1] * dims, False)
    assert out.shape == (0, 4) + (3,) * dims and idx.shape == out.shape
    gi, _ = _C.cuda_host_max_pool_backward(out, e, k, [], [0] * dims, [1] * dims, False, idx)
    assert gi.shape == e.shape


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", INT_DTYPES + [torch.bool])
def test_integer_backward_rejected_like_pytorch(dims, dtype):
    """The forward takes integers (bool is refused, with torch's dispatch name);
    the backward raises NotImplementedError as PyTorch's does for integers."""
    x = torch.randint(0, 2, (1, 2) + (4,) * dims).to(dtype)
    k = [2] * dims
    forward_name = "max_pool3d_with_indices_out_frame" if dims == 3 else "max_pool2d_with_indices_out_cuda_frame"
    if dtype == torch.bool:
        with pytest.raises(NotImplementedError, match=f"{forward_name}.*Bool"):
            _C.cuda_host_max_pool(x, k, [], [0] * dims, [1] * dims, False)
        return
    out, idx, _ = _C.cuda_host_max_pool(x, k, [], [0] * dims, [1] * dims, False)
    backward_name = "max_pool3d_with_indices_backward_out_frame" if dims == 3 else \
        "max_pool2d_with_indices_out_cuda_frame"
    with pytest.raises(NotImplementedError, match=backward_name):
        _C.cuda_host_max_pool_backward(out, x, k, [], [0] * dims, [1] * dims, False, idx)


ARG_ERRORS = [dict(k=[0, 2]), dict(k=[2, 2], p=[2, 2]), dict(k=[2, 2], s=[0, 1]), dict(k=[2, 2], d=[0, 1]),
              dict(k=[5, 5]), dict(k=[2, 1], p=[2, 0], d=[3, 1]),
              dict(k=[0]), dict(k=[2], p=[2]), dict(k=[9]), dict(k=[2], s=[0]),
              dict(k=[2, 0, 2]), dict(k=[2, 2, 2], p=[0, 2, 0]), dict(k=[5, 2, 2]), dict(k=[2, 2, 2], d=[1, 0, 1]),
              dict(k=[2, 2, 2], shape=(2, 4, 4)), dict(k=[2], shape=(1, 2, 4, 4))]


def torch_op_for(dims):
    return {1: torch.ops.aten.max_pool1d_with_indices, 2: torch.ops.aten.max_pool2d_with_indices,
            3: torch.ops.aten.max_pool3d_with_indices}[dims]


@pytest.mark.parametrize("kwargs", ARG_ERRORS)
def test_argument_errors_match_torch(kwargs):
    dims = len(kwargs["k"])
    x = torch.randn(kwargs.get("shape", (1, 2) + (4,) * dims))
    k, s, p, d = kwargs["k"], kwargs.get("s", []), kwargs.get("p", [0] * dims), kwargs.get("d", [1] * dims)
    with pytest.raises(RuntimeError) as ref:
        torch_op_for(dims)(x, k, s, p, d, False)
    with pytest.raises(type(ref.value)):
        _C.cuda_host_max_pool(x, k, s, p, d, False)


def test_channels_last_2d_input_to_3d_raises():
    """A 4-D input that is channels_last in the 2-d sense: max_pool3d raises, as PyTorch's CPU op."""
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError):
        F.max_pool3d(x, 2)
    with pytest.raises(RuntimeError):
        _C.cuda_host_max_pool(x, [2, 2, 2], [], [0, 0, 0], [1, 1, 1], False)


GRID_SHAPES = {1: (4, 48, 700), 2: (2, 24, 96, 80), 3: (2, 16, 20, 32, 32)}


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("window", [(3, 2, 1), (3, 1, 1), (2, 2, 0)], ids=["band_gather", "gather", "bands"])
def test_grid_stride_steps_on_one_sm(dims, layout, window):
    """A single SM's grid (64 blocks of 256 threads) covers these jobs in several
    grid-stride steps: every item still runs once, and the results are torch's."""
    k, s, p = window
    case = dict(dims=dims, k=(k,) * dims, s=(s,) * dims, p=(p,) * dims, d=(1,) * dims, ceil=False,
                shape=GRID_SHAPES[dims], layout=layout, dtype=torch.float32, special=True, seed=7)
    x = make_input(case)
    ref_out, ref_idx = torch_forward(x, case)
    out, idx, info = run_forward(x, case, sm_count=1)
    assert info["blocks"] == 64 and info["max_steps"] > 1
    assert_same(out, ref_out)
    assert torch.equal(idx, cuda_expected_indices(info, ref_out, ref_idx, case))
    grad = torch.empty_like(ref_out).copy_(torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(3)))
    gi, binfo = run_backward(grad, x, case, idx, sm_count=1)
    assert binfo["max_steps"] > 1
    assert binfo["body"] == f"backward_{backward_kind(case)}_{binfo['layout']}"
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
                                    dict(k=[2, 2], shape=(2, 5, 5), p=[2, 2]),
                                    dict(k=[2], p=[2]), dict(k=[9]), dict(k=[2, 2, 2], p=[2, 0, 0]),
                                    dict(k=[5, 2, 2]), dict(k=[2, 2, 2], shape=(2, 4, 4))])
def test_cuda_kernels_raise_before_touching_the_device(kwargs):
    """The CUDA build's registered kernels themselves (reached by redispatching to
    the CUDA key, no GPU needed) raise torch's exception for bad arguments, from
    the same frames a GPU call goes through, before any device call."""
    dims = len(kwargs["k"])
    x = torch.randn(kwargs.get("shape", (1, 2) + (4,) * dims))
    k, s, p, d = kwargs["k"], kwargs.get("s", []), kwargs.get("p", [0] * dims), kwargs.get("d", [1] * dims)
    with pytest.raises(RuntimeError) as ref:
        torch_op_for(dims)(x, k, s, p, d, False)
    cuda = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    name = f"max_pool{dims}d"
    ops = torch.ops.fastpool
    for op in (getattr(ops, f"{name}_with_indices").default, getattr(ops, name).default):
        with pytest.raises(type(ref.value)):
            op.redispatch(cuda, x, k, s, p, d, False)
    if x.dim() != dims + 1 and x.dim() != dims + 2:
        return  # no forward of torch's to take a grad_output shape from
    out = torch_op_for(dims)(x, [1] * dims, [1] * dims, [0] * dims, [1] * dims, False)
    with pytest.raises(type(ref.value)):
        getattr(ops, f"{name}_with_indices_backward").default.redispatch(cuda, out[0], x, k, s, p, d, False, out[1])


# ---- adaptive_max_pool1d/2d/3d ---------------------------------------------
#
# The same jobs and bodies with adaptive windows as data (max_pool_device.cuh:
# Axis::adaptive). The reference is torch CPU's adaptive_max_pool{1,2,3}d;
# PyTorch CUDA's (aten/src/ATen/native/cuda/AdaptiveMaxPooling{2,3}d.cu) gives
# the same forward: windows [floor(o*in/out), ceil((o+1)*in/out)) in int64,
# `(val > max) || isnan(val)` from -inf with the index at the window's first
# tap, the index flattened over the plane (1-d runs the 2-d op on the input
# unsqueezed to N,C,1,L); batched inputs are read through a contiguous copy
# (no channels-last kernel, so none of max_pool's channels-last quirks); the
# output is channels last where the 2-d input suggests it (1-d: its unsqueezed
# input), always contiguous in 3-d. Floating types only (integers raise
# NotImplementedError under "adaptive_max_pool2d_cuda" / "adaptive_max_pool3d_cuda";
# fastpool does the same), after an empty call has returned. Backward: PyTorch
# CUDA scatters with atomicAdd in scalar_t (2-d always, 3-d where the sizes do
# not divide), so where windows overlap (sizes that do not divide) its sums
# run in no fixed order and, for float16/bfloat16, round after every add;
# fastpool gathers in output raster order in float and rounds once, which the
# reference reproduces (CPU's backward in float32, rounded once). Where sizes
# divide the windows tile the input and both give the same bits.

ADAPTIVE_MAX_SIZE = {1: 24, 2: 11, 3: 6}


@st.composite
def adaptive_case(draw, dims):
    sizes = tuple(draw(st.integers(1, ADAPTIVE_MAX_SIZE[dims])) for _ in range(dims))
    # Below, equal to and above the input's size; divisors take the fixed description.
    out = tuple(draw(st.one_of(st.integers(1, n + 3), st.sampled_from([d for d in range(1, n + 1) if n % d == 0])))
                for n in sizes)
    c = draw(st.integers(1, 12 if dims < 3 else 6))
    batched = draw(st.integers(0, 5)) > 0
    n = draw(st.integers(0, 3 if dims < 3 else 2)) if batched else None
    layout = draw(st.sampled_from(["contiguous", "channels_last"])) if batched else "contiguous"
    return dict(dims=dims, out=out, shape=((n,) if batched else ()) + (c,) + sizes, layout=layout,
                dtype=draw(st.sampled_from(DTYPES)), special=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


def torch_adaptive(x, out):
    fn = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}[len(out)]
    return fn(x, out[0] if len(out) == 1 else out, return_indices=True)


def torch_adaptive_backward(grad, x, idx, dims):
    """torch CPU's adaptive backward; half types in float32 (same order), rounded once."""
    if dims == 1:
        return torch_adaptive_backward(grad.unsqueeze(-2), x.unsqueeze(-2), idx.unsqueeze(-2), 2).squeeze(-2)
    op = torch.ops.aten.adaptive_max_pool2d_backward if dims == 2 else torch.ops.aten.adaptive_max_pool3d_backward
    if x.dtype in HALF_TYPES:
        return op(grad.float(), x.float(), idx).to(x.dtype)
    return op(grad, x, idx)


def run_adaptive(x, out, **kw):
    o, i, info = _C.cuda_host_adaptive_max_pool(x, list(out), **kw)
    return o, i, summarize(info)


def run_adaptive_backward(grad, x, idx, dims, **kw):
    gi, info = _C.cuda_host_adaptive_max_pool_backward(grad, x, idx, dims, **kw)
    return gi, summarize(info)


def adaptive_is_even(case):
    return all(n % o == 0 for n, o in zip(case["shape"][-case["dims"]:], case["out"]))


@pytest.mark.parametrize("dims", DIMS)
def test_adaptive_forward_matches_torch(dims):
    @SETTINGS
    @given(adaptive_case(dims), SM_COUNTS)
    def check(case, sms):
        x = make_input(case)
        ref_out, ref_idx = torch_adaptive(x, case["out"])
        out, idx, info = run_adaptive(x, case["out"], sm_count=sms)
        assert_same(out, ref_out)
        assert torch.equal(idx, ref_idx)
        assert out.stride() == ref_out.stride() and idx.stride() == ref_idx.stride()
        if out.numel() == 0:
            assert info["body"] is None
            return
        if is_channels_last(ref_out, dims):
            assert info["layout"] == "nhwc"
        # Uneven (h, w) windows vary in size: never the unrolled square bodies.
        plane = dict(case, dims=min(dims, 2), out=case["out"][-2:])
        if not adaptive_is_even(plane):
            assert info["body"] in ("forward_nhwc", "forward_nchw")
        assert info["index_bits"] == 32 and info["items"] * info["lanes"] == out.numel()
        check_info(info, x, dims)
        values, none, _ = run_adaptive(x, case["out"], with_indices=False, sm_count=sms)
        assert none is None
        assert_same(values, ref_out)
        out64, idx64, info64 = run_adaptive(x, case["out"], force_index64=True, sm_count=sms)
        assert info64["index_bits"] == 64
        assert_same(out64, ref_out)
        assert torch.equal(idx64, ref_idx)

    check()


@pytest.mark.parametrize("dims", DIMS)
def test_adaptive_backward_matches_torch(dims):
    @SETTINGS
    @given(adaptive_case(dims), st.integers(0, 2**31 - 1), SM_COUNTS)
    def check(case, grad_seed, sms):
        x = make_input(case)
        ref_out, _ = torch_adaptive(x, case["out"])
        _, idx, _ = run_adaptive(x, case["out"])
        g = torch.Generator().manual_seed(grad_seed)
        grad = torch.empty_like(ref_out).copy_((torch.randn(ref_out.shape, generator=g, dtype=torch.float64) * 3))
        gi, info = run_adaptive_backward(grad, x, idx, dims, sm_count=sms)
        ref = torch_adaptive_backward(grad, x, idx, dims)
        assert_same(gi, ref)
        assert gi.stride() == ref.stride() or x.numel() == 0
        if x.numel() == 0:
            assert info["body"] is None
            return
        # Uneven windows overlap: the per-input gather; even ones tile the input: bands.
        kind = "bands" if adaptive_is_even(case) else "gather"
        assert info["body"] == f"backward_{kind}_{info['layout']}"
        check_info(info, x, dims)
        gi64, info64 = run_adaptive_backward(grad, x, idx, dims, force_index64=True, sm_count=sms)
        assert info64["index_bits"] == 64
        assert_same(gi64, gi)

    check()


def test_adaptive_axis_closed_forms():
    """The kernels' adaptive window bounds and covering outputs (closed forms,
    multiply-high division) against their definitions, for every in, out <= 64
    and both index widths (adaptive even where the sizes divide)."""
    for n_in in range(1, 65):
        x = torch.arange(n_in)
        for n_out in range(1, 65):
            o = torch.arange(n_out)
            start, end = o * n_in // n_out, -(-(o + 1) * n_in // n_out)
            covers = (start[None, :] <= x[:, None]) & (x[:, None] < end[None, :])  # [in, out]
            # Covering outputs are one run (both window ends grow with o): its first and one past its last.
            first = covers.int().argmax(1)
            last = n_out - covers.flip(1).int().argmax(1)
            assert torch.equal(covers.sum(1), last - first)
            for index64 in (False, True):
                windows, covering = _C.cuda_adaptive_axis(n_in, n_out, index64)
                assert torch.equal(windows, torch.stack([start, end], 1))
                assert torch.equal(covering, torch.stack([first, last], 1))


def test_adaptive_products_past_int32_take_64_bit_indices():
    """o * in and (x + 1) * out pass int32 for in = 50000, out = 50001 although the
    tensors are small: the launcher counts them and picks 64-bit indices."""
    x = torch.randn(1, 1, 50_000)
    ref_out, ref_idx = torch_adaptive(x, (50_001,))
    out, idx, info = run_adaptive(x, (50_001,))
    assert info["index_bits"] == 64
    assert_same(out, ref_out)
    assert torch.equal(idx, ref_idx)
    grad = torch.randn(ref_out.shape)
    gi, binfo = run_adaptive_backward(grad, x, idx, 1)
    assert binfo["index_bits"] == 64
    assert_same(gi, torch_adaptive_backward(grad, x, idx, 1))


@pytest.mark.parametrize("dims", DIMS)
def test_adaptive_unbatched_empty_batch_and_zero_output(dims):
    spatial = (5, 7, 6)[-dims:]
    x = torch.randn((3,) + spatial)
    for out in [(2, 3, 4)[-dims:], spatial, (7, 9, 8)[-dims:]]:
        ref = torch_adaptive(x, out)
        got = run_adaptive(x, out)
        assert_same(got[0], ref[0]) and torch.equal(got[1], ref[1])
        grad = torch.randn(ref[0].shape)
        assert_same(run_adaptive_backward(grad, x, got[1], dims)[0], torch_adaptive_backward(grad, x, ref[1], dims))
    # Empty batch: empty results, nothing launched (and, as PyTorch CUDA, no dtype check).
    for dtype in (torch.float32, torch.int64):
        e = torch.zeros((0, 3) + spatial, dtype=dtype)
        out, idx, info = run_adaptive(e, (2, 2, 2)[-dims:])
        assert out.shape == (0, 3) + (2,) * dims and idx.shape == out.shape and info["body"] is None
    # output_size 0: empty output; its backward op refuses the empty grad_output,
    # as torch's does (fastpool's autograd gives the zero gradient without it).
    out, idx, info = run_adaptive(x, (0,) + (2,) * (dims - 1))
    assert out.numel() == 0 and info["body"] is None
    with pytest.raises(RuntimeError) as ref:
        torch_adaptive_backward(out, x, idx, dims)
    with pytest.raises(RuntimeError) as ours:
        run_adaptive_backward(out, x, idx, dims)
    assert str(ours.value).splitlines()[0] == str(ref.value).splitlines()[0]


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool], ids=str)
def test_adaptive_integers_rejected_like_pytorch_cuda(dims, dtype):
    """PyTorch CUDA's adaptive max pooling has floating kernels only: its
    NotImplementedError, named after its kernel (1-d runs the 2-d one)."""
    x = torch.zeros((1, 2) + (4,) * dims, dtype=dtype)
    kernel = "adaptive_max_pool3d_cuda" if dims == 3 else "adaptive_max_pool2d_cuda"
    type_name = {torch.int64: "Long", torch.uint8: "Byte", torch.bool: "Bool"}[dtype]
    with pytest.raises(NotImplementedError, match=f'"{kernel}" not implemented for \'{type_name}\''):
        _C.cuda_host_adaptive_max_pool(x, [2] * dims)
    idx = torch.zeros((1, 2) + (2,) * dims, dtype=torch.int64)
    with pytest.raises(NotImplementedError, match=f'"{kernel[:-5]}_backward_cuda" not implemented'):
        _C.cuda_host_adaptive_max_pool_backward(torch.zeros(idx.shape, dtype=dtype), x, idx, dims)


@pytest.mark.parametrize("args", [((2, 3), [-1]), ((2, 0, 4), [2]), ((5,), [2]), ((1, 2, 3, 4, 5), [2, 2]),
                                  ((2, 3, 0, 4), [2, 2]), ((2, 3, 4), [2, -2]), ((2, 3, 4, 4, 4), [2, 2, -1]),
                                  ((3, 4, 4), [2, 2, 2])])
def test_adaptive_argument_errors_match_torch(args):
    shape, out = args
    x = torch.randn(shape)
    aten = {1: torch.ops.aten.adaptive_max_pool1d, 2: torch.ops.aten.adaptive_max_pool2d,
            3: torch.ops.aten.adaptive_max_pool3d}[len(out)]
    with pytest.raises(RuntimeError) as ref:
        aten(x, out)
    with pytest.raises(type(ref.value)) as ours:
        _C.cuda_host_adaptive_max_pool(x, out)
    assert str(ours.value).splitlines()[0] == str(ref.value).splitlines()[0]


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_adaptive_grid_stride_steps_on_one_sm(dims, layout):
    """Uneven adaptive windows over a job a single SM's grid covers in several steps."""
    case = dict(dims=dims, out=(5, 7, 9)[-dims:], shape=GRID_SHAPES[dims], layout=layout, dtype=torch.float32,
                special=True, seed=11)
    x = make_input(case)
    ref_out, ref_idx = torch_adaptive(x, case["out"])
    out, idx, info = run_adaptive(x, case["out"], sm_count=1)
    assert_same(out, ref_out)
    assert torch.equal(idx, ref_idx)
    grad = torch.empty_like(ref_out).copy_(torch.randn(ref_out.shape, generator=torch.Generator().manual_seed(5)))
    gi, binfo = run_adaptive_backward(grad, x, idx, dims, sm_count=1)
    assert binfo["max_steps"] > 1 and binfo["body"].startswith("backward_gather")
    assert_same(gi, torch_adaptive_backward(grad, x, idx, dims))
