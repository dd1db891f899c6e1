"""Spec: one process without mpirun trains for the given epochs and appends exactly one record carrying
every field of docs/records.md; the first epoch is kept apart as the warm-up; the quick preset is labelled
as smoke-sized; the same seed gives the same losses."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test runs python -m bench.strong_scaling

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "128",
        "--epochs", "3", "--threads", "1"]


def documented_fields():
    """The fields docs/records.md lists for every measured run (not those written only in some cases)."""
    table = (ROOT / "docs" / "records.md").read_text()
    return [f for f, rest in re.findall(r"^\| `(\w+)` \|(.*)$", table, flags=re.M) if " only) |" not in rest]


def run(args, out):
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *args, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_single_process_run_writes_one_complete_record(tmp_path):
    out = tmp_path / "r.jsonl"
    (rec,) = run(TINY + ["--preset", "quick", "--save-model", str(tmp_path / "w.pt")], out)
    missing = [f for f in documented_fields() if f not in rec]
    assert len(documented_fields()) >= 40 and missing == []
    assert rec["preset"] == "quick" and "not a benchmark" in rec["label"]
    assert rec["world_size"] == 1 and rec["backend"] == "none" and rec["threads_per_rank"] == 1
    assert rec["steps_per_epoch"] == 4 and rec["train_events"] == 256
    assert len(rec["epoch_s"]) == 2 and rec["warmup_epoch_s"] > 0
    assert len(rec["auc"]) == 3 and all(0.0 <= a <= 1.0 for a in rec["auc"])
    assert rec["images_per_s"] > 0 and rec["step_s_median"] > 0
    assert rec["config"]["image_size"] == 16 and rec["model_params"] > 0
    assert rec["env"]["torch"] and rec["env"]["cpu_model"]
    assert rec["cpu"]["ranks_x_threads"] == 1 and rec["cpu"]["cores_available"] >= 1
    assert 0 < rec["cpu"]["util_per_thread_min"] and rec["cpu"]["involuntary_ctx_switches"] >= 0
    assert (tmp_path / "w.pt").stat().st_size > 0


def test_same_seed_same_losses(tmp_path):
    a = run(TINY + ["--epochs", "2"], tmp_path / "a.jsonl")[0]
    b = run(TINY + ["--epochs", "2"], tmp_path / "b.jsonl")[0]
    assert a["val_loss"] == b["val_loss"] and a["auc"] == b["auc"]
