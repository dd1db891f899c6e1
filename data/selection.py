"""The cut-based selection of the reference analysis, on per-event jet quantities. Numpy only.

Two stages, each a boolean per event from a table of ``njet``, ``nb``, ``ht`` and ``mj`` (GeV):

* the baseline (HT >= 1500 GeV, Njet >= 4, Nb >= 1, MJ >= 500 GeV): every stored event passes it; event
  generation and Delphes conversion apply it before an image is kept (data.generation);
* the signal region (Njet >= 8, Nb >= 3, MJ > 800 GeV, HT > 1500 GeV), applied after the baseline: the
  physicists' selection the CNN is compared with (bench.physics).

Jets: anti-kT R = 0.4, pT > 30 GeV, |eta| < 2.4; MJ is the summed mass of those jets reclustered with
R = 1.2. Every figure and its published source: docs/physics-reference.md ("Selection").
"""
from __future__ import annotations

import numpy as np

JET_QUANTITIES = ("njet", "nb", "ht", "mj")

# Baseline, applied before an image is kept.
HT_MIN, NJET_MIN, NB_MIN, MJ_MIN = 1500.0, 4, 1, 500.0
# Signal region, applied after the baseline.
SR_NJET_MIN, SR_NB_MIN, SR_MJ_MIN, SR_HT_MIN = 8, 3, 800.0, 1500.0


def _need(table: dict) -> None:
    missing = [k for k in JET_QUANTITIES if k not in table]
    if missing:
        raise KeyError(f"jet quantities missing for the cut-based selection: {', '.join(missing)}")


def baseline(table: dict) -> np.ndarray:
    """True for events passing the baseline. ``table``: njet, nb, ht, mj, arrays of shape (n,).
    Raises KeyError naming a missing quantity."""
    _need(table)
    return ((np.asarray(table["ht"]) >= HT_MIN) & (np.asarray(table["njet"]) >= NJET_MIN)
            & (np.asarray(table["nb"]) >= NB_MIN) & (np.asarray(table["mj"]) >= MJ_MIN))


def signal_region(table: dict) -> np.ndarray:
    """True for events in the signal region (``table`` as for ``baseline``). Raises KeyError naming a
    missing quantity."""
    _need(table)
    return ((np.asarray(table["njet"]) >= SR_NJET_MIN) & (np.asarray(table["nb"]) >= SR_NB_MIN)
            & (np.asarray(table["mj"]) > SR_MJ_MIN) & (np.asarray(table["ht"]) > SR_HT_MIN))


def signal_region_without_nb(table: dict) -> np.ndarray:
    """The signal region without its Nb >= 3 step (Njet >= 8, MJ > 800 GeV, HT > 1500 GeV): the cuts on what a
    three-channel image also holds, since its pixels carry no b-tag. Raises KeyError naming a missing
    quantity."""
    _need(table)
    return ((np.asarray(table["njet"]) >= SR_NJET_MIN) & (np.asarray(table["mj"]) > SR_MJ_MIN)
            & (np.asarray(table["ht"]) > SR_HT_MIN))


def signal_region_steps(table: dict) -> list[tuple[str, np.ndarray]]:
    """The signal region's cuts one by one, in the order of the cut flow: (name, boolean per event), the
    baseline (every stored event) first."""
    _need(table)
    n = len(np.asarray(table["njet"]))
    return [("baseline", np.ones(n, dtype=bool)),
            (f"Njet >= {SR_NJET_MIN}", np.asarray(table["njet"]) >= SR_NJET_MIN),
            (f"Nb >= {SR_NB_MIN}", np.asarray(table["nb"]) >= SR_NB_MIN),
            (f"MJ > {SR_MJ_MIN:g} GeV", np.asarray(table["mj"]) > SR_MJ_MIN),
            (f"HT > {SR_HT_MIN:g} GeV", np.asarray(table["ht"]) > SR_HT_MIN)]
