"""fastpool.max_unpool{1,2,3}d on the CPU against torch's: values, layouts,
gradients, errors (bad indices included), the duplicate-index rule, the
SegNet round trip (pool with indices, unpool), modules, convert, opcheck,
torch.compile and torch.export."""
from typing import List

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastpool
from pool_cases import FLOAT_DTYPES, LAYOUTS, assert_identical, make_input, torch_threads

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIMS = [1, 2, 3]


def fns(dims):
    name = f"max_unpool{dims}d"
    return getattr(fastpool, name), getattr(F, name)


def in_layout(t, layout, dims):
    """t ((N,) C, `dims` spatial dims) stored in one of pool_cases' LAYOUTS (views included)."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        channel = 1 if t.dim() == dims + 2 else 0
        return t.movedim(channel, -1).contiguous().movedim(-1, channel)
    if layout == "sliced":
        big = torch.zeros(t.shape[:-1] + (t.shape[-1] * 2,), dtype=t.dtype)
        big[..., ::2] = t
        return big[..., ::2]
    return t.transpose(-1, -2).contiguous().transpose(-1, -2)  # transposed


def same_outcome(ours, theirs):
    """Both return identical tensors, or both raise the same exception type
    with the same first line. torch runs on one thread: with several bad
    indices, its CPU kernel names the last one its thread saw (racy with
    several threads), fastpool the last in the order torch's kernel visits."""
    try:
        with torch_threads(1):
            expected = theirs()
    except Exception as e:  # noqa: BLE001
        with pytest.raises(type(e)) as got:
            ours()
        assert str(got.value).splitlines()[0] == str(e).splitlines()[0]
        return None
    got = ours()
    assert_identical(got, expected)
    return got


@st.composite
def segnet_case(draw):
    """A max pool with indices (torch's), and the unpool arguments to invert
    it: default or given output_size (sometimes with N, C), in any layout."""
    dims = draw(st.sampled_from(DIMS))
    max_in = {1: 40, 2: 14, 3: 7}[dims]
    k = tuple(draw(st.integers(1, 4 if dims < 3 else 3)) for _ in range(dims))
    s = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    sizes = tuple(draw(st.integers(max(1, ki), max_in)) for ki in k)
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))
    channels = draw(st.integers(1, 20))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    special = draw(st.sampled_from(["normal", "ties", "specials"]))
    seed = draw(st.integers(0, 2**31 - 1))
    x = make_input(batch, channels, sizes, dtype, "contiguous", seed, special)
    pooled, idx = getattr(F, f"max_pool{dims}d")(x, k, s, p, return_indices=True)
    pooled = in_layout(pooled, draw(st.sampled_from(LAYOUTS)), dims)
    idx = in_layout(idx, draw(st.sampled_from(LAYOUTS)), dims)
    how = draw(st.sampled_from(["default", "input size", "full size"]))
    output_size = None if how == "default" else (x.shape[-dims:] if how == "input size" else x.shape)
    spell = draw(st.sampled_from(["tuple", "int", "none"]))
    if spell == "int" and len(set(k)) == 1 and len(set(s)) == 1 and len(set(p)) == 1:
        args = dict(kernel_size=k[0], stride=s[0], padding=p[0])
    elif spell == "none" and k == s:
        args = dict(kernel_size=k, stride=None, padding=p)
    else:
        args = dict(kernel_size=k, stride=s, padding=p)
    return dims, pooled, idx, args, output_size


@PROPERTY
@given(case=segnet_case())
def test_segnet_round_trip_matches_torch(case):
    """Values and layout of torch's unpool of its own pool, or its error
    (an output_size out of range, an index the output does not hold)."""
    dims, pooled, idx, args, output_size = case
    ours, theirs = fns(dims)
    same_outcome(lambda: ours(pooled, idx, output_size=output_size, **args),
                 lambda: theirs(pooled, idx, output_size=output_size, **args))


