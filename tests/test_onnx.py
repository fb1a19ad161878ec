"""ONNX export of fastpool modules with both of torch's exporters, run in
onnxruntime against torch.

Each model is a Conv followed by fastpool pooling and returns the conv output
too: convolution is not bit-exact across runtimes, pooling is, so the pooled
outputs from onnxruntime are compared bit for bit with torch's pooling of
onnxruntime's own conv output."""
import io
import subprocess
import sys

import pytest
import torch

import fastpool
from pool_cases import assert_identical

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# The legacy exporter is deprecated in torch; it is tested on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")

C = 3


class Net(torch.nn.Module):
    def __init__(self, dims, *pools):
        super().__init__()
        self.conv = getattr(torch.nn, f"Conv{dims}d")(2, C, 1)
        self.pools = torch.nn.ModuleList(pools)

    def forward(self, x):
        y = self.conv(x)
        outs = [y]
        for pool in self.pools:
            out = pool(y)
            outs += list(out) if isinstance(out, tuple) else [out]
        return tuple(outs)


def export(model, x, dynamo, **kwargs):
    model.eval()
    if dynamo:
        return fastpool.onnx.export(model, (x,), dynamo=True, verbose=False, **kwargs).model_proto
    f = io.BytesIO()
    torch.onnx.export(model, (x,), f, dynamo=False, input_names=["x"], **kwargs)
    return onnx.load_from_string(f.getvalue())


def run(proto, x):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(o) for o in session.run(None, {session.get_inputs()[0].name: x.numpy()})]


def check(model, x, dynamo, expected_op, **kwargs):
    """Exports, checks the graph holds only standard ONNX ops with `expected_op`
    among them, runs it, compares each pooling's outputs with torch's."""
    proto = export(model, x, dynamo, **kwargs)
    op_types = {(n.domain, n.op_type) for n in proto.graph.node}
    assert all(domain in ("", "ai.onnx") for domain, _ in op_types), op_types
    assert ("", expected_op) in op_types, op_types
    y, *got = run(proto, x)
    expected = []
    for pool in model.pools:
        # The torch module fastpool's subclasses: torch's own computation.
        out = type(pool).__mro__[1].forward(pool, y)
        expected += list(out) if isinstance(out, tuple) else [out]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert_identical(g, e)


def make_input(dims, spatial, batched):
    torch.manual_seed(0)
    return torch.randn(((2,) if batched else ()) + (2,) + tuple(spatial))


WINDOW_CASES = [  # dims, module arguments, spatial size
    (1, dict(kernel_size=3), (11,)),  # stride defaults to kernel_size ([] in the op)
    (1, dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True), (12,)),
    (1, dict(kernel_size=4, stride=3, padding=2, ceil_mode=True), (10,)),  # torch drops the last ceil window
    (2, dict(kernel_size=3, stride=2, padding=1), (9, 10)),
    (2, dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1), ceil_mode=True), (8, 9)),
    (2, dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), (5, 5)),  # drops the last ceil window
    (3, dict(kernel_size=2), (4, 6, 5)),
    (3, dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=(1, 0, 1), dilation=(1, 2, 1), ceil_mode=True),
     (5, 6, 7)),
]

ADAPTIVE_CASES = [  # dims, output_size, spatial size
    (1, 1, (7,)),
    (1, 4, (12,)),
    (2, 1, (5, 7)),
    (2, (3, 2), (6, 6)),
    (2, (None, 3), (5, 6)),  # None keeps the input size: a kernel of 1 there
    (3, 1, (3, 4, 5)),
    (3, (1, 2, 3), (4, 6, 6)),
]


# fastpool.functional reads a None output size from input.shape, which the
# legacy exporter's tracer turns into a tensor, and then refuses it as not an int.



def adaptive_op(output_size, dims, return_indices):
    # Global pooling without indices is GlobalMaxPool; everything else, MaxPool.
    sizes = output_size if isinstance(output_size, tuple) else (output_size,) * dims
    return "GlobalMaxPool" if sizes == (1,) * dims and not return_indices else "MaxPool"


