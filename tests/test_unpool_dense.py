"""max_unpool's CPU dense path (csrc/cpu/unpool_kernels.h) and its fallback.

When every index lies in its input cell's own output block (block sizes
output // input per spatial dim: a pool whose windows do not overlap, as
SegNet's k2 s2), fastpool writes the unpooled map densely instead of
scattering, and reads the gradient densely instead of gathering; any other
index makes it fall back to the scatter and gather. Both must give torch's
bits. fastpool._C.cpu_unpool_dense_runs() counts the calls that took the dense
path, so these tests also check that the path runs exactly where it applies
(its results are by design those of the scatter): where the indices allow it
and the active ISA's build has the kernel (cpu_unpool_has_dense_kernel; each
build keeps the kernels that beat the scatter there)."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpool
from pool_cases import FLOAT_DTYPES, ISAS, assert_identical, cpu_isa, make_input, torch_threads
from test_unpool import in_layout, same_outcome

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CL = {2: torch.channels_last, 3: torch.channels_last_3d}


def dense_runs():
    return fastpool._C.cpu_unpool_dense_runs()


def has_kernel(backward, dims, *tensors):
    """Whether the dense path can run on these tensors (forward: values,
    indices, output; backward: grad_output, indices): all in one of
    fastpool's views (planar, or 2-d channels last), and the active ISA has
    the kernel for that layout and word size."""
    if dims == 1:  # 1-d runs the 2-d op on (N, C, L, 1) views of the same memory
        tensors, dims = [t.unsqueeze(-1) for t in tensors], 2
    cl = {dims == 2 and t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
          for t in tensors}
    if len(cl) != 1:
        return False
    return fastpool._C.cpu_unpool_has_dense_kernel(backward, cl.pop(), tensors[0].element_size())


def dense_applies(idx, out_spatial):
    """The kernels' rule, computed independently: s = out // in per dim (no
    dim may shrink or be empty), and each index names a position whose
    coordinates divided by s are its own cell's."""
    dims = len(out_spatial)
    in_spatial = idx.shape[-dims:]
    if any(i < 1 or o < i for i, o in zip(in_spatial, out_spatial)):
        return False
    plane = 1
    for o in out_spatial:
        plane *= o
    flat = idx.reshape(-1, *in_spatial)
    if bool(((flat < 0) | (flat >= plane)).any()):
        return False
    rest = flat
    for d in reversed(range(dims)):
        coord, rest = rest % out_spatial[d], rest // out_spatial[d]
        cell = torch.arange(in_spatial[d]).view([-1] + [1] * (dims - 1 - d))
        if not bool((coord // (out_spatial[d] // in_spatial[d]) == cell).all()):
            return False
    return True


def rebase(idx, from_spatial, to_spatial):
    """Flat indices into a plane of from_spatial, as the same coordinates in
    a larger plane of to_spatial (its extra rows and columns then hold zeros)."""
    coords, rest = [], idx
    for size in reversed(from_spatial):
        coords.append(rest % size)
        rest = rest // size
    flat = torch.zeros_like(idx)
    for size, coord in zip(to_spatial, reversed(coords)):
        flat = flat * size + coord
    return flat


@st.composite
def pooled(draw):
    """Values and indices of torch's own max pool, the unpool's output size,
    and how the indices were changed (if at all)."""
    dims = draw(st.sampled_from([1, 2, 3]))
    window = draw(st.sampled_from(["k==s", "k2 s2", "padded", "overlapping"]))
    if window == "k==s":
        k = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        s, p = k, (0,) * dims
    elif window == "k2 s2":
        k = s = (2,) * dims
        p = (0,) * dims
    elif window == "padded":
        k = s = (2,) * dims
        p = tuple(draw(st.integers(0, 1)) for _ in range(dims))
    else:
        k, s, p = (3,) * dims, (2,) * dims, (1,) * dims
    max_in = {1: 70, 2: 17, 3: 8}[dims]
    sizes = tuple(draw(st.integers(ki, max_in)) for ki in k)
    batch = draw(st.sampled_from([None, 1, 2]))
    channels = draw(st.sampled_from([1, 3, 16, 33]))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    layout = draw(st.sampled_from(["contiguous", "channels_last", "sliced"]))
    x = make_input(batch, channels, sizes, dtype, "contiguous", draw(st.integers(0, 2**31 - 1)), "normal")
    values, idx = getattr(F, f"max_pool{dims}d")(x, k, s, p, return_indices=True)
    out_spatial = tuple(x.shape[-dims:])
    grow = draw(st.sampled_from(["no", "rebased", "not rebased"]))
    if grow != "no":  # an explicit larger output_size (rebased: the pooled map in its top-left corner)
        bigger = tuple(n + draw(st.integers(0, 3)) for n in out_spatial)
        if grow == "rebased":
            idx = rebase(idx, out_spatial, bigger)
        out_spatial = bigger
    change = draw(st.sampled_from(["none", "none", "other block", "out of range"]))
    if change != "none" and idx.numel():
        plane = 1
        for o in out_spatial:
            plane *= o
        at = draw(st.integers(0, idx.numel() - 1))
        flat = idx.view(-1)
        if change == "other block":  # still inside the plane, outside its own block when there are several
            flat[at] = (flat[at] + plane // 2) % plane
        else:
            flat[at] = draw(st.sampled_from([plane, plane + 5, -1]))
    values = in_layout(values, layout, dims)
    idx = in_layout(idx, layout, dims)
    return dims, values, idx, out_spatial


@PROPERTY
@given(case=pooled(), threads=st.sampled_from([1, 2]), isa=st.sampled_from(ISAS))
def test_matches_torch_and_takes_dense_path_where_it_applies(case, threads, isa):
    """Forward, then backward through autograd, bit for bit against torch's
    (or torch's error); the dense path counted exactly where its rule holds."""
    dims, values, idx, out_spatial = case
    ours, theirs = getattr(fastpool, f"max_unpool{dims}d"), getattr(F, f"max_unpool{dims}d")
    k = 2  # only the output size matters: it is given
    x_ours = values.detach().clone().requires_grad_()
    x_torch = values.detach().clone().requires_grad_()
    before = dense_runs()
    with cpu_isa(isa), torch_threads(threads):
        got = same_outcome(lambda: ours(x_ours, idx, k, output_size=out_spatial),
                           lambda: theirs(x_torch, idx, k, output_size=out_spatial))
    applies = dense_applies(idx, out_spatial)
    if got is None:
        assert dense_runs() == before
        return
    with cpu_isa(isa):
        kernel = has_kernel(False, dims, values, idx, got)
    assert dense_runs() - before == (1 if applies and kernel and got.numel() else 0)
    expected = theirs(x_torch, idx, k, output_size=out_spatial)
    grad = torch.randn(expected.shape, dtype=torch.float64).to(values.dtype)
    grad = torch.empty_like(expected).copy_(grad)  # in the output's layout, as autograd passes it
    try:
        expected.backward(grad)
    except RuntimeError as e:
        assert "view size is not compatible" in str(e)  # torch flattens the indices by view
        x_torch.grad = None
        theirs(x_torch, idx.contiguous(), k, output_size=out_spatial).backward(grad)
    before = dense_runs()
    with cpu_isa(isa), torch_threads(threads):
        got.backward(grad)
    assert_identical(x_ours.grad, x_torch.grad)
    with cpu_isa(isa):
        kernel = has_kernel(True, dims, grad, idx)
    assert dense_runs() - before == (1 if applies and kernel and values.numel() else 0)


def segnet_pair(shape, dtype, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    dims = len(shape) - 2
    values, idx = getattr(F, f"max_pool{dims}d")(x, 2, return_indices=True)
    if layout == "channels_last":
        values = values.contiguous(memory_format=CL[dims])
        idx = idx.contiguous(memory_format=CL[dims])
    return x, values, idx


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape", [(1, 64, 46, 61), (2, 40, 9, 30, 22)])
@pytest.mark.parametrize("change", ["none", "other block", "neighbour's block", "out of range", "last"])
def test_big_maps_over_threads(shape, layout, threads, change):
    """Maps big enough to split over threads: SegNet's pool, or one index
    changed in the middle (another block, the next cell's block, out of
    the plane) or at the very end: dense where no index changed, else the
    scatter's and gather's results and errors, torch's on one thread."""
    dims = len(shape) - 2
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        x, values, idx = segnet_pair(shape, dtype, layout)
        out_spatial = list(x.shape[-dims:])
        plane = x[0, 0].numel()
        idx = idx.clone()
        at = tuple(n // 2 for n in idx.shape) if change != "last" else tuple(n - 1 for n in idx.shape)
        if change in ("other block", "last"):
            idx[at] = (idx[at] + plane // 2) % plane
        elif change == "neighbour's block":
            idx[at] += 2
        elif change == "out of range":
            idx[at] = plane
        op = getattr(torch.ops.fastpool, f"max_unpool{dims}d")
        ref = getattr(torch._C._nn, f"max_unpool{dims}d")
        extra = ([2] * 3, [0] * 3) if dims == 3 else ()
        before = dense_runs()
        with torch_threads(threads):
            got = same_outcome(lambda: op(values, idx, out_spatial, *extra), lambda: ref(values, idx, out_spatial, *extra))
        assert dense_runs() - before == (change == "none" and has_kernel(False, dims, values, idx, got))
        if got is None:
            continue
        grad = torch.empty_like(got).copy_(torch.randn(got.shape, dtype=torch.float64))
        backward = getattr(torch.ops.fastpool, f"max_unpool{dims}d_backward")
        before = dense_runs()
        with torch_threads(threads):
            grad_input = backward(grad, idx)
        assert dense_runs() - before == (change == "none" and has_kernel(True, dims, grad, idx))
        expected = grad.flatten(-dims).gather(-1, idx.flatten(-dims)).view(idx.shape)
        assert_identical(grad_input, expected.contiguous())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("change", ["none", "other block"])
def test_big_channels_last_backward_dense_on_several_threads(threads, change):
    """Past the 16 MiB the dense kernels are kept to, the channels-last
    backward still takes its dense path when more than one thread runs (the
    gather gains little from a second one), the gather on one; both give
    torch's gradient, and an index outside its block falls back to it."""
    x, values, idx = segnet_pair((1, 64, 200, 200), torch.float32, "channels_last")
    assert idx.numel() * (8 + 4) + x.numel() * 4 > 16 << 20
    idx = idx.clone()
    if change == "other block":
        idx[0, 40, 50, 50] = (idx[0, 40, 50, 50] + 20000) % 40000
    grad = torch.randn(x.shape).contiguous(memory_format=CL[2])
    before = dense_runs()
    with torch_threads(threads):
        grad_input = torch.ops.fastpool.max_unpool2d_backward(grad, idx)
    assert dense_runs() - before == (threads > 1 and change == "none" and has_kernel(True, 2, grad, idx))
    assert_identical(grad_input, grad.flatten(-2).gather(-1, idx.flatten(-2)).view(idx.shape).contiguous())


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_out_of_range_index_gradient_raises_torchs_error(layout):
    """The backward of a dense-looking map with one index out of the plane
    falls back to the gather, which raises torch's (gather's) error."""
    x, values, idx = segnet_pair((1, 32, 20, 20), torch.float32, layout)
    idx = idx.clone()
    idx[0, 5, 3, 4] = 400
    grad = torch.randn(x.shape).contiguous(memory_format=CL[2] if layout == "channels_last" else torch.contiguous_format)
    with pytest.raises(RuntimeError) as expected:
        grad.flatten(-2).gather(-1, idx.flatten(-2))
    with pytest.raises(RuntimeError) as got:
        torch.ops.fastpool.max_unpool2d_backward(grad, idx)
    assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]


@pytest.mark.parametrize("view", ["sliced", "transposed"])
def test_non_contiguous_views_take_the_dense_path(view):
    """Values and indices as strided views (copied to planar first) and a
    grad_output view: dense, and torch's bits."""
    x, values, idx = segnet_pair((2, 8, 12, 14), torch.float32, "contiguous")
    values, idx = in_layout(values, view, 2), in_layout(idx, view, 2)
    before = dense_runs()
    got = torch.ops.fastpool.max_unpool2d(values, idx, [12, 14])
    assert dense_runs() - before == fastpool._C.cpu_unpool_has_dense_kernel(False, False, 4)
    assert_identical(got, torch._C._nn.max_unpool2d(values, idx, [12, 14]))
    grad = torch.randn(2, 8, 14, 12).transpose(-1, -2)
    before = dense_runs()
    grad_input = torch.ops.fastpool.max_unpool2d_backward(grad, idx)
    assert dense_runs() - before == fastpool._C.cpu_unpool_has_dense_kernel(True, False, 4)
    assert_identical(grad_input, grad.flatten(-2).gather(-1, idx.flatten(-2)).view(idx.shape).contiguous())


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_two_byte_planar_rows_check_every_cell(dtype, isa):
    """The 2-byte planar kernels take four cells a step and the rest one by
    one (unpool_kernels.h): rows of 1 to 9 cells, with one index moved to
    the next cell row's block at each cell in turn, in either block row:
    torch's bits forward, the gather's backward, and the dense path only
    where no index moved."""
    for cells in range(1, 10):
        x, values, idx = segnet_pair((1, 2, 4, 2 * cells), dtype, "contiguous")
        plane = x[0, 0].numel()
        grad = torch.randn(x.shape, dtype=torch.float64).to(dtype)
        for at in [None] + list(range(cells)):
            moved = idx.clone()
            if at is not None:
                moved[0, 1, 0, at] = (moved[0, 1, 0, at] + 2 * x.shape[-1]) % plane
            with cpu_isa(isa):
                before = dense_runs()
                got = torch.ops.fastpool.max_unpool2d(values, moved, [4, 2 * cells])
                grad_input = torch.ops.fastpool.max_unpool2d_backward(grad, moved)
                runs = dense_runs() - before
                dense = has_kernel(False, 2, values, moved, got) + has_kernel(True, 2, grad, moved)
            assert_identical(got, torch._C._nn.max_unpool2d(values, moved, [4, 2 * cells]))
            assert_identical(grad_input, grad.flatten(-2).gather(-1, moved.flatten(-2)).view(moved.shape))
            assert runs == (dense if at is None else 0)
