"""Images per second of a circpad training step through the harness, against a minimal plain-PyTorch
loop of the same model, batch and optimizer, measured side by side in one run.

    python benchmarks/bench_step.py [--image-size 64] [--batch 256] [--steps 6] [--repeats 5]

The harness path is bench.train.train_epoch with the synthetic source (data made on the fly in the
background loader, weighted loss, timing). The plain loop trains on one fixed in-memory batch: it is the
I/O-free upper bound a user would write by hand. Repeats alternate between the two so that machine noise
hits both alike; the figures are medians.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import models  # noqa: E402
from bench.backends import GradSync  # noqa: E402
from bench.comm import init_world  # noqa: E402
from bench.sampler import epoch_plan  # noqa: E402
from bench.train import train_epoch  # noqa: E402
from data.base import training_weights  # noqa: E402
from data.synthetic import SyntheticSource  # noqa: E402


def plain_loop(model, opt, x, y, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(model(x), y).backward()
        opt.step()
    return steps * len(x) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="circpad")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    world = init_world()
    n = args.batch * args.steps
    source = SyntheticSource(n, image_size=args.image_size, seed=1)
    tw = training_weights(source.labels, source.weights)
    plan = epoch_plan(np.arange(n), 0, 1, args.batch, 1, 0, args.batch)

    def fresh():
        torch.manual_seed(0)
        m = models.get_model(args.model, image_size=args.image_size)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)

    hm, hopt = fresh()
    pm, popt = fresh()
    b = source.load(np.arange(args.batch))
    x, y = torch.from_numpy(b.x), torch.from_numpy(b.y)
    # warm-up of both paths (allocator, thread pool)
    plain_loop(pm, popt, x, y, 1)
    train_epoch(hm, hopt, GradSync(world), world, source, plan[:1], tw, torch.device("cpu"), 0, 2)
    harness, plain = [], []
    for _ in range(args.repeats):
        t = train_epoch(hm, hopt, GradSync(world), world, source, plan, tw, torch.device("cpu"), 0, 2)
        harness.append(n / t.epoch_s)
        plain.append(plain_loop(pm, popt, x, y, args.steps))
    h, p = statistics.median(harness), statistics.median(plain)
    print(f"{args.model} {args.image_size}x{args.image_size}, batch {args.batch}, {torch.get_num_threads()} threads, "
          f"{args.repeats} alternating repeats of {args.steps} steps")
    print(f"  harness (synthetic data, prefetch): {h:8.1f} images/s (median; spread {min(harness):.1f}-{max(harness):.1f})")
    print(f"  plain PyTorch loop (fixed batch):   {p:8.1f} images/s (median; spread {min(plain):.1f}-{max(plain):.1f})")
    print(f"  ratio harness / plain: {h / p:.3f}")


if __name__ == "__main__":
    main()
