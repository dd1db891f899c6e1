"""Spec: bench.strong_scaling trains on an HDF5 event store (--data FILE.h5) on one rank and under
mpirun -np 2, recording the file, its deterministic split and the physics AUC; it trains on real Pythia
events made by data.generation.generate; bad data files exit 2 naming the file or flag and leave the records alone."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from bench import mpijob
from data.store import write_synthetic
from tests.fixtures_data import generated  # noqa: F401 - session fixture: small real dataset
from tests.mpi_env import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--global-batch", "64", "--epochs", "2", "--threads", "1", "--val-events", "0", "--train-events", "0"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "toy.h5"
    write_synthetic(path, 640, 16, pixels_per_event=60, chunk_events=64, seed=3)
    return path


def run(args, out, n=1):
    cmd = [sys.executable, "-m", "bench.strong_scaling", *args, "--out", str(out)]
    if n > 1:
        cmd = ["mpirun", "-np", str(n), *cmd]
    return mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True, timeout=300)


def records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_one_rank_trains_on_a_store(store, tmp_path):
    proc = run(["--data", str(store), "--image-size", "16", *ARGS], tmp_path / "r.jsonl")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = records(tmp_path / "r.jsonl")
    assert rec["data"]["kind"] == "hdf5" and rec["data"]["path"] == str(store.resolve())
    assert rec["data"]["split"] == {"train": 384, "val": 128, "test": 128}  # 60/20/20 of 640
    assert rec["train_events"] == 384 and rec["val_events"] == 128 and len(rec["auc"]) == 2
    assert rec["physics"]["test_events"] == 128 and rec["physics"]["eff_ratio_err"] is not None


@pytest.mark.mpi
def test_two_ranks_train_on_a_store(store, tmp_path):
    proc = run(["--data", str(store), "--image-size", "16", "--backend", "mpi", *ARGS], tmp_path / "r.jsonl", n=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = records(tmp_path / "r.jsonl")
    assert rec["world_size"] == 2 and rec["per_rank_batch"] == 32 and rec["data"]["kind"] == "hdf5"


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_trains_on_real_generated_events(generated, tmp_path):  # noqa: F811
    proc = run(["--data", str(generated.path), "--image-size", "64", "--global-batch", "32", "--epochs", "2",
                "--threads", "2", "--train-events", "0", "--val-events", "0"], tmp_path / "r.jsonl")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = records(tmp_path / "r.jsonl")
    assert rec["data"]["format"].startswith("hep-sparse-images")
    assert {s["label"] for s in rec["data"]["samples"]} == {0, 1}
    assert 0.0 <= rec["auc"][-1] <= 1.0
    # The record carries the test-split comparison with the cut-based selection.
    phys = rec["physics"]
    assert phys["test_events"] == rec["data"]["split"]["test"] and rec["test_auc"] == phys["auc"]
    assert 0 < phys["cut_signal_eff"] < 1 and phys["cut_background_eff"] < 0.2
    assert phys["cnn_background_eff"] <= phys["cut_background_eff"]
    assert [r["cut"] for r in phys["cut_flow"]][0] == "baseline" and len(phys["roc"]["fpr"]) > 100


def one_class(tmp_path, store):
    path = tmp_path / "one.h5"
    path.write_bytes(store.read_bytes())
    with h5py.File(path, "a") as f:
        f["events/label"][...] = np.ones_like(f["events/label"][...])
    return path


def truncated(tmp_path, store):
    path = tmp_path / "cut.h5"
    path.write_bytes(store.read_bytes()[: store.stat().st_size // 3])
    return path


def edited(tmp_path, store, name, edit):
    path = tmp_path / f"{name}.h5"
    path.write_bytes(store.read_bytes())
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def wrong_layout(tmp_path):
    path = tmp_path / "layout.h5"
    with h5py.File(path, "w") as f:
        f["something/else"] = np.zeros((10, 4))
    return path


def set_values(dataset, value):
    def edit(f):
        f[dataset][:20] = value
    return edit


BAD_FILES = {
    "size": lambda tmp, store: store,
    "missing": lambda tmp, store: tmp / "nothere.h5",
    "truncated": truncated,
    "one_class": one_class,
    "layout": lambda tmp, store: wrong_layout(tmp),
    "nan_pixels": lambda tmp, store: edited(tmp, store, "nan", set_values("pixels/value", np.nan)),
    "negative_weight": lambda tmp, store: edited(tmp, store, "neg", set_values("events/gen_weight", -1.0)),
}


@pytest.mark.parametrize("case,args,needle", [
    ("size", ["--image-size", "32"], "--image-size"),
    ("missing", ["--image-size", "16"], "nothere.h5"),
    ("truncated", ["--image-size", "16"], "cut.h5"),
    ("one_class", ["--image-size", "16"], "one.h5"),
    ("layout", ["--image-size", "16"], "layout.h5"),
    ("nan_pixels", ["--image-size", "16"], "pixels/value"),  # found while training: still exit 2
    ("nan_pixels", ["--image-size", "16", "--data-placement", "device"], "pixels/value"),  # in the preload
    ("negative_weight", ["--image-size", "16"], "gen_weight"),
])
@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_bad_data_files_exit_2(case, args, needle, store, tmp_path):
    path = BAD_FILES[case](tmp_path, store)
    out = tmp_path / "r.jsonl"
    out.write_text('{"kept": true}\n')
    proc = run(["--data", str(path), *args, *ARGS], out)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert needle in proc.stderr
    assert out.read_text() == '{"kept": true}\n'
