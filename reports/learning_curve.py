"""The learning curve: how many training events the CNN needs before it beats the cuts.

    python -m reports.learning_curve run --data results/study/study64.h5 [--out results/learning-curve]
        [--sizes 5000,10000,20000,50000,110000] [--arms plain,augment,btag] [--btag-sizes 110000]
        [--epochs-budget 600000] [--dry-run]
    python -m reports.learning_curve rescore [--out results/learning-curve]
    python -m reports.learning_curve report [--records results/learning-curve/records.jsonl] [--out DIR]

``run`` trains one bench.strong_scaling run per (arm, training-set size) that its records file does not
hold yet, each with a checkpoint per epoch, so a run stopped by the end of a session continues from its
last epoch when the same command is given again. Arms: ``plain`` (the study's three channels, no
augmentation), ``augment`` (``--augment all``), ``btag`` (``--btag-channel``), ``btag_augment``; the b-tag
arms train only at ``--btag-sizes`` (default: the largest size), after the other arms' points. Every run
uses the same split (``--split 0.55,0.1,0.35`` and one seed), so the test events are the same for every point
and the training sets are nested random subsets (bench/runner/sampler.py). The recipe: Adam at 1e-3, a
global batch of 256, a warm-up of one epoch then a cosine decay, the epoch of lowest validation loss kept
(10,000 validation events, a random subset of the split's 20,000: validation after every epoch would
otherwise cost a third of the training); epochs: ``--epochs-budget`` images over the size, between 8 and
40. Measured on the project's 2-core Zen 4 at bf16 (plain, 5,000 events, nothing else running): 240 training
images/s, and about 33 s an epoch outside training (the 10,000 validation events scored at fp32, the
checkpoint); so about 4.3 hours for each of the plain and augment arms at the default sizes and 1.1 hours
for the b-tag point at 110,000.

``rescore`` re-scores, with ``bench.evaluate`` on the same test split, the saved model of each recorded point
whose record lacks a field of the comparison added after it ran (today: the ``no_nb_*`` comparison with the
cuts without Nb >= 3), into ``physics/<arm>-<size>/physics.json``; ``report`` takes those fields from there and
checks that the re-scored AUC is the record's.

``report`` reads the records and writes ``learning_curve.md``, ``learning_curve.csv`` and
``learning_curve.png`` / ``.svg``: test AUC and the signal-efficiency ratio CNN / cuts at the cuts'
background efficiency (Poisson-bootstrap error, the unweighted background counts; and the ratio to the cuts
without their Nb >= 3 step, which see only what a three-channel image holds) against the training
events, one line per arm, and per arm the fit of the ratio against log10(training events) with the
number of events where it crosses 1 (``crossing``); per arm a power law of the test error 1 - AUC in the
training events, with the events it needs to reach AUC 0.985 and the study's 0.9914 (``fit_auc``); and,
where a b-tag arm and its three-channel twin share a size, the part of the three-channel arm's gap to the
cuts (1 - ratio) that the b-tag channel closes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from data.errors import fail
from data.files import WriteError

ARMS = {"plain": [], "augment": ["--augment", "all"], "btag": ["--btag-channel"],
        "btag_augment": ["--btag-channel", "--augment", "all"]}
SIZES = (5000, 10000, 20000, 50000, 110000)
RECIPE = ["--image-size", "64", "--global-batch", "256", "--lr", "1e-3", "--lr-warmup-epochs", "1",
          "--lr-decay", "cosine", "--keep", "best", "--bn-momentum", "0.1", "--val-events", "10000",
          "--split", "0.55,0.1,0.35", "--seed", "41"]
MIN_EPOCHS, MAX_EPOCHS = 8, 40


def epochs_for(size: int, budget: int) -> int:
    """Epochs of a run on ``size`` training events: ``budget`` images over the size, in [8, 40]."""
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(budget / size))))


def arm_of(rec: dict) -> str:
    """The arm a record belongs to, from its configuration."""
    cfg = rec.get("config", {})
    btag, aug = bool(cfg.get("btag_channel")), cfg.get("augment", "none") not in ("none", "")
    return {(False, False): "plain", (False, True): "augment", (True, False): "btag",
            (True, True): "btag_augment"}[btag, aug]


def train_size(rec: dict) -> int:
    return int(rec["data"]["split"]["train"])


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def point_tag(arm: str, size: int) -> str:
    """The name of one point's checkpoint, model and re-scoring: ``<arm>-<size>``."""
    return f"{arm}-{size}"


