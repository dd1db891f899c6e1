"""Spec: the fast QCD path of data.generation.generate keeps the physics and the weights of the old one.

* b-tag weighting: P(Nb >= 1) is 1 - prod(1 - eff); tags drawn given at least one tag follow the conditional
  distribution of independent tags (checked against brute-force rejection sampling).
* the vectorised read of a ``Pythia.nextBatch`` batch gives the same particles, charges and heavy-flavour
  objects as the per-particle loop over the same event.
* veto accounting: with the parton-level veto Pythia's sigmaGen is the unvetoed cross section times the
  veto's pass fraction, and n_generated counts accepted (not vetoed) events, so xsec / n_generated is
  unchanged; kept events' generator weights are P(Nb >= 1) <= 1.
* the 'effective' split maximises the Kish effective sample size at fixed cost (checked against random
  allocations of the same cost).
* the weighted two-sample test finds a shifted distribution and accepts an identical one.
* the compressed store (format version 2) reads back what was written, at most ~4.6 bytes per lit pixel for
  generated images, and version 1 files still read; a newer version is refused naming the attribute.
* a store made with jets (format version 3) reads back every event's jet table; an interrupted chunk's
  jets are cut back with its events; a chunk without jets is refused; a store without jets says so.
* bad flags (--path, --background-split) exit 2; continuing a file with another --path is refused.
* veto-loss runs of other seeds pool into one sample that weighs every generated event alike, and the loss
  table counts an event below a threshold as lost.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from data import store as st
from data import validation
from data.base import DataError
from data.generation import generate, jets, pythia
from data.hdf5_source import open_hdf5


def test_btag_weight_is_the_probability_of_at_least_one_tag():
    eff = np.array([0.6, 0.02, 0.3])
    assert np.isclose(jets.p_any_tag(eff), 1 - 0.4 * 0.98 * 0.7)
    assert jets.p_any_tag(np.array([])) == 0.0
    rng = np.random.default_rng(0)
    draws = np.array([jets.draw_tags_given_one(eff, rng) for _ in range(20000)])
    assert draws.any(axis=1).all()
    # brute force: independent tags, rejecting draws with none
    raw = rng.random((200000, 3)) < eff
    raw = raw[raw.any(axis=1)]
    for k in range(3):
        assert abs(draws[:, k].mean() - raw[:, k].mean()) < 0.015
    nb = draws.sum(axis=1)
    assert abs(nb.mean() - raw.sum(axis=1).mean()) < 0.02
    with pytest.raises(ValueError, match="P\\(Nb >= 1\\) = 0"):
        jets.draw_tags_given_one(np.zeros(2), rng)


@pytest.mark.slow  # Pythia initialisation and a few events: a few seconds
def test_batch_read_matches_the_particle_loop():
    py = pythia.make_pythia(pythia.qcd_slice(800, -1).settings, 5)
    charge = pythia.ChargeTable(py.particleData)
    for _ in range(2):
        evs = py.nextBatch(1)
        (pa, ba, ca), = pythia.read_batch(evs, charge)
        pb, bb, cb = pythia.read_event(py.event)  # the event record still holds the batch's last event
        for f in ("pid", "px", "py", "pz", "e", "charge"):
            np.testing.assert_allclose(getattr(pa, f), getattr(pb, f), rtol=1e-12)
        np.testing.assert_allclose(ba, bb)
        np.testing.assert_allclose(ca, cb)
        assert len(pa.pid) > 100 and (pa.charge != 0).any()


@pytest.mark.slow  # generates a few hundred Pythia events of the 400-600 GeV slice: ~20 s
def test_veto_lowers_sigma_by_its_pass_fraction_and_keeps_weights_physical():
    s = pythia.qcd_slice(400, 600)
    plain = pythia.generate_chunk(s, 3, 10**9, 64, max_generated=300, levers=pythia.OLD)
    vetoed = pythia.generate_chunk(s, 4, 10**9, 64, max_generated=150, levers=pythia.FAST)
    assert vetoed["n_vetoed"] > 0.3 * vetoed["n_generated"]  # the veto bites in this slice
    assert vetoed["n_generated"] == vetoed["n_tried"] == 150  # accepted events only
    pass_fraction = vetoed["n_generated"] / (vetoed["n_generated"] + vetoed["n_vetoed"])
    expected = plain["sigma_pb"] * pass_fraction
    err = np.hypot(plain["sigma_err_pb"] * pass_fraction, vetoed["sigma_err_pb"])
    err = np.hypot(err, expected * np.sqrt((1 - pass_fraction) / vetoed["n_vetoed"]))  # binomial error
    assert abs(vetoed["sigma_pb"] - expected) < 4 * err
    w = vetoed["gen_weight"]
    assert ((w > 0) & (w <= 1)).all()


@pytest.mark.slow  # generates signal events: a few seconds
def test_fast_path_keeps_every_tagged_event_with_weight_one_or_less():
    out = pythia.generate_chunk(pythia.SIGNAL, 7, 20, 64, levers=pythia.FAST)
    assert len(out["gen_weight"]) == 20 and (out["nb"] >= 1).all()
    assert ((out["gen_weight"] > 0) & (out["gen_weight"] <= 1)).all()
    assert out["gen_weight"].mean() > 0.8  # signal has four b quarks: most events are surely tagged


def test_effective_split_maximises_the_effective_sample_size(monkeypatch):
    slices = pythia.qcd_slices()
    cost = {s.name: (c, f) for s, c, f in zip(slices, (20.0, 3.0, 0.5, 0.2, 0.2), (0.4, 0.5, 0.6, 0.6, 0.7))}
    monkeypatch.setattr(pythia, "FAST_COST", cost)
    sxs = np.array([pythia.SELECTED_XSEC_PB[s.name] for s in slices])
    c = np.array([cost[s.name][0] for s in slices])
    f = np.array([cost[s.name][1] for s in slices])

    def ess_at_fixed_cost(share):
        n = share / (share * c).sum()  # events per unit core-second
        return sxs.sum() ** 2 / (sxs ** 2 / (n * f)).sum()

    best = ess_at_fixed_cost(pythia.split_shares(slices, "effective"))
    rng = np.random.default_rng(1)
    for _ in range(200):
        assert ess_at_fixed_cost(rng.dirichlet(np.ones(len(slices)))) <= best * (1 + 1e-9)
    assert best > ess_at_fixed_cost(pythia.split_shares(slices, "physical"))
    assert sum(pythia.split_background(1000, slices, "effective")) == 1000


def test_effective_split_has_measured_costs_for_the_default_slices():
    for s in pythia.qcd_slices():
        c, f = pythia.FAST_COST[s.name]
        assert c > 0 and 0 < f <= 1


def test_veto_loss_runs_pool_with_weights_per_generated_event(tmp_path):
    from benchmarks import bench_generate as bg

    def run(n, sigma, gen_weights, ht):
        g = np.asarray(gen_weights, dtype=float)
        return [{"name": "qcd_pthat_400_600", "n": n, "cpu": 1.0, "w": sigma / n * g,
                 "parton_ht": np.asarray(ht, float), "early_ht": np.asarray(ht, float),
                 "all": np.full((n, 2), 2000.0)}]

    a, b = run(100, 2.0, [1.0, 0.5], [1500, 1600]), run(300, 2.0, [1.0, 1.0, 0.25], [1250, 1700, 1800])
    (p,) = bg.pool_runs([a, b])
    assert p["n"] == 400 and len(p["w"]) == 5
    np.testing.assert_allclose(p["w"], 2.0 / 400 * np.array([1.0, 0.5, 1.0, 1.0, 0.25]))
    np.savez(tmp_path / "b.npz", **{f"qcd_pthat_400_600/{k}": b[0][k] for k in ("w", "parton_ht", "early_ht", "all")})
    (q,) = bg.pool_runs([a, bg.load_veto_loss(str(tmp_path / "b.npz"), a)])  # the same pool from a saved run
    np.testing.assert_allclose(q["w"], p["w"])
    (row,) = bg.veto_loss_table([p], [(0.0, 1300.0)])
    assert row["slices"]["qcd_pthat_400_600"]["lost"] == 1  # the 1250 GeV event
    assert row["lost_weight_fraction"] == pytest.approx(1.0 / 3.75)
    with pytest.raises(SystemExit, match="no slice qcd_pthat_600_800"):
        bg.load_veto_loss(str(tmp_path / "b.npz"), [{"name": "qcd_pthat_600_800"}])


def test_weighted_ks_finds_a_shift_and_accepts_the_same_distribution():
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(0, 1, 3000), rng.normal(0, 1, 3000)
    w1, w2 = rng.uniform(0.1, 1, 3000), rng.uniform(0.1, 1, 3000)
    assert validation.weighted_ks(x1, w1, x2, w2)[1] > 0.01
    assert validation.weighted_ks(x1, w1, x2 + 0.2, w2)[1] < 1e-4
    # weights matter: reweighting one sample to a shifted shape is seen
    assert validation.weighted_ks(x1, w1, x2, np.exp(0.3 * x2))[1] < 1e-4
    assert validation.kish_ess(np.ones(10)) == 10.0
    assert np.isclose(validation.kish_ess(np.array([1.0, 0.0, 1.0, 2.0])), 16 / 6)


def _events(rng, k, size):
    npix = 3 * size * size
    idx = [np.unique(rng.integers(0, npix, 400)).astype(np.int32) for _ in range(k)]
    return {"idx": idx, "val": [rng.exponential(5.0, len(i)).astype(np.float32) for i in idx],
            "gen_weight": rng.uniform(0.05, 1, k), "njet": np.full(k, 5), "nb": np.ones(k),
            "ht": np.full(k, 1600.0), "mj": np.full(k, 600.0), "lead_jet_pt": np.full(k, 500.0)}


def test_compressed_store_reads_back_and_old_versions_still_read(tmp_path):
    rng = np.random.default_rng(3)
    ev = _events(rng, 40, 64)
    for compress in (True, False):
        path = tmp_path / f"s{compress}.h5"
        with st.StoreWriter(path, 64, chunk_events=16, compress=compress) as w:
            w.append(w.sample_index("a", 1), 0, ev, n_generated=50, sigma_pb=2.0)
            w.append(w.sample_index("b", 0), 0, ev, n_generated=80, sigma_pb=9.0)
        with h5py.File(path, "r") as f:
            assert int(f.attrs["format_version"]) == (2 if compress else 1)
            assert (f["pixels/value"].compression == "gzip") is compress
            np.testing.assert_array_equal(f["pixels/index"][: len(ev["idx"][0])], ev["idx"][0])
        src = open_hdf5(str(path), normalisation="none")
        x = src.load(np.array([1])).x[0]
        ref = np.zeros(3 * 64 * 64, np.float32)
        ref[ev["idx"][1]] = ev["val"][1]
        np.testing.assert_array_equal(x.ravel(), ref)  # lossless
        np.testing.assert_allclose(src.weights[:40], 2.0 / 50 * ev["gen_weight"])
    with h5py.File(tmp_path / "sTrue.h5", "a") as f:
        f.attrs["format_version"] = 4
    with pytest.raises(DataError, match="format_version"):
        open_hdf5(str(tmp_path / "sTrue.h5"))


def _jet_tables(rng, k):
    out = []
    for _ in range(k):
        m = int(rng.integers(0, 6))
        out.append(np.column_stack([rng.uniform(30, 500, m), rng.uniform(-2.4, 2.4, m), rng.uniform(-3, 3, m),
                                    rng.integers(0, 2, m), rng.uniform(0, 1, m)]))
    return out


def test_store_with_jets_round_trips_and_cuts_an_interrupted_chunk(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "jets.h5"
    ev = _events(rng, 10, 16)
    ev["jets"] = _jet_tables(rng, 10)
    with st.StoreWriter(path, 16, chunk_events=4, jets=True) as w:
        w.append(w.sample_index("a", 1), 0, ev, n_generated=20, sigma_pb=1.0)
        no_jets = {k: v for k, v in ev.items() if k != "jets"}
        with pytest.raises(ValueError, match="jets"):
            w.append(0, 1, no_jets, n_generated=20, sigma_pb=1.0)
    with h5py.File(path, "a") as f:
        assert int(f.attrs["format_version"]) == 3 and st.has_jets(f)
        off, cols = st.read_jets(f, 3, 7)
        assert off.tolist() == np.cumsum([0] + [len(t) for t in ev["jets"][3:7]]).tolist()
        flat = np.concatenate(ev["jets"][3:7])
        np.testing.assert_allclose(cols["pt"], flat[:, 0], rtol=1e-6)
        np.testing.assert_array_equal(cols["btag"], flat[:, 3].astype(np.int8))
        # an interrupted second chunk: jets written past the commit counter
        total = int(f["jets/offsets"][-1])
        f["jets/pt"].resize((total + 7,))
        f["jets/offsets"].resize((12,))
    with st.StoreWriter(path, 16, jets=True) as w:
        assert w.committed == 10
        w.append(0, 1, ev, n_generated=20, sigma_pb=1.0)
    with h5py.File(path) as f:
        off, cols = st.read_jets(f, 10, 20)
        np.testing.assert_allclose(cols["eta"], np.concatenate(ev["jets"])[:, 1], rtol=1e-6)
    old = tmp_path / "old.h5"
    with st.StoreWriter(old, 16) as w:
        w.append(w.sample_index("a", 1), 0, no_jets, n_generated=20, sigma_pb=1.0)
    with h5py.File(old) as f, pytest.raises(KeyError, match="old.h5: this store has no jets"):
        st.read_jets(f, 0, 1)


def test_generated_jets_agree_with_the_event_quantities(tmp_path):
    """njet and nb of a generated chunk are the counts of its stored jets and their tags."""
    out = pythia.generate_chunk(pythia.SIGNAL, 7, 6, 16)
    assert [len(t) for t in out["jets"]] == out["njet"].tolist()
    assert [int(t[:, 3].sum()) for t in out["jets"]] == out["nb"].tolist()
    assert all((t[:, 0] > jets.JET_PT_MIN).all() and (np.abs(t[:, 1]) < jets.JET_ETA_MAX).all()
               for t in out["jets"])
    assert np.isclose(sum(t[:, 0].sum() for t in out["jets"]), out["ht"].sum())


@pytest.mark.parametrize("flags, flag", [
    (["--path", "quick"], "--path"),
    (["--background-split", "cheap"], "--background-split"),
])
def test_bad_fast_path_flags_exit_2(flags, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        generate.main(["--signal-events", "1", "--background-events", "1", "--out", str(tmp_path / "x.h5"),
                       *flags])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_continuing_a_file_with_the_other_path_is_refused(tmp_path, capsys):
    path = tmp_path / "old.h5"
    with st.StoreWriter(path, 64, meta={"seed": 1, "pileup": 0.0, "chunk": 256,
                                        "qcd_edges": list(pythia.QCD_EDGES)}):
        pass  # a file from before the fast path: its meta has no 'path'
    with pytest.raises(SystemExit) as e:
        generate.main(["--signal-events", "1", "--background-events", "1", "--out", str(path)])
    assert e.value.code == 2
    assert "--path old" in capsys.readouterr().err


@pytest.mark.slow  # both paths of one slice for a few seconds each, in a worker process: ~40 s
def test_small_validation_fast_against_old(tmp_path, capsys):
    from benchmarks import bench_generate, validate_generate

    npz = tmp_path / "compare.npz"
    bench_generate.main(["compare", "--seconds", "10", "--rounds", "2", "--qcd-edges", "1100,inf",
                         "--save", str(npz)])
    printed = capsys.readouterr().out
    assert "whole background fast/old: kept" in printed
    data = validate_generate.load(str(npz))
    xs, ks = validate_generate.tables(data)
    (row,) = xs
    assert row["old_kept"] >= 5 and row["fast_kept"] > row["old_kept"]  # the fast path keeps more per second
    assert abs(row["pull"]) < 4  # the selected cross section agrees
    assert {r["variable"] for r in ks} == set(validation.VARIABLES)
    assert min(r["p"] for r in ks) > 1e-4  # no distribution moved (16 tests: a false alarm ~1e-3)
