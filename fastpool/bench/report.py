"""Output: machine metadata, the terminal table, JSON, Markdown, PNG charts, run-to-run comparison."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess

SCHEMA = "fastpool-bench/1"
PEER_ORDER = ("torch", "torch_cl", "onednn", "inductor")
PEER_LABEL = {"torch": "torch NCHW", "torch_cl": "torch CL", "onednn": "oneDNN", "inductor": "Inductor"}


# ----------------------------------------------------------------------------- metadata
def _lscpu():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except Exception:  # noqa: BLE001
        return {}
    d = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            d[k.strip()] = v.strip()
    return d


def _git(root, *args):
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        return None


def machine_info(device, threads, api):
    import torch

    lscpu = _lscpu()
    cpu_model = lscpu.get("Model name") or platform.processor()
    flags = lscpu.get("Flags", "").split()
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpu_caches": {k: lscpu[k] for k in ("L1d cache", "L2 cache", "L3 cache") if k in lscpu},
        "cpu_simd": [f for f in ("avx2", "avx512f", "avx512bw", "avx512_bf16", "amx_bf16") if f in flags],
        "hypervisor": lscpu.get("Hypervisor vendor"),
        "threads": threads,
        "device": device,
        "torch_version": torch.__version__,
        "torch_mkldnn": bool(torch.backends.mkldnn.is_available()),
        "gpu": torch.cuda.get_device_name() if device == "cuda" and torch.cuda.is_available() else None,
        "cuda_version": torch.version.cuda,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_start"] = f.read().split()[:3]
    except Exception:  # noqa: BLE001
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_kb"] = int(f.readline().split()[1])
    except Exception:  # noqa: BLE001
        pass
    fp = {"standin": api.standin}
    if api.module is not None:
        try:
            fp["build_info"] = _jsonable(api.module._C.build_info())
        except Exception as e:  # noqa: BLE001
            fp["build_info_error"] = str(e)
        fp["version"] = getattr(api.module, "__version__", None)
        root = os.path.dirname(os.path.dirname(os.path.abspath(api.module.__file__)))
        fp["path"] = os.path.dirname(os.path.abspath(api.module.__file__))
    else:
        root = os.getcwd()
        fp["import_error"] = api.import_error
    fp["git_commit"] = _git(root, "rev-parse", "HEAD")
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    fp["git_dirty"] = bool(dirty) if fp["git_commit"] else None
    fp["git_describe"] = _git(root, "log", "-1", "--format=%h %s")
    fp["env_FASTPOOL_CPU_ISA"] = os.environ.get("FASTPOOL_CPU_ISA")
    info["fastpool"] = fp
    return info


def cpu_snapshot():
    """(busy jiffies of the whole machine, total jiffies, this process's CPU seconds incl. children)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        t = os.times()
        return sum(v[:8]) - idle, sum(v[:8]), t.user + t.system + t.children_user + t.children_system
    except Exception:  # noqa: BLE001
        return None


def load_during(start):
    """How busy the machine was with other work while the suite ran (a noise indicator)."""
    end = cpu_snapshot()
    out = {}
    try:
        with open("/proc/loadavg") as f:
            out["loadavg_end"] = f.read().split()[:3]
    except Exception:  # noqa: BLE001
        pass
    if start and end:
        hz = os.sysconf("SC_CLK_TCK")
        busy, total = end[0] - start[0], end[1] - start[1]
        own = (end[2] - start[2]) * hz
        if total > 0:
            out["machine_busy_pct"] = round(100.0 * busy / total, 1)
            out["others_busy_pct"] = round(max(0.0, 100.0 * (busy - own) / total), 1)
    return out


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    return str(o)


# ----------------------------------------------------------------------------- formatting
def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_x(v):
    return "-" if v is None else f"{v:.2f}x"


def fmt_pct(v):
    return "-" if v is None else f"{v:.0f}%"


def fmt_bytes(b):
    if b is None:
        return "-"
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(b) >= div:
            return f"{b / div:.1f} {unit}"
    return f"{b} B"


def check_str(c):
    chk = c.get("check")
    if chk is True and (c.get("check_detail") or {}).get("reference"):
        return "ok (CPU ref)"  # torch CUDA adds atomically; fastpool equals torch CPU
    return "ok" if chk is True else ("MISMATCH" if chk is False else ("-" if chk is None else "ERR"))


def case_rows(cases, peers_present):
    """Rows (list of str) for the per-case table; header first."""
    header = ["group", "case", "params", "dtype", "layout", "dir", "fastpool", "roofline", "fp %roof"]
    copy_bw = any("pct_copy_bw" in c["impls"].get("fastpool", {}) for c in cases)
    if copy_bw:
        header.append("fp %copy-bw")
    for p in peers_present:
        header += [PEER_LABEL.get(p, p), f"vs {PEER_LABEL.get(p, p)}"]
    header += ["check"]
    rows = [header]
    for c in cases:
        im = c["impls"]
        fp, rf = im.get("fastpool", {}), im.get("roofline", {})
        row = [c["group"], c["case"], c["params"], c["dtype"], c["layout"], c["direction"],
               fmt_time(fp.get("median_s")) if fp.get("median_s") else ("ERR" if fp.get("error") else "-"),
               fmt_time(rf.get("median_s")), fmt_pct(fp.get("pct_roofline"))]
        if copy_bw:
            row.append(fmt_pct(fp.get("pct_copy_bw")))
        for p in peers_present:
            d = im.get(p)
            if d is None:
                row += ["", ""]
            elif d.get("median_s") is None:
                row += ["n/a" if not d.get("error") else "ERR", "-"]
            else:
                row += [fmt_time(d["median_s"]), fmt_x(d.get("speedup"))]
        row.append(check_str(c))
        rows.append(row)
    return rows


def peers_in(cases):
    seen = set()
    for c in cases:
        seen.update(c["impls"])
    extra = sorted(p for p in seen if p.startswith("fastpool["))
    return [p for p in PEER_ORDER if p in seen] + extra


def text_table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        cells = (str(v).ljust(w) if i < 6 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
        lines.append("  ".join(cells))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(rows):
    align = "|".join("---" if i < 6 else "---:" for i in range(len(rows[0])))
    out = ["| " + " | ".join(rows[0]) + " |", "|" + align + "|"]
    for r in rows[1:]:
        out.append("| " + " | ".join(str(v) for v in r) + " |")
    return "\n".join(out)


def e2e_rows(e2e):
    rows = [["pass", "dtype", "layout", "batch", "torch MaxPool2d", "fastpool MaxPool2d", "speed-up",
             "saved for bwd (torch / fastpool)", "peak step growth (torch / fastpool)"]]
    for r in e2e:
        t = r["impls"].get("torch", {}).get("median_s")
        f = r["impls"].get("fastpool", {}).get("median_s")
        mem = r.get("memory", {})
        sb = " / ".join(fmt_bytes(mem.get(v, {}).get("saved_for_backward_bytes")) for v in ("torch", "fastpool"))
        pk = " / ".join(fmt_bytes(mem.get(v, {}).get("peak_growth")) for v in ("torch", "fastpool"))
        rows.append([r["pass"], r["dtype"], r["layout"], str(r["batch"]), fmt_time(t), fmt_time(f),
                     fmt_x(r.get("speedup")), sb if mem else "", pk if mem else ""])
    return rows


def headline_summary(cases):
    """Geometric-mean speed-ups and roofline per (group, direction)."""
    acc = {}
    for c in cases:
        fp = c["impls"].get("fastpool", {})
        if fp.get("median_s") is None:
            continue
        key = (c["group"], c["direction"])
        a = acc.setdefault(key, {"n": 0, "same": [], "nchw": [], "roof": []})
        a["n"] += 1
        same = "torch" if c["layout"] == "nchw" else "torch_cl"
        if c["impls"].get(same, {}).get("speedup"):
            a["same"].append(c["impls"][same]["speedup"])
        if c["impls"].get("torch", {}).get("speedup"):
            a["nchw"].append(c["impls"]["torch"]["speedup"])
        if fp.get("pct_roofline"):
            a["roof"].append(fp["pct_roofline"])
    rows = [["group", "direction", "cases", "geomean vs torch NCHW", "geomean vs torch same layout",
             "min (same layout)", "max (same layout)", "median % roofline"]]
    for (g, d), a in acc.items():
        s = a["same"]
        rows.append([g, d, str(a["n"]), fmt_x(_geomean(a["nchw"])) if a["nchw"] else "-",
                     fmt_x(_geomean(s)) if s else "-", fmt_x(min(s)) if s else "-",
                     fmt_x(max(s)) if s else "-", fmt_pct(statistics.median(a["roof"])) if a["roof"] else "-"])
    return rows


# The lead's targets for the ResNet-50 stem in fp32 (reported, not enforced).
TARGETS = {"fwd": (10.0, 70.0), "bwd": (2.0, 50.0)}


def target_rows(cases):
    rows = [["case", "dtype", "layout", "dir", "vs torch NCHW", "target", "% roofline", "target", "met"]]
    for c in cases:
        if c["case"] != "resnet50.stem" or c["dtype"] != "float32" or c["direction"] not in TARGETS:
            continue
        sp_t, rf_t = TARGETS[c["direction"]]
        sp = c["impls"].get("torch", {}).get("speedup")
        rf = c["impls"].get("fastpool", {}).get("pct_roofline")
        # the speed-up target is against torch eager NCHW on NCHW input; the roofline one holds in both layouts
        need_sp = c["layout"] == "nchw"
        ok = (rf is not None and rf >= rf_t) and (not need_sp or (sp is not None and sp >= sp_t))
        rows.append([c["case"], c["dtype"], c["layout"], c["direction"], fmt_x(sp),
                     f">= {sp_t:g}x" if need_sp else "(NCHW only)", fmt_pct(rf), f">= {rf_t:g}%",
                     "yes" if ok else "no"])
    return rows if len(rows) > 1 else None


# Issue 11's target: a call's own cost within 1 us of torch's.
OVERHEAD_TARGET_S = 1e-6


def overhead_rows(cases):
    """The per-call cases: fastpool's time minus torch's in the same layout."""
    rows = [["case", "layout", "dir", "fastpool", "torch same layout", "difference", "target", "met"]]
    for c in cases:
        if c["group"] != "calls":
            continue
        fp_impl = c["impls"].get("fastpool", {})
        th_impl = c["impls"].get("torch" if c["layout"] == "nchw" else "torch_cl", {})
        fp, th = fp_impl.get("median_s"), th_impl.get("median_s")
        if fp is None or th is None:
            continue
        # the median of each round's difference: both were timed side by side in it
        fr, tr = fp_impl.get("rounds_s") or [], th_impl.get("rounds_s") or []
        diff = statistics.median(f - t for f, t in zip(fr, tr)) if fr and len(fr) == len(tr) else fp - th
        rows.append([c["case"], c["layout"], c["direction"], fmt_time(fp), fmt_time(th),
                     ("+" if diff >= 0 else "-") + fmt_time(abs(diff)), f"<= +{fmt_time(OVERHEAD_TARGET_S)}",
                     "yes" if diff <= OVERHEAD_TARGET_S else "no"])
    return rows if len(rows) > 1 else None


def _geomean(xs):
    import math

    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def render_text(result):
    m = result["meta"]
    fp = m["fastpool"]
    parts = [f"fastpool bench - suite {result['config']['suite']} - {m['date']}",
             f"{m['cpu_model']} ({m['cpu_count']} CPUs, {m['threads']} threads), device {m['device']}"
             + (f" [{m['gpu']}]" if m.get("gpu") else "") + f", torch {m['torch_version']}",
             f"fastpool {fp.get('git_describe') or '?'}{' (dirty)' if fp.get('git_dirty') else ''}"
             + (f", build {fp.get('build_info')}" if fp.get("build_info") else "")]
    if fp.get("standin"):
        parts.append("!!! STAND-IN RUN: 'fastpool' is torch itself (development only) !!!")
    cases = result["cases"]
    if cases:
        parts += ["", "Per case: median time; 'vs X' = X's time / fastpool's time (>1: fastpool faster); "
                      "%roof = stream roofline time / fastpool time", text_table(case_rows(cases, peers_in(cases)))]
        parts += ["", text_table(headline_summary(cases))]
        tr = target_rows(cases)
        if tr:
            parts += ["", "Targets (ResNet-50 stem, fp32):", text_table(tr)]
        ov = overhead_rows(cases)
        if ov:
            parts += ["", "Per-call cost (fastpool - torch, same layout):", text_table(ov)]
    if result.get("e2e"):
        parts += ["", "End to end:", text_table(e2e_rows(result["e2e"]))]
    for s in result.get("skipped", []):
        parts.append(f"skipped: {s}")
    ld = result.get("load") or {}
    parts.append(f"total {result['elapsed_s']:.0f} s; CPU time used by other processes during the run: "
                 f"{ld.get('others_busy_pct', '?')}% of the machine")
    return "\n".join(parts)


def render_markdown(result):
    m = result["meta"]
    fp = m["fastpool"]
    cases = result["cases"]
    lines = [f"# fastpool benchmark - suite `{result['config']['suite']}`", "",
             f"- date: {m['date']}",
             f"- machine: {m['cpu_model']}, {m['cpu_count']} CPUs ({m.get('hypervisor') or 'bare metal'}), "
             f"caches {', '.join(f'{k} {v}' for k, v in m.get('cpu_caches', {}).items())}",
             f"- threads: {m['threads']}, OMP_WAIT_POLICY={m.get('omp_wait_policy')}, device: {m['device']}"
             + (f" ({m['gpu']})" if m.get("gpu") else ""),
             f"- torch {m['torch_version']} (mkldnn: {m['torch_mkldnn']}), python {m['python']}",
             f"- fastpool commit: `{fp.get('git_commit')}`{' (working tree dirty)' if fp.get('git_dirty') else ''}"
             f" - {fp.get('git_describe')}",
             f"- fastpool build: `{json.dumps(fp.get('build_info'))}`",
             f"- rounds per case: {result['config']['repeats']}, blocked_autorange min_run_time "
             f"{result['config']['min_run_time']} s", ""]
    if m.get("copy_bandwidth_GBps"):
        lines[-1:-1] = [f"- device copy bandwidth: {m['copy_bandwidth_GBps']} GB/s (read + write of a 1 GiB "
                        "`copy_`); % copy-bw = (bytes that must move / that bandwidth) / kernel time"]
    if fp.get("standin"):
        lines += ["**STAND-IN RUN: 'fastpool' is torch itself (development only).**", ""]
    lines += ["Speed-up = peer time / fastpool time (>1: fastpool faster). % roofline = time of reading the "
              "must-read bytes once (amax) plus writing the must-write bytes once (fill_), timed together in "
              "the same run, divided by the kernel's time. check: `ok` = fastpool's result equals torch's bit for "
              "bit on the benchmarked input (`ok (CPU ref)`: torch CPU's, where torch CUDA's backward adds "
              "atomically in no fixed order and differs); `MISMATCH` = anything else (details in the JSON's "
              "check_detail).", ""]
    if cases:
        lines += ["## Summary", "", md_table(headline_summary(cases)), ""]
        tr = target_rows(cases)
        if tr:
            lines += ["Targets for the ResNet-50 stem in fp32 (speed-up vs torch eager NCHW on NCHW input; "
                      "% roofline in both layouts):", "", md_table(tr), ""]
        ov = overhead_rows(cases)
        if ov:
            lines += ["Per-call cost: a 1x8x8x8 map, whose pooling takes well under a microsecond; fastpool's "
                      "time minus torch's in the same layout (difference: the median over rounds of the two "
                      "timed side by side):", "", md_table(ov), ""]
        for g in dict.fromkeys(c["group"] for c in cases):
            gc_ = [c for c in cases if c["group"] == g]
            lines += [f"## {g}", "", md_table(case_rows(gc_, peers_in(gc_))), ""]
    if result.get("e2e"):
        lines += ["## End to end (ResNet-style network)", "", md_table(e2e_rows(result["e2e"])), ""]
    if result.get("skipped"):
        lines += ["## Skipped", ""] + [f"- {s}" for s in result["skipped"]] + [""]
    ld = result.get("load") or {}
    lines.append(f"Total run time {result['elapsed_s']:.0f} s. Other processes used {ld.get('others_busy_pct', '?')}% "
                 f"of the machine's CPU time during the run (load average at start {m.get('loadavg_start')}, "
                 f"end {ld.get('loadavg_end')}).")
    return "\n".join(lines) + "\n"


def result_stem(result):
    m = result["meta"]
    d = m["date"].replace(":", "").replace("+0000", "Z")[:17]
    commit = (m["fastpool"].get("git_commit") or "nogit")[:7]
    return f"{d}-{result['config']['suite']}-{m['device']}-{commit}"


def write_outputs(result, out_dir, stem=None):
    os.makedirs(out_dir, exist_ok=True)
    stem = stem or result_stem(result)
    jp = os.path.join(out_dir, stem + ".json")
    mp = os.path.join(out_dir, stem + ".md")
    with open(jp, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(mp, "w") as f:
        f.write(render_markdown(result))
    return jp, mp


# ----------------------------------------------------------------------------- plots
def write_plots(result, out_dir, stem=None):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed: no plots (pip install matplotlib)"
    stem = stem or result_stem(result)
    paths = []
    cases = [c for c in result["cases"] if c["group"] != "sweep" and c["impls"].get("fastpool", {}).get("median_s")]
    if cases:
        short = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "float64": "f64"}
        labels = [f"{c['case']} {short.get(c['dtype'], c['dtype'])} {c['layout']} {c['direction']}" for c in cases]
        peers = [p for p in peers_in(cases) if not p.startswith("fastpool[")]
        for what, fname in (("speedup", "speedup"), ("pct_roofline", "roofline")):
            fig, ax = plt.subplots(figsize=(10, 0.28 * len(cases) + 1.5))
            names = peers if what == "speedup" else ["fastpool"] + peers
            h = 0.8 / max(1, len(names))
            for j, p in enumerate(names):
                vals = [c["impls"].get(p, {}).get(what) or 0 for c in cases]
                ax.barh([i + j * h for i in range(len(cases))], vals, height=h, label=PEER_LABEL.get(p, p))
            ax.set_yticks([i + 0.4 - h / 2 for i in range(len(cases))])
            ax.set_yticklabels(labels, fontsize=6)
            ax.invert_yaxis()
            if what == "speedup":
                ax.set_xscale("log")
                ax.axvline(1, color="k", lw=0.8)
                ax.set_xlabel("fastpool speed-up over peer (peer time / fastpool time)")
            else:
                ax.axvline(100, color="k", lw=0.8)
                ax.set_xlabel("% of stream roofline (roofline time / kernel time)")
            ax.legend(fontsize=7)
            paths.append(_save_figure(plt, fig, out_dir, f"{stem}-{fname}.png"))
    sweep = [c for c in result["cases"] if c["group"] == "sweep"]
    if sweep:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for layout, ls in (("nchw", "-"), ("nhwc", "--")):
            cs = sorted((c for c in sweep if c["layout"] == layout and c["direction"] == "fwd"),
                        key=lambda c: c["bytes"]["read"] + c["bytes"]["write"])
            if not cs:
                continue
            xs = [(c["bytes"]["read"] + c["bytes"]["write"]) / 2**20 for c in cs]
            for name in ["fastpool", "roofline", "torch" if layout == "nchw" else "torch_cl"]:
                ys = [(c["bytes"]["read"] + c["bytes"]["write"]) / c["impls"][name]["median_s"] / 1e9
                      if c["impls"].get(name, {}).get("median_s") else float("nan") for c in cs]
                ax.plot(xs, ys, ls, marker="o", label=f"{PEER_LABEL.get(name, name)} ({layout})")
        ax.set_xscale("log")
        ax.set_xlabel("working set (MiB, must-read + must-write bytes)")
        ax.set_ylabel("effective bandwidth (GB/s)")
        ax.set_title("size sweep: max_pool2d k3 s2 p1, fp32, forward")
        ax.legend(fontsize=7)
        paths.append(_save_figure(plt, fig, out_dir, f"{stem}-sweep.png"))
    return paths, None


def _save_figure(plt, fig, out_dir, name):
    fig.tight_layout()
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- compare
def case_key(c):
    return (c["group"], c["case"], c["dtype"], c["layout"], c["direction"])


def compare(path_a, path_b):
    """How much two runs of the same suite differ: per-case ratios and a summary."""
    with open(path_a) as f:
        a = json.load(f)
    with open(path_b) as f:
        b = json.load(f)
    ia = {case_key(c): c for c in a["cases"]}
    rows = [["case", "dtype", "layout", "dir", "fastpool A", "fastpool B", "B/A", "vs torch A", "vs torch B",
             "B/A"]]
    t_dev, s_dev = [], []
    for c in b["cases"]:
        k = case_key(c)
        if k not in ia:
            continue
        ca = ia[k]
        same = "torch" if c["layout"] == "nchw" else "torch_cl"
        fa = ca["impls"].get("fastpool", {}).get("median_s")
        fb = c["impls"].get("fastpool", {}).get("median_s")
        sa = ca["impls"].get(same, {}).get("speedup")
        sb = c["impls"].get(same, {}).get("speedup")
        tr = fb / fa if fa and fb else None
        sr = sb / sa if sa and sb else None
        if tr:
            t_dev.append(abs(tr - 1))
        if sr:
            s_dev.append(abs(sr - 1))
        rows.append([c["case"], c["dtype"], c["layout"], c["direction"], fmt_time(fa), fmt_time(fb),
                     "-" if tr is None else f"{tr:.3f}", fmt_x(sa), fmt_x(sb), "-" if sr is None else f"{sr:.3f}"])
    summary = {
        "cases": len(rows) - 1,
        "fastpool_time_median_abs_diff": statistics.median(t_dev) if t_dev else None,
        "fastpool_time_max_abs_diff": max(t_dev) if t_dev else None,
        "speedup_median_abs_diff": statistics.median(s_dev) if s_dev else None,
        "speedup_max_abs_diff": max(s_dev) if s_dev else None,
    }
    return rows, summary


def render_compare(path_a, path_b):
    rows, s = compare(path_a, path_b)

    def pc(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    text = [f"A = {path_a}", f"B = {path_b}", md_table(rows), "",
            f"{s['cases']} cases. fastpool time B vs A: median |diff| {pc(s['fastpool_time_median_abs_diff'])}, "
            f"max {pc(s['fastpool_time_max_abs_diff'])}. Speed-up over torch (same layout) B vs A: median |diff| "
            f"{pc(s['speedup_median_abs_diff'])}, max {pc(s['speedup_max_abs_diff'])}."]
    return "\n".join(text), s
