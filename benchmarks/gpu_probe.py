"""Edge cases of fastpool's CUDA ops against torch's CUDA ops, one at a time.

Each case's name is printed (and flushed) before it runs, so when the process
dies the last name printed is the case that killed it; `--only NAME` runs that
case alone (gpu_check.sh reruns it under gdb for a native backtrace). Cases:
unbatched inputs, empty batches, single pixels, C = 1, windows with no tap in
bounds, NaN/inf, argument errors (raised before any kernel), integer dtypes
(forward: torch CPU's result, as PyTorch CUDA has no integer max-pool;
backward: NotImplementedError), both layouts, every floating dtype, forward
with and without indices, backward and autograd, for max_pool1d/2d/3d (the
spatial dims of a case are len(kernel)); and adaptive_max_pool1d/2d/3d
(len(output_size) dims): output sizes below, equal to and above the input's,
both layouts, unbatched, empty batch, zero output size, integers refused with
torch's error.

    python benchmarks/gpu_probe.py [--only NAME] [--list] [--device cpu]

(--device cpu runs the same cases on fastpool's CPU ops against torch's: a
check of this script on a machine without a GPU.)
"""
import argparse
import math
import sys

import torch

import fastpool

ops = torch.ops.fastpool
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
DEVICE = "cuda"

# (name, input shape, kernel, stride, padding, dilation, ceil_mode, layout)
SHAPES = [
    ("unbatched_1x1x1_k1", (1, 1, 1), [1, 1], [1, 1], [0, 0], [1, 1], False, "contiguous"),
    ("unbatched_opinfo", (2, 3, 6), [3, 3], [2, 2], [0, 0], [1, 1], True, "contiguous"),
    ("unbatched_pad_dil", (2, 6, 6), [3, 2], [2, 1], [1, 1], [1, 2], False, "contiguous"),
    ("batched_opinfo", (1, 2, 3, 6), [3, 3], [2, 2], [0, 0], [1, 1], True, "contiguous"),
    ("batched_opinfo_cl", (1, 2, 3, 6), [3, 3], [2, 2], [0, 0], [1, 1], True, "channels_last"),
    ("empty_batch", (0, 3, 6, 6), [2, 2], [2, 2], [0, 0], [1, 1], False, "contiguous"),
    ("empty_batch_cl", (0, 3, 6, 6), [2, 2], [2, 2], [0, 0], [1, 1], False, "channels_last"),
    ("single_pixel", (2, 3, 1, 1), [1, 1], [1, 1], [0, 0], [1, 1], False, "contiguous"),
    ("one_channel_cl", (2, 1, 5, 7), [3, 3], [2, 2], [1, 1], [1, 1], True, "channels_last"),
    ("no_tap_windows", (1, 2, 5, 5), [2, 2], [3, 3], [1, 1], [3, 3], True, "contiguous"),
    ("no_tap_windows_cl", (2, 8, 5, 5), [2, 2], [3, 3], [1, 1], [3, 3], True, "channels_last"),
    ("bands_k2s2", (2, 16, 9, 8), [2, 2], [2, 2], [0, 0], [1, 1], True, "channels_last"),
    ("stem_small", (2, 64, 28, 28), [3, 3], [2, 2], [1, 1], [1, 1], False, "contiguous"),
    ("stem_small_cl", (2, 64, 28, 28), [3, 3], [2, 2], [1, 1], [1, 1], False, "channels_last"),
    ("p1d_basic", (2, 3, 11), [3], [2], [1], [1], False, "contiguous"),
    ("p1d_cl", (2, 8, 11), [3], [2], [1], [1], True, "channels_last"),
    ("p1d_unbatched_dil", (3, 9), [2], [1], [1], [2], False, "contiguous"),
    ("p1d_no_tap_cl", (2, 8, 5), [2], [3], [1], [3], True, "channels_last"),
    ("p3d_basic", (2, 3, 5, 6, 7), [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], False, "contiguous"),
    ("p3d_cl", (2, 8, 5, 6, 7), [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], True, "channels_last"),
    ("p3d_bands_cl", (2, 16, 4, 6, 6), [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], False, "channels_last"),
    ("p3d_unbatched", (2, 4, 5, 6), [2, 1, 2], [1, 1, 2], [0, 0, 1], [1, 1, 1], False, "contiguous"),
    ("p3d_empty_batch_cl", (0, 3, 4, 4, 4), [2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], False, "channels_last"),
    ("p3d_single_voxel", (2, 3, 1, 1, 1), [1, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1], False, "contiguous"),
]
# Arguments torch rejects: both must raise, with the same type, before any kernel.
ERRORS = [
    ("error_pad_unbatched", (2, 5, 5), [2, 2], [1, 1], [2, 2], [1, 1], False, "contiguous"),
    ("error_pad_batched", (1, 2, 5, 5), [2, 2], [1, 1], [2, 2], [1, 1], False, "contiguous"),
    ("error_pad_empty", (0, 2, 5, 5), [3, 3], [1, 1], [2, 2], [3, 3], False, "contiguous"),
    ("error_too_small", (1, 2, 3, 3), [5, 5], [1, 1], [0, 0], [1, 1], False, "contiguous"),
    ("error_zero_channels", (1, 0, 4, 4), [2, 2], [2, 2], [0, 0], [1, 1], False, "contiguous"),
    ("error_1d_pad", (1, 2, 5), [2], [1], [2], [1], False, "contiguous"),
    ("error_1d_rank", (1, 2, 5, 5), [2], [1], [0], [1], False, "contiguous"),
    ("error_3d_pad", (1, 2, 5, 5, 5), [2, 2, 2], [1, 1, 1], [0, 2, 0], [1, 1, 1], False, "contiguous"),
    ("error_3d_too_small", (1, 2, 3, 3, 3), [5, 2, 2], [1, 1, 1], [0, 0, 0], [1, 1, 1], False, "contiguous"),
    ("error_3d_rank", (2, 5, 5), [2, 2, 2], [1, 1, 1], [0, 0, 0], [1, 1, 1], False, "contiguous"),
]
# (name, input shape, output_size, layout) for adaptive_max_pool{len(output_size)}d.
ADAPTIVE = [
    ("adaptive_2d_shrink", (2, 3, 7, 9), [3, 4], "contiguous"),
    ("adaptive_2d_shrink_cl", (2, 8, 7, 9), [3, 4], "channels_last"),
    ("adaptive_2d_grow_cl", (2, 8, 5, 3), [7, 5], "channels_last"),
    ("adaptive_2d_even", (2, 16, 8, 12), [4, 3], "channels_last"),
    ("adaptive_2d_global", (2, 5, 7, 7), [1, 1], "contiguous"),
    ("adaptive_2d_unbatched", (3, 6, 5), [4, 4], "contiguous"),
    ("adaptive_2d_empty_batch", (0, 3, 6, 6), [4, 4], "channels_last"),
    ("adaptive_2d_zero_output", (2, 3, 6, 6), [0, 4], "contiguous"),
    ("adaptive_1d", (2, 3, 11), [4], "contiguous"),
    ("adaptive_1d_grow_cl", (2, 8, 5), [9], "channels_last"),
    ("adaptive_1d_unbatched", (3, 10), [3], "contiguous"),
    ("adaptive_3d", (2, 3, 5, 6, 7), [3, 4, 2], "contiguous"),
    ("adaptive_3d_cl", (2, 8, 5, 6, 7), [2, 5, 9], "channels_last"),
    ("adaptive_3d_unbatched", (2, 4, 5, 6), [3, 3, 3], "contiguous"),
    ("adaptive_3d_even", (1, 4, 4, 6, 8), [2, 3, 4], "contiguous"),
]


