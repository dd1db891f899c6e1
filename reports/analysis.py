"""From the runs' frame (``reports.frame``) to numbers: points, speedup, efficiency, GPU crossover, CPU use.

Pandas group-bys on the frame; nothing here plots or writes files.

Vocabulary
* configuration: the fields in ``CONFIG_FIELDS``. Records of one configuration at one node
  count are repeats of one *point*.
* a run's epoch time is ``median(epoch_s)`` of that run (warm-up excluded by the harness);
  a point's epoch time is the median over its repeats, and its spread is the min and max of
  the repeats' epoch times.
* a *series* is one configuration's points, measured and projected kept apart
  (``projected: true`` records come from a performance model and are never mixed with
  measurements).
* speedup at N = epoch time at the series' smallest node count / epoch time at N;
  efficiency = speedup / (N / smallest node count).

Frames of points (``group_points``, ``scaling_rows``) have one row per point, sorted by configuration (each
field compared as text), projected flag and node count, with the columns ``CONFIG_FIELDS``, ``projected``,
``nodes``, ``world_sizes`` (list), ``runs``, ``epoch_s`` (s: median, ``epoch_s_min``, ``epoch_s_max``),
``spread``, ``images_per_s`` (with ``_min``, ``_max``), ``achieved_gflop_s`` (median), ``train_events``, ``auc``, ``compute_s``,
``comm_s``, ``data_wait_s`` (s per epoch), ``sources`` (list of ``path:line``), the CPU use (``CPU_COLUMNS``;
null for runs that did not measure it) and, from ``scaling_rows``, ``baseline_nodes``,
``baseline_projected``, ``speedup`` (``_min``, ``_max``) and ``efficiency`` (a fraction).
"""
from __future__ import annotations

import math
from statistics import median

import numpy as np
import pandas as pd

from reports.frame import to_frame

CONFIG_FIELDS = ("system", "device", "precision", "backend", "model", "image_size", "global_batch", "preset")
SERIES = [*CONFIG_FIELDS, "projected"]
POINT = [*SERIES, "nodes"]
# The fields a CPU cluster and a GPU baseline must share to be compared.
COMPARE_FIELDS = ("model", "image_size", "global_batch")
SPREAD_WARN = 0.10  # repeats that disagree by more than this (max/min - 1) get a warning
TIME_PARTS = ("compute_s", "comm_s", "data_wait_s")
# Per point, from the runs' ``cpu`` objects: threads, cores, utilisation per thread (median of the runs'
# medians, least of their least), involuntary context switches (median), runs flagged, and why (the first).
CPU_COLUMNS = ("threads_per_rank", "cores_available", "ranks_x_threads", "util_per_thread_median",
               "util_per_thread_min", "involuntary_ctx_switches", "oversubscribed_runs", "oversubscribed_why")


def _frame(records) -> pd.DataFrame:
    return records if isinstance(records, pd.DataFrame) else to_frame(list(records))


def _col(frame: pd.DataFrame, name: str, dtype="float64") -> pd.Series:
    """Column ``name``, or nulls of ``dtype`` where no record has the field."""
    return frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=dtype)


def config_of(row) -> tuple:
    """A point's or run's configuration as a tuple of plain Python values (``CONFIG_FIELDS`` order). A
    torchvision model padded circularly in phi (``config.circular_phi``) is its own model, ``resnet50 (circular
    phi)``."""
    values = {f: plain(row[f]) for f in CONFIG_FIELDS}
    if plain(row.get("config.circular_phi")) is True:
        values["model"] = f"{values['model']} (circular phi)"
    return tuple(values[f] for f in CONFIG_FIELDS)


def _configs(frame: pd.DataFrame) -> pd.Series:
    """Each row's configuration tuple (``config_of``), as an object column."""
    return pd.Series([config_of(r) for _, r in frame.iterrows()], index=frame.index, dtype="object")


