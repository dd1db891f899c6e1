"""The report's tables as pandas DataFrames, written as CSV (every column) and markdown (a view for people).

CSV cells have 6 significant digits, ``true``/``false`` for flags and nothing for a null; markdown and the
HTML page round to 4 significant digits and group thousands (``_human``). Each ``*_table`` function takes
the frames of ``reports.analysis`` and returns the CSV table, one row per point or comparison.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data.files import clean_text, replaced, write_text

from reports.analysis import CONFIG_FIELDS, config_label, config_of, cpu_notes, plain

SCALING_COLUMNS = (
    *CONFIG_FIELDS, "projected", "nodes", "world_size", "runs", "epoch_s_median", "epoch_s_min", "epoch_s_max",
    "spread_pct", "baseline_nodes", "speedup", "efficiency", "images_per_s", "achieved_gflop_s", "compute_s",
    "comm_s", "data_wait_s", "auc",
)
GPU_COLUMNS = (
    *CONFIG_FIELDS, "projected", "gpu_system", "gpu_backend", "gpu_preset", "gpu_epoch_s", "gpu_runs",
    "crossover_nodes", "crossover", "largest_nodes", "ratio_at_largest",
)
RATIO_COLUMNS = (*CONFIG_FIELDS, "projected", "gpu_system", "nodes", "cpu_epoch_s", "gpu_epoch_s", "ratio")
CPU_USE_COLUMNS = (
    *CONFIG_FIELDS, "nodes", "runs", "threads_per_rank", "ranks_x_threads", "cores_available",
    "util_per_thread_median", "util_per_thread_min", "involuntary_ctx_switches", "oversubscribed_runs",
    "oversubscribed_why",
)


def _fmt(value, digits: int = 6) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return clean_text(str(value))  # records older than the writer's cleaning may hold control characters


def _human(value) -> str:
    """Numbers for people: 4 significant digits, thousands grouped rather than in exponent form."""
    value = plain(value)
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    return _fmt(value, 4)


def _frame(columns, table) -> pd.DataFrame:
    """``table`` (a DataFrame or a list of dicts) with exactly ``columns``, in that order."""
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table), columns=list(columns))
    return frame.reindex(columns=list(columns))


def write_csv(path: Path, columns, table) -> None:
    """``table``'s ``columns`` as CSV (``_fmt`` cells, CRLF line ends as the csv module writes them), whole
    or not at all. Raises data.files.WriteError."""
    with replaced(path) as tmp:
        _frame(columns, table).map(_fmt).to_csv(tmp, index=False, lineterminator="\r\n")


def markdown_table(columns, table) -> str:
    """``table``'s ``columns`` as a GitHub-flavoured markdown table of ``_human`` cells (``|`` becomes ``/``)."""
    cells = _frame(columns, table).map(lambda v: _human(v).replace("|", "/"))
    return cells.to_markdown(index=False, tablefmt="github", disable_numparse=True)


def html_table(columns, table) -> str:
    """``table``'s ``columns`` as an HTML table of ``_human`` cells, escaped."""
    return _frame(columns, table).map(_human).to_html(index=False, border=0, escape=True)


def _config_columns(frame: pd.DataFrame, key: str | None = None) -> pd.DataFrame:
    """The configuration fields of each row, from its columns or from its tuple in column ``key``."""
    if key is None:
        return frame[list(CONFIG_FIELDS)]
    return pd.DataFrame(list(frame[key]), columns=list(CONFIG_FIELDS), index=frame.index)


def scaling_table(rows: pd.DataFrame) -> pd.DataFrame:
    return _config_columns(rows).assign(
        projected=rows["projected"], nodes=rows["nodes"],
        world_size=rows["world_sizes"].map(lambda w: "/".join(map(str, w))),
        runs=rows["runs"], epoch_s_median=rows["epoch_s"], epoch_s_min=rows["epoch_s_min"],
        epoch_s_max=rows["epoch_s_max"], spread_pct=100 * rows["spread"], baseline_nodes=rows["baseline_nodes"],
        speedup=rows["speedup"], efficiency=rows["efficiency"], images_per_s=rows["images_per_s"],
        achieved_gflop_s=rows["achieved_gflop_s"], compute_s=rows["compute_s"], comm_s=rows["comm_s"], data_wait_s=rows["data_wait_s"], auc=rows["auc"],
        cpu=[f"oversubscribed in {int(n)} of {int(r)} run(s)" if plain(n) else ""
             for n, r in zip(rows["oversubscribed_runs"], rows["runs"])],
        cpu_measured=rows["oversubscribed_runs"].notna())


def gpu_table(summary: pd.DataFrame) -> pd.DataFrame:
    gpu = _config_columns(summary, "gpu_config")
    return _config_columns(summary, "cpu_config").assign(
        projected=summary["projected"], gpu_system=gpu["system"], gpu_backend=gpu["backend"],
        gpu_preset=gpu["preset"], gpu_epoch_s=summary["gpu_epoch_s"], gpu_runs=summary["gpu_runs"],
        crossover_nodes=summary["crossover_nodes"], crossover=summary["crossover"],
        largest_nodes=summary["largest_nodes"], ratio_at_largest=summary["ratio_at_largest"])


