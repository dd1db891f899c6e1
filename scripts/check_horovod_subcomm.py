"""Check Horovod's behaviour on MPI sub-communicators, and its allreduce cost.

Run with exactly two ranks:

    mpirun --allow-run-as-root --oversubscribe -np 2 .venv/bin/python scripts/check_horovod_subcomm.py

What it documents (the benchmark harness relies on each point):

1. ``hvd.init(comm=MPI.COMM_WORLD)``: an allreduce of a torch tensor averages
   over the ranks; ``hvd.shutdown()``.
2. ``hvd.init(comm=sub)`` on a one-rank communicator from
   ``COMM_WORLD.Split`` (rank 0 alone, rank 1 gets ``MPI.UNDEFINED`` and only
   waits at a world barrier), allreduce, ``hvd.shutdown()``. This is how a
   strong-scaling sweep runs a smaller rank count inside one ``mpirun``.
3. Re-init on the full world after that: allreduce, then
   ``hvd.DistributedOptimizer(named_parameters=..., backward_passes_per_step=2)``
   checked against a hand-computed SGD step, then the allreduce throughput of
   a 37 MB float32 tensor (median of 10) against mpi4py ``Allreduce`` of the
   same buffer.

mpi4py is imported before Horovod, so MPI is initialised by mpi4py (with
MPI_THREAD_MULTIPLE) and Horovod's shutdown leaves MPI alive; that is what
makes shutdown + re-init possible at all. Prints a summary on rank 0 and
exits non-zero if a check fails.
"""

import copy
import statistics
import sys
import time

from mpi4py import MPI  # first: MPI must be initialised by mpi4py, not Horovod

import numpy as np
import torch

import horovod
import horovod.torch as hvd

WORLD = MPI.COMM_WORLD
RANK = WORLD.Get_rank()
SIZE = WORLD.Get_size()

BENCH_BYTES = 37_000_000          # 37 MB, about the size of the CNN's gradients
BENCH_REPS = 10
BENCH_WARMUP = 2

failures = []
report = []


def say(msg):
    if RANK == 0:
        report.append(msg)
        print(msg, flush=True)


def check(ok, what):
    """Record a check; the verdict is agreed across the world so all ranks exit alike."""
    if not ok:
        print(f"[rank {RANK}] FAILED: {what}", file=sys.stderr, flush=True)
        failures.append(what)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def check_allreduce(tag, comm_ranks):
    """Average of each member's world rank, i.e. mean(comm_ranks)."""
    x = torch.full((1000,), float(RANK))
    y = hvd.allreduce(x, name=f"{tag}.avg")   # default op: Average
    expected = float(np.mean(comm_ranks))
    ok = torch.allclose(y, torch.full_like(y, expected))
    check(ok, f"{tag}: allreduce average gave {y[0].item()} expected {expected}")
    return ok


def check_distributed_optimizer(tag, comm_ranks, bpps=2, steps=2, lr=0.1):
    """DistributedOptimizer(named_parameters, backward_passes_per_step) vs a hand SGD step.

    Horovod sums the bpps local micro-batch gradients (each loss.backward()
    accumulates into .grad) and averages that sum over the ranks; it does not
    divide by bpps. The reference model replays all ranks' micro-batches.
    """
    torch.manual_seed(1234 + RANK)   # rank-local init, so broadcast_parameters matters
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    ref = copy.deepcopy(model)

    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=lr),
        named_parameters=model.named_parameters(),
        backward_passes_per_step=bpps,
    )
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)

    def batch(step, micro, r):
        g = torch.Generator().manual_seed(10_000 * step + 100 * micro + r)
        return torch.randn(5, 8, generator=g), torch.randn(5, 3, generator=g)

    for step in range(steps):
        opt.zero_grad()
        for micro in range(bpps):
            x, t = batch(step, micro, RANK)
            torch.nn.functional.mse_loss(model(x), t).backward()
        opt.step()

        ref_opt.zero_grad()
        for r in comm_ranks:
            for micro in range(bpps):
                x, t = batch(step, micro, r)
                (torch.nn.functional.mse_loss(ref(x), t) / len(comm_ranks)).backward()
        ref_opt.step()

    max_err = max((p - q).abs().max().item() for p, q in zip(model.parameters(), ref.parameters()))
    ok = max_err < 1e-5
    check(ok, f"{tag}: DistributedOptimizer result differs from reference by {max_err:.3g}")
    return ok, max_err


