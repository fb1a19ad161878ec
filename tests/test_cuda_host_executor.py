"""The CUDA ops run by the host executor (csrc/cuda/host_executor.cpp): what is
specific to the launcher (vector width and alignment, band and gather
backward kinds, grid-stride steps, launch plans, the divider, adaptive window
closed forms, 64-bit index choice, argument and dtype errors with PyTorch
CUDA's words). The generic properties (values, indices, layouts, special
values, batches, gradients against torch CPU adjusted by the documented CUDA
differences, on an H100's grid and on one SM, with 32- and 64-bit indices)
are tests/test_ops.py's `cuda-host` device; the differences themselves are
listed in tests/ops.py.

This is how CI checks the CUDA code without a GPU: fastpool._C.cuda_host_* run
the very functions the CUDA registration runs (max_pool_launcher.h: checks,
allocation, layout, kernel body, vector width, index width, grid), with only
the kernel launch replaced by an emulation of the grid (every block, thread
and grid-stride step, with an H100's limits or a single SM's). The spatial
dims of a call are len(kernel_size).
"""
import math

import pytest
import torch
import torch.nn.functional as F

import fastpool
from fastpool import _C
from ops import (DIMS, H100_SMS, HALF_TYPES, backward_kind, check_info, covered_by_own_window,  # noqa: F401
                 cuda_expected_indices, is_channels_last, padded3, pool_args, reference_backward, run_adaptive,
                 run_adaptive_backward, run_backward, run_forward, summarize, to_layout, torch_adaptive,
                 torch_adaptive_backward, torch_backward, torch_forward)
from pool_cases import FLOAT_DTYPES as DTYPES
from pool_cases import INT_DTYPES, assert_identical
from pool_cases import make_input as make_values_input


def make_input(case):
    """The case's input (pool_cases.make_input: small integers with NaN, ±inf
    and -0.0 where case["special"], ties otherwise), stored channels last with
    torch's own memory formats where asked."""
    shape = case["shape"]
    dims = case["dims"]
    batch = shape[0] if len(shape) == dims + 2 else None
    x = make_values_input(batch, shape[-dims - 1], shape[-dims:], case["dtype"], "contiguous", case["seed"],
                          "specials" if case["special"] else "ties")
    return to_layout(x, dims, case["layout"])


def assert_same(a, b):
    """Same values bit for bit (NaN as NaN, the sign of zero included), shape and dtype."""
    assert_identical(a, b, strides=False)


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


def offset_planar(x, offset_elems):
    """x's values in contiguous storage that starts offset_elems into its buffer."""
    buf = torch.empty(x.numel() + offset_elems, dtype=x.dtype)
    y = buf[offset_elems:].view(x.shape)
    y.copy_(x)
    return y


@pytest.mark.parametrize("dims", DIMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [(3, 1, False), (3, 0, True), (3, 0, False), (2, 0, False), (2, 0, True)],
                         ids=["k3p1", "k3p0ceil", "k3p0", "k2", "k2ceil"])
