"""The op table and the device list that tests/test_ops.py runs its generic
tests over (op x device), for max_pool1d/2d/3d and adaptive_max_pool1d/2d/3d.

Per op (OPS): the fastpool callable, torch's reference, the hypothesis
strategy for its arguments and shapes (`op.cases(dtypes)`, one generator:
pool_cases.make_input builds every input), dtypes per device, and the
documented CUDA differences as reference functions. Per device (DEVICES):
how to run an op there and which reference applies:

  cpu:<isa>  fastpool's CPU kernels forced to one ISA; the reference is torch
             CPU, bit for bit (values, indices, strides, gradients).
  cuda-host  the CUDA launcher run by the host executor (fastpool._C.cuda_host_*:
             the checks, allocation, layout, kernel bodies, vector and index
             width and grid of the CUDA registration, with the launch emulated on
             an H100's 132 SMs or on one SM; 32-bit and forced 64-bit indices).
             The reference is torch CPU adjusted by the CUDA differences below.
  cuda       the real GPU (marked `cuda`, skipped without one): PyTorch CUDA is
             the reference where it is exact, the CUDA differences below where
             it is not (the comparison rules of tests/test_cuda.py).

Documented CUDA differences (PyTorch CUDA against PyTorch CPU, and fastpool's
CUDA ops against PyTorch CUDA; README "On CUDA"):
  * channels_last forward of max_pool1d/2d (PyTorch CUDA runs its 2-d kernel
    for both): when no tap beats -inf (all taps -inf), the index is 0, not
    the first tap. max_pool3d's channels-last kernel starts at the first tap,
    like CPU; so do the integer types (PyTorch CUDA has no integer kernel,
    fastpool follows PyTorch CPU);
  * torch CPU's own quirk: its 3-d channels-last kernel, in the channels it
    does not vectorise (C below or past its vector width), starts the index
    without the depth term (h0*W + w0), which shows when no tap beats the
    start; the CUDA reference takes the index from torch CPU's planar kernel
    there (the full first tap, as PyTorch CUDA's 3-d kernels and fastpool,
    integers included), while fastpool's CPU kernels reproduce the quirk; and
    torch CPU's channels-last kernels (every dims) raise for 1-byte integers
    once a plane passes 127 elements, so for channels-last integers the
    reference is its planar kernel's result in channels-last layout;
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
    types, which is the exact reference (torch CPU's backward in fastpool's
    order); PyTorch CUDA's result is only close. Non-overlapping windows give
    the same bits;
  * adaptive_max_pool forward: PyTorch CUDA's gives CPU's values and indices
    (windows [floor(o*in/out), ceil((o+1)*in/out)), NaN wins, first tap
    first); batched inputs are read through a contiguous copy; the output is
    channels last where the 2-d input suggests it (1-d: its unsqueezed
    input), always contiguous in 3-d;
  * adaptive_max_pool backward, uneven sizes (overlapping windows): PyTorch
    CUDA scatters with atomicAdd (AdaptiveMaxPooling{2,3}d.cu), in scalar_t
    and in no fixed order; fastpool gathers in output raster order, in float
    for the half types, rounding once: the exact reference is torch CPU's
    backward in that order (float32 for half types, rounded once); PyTorch
    CUDA's result is only close. Sizes that divide give the same bits (the
    windows tile the input);
  * integer dtypes: PyTorch CUDA refuses them (pytorch/pytorch#107412);
    fastpool's CUDA forward takes uint8/int8/int16/int32/int64 and returns
    PyTorch CPU's values and indices; its backward raises NotImplementedError
    like PyTorch. Adaptive max pooling refuses integers, forward and
    backward, with PyTorch CUDA's NotImplementedError (it has floating
    kernels only, and so does PyTorch CPU).
"""
import dataclasses
import math
import os

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import fastpool
from fastpool import _C
from pool_cases import (FLOAT_DTYPES, INT_DTYPES, ISAS, LAYOUTS, assert_identical, cpu_isa, has_empty_window,
                        make_input, per_dim, torch_max_pool)

HALF_TYPES = (torch.float16, torch.bfloat16)
DIMS = [1, 2, 3]
# FASTPOOL_EXAMPLES scales every generic property test (100: the default
# counts below; 3000 for a deep run; benchmarks/gpu_check.sh sets 40 for the GPU).
EXAMPLES_SCALE = int(os.environ.get("FASTPOOL_EXAMPLES", "100")) / 100


