"""The CNN against the cut-based selection, on the same events, with physical weights (Kim et al., Sections 2-3;
every figure and its source: docs/physics-reference.md, 'Samples and weights').

Everything here is plain numpy + scikit-learn on arrays of labels, scores, weights and jet quantities; no
torch and no MPI, so it is tested on hand-made arrays and reused by ``bench.evaluate`` and by the run
records of ``bench.strong_scaling``.

* The cut-based selection: the signal region (Njet >= 8, Nb >= 3, MJ > 800 GeV, HT > 1500 GeV) on events
  that already passed the baseline, and its weighted signal and background efficiencies.
* The comparison point: the CNN threshold whose weighted background efficiency is the largest one not above
  the signal region's. There: the CNN's signal efficiency, its ratio to the cut-based one, the expected
  signal s and background b at a luminosity, s / sqrt(b) and its ratio.
* The same comparison against the signal region without its Nb >= 3 step (``no_nb_*`` fields), at that
  region's background efficiency: the cuts on what a three-channel image also holds. A CNN below the full
  cuts but above these ones is short of the b-tag, not of the kinematics.
* Statistical uncertainty from a Poisson bootstrap of the test events (each event's weight times a
  Poisson(1) count per replicate): the whole comparison is redone in every replicate, threshold search
  included, so the spread covers the few background events that sit at a low false-positive rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from data.selection import signal_region, signal_region_steps, signal_region_without_nb

LUMINOSITY_FB = 138.0  # the reference code's luminosity (not in the paper; CMS's 2016-2018 data set)
PB_PER_FB = 1e3  # 1 fb^-1 = 1000 pb^-1
DISCOVERY_Z = 5.0  # Kim et al., Section 3: the discovery level


def efficiencies(selected: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """Weighted (signal efficiency, background efficiency) of a boolean selection."""
    sig = np.asarray(labels) == 1
    w = np.asarray(weights, dtype=np.float64)
    return (float(w[sig & selected].sum() / w[sig].sum()), float(w[~sig & selected].sum() / w[~sig].sum()))


def cut_flow(table: dict, labels: np.ndarray, weights: np.ndarray) -> list[dict]:
    """The signal region's cuts applied one after another: weighted efficiencies and raw counts."""
    sig = np.asarray(labels) == 1
    steps = signal_region_steps(table)
    rows, keep = [], np.ones(len(sig), dtype=bool)
    for name, cut in steps:
        keep = keep & cut
        eff_s, eff_b = efficiencies(keep, labels, weights)
        rows.append({"cut": name, "signal_eff": eff_s, "background_eff": eff_b,
                     "signal_events": int((keep & sig).sum()), "background_events": int((keep & ~sig).sum())})
    return rows


def roc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray):
    """Weighted ROC (scikit-learn): false-positive rates, true-positive rates, thresholds (score >= t)."""
    return roc_curve(labels, scores, sample_weight=weights, drop_intermediate=False)


def auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores, sample_weight=weights))


def working_point(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, target_fpr: float):
    """(threshold, tpr, fpr) of the ROC point with the largest fpr not above ``target_fpr``.

    A scikit-learn ROC starts at fpr 0 (threshold +inf, nothing selected), so one always qualifies; for any
    other curve whose points all lie above the target, the first (tightest) point is returned.
    """
    k = max(int(np.searchsorted(fpr, target_fpr * (1 + 1e-12), side="right")) - 1, 0)
    return float(thresholds[k]), float(tpr[k]), float(fpr[k])


def significance(s: float, b: float) -> float:
    """s / sqrt(b), the expected significance of the reference code (NaN without background)."""
    return float(s / np.sqrt(b)) if b > 0 else float("nan")


def asimov_significance(s: float, b: float) -> float:
    """Z_A = sqrt(2 ((s + b) ln(1 + s / b) - s)) (Cowan et al. 2011); tends to s / sqrt(b) for s << b."""
    return float(np.sqrt(2 * ((s + b) * np.log1p(s / b) - s))) if b > 0 else float("nan")


