"""Per-rank timings reduced to the figures a record reports. Pure functions of plain numbers.

Each rank summarises its own epochs (``rank_summary``); rank 0 gathers the summaries and reduces them
(``reduce_ranks``):

* an epoch's time is the slowest rank's (epochs start and end at a barrier, so this is the job's clock);
* the split of an epoch into compute, exposed communication and data wait is the slowest rank's, the
  slowest being the one with the most busy time (sum of its measured step times);
* the median step time is over every measured step of every rank; ``step_s_max_rank`` is the largest
  per-rank median;
* the first epoch is the warm-up: kept apart, never in a median;
* CPU use (``bench/runner/cpu_use.py``): each rank's CPU time over wall time in its measured epochs, per
  torch thread, summarised over ranks (median, least, most); context switches per measured epoch, the
  most-switched rank's; a run is oversubscribed when any node's ranks x threads exceed its available cores, or
  when the least-used rank ran under the floor of cores per thread.
"""
from __future__ import annotations

import statistics


def rank_summary(epochs: list, peak_rss_bytes: int, placement: dict | None = None) -> dict:
    """One rank's summary of its epochs (``bench.runner.train.EpochTimes`` or anything with ``epoch_s``,
    ``step_s``, ``compute_s``, ``comm_s``, ``data_wait_s``, all in seconds, and ``cpu``: the epoch's
    ``bench.runner.cpu_use.between`` dict or None); epochs[0] is the warm-up. ``placement``: ``{"threads":
    torch threads of this rank, "ranks_on_node": ranks of this world on its node, "node_cores": cores that node
    lets them use}``, None when unknown.

    Returns ``{"epoch_s": [s per epoch], "steps": [s per measured step], "busy": s, "step_median": s or None,
    "compute": s, "comm": s, "wait": s (each per measured epoch), "rss": bytes, "cpu": None without a
    placement, else the placement with "epochs" (measured), "wall_s", "cpu_s" (s, summed over the measured
    epochs), "voluntary", "involuntary" (switches, summed); the sums are None when an epoch has no sample}``.
    """
    measured = epochs[1:]
    steps = [s for t in measured for s in t.step_s]
    n = max(1, len(measured))
    cpu = None
    if placement is not None:
        samples = [getattr(t, "cpu", None) for t in measured]
        sampled = bool(samples) and all(samples)
        cpu = {**placement, "epochs": len(measured),
               **{k: (sum(c[k] for c in samples) if sampled else None)
                  for k in ("wall_s", "cpu_s", "voluntary", "involuntary")}}
    return {
        "epoch_s": [t.epoch_s for t in epochs],
        "steps": steps,
        "busy": float(sum(steps)),
        "step_median": float(statistics.median(steps)) if steps else None,
        "compute": sum(t.compute_s for t in measured) / n,
        "comm": sum(t.comm_s for t in measured) / n,
        "wait": sum(t.data_wait_s for t in measured) / n,
        "rss": int(peak_rss_bytes),
        "cpu": cpu,
    }


def reduce_cpu(ranks: list[dict], util_floor: float | None) -> dict | None:
    """The record's CPU-use figures from every rank's ``rank_summary`` ``cpu`` (None if a rank has none).

    Returns ``ranks_x_threads`` (the largest over nodes), ``cores_available`` (the fewest a node had),
    ``util_median`` (CPU time / wall time of a rank: cores kept busy, median over ranks), ``util_per_thread_
    median``, ``_min``, ``_max`` (that over its torch threads, over ranks), ``voluntary_ctx_switches`` and
    ``involuntary_ctx_switches`` (per measured epoch, the most-switched rank's), ``oversubscribed`` and
    ``oversubscribed_why`` (the reasons, or None). Utilisation and switches are None without samples (no
    measured epoch, or epochs resumed from a checkpoint that had none); ``util_floor`` None leaves the
    utilisation out of the verdict (a GPU run's threads wait for the device).
    """
    cpu = [r.get("cpu") for r in ranks]
    if not cpu or any(c is None for c in cpu):
        return None
    sampled = all(c["wall_s"] for c in cpu)  # None or 0 without a measured, sampled epoch
    util = [c["cpu_s"] / c["wall_s"] for c in cpu] if sampled else []
    per_thread = [u / c["threads"] for u, c in zip(util, cpu)]
    reasons = []
    crowded = [c for c in cpu if c["ranks_on_node"] * c["threads"] > c["node_cores"]]
    if crowded:
        c = max(crowded, key=lambda c: c["ranks_on_node"] * c["threads"] / c["node_cores"])
        reasons.append(f"{c['ranks_on_node']} rank(s) x {c['threads']} thread(s) = {c['ranks_on_node'] * c['threads']}"
                       f" on a node with {c['node_cores']} available core(s)")
    if util_floor is not None and per_thread and min(per_thread) < util_floor:
        reasons.append(f"the least-used rank ran {min(per_thread):.2f} cores per thread (under {util_floor})")

    def per_epoch(key):
        return round(max(c[key] / c["epochs"] for c in cpu)) if sampled else None

    return {
        "ranks_x_threads": max(c["ranks_on_node"] * c["threads"] for c in cpu),
        "cores_available": min(c["node_cores"] for c in cpu),
        "util_median": statistics.median(util) if util else None,
        "util_per_thread_median": statistics.median(per_thread) if per_thread else None,
        "util_per_thread_min": min(per_thread) if per_thread else None,
        "util_per_thread_max": max(per_thread) if per_thread else None,
        "voluntary_ctx_switches": per_epoch("voluntary"),
        "involuntary_ctx_switches": per_epoch("involuntary"),
        "oversubscribed": bool(reasons),
        "oversubscribed_why": "; ".join(reasons) or None,
    }


def reduce_ranks(ranks: list[dict], train_events: int) -> dict:
    """The record's timing fields from every rank's ``rank_summary`` (same number of epochs on each).

    ``train_events``: training images per epoch over all ranks. Returns ``warmup_epoch_s``, ``epoch_s``
    (measured epochs, the slowest rank's), ``images_per_s`` (``train_events`` / median measured epoch; None
    without one), ``step_s_median``, ``step_s_max_rank``, ``compute_s``, ``comm_s``, ``data_wait_s`` (per
    measured epoch, on the busiest rank), ``peak_rss_bytes`` (the largest rank's). Raises ValueError for no
    ranks or ranks with different numbers of epochs.
    """
    if not ranks:
        raise ValueError("no rank summaries to reduce")
    counts = {len(r["epoch_s"]) for r in ranks}
    if len(counts) != 1 or not counts.pop():
        raise ValueError("every rank must report the same, non-zero number of epochs")
    epoch_s = [max(times) for times in zip(*(r["epoch_s"] for r in ranks))]
    busiest = max(ranks, key=lambda r: r["busy"])
    all_steps = [s for r in ranks for s in r["steps"]]
    measured = epoch_s[1:]
    return {
        "warmup_epoch_s": epoch_s[0],
        "epoch_s": measured,
        "images_per_s": train_events / statistics.median(measured) if measured else None,
        "step_s_median": float(statistics.median(all_steps)) if all_steps else None,
        "step_s_max_rank": max(r["step_median"] for r in ranks) if all_steps else None,
        "compute_s": busiest["compute"],
        "comm_s": busiest["comm"],
        "data_wait_s": busiest["wait"],
        "peak_rss_bytes": max(r["rss"] for r in ranks),
    }
