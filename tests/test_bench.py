"""The benchmark suite itself: a tiny run must produce well-formed output.

Nothing here asserts on timings (the machine is shared and noisy); the tests
check the structure of the JSON and Markdown, the byte model of the roofline,
the comparison of two runs, and that `import fastpool` stays light.
"""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("fastpool")

from fastpool.bench import cli, report  # noqa: E402
from fastpool.bench.cases import DIRECTIONS, OPS, SHAPES, build_suite  # noqa: E402


def _smoke(tmp_path, *extra):
    rc = cli.main(["--suite", "smoke", "--repeats", "1", "--out", str(tmp_path), "--name", "run",
                   "--no-progress", "--threads", "1", *extra])
    assert rc == 0
    with open(tmp_path / "run.json") as f:
        result = json.load(f)
    md = (tmp_path / "run.md").read_text()
    return result, md


def _check_result(result, md, standin):
    assert result["schema"] == report.SCHEMA
    meta = result["meta"]
    for key in ("date", "cpu_model", "cpu_count", "torch_version", "threads", "device", "fastpool"):
        assert meta[key] not in (None, ""), key
    assert meta["fastpool"]["standin"] is standin
    if not standin:
        assert isinstance(meta["fastpool"]["build_info"], dict)
    cases = result["cases"]
    assert {c["direction"] for c in cases} == set(DIRECTIONS)
    assert {c["layout"] for c in cases} == {"nchw", "nhwc"}
    for c in cases:
        assert c["bytes"]["read"] > 0 and c["bytes"]["write"] > 0
        fp, roof = c["impls"]["fastpool"], c["impls"]["roofline"]
        assert fp["median_s"] > 0 and roof["median_s"] > 0, c
        assert fp["pct_roofline"] > 0
        for peer in ("torch", "torch_cl"):
            assert c["impls"][peer]["median_s"] > 0
            assert c["impls"][peer]["speedup"] > 0
        if c["direction"] == "fwd" and OPS[c["op"]].onednn_fn:
            assert "onednn" in c["impls"]
        if c["direction"] != "train":
            assert c["check"] in (True, False), c  # the check ran (correctness itself is tests/test_*.py's job)
        if OPS[c["op"]].kind == "unpool":
            assert c["check"] is True, c  # unpool: fwd and train both checked against torch, bit for bit
            assert "onednn" not in c["impls"]
    unpool = [c for c in cases if OPS[c["op"]].kind == "unpool"]
    assert {(c["layout"], c["direction"]) for c in unpool} == {(lay, d) for lay in ("nchw", "nhwc")
                                                               for d in ("fwd", "train")}
    e2e = result["e2e"]
    assert {r["pass"] for r in e2e} == {"inference", "train_step"}
    for r in e2e:
        assert r["impls"]["torch"]["median_s"] > 0 and r["impls"]["fastpool"]["median_s"] > 0
    train = [r for r in e2e if r["pass"] == "train_step"][0]
    assert train["memory"]["fastpool"]["saved_for_backward_bytes"] > 0
    # Markdown: metadata, summary and per-group tables with one row per case
    assert md.startswith("# fastpool benchmark")
    assert "## Summary" in md and "## smoke" in md and "## End to end" in md
    section = md.split("## smoke", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| smoke |")]
    assert len(rows) == len(cases)
    assert all(line.count("|") == rows[0].count("|") for line in rows)


def test_smoke_run_real_fastpool(tmp_path):
    result, md = _smoke(tmp_path)
    _check_result(result, md, standin=False)


def test_smoke_run_standin(tmp_path):
    result, md = _smoke(tmp_path, "--standin", "--no-e2e", "--directions", "fwd")
    assert "STAND-IN" in md
    assert all(c["direction"] == "fwd" for c in result["cases"]) and result["e2e"] == []


def test_compare_same_file_is_zero_noise(tmp_path):
    _smoke(tmp_path, "--no-e2e", "--directions", "fwd")
    p = str(tmp_path / "run.json")
    rows, summary = report.compare(p, p)
    assert summary["cases"] == len(rows) - 1 == 4  # max_pool2d and max_unpool2d, two layouts
    assert summary["fastpool_time_max_abs_diff"] == 0.0


def test_list_and_suites(capsys):
    assert cli.main(["--list", "--suite", "default"]) == 0
    out = capsys.readouterr().out
    assert "resnet50.stem" in out and "vgg16.pool5" in out and "sweep." in out
    for name in ("smoke", "quick", "default", "full"):
        assert build_suite(name).groups
    assert {s.op for s in SHAPES} <= set(OPS)


def test_bytes_model():
    from fastpool.bench.measure import bytes_moved

    stem = [s for s in SHAPES if s.name == "resnet50.stem"][0]
    op = OPS["max_pool2d"]
    n_in, n_out = 32 * 64 * 112 * 112, 32 * 64 * 56 * 56
    assert bytes_moved(op, stem, "float32", "fwd") == {"read": 4 * n_in, "write": 4 * n_out}
    assert bytes_moved(op, stem, "bfloat16", "fwd_idx") == {"read": 2 * n_in, "write": 2 * n_out + 8 * n_out}
    assert bytes_moved(op, stem, "float32", "bwd") == {"read": 4 * n_out + 8 * n_out, "write": 4 * n_in}


def test_unpool_bytes_model():
    """Unpool: read the pooled values and their int64 indices, write the 4x larger map; train adds
    reading grad_output and writing grad_input."""
    from fastpool.bench.measure import bytes_moved

    stage4 = [s for s in SHAPES if s.name == "segnet.unpool4"][0]
    op = OPS["max_unpool2d"]
    n_in, n_out = 4 * 512 * 22 * 30, 4 * 512 * 45 * 60  # output_size (45, 60): the odd row comes back
    assert bytes_moved(op, stage4, "float32", "fwd") == {"read": 4 * n_in + 8 * n_in, "write": 4 * n_out}
    assert bytes_moved(op, stage4, "bfloat16", "train") == {"read": 2 * n_in + 8 * n_in + 2 * n_out,
                                                            "write": 2 * n_out + 2 * n_in}
    with pytest.raises(ValueError):
        bytes_moved(op, stage4, "float32", "bwd")


def test_unpool_case_direct():
    """One tiny unpool case built directly: the input is torch's max_pool2d of a random map, the
    same values and indices for every implementation, and fastpool's result equals torch's."""
    import torch

    from fastpool.bench import measure
    from fastpool.bench.cases import Shape, _unpool

    op = OPS["max_unpool2d"]
    shape = Shape("t.unpool", "max_unpool2d", (2, 6, 9, 8), _unpool(2, (9, 8)), "test")
    api = measure.FastpoolAPI(False)
    for layout in ("nchw", "nhwc"):
        for direction in ("fwd", "train"):
            nbytes = measure.bytes_moved(op, shape, "float32", direction)
            impls, check, detail = measure.build_impls(api, op, shape, "float32", layout, direction, "cpu",
                                                       ["torch", "torch_cl", "onednn"],
                                                       nbytes=nbytes)
            by = {im.name: im for im in impls}
            assert set(by) == {"fastpool", "roofline", "torch", "torch_cl"}  # oneDNN has no unpool
            assert all(im.fn is not None and im.error is None for im in impls), [im.error for im in impls]
            assert check is True and detail is None, (layout, direction, check, detail)
            out = by["fastpool"].fn()
            if direction == "fwd":
                assert out.shape == (2, 6, 9, 8)
                assert out.is_contiguous(memory_format=torch.channels_last if layout == "nhwc"
                                         else torch.contiguous_format)
                # torch unpools the same data in either layout
                assert torch.equal(by["torch"].fn(), out) and torch.equal(by["torch_cl"].fn(), out)
        with pytest.raises(ValueError):
            measure.build_impls(api, op, shape, "float32", layout, "bwd", "cpu", ["torch"], nbytes=nbytes)


def test_unpool_plan_skips_directions_that_do_not_apply(capsys):
    """fwd_idx and bwd do not apply to an unpool: left out of a plan, even when asked for."""
    assert cli.main(["--list", "--suite", "full", "--cases", "segnet.unpool5", "--directions",
                     "fwd,fwd_idx,bwd,train"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "segnet.unpool5" in line]
    assert len(lines) == 2 * 2 * 2  # dtypes x layouts x (fwd, train)
    assert not any(" fwd_idx " in line or " bwd " in line for line in lines)
    default = build_suite("default")
    segnet = [g for g in default.groups if g.name == "segnet"]
    assert {g.dtypes[0] for g in segnet} == {"float32", "bfloat16"}
    assert any("inductor" in g.peers for g in segnet)
    assert all(set(g.layouts) == {"nchw", "nhwc"} and set(g.directions) == {"fwd", "train"} for g in segnet)


def test_plots(tmp_path):
    pytest.importorskip("matplotlib")
    result, _ = _smoke(tmp_path, "--no-e2e", "--directions", "fwd")
    paths, why = report.write_plots(result, str(tmp_path), "run")
    assert why is None and paths and all(os.path.getsize(p) > 0 for p in paths)


def test_import_fastpool_stays_light():
    code = "import sys, fastpool; print(any(m.startswith('fastpool.bench.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_copy_bandwidth_share_and_column():
    """The GPU limit: % of copy bandwidth = (bytes that must move / bandwidth) / kernel time,
    shown as a column only where a run measured the bandwidth."""
    from fastpool.bench import measure

    summary = {"fastpool": {"median_s": 2e-3}, "roofline": {"median_s": 1e-3}, "torch": {"median_s": 4e-3}}
    measure.add_copy_bandwidth_share(summary, {"read": 3_000_000, "write": 1_000_000}, 4e9)
    assert summary["fastpool"]["pct_copy_bw"] == pytest.approx(50.0)  # 1 ms of traffic in 2 ms
    assert summary["torch"]["pct_copy_bw"] == pytest.approx(25.0)
    assert "pct_copy_bw" not in summary["roofline"]
    case = {"group": "g", "case": "c", "params": "k2", "dtype": "float32", "layout": "nchw", "direction": "fwd",
            "impls": summary, "check": True}
    header, row = report.case_rows([case], ["torch"])
    assert row[header.index("fp %copy-bw")] == report.fmt_pct(50.0)
    header, _ = report.case_rows([dict(case, impls={"fastpool": {"median_s": 1.0}})], [])
    assert "fp %copy-bw" not in header
    assert measure.copy_bandwidth("cpu", 1, nbytes=1 << 20) > 0


def test_per_call_cost_rows():
    """The per-call table: fastpool's time minus torch's in the same layout, met within 1 us."""
    def case(layout, direction, fastpool_s, torch_s):
        peer = "torch" if layout == "nchw" else "torch_cl"
        return {"group": "calls", "case": "call.1x8x8x8", "params": "k2 s2", "dtype": "float32", "layout": layout,
                "direction": direction, "impls": {"fastpool": {"median_s": fastpool_s}, peer: {"median_s": torch_s}}}

    rows = report.overhead_rows([case("nchw", "fwd", 4.5e-6, 4.0e-6), case("nhwc", "train", 8e-6, 6e-6),
                                 dict(case("nchw", "fwd", 1.0, 1.0), group="headline")])
    header, fwd, train = rows
    assert fwd[header.index("difference")] == "+" + report.fmt_time(0.5e-6) and fwd[-1] == "yes"
    assert train[header.index("difference")] == "+" + report.fmt_time(2e-6) and train[-1] == "no"
    assert report.overhead_rows([case("nchw", "fwd", 1.0, 1.0) | {"group": "headline"}]) is None
    assert any(g.name == "calls" for g in build_suite("default").groups)


def test_gpu_probe_runs_on_cpu():
    """benchmarks/gpu_probe.py (the GPU visit's crash finder) runs its cases on the
    CPU ops here, so a visit never finds it broken."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "gpu_probe.py"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == "0 failed"
    assert sum(line.startswith("OK ") for line in lines) == sum(line.startswith("RUN ") for line in lines) > 50


def test_gpu_profile_runs_on_cpu():
    """benchmarks/gpu_profile.py (what ncu profiles on a GPU visit) runs here on the
    CPU ops at an eighth of the batch: a visit never finds it broken."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "gpu_profile.py"), "--device", "cpu",
                           "--scale", "8"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    labels = [line for line in proc.stdout.splitlines() if not line.startswith("  ")]
    assert len(labels) == 9 and all(line.endswith(("(values)", "with indices", "backward")) for line in labels)
