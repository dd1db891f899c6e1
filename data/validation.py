"""Did the fast generator move the physics? Weighted two-sample comparisons of kept events.

Two weighted samples of the same slice (the fast and the old path of data.generation.generate) are compared
variable by variable with a weighted Kolmogorov-Smirnov test: the statistic D is the largest distance
between the two weighted empirical CDFs, and its p-value is the asymptotic Kolmogorov distribution at
sqrt(n_e) D, with n_e = n1 n2 / (n1 + n2) built from the Kish effective sizes n_i = (sum w)^2 / sum w^2
(ROOT's TH1::KolmogorovTest makes the same effective-entries substitution for weighted histograms). For the
integer variables (Njet, Nb) the test is conservative: ties make D smaller than for a continuous variable.

Numpy and scipy only (scipy arrives with scikit-learn).
"""
from __future__ import annotations

import numpy as np

VARIABLES = ("ht", "njet", "nb", "mj", "lead_jet_pt", "hcal_sum", "ecal_sum", "track_sum")
CHANNEL_SUMS = ("hcal_sum", "ecal_sum", "track_sum")  # image channels 0, 1, 2 (data/generation/detector.py)


def kish_ess(w: np.ndarray) -> float:
    """Kish effective sample size (sum w)^2 / sum w^2 of weights ``w`` (shape (n,)); 0 for no events."""
    w = np.asarray(w, dtype=np.float64)
    s2 = float((w ** 2).sum())
    return float(w.sum() ** 2 / s2) if s2 > 0 else 0.0


def channel_sums(idx: list[np.ndarray], val: list[np.ndarray], image_size: int) -> np.ndarray:
    """Per-event pixel sum of each image channel (GeV), shape (n, 3), from sparse images (flat index
    c*H*W + ieta*W + iphi, value)."""
    hw = image_size * image_size
    out = np.zeros((len(idx), 3))
    for i, (ix, v) in enumerate(zip(idx, val)):
        out[i] = np.bincount(np.asarray(ix) // hw, weights=np.asarray(v, dtype=np.float64), minlength=3)[:3]
    return out


def weighted_ks(x1, w1, x2, w2) -> tuple[float, float]:
    """Weighted two-sample Kolmogorov-Smirnov test: (D, p-value). Inputs are 1-d arrays of values and
    non-negative weights. Raises ValueError when a sample has no positive weight."""
    from scipy.stats import kstwobign

    x1, w1, x2, w2 = (np.asarray(a, dtype=np.float64) for a in (x1, w1, x2, w2))
    if not (w1.sum() > 0 and w2.sum() > 0):
        raise ValueError("weighted_ks: each sample needs a positive total weight")
    grid = np.union1d(x1, x2)

    def cdf(x, w):
        order = np.argsort(x, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(w[order])]) / w.sum()
        return cum[np.searchsorted(x[order], grid, side="right")]

    d = float(np.abs(cdf(x1, w1) - cdf(x2, w2)).max())
    n1, n2 = kish_ess(w1), kish_ess(w2)
    ne = n1 * n2 / (n1 + n2)
    return d, float(kstwobign.sf(np.sqrt(ne) * d))


def weighted_mean_err(x, w) -> tuple[float, float]:
    """Weighted mean and its standard error (the spread divided by sqrt of the Kish effective size)."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    m = float(np.average(x, weights=w))
    sd = float(np.sqrt(np.average((x - m) ** 2, weights=w)))
    return m, sd / np.sqrt(max(kish_ess(w), 1.0))


def compare(a: dict, b: dict, variables=VARIABLES) -> list[dict]:
    """One row per variable: weighted means with errors of samples ``a`` and ``b`` (dicts of (n,) arrays,
    with ``weight``), the KS distance D and its p-value."""
    rows = []
    for v in variables:
        ma, ea = weighted_mean_err(a[v], a["weight"])
        mb, eb = weighted_mean_err(b[v], b["weight"])
        d, p = weighted_ks(a[v], a["weight"], b[v], b["weight"])
        rows.append({"variable": v, "mean_a": ma, "err_a": ea, "mean_b": mb, "err_b": eb, "ks_d": d, "p": p})
    return rows
