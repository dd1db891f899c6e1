"""Spec: the report's CPU use and its opening summary (`reports.analysis`, `reports.tables`, `reports.render`).

Fixture tests/records/cpu.jsonl (tests/records/make_fixtures.py), a 2-core laptop measuring its `cpu`:
  1 rank, 2 threads, epochs 30 s: 0.95 cores per thread, 500 involuntary switches per epoch, not oversubscribed
  2 ranks, 1 thread, 20 s: median 0.92, least 0.9, 800 switches, not oversubscribed
  2 ranks, 2 threads, 26 s: median 0.5, least 0.45, 9000 switches, oversubscribed (4 threads on 2 cores; 0.45)
The two 2-rank runs are repeats of one point (threads are not part of the configuration): medians over them
are worked by hand below. tests/records/gpu.jsonl adds a GPU baseline of 20 and 22 s (median 21 s).
"""
from pathlib import Path

import pytest

from reports import analysis, render, tables
from reports.frame import read_frame

RECORDS = Path(__file__).resolve().parent / "records"
WHY = ("2 rank(s) x 2 thread(s) = 4 on a node with 2 available core(s); the least-used rank ran 0.45 cores per "
       "thread (under 0.8)")


@pytest.fixture(scope="module")
def frame():
    frame, problems = read_frame([RECORDS / "cpu.jsonl", RECORDS / "gpu.jsonl"])
    assert problems == []
    return frame


@pytest.fixture(scope="module")
def rows(frame):
    return analysis.scaling_rows(frame)


def laptop(rows, nodes):
    [row] = analysis.records_of(rows[(rows["system"] == "laptop2") & (rows["nodes"] == nodes)])
    return row


def test_points_carry_their_runs_cpu_use(rows):
    one, two = laptop(rows, 1), laptop(rows, 2)
    assert (one["oversubscribed_runs"], one["util_per_thread_min"], one["involuntary_ctx_switches"]) == (0, 0.95, 500)
    assert two["runs"] == 2 and two["oversubscribed_runs"] == 1  # one of the two repeats
    assert two["util_per_thread_median"] == pytest.approx((0.92 + 0.5) / 2)  # median of the runs' medians
    assert two["util_per_thread_min"] == 0.45  # the least of the runs' least-used ranks
    assert two["involuntary_ctx_switches"] == (800 + 9000) / 2
    assert (two["ranks_x_threads"], two["threads_per_rank"], two["cores_available"]) == (4, 2, 2)  # the most, fewest
    assert two["oversubscribed_why"] == WHY
    gpu = analysis.records_of(rows[rows["device"] == "cuda"])[0]
    assert gpu["oversubscribed_runs"] is None and gpu["util_per_thread_min"] is None  # not measured


def test_an_oversubscribed_point_is_warned_about_with_its_reason(rows):
    warnings = analysis.point_warnings(rows)
    assert (f"laptop2, cpu, mpi, circpad, 64px, batch 32768, custom at 2 node(s): CPU oversubscribed in 1 of 2 "
            f"run(s): {WHY}") in warnings
    assert not any("at 1 node(s): CPU" in w for w in warnings)


def test_cpu_use_table_and_the_scaling_tables_cpu_column(rows):
    cpu = tables.cpu_use_table(rows)
    assert list(cpu["nodes"]) == [1, 2] and list(cpu["oversubscribed_runs"]) == [0, 1]  # the GPU run measured none
    columns, view = tables.readable("scaling", tables.scaling_table(rows))
    assert columns[-1] == "CPU"
    assert list(view["CPU"]) == ["ok", "oversubscribed in 1 of 2 run(s)", ""]
    # without CPU measurements the scaling view is unchanged (tests/test_reports_same.py compares it whole)
    plain_rows = rows[rows["device"] == "cuda"]
    assert "CPU" not in tables.readable("scaling", tables.scaling_table(plain_rows))[0]


def test_summary_gives_the_largest_rank_count_with_its_cpu_warning_and_the_gpu(frame, rows):
    summary, _ = analysis.gpu_comparison(rows, analysis.gpu_baselines(frame))
    columns, view = tables.summary_table(rows, summary)
    assert columns == tables.SUMMARY_COLUMNS
    first = view.iloc[0]
    assert first["configuration"] == "laptop2, cpu, mpi, circpad, 64px, batch 32768, custom"
    # largest N = 2: epoch median(20, 26) = 23 s against 30 s at 1 rank
    assert first["largest N"] == 2 and first["speedup"] == pytest.approx(30 / 23)
    assert first["efficiency %"] == pytest.approx(100 * 30 / 23 / 2)
    assert first["CPU use"] == f"WARNING: CPU oversubscribed in 1 of 2 run(s): {WHY}"
    # GPU 21 s against 23 s at 2 ranks (same events): ratio 21/23 = 0.91, never 1
    assert first["one GPU"] == "slower than titanrtx up to N = 2 (0.91x its speed)"
    assert view.iloc[1]["CPU use"] == "not measured" and view.iloc[1]["one GPU"] == ""


def test_the_page_opens_with_the_summary_then_the_figures(frame, rows):
    summary, _ = analysis.gpu_comparison(rows, analysis.gpu_baselines(frame))
    views = {"scaling": tables.readable("scaling", tables.scaling_table(rows)),
             "cpu_use": tables.readable("cpu_use", tables.cpu_use_table(rows))}
    blocks = render.report_blocks(sources=["cpu.jsonl"], figures=["speedup", "cpu_use"], tables=views,
                                  summary=tables.summary_table(rows, summary),
                                  environment=tables.environment_table(analysis.environments(frame)),
                                  problems=[], warnings=[], quick=False)
    html = render.to_html(blocks)
    assert html.index('<h2 id="summary">') < html.index("WARNING: some runs were oversubscribed") < html.index("<img")
    assert html.index("<img") < html.index('<h2 id="scaling-table">') < html.index('<h2 id="cpu-use">')
    md = render.to_markdown(blocks)
    assert md.index("## Summary") < md.index("![speedup]") < md.index("## Scaling table")
    assert "<script" not in html
