"""Timing one case: fastpool, its peers and the stream roofline, side by side.

Every implementation of a case is timed with torch.utils.benchmark's
``blocked_autorange`` in interleaved rounds (fastpool, roofline, peer 1, ...,
then again), so slow drift of a shared machine hits all of them alike; the
reported time is the median over rounds of each round's median, and ratios
are taken per round and then their median.

Stream roofline of a case: the time of ``r.amax(); w.fill_(0)`` (int32) where ``r``
holds exactly the bytes the kernel must read once and ``w`` the bytes it must
write once, timed together so the working set matches the kernel's.
% of roofline = roofline time / kernel time.
"""
from __future__ import annotations

import contextlib
import gc
import os
import statistics
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from .cases import OpSpec, Shape

LAYOUT_NAMES = {1: {"nchw": "NCL"}, 2: {"nchw": "NCHW", "nhwc": "NHWC"}, 3: {"nchw": "NCDHW", "nhwc": "NDHWC"}}


def layout_name(op: OpSpec, layout: str) -> Optional[str]:
    return LAYOUT_NAMES[op.spatial].get(layout)


@dataclass
class Impl:
    name: str  # "fastpool", "roofline", "torch", "torch_cl", "onednn", "inductor", "fastpool[avx2]" ...
    fn: Optional[Callable[[], object]]
    env: Dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None
    note: Optional[str] = None
    setup_s: Optional[float] = None  # e.g. compile time
    rounds: List[float] = field(default_factory=list)  # per-round medians, seconds
    iqr: List[float] = field(default_factory=list)


def _dtype(name):
    import torch

    return getattr(torch, name)


def _tup(v, n):
    if isinstance(v, (list, tuple)):
        return list(v) if len(v) == n else list(v) * n
    return [v] * n


def _memory_format(op: OpSpec, layout: str):
    import torch

    if layout == "nchw":
        return torch.contiguous_format
    return torch.channels_last if op.spatial == 2 else torch.channels_last_3d


def torch_functional(op: OpSpec):
    import torch.nn.functional as F

    return getattr(F, op.name)


def pool_params(op: OpSpec, params: dict) -> dict:
    """An unpool case's encoder pool (torch.nn.functional.max_pool*d's keywords): the same window."""
    return {k: params[k] for k in ("kernel_size", "stride", "padding") if k in params}


def unpool_input_shape(op: OpSpec, shape: Shape):
    """The unpool's input (pooled map and indices) shape: ``shape.shape`` pooled by the encoder's pool."""
    import torch
    import torch.nn.functional as F

    pool = getattr(F, op.name.replace("max_unpool", "max_pool"))
    return tuple(pool(torch.empty(shape.shape, device="meta"), **pool_params(op, shape.kwargs)).shape)


def output_numel(op: OpSpec, shape: Shape) -> int:
    import torch

    if op.kind == "unpool":
        pooled = unpool_input_shape(op, shape)
        y = torch_functional(op)(torch.empty(pooled, device="meta"),
                                 torch.zeros(pooled, dtype=torch.int64, device="meta"), **shape.kwargs)
        return y.numel()
    y = torch_functional(op)(torch.empty(shape.shape, device="meta"), **shape.kwargs)
    return y.numel()


def tap_bytes(op: OpSpec, shape: Shape) -> int:
    """Bytes per output of the argmax that training saves (csrc/pool_shape.h)."""
    if op.name.startswith("adaptive"):
        return 4
    if op.kind == "fractional":
        return 8  # the forward returns int64 indices, which autograd keeps
    k = shape.kwargs["kernel_size"]
    taps = 1
    for v in ([k] * op.spatial if isinstance(k, int) else k):
        taps *= v
    return 1 if taps <= 255 else 4


