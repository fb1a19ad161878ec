"""TorchScript (torch.jit.script, save/load, torch.jit.trace) of fastpool's
modules and functions, against torch's eager results bit for bit; and loading
saved programs in a process that has not imported fastpool."""
import copy
import os
import subprocess
import sys
import textwrap
from typing import List

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import fastpool
from pool_cases import assert_identical, make_input

# torch 2.13 deprecates TorchScript (still supported); its warning is expected here.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

MODULES = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
GRAD_DTYPES = (torch.float32, torch.float64)
LAYOUTS = ["contiguous", "channels_last"]
SPATIAL = (11, 9, 6)  # input sizes; the 1-d, 2-d, 3-d cases take the first 1, 2, 3


def module_args(name, dims):
    # Overlapping windows, padding, dilation and ceil_mode; adaptive sizes
    # that do not divide the input's.
    if name.startswith("MaxPool"):
        return dict(kernel_size=(3, 2, 2)[:dims], stride=(2, 1, 2)[:dims], padding=(1, 0, 1)[:dims],
                    dilation=(1, 2, 1)[:dims], ceil_mode=True)
    return dict(output_size=(4, 3, 2)[:dims])


def inputs(dims, seed=0):
    """Every dtype and layout, batched and not, with NaN, ±inf and ±0."""
    for dtype in DTYPES:
        for layout in LAYOUTS:
            for batch in (2, None):
                seed += 1
                yield make_input(batch, 3, SPATIAL[:dims], dtype, layout, seed, "specials")


def as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def calls_fastpool(scripted):
    # Guards against comparing torch with torch: the compiled code must run
    # fastpool's ops (inlined_graph includes the functions it calls).
    return "fastpool::" in str(scripted.inlined_graph)


def torch_values(module, x):
    # torch's no-grad max_pool1d without indices returns a contiguous output
    # for an N,L,C input; fastpool keeps N,L,C as torch does with indices.
    if isinstance(module, torch.nn.MaxPool1d) and not module.return_indices:
        module = copy.copy(module)
        module.return_indices = True
        return module(x)[:1]
    return as_tuple(module(x))