# The legacy exporter is fast: every case, with and without indices, batched and not.
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "indices"])
@pytest.mark.parametrize("dims,args,spatial", WINDOW_CASES)
def test_max_pool_legacy(dims, args, spatial, return_indices, batched):
    pool = getattr(fastpool, f"MaxPool{dims}d")(**args, return_indices=return_indices)
    check(Net(dims, pool), make_input(dims, spatial, batched), False, "MaxPool")


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "indices"])
@pytest.mark.parametrize("dims,output_size,spatial", ADAPTIVE_CASES)
def test_adaptive_max_pool_legacy(dims, output_size, spatial, return_indices, batched):
    pool = getattr(fastpool, f"AdaptiveMaxPool{dims}d")(output_size, return_indices=return_indices)
    check(Net(dims, pool), make_input(dims, spatial, batched), False, adaptive_op(output_size, dims, return_indices))


# The dynamo exporter takes about a second a model: a few cases covering each
# translation (window with and without indices, GlobalMaxPool, adaptive as
# MaxPool), each dims, batched and unbatched.
@pytest.mark.parametrize("case,return_indices,batched", [
    (2, False, False),
    (4, True, True),
    (5, True, False),
    (7, True, True),
])
def test_max_pool_dynamo(case, return_indices, batched):
    dims, args, spatial = WINDOW_CASES[case]
    pool = getattr(fastpool, f"MaxPool{dims}d")(**args, return_indices=return_indices)
    check(Net(dims, pool), make_input(dims, spatial, batched), True, "MaxPool")


@pytest.mark.parametrize("case,return_indices,batched", [
    (0, True, True),
    (2, False, False),
    (4, True, False),
    (6, False, True),
])
def test_adaptive_max_pool_dynamo(case, return_indices, batched):
    dims, output_size, spatial = ADAPTIVE_CASES[case]
    pool = getattr(fastpool, f"AdaptiveMaxPool{dims}d")(output_size, return_indices=return_indices)
    check(Net(dims, pool), make_input(dims, spatial, batched), True, adaptive_op(output_size, dims, return_indices))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "indices"])
def test_adaptive_not_dividing_raises(dynamo, return_indices):
    # Windows of 1-2 and 2-3 rows: no fixed MaxPool window expresses them.
    model = Net(2, fastpool.AdaptiveMaxPool2d((4, 3), return_indices=return_indices))
    with pytest.raises(torch.onnx.errors.OnnxExporterError, match=r"output size \[4, 3\] for input size \[6, 6\].*"
                       "does not divide the input size.*ONNX cannot express that exactly"):
        export(model, make_input(2, (6, 6), True), dynamo)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_special_values(dynamo):
    # No conv in front: ties (the first wins), windows of -inf (the first tap,
    # padding never wins) and -0.0 against 0.0, as torch.
    inf = float("inf")
    x = torch.tensor([[[-inf, -inf, 2., 2., 0.0, -0.0, -0.0, 0.0, -inf, 5., 1., 1., -inf]]])
    for pool in (fastpool.MaxPool1d(2, return_indices=True), fastpool.MaxPool1d(3, 2, 1, return_indices=True)):
        got = run(export(pool, x, dynamo), x)
        expected = torch.nn.functional.max_pool1d(x, pool.kernel_size, pool.stride, pool.padding, return_indices=True)
        for g, e in zip(got, expected):
            assert_identical(g, e)


def test_dynamic_sizes_legacy():
    # Window pooling and GlobalMaxPool take any size; adaptive pooling as
    # MaxPool needs the input size at export time, and says so.
    model = Net(2, fastpool.MaxPool2d(3, 2, 1, return_indices=True), fastpool.AdaptiveMaxPool2d(1))
    axes = {"x": {0: "n", 2: "h", 3: "w"}}
    proto = export(model, make_input(2, (6, 6), True), False, dynamic_axes=axes)
    x = torch.randn(3, 2, 9, 11)
    y, *got = run(proto, x)
    for g, e in zip(got, [*torch.nn.functional.max_pool2d(y, 3, 2, 1, return_indices=True), y.amax((2, 3), True)]):
        assert_identical(g, e)
    with pytest.raises(torch.onnx.errors.OnnxExporterError, match="needs static spatial input sizes"):
        export(Net(2, fastpool.AdaptiveMaxPool2d(2)), make_input(2, (6, 6), True), False, dynamic_axes=axes)


def test_dynamic_sizes_dynamo():
    model = Net(2, fastpool.MaxPool2d(3, 2, 1, return_indices=True), fastpool.AdaptiveMaxPool2d(1))
    dim = torch.export.Dim.DYNAMIC
    proto = export(model, make_input(2, (6, 6), True), True, dynamic_shapes=({0: dim, 2: dim, 3: dim},))
    x = torch.randn(3, 2, 9, 11)
    y, *got = run(proto, x)
    for g, e in zip(got, [*torch.nn.functional.max_pool2d(y, 3, 2, 1, return_indices=True), y.amax((2, 3), True)]):
        assert_identical(g, e)


