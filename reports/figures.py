"""Figures of a report, each written as PNG and SVG (matplotlib, seaborn's print style).

Every function takes the frames of ``reports.analysis`` (points with their scaling numbers, the GPU
comparison) and returns nothing but the files it wrote. Conventions, kept the same in every figure so
they read alike in print:
* node axis log2, ticked at the node counts measured;
* one colour and marker per configuration; projected series in the same colour, dashed,
  hollow markers, "(projected)" in the legend;
* fields that every series shares go in the title, the ones that differ in the legend;
* error bars are the min-max of the repeats (never a standard deviation of steps);
* a point with an oversubscribed run (its ranks short of cores, ``reports.analysis.CPU_COLUMNS``) is ringed
  in red in the speedup, efficiency, throughput and CPU-use figures.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator  # noqa: E402

from data.files import replaced  # noqa: E402
from reports.analysis import CONFIG_FIELDS, config_label, records_of, series_of  # noqa: E402

MARKERS = "osD^vP*Xhp<>"
PARTS = (("compute_s", "compute"), ("comm_s", "communication (not hidden)"),
         ("data_wait_s", "data wait"), ("other_s", "other (epoch - parts)"))
HATCHES = ("", "//", "..", "xx")


def _style():
    rc = dict(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("paper", font_scale=1.3))
    rc.update({"svg.hashsalt": "reports", "figure.dpi": 100, "savefig.bbox": "tight"})
    return plt.rc_context(rc)


class Styler:
    """Colour, marker and legend text per configuration, shared by all figures of a report."""

    def __init__(self, configs):
        configs = sorted(set(configs), key=lambda c: tuple(map(str, c)))
        palette = sns.color_palette("colorblind", max(len(configs), 1))
        self.look = {c: (palette[i % len(palette)], MARKERS[i % len(MARKERS)]) for i, c in enumerate(configs)}

    def split(self, configs):
        """(fields for the legend, text for the title): the shared fields go to the title."""
        configs = list(configs)
        varying = [f for i, f in enumerate(CONFIG_FIELDS) if len({c[i] for c in configs}) > 1]
        legend = ["system"] + [f for f in varying if f != "system"]
        legend.sort(key=CONFIG_FIELDS.index)
        common = [f for f in CONFIG_FIELDS if f not in legend]
        title = config_label(configs[0], common) if configs and common else ""
        return legend, title

    def kwargs(self, config, projected, label_fields, extra=""):
        colour, marker = self.look[config]
        label = config_label(config, label_fields) + extra + (" (projected)" if projected else "")
        if config[CONFIG_FIELDS.index("preset")] == "quick":
            label += " [quick: not a benchmark]"
        return dict(color=colour, marker=marker, label=label, linestyle="--" if projected else "-",
                    markerfacecolor="white" if projected else colour, markersize=7, linewidth=1.8, capsize=3)


def _node_axis(ax, nodes, label="Ranks (= nodes at one rank per node)"):
    nodes = sorted(set(nodes))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(nodes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    if nodes:
        ax.set_xlim(nodes[0] / 1.3, nodes[-1] * 1.3)
    ax.set_xlabel(f"{label} (log2 scale)")


def _log_y(ax, base=10):
    ax.set_yscale("log", base=base)
    if base == 10:  # 1-2-5 ticks: a decade apart is too sparse to read values off in print
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,g}"))


def _finish(fig, ax, title, subtitle, out: Path, name: str):
    if not ax.lines and not ax.containers:
        ax.text(0.5, 0.5, "nothing to show: no configuration has two or more node counts"
                if name in ("speedup", "efficiency") else "no data", transform=ax.transAxes, ha="center")
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""))
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    save_figure(fig, out, name)


def save_figure(fig, out: Path, name: str) -> list[Path]:
    """``fig`` as ``out/name.png`` (150 dpi) and ``out/name.svg`` (no date, so the same figure gives the same
    bytes), each whole or not at all (data.files.replaced); the figure is closed. Returns the paths. Raises
    data.files.WriteError."""
    paths = []
    try:
        for ext in ("png", "svg"):
            path = out / f"{name}.{ext}"
            with replaced(path) as tmp:
                fig.savefig(tmp, dpi=150 if ext == "png" else None, metadata={"Date": None} if ext == "svg" else None)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def _errorbar(ax, pts, y, lo, hi, **kw):
    ys = [p[y] for p in pts]
    err = [[max(v - p[lo], 0) for v, p in zip(ys, pts)], [max(p[hi] - v, 0) for v, p in zip(ys, pts)]]
    ax.errorbar([p["nodes"] for p in pts], ys, yerr=err, **kw)


def _series(rows) -> dict[tuple, list[dict]]:
    """``{(config, projected): [point dicts sorted by nodes]}`` of the points frame ``rows``."""
    return {key: records_of(pts) for key, pts in series_of(rows).items()}


def _ring_oversubscribed(ax, pts, y):
    """Ring in red the points of ``pts`` with an oversubscribed run (one legend entry per axes)."""
    flagged = [p for p in pts if p.get("oversubscribed_runs") and p.get(y) is not None]
    if not flagged:
        return
    label = None if getattr(ax, "_rings", False) else "oversubscribed run (see CPU use)"
    ax._rings = True
    ax.plot([p["nodes"] for p in flagged], [p[y] for p in flagged], linestyle="none", marker="o", markersize=15,
            markerfacecolor="none", markeredgecolor="#d62728", markeredgewidth=2, zorder=5, label=label)


def _multi(series):
    """Series with at least two node counts (a single point has no scaling to show)."""
    return {k: v for k, v in series.items() if len(v) > 1}


def speedup(rows, styler: Styler, out: Path):
    series = _multi(_series(rows))
    fields, common = styler.split(c for c, _ in series)
    bases = sorted({pts[0]["baseline_nodes"] for pts in series.values()})
    with _style():
        fig, ax = plt.subplots(figsize=(7, 4.8))
        nodes = [p["nodes"] for pts in series.values() for p in pts]
        for (config, projected), pts in series.items():
            base = pts[0]["baseline_nodes"]
            extra = f", baseline {base} nodes" if base != 1 else ""
            _errorbar(ax, pts, "speedup", "speedup_min", "speedup_max",
                      **styler.kwargs(config, projected, fields, extra))
            _ring_oversubscribed(ax, pts, "speedup")
        for base in bases:
            xs = [n for n in sorted(set(nodes)) if n >= base]
            ax.plot(xs, [n / base for n in xs], color="black", linestyle=":", linewidth=1.2,
                    label="ideal (linear)" if base == 1 else f"ideal from {base} nodes")
        _node_axis(ax, nodes)
        _log_y(ax, 2)
        ax.set_ylabel("Speedup over 1 node (T1 / TN)" if bases in ([1], []) else
                      "Speedup over the smallest node count\n(T_base / TN, base in legend)")
        _finish(fig, ax, "Strong scaling: speedup", common, out, "speedup")


def efficiency(rows, styler: Styler, out: Path):
    series = _multi(_series(rows))
    fields, common = styler.split(c for c, _ in series)
    with _style():
        fig, ax = plt.subplots(figsize=(7, 4.8))
        nodes = [p["nodes"] for pts in series.values() for p in pts]
        top = 110
        for (config, projected), pts in series.items():
            base = pts[0]["baseline_nodes"]
            ys = [100 * p["efficiency"] for p in pts]
            top = max(top, max(ys) + 10)
            kw = styler.kwargs(config, projected, fields, f", baseline {base} nodes" if base != 1 else "")
            kw.pop("capsize")
            ax.plot([p["nodes"] for p in pts], ys, **kw)
            _ring_oversubscribed(ax, [dict(p, efficiency_pct=y) for p, y in zip(pts, ys)], "efficiency_pct")
        ax.axhline(100, color="black", linestyle=":", linewidth=1.2, label="ideal (100 %)")
        _node_axis(ax, nodes)
        ax.set_ylim(0, top)
        ax.set_ylabel("Parallel efficiency (%)\nspeedup / (N / N_base)")
        _finish(fig, ax, "Strong scaling: parallel efficiency", common, out, "efficiency")


def _per_node_plot(rows, styler, out, name, title, y, lo, hi, ylabel, log=True, rings=False, lines=(), bottom=None):
    series = _series(rows[rows[y].notna()])
    fields, common = styler.split(c for c, _ in series)
    with _style():
        fig, ax = plt.subplots(figsize=(7, 4.8))
        nodes = [p["nodes"] for pts in series.values() for p in pts]
        for (config, projected), pts in series.items():
            kw = styler.kwargs(config, projected, fields)
            if lo:
                _errorbar(ax, pts, y, lo, hi, **kw)
            else:
                kw.pop("capsize")
                ax.plot([p["nodes"] for p in pts], [p[y] for p in pts], **kw)
            if rings:
                _ring_oversubscribed(ax, pts, y)
        for level, text in lines:
            ax.axhline(level, color="black", linestyle=":", linewidth=1.2, label=text)
        _node_axis(ax, nodes or [1])
        if log:
            _log_y(ax)
        if bottom is not None:
            ax.set_ylim(bottom=bottom)
        ax.set_ylabel(ylabel)
        _finish(fig, ax, title, common, out, name)


def throughput(rows, styler, out):
    _per_node_plot(rows, styler, out, "throughput", "Training throughput", "images_per_s",
                   "images_per_s_min", "images_per_s_max", "Throughput (images/s, all ranks; log scale)", rings=True)


def epoch_time(rows, styler, out):
    _per_node_plot(rows, styler, out, "epoch_time", "Time per epoch (median of repeats, min-max bars)",
                   "epoch_s", "epoch_s_min", "epoch_s_max", "Time per epoch (s, log scale)")


def time_to_target(points, styler, out):
    _per_node_plot(points, styler, out, "time_to_target", "Time to the target AUC (MLPerf median of repeats)",
                   "time_to_target_s", "time_to_target_s_min", "time_to_target_s_max",
                   "Training time to the target AUC (s, log scale)")


def auc(rows, styler, out):
    # A performance model projects time, not accuracy: projected points have no AUC to show.
    rows = rows[~rows["projected"]]
    _per_node_plot(rows, styler, out, "auc", "Validation AUC after the last epoch", "auc", None, None,
                   "AUC (last epoch, median of repeats)", log=False)


def cpu_use(rows, styler, out):
    """Utilisation per torch thread against ranks: median over ranks, bar down to the least-used rank."""
    rows = rows[~rows["projected"]].assign(util_per_thread_max=rows["util_per_thread_median"])
    _per_node_plot(rows, styler, out, "cpu_use", "CPU use per thread (CPU time / wall time, measured epochs)",
                   "util_per_thread_median", "util_per_thread_min", "util_per_thread_max",
                   "CPU time / wall time per thread\n(median over ranks, bar: least-used rank)", log=False,
                   rings=True, lines=((0.8, "0.8: oversubscribed below"),), bottom=0)


def time_breakdown(rows, styler, out):
    """One panel per series: stacked bars of compute / communication / data wait per node count."""
    series = _series(rows)
    n = max(len(series), 1)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 3.6 * nrows), squeeze=False)
        for ax in axes.flat[len(series):]:
            ax.set_visible(False)
        for ax, ((config, projected), pts) in zip(axes.flat, series.items()):
            xs = list(range(len(pts)))
            bottom = [0.0] * len(pts)
            for (key, name), hatch, colour in zip(PARTS, HATCHES, sns.color_palette("colorblind", 4)):
                if key == "other_s":
                    vals = [max(p["epoch_s"] - sum(p[k] or 0 for k, _ in PARTS[:3]), 0) for p in pts]
                else:
                    vals = [p[key] or 0 for p in pts]
                ax.bar(xs, vals, width=0.7, bottom=bottom, color=colour, hatch=hatch, edgecolor="black", linewidth=0.5,
                       label=name)
                bottom = [b + v for b, v in zip(bottom, vals)]
            ax.set_xticks(xs, [str(p["nodes"]) for p in pts])
            pad = max(0, (4 - len(pts)) / 2)  # keep bars of a one- or two-point panel from filling it
            ax.set_xlim(-0.6 - pad, len(pts) - 0.4 + pad)
            ax.set_xlabel("Ranks (= nodes at one rank per node)")
            ax.set_ylabel("Time per epoch (s)")
            ax.set_title(config_label(config) + (" (projected)" if projected else ""), fontsize="medium")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.suptitle("Where the time goes (slowest rank, per measured epoch, median of repeats)")
        fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, bbox_to_anchor=(0.5, -0.02))
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        save_figure(fig, out, "time_breakdown")


def gpu_comparison(ratios, summary, styler: Styler, out: Path):
    """Ratio GPU epoch time / CPU epoch time against nodes; above 1 the cluster is faster."""
    ratios, summary = records_of(ratios), records_of(summary)
    pairs: dict[tuple, list[dict]] = {}
    for r in ratios:
        pairs.setdefault((r["cpu_config"], r["gpu_config"], r["projected"]), []).append(r)
    fields, common = styler.split(k[0] for k in pairs)
    with _style():
        fig, ax = plt.subplots(figsize=(7, 4.8))
        nodes = [r["nodes"] for r in ratios]
        crossing = {(s["cpu_config"], s["gpu_config"], s["projected"]): s["crossover"] for s in summary}
        for (cpu, gpu, projected), rs in pairs.items():
            kw = styler.kwargs(cpu, projected, fields,
                               f" vs one {gpu[0]} GPU; overtakes at N {crossing[(cpu, gpu, projected)]}")
            kw.pop("capsize")
            ax.plot([r["nodes"] for r in rs], [r["ratio"] for r in rs], **kw)
        for s in summary:
            # The crossover value goes in the legend (labels at the line would collide).
            if s["crossover_nodes"] is not None and not s["crossover"].startswith("<="):
                ax.plot([s["crossover_nodes"]], [1], marker="|", markersize=20, markeredgewidth=2.5,
                        color=styler.look[s["cpu_config"]][0], linestyle="none")
        ax.axhline(1, color="black", linestyle=":", linewidth=1.2, label="one GPU (ratio 1)")
        _node_axis(ax, nodes or [1])
        _log_y(ax, 2)
        ax.set_ylabel("GPU epoch time / cluster epoch time\n(> 1: cluster faster; log scale)")
        _finish(fig, ax, "CPU cluster vs one GPU", common, out, "gpu_comparison")


def all_figures(rows, summary, ratios, out: Path, targets=None) -> list[str]:
    """Write every figure into ``out``; returns their names (each has .png and .svg). ``targets``: the points
    of ``reports.analysis.time_to_target_points`` (their figure is drawn when there are any)."""
    points = [rows] + ([targets] if targets is not None and len(targets) else [])
    styler = Styler([r["config"] for frame in points for r in records_of(frame)])
    names = []
    for name, draw in (("speedup", speedup), ("efficiency", efficiency), ("throughput", throughput),
                       ("epoch_time", epoch_time), ("time_breakdown", time_breakdown), ("auc", auc),
                       ("cpu_use", cpu_use)):
        if name == "auc" and not rows["auc"].notna().any():
            continue
        if name == "cpu_use" and not rows["util_per_thread_median"].notna().any():
            continue
        draw(rows, styler, out)
        names.append(name)
    if len(ratios):
        gpu_comparison(ratios, summary, styler, out)
        names.append("gpu_comparison")
    if targets is not None and len(targets) and targets["time_to_target_s"].notna().any():
        time_to_target(targets, styler, out)
        names.insert(1, "time_to_target")  # beside the per-epoch speedup
    return names
