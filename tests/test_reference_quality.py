"""Spec: the committed reference quality run is what it says it is.

``data/reference/events64.h5`` (15,000 RPV signal + 15,000 QCD events at 64x64 from the fast path) is remade
chunk for chunk from its seed by ``data.generation.generate`` (checked on the first signal chunk and the first
chunk of the hardest QCD slice); the committed model ``reports/reference/quality/model.pt`` scored on its test
split by ``reports.physics`` gives the committed ``physics.json`` (AUC, working point, cut point, the unweighted
background count behind it), so the table in ``reports/reference/quality/README.md`` can be re-derived by anyone.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from data.generation import pythia
from data.hdf5_source import open_hdf5

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "reference" / "events64.h5"
QUALITY = ROOT / "reports" / "reference" / "quality"


def test_the_store_is_the_one_described():
    with h5py.File(STORE, "r") as f:
        meta = json.loads(f.attrs["meta"])
        labels = f["events/label"][: int(f.attrs["committed_events"])]
        assert (int((labels == 1).sum()), int((labels == 0).sum())) == (15000, 15000)
        assert int(f.attrs["format_version"]) == 2
    assert meta["path"] == "fast" and meta["seed"] == 11 and meta["chunk"] == 250 and meta["pileup"] == 0
    assert meta["levers"]["btag_weight"] and meta["levers"]["parton_veto"]


@pytest.mark.slow  # generates two chunks with Pythia (about half a minute)
@pytest.mark.parametrize("which", ["signal", "hardest QCD slice"])
def test_a_stored_chunk_is_remade_identically_from_its_seed(which):
    with h5py.File(STORE, "r") as f:
        meta = json.loads(f.attrs["meta"])
        samples = [pythia.SIGNAL] + pythia.qcd_slices(tuple(meta["qcd_edges"]))
        si = 0 if which == "signal" else len(samples) - 1
        (row,) = np.flatnonzero((f["chunks/sample"][:] == si) & (f["chunks/chunk"][:] == 0))
        stops = f["chunks/event_stop"][:]
        events = np.arange(int(stops[row - 1]) if row else 0, int(stops[row]))
        n_generated = int(f["chunks/n_generated"][row])
    stored = open_hdf5(str(STORE), normalisation="none").sparse(events)  # the stored pixels, as stored
    out = pythia.generate_chunk(samples[si], pythia.chunk_seed(meta["seed"], si, 0), len(events), 64,
                                pileup=meta["pileup"], levers=pythia.PATHS[meta["path"]])
    assert out["n_generated"] == n_generated
    np.testing.assert_array_equal([len(i) for i in out["idx"]], stored.counts)
    np.testing.assert_array_equal(np.concatenate(out["idx"]).astype(np.int32), stored.pixel)
    np.testing.assert_array_equal(np.concatenate(out["val"]).astype(np.float32), stored.value)


@pytest.mark.slow  # runs python -m reports.physics on 6,000 test events at 64x64 (about a minute on two cores)
def test_the_committed_model_gives_the_committed_table(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "reports.physics", "--model-weights", str(QUALITY / "model.pt"),
                           "--data", str(STORE), "--bootstrap", "0", "--out", str(tmp_path)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (got,) = json.loads((tmp_path / "physics.json").read_text())
    (want,) = json.loads((QUALITY / "physics.json").read_text())
    assert got["test_events"] == want["test_events"] == 6000
    assert got["auc"] == pytest.approx(want["auc"], abs=1e-4)
    for key in ("cnn_signal_eff", "cut_signal_eff", "cut_background_eff"):
        assert got[key] == pytest.approx(want[key], rel=1e-3), key
    assert got["cnn_background_events"] == want["cnn_background_events"]
    assert got["cut_background_events"] == want["cut_background_events"]