def adaptive_ops(dims):
    """fastpool's (with_indices, values, backward) ops and torch's (with_indices, backward) for dims."""
    name = f"adaptive_max_pool{dims}d"
    ours = (getattr(ops, f"{name}_with_indices"), getattr(ops, name), getattr(ops, f"{name}_backward"))
    if dims == 1:  # torch's adaptive_max_pool1d runs its 2-d ops on the unsqueezed tensors
        def backward(g, x, idx):
            return torch.ops.aten.adaptive_max_pool2d_backward(g.unsqueeze(-2), x.unsqueeze(-2),
                                                               idx.unsqueeze(-2)).squeeze(-2)
        return ours, (torch.ops.aten.adaptive_max_pool1d, backward)
    return ours, (getattr(torch.ops.aten, name), getattr(torch.ops.aten, f"{name}_backward"))


def run_adaptive(case, dtype):
    _, shape, output_size, layout = case
    dims = len(output_size)
    (with_indices, values, backward), (torch_with_indices, torch_backward) = adaptive_ops(dims)
    x = make(shape, dtype, layout)
    ref, ref_idx = torch_with_indices(x, output_size)
    out, idx = with_indices(x, output_size)
    problems = []
    if not same(out, ref):
        problems.append("values")
    if not torch.equal(idx.cpu(), ref_idx.cpu()):
        problems.append("indices")
    if not same(values(x, output_size), ref):
        problems.append("values (no-indices op)")
    g = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(dtype)
    g = torch.empty_like(ref).copy_(g.to(DEVICE))
    if ref.numel() == 0 and x.numel():
        # output_size 0: the backward op refuses the empty grad_output, as torch's does (autograd
        # returns a zero gradient without calling it: below).
        try:
            backward(g, x, ref_idx)
            problems.append("backward of an empty grad_output did not raise")
        except RuntimeError:
            pass
    else:
        got = backward(g, x, ref_idx)
        # CPU: both round half types after every add; CUDA: both add in float, round once.
        want = torch_backward(g, x, ref_idx)
        even = all(n % o == 0 for n, o in zip(shape[-dims:], output_size) if o)
        if DEVICE == "cuda" and not even:
            # Uneven windows overlap: PyTorch CUDA scatters with atomicAdd (in scalar_t, no fixed
            # order); fastpool gathers in float in output order: close, not always the same bits.
            tol = 2e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-5
            if got.shape != want.shape or not torch.allclose(got.cpu().double(), want.cpu().double(), rtol=tol,
                                                              atol=tol, equal_nan=True):
                problems.append("backward (overlapping windows)")
        elif not same(got, want):
            problems.append("backward")
    public = getattr(fastpool, f"adaptive_max_pool{dims}d", None)
    if public is not None and x.numel():
        xa = x.detach().clone().requires_grad_()
        public(xa, output_size[0] if dims == 1 else output_size).sum().backward()
        if ref.numel() == 0 and not bool((xa.grad == 0).all()):
            problems.append("autograd through an empty output: gradient not zero")
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return problems


