"""The CUDA max_unpool{2,3}d op and its backward run by the host executor
(fastpool._C.cuda_host_max_unpool*, csrc/cuda/max_unpool_launcher.h: checks,
allocation, both kernel passes, index width, grid, with only the launch
replaced by an emulation of the grid), against torch on CPU.

Where PyTorch CUDA differs from its CPU ops, the reference is adjusted:
  * the output is contiguous whatever the input's layout (PyTorch CUDA's
    kernel writes NCHW; its CPU one keeps channels_last);
  * integer dtypes are taken (PyTorch CUDA's forward dispatches every
    integer type; its CPU one floating types only): the reference is torch
    CPU's result on the values as float64, which integers survive;
  * duplicate indices: PyTorch CUDA races; fastpool's rule is the CPU one,
    the last in raster order wins;
  * bad indices: PyTorch CUDA asserts on the device; fastpool raises torch
    CPU's error (after a sync) and writes nothing out of bounds.
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpool import _C
from pool_cases import FLOAT_DTYPES, INT_DTYPES, LAYOUTS, assert_identical, make_input
from test_unpool import in_layout, last_wins

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def host_unpool(x, idx, output_size, stride=(), padding=(), **kw):
    out, info = _C.cuda_host_max_unpool(x, idx, list(output_size), list(stride), list(padding), **kw)
    return out, info


def torch_unpool(x, idx, output_size, stride=(), padding=()):
    """PyTorch CUDA's result, from its CPU op: contiguous; integers computed exactly via float64."""
    values = x.double() if not x.is_floating_point() else x
    if len(output_size) == 2:
        out = torch._C._nn.max_unpool2d(values, idx, list(output_size))
    else:
        out = torch._C._nn.max_unpool3d(values, idx, list(output_size), list(stride), list(padding))
    return out.to(x.dtype).contiguous()


@PROPERTY
@given(dims=st.sampled_from([2, 3]), batch=st.sampled_from([None, 0, 1, 3]), channels=st.integers(1, 24),
       side=st.integers(1, 8), k=st.integers(1, 3), layout=st.sampled_from(LAYOUTS),
       idx_layout=st.sampled_from(LAYOUTS), dtype=st.sampled_from(FLOAT_DTYPES + INT_DTYPES),
       seed=st.integers(0, 2**31 - 1), sm_count=st.sampled_from([1, 132]), index64=st.booleans())
def test_round_trip_matches_torch(dims, batch, channels, side, k, layout, idx_layout, dtype, seed, sm_count,
                                  index64):
    if dims == 3:
        side = min(side, 5)
    sizes = (max(side, k),) * dims
    x = make_input(batch, channels, sizes, torch.float64, "contiguous", seed, "ties")
    pooled, idx = getattr(F, f"max_pool{dims}d")(x, k, return_indices=True)
    pooled = in_layout(pooled.to(dtype) if dtype.is_floating_point else pooled.round().to(dtype), layout, dims)
    idx = in_layout(idx, idx_layout, dims)
    extra = ((k,) * 3, (0,) * 3) if dims == 3 else ()
    got, info = host_unpool(pooled, idx, sizes, *extra, sm_count=sm_count, force_index64=index64)
    assert_identical(got, torch_unpool(pooled, idx, sizes, *extra))
    if got.numel():
        assert [launch["body"] for launch in info["launches"]] == ["unpool_claim", "unpool_fill"]
        assert {launch["index_bits"] for launch in info["launches"]} == {64 if index64 else 32}


@PROPERTY
@given(dims=st.sampled_from([2, 3]), batch=st.sampled_from([None, 1, 2]), channels=st.integers(1, 20),
       in_side=st.integers(1, 5), out_side=st.integers(1, 4), layout=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**31 - 1), sm_count=st.sampled_from([1, 132]))
