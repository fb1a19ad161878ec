"""`python -m fastpool.bench`: the benchmark suite's entry point."""
from __future__ import annotations

import argparse
import os
import sys
import time

from .cases import DIRECTION_HELP, DIRECTIONS, DTYPES, LAYOUTS, OPS, PEER_HELP, PEERS, SUITES, build_suite


def _csv(choices=None):
    def parse(s):
        vals = [v.strip() for v in s.split(",") if v.strip()]
        if choices is not None:
            bad = [v for v in vals if v not in choices]
            if bad:
                raise argparse.ArgumentTypeError(f"{','.join(bad)} not in {','.join(choices)}")
        return vals

    return parse


def parser():
    p = argparse.ArgumentParser(
        prog="python -m fastpool.bench",
        description="Benchmarks fastpool against torch eager (NCHW and channels_last), oneDNN and torch.compile, "
                    "with each kernel's % of the stream roofline measured in the same run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="directions: " + "; ".join(f"{k}: {v}" for k, v in DIRECTION_HELP.items())
               + "\npeers: " + "; ".join(f"{k}: {v}" for k, v in PEER_HELP.items())
               + "\n\nexamples:\n  python -m fastpool.bench                      # default suite (a few minutes)\n"
                 "  python -m fastpool.bench --suite quick --threads 1\n"
                 "  python -m fastpool.bench --cases resnet50.stem --dtypes bfloat16 --directions fwd,train\n"
                 "  python -m fastpool.bench --compare A.json B.json  # run-to-run noise")
    p.add_argument("--suite", choices=SUITES, default="default", help="which suite (default: %(default)s)")
    p.add_argument("--ops", type=_csv(list(OPS)), help=f"ops to run ({','.join(OPS)})")
    p.add_argument("--cases", type=_csv(), help="case names or name prefixes (e.g. vgg16,resnet50.stem); "
                                                "see --list")
    p.add_argument("--shape", action="append", default=[],
                   help="an extra max_pool2d case: N,C,H,W:k,s,p[,d[,ceil]] (e.g. 8,64,56,56:3,2,1)")
    p.add_argument("--dtypes", type=_csv(DTYPES), help=f"override dtypes ({','.join(DTYPES)})")
    p.add_argument("--layouts", type=_csv(LAYOUTS), help="override layouts (nchw = channels-first, "
                                                          "nhwc = channels_last)")
    p.add_argument("--directions", type=_csv(DIRECTIONS), help=f"override directions ({','.join(DIRECTIONS)})")
    p.add_argument("--peers", type=_csv(PEERS), help=f"override peers ({','.join(PEERS)})")
    p.add_argument("--isa", type=_csv(["avx512", "avx2", "portable"]), default=[],
                   help="also time fastpool with FASTPOOL_CPU_ISA forced to these paths")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--repeats", type=int, help="interleaved rounds per case (default: the suite's)")
    p.add_argument("--min-run-time", type=float, help="seconds per blocked_autorange (default: the suite's)")
    p.add_argument("--no-sweep", action="store_true", help="skip the size sweep")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end network")
    p.add_argument("--e2e-only", action="store_true", help="only the end-to-end network")
    p.add_argument("--out", default="bench-results", help="directory for JSON + Markdown (default: %(default)s)")
    p.add_argument("--name", help="file name stem for the outputs (default: date-suite-device-commit)")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--plot", action="store_true", help="write PNG charts (needs matplotlib)")
    p.add_argument("--list", action="store_true", help="list the cases of the selected suite and exit")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two result files and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--omp-wait-policy", choices=("passive", "active", "inherit"), default="inherit",
                   help="OMP_WAIT_POLICY for the run (default: %(default)s: the environment's, as a user's script "
                        "has it; the headline numbers are those). 'passive' re-runs with idle OpenMP workers "
                        "sleeping instead of spinning, a second view for a busy machine. An OMP_WAIT_POLICY "
                        "already set in the environment wins.")
    p.add_argument("--standin", action="store_true", default=os.environ.get("FASTPOOL_BENCH_STANDIN") == "1",
                   help=argparse.SUPPRESS)  # development: 'fastpool' = torch itself
    return p


def omp_reexec_env(argv):
    """The environment to re-execute `python -m fastpool.bench` with, or None to run as is."""
    if os.environ.get("OMP_WAIT_POLICY") or os.environ.get("FASTPOOL_BENCH_REEXEC"):
        return None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--omp-wait-policy", default="inherit")
    pre.add_argument("--compare", nargs=2)
    pre.add_argument("--list", action="store_true")
    known, _ = pre.parse_known_args(argv)
    if known.omp_wait_policy not in ("passive", "active") or known.compare or known.list:
        return None
    env = dict(os.environ)
    env["OMP_WAIT_POLICY"] = known.omp_wait_policy.upper()
    env["FASTPOOL_BENCH_REEXEC"] = "1"
    return env


