"""Allreduce of a model's gradient as each backend does it, against a bare mpi4py Allreduce of the same
bytes. Run it under MPI:

    mpirun -np 2 .venv/bin/python -m benchmarks.bench_allreduce [--model circpad --image-size 64]

* bare mpi4py: ``Allreduce(IN_PLACE)`` on one float32 buffer of all gradient bytes;
* mpi backend: ``MpiSync.sync`` on the fused gradient buffer (Allreduce + division);
* horovod: ``hvd.allreduce_`` (Average) of every parameter-shaped tensor, launched asynchronously and
  waited for, as DistributedOptimizer does (Horovod fuses them into its fusion buffer);
* ddp: gloo ``all_reduce`` of the gradients in DDP's default 25 MB buckets.

Each is repeated alternately; the figure is the median of the slowest rank's times. Bus bandwidth is
2 (n-1)/n * S / t, the ring-allreduce convention.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from mpi4py import MPI

import models
from bench.runner.backends import DdpSync, MpiSync, available
from bench.runner.comm import init_world


def timed(world, fn) -> float:
    world.barrier()
    t0 = time.perf_counter()
    fn()
    return world.allreduce_max(time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="circpad")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    world = init_world()
    net = models.get_model(args.model, image_size=args.image_size)
    params = [p for p in net.parameters()]
    nbytes = sum(p.numel() for p in params) * 4
    bare = np.ones(nbytes // 4, dtype=np.float32)
    for p in params:
        p.grad = torch.ones_like(p)

    mpi = MpiSync(world)
    mpi.wrap(net, None, 1)
    tests = {
        "bare mpi4py Allreduce": lambda: world.mpi.Allreduce(MPI.IN_PLACE, bare, op=MPI.SUM),
        "mpi backend (fused buffer)": lambda: mpi.sync(net, None),
    }
    if available("horovod"):
        import horovod.torch as hvd
        hvd.init(comm=world.mpi)
        grads = [p.grad for p in params]

        def horovod_allreduce():
            handles = [hvd.allreduce_async_(g, op=hvd.Average, name=f"g{i}") for i, g in enumerate(grads)]
            for h in handles:
                hvd.synchronize(h)
        tests["horovod allreduce_ (per tensor, fused)"] = horovod_allreduce
    ddp = DdpSync(world)
    ddp.wrap(models.get_model(args.model, image_size=args.image_size), None, 1)
    buckets, current, size = [], [], 0
    for p in reversed(params):  # DDP buckets from the last layer, 25 MB each
        current.append(p.grad.reshape(-1))
        size += p.numel() * 4
        if size >= 25 * 2**20:
            buckets.append(torch.cat(current))
            current, size = [], 0
    if current:
        buckets.append(torch.cat(current))

    def gloo_allreduce():
        works = [ddp.dist.all_reduce(b, async_op=True) for b in buckets]
        for w in works:
            w.wait()
    tests["ddp gloo all_reduce (25 MB buckets)"] = gloo_allreduce

    times = {k: [] for k in tests}
    for _ in range(2):  # warm-up
        for fn in tests.values():
            timed(world, fn)
    for _ in range(args.repeats):
        for name, fn in tests.items():
            times[name].append(timed(world, fn))
    if world.is_root:
        n = world.size
        print(f"{args.model} {args.image_size}x{args.image_size}: gradient {nbytes / 1e6:.1f} MB, {n} ranks, "
              f"{args.repeats} alternating repeats (median of the slowest rank)")
        base = statistics.median(times["bare mpi4py Allreduce"])
        for name, ts in times.items():
            t = statistics.median(ts)
            bus = 2 * (n - 1) / n * nbytes / t / 1e9
            print(f"  {name:40s} {t * 1e3:8.1f} ms  bus {bus:6.2f} GB/s  x{t / base:5.2f} of bare MPI")
    ddp.close()
    if available("horovod"):
        hvd.shutdown()


if __name__ == "__main__":
    main()
