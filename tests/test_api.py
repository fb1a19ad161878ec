"""The public surface: signatures, modules, errors, registered ops (opcheck),
torch.compile and torch.export."""
import inspect

import pytest
import torch
import torch.nn.functional as F

import fastpool
from pool_cases import assert_identical


@pytest.mark.parametrize("function", ["max_pool", "adaptive_max_pool"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_functional_signature_is_torchs(function, dims):
    # torch's max_pool{k}d is a boolean dispatch over two functions sharing it.
    def params(fn):
        return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]

    name = f"{function}{dims}d"
    assert params(getattr(fastpool, name)) == params(getattr(F, name + "_with_indices"))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_module_matches_torch_module(dims):
    name = f"MaxPool{dims}d"
    for kwargs in [dict(kernel_size=3), dict(kernel_size=(2, 3, 2)[:dims], stride=1, padding=(1, 1, 1)[:dims],
                                             dilation=(1, 2, 1)[:dims], return_indices=True, ceil_mode=True)]:
        ours, theirs = getattr(fastpool, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        assert isinstance(ours, getattr(torch.nn, name))
        assert ours.extra_repr() == theirs.extra_repr()
        assert repr(ours) == repr(theirs)
        for attr in ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"):
            assert getattr(ours, attr) == getattr(theirs, attr)
        assert ours.state_dict() == theirs.state_dict() == {}
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn((2, 3) + (9, 10, 7)[:dims])
        got, expected = ours(x), theirs(x)
        if kwargs.get("return_indices"):
            assert_identical(got[0], expected[0])
            assert_identical(got[1], expected[1])
        else:
            assert_identical(got, expected)


def test_module_in_a_model_trains_like_torchs():
    torch.manual_seed(0)

    def model(pool):
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), pool,
                                   torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 4)).double()

    ours, theirs = model(fastpool.MaxPool2d(3, 2, 1)), model(torch.nn.MaxPool2d(3, 2, 1))
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    for m in (ours, theirs):
        m(x).square().sum().backward()
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0, msg=name)


# Each bad call (and what is wrong in it): torch raises, fastpool raises the
# same type with torch's first line (tests/test_errors.py has many more).
BAD_CALLS = [
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=-1), "kernel_size"),
    (dict(kernel_size=2, stride=0), "stride"),
    (dict(kernel_size=2, stride=-2), "stride"),
    (dict(kernel_size=2, padding=-1), "padding"),
    (dict(kernel_size=2, padding=2), "pad"),
    (dict(kernel_size=3, padding=2, dilation=2), "pad"),
    (dict(kernel_size=2, dilation=0), "dilation"),
    (dict(kernel_size=(2, 2, 2)), "kernel_size"),
    (dict(kernel_size=2, stride=(1, 1, 1)), "stride"),
    (dict(kernel_size=2, padding=(1, 1, 1)), "padding"),
    (dict(kernel_size=2, dilation=(1, 1, 1)), "dilation"),
    (dict(kernel_size=9), "output size"),
    (dict(kernel_size=3, dilation=4), "output size"),
]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("kwargs,what", BAD_CALLS)
def test_bad_arguments_raise_like_torch(dims, kwargs, what):
    # The tuples in BAD_CALLS are one entry too long for 2-d: keep them so.
    kwargs = {k: v if isinstance(v, int) else (v[0],) * (dims + 1) for k, v in kwargs.items()}
    x = torch.randn((1, 2) + (8,) * dims)
    for return_indices in (False, True):  # torch's messages differ between the two in 1-d
        with pytest.raises(Exception) as theirs:
            getattr(F, f"max_pool{dims}d")(x, return_indices=return_indices, **kwargs)
        with pytest.raises(type(theirs.value)) as ours:
            getattr(fastpool, f"max_pool{dims}d")(x, return_indices=return_indices, **kwargs)
        assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("shape", ["spatial only", "one dim more", "zero channels", "zero size", "vector"])
