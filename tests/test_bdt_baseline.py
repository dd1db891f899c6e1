"""Spec (reports/bdt_baseline.py): the leading-jet matrix holds each event's highest-pT jets in falling pT,
zero-padded; each feature set has its columns; ``python -m reports.bdt_baseline`` trains one classifier per
set on the CNN's training events, scores the CNN's test events and writes them beside the CNN into one table,
each compared with the cuts on the same events; bad flags and a source without jets exit 2 naming the flag or
the file, before anything is scored or written."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from data.hdf5_source import open_hdf5
from reports import bdt_baseline as bb
from tests.test_btag_channel import SIZE, _store

ROOT = Path(__file__).resolve().parent.parent


def test_leading_jets_are_sorted_and_padded(tmp_path):
    path = tmp_path / "j.h5"
    tables = _store(path, n=40)
    idx = np.array([3, 0, 25])
    with h5py.File(path) as f:
        lead = bb.leading_jets(f, idx, k=6)
    for row, i in enumerate(idx):
        t = tables[i][np.argsort(-tables[i][:, 0])][:6]
        m = len(t)
        np.testing.assert_allclose(lead["pt"][row, :m], t[:, 0], rtol=1e-6)
        np.testing.assert_allclose(lead["eta"][row, :m], t[:, 1], rtol=1e-6)
        np.testing.assert_array_equal(lead["btag"][row, :m], t[:, 3])
        assert (lead["pt"][row, m:] == 0).all()
    src = open_hdf5(str(path))
    sets = bb.features(src, idx, list(bb.FEATURES))
    widths = {name: m.shape for name, m in sets.items()}
    assert widths == {"kinematics": (3, 4), "kinematics+nb": (3, 5), "jets": (3, 24), "jets+btag": (3, 35)}
    np.testing.assert_array_equal(sets["kinematics+nb"][:, 4], src.event_table(idx)["nb"])


@pytest.mark.slow  # runs python -m bench.strong_scaling and python -m reports.bdt_baseline
def test_the_baselines_sit_beside_the_cnn_on_its_test_events(tmp_path):
    data, bare = tmp_path / "j.h5", tmp_path / "bare.h5"
    _store(data, n=200, seed=5)
    _store(bare, n=200, seed=5, jets=False)
    run = [sys.executable, "-m", "bench.strong_scaling", "--image-size", str(SIZE), "--global-batch", "32",
           "--train-events", "0", "--val-events", "0", "--epochs", "1", "--threads", "1"]
    for d, m in ((data, "m.pt"), (bare, "bare.pt")):
        proc = subprocess.run([*run, "--data", str(d), "--out", str(tmp_path / f"{m}.jsonl"), "--save-model",
                               str(tmp_path / m)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "reports.bdt_baseline", "--bootstrap", "5", "--threads", "1",
           "--bdt-iterations", "20"]
    proc = subprocess.run([*cli, "--model-weights", str(tmp_path / "m.pt"), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = json.loads((out / "physics.json").read_text())
    assert [e["label"] for e in entries] == ["1 rank(s)", *(f"BDT: {n}" for n in bb.FEATURES)]
    cnn = entries[0]
    for e in entries[1:]:  # the same test events and the same cuts
        assert e["test_events"] == cnn["test_events"] > 0 and e["cut_signal_eff"] == cnn["cut_signal_eff"]
        assert e["train_events"] == 200 - cnn["test_events"] - int(json.loads(
            (tmp_path / "m.pt.jsonl").read_text())["data"]["split"]["val"]) and 0.0 <= e["auc"] <= 1.0
    md = (out / "physics.md").read_text()
    assert "BDT: jets+btag" in md and (out / "roc.png").is_file()
    model, bare_model = ["--model-weights", str(tmp_path / "m.pt")], ["--model-weights", str(tmp_path / "bare.pt")]
    cases = [([*cli, *model, "--features", "jets,bogus"], "--features: unknown set bogus"),
             ([*cli, *model, "--bdt-iterations", "0"], "--bdt-iterations must be positive"),
             ([*cli, *bare_model, "--features", "jets"], f"{bare}: holds no per-jet table")]
    for argv, message in cases:
        fresh = tmp_path / "fresh"
        proc = subprocess.run([*argv, "--out", str(fresh)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2 and message in proc.stderr, (argv, proc.stderr[-2000:])
        assert not (fresh / "physics.json").exists()
    proc = subprocess.run([*cli, "--model-weights", str(tmp_path / "bare.pt"), "--features", "kinematics+nb",
                           "--out", str(tmp_path / "k")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_committed_baseline_belongs_to_the_reference_run():
    ref = ROOT / "reports" / "reference" / "quality"
    (cnn_ref,) = json.loads((ref / "physics.json").read_text())
    cnn, *bdts = json.loads((ref / "bdt" / "physics.json").read_text())
    assert cnn["run_id"] == cnn_ref["run_id"] and cnn["auc"] == pytest.approx(cnn_ref["auc"], abs=1e-9)
    assert [b["label"] for b in bdts] == [f"BDT: {n}" for n in bb.FEATURES]
    for b in bdts:  # the same test events, the same cuts, trained on the run's training events
        assert b["classifier"] == "BDT" and b["test_events"] == cnn["test_events"] == 70_000
        assert b["cut_background_events"] == cnn["cut_background_events"] >= 30
        assert b["train_events"] == 110_000 and b["cnn_background_events"] >= 30