def bytes_moved(op: OpSpec, shape: Shape, dtype: str, direction: str) -> Dict[str, int]:
    """Bytes that must be read once and written once (the roofline's traffic)."""
    import torch

    esz = torch.empty((), dtype=_dtype(dtype)).element_size()
    if op.kind == "unpool":
        # input: the pooled values and their int64 indices; output: the unpooled map (zeros but at
        # the indices), 4x larger for a 2x2 pool. train adds the backward: read grad_output, write
        # grad_input (the indices counted once, as a fused step would read them).
        n_in = 1
        for d in unpool_input_shape(op, shape):
            n_in *= d
        n_out = output_numel(op, shape)
        fwd = {"read": n_in * esz + n_in * 8, "write": n_out * esz}
        if direction == "fwd":
            return fwd
        if direction == "train":
            return {"read": fwd["read"] + n_out * esz, "write": fwd["write"] + n_in * esz}
        raise ValueError(f"{direction} does not apply to {op.name}")
    n_in = 1
    for d in shape.shape:
        n_in *= d
    n_out = output_numel(op, shape)
    i_in, o_out, idx = n_in * esz, n_out * esz, n_out * 8
    if direction == "fwd":
        return {"read": i_in, "write": o_out}
    if direction == "fwd_idx":
        return {"read": i_in, "write": o_out + idx}
    if direction == "bwd":
        return {"read": o_out + idx, "write": i_in}
    if direction == "train":
        # forward (read x, write y and the argmax's tap in its window: 1 byte up
        # to 255 taps, else 4) + backward (read grad_y and the taps, write grad_x).
        taps = n_out * tap_bytes(op, shape)
        return {"read": i_in + o_out + taps, "write": o_out + taps + i_in}
    raise ValueError(direction)


class Env:
    """Sets environment variables for one implementation's measurement."""

    def __init__(self, env):
        self.env, self.saved = env, {}

    def __enter__(self):
        for k, v in self.env.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *a):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def time_fn(fn, min_run_time: float, threads: int):
    from torch.utils import benchmark

    t = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    m = t.blocked_autorange(min_run_time=min_run_time)
    return m.median, m.iqr


def _randn(shape, dtype, device, seed=0):
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float32).to(device=device, dtype=_dtype(dtype))


def _safe(build):
    """Runs build() -> fn; returns (fn, error string)."""
    try:
        fn = build()
        fn()  # warm-up and a check that it runs
        fn()
        return fn, None
    except Exception as e:  # noqa: BLE001  (a peer that cannot run this case is reported, not fatal)
        return None, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


class FastpoolAPI:
    """Where fastpool's functions come from: the real package, or torch (stand-in, development only)."""

    def __init__(self, standin: bool):
        self.standin = standin
        self.module = None
        self.import_error = None
        if not standin:
            try:
                import fastpool

                self.module = fastpool
            except Exception as e:  # noqa: BLE001
                self.import_error = f"{type(e).__name__}: {e}"

    def functional(self, op: OpSpec):
        if self.standin:
            return torch_functional(op)
        return getattr(self.module, op.name, None) if self.module is not None else None

    def backward_op(self, op: OpSpec):
        import torch

        if op.backward_op is None:
            return None
        if self.standin:
            return getattr(torch.ops.aten, op.backward_op)
        try:
            return getattr(torch.ops.fastpool, op.backward_op)
        except (AttributeError, RuntimeError):
            return None

    def missing_reason(self, op: OpSpec) -> Optional[str]:
        if self.standin:
            return None
        if self.module is None:
            return f"fastpool does not import ({self.import_error})"
        if self.functional(op) is None:
            return f"fastpool.{op.name} does not exist in this build"
        return None


def _bwd_args(op: OpSpec, params: dict, g, x, idx):
    if op.kind == "adaptive":
        return (g, x, idx)
    if op.kind == "fractional":
        n = op.spatial
        return (g, x, _tup(params["kernel_size"], n), list(g.shape[-n:]), idx)
    n = op.spatial
    k = _tup(params["kernel_size"], n)
    s = _tup(params.get("stride") or params["kernel_size"], n)
    return (g, x, k, s, _tup(params.get("padding", 0), n), _tup(params.get("dilation", 1), n),
            bool(params.get("ceil_mode", False)), idx)


