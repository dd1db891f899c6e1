"""From records to numbers: grouping, medians, speedup, efficiency, GPU crossover.

Pure functions on plain dicts and lists; nothing here plots or writes files.

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
"""
from __future__ import annotations

import math
from statistics import median

from bench.records import Problem, read_records

CONFIG_FIELDS = ("system", "device", "backend", "model", "image_size", "global_batch", "preset")
# The fields a CPU cluster and a GPU baseline must share to be compared.
COMPARE_FIELDS = ("model", "image_size", "global_batch")
SPREAD_WARN = 0.10  # repeats that disagree by more than this (max/min - 1) get a warning
TIME_PARTS = ("compute_s", "comm_s", "data_wait_s")


def load_measured(paths) -> tuple[list[dict], list[Problem]]:
    """The records of ``paths`` that hold a measured epoch (``bench.records.read_records``), and a problem
    for every line left out, runs without a measured epoch included. Raises FileNotFoundError naming a
    missing file."""
    records, problems = read_records(paths)
    kept = []
    for rec in records:
        if rec["epoch_s"]:
            kept.append(rec)
        else:
            path, _, line = rec["_source"].rpartition(":")
            problems.append(Problem(path, int(line), f"no measured epoch (epoch_s is empty) in run {rec['run_id']}; "
                                                     "skipped"))
    problems.sort(key=lambda p: (p.path, p.line))
    return kept, problems


def config_of(rec: dict) -> tuple:
    return tuple(rec[f] for f in CONFIG_FIELDS)


def config_label(config: tuple, fields=CONFIG_FIELDS) -> str:
    """Human-readable name of a configuration, e.g. ``KNL, cpu, horovod, circpad 224px, batch 32768, paper``."""
    named = dict(zip(CONFIG_FIELDS, config))
    parts = []
    for f in fields:
        v = named[f]
        if f == "image_size":
            parts.append(f"{v}px")
        elif f == "global_batch":
            parts.append(f"batch {v}")
        else:
            parts.append(str(v))
    return ", ".join(parts)


def nodes_of(rec: dict) -> int:
    """The scaling coordinate of a run: its number of ranks.

    With one rank per node (the study's KNL runs, the launchers' default) this is the node count. Keying on
    ranks, not on ``nodes``, keeps the points of a sweep inside one node (1, 2, 4 ranks on a workstation,
    or the first points of a multi-rank-per-node sweep) apart instead of merging them as repeats.
    """
    return rec["world_size"]


def run_epoch_s(rec: dict) -> float:
    return median(rec["epoch_s"])


def run_images_per_s(rec: dict) -> float | None:
    if rec.get("images_per_s") is not None:
        return rec["images_per_s"]
    if rec.get("train_events") is not None:
        return rec["train_events"] / run_epoch_s(rec)
    return None


def _median_of(values) -> float | None:
    values = [v for v in values if v is not None]
    return median(values) if values else None


def _last(values) -> float | None:
    return values[-1] if values else None


def make_point(recs: list[dict]) -> dict:
    """One point from the repeats ``recs`` (same configuration, node count and projected flag)."""
    times = [run_epoch_s(r) for r in recs]
    ips = [v for v in map(run_images_per_s, recs) if v is not None]
    point = {
        "config": config_of(recs[0]),
        "projected": bool(recs[0].get("projected", False)),
        "nodes": nodes_of(recs[0]),
        "world_sizes": sorted({r["world_size"] for r in recs}),
        "runs": len(recs),
        "epoch_s": median(times),
        "epoch_s_min": min(times),
        "epoch_s_max": max(times),
        "spread": max(times) / min(times) - 1,
        "images_per_s": _median_of(ips),
        "train_events": _median_of(r.get("train_events") for r in recs),
        "images_per_s_min": min(ips) if ips else None,
        "images_per_s_max": max(ips) if ips else None,
        "auc": _median_of(_last(r.get("auc") or []) for r in recs),
        "sources": [r.get("_source", "?") for r in recs],
    }
    for part in TIME_PARTS:
        point[part] = _median_of(r.get(part) for r in recs)
    return point