def ratio_table(ratios: pd.DataFrame) -> pd.DataFrame:
    return _config_columns(ratios, "cpu_config").assign(
        projected=ratios["projected"], gpu_system=_config_columns(ratios, "gpu_config")["system"],
        nodes=ratios["nodes"], cpu_epoch_s=ratios["cpu_epoch_s"], gpu_epoch_s=ratios["gpu_epoch_s"],
        ratio=ratios["ratio"])


def cpu_use_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Measured points whose runs recorded their CPU use (``cpu``), with it."""
    measured = rows[~rows["projected"] & rows["oversubscribed_runs"].notna()]
    return measured[list(CPU_USE_COLUMNS)].reset_index(drop=True)


# For reading (markdown, HTML): one "configuration" column instead of seven, rounded numbers.
READ_SCALING = (("configuration", None), ("projected", "projected"), ("nodes", "nodes"), ("runs", "runs"),
                ("epoch s (median)", "epoch_s_median"), ("epoch s min-max", None), ("spread %", "spread_pct"),
                ("speedup", "speedup"), ("vs nodes", "baseline_nodes"), ("efficiency %", None),
                ("images/s", "images_per_s"), ("GFLOP/s", "achieved_gflop_s"), ("compute s", "compute_s"), ("comm s", "comm_s"),
                ("data wait s", "data_wait_s"), ("AUC", "auc"))
READ_GPU = (("CPU configuration", None), ("projected", "projected"), ("GPU", None), ("GPU epoch s", "gpu_epoch_s"),
            ("GPU runs", "gpu_runs"), ("cluster overtakes GPU at N", "crossover"), ("largest N", "largest_nodes"),
            ("ratio at largest N", "ratio_at_largest"))
READ_CPU = (("configuration", None), ("ranks", "nodes"), ("runs", "runs"), ("threads/rank", "threads_per_rank"),
            ("ranks x threads", "ranks_x_threads"), ("cores available", "cores_available"),
            ("CPU/thread median", "util_per_thread_median"), ("CPU/thread least", "util_per_thread_min"),
            ("involuntary switches/epoch", "involuntary_ctx_switches"), ("oversubscribed runs", "oversubscribed_runs"),
            ("why", "oversubscribed_why"))


def _labels(table: pd.DataFrame) -> pd.Series:
    """Each row's configuration as text, the precision named only when it is not fp32 (``config_label``)."""
    def label(row) -> str:
        return ", ".join(str(row[f]) for f in CONFIG_FIELDS
                         if not (f == "precision" and str(row[f]) in ("fp32", "None", "<NA>")))
    return table[list(CONFIG_FIELDS)].apply(label, axis=1)


def readable(kind: str, table: pd.DataFrame) -> tuple[tuple, pd.DataFrame]:
    """A compact view of the CSV table ``kind`` ("scaling", "gpu_comparison" or "cpu_use") for people.
    The scaling view gains a "CPU" column when runs measured their CPU use: "ok", or how many of the point's
    runs were oversubscribed (why: the CPU-use table)."""
    spec = {"scaling": READ_SCALING, "gpu_comparison": READ_GPU, "cpu_use": READ_CPU}[kind]
    view = pd.DataFrame({name: table[key] for name, key in spec if key}, index=table.index)
    labels = _labels(table) if len(table) else pd.Series([], dtype="object")
    if kind == "scaling":
        view["configuration"] = labels
        view["epoch s min-max"] = [f"{_human(a)}-{_human(b)}"
                                   for a, b in zip(table["epoch_s_min"], table["epoch_s_max"])]
        view["efficiency %"] = 100 * table["efficiency"]
        view["spread %"] = table["spread_pct"].map(lambda v: round(v, 1))  # as Python rounds
        if table["cpu_measured"].any():
            view["CPU"] = table["cpu"].where(table["cpu"] != "", table["cpu_measured"].map({True: "ok", False: ""}))
            spec = (*spec, ("CPU", None))
    elif kind == "gpu_comparison":
        view["CPU configuration"] = labels
        view["GPU"] = table["gpu_system"] + ", " + table["gpu_backend"] + ", " + table["gpu_preset"]
    else:
        view["configuration"] = labels
    columns = tuple(name for name, _ in spec)
    return columns, view[list(columns)]


TARGET_COLUMNS = ("configuration", "target AUC", "ranks", "runs", "reached", "time to target s", "min s", "max s",
                  "epochs", "speedup")


