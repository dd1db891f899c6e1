"""Spec: --resume loses no finished work. A run checkpointed every epoch and continued after it stopped
gives the same losses and AUC as an uninterrupted run (CPU, same seed); a checkpoint from another
configuration is refused naming the flags; a sweep re-run with the same records file and sweep id skips
the points already recorded."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "128",
        "--threads", "1", "--seed", "5"]


def run(args, out, mpi=False, check=True):
    cmd = [sys.executable, "-m", "bench.strong_scaling", *TINY, *args, "--out", str(out)]
    if mpi:
        cmd = ["mpirun", "-np", "2", *cmd]
    proc = subprocess.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()] if Path(path).exists() else []


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_resumed_run_equals_uninterrupted(tmp_path):
    run(["--epochs", "3", "--checkpoint", str(tmp_path / "a.ckpt")], tmp_path / "a.jsonl")
    # stopped after two epochs (as a walltime would), then continued to three
    run(["--epochs", "2", "--checkpoint", str(tmp_path / "b.ckpt")], tmp_path / "b-first.jsonl")
    proc = run(["--epochs", "3", "--checkpoint", str(tmp_path / "b.ckpt"), "--resume"], tmp_path / "b.jsonl")
    assert "resuming from" in proc.stdout and "after epoch 1" in proc.stdout
    (a,), (b,) = records(tmp_path / "a.jsonl"), records(tmp_path / "b.jsonl")
    assert a["val_loss"] == b["val_loss"] and a["auc"] == b["auc"]
    assert len(b["epoch_s"]) == 2


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_a_finished_run_is_not_recorded_twice(tmp_path):
    """Job scripts that always pass --resume re-run finished jobs: the run says it is complete, exits 0 and
    appends nothing; asking for more epochs continues it and records the longer run."""
    args = ["--epochs", "2", "--checkpoint", str(tmp_path / "f.ckpt"), "--resume"]
    run(args, tmp_path / "f.jsonl")
    (first,) = records(tmp_path / "f.jsonl")
    proc = run(args, tmp_path / "f.jsonl")
    assert f"recorded as run {first['run_id']}" in proc.stdout and "nothing to do" in proc.stdout
    assert records(tmp_path / "f.jsonl") == [first]
    run(["--epochs", "3", "--checkpoint", str(tmp_path / "f.ckpt"), "--resume"], tmp_path / "f.jsonl")
    assert [len(r["auc"]) for r in records(tmp_path / "f.jsonl")] == [2, 3]


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    run(["--epochs", "2", "--checkpoint", str(tmp_path / "c.ckpt")], tmp_path / "c.jsonl")
    before = (tmp_path / "c.jsonl").read_text()
    proc = run(["--epochs", "3", "--lr", "0.01", "--checkpoint", str(tmp_path / "c.ckpt"), "--resume"],
               tmp_path / "c.jsonl", check=False)
    assert proc.returncode == 2 and "lr" in proc.stderr and "--checkpoint" in proc.stderr
    assert (tmp_path / "c.jsonl").read_text() == before


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_resume_needs_something_to_resume(tmp_path):
    proc = run(["--resume"], tmp_path / "x.jsonl", check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr


@pytest.mark.mpi
def test_sweep_resume_skips_recorded_points(tmp_path):
    out = tmp_path / "s.jsonl"
    run(["--epochs", "2", "--sweep", "--sweep-id", "S1", "--backend", "mpi"], out, mpi=True)
    assert [r["world_size"] for r in records(out)] == [1, 2]
    # as if the job had died during the 2-rank point: keep only the 1-rank record
    out.write_text(out.read_text().splitlines(keepends=True)[0])
    proc = run(["--epochs", "2", "--sweep", "--sweep-id", "S1", "--backend", "mpi", "--resume"], out, mpi=True)
    assert "already has records for [1]" in proc.stdout
    assert [r["world_size"] for r in records(out)] == [1, 2]
    proc = run(["--epochs", "2", "--sweep", "--sweep-id", "S1", "--backend", "mpi", "--resume"], out, mpi=True)
    assert [r["world_size"] for r in records(out)] == [1, 2]  # nothing left to do
