"""End to end: a ResNet-style network with torch's MaxPool2d vs fastpool's.

The network is defined here (no download): ResNet stem (conv7x7/2, BN, ReLU,
max pool k3 s2 p1), four stages of one BasicBlock each (a "ResNet-10"),
global average pool, linear head. Timed: an inference pass (no_grad, eval) and
a training step (forward, cross-entropy, backward, SGD step).

Memory: the bytes saved for backward (torch.autograd.graph.saved_tensors_hooks,
distinct storages) during one training forward, and on CPU the peak RSS growth
of one training step in a fresh subprocess (malloc's mmap threshold pinned so
freed tensors go back to the OS); on CUDA torch.cuda.max_memory_allocated.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys


def build_model(pool_cls, width=64, num_classes=1000):
    import torch.nn as nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.down is None else self.down(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + idt)

    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
        pool_cls(kernel_size=3, stride=2, padding=1),
        BasicBlock(w, w, 1), BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 8 * w, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes),
    )


def pool_class(variant, standin=False):
    import torch.nn as nn

    if variant == "torch" or standin:
        return nn.MaxPool2d
    import fastpool

    return fastpool.MaxPool2d


def _setup(variant, layout, dtype, batch, resolution, width, device, standin):
    import torch

    torch.manual_seed(0)
    model = build_model(pool_class(variant, standin), width=width).to(device=device, dtype=getattr(torch, dtype))
    x = torch.randn(batch, 3, resolution, resolution, device=device, dtype=getattr(torch, dtype))
    if layout == "nhwc":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 1000, (batch,), device=device)
    return model, x, target


def _steps(model, x, target):
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def infer():
        model.eval()
        with torch.no_grad():
            return model(x)

    def train():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).float(), target)
        loss.backward()
        opt.step()

    return infer, train


def saved_bytes(model, x, target):
    """Bytes of distinct storages autograd saves for backward in one training forward."""
    import torch
    import torch.nn.functional as F

    seen = {}

    def pack(t):
        try:
            st = t.untyped_storage()
            seen[st.data_ptr()] = st.nbytes()
        except Exception:  # noqa: BLE001  (opaque tensors have no storage)
            pass
        return t

    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x).float(), target)
    del loss
    return sum(v for k, v in seen.items() if k not in params)


def _read_status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


def memprobe(variant, layout, dtype, batch, resolution, width, threads, standin):
    """Run in a fresh process: peak RSS growth of one (warm) training step."""
    import torch

    torch.set_num_threads(threads)
    model, x, target = _setup(variant, layout, dtype, batch, resolution, width, "cpu", standin)
    _, train = _steps(model, x, target)
    train()  # warm: lazy inits, grads allocated
    for p in model.parameters():
        p.grad = None
    import gc

    gc.collect()
    base = _read_status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        hwm_ok = True
    except OSError:
        hwm_ok = False
    train()
    peak = _read_status("VmHWM")
    return {"rss_before": base, "rss_peak": peak, "peak_growth": (peak - base) if hwm_ok and peak else None}


def _memprobe_subprocess(variant, layout, dtype, batch, resolution, width, threads, standin):
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = str(256 * 1024)  # large tensors are mmapped and returned on free
    env["MALLOC_TRIM_THRESHOLD_"] = str(256 * 1024)
    cmd = [sys.executable, "-m", "fastpool.bench.e2e", json.dumps(
        [variant, layout, dtype, batch, resolution, width, threads, standin])]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"rc {out.returncode}"}
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}


def run_e2e(cfg, device, threads, standin, rounds, tick=None):
    """Returns a list of records, one per (layout, dtype, pass)."""
    import torch

    from .measure import time_fn

    results = []
    for dtype in cfg["dtypes"]:
        for layout in cfg["layouts"]:
            setups = {}
            for variant in ("torch", "fastpool"):
                try:
                    setups[variant] = _setup(variant, layout, dtype, cfg["batch"], cfg["resolution"], cfg["width"],
                                             device, standin)
                except Exception as e:  # noqa: BLE001
                    setups[variant] = e
            rec_base = dict(network="ResNet-10 style (stem + 4 BasicBlocks)", batch=cfg["batch"],
                            resolution=cfg["resolution"], width=cfg["width"], layout=layout, dtype=dtype,
                            device=device)
            fns, errors = {}, {}
            for variant, s in setups.items():
                if isinstance(s, Exception):
                    errors[variant] = f"{type(s).__name__}: {s}"
                    continue
                infer, train = _steps(*s)
                try:
                    infer(), train()  # warm-up
                    fns[variant] = {"inference": infer, "train_step": train}
                except Exception as e:  # noqa: BLE001
                    errors[variant] = f"{type(e).__name__}: {e}"
            for pass_ in ("inference", "train_step"):
                times = {v: [] for v in fns}
                for _ in range(rounds):
                    for v in fns:
                        med, _ = time_fn(fns[v][pass_], cfg["min_run_time"], threads)
                        times[v].append(med)
                    if tick:
                        tick()
                rec = dict(rec_base, **{"pass": pass_})
                rec["impls"] = {v: {"median_s": statistics.median(t), "rounds_s": t} for v, t in times.items()}
                rec["errors"] = errors
                if "torch" in times and "fastpool" in times:
                    rec["speedup"] = statistics.median([a / b for a, b in zip(times["torch"], times["fastpool"])])
                if pass_ == "train_step":
                    mem = {}
                    for v, s in setups.items():
                        if isinstance(s, Exception):
                            continue
                        m = {"saved_for_backward_bytes": saved_bytes(*s)}
                        if device == "cuda":
                            torch.cuda.synchronize()
                            torch.cuda.reset_peak_memory_stats()
                            base = torch.cuda.memory_allocated()
                            fns[v]["train_step"]()
                            torch.cuda.synchronize()
                            m["peak_growth"] = torch.cuda.max_memory_allocated() - base
                            m["peak_source"] = "torch.cuda.max_memory_allocated"
                        elif cfg.get("memory_probe"):
                            m.update(_memprobe_subprocess(v, layout, dtype, cfg["batch"], cfg["resolution"],
                                                          cfg["width"], threads, standin))
                            m["peak_source"] = "VmHWM - VmRSS of one warm step in a fresh process"
                        mem[v] = m
                    rec["memory"] = mem
                results.append(rec)
            del setups, fns
    return results


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(memprobe(*args)))
