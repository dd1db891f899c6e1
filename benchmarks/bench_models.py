"""Every registered model side by side: per-rank speed and 2-rank efficiency, or quality at a fixed budget.

    .venv-vision/bin/python -m benchmarks.bench_models rates [--models ...] [--sizes 224 64] [--epochs 3]
    .venv-vision/bin/python -m benchmarks.bench_models quality [--models ...] [--image-size 64] [--epochs 4]
        [--train-events 8192] [--val-events 4096] [--threads 0] [--data synthetic | FILE]

``rates``: for each model and image size it takes (models.check_image_size), one ``mpirun -np 2
bench.strong_scaling --sweep --threads 1 --backend mpi`` (1 rank, then 2 ranks, one thread each, in one
allocation, taking the same global batch) and prints, from the records the harness wrote: images/s per rank
at 1 and 2 ranks (train_events / median measured epoch / ranks), the training FLOPs per image
(``train_flops_per_image``), the achieved GFLOP/s per rank, and the 2-rank efficiency ips(2) / (2 ips(1)).
Global batch 32 and 64 events per epoch at 224 px and above, 128 and 512 below (about a minute per epoch
for ResNet-50 at 224 on one core).

``quality``: one single-process run per model on the same toy events (same seed, split and order), for the
same number of epochs, and prints the test AUC, the signal-efficiency ratio and the s/sqrt(b) ratio against
the cut-based selection (``physics`` in the record, bootstrap errors), each beside the study's CNN
(``circpad``), and the training time.

Needs torchvision for its models (the vision environment, README 'Standard image models'); Open MPI for
``rates``. Records go to ``--out`` (default: a temporary file).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import models
from bench import mpijob
from benchmarks import MPI_ENV

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["circpad", "resnet50", "densenet121", "inception_v3", "mobilenet_v2"]


def harness(args: list[str], ranks: int, out: Path) -> list[dict]:
    cmd = [sys.executable, "-m", "bench.strong_scaling", *args, "--out", str(out)]
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), *cmd]
    before = len(out.read_text().splitlines()) if out.exists() else 0
    proc = mpijob.run(cmd, cwd=ROOT, env=MPI_ENV, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return [json.loads(line) for line in out.read_text().splitlines()[before:]]


def rates(a, out: Path) -> None:
    print(f"1 thread per rank, backend mpi, {a.epochs - 1} measured epoch(s) (median), toy events\n")
    print("| model | image | params | training GFLOP/image | global batch | images/s per rank, 1 rank | "
          "GFLOP/s per rank, 1 rank | images/s per rank, 2 ranks | 2-rank efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    resnet = None
    for size in a.sizes:
        for name in a.models:
            try:
                models.check_image_size(name, size)
            except ValueError as exc:
                print(f"| {name} | {size} | not run: {exc} ||||||")
                continue
            batch, events = (32, 64) if size >= 224 else (128, 512)
            flags = ["--model", name, "--image-size", str(size), "--global-batch", str(batch), "--train-events",
                     str(events), "--val-events", str(batch), "--epochs", str(a.epochs), "--sweep",
                     "--threads", "1", "--backend", "mpi"]
            try:
                recs = {r["world_size"]: r for r in harness(flags, 2, out)}
            except RuntimeError as exc:
                print(f"| {name} | {size} | failed: {exc} ||||||", flush=True)
                continue
            one, two = recs[1], recs[2]
            flops = one["train_flops_per_image"]
            eff = two["images_per_s"] / (2 * one["images_per_s"])
            print(f"| {name} | {size} | {one['model_params']:,} | {flops / 1e9:.2f} | {batch} | "
                  f"{one['images_per_s']:.2f} | {one['achieved_gflop_s']:.1f} | {two['images_per_s'] / 2:.2f} | "
                  f"{eff:.2f} |", flush=True)
            if (name, size) == ("resnet50", 224):
                resnet = (one, two)
    if resnet is not None:
        beside_published(*resnet)


def beside_published(one: dict, two: dict) -> None:
    """This machine's ResNet-50 rate at 224x224 beside the published per-node and per-GPU ResNet-50 rates of
    the projection's profiles (bench/projection/profiles.json, each with its source)."""
    from bench.projection.profiles import load

    prof = load()
    work = prof.workloads["resnet50"]
    you = next(p for p in prof.published if p["name"] == "you-resnet50-2048-knl")
    titan = prof.systems["titan-rtx"].achieved_tflops
    per_core = one["images_per_s"]
    print(f"\nResNet-50 at 224x224 beside published rates (published FLOPs per image: {work.flops_per_image / 1e9:.1f} "
          f"G, {work.source}; counted here: {one['train_flops_per_image'] / 1e9:.1f} G):\n")
    print("| where | images/s | training TFLOP/s | source |")
    print("|---|---|---|---|")
    print(f"| here, one core (1 rank, 1 thread) | {per_core:.2f} | {one['achieved_gflop_s'] / 1e3:.3f} | measured above |")
    print(f"| here, 2 ranks x 1 thread ({two['cpu']['logical_cores']} logical cores on this machine) | "
          f"{two['images_per_s']:.2f} | {two['achieved_gflop_s'] / 1e3:.3f} | measured above |")
    knl = you["measured"]["value"]
    print(f"| one KNL node (Xeon Phi 7250, IntelCaffe), in 2,048-node ImageNet training | {knl:g} | "
          f"{knl * work.flops_per_image / 1e12:.2f} | {prof.sources[you['measured']['source'].split('+')[0]]}: "
          f"{you['measured']['derived']} |")
    print(f"| one NVIDIA TITAN RTX (PyTorch, fp32) | {titan.low * 1e12 / work.flops_per_image:.0f} | {titan.low:g} | "
          f"{prof.sources['cgnorthcutt']} |")


