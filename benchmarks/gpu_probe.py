"""Edge cases of fastpool's CUDA ops against torch's CUDA ops, one at a time.

Each case's name is printed (and flushed) before it runs, so when the process
dies the last name printed is the case that killed it; `--only NAME` runs that
case alone (gpu_check.sh reruns it under gdb for a native backtrace). Cases:
unbatched inputs, empty batches, single pixels, C = 1, windows with no tap in
bounds, NaN/inf, argument errors (raised before any kernel), integer dtypes,
both layouts, every floating dtype, forward with and without indices,
backward and autograd.

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
]
# Arguments torch rejects: both must raise, with the same type, before any kernel.
ERRORS = [
    ("error_pad_unbatched", (2, 5, 5), [2, 2], [1, 1], [2, 2], [1, 1], False, "contiguous"),
    ("error_pad_batched", (1, 2, 5, 5), [2, 2], [1, 1], [2, 2], [1, 1], False, "contiguous"),
    ("error_pad_empty", (0, 2, 5, 5), [3, 3], [1, 1], [2, 2], [3, 3], False, "contiguous"),
    ("error_too_small", (1, 2, 3, 3), [5, 5], [1, 1], [0, 0], [1, 1], False, "contiguous"),
    ("error_zero_channels", (1, 0, 4, 4), [2, 2], [2, 2], [0, 0], [1, 1], False, "contiguous"),
]


def make(shape, dtype, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-4, 5, shape, generator=g).to(torch.float64)
    if x.numel():
        r = torch.rand(shape, generator=g)
        x = torch.where(r < 0.05, torch.full_like(x, math.nan), x)
        x = torch.where((r >= 0.05) & (r < 0.25), torch.full_like(x, -math.inf), x)
    x = x.to(dtype).to(DEVICE)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def same(a, b):
    if a.shape != b.shape or a.dtype != b.dtype or (a.numel() and a.stride() != b.stride()):
        return False
    a, b = a.cpu(), b.cpu()
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))


def run_shape(case, dtype):
    _, shape, k, s, p, d, ceil, layout = case
    x = make(shape, dtype, layout)
    ref, ref_idx = torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, ceil)
    out, idx = ops.max_pool2d_with_indices(x, k, s, p, d, ceil)
    problems = []
    if not same(out, ref):
        problems.append("values")
    # PyTorch CUDA's own channels-last index is 0 where no tap beats -inf; ours too.
    if not torch.equal(idx.cpu(), ref_idx.cpu()):
        problems.append("indices")
    if not same(ops.max_pool2d(x, k, s, p, d, ceil), ref):
        problems.append("values (no-indices op)")
    g = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(dtype)
    g = g.to(DEVICE).contiguous(
        memory_format=torch.channels_last if layout == "channels_last" and ref.dim() == 4 else torch.contiguous_format)
    got = ops.max_pool2d_with_indices_backward(g, x, k, s, p, d, ceil, ref_idx)
    if DEVICE == "cpu" and dtype in (torch.float16, torch.bfloat16):
        # fastpool's CPU backward sums half types in float and rounds once (torch CPU rounds every add).
        want = torch.ops.aten.max_pool2d_with_indices_backward(g.float(), x.float(), k, s, p, d, ceil,
                                                               ref_idx).to(dtype)
    else:  # torch CUDA gathers in float and rounds once, as fastpool does: the same bits
        want = torch.ops.aten.max_pool2d_with_indices_backward(g, x, k, s, p, d, ceil, ref_idx)
    if not same(got, want):
        problems.append("backward")
    xa = x.detach().clone().requires_grad_()
    fastpool.max_pool2d(xa, k, s, p, d, ceil_mode=ceil).sum().backward()
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return problems


def run_error(case, dtype):
    _, shape, k, s, p, d, ceil, layout = case
    x = make(shape, dtype, layout)
    try:
        torch.ops.aten.max_pool2d_with_indices(x, k, s, p, d, ceil)
    except Exception as e:  # noqa: BLE001
        ref = e
    else:
        return ["torch did not raise"]
    for fn in (ops.max_pool2d_with_indices, ops.max_pool2d):
        try:
            fn(x, k, s, p, d, ceil)
        except Exception as e:  # noqa: BLE001
            if type(e) is not type(ref):
                return [f"raised {type(e).__name__}, torch {type(ref).__name__}"]
        else:
            return ["did not raise"]
    return []


def run_integer():
    x = torch.randint(0, 9, (1, 2, 4, 4), device=DEVICE)
    try:
        out = ops.max_pool2d_with_indices(x, [2, 2], [], [0, 0], [1, 1], False)
    except NotImplementedError:
        return [] if DEVICE == "cuda" else ["CPU raised for an integer input"]
    if DEVICE == "cuda":
        return ["integer input did not raise NotImplementedError"]
    return [] if same(out[0], torch.nn.functional.max_pool2d(x, 2)) else ["integer values"]


def cases():
    for dtype in DTYPES:
        tag = str(dtype).replace("torch.", "")
        for c in SHAPES:
            yield f"{c[0]}[{tag}]", (lambda c=c, dtype=dtype: run_shape(c, dtype))
        for c in ERRORS:
            yield f"{c[0]}[{tag}]", (lambda c=c, dtype=dtype: run_error(c, dtype))
    yield "integer_dtype_error", run_integer


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
