"""Spec (reports/learning_curve.py): the learning curve's points are planned from what the records hold
(a recorded point is not trained again, the arms take turns), its runs share one split and recipe, its
epochs follow the budget within bounds, the fit of the ratio against log10(training events) finds a
hand-computed crossing with a spread that covers it, a falling or flat curve has no crossing, the power law
of 1 - AUC finds the events a target AUC needs, the report writes its table, CSV, JSON and figure, and bad
flags exit 2 naming the flag."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reports import learning_curve as lc


def _rec(arm, n, ratio, err, auc=0.95):
    cfg = {"augment": "all" if "augment" in arm else "none", "btag_channel": arm.startswith("btag")}
    return {"config": cfg, "data": {"split": {"train": n, "val": 10, "test": 30}}, "auc": [0.9] * 8,
            "kept_epoch": 5, "test_auc": auc, "epoch_s": [10.0] * 7, "warmup_epoch_s": 12.0,
            "physics": {"eff_ratio": ratio, "eff_ratio_err": err, "cut_background_events": 40,
                        "cnn_background_events": 35, "no_nb_eff_ratio": 1.3, "no_nb_eff_ratio_err": 0.12}}


def test_fit_finds_a_hand_computed_crossing():
    sizes = np.array([1e3, 1e4, 1e5, 1e6])
    ratio = 0.25 + 0.25 * np.log10(sizes)  # 1 at N = 1000
    f = lc.fit_crossing(sizes, ratio, np.full(4, 0.05))
    assert f["a"] == pytest.approx(0.25) and f["b"] == pytest.approx(0.25)
    assert f["crossing"] == pytest.approx(1000.0, rel=1e-6)
    lo, hi = f["crossing_68"]
    assert lo < 1000 < hi
    flat = lc.fit_crossing(sizes, 0.5 - 0.01 * np.log10(sizes), np.full(4, 0.05))
    assert flat["crossing"] is None
    assert lc.fit_crossing(sizes[:2], ratio[:2], [0.1, 0.1])["crossing"] is None  # two points: no fit
    # a point without a ratio (no background at the working point) is left out, not a zero
    f2 = lc.fit_crossing([*sizes, 5e5], [*ratio, np.nan], [*np.full(4, 0.05), 0.1])
    assert f2["points"] == 4 and f2["crossing"] == pytest.approx(1000.0, rel=1e-6)


def test_auc_power_law_reaches_a_hand_computed_target():
    sizes = np.array([5e3, 1e4, 2e4, 5e4, 1e5])
    # 1 - AUC = 0.5 N^-0.25 with a wobble: reaches AUC 0.985 (1 - AUC = 0.015) at N = (0.5 / 0.015)^4
    wobble = np.array([1.02, 0.98, 1.01, 0.99, 1.0])
    f = lc.fit_auc(sizes, 1 - 0.5 * sizes ** -0.25 * wobble, targets=(0.985,))
    assert f["points"] == 5 and f["d"] == pytest.approx(-0.25, abs=0.02)
    want = (0.5 / 0.015) ** 4
    r = f["reach"]["0.985"]
    assert r["n"] == pytest.approx(want, rel=0.3)
    lo, hi = r["n_68"]
    assert lo < r["n"] < hi
    exact = lc.fit_auc(sizes, 1 - 0.5 * sizes ** -0.25, targets=(0.985,))
    assert exact["reach"]["0.985"]["n"] == pytest.approx(want, rel=1e-6)
    # an AUC that falls with N never reaches the target; two points give no fit
    assert lc.fit_auc(sizes, 0.99 - 0.001 * np.log10(sizes), targets=(0.995,))["reach"]["0.995"]["n"] is None
    assert lc.fit_auc(sizes[:2], [0.9, 0.95])["d"] is None


def test_points_are_planned_from_the_records():
    recs = [_rec("plain", 5000, 0.4, 0.1), _rec("augment", 5000, 0.5, 0.1)]
    assert lc.todo(recs, ["plain", "augment"], [10000, 5000]) == [("plain", 10000), ("augment", 10000)]
    # the b-tag arm: at the largest size only, after every other point, unless given its own sizes
    assert lc.todo(recs, ["btag", "plain"], [20000, 5000]) == [("plain", 20000), ("btag", 20000)]
    assert lc.todo(recs, ["plain", "btag"], [5000], [5000, 100]) == [("btag", 100), ("btag", 5000)]
    assert [lc.arm_of(_rec(a, 1, 0, 0)) for a in lc.ARMS] == list(lc.ARMS)
    assert lc.epochs_for(5000, 600_000) == 40 and lc.epochs_for(50_000, 600_000) == 12
    assert lc.epochs_for(120_000, 600_000) == 8
    cmd = lc.run_command("s.h5", "augment", 5000, 40, lc.Path("o"))
    assert cmd[cmd.index("--split") + 1] == "0.55,0.1,0.35" and "--resume" in cmd and "--augment" in cmd
    assert cmd[cmd.index("--train-events") + 1] == "5000" and cmd[cmd.index("--keep") + 1] == "best"


def test_report_writes_table_csv_json_and_figure(tmp_path, capsys):
    recs = [_rec("plain", n, 0.25 + 0.25 * np.log10(n), 0.05, auc=1 - 0.5 * n ** -0.25)
            for n in (1000, 10_000, 100_000)]
    recs.append(_rec("augment", 1000, 0.6, 0.1))
    recs.append(_rec("btag", 100_000, 0.9, 0.05))  # plain at 100,000: 0.25 + 0.25 * 5 = 1.5, above the cuts
    recs.append(_rec("btag_augment", 1000, 0.84, 0.1))  # against augment's 0.6: 0.24 of the gap of 0.4
    recs[-1]["kept_epoch"] = 7  # of 8: the last
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert lc.main(["report", "--records", str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "learning_curve.md").read_text()
    assert "reaches 1 at N = 1,000 training events" in md
    assert "augment: the ratio does not reach 1 on the fit (fewer than 3 points)" in md
    # 1 - AUC = 0.5 N^-0.25 exactly: AUC 0.985 at N = (0.5 / 0.015)^4, no spread
    assert "* plain: 1 - AUC = 0.5 N^(-0.250); AUC 0.985 at N = 1,234,568 (68%: 1,234,568 to 1,234,568)" in md
    assert "* augment: no power-law fit of 1 - AUC (fewer than 3 points)." in md
    assert ("btag_augment against augment at 1,000 training events: ratio 0.840 against 0.600, a difference of "
            "+0.240 (+- 0.141 in quadrature, an upper bound: same test events); it closes 60% of the augment "
            "arm's gap to the cuts.") in md
    assert ("* btag_augment at 1,000: the kept epoch is the last one, so the validation loss was still falling"
            in md) and "* plain at 1,000: the kept" not in md
    gains = json.loads((tmp_path / "out" / "learning_curve.json").read_text())["btag"]
    assert [g["closed"] for g in gains if g["train_events"] == 100_000] == [None]  # no gap: nothing to close
    for name in ("learning_curve.csv", "learning_curve.json", "learning_curve.png", "learning_curve.svg"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "| plain | 10,000 |" in capsys.readouterr().out
    assert "| 40 | 35 | 1.300 +- 0.120 | 82 |" in md  # the ratio to the cuts without Nb >= 3


@pytest.mark.parametrize("argv, flag", [
    (["run", "--data", "x.h5", "--sizes", "5k"], "--sizes"),
    (["run", "--data", "x.h5", "--sizes", "0,10"], "--sizes"),
    (["run", "--data", "x.h5", "--arms", "plain,fancy"], "--arms"),
    (["run", "--data", "x.h5", "--btag-sizes", "-5"], "--btag-sizes"),
    (["run", "--data", "x.h5", "--epochs-budget", "0"], "--epochs-budget"),
    (["run", "--data", "missing.h5"], "--data"),
    (["report", "--records", "missing.jsonl"], "--records"),
])
def test_bad_flags_exit_2_naming_the_flag(argv, flag, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.h5").write_text("")
    with pytest.raises(SystemExit) as exc:
        lc.main(argv)
    assert exc.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.slow  # trains one point with python -m bench.strong_scaling
def test_run_trains_a_missing_point_once_and_reports_it(tmp_path, capsys):
    from data.store import write_synthetic

    data = tmp_path / "s.h5"
    write_synthetic(data, 800, 64, pixels_per_event=60)
    out = tmp_path / "lc"
    argv = ["run", "--data", str(data), "--out", str(out), "--sizes", "300", "--arms", "plain",
            "--epochs-budget", "1"]
    assert lc.main(argv) == 0
    (rec,) = lc.read_records(out / "records.jsonl")
    assert lc.arm_of(rec) == "plain" and lc.train_size(rec) == 300 and len(rec["auc"]) == lc.MIN_EPOCHS
    assert rec["config"]["keep"] == "best" and rec["kept_epoch"] == int(np.argmin(rec["val_loss"]))
    assert (out / "models" / "plain-300.pt").exists()
    capsys.readouterr()
    assert lc.main(argv + ["--dry-run"]) == 0 and capsys.readouterr().out == ""  # nothing left to train
    assert len(lc.read_records(out / "records.jsonl")) == 1


def test_a_rescored_point_gives_its_later_fields_and_a_different_model_is_refused(tmp_path, capsys):
    old = _rec("plain", 5000, 0.6, 0.07, auc=0.93)
    del old["physics"]["no_nb_eff_ratio"], old["physics"]["no_nb_eff_ratio_err"]  # recorded before the field
    new = _rec("augment", 5000, 0.7, 0.07)
    assert lc.needs_rescore(old) and not lc.needs_rescore(new)
    cmd = lc.rescore_command(old, tmp_path)
    assert cmd[cmd.index("--model-weights") + 1] == str(tmp_path / "models" / "plain-5000.pt")
    folder = tmp_path / "physics"
    (folder / "plain-5000").mkdir(parents=True)
    entry = {"auc": 0.93, "no_nb_eff_ratio": 1.1, "no_nb_eff_ratio_err": 0.2, "eff_ratio": 99.0}
    (folder / "plain-5000" / "physics.json").write_text(json.dumps([entry]))
    got_old, got_new = lc.with_rescored([old, new], folder)
    assert got_old["physics"]["no_nb_eff_ratio"] == 1.1 and got_old["physics"]["eff_ratio"] == 0.6  # only those
    assert got_new == new
    (folder / "plain-5000" / "physics.json").write_text(json.dumps([{**entry, "auc": 0.95}]))
    with pytest.raises(ValueError, match="not the same model or test split"):
        lc.with_rescored([old], folder)
    # rescore: a point without its saved model is named, nothing run
    (tmp_path / "lc").mkdir()
    (tmp_path / "lc" / "records.jsonl").write_text(json.dumps(old) + "\n")
    assert lc.main(["rescore", "--out", str(tmp_path / "lc")]) == 2
    assert "plain-5000.pt: the saved model of plain-5000 is missing" in capsys.readouterr().err
