"""The one-page report (``report.md``, ``index.html``).

The report is built once as a list of blocks (heading, paragraph, list, table, figure) and
rendered twice, so the markdown and the HTML page always say the same thing. The HTML page
needs no JavaScript and no network: styles are inline, figures are the PNG files next to it.
It opens with the answer (a summary per configuration), then the figures, then the full tables.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from data.files import clean_text, write_text
from reports.tables import html_table, markdown_table

CAPTIONS = {
    "speedup": "Speedup: epoch time at the smallest node count of each configuration (normally 1 node) over "
               "epoch time at N, log-log. Dotted: ideal linear speedup. Bars: min-max over repeats. "
               "Configurations measured at a single node count are left out.",
    "efficiency": "Parallel efficiency: speedup / (N / baseline nodes), in percent; 100 % is ideal.",
    "throughput": "Training throughput: images per second over all ranks (the slowest rank's epoch time sets "
                  "it). Bars: min-max over repeats.",
    "epoch_time": "Time per measured epoch (warm-up epoch excluded): median over repeats of each run's median "
                  "epoch, bars min-max over repeats.",
    "time_breakdown": "Where the time goes: compute, communication not hidden behind compute, and waiting for "
                      "data, per measured epoch on the slowest rank; 'other' is the rest of the epoch time.",
    "time_to_target": "Time to the target AUC: training time (warm-up included, validation excluded) until the "
                      "validation AUC first reached --target-auc, per rank count; the median over repeated runs, "
                      "the fastest and slowest dropped with five or more (as MLPerf Training scores runs). Bars: "
                      "min-max of the runs kept.",
    "auc": "Validation AUC after the last epoch (median over repeats), measured runs only: scaling out must "
           "not cost accuracy.",
    "gpu_comparison": "CPU cluster vs one GPU: GPU epoch time / cluster epoch time at N nodes; above 1 the cluster "
                      "is faster. Ticks on the ratio-1 line mark where the cluster overtakes the GPU "
                      "(interpolated linearly in log2 N).",
    "roc": "The CNN against the cut-based selection, on each run's test split with physical weights (like "
           "Figure 2, left, of the study): one ROC curve per run, the cut-based signal region as a square, "
           "each CNN's point at the region's background efficiency as a circle. Background efficiency on a log "
           "scale.",
    "cpu_use": "CPU use per rank count: CPU time (user + system) over wall time per torch thread during the "
               "measured epochs, median over ranks, the bar reaching down to the least-used rank. Dotted: 0.8, "
               "under which a run counts as oversubscribed. Ringed in red, here and in the speedup, efficiency and "
               "throughput figures: points with an oversubscribed run.",
}


# --- the report as blocks ------------------------------------------------------------------

def report_blocks(*, sources, figures, tables, summary, environment, problems, warnings, quick,
                  physics=None, projection=None) -> list[tuple]:
    """The report's content, in reading order, as (kind, ...) tuples: the answer first (``summary``, from
    ``reports.tables.summary_table``), then the figures, then every table. ``tables``: the compact views
    of ``reports.tables.write_tables``; ``environment``: ``reports.tables.environment_table``'s."""
    blocks = [("h1", "Strong-scaling report"),
              ("h2", "Summary"),
              ("p", "Per configuration, its largest rank count measured: speedup and parallel efficiency against "
                    "the smallest (vs N), throughput, validation AUC after the last epoch, whether the ranks had "
                    "the cores they needed, and where a CPU cluster overtakes one GPU."),
              ("table", *summary)]
    if quick:
        blocks.append(("p", "WARNING: some records are quick/smoke-sized runs (preset 'quick'): their numbers are "
                            "not benchmarks."))
    if "cpu_use" in tables and any(tables["cpu_use"][1]["oversubscribed runs"].fillna(0) > 0):
        blocks.append(("p", "WARNING: some runs were oversubscribed (more threads than cores, or ranks starved of "
                            "CPU): their times measure the competition for cores, not the scaling. See CPU use."))
    blocks += [("p", "Built from " + ", ".join(map(str, sources)) + ". Each point is the median over repeated runs "
                     "of each run's median measured-epoch time; error bars and 'spread' are the min-max of the "
                     "repeats. Projected points (from a performance model) are dashed and never mixed with "
                     "measurements."),
               ("h2", "Figures")]
    for name in figures:
        blocks.append(("figure", name, CAPTIONS[name]))
    blocks += _table_blocks(tables)
    if projection:
        blocks += _projection_blocks(*projection)
    if physics:
        blocks += _physics_blocks(physics)
    blocks += _gpu_blocks(tables)
    blocks += [("h2", "Environments"), ("table", *environment)]
    blocks.append(("h2", "Warnings"))
    items = [f"input {p}" for p in problems] + list(warnings)
    blocks.append(("list", items or ["none"]))
    return blocks


