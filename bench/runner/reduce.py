"""Per-rank timings reduced to the figures a record reports. Pure functions of plain numbers.

Each rank summarises its own epochs (``rank_summary``); rank 0 gathers the summaries and reduces them
(``reduce_ranks``):

* an epoch's time is the slowest rank's (epochs start and end at a barrier, so this is the job's clock);
* the split of an epoch into compute, exposed communication and data wait is the slowest rank's, the
  slowest being the one with the most busy time (sum of its measured step times);
* the median step time is over every measured step of every rank; ``step_s_max_rank`` is the largest
  per-rank median;
* the first epoch is the warm-up: kept apart, never in a median.
"""
from __future__ import annotations

import statistics


def rank_summary(epochs: list, peak_rss_bytes: int) -> dict:
    """One rank's summary of its epochs (``bench.runner.train.EpochTimes`` or anything with ``epoch_s``,
    ``step_s``, ``compute_s``, ``comm_s``, ``data_wait_s``, all in seconds); epochs[0] is the warm-up.

    Returns ``{"epoch_s": [s per epoch], "steps": [s per measured step], "busy": s, "step_median": s or None,
    "compute": s, "comm": s, "wait": s (each per measured epoch), "rss": bytes}``.
    """
    measured = epochs[1:]
    steps = [s for t in measured for s in t.step_s]
    n = max(1, len(measured))
    return {
        "epoch_s": [t.epoch_s for t in epochs],
        "steps": steps,
        "busy": float(sum(steps)),
        "step_median": float(statistics.median(steps)) if steps else None,
        "compute": sum(t.compute_s for t in measured) / n,
        "comm": sum(t.comm_s for t in measured) / n,
        "wait": sum(t.data_wait_s for t in measured) / n,
        "rss": int(peak_rss_bytes),
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
