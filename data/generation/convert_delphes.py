"""Convert Delphes ROOT output into the sparse store, applying the same baseline as data.generation.generate.

    python -m data.generation.convert_delphes sig_*.root --label 1 --xsec 0.0253 --sample rpv1400 --out train.h5
    python -m data.generation.convert_delphes qcd_*.root --label 0 --xsec 25.24 --sample qcd_ht2000 --out train.h5

Each call appends one sample to ``--out`` (created if missing), so calls for signal and background make one
training file. Read from the ``Delphes`` tree with uproot + awkward (no ROOT needed):

* images: ``Tower`` (Eta, Phi, Ehad -> channel 0, Eem -> channel 1) and ``Track`` (Eta, Phi, PT -> channel 2);
* jets: ``Jet`` (PT, Eta, Phi, Mass, BTag): pT > 30 GeV, |eta| < 2.4, b-tagged if BTag bit 0 is set;
* MJ: the sum of ``FatJet`` masses with PT > 30 GeV. Delphes' FatJet radius is the card's choice (0.8 in the
  default CMS card), while data.generation.generate reclusters R = 1.2 jets from the R = 0.4 jets as the reference did;
  set the card's FatJet to R = 1.2 for the same definition.

Branch names are accepted as real Delphes writes them (``Tower.Eta``, or ``Tower/Tower.Eta``) and as uproot
writes record branches (``Tower_Eta``); counters are ``Tower_size`` etc. A conversion is not resumable: if it is
interrupted, run it again on a fresh output file.
"""
from __future__ import annotations

import argparse
import os
import sys

import awkward as ak
import numpy as np

from data.errors import fail
from data import selection
from data.base import ETA_MAX
from data.generation import jets
from data.files import InputError, OutputPathError, WriteError, check_input_file, check_output_file
from data.store import StoreWriter

BRANCHES = {"Tower": ("Eta", "Phi", "Eem", "Ehad"), "Track": ("Eta", "Phi", "PT"),
            "Jet": ("PT", "Eta", "Phi", "Mass", "BTag"), "FatJet": ("Mass", "PT")}
STEP = 2000  # entries read per uproot call


def resolve_names(tree, path: str) -> dict[tuple[str, str], str]:
    """Map (branch, leaf) to the name the tree uses; raise ValueError naming the file and leaf if absent."""
    keys = set(tree.keys(recursive=True))
    out = {}
    for branch, leaves in BRANCHES.items():
        for leaf in leaves:
            for cand in (f"{branch}.{leaf}", f"{branch}/{branch}.{leaf}", f"{branch}_{leaf}"):
                if cand in keys:
                    out[(branch, leaf)] = cand
                    break
            else:
                raise ValueError(f"{path}: Delphes tree has no branch {branch}.{leaf} (nor {branch}_{leaf})")
    return out


def _pixels(eta, phi, size: int):
    """Pixel row (eta) and column (phi) of flat arrays, as in data.generation.detector.image."""
    ieta = np.clip(((eta + ETA_MAX) / (2 * ETA_MAX) * size).astype(np.int64), 0, size - 1)
    iphi = np.clip(((phi + np.pi) / (2 * np.pi) * size).astype(np.int64), 0, size - 1)
    return ieta * size + iphi


