"""Tables (CSV, markdown) and the one-page report (``report.md``, ``index.html``).

The report is built once as a list of blocks (heading, paragraph, list, table, figure) and
rendered twice, so the markdown and the HTML page always say the same thing. The HTML page
needs no JavaScript and no network: styles are inline, figures are the PNG files next to it.
"""
from __future__ import annotations

import csv
import html
from pathlib import Path

from reports.analysis import CONFIG_FIELDS

SCALING_COLUMNS = (
    *CONFIG_FIELDS, "projected", "nodes", "world_size", "runs", "epoch_s_median", "epoch_s_min", "epoch_s_max",
    "spread_pct", "baseline_nodes", "speedup", "efficiency", "images_per_s", "compute_s", "comm_s",
    "data_wait_s", "auc",
)
GPU_COLUMNS = (
    *CONFIG_FIELDS, "projected", "gpu_system", "gpu_backend", "gpu_preset", "gpu_epoch_s", "gpu_runs",
    "crossover_nodes", "crossover", "largest_nodes", "ratio_at_largest",
)
RATIO_COLUMNS = (*CONFIG_FIELDS, "projected", "gpu_system", "nodes", "cpu_epoch_s", "gpu_epoch_s", "ratio")

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
    "auc": "Validation AUC after the last epoch (median over repeats), measured runs only: scaling out must "
           "not cost accuracy.",
    "gpu_comparison": "CPU cluster vs one GPU: GPU epoch time / cluster epoch time at N nodes; above 1 the cluster "
                      "is faster. Ticks on the ratio-1 line mark where the cluster overtakes the GPU "
                      "(interpolated linearly in log2 N).",
    "roc": "The CNN against the cut-based selection, on each run's test split with physical weights (like "
           "Figure 2, left, of the study): one ROC curve per run, the cut-based signal region as a square, "
           "each CNN's point at the region's background efficiency as a circle. Background efficiency on a log "
           "scale.",
}


def _fmt(value, digits: int = 6) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _human(value) -> str:
    """Numbers for people: 4 significant digits, thousands grouped rather than in exponent form."""
    if isinstance(value, float) and not isinstance(value, bool) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return _fmt(value, 4)


def scaling_table(rows) -> list[dict]:
    out = []
    for r in rows:
        row = dict(zip(CONFIG_FIELDS, r["config"]))
        row.update(projected=r["projected"], nodes=r["nodes"], world_size="/".join(map(str, r["world_sizes"])),
                   runs=r["runs"], epoch_s_median=r["epoch_s"], epoch_s_min=r["epoch_s_min"],
                   epoch_s_max=r["epoch_s_max"], spread_pct=100 * r["spread"], baseline_nodes=r["baseline_nodes"],
                   speedup=r["speedup"], efficiency=r["efficiency"], images_per_s=r["images_per_s"],
                   compute_s=r["compute_s"], comm_s=r["comm_s"], data_wait_s=r["data_wait_s"], auc=r["auc"])
        out.append(row)
    return out


def gpu_table(summary) -> list[dict]:
    out = []
    for s in summary:
        row = dict(zip(CONFIG_FIELDS, s["cpu_config"]))
        gpu = dict(zip(CONFIG_FIELDS, s["gpu_config"]))
        row.update(projected=s["projected"], gpu_system=gpu["system"], gpu_backend=gpu["backend"],
                   gpu_preset=gpu["preset"], gpu_epoch_s=s["gpu_epoch_s"], gpu_runs=s["gpu_runs"],
                   crossover_nodes=s["crossover_nodes"], crossover=s["crossover"],
                   largest_nodes=s["largest_nodes"], ratio_at_largest=s["ratio_at_largest"])
        out.append(row)
    return out


def ratio_table(ratios) -> list[dict]:
    out = []
    for r in ratios:
        row = dict(zip(CONFIG_FIELDS, r["cpu_config"]))
        row.update(projected=r["projected"], gpu_system=r["gpu_config"][0], nodes=r["nodes"],
                   cpu_epoch_s=r["cpu_epoch_s"], gpu_epoch_s=r["gpu_epoch_s"], ratio=r["ratio"])
        out.append(row)
    return out


def write_csv(path: Path, columns, table) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in table:
            writer.writerow([_fmt(row[c]) for c in columns])


def markdown_table(columns, table) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        lines.append("| " + " | ".join(_human(row[c]).replace("|", "/") for c in columns) + " |")
    return "\n".join(lines)


# For reading (markdown, HTML): one "configuration" column instead of seven, rounded numbers.
READ_SCALING = (("configuration", None), ("projected", "projected"), ("nodes", "nodes"), ("runs", "runs"),
                ("epoch s (median)", "epoch_s_median"), ("epoch s min-max", None), ("spread %", "spread_pct"),
                ("speedup", "speedup"), ("vs nodes", "baseline_nodes"), ("efficiency %", None),
                ("images/s", "images_per_s"), ("compute s", "compute_s"), ("comm s", "comm_s"),
                ("data wait s", "data_wait_s"), ("AUC", "auc"))
READ_GPU = (("CPU configuration", None), ("projected", "projected"), ("GPU", None), ("GPU epoch s", "gpu_epoch_s"),
            ("GPU runs", "gpu_runs"), ("cluster overtakes GPU at N", "crossover"), ("largest N", "largest_nodes"),
            ("ratio at largest N", "ratio_at_largest"))


def _label(row) -> str:
    return ", ".join(str(row[f]) for f in CONFIG_FIELDS)