def test_bad_input_rank_or_sizes(dims, shape):
    shape = {"spatial only": (8,) * dims, "one dim more": (1, 1, 1) + (8,) * dims, "zero channels": (1, 0) + (8,) * dims,
             "zero size": (2, 3) + (8,) * (dims - 1) + (0,), "vector": (0,)}[shape]
    x = torch.randn(shape)
    for return_indices in (False, True):
        with pytest.raises(Exception) as theirs:
            getattr(F, f"max_pool{dims}d")(x, 2, return_indices=return_indices)
        with pytest.raises(type(theirs.value)) as ours:
            getattr(fastpool, f"max_pool{dims}d")(x, 2, return_indices=return_indices)
        assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]


def test_bad_input_types():
    with pytest.raises(TypeError):
        fastpool.max_pool2d([[1.0, 2.0]], 2)
    with pytest.raises(TypeError):
        fastpool.max_pool2d(torch.randn(1, 1, 4, 4), 2.5)
    with pytest.raises(NotImplementedError, match="Bool"):
        fastpool.max_pool2d(torch.ones(1, 1, 4, 4, dtype=torch.bool), 2)
    with pytest.raises(NotImplementedError):  # integer tensors have no gradient op
        x = torch.randint(0, 5, (1, 1, 4, 4))
        out, idx = fastpool.max_pool2d(x, 2, return_indices=True)
        torch.ops.fastpool.max_pool2d_with_indices_backward(out, x, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)


def test_backward_argument_checks():
    x = torch.randn(1, 2, 6, 6)
    out, idx = fastpool.max_pool2d(x, 2, return_indices=True)
    args = ([2, 2], [2, 2], [0, 0], [1, 1], False)
    for grad, indices in [(torch.ones(1, 2, 4, 4), idx),  # grad_output of another size
                          (torch.ones_like(out), idx.int()),  # int32 indices
                          (torch.ones_like(out).double(), idx)]:  # grad_output of another dtype
        with pytest.raises(RuntimeError) as theirs:
            torch.ops.aten.max_pool2d_with_indices_backward(grad, x, *args, indices)
        with pytest.raises(RuntimeError) as ours:
            torch.ops.fastpool.max_pool2d_with_indices_backward(grad, x, *args, indices)
        assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]


def _opcheck_samples():
    def t(*shape, cl=False, dtype=torch.float32, grad=False):
        x = torch.randn(*shape, dtype=dtype)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        return x.requires_grad_(grad)

    return [
        (t(2, 3, 9, 9), [3, 3], [2, 2], [1, 1], [1, 1], False),
        (t(2, 3, 9, 9, cl=True, grad=True), [3, 3], [2, 2], [1, 1], [1, 1], False),
        (t(3, 10, 7, grad=True), [2, 2], [], [0, 0], [1, 1], True),
        (t(1, 4, 12, 11, dtype=torch.float64, grad=True), [2, 3], [1, 2], [1, 0], [2, 1], True),
        (t(2, 5, 8, 8, cl=True, dtype=torch.bfloat16), [2, 2], [2, 2], [0, 0], [1, 1], False),
        (t(0, 3, 8, 8), [2, 2], [2, 2], [0, 0], [1, 1], False),
    ]


@pytest.mark.parametrize("op", ["max_pool2d_with_indices", "max_pool2d"])
@pytest.mark.parametrize("sample", range(6))
def test_opcheck_forward_ops(op, sample):
    args = _opcheck_samples()[sample]
    torch.library.opcheck(getattr(torch.ops.fastpool, op).default, args)


@pytest.mark.parametrize("sample", [0, 1, 2, 3])
def test_opcheck_backward_op(sample):
    x, k, s, p, d, ceil = _opcheck_samples()[sample]
    x = x.detach()
    out, idx = torch.ops.fastpool.max_pool2d_with_indices(x, k, s, p, d, ceil)
    grad = torch.randn_like(out).requires_grad_()
    torch.library.opcheck(torch.ops.fastpool.max_pool2d_with_indices_backward.default,
                          (grad, x, k, s, p, d, ceil, idx))


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = fastpool.MaxPool2d(3, 2, 1)

    def forward(self, x):
        y = self.pool(torch.relu(self.conv(x)))
        z, idx = fastpool.max_pool2d(y, 2, return_indices=True, ceil_mode=True)
        return z.sum() + idx.sum() * 0


