"""Spec: ``python -m bench.evaluate`` rebuilds a model saved by ``bench.strong_scaling --save-model`` and its
test split and writes the comparison with the cuts as ``physics.json``; ``python -m reports.physics`` (the same
flags) draws from it the ROC figure, the markdown / CSV tables and a printed table; several model
files give one curve each; under ``mpirun -np 2`` the scores are shared and the figures are the same; bad
input (a missing or foreign model file, mismatched labels, a file that grew since training, an unwritable
--out) exits 2 naming the file or flag."""
import json
import shutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import mpijob
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["--preset", "quick", "--image-size", "16", "--train-events", "512", "--val-events", "512",
         "--global-batch", "128", "--epochs", "2", "--threads", "1"]


def cli(module, *args, n=1):
    cmd = [sys.executable, "-m", module, *map(str, args)]
    if n > 1:
        cmd = ["mpirun", "-np", str(n), *cmd]
    return mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    proc = cli("bench.strong_scaling", *TRAIN, "--out", d / "r.jsonl", "--save-model", d / "m.pt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a second run of the same configuration (its own run_id), for the figure of two models
    proc = cli("bench.strong_scaling", *TRAIN, "--out", d / "r2.jsonl", "--save-model", d / "m2.pt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d


@pytest.mark.slow  # runs python -m bench.strong_scaling / bench.evaluate
def test_evaluate_writes_figure_and_tables_matching_the_record(trained, tmp_path):
    proc = cli("reports.physics", "--model-weights", trained / "m.pt", trained / "m2.pt", "--labels", "first",
               "second", "--bootstrap", "30", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("roc.png", "roc.svg", "physics.md", "physics.csv", "physics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    entries = json.loads((tmp_path / "physics.json").read_text())
    assert [e["label"] for e in entries] == ["first", "second"]
    (rec,) = [json.loads(line) for line in (trained / "r.jsonl").read_text().splitlines()]
    # The same model on the same test split: the same AUC and working point as the run recorded.
    assert entries[0]["test_events"] == rec["physics"]["test_events"] == 512
    assert entries[0]["auc"] == pytest.approx(rec["test_auc"], abs=1e-6)
    assert entries[0]["cnn_signal_eff"] == pytest.approx(rec["physics"]["cnn_signal_eff"], abs=1e-6)
    assert re.search(r"^\| first +\|", proc.stdout, flags=re.MULTILINE)  # a row of the (column-aligned) table
    assert "cut flow" in proc.stdout and "Njet >= 8" in proc.stdout
    assert entries[0]["run_id"] == rec["run_id"]


@pytest.mark.mpi
def test_evaluate_under_mpirun_gives_the_same_figures(trained, tmp_path):
    one = cli("bench.evaluate", "--model-weights", trained / "m.pt", "--bootstrap", "0", "--out", tmp_path / "1")
    two = cli("bench.evaluate", "--model-weights", trained / "m.pt", "--bootstrap", "0", "--out", tmp_path / "2",
              n=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    a, b = (json.loads((tmp_path / k / "physics.json").read_text())[0] for k in ("1", "2"))
    for key in ("test_events", "auc", "cut_signal_eff", "cnn_signal_eff", "eff_ratio"):
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


@pytest.mark.slow  # runs python -m bench.strong_scaling / bench.evaluate
def test_evaluate_on_another_file_with_all_events(trained, tmp_path):
    from data.store import write_synthetic
    other = tmp_path / "other.h5"
    write_synthetic(other, 300, 16, pixels_per_event=40, chunk_events=50, seed=9)
    proc = cli("bench.evaluate", "--model-weights", trained / "m.pt", "--data", other, "--all-events",
               "--bootstrap", "0", "--out", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (entry,) = json.loads((tmp_path / "o" / "physics.json").read_text())
    assert entry["test_events"] == 300 and entry["split"] == "all events"


@pytest.mark.slow  # runs python -m bench.strong_scaling / bench.evaluate
def test_bad_input_exits_2_naming_the_problem(trained, tmp_path):
    junk = tmp_path / "junk.pt"
    torch.save({"fc.weight": torch.zeros(2)}, junk)
    copy = tmp_path / "copy.pt"
    shutil.copy(trained / "m.pt", copy)
    run_id = json.loads((trained / "r.jsonl").read_text())["run_id"]
    cases = [
        (["--model-weights", tmp_path / "none.pt"], "none.pt: no such file"),
        (["--model-weights", junk], "junk.pt: not a model file written by bench.strong_scaling"),
        (["--model-weights", trained / "m.pt", "--labels", "a", "b"], "--labels gives 2 labels for 1"),
        (["--model-weights", trained / "m.pt", "--all-events"], "--all-events needs --data"),
        (["--model-weights", trained / "m.pt", "--bootstrap", "-1"], "--bootstrap must not be negative"),
        (["--model-weights", trained / "m.pt", trained / "m.pt"], "given twice"),
        (["--model-weights", trained / "m.pt", copy], f"the same run ({run_id}) as {trained / 'm.pt'}"),
        (["--model-weights", trained / "m.pt", "--out", "/proc/evaluation"], "--out /proc/evaluation"),
    ]
    for args, message in cases:
        proc = cli("bench.evaluate", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr[-2000:])
    for args, message in cases[::3]:  # the drawing entry point checks through the same code
        proc = cli("reports.physics", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr[-2000:])


@pytest.mark.slow  # runs python -m bench.evaluate
def test_bench_evaluate_writes_the_entries_and_draws_nothing(trained, tmp_path):
    proc = cli("bench.evaluate", "--model-weights", trained / "m.pt", "--bootstrap", "0", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["physics.json"]
    (entry,) = json.loads((tmp_path / "physics.json").read_text())
    assert entry["test_events"] == 512 and "unweighted background events" in proc.stdout


@pytest.mark.slow  # runs python -m bench.strong_scaling / bench.evaluate
def test_a_file_grown_since_training_is_refused(tmp_path):
    from data.store import write_synthetic
    data = tmp_path / "d.h5"
    write_synthetic(data, 400, 16, pixels_per_event=40, chunk_events=50, seed=4)
    proc = cli("bench.strong_scaling", "--data", data, "--image-size", "16", "--global-batch", "64", "--epochs",
               "2", "--threads", "1", "--train-events", "0", "--val-events", "0", "--out", tmp_path / "r.jsonl",
               "--save-model", tmp_path / "m.pt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    write_synthetic(data, 480, 16, pixels_per_event=40, chunk_events=50, seed=4)  # the same path, more events
    proc = cli("bench.evaluate", "--model-weights", tmp_path / "m.pt", "--out", tmp_path / "e")
    assert proc.returncode == 2 and "held 400 events; it now holds" in proc.stderr, proc.stderr[-2000:]
