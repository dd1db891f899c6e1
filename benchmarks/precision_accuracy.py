"""bf16 against fp32, from the records of scripts/precision_accuracy.sh: the table of docs/precision.md.

    python -m benchmarks.precision_accuracy results/precision/records.jsonl

Per precision, over its seeds: the test AUC, the efficiency ratio CNN / cuts at the cuts' background
efficiency (``physics.eff_ratio``), the epochs to ``--target-auc`` and the median epoch time (mean, sample
standard deviation, and the seeds' values), then the paired difference bf16 - fp32 of the same seed (the same
split and initial weights). Verdict: bf16 costs AUC when its mean test AUC is below fp32's by more than the
larger of the two precisions' seed standard deviations; ``--amp auto`` picks bf16 on a CPU only if it does
not (bench/runner/config.py, ``BF16_COSTS_AUC``).
"""
from __future__ import annotations

import argparse
import statistics
import sys

from bench.records import one_per_run, precision_of, read_records
from benchmarks import run_main

FIGURES = (("test AUC", lambda r: r.get("test_auc")), ("efficiency ratio", lambda r: (r.get("physics") or {}).get("eff_ratio")),
           ("epochs to target", lambda r: r.get("epochs_to_target")),
           ("epoch s", lambda r: statistics.median(r["epoch_s"]) if r.get("epoch_s") else None))


def spread(values: list) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "n/a"
    sd = statistics.stdev(got) if len(got) > 1 else 0.0
    return f"{statistics.mean(got):.4g} +- {sd:.2g} ({', '.join(f'{v:.4g}' for v in got)})"


def verdict(runs: dict[str, dict[int, dict]]) -> tuple[bool, str]:
    """(bf16 costs AUC, why) from the test AUCs of both precisions (``runs``: precision -> seed -> record)."""
    auc = {p: [r["test_auc"] for r in runs[p].values()] for p in ("fp32", "bf16")}
    sd = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in auc.values())
    loss = statistics.mean(auc["fp32"]) - statistics.mean(auc["bf16"])
    costs = loss > sd
    return costs, (f"mean test AUC fp32 - bf16 = {loss:+.4f}; the larger seed standard deviation is {sd:.4f}: "
                   + ("bf16 costs AUC beyond the seeds' spread" if costs else "within the seeds' spread"))


def runs_of(paths) -> tuple[dict[str, dict[int, dict]], list[int], list[str]]:
    """(precision -> seed -> record, the seeds with both precisions, problems read) of records files."""
    records, problems = read_records(paths, "records")
    runs: dict[str, dict[int, dict]] = {"fp32": {}, "bf16": {}}
    for rec in one_per_run(records)[0]:
        if precision_of(rec) in runs:
            runs[precision_of(rec)][rec["config"]["seed"]] = rec
    return runs, sorted(set(runs["fp32"]) & set(runs["bf16"])), problems


def verdict_of(path) -> bool:
    """Whether bf16 costs AUC by the records at ``path`` (``verdict`` over the seeds with both precisions).
    Raises ValueError with fewer than two such seeds."""
    runs, paired, _ = runs_of([str(path)])
    if len(paired) < 2:
        raise ValueError(f"{path}: {len(paired)} seed(s) with both precisions; need two or more")
    return verdict({p: {s: runs[p][s] for s in paired} for p in runs})[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("records", nargs="+", help="records of scripts/precision_accuracy.sh")
    args = ap.parse_args()
    runs, paired, problems = runs_of(args.records)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if len(paired) < 2:
        print(f"error: {len(paired)} seed(s) with both precisions in {' '.join(args.records)}; need two or more "
              "(scripts/precision_accuracy.sh)", file=sys.stderr)
        return 2
    first = runs["fp32"][paired[0]]
    print(f"{first['data'].get('path', first['data'].get('kind'))}: {first['train_events']} training events, "
          f"{first['config']['epochs']} epochs, global batch {first['global_batch']}, target AUC "
          f"{first.get('target_auc')}; seeds {paired}")
    print("| precision | " + " | ".join(name for name, _ in FIGURES) + " |")
    print("|---|" + "---|" * len(FIGURES))
    for p in ("fp32", "bf16"):
        print(f"| {p} | " + " | ".join(spread([get(runs[p][s]) for s in paired]) for _, get in FIGURES) + " |")
    diffs = [spread([None if get(runs["bf16"][s]) is None or get(runs["fp32"][s]) is None
                     else get(runs["bf16"][s]) - get(runs["fp32"][s]) for s in paired]) for _, get in FIGURES]
    print("| bf16 - fp32, same seed | " + " | ".join(diffs) + " |")
    print(verdict({p: {s: runs[p][s] for s in paired} for p in runs})[1])
    return 0


if __name__ == "__main__":
    run_main(main)