def test_torch_compile_fullgraph_forward_and_backward():
    torch.manual_seed(0)
    net = _Net()
    compiled = torch.compile(net, fullgraph=True, backend="inductor")
    x = torch.randn(2, 3, 17, 15, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    eager = net(x)
    eager.backward()
    got = compiled(x2)
    got.backward()
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close(x2.grad, x.grad)


def test_torch_export_keeps_the_op():
    net = _Net().eval()
    exported = torch.export.export(net, (torch.randn(2, 3, 16, 16),))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert any("fastpool.max_pool2d" in t for t in targets), targets
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(exported.module()(x), net(x))


@pytest.mark.parametrize("pool,taps_dtype", [
    (lambda x: fastpool.max_pool2d(x, 2), torch.uint8),                    # 4 taps
    (lambda x: fastpool.max_pool3d(x.unsqueeze(2), (1, 16, 16)), torch.int32),  # 256 taps
    (lambda x: fastpool.adaptive_max_pool2d(x, 1), torch.int32),
])
def test_training_saves_only_the_taps(pool, taps_dtype):
    # The lean path: only each output's tap within its window is saved for
    # backward (1 byte up to 255 taps): neither the input nor int64 indices.
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = pool(x)
    assert [(t.dtype, t.shape) for t in saved] == [(taps_dtype, out.shape)]
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        F.max_pool2d(x, 2)
    assert torch.int64 in [t.dtype for t in saved[1:]]  # torch keeps its indices
    out.sum().backward()
    assert x.grad.sum() == out.numel()


_TRAINING_POOLS = [
    ("FastpoolMaxPool1DBackward", lambda x: fastpool.max_pool1d(x.flatten(2), 3, 2, 1), lambda x: F.max_pool1d(x.flatten(2), 3, 2, 1)),
    ("FastpoolMaxPool2DBackward", lambda x: fastpool.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1)),
    ("FastpoolMaxPool3DBackward", lambda x: fastpool.max_pool3d(x.unsqueeze(2), (1, 2, 2)),
     lambda x: F.max_pool3d(x.unsqueeze(2), (1, 2, 2))),
    ("FastpoolAdaptiveMaxPool2DBackward", lambda x: fastpool.adaptive_max_pool2d(x, 3),
     lambda x: F.adaptive_max_pool2d(x, 3)),
]


@pytest.mark.parametrize("name,pool,reference", _TRAINING_POOLS)
def test_training_node_behaves_like_torchs(name, pool, reference):
    # The training path's backward node (csrc/autograd.cpp): named, freed
    # after backward exactly as torch's nodes are, kept with retain_graph,
    # and it computes only the gradients asked for.
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = pool(x)
    assert out.grad_fn.name() == name
    assert out.grad_fn.next_functions[0][0] is not None
    g = torch.randn_like(out)
    out.backward(g, retain_graph=True)
    first, x.grad = x.grad, None
    out.backward(g)
    assert_identical(x.grad, first)
    expected = reference(x)
    expected.backward(g)
    with pytest.raises(RuntimeError) as theirs:
        expected.backward(g)
    with pytest.raises(RuntimeError) as ours:
        out.backward(g)
    assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]

    # A gradient asked for another input only: the node computes none.
    w = torch.tensor(2.0, requires_grad=True)
    (gw,) = torch.autograd.grad((pool(x) * w).sum(), w)
    assert gw == pool(x).sum()
    # An undefined incoming gradient (an unused output) gives none either.
    a, b = pool(x).unbind(0)
    (ga,) = torch.autograd.grad(a.sum(), x)
    assert_identical(ga[1], torch.zeros_like(x[1]))


@pytest.mark.parametrize("call", [
    lambda t: fastpool.max_pool2d(t, 2), lambda t: fastpool.max_pool2d(t, 2, return_indices=True)[0],
    lambda t: fastpool.adaptive_max_pool2d(t, 2), lambda t: fastpool.max_pool1d(t.flatten(2), 2),
    lambda t: fastpool.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2),
    lambda t: fastpool.fractional_max_pool2d(t, 2, output_size=3, _random_samples=torch.rand(1, 2, 2)),
])
@pytest.mark.parametrize("requires_grad", [False, True])
def test_forward_ad_is_refused_not_dropped(call, requires_grad):
    # No forward-mode derivative yet: a tangent must raise, never vanish.
    import torch.autograd.forward_ad as fwAD
    x = torch.randn(1, 2, 4, 4, requires_grad=requires_grad)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, torch.randn_like(x))
        with pytest.raises(NotImplementedError, match="Trying to use forward AD with fastpool::"):
            call(dual)