def input_grad(fn, x):
    """d/dx of sum(values * w), w fixed, so each gradient entry is a distinct sum."""
    leaf = x.detach().requires_grad_()
    values = as_tuple(fn(leaf))[0]
    weights = torch.randn(values.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (values * weights.to(values.dtype)).sum().backward()
    return leaf.grad


@pytest.mark.parametrize("return_indices", [False, True], ids=["values", "indices"])
@pytest.mark.parametrize("name", MODULES)
def test_scripted_and_reloaded_module_match_torch(name, return_indices, tmp_path):
    dims = int(name[-2])
    ours = getattr(fastpool, name)(return_indices=return_indices, **module_args(name, dims))
    theirs = getattr(torch.nn, name)(return_indices=return_indices, **module_args(name, dims))
    scripted = torch.jit.script(ours)
    torch.jit.save(scripted, tmp_path / "pool.pt")
    loaded = torch.jit.load(tmp_path / "pool.pt")
    assert calls_fastpool(scripted) and calls_fastpool(loaded)
    for x in inputs(dims):
        with torch.no_grad():
            expected = torch_values(theirs, x)
            for module in (ours, scripted, loaded):
                got = as_tuple(module(x))
                assert len(got) == (2 if return_indices else 1)
                for g, e in zip(got, expected):
                    assert_identical(g, e)
        if x.dtype in GRAD_DTYPES:
            expected_grad = input_grad(theirs, x)
            for module in (ours, scripted, loaded):
                assert_identical(input_grad(module, x), expected_grad)


@pytest.mark.parametrize("name", [n for n in fastpool.functional.__all__ if "unpool" not in n])  # no return_indices
def test_scripting_a_function_itself_says_to_script_a_caller(name):
    # Its return type depends on return_indices, which only a call fixes.
    with pytest.raises(RuntimeError, match=f"fastpool.{name} returns .* depending on return_indices"):
        torch.jit.script(getattr(fastpool, name))


def functional_calls(pool):
    """Every function of `pool` (fastpool or torch.nn.functional), with and
    without indices, in the spellings TorchScript accepts: ints, lists,
    tuples, stride=None, positional and keyword arguments."""
    def calls(x1: Tensor, x2: Tensor, x3: Tensor) -> List[Tensor]:
        a1, i1 = pool.max_pool1d(x1, 3, 2, 1, 1, True, True)
        b1 = pool.max_pool1d(x1, [2], None, dilation=2)
        a2, i2 = pool.max_pool2d(x2, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True,
                                 return_indices=True)
        b2 = pool.max_pool2d(x2, 2)
        a3, i3 = pool.max_pool3d(x3, 2, 1, 1, 2, False, True)
        b3 = pool.max_pool3d(x3, (3, 2, 2), (2, 1, 2), (1, 0, 1), ceil_mode=True, return_indices=False)
        c1, j1 = pool.adaptive_max_pool1d(x1, 4, True)
        d1 = pool.adaptive_max_pool1d(x1, [5])
        c2, j2 = pool.adaptive_max_pool2d(x2, (4, 3), return_indices=True)
        d2 = pool.adaptive_max_pool2d(x2, 1)
        c3, j3 = pool.adaptive_max_pool3d(x3, 2, True)
        d3 = pool.adaptive_max_pool3d(x3, (4, 3, 2), False)
        return [a1, i1, b1, a2, i2, b2, a3, i3, b3, c1, j1, d1, c2, j2, d2, c3, j3, d3]
    return calls


@pytest.fixture(scope="module")
def scripted_calls():
    scripted = torch.jit.script(functional_calls(fastpool))
    assert calls_fastpool(scripted)
    return scripted


def float_outputs_loss(outputs):
    """A scalar through every value output (indices are int64), each weighted."""
    gen = torch.Generator().manual_seed(2)
    return sum((o * torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype)).sum()
               for o in outputs if o.is_floating_point())


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_scripted_functions_match_torch(scripted_calls, dtype, layout):
    xs = [make_input(2, 3, SPATIAL[:dims], dtype, layout, dims, "specials") for dims in (1, 2, 3)]
    # Under autograd (torch's 1-d values-only path then keeps N,L,C, as fastpool does).
    results = {}
    for name, fn in [("torch", functional_calls(F)), ("eager", functional_calls(fastpool)),
                     ("scripted", scripted_calls)]:
        leaves = [x.detach().requires_grad_() for x in xs]
        outputs = fn(*leaves)
        grads = torch.autograd.grad(float_outputs_loss(outputs), leaves) if dtype in GRAD_DTYPES else ()
        results[name] = [o.detach() for o in outputs], grads
    expected_outputs, expected_grads = results.pop("torch")
    assert len(expected_outputs) == 18
    for outputs, grads in results.values():
        for got, expected in zip(outputs, expected_outputs, strict=True):
            assert_identical(got, expected)
        for got, expected in zip(grads, expected_grads, strict=True):
            assert_identical(got, expected)


def test_traced_functions_match_torch(tmp_path):
    xs = [make_input(2, 3, SPATIAL[:dims], torch.float32, "channels_last", dims, "specials") for dims in (1, 2, 3)]
    # strict=False: the traced function returns a list.
    traced = torch.jit.trace(functional_calls(fastpool), xs, strict=False)
    torch.jit.save(traced, str(tmp_path / "traced.pt"))  # a traced function's save takes only str
    loaded = torch.jit.load(tmp_path / "traced.pt")
    assert calls_fastpool(traced) and calls_fastpool(loaded)
    # Other values than the trace saw (same shapes: the trace fixes them),
    # under autograd (where torch's 1-d values-only output keeps N,L,C too).
    xs = [make_input(2, 3, SPATIAL[:dims], torch.float32, "channels_last", dims + 10, "ties").requires_grad_()
          for dims in (1, 2, 3)]
    expected = functional_calls(F)(*xs)
    for fn in (traced, loaded):
        for got, e in zip(fn(*xs), expected, strict=True):
            assert_identical(got.detach(), e.detach())