def readable(kind: str, table) -> tuple[tuple, list[dict]]:
    """A compact view of the CSV table ``kind`` ("scaling" or "gpu_comparison") for people."""
    spec = READ_SCALING if kind == "scaling" else READ_GPU
    out = []
    for row in table:
        r = {name: row[key] for name, key in spec if key}
        if kind == "scaling":
            r["configuration"] = _label(row)
            r["epoch s min-max"] = f"{_human(row['epoch_s_min'])}-{_human(row['epoch_s_max'])}"
            r["efficiency %"] = 100 * row["efficiency"]
            r["spread %"] = round(row["spread_pct"], 1)
        else:
            r["CPU configuration"] = _label(row)
            r["GPU"] = f"{row['gpu_system']}, {row['gpu_backend']}, {row['gpu_preset']}"
        out.append(r)
    return tuple(name for name, _ in spec), out


def write_tables(out: Path, rows, summary, ratios) -> dict[str, tuple]:
    """Write scaling / gpu_comparison (/ gpu_ratio) as CSV (every column, 6 significant digits) and as
    markdown (the compact view). Returns the compact views, {name: (columns, table)}."""
    tables = {"scaling": (SCALING_COLUMNS, scaling_table(rows))}
    if summary:
        tables["gpu_comparison"] = (GPU_COLUMNS, gpu_table(summary))
        tables["gpu_ratio"] = (RATIO_COLUMNS, ratio_table(ratios))
    views = {}
    for name, (columns, table) in tables.items():
        write_csv(out / f"{name}.csv", columns, table)
        view = readable(name, table) if name != "gpu_ratio" else (columns, table)
        (out / f"{name}.md").write_text(markdown_table(*view) + "\n", encoding="utf-8")
        views[name] = view
    return views


def environment_table(envs) -> tuple[tuple, list[dict]]:
    columns = ("system", "device", "runs", "cpu_model", "gpu_name", "hosts", "torch", "MPI", "horovod", "dates")
    table = []
    for e in envs:
        runs = f"{e['runs']}" + (f" ({e['projected_runs']} projected)" if e["projected_runs"] else "")
        table.append({"system": e["system"], "device": e["device"], "runs": runs,
                      "cpu_model": "; ".join(e["cpu_model"]), "gpu_name": "; ".join(e["gpu_name"]),
                      "hosts": e["hosts_max"], "torch": "; ".join(e["torch"]), "MPI": "; ".join(e["mpi_library"]),
                      "horovod": "; ".join(e["horovod"]), "dates": e["dates"]})
    return columns, table


# --- the report as blocks ------------------------------------------------------------------

def report_blocks(*, sources, figures, tables, envs, problems, warnings, quick, physics=None) -> list[tuple]:
    """The report's content, in reading order, as (kind, ...) tuples."""
    blocks = [("h1", "Strong-scaling report"),
              ("p", "Built from " + ", ".join(map(str, sources)) + ". Each point is the median over repeated runs "
                    "of each run's median measured-epoch time; error bars and 'spread' are the min-max of the "
                    "repeats. Projected points (from a performance model) are dashed and never mixed with "
                    "measurements.")]
    if quick:
        blocks.append(("p", "WARNING: some records are quick/smoke-sized runs (preset 'quick'): their numbers are "
                            "not benchmarks."))
    for name in figures:
        blocks.append(("figure", name, CAPTIONS[name]))
    columns, table = tables["scaling"]
    blocks += [("h2", "Scaling table"),
               ("p", "Per configuration and node count. Speedup and efficiency are against baseline_nodes; "
                     "compute/comm/data-wait are seconds per epoch on the slowest rank; AUC after the last epoch. "
                     "Also in scaling.csv."),
               ("table", columns, table)]
    if physics:
        blocks += [("h2", "CNN against the cut-based selection"),
                   ("p", "At the CNN threshold whose background efficiency is the largest not above the signal "
                         "region's: the ratio of signal efficiencies and of s / sqrt(b), with bootstrap standard "
                         "deviations, and the unweighted background events behind them (a handful means a rough "
                         "ratio). The study: AUC 0.9914 (64x64) / 0.9903 (224x224), ratio 1.803 / 1.845, "
                         "significance ratio 1.2. Every column is in physics.csv."),
                   ("table", *physics)]
    blocks.append(("h2", "CPU cluster vs one GPU"))
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
    blocks += [("h2", "Environments"), ("table", *environment_table(envs))]
    blocks.append(("h2", "Warnings"))
    items = [f"input {p}" for p in problems] + list(warnings)
    blocks.append(("list", items or ["none"]))
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


def to_html(blocks) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(blocks[0][1])}</title><style>{STYLE}</style></head><body>"]
    for kind, *args in blocks:
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{e(args[0])}</{kind}>")
        elif kind == "p":
            cls = ' class="warn"' if args[0].startswith("WARNING") else ""
            parts.append(f"<p{cls}>{e(args[0])}</p>")
        elif kind == "list":
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in args[0]) + "</ul>")
        elif kind == "table":
            columns, table = args
            head = "".join(f"<th>{e(c)}</th>" for c in columns)
            body = "".join("<tr>" + "".join(f"<td>{e(_human(r[c]))}</td>" for c in columns) + "</tr>" for r in table)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            name, caption = args
            parts.append(f'<figure><img src="{name}.png" alt="{e(name)}"><figcaption>{e(caption)} '
                         f'(<a href="{name}.svg">SVG</a>)</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_reports(out: Path, blocks) -> Path:
    """Write report.md and index.html into ``out``; returns the path of index.html."""
    (out / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    index = out / "index.html"
    index.write_text(to_html(blocks), encoding="utf-8")
    return index