def run_adaptive_integer(dims):
    """Integers: refused by both, with the same error (PyTorch CUDA's kernel name on the GPU)."""
    (with_indices, _, _), (torch_with_indices, _) = adaptive_ops(dims)
    x = torch.zeros((2, 3) + (5,) * dims, dtype=torch.int64, device=DEVICE)
    errors = []
    for fn in (torch_with_indices, with_indices):
        try:
            fn(x, [2] * dims)
        except (NotImplementedError, RuntimeError) as e:
            errors.append((type(e), str(e).splitlines()[0]))
        else:
            return ["did not raise"]
    return [] if errors[0] == errors[1] else [f"raised {errors[1]}, torch {errors[0]}"]


def pool_ops(dims):
    """fastpool's (with_indices, values, backward) ops and torch's (with_indices, backward) for dims."""
    name = f"max_pool{dims}d"
    ours = (getattr(ops, f"{name}_with_indices"), getattr(ops, name), getattr(ops, f"{name}_with_indices_backward"))
    if dims == 1:  # torch's max_pool1d runs its 2-d ops on the unsqueezed tensors
        def backward(g, x, k, s, p, d, ceil, idx):
            return torch.ops.aten.max_pool2d_with_indices_backward(
                g.unsqueeze(-2), x.unsqueeze(-2), [1] + k, [1] + s, [0] + p, [1] + d, ceil,
                idx.unsqueeze(-2)).squeeze(-2)
        return ours, (torch.ops.aten.max_pool1d_with_indices, backward)
    return ours, (getattr(torch.ops.aten, f"{name}_with_indices"),
                  getattr(torch.ops.aten, f"{name}_with_indices_backward"))


def channels_last(x):
    dims = x.dim() - 2
    if dims == 2:
        return x.contiguous(memory_format=torch.channels_last)
    if dims == 3:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def make(shape, dtype, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-4, 5, shape, generator=g).to(torch.float64)
    if x.numel():
        r = torch.rand(shape, generator=g)
        x = torch.where(r < 0.05, torch.full_like(x, math.nan), x)
        x = torch.where((r >= 0.05) & (r < 0.25), torch.full_like(x, -math.inf), x)
    x = x.to(dtype).to(DEVICE)
    if layout == "channels_last":
        x = channels_last(x)
    return x


def same(a, b):
    if a.shape != b.shape or a.dtype != b.dtype or (a.numel() and a.stride() != b.stride()):
        return False
    a, b = a.cpu(), b.cpu()
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))