def images(a: dict, size: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sparse images (index, value) per event from Tower and Track arrays (|eta| < 2.5 only)."""
    n = len(a["Tower.Eta"])
    hw = size * size
    evs, idx, vals = [], [], []
    for chan, (branch, value) in enumerate((("Tower", "Ehad"), ("Tower", "Eem"), ("Track", "PT"))):
        eta, phi, v = a[f"{branch}.Eta"], a[f"{branch}.Phi"], a[f"{branch}.{value}"]
        ev = np.repeat(np.arange(n), ak.to_numpy(ak.num(eta)))
        eta, phi, v = (ak.to_numpy(ak.flatten(x)).astype(np.float64) for x in (eta, phi, v))
        ok = (np.abs(eta) < ETA_MAX) & (v > 0)
        evs.append(ev[ok])
        idx.append(chan * hw + _pixels(eta[ok], phi[ok], size))
        vals.append(v[ok])
    key = np.concatenate(evs) * (3 * hw) + np.concatenate(idx)
    uniq, inv = np.unique(key, return_inverse=True)
    summed = np.bincount(inv, weights=np.concatenate(vals), minlength=len(uniq))
    bounds = np.searchsorted(uniq // (3 * hw), np.arange(n + 1))
    pix = (uniq % (3 * hw)).astype(np.int32)
    return ([pix[bounds[i]:bounds[i + 1]] for i in range(n)],
            [summed[bounds[i]:bounds[i + 1]].astype(np.float32) for i in range(n)])


def jet_tables(a: dict, good) -> list[np.ndarray]:
    """Each event's selected jets as an (m, 5) table of data.generation.jets.JET_COLUMNS: pt, eta, phi, the
    BTag bit 0, and a b-tag efficiency of NaN (Delphes keeps the decision, not the truth flavour's
    efficiency)."""
    cols = [a["Jet.PT"][good], a["Jet.Eta"][good], a["Jet.Phi"][good], (a["Jet.BTag"][good] & 1)]
    counts = ak.to_numpy(ak.num(cols[0], axis=1))
    flat = np.column_stack([ak.to_numpy(ak.flatten(c)).astype(np.float64) for c in cols]
                           + [np.full(int(counts.sum()), np.nan)])
    return np.split(flat, np.cumsum(counts)[:-1]) if len(counts) else []


def quantities(a: dict) -> dict[str, np.ndarray]:
    """njet, nb, ht, mj, lead_jet_pt per event from the Delphes Jet and FatJet branches, and each event's
    jet table (``jets``, see ``jet_tables``)."""
    pt, eta, btag = a["Jet.PT"], a["Jet.Eta"], a["Jet.BTag"]
    good = (pt > jets.JET_PT_MIN) & (abs(eta) < jets.JET_ETA_MAX)
    gpt = pt[good]
    fat = a["FatJet.PT"] > jets.JET_PT_MIN
    return {"njet": ak.to_numpy(ak.sum(good, axis=1)).astype(np.int32),
            "nb": ak.to_numpy(ak.sum(good & ((btag & 1) > 0), axis=1)).astype(np.int32),
            "ht": ak.to_numpy(ak.sum(gpt, axis=1)).astype(np.float64),
            "mj": ak.to_numpy(ak.sum(a["FatJet.Mass"][fat], axis=1)).astype(np.float64),
            "lead_jet_pt": ak.to_numpy(ak.fill_none(ak.max(gpt, axis=1), 0.0)).astype(np.float64),
            "jets": jet_tables(a, good)}


def read_file(path: str, tree_name: str, size: int):
    """Yield (n_entries, selected events dict) per step of one Delphes file."""
    import uproot

    with uproot.open(path) as f:
        if tree_name not in f:
            raise ValueError(f"{path}: no tree {tree_name!r} (has {', '.join(f.keys()) or 'nothing'})")
        tree = f[tree_name]
        names = resolve_names(tree, path)
        for start in range(0, tree.num_entries, STEP):
            stop = min(start + STEP, tree.num_entries)
            raw = tree.arrays(list(names.values()), entry_start=start, entry_stop=stop, library="ak")
            a = {f"{b}.{l}": raw[name] for (b, l), name in names.items()}
            a["Jet.BTag"] = ak.values_astype(a["Jet.BTag"], np.int64)
            q = quantities(a)
            keep = np.flatnonzero(selection.baseline(q))
            idx, val = images({k: v[keep] for k, v in a.items()}, size)
            tables = q.pop("jets")
            yield stop - start, {"idx": idx, "val": val, "gen_weight": np.ones(len(keep)),
                                 "jets": [tables[i] for i in keep], **{k: v[keep] for k, v in q.items()}}


def _entries(path: str, tree_name: str) -> int:
    import uproot

    with uproot.open(path) as f:
        if tree_name not in f:
            raise ValueError(f"{path}: no tree {tree_name!r} (has {', '.join(f.keys()) or 'nothing'})")
        resolve_names(f[tree_name], path)
        return int(f[tree_name].num_entries)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data.generation.convert_delphes", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("files", nargs="+", help="Delphes ROOT files of one sample")
    p.add_argument("--label", type=int, choices=(0, 1), required=True, help="1 signal, 0 background")
    p.add_argument("--xsec", type=float, required=True, help="cross section of the sample in pb")
    p.add_argument("--n-generated", type=int, default=None,
                   help="events generated for the sample (default: entries in the files)")
    p.add_argument("--sample", required=True, help="sample name stored in the file")
    p.add_argument("--image-size", type=int, default=64, help="image height = width; divisible by 8")
    p.add_argument("--out", required=True, help="store to create or append to")
    p.add_argument("--tree", default="Delphes", help="tree name")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.image_size <= 0 or a.image_size % 8:
        parser.error(f"--image-size must be a positive multiple of 8, got {a.image_size}")
    if not (a.xsec > 0 and np.isfinite(a.xsec)):
        parser.error(f"--xsec must be a positive number of pb, got {a.xsec}")
    if a.n_generated is not None and a.n_generated <= 0:
        parser.error(f"--n-generated must be positive, got {a.n_generated}")
    try:
        for f in a.files:
            check_input_file(f, "input file")
        seen = {}
        for f in a.files:  # one file given twice would count its events twice
            key = os.path.realpath(f)
            if key in seen:
                raise InputError(f"input file {f}: given twice (also as {seen[key]}); each file's events count once")
            seen[key] = f
        check_output_file(a.out, "--out")
    except (InputError, OutputPathError) as e:
        parser.error(str(e))
    try:  # check every input before the output is touched
        entries = sum(_entries(f, a.tree) for f in a.files)
    except (OSError, ValueError) as e:
        return fail(str(e))
    if entries == 0:
        return fail(f"{', '.join(a.files)}: no events (0 entries in tree {a.tree!r}); {a.out} not touched")
    n_gen = a.n_generated if a.n_generated is not None else entries
    store, selected = None, 0
    try:
        # The store is opened at the first selected event, so input that yields none leaves --out as it
        # was. The sample's generated count rides on its first chunk row; later rows add events only, so the
        # weight is xsec / n_generated whatever the number of chunks. Rows are written as read, so memory
        # holds one step of one file.
        for f in a.files:
            for _, ev in read_file(f, a.tree, a.image_size):
                if not len(ev["idx"]):
                    continue
                if store is None:
                    store, si, chunk = _open_store(parser, a)
                store.append(si, chunk, ev, n_generated=n_gen if selected == 0 else 0, sigma_pb=a.xsec)
                chunk += 1
                selected += len(ev["idx"])
    except (OSError, ValueError) as e:
        return fail(str(e))
    finally:
        if store is not None:
            try:
                store.close()
            except WriteError as e:  # HDF5's last flush: the events committed before stay
                return fail(str(e.named("--out")))
    if not selected:
        return fail(f"{', '.join(a.files)}: none of the {entries} events passes the baseline "
                    f"(data/selection.py); {a.out} not touched")
    print(f"{a.out}: sample {a.sample} (label {a.label}): {selected} of {entries} entries pass the baseline; "
          f"weight {a.xsec / n_gen:.4g} pb per event")
    return 0


def _open_store(parser: argparse.ArgumentParser, a: argparse.Namespace):
    """(store, sample index, next chunk) of ``--out`` for ``--sample``; exits 2 naming the flag."""
    try:
        store = StoreWriter(a.out, a.image_size, meta={"converter": "delphes"}, jets=True)
    except (OSError, ValueError) as e:
        parser.error(f"--out {a.out}: {e}")
    try:
        si = store.sample_index(a.sample, a.label)
    except ValueError as e:
        store.close()
        parser.error(f"--sample {a.sample}: {e}")
    return store, si, max(store.committed_chunks(si), default=-1) + 1


if __name__ == "__main__":
    sys.exit(main())