def time_to_target_table(points: pd.DataFrame) -> pd.DataFrame:
    """The compact view of ``reports.analysis.time_to_target_points``."""
    if not len(points):
        return pd.DataFrame(columns=TARGET_COLUMNS)
    view = pd.DataFrame({
        "configuration": _labels(points), "target AUC": points["target_auc"], "ranks": points["nodes"],
        "runs": points["runs"], "reached": points["reached"],
        "time to target s": points["time_to_target_s"].map(_fmt), "min s": points["time_to_target_s_min"].map(_fmt),
        "max s": points["time_to_target_s_max"].map(_fmt), "epochs": points["epochs_to_target"].map(_fmt),
        "speedup": points["speedup"].map(lambda v: _fmt(v, 3))})
    return view[list(TARGET_COLUMNS)]


def write_tables(out: Path, rows: pd.DataFrame, summary: pd.DataFrame, ratios: pd.DataFrame,
                 targets: pd.DataFrame | None = None) -> dict[str, tuple]:
    """Write scaling / gpu_comparison (/ gpu_ratio) / cpu_use (when runs measured it) as CSV (every column,
    6 significant digits) and as markdown (the compact view). Returns the compact views,
    {name: (columns, table)}."""
    tables = {"scaling": (SCALING_COLUMNS, scaling_table(rows))}
    if len(summary):
        tables["gpu_comparison"] = (GPU_COLUMNS, gpu_table(summary))
        tables["gpu_ratio"] = (RATIO_COLUMNS, ratio_table(ratios))
    cpu = cpu_use_table(rows)
    if len(cpu):
        tables["cpu_use"] = (CPU_USE_COLUMNS, cpu)
    if targets is not None and len(targets):
        tables["time_to_target"] = (TARGET_COLUMNS, time_to_target_table(targets))
    views = {}
    for name, (columns, table) in tables.items():
        write_csv(out / f"{name}.csv", columns, table)
        view = readable(name, table) if name not in ("gpu_ratio", "time_to_target") else (columns, table)
        write_text(out / f"{name}.md", markdown_table(*view) + "\n")
        views[name] = view
    return views


SUMMARY_COLUMNS = ("configuration", "largest N", "speedup", "vs N", "efficiency %", "images/s", "AUC",
                   "CPU use", "one GPU")


def summary_table(rows: pd.DataFrame, summary: pd.DataFrame) -> tuple[tuple, pd.DataFrame]:
    """The report's opening table: per measured configuration, its largest rank count with the speedup and
    efficiency there, the throughput, the last epoch's AUC, the CPU-use warning (or the least-used rank's
    utilisation per thread) and, where there is a GPU baseline, where the cluster overtakes it."""
    measured = rows[~rows["projected"]]
    last = measured.groupby(list(CONFIG_FIELDS), sort=False, dropna=False).tail(1)
    crossings: dict[tuple, list[str]] = {}
    for _, s in summary[~summary["projected"]].iterrows() if len(summary) else ():
        gpu = s["gpu_config"][0]
        if s["crossover"].startswith("<="):
            text = f"faster than {gpu} already at N = {s['crossover'][3:]}"
        elif plain(s["crossover_nodes"]) is not None:
            text = f"overtakes {gpu} at N = {s['crossover']}"
        else:
            text = f"slower than {gpu} up to N = {s['largest_nodes']} ({s['ratio_at_largest']:.2g}x its speed)"
        crossings.setdefault(s["cpu_config"], []).append(text)

    notes = cpu_notes(last)

    def cpu(i, r) -> str:
        if plain(r["oversubscribed_runs"]) is None:
            return "not measured"
        if notes[i]:
            return "WARNING: " + notes[i]
        return f"ok: the least-used rank ran {_human(r['util_per_thread_min'])} cores per thread"

    view = pd.DataFrame({
        "configuration": [config_label(config_of(r)) for _, r in last.iterrows()],
        "largest N": last["nodes"], "speedup": last["speedup"], "vs N": last["baseline_nodes"],
        "efficiency %": 100 * last["efficiency"], "images/s": last["images_per_s"], "AUC": last["auc"],
        "CPU use": [cpu(i, r) for i, r in last.iterrows()],
        "one GPU": ["; ".join(crossings.get(config_of(r), [])) for _, r in last.iterrows()],
    }, index=last.index)
    return SUMMARY_COLUMNS, view.reset_index(drop=True)


def environment_table(envs: pd.DataFrame) -> tuple[tuple, pd.DataFrame]:
    columns = ("system", "device", "runs", "cpu_model", "gpu_name", "hosts", "torch", "MPI", "horovod", "dates")
    joined = {c: envs[c].map("; ".join) for c in ("cpu_model", "gpu_name", "torch", "mpi_library", "horovod")}
    table = pd.DataFrame({
        "system": envs["system"], "device": envs["device"],
        "runs": [f"{n}" + (f" ({p} projected)" if p else "") for n, p in zip(envs["runs"], envs["projected_runs"])],
        "cpu_model": joined["cpu_model"], "gpu_name": joined["gpu_name"], "hosts": envs["hosts_max"],
        "torch": joined["torch"], "MPI": joined["mpi_library"], "horovod": joined["horovod"], "dates": envs["dates"],
    })
    return columns, table