def _parse_shape(spec):
    from .cases import Shape, _w

    dims, _, pool = spec.partition(":")
    shape = tuple(int(v) for v in dims.split(","))
    pv = [int(v) for v in pool.split(",")] if pool else [2]
    k = pv[0]
    s = pv[1] if len(pv) > 1 else k
    pad = pv[2] if len(pv) > 2 else 0
    d = pv[3] if len(pv) > 3 else 1
    ceil = bool(pv[4]) if len(pv) > 4 else False
    return Shape(f"custom.{'x'.join(map(str, shape))}.k{k}s{s}p{pad}", "max_pool2d", shape, _w(k, s, pad, d, ceil),
                 "user-given shape", ("custom",))


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        print("(tqdm is not installed: no progress bar; pip install tqdm)", file=sys.stderr)
        return None
    return tqdm(total=total, unit="meas", dynamic_ncols=True, file=sys.stderr, leave=False)


def plan(args, suite):
    """The list of (group, shape, dtype, layout, direction, peers, min_run_time) to run."""
    from .cases import Group

    groups = list(suite.groups)
    if args.shape:
        groups.insert(0, Group("custom", [_parse_shape(s) for s in args.shape], ["float32"], list(LAYOUTS),
                               ["fwd", "bwd"], ["torch", "torch_cl", "onednn"]))
    items, seen = [], set()
    for g in groups:
        if g.name == "sweep" and args.no_sweep:
            continue
        for sh in g.shapes:
            if args.ops and sh.op not in args.ops:
                continue
            if args.cases and g.name != "custom" and not any(
                    sh.name == c or sh.name.startswith(c) for c in args.cases):
                continue
            op = OPS[sh.op]
            for dt in args.dtypes or g.dtypes:
                for lay in args.layouts or g.layouts:
                    for d in args.directions or g.directions:
                        if not op.applies(d):
                            continue  # e.g. fwd_idx or bwd of an unpool
                        key = (sh.name, dt, lay, d)  # overridden axes can make two groups ask for the same case
                        if key in seen:
                            continue
                        seen.add(key)
                        items.append((g, sh, dt, lay, d, list(args.peers or g.peers),
                                      args.min_run_time or g.min_run_time or suite.min_run_time))
    return items


def main(argv=None):
    import torch

    old_threads = torch.get_num_threads()
    try:
        return _main(argv)
    finally:
        torch.set_num_threads(old_threads)  # main() is also called in-process (tests)


