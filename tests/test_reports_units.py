"""Spec: record loading and validation (`bench.records`, `reports.frame`) and the analysis (`reports.analysis`).

* `read_frame` returns one row per usable run plus (file, line, message) problems; one bad line never stops a
  file; a truncated last line is named as such; a missing file raises FileNotFoundError naming it.
* The analysis works on that frame with pandas and gives frames of points (one row each).
* A point is the median over repeats of each run's median epoch; node count falls back to world_size.
* Crossover: first N where GPU_time / CPU_time reaches 1, linear in log2 N between the bracketing points.
Expected numbers are worked out by hand in each test.
"""
import json

import pytest

from bench.records import validate
from reports import analysis
from reports.frame import read_frame, to_frame


def rec(**over):
    base = {"schema_version": 1, "run_id": "r", "system": "s", "preset": "paper", "backend": "mpi",
            "world_size": 1, "nodes": 1, "device": "cpu", "model": "circpad", "image_size": 64,
            "global_batch": 1024, "epoch_s": [10.0], "train_events": 1000, "auc": [0.5, 0.9]}
    base.update(over)
    return base


def write(tmp_path, lines, end="\n"):
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + end)
    return path


def test_good_lines_survive_bad_ones_and_problems_carry_line_numbers(tmp_path):
    path = write(tmp_path, [rec(run_id="a"), "{oops", "", rec(run_id="b", world_size=True),
                            rec(run_id="c", epoch_s=[]), rec(run_id="d")])
    frame, problems = read_frame([path])
    assert list(frame["run_id"]) == ["a", "d"]
    assert frame["source"][1] == f"{path}:6"
    assert [(p.line, p.path) for p in problems] == [(2, str(path)), (4, str(path)), (5, str(path))]
    assert "not valid JSON" in problems[0].message
    assert "world_size" in problems[1].message  # a JSON true is not a world size
    assert "no measured epoch" in problems[2].message


def test_truncated_last_line_is_named(tmp_path):
    path = write(tmp_path, [rec(), json.dumps(rec())[:40]], end="")
    frame, problems = read_frame([path])
    assert len(frame) == 1
    assert str(problems[0]).startswith(f"{path}:2: truncated last line")


def test_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_frame([tmp_path / "missing.jsonl"])


@pytest.mark.parametrize("bad,why", [({"epoch_s": [1.0, -2.0]}, "positive"), ({"schema_version": 2}, "schema"),
                                      ({"nodes": 0}, "at least 1"), ({"auc": ["x"]}, "auc")])
def test_validate_rejects_nonsense(bad, why):
    assert any(why in e for e in validate(rec(**bad)))


def test_repeats_combine_to_median_of_run_medians_and_nodes_fall_back_to_world_size():
    runs = [rec(epoch_s=[9.0, 10.0, 30.0]), rec(epoch_s=[12.0]), rec(epoch_s=[11.0, 11.0])]  # medians 10, 12, 11
    for r in runs:
        del r["nodes"]
    runs.append(rec(world_size=4, epoch_s=[3.0]))
    for r in runs[-1:]:
        del r["nodes"]
    rows = analysis.scaling_rows(to_frame(runs))
    one, four = analysis.records_of(rows)
    assert (one["nodes"], one["runs"], one["epoch_s"], one["epoch_s_min"], one["epoch_s_max"]) == (1, 3, 11.0, 10.0, 12.0)
    assert one["spread"] == pytest.approx(12 / 10 - 1)
    assert one["auc"] == 0.9  # last epoch
    assert one["images_per_s"] == pytest.approx(1000 / 11)  # median of 1000/10, 1000/12, 1000/11
    assert (four["nodes"], four["speedup"], four["efficiency"]) == (4, pytest.approx(11 / 3), pytest.approx(11 / 12))
    assert (four["speedup_min"], four["speedup_max"]) == (pytest.approx(11 / 3), pytest.approx(11 / 3))


