"""Spec: data.generation.convert_delphes turns Delphes ROOT trees into the sparse store with the same baseline.

Small ROOT files are written here with uproot in Delphes' branch layout (record branches Tower, Track, Jet,
FatJet with ``Tower_size`` counters and ``Tower.Eta`` leaves, and the ``Tower_Eta`` naming uproot uses by
default). Two calls, signal then background, make one training file whose events are exactly those passing
the baseline, whose images sum to the tower and track sums, and whose weights are xsec / n_generated.
Bad input exits with status 2 naming the file or flag.
"""
from __future__ import annotations

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot

from data.generation import convert_delphes
from data.hdf5_source import open_hdf5
from data.store import read_jets


def _event(rng, passing: bool) -> dict:
    """One event: passing ones have 5 jets of 400 GeV (HT 2000), one b-tag and MJ 600."""
    n_tow = int(rng.integers(5, 30))
    jets = 5 if passing else 2
    return {
        "Tower": [{"Eta": float(rng.uniform(-3, 3)), "Phi": float(rng.uniform(-np.pi, np.pi)),
                   "Eem": float(rng.exponential(5)), "Ehad": float(rng.exponential(10))} for _ in range(n_tow)],
        "Track": [{"Eta": float(rng.uniform(-2.5, 2.5)), "Phi": float(rng.uniform(-np.pi, np.pi)),
                   "PT": float(rng.exponential(3))} for _ in range(int(rng.integers(0, 10)))],
        "Jet": [{"PT": 400.0, "Eta": 0.5 * k - 1.0, "Phi": 0.0, "Mass": 30.0, "BTag": int(k == 0)}
                for k in range(jets)] + [{"PT": 20.0, "Eta": 0.0, "Phi": 0.0, "Mass": 5.0, "BTag": 1}],
        "FatJet": [{"Mass": 300.0, "PT": 900.0}, {"Mass": 300.0, "PT": 800.0}, {"Mass": 90.0, "PT": 10.0}],
    }


def write_delphes(path, n, seed, dotted=True, pass_fraction=0.6) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    passing = rng.random(n) < pass_fraction
    events = [_event(rng, p) for p in passing]
    arrays = {}
    for b in ("Tower", "Track", "Jet", "FatJet"):
        # n = 0: the branches' types from one event, then no entries
        arrays[b] = ak.Array([e[b] for e in events or [_event(rng, True)]])
        arrays[b] = ak.zip({k: ak.values_astype(arrays[b][k], np.float32 if k != "BTag" else np.int32)
                            for k in arrays[b].fields})[:n]
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {b: a.type.content for b, a in arrays.items()},
                 counter_name=lambda c: f"{c}_size",
                 field_name=(lambda o, i: f"{o}.{i}") if dotted else (lambda o, i: f"{o}_{i}"))
        f["Delphes"].extend(arrays)
    return events, passing


def _convert(*args):
    return convert_delphes.main([str(a) for a in args])


def test_uproot_writes_delphes_names(tmp_path):
    write_delphes(tmp_path / "a.root", 3, 0)
    keys = uproot.open(tmp_path / "a.root")["Delphes"].keys()
    assert "Tower_size" in keys and "Tower.Eta" in keys and "Jet.BTag" in keys


