"""The CNN against the cut-based selection: the ROC figure (like Figure 2, left, of the study) and the table.

Input is plain data (the ``physics`` object of run records, or what ``bench.evaluate`` computes), so this
module needs neither torch nor MPI. Reference figures of the study are shown beside ours.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from data.files import write_text  # noqa: E402
from reports.analysis import plain  # noqa: E402
from reports.figures import save_figure  # noqa: E402
from reports.tables import markdown_table, write_csv  # noqa: E402

# The KISTI study (Kim et al., Section 3; docs/physics-reference.md, 'Published results'): AUC, signal-efficiency
# ratio at the cut's background efficiency, significance ratio; the false-positive rate of the comparison point.
STUDY = {64: (0.9914, 1.803, 1.2), 224: (0.9903, 1.845, 1.2)}
STUDY_FPR = 0.003503

COLUMNS = (("label", "run"), ("test_events", "test events"), ("auc", "AUC"),
           ("cut_signal_eff", "cut sig. eff."), ("cut_background_eff", "cut bkg. eff."),
           ("cnn_signal_eff", "CNN sig. eff."), ("cnn_background_eff", "CNN bkg. eff."),
           ("eff_ratio", "eff. ratio"), ("eff_ratio_err", "+-"), ("sig_ratio", "s/sqrt(b) ratio"),
           ("sig_ratio_err", "+- "), ("asimov_ratio", "Z_A ratio"),
           ("cut_s", "cut s"), ("cut_b", "cut b"), ("cnn_s", "CNN s"), ("cnn_b", "CNN b"),
           ("cut_background_events", "bkg. events in SR"), ("cnn_background_events", "bkg. events at CNN WP"),
           ("discovery_s", "s at 5 sigma"), ("discovery_b", "b at 5 sigma"), ("luminosity_fb", "lumi [fb^-1]"))


def _fmt(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def roc_figure(entries: list[dict], out: Path, name: str = "roc", title: str = "") -> list[Path]:
    """ROC curves (one per entry: ``label``, ``roc`` {fpr, tpr}, ``auc``) with the cut-based point(s).

    The background-efficiency axis is logarithmic: the comparison point sits near 1e-3 to 1e-2. Each CNN's
    point at the cuts' background efficiency is a circle of its colour, and its legend entry gives the ratio.
    Returns the written files (PNG and SVG).
    """
    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("paper", font_scale=1.2))
    rc.update({"svg.hashsalt": "reports", "savefig.bbox": "tight"})
    palette = sns.color_palette("colorblind", max(len(entries), 1))
    with plt.rc_context(rc):
        fig, ax = plt.subplots(figsize=(7, 5.5))
        cuts = {}
        for colour, e in zip(palette, entries):
            kind = e.get("classifier", "CNN")  # reports.bdt_baseline's entries: "BDT", named in their label
            auc = f", AUC {e['auc']:.4f}" if e.get("auc") is not None else ""
            if e.get("eff_ratio") is not None:
                err = e.get("eff_ratio_err")
                auc += f"; {kind}/cut signal eff. {e['eff_ratio']:.3g}" + (f" +- {err:.2g}" if err is not None else "")
            shown = e["label"] if "classifier" in e else f"CNN {e['label']}"
            ax.step(e["roc"]["fpr"], e["roc"]["tpr"], where="post", color=colour, lw=1.8, label=f"{shown}{auc}")
            if e.get("cut_background_eff") is not None:  # one marker per distinct cut-based point
                cuts[(round(e["cut_background_eff"], 12), round(e["cut_signal_eff"], 12))] = e
        lows = [min((f for f in e["roc"]["fpr"] if f > 0), default=1e-5) for e in entries]
        left = max(min(lows, default=1e-5), 1e-6)
        for colour, e in zip(palette, entries):  # each CNN at the cuts' background efficiency (0: left edge)
            if e.get("cnn_signal_eff") is not None and e.get("cnn_background_eff") is not None:
                ax.plot([max(e["cnn_background_eff"], left)], [e["cnn_signal_eff"]], "o", color=colour, ms=7,
                        mfc="white", mew=2, zorder=6, clip_on=False)
        for fpr, tpr in cuts:
            where = f"FPR {fpr:.3g}" if fpr > 0 else "no test background kept: drawn at the left edge"
            ax.plot([fpr if fpr > 0 else left], [tpr], "s", color="black", ms=9, zorder=5, clip_on=False,
                    label=f"cut-based signal region ({where}, TPR {tpr:.3g})")
        ax.axvline(STUDY_FPR, color="grey", ls=":", lw=1, label=f"the study's comparison point, FPR {STUDY_FPR}")
        ax.set_xscale("log")
        ax.set_xlim(left, 1.0)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("background efficiency = false-positive rate (weighted, log scale)")
        ax.set_ylabel("signal efficiency = true-positive rate (weighted)")
        ax.set_title(title or "CNN against the cut-based selection (test split, physical weights)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=9, frameon=False)
        return save_figure(fig, out, name)


def study_row(image_size: int) -> dict | None:
    ref = STUDY.get(image_size)
    if ref is None:
        return None
    return {"label": f"KISTI study, {image_size}x{image_size} (paper)", "auc": ref[0], "eff_ratio": ref[1],
            "sig_ratio": ref[2], "cut_background_eff": STUDY_FPR}


def write_tables(entries: list[dict], out: Path, name: str = "physics", image_size: int | None = None) -> list[Path]:
    """Markdown and CSV of the comparison, one row per entry, the study's row last (when it has one)."""
    rows = list(entries)
    ref = study_row(image_size) if image_size else None
    if ref:
        rows.append(ref)
    md = out / f"{name}.md"
    headers = [h for _, h in COLUMNS]
    write_text(md, markdown_table(headers, [{h: _fmt(r.get(k)) for k, h in COLUMNS} for r in rows]) + "\n")
    path = out / f"{name}.csv"
    keys = [k for k, _ in COLUMNS]
    write_csv(path, keys, [{k: "" if r.get(k) is None else str(r.get(k)) for k in keys} for r in rows])
    return [md, path]


