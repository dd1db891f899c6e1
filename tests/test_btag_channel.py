"""Spec (data/btag.py): --btag-channel adds a fourth channel with a 1 at the pixel of each b-tagged jet's
axis, from the store's own jets and tag decisions (format version 3); the first three channels are the
store's as they were; the device cache and the host loader build the same four-channel images, which the
symmetry transforms move with the rest; a store without jets, the toy and a store whose tags disagree with
events/nb are refused naming the file; the model trains on four channels."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from bench.runner.augment import Augment, TRANSFORMS, transform_dense
from bench.runner.config import parse_config
from bench.runner.data_setup import open_data
from bench.runner.device_data import DeviceCache
from data import store as st
from data.base import DataError
from data.btag import BtagChannelSource, jet_pixels
from data.hdf5_source import open_hdf5

ROOT = Path(__file__).resolve().parent.parent
SIZE = 16


def _store(path, n=40, seed=2, jets=True):
    rng = np.random.default_rng(seed)
    npix = 3 * SIZE * SIZE
    idx = [np.unique(rng.integers(0, npix, 30)).astype(np.int32) for _ in range(n)]
    tables = []
    for _ in range(n):
        m = int(rng.integers(4, 9))
        tables.append(np.column_stack([np.sort(rng.uniform(30, 400, m))[::-1], rng.uniform(-2.4, 2.4, m),
                                       rng.uniform(-np.pi, np.pi, m), rng.random(m) < 0.4, rng.random(m)]))
    ev = {"idx": idx, "val": [rng.exponential(5.0, len(i)).astype(np.float32) for i in idx],
          "gen_weight": np.ones(n), "njet": np.array([len(t) for t in tables]),
          "nb": np.array([int(t[:, 3].sum()) for t in tables]), "ht": np.full(n, 1600.0),
          "mj": np.full(n, 600.0), "lead_jet_pt": np.full(n, 300.0), "jets": tables}
    with st.StoreWriter(path, SIZE, chunk_events=8, jets=jets) as w:
        half = n // 2
        for label, name, part in ((1, "sig", slice(0, half)), (0, "bkg", slice(half, n))):
            sub = {k: (v[part] if not isinstance(v, list) else v[part]) for k, v in ev.items()}
            w.append(w.sample_index(name, label), 0, sub, n_generated=100, sigma_pb=1.0)
    return tables


def test_the_channel_holds_a_one_at_each_tagged_jet(tmp_path):
    path = tmp_path / "j.h5"
    tables = _store(path)
    plain = open_hdf5(str(path), normalisation="max")
    src = BtagChannelSource(open_hdf5(str(path), normalisation="max"))
    x = src.load(np.arange(len(tables))).x
    assert x.shape == (len(tables), 4, SIZE, SIZE)
    np.testing.assert_array_equal(x[:, :3], plain.load(np.arange(len(tables))).x)  # the store's channels
    for i, t in enumerate(tables):
        tagged = t[t[:, 3] > 0]
        want = np.zeros(SIZE * SIZE, np.float32)
        want[jet_pixels(tagged[:, 1], tagged[:, 2], SIZE)] = 1.0
        np.testing.assert_array_equal(x[i, 3].ravel(), want)
    # hand-made: eta 0, phi 0 is the centre pixel; the edges clip into the image
    assert jet_pixels([0.0, 2.49, -2.5], [0.0, np.pi, -np.pi], SIZE).tolist() == [8 * SIZE + 8, 15 * SIZE + 15, 0]


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_device_cache_builds_the_same_images_and_moves_the_channel(tmp_path, channels_last):
    path = tmp_path / "j.h5"
    _store(path)
    src = BtagChannelSource(open_hdf5(str(path)))
    idx = np.arange(len(src))
    cache = DeviceCache(src, idx, torch.device("cpu"), channels_last)
    dense = cache.dense(idx)
    np.testing.assert_array_equal(dense.contiguous().numpy(), src.load(idx).x)
    draws = Augment(TRANSFORMS, 3).for_step(0, len(idx), SIZE)
    slots = cache.slots(idx)
    moved = cache.build(torch.from_numpy(slots), cache.pixels_of(slots), draws)
    torch.testing.assert_close(moved.contiguous(), transform_dense(dense.contiguous(), draws), rtol=0, atol=0)


def test_sources_without_jets_or_with_inconsistent_tags_are_refused(tmp_path):
    old = tmp_path / "old.h5"
    _store(old, jets=False)
    with pytest.raises(DataError, match="old.h5: --btag-channel needs a store with every event's jets"):
        BtagChannelSource(open_hdf5(str(old)))
    with pytest.raises(DataError, match="synthetic: --btag-channel"):
        open_data(parse_config(["--btag-channel"]))
    bad = tmp_path / "bad.h5"
    _store(bad)
    with h5py.File(bad, "a") as f:
        nb = f["events/nb"][:]
        nb[3] += 1
        f["events/nb"][:] = nb
    with pytest.raises(DataError, match="bad.h5: event 3 has"):
        BtagChannelSource(open_hdf5(str(bad)))


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_a_run_trains_on_four_channels(tmp_path):
    path = tmp_path / "j.h5"
    _store(path, n=160)
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", "--data", str(path), "--image-size",
                           str(SIZE), "--btag-channel", "--global-batch", "32", "--train-events", "0",
                           "--val-events", "0", "--epochs", "2", "--threads", "1", "--augment", "all",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["config"]["btag_channel"] is True
    assert rec["data"]["channels"] == ["hcal_e", "ecal_e", "track_pt", "btag"]
    assert rec["model_params"] > 0 and rec["test_auc"] is not None


def test_the_comparison_adds_the_truth_tag_estimate_on_a_store_with_tag_efficiencies(tmp_path):
    from bench import physics
    path, old = tmp_path / "j.h5", tmp_path / "old.h5"
    tables = _store(path, n=80)
    _store(old, n=80, jets=False)
    with h5py.File(path, "a") as f:  # every event above the MJ cut: the events with 8 jets count
        f["events/mj"][:] = 900.0
    scores = np.linspace(0, 1, 80)
    cmp, _ = physics.on_source(open_hdf5(str(path)), np.arange(80), scores, bootstrap=0)
    src = open_hdf5(str(path))
    t = src.event_table()
    off = np.concatenate([[0], np.cumsum([len(x) for x in tables])])
    tt = physics.truth_tag(t, off, np.concatenate(tables)[:, 4])
    bkg = src.labels == 0
    assert cmp.cut_background_eff_truth_tag == pytest.approx((src.weights * tt)[bkg].sum() / src.weights[bkg].sum())
    assert cmp.truth_tag_background_events == int(((tt > 0) & bkg).sum()) > 0
    plain, _ = physics.on_source(open_hdf5(str(old)), np.arange(80), scores, bootstrap=0)
    assert plain.cut_background_eff_truth_tag is None and plain.truth_tag_background_events is None