@dataclass(frozen=True)
class Comparison:
    """The CNN against the cut-based selection at the signal region's background efficiency."""

    test_events: int
    test_signal_events: int
    test_background_events: int
    auc: float
    cut_signal_eff: float
    cut_background_eff: float
    cut_s: float
    cut_b: float
    cut_background_events: int  # unweighted test background events inside the signal region
    cnn_threshold: float
    cnn_signal_eff: float
    cnn_background_eff: float
    cnn_s: float
    cnn_b: float
    cnn_background_events: int  # unweighted test background events the CNN keeps at the threshold
    eff_ratio: float
    sig_ratio: float
    asimov_ratio: float
    luminosity_fb: float
    discovery_threshold: float | None  # loosest CNN threshold with s / sqrt(b) >= 5 (None: never)
    discovery_s: float | None
    discovery_b: float | None
    discovery_background_events: int | None
    eff_ratio_err: float | None = None  # bootstrap standard deviations (None: not computed)
    # the cuts with the Nb >= 3 step as each event's probability instead of its drawn tags (``truth_tag``);
    # None where the source has no per-jet tag efficiencies
    cut_signal_eff_truth_tag: float | None = None
    cut_background_eff_truth_tag: float | None = None
    truth_tag_background_events: int | None = None  # unweighted test background events that contribute
    sig_ratio_err: float | None = None
    # the comparison against the signal region without Nb >= 3 (``signal_region_without_nb``), at its own
    # background efficiency; None where not computed (``compare_without_nb``)
    no_nb_cut_signal_eff: float | None = None
    no_nb_cut_background_eff: float | None = None
    no_nb_cut_background_events: int | None = None
    no_nb_cnn_signal_eff: float | None = None
    no_nb_cnn_background_events: int | None = None
    no_nb_eff_ratio: float | None = None
    no_nb_eff_ratio_err: float | None = None
    bootstrap: int = 0
    roc: dict | None = None  # compact ROC (roc_points) of the same curve the comparison used

    def asdict(self) -> dict:
        """Plain fields for JSON: a NaN (no background left, no ratio) becomes None."""
        return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in asdict(self).items()}

    @property
    def cut_sig(self) -> float:
        return significance(self.cut_s, self.cut_b)

    @property
    def cnn_sig(self) -> float:
        return significance(self.cnn_s, self.cnn_b)