def cut_flow_table(rows: list[dict]) -> str:
    """Markdown of a cut flow (bench.physics.cut_flow)."""
    columns = ("cut", "signal eff.", "background eff.", "signal events", "background events")
    return markdown_table(columns, [dict(zip(columns, (r["cut"], f"{r['signal_eff']:.4g}", f"{r['background_eff']:.4g}",
                                                        str(r["signal_events"]), str(r["background_events"]))))
                                    for r in rows])


# Columns of the comparison in the strong-scaling report (the CSV has them all).
REPORT_COLUMNS = ("run", "test events", "AUC", "eff. ratio", "s/sqrt(b) ratio", "bkg. events at CNN WP",
                  "bkg. events in SR")


def entries_from_frame(frame: pd.DataFrame, most: int = 12) -> list[dict]:
    """Comparison entries of the runs whose record carries one (``physics.roc``; real or synthetic data with
    jet quantities), from the runs' frame (``reports.frame``): the newest ``most`` of them, ordered by
    configuration and rank count. Each entry is the run's ``physics`` object (nested again, nulls as None)
    with ``label``, ``image_size`` and ``run_id``."""
    if "physics.roc.fpr" not in frame:
        return []
    usable = frame[frame["physics.roc.fpr"].map(lambda v: isinstance(v, list))]
    usable = usable.sort_values("timestamp", kind="stable", na_position="first").tail(most)
    configs = set(zip(usable["system"], usable["model"], usable["image_size"], usable["preset"]))
    usable = usable.assign(_system=usable["system"].astype(str)).sort_values(
        ["_system", "model", "image_size", "world_size"], kind="stable")
    physics = [c for c in usable.columns if c.startswith("physics.")]
    entries = []
    for _, r in usable.iterrows():
        label = f"{r['world_size']} rank(s)"
        if len(configs) > 1:
            label += f", {r['model']} {r['image_size']}px, {r['system']}"
        entry = {"label": label, "image_size": plain(r["image_size"]), "run_id": plain(r["run_id"])}
        for column in physics:
            if column.startswith("physics.roc."):
                entry.setdefault("roc", {})[column.removeprefix("physics.roc.")] = r[column]
            else:
                entry[column.removeprefix("physics.")] = plain(r[column])
        entries.append(entry)
    return entries


def report_table(entries: list[dict]) -> tuple[tuple, list[dict]]:
    """The compact view for the strong-scaling report: (columns, rows of strings)."""
    def pm(v, err):
        return "n/a" if v is None else f"{v:.3g}" + (f" +- {err:.2g}" if err is not None else "")
    rows = [{"run": e["label"], "test events": str(e["test_events"]), "AUC": _fmt(e["auc"]),
             "eff. ratio": pm(e["eff_ratio"], e.get("eff_ratio_err")),
             "s/sqrt(b) ratio": pm(e["sig_ratio"], e.get("sig_ratio_err")),
             "bkg. events at CNN WP": str(e["cnn_background_events"]),
             "bkg. events in SR": str(e["cut_background_events"])} for e in entries]
    return REPORT_COLUMNS, rows
