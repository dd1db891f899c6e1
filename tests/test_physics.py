"""Spec: the CNN against the cut-based selection (bench/physics.py, reports/cnn_vs_cuts.py).

Weighted efficiencies, the working-point search, yields, significance and the 5-sigma point are checked
on small hand-made score arrays whose answers are worked out by hand in the comments; the cut flow on
hand-made events; the bootstrap gives a spread that shrinks with more events; the ROC figure is written
and is not empty, also when the signal region keeps no background event.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import physics
from data import selection

# 4 signal events of weight 1; 6 background events of weights 1, 1, 1, 1, 2, 4 (total 10).
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
WEIGHTS = np.array([1, 1, 1, 1, 1, 1, 1, 1, 2, 4], dtype=float)
SCORES = np.array([0.9, 0.8, 0.6, 0.3, 0.85, 0.5, 0.4, 0.2, 0.1, 0.05])
# The signal region keeps signal events 0 and 2 (eff 2/4) and the background event at 0.5 (eff 1/10).
IN_REGION = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0], dtype=bool)


def test_weighted_efficiencies():
    assert physics.efficiencies(IN_REGION, LABELS, WEIGHTS) == pytest.approx((0.5, 0.1))
    everything = np.ones(10, dtype=bool)
    assert physics.efficiencies(everything, LABELS, WEIGHTS) == pytest.approx((1.0, 1.0))
    heavy = np.zeros(10, dtype=bool)
    heavy[9] = True  # the background event of weight 4
    assert physics.efficiencies(heavy, LABELS, WEIGHTS) == pytest.approx((0.0, 0.4))


def test_working_point_takes_the_largest_fpr_not_above_the_target():
    fpr, tpr, thr = physics.roc(LABELS, SCORES, WEIGHTS)
    # Thresholds down the scores: 0.9 (tpr .25, fpr 0), 0.85 (.25, .1), 0.8 (.5, .1), 0.6 (.75, .1), 0.5 (.75, .2)
    assert physics.working_point(fpr, tpr, thr, 0.1) == pytest.approx((0.6, 0.75, 0.1))
    assert physics.working_point(fpr, tpr, thr, 0.15) == pytest.approx((0.6, 0.75, 0.1))
    assert physics.working_point(fpr, tpr, thr, 0.05) == pytest.approx((0.9, 0.25, 0.0))
    assert physics.working_point(fpr, tpr, thr, 0.0) == pytest.approx((0.9, 0.25, 0.0))  # no background kept
    t, tp, fp = physics.working_point(fpr[1:] * 0 + 0.5, tpr[1:], thr[1:], 0.1)  # every point above target
    assert (t, tp, fp) == (float(thr[1]), float(tpr[1]), 0.5)  # the first point: the tightest there is
    assert physics.working_point(fpr, tpr, thr, 1.0)[1:] == pytest.approx((1.0, 1.0))


def test_comparison_at_the_cut_working_point():
    c = physics.compare(LABELS, SCORES, WEIGHTS, IN_REGION, luminosity_fb=1.0, bootstrap=0)
    assert (c.cut_signal_eff, c.cut_background_eff) == pytest.approx((0.5, 0.1))
    assert (c.cnn_signal_eff, c.cnn_background_eff, c.cnn_threshold) == pytest.approx((0.75, 0.1, 0.6))
    assert c.eff_ratio == pytest.approx(1.5)
    # 1 fb^-1 = 1000 pb^-1; signal weights sum to 4, background to 10.
    assert (c.cut_s, c.cut_b, c.cnn_s, c.cnn_b) == pytest.approx((2000, 1000, 3000, 1000))
    assert c.sig_ratio == pytest.approx(1.5)  # the same b: the significance ratio is the efficiency ratio
    za = physics.asimov_significance
    assert c.asimov_ratio == pytest.approx(za(3000, 1000) / za(2000, 1000))
    assert c.cut_background_events == 1 and c.cnn_background_events == 1  # bkg at 0.85 passes t = 0.6
    assert c.auc == pytest.approx(physics.auc(LABELS, SCORES, WEIGHTS))
    assert c.eff_ratio_err is None and c.bootstrap == 0


def test_discovery_point_is_the_loosest_threshold_reaching_five_sigma():
    # At 0.01 fb^-1 (10 pb^-1): z = 40 tpr / sqrt(10 fpr) ... by threshold: 0.4 -> (.75, .3) 5.48;
    # 0.3 -> (1, .3) 7.30; 0.2 -> (1, .4) 6.32; 0.1 -> (1, .6) 5.16; 0.05 -> (1, 1) 4.0 < 5.
    c = physics.compare(LABELS, SCORES, WEIGHTS, IN_REGION, luminosity_fb=0.01, bootstrap=0)
    assert c.discovery_threshold == pytest.approx(0.1)
    assert (c.discovery_s, c.discovery_b) == pytest.approx((40.0, 60.0))
    assert c.discovery_background_events == 5
    # At 0.001 fb^-1 the best point is z = 3: five sigma is never reached.
    c = physics.compare(LABELS, SCORES, WEIGHTS, IN_REGION, luminosity_fb=0.001, bootstrap=0)
    assert c.discovery_threshold is None and c.discovery_s is None


def test_no_background_in_the_region_gives_ratios_without_nan_in_json():
    region = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    c = physics.compare(LABELS, SCORES, WEIGHTS, region, bootstrap=0)
    assert c.cut_background_eff == 0 and c.cnn_background_eff == 0
    assert c.eff_ratio == pytest.approx(0.25 / 0.25)
    d = c.asdict()
    assert d["sig_ratio"] is None and d["asimov_ratio"] is None


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="one class"):
        physics.compare(np.ones(4), np.linspace(0, 1, 4), np.ones(4), np.zeros(4, bool))


def test_cut_flow_on_hand_made_events():
    table = {"njet": np.array([8, 9, 7, 10, 8, 12]), "nb": np.array([3, 2, 4, 3, 3, 5]),
             "mj": np.array([900.0, 900, 900, 700, 850, 1200]), "ht": np.array([1600.0, 1600, 1600, 1600, 1500, 2000])}
    labels = np.array([1, 1, 1, 1, 0, 0])
    weights = np.array([1.0, 1, 1, 1, 3, 1])
    rows = physics.cut_flow(table, labels, weights)
    assert [r["cut"] for r in rows] == ["baseline", "Njet >= 8", "Nb >= 3", "MJ > 800 GeV", "HT > 1500 GeV"]
    assert [r["signal_events"] for r in rows] == [4, 3, 2, 1, 1]
    assert [r["background_events"] for r in rows] == [2, 2, 2, 2, 1]  # HT > 1500 is strict: 1500 fails
    assert [r["signal_eff"] for r in rows] == pytest.approx([1, 0.75, 0.5, 0.25, 0.25])
    assert rows[-1]["background_eff"] == pytest.approx(0.25)
    assert selection.signal_region(table).tolist() == [True, False, False, False, False, True]


def test_the_cuts_without_the_b_tag_step_by_hand():
    table = {"njet": np.array([8, 9, 7, 10, 8, 12]), "nb": np.array([3, 2, 4, 3, 3, 5]),
             "mj": np.array([900.0, 900, 900, 700, 850, 1200]), "ht": np.array([1600.0, 1600, 1600, 1600, 1500, 2000])}
    # event 1 (Nb 2) now passes; 2 (Njet 7), 3 (MJ 700) and 4 (HT 1500) still fail
    assert selection.signal_region_without_nb(table).tolist() == [True, True, False, False, False, True]
    # the hand-made scores: that region keeps signal events 0, 1, 2 (eff 3/4) and the background events at
    # 0.85 and 0.5 (eff 2/10); the CNN at fpr <= 0.2 cuts at 0.5: tpr 0.75, fpr 0.2, two background events
    keep = np.zeros(10, dtype=bool)
    keep[[0, 1, 2, 4, 5]] = True
    ten = {"njet": np.where(keep, 8, 5), "nb": np.ones(10, dtype=int), "mj": np.full(10, 900.0),
           "ht": np.full(10, 1600.0)}
    c = physics.compare(LABELS, SCORES, WEIGHTS, IN_REGION, luminosity_fb=1.0, bootstrap=0)
    both = physics.compare_without_nb(c, LABELS, SCORES, WEIGHTS, ten)
    assert (both.no_nb_cut_signal_eff, both.no_nb_cut_background_eff) == pytest.approx((0.75, 0.2))
    assert both.no_nb_cnn_signal_eff == pytest.approx(0.75) and both.no_nb_eff_ratio == pytest.approx(1.0)
    assert (both.no_nb_cut_background_events, both.no_nb_cnn_background_events) == (2, 2)
    assert both.no_nb_eff_ratio_err is None  # no bootstrap asked: none made
    assert both.eff_ratio == c.eff_ratio and both.cut_signal_eff == c.cut_signal_eff  # the full cuts' fields kept
    boot = physics.compare_without_nb(physics.compare(LABELS, SCORES, WEIGHTS, IN_REGION, bootstrap=20),
                                      LABELS, SCORES, WEIGHTS, ten)
    assert boot.no_nb_eff_ratio_err is not None and np.isfinite(boot.no_nb_eff_ratio_err)


def test_signal_region_names_missing_quantities():
    with pytest.raises(KeyError, match="mj"):
        selection.signal_region({"njet": [8], "nb": [3], "ht": [2000.0]})


def test_yield_weights_scale_each_sample_to_the_whole_file():
    weights = np.array([1.0, 1, 1, 5, 5])
    sample = np.array([0, 0, 0, 1, 1])
    w = physics.yield_weights(weights, sample, np.array([0, 3]))
    assert w.tolist() == [3.0, 10.0]  # 1 of 3 events of sample 0, 1 of 2 of sample 1


def test_bootstrap_spread_is_finite_and_shrinks_with_more_events():
    def spread(n):
        rng = np.random.default_rng(1)
        y = rng.random(n) < 0.4
        scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0, 1)
        region = (scores + rng.normal(0, 0.1, n)) > 0.75
        c = physics.compare(y.astype(int), scores, np.ones(n), region, bootstrap=100, seed=2)
        return c.eff_ratio_err
    small, large = spread(2_000), spread(50_000)
    assert 0 < large < small
    assert large < 0.1


def test_roc_points_are_a_monotone_step_of_the_curve():
    fpr, tpr, _ = physics.roc(LABELS, SCORES, WEIGHTS)
    pts = physics.roc_points(fpr, tpr, n=50)
    assert pts["fpr"][-1] == 1.0 and pts["tpr"][-1] == 1.0
    assert np.all(np.diff(pts["fpr"]) > 0) and np.all(np.diff(pts["tpr"]) >= 0)
    k = int(np.searchsorted(pts["fpr"], 0.1))
    assert pts["tpr"][k] == pytest.approx(0.75)  # the step value at fpr = 0.1


@pytest.mark.parametrize("region", [IN_REGION, np.eye(1, 10, 0, dtype=bool)[0]], ids=["cut-point", "no-background"])
def test_roc_figure_and_tables_are_written(tmp_path, region):
    from reports import cnn_vs_cuts as figs

    c = physics.compare(LABELS, SCORES, WEIGHTS, region, bootstrap=20)
    fpr, tpr, _ = physics.roc(LABELS, SCORES, WEIGHTS)
    entry = {"label": "2 rank(s)", "roc": physics.roc_points(fpr, tpr), **c.asdict()}
    paths = figs.roc_figure([entry], tmp_path)
    assert [p.name for p in paths] == ["roc.png", "roc.svg"]
    assert paths[0].stat().st_size > 10_000
    svg = paths[1].read_text()
    assert "cut-based signal region" in svg and "false-positive rate" in svg
    md, csv = figs.write_tables([entry], tmp_path, image_size=64)
    lines = md.read_text().splitlines()
    assert len(lines) == 4 and "2 rank(s)" in lines[2] and "KISTI study" in lines[3] and "1.803" in lines[3]
    assert csv.read_text().splitlines()[0].startswith("label,test_events,auc")


def test_truth_tag_probabilities_by_hand_and_against_drawn_tags():
    """P(Nb >= k) of independent tags (Poisson-binomial), and the signal-region weight P(Nb >= 3 | Nb >= 1)
    against the frequency of Nb >= 3 among tags drawn given one tag, as the fast path draws them."""
    from bench.physics import p_at_least, truth_tag
    from data.generation.jets import draw_tags_given_one
    off = np.array([0, 3, 3, 5])  # three jets at 0.5, no jet, two jets
    eff = np.array([0.5, 0.5, 0.5, 0.2, 0.1])
    np.testing.assert_allclose(p_at_least(off, eff, 1), [0.875, 0.0, 1 - 0.8 * 0.9])
    np.testing.assert_allclose(p_at_least(off, eff, 2), [0.5, 0.0, 0.02])
    np.testing.assert_allclose(p_at_least(off, eff, 3), [0.125, 0.0, 0.0])
    rng = np.random.default_rng(1)
    e = np.array([0.7, 0.4, 0.3, 0.1, 0.05, 0.02, 0.01, 0.01])
    drawn = np.mean([draw_tags_given_one(e, rng).sum() >= 3 for _ in range(20000)])
    table = {"njet": np.array([8, 8, 7]), "mj": np.array([900.0, 700.0, 900.0]), "ht": np.array([1600.0] * 3)}
    w = truth_tag(table, np.array([0, 8, 16, 24]), np.tile(e, 3))
    assert w[1] == 0 and w[2] == 0  # MJ and Njet still cut
    assert w[0] == pytest.approx(drawn, abs=0.01)
