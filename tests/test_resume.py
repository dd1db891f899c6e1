"""Spec: --resume loses no finished work. A run checkpointed every epoch and continued after it stopped
gives the same losses and AUC as an uninterrupted run (CPU, same seed); a checkpoint from another
configuration is refused naming the flags; a sweep re-run with the same records file and sweep id skips
the points already recorded. SIGUSR1 (a scheduler's warning before its time limit) stops a run at the next
epoch boundary, after that epoch's checkpoint: exit status 75, a message saying how to continue, no record;
under mpirun a signal to one rank stops every rank at the same boundary. (tests/test_slurm.py has Slurm
send it.)"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import mpijob
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "128",
        "--threads", "1", "--seed", "5"]


def run(args, out, mpi=False, check=True):
    cmd = [sys.executable, "-m", "bench.strong_scaling", *TINY, *args, "--out", str(out)]
    if mpi:
        cmd = ["mpirun", "-np", "2", *cmd]
    proc = mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True, timeout=300)
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
def test_a_resumed_run_keeps_its_best_epoch_and_augmentation(tmp_path):
    """--keep best and --augment survive a stop: the best weights so far ride in the checkpoint and the
    augmentation's draws depend on (seed, epoch, rank, step) only; with --lr-decay the schedule depends on
    --epochs, so changing it is refused."""
    extra = ["--augment", "all", "--keep", "best", "--lr", "0.02"]
    run(["--epochs", "4", "--checkpoint", str(tmp_path / "a.ckpt"), *extra], tmp_path / "a.jsonl")
    run(["--epochs", "2", "--checkpoint", str(tmp_path / "b.ckpt"), *extra], tmp_path / "b-first.jsonl")
    run(["--epochs", "4", "--checkpoint", str(tmp_path / "b.ckpt"), "--resume", *extra], tmp_path / "b.jsonl")
    (a,), (b,) = records(tmp_path / "a.jsonl"), records(tmp_path / "b.jsonl")
    assert a["val_loss"] == b["val_loss"] and a["kept_epoch"] == b["kept_epoch"]
    assert a["test_auc"] == b["test_auc"]
    decay = ["--lr-decay", "cosine", "--checkpoint", str(tmp_path / "c.ckpt")]
    run(["--epochs", "2", *decay], tmp_path / "c.jsonl")
    proc = run(["--epochs", "3", "--resume", *decay], tmp_path / "c.jsonl", check=False)
    assert proc.returncode == 2 and "epochs" in proc.stderr and "--checkpoint" in proc.stderr


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


def signal_after_first_epoch(cmd, pick_pid, timeout=240) -> tuple[int, str, str]:
    """Start ``cmd``, send SIGUSR1 to ``pick_pid(proc)`` once epoch 0 is reported, and wait for the end:
    (status, stdout, stderr)."""
    proc = mpijob.Job(cmd, cwd=ROOT, env=MPI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    seen = []
    for line in proc.stdout:  # tqdm writes the epoch lines to stdout
        seen.append(line)
        if line.startswith("epoch 0 "):
            os.kill(pick_pid(proc), signal.SIGUSR1)
            break
        assert time.monotonic() < deadline, "epoch 0 was not reported"
    try:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, "".join(seen) + out, err


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_sigusr1_stops_at_an_epoch_boundary_and_resume_finishes_the_run(tmp_path):
    ckpt = ["--checkpoint", str(tmp_path / "s.ckpt"), "--resume"]
    cmd = [sys.executable, "-m", "bench.strong_scaling", *TINY, "--epochs", "6", *ckpt, "--out",
           str(tmp_path / "s.jsonl")]
    code, _, err = signal_after_first_epoch(cmd, lambda proc: proc.pid)
    assert code == 75, err[-3000:]
    assert "stopped: SIGUSR1 (the scheduler's warning before its time limit) stopped the job after" in err
    assert "run the same command with --resume" in err and str(tmp_path / "s.ckpt.n1") in err
    assert records(tmp_path / "s.jsonl") == []
    run(["--epochs", "6", *ckpt], tmp_path / "s.jsonl")
    run(["--epochs", "6"], tmp_path / "u.jsonl")
    (resumed,), (uninterrupted,) = records(tmp_path / "s.jsonl"), records(tmp_path / "u.jsonl")
    assert resumed["val_loss"] == uninterrupted["val_loss"] and resumed["auc"] == uninterrupted["auc"]


@pytest.mark.mpi
def test_sigusr1_to_one_rank_stops_every_rank_at_the_same_boundary(tmp_path):
    tag = f"usr1-{tmp_path.name}"
    cmd = ["mpirun", "-np", "2", sys.executable, "-m", "bench.strong_scaling", *TINY, "--epochs", "200",
           "--backend", "mpi", "--system", tag, "--checkpoint", str(tmp_path / "m.ckpt"), "--out",
           str(tmp_path / "m.jsonl")]

    def rank_1(proc):
        for pid in subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True, check=False).stdout.split():
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if b"OMPI_COMM_WORLD_RANK=1" in environ:
                return int(pid)
        raise AssertionError("rank 1 not found")

    code, _, err = signal_after_first_epoch(cmd, rank_1)
    assert code == 75, err[-3000:]
    assert "of the 2-rank run" in err and (tmp_path / "m.ckpt.n2").exists()
    assert records(tmp_path / "m.jsonl") == []