def test_signal_then_background_make_one_training_file(tmp_path):
    sig_ev, sig_pass = write_delphes(tmp_path / "sig.root", 40, 1)
    bkg_ev, bkg_pass = write_delphes(tmp_path / "bkg.root", 60, 2, dotted=False)
    out = tmp_path / "train.h5"
    assert _convert(tmp_path / "sig.root", "--label", 1, "--xsec", 0.0253, "--sample", "rpv",
                    "--image-size", 16, "--out", out) == 0
    assert _convert(tmp_path / "bkg.root", "--label", 0, "--xsec", 25.0, "--n-generated", 1000,
                    "--sample", "qcd", "--image-size", 16, "--out", out) == 0
    src = open_hdf5(str(out), normalisation="none")
    assert int((src.labels == 1).sum()) == sig_pass.sum()
    assert int((src.labels == 0).sum()) == bkg_pass.sum()
    np.testing.assert_allclose(src.weights[src.labels == 1], 0.0253 / 40)
    np.testing.assert_allclose(src.weights[src.labels == 0], 25.0 / 1000)
    t = src.event_table()
    assert (t["njet"] == 5).all() and (t["nb"] == 1).all()
    np.testing.assert_allclose(t["ht"], 2000.0, rtol=1e-6)
    np.testing.assert_allclose(t["mj"], 600.0, rtol=1e-6)  # the 10 GeV fat jet is under the 30 GeV cut
    # Pixel sums equal the tower and track sums inside |eta| < 2.5.
    kept = [e for e, p in zip(sig_ev, sig_pass) if p]
    x = src.load(np.flatnonzero(src.labels == 1)).x
    for e, img in zip(kept, x):
        inside = [t for t in e["Tower"] if abs(t["Eta"]) < 2.5]
        assert np.isclose(img[0].sum(), sum(t["Ehad"] for t in inside), rtol=1e-4)
        assert np.isclose(img[1].sum(), sum(t["Eem"] for t in inside), rtol=1e-4)
        assert np.isclose(img[2].sum(), sum(t["PT"] for t in e["Track"]), rtol=1e-4)
    names = [s["name"] for s in src.describe()["samples"]]
    assert names == ["rpv", "qcd"]
    # every selected jet is stored, with Delphes' tag decision and no efficiency
    with h5py.File(out) as f:
        off, cols = read_jets(f, 0, len(src.labels))
    assert np.diff(off).tolist() == t["njet"].tolist()
    assert np.add.reduceat(cols["btag"].astype(int), off[:-1]).tolist() == t["nb"].tolist()
    assert (cols["pt"] > 30).all() and np.isnan(cols["btag_eff"]).all()


def test_missing_branch_and_bad_flags(tmp_path, capsys):
    p = tmp_path / "bad.root"
    with uproot.recreate(p) as f:
        f["Delphes"] = {"Tower_Eta": ak.Array([[1.0]])}
    assert _convert(p, "--label", 1, "--xsec", 1, "--sample", "s", "--out", tmp_path / "o.h5") == 2
    err = capsys.readouterr().err
    assert "Tower.Phi" in err and str(p) in err  # Tower_Eta is there, Tower.Phi is not
    assert not (tmp_path / "o.h5").exists()  # inputs are checked before the output is created
    for flags, flag in ((["--xsec", "-1"], "--xsec"), (["--image-size", "10"], "--image-size")):
        base = {"--label": "1", "--xsec": "1", "--sample": "s", "--out": str(tmp_path / "o.h5")}
        base.update(dict(zip(flags[::2], flags[1::2])))
        with pytest.raises(SystemExit) as e:
            convert_delphes.main([str(p)] + [t for kv in base.items() for t in kv])
        assert e.value.code == 2 and flag in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        convert_delphes.main([str(tmp_path / "none.root"), "--label", "1", "--xsec", "1", "--sample", "s",
                              "--out", str(tmp_path / "o.h5")])
    assert e.value.code == 2 and "none.root" in capsys.readouterr().err


def test_input_without_events_exits_2_and_leaves_out_alone(tmp_path, capsys):
    """A Delphes tree with 0 entries, or entries none of which pass the baseline: exit 2 naming the files;
    --out is neither created nor changed."""
    empty, other = tmp_path / "empty.root", tmp_path / "empty2.root"
    write_delphes(empty, 0, 0)
    write_delphes(other, 0, 1)
    out = tmp_path / "out.h5"
    args = ["--label", 1, "--xsec", 0.0253, "--sample", "rpv", "--image-size", 16, "--out", out]
    assert _convert(empty, *args) == 2
    err = capsys.readouterr().err
    assert "empty.root" in err and "no events" in err
    assert _convert(empty, other, *args) == 2
    assert "empty2.root" in capsys.readouterr().err
    assert not out.exists()
    # entries, none passing the baseline: an existing store is left as it was
    write_delphes(tmp_path / "good.root", 12, 3)
    assert _convert(tmp_path / "good.root", *args) == 0
    capsys.readouterr()
    before = out.read_bytes()
    write_delphes(tmp_path / "none_pass.root", 5, 4, pass_fraction=0.0)
    assert _convert(tmp_path / "none_pass.root", *args) == 2
    assert "passes the baseline" in capsys.readouterr().err
    assert out.read_bytes() == before