def test_nchw_rows_forward(dims, dtype, window):
    """Planar windows of stride 2 along w (kernel 3 with padding 1 or 0, kernel
    2): four outputs of a row per item (ForwardNchwRows), its columns read as
    16-byte chunks where every row is aligned, else one by one; ceil_mode's
    clipped last window, partial groups at each row's end, rows narrower than
    the group's vector, misaligned buffers. Values and indices are torch's, and
    no vector access is misaligned."""
    k, p, ceil = window
    chunk = min(16 // torch.empty((), dtype=dtype).element_size(), 8)
    for width in (8, 9, 15, 16, 17, 24, 31):
        for offset in (0, 1):
            spatial = {1: (width,), 2: (5, width), 3: (3, 4, width)}[dims]
            case = dict(dims=dims, k=(k,) * dims, s=(2,) * dims, p=(p,) * dims, d=(1,) * dims, ceil=ceil,
                        shape=(2, 3) + spatial, layout="contiguous", dtype=dtype, special=True, seed=width + offset)
            x = offset_planar(make_input(case), offset)
            ref_out, ref_idx = torch_forward(x, case)
            for with_indices in (True, False):
                out, idx, info = run_forward(x, case, with_indices=with_indices)
                ow = ref_out.shape[-1]
                if ow < 4:  # no whole group: one output per item
                    assert info["body"].startswith("forward_nchw") and info["body"] != "forward_nchw_rows"
                    assert_same(out, ref_out)
                    continue
                assert info["body"] == "forward_nchw_rows"
                assert info["items"] == ref_out.numel() // ow * -(-ow // 4)
                check_info(info, x, dims)
                # Chunked loads where every row is aligned, vector stores where every group is whole.
                vector_loads = offset == 0 and width % chunk == 0
                assert (info["vector_accesses"] > 0) == (vector_loads or ow % 4 == 0)
                assert_same(out, ref_out)
                if with_indices:
                    assert torch.equal(idx, ref_idx)
                else:
                    assert idx is None


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("window", [((3, 3), (1, 1), False), ((3, 3), (0, 0), True), ((2, 3), (1, 1), False),
                                    ((3, 2), (1, 0), True)], ids=["k3p1", "k3p0ceil", "k2x3", "k3x2"])
def test_band_gather_narrow(dims, layout, dtype, window):
    """Windows of stride 2 overlapping by one input along h and w (the stem's
    k3 s2 p1, GoogLeNet's k3 s2 ceil), depth stride 1: 2 x 2 candidate outputs
    a block, unrolled (BackwardBandGatherNarrow). Odd sizes (blocks of one row
    or column at the edges), the forward's indices and indices that name an
    input of the block outside the output's own window (which add nothing, as
    in PyTorch CUDA's gather): the gather's sums, bit for bit."""
    (kh, kw), (ph, pw), ceil = window
    k = (kh, kw) if dims == 2 else (2, kh, kw)
    p = (ph, pw) if dims == 2 else (1, ph, pw)
    s = (2, 2) if dims == 2 else (1, 2, 2)
    spatial = (9, 11) if dims == 2 else (3, 8, 7)
    case = dict(dims=dims, k=k, s=s, p=p, d=(1,) * dims, ceil=ceil, shape=(2, 8) + spatial, layout=layout,
                dtype=dtype, special=False, seed=11)
    x = make_input(case)
    ref_out, _ = torch_forward(x, case)
    _, idx, _ = run_forward(x, case)
    gen = torch.Generator().manual_seed(2)
    grad = torch.empty_like(ref_out).copy_(torch.randn(ref_out.shape, generator=gen).to(dtype))
    # A third of the indices moved one input down or right: some leave their window, some stay in it.
    plane = math.prod(spatial)
    shift = torch.randint(0, 3, idx.shape, generator=gen) * torch.tensor([0, 1, spatial[-1]])[
        torch.randint(0, 3, idx.shape, generator=gen)]
    moved = torch.empty_like(idx).copy_(torch.clamp(idx + shift, max=plane - 1))
    for indices in (idx, moved):
        gi, info = run_backward(grad, x, case, indices)
        assert info["body"] == f"backward_band_gather_narrow_{info['layout']}"
        assert_same(gi, reference_backward(grad, x, case, indices))
    assert not torch.equal(moved, idx) and not bool(covered_by_own_window(moved, x.shape, case).all())


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
def test_adaptive_empty_batch_and_zero_output(dims):
    spatial = (5, 7, 6)[-dims:]
    x = torch.randn((3,) + spatial)
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



def test_gather_of_minus_zero_gradients():
    """PyTorch CUDA's 2-d channels-last backward (max_pool_backward_nhwc) sums
    the gradients of an input's covering outputs from 0, except where a single
    output covers it: that output's gradient is copied, so -0.0 stays -0.0
    (torch CPU, and the other CUDA kernels, give 0.0 everywhere). Here the
    first and last columns have one covering output each."""
    case = dict(dims=2, k=(2, 2), s=(1, 1), p=(0, 0), d=(1, 1), ceil=False, shape=(2, 3, 2, 33), layout="channels_last",
                dtype=torch.float32, special=False, seed=0)
    x = make_input(case)
    _, idx, _ = run_forward(x, case)
    grad = torch.full_like(torch_forward(x, case)[0], -0.0)
    gi, _ = run_backward(grad, x, case, idx)
    summed = reference_backward(grad, x, case, idx)  # torch CPU's: every zero +0.0
    hit = torch.zeros(summed.shape, dtype=torch.bool).flatten(-2)
    hit.scatter_(-1, idx.flatten(-2), True)
    lone = torch.zeros(summed.shape[-1], dtype=torch.bool)
    lone[[0, -1]] = True
    expected = torch.where(hit.view(summed.shape) & lone, torch.tensor(-0.0), summed)
    assert expected.signbit().any() and not summed.signbit().any()
    assert_same(gi, expected)
    # The contiguous kernel sums from 0 everywhere.
    case_nchw = dict(case, layout="contiguous")
    x = make_input(case_nchw)
    _, idx, _ = run_forward(x, case_nchw)
    gi, _ = run_backward(torch.full_like(torch_forward(x, case_nchw)[0], -0.0), x, case_nchw, idx)
    assert not gi.signbit().any()


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
