"""One call of each CUDA kernel that the GPU benchmark finds far from the memory
limit, for Nsight Compute to explain (gpu_check.sh's `profile` step runs this
under `ncu`, which profiles only fastpool's grid_stride_kernel launches).

The 2026-11-27 H200 run: the ResNet-50 stem's NCHW backward (band gather) at
19% of the stream roofline where the same kernel on NHWC reaches 55%, and the
NCHW forward at 67% where NHWC reaches 100%. Whether such a kernel is bound by
memory, by instructions or by occupancy decides what to change; ncu's
SpeedOfLight, LaunchStats, Occupancy and WarpStateStats sections say which.

Each case prints its label before its kernel runs, so the ncu report's
kernels (in launch order) map to the labels.

    python benchmarks/gpu_profile.py            # under ncu, or alone: times each call
    python benchmarks/gpu_profile.py --device cpu --scale 8   # a check of this script without a GPU
"""
import argparse
import time

import torch

import fastpool  # noqa: F401  (registers torch.ops.fastpool)

ops = torch.ops.fastpool

# (label, input shape, kernel, stride, padding, layout)
CASES = [
    ("stem", (32, 64, 112, 112), [3, 3], [2, 2], [1, 1], "contiguous"),
    ("stem", (32, 64, 112, 112), [3, 3], [2, 2], [1, 1], "channels_last"),
    ("vgg16.pool2@112px", (32, 128, 56, 56), [2, 2], [2, 2], [0, 0], "contiguous"),
]


def timed(label, fn, device):
    print(label, flush=True)
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        torch.cuda.synchronize()
        elapsed_us = start.elapsed_time(end) * 1e3
    else:
        t0 = time.perf_counter()
        out = fn()
        elapsed_us = (time.perf_counter() - t0) * 1e6
    print(f"  {elapsed_us:.1f} us (one call, cold)", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scale", type=int, default=1, help="divide the batch by this (a quick check)")
    opts = parser.parse_args()
    torch.manual_seed(0)
    for name, shape, k, s, p, layout in CASES:
        shape = (max(1, shape[0] // opts.scale),) + shape[1:]
        x = torch.randn(shape, device=opts.device)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        args = (k, s, p, [1, 1], False)
        tag = f"{name} float32 {layout}"
        timed(f"{tag} forward (values)", lambda: ops.max_pool2d(x, *args), opts.device)
        out, idx = timed(f"{tag} forward with indices", lambda: ops.max_pool2d_with_indices(x, *args), opts.device)
        grad = torch.randn_like(out)
        timed(f"{tag} backward", lambda: ops.max_pool2d_with_indices_backward(grad, x, *args, idx), opts.device)


if __name__ == "__main__":
    main()