def compare(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, in_region: np.ndarray,
            luminosity_fb: float = LUMINOSITY_FB, bootstrap: int = 200, seed: int = 0) -> Comparison:
    """The full comparison on test events.

    ``weights`` are physical weights normalised so that ``luminosity [pb^-1] * sum(weights)`` is the
    expected number of events of the test events' samples (see ``yield_weights``).
    """
    y = np.asarray(labels) == 1
    w = np.asarray(weights, dtype=np.float64)
    in_region = np.asarray(in_region, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("the test events hold one class only: no ROC")
    lumi_pb = luminosity_fb * PB_PER_FB
    fpr, tpr, thr = roc(y.astype(int), scores, w)
    cut_s_eff, cut_b_eff = efficiencies(in_region, y, w)
    t, cnn_tpr, cnn_fpr = working_point(fpr, tpr, thr, cut_b_eff)
    cnn_sel = scores >= t
    total_s, total_b = lumi_pb * w[y].sum(), lumi_pb * w[~y].sum()
    cut_s, cut_b = cut_s_eff * total_s, cut_b_eff * total_b
    cnn_s, cnn_b = cnn_tpr * total_s, cnn_fpr * total_b
    # Discovery: along the CNN's thresholds, the loosest one whose s / sqrt(b) still reaches 5.
    s_all, b_all = tpr * total_s, fpr * total_b
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(b_all > 0, s_all / np.sqrt(b_all), np.nan)
    ok = np.flatnonzero(z >= DISCOVERY_Z)
    d = int(ok[-1]) if len(ok) else None
    err = _bootstrap(y, np.asarray(scores), w, in_region, bootstrap, seed) if bootstrap else (None, None)
    return Comparison(
        test_events=len(y), test_signal_events=int(y.sum()), test_background_events=int((~y).sum()),
        auc=auc(y.astype(int), scores, w),
        cut_signal_eff=cut_s_eff, cut_background_eff=cut_b_eff, cut_s=cut_s, cut_b=cut_b,
        cut_background_events=int((in_region & ~y).sum()),
        cnn_threshold=t, cnn_signal_eff=cnn_tpr, cnn_background_eff=cnn_fpr, cnn_s=cnn_s, cnn_b=cnn_b,
        cnn_background_events=int((cnn_sel & ~y).sum()),
        eff_ratio=_ratio(cnn_tpr, cut_s_eff),
        sig_ratio=_ratio(significance(cnn_s, cnn_b), significance(cut_s, cut_b)),
        asimov_ratio=_ratio(asimov_significance(cnn_s, cnn_b), asimov_significance(cut_s, cut_b)),
        luminosity_fb=luminosity_fb,
        discovery_threshold=None if d is None else float(thr[d]),
        discovery_s=None if d is None else float(s_all[d]),
        discovery_b=None if d is None else float(b_all[d]),
        discovery_background_events=None if d is None else int(((scores >= thr[d]) & ~y).sum()),
        eff_ratio_err=err[0], sig_ratio_err=err[1], bootstrap=bootstrap, roc=roc_points(fpr, tpr))


def compare_without_nb(cmp: Comparison, labels: np.ndarray, scores: np.ndarray, weights: np.ndarray,
                       table: dict, seed: int = 0) -> Comparison:
    """``cmp`` with its ``no_nb_*`` fields: the CNN against the signal region without Nb >= 3 at that region's
    background efficiency, on the same events and weights (``compare``'s), with as many bootstrap
    replicates as ``cmp`` had."""
    other = compare(labels, scores, weights, signal_region_without_nb(table), cmp.luminosity_fb, cmp.bootstrap,
                    seed)
    return replace(cmp, no_nb_cut_signal_eff=other.cut_signal_eff,
                   no_nb_cut_background_eff=other.cut_background_eff,
                   no_nb_cut_background_events=other.cut_background_events,
                   no_nb_cnn_signal_eff=other.cnn_signal_eff,
                   no_nb_cnn_background_events=other.cnn_background_events,
                   no_nb_eff_ratio=other.eff_ratio, no_nb_eff_ratio_err=other.eff_ratio_err)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 and np.isfinite(a) and np.isfinite(b) else float("nan")


def _bootstrap(y: np.ndarray, scores: np.ndarray, w: np.ndarray, in_region: np.ndarray, n_rep: int,
               seed: int, chunk: int = 32) -> tuple[float, float]:
    """Bootstrap standard deviations of the efficiency ratio and the s / sqrt(b) ratio.

    One sort of the scores serves every replicate: a replicate only changes the events' weights (Poisson
    counts), so its ROC is a cumulative sum over the same order, read at the ends of tied-score runs.
    """
    order = np.argsort(-scores, kind="stable")
    s_sorted = scores[order]
    ends = np.append(np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1)  # last index of each score
    ys, ws, rs = y[order], w[order], in_region[order]
    rng = np.random.default_rng(seed)
    eff, sig = [], []
    for start in range(0, n_rep, chunk):
        k = min(chunk, n_rep - start)
        wb = ws[None, :] * rng.poisson(1.0, size=(k, len(ws)))
        ws_sig, ws_bkg = np.where(ys, wb, 0.0), np.where(ys, 0.0, wb)
        tot_s, tot_b = ws_sig.sum(1), ws_bkg.sum(1)
        tpr = np.cumsum(ws_sig, 1)[:, ends] / tot_s[:, None]
        fpr = np.cumsum(ws_bkg, 1)[:, ends] / tot_b[:, None]
        cut_s = ws_sig[:, rs].sum(1) / tot_s
        cut_b = ws_bkg[:, rs].sum(1) / tot_b
        for r in range(k):
            j = int(np.searchsorted(fpr[r], cut_b[r] * (1 + 1e-12), side="right")) - 1
            cnn_t, cnn_f = (tpr[r, j], fpr[r, j]) if j >= 0 else (0.0, 0.0)
            eff.append(_ratio(cnn_t, cut_s[r]))
            sig.append(_ratio(cnn_t / np.sqrt(cnn_f) if cnn_f > 0 else np.nan,
                              cut_s[r] / np.sqrt(cut_b[r]) if cut_b[r] > 0 else np.nan))
    eff, sig = np.array(eff), np.array(sig)
    return (float(np.nanstd(eff, ddof=1)) if np.isfinite(eff).sum() > 1 else float("nan"),
            float(np.nanstd(sig, ddof=1)) if np.isfinite(sig).sum() > 1 else float("nan"))


def yield_weights(weights: np.ndarray, sample: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Physical weights of the events ``subset``, scaled up per sample by (events in file / events in subset).

    A physical weight is cross section / generated events, so summing it over *all* kept events of a sample
    gives its selected cross section. A test split holds only part of each sample; scaling each sample by
    its share keeps ``luminosity * sum`` an expected event count.
    """
    sample = np.asarray(sample)
    subset = np.asarray(subset)
    n_all = np.bincount(sample)
    n_sub = np.bincount(sample[subset], minlength=len(n_all))
    scale = np.divide(n_all, n_sub, out=np.zeros(len(n_all)), where=n_sub > 0)
    return np.asarray(weights, dtype=np.float64)[subset] * scale[sample[subset]]


def roc_points(fpr: np.ndarray, tpr: np.ndarray, n: int = 200, fpr_min: float = 1e-5) -> dict:
    """A compact ROC for records and plots: the TPR at ``n`` log-spaced FPR values (step interpolation)."""
    grid = np.unique(np.concatenate([np.geomspace(fpr_min, 1.0, n), [1.0]]))
    k = np.searchsorted(fpr, grid * (1 + 1e-12), side="right") - 1
    return {"fpr": [float(f) for f in grid], "tpr": [float(t) for t in tpr[np.maximum(k, 0)]]}


def p_at_least(offsets: np.ndarray, eff: np.ndarray, k: int) -> np.ndarray:
    """P(at least ``k`` tags) of each event from its jets' independent tag efficiencies (Poisson-binomial):
    event i's jets are ``eff[offsets[i]:offsets[i + 1]]``. Returns float64 (n,)."""
    offsets = np.asarray(offsets, np.int64)
    n = len(offsets) - 1
    counts = np.diff(offsets)
    # P(exactly j tags so far), j < k, for every event at once, adding one jet position at a time
    p = np.zeros((n, k))
    p[:, 0] = 1.0
    for m in range(int(counts.max()) if n else 0):
        has = counts > m
        e = np.where(has, np.asarray(eff, np.float64)[np.minimum(offsets[:-1] + m, len(eff) - 1)], 0.0)
        shifted = np.concatenate([np.zeros((n, 1)), p[:, :-1]], axis=1)
        p = p * (1 - e)[:, None] + shifted * e[:, None]
    return np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)


def truth_tag(table: dict, offsets: np.ndarray, eff: np.ndarray) -> np.ndarray:
    """Each event's weight in the signal region with the Nb >= 3 step taken as a probability: the signal
    region's other cuts (Njet, MJ, HT) times P(Nb >= 3 | Nb >= 1) from its jets' tag efficiencies (every
    stored event has at least one tag: on the fast path its tags were drawn given one, its weight carries
    P(Nb >= 1); on the old path the baseline kept only events with one). The expectation of the drawn-tag
    selection given the event's jets, so an unbiased estimate of the same efficiencies that uses every event
    passing the other cuts (ATLAS's 'truth tagging'). Returns float64 (n,)."""
    from data.selection import SR_HT_MIN, SR_MJ_MIN, SR_NB_MIN, SR_NJET_MIN
    kin = ((np.asarray(table["njet"]) >= SR_NJET_MIN) & (np.asarray(table["mj"]) > SR_MJ_MIN)
           & (np.asarray(table["ht"]) > SR_HT_MIN))
    p3, p1 = p_at_least(offsets, eff, SR_NB_MIN), p_at_least(offsets, eff, 1)
    return np.where(kin & (p1 > 0), np.divide(p3, p1, out=np.zeros_like(p3), where=p1 > 0), 0.0)


def _source_jets(source, indices: np.ndarray):
    """(offsets, btag_eff) of the jets of ``indices`` when the source is a store with finite per-jet tag
    efficiencies (format version 3 from the generator), else None."""
    from data.store import has_jets, ranges
    f = getattr(source, "f", None)
    if f is None or not has_jets(f):
        return None
    off = f["jets/offsets"][: len(source) + 1].astype(np.int64)
    eff = f["jets/btag_eff"][: int(off[-1])].astype(np.float64)
    lo, hi = off[indices], off[indices + 1]
    counts = hi - lo
    mine = eff[ranges(lo, counts)]
    if not np.isfinite(mine).all():
        return None  # Delphes input: the decisions only
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), mine


