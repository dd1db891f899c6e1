"""A boosted-decision-tree baseline on the same events as a CNN: what the jets alone can tell, with and without
their b-tags, next to the CNN and the cuts.

    python -m reports.bdt_baseline --model-weights results/model.pt [--features kinematics,jets+btag]
        [--bdt-iterations 300] [every flag of python -m reports.physics]

Scores the CNN as ``python -m reports.physics`` does (its test split, or ``--data FILE --all-events``), then
trains one gradient-boosted tree classifier per ``--features`` set (scikit-learn's
``HistGradientBoostingClassifier``, its early stopping on a tenth of the training events) on the CNN's own
training events (the split of the file it was trained on, rebuilt from its seed), scores the same test events
and draws them all into one ROC figure and table in ``--out``, each classifier compared with the cuts exactly
as the CNN is (docs/evaluate.md). The feature sets (``FEATURES``):

* ``kinematics``: Njet, HT, MJ and the leading jet's pT: the cuts' variables but Nb;
* ``kinematics+nb``: the same and Nb: every variable of the signal region;
* ``jets``: ``kinematics`` and the pT and eta of the 10 leading jets (0 where fewer): what the three-channel
  image shows of the jets, no b-tag;
* ``jets+btag``: ``jets``, Nb and those jets' b-tag decisions.

The ``jets`` sets need a store with every event's jets (format version 3 from the generator); another
source is refused, naming the file, before anything is scored. Trees are trained unweighted, as the CNN is.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench import evaluate, physics
from bench.runner.config import UsageError
from data.base import DataError
from data.errors import fail
from data.files import WriteError

PROG = "python -m reports.bdt_baseline"
KINEMATICS = ("njet", "ht", "mj", "lead_jet_pt")
LEADING_JETS = 10
FEATURES = {"kinematics": (False, False), "kinematics+nb": (False, True), "jets": (True, False),
            "jets+btag": (True, True)}  # (the leading jets, the b-tags)


def build_parser() -> argparse.ArgumentParser:
    p = evaluate.build_parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--features", default=",".join(FEATURES),
                   help=f"feature sets, comma separated, one classifier each: {', '.join(FEATURES)}")
    p.add_argument("--bdt-iterations", type=int, default=300, help="boosting iterations at most per classifier")
    return p


def feature_sets(text: str) -> list[str]:
    """The --features names in order; raises UsageError naming the flag and the unknown name."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in names if s not in FEATURES]
    if bad or not names:
        raise UsageError(f"--features: unknown set {bad[0] if bad else repr(text)}; known: {', '.join(FEATURES)}")
    return names


def leading_jets(f, indices: np.ndarray, k: int = LEADING_JETS) -> dict[str, np.ndarray]:
    """pT [GeV], eta and b-tag (0 / 1) of the ``k`` highest-pT jets of each event ``indices`` of store ``f``
    (h5py.File with a ``jets`` group), each (len(indices), k) float64, 0 past an event's last jet."""
    from data.store import ranges

    indices = np.asarray(indices, np.int64)
    off = f["jets/offsets"][:].astype(np.int64)
    lo, counts = off[indices], off[indices + 1] - off[indices]
    rows = ranges(lo, counts)
    event = np.repeat(np.arange(len(indices)), counts)
    pt = f["jets/pt"][:][rows].astype(np.float64)
    order = np.lexsort((-pt, event))  # by event, then by falling pT
    rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < k
    out = {}
    for name, values in (("pt", pt), ("eta", f["jets/eta"][:][rows]), ("btag", f["jets/btag"][:][rows])):
        m = np.zeros((len(indices), k))
        m[event[order][keep], rank[keep]] = np.asarray(values, np.float64)[order][keep]
        out[name] = m
    return out


