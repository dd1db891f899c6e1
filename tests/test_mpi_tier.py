"""Spec (the distributed tier, under mpirun -np 2): for every backend, 2 ranks at per-rank batch b give the
same weights as one rank accumulating 2 micro-batches of b (dropout off, same seed); a 2-rank run writes
exactly one record with world_size 2; --sweep at 2 ranks writes records for 1 and 2 ranks sharing a sweep
id; each rank's epoch shard is disjoint from the others and together they are complete."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import mpijob
from bench.runner.backends import available
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.mpi
BACKENDS = ["mpi", "ddp", "horovod"]
TINY = ["--image-size", "16", "--global-batch", "64", "--micro-batch", "32", "--train-events", "192",
        "--val-events", "64", "--epochs", "2", "--dropout", "0", "--threads", "1", "--seed", "11"]


def mpirun(n, args, timeout=240):
    if shutil.which("mpirun") is None:
        pytest.fail("mpirun not found: the distributed tier needs Open MPI (scripts/setup.sh installs it)")
    cmd = ["mpirun", "-np", str(n), sys.executable, *args]
    return mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True, timeout=timeout)


def train(tmp_path, name, extra, n=None):
    out, weights = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.pt"
    args = ["-m", "bench.strong_scaling", *TINY, *extra, "--out", str(out), "--save-model", str(weights)]
    if n is None:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=240)
    else:
        proc = mpirun(n, args)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    state = torch.load(weights)["state_dict"] if weights.exists() else None  # a sweep names one file per size
    return records, state


def parameters(state):
    # Trainable tensors only: BatchNorm running statistics are per-rank by design.
    return {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One rank, global batch 64 as two accumulated micro-batches of 32."""
    return train(tmp_path_factory.mktemp("ref"), "ref", ["--backend", "none"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_ranks_equal_one_rank_accumulating(backend, reference, tmp_path):
    if not available(backend):
        pytest.fail(f"backend {backend} is not installed (scripts/setup.sh installs it)")
    (rec,), state = train(tmp_path, backend, ["--backend", backend], n=2)
    (ref,), ref_state = reference
    assert (rec["world_size"], rec["backend"], rec["nodes"], rec["ranks_per_node"]) == (2, backend, 1, 2)
    assert (rec["per_rank_batch"], rec["accumulation_steps"]) == (32, 1)
    assert (ref["per_rank_batch"], ref["accumulation_steps"]) == (64, 2)
    got, want = parameters(state), parameters(ref_state)
    assert got.keys() == want.keys() and len(got) > 10
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=2e-4, atol=2e-5, msg=f"{backend}: {k} differs")
    # and the run really trained: the weights moved from their initial values
    torch.manual_seed(11)
    import models
    init = models.get_model("circpad", image_size=16, dropout=0).state_dict()
    assert not torch.allclose(init["classifier.1.weight"], want["classifier.1.weight"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sweep_writes_one_and_two_ranks(backend, tmp_path):
    records, _ = train(tmp_path, f"sweep-{backend}", ["--backend", backend, "--sweep"], n=2)
    assert [r["world_size"] for r in records] == [1, 2]
    assert len({r["sweep_id"] for r in records}) == 1 and records[0]["sweep_id"]
    assert all(r["backend"] == backend and r["threads_per_rank"] == 1 for r in records)
    # the same data order and initial weights: the one-rank run of the sweep sees the same events
    assert records[0]["train_events"] == records[1]["train_events"] == 192
    assert all(len(r["epoch_s"]) == 1 and r["images_per_s"] > 0 for r in records)
    assert records[1]["env"]["mpi_library"].startswith("Open MPI")
    # --save-model in a sweep: one model file per world size, each naming its run
    for r in records:
        saved = torch.load(tmp_path / f"sweep-{backend}-{r['world_size']}ranks.pt")
        assert saved["world_size"] == r["world_size"] and saved["run_id"] == r["run_id"]


def test_sharding_is_disjoint_and_complete_under_mpi():
    proc = mpirun(2, [str(ROOT / "tests" / "mpi_scripts" / "check_sharding.py")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sharding ok on 2 ranks" in proc.stdout


def test_auto_backend_is_horovod_when_installed(tmp_path):
    records, _ = train(tmp_path, "auto", ["--epochs", "1"], n=2)
    assert records[0]["backend"] == ("horovod" if available("horovod") else "mpi")