def model_file(out: Path, tag: str) -> Path:
    """The --save-model file of point ``tag`` under the run folder ``out``."""
    return out / "models" / f"{tag}.pt"


def run_command(data: str, arm: str, size: int, epochs: int, out: Path, python: str = sys.executable) -> list[str]:
    """The bench.strong_scaling command line of one point."""
    tag = point_tag(arm, size)
    return [python, "-m", "bench.strong_scaling", "--data", data, *RECIPE, *ARMS[arm], "--train-events",
            str(size), "--epochs", str(epochs), "--out", str(out / "records.jsonl"),
            "--checkpoint", str(out / "checkpoints" / f"{tag}.pt"), "--resume",
            "--save-model", str(model_file(out, tag))]


def todo(records: list[dict], arms: list[str], sizes: list[int],
         btag_sizes: list[int] | None = None) -> list[tuple[str, int]]:
    """(arm, size) points without a record yet, smallest first, the arms taking turns; the b-tag arms at
    ``btag_sizes`` (default: the largest of ``sizes``) after every other arm's points."""
    done = {(arm_of(r), train_size(r)) for r in records}
    first = [a for a in arms if not a.startswith("btag")]
    later = [a for a in arms if a.startswith("btag")]
    btag_sizes = btag_sizes if btag_sizes is not None else [max(sizes)]
    points = [(arm, size) for size in sorted(sizes) for arm in first]
    points += [(arm, size) for size in sorted(btag_sizes) for arm in later]
    return [pt for pt in points if pt not in done]


TWIN = {"btag": "plain", "btag_augment": "augment"}


def btag_gains(rows: list[dict]) -> list[dict]:
    """Per b-tag row with a three-channel twin (``TWIN``) at its size: both ratios and errors and ``closed``,
    (ratio_btag - ratio_twin) / (1 - ratio_twin), the part of the twin's gap to the cuts the fourth channel
    closes (None when the twin is not below 1). Same test events for both, so the ratios' errors are
    correlated and their quadrature sum ``diff_err`` overstates the difference's."""
    by = {(r["arm"], r["train_events"]): r for r in rows}
    out = []
    for r in rows:
        twin = by.get((TWIN.get(r["arm"]), r["train_events"]))
        if twin is None or r["eff_ratio"] is None or twin["eff_ratio"] is None:
            continue
        gap = 1.0 - twin["eff_ratio"]
        diff = r["eff_ratio"] - twin["eff_ratio"]
        err = math.hypot(r["eff_ratio_err"] or 0.0, twin["eff_ratio_err"] or 0.0)
        out.append({"arm": r["arm"], "twin": twin["arm"], "train_events": r["train_events"],
                    "ratio": r["eff_ratio"], "twin_ratio": twin["eff_ratio"], "diff": diff, "diff_err": err,
                    "closed": diff / gap if gap > 0 else None})
    return out


def _line(x, y, e, scale_always: bool):
    """Weighted least squares of y = a + b x (weights 1 / e^2): the coefficients, their covariance (scaled by
    the reduced chi-square, always or only when it exceeds 1) and the reduced chi-square."""
    A = np.column_stack([np.ones_like(x), x]) / e[:, None]
    coef, *_ = np.linalg.lstsq(A, y / e, rcond=None)
    chi2 = float(((A @ coef - y / e) ** 2).sum()) / (len(x) - 2) if len(x) > 2 else float("nan")
    cov = np.linalg.inv(A.T @ A) * (chi2 if scale_always else max(chi2, 1.0))
    return coef, cov, chi2


def _reach_68(coef, cov, level: float, draws: int, seed: int):
    """The 16th and 84th percentiles of N = 10^((level - a) / b) over draws of (a, b) from the fit's Gaussian,
    draws with b <= 0 counted as never reaching ``level`` (None at an end past every finite draw)."""
    ab = np.random.default_rng(seed).multivariate_normal(coef, cov, draws)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        n = np.where(ab[:, 1] > 0, 10 ** ((level - ab[:, 0]) / ab[:, 1]), np.inf)
    lo, hi = np.percentile(n, [16, 84], method="nearest")  # no interpolation with infinities
    return [float(lo) if np.isfinite(lo) else None, float(hi) if np.isfinite(hi) else None]