def group_points(records: list[dict]) -> list[dict]:
    """Points of every series, sorted by configuration, projected flag and node count."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        key = (config_of(rec), bool(rec.get("projected", False)), nodes_of(rec))
        groups.setdefault(key, []).append(rec)
    return [make_point(groups[k]) for k in sorted(groups, key=lambda k: (tuple(map(str, k[0])), k[1], k[2]))]


def series_of(points: list[dict]) -> dict[tuple, list[dict]]:
    """``{(config, projected): [points sorted by nodes]}`` in a stable order."""
    out: dict[tuple, list[dict]] = {}
    for p in points:
        out.setdefault((p["config"], p["projected"]), []).append(p)
    for pts in out.values():
        pts.sort(key=lambda p: p["nodes"])
    return out


def add_scaling(points: list[dict]) -> list[dict]:
    """Copies of ``points`` with baseline_nodes, speedup (with min/max from the spread) and efficiency.

    A measured series is scaled against its own smallest node count. A projected series is
    scaled against the measured baseline of the same configuration when there is one (so its
    dashed line continues the measured curve), else against its own smallest node count;
    ``baseline_projected`` says which.
    """
    all_series = series_of(points)
    out = []
    for (config, projected), pts in all_series.items():
        base = pts[0]
        if projected and (config, False) in all_series:
            base = all_series[(config, False)][0]
        for p in pts:
            scale = p["nodes"] / base["nodes"]
            speedup = base["epoch_s"] / p["epoch_s"]
            out.append(dict(
                p,
                baseline_nodes=base["nodes"],
                baseline_projected=base["projected"],
                speedup=speedup,
                # The range of speedups the repeats at N allow, against the baseline's median.
                speedup_min=base["epoch_s"] / p["epoch_s_max"],
                speedup_max=base["epoch_s"] / p["epoch_s_min"],
                efficiency=speedup / scale,
            ))
    return out


def scaling_rows(records: list[dict]) -> list[dict]:
    """Every point with its scaling numbers: the main table."""
    return add_scaling(group_points(records))


# --- CPU cluster against one GPU -------------------------------------------------------

def is_gpu_baseline(rec: dict) -> bool:
    return rec["device"] == "cuda" and rec["world_size"] == 1 and not rec.get("projected", False)


def gpu_baselines(records: list[dict]) -> list[dict]:
    """One point per GPU configuration, from the measured single-GPU (world_size 1) runs."""
    return group_points([r for r in records if is_gpu_baseline(r)])


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


def _time_ratio(gpu: dict, cpu: dict) -> float:
    """GPU time / CPU time for the same events: epoch times per training event (plain epoch times when a
    record does not say its events)."""
    if gpu.get("train_events") and cpu.get("train_events"):
        return (gpu["epoch_s"] / gpu["train_events"]) / (cpu["epoch_s"] / cpu["train_events"])
    return gpu["epoch_s"] / cpu["epoch_s"]


def gpu_comparison(rows: list[dict], gpus: list[dict]) -> tuple[list[dict], list[dict]]:
    """Compare every CPU series in ``rows`` (from ``scaling_rows``) with every matching GPU baseline.

    Returns ``(summary, ratios)``: one summary row per (CPU series, GPU baseline) with the
    crossover node count and the ratio at the largest N; one ratio row per node count.
    The ratio is GPU epoch time / CPU epoch time over the same events (the CPU run's epoch; each time is
    scaled by its run's training events): above 1 the cluster is faster.
    """
    summary, ratios = [], []
    for (config, projected), pts in series_of([r for r in rows if r["config"][1] == "cpu"]).items():
        cpu = dict(zip(CONFIG_FIELDS, config))
        for gpu in gpus:
            g = dict(zip(CONFIG_FIELDS, gpu["config"]))
            if any(cpu[f] != g[f] for f in COMPARE_FIELDS):
                continue
            # Runs may differ in events per epoch: compare times per event, and give the GPU's time for
            # the CPU run's epoch (the same events), not the GPU run's own epoch time.
            rs = [_time_ratio(gpu, p) for p in pts]
            nodes = [p["nodes"] for p in pts]
            for p, r in zip(pts, rs):
                ratios.append({"cpu_config": config, "gpu_config": gpu["config"], "projected": projected,
                               "nodes": p["nodes"], "cpu_epoch_s": p["epoch_s"],
                               "gpu_epoch_s": p["epoch_s"] * r, "ratio": r})
            n_cross, text = crossover(nodes, rs)
            summary.append({"cpu_config": config, "gpu_config": gpu["config"], "projected": projected,
                            "gpu_epoch_s": pts[-1]["epoch_s"] * rs[-1], "gpu_runs": gpu["runs"],
                            "crossover_nodes": n_cross, "crossover": text,
                            "largest_nodes": nodes[-1], "ratio_at_largest": rs[-1]})
    return summary, ratios


# --- Warnings and provenance ------------------------------------------------------------

def point_warnings(rows: list[dict]) -> list[str]:
    """What a reader must know before trusting the numbers (measured points only)."""
    out = []
    quick = sorted({r["config"] for r in rows if r["config"][CONFIG_FIELDS.index("preset")] == "quick"})
    for config in quick:
        out.append(f"{config_label(config)}: preset 'quick' (smoke-sized runs): these numbers are not benchmarks")
    for r in rows:
        if r["projected"]:
            continue
        where = f"{config_label(r['config'])} at {r['nodes']} node(s)"
        if r["spread"] > SPREAD_WARN + 1e-9:  # exactly 10% (20 s vs 22 s) is not "more than"
            out.append(f"{where}: repeats disagree by {r['spread']:.0%} (max/min - 1 of epoch times "
                       f"{r['epoch_s_min']:.4g}..{r['epoch_s_max']:.4g} s)")
        if r["runs"] == 1:
            out.append(f"{where}: only one run, no repeat to judge the spread")
        if len(r["world_sizes"]) > 1:
            out.append(f"{where}: repeats have different world sizes {r['world_sizes']}; combined as one point")
    return out


def _hosts_count(env: dict):
    hosts = env.get("hosts")
    if isinstance(hosts, (list, tuple)):
        return len(hosts)
    return hosts


def environments(records: list[dict]) -> list[dict]:
    """Per (system, device): the software and hardware the records came from, and their dates."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["system"], rec["device"]), []).append(rec)
    out = []
    for (system, device), recs in sorted(groups.items()):
        envs = [r.get("env") or {} for r in recs]

        def values(get):
            return sorted({str(v) for v in map(get, envs) if v not in (None, "")})

        dates = sorted(r["timestamp"][:10] for r in recs if r.get("timestamp"))
        hosts = [h for h in map(_hosts_count, envs) if isinstance(h, int)]
        out.append({
            "system": system, "device": device, "runs": len(recs),
            "projected_runs": sum(bool(r.get("projected")) for r in recs),
            "cpu_model": values(lambda e: e.get("cpu_model")),
            "gpu_name": values(lambda e: e.get("gpu_name")),
            "hosts_max": max(hosts) if hosts else None,
            "torch": values(lambda e: e.get("torch")),
            "mpi_library": values(lambda e: e.get("mpi_library")),
            "horovod": values(lambda e: e.get("horovod")),
            "dates": f"{dates[0]} .. {dates[-1]}" if dates else "",
        })
    return out