def test_projected_records_form_their_own_series():
    rows = analysis.scaling_rows([rec(epoch_s=[10.0]), rec(epoch_s=[4.0], projected=True)])
    assert sorted(zip(rows["projected"], rows["runs"], rows["epoch_s"])) == [(False, 1, 10.0), (True, 1, 4.0)]


def test_crossover_interpolates_in_log2_n():
    # ratio 0.5 at 2 nodes, 2.0 at 8 nodes: a third of the way in ratio is log2 N = 1 + 2/3
    n, text = analysis.crossover([1, 2, 8], [0.25, 0.5, 2.0])
    assert n == pytest.approx(2 ** (1 + (1 - 0.5) / (2.0 - 0.5) * 2))
    assert text == f"{n:.3g}"
    assert analysis.crossover([4, 8], [0.2, 0.9]) == (None, "not reached")
    assert analysis.crossover([2, 4], [1.5, 3.0]) == (2.0, "<= 2")
    assert analysis.crossover([1, 2], [0.5, 1.0]) == (2.0, "2")


def test_gpu_comparison_matches_model_image_size_and_batch_only():
    gpu = rec(system="gpu", device="cuda", backend="none", epoch_s=[5.0])
    other = rec(system="gpu2", device="cuda", backend="none", epoch_s=[1.0], image_size=224)
    cpu = [rec(nodes=n, world_size=n, epoch_s=[t]) for n, t in ((1, 20.0), (2, 10.0), (4, 4.0))]
    records = [gpu, other, *cpu]
    summary, ratios = analysis.gpu_comparison(analysis.scaling_rows(records), analysis.gpu_baselines(records))
    [s] = analysis.records_of(summary)
    assert s["gpu_config"][0] == "gpu"
    assert list(ratios["ratio"]) == [0.25, 0.5, 1.25]
    t = (1 - 0.5) / (1.25 - 0.5)
    assert s["crossover_nodes"] == pytest.approx(2 ** (1 + t))
    assert (s["largest_nodes"], s["ratio_at_largest"]) == (4, 1.25)


def test_gpu_comparison_puts_both_on_the_same_events():
    # The GPU ran 250 events per epoch in 1.25 s: 5 s for the CPU runs' 1000 events.
    gpu = rec(system="gpu", device="cuda", backend="none", epoch_s=[1.25], train_events=250)
    cpu = [rec(nodes=n, world_size=n, epoch_s=[t]) for n, t in ((1, 20.0), (4, 4.0))]
    records = [gpu, *cpu]
    summary, ratios = analysis.gpu_comparison(analysis.scaling_rows(records), analysis.gpu_baselines(records))
    assert list(ratios["ratio"]) == [0.25, 1.25]
    assert list(ratios["gpu_epoch_s"]) == [5.0, 5.0] and summary["gpu_epoch_s"][0] == 5.0


def test_warnings_for_spread_single_runs_and_quick_preset():
    rows = analysis.scaling_rows([rec(epoch_s=[10.0]), rec(epoch_s=[11.5]),  # 15 % apart
                                  rec(nodes=2, world_size=2, epoch_s=[6.0]),  # one run
                                  rec(system="q", preset="quick", epoch_s=[1.0]), rec(system="q", preset="quick", epoch_s=[1.0])])
    text = "\n".join(analysis.point_warnings(rows))
    assert "at 1 node(s): repeats disagree by 15%" in text
    assert "at 2 node(s): only one run" in text
    assert "quick" in text and "not benchmarks" in text


def test_environments_collect_versions_hosts_and_dates():
    env = {"hosts": ["a", "b"], "cpu_model": "Xeon", "torch": "2.13", "mpi_library": "Open MPI", "horovod": None}
    [e] = analysis.records_of(analysis.environments([rec(env=env, timestamp="2026-11-02T01:00:00Z"),
                                                     rec(env=dict(env, hosts=3), timestamp="2026-11-01T01:00:00Z")]))
    assert (e["hosts_max"], e["cpu_model"], e["torch"], e["horovod"]) == (3, ["Xeon"], ["2.13"], [])
    assert e["dates"] == "2026-11-01 .. 2026-11-02"
    assert e["runs"] == 2