def _onednn_args(op: OpSpec, params: dict):
    n = op.spatial
    k = _tup(params["kernel_size"], n)
    s = _tup(params.get("stride") or params["kernel_size"], n)
    return (k, s, _tup(params.get("padding", 0), n), _tup(params.get("dilation", 1), n),
            bool(params.get("ceil_mode", False)))


# torch CUDA's backward of these ops adds with atomicAdd, in no fixed order, so its bits vary from run to run;
# fastpool's sums follow torch CPU's order. On CUDA their gradients are checked against torch CPU on the same
# data where torch CUDA's differ: in the dtype for fractional pooling (fastpool CUDA rounds after every add, as
# torch CPU), else in float32 rounded once (fastpool CUDA sums half types in float).
CUDA_ATOMIC_BACKWARD = {"max_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
                        "fractional_max_pool2d", "fractional_max_pool3d"}


def _on_cpu(value, dtype=None):
    import torch
    if not isinstance(value, torch.Tensor):
        return value
    value = value.detach().cpu()
    return value.to(dtype) if dtype is not None and value.is_floating_point() else value


def build_impls(api: FastpoolAPI, op: OpSpec, shape: Shape, dtype: str, layout: str, direction: str,
                device: str, peers, isas=(), nbytes=None, compile_mode: Optional[str] = None):
    """Returns (impls, check, check_detail) for one case. impls[0] is fastpool, then its ISA variants,
    then the roofline, then the peers. check: fastpool's result equals torch's bit for bit."""
    import time

    import torch

    if not op.applies(direction):
        raise ValueError(f"{direction} does not apply to {op.name}")
    params = shape.kwargs
    if op.kind == "fractional":  # the same windows in every implementation, so that results compare
        batch = shape.shape[0] if len(shape.shape) == op.spatial + 2 else 1
        params["_random_samples"] = torch.rand(batch, shape.shape[-op.spatial - 1], op.spatial,
                                               generator=torch.Generator().manual_seed(3)).to(_dtype(dtype))
        if device != "cpu":
            params["_random_samples"] = params["_random_samples"].to(device)
    tfn = torch_functional(op)
    ffn = api.functional(op)
    fmt = _memory_format(op, layout)
    indices = {}  # unpool: id(an input's values) -> its indices, in the same layout
    if op.kind == "unpool":
        # The unpool's input: a random map of the encoder's shape pooled by torch (return_indices=True),
        # in the case's layout; every implementation unpools these same values and indices, each in its
        # own layout (torch NCHW, torch channels_last).
        pool = getattr(torch.nn.functional, op.name.replace("max_unpool", "max_pool"))
        with torch.no_grad():
            x, idx = pool(_randn(shape.shape, dtype, device).contiguous(memory_format=fmt),
                          **pool_params(op, params), return_indices=True)
        x0 = x.contiguous()
        xs = {"torch": x0, "torch_cl": x.contiguous(memory_format=_memory_format(op, "nhwc"))}
        indices[id(xs["torch"])] = idx.contiguous()
        indices[id(xs["torch_cl"])] = idx.contiguous(memory_format=_memory_format(op, "nhwc"))
        indices[id(x)] = idx
    else:
        x0 = _randn(shape.shape, dtype, device)
        x = x0.contiguous(memory_format=fmt)
        xs = {"torch": x0.contiguous(), "torch_cl": x0.contiguous(memory_format=_memory_format(op, "nhwc"))
              if op.spatial > 1 else None}
    impls: List[Impl] = []
    check = None

    def args_of(t):
        """The op's tensor arguments for input t: (t,), or (values, indices) for an unpool."""
        return (t, indices[id(t)]) if op.kind == "unpool" else (t,)

    def forward_fn(f, t, with_idx):
        args = args_of(t)
        if with_idx:
            return lambda: f(*args, **params, return_indices=True)
        return lambda: f(*args, **params)

    def train_fn(f, t, g):
        rest = args_of(t)[1:]  # an unpool's indices: no gradient
        t = t.detach().requires_grad_(True)

        def step():
            t.grad = None
            f(t, *rest, **params).backward(g)

        return step

    bwd_inputs = {}

    def bwd_data(t):
        key = id(t)
        if key not in bwd_inputs:
            if op.kind == "unpool":
                y, idx = tfn(*args_of(t), **params), None
            else:
                y, idx = tfn(t, **params, return_indices=True)
            g = _randn(tuple(y.shape), dtype, device, seed=1).contiguous(
                memory_format=torch.channels_last if (op.spatial == 2 and y.is_contiguous(
                    memory_format=torch.channels_last) and not y.is_contiguous()) else torch.contiguous_format)
            if op.spatial == 3 and y.is_contiguous(memory_format=torch.channels_last_3d) and not y.is_contiguous():
                g = g.contiguous(memory_format=torch.channels_last_3d)
            bwd_inputs[key] = (y, idx, g)
        return bwd_inputs[key]

    def make(name, f, t, aten_bwd=None, env=None):
        """The direction's callable for functional f on input t (aten_bwd: explicit backward op)."""
        if direction == "fwd":
            return forward_fn(f, t, False)
        if direction == "fwd_idx":
            return forward_fn(f, t, True)
        if direction == "train":
            _, _, g = bwd_data(t)
            return train_fn(f, t, g)
        if direction == "bwd":
            y, idx, g = bwd_data(t)
            if name.startswith("fastpool"):
                with Env(env or {}):
                    _, idx = f(t, **params, return_indices=True)
            if aten_bwd is None:  # no explicit backward op: time autograd.grad on a retained graph
                tt = t.detach().requires_grad_(True)
                yy, _ = f(tt, **params, return_indices=True)
                return lambda: torch.autograd.grad(yy, tt, g, retain_graph=True)
            args = _bwd_args(op, params, g, t, idx)
            return lambda: aten_bwd(*args)
        raise ValueError(direction)

    # fastpool (and forced-ISA variants)
    fbwd = api.backward_op(op)
    variants = [("fastpool", {})] + [(f"fastpool[{isa}]", {"FASTPOOL_CPU_ISA": isa}) for isa in isas]
    for name, env in variants:
        with Env(env):
            fn, err = _safe(lambda: make(name, ffn, x, fbwd, env))
        impls.append(Impl(name, fn, env=env, error=err))

    # roofline
    rb, wb = nbytes["read"], nbytes["write"]
    # int32 so the reduction is bound by reading memory, not by float max's NaN handling
    # (float32 amax reads at about half the speed of int32 amax or sum here).
    r = torch.randint(-2**31, 2**31 - 1, ((rb + 3) // 4,), dtype=torch.int32, device=device)
    w = torch.empty((wb + 3) // 4, dtype=torch.int32, device=device)

    def roofline():
        r.amax()
        w.fill_(0)

    fn, err = _safe(lambda: roofline)
    impls.append(Impl("roofline", fn, error=err, note=f"read {rb} B (amax) + write {wb} B (fill_)"))

    aten_bwd = getattr(torch.ops.aten, op.backward_op) if op.backward_op else None
    for peer in peers:
        if peer in ("torch", "torch_cl"):
            t = xs[peer]
            if t is None:
                continue  # no channels_last layout for a 1-D op
            fn, err = _safe(lambda: make(peer, tfn, t, aten_bwd))
            impls.append(Impl(peer, fn, error=err))
        elif peer == "onednn":
            if device != "cpu" or op.onednn_fn is None or direction != "fwd":
                continue
            if dtype not in ("float32", "bfloat16"):
                impls.append(Impl(peer, None, note=f"oneDNN pooling in torch takes fp32/bf16, not {dtype}"))
                continue
            if not torch.backends.mkldnn.is_available():
                impls.append(Impl(peer, None, note="torch built without mkldnn"))
                continue
            ofn = getattr(torch, op.onednn_fn)
            oargs = _onednn_args(op, params)

            def build_onednn():
                xm = x0.contiguous().to_mkldnn()
                return lambda: ofn(xm, *oargs)

            fn, err = _safe(build_onednn)
            impls.append(Impl(peer, fn, error=err, note="mkldnn tensor input and output (no conversion timed)"))
        elif peer == "inductor":
            if direction == "bwd" and aten_bwd is None:
                impls.append(Impl(peer, None, note="no explicit aten backward op to compile for this op"))
                continue
            t0 = time.perf_counter()

            def build_compiled():
                import torch._dynamo

                torch._dynamo.reset()  # a fresh graph per case: no recompile limit, no dynamic shapes
                if direction == "bwd":
                    y, idx, g = bwd_data(x)
                    args = _bwd_args(op, params, g, x, idx)
                    cf = torch.compile(lambda *a: aten_bwd(*a), dynamic=False, mode=compile_mode)
                    return lambda: cf(*args)
                cfn = torch.compile(lambda *a, **kw: tfn(*a, **kw), dynamic=False, mode=compile_mode)
                return make(peer, cfn, x, aten_bwd)

            fn, err = _safe(build_compiled)
            impls.append(Impl(peer, fn, error=err, setup_s=time.perf_counter() - t0,
                              note=f"torch.compile, {layout_name(op, layout)} input"))
        else:
            raise ValueError(f"unknown peer {peer!r}")

    # correctness check of fastpool against torch in the same layout (not timed)
    fp = impls[0]
    check_detail = None
    got = ref = None
    # The dtype torch CPU computes a CUDA-atomic op's reference gradient in (None: the case's own).
    half = _dtype(dtype) in (torch.float16, torch.bfloat16)
    cpu_ref_dtype = torch.float32 if half and op.kind != "fractional" else None

    def cpu_reference(compute):
        """Where torch CUDA adds atomically and differs: torch CPU's result on the same data."""
        nonlocal check, check_detail
        if check is not False or device == "cpu" or op.name not in CUDA_ATOMIC_BACKWARD:
            return
        cpu_ref = compute().to(got.dtype)
        diff = (got.double() - ref.double()).abs()
        check = bool(torch.equal(got.cpu(), cpu_ref))
        check_detail = {"reference": "torch CPU (torch CUDA adds atomically, in no fixed order)",
                        "torch_cuda_max_abs_diff": float(diff.max()), "torch_cuda_n_differ": int((diff > 0).sum())}

    if fp.fn is not None and direction == "train":
        try:
            _, _, g = bwd_data(x)
            grads = []
            rest = args_of(x)[1:]
            for f in (ffn, tfn):
                t = x.detach().requires_grad_(True)
                f(t, *rest, **params).backward(g)
                grads.append(t.grad)
            got, ref = grads
            check = bool(torch.equal(*grads))

            def train_on_cpu():
                t = _on_cpu(x, cpu_ref_dtype).requires_grad_(True)
                cpu_params = {k: _on_cpu(v, cpu_ref_dtype) for k, v in params.items()}
                tfn(t, *[_on_cpu(r) for r in rest], **cpu_params).backward(_on_cpu(g, cpu_ref_dtype))
                return t.grad

            cpu_reference(train_on_cpu)
        except Exception as e:  # noqa: BLE001
            check = f"error: {e}"
    if fp.fn is not None and direction in ("fwd", "fwd_idx", "bwd"):
        try:
            with torch.no_grad():
                if direction == "bwd":
                    y, idx, g = bwd_data(x)
                    bargs = _bwd_args(op, params, g, x, idx)
                    ref = aten_bwd(*bargs) if aten_bwd else None
                    got = fp.fn()
                    got = got[0] if isinstance(got, tuple) else got
                    if ref is not None:
                        check = bool(torch.equal(got, ref))  # fastpool promises torch's exact results
                        cpu_reference(lambda: aten_bwd(*[_on_cpu(a, cpu_ref_dtype) for a in bargs]))
                else:
                    ref = tfn(*args_of(x), **params)
                    got = ffn(*args_of(x), **params)
                    check = bool(torch.equal(got, ref))
                if check is False and check_detail is None:
                    diff = (got.double() - ref.double()).abs()
                    check_detail = {"max_abs_diff": float(diff.max()), "n_differ": int((diff > 0).sum()),
                                    "numel": got.numel(),
                                    "allclose_default": bool(torch.allclose(got.float(), ref.float()))}
        except Exception as e:  # noqa: BLE001
            check = f"error: {e}"
    return impls, check, check_detail


def measure_case(impls: List[Impl], rounds: int, min_run_time: float, threads: int, tick=None):
    """Interleaved rounds of blocked_autorange over all impls; fills impl.rounds."""
    for _ in range(rounds):
        for im in impls:
            if im.fn is None:
                if tick:
                    tick()
                continue
            try:
                with Env(im.env):
                    med, iqr = time_fn(im.fn, min_run_time, threads)
            except Exception as e:  # noqa: BLE001  (reported in the output, the suite goes on)
                im.error, im.fn = f"{type(e).__name__}: {e}", None
                im.rounds, im.iqr = [], []
            else:
                im.rounds.append(med)
                im.iqr.append(iqr)
            if tick:
                tick()


def summarize(impls: List[Impl]) -> Dict[str, dict]:
    """Per impl: median time, spread over rounds, % of roofline, fastpool's speed-up over it."""
    by = {im.name: im for im in impls}
    fp, roof = by.get("fastpool"), by.get("roofline")
    out = {}
    for im in impls:
        d = {"median_s": None, "rounds_s": list(im.rounds)}
        if im.error:
            d["error"] = im.error
        if im.note:
            d["note"] = im.note
        if im.setup_s is not None:
            d["setup_s"] = round(im.setup_s, 3)
        if im.env:
            d["env"] = dict(im.env)
        if im.rounds:
            d["median_s"] = statistics.median(im.rounds)
            d["iqr_s"] = statistics.median(im.iqr)
            d["spread"] = (max(im.rounds) - min(im.rounds)) / d["median_s"] if len(im.rounds) > 1 else 0.0
            if roof is not None and roof.rounds and im.name != "roofline":
                d["pct_roofline"] = 100.0 * statistics.median(
                    [r / t for r, t in zip(roof.rounds, im.rounds)])
            if fp is not None and fp.rounds and im.name not in ("fastpool", "roofline"):
                d["speedup"] = statistics.median([t / f for t, f in zip(im.rounds, fp.rounds)])
        out[im.name] = d
    return out


def copy_bandwidth(device: str, threads: int, nbytes: int = 1 << 30) -> float:
    """Bytes per second (read + write) that ``dst.copy_(src)`` moves on a large buffer: the
    device's memory limit, with no launch overhead or reduction cost in it (on a GPU the
    stream roofline of a 25-50 MB case is partly launch and reduction time)."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.int32, device=device)
    dst = torch.empty_like(src)
    t, _ = time_fn(lambda: dst.copy_(src), 0.2, threads)
    del src, dst
    return 2 * nbytes / t


def add_copy_bandwidth_share(summary: Dict[str, dict], nbytes: Dict[str, int], bandwidth: float):
    """Per impl: % of the copy bandwidth = (bytes that must move / bandwidth) / its time."""
    limit_s = (nbytes["read"] + nbytes["write"]) / bandwidth
    for name, d in summary.items():
        if name != "roofline" and d.get("median_s"):
            d["pct_copy_bw"] = 100.0 * limit_s / d["median_s"]


def release():
    gc.collect()


@contextlib.contextmanager
def threads_set(n):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