@PROPERTY
@given(case=segnet_case())
def test_backward_matches_torch(case):
    dims, pooled, idx, args, output_size = case
    ours, theirs = fns(dims)
    x_torch = pooled.detach().clone().requires_grad_()
    try:
        expected = theirs(x_torch, idx, output_size=output_size, **args)
    except (RuntimeError, ValueError):
        return  # test_segnet_round_trip_matches_torch compares the errors
    grad = torch.empty_like(expected).copy_(torch.randn(expected.shape, dtype=torch.float64))
    try:
        expected.backward(grad)
    except RuntimeError as e:
        # torch's gradient views the indices flat over the spatial dims, which
        # fails for strides no view can flatten (a transposed slice); fastpool
        # takes any strides. The reference is then torch's with contiguous indices.
        if "out of bounds" in str(e):  # an output of size 0: every index is out of it
            x_fp = pooled.detach().clone().requires_grad_()
            with pytest.raises(RuntimeError) as got:
                ours(x_fp, idx, output_size=output_size, **args).backward(grad)
            assert str(got.value).splitlines()[0] == str(e).splitlines()[0]
            return
        assert "view size is not compatible" in str(e)
        x_torch.grad = None
        theirs(x_torch, idx.contiguous(), output_size=output_size, **args).backward(grad)
    x_fp = pooled.detach().clone().requires_grad_()
    got = ours(x_fp, idx, output_size=output_size, **args)
    assert_identical(got.detach(), expected.detach())
    got.backward(grad)
    assert_identical(x_fp.grad, x_torch.grad)


def last_wins(values, indices, out_spatial):
    """The documented rule, computed independently: per output element the
    largest input position (raster order within the plane) naming it."""
    dims = len(out_spatial)
    flat_idx = indices.flatten(-dims)
    plane = 1
    for s in out_spatial:
        plane *= s
    position = torch.arange(flat_idx.shape[-1]).expand_as(flat_idx)
    winner = torch.full(flat_idx.shape[:-1] + (plane,), -1, dtype=torch.long)
    winner = winner.scatter_reduce(-1, flat_idx, position, "amax")
    picked = values.flatten(-dims).gather(-1, winner.clamp(min=0))
    out = torch.where(winner >= 0, picked, torch.zeros((), dtype=values.dtype))
    return out.view(values.shape[:-dims] + tuple(out_spatial))


@settings(max_examples=60, deadline=None)
@given(dims=st.sampled_from([2, 3]), batch=st.sampled_from([None, 1, 3]), channels=st.integers(1, 40),
       in_side=st.integers(1, 6), out_side=st.integers(1, 4), layout=st.sampled_from(LAYOUTS),
       dtype=st.sampled_from(FLOAT_DTYPES), seed=st.integers(0, 2**31 - 1))