def quality(a, out: Path) -> None:
    print(f"{a.data} {a.image_size}x{a.image_size}, {a.train_events} training / {a.val_events} validation events, "
          f"{a.epochs} epochs at global batch {a.global_batch}, Adam lr {a.lr}, seed {a.seed}, one process\n")
    print("| model | params | test AUC | signal-eff. ratio | s/sqrt(b) ratio | cut background events | "
          "training time (s) |")
    print("|---|---|---|---|---|---|---|")
    for name in a.models:
        try:
            models.check_image_size(name, a.image_size)
        except ValueError as exc:
            print(f"| {name} | not run: {exc} ||||||")
            continue
        flags = ["--model", name, "--data", a.data, "--image-size", str(a.image_size), "--global-batch", str(a.global_batch),
                 "--train-events", str(a.train_events), "--val-events", str(a.val_events), "--epochs",
                 str(a.epochs), "--lr", str(a.lr), "--seed", str(a.seed), "--threads", str(a.threads)]
        try:
            (rec,) = harness(flags, 1, out)
        except RuntimeError as exc:
            print(f"| {name} | failed: {exc} ||||||", flush=True)
            continue
        p = rec["physics"]
        sig = f"{p['sig_ratio']:.3f} ± {p['sig_ratio_err']:.3f}" if p.get("sig_ratio") is not None else "-"
        train_s = rec["warmup_epoch_s"] + sum(rec["epoch_s"])
        print(f"| {name} | {rec['model_params']:,} | {rec['test_auc']:.4f} | {p['eff_ratio']:.3f} ± "
              f"{p['eff_ratio_err']:.3f} | {sig} | {p['cut_background_events']} | {train_s:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rates")
    r.add_argument("--models", nargs="+", default=NAMES, choices=models.available())
    r.add_argument("--sizes", nargs="+", type=int, default=[224, 64])
    r.add_argument("--epochs", type=int, default=3)
    q = sub.add_parser("quality")
    q.add_argument("--models", nargs="+", default=[n for n in NAMES if n != "inception_v3"],
                   choices=models.available())
    q.add_argument("--image-size", type=int, default=64)
    q.add_argument("--epochs", type=int, default=4)
    q.add_argument("--global-batch", type=int, default=256)
    q.add_argument("--train-events", type=int, default=8192)
    q.add_argument("--val-events", type=int, default=4096)
    q.add_argument("--lr", type=float, default=1e-3)
    q.add_argument("--seed", type=int, default=1234)
    q.add_argument("--threads", type=int, default=0)
    q.add_argument("--data", default="synthetic", help="the events: the toy, or an HDF5 event store")
    for p in (r, q):
        p.add_argument("--out", default="", help="records file (default: a temporary one)")
    a = ap.parse_args()
    for name in a.models:
        try:
            models.check_available(name)
        except ImportError as exc:
            sys.exit(f"bench_models: --models {name}: {exc}")
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="models-")) / "records.jsonl"
    print(f"records: {out}")
    (rates if a.what == "rates" else quality)(a, out)


if __name__ == "__main__":
    main()