def fit_crossing(sizes, ratios, errors, draws: int = 4000, seed: int = 0) -> dict:
    """Weighted least squares of ratio = a + b log10(N) (weights 1 / error^2) and where it reaches 1.

    Returns ``a``, ``b``, their covariance ``cov`` (scaled by the reduced chi-square when it exceeds 1),
    ``crossing`` (N at ratio 1, None when the slope is not positive or the fit has fewer than 3 points) and
    ``crossing_68`` (the 16th and 84th percentiles of N over ``draws`` draws of (a, b) from the fit's
    Gaussian, those with b <= 0 counted as never crossing: an upper end of None means more than 16% never
    cross)."""
    x = np.log10(np.asarray(sizes, np.float64))
    y, e = np.asarray(ratios, np.float64), np.asarray(errors, np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(e) & (e > 0)
    x, y, e = x[ok], y[ok], e[ok]
    if len(x) < 3:
        return {"a": None, "b": None, "cov": None, "crossing": None, "crossing_68": None, "points": int(len(x))}
    coef, cov, chi2 = _line(x, y, e, scale_always=False)
    a, b = float(coef[0]), float(coef[1])
    return {"a": a, "b": b, "cov": cov.tolist(), "chi2_per_dof": chi2, "points": int(len(x)),
            "crossing": 10 ** ((1 - a) / b) if b > 0 else None,
            "crossing_68": _reach_68(coef, cov, 1.0, draws, seed)}


AUC_TARGETS = (0.985, 0.9914)  # the reference run's bar, and the study's 64x64 test AUC (docs/evaluate.md)


def fit_auc(sizes, aucs, targets=AUC_TARGETS, draws: int = 4000, seed: int = 0) -> dict:
    """Power law of the test error 1 - AUC in the training events: log10(1 - AUC) = c + d log10(N), least
    squares with equal weights (the AUC's own error on 70,000 test events, about 5e-4, is below the points'
    scatter about any line, so the residuals set the covariance: scaled by the residual variance). Returns
    ``c``, ``d``, ``cov``, ``points`` and per target AUC ``reach[str(target)]`` = {``n``: N where the fitted
    AUC reaches it (None when d >= 0 or fewer than 3 points), ``n_68``: its 16th / 84th percentiles over
    ``draws`` draws of (c, d)}."""
    x = np.log10(np.asarray(sizes, np.float64))
    err = 1.0 - np.asarray(aucs, np.float64)
    ok = np.isfinite(x) & np.isfinite(err) & (err > 0)
    x, y = x[ok], np.log10(err[ok])
    if len(x) < 3:
        return {"c": None, "d": None, "cov": None, "points": int(len(x)),
                "reach": {str(t): {"n": None, "n_68": None} for t in targets}}
    coef, cov, _ = _line(x, y, np.ones_like(x), scale_always=True)
    c, d = float(coef[0]), float(coef[1])
    reach = {}
    for t in targets:
        level = math.log10(1.0 - t)
        # the fit falls in N, so flip signs to reuse the rising-line percentiles: -y = -c + (-d) x
        reach[str(t)] = {"n": 10 ** ((level - c) / d) if d < 0 else None,
                         "n_68": _reach_68(-coef, cov, -level, draws, seed)}
    return {"c": c, "d": d, "cov": cov.tolist(), "points": int(len(x)), "reach": reach}


def later_fields() -> tuple[str, ...]:
    """The comparison's fields added after the first points were recorded: bench.physics.Comparison's
    ``no_nb_*``."""
    from bench.physics import Comparison

    return tuple(f.name for f in dataclasses.fields(Comparison) if f.name.startswith("no_nb_"))


def tag_of(rec: dict) -> str:
    return point_tag(arm_of(rec), train_size(rec))


def needs_rescore(rec: dict) -> bool:
    return "no_nb_eff_ratio" not in (rec.get("physics") or {})


def rescore_command(rec: dict, out: Path, python: str = sys.executable) -> list[str]:
    tag = tag_of(rec)
    return [python, "-m", "bench.evaluate", "--model-weights", str(model_file(out, tag)),
            "--labels", tag, "--out", str(out / "physics" / tag)]


def with_rescored(records: list[dict], folder: Path) -> list[dict]:
    """``records`` with ``later_fields`` taken from ``folder/<tag>/physics.json`` where a record lacks them.
    Raises ValueError when that file's AUC is not the record's test AUC (another model or split)."""
    out, later = [], later_fields()
    for rec in records:
        path = folder / tag_of(rec) / "physics.json"
        if needs_rescore(rec) and path.is_file():
            (entry,) = json.loads(path.read_text())
            if not math.isclose(entry["auc"], rec["test_auc"], rel_tol=0, abs_tol=1e-6):
                raise ValueError(f"{path}: AUC {entry['auc']:.6f}, but the record of {tag_of(rec)} has test AUC "
                                 f"{rec['test_auc']:.6f}: not the same model or test split")
            rec = {**rec, "physics": {**rec["physics"], **{k: entry.get(k) for k in later}}}
        out.append(rec)
    return out


def table(records: list[dict]) -> list[dict]:
    """One row per record: arm, training events, epochs, kept epoch, test AUC, the ratio and its error,
    the unweighted background counts, the training time."""
    rows = []
    for r in records:
        p = r.get("physics") or {}
        rows.append({"arm": arm_of(r), "train_events": train_size(r), "epochs": len(r.get("auc", [])),
                     "kept_epoch": r.get("kept_epoch"), "test_auc": r.get("test_auc"),
                     "eff_ratio": p.get("eff_ratio"), "eff_ratio_err": p.get("eff_ratio_err"),
                     "no_nb_eff_ratio": p.get("no_nb_eff_ratio"), "no_nb_eff_ratio_err": p.get("no_nb_eff_ratio_err"),
                     "cut_background_events": p.get("cut_background_events"),
                     "cnn_background_events": p.get("cnn_background_events"),
                     "train_s": sum(r.get("epoch_s", [])) + (r.get("warmup_epoch_s") or 0.0)})
    return sorted(rows, key=lambda row: (row["arm"], row["train_events"]))


def _fmt(v, spec=".4g"):
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _no_nb(row: dict) -> str:
    if row.get("no_nb_eff_ratio") is None:
        return "n/a"
    err = row.get("no_nb_eff_ratio_err")
    return f"{row['no_nb_eff_ratio']:.3f}" + ("" if err is None else f" +- {err:.3f}")


def markdown(rows: list[dict], fits: dict, gains: list[dict] | None = None, auc_fits: dict | None = None) -> str:
    head = ("| arm | training events | epochs | kept epoch | test AUC | eff. ratio CNN / cuts | +- | "
            "bkg. events in SR | bkg. events at CNN WP | ratio to the cuts without Nb >= 3 | training time (s) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['train_events']:,} | {r['epochs']} | {r['kept_epoch']} | "
                     f"{_fmt(r['test_auc'])} | {_fmt(r['eff_ratio'], '.3f')} | {_fmt(r['eff_ratio_err'], '.3f')} | "
                     f"{r['cut_background_events']} | {r['cnn_background_events']} | {_no_nb(r)} | "
                     f"{_fmt(r['train_s'], '.0f')} |")
    lines.append("")
    last = [r for r in rows if r["kept_epoch"] is not None and r["kept_epoch"] == r["epochs"] - 1]
    for r in last:
        lines.append(f"* {r['arm']} at {r['train_events']:,}: the kept epoch is the last one, so the validation "
                     f"loss was still falling: more epochs may still raise this point.")
    for arm, f in fits.items():
        if f["crossing"] is None:
            why = "fewer than 3 points" if f["points"] < 3 else f"slope {f['b']:+.3f} per decade: no crossing"
            lines.append(f"* {arm}: the ratio does not reach 1 on the fit ({why}).")
        else:
            lo, hi = f["crossing_68"]
            lines.append(f"* {arm}: ratio = {f['a']:.3f} + {f['b']:.3f} log10(N); reaches 1 at N = "
                         f"{f['crossing']:,.0f} training events (68%: {_fmt(lo, ',.0f')} to "
                         f"{_fmt(hi, ',.0f') if hi is not None else 'never'}).")
    for arm, f in (auc_fits or {}).items():
        if f["d"] is None:
            lines.append(f"* {arm}: no power-law fit of 1 - AUC (fewer than 3 points).")
            continue
        reach = "; ".join(
            f"AUC {t} at N = {_fmt(r['n'], ',.0f')} (68%: {_fmt(r['n_68'][0], ',.0f')} to "
            f"{_fmt(r['n_68'][1], ',.0f') if r['n_68'][1] is not None else 'never'})" for t, r in f["reach"].items())
        lines.append(f"* {arm}: 1 - AUC = {10 ** f['c']:.3g} N^({f['d']:.3f}); {reach}.")
    for g in gains or []:
        closed = ("" if g["closed"] is None else
                  f"; it closes {100 * g['closed']:.0f}% of the {g['twin']} arm's gap to the cuts")
        lines.append(f"* {g['arm']} against {g['twin']} at {g['train_events']:,} training events: ratio "
                     f"{g['ratio']:.3f} against {g['twin_ratio']:.3f}, a difference of {g['diff']:+.3f} "
                     f"(+- {g['diff_err']:.3f} in quadrature, an upper bound: same test events){closed}.")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict], fits: dict, out: Path, auc_fits: dict | None = None) -> list[Path]:
    """Test AUC (left) and the efficiency ratio with its fit (right) against the training events, one colour
    per arm, the study's 64x64 figures and the cuts marked; in a style context of its own, so matplotlib's
    global settings are left as they were."""
    import seaborn as sns
    from matplotlib import cycler

    from reports.cnn_vs_cuts import STUDY
    from reports.figures import plt, save_figure

    study_auc, study_ratio, _ = STUDY[64]
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook"),
          "axes.prop_cycle": cycler(color=sns.color_palette("deep")),
          "svg.hashsalt": "reports", "savefig.bbox": "tight"}
    with plt.rc_context(rc):
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        for arm in sorted({r["arm"] for r in rows}):
            mine = [r for r in rows if r["arm"] == arm and r["test_auc"] is not None]
            n = [r["train_events"] for r in mine]
            dots = left.plot(n, [r["test_auc"] for r in mine], "o", label=arm)
            g = (auc_fits or {}).get(arm)
            if g and g["d"] is not None:
                grid = np.logspace(np.log10(min(n)), np.log10(max(n)), 50)
                left.plot(grid, 1 - 10 ** (g["c"] + g["d"] * np.log10(grid)), "--", color=dots[0].get_color())
            ratio = [r["eff_ratio"] if r["eff_ratio"] is not None else np.nan for r in mine]
            err = [r["eff_ratio_err"] if r["eff_ratio_err"] is not None else np.nan for r in mine]
            line = right.errorbar(n, ratio, yerr=err, fmt="o", capsize=3, label=arm)
            f = fits.get(arm)
            if f and f["a"] is not None:
                grid = np.logspace(np.log10(min(n)), np.log10(max(max(n), f["crossing"] or 0) * 1.2), 50)
                right.plot(grid, f["a"] + f["b"] * np.log10(grid), "--", color=line[0].get_color())
        left.axhline(study_auc, color="grey", ls=":", label="the study (64x64, ~450k events)")
        right.axhline(1.0, color="black", lw=1, label="the cuts")
        right.axhline(study_ratio, color="grey", ls=":", label="the study")
        for ax, what in ((left, "test AUC"), (right, "signal-efficiency ratio CNN / cuts")):
            ax.set_xscale("log")
            ax.set_xlabel("training events")
            ax.set_ylabel(what)
            ax.legend(fontsize=8)
        return save_figure(fig, out, "learning_curve")