def features(source, indices: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Per feature set of ``names`` its (len(indices), n_features) float64 matrix for the events ``indices``,
    the event table and the leading jets read once for all of them. Raises DataError naming the file when a
    ``jets`` set meets a source without every event's jets (``need_jets``)."""
    need_jets(source, names)
    table = source.event_table(indices)
    kinematics = [np.asarray(table[k], np.float64) for k in KINEMATICS]
    nb = np.asarray(table["nb"], np.float64)
    lead = leading_jets(source.f, indices) if any(FEATURES[n][0] for n in names) else None
    out = {}
    for name in names:
        jets, tags = FEATURES[name]
        cols = kinematics + ([nb] if tags else [])
        if jets:
            cols += [*lead["pt"].T, *lead["eta"].T] + ([*lead["btag"].T] if tags else [])
        out[name] = np.column_stack(cols)
    return out


def need_jets(source, names: list[str]) -> None:
    """Raises DataError naming the file when a ``jets`` set of ``names`` meets a source without every event's
    jets (a store of format version 3 has them)."""
    from data.store import has_jets

    wanted = [n for n in names if FEATURES[n][0]]
    f = getattr(source, "f", None)
    if wanted and (f is None or not has_jets(f)):
        raise DataError(f"{getattr(source, 'path', source)}: holds no per-jet table (a store of format version 3 "
                        f"from the generator has one); --features {wanted[0]} needs it")


def open_sources(a: argparse.Namespace, names: list[str]):
    """(config, training data, scored data) of the first model file, each opened once, before anything is
    scored: its training file (split rebuilt from its seed) and the file scored (the same unless --data).
    Raises UsageError / DataError naming the file."""
    path = a.model_weights[0]
    _, cfg, train_d, _ = evaluate.load(path, "")
    test_d = evaluate.load(path, a.data)[2] if a.data else train_d
    for d in (train_d, test_d):
        need_jets(d.source, names)
    return cfg, train_d, test_d


def bdt_entries(a: argparse.Namespace, names: list[str], template: dict, cfg, train_d, test_d) -> list[dict]:
    """One entry (``bench.evaluate`` entry fields) per feature set: trained on the first model's training
    events, scored on the events its CNN was scored on, compared with the cuts as the CNN is."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = np.asarray(train_d.split.train)
    test = np.arange(len(test_d.source)) if a.all_events else np.asarray(test_d.split.test)
    x_train, x_test = features(train_d.source, train, names), features(test_d.source, test, names)
    entries = []
    for k, name in enumerate(names):
        clf = HistGradientBoostingClassifier(max_iter=a.bdt_iterations, early_stopping=True, random_state=cfg.seed)
        clf.fit(x_train[name], train_d.source.labels[train])
        scores = clf.predict_proba(x_test[name])[:, 1]
        cmp, flow = physics.on_source(test_d.source, test, scores, a.luminosity, a.bootstrap,
                                      seed=len(a.model_weights) + k)
        entries.append({**template, "label": f"BDT: {name}", "classifier": "BDT", "model_file": None, "run_id": None,
                        "bdt_iterations": int(clf.n_iter_), "train_events": int(len(train)),
                        **cmp.asdict(), "cut_flow": flow})
        print(f"BDT {name}: {clf.n_iter_} iterations, test AUC {cmp.auc:.4f}, efficiency ratio {cmp.eff_ratio:.3f}",
              flush=True)
    return entries


def _evaluation_argv(argv: list[str]) -> list[str]:
    """``argv`` without this module's own flags and their values (exact names only, as written), for
    bench.evaluate's parser."""
    own = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    own.add_argument("--features")
    own.add_argument("--bdt-iterations")
    return own.parse_known_args(argv)[1]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        names = feature_sets(a.features)
        if a.bdt_iterations <= 0:
            raise UsageError(f"--bdt-iterations must be positive, got {a.bdt_iterations}")
        evaluate.check_args(a)
        loaded = open_sources(a, names)
    except (UsageError, DataError) as exc:
        return fail(str(exc))
    from reports.physics import render

    ev = evaluate.run_evaluation(_evaluation_argv(argv), prog=PROG, description=__doc__.split("\n\n")[0])
    if ev.code != 0 or not ev.is_root or not ev.entries:
        return ev.code
    try:
        template = {k: ev.entries[0][k] for k in ("data", "image_size", "split")}
        entries = ev.entries + bdt_entries(a, names, template, *loaded)
        render(entries, ev.out)
    except WriteError as exc:
        return fail(str(exc))
    except (DataError, ValueError) as exc:  # rank 0 alone, after the last collective
        return fail(f"--model-weights {a.model_weights[0]}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