def test_duplicates_and_backward(dims, batch, channels, in_side, out_side, layout, dtype, seed, sm_count):
    """The CPU's rule (last in raster order wins), whatever order the grid's
    threads run in; the backward is torch's gather."""
    g = torch.Generator().manual_seed(seed)
    x = make_input(batch, channels, (in_side,) * dims, dtype, layout, seed, "normal")
    idx = in_layout(torch.randint(0, out_side**dims, x.shape, generator=g), layout, dims)
    out_spatial = (out_side,) * dims
    extra = ((1,) * 3, (0,) * 3) if dims == 3 else ()
    got, _ = host_unpool(x, idx, out_spatial, *extra, sm_count=sm_count)
    torch.testing.assert_close(got, last_wins(x, idx, out_spatial), rtol=0, atol=0)
    assert got.is_contiguous()
    grad = in_layout(torch.randn(got.shape, generator=g, dtype=torch.float64).to(dtype), layout, dims)
    gi, info = _C.cuda_host_max_unpool_backward(grad, idx, dims, sm_count=sm_count)
    xt = x.detach().clone().requires_grad_()
    op = torch._C._nn.max_unpool2d if dims == 2 else torch._C._nn.max_unpool3d
    # (torch's gradient refuses indices no view can flatten: the reference takes them contiguous.)
    (expected,) = torch.autograd.grad(op(xt, idx.contiguous(), list(out_spatial), *[list(e) for e in extra]), xt, grad)
    assert_identical(gi, expected)
    assert [launch["body"] for launch in info["launches"]] == ["unpool_gather"]


def test_bad_indices_raise_torchs_cpu_error():
    x, idx = torch.randn(3, 4, 5, 5), torch.zeros(3, 4, 5, 5, dtype=torch.long)
    idx[0, 3, 4, 4], idx[1, 1, 2, 3], idx[1, 2, 0, 0] = 400, -2, 100
    # Forward: the last in (N, C, spatial) order (CUDA outputs are planar), whatever the layouts;
    # backward: the first, as torch's gather names it.
    for layout in ["contiguous", "channels_last"]:
        with pytest.raises(RuntimeError, match=r"^Found an invalid max index: 100 \(output volumes are of size 10x10\)"):
            host_unpool(in_layout(x, layout, 2), in_layout(idx, layout, 2), (10, 10))
        with pytest.raises(RuntimeError, match=r"^index 400 is out of bounds for dimension 2 with size 100$"):
            _C.cuda_host_max_unpool_backward(torch.randn(3, 4, 10, 10), in_layout(idx, layout, 2), 2)
    x3, idx3 = torch.randn(4, 2, 2, 2), torch.zeros(4, 2, 2, 2, dtype=torch.long)
    idx3[1, 1, 1, 1] = 8
    with pytest.raises(RuntimeError, match=r"^Found an invalid max index: 8 \(output volumes are of size 2x2x2\)"):
        host_unpool(x3, idx3, (2, 2, 2), (1, 1, 1), (0, 0, 0))


@pytest.mark.parametrize("case", ["int32 indices", "shape", "zero channels", "negative output", "bool dtype",
                                  "empty output int", "stride"])
def test_errors_and_empty_calls(case):
    x, idx, size, extra = torch.randn(2, 3, 2, 2), torch.zeros(2, 3, 2, 2, dtype=torch.long), (4, 4), ()
    if case == "int32 indices":
        idx = idx.int()
    elif case == "shape":
        idx = idx[:, :2]
    elif case == "zero channels":
        x, idx = x[:, :0], idx[:, :0]
    elif case == "negative output":
        size = (-1, 4)
    elif case == "bool dtype":
        x = x > 0
    elif case == "empty output int":
        x, size = x.int(), (0, 4)
    elif case == "stride":
        x, idx, size, extra = x[..., None], idx[..., None], (4, 4, 1), ((2, 0, 1), (0, 0, 0))
    if case == "empty output int":
        got, _ = host_unpool(x, idx, size)
        assert got.shape == (2, 3, 0, 4) and got.dtype == torch.int32
        return
    if case == "bool dtype":  # PyTorch CUDA's dispatch name
        with pytest.raises(NotImplementedError, match="\"max_unpooling2d_forward_kernel\" not implemented for 'Bool'"):
            host_unpool(x, idx, size)
        return
    with pytest.raises(RuntimeError) as got:
        host_unpool(x, idx, size, *extra)
    if case == "negative output" and torch_release() < (2, 13):
        # Before 2.13 torch checked no output size and failed later, in numel's
        # overflow check (seen on the GPU machine's torch 2.11); fastpool gives
        # the check that 2.13 and later make.
        expected_line = ("max_unpooling2d(): output_size must contain non-negative spatial dimensions, "
                         "but got output_size=(-1, 4)")
    else:
        with pytest.raises(RuntimeError) as expected:
            torch_unpool(x, idx, size, *extra)
        expected_line = str(expected.value).splitlines()[0]
    assert str(got.value).splitlines()[0] == expected_line


def torch_release():
    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