def report(records: list[dict], out: Path) -> dict:
    """Write the table, the CSV, the figure and ``learning_curve.json`` into ``out``; returns the fits."""
    import pandas as pd

    from data.files import write_text

    rows = table(records)
    fits, auc_fits = {}, {}
    for arm in sorted({r["arm"] for r in rows}):
        mine = [r for r in rows if r["arm"] == arm]
        n = [r["train_events"] for r in mine]
        fits[arm] = fit_crossing(n, [np.nan if r["eff_ratio"] is None else r["eff_ratio"] for r in mine],
                                 [np.nan if r["eff_ratio_err"] is None else r["eff_ratio_err"] for r in mine])
        auc_fits[arm] = fit_auc(n, [np.nan if r["test_auc"] is None else r["test_auc"] for r in mine])
    gains = btag_gains(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "learning_curve.md", markdown(rows, fits, gains, auc_fits))
    write_text(out / "learning_curve.csv", pd.DataFrame(rows).to_csv(index=False))
    write_text(out / "learning_curve.json", json.dumps({"rows": rows, "fits": fits, "auc_fits": auc_fits,
                                                         "btag": gains}, indent=1) + "\n")
    figure(rows, fits, out, auc_fits)
    return fits


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reports.learning_curve", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the points not recorded yet (resumable)")
    r.add_argument("--data", required=True, help="the study store (data.generation.study)")
    r.add_argument("--out", default="results/learning-curve", help="folder of records, checkpoints, models")
    r.add_argument("--sizes", default=",".join(map(str, SIZES)), help="training-set sizes, comma separated")
    r.add_argument("--arms", default="plain,augment,btag", help=f"comma separated, from {', '.join(ARMS)}")
    r.add_argument("--btag-sizes", default="", help="the b-tag arms' sizes, comma separated (default: the "
                   "largest of --sizes); they train after the other arms' points")
    r.add_argument("--epochs-budget", type=int, default=600_000,
                   help=f"training images per run: epochs = budget / size, in [{MIN_EPOCHS}, {MAX_EPOCHS}]")
    r.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    c = sub.add_parser("rescore", help="re-score recorded points that lack a later comparison field")
    c.add_argument("--out", default="results/learning-curve", help="the run's folder (records, models)")
    g = sub.add_parser("report", help="the table, figure and fits of the records")
    g.add_argument("--records", default="results/learning-curve/records.jsonl")
    g.add_argument("--out", default="results/learning-curve")
    return p


