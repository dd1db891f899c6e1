"""Spec: `python -m reports.build RECORDS... --out DIR` turns run records into figures, tables and a report.

Fixtures (tests/records/): two CPU machines (`knl` horovod, `skx` mpi) at 1, 2, 4, 8 nodes with repeats, a
projected `knl` extension to 32 nodes, one single-GPU baseline (`titanrtx`), and `malformed.jsonl` (quick-preset
runs with a bad JSON line 2, a record missing fields on line 3, a run without a measured epoch on line 4 and a
truncated last line 6). Every expected number below is worked out by hand from the epoch times in the fixtures,
not by calling the code under test. The build must never import torch, mpi4py or horovod.
"""
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Every test runs reports.build in a fresh interpreter (to see what it imports).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "tests" / "records"
FIXTURES = [RECORDS / n for n in ("knl.jsonl", "skx.jsonl", "gpu.jsonl", "malformed.jsonl")]
FIGURES = ("speedup", "efficiency", "throughput", "epoch_time", "time_breakdown", "auc", "gpu_comparison")
FORBIDDEN = ("torch", "mpi4py", "horovod")

# Runs the CLI in a fresh interpreter and reports which forbidden modules ended up imported.
RUNNER = """
import runpy, sys
sys.argv = ["reports.build"] + sys.argv[1:]
code = 0
try:
    runpy.run_module("reports.build", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
print("IMPORTED:" + ",".join(m for m in %r if m in sys.modules))
sys.exit(code)
""" % (FORBIDDEN,)