def _table_blocks(tables) -> list[tuple]:
    """The scaling table, and the CPU-use and time-to-target tables where there are any."""
    columns, table = tables["scaling"]
    blocks = [("h2", "Scaling table"),
              ("p", "Per configuration and node count. Speedup and efficiency are against baseline_nodes; "
                    "compute/comm/data-wait are seconds per epoch on the slowest rank; AUC after the last epoch. "
                    "Also in scaling.csv."),
              ("table", columns, table)]
    if "cpu_use" in tables:
        blocks += [("h2", "CPU use"),
                   ("p", "Per rank count, measured with psutil over the measured epochs: CPU time (user + system) "
                         "over wall time per torch thread, median and least over ranks (1: every thread busy all "
                         "the time); involuntary context switches per measured epoch (the most-switched rank). A "
                         "run is oversubscribed when a node's ranks x threads exceed its available cores, or when "
                         "its least-used rank ran under 0.8 cores per thread. Also in cpu_use.csv."),
                   ("table", *tables["cpu_use"])]
    if "time_to_target" in tables:
        blocks += [("h2", "Time to the target AUC"),
                   ("p", "Per configuration, target and rank count: runs, how many reached the target, the training "
                         "time to it (median of the runs that reached it, fastest and slowest dropped with five or "
                         "more, min and max of those kept), the epochs, and the speedup of the time to target "
                         "against the smallest rank count. Also in time_to_target.csv."),
                   ("table", *tables["time_to_target"])]
    return blocks


def _projection_blocks(crossover, ratio, coverage=None) -> list[tuple]:
    """The projected KNL-against-one-GPU answer: the crossover table, the 1024-node ratio table and, given
    ``coverage`` (bench.projection.published.coverage), how well the model reproduces the published points."""
    valid = [] if not coverage else [("p", (
        f"The model against {coverage['points']} published scaling points (python -m bench.projection --published; "
        f"docs/projection.md, 'Validation against published points'): within 25 % of {100 * coverage['out_of_sample']['within']:.0f} % of "
        f"them out of sample (each projected with the fits redone without it; {100 * coverage['in_sample']['within']:.0f} % "
        f"in sample); the bands cover {100 * coverage['out_of_sample']['covered']:.0f} % out of sample "
        f"({100 * coverage['in_sample']['covered']:.0f} % in sample). The KNL rate is fitted to the study's own "
        "25x, so the answer inherits it; docs/projection.md, 'Validation against published points', says what that leaves untested."))]
    return [("h2", "Projected: Nurion KNL nodes against one GPU"),
            ("p", "NOT MEASURED HERE: a projection of the performance model from published achieved training "
                  "rates and networks (python -m bench.projection --published; every figure and its source "
                  "in docs/projection.md). How many KNL nodes train an epoch as fast as one GPU, with the "
                  "band from every assumption at the cluster's good end (low) to the GPU's (high):"),
            ("table", *crossover),
            ("p", "One GPU's epoch time over 1024 KNL nodes' (above 1: the cluster is faster):"),
            ("table", *ratio)] + valid