def _sizes(parser, text: str, flag: str = "--sizes") -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        parser.error(f"{flag} {text!r}: not comma-separated whole numbers")
    if not sizes or min(sizes) <= 0:
        parser.error(f"{flag} {text!r}: each size must be positive")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command == "rescore":
        return rescore(parser, Path(a.out))
    if a.command == "report":
        path = Path(a.records)
        if not path.is_file():
            parser.error(f"--records {a.records}: no such file")
        records = read_records(path)
        if not records:
            parser.error(f"--records {a.records}: holds no record")
        try:
            fits = report(with_rescored(records, path.parent / "physics"), Path(a.out))
        except (WriteError, ValueError) as exc:
            return fail(str(exc))
        print((Path(a.out) / "learning_curve.md").read_text(), end="")
        return 0 if fits else 1
    sizes = _sizes(parser, a.sizes)
    btag_sizes = _sizes(parser, a.btag_sizes, "--btag-sizes") if a.btag_sizes else None
    arms = a.arms.split(",")
    bad = [x for x in arms if x not in ARMS]
    if bad:
        parser.error(f"--arms: unknown arm {bad[0]!r}; choose from {', '.join(ARMS)}")
    if a.epochs_budget <= 0:
        parser.error(f"--epochs-budget must be positive, got {a.epochs_budget}")
    if not Path(a.data).is_file():
        parser.error(f"--data {a.data}: no such file")
    out = Path(a.out)
    for sub in ("checkpoints", "models"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for arm, size in todo(read_records(out / "records.jsonl"), arms, sizes, btag_sizes):
        cmd = run_command(a.data, arm, size, epochs_for(size, a.epochs_budget), out)
        print(" ".join(cmd), flush=True)
        if a.dry_run:
            continue
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            return fail(f"the {arm} run on {size} training events exited {rc}; run the same command to continue it")
    return 0


def rescore(parser, out: Path) -> int:
    """Run bench.evaluate for each recorded point that needs it (``needs_rescore``) and has no re-scoring yet."""
    path = out / "records.jsonl"
    if not path.is_file():
        parser.error(f"--out {out}: no records.jsonl there")
    for rec in read_records(path):
        if not needs_rescore(rec) or (out / "physics" / tag_of(rec) / "physics.json").is_file():
            continue
        model = model_file(out, tag_of(rec))
        if not model.is_file():
            return fail(f"{model}: the saved model of {tag_of(rec)} is missing; it cannot be re-scored")
        cmd = rescore_command(rec, out)
        print(" ".join(cmd), flush=True)
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            return fail(f"re-scoring {tag_of(rec)} exited {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