def test_duplicate_indices_last_in_raster_order_wins(dims, batch, channels, in_side, out_side, layout, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    sizes = (in_side,) * dims
    out_spatial = (out_side,) * dims
    x = make_input(batch, channels, sizes, dtype, layout, seed, "normal")
    idx = in_layout(torch.randint(0, out_side**dims, x.shape, generator=g), layout, dims)
    op = getattr(torch.ops.fastpool, f"max_unpool{dims}d")
    extra = ([1] * 3, [0] * 3) if dims == 3 else ()
    got = op(x, idx, list(out_spatial), *extra)
    expected = last_wins(x, idx, out_spatial)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    # torch's CPU kernels scatter each plane in the same order when one thread runs them.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert_identical(got, getattr(torch._C._nn, f"max_unpool{dims}d")(x, idx, list(out_spatial), *extra))
    finally:
        torch.set_num_threads(threads)
    # The gradient is torch's gather, duplicates included.
    xg, xt = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    grad = torch.randn(got.shape, dtype=torch.float64).to(dtype)
    op(xg, idx, list(out_spatial), *extra).backward(grad)
    # (torch's gradient refuses indices no view can flatten: the reference takes them contiguous.)
    getattr(torch._C._nn, f"max_unpool{dims}d")(xt, idx.contiguous(), list(out_spatial), *extra).backward(grad)
    assert_identical(xg.grad, xt.grad)


U2 = torch._C._nn.max_unpool2d
U3 = torch._C._nn.max_unpool3d


def error_cases():
    x2, i2 = torch.randn(2, 3, 2, 2), torch.zeros(2, 3, 2, 2, dtype=torch.long)
    x3, i3 = torch.randn(2, 3, 2, 2, 2), torch.zeros(2, 3, 2, 2, 2, dtype=torch.long)
    bad2 = i2.clone()
    bad2[1, 2, 1, 1] = 16
    two_bad = i2.clone()
    two_bad[0, 1, 0, 1], two_bad[1, 0, 1, 1] = -1, 99
    bad3 = i3.clone()
    bad3[1, 2, 1, 1, 0] = 64
    s, p = [2, 2, 2], [0, 0, 0]
    return {
        "2d int32 indices": (2, (x2, i2.int(), [4, 4])),
        "2d output_size length": (2, (x2, i2, [4, 4, 4])),
        "2d rank 2": (2, (x2[0, 0], i2[0, 0], [4, 4])),
        "2d rank 5": (2, (x2[None], i2[None], [4, 4])),
        "2d shape mismatch": (2, (x2, i2[:, :2], [4, 4])),
        "2d zero channels": (2, (x2[:, :0], i2[:, :0], [4, 4])),
        "2d zero height": (2, (x2[:, :, :0], i2[:, :, :0], [4, 4])),
        "2d negative output": (2, (x2, i2, [-1, 4])),
        "2d integer dtype": (2, (x2.int(), i2, [4, 4])),
        "2d bad index": (2, (x2, bad2, [4, 4])),
        "2d bad index channels_last": (2, (x2.contiguous(memory_format=torch.channels_last), bad2, [4, 4])),
        "2d negative index": (2, (x2.half(), two_bad[:1, :1], [4, 4])),
        "2d bad index unbatched": (2, (x2[1], bad2[1], [4, 4])),
        "3d int32 indices": (3, (x3, i3.int(), [4, 4, 4], s, p)),
        "3d rank 3": (3, (x3[0, 0], i3[0, 0], [4, 4, 4], s, p)),
        "3d output_size length": (3, (x3, i3, [4, 4], s, p)),
        "3d stride length": (3, (x3, i3, [4, 4, 4], [2, 2], p)),
        "3d padding length": (3, (x3, i3, [4, 4, 4], s, [0, 0])),
        "3d shape mismatch": (3, (x3, i3[:, :2], [4, 4, 4], s, p)),
        "3d zero channels": (3, (x3[:, :0], i3[:, :0], [4, 4, 4], s, p)),
        "3d zero stride": (3, (x3, i3, [4, 4, 4], [2, 0, 2], p)),
        "3d negative output": (3, (x3, i3, [4, -1, 4], s, p)),
        "3d integer dtype": (3, (x3.int(), i3, [4, 4, 4], s, p)),
        "3d bad index": (3, (x3, bad3, [4, 4, 4], s, p)),
        "3d bad index unbatched": (3, (x3[1], bad3[1], [4, 4, 4], s, p)),
        "3d bfloat16 bad index": (3, (x3.bfloat16(), bad3, [4, 4, 4], s, p)),
    }


@pytest.mark.parametrize("case,device", [(c, d) for c in error_cases() for d in ["cpu", "meta"]
                                         if d == "cpu" or "index" not in c])  # Meta tensors hold no indices
def test_errors_match_torch(case, device):
    dims, args = error_cases()[case]
    if device == "meta":
        args = tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)
    ours = getattr(torch.ops.fastpool, f"max_unpool{dims}d")
    theirs = U2 if dims == 2 else U3
    with pytest.raises(Exception) as expected:
        out = theirs(*args)
        if device == "meta":  # torch's Meta function takes integer dtypes: so does fastpool's
            assert "integer dtype" in case
            assert_identical_meta(ours(*args), out)
            raise RuntimeError("no error")
    if str(expected.value) == "no error":
        return
    with pytest.raises(type(expected.value)) as got:
        ours(*args)
    assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]