def run_benchmarks(reps=BENCH_REPS, warmup=BENCH_WARMUP):
    """hvd vs mpi4py allreduce of one 37 MB float32 buffer.

    The methods are interleaved within each repetition, so that load from
    elsewhere on the machine hits all of them alike; each sample is the
    slowest rank's time for one call (barrier before each call). Buffers are
    zeros so repeated in-place sums stay bounded without a refill.
    """
    n = BENCH_BYTES // 4
    t = torch.zeros(n, dtype=torch.float32)
    t_np = t.numpy()                      # shares memory with t
    buf = np.zeros(n, dtype=np.float32)
    out = np.empty_like(buf)

    def mpi_tensor_avg():
        # What a hand-rolled gradient allreduce in the harness would do.
        WORLD.Allreduce(MPI.IN_PLACE, t_np, op=MPI.SUM)
        t.div_(SIZE)

    methods = [
        # DistributedOptimizer's path: allreduce_async_ in place, op=Average.
        ("hvd.allreduce_ (Average, in-place)", lambda: hvd.allreduce_(t, name="bench.inplace.avg")),
        ("hvd.allreduce_ (Sum, in-place)", lambda: hvd.allreduce_(t, op=hvd.Sum, name="bench.inplace.sum")),
        ("hvd.allreduce (Average, out-of-place)", lambda: hvd.allreduce(t, name="bench.avg")),
        ("mpi4py Allreduce (IN_PLACE, SUM)", lambda: WORLD.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)),
        ("mpi4py Allreduce on tensor.numpy() + div_", mpi_tensor_avg),
        ("mpi4py Allreduce (out-of-place, SUM)", lambda: WORLD.Allreduce(buf, out, op=MPI.SUM)),
    ]
    samples = {name: [] for name, _ in methods}
    for i in range(warmup + reps):
        for name, fn in methods:
            WORLD.Barrier()
            t0 = time.perf_counter()
            fn()
            dt = WORLD.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            if i >= warmup:
                samples[name].append(dt)

    say(f"allreduce of {BENCH_BYTES / 1e6:.0f} MB float32 ({n} elements), {SIZE} ranks, "
        f"{reps} interleaved reps (slowest rank per call):")
    for name, _ in methods:
        med, best = statistics.median(samples[name]), min(samples[name])
        say(f"  {name:44s} median {med * 1e3:7.1f} ms ({BENCH_BYTES / med / 1e9:5.2f} GB/s)"
            f"  min {best * 1e3:7.1f} ms")


def main():
    if SIZE != 2:
        if RANK == 0:
            print(f"run with exactly 2 ranks (got {SIZE})", file=sys.stderr)
        return 2
    torch.set_num_threads(1)   # 2 ranks + Horovod's background threads share 2 cores
    say(f"horovod {horovod.__version__}, torch {torch.__version__}, mpi_built={hvd.mpi_built()}, world size {SIZE}")

    # 1. Full world.
    _, t_init = timed(hvd.init, comm=MPI.COMM_WORLD)
    check(hvd.size() == SIZE and hvd.rank() == RANK, "phase 1: hvd size/rank != world")
    ok1 = check_allreduce("phase1", list(range(SIZE)))
    okopt1, err1 = check_distributed_optimizer("phase1", list(range(SIZE)))
    say(f"mpi_threads_supported={hvd.mpi_threads_supported()}")
    _, t_shut = timed(hvd.shutdown)
    t_init, t_shut = WORLD.allreduce(t_init, op=MPI.MAX), WORLD.allreduce(t_shut, op=MPI.MAX)
    say(f"phase 1 world init:   allreduce ok={ok1}, DistributedOptimizer(bpps=2) ok={okopt1} "
        f"(max err {err1:.1e}); hvd.init {t_init * 1e3:.1f} ms, hvd.shutdown {t_shut * 1e3:.1f} ms")

    # 2. One-rank sub-communicator: rank 0 alone, rank 1 not a member.
    color = 0 if RANK == 0 else MPI.UNDEFINED
    sub = WORLD.Split(color, RANK)
    if sub != MPI.COMM_NULL:
        _, t_init2 = timed(hvd.init, comm=sub)
        check(hvd.size() == 1 and hvd.rank() == 0, "phase 2: hvd size/rank != 1/0")
        ok2 = check_allreduce("phase2", [RANK])
        okopt2, err2 = check_distributed_optimizer("phase2", [RANK])
        _, t_shut2 = timed(hvd.shutdown)
        sub.Free()
        say(f"phase 2 sub-comm (size 1) init: allreduce ok={ok2}, DistributedOptimizer ok={okopt2} "
            f"(max err {err2:.1e}); hvd.init {t_init2 * 1e3:.1f} ms, hvd.shutdown {t_shut2 * 1e3:.1f} ms")
    t0 = time.perf_counter()
    WORLD.Barrier()   # rank 1 waits here the whole of phase 2
    if RANK == 1:
        print(f"[rank 1] waited {time.perf_counter() - t0:.2f} s at the world barrier during phase 2",
              flush=True)

    # 3. Re-init on the full world.
    _, t_init3 = timed(hvd.init, comm=MPI.COMM_WORLD)
    check(hvd.size() == SIZE and hvd.rank() == RANK, "phase 3: hvd size/rank != world")
    ok3 = check_allreduce("phase3", list(range(SIZE)))
    okopt3, err3 = check_distributed_optimizer("phase3", list(range(SIZE)))
    t_init3 = WORLD.allreduce(t_init3, op=MPI.MAX)
    say(f"phase 3 world re-init: allreduce ok={ok3}, DistributedOptimizer(bpps=2) ok={okopt3} "
        f"(max err {err3:.1e}); hvd.init {t_init3 * 1e3:.1f} ms")
    run_benchmarks()
    _, t_shut3 = timed(hvd.shutdown)
    t_shut3 = WORLD.allreduce(t_shut3, op=MPI.MAX)
    say(f"phase 3 hvd.shutdown {t_shut3 * 1e3:.1f} ms")

    n_fail = WORLD.allreduce(len(failures), op=MPI.SUM)
    say("ALL CHECKS PASSED" if n_fail == 0 else f"{n_fail} CHECK(S) FAILED")
    return 0 if n_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