def on_source(source, indices: np.ndarray, scores: np.ndarray, luminosity_fb: float = LUMINOSITY_FB,
              bootstrap: int = 200, seed: int = 0) -> tuple[Comparison, list[dict]]:
    """The comparison (its compact ROC included) and the cut flow for scored events ``indices`` of a source.

    The source must give jet quantities (``event_table``: the synthetic toy, generated and converted
    stores; a dense file raises DataError). Weights are the physical ones scaled to the share of each
    sample the events hold (``yield_weights``).
    """
    indices = np.asarray(indices, dtype=np.int64)
    table = source.event_table(indices)
    samples = getattr(source, "samples", None)
    all_samples = np.asarray(samples if samples is not None else source.labels, dtype=np.int64)
    w = yield_weights(source.weights, all_samples, indices)
    y = source.labels[indices]
    cmp = compare(y, scores, w, signal_region(table), luminosity_fb, bootstrap, seed)
    cmp = compare_without_nb(cmp, y, scores, w, table, seed)
    jets = _source_jets(source, indices)
    if jets is not None:
        tt = truth_tag(table, *jets)
        sig = np.asarray(y) == 1
        cmp = replace(cmp, cut_signal_eff_truth_tag=float((w * tt)[sig].sum() / w[sig].sum()),
                      cut_background_eff_truth_tag=float((w * tt)[~sig].sum() / w[~sig].sum()),
                      truth_tag_background_events=int(((tt > 0) & ~sig).sum()))
    return cmp, cut_flow(table, y, w)