class SegNet(torch.nn.Module):
    """Conv, pooling with indices, then unpooling to the conv output's size:
    SegNet's encoder-decoder step. Returns the conv output and the unpooled."""

    def __init__(self, dims, pool_args):
        super().__init__()
        self.conv = getattr(torch.nn, f"Conv{dims}d")(2, C, 1)
        self.pool = getattr(fastpool, f"MaxPool{dims}d")(**pool_args, return_indices=True)
        unpool_args = {k: v for k, v in pool_args.items() if k in ("kernel_size", "stride", "padding")}
        self.unpool = getattr(fastpool, f"MaxUnpool{dims}d")(**unpool_args)
        self.dims = dims

    def forward(self, x):
        y = self.conv(x)
        return y, self.unpool(*self.pool(y), output_size=y.shape[-self.dims:])

    def reference(self, y):
        # torch's own pooling and unpooling (fastpool's modules subclass them).
        pooled = type(self.pool).__mro__[1].forward(self.pool, y)
        return type(self.unpool).__mro__[1].forward(self.unpool, *pooled, output_size=y.shape[-self.dims:])


def check_unpool(model, x, dynamo, **kwargs):
    proto = export(model.eval(), x, dynamo, **kwargs)
    op_types = {(n.domain, n.op_type) for n in proto.graph.node}
    assert all(domain in ("", "ai.onnx") for domain, _ in op_types), op_types
    assert ("", "MaxUnpool") in op_types, op_types
    y, got = run(proto, x)
    assert_identical(got, model.reference(y))
    return proto


UNPOOL_CASES = [  # dims, pooling arguments, spatial size
    (1, dict(kernel_size=3, stride=2, padding=1), (9,)),
    (2, dict(kernel_size=2), (6, 7)),  # odd width: output_size keeps the last column
    (2, dict(kernel_size=3, stride=(2, 1), padding=1, ceil_mode=True), (7, 6)),
    # Stride 1 with padding: the output is smaller than the pooled input (and
    # overlapping windows repeat indices).
    (2, dict(kernel_size=2, stride=1, padding=1), (5, 4)),
    (3, dict(kernel_size=2), (4, 5, 6)),
    (3, dict(kernel_size=(1, 3, 2), stride=(1, 2, 2), padding=(0, 1, 1)), (3, 6, 5)),
]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("dims,args,spatial", UNPOOL_CASES)
def test_max_unpool_legacy(dims, args, spatial, batched):
    check_unpool(SegNet(dims, args), make_input(dims, spatial, batched), False)


@pytest.mark.parametrize("case,batched", [(0, False), (1, True), (3, True), (5, False)])
def test_max_unpool_dynamo(case, batched):
    dims, args, spatial = UNPOOL_CASES[case]
    check_unpool(SegNet(dims, args), make_input(dims, spatial, batched), True)


def test_max_unpool_dynamic_batch_legacy():
    # The batch size may vary (the plane offsets come from the input's shape);
    # the spatial sizes are the op's, constants of the graph.
    model = SegNet(2, dict(kernel_size=2))
    proto = check_unpool(model, make_input(2, (6, 7), True), False, dynamic_axes={"x": {0: "n"}})
    x = torch.randn(3, 2, 6, 7)
    y, got = run(proto, x)
    assert_identical(got, model.reference(y))


def test_max_unpool_dynamic_sizes_dynamo():
    # torch.export keeps the output size symbolic: one graph for other sizes
    # (of the same parity, which torch's size checks guard on).
    model = SegNet(2, dict(kernel_size=2))
    dim = torch.export.Dim.DYNAMIC
    proto = check_unpool(model, make_input(2, (6, 8), True), True, dynamic_shapes=({0: dim, 2: dim, 3: dim},))
    x = torch.randn(3, 2, 10, 12)
    y, got = run(proto, x)
    assert_identical(got, model.reference(y))


def test_import_does_not_import_onnx():
    # onnx and onnxscript are optional: `import fastpool` registers the legacy
    # symbolics with torch alone.
    code = "import sys, fastpool; print(sorted(m for m in ('onnx', 'onnxscript', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
