"""Writes BENCHMARKS.md (and prints the README's summary table) from committed result files.

    python benchmarks/make_summary.py RUN_A.json RUN_B.json [--out BENCHMARKS.md]

RUN_A and RUN_B are two runs of the same suite on the same machine, taken one
after the other; A's numbers are reported, B is there to say how much two runs
differ. Everything comes from the JSON (fastpool.bench's output).
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fastpool.bench import report  # noqa: E402
from fastpool.bench.report import fmt_pct, fmt_time, fmt_x, md_table  # noqa: E402


def _load(p):
    with open(p) as f:
        return json.load(f)


def _same(c):
    return "torch" if c["layout"] == "nchw" else "torch_cl"


def _sp(c, peer):
    return c["impls"].get(peer, {}).get("speedup")


def headline_table(cases):
    rows = [["case", "dtype", "layout", "direction", "fastpool", "% roofline", "vs torch NCHW", "vs torch CL",
             "vs oneDNN", "vs Inductor", "check"]]
    for c in cases:
        if c["group"] != "headline":
            continue
        fp = c["impls"]["fastpool"]
        rows.append([c["case"], c["dtype"], c["layout"].upper(), c["direction"], fmt_time(fp.get("median_s")),
                     fmt_pct(fp.get("pct_roofline")), fmt_x(_sp(c, "torch")), fmt_x(_sp(c, "torch_cl")),
                     fmt_x(_sp(c, "onednn")), fmt_x(_sp(c, "inductor")), report.check_str(c)])
    return rows


def readme_table(cases):
    rows = [["case (fp32 unless noted)", "layout", "forward (no indices)", "forward + indices", "backward",
             "training step"]]
    by = {(c["case"], c["dtype"], c["layout"], c["direction"]): c for c in cases if c["group"] == "headline"}
    for case in ("resnet50.stem", "vgg16.pool2@112px"):
        for dtype in ("float32", "bfloat16"):
            for layout in ("nchw", "nhwc"):
                cells = []
                for d in ("fwd", "fwd_idx", "bwd", "train"):
                    c = by.get((case, dtype, layout, d))
                    if c is None:
                        cells.append("-")
                        continue
                    cells.append(f"{fmt_x(_sp(c, _same(c)))} ({fmt_pct(c['impls']['fastpool'].get('pct_roofline'))})")
                if any(x != "-" for x in cells):
                    name = case + ("" if dtype == "float32" else " bf16")
                    rows.append([name, layout.upper()] + cells)
    return rows


def network_table(cases):
    rows = [["case", "input", "pooling", "layout", "fwd vs torch (same layout)", "fwd % roofline",
             "fwd vs oneDNN", "bwd vs torch (same layout)", "bwd % roofline"]]
    by = {}
    for c in cases:
        if c["group"] == "networks" and c["dtype"] == "float32":
            by.setdefault((c["case"], c["layout"]), {})[c["direction"]] = c
    for (name, layout), d in by.items():
        f, b = d.get("fwd"), d.get("bwd")
        any_c = f or b
        rows.append([name, "x".join(map(str, any_c["shape"])), any_c["params"], layout.upper(),
                     fmt_x(_sp(f, _same(f))) if f else "-",
                     fmt_pct(f["impls"]["fastpool"].get("pct_roofline")) if f else "-",
                     fmt_x(_sp(f, "onednn")) if f else "-",
                     fmt_x(_sp(b, _same(b))) if b else "-",
                     fmt_pct(b["impls"]["fastpool"].get("pct_roofline")) if b else "-"])
    return rows


def sweep_table(cases):
    rows = [["input", "working set", "layout", "fastpool", "GB/s", "roofline GB/s", "torch (same layout) GB/s",
             "speed-up", "% roofline"]]
    for c in cases:
        if c["group"] != "sweep" or c["direction"] != "fwd":
            continue
        nb = c["bytes"]["read"] + c["bytes"]["write"]
        im = c["impls"]

        def bw(name):
            t = im.get(name, {}).get("median_s")
            return f"{nb / t / 1e9:.1f}" if t else "-"

        rows.append(["x".join(map(str, c["shape"])), report.fmt_bytes(nb), c["layout"].upper(),
                     fmt_time(im["fastpool"].get("median_s")), bw("fastpool"), bw("roofline"), bw(_same(c)),
                     fmt_x(_sp(c, _same(c))), fmt_pct(im["fastpool"].get("pct_roofline"))])
    return rows


def noise(a, b):
    rows, s = report.compare(a, b)
    ra, rb = _load(a), _load(b)
    spreads = [c["impls"]["fastpool"]["spread"] for c in ra["cases"] if c["impls"]["fastpool"].get("spread")
               is not None]
    e2e = []
    ea = {(r["pass"], r["dtype"], r["layout"]): r for r in ra.get("e2e", [])}
    for r in rb.get("e2e", []):
        k = (r["pass"], r["dtype"], r["layout"])
        if k in ea and ea[k].get("speedup") and r.get("speedup"):
            e2e.append(abs(r["speedup"] / ea[k]["speedup"] - 1))
    return rows, s, spreads, e2e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--notes", help="a Markdown file whose text goes under 'Observations'")
    args = ap.parse_args()
    ra = _load(args.run_a)
    m, fp, cases = ra["meta"], ra["meta"]["fastpool"], ra["cases"]
    rows, s, spreads, e2e_noise = noise(args.run_a, args.run_b)

    def pc(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    rel = lambda p: os.path.relpath(p, os.path.dirname(os.path.abspath(args.out)))  # noqa: E731
    lines = [
        "# fastpool benchmark results", "",
        f"Measured {m['date']} on this project's machine: **{m['cpu_model']}**, {m['cpu_count']} vCPUs "
        f"({m.get('hypervisor') or 'bare metal'} VM; {', '.join(f'{k} {v}' for k, v in m['cpu_caches'].items())}; "
        f"{', '.join(m.get('cpu_simd', []))}), {m['threads']} threads, torch {m['torch_version']}, "
        f"python {m['python']}.",
        f"fastpool commit `{fp.get('git_commit')}`{' (+ uncommitted changes)' if fp.get('git_dirty') else ''} "
        f"({fp.get('git_describe')}), build `{json.dumps(fp.get('build_info'))}`.", "",
        f"Reproduce: `python -m fastpool.bench --suite {ra['config']['suite']} --out benchmarks/results` "
        "(methodology: [benchmarks/README.md](benchmarks/README.md)). Raw results: "
        f"[{rel(args.run_a)}]({rel(args.run_a)}) (reported here) and [{rel(args.run_b)}]({rel(args.run_b)}) "
        "(the same suite run again right after, for the noise figures), each with a `.md` twin.", "",
        "How to read: **speed-up** = peer's median time / fastpool's median time in the same run (> 1: fastpool "
        "is faster). **% roofline** = the time to read the bytes the kernel must read once (int32 `amax`) plus "
        "write the bytes it must write once (`fill_`), timed together in the same run, divided by the kernel's "
        "time. Forward: read input, write output (+ int64 indices); backward: read grad_output + indices, write "
        "grad_input.", "",
        "## Run-to-run noise", "",
        f"Two runs of the same suite, back to back ({s['cases']} cases): fastpool's median time differs by "
        f"{pc(s['fastpool_time_median_abs_diff'])} in the median case and by up to "
        f"{pc(s['fastpool_time_max_abs_diff'])}; the speed-up over torch (same layout) by "
        f"{pc(s['speedup_median_abs_diff'])} in the median case, up to {pc(s['speedup_max_abs_diff'])}. "
        f"Within one run, the rounds of a case spread by {pc(statistics.median(spreads) if spreads else None)} "
        f"(median of (max - min) / median over rounds)."
        + (f" End-to-end speed-ups differ by up to {pc(max(e2e_noise))} between the runs." if e2e_noise else "")
        + f" Other processes used {ra.get('load', {}).get('others_busy_pct', '?')}% of the machine's CPU time "
          "during run A (the machine is a shared 2-vCPU VM), so treat differences under ~"
          f"{max(10, round(100 * (s['speedup_median_abs_diff'] or 0.1) * 2)):.0f}% as noise; ratios are "
          "steadier than times because each case times fastpool and its peers in interleaved rounds.", "",
        "## Headline cases", "",
        md_table(headline_table(cases)), "",
    ]
    tr = report.target_rows(cases)
    if tr:
        lines += ["Targets for the ResNet-50 stem in fp32:", "", md_table(tr), ""]
    lines += ["## Summary by group", "", "Geometric means over the group's cases.", "",
              md_table(report.headline_summary(cases)), ""]
    nt = network_table(cases)
    if len(nt) > 1:
        lines += ["## Shapes from real networks (fp32)", "", md_table(nt), ""]
    st = sweep_table(cases)
    if len(st) > 1:
        lines += ["## Size sweep (ResNet-stem pool k3 s2 p1, fp32, forward)", "",
                  f"From cache-resident to larger than the {m['cpu_caches'].get('L3 cache', 'L3')} L3.", "",
                  md_table(st), ""]
    if ra.get("e2e"):
        lines += ["## End to end: ResNet-style network, torch.nn.MaxPool2d vs fastpool.MaxPool2d", "",
                  f"{ra['e2e'][0]['network']}, batch {ra['e2e'][0]['batch']}, {ra['e2e'][0]['resolution']} px. "
                  "Memory: bytes autograd saves for backward (exact), and peak RSS growth of one training step "
                  "in a fresh process.", "", md_table(report.e2e_rows(ra["e2e"])), ""]
    if ra.get("skipped"):
        lines += ["## Not measured", ""] + [f"- {x}" for x in ra["skipped"]] + [""]
    if args.notes:
        with open(args.notes) as f:
            lines += ["## Observations", "", f.read().strip(), ""]
    lines += ["## Run A vs run B, case by case", "", "<details><summary>table</summary>", "", md_table(rows), "",
              "</details>", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {args.out}\n\nREADME summary (speed-up over torch eager in the same layout, % of roofline):\n")
    print(md_table(readme_table(cases)))


if __name__ == "__main__":
    main()
