"""Epochs and time to a target validation AUC against the global batch, for Adam and LAMB.

    python -m benchmarks.bench_time_to_target [--model compact] [--image-size 32] [--train-events 32768]
        [--val-events 2048] [--target-auc 0.8] [--max-epochs 20] [--batches 512,4096,32768] [--out FILE]

One single-process run of ``bench.strong_scaling`` per (optimizer, global batch), each with ``--target-auc``
and ``--stop-at-target`` on the toy data, the same events and seed for all:

* ``adam``: Adam at ``--lr`` whatever the batch (the reference study's recipe);
* ``lamb``: LAMB with the linear scaling rule from ``--lr`` at global batch 512 and a linear warm-up of
  ``--warmup-epochs``.

Prints one markdown row per run: steps per epoch, the learning rate used, epochs and training time to the
target (warm-up included), and the best AUC. The records go to ``--out``. At a fixed number of events a larger
global batch takes fewer steps per epoch, which is what a large-batch recipe has to make up for.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.runner.config import from_dict, learning_rate

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="compact")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--train-events", type=int, default=32768)
    ap.add_argument("--val-events", type=int, default=2048)
    ap.add_argument("--target-auc", type=float, default=0.8)
    ap.add_argument("--max-epochs", type=int, default=20)
    ap.add_argument("--batches", default="512,4096,32768")
    ap.add_argument("--optimizers", default="adam,lamb")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-epochs", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default="", help="records file (default: a temporary one)")
    a = ap.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="ttt-")) / "records.jsonl"
    print(f"toy {a.image_size}x{a.image_size}, model {a.model}, {a.train_events} training events, target AUC "
          f"{a.target_auc}, at most {a.max_epochs} epochs; records: {out}\n")
    print("| optimizer | global batch | steps/epoch | lr | epochs to target | time to target (s) | best AUC |")
    print("|---|---|---|---|---|---|---|")
    for optimizer in a.optimizers.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            flags = ["--model", a.model, "--image-size", str(a.image_size), "--train-events", str(a.train_events),
                     "--val-events", str(a.val_events), "--global-batch", str(batch), "--epochs", str(a.max_epochs),
                     "--target-auc", str(a.target_auc), "--stop-at-target", "--optimizer", optimizer,
                     "--lr", str(a.lr), "--threads", str(a.threads), "--out", str(out)]
            if optimizer == "lamb":
                flags += ["--lr-scaling", "linear", "--lr-base-batch", "512", "--lr-warmup-epochs",
                          str(a.warmup_epochs)]
            proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *flags], cwd=ROOT,
                                  capture_output=True, text=True)
            if proc.returncode:
                print(f"| {optimizer} | {batch} | failed: {proc.stderr.strip().splitlines()[-1]} |||||")
                continue
            rec = json.loads(out.read_text().splitlines()[-1])
            lr = learning_rate(from_dict(rec["config"]))  # as the run used it
            best = max(x for x in rec["auc"] if x is not None)
            k, t = rec["epochs_to_target"], rec["time_to_target_s"]
            epochs = str(k) if k is not None else f"not in {len(rec['auc'])}"
            seconds = f"{t:.0f}" if t is not None else "-"
            print(f"| {optimizer} | {batch} | {rec['steps_per_epoch']} | {lr:g} | {epochs} | {seconds} | "
                  f"{best:.4f} |", flush=True)


if __name__ == "__main__":
    main()