def config_label(config: tuple, fields=CONFIG_FIELDS) -> str:
    """Human-readable name of a configuration, e.g. ``KNL, cpu, horovod, circpad 224px, batch 32768, paper``
    (the precision is named when it is not fp32: ``Xeon, cpu, bf16, mpi, ...``)."""
    named = dict(zip(CONFIG_FIELDS, config))
    parts = []
    for f in fields:
        v = named[f]
        if f == "precision" and v in ("fp32", None):  # the study's precision: named only when another
            continue
        if f == "image_size":
            parts.append(f"{v}px")
        elif f == "global_batch":
            parts.append(f"batch {v}")
        else:
            parts.append(str(v))
    return ", ".join(parts)


def plain(value):
    """``value`` as a plain Python value: numpy scalars unwrapped, every kind of null as None."""
    if isinstance(value, (list, tuple, dict)):
        return value
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def records_of(frame: pd.DataFrame) -> list[dict]:
    """The rows of ``frame`` as dicts of plain Python values (``plain``), each with its ``config`` tuple
    added when the frame has the configuration's columns: the form the figures draw from."""
    out = []
    for row in frame.to_dict("records"):
        row = {k: plain(v) for k, v in row.items()}
        if all(f in row for f in CONFIG_FIELDS):
            row["config"] = config_of(row)
        out.append(row)
    return out


def runs(records) -> pd.DataFrame:
    """One row per run with what the points need: ``CONFIG_FIELDS``, ``projected``, ``nodes`` (the scaling
    coordinate: the run's number of ranks, see below), ``world_size``, ``epoch_s`` (the run's median
    measured epoch, s), ``images_per_s`` (recorded, else ``train_events`` / epoch_s), ``achieved_gflop_s``
    (recorded, null before records carried it), ``train_events``,
    ``auc`` (after the last epoch), ``compute_s``, ``comm_s``, ``data_wait_s``, ``source`` and the run's CPU
    use. ``records``: the frame of ``reports.frame`` (or record dicts).

    Points are keyed on ranks, not on the record's ``nodes``: with one rank per node (the study's KNL runs,
    the launchers' default) that is the node count, and a sweep inside one node (1, 2, 4 ranks on a
    workstation) keeps its points apart instead of merging them as repeats.
    """
    frame = _frame(records)
    epoch_s = frame["epoch_s"].map(lambda times: float(median(times))).astype("float64")
    train_events = _col(frame, "train_events", "Int64").astype("float64")
    cpu = {name: _col(frame, f"cpu.{name}") for name in ("util_per_thread_median", "util_per_thread_min",
                                                         "involuntary_ctx_switches")}
    threads = _col(frame, "threads_per_rank", "Int64")
    return pd.DataFrame({
        **{f: frame[f] for f in CONFIG_FIELDS},
        "projected": _col(frame, "projected", "boolean").fillna(False).astype(bool),
        "nodes": frame["world_size"],
        "world_size": frame["world_size"],
        "epoch_s": epoch_s,
        "images_per_s": _col(frame, "images_per_s").fillna(train_events / epoch_s),
        "achieved_gflop_s": _col(frame, "achieved_gflop_s"),
        "train_events": train_events,
        "auc": _col(frame, "auc", "object").map(lambda a: a[-1] if isinstance(a, list) and a else None)
                                           .astype("float64"),
        **{part: _col(frame, part) for part in TIME_PARTS},
        "source": _col(frame, "source", "string"),
        "threads_per_rank": threads,
        "cores_available": _col(frame, "cpu.cores_available", "Int64").fillna(_col(frame, "cores_available", "Int64")),
        "ranks_x_threads": _col(frame, "cpu.ranks_x_threads", "Int64").fillna(_col(frame, "ranks_per_node", "Int64")
                                                                          * threads),
        **cpu,
        "oversubscribed": _col(frame, "cpu.oversubscribed", "boolean").astype("Float64"),  # 1, 0, null: summable
        "oversubscribed_why": _col(frame, "cpu.oversubscribed_why", "string"),
    })


