"""What the runner's CPU-use sampling costs against an epoch.

    .venv/bin/python -m benchmarks.bench_cpu_sampling [--repeats 5000] [--records FILE.jsonl ...]

Each rank reads psutil twice per epoch (``bench/runner/cpu_use.py``: before and after ``train_epoch``, outside
the timed region, so ``epoch_s`` never contains it; it lengthens the run, not the measurement). This prints the
cost of one epoch's sampling (two samples and their difference), median over ``--repeats``, once with the
process idle and once with a background thread keeping a core busy (as the training threads do), and that
cost as a share of the shortest measured epoch: of the records given, or of a quick-preset run made here (one
process, 2 epochs, default threads; about a minute on 2 cores) and of a 16x16 run (the smallest the tests
train).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.records import one_per_run, read_records
from bench.runner import cpu_use
from benchmarks import run_main
from data.files import InputError

TINY = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "128"]


def sampling_cost_s(repeats: int) -> float:
    """Median seconds of one epoch's sampling: ``between(sample(), sample())``."""
    costs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cpu_use.between(cpu_use.sample(), cpu_use.sample())
        costs.append(time.perf_counter() - t0)
    return statistics.median(costs)


def busy_cost_s(repeats: int) -> float:
    """``sampling_cost_s`` while another thread of this process spins."""
    stop = threading.Event()

    def spin():
        x = 0
        while not stop.is_set():
            x += 1

    worker = threading.Thread(target=spin, daemon=True)
    worker.start()
    try:
        return sampling_cost_s(repeats)
    finally:
        stop.set()
        worker.join()


def shortest_epochs(paths) -> list[tuple[str, float]]:
    """(what, the shortest measured epoch in s) of each record in ``paths``."""
    out = []
    records, problems = read_records(paths, "--records")
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    for rec in one_per_run(records)[0]:
        if rec.get("epoch_s"):
            what = f"{rec['world_size']} rank(s), {rec['image_size']}px, batch {rec['global_batch']}"
            out.append((what, min(rec["epoch_s"])))
    if not out:
        raise InputError(f"--records {' '.join(map(str, paths))}: no record with a measured epoch")
    return out


def measured_here() -> list[tuple[str, float]]:
    """Measure a quick-preset epoch and a 16x16 epoch in this process with the harness itself."""
    from bench import strong_scaling

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.jsonl"
        for args in (["--preset", "quick", "--epochs", "2"], [*TINY, "--epochs", "3"]):
            assert strong_scaling.main([*args, "--out", str(out)]) == 0
        return shortest_epochs([out])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5000)
    ap.add_argument("--records", nargs="*", help="record files whose epochs to compare with (default: measure)")
    args = ap.parse_args()
    epochs = shortest_epochs(args.records) if args.records else None  # bad --records before the measuring
    idle, busy = sampling_cost_s(args.repeats), busy_cost_s(args.repeats)
    cost = max(idle, busy)
    print(f"sampling per epoch (2 psutil samples + difference), median of {args.repeats}: "
          f"{idle * 1e6:.1f} us idle, {busy * 1e6:.1f} us with a busy thread")
    epochs = epochs or measured_here()
    for what, epoch_s in sorted(epochs, key=lambda e: e[1]):
        print(f"  {what}: shortest epoch {epoch_s:.3f} s -> sampling {100 * cost / epoch_s:.4f}% of it "
              f"(budget 0.5%)")


if __name__ == "__main__":
    run_main(main)