def run_shape(case, dtype):
    _, shape, k, s, p, d, ceil, layout = case
    dims = len(k)
    (with_indices, values, backward), (torch_with_indices, torch_backward) = pool_ops(dims)
    x = make(shape, dtype, layout)
    ref, ref_idx = torch_with_indices(x, k, s, p, d, ceil)
    out, idx = with_indices(x, k, s, p, d, ceil)
    problems = []
    if not same(out, ref):
        problems.append("values")
    # PyTorch CUDA's own channels-last index is 0 where no tap beats -inf (1-d/2-d); ours too.
    if not torch.equal(idx.cpu(), ref_idx.cpu()):
        problems.append("indices")
    if not same(values(x, k, s, p, d, ceil), ref):
        problems.append("values (no-indices op)")
    g = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(dtype)
    g = torch.empty_like(ref).copy_(g.to(DEVICE))  # in the output's layout
    got = backward(g, x, k, s, p, d, ceil, ref_idx)
    # CPU: both round half types after every add, in output order; CUDA: torch gathers in
    # float and rounds once, as fastpool does. The same bits either way.
    want = torch_backward(g, x, k, s, p, d, ceil, ref_idx)
    overlap = any((kk - 1) * dd + 1 > ss for kk, ss, dd in zip(k, s, d))
    if dims == 3 and overlap:
        # PyTorch CUDA's 3-d backward scatters with atomicAdd in no fixed order (in scalar_t);
        # fastpool's is a deterministic gather: close, not always the same bits.
        tol = 2e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-5
        if got.shape != want.shape or not torch.allclose(got.cpu().double(), want.cpu().double(), rtol=tol, atol=tol,
                                                          equal_nan=True):
            problems.append("backward (3-d, overlapping windows)")
    elif not same(got, want):
        problems.append("backward")
    public = getattr(fastpool, f"max_pool{dims}d", None)
    if public is not None:
        xa = x.detach().clone().requires_grad_()
        public(xa, k, s, p, d, ceil_mode=ceil).sum().backward()
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return problems


def run_error(case, dtype):
    _, shape, k, s, p, d, ceil, layout = case
    (with_indices, values, _), (torch_with_indices, _) = pool_ops(len(k))
    x = make(shape, dtype, layout)
    try:
        torch_with_indices(x, k, s, p, d, ceil)
    except Exception as e:  # noqa: BLE001
        ref = e
    else:
        return ["torch did not raise"]
    for fn in (with_indices, values):
        try:
            fn(x, k, s, p, d, ceil)
        except Exception as e:  # noqa: BLE001
            if type(e) is not type(ref):
                return [f"raised {type(e).__name__}, torch {type(ref).__name__}"]
        else:
            return ["did not raise"]
    return []


def run_integer(dims, dtype, layout):
    """Integers: torch CPU's values and indices (PyTorch CUDA has no integer
    max-pool); the backward raises NotImplementedError, as PyTorch's."""
    (with_indices, values, backward), (torch_with_indices, _) = pool_ops(dims)
    lo = torch.iinfo(dtype).min
    x = torch.randint(0, 9, (2, 3) + (5,) * dims).to(dtype)
    x.view(-1)[::3] = lo  # windows of the type's lowest value: the index stays at the first tap
    k, s, p, d = [3] * dims, [2] * dims, [1] * dims, [1] * dims
    ref, ref_idx = torch_with_indices(x, k, s, p, d, False)  # planar on the CPU (its channels-last
    # kernels refuse 1-byte integers past 127-element planes)
    xd = x.to(DEVICE)
    if layout == "channels_last":
        xd = channels_last(xd)
    problems = []
    out, idx = with_indices(xd, k, s, p, d, False)
    if not torch.equal(out.cpu(), ref) or not torch.equal(idx.cpu(), ref_idx):
        problems.append("integer values/indices")
    if not torch.equal(values(xd, k, s, p, d, False).cpu(), ref):
        problems.append("integer values (no-indices op)")
    if DEVICE == "cuda":
        try:
            backward(out, xd, k, s, p, d, False, idx)
        except NotImplementedError:
            pass
        else:
            problems.append("integer backward did not raise NotImplementedError")
    return problems


def cases():
    for dtype in DTYPES:
        tag = str(dtype).replace("torch.", "")
        for c in SHAPES:
            yield f"{c[0]}[{tag}]", (lambda c=c, dtype=dtype: run_shape(c, dtype))
        for c in ERRORS:
            yield f"{c[0]}[{tag}]", (lambda c=c, dtype=dtype: run_error(c, dtype))
        for c in ADAPTIVE:
            yield f"{c[0]}[{tag}]", (lambda c=c, dtype=dtype: run_adaptive(c, dtype))
    for dims in (1, 2, 3):
        yield f"adaptive_integer_{dims}d", (lambda dims=dims: run_adaptive_integer(dims))
    for dims in (1, 2, 3):
        for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            for layout in ("contiguous", "channels_last"):
                tag = str(dtype).replace("torch.", "")
                yield f"integer_{dims}d_{layout}[{tag}]", (lambda dims=dims, dtype=dtype, layout=layout:
                                                             run_integer(dims, dtype, layout))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="run just this case")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    failed = 0
    for name, fn in cases():
        if args.list:
            print(name)
            continue
        if args.only and name != args.only:
            continue
        print(f"RUN {name}", flush=True)
        try:
            problems = fn()
        except Exception as e:  # noqa: BLE001
            problems = [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"]
        print(f"{'FAIL' if problems else 'OK'} {name}" + (f": {'; '.join(problems)}" if problems else ""),
              flush=True)
        failed += bool(problems)
    if not args.list:
        print(f"{failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