def _first(values: pd.Series):
    values = values.dropna()
    return values.iloc[0] if len(values) else None


def group_points(records) -> pd.DataFrame:
    """Points of every series (the module's docstring gives the columns), from the runs' frame or records."""
    table = runs(records)
    grouped = table.groupby(POINT, sort=False, dropna=False)
    points = grouped.agg(
        world_sizes=("world_size", lambda s: sorted({int(v) for v in s})),
        runs=("epoch_s", "size"),
        epoch_s=("epoch_s", "median"),
        epoch_s_min=("epoch_s", "min"),
        epoch_s_max=("epoch_s", "max"),
        images_per_s=("images_per_s", "median"),
        train_events=("train_events", "median"),
        images_per_s_min=("images_per_s", "min"),
        images_per_s_max=("images_per_s", "max"),
        achieved_gflop_s=("achieved_gflop_s", "median"),
        auc=("auc", "median"),
        **{part: (part, "median") for part in TIME_PARTS},
        sources=("source", list),
        threads_per_rank=("threads_per_rank", "max"),
        cores_available=("cores_available", "min"),
        ranks_x_threads=("ranks_x_threads", "max"),
        util_per_thread_median=("util_per_thread_median", "median"),
        util_per_thread_min=("util_per_thread_min", "min"),
        involuntary_ctx_switches=("involuntary_ctx_switches", "median"),
        oversubscribed_runs=("oversubscribed", lambda s: s.sum(min_count=1)),  # null: no run measured it
        oversubscribed_why=("oversubscribed_why", _first),
    ).reset_index()
    points["spread"] = points["epoch_s_max"] / points["epoch_s_min"] - 1
    points["oversubscribed_runs"] = points["oversubscribed_runs"].astype("Int64")
    # Configuration fields compared as text, as the figures' colours are assigned.
    return points.sort_values(POINT, key=lambda s: s.astype(str) if s.name in CONFIG_FIELDS else s,
                              kind="stable", ignore_index=True)