def assert_identical_meta(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype and got.stride() == expected.stride()


def test_several_bad_indices_name_the_last_torch_visits():
    """torch names whichever bad index a thread saw last (racy with several
    threads); fastpool the last in the order torch's kernel for the output's
    layout visits them: (N, C, spatial), or (N, spatial, C) for channels_last,
    as torch on one thread, on any thread count."""
    x, idx = torch.randn(2, 8, 8, 8), torch.zeros(2, 8, 8, 8, dtype=torch.long)
    idx[1, 2, 0, 0], idx[1, 0, 7, 7], idx[0, 7, 7, 7] = 100, -3, 500
    for layout, named in [("contiguous", 100), ("channels_last", -3)]:
        args = (in_layout(x, layout, 2), in_layout(idx, layout, 2), [8, 8])
        message = rf"^Found an invalid max index: {named} \(output volumes are of size 8x8\)"
        with pytest.raises(RuntimeError, match=message):
            torch.ops.fastpool.max_unpool2d(*args)
        with torch_threads(1), pytest.raises(RuntimeError, match=message):
            U2(*args)


def test_bad_index_never_writes_outside():
    # A guard band around the output in one allocation: it stays untouched.
    x = torch.randn(1, 1, 2, 2)
    for bad in [4, -1, 2**40, -(2**62)]:
        idx = torch.tensor([[[[0, 1], [2, bad]]]])
        with pytest.raises(RuntimeError, match=f"^Found an invalid max index: {bad} "):
            torch.ops.fastpool.max_unpool2d(x, idx, [2, 2])
        # The gradient raises torch's (its gather's) error.
        with pytest.raises(RuntimeError) as expected:
            torch.randn(1, 1, 4).gather(-1, idx.view(1, 1, 4))
        with pytest.raises(RuntimeError) as got:
            torch.ops.fastpool.max_unpool2d_backward(torch.randn(1, 1, 2, 2), idx)
        assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]


@pytest.mark.parametrize("dims", DIMS)
def test_empty_batch_zero_output_and_unbatched(dims):
    ours, theirs = fns(dims)
    for shape, kwargs in [((0, 3) + (2,) * dims, {}), ((2, 3) + (2,) * dims, dict(output_size=(0,) + (4,) * (dims - 1))),
                          ((3,) + (2,) * dims, {}), ((0,) + (2,) * dims, {})]:
        x = torch.randn(shape, requires_grad=True)
        idx = torch.zeros(shape, dtype=torch.long)
        got = same_outcome(lambda: ours(x, idx, 2, **kwargs).detach(), lambda: theirs(x, idx, 2, **kwargs).detach())
        # Integer dtypes raise only where a kernel runs (no output elements: none).
        same_outcome(lambda: ours(x.detach().int(), idx, 2, **kwargs), lambda: theirs(x.detach().int(), idx, 2, **kwargs))
        if got is not None and got.numel():
            ours(x, idx, 2, **kwargs).sum().backward()
            assert x.grad.shape == x.shape and bool((x.grad == 1).all())
    # A zero output size (which the functional's range check refuses) through the ops: no kernel, no error.
    if dims > 1:
        x, idx = torch.randn((2, 3) + (2,) * dims), torch.full((2, 3) + (2,) * dims, 7)
        extra = ([1] * 3, [0] * 3) if dims == 3 else ()
        for dtype in (torch.float32, torch.int32):
            assert_identical(getattr(torch.ops.fastpool, f"max_unpool{dims}d")(x.to(dtype), idx, [3, 0, 4][:dims], *extra),
                             getattr(torch._C._nn, f"max_unpool{dims}d")(x.to(dtype), idx, [3, 0, 4][:dims], *extra))