class _Model(torch.nn.Module):
    """Layers before and after the pooling, so gradients reach parameters."""
    def __init__(self, pool):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.pool = pool.MaxPool2d(3, 2, 1)
        self.head = pool.AdaptiveMaxPool2d((2, 3), return_indices=True)
        self.linear = torch.nn.Linear(6 * 2 * 3, 4)

    def forward(self, x):
        y = self.pool(torch.relu(self.conv(x)))
        z, indices = self.head(y)
        return self.linear(z.flatten(1)), indices


@pytest.mark.parametrize("dtype", GRAD_DTYPES, ids=str)
def test_saved_scripted_model_trains_like_torch(dtype, tmp_path):
    torch.manual_seed(0)
    theirs = _Model(torch.nn).to(dtype)
    ours = _Model(fastpool).to(dtype)
    ours.load_state_dict(theirs.state_dict())
    torch.jit.save(torch.jit.script(ours), tmp_path / "model.pt")
    loaded = torch.jit.load(tmp_path / "model.pt")
    assert calls_fastpool(loaded)
    x = torch.randn(2, 3, 15, 13, dtype=dtype).contiguous(memory_format=torch.channels_last)
    results = []
    for model in (theirs, loaded):
        out, indices = model(x)
        out.square().sum().backward()
        results.append([out.detach(), indices] + [p.grad for p in model.parameters()])
    for got, expected in zip(results[1], results[0], strict=True):
        assert_identical(got, expected)


def test_none_in_adaptive_output_size_scripts_as_torchs_does():
    # Eager: None keeps the input's size. TorchScript types output_size as
    # int[2], so torch's module with None does not script; neither does ours.
    x = torch.randn(2, 3, 7, 5)
    assert_identical(fastpool.AdaptiveMaxPool2d((None, 2))(x), torch.nn.AdaptiveMaxPool2d((None, 2))(x))
    with pytest.raises(RuntimeError, match="output_size") as theirs:
        torch.jit.script(torch.nn.AdaptiveMaxPool2d((None, 2)))
    with pytest.raises(type(theirs.value), match="output_size"):
        torch.jit.script(fastpool.AdaptiveMaxPool2d((None, 2)))


_LOAD_WITHOUT_THEN_WITH_FASTPOOL = textwrap.dedent("""
    import sys
    import torch
    assert "fastpool" not in sys.modules
    export_path, script_path, x_path, out_path = sys.argv[1:]
    for name, load in [("export", torch.export.load), ("script", torch.jit.load)]:
        try:
            load(export_path if name == "export" else script_path)
            print(name, "loaded without fastpool")
        except Exception as e:
            print(f"{name} failed: {type(e).__name__}: " + str(e).replace(chr(10), " "))
    import fastpool
    x = torch.load(x_path)
    outputs = [torch.export.load(export_path).module()(x), torch.jit.load(script_path)(x)]
    torch.save(outputs, out_path)
""")


def test_saved_programs_load_in_a_fresh_process_after_import_fastpool(tmp_path):
    # The archives name the ops (fastpool::max_pool2d); a process that loads
    # them needs the ops registered, i.e. `import fastpool`, first.
    model = _Model(fastpool).eval()
    x = torch.randn(2, 3, 15, 13)
    paths = {name: str(tmp_path / name) for name in ("model.pt2", "model.pt", "x.pt", "out.pt")}
    torch.export.save(torch.export.export(model, (x,)), paths["model.pt2"])
    torch.jit.save(torch.jit.script(model), paths["model.pt"])
    torch.save(x, paths["x.pt"])
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(fastpool.__file__))
    env["PYTHONPATH"] = os.pathsep.join([package_root] + [p for p in [env.get("PYTHONPATH")] if p])
    run = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_THEN_WITH_FASTPOOL, *paths.values()],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    # What the user sees without fastpool: torch.export.load raises a generic
    # RuntimeError and logs the op it could not resolve; torch.jit.load names it.
    assert lines[0].startswith("export failed: RuntimeError: We ran into an error when deserializing"), lines
    assert "We failed to resolve torch.ops.fastpool.max_pool2d.default to an operator" in run.stderr
    assert lines[1].startswith("script failed: RuntimeError:") and "Unknown builtin op: fastpool::" in lines[1], lines
    with torch.no_grad():
        expected = model(x)
    for got in torch.load(paths["out.pt"]):
        for g, e in zip(got, expected, strict=True):
            assert_identical(g, e)