def series_of(points: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """``{(config, projected): its points sorted by nodes}`` in the points' order."""
    out = {}
    for key, pts in points.groupby(SERIES, sort=False, dropna=False):
        out[(tuple(plain(v) for v in key[:-1]), bool(key[-1]))] = pts.sort_values("nodes", kind="stable")
    return out


def add_scaling(points: pd.DataFrame) -> pd.DataFrame:
    """``points`` with baseline_nodes, speedup (with min/max from the spread) and efficiency.

    A measured series is scaled against its own smallest node count. A projected series is
    scaled against the measured baseline of the same configuration when there is one (so its
    dashed line continues the measured curve), else against its own smallest node count;
    ``baseline_projected`` says which.
    """
    points = points.sort_values(POINT, key=lambda s: s.astype(str) if s.name in CONFIG_FIELDS else s,
                                kind="stable", ignore_index=True)
    own = points.groupby(SERIES, sort=False, dropna=False)[["nodes", "epoch_s"]].transform("first")
    measured = (points[~points["projected"]].groupby(list(CONFIG_FIELDS), sort=False, dropna=False)
                [["nodes", "epoch_s"]].first())
    there = points[list(CONFIG_FIELDS)].join(measured, on=list(CONFIG_FIELDS))
    use_measured = points["projected"] & there["nodes"].notna()
    base_nodes = there["nodes"].where(use_measured, own["nodes"])
    base_epoch_s = there["epoch_s"].where(use_measured, own["epoch_s"])
    speedup = base_epoch_s / points["epoch_s"]
    return points.assign(
        baseline_nodes=base_nodes,
        baseline_projected=points["projected"] & ~use_measured,
        speedup=speedup,
        # The range of speedups the repeats at N allow, against the baseline's median.
        speedup_min=base_epoch_s / points["epoch_s_max"],
        speedup_max=base_epoch_s / points["epoch_s_min"],
        efficiency=speedup / (points["nodes"] / base_nodes),
    )


def scaling_rows(records) -> pd.DataFrame:
    """Every point with its scaling numbers: the main table."""
    return add_scaling(group_points(records))


# --- CPU cluster against one GPU -------------------------------------------------------

def gpu_baselines(records) -> pd.DataFrame:
    """One point per GPU configuration, from the measured single-GPU (world_size 1) runs."""
    frame = _frame(records)
    projected = _col(frame, "projected", "boolean").fillna(False).astype(bool)
    return group_points(frame[(frame["device"] == "cuda") & (frame["world_size"] == 1) & ~projected])


def crossover(nodes: list[int], ratios: list[float]) -> tuple[float | None, str]:
    """Node count where the ratio GPU_time / CPU_time first reaches 1.

    ``nodes`` ascending. Between the bracketing points the ratio is interpolated linearly in
    log2(N). Returns ``(N, text)``; ``(None, "not reached")`` when no point reaches 1. When the
    smallest node count is already at or above 1 the crossover is that count, marked "<=".
    """
    if not nodes:
        return None, "not reached"
    if ratios[0] >= 1:
        return float(nodes[0]), f"<= {nodes[0]}"
    for (n1, r1), (n2, r2) in zip(zip(nodes, ratios), zip(nodes[1:], ratios[1:])):
        if r1 < 1 <= r2:
            t = (1 - r1) / (r2 - r1)
            n = 2 ** (math.log2(n1) + t * (math.log2(n2) - math.log2(n1)))
            return n, f"{n:.3g}"
    return None, "not reached"


def gpu_comparison(rows: pd.DataFrame, gpus: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare every CPU series in ``rows`` (from ``scaling_rows``) with every matching GPU baseline.

    Returns ``(summary, ratios)``: one summary row per (CPU series, GPU baseline) with the
    crossover node count and the ratio at the largest N; one ratio row per node count.
    The ratio is GPU epoch time / CPU epoch time over the same events (the CPU run's epoch; each time is
    scaled by its run's training events): above 1 the cluster is faster. Both frames carry ``cpu_config``
    and ``gpu_config`` (tuples) and ``projected``; ratios ``nodes``, ``cpu_epoch_s``, ``gpu_epoch_s``,
    ``ratio``; the summary ``gpu_epoch_s``, ``gpu_runs``, ``crossover_nodes`` (None when not reached),
    ``crossover`` (text), ``largest_nodes`` and ``ratio_at_largest``.
    """
    cpu = rows[rows["device"] == "cpu"].copy()
    cpu["series"] = cpu.groupby(SERIES, sort=False, dropna=False).ngroup()
    cpu["cpu_config"] = _configs(cpu)
    gpu = gpus.reset_index(drop=True)
    gpu = gpu.assign(gpu=gpu.index, gpu_config=_configs(gpu))
    pairs = cpu.merge(gpu, on=list(COMPARE_FIELDS), suffixes=("", "_gpu"))
    pairs = pairs.sort_values(["series", "gpu", "nodes"], kind="stable", ignore_index=True)
    # Runs may differ in events per epoch: compare times per event, and give the GPU's time for the CPU
    # run's epoch (the same events), not the GPU run's own epoch time.
    per_event = (pairs["train_events_gpu"].fillna(0) != 0) & (pairs["train_events"].fillna(0) != 0)
    pairs["ratio"] = ((pairs["epoch_s_gpu"] / pairs["train_events_gpu"]) / (pairs["epoch_s"] / pairs["train_events"])
                      ).where(per_event, pairs["epoch_s_gpu"] / pairs["epoch_s"])
    pairs["gpu_epoch_s"] = pairs["epoch_s"] * pairs["ratio"]
    ratios = pairs.rename(columns={"epoch_s": "cpu_epoch_s"})[
        ["cpu_config", "gpu_config", "projected", "nodes", "cpu_epoch_s", "gpu_epoch_s", "ratio"]]
    grouped = pairs.groupby(["series", "gpu"], sort=False)
    summary = grouped.agg(cpu_config=("cpu_config", "first"), gpu_config=("gpu_config", "first"),
                          projected=("projected", "first"), gpu_epoch_s=("gpu_epoch_s", "last"),
                          gpu_runs=("runs_gpu", "first"), largest_nodes=("nodes", "last"),
                          ratio_at_largest=("ratio", "last")).reset_index(drop=True)
    cross = [crossover([int(n) for n in g["nodes"]], list(g["ratio"])) for _, g in grouped]
    summary["crossover_nodes"] = pd.Series([c[0] for c in cross], dtype="float64")
    summary["crossover"] = [c[1] for c in cross]
    return summary, ratios.reset_index(drop=True)


# --- Warnings and provenance ------------------------------------------------------------

def _where(rows: pd.DataFrame) -> pd.Series:
    return pd.Series([f"{config_label(config_of(r))} at {int(r['nodes'])} node(s)" for _, r in rows.iterrows()],
                     index=rows.index, dtype="object")


def point_warnings(rows: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the numbers (measured points only), in the order: quick
    configurations, then per point its spread, single run, mixed world sizes and CPU oversubscription."""
    quick = sorted({config_of(r) for _, r in rows[rows["preset"] == "quick"].iterrows()})
    out = [f"{config_label(c)}: preset 'quick' (smoke-sized runs): these numbers are not benchmarks" for c in quick]
    measured = rows[~rows["projected"]]
    if measured.empty:
        return out
    where = _where(measured)
    flagged = measured["oversubscribed_runs"].fillna(0).astype(int)
    messages = pd.DataFrame({
        # exactly 10% (20 s vs 22 s) is not "more than"
        "spread": (where + measured.apply(lambda r: f": repeats disagree by {r['spread']:.0%} (max/min - 1 of epoch "
                                                    f"times {r['epoch_s_min']:.4g}..{r['epoch_s_max']:.4g} s)", axis=1)
                   ).where(measured["spread"] > SPREAD_WARN + 1e-9),
        "single": (where + ": only one run, no repeat to judge the spread").where(measured["runs"] == 1),
        "mixed": (where + measured["world_sizes"].map(lambda w: f": repeats have different world sizes {w}; "
                                                                "combined as one point")
                  ).where(measured["world_sizes"].map(len) > 1),
        "cpu": (where + ": " + cpu_notes(measured)).where(flagged > 0),
    }, index=measured.index)
    return out + [m for m in messages.to_numpy().ravel() if isinstance(m, str)]  # row by row, in column order


def cpu_notes(points: pd.DataFrame) -> pd.Series:
    """Per point, the CPU-use warning text (empty where no run was oversubscribed): how many runs and why."""
    def note(r) -> str:
        n = r["oversubscribed_runs"]
        if n is None or pd.isna(n) or n == 0:
            return ""
        return (f"CPU oversubscribed in {int(n)} of {int(r['runs'])} run(s): {r['oversubscribed_why'] or 'see cpu'}")
    return points.apply(note, axis=1).astype("object") if len(points) else pd.Series([], dtype="object")


def _hosts_count(hosts):
    if isinstance(hosts, (list, tuple)):
        return len(hosts)
    return plain(hosts)


def environments(records) -> pd.DataFrame:
    """Per (system, device), sorted: ``runs``, ``projected_runs``, the distinct ``cpu_model``, ``gpu_name``,
    ``torch``, ``mpi_library``, ``horovod`` (sorted lists of text), ``hosts_max`` (None without hosts) and
    ``dates`` (``first .. last`` day, UTC) of the records."""
    frame = _frame(records)

    def values(s: pd.Series) -> list[str]:
        return sorted({str(v) for v in s.dropna() if v != ""})

    table = pd.DataFrame({
        "system": frame["system"], "device": frame["device"],
        "projected": _col(frame, "projected", "boolean").fillna(False).astype(int),
        "day": _col(frame, "timestamp", "datetime64[ns, UTC]").dt.strftime("%Y-%m-%d"),
        "hosts": _col(frame, "env.hosts", "object").map(_hosts_count, na_action="ignore"),
        **{f: _col(frame, f"env.{f}", "string") for f in ("cpu_model", "gpu_name", "torch", "mpi_library", "horovod")},
    })
    table["hosts"] = table["hosts"].where(table["hosts"].map(lambda h: isinstance(h, int)))
    out = table.groupby(["system", "device"], sort=True).agg(
        runs=("system", "size"), projected_runs=("projected", "sum"),
        **{f: (f, values) for f in ("cpu_model", "gpu_name", "torch", "mpi_library", "horovod")},
        hosts_max=("hosts", lambda h: plain(h.dropna().max()) if h.notna().any() else None),
        first=("day", "min"), last=("day", "max"),
    ).reset_index()
    out["dates"] = [f"{a} .. {b}" if isinstance(a, str) else "" for a, b in zip(out["first"], out["last"])]
    return out.drop(columns=["first", "last"])


# --- time to a target AUC ----------------------------------------------------------------

MLPERF_DROP_FROM = 5  # with this many runs or more, the fastest and slowest are dropped (MLPerf Training)


def _mlperf_median(times: list[float]) -> tuple[float | None, float | None, float | None]:
    """(median, min, max) of the runs that reached the target, the fastest and slowest dropped first when
    there are MLPERF_DROP_FROM or more (MLPerf Training's scoring of repeated runs)."""
    kept = sorted(t for t in times if t is not None and not math.isnan(t))
    if len(kept) >= MLPERF_DROP_FROM:
        kept = kept[1:-1]
    if not kept:
        return None, None, None
    return float(median(kept)), kept[0], kept[-1]


def time_to_target_points(records) -> pd.DataFrame:
    """One point per configuration, target AUC and rank count, from the measured runs that had a target
    (``--target-auc``): ``runs``, ``reached`` (how many reached it), ``time_to_target_s`` with its min and max
    (the MLPerf median: fastest and slowest dropped with five or more runs), ``epochs_to_target`` (median),
    and ``speedup`` against the series' smallest rank count. Empty without such runs."""
    frame = _frame(records)
    if "target_auc" not in frame or not frame["target_auc"].notna().any():
        return pd.DataFrame()
    table = frame[frame["target_auc"].notna()]
    projected = _col(table, "projected", "boolean").fillna(False).astype(bool)
    table = table[~projected]
    rows = []
    for key, group in table.groupby([*CONFIG_FIELDS, "target_auc", "world_size"], sort=True, dropna=False):
        times = [None if pd.isna(t) else float(t) for t in group["time_to_target_s"]]
        mid, low, high = _mlperf_median(times)
        epochs = [e for e in group["epochs_to_target"] if not pd.isna(e)]
        rows.append({**dict(zip(CONFIG_FIELDS, (plain(v) for v in key[:-2]))), "projected": False,
                     "target_auc": float(key[-2]), "nodes": int(key[-1]), "runs": len(group),
                     "reached": sum(t is not None for t in times), "time_to_target_s": mid,
                     "time_to_target_s_min": low, "time_to_target_s_max": high,
                     "epochs_to_target": float(median(epochs)) if epochs else None})
    points = pd.DataFrame(rows)
    first = points.groupby([*CONFIG_FIELDS, "target_auc"], sort=False, dropna=False)["time_to_target_s"].transform(
        "first")
    return points.assign(speedup=first / points["time_to_target_s"])