@pytest.mark.parametrize("dims", DIMS)
def test_gradcheck_and_gradgradcheck(dims):
    ours, _ = fns(dims)
    x = torch.randn((2, 3) + (6, 5, 4)[:dims], dtype=torch.float64)
    pooled, idx = getattr(F, f"max_pool{dims}d")(x, 2, return_indices=True)
    pooled.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ours(t, idx, 2, output_size=x.shape[-dims:]), (pooled,))
    assert torch.autograd.gradgradcheck(lambda t: ours(t, idx, 2, output_size=x.shape[-dims:]), (pooled,))
    # Double backward matches torch's (a scatter-add), duplicates included.
    dup = torch.zeros_like(idx)
    for t in (idx, dup):
        got = ours(pooled, t, 2, output_size=x.shape[-dims:])
        expected = getattr(F, f"max_unpool{dims}d")(pooled, t, 2, output_size=x.shape[-dims:])
        v = torch.randn(expected.shape, dtype=torch.float64, requires_grad=True)
        (g1,) = torch.autograd.grad(got, pooled, v, create_graph=True)
        (g2,) = torch.autograd.grad(expected, pooled, v, create_graph=True)
        w = torch.randn(g2.shape, dtype=torch.float64)
        assert_identical(torch.autograd.grad(g1, v, w)[0], torch.autograd.grad(g2, v, w)[0])


@pytest.mark.parametrize("sample", range(4))
def test_opcheck(sample):
    x, out = [(torch.randn(2, 3, 4, 5, requires_grad=True), [8, 10]),
              (torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_(), [8, 9]),
              (torch.randn(3, 2, 3, 4, dtype=torch.float64, requires_grad=True), [4, 6, 8]),
              (torch.randn(0, 3, 5, 5), [7, 7])][sample]
    dims = len(out)
    plane = 1
    for s in out:
        plane *= s
    idx = torch.randint(0, plane, x.shape)
    extra = ([2] * 3, [0] * 3) if dims == 3 else ()
    torch.library.opcheck(getattr(torch.ops.fastpool, f"max_unpool{dims}d").default, (x, idx, out, *extra))
    grad = torch.randn(x.shape[:-dims] + tuple(out), dtype=x.dtype).requires_grad_()
    torch.library.opcheck(getattr(torch.ops.fastpool, f"max_unpool{dims}d_backward").default, (grad, idx))


class SegNetBlock(torch.nn.Module):
    """SegNet's use: pool with indices, unpool to the encoder's size."""

    def __init__(self, dims=2, conv=True):
        super().__init__()
        self.dims = dims
        # Without the conv (compile tests): Inductor's conv backward may round differently.
        self.conv = getattr(torch.nn, f"Conv{dims}d")(3, 4, 3, padding=1) if conv else torch.nn.Identity()
        self.pool = getattr(torch.nn, f"MaxPool{dims}d")(2, return_indices=True)
        self.unpool = getattr(torch.nn, f"MaxUnpool{dims}d")(2)

    def forward(self, x):
        y = self.conv(x)
        pooled, idx = self.pool(y)
        return self.unpool(pooled, idx, output_size=y.shape)