def hypothesis_settings(examples):
    return settings(max_examples=max(1, round(examples * EXAMPLES_SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ---- cases: one generator -------------------------------------------------

SPECIALS = ["normal", "ties", "specials", "lowest"]  # pool_cases.make_values
SEEDS = st.integers(0, 2**31 - 1)


def dtypes_strategy(dtypes):
    """Floating and integer types drawn half and half (the floating ones carry
    the specials and the backward)."""
    floats = [t for t in dtypes if t.is_floating_point]
    ints = [t for t in dtypes if not t.is_floating_point]
    return st.one_of(*[st.sampled_from(group) for group in (floats, ints) if group])


@dataclasses.dataclass
class Case:
    """One drawn call: the input (built by pool_cases.make_input) and the
    op's arguments in the public API's spelling."""
    op: object
    batch: object  # None: unbatched
    channels: int
    sizes: tuple
    dtype: torch.dtype
    layout: str
    special: str
    seed: int
    args: dict

    def input(self, device="cpu"):
        return make_input(self.batch, self.channels, self.sizes, self.dtype, self.layout, self.seed, self.special,
                          device=device)

    @property
    def shape(self):
        return ((self.batch,) if self.batch is not None else ()) + (self.channels,) + tuple(self.sizes)

    @property
    def geometry(self):
        """The normalized form the CUDA references take: dims, k, s, p, d, ceil
        (window ops) or dims, out, shape (adaptive)."""
        return self.op.geometry(self)

    def __repr__(self):
        return (f"Case({self.op.name}, shape={self.shape}, {self.dtype}, {self.layout}, {self.special}, "
                f"seed={self.seed}, {self.args})")


def make_grad(out, seed, special, minus_zero=True):
    """A gradient in the forward output's layout and dtype: normals times 3
    (sums round differently per order), -0.0 first where specials are drawn
    (unless minus_zero is False)."""
    g = torch.Generator().manual_seed(seed)
    grad = (torch.randn(out.shape, generator=g, dtype=torch.float64) * 3).to(out.dtype)
    if minus_zero and special != "normal" and grad.numel():
        grad.view(-1)[0] = -0.0
    return torch.empty_like(out).copy_(grad.to(out.device))


@st.composite
def window_case(draw, op, dtypes, layouts):
    """max_pool{1,2,3}d: one generator with three regimes.
    general: kernels up to 7 (5 in 3-d; padding can then exceed the stride),
      stride 1-4, dilation 1-3, padding up to half the kernel (torch's bound),
      sizes from one window up; ints, tuples or stride=None; unbatched, empty
      and small batches; up to 40 channels (20 in 3-d, 6 for 3-d volumes
      over 8^3) or a multiple of 8 (the CUDA 8/16-byte NHWC paths); every
      layout and view.
    wide rows: rows of 33-140 and 1-64 channels, so every CPU vector path
      (full chunks, overlapped last chunk, de-interleaving stride-2 loads) runs.
    wide windows: narrow rows with wide windows (k >= 4, stride > 2; global
      pooling among them): one masked load per window row."""
    dims = op.dims
    dtype = draw(dtypes_strategy(dtypes))
    special = draw(st.sampled_from(SPECIALS))
    seed = draw(SEEDS)
    regime = draw(st.sampled_from(["general"] * 6 + ["wide rows"] * 2 + ["wide windows"] * 2))
    if regime == "general":
        max_size = {1: 72, 2: 24, 3: 8}[dims]
        k = tuple(draw(st.integers(1, 7 if dims < 3 else 5)) for _ in range(dims))
        s = tuple(draw(st.integers(1, 4)) for _ in range(dims))
        d = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        p = tuple(draw(st.integers(0, k[i] // 2)) for i in range(dims))
        sizes = []
        for i in range(dims):
            span = (k[i] - 1) * d[i] + 1
            lo = max(1, span - 2 * p[i])
            sizes.append(draw(st.integers(lo, max(lo, span, max_size))))
        batch = draw(st.sampled_from([None, 0, 1, 2, 3]))
        if dims == 3 and math.prod(sizes) > 8**3:  # large kernels and dilations: few channels
            channels = draw(st.integers(1, 6))
        else:
            channels = draw(st.one_of(st.integers(1, 40 if dims < 3 else 20), st.sampled_from([8, 16, 24, 32])))
        layout = draw(st.sampled_from(layouts[batch is not None]))
    elif regime == "wide rows":
        k = draw(st.sampled_from([(2, 2), (3, 3), (1, 3), (3, 1), (2, 5), (4, 4)]))
        s = draw(st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 3), (3, 3), (1, 4), (4, 4)]))
        d = draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
        p = tuple(min(pp, kk // 2) for pp, kk in zip(draw(st.sampled_from([(0, 0), (1, 1), (0, 1)])), k))
        sizes = tuple(max(n, (kk - 1) * dd + 1) for n, kk, dd in zip(
            (draw(st.integers(1, 8)), draw(st.integers(33, 140))), k, d))
        if dims == 3:  # a depth: size, kernel, stride, padding
            dk, ds = draw(st.integers(1, 2)), draw(st.integers(1, 2))
            dsize, dp = max(draw(st.integers(1, 4)), dk), min(draw(st.integers(0, 1)), dk // 2)
            k, s, d, p, sizes = (dk,) + k, (ds,) + s, (1,) + d, (dp,) + p, (dsize,) + sizes
        elif dims == 1:
            k, s, d, p, sizes = k[1:], s[1:], d[1:], p[1:], sizes[1:]
        batch = 2
        channels = draw(st.sampled_from([1, 3, 16, 33, 64]))
        layout = draw(st.sampled_from([t for t in ("contiguous", "channels_last") if t in layouts[True]]))
    else:
        kh, kw = draw(st.integers(1, 9)), draw(st.integers(4, 17))
        stride, pad = draw(st.integers(3, 8)), draw(st.integers(0, 2))
        k, sizes = (kh, kw), (kh + draw(st.integers(0, 3)), kw + draw(st.integers(0, 6)))
        if dims == 1:
            k, sizes, pad = k[1:], sizes[1:], (min(pad, kw // 2),)
        else:
            pad = (min(pad, kh // 2, kw // 2),) * 2
            if dims == 3:  # a depth of 1 or 2, kernel 1
                k, sizes, pad = (1,) + k, (draw(st.integers(1, 2)),) + sizes, (0,) + pad
        args = dict(kernel_size=k, stride=stride, padding=pad, dilation=1, ceil_mode=draw(st.booleans()))
        return Case(op, 2, draw(st.integers(1, 5)), tuple(sizes), dtype,
                    draw(st.sampled_from([t for t in ("contiguous", "sliced") if t in layouts[True]])), special,
                    seed, args)
    ceil = draw(st.booleans())
    spell = draw(st.sampled_from(["tuple", "int", "none"]))  # how the user spells the args
    if spell == "int" and len({(k[i], s[i], p[i], d[i]) for i in range(dims)}) == 1:
        args = dict(kernel_size=k[0], stride=s[0], padding=p[0], dilation=d[0])
    elif spell == "none":
        args = dict(kernel_size=k, stride=None, padding=p, dilation=d)
    else:
        args = dict(kernel_size=k, stride=s, padding=p, dilation=d)
    args["ceil_mode"] = ceil
    return Case(op, batch, channels, tuple(sizes), dtype, layout, special, seed, args)


@st.composite
def adaptive_case(draw, op, dtypes, layouts):
    """adaptive_max_pool{1,2,3}d: sizes up to 40/17/7; output sizes below,
    equal to and above the input's (windows overlap, tile exactly, or repeat
    inputs), divisors among them (the even description); None in an output
    size (the input's); unbatched, empty and small batches; every layout."""
    dims = op.dims
    sizes = tuple(draw(st.integers(1, {1: 40, 2: 17, 3: 7}[dims])) for _ in range(dims))
    out = tuple(draw(st.one_of(st.integers(1, n + 3), st.sampled_from([d for d in range(1, n + 1) if n % d == 0])))
                for n in sizes)
    if dims > 1 and draw(st.integers(0, 5)) == 0:
        out = (None,) + out[1:]
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))
    return Case(op, batch, draw(st.integers(1, 40 if dims < 3 else 20)), sizes, draw(dtypes_strategy(dtypes)),
                draw(st.sampled_from(layouts[batch is not None])), draw(st.sampled_from(SPECIALS)), draw(SEEDS),
                dict(output_size=out[0] if dims == 1 else out))


# ---- CUDA references (the documented differences) -------------------------

def to_layout(x, dims, layout):
    """x stored channels last (N,L,C / N,H,W,C / N,D,H,W,C) if asked; batched only."""
    if layout != "channels_last":
        return x
    if dims > 1:  # torch's own formats (they fix the strides of size-1 dims)
        return x.contiguous(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    order = [0] + list(range(2, x.dim())) + [1]
    back = [0, x.dim() - 1] + list(range(1, x.dim() - 1))
    return x.permute(order).contiguous().permute(back)


def is_channels_last(t, dims):
    """Whether a batched result is stored channels last (and not also contiguous)."""
    if t.dim() != dims + 2 or t.is_contiguous():
        return False
    return to_layout(t, dims, "channels_last").stride() == t.stride()


def pool_args(case):
    return list(case["k"]), list(case["s"]), list(case["p"]), list(case["d"]), case["ceil"]


def padded3(values, fill):
    """A per-dim tuple right-aligned into (D, H, W), as the kernels see it."""
    return (fill,) * (3 - len(values)) + tuple(values)


def torch_forward(x, case):
    """The CUDA forward reference of max_pool: torch CPU's values and indices;
    for 3-d channels-last inputs, the index of windows where no tap beats the
    start comes from torch's planar kernel; channels-last integers: the planar
    kernel's result stored channels last."""
    k, s, p, d, ceil = pool_args(case)
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[case["dims"]]
    if is_channels_last(x, case["dims"]) and not x.dtype.is_floating_point:
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
    """torch's max_pool{1,2,3}d backward op (1-d: the 2-d op on the unsqueezed tensors, as torch's own autograd)."""
    k, s, p, d, ceil = pool_args(case)
    if not s:
        s = k
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


def windows_overlap(case):
    return any((k - 1) * d + 1 > s for k, s, d in zip(case["k"], case["s"] or case["k"], case["d"]))


def covered_by_own_window(idx, x_shape, case):
    """Whether each output's index lies inside that output's window span (the
    outputs a gather visits for that input)."""
    dims = case["dims"]
    sizes = x_shape[-dims:]
    s = case["s"] or case["k"]
    inside = (idx >= 0) & (idx < math.prod(sizes))  # past the volume: no input has it
    rest = idx.clone()
    for axis in reversed(range(dims)):  # a flattened index aliases as it does on the GPU
        pos = rest % sizes[axis]
        rest = rest // sizes[axis]
        shape = [1] * dims
        shape[axis] = -1
        o = torch.arange(idx.shape[-dims + axis]).view(shape)
        start = o * s[axis] - case["p"][axis]
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


# csrc/cuda/max_pool_device.cuh: outputs of a row per ForwardNchwRows item.
ROW_OUTPUTS = 4


def nchw_rows_apply(w_window, out_w, dtype):
    """Whether the CUDA launcher gives a planar forward to ForwardNchwRows
    (max_pool_device.cuh's nchw_rows_apply): floating types, a fixed w axis
    (kernel, stride, padding, dilation) = w_window (None: an uneven adaptive
    axis) of stride 2 without dilation, kernel 3 with padding 0 or 1 or
    kernel 2 without, and at least ROW_OUTPUTS outputs a row."""
    if w_window is None or not dtype.is_floating_point or out_w < ROW_OUTPUTS:
        return False
    k, s, p, d = w_window
    return s == 2 and d == 1 and (k, p) in ((3, 1), (3, 0), (2, 0))


def check_planar_forward_body(info, out, w_window, others):
    """A planar forward's body and items: ForwardNchwRows (a group of
    ROW_OUTPUTS outputs of a row per item) where it applies, else one of
    `others` (one output per item)."""
    if info["layout"] != "nchw":
        return
    if nchw_rows_apply(w_window, out.shape[-1], out.dtype):
        assert info["body"] == "forward_nchw_rows"
        ow = out.shape[-1]
        assert info["items"] == out.numel() // ow * -(-ow // ROW_OUTPUTS)
    else:
        assert info["body"] in others
        assert info["items"] == out.numel()


def adaptive_is_even(case):
    return all(n % o == 0 for n, o in zip(case["shape"][-case["dims"]:], case["out"]))


# ---- the host executor (cuda-host) ----------------------------------------

H100_SMS = 132
# A real card's limits, or a single SM (a smaller grid, so more grid-stride steps).
SM_COUNTS = st.sampled_from([H100_SMS, 1])


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


def run_adaptive(x, out, **kw):
    o, i, info = _C.cuda_host_adaptive_max_pool(x, list(out), **kw)
    return o, i, summarize(info)


def run_adaptive_backward(grad, x, idx, dims, **kw):
    gi, info = _C.cuda_host_adaptive_max_pool_backward(grad, x, idx, dims, **kw)
    return gi, summarize(info)


def backward_kind(case):
    """The backward algorithm the launcher must pick for max_pool (see max_pool_launcher.h)."""
    if not windows_overlap(case):
        return "bands"
    sd, sh, sw = padded3(case["s"] or case["k"], 1)
    if (sh, sw) != (2, 2) or sd not in (1, 2):
        return "gather"
    _, kh, kw = padded3(case["k"], 1)
    _, dh, dw = padded3(case["d"], 1)
    # Depth stride 1, windows overlapping by at most one input along h and w: 2 x 2 candidates a block.
    narrow = sd == 1 and (kh - 1) * dh + 1 <= 3 and (kw - 1) * dw + 1 <= 3
    return "band_gather_narrow" if narrow else "band_gather"


def backward_items(kind, x, out, case, dims):
    """The backward's work items times its lanes: an input each (gather), an output each (bands), or a
    block of inputs each, the input cut every stride along each axis (band gather)."""
    if kind == "gather":
        return x.numel()
    if kind == "bands":
        return out.numel()
    strides = case["s"] or case["k"]
    spatial = x.shape[-dims:]
    blocks = math.prod(-(-n // s) for n, s in zip(spatial, strides))
    return x.numel() // math.prod(spatial) * blocks


def check_info(info, x, dims):
    assert info["misaligned"] == 0
    c = x.shape[-dims - 1]
    assert c % info["lanes"] == 0
    assert info["lanes"] in (1, 8 // x.element_size(), 16 // x.element_size())
    if info["lanes"] > 1:
        assert info["layout"] == "nhwc"
        assert info["vector_accesses"] > 0 or x.numel() == 0


def check_full_lanes(info, x, dims):
    """Fresh (64-byte aligned) NHWC tensors whose channels fill 16-byte vectors take the full width."""
    if info["layout"] == "nhwc" and x.storage_offset() == 0 and x.shape[-dims - 1] % (16 // x.element_size()) == 0:
        assert info["lanes"] == 16 // x.element_size()


# ---- the op table ---------------------------------------------------------

class _PoolOp:
    """An op of the table: `prefix`{dims}d in fastpool and torch.nn.functional."""
    prefix = ""

    def __init__(self, dims):
        self.dims = dims
        self.name = f"{self.prefix}{dims}d"
        self.fastpool_fn = getattr(fastpool, self.name)
        self.torch_fn = getattr(F, self.name)

    def __repr__(self):
        return self.name


class WindowOp(_PoolOp):
    """max_pool{dims}d."""
    family = "window"
    prefix = "max_pool"
    examples = {"cpu": (44, 28), "cuda-host": (230, 200), "cuda": (150, 100)}  # (forward, backward) per op x device

    def dtypes(self, device_kind):
        """Forward dtypes (every device: integers too, forward only; on CUDA beyond torch)."""
        return FLOAT_DTYPES + INT_DTYPES

    def cases(self, dtypes, layouts):
        return window_case(self, dtypes, layouts)

    def call(self, fn, x, case, return_indices=False):
        return fn(x, return_indices=return_indices, **case.args)

    def geometry(self, case):
        dims = self.dims
        k, p, d = (tuple(per_dim(case.args[n], dims)) for n in ("kernel_size", "padding", "dilation"))
        s = () if case.args["stride"] is None else tuple(per_dim(case.args["stride"], dims))
        return dict(dims=dims, k=k, s=s, p=p, d=d, ceil=case.args["ceil_mode"], shape=case.shape)

    def raw_backward(self, grad, x, case, idx):
        k, s, p, d, ceil = pool_args(case.geometry)
        op = getattr(torch.ops.fastpool, f"{self.name}_with_indices_backward")
        return op(grad, x, k, s, p, d, ceil, idx)

    # CPU: torch CPU's, bit for bit.
    def cpu_forward_ref(self, x, case):
        return torch_max_pool(self.dims, x, **case.args)

    def cpu_backward_defined(self, case):
        """Windows without an in-bounds tap: torch's backward writes outside the
        plane there, so it cannot serve as a reference (test_max_pool.py tests them)."""
        return not has_empty_window(case.args, case.sizes)

    def cpu_backward_refs(self, grad, x, case, expected_idx, return_indices):
        """(reference, compare strides) pairs for x.grad. Without indices the
        forward saves taps, which have no counterpart of the indices torch's
        channels-last 3-d kernel gives its remainder channels where a whole
        window is -inf: their gradient goes to the window's first tap, as
        torch's planar kernel's indices say."""
        g = case.geometry
        indices = expected_idx if return_indices else torch_max_pool(self.dims, x.contiguous(), **case.args)[1]
        refs = [(torch_backward(grad, x, g, indices), False)]
        if return_indices or self.dims != 3:  # then that is torch's own training result too
            x_torch = x.detach().clone().requires_grad_()
            self.torch_fn(x_torch, **case.args).backward(grad)
            refs.append((x_torch.grad, True))
        return refs

    # CUDA.
    def torch_cuda_has(self, dtype):
        return dtype.is_floating_point

    def cuda_forward_ref(self, x, case):
        return torch_forward(x, case.geometry)

    def cuda_expected_indices(self, info, out, idx, case):
        return cuda_expected_indices(info, out, idx, case.geometry)

    def cuda_backward_ref(self, grad, x, case, idx):
        return reference_backward(grad, x, case.geometry, idx)

    def torch_cuda_backward_exact(self, case, idx):
        """PyTorch CUDA's max_pool1d/2d gather as fastpool does; its 3-d
        scatter adds onto 0 once per input only where windows do not overlap
        and every index lies in its own window."""
        own = bool(covered_by_own_window(idx.cpu(), case.shape, case.geometry).all())
        return self.dims < 3 or (not windows_overlap(case.geometry) and own), own

    def host_forward(self, x, case, **kw):
        return run_forward(x, case.geometry, **kw)

    def host_backward(self, grad, x, case, idx, **kw):
        return run_backward(grad, x, case.geometry, idx, **kw)

    def check_host_forward_launch(self, info, x, case, out):
        # Square 2x2 and 3x3 (h, w) windows in NCHW take the unrolled bodies, unless the rows body applies.
        g = case.geometry
        _, kh, kw = padded3(g["k"], 1)
        k_square = kh if kh == kw and kh in (2, 3) else None
        one_output = "forward_nchw" + (f"_k{k_square}" if k_square else "")
        assert info["body"] in ("forward_nhwc", "forward_nchw_rows", one_output)
        w_window = (g["k"][-1], (g["s"] or g["k"])[-1], g["p"][-1], g["d"][-1])
        check_planar_forward_body(info, out, w_window, (one_output,))

    def host_backward_kind(self, case):
        return backward_kind(case.geometry)


class AdaptiveOp(_PoolOp):
    """adaptive_max_pool{dims}d."""
    family = "adaptive"
    prefix = "adaptive_max_pool"
    examples = {"cpu": (17, 17), "cuda-host": (100, 100), "cuda": (100, 100)}

    def dtypes(self, device_kind):
        return FLOAT_DTYPES  # floating kernels only, as torch's

    def cases(self, dtypes, layouts):
        return adaptive_case(self, dtypes, layouts)

    def call(self, fn, x, case, return_indices=False):
        return fn(x, case.args["output_size"], return_indices=return_indices)

    def output_size(self, case):
        out = per_dim(case.args["output_size"], self.dims)
        return tuple(n if o is None else o for o, n in zip(out, case.sizes))

    def geometry(self, case):
        return dict(dims=self.dims, out=self.output_size(case), shape=case.shape)

    def raw_backward(self, grad, x, case, idx):
        return getattr(torch.ops.fastpool, f"{self.name}_backward")(grad, x, idx)

    def cpu_forward_ref(self, x, case):
        return self.call(self.torch_fn, x, case, return_indices=True)

    def cpu_backward_defined(self, case):
        return True

    def cpu_backward_refs(self, grad, x, case, expected_idx, return_indices):
        x_torch = x.detach().clone().requires_grad_()
        self.call(self.torch_fn, x_torch, case).backward(grad)
        return [(x_torch.grad, True)]

    def torch_cuda_has(self, dtype):
        return dtype.is_floating_point

    def cuda_forward_ref(self, x, case):
        return torch_adaptive(x, self.output_size(case))

    def cuda_expected_indices(self, info, out, idx, case):
        return idx

    def cuda_backward_ref(self, grad, x, case, idx):
        return torch_adaptive_backward(grad, x, idx, self.dims)

    def torch_cuda_backward_exact(self, case, idx):
        return adaptive_is_even(case.geometry), True

    def host_forward(self, x, case, **kw):
        return run_adaptive(x, self.output_size(case), **kw)

    def host_backward(self, grad, x, case, idx, **kw):
        return run_adaptive_backward(grad, x, idx, self.dims, **kw)

    def check_host_forward_launch(self, info, x, case, out):
        # Uneven (h, w) windows vary in size: never the unrolled square bodies.
        g = case.geometry
        plane = dict(g, dims=min(self.dims, 2), out=g["out"][-2:])
        if not adaptive_is_even(plane):
            assert info["body"] in ("forward_nhwc", "forward_nchw", "forward_nchw_rows")
        in_w, out_w = x.shape[-1], out.shape[-1]
        w_window = (in_w // out_w, in_w // out_w, 0, 1) if out_w and in_w % out_w == 0 else None
        check_planar_forward_body(info, out, w_window, ("forward_nchw", "forward_nchw_k2", "forward_nchw_k3"))

    def host_backward_kind(self, case):
        # Uneven windows overlap: the per-input gather; even ones tile the input: bands.
        return "bands" if adaptive_is_even(case.geometry) else "gather"


OPS = [WindowOp(d) for d in DIMS] + [AdaptiveOp(d) for d in DIMS]


# ---- the device list ------------------------------------------------------

class CpuDevice:
    """fastpool's CPU kernels on one ISA against torch CPU, bit for bit."""
    kind = "cpu"
    layouts = {True: LAYOUTS, False: LAYOUTS}  # batched, unbatched: every layout and view

    def __init__(self, isa):
        self.isa = isa
        self.name = f"cpu:{isa}"

    def variants(self):
        return st.just(None)

    def check_forward(self, op, case, variant):
        x = case.input()
        try:
            expected = op.cpu_forward_ref(x, case)
        except RuntimeError as e:
            with cpu_isa(self.isa), pytest.raises(type(e)):
                op.call(op.fastpool_fn, x, case, return_indices=True)
            return
        with cpu_isa(self.isa):
            out, idx = op.call(op.fastpool_fn, x, case, return_indices=True)
            values_only = op.call(op.fastpool_fn, x, case)
        assert_identical(out, expected[0])
        assert_identical(idx, expected[1])
        assert_identical(values_only, expected[0])

    def check_backward(self, op, case, variant, return_indices, grad_seed):
        """Training through autograd: without indices the forward saves 1-byte
        taps, with indices int64 indices. Either way the gradient is torch's, bit
        for bit, in every dtype (half types round after every add, in output
        order, as torch's CPU backward does)."""
        if not op.cpu_backward_defined(case):
            return
        x = case.input()
        expected_out, expected_idx = op.cpu_forward_ref(x, case)
        grad = make_grad(expected_out, grad_seed, case.special)
        x_fp = x.detach().clone().requires_grad_()
        with cpu_isa(self.isa):
            out = op.call(op.fastpool_fn, x_fp, case, return_indices=return_indices)
            (out[0] if return_indices else out).backward(grad)
        assert_identical((out[0] if return_indices else out).detach(), expected_out)
        for ref, strides in op.cpu_backward_refs(grad, x, case, expected_idx, return_indices):
            # (x.grad's strides are autograd's choice: compared only against torch's autograd.)
            assert_identical(x_fp.grad, ref if strides else torch.empty_like(x_fp.grad).copy_(ref))


class CudaHostDevice:
    """The CUDA launcher on the host executor against torch CPU and the
    documented CUDA differences; every example also runs the inference op and
    forced 64-bit indices, on an H100's grid or a single SM's."""
    kind = "cuda-host"
    name = "cuda-host"
    # Unbatched inputs stored channels last: the CUDA launcher keeps a 3-d
    # D,H,W,C input so where torch CPU's kernel returns a contiguous result
    # (when H and W are 1); PyTorch CUDA's rule there is unchecked.
    layouts = {True: LAYOUTS, False: ["contiguous", "sliced", "transposed"]}

    @staticmethod
    def strides(case):
        """The strides of dims of size 1 are free (the launcher and torch CPU
        normalize them differently); the others, and those of empty results, count."""
        return "sized"

    def variants(self):
        return SM_COUNTS

    def check_forward(self, op, case, sms):
        x = case.input()
        try:
            ref_out, ref_idx = op.cuda_forward_ref(x, case)
        except RuntimeError as e:
            with pytest.raises(type(e)):
                op.host_forward(x, case, sm_count=sms)
            return
        out, idx, info = op.host_forward(x, case, sm_count=sms)
        assert_identical(out, ref_out, strides=self.strides(case))
        assert_identical(idx, op.cuda_expected_indices(info, ref_out, ref_idx, case), strides=self.strides(case))
        if out.numel() == 0:
            assert info["body"] is None  # nothing is launched for an empty output
            return
        op.check_host_forward_launch(info, x, case, out)
        if is_channels_last(ref_out, op.dims):
            assert info["layout"] == "nhwc"
        assert info["index_bits"] == 32
        if info["layout"] == "nhwc":
            assert info["items"] * info["lanes"] == out.numel()
        check_info(info, x, op.dims)
        check_full_lanes(info, x, op.dims)
        # The inference op: same values, no indices; and the 64-bit index path.
        values, none, _ = op.host_forward(x, case, with_indices=False, sm_count=sms)
        assert none is None
        assert_identical(values, ref_out, strides=self.strides(case))
        out64, idx64, info64 = op.host_forward(x, case, force_index64=True, sm_count=sms)
        assert info64["index_bits"] == 64
        assert_identical(out64, ref_out, strides=self.strides(case))
        assert_identical(idx64, idx, strides=self.strides(case))

    def check_backward(self, op, case, sms, return_indices, grad_seed):
        x = case.input()
        try:
            ref_out, _ = op.cuda_forward_ref(x, case)
        except RuntimeError:
            return
        # No -0.0 in the gradient: fastpool's CUDA gather returns -0.0 where
        # only -0.0 reaches an input, torch's +0.0 (test_cuda_host_executor.py::
        # test_gather_of_minus_zero_gradients, a known difference).
        grad = make_grad(ref_out, grad_seed, case.special, minus_zero=False)
        _, idx, _ = op.host_forward(x, case)  # the indices CUDA's forward gives
        gi, info = op.host_backward(grad, x, case, idx, sm_count=sms)
        ref = op.cuda_backward_ref(grad, x, case, idx)
        assert_identical(gi, ref, strides=x.numel() > 0 and self.strides(case))
        if x.numel() == 0:
            assert info["body"] is None
            return
        kind = op.host_backward_kind(case)
        assert info["body"] == f"backward_{kind}_{info['layout']}"
        if op.family == "window" and is_channels_last(x, op.dims):
            assert info["layout"] == "nhwc"
        assert info["items"] * info["lanes"] == backward_items(kind, x, ref_out, case.geometry, op.dims)
        check_info(info, x, op.dims)
        check_full_lanes(info, x, op.dims)
        gi64, info64 = op.host_backward(grad, x, case, idx, force_index64=True, sm_count=sms)
        assert info64["index_bits"] == 64
        assert_identical(gi64, gi, strides=self.strides(case))


class CudaDevice:
    """The real GPU (tests/test_cuda.py's comparison rules): PyTorch CUDA bit for
    bit where it is exact; integers against torch CPU (PyTorch CUDA has no
    integer max-pool); backward against the deterministic reference where
    PyTorch CUDA adds with atomics, and close to PyTorch CUDA there."""
    kind = "cuda"
    name = "cuda"
    # tests/test_cuda.py's: contiguous and channels-last batches, contiguous unbatched inputs.
    layouts = {True: ["contiguous", "channels_last"], False: ["contiguous"]}

    def variants(self):
        return st.just(None)

    def check_forward(self, op, case, variant):
        x = case.input("cuda")
        on_gpu = op.torch_cuda_has(x.dtype)  # else torch CPU's result (the integer types)
        try:
            if on_gpu:
                ref = op.call(op.torch_fn, x, case, return_indices=True)
            else:
                ref = op.cuda_forward_ref(x.cpu(), case)
        except (RuntimeError, NotImplementedError, ValueError, IndexError) as e:
            with pytest.raises(type(e)):
                op.call(op.fastpool_fn, x, case, return_indices=True)
            return
        out, idx = op.call(op.fastpool_fn, x, case, return_indices=True)
        values = op.call(op.fastpool_fn, x, case)
        assert out.device == x.device and idx.device == x.device and values.device == x.device
        if not on_gpu:  # (.cpu() keeps a dense tensor's strides)
            out, idx, values = out.cpu(), idx.cpu(), values.cpu()
        assert_identical(out, ref[0], strides="always")
        assert_identical(idx, ref[1], strides="always")
        assert_identical(values, ref[0], strides=False)
        if on_gpu:  # the public API against torch's, whichever op each picks
            assert_identical(values, op.call(op.torch_fn, x, case), strides=False)
        elif out.numel():
            with pytest.raises(NotImplementedError):
                op.raw_backward(torch.zeros_like(out).cuda(), x, case, idx.cuda())

    def check_backward(self, op, case, variant, return_indices, grad_seed):
        x = case.input("cuda")
        try:
            ref_out, ref_idx = op.call(op.torch_fn, x, case, return_indices=True)
        except (RuntimeError, NotImplementedError, ValueError, IndexError):
            return
        grad = make_grad(ref_out, grad_seed, case.special)
        # The backward op with the forward's indices, against torch's op with the same.
        got = op.raw_backward(grad, x, case, ref_idx)
        want = torch_cuda_raw_backward(op, grad, x, case, ref_idx)
        assert got.stride() == want.stride() or x.numel() == 0
        # Training through autograd (the public API), against torch's.
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya = op.call(op.fastpool_fn, xa, case, return_indices=return_indices)
        yb = op.call(op.torch_fn, xb, case)
        (ya[0] if return_indices else ya).backward(grad)
        yb.backward(grad)
        assert_identical((ya[0] if return_indices else ya).detach(), yb.detach(), strides=False)
        exact, own = op.torch_cuda_backward_exact(case, ref_idx)
        # fastpool's deterministic gather: the documented reference, always exact.
        deterministic = op.cuda_backward_ref(grad.cpu(), x.cpu(), case, ref_idx.cpu())
        if exact:
            assert_identical(got, want, strides=False)  # PyTorch CUDA's gather, or one atomicAdd onto 0 per input
            assert_identical(xa.grad, xb.grad, strides=False)
            if op.family == "adaptive":
                assert_identical(got.cpu(), deterministic, strides=False)
            return
        assert_identical(got.cpu(), deterministic, strides=False)
        assert_identical(xa.grad.cpu(), torch.empty_like(xa.grad.cpu()).copy_(deterministic), strides=False)
        if own and x.numel():  # PyTorch CUDA's atomicAdd: close
            tol = dict(rtol=2e-2, atol=2e-2) if x.dtype in HALF_TYPES else \
                dict(rtol=1e-5, atol=1e-5) if op.family == "adaptive" else {}
            torch.testing.assert_close(got, want, equal_nan=True, **tol)
            torch.testing.assert_close(xa.grad, xb.grad, equal_nan=True, **tol)


def torch_cuda_raw_backward(op, grad, x, case, idx):
    """PyTorch's own backward op (1-d: the 2-d op on the unsqueezed tensors)."""
    if op.family == "window":
        return torch_backward(grad, x, case.geometry, idx)
    if op.dims == 1:
        return torch.ops.aten.adaptive_max_pool2d_backward(grad.unsqueeze(-2), x.unsqueeze(-2),
                                                           idx.unsqueeze(-2)).squeeze(-2)
    aten = torch.ops.aten.adaptive_max_pool2d_backward if op.dims == 2 else torch.ops.aten.adaptive_max_pool3d_backward
    return aten(grad, x, idx)


GPU_MARKS = [pytest.mark.cuda,
             pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")]

DEVICES = ([pytest.param(CpuDevice(isa), id=f"cpu:{isa}") for isa in ISAS]
           + [pytest.param(CudaHostDevice(), id="cuda-host"),
              pytest.param(CudaDevice(), id="cuda", marks=GPU_MARKS)])