@pytest.mark.parametrize("call", [
    lambda t: fastpool.max_pool2d(t, 2), lambda t: fastpool.max_pool2d(t, 2, return_indices=True)[0],
    lambda t: fastpool.adaptive_max_pool2d(t, 2), lambda t: fastpool.adaptive_max_pool2d(t, 3),
    lambda t: fastpool.max_pool1d(t.flatten(2), 2),
    lambda t: fastpool.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2),
    lambda t: fastpool.fractional_max_pool2d(t, 2, output_size=3, _random_samples=torch.full((1, 2, 2), 0.5)),
])
@pytest.mark.parametrize("create_graph", [False, True])
def test_forward_ad_through_backward_is_refused_not_dropped(call, create_graph):
    # A tangent on the incoming gradient (a forward-mode derivative of a
    # gradient) must raise in backward, never give a gradient without it.
    import torch.autograd.forward_ad as fwAD
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    out = call(x)
    with fwAD.dual_level():
        grad = fwAD.make_dual(torch.ones_like(out), torch.ones_like(out))
        with pytest.raises(NotImplementedError, match="Trying to use forward AD with fastpool::"):
            torch.autograd.grad(out, x, grad, create_graph=create_graph)


@pytest.mark.parametrize("call", [
    lambda t: fastpool.max_pool2d(t, 2), lambda t: fastpool.adaptive_max_pool2d(t, 3),
    lambda t: fastpool.max_pool3d(t.unsqueeze(2), (1, 2, 2)),
])
def test_hessian_is_refused_not_zero(call):
    # torch.func.hessian is forward AD over reverse: the outer level sees the
    # ops the autograd kernel calls below autograd. It silently gave zeros.
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(NotImplementedError, match="Trying to use forward AD with fastpool::"):
        torch.func.hessian(lambda t: call(t).pow(2).sum())(x)


_SAMPLES = torch.rand(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
_FUNC_TRANSFORM_POOLS = [  # (fastpool's call, torch's)
    (lambda t: fastpool.max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 2, 1)),
    (lambda t: fastpool.max_pool2d(t, 2, return_indices=True)[0], lambda t: F.max_pool2d(t, 2, return_indices=True)[0]),
    (lambda t: fastpool.adaptive_max_pool2d(t, 3), lambda t: F.adaptive_max_pool2d(t, 3)),
    (lambda t: fastpool.adaptive_max_pool2d(t, 3, True)[0], lambda t: F.adaptive_max_pool2d(t, 3, True)[0]),
    (lambda t: fastpool.max_pool1d(t.flatten(2), 3), lambda t: F.max_pool1d(t.flatten(2), 3)),
    (lambda t: fastpool.fractional_max_pool2d(t, 2, output_size=4, _random_samples=_SAMPLES[: t.shape[0]]),
     lambda t: F.fractional_max_pool2d(t, 2, output_size=4, _random_samples=_SAMPLES[: t.shape[0]])),
    (lambda t: fastpool.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2),
     lambda t: F.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2)),
]


@pytest.mark.parametrize("ours,theirs", _FUNC_TRANSFORM_POOLS)
def test_torch_func_transforms_match_torch(ours, theirs):
    # torch.func (grad, per-sample grad with vmap, jacrev) goes through the
    # backward nodes; a torch::autograd::Function node would be refused.
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    loss = lambda f: (lambda t: f(t).pow(2).sum())  # noqa: E731
    assert_identical(torch.func.grad(loss(ours))(x), torch.func.grad(loss(theirs))(x))
    per_sample = lambda f: torch.func.vmap(torch.func.grad(lambda t: loss(f)(t.unsqueeze(0))))(x)  # noqa: E731
    assert_identical(per_sample(ours), per_sample(theirs))
    assert_identical(torch.func.jacrev(ours)(x[:1]), torch.func.jacrev(theirs)(x[:1]))


def test_no_grad_call_saves_nothing():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.no_grad():
        out = fastpool.max_pool2d(x, 2)
    assert out.grad_fn is None and not out.requires_grad
    out = fastpool.max_pool2d(x.detach(), 2)
    assert out.grad_fn is None


