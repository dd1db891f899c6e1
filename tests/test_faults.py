"""Spec: a failure on any one rank (an exception, a NaN loss, a process killed from outside) ends the whole
mpirun -np 2 job within 30 seconds with a non-zero status and that rank's message, for every backend,
and writes no record. Each test bounds its time and leaves no process behind."""
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bench import mpijob
from bench.runner.backends import available
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.mpi
BACKENDS = ["mpi", "ddp", "horovod"]
ARGS = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "64",
        "--threads", "1"]


def launch(args):
    return mpijob.Job(["mpirun", "-np", "2", sys.executable, *args], cwd=ROOT, env=MPI_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the job did not end within {timeout} s")
    return proc.returncode, out + err


def need(backend):
    if not available(backend):
        pytest.fail(f"backend {backend} is not installed (scripts/setup.sh installs it)")


# (what rank 1 does at the start of epoch 1, epochs asked for, what the terminal must show)
INJECTED = {
    "raise": ("30", ["injected failure on rank 1", "[rank 1"]),
    "nan": ("3", ["non-finite training loss at epoch 1, step 0"]),
}


@pytest.mark.parametrize("kind", INJECTED)
@pytest.mark.parametrize("backend", BACKENDS)
def test_failure_on_one_rank_ends_the_job(kind, backend, tmp_path):
    need(backend)
    epochs, messages = INJECTED[kind]
    out = tmp_path / "r.jsonl"
    proc = launch([str(ROOT / "tests/mpi_scripts/fault_run.py"), "1", f"{kind}@1", *ARGS, "--epochs", epochs,
                   "--backend", backend, "--out", str(out)])
    code, log = finish(proc, timeout=120)  # start-up + one epoch + the abort
    assert code != 0
    for message in messages:
        assert message in log
    assert not out.exists()


# phase -> (failing rank, exit status: 2 for what the phase reports as bad input or a failed write, 1 for an
# abort). The writes fail on rank 0, which alone writes them.
PHASES = {
    "open_data": (1, 2), "pick_device": (1, 2), "check_fits": (1, 2), "place_data": (1, 2), "threads": (1, 1),
    "validate": (1, 1), "checkpoint": (0, 2), "test_comparison": (1, 1), "save_model": (0, 2),
    "append_record": (0, 2),
}
# phases after which the run's record is kept: the model file fails after the run is measured
RECORDED = {"save_model"}


def injected_at(log: str) -> float:
    [when] = re.findall(r"injected \S+ at ([0-9.]+)", log)
    return float(when)


@pytest.mark.parametrize("phase", PHASES)
def test_a_failure_on_one_rank_in_any_phase_ends_the_job(phase, tmp_path):
    """Set-up, training's side work and the end of the run: one rank fails, the job ends within 30 s of the
    fault with a non-zero status and that rank's message, and no record is written (but for a model file
    that cannot be written after the run: its record is kept; a record --out cannot take is kept aside)."""
    bad_rank, status = PHASES[phase]
    out = tmp_path / "r.jsonl"
    extra = ["--save-model", str(tmp_path / "m.pt"), "--checkpoint", str(tmp_path / "c.ckpt")]
    proc = launch([str(ROOT / "tests/mpi_scripts/fault_run.py"), str(bad_rank), phase, *ARGS, "--epochs", "2",
                   "--backend", "mpi", "--out", str(out), *extra])
    code, log = finish(proc, timeout=180)
    ended = time.time()
    assert code == status, log[-3000:]
    assert f"injected on rank {bad_rank}" in log
    assert ended - injected_at(log) < 30, f"the job ended {ended - injected_at(log):.0f} s after the fault"
    assert out.exists() == (phase in RECORDED)
    if phase == "append_record":
        assert len(list(tmp_path.glob("unrecorded-*.jsonl"))) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_data_file_missing_on_one_node_ends_the_job(backend, tmp_path):
    """The MPMD case: rank 1 is given a file that is not there (staged on some nodes' scratch and not
    others'). Every rank ends with status 2 within 30 s; rank 0 names rank 1 and the file."""
    need(backend)
    out = tmp_path / "r.jsonl"
    args = ["-m", "bench.strong_scaling", "--model", "circpad", "--image-size", "16", "--global-batch", "32",
            "--epochs", "50", "--train-events", "256", "--val-events", "32", "--threads", "1", "--backend", backend,
            "--out", str(out)]
    proc = mpijob.Job(["mpirun", "-np", "1", sys.executable, *args, "--data", "synthetic", ":", "-np", "1",
                             sys.executable, *args, "--data", str(tmp_path / "missing.h5")],
                            cwd=ROOT, env=MPI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    t0 = time.time()
    code, log = finish(proc, timeout=120)
    assert time.time() - t0 < 30 + 15, f"took {time.time() - t0:.0f} s (30 s after a start-up of up to 15 s)"
    assert code == 2 and f"error: rank 1: {tmp_path / 'missing.h5'}" in log, log[-3000:]
    assert not out.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_rank_ends_the_job_within_30_seconds(backend, tmp_path):
    need(backend)
    out = tmp_path / "r.jsonl"
    tag = f"kill-test-{uuid.uuid4().hex[:8]}"
    proc = launch(["-m", "bench.strong_scaling", *ARGS, "--epochs", "500", "--backend", backend,
                   "--system", tag, "--out", str(out)])
    deadline = time.time() + 90
    ranks = []
    while time.time() < deadline and len(ranks) < 2:
        found = subprocess.run(["pgrep", "-f", tag], capture_output=True, text=True).stdout.split()
        ranks = [int(p) for p in found if int(p) != proc.pid]
        time.sleep(0.5)
    assert len(ranks) >= 2, "the ranks did not start"
    time.sleep(8)  # well into training
    os.kill(max(ranks), signal.SIGKILL)
    t0 = time.time()
    code, log = finish(proc, timeout=60)
    assert time.time() - t0 < 30, f"the job took {time.time() - t0:.0f} s to end"
    assert code != 0
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["--global-batch", "65"], "not divisible by 2 ranks"),
    (["--global-batch", "2", "--train-events", "1"], "training events"),
    (["--global-batch", "64", "--micro-batch", "64"], "not divisible by --micro-batch"),
])
def test_bad_input_under_mpirun_exits_2(args, needle, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"kept": true}\n')
    base = ["--image-size", "16", "--val-events", "64", "--threads", "1", "--train-events", "256"]
    proc = launch(["-m", "bench.strong_scaling", *base, *args, "--backend", "mpi", "--out", str(out)])
    code, log = finish(proc, timeout=120)
    assert code == 2 and needle in log
    assert log.count(needle) == 1  # said once, by rank 0
    assert out.read_text() == '{"kept": true}\n'


def test_two_jobs_sharing_the_cores_each_record_their_own_figures(tmp_path):
    out = tmp_path / "shared.jsonl"
    jobs = [launch(["-m", "bench.strong_scaling", *ARGS, "--epochs", "2", "--backend", "mpi",
                    "--system", f"job-{k}", "--out", str(out)]) for k in (1, 2)]
    for job in jobs:
        code, log = finish(job, timeout=300)
        assert code == 0, log[-3000:]
    import json
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["system"] for r in recs) == ["job-1", "job-2"]
    assert all(r["world_size"] == 2 and r["images_per_s"] > 0 for r in recs)
    assert recs[0]["run_id"] != recs[1]["run_id"]