def build(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-c", RUNNER, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    proc = build(*FIXTURES, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def point(rows, system, nodes, projected="false"):
    [row] = [r for r in rows if r["system"] == system and int(r["nodes"]) == nodes and r["projected"] == projected]
    return row


def test_build_never_imports_torch_or_a_distributed_backend(report):
    _, proc = report
    assert "IMPORTED:\n" in proc.stdout, proc.stdout


def test_prints_where_the_report_is(report):
    out, proc = report
    assert str(out / "index.html") in proc.stdout
    assert (out / "index.html").stat().st_size > 0 and (out / "report.md").stat().st_size > 0


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_is_written_as_png_and_svg(report, name):
    out, _ = report
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert b"<svg" in svg.read_bytes()[:2000]


# Point epoch times (median over repeats of each run's median epoch), by hand from the fixtures:
#   knl: 1 -> median(100, 104, 98) = 100; 2 -> median(52, 50) = 51; 4 -> median(26, 25, 27) = 26; 8 -> median(14, 16) = 15
#   skx: 1 -> median(60, 62) = 61; 2 -> 32; 4 -> median(17, 17) = 17; 8 -> median(10, 10.4) = 10.2
#   titanrtx (1 GPU): median(20, 22) = 21
KNL = {1: 100.0, 2: 51.0, 4: 26.0, 8: 15.0}
SKX = {1: 61.0, 2: 32.0, 4: 17.0, 8: 10.2}
GPU = 21.0


@pytest.mark.parametrize("system,times", [("knl", KNL), ("skx", SKX)])
def test_scaling_csv_has_hand_computed_speedup_and_efficiency(report, system, times):
    rows = read_csv(report[0] / "scaling.csv")
    for nodes, t in times.items():
        row = point(rows, system, nodes)
        speedup = times[1] / t
        assert float(row["epoch_s_median"]) == pytest.approx(t, rel=1e-5)
        assert float(row["speedup"]) == pytest.approx(speedup, rel=1e-5)
        assert float(row["efficiency"]) == pytest.approx(speedup / nodes, rel=1e-5)
        assert row["baseline_nodes"] == "1"
    # knl at 8 nodes: spread 16/14 - 1, two runs, images/s = median of 458752/14 and 458752/16
    row = point(rows, "knl", 8)
    assert (row["runs"], float(row["epoch_s_min"]), float(row["epoch_s_max"])) == ("2", 14.0, 16.0)
    assert float(row["spread_pct"]) == pytest.approx(100 * (16 / 14 - 1), rel=1e-5)
    assert float(row["images_per_s"]) == pytest.approx((458752 / 14 + 458752 / 16) / 2, rel=1e-5)
    assert float(row["auc"]) == pytest.approx((0.98 + 0.96) / 2)  # last epoch's AUC, median of the two runs


def test_projected_points_are_kept_apart_and_scaled_against_the_measured_baseline(report):
    rows = read_csv(report[0] / "scaling.csv")
    measured8, projected8 = point(rows, "knl", 8), point(rows, "knl", 8, "true")
    assert float(measured8["epoch_s_median"]) == 15.0 and measured8["runs"] == "2"  # projected 15 s not mixed in
    assert projected8["runs"] == "1"
    assert float(point(rows, "knl", 32, "true")["speedup"]) == pytest.approx(100 / 4.5, rel=1e-5)
    assert float(point(rows, "knl", 16, "true")["efficiency"]) == pytest.approx(100 / 8 / 16, rel=1e-5)


def crossover_by_hand(n1, r1, n2, r2):
    t = (1 - r1) / (r2 - r1)  # linear in log2 N between the bracketing points
    return 2 ** (math.log2(n1) + t * (math.log2(n2) - math.log2(n1)))


def test_gpu_comparison_csv_has_ratios_crossover_and_ratio_at_the_largest_n(report):
    out = report[0]
    summary = {(r["system"], r["projected"]): r for r in read_csv(out / "gpu_comparison.csv")}
    knl, skx = summary[("knl", "false")], summary[("skx", "false")]
    assert knl["gpu_system"] == skx["gpu_system"] == "titanrtx"
    assert float(knl["gpu_epoch_s"]) == GPU
    # knl: ratio 21/26 = 0.81 at 4 nodes, 21/15 = 1.4 at 8 -> crossover near 5.01 nodes
    assert float(knl["crossover_nodes"]) == pytest.approx(crossover_by_hand(4, GPU / 26, 8, GPU / 15), rel=1e-5)
    assert float(knl["crossover_nodes"]) == pytest.approx(5.0095, abs=1e-3)
    assert (knl["largest_nodes"], float(knl["ratio_at_largest"])) == ("8", pytest.approx(1.4, rel=1e-5))
    # skx: ratio 21/32 = 0.66 at 2 nodes, 21/17 = 1.24 at 4 -> crossover near 3.02 nodes
    assert float(skx["crossover_nodes"]) == pytest.approx(crossover_by_hand(2, GPU / 32, 4, GPU / 17), rel=1e-5)
    assert float(skx["ratio_at_largest"]) == pytest.approx(GPU / 10.2, rel=1e-5)
    ratios = read_csv(out / "gpu_ratio.csv")
    for system, times in (("knl", KNL), ("skx", SKX)):
        for nodes, t in times.items():
            [r] = [r for r in ratios if r["system"] == system and r["projected"] == "false" and int(r["nodes"]) == nodes]
            assert float(r["ratio"]) == pytest.approx(GPU / t, rel=1e-5)


def test_report_names_environments_and_warnings(report):
    out, _ = report
    md = (out / "report.md").read_text()
    html = (out / "index.html").read_text()
    for text in ("Intel Xeon Phi 7250", "Intel Xeon Gold 6148", "NVIDIA TITAN RTX", "0.28.1", "Open MPI v4.1.4",
                 "2.13.0+cu128", "2026-11-03 .. 2026-11-05"):
        assert text in md and text in html, text
    assert "knl, cpu, horovod, circpad, 64px, batch 32768, paper at 8 node(s): repeats disagree by 14%" in md
    assert "skx, cpu, mpi, circpad, 64px, batch 32768, paper at 2 node(s): only one run" in md
    assert "titanrtx" in md and "titanrtx, cuda, none, circpad, 64px, batch 32768, paper at 1 node(s): repeats" \
        not in md  # 22/20 - 1 is exactly 10 %, not more
    assert "not benchmarks" in md and "not benchmarks" in html
    for name in FIGURES:
        assert f'src="{name}.png"' in html and f"({name}.png)" in md
    assert "<script" not in html


def test_malformed_lines_are_reported_by_number_and_the_rest_is_processed(report):
    _, proc = report
    path = str(RECORDS / "malformed.jsonl")
    for line, why in ((2, "not valid JSON"), (3, "missing required field(s): system, epoch_s"),
                      (4, "no measured epoch"), (6, "truncated last line")):
        assert f"{path}:{line}: {why}" in proc.stderr
    rows = read_csv(report[0] / "scaling.csv")
    assert [float(point(rows, "laptop", n)["epoch_s_median"]) for n in (1, 2)] == [3.1, 1.7]


def test_a_missing_file_exits_2_naming_it(tmp_path):
    proc = build(RECORDS / "gpu.jsonl", tmp_path / "nope.jsonl", "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert f"{tmp_path / 'nope.jsonl'}: no such file" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_no_valid_records_exits_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema_version": 1}\nnot json\n')
    proc = build(bad, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "no valid records" in proc.stderr
    assert f"{bad}:1:" in proc.stderr and f"{bad}:2:" in proc.stderr


def test_baseline_other_than_one_node_and_a_gpu_never_overtaken(tmp_path):
    """A sweep starting at 2 nodes is scaled against 2 nodes, and says so; a slow cluster never crosses."""
    base = json.loads((RECORDS / "skx.jsonl").read_text().splitlines()[0])
    gpu = json.loads((RECORDS / "gpu.jsonl").read_text().splitlines()[0])  # 20 s per epoch
    lines = [json.dumps(gpu)]
    for nodes, t in ((2, 80.0), (4, 50.0), (8, 40.0)):
        rec = dict(base, run_id=f"slow{nodes}", nodes=nodes, world_size=nodes, epoch_s=[t])
        del rec["images_per_s"]  # falls back to train_events / median(epoch_s)
        lines.append(json.dumps(rec))
    path = tmp_path / "slow.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = build(path, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "out" / "scaling.csv")
    row = point(rows, "skx", 8)
    assert (row["baseline_nodes"], float(row["speedup"]), float(row["efficiency"])) == ("2", 2.0, 0.5)
    assert float(row["images_per_s"]) == pytest.approx(458752 / 40)
    [summary] = read_csv(tmp_path / "out" / "gpu_comparison.csv")
    assert (summary["crossover"], summary["crossover_nodes"]) == ("not reached", "")
    assert float(summary["ratio_at_largest"]) == pytest.approx(20 / 40)


def test_records_with_the_cut_based_comparison_give_the_roc_figure_and_table(tmp_path):
    from bench import physics

    rng = np.random.default_rng(0)
    lines = [json.loads(line) for line in (RECORDS / "knl.jsonl").read_text().splitlines() if line.strip()]
    picked = [r for r in lines if r.get("world_size") in (1, 4)][:2]
    assert len(picked) == 2
    for k, r in enumerate(picked):
        y = rng.random(3000) < 0.4
        scores = np.clip(rng.normal(0.3 + (0.3 + 0.1 * k) * y, 0.15), 0, 1)
        region = (scores + rng.normal(0, 0.15, 3000)) > 0.8
        c = physics.compare(y.astype(int), scores, np.ones(3000), region, bootstrap=20)
        fpr, tpr, _ = physics.roc(y.astype(int), scores, np.ones(3000))
        r["physics"] = {**c.asdict(), "roc": physics.roc_points(fpr, tpr), "cut_flow": []}
        r["test_auc"] = c.auc
    path = tmp_path / "phys.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in picked))
    out = tmp_path / "out"
    proc = build(path, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED:\n" in proc.stdout or proc.stdout.rstrip().endswith("IMPORTED:")
    assert (out / "roc.png").stat().st_size > 10_000 and (out / "roc.svg").exists()
    rows = read_csv(out / "physics.csv")
    assert [r["label"].split(" ")[0] for r in rows[:2]] == [str(p["world_size"]) for p in
                                                          sorted(picked, key=lambda p: p["world_size"])]
    assert float(rows[0]["eff_ratio"]) == pytest.approx(
        min(picked, key=lambda p: p["world_size"])["physics"]["eff_ratio"])
    text = (out / "report.md").read_text()
    assert "## CNN against the cut-based selection" in text and "roc.png" in text


def test_a_run_given_twice_counts_once(tmp_path):
    """The same records file given twice (as when a file is copied and appended to) gives the report of the
    file given once, with a warning naming each copy; a copy whose values differ is an error naming both."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert build(RECORDS / "knl.jsonl", "--out", once).returncode == 0
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes((RECORDS / "knl.jsonl").read_bytes())
    proc = build(RECORDS / "knl.jsonl", copy, "--out", twice)
    assert proc.returncode == 0, proc.stderr
    assert (twice / "scaling.csv").read_bytes() == (once / "scaling.csv").read_bytes()
    first = json.loads((RECORDS / "knl.jsonl").read_text().splitlines()[0])
    assert f"warning: {copy}:1: run {first['run_id']} is a copy of {RECORDS / 'knl.jsonl'}:1; counted once" in proc.stderr
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps(dict(first, epoch_s=[9.0, 9.0])) + "\n")
    proc = build(RECORDS / "knl.jsonl", edited, "--out", tmp_path / "bad")
    assert proc.returncode == 2
    assert (f"error: {edited}:1: run {first['run_id']} is also {RECORDS / 'knl.jsonl'}:1 with other values (epoch_s)"
            in proc.stderr)


def test_no_control_character_reaches_the_report(tmp_path):
    """A record written before the writer removed them (the MPI library string ends in NUL) gives a report
    of plain text: no NUL or escape in report.md, index.html or a table."""
    dirty = tmp_path / "dirty.jsonl"
    lines = []
    for line in (RECORDS / "skx.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec["env"] = dict(rec.get("env") or {}, mpi_library="Open MPI v4.1.4\u0000", hosts=["node\u001b[31m1"])
        rec["system"] = rec["system"] + "\u0000"
        lines.append(json.dumps(rec))
    dirty.write_text("\n".join(lines) + "\n")
    proc = build(dirty, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    for path in (tmp_path / "out").iterdir():
        if path.suffix in (".md", ".html", ".csv"):
            text = path.read_text()
            assert not [c for c in text if ord(c) < 32 and c not in "\t\n\r"], path.name
    assert "Open MPI v4.1.4" in (tmp_path / "out" / "report.md").read_text()
