"""2-rank strong-scaling efficiency of circpad-64 on this machine, per backend.

    .venv/bin/python -m benchmarks.bench_two_rank_efficiency [--backends mpi ddp horovod] [--global-batch 1024]

For each backend it runs one `mpirun -np 2 ... --sweep --threads 1` (1 rank with one thread, then 2 ranks
with one thread each, in one allocation) and prints images/s at 1 and 2 ranks and the efficiency
ips(2) / (2 * ips(1)), read from the records the harness wrote.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench import mpijob
from benchmarks import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["mpi", "ddp", "horovod"])
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--global-batch", type=int, default=1024)
    ap.add_argument("--train-events", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    print(f"circpad {args.image_size}x{args.image_size}, global batch {args.global_batch}, "
          f"{args.train_events} events/epoch, 1 thread per rank, {args.epochs - 1} measured epoch(s)")
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.jsonl"
            cmd = ["mpirun", "-np", "2", sys.executable, "-m", "bench.strong_scaling", "--sweep", "--threads", "1",
                   "--backend", backend, "--image-size", str(args.image_size), "--global-batch",
                   str(args.global_batch), "--train-events", str(args.train_events), "--val-events", "256",
                   "--epochs", str(args.epochs), "--out", str(out)]
            proc = mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True)
            if proc.returncode:
                print(f"  {backend}: failed\n{proc.stderr[-2000:]}")
                continue
            recs = {r["world_size"]: r for r in map(json.loads, out.read_text().splitlines())}
        one, two = recs[1], recs[2]
        eff = two["images_per_s"] / (2 * one["images_per_s"])
        print(f"  {backend:8s} 1 rank {one['images_per_s']:7.1f} img/s | 2 ranks {two['images_per_s']:7.1f} img/s "
              f"(compute {two['compute_s']:.2f} s, comm {two['comm_s']:.2f} s, wait {two['data_wait_s']:.2f} s "
              f"per epoch) | efficiency {eff:.2f}")


if __name__ == "__main__":
    main()