def _opcheck_samples_1d_3d():
    def t(*shape, channels_last=False, dtype=torch.float32):
        x = torch.randn(*shape, dtype=dtype)
        if channels_last:
            x = x.movedim(1, -1).contiguous().movedim(-1, 1)
        return x.requires_grad_(dtype.is_floating_point)

    return [
        (t(2, 3, 17), [3], [2], [1], [1], False),
        (t(2, 3, 17, channels_last=True), [2], [], [0], [2], True),
        (t(3, 17), [4], [3], [2], [1], True),
        (t(2, 3, 5, 6, 7), [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], False),
        (t(2, 3, 5, 6, 7, channels_last=True, dtype=torch.float64), [3, 2, 3], [1, 2, 2], [1, 1, 0], [1, 1, 2], True),
        (t(3, 5, 6, 7), [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], False),
    ]


@pytest.mark.parametrize("sample", range(6))
def test_opcheck_1d_and_3d_ops(sample):
    x, k, s, p, d, ceil = _opcheck_samples_1d_3d()[sample]
    name = f"max_pool{len(k)}d"
    for op in (name + "_with_indices", name):
        torch.library.opcheck(getattr(torch.ops.fastpool, op).default, (x, k, s, p, d, ceil))
    out, idx = getattr(torch.ops.fastpool, name + "_with_indices")(x.detach(), k, s, p, d, ceil)
    grad = torch.randn_like(out).requires_grad_()
    torch.library.opcheck(getattr(torch.ops.fastpool, name + "_with_indices_backward").default,
                          (grad, x.detach(), k, s, p, d, ceil, idx))


@pytest.mark.parametrize("sample", range(12))
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_training_ops(sample, channels_last):
    # The ops autograd runs for the no-indices ops: with_offsets (values and
    # 1-byte taps) and the backward from the taps and the input's sizes
    # (channels_last only chooses grad_input's layout).
    x, k, s, p, d, ceil = (_opcheck_samples() + _opcheck_samples_1d_3d())[sample]
    x = x.detach()
    name = f"max_pool{len(k)}d"
    torch.library.opcheck(getattr(torch.ops.fastpool, name + "_with_offsets").default, (x, k, s, p, d, ceil))
    out, offsets = getattr(torch.ops.fastpool, name + "_with_offsets")(x, k, s, p, d, ceil)
    grad = torch.randn_like(out).requires_grad_()
    torch.library.opcheck(getattr(torch.ops.fastpool, name + "_offsets_backward").default,
                          (grad, offsets, list(x.shape), k, s, p, d, ceil, channels_last))


@pytest.mark.parametrize("dims,shape,output_size", [
    (1, (2, 3, 17), [5]), (2, (2, 3, 9, 7), [4, 3]), (2, (3, 8, 8), [1, 1]), (3, (2, 3, 5, 6, 7), [2, 3, 4])])
