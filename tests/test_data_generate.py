"""Spec: data.generation.generate makes real simulated events that pass the baseline, with physical weights.

Checked on one small generated dataset (tests/fixtures_data.py): every stored event passes the baseline;
signal events carry on average at least eight jets and HT > 1500 GeV; the weighted background per slice is
its cross section times its selection efficiency (weights xsec / n_generated x the generator weight, which
the default fast path sets to P(Nb >= 1)); the
cross sections are Pythia's and fall with pT-hat; the file survives a crash and a SIGTERM and is continued
to exactly the counts asked for, with consistent offsets and chunk rows; a finished file is left alone; a
chunk is the same when remade from its seed; pile-up adds lit pixels; the background split adds up.
The detector conserves energy into images (pixel sums equal tower sums) and sends each particle kind to the
right place. Bad command lines exit with status 2 naming the flag.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from data import selection
from data.generation import detector, generate, jets, pythia
from data.hdf5_source import open_hdf5
from data.store import sample_table
from tests.fixtures_data import FINAL, generated  # noqa: F401  (pytest fixture)


@pytest.mark.slow  # the generated fixture runs data.generation.generate (worker processes, subprocesses)
def test_every_event_passes_the_baseline(generated):
    t = open_hdf5(str(generated.path)).event_table()
    assert selection.baseline(t).all()


@pytest.mark.slow  # the generated fixture runs data.generation.generate (worker processes, subprocesses)
def test_signal_is_multijet_and_hard(generated):
    src = open_hdf5(str(generated.path))
    t = src.event_table()
    sig = src.labels == 1
    assert t["njet"][sig].mean() >= 8
    assert (t["ht"][sig] > 1500).all()
    assert (t["nb"][sig] >= 1).all()


@pytest.mark.slow  # the generated fixture runs data.generation.generate (worker processes, subprocesses)
def test_counts_after_resume_are_exactly_what_was_asked(generated):
    src = open_hdf5(str(generated.path))
    assert (int((src.labels == 1).sum()), int((src.labels == 0).sum())) == FINAL
    assert generated.rc_interrupted == 130  # SIGTERM: the chunk being written is finished, then exit
    assert generated.first_committed <= generated.after_term < sum(FINAL)
    assert "nothing to do" in generated.rerun_output
    with h5py.File(generated.path, "r") as f:
        n = int(f.attrs["committed_events"])
        assert f["events/offsets"].shape == (n + 1,)
        assert f["pixels/index"].shape[0] == f["events/offsets"][-1] == f["pixels/value"].shape[0]
        assert all(f["events"][k].shape == (n,) for k in ("label", "sample", "gen_weight", "ht"))
        assert f["chunks/event_stop"][-1] == n
        # Chunks of each sample are numbered 0, 1, 2 ... with no gap or repeat across the interrupted runs.
        for s in np.unique(f["chunks/sample"][:]):
            chunks = f["chunks/chunk"][:][f["chunks/sample"][:] == s]
            assert sorted(chunks.tolist()) == list(range(len(chunks)))
        counts = np.bincount(f["events/sample"][:n])
        assert counts.tolist() == sample_table(f)["n_selected"].tolist()
    # The junk written past the counter is gone: every pixel index is in range.
    x = src.load(np.arange(len(src))).x
    assert np.isfinite(x).all() and x.max() <= 1.0


@pytest.mark.slow  # the generated fixture runs data.generation.generate (worker processes, subprocesses)
def test_weights_follow_slice_cross_sections(generated):
    src = open_hdf5(str(generated.path))
    with h5py.File(generated.path, "r") as f:
        t = sample_table(f)
    sample = src.event_table()["sample"]
    with h5py.File(generated.path, "r") as f:
        gen_weight = f["events/gen_weight"][:]
        assert json.loads(f.attrs["meta"])["levers"]["btag_weight"]  # the fast path is the default
    for i in range(len(t["name"])):
        w = src.weights[sample == i]
        g = gen_weight[sample == i]
        assert ((g > 0) & (g <= 1)).all()  # the fast path's generator weight is P(Nb >= 1)
        np.testing.assert_allclose(w, t["xsec_pb"][i] / t["n_generated"][i] * g)
        # Selected weighted sum = cross section x (weighted) selection efficiency of the slice.
        assert np.isclose(w.sum(), t["xsec_pb"][i] * g.sum() / t["n_generated"][i])
    names = list(t["name"])
    sig = names.index("rpv_gluino_1400")
    assert 0.010 < t["xsec_pb"][sig] < 0.020  # Pythia's LO figure: this generator measures about 0.0144 pb
    qcd = [i for i, n in enumerate(names) if n.startswith("qcd")]
    assert t["xsec_pb"][qcd[0]] > t["xsec_pb"][qcd[1]] > 0  # falls with pT-hat
    eff = t["n_selected"][qcd] / t["n_generated"][qcd]
    assert eff[1] > eff[0]  # harder slices pass the HT cut more often


def test_pixel_sums_equal_tower_sums():
    py = pythia.make_pythia(pythia.qcd_slice(800, -1).settings, 5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert py.next()
        parts, _, _ = pythia.read_event(py.event)
        r = detector.simulate(parts, rng)
        idx, val = detector.image(r, 64)
        img = np.zeros(3 * 64 * 64)
        img[idx] = val
        img = img.reshape(3, 64, 64)
        assert np.isclose(img[0].sum(), r.hcal[:, 2].sum(), rtol=1e-5)
        assert np.isclose(img[1].sum(), r.ecal[:, 2].sum(), rtol=1e-5)
        assert np.isclose(img[2].sum(), r.tracks[:, 2].sum(), rtol=1e-5)
        assert len(r.hcal) and len(r.ecal) and len(r.tracks)


def _particles(pid, pt, eta, charge):
    pid, pt, eta = np.asarray(pid), np.asarray(pt, float), np.asarray(eta, float)
    phi = np.zeros_like(pt)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return detector.Particles(pid.astype(np.int32), px, py, pz, np.sqrt(px**2 + py**2 + pz**2),
                              np.asarray(charge, np.float32))


def test_detector_sends_particles_to_the_right_place():
    rng = np.random.default_rng(1)
    r = detector.simulate(_particles([13, 12, 22], [100, 100, 100], [0.1, 0.2, 0.3], [-1, 0, 0]), rng)
    assert len(r.hcal) == 0 and len(r.ecal) == 1  # muon and neutrino: no calorimeter energy
    assert len(r.tracks) <= 1  # only the muon can leave a track
    r = detector.simulate(_particles([211], [200], [3.0], [1]), rng)
    assert len(r.hcal) == len(r.ecal) == len(r.tracks) == 0  # outside |eta| < 2.5
    n = 20000
    r = detector.simulate(_particles(np.full(n, 211), np.full(n, 5.0), np.linspace(-1.4, 1.4, n),
                                     np.ones(n)), rng)
    assert len(r.ecal) == 0 and len(r.hcal) > 0
    assert abs(len(r.tracks) / n - 0.95) < 0.01  # card efficiency above 1 GeV, |eta| < 1.5


def test_btag_efficiency_is_the_card_formula():
    pt = np.array([50.0, 200.0])
    f = jets.btag_efficiency(pt, np.array([5, 0]))
    assert np.isclose(f[0], 0.85 * np.tanh(0.125) * 25 / (1 + 0.063 * 50))
    assert np.isclose(f[1], 0.01 + 3.8e-5 * 200)
    fl = jets.jet_flavour(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 3.1]),
                          np.array([[0.1, 0.1]]), np.array([[1.0, 0.3], [2.0, -3.1]]))
    assert fl.tolist() == [5, 4, 4]  # the last match wraps around phi = pi


@pytest.mark.parametrize("flags, flag", [
    (["--image-size", "60"], "--image-size"),
    (["--signal-events", "-1"], "--signal-events"),
    (["--workers", "0"], "--workers"),
    (["--qcd-edges", "600,400"], "--qcd-edges"),
    (["--out", "/no/such/dir/x.h5"], "--out"),
    (["--signal-events", "0", "--background-events", "0"], "no event to generate"),
])
def test_bad_command_line_exits_2_naming_the_flag(flags, flag, tmp_path, capsys):
    base = {"--signal-events": "1", "--background-events": "1", "--out": str(tmp_path / "x.h5")}
    base.update(dict(zip(flags[::2], flags[1::2])))
    with pytest.raises(SystemExit) as e:
        generate.main([t for kv in base.items() for t in kv])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow  # the generated fixture runs data.generation.generate (worker processes, subprocesses)
def test_continuing_with_other_settings_is_refused(generated, capsys):
    with pytest.raises(SystemExit) as e:
        generate.main(["--signal-events", "1", "--background-events", "1", "--out", str(generated.path),
                       "--seed", "12", "--chunk", "25", "--qcd-edges", "800,1100,inf"])
    assert e.value.code == 2
    assert "--seed" in capsys.readouterr().err


@pytest.mark.slow  # generates Pythia events three times: ~8 s by itself
def test_a_chunk_is_reproducible_from_its_seed_and_pileup_adds_energy():
    seed = pythia.chunk_seed(11, 0, 3)
    a = pythia.generate_chunk(pythia.SIGNAL, seed, 3, 64)
    b = pythia.generate_chunk(pythia.SIGNAL, seed, 3, 64)
    assert a["n_generated"] == b["n_generated"]
    for x, y in zip(a["idx"] + a["val"], b["idx"] + b["val"]):
        np.testing.assert_array_equal(x, y)  # a resumed run remakes an interrupted chunk identically
    assert seed != pythia.chunk_seed(11, 0, 4) and seed != pythia.chunk_seed(11, 1, 3)
    pu = pythia.generate_chunk(pythia.SIGNAL, seed, 3, 64, pileup=20)
    assert np.mean([len(i) for i in pu["idx"]]) > np.mean([len(i) for i in a["idx"]])


def test_background_split():
    slices = pythia.qcd_slices()
    physical = pythia.split_background(1000, slices)
    assert sum(physical) == 1000 and physical[1] > physical[-1] > physical[0] > 0
    assert pythia.split_background(7, slices, "even") == [2, 2, 1, 1, 1]