@pytest.mark.parametrize("dims", DIMS)
def test_modules_and_convert(dims):
    name = f"MaxUnpool{dims}d"
    for kwargs in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)]:
        ours, theirs = getattr(fastpool, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        assert isinstance(ours, getattr(torch.nn, name)) and repr(ours) == repr(theirs)
    torch.manual_seed(0)
    net = SegNetBlock(dims)
    x = torch.randn((2, 3) + (9, 8, 7)[:dims], requires_grad=True)
    expected = net(x)
    expected.sum().backward()
    expected_grad, x.grad = x.grad, None
    fastpool.convert(net)
    assert type(net.unpool) is getattr(fastpool, name)
    got = net(x)
    got.sum().backward()
    assert_identical(got, expected)
    assert_identical(x.grad, expected_grad)
    fastpool.unconvert(net)
    assert type(net.unpool) is getattr(torch.nn, name)


def test_torch_compile_fullgraph_and_export():
    torch.manual_seed(0)
    net = fastpool.convert(SegNetBlock(2, conv=False))
    x = torch.randn(2, 3, 12, 10, requires_grad=True)
    expected = net(x)
    expected.sum().backward()
    expected_grad, x.grad = x.grad, None
    compiled = torch.compile(net, fullgraph=True, backend="inductor")
    got = compiled(x)
    got.sum().backward()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, expected_grad, rtol=0, atol=0)
    exported = torch.export.export(net, (torch.randn(2, 3, 12, 10),))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert "fastpool.max_unpool2d.default" in targets
    x2 = torch.randn(2, 3, 12, 10)
    torch.testing.assert_close(exported.module()(x2), net(x2), rtol=0, atol=0)
    net3 = fastpool.convert(SegNetBlock(3))
    x3 = torch.randn(1, 3, 6, 4, 5)
    exported = torch.export.export(net3, (x3,))
    assert "fastpool.max_unpool3d.default" in {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    torch.testing.assert_close(exported.module()(x3), net3(x3), rtol=0, atol=0)


def test_torch_export_dynamic_sizes():
    # The output size follows the input's (fastpool keeps SymInts symbolic;
    # torch's size checks guard on the sizes' parity).
    net = fastpool.convert(SegNetBlock(2, conv=False))
    dim = torch.export.Dim.DYNAMIC
    exported = torch.export.export(net, (torch.randn(2, 3, 12, 10),), dynamic_shapes=({0: dim, 2: dim, 3: dim},))
    x = torch.randn(3, 3, 8, 6)
    assert_identical(exported.module()(x), net(x))


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("dims", DIMS)
def test_jit_trace(dims):
    # torch.jit.trace (the legacy ONNX exporter's tracer) gives sizes as
    # tensors, on which torch's output size checks fail; fastpool's trace has
    # the output size as constants.
    torch.manual_seed(0)
    net = fastpool.convert(SegNetBlock(dims)).eval()
    x = torch.randn((2, 3) + (9, 8, 7)[:dims])
    traced = torch.jit.trace(net, (x,))
    assert "fastpool::max_unpool" in str(traced.inlined_graph)
    assert_identical(traced(x), net(x))


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("dims", DIMS)
def test_torchscript_functions_and_modules(dims, tmp_path):
    """Scripted (saved, loaded) calls of the functions run fastpool's op and
    give torch's bits. torch 2.13 cannot script its own MaxUnpool modules
    (an internal assert); fastpool's fail the same way."""
    for module in (getattr(torch.nn, f"MaxUnpool{dims}d")(2), getattr(fastpool, f"MaxUnpool{dims}d")(2)):
        with pytest.raises(RuntimeError, match="Expected IntList but got Int"):
            torch.jit.script(module)
    x = torch.randn((2, 3) + (9, 8, 7)[:dims])
    fn = getattr(fastpool, f"max_unpool{dims}d")

    def call(t: torch.Tensor, i: torch.Tensor, size: List[int]):
        return fn(t, i, 2, stride=2, padding=0, output_size=size)

    pooled, idx = getattr(F, f"max_pool{dims}d")(x, 2, return_indices=True)
    scripted_fn = torch.jit.script(call)
    assert "fastpool::max_unpool" in str(scripted_fn.inlined_graph)
    expected = getattr(F, f"max_unpool{dims}d")(pooled, idx, 2, output_size=x.shape[-dims:])
    assert_identical(scripted_fn(pooled, idx, list(x.shape[-dims:])), expected)
    torch.jit.save(scripted_fn, str(tmp_path / "fn.pt"))
    assert_identical(torch.jit.load(str(tmp_path / "fn.pt"))(pooled, idx, list(x.shape[-dims:])), expected)


def index_pattern(kind, shape, out_plane, g):
    """Indices of `shape` into a plane of out_plane elements: a 2x2 pool's
    (targets moving forward), random (backwards, far ahead, duplicates),
    reversed (each behind the last), all near the end, or all on one element."""
    n_in = 1
    for s in shape[-2:]:
        n_in *= s
    if kind == "random":
        return torch.randint(0, out_plane, shape, generator=g)
    if kind == "reversed":
        return (out_plane - 1 - torch.arange(n_in) * out_plane // n_in).view(shape[-2:]).expand(shape).clone()
    if kind == "near end":
        return torch.randint(max(0, out_plane - 3), out_plane, shape, generator=g)
    if kind == "one":
        return torch.full(shape, out_plane // 2)
    raise ValueError(kind)


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kind", ["pool", "overlapping pool", "random", "reversed", "near end", "one"])
def test_forward_big_enough_for_threads_and_channel_blocks(threads, layout, kind):
    """Outputs large enough that the forward splits into several tasks (one
    per plane; when channels last, per channel block of an image, or with
    fewer images than threads per band of rows, which falls back to channel
    blocks when an index leaves its band), each zeroing its output as it
    scatters: every index pattern, duplicates included, gives the documented
    result with any thread count, and torch's (one thread) result."""
    g = torch.Generator().manual_seed(threads)
    for batch, channels, in_hw, out_hw in [(1, 64, (20, 20), (40, 40)), (2, 48, (7, 9), (45, 61)),
                                           (1, 40, (30, 30), (12, 13)), (1, 96, (40, 40), (80, 80)),
                                           (2, 64, (30, 40), (61, 80))]:
        out_plane = out_hw[0] * out_hw[1]
        x = torch.randn(batch, channels, *in_hw, generator=g)
        if kind in ("pool", "overlapping pool"):
            if in_hw[0] * 2 > out_hw[0] or in_hw[1] * 2 > out_hw[1]:
                continue
            big = torch.randn(batch, channels, *out_hw, generator=g)
            crop = big[..., :in_hw[0] * 2, :in_hw[1] * 2]
            if kind == "pool":
                x, idx = F.max_pool2d(crop, 2, return_indices=True)
            else:  # 3x3 windows, stride 2: the windows of neighbouring rows share a row
                x, idx = F.max_pool2d(crop, 3, 2, 1, return_indices=True)
            # pooled from the top-left corner of the output: rebase the indices onto its width
            idx = idx // (in_hw[1] * 2) * out_hw[1] + idx % (in_hw[1] * 2)
        else:
            idx = index_pattern(kind, x.shape, out_plane, g)
        for dtype in (torch.float32, torch.bfloat16):  # 4- and 2-byte words
            xs, ids = in_layout(x.to(dtype), layout, 2), in_layout(idx, layout, 2)
            with torch_threads(threads):
                got = torch.ops.fastpool.max_unpool2d(xs, ids, list(out_hw))
            torch.testing.assert_close(got, last_wins(xs, ids, out_hw), rtol=0, atol=0)
            with torch_threads(1):
                assert_identical(got, U2(xs, ids, list(out_hw)))
            # and the gradient, a gather, with the same threads
            xg = xs.detach().clone().requires_grad_()
            grad = torch.randn(got.shape, generator=g).to(dtype).contiguous(
                memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
            with torch_threads(threads):
                torch.ops.fastpool.max_unpool2d(xg, ids, list(out_hw)).backward(grad)
            xt = xs.detach().clone().requires_grad_()
            U2(xt, ids, list(out_hw)).backward(grad)
            assert_identical(xg.grad, xt.grad)


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_bad_index_in_a_big_output_names_torchs_and_writes_nothing_outside(threads, layout):
    """With several tasks, one bad index (among good ones behind and ahead of
    it) raises torch's one-thread error, whatever the thread count."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 20, 20, generator=g)
    idx = torch.randint(0, 1600, x.shape, generator=g)
    idx[0, 40, 3, 5], idx[0, 7, 19, 19], idx[0, 33, 0, 0] = 1600, -1, 2**40
    args = (in_layout(x, layout, 2), in_layout(idx, layout, 2), [40, 40])
    with torch_threads(1), pytest.raises(RuntimeError) as expected:
        U2(*args)
    with torch_threads(threads), pytest.raises(RuntimeError) as got:
        torch.ops.fastpool.max_unpool2d(*args)
    assert str(got.value).splitlines()[0] == str(expected.value).splitlines()[0]