@pytest.mark.parametrize("channels_last", [False, True])
def test_opcheck_adaptive_training_ops(dims, shape, output_size, channels_last):
    x = torch.randn(shape)
    name = f"adaptive_max_pool{dims}d"
    torch.library.opcheck(getattr(torch.ops.fastpool, name + "_with_offsets").default, (x, output_size))
    out, offsets = getattr(torch.ops.fastpool, name + "_with_offsets")(x, output_size)
    grad = torch.randn_like(out).requires_grad_()
    torch.library.opcheck(getattr(torch.ops.fastpool, name + "_offsets_backward").default,
                          (grad, offsets, list(x.shape), channels_last))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_training_ops_refuse_mismatched_offsets(dims):
    name = f"max_pool{dims}d"
    x = torch.randn((2, 3) + (6, 7, 8)[:dims])
    k = [2] * dims
    out, offsets = getattr(torch.ops.fastpool, name + "_with_offsets")(x, k, [], [0] * dims, [1] * dims, False)
    backward = getattr(torch.ops.fastpool, name + "_offsets_backward")
    args = (list(x.shape), k, [], [0] * dims, [1] * dims, False, False)
    with pytest.raises(RuntimeError, match="offsets must be"):
        backward(out, offsets.int(), *args)
    with pytest.raises(RuntimeError, match="offsets must have size"):
        backward(out, offsets[:1], *args)
    with pytest.raises(RuntimeError, match="grad_output must have size"):
        backward(out[:1], offsets, *args)
    # Taps past the window (or the "no tap" mark) add nothing, never out of bounds.
    garbage = torch.full_like(offsets, 255)
    assert backward(torch.ones_like(out), garbage, *args).count_nonzero() == 0
    garbage = torch.randint_like(offsets, 2**dims, 255)  # past the 2^dims taps
    assert backward(torch.ones_like(out), garbage, *args).count_nonzero() == 0


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_training_ops_check_the_input_size(dims, device):
    # The offsets backward gets the input's sizes, not the input: they are
    # checked as the forward checks its input, on every device, before any kernel.
    x = torch.randn((2, 3) + (6, 7, 8)[:dims])
    k = [2] * dims
    out, offsets = getattr(torch.ops.fastpool, f"max_pool{dims}d_with_offsets")(x, k, [], [0] * dims, [1] * dims, False)
    out, offsets = out.to(device), offsets.to(device)
    backward = getattr(torch.ops.fastpool, f"max_pool{dims}d_offsets_backward")
    pooling = ([0] * dims, [1] * dims, False, False)
    with pytest.raises(RuntimeError, match="input_size must have"):
        backward(out, offsets, [3] + list(x.shape), k, [], *pooling)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        backward(out, offsets, list(x.shape[:2]) + [1] * dims, k, [], *pooling)
    with pytest.raises(RuntimeError, match="grad_output must have size"):  # sizes of another forward
        backward(out, offsets, list(x.shape[:2]) + [9] * dims, k, [], *pooling)
    if dims == 1:
        with pytest.raises(RuntimeError, match="'kernel_size' should contain one int"):
            backward(out, offsets, list(x.shape), [2, 2], [], *pooling)
    adaptive = getattr(torch.ops.fastpool, f"adaptive_max_pool{dims}d_offsets_backward")
    out, offsets = getattr(torch.ops.fastpool, f"adaptive_max_pool{dims}d_with_offsets")(x, [2] * dims)
    out, offsets = out.to(device), offsets.to(device)
    with pytest.raises(RuntimeError, match="input_size must have"):
        adaptive(out, offsets, list(x.shape) + [1], False)
    with pytest.raises(RuntimeError, match="grad_output must have size"):
        adaptive(out, offsets, [1] + list(x.shape[1:]), False)
    with pytest.raises(RuntimeError, match="non-zero size for non-batch dimensions"):
        adaptive(out, offsets, list(x.shape[:2]) + [0] * dims, False)
    assert adaptive(out, offsets, list(x.shape), False).shape == x.shape