def _physics_blocks(physics) -> list[tuple]:
    """The CNN against the cut-based selection (``physics``: its table)."""
    return [("h2", "CNN against the cut-based selection"),
            ("p", "At the CNN threshold whose background efficiency is the largest not above the signal "
                  "region's: the ratio of signal efficiencies and of s / sqrt(b), with bootstrap standard "
                  "deviations, and the unweighted background events behind them (a handful means a rough "
                  "ratio). The study: AUC 0.9914 (64x64) / 0.9903 (224x224), ratio 1.803 / 1.845, "
                  "significance ratio 1.2. Every column is in physics.csv."),
            ("table", *physics)]


def _gpu_blocks(tables) -> list[tuple]:
    """The CPU cluster against one GPU: its table, or why there is none."""
    blocks = [("h2", "CPU cluster vs one GPU")]
    if "gpu_comparison" in tables:
        blocks += [("p", "ratio = GPU epoch time / cluster epoch time (>1: the cluster is faster). crossover: the "
                         "node count at which the cluster overtakes the GPU, interpolated linearly in log2 N "
                         "between the bracketing points ('<= N': already faster at the smallest N). For scale: "
                         "the reference study reports 1024 KNL nodes at 25x one TITAN RTX. Also in "
                         "gpu_comparison.csv and gpu_ratio.csv (every N)."),
                   ("table", *tables["gpu_comparison"])]
    else:
        blocks.append(("p", "No comparison: needs single-GPU records (device 'cuda', world_size 1) and CPU records "
                            "of the same model, image_size and global_batch."))
    return blocks


def to_markdown(blocks) -> str:
    parts = []
    for kind, *args in blocks:
        if kind == "h1":
            parts.append(f"# {args[0]}")
        elif kind == "h2":
            parts.append(f"## {args[0]}")
        elif kind == "p":
            parts.append(args[0])
        elif kind == "list":
            parts.append("\n".join(f"- {item}" for item in args[0]))
        elif kind == "table":
            parts.append(markdown_table(*args))
        elif kind == "figure":
            name, caption = args
            parts.append(f"![{name}]({name}.png)\n\n{caption} ([SVG]({name}.svg))")
    return "\n\n".join(parts) + "\n"


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.85em;margin:1em 0}th,td{border:1px solid #bbb;padding:2px 6px}
th{background:#eee}td{text-align:right}figure{margin:1.5em 0}img{max-width:100%}
figcaption{font-size:0.9em;color:#444}.warn{color:#a00;font-weight:bold}"""


def _anchor(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def to_html(blocks) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(blocks[0][1])}</title><style>{STYLE}</style></head><body>"]
    for kind, *args in blocks:
        if kind == "h1":
            parts.append(f"<h1>{e(args[0])}</h1>")
        elif kind == "h2":
            parts.append(f'<h2 id="{_anchor(args[0])}">{e(args[0])}</h2>')
        elif kind == "p":
            cls = ' class="warn"' if args[0].startswith("WARNING") else ""
            parts.append(f"<p{cls}>{e(args[0])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in args[0]) + "</ul>")
        elif kind == "table":
            parts.append(html_table(*args))
        elif kind == "figure":
            name, caption = args
            parts.append(f'<figure><img src="{name}.png" alt="{e(name)}"><figcaption>{e(caption)} '
                         f'(<a href="{name}.svg">SVG</a>)</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_reports(out: Path, blocks) -> Path:
    """Write report.md and index.html into ``out``, each whole or not at all, without control characters;
    returns the path of index.html. Raises data.files.WriteError."""
    write_text(out / "report.md", clean_text(to_markdown(blocks)))
    index = out / "index.html"
    write_text(index, clean_text(to_html(blocks)))
    return index