def _main(argv=None):
    args = parser().parse_args(argv)
    from . import report

    if args.compare:
        text, _ = report.render_compare(*args.compare)
        print(text)
        return 0

    suite = build_suite(args.suite)
    items = [] if args.e2e_only else plan(args, suite)
    if args.list:
        for g, sh, dt, lay, d, peers, mrt in items:
            print(f"{g.name:9s} {sh.op:20s} {sh.name:24s} {str(list(sh.shape)):22s} {sh.describe_params():16s} "
                  f"{dt:9s} {lay} {d:7s} peers={','.join(peers)}")
        print(f"{len(items)} cases" + ("" if args.no_e2e or not suite.e2e else " + end-to-end network"))
        return 0

    import torch

    from . import measure
    from .cases import OPS as ops

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 2
    repeats = args.repeats or suite.repeats
    api = measure.FastpoolAPI(args.standin)
    if args.standin:
        print("!!! --standin: 'fastpool' is torch itself; for developing the suite only !!!", file=sys.stderr)
    elif api.module is None:
        print(f"fastpool does not import: {api.import_error}", file=sys.stderr)
        return 2
    meta = report.machine_info(args.device, threads, api)

    skipped, runnable = [], []
    missing_noted = set()
    for it in items:
        g, sh, dt, lay, d, peers, mrt = it
        op = ops[sh.op]
        why = api.missing_reason(op)
        if why:
            if sh.op not in missing_noted:
                skipped.append(f"{sh.op}: {why} (its cases are skipped)")
                missing_noted.add(sh.op)
            continue
        if measure.layout_name(op, lay) is None:
            continue  # e.g. channels_last for a 1-D op
        runnable.append(it)

    e2e_cfg = None if (args.no_e2e or suite.e2e is None) else dict(suite.e2e)
    if e2e_cfg and args.device == "cuda":
        e2e_cfg["memory_probe"] = False
    if e2e_cfg and not args.standin and not hasattr(api.module, "MaxPool2d"):
        skipped.append("end-to-end: fastpool.MaxPool2d does not exist in this build")
        e2e_cfg = None
    if e2e_cfg and args.dtypes:
        e2e_cfg["dtypes"] = [d for d in args.dtypes if d in ("float32", "bfloat16")] or e2e_cfg["dtypes"]
    if e2e_cfg and args.layouts:
        e2e_cfg["layouts"] = args.layouts

    n_isa = len(args.isa)
    def rounds_of(g):  # --repeats, else the group's, else the suite's
        return args.repeats or g.repeats or suite.repeats

    total = sum(rounds_of(g) * (2 + n_isa + len(p)) for g, *_, p, _m in runnable)
    e2e_rounds = max(repeats, 3) if args.suite != "smoke" else repeats  # whole-network times drift more
    if e2e_cfg:
        total += e2e_rounds * 2 * len(e2e_cfg["layouts"]) * len(e2e_cfg["dtypes"])
    bar = _progress(total, not args.no_progress)
    tick = (lambda: bar.update(1)) if bar else None

    t_start = time.perf_counter()
    load0 = report.cpu_snapshot()
    # On a GPU the stream roofline of a small case includes launch and reduction
    # time; the copy bandwidth of a large buffer is the memory limit proper.
    bandwidth = measure.copy_bandwidth(args.device, threads) if args.device == "cuda" and runnable else None
    if bandwidth:
        meta["copy_bandwidth_GBps"] = round(bandwidth / 1e9, 1)
    cases = []
    for g, sh, dt, lay, d, peers, mrt in runnable:
        op = ops[sh.op]
        if bar:
            bar.set_description(f"{sh.name} {dt} {lay} {d}")
        nbytes = measure.bytes_moved(op, sh, dt, d)
        t_case = time.perf_counter()
        try:
            impls, check, check_detail = measure.build_impls(api, op, sh, dt, lay, d, args.device, peers, isas=args.isa,
                                               nbytes=nbytes)
        except Exception as e:  # noqa: BLE001  (e.g. out of memory): report and go on
            skipped.append(f"{sh.name} {dt} {lay} {d}: {type(e).__name__}: {e}")
            if bar:
                bar.update(rounds_of(g) * (2 + n_isa + len(peers)))
            continue
        # peers that don't apply to this direction are absent: keep the bar's count honest
        missing = (2 + n_isa + len(peers)) - len(impls)
        measure.measure_case(impls, rounds_of(g), mrt, threads, tick)
        if bar and missing > 0:
            bar.update(missing * rounds_of(g))
        cases.append({
            "group": g.name, "op": sh.op, "case": sh.name, "network": sh.network, "shape": list(sh.shape),
            "params": sh.describe_params(), "kwargs": sh.kwargs, "dtype": dt, "layout": lay,
            "layout_name": measure.layout_name(op, lay), "direction": d, "bytes": nbytes,
            "min_run_time": mrt, "check": check, "impls": measure.summarize(impls),
            "wall_s": round(time.perf_counter() - t_case, 2),
        })
        if bandwidth:
            measure.add_copy_bandwidth_share(cases[-1]["impls"], nbytes, bandwidth)
        if check_detail:
            cases[-1]["check_detail"] = check_detail
        del impls
        measure.release()

    e2e = []
    if e2e_cfg:
        from .e2e import run_e2e

        if bar:
            bar.set_description("end-to-end ResNet-style net")
        try:
            e2e = run_e2e(e2e_cfg, args.device, threads, args.standin, e2e_rounds, tick)
        except Exception as e:  # noqa: BLE001
            skipped.append(f"end-to-end: {type(e).__name__}: {e}")
    if bar:
        bar.close()

    result = {
        "schema": report.SCHEMA,
        "meta": meta,
        "config": {"suite": args.suite, "argv": list(argv if argv is not None else sys.argv[1:]),
                   "repeats": repeats, "min_run_time": args.min_run_time or suite.min_run_time,
                   "threads": threads, "device": args.device, "isa_variants": args.isa, "e2e": e2e_cfg,
                   "e2e_rounds": e2e_rounds if e2e_cfg else None,
                   "roofline": "median over rounds of (amax over the must-read bytes + fill_ of the must-write "
                               "bytes, one timed statement) / kernel time"},
        "cases": cases, "e2e": e2e, "skipped": skipped,
        "elapsed_s": time.perf_counter() - t_start,
        "load": report.load_during(load0),
    }
    print(report.render_text(result))
    if not args.no_write:
        jp, mp = report.write_outputs(result, args.out, args.name)
        print(f"wrote {jp}\nwrote {mp}")
        if args.plot:
            paths, why = report.write_plots(result, args.out, args.name)
            for p in paths:
                print(f"wrote {p}")
            if why:
                print(why)
    return 0