class _Net1d3d(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pool1 = fastpool.MaxPool1d(3, 2, 1)
        self.pool3 = fastpool.MaxPool3d(2, ceil_mode=True)

    def forward(self, audio, volume):
        a, idx = fastpool.max_pool1d(self.pool1(audio.relu()), 2, return_indices=True)
        return a.sum() + self.pool3(volume).sum() + idx.sum() * 0


def test_torch_compile_and_export_1d_3d():
    net = _Net1d3d()
    audio, volume = torch.randn(2, 4, 33), torch.randn(2, 3, 5, 7, 6)
    compiled = torch.compile(net, fullgraph=True, backend="inductor")
    leaves = [t.clone().requires_grad_() for t in (audio, volume)]
    leaves_c = [t.clone().requires_grad_() for t in (audio, volume)]
    net(*leaves).backward()
    compiled(*leaves_c).backward()
    for a, b in zip(leaves, leaves_c):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
    exported = torch.export.export(net, (audio, volume))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert any("fastpool.max_pool1d" in t for t in targets) and any("fastpool.max_pool3d" in t for t in targets)
    torch.testing.assert_close(exported.module()(audio, volume), net(audio, volume), rtol=0, atol=0)


# ---- the eager calls' typed entry (csrc/eager_calls.cpp) ----

_EAGER_CALLS = [
    ("max_pool1d", lambda x, ri: fastpool.max_pool1d(x[:, :, 0], 3, 2, 1, return_indices=ri)),
    ("max_pool2d", lambda x, ri: fastpool.max_pool2d(x, (3, 2), [2], 1, 1, True, ri)),
    ("max_pool3d", lambda x, ri: fastpool.max_pool3d(x.unsqueeze(2), (1, 2, 2), return_indices=ri)),
    ("adaptive_max_pool1d", lambda x, ri: fastpool.adaptive_max_pool1d(x[:, :, 0], 3, ri)),
    ("adaptive_max_pool2d", lambda x, ri: fastpool.adaptive_max_pool2d(x, (3, 2), ri)),
    ("adaptive_max_pool3d", lambda x, ri: fastpool.adaptive_max_pool3d(x.unsqueeze(2), 2, ri)),
]


@pytest.mark.parametrize("name,call", _EAGER_CALLS)
@pytest.mark.parametrize("return_indices", [False, True])
def test_eager_calls_reach_dispatch_modes(name, call, return_indices):
    # The typed entry calls the op through the dispatcher, so torch_dispatch
    # modes (fake tensors, functionalization, tracing) see fastpool's op.
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    x = torch.randn(2, 3, 8, 6)
    with Record() as mode:
        got = call(x, return_indices)
    suffix = "_with_indices" if return_indices else ""
    assert f"fastpool.{name}{suffix}.default" in mode.ops, mode.ops
    _assert_all_identical(got, call(x, return_indices))


def _assert_all_identical(got, expected):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_identical(g, e)
    else:
        assert_identical(got, expected)


class _Recorded(torch.Tensor):
    """A tensor subclass with a __torch_function__ override that records calls."""
    calls = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.calls.append(func)
        return super().__torch_function__(func, types, args, kwargs or {})


@pytest.mark.parametrize("name,call", _EAGER_CALLS)
def test_torch_function_overrides_see_the_op(name, call):
    # An input with a __torch_function__ override takes torch.ops, which
    # honours it; so does a TorchFunctionMode.
    x = torch.randn(2, 3, 8, 6)
    _Recorded.calls.clear()
    got = call(x.as_subclass(_Recorded), False)
    assert any(f"fastpool.{name}" in str(f) for f in _Recorded.calls), _Recorded.calls
    assert type(got) is _Recorded
    assert_identical(got.as_subclass(torch.Tensor), call(x, False))

    from torch.overrides import TorchFunctionMode

    class Mode(TorchFunctionMode):
        seen = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.seen.append(func)
            return func(*args, **(kwargs or {}))

    with Mode() as mode:
        call(x, False)
    assert any(f"fastpool.{name}" in str(f) for f in mode.seen), mode.seen


@pytest.mark.parametrize("name,call", _EAGER_CALLS)
@pytest.mark.parametrize("return_indices", [False, True])
def test_eager_calls_equal_torch_ops_calls(name, call, return_indices, monkeypatch):
    # Values, indices and gradients through the typed entry and through
    # torch.ops (forced by having every call look compiled) are the same.
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64, requires_grad=True)
    eager = call(x, return_indices)
    out = eager[0] if return_indices else eager
    if return_indices:  # as torch's: integers, no gradient
        assert not eager[1].requires_grad and eager[1].grad_fn is None
    (grad,) = torch.autograd.grad(out.sum(), x)
    monkeypatch.setattr(fastpool.functional, "_eager_call", lambda input: False)
    ops = call(x, return_indices)
    out = ops[0] if return_indices else ops
    (ops_grad,) = torch.autograd.grad(out.sum(), x)
    _assert_all_identical(eager, ops)
    assert_identical(grad, ops_grad)
    torch.autograd.gradcheck(lambda t: call(t, False), (x,))


def test_compiled_autograd_runs_the_backward_ops():
    # An eager forward whose backward runs under compiled autograd.
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    pools = [lambda t: fastpool.max_pool2d(t, 3, 2, 1), lambda t: fastpool.max_pool2d(t, 2, return_indices=True)[0],
             lambda t: fastpool.adaptive_max_pool2d(t, 3)]
    for pool in pools:
        loss = pool(x * 2).square().sum()
        with torch._dynamo.compiled_autograd._enable(torch.compile(backend="eager")):
            loss.backward()
        got, x.grad = x.grad, None
        pool(x * 2).square().sum().backward()
        assert_identical(got, x.grad)
        x.grad = None
