"""Per-rank speed of the training step against this machine's ceilings and against a plain PyTorch loop.

    python -m benchmarks.bench_step [--model circpad] [--image-size 64] [--batch 256]
        [--steps 3] [--repeats 5] [--threads 0] [--variants default,plain,...] [--profile] [--data PATH]

Side by side in one run, each in its own process (so each has its own allocator and thread settings)
and taking turns, so that machine noise hits all alike; every figure is a median over the repeats:

* ``matmul``, ``matmul_bf16``: the matrix-multiply rate (4096^3, torch.mm) at fp32 and bf16 on the same
  number of threads;
* ``conv``, ``conv_bf16``: a large 3x3 channels-last convolution through oneDNN at fp32 and bf16
  (bench/projection/ceilings.py), the best kernel a CNN step can approach; on non-Intel CPUs MKL's fp32
  matmul may be slower than oneDNN's convolutions, so the matmul alone is not a ceiling there;
* ``default``: the harness's training step (bench.runner.train.train_epoch, synthetic data made on the fly by the
  background loader, weighted loss) with the default configuration;
* variants with one speed option changed (``contiguous``, ``loop_optimizer``, ``system_allocator``,
  ``compile``, ``bf16``, ``bf16_compile``, ``device``: the sparse device cache): each option must pay for
  itself;
* ``augment`` (``augment_bf16``): the device cache with every symmetry transform of --augment
  (bench/runner/augment.py); its cost is its step time against ``device``'s (``device_bf16``'s), target
  under 3%;
* ``plain``: what a user writes by hand: the model, default memory format and settings, ``Adam``, one
  fixed in-memory batch, ``zero_grad / loss.backward() / step``.

The training FLOPs per image (forward + backward) come from torch.utils.flop_counter; the achieved rate is
FLOPs per image x images/s, and its fraction of each ceiling of its own precision is printed (a bf16 step
against the bf16 ceilings): the theoretical peak (cores x clock x FLOPs per cycle of the precision's
fastest unit, from /proc/cpuinfo: bench/projection/ceilings.py), the conv and the matmul. The clock is the
reported one, or higher where the fastest repeat of a measured kernel proves the cores ran faster (a VM
reports its base clock), so no fraction of the peak exceeds 100%. ``--profile`` prints the
torch.profiler table of the harness step's top operators.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

from benchmarks import run_main

# name -> harness flags (None: the plain loop; "matmul": the matmul rate)
VARIANTS = {
    "default": [],
    "contiguous": ["--memory-format", "contiguous"],
    "loop_optimizer": ["--optimizer-impl", "loop"],
    "system_allocator": ["--cpu-allocator", "system"],
    "compile": ["--compile"],
    "bf16": ["--amp", "bf16"],
    "bf16_compile": ["--amp", "bf16", "--compile"],
    "device": ["--data-placement", "device"],
    "augment": ["--data-placement", "device", "--augment", "all"],
    "device_bf16": ["--data-placement", "device", "--amp", "bf16"],
    "augment_bf16": ["--data-placement", "device", "--augment", "all", "--amp", "bf16"],
    "plain": None,
    "matmul": "matmul",
    "conv": "conv",
    "matmul_bf16": "matmul_bf16",
    "conv_bf16": "conv_bf16",
}
KERNELS = ("matmul", "conv", "matmul_bf16", "conv_bf16")  # the measured ceilings, always run


def precision_of(name: str) -> str:
    """The arithmetic precision a contender runs at: bf16 for --amp bf16 and the bf16 kernels, else fp32."""
    flags = VARIANTS[name]
    if isinstance(flags, str):
        return "bf16" if flags.endswith("_bf16") else "fp32"
    return "bf16" if flags and "bf16" in flags else "fp32"
MATMUL_N = 4096


def _worker(conn, kind, flags, args):
    """A process holding one contender; answers ('run',) with (images or flops per second, data wait s)."""
    import torch

    torch.set_num_threads(args.threads)
    if kind in KERNELS:
        measure = _kernel(kind)
    elif kind == "plain":
        measure = _plain(args)
    else:
        measure = _harness(conn, kind, flags, args)
    conn.send(("ready", None))
    while conn.recv() == "run":
        conn.send(("result", measure()))


def _kernel(kind: str):
    """A ceiling contender (matmul or conv, fp32 or bf16), warmed up: its ``measure()`` gives (FLOP/s, 0)."""
    from bench.projection.ceilings import measure_conv_gflops, measure_matmul_gflops
    precision = "bf16" if kind.endswith("_bf16") else "fp32"
    if kind.startswith("matmul"):
        def measure():
            return measure_matmul_gflops(MATMUL_N, 3, precision) * 1e9, 0.0
    else:
        def measure():
            return measure_conv_gflops(repeats=3, precision=precision) * 1e9, 0.0
    measure()
    return measure


def _plain(args):
    """The hand-written loop on one fixed in-memory batch, warmed up: its ``measure()`` gives (images/s, 0)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    import models
    from data.synthetic import SyntheticSource
    torch.manual_seed(0)
    model = models.get_model(args.model, image_size=args.image_size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = SyntheticSource(args.batch, image_size=args.image_size, seed=1).load(np.arange(args.batch))
    x, y = torch.from_numpy(batch.x), torch.from_numpy(batch.y)

    def steps(n):
        for _ in range(n):
            opt.zero_grad()
            F.binary_cross_entropy_with_logits(model(x), y).backward()
            opt.step()

    def measure():
        t0 = time.perf_counter()
        steps(args.steps)
        return args.steps * args.batch / (time.perf_counter() - t0), 0.0
    steps(1)
    return measure


def _harness(conn, kind, flags, args):
    """The harness's training step with the harness ``flags``, warmed up (with --profile, the default
    variant sends its profile table on ``conn``): its ``measure()`` gives (images/s, data-wait fraction)."""
    import numpy as np
    import torch

    import models
    from bench.runner import speed
    from bench.runner.backends import GradSync
    from bench.runner.augment import Augment, parse
    from bench.runner.comm import init_world
    from bench.runner.config import parse_config
    from bench.runner.device_data import DeviceCache
    from bench.runner.run import make_optimizer
    from bench.runner.sampler import epoch_plan
    from bench.runner.train import train_epoch
    from data import open_source, training_weights
    # fp32 unless the variant says otherwise: --amp auto would pick bf16 on a CPU with a bf16 unit, and
    # every contender is reported against the ceilings of its own precision (precision_of)
    pin = [] if "--amp" in flags else ["--amp", "none"]
    cfg = parse_config(["--model", args.model, "--image-size", str(args.image_size), "--data", args.data,
                        *pin, *flags])
    # as bench.strong_scaling.run() sets up a rank
    speed.configure_cpu_allocator(cfg.cpu_allocator)
    torch.manual_seed(0)
    net = models.from_config(cfg)
    opt = make_optimizer(cfg, net)
    model = speed.maybe_compile(net, cfg.compile == "on")
    precision = speed.Precision(cfg.amp, torch.device("cpu"))
    n = args.batch * args.steps
    source = open_source(cfg.data, cfg.image_size, cfg.normalisation, cfg.seed, n)
    pool = np.arange(min(len(source), n))
    tw = training_weights(source.labels, source.weights)
    if cfg.data_placement == "device":
        source = DeviceCache(source, pool, torch.device("cpu"), cfg.memory_format == "channels_last")
    transforms = parse(cfg.augment)
    augment = Augment(transforms, cfg.seed) if transforms else None
    world = init_world()

    def epoch(k, plan_steps):
        plan = epoch_plan(pool, k, cfg.seed, args.batch, 1, 0, args.batch)[:plan_steps]
        return train_epoch(model, opt, GradSync(world), world, source, plan, tw, torch.device("cpu"), k,
                           cfg.prefetch, precision=precision,
                           memory_format=speed.memory_format(cfg.memory_format), augment=augment)
    counter = iter(range(1, 10**9))

    def measure():
        t = epoch(next(counter), args.steps)
        return len(t.step_s) * args.batch / t.epoch_s, t.data_wait_s / t.epoch_s
    epoch(0, 1)  # warm-up (and compilation)
    if args.profile and kind == "default":
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            epoch(next(counter), 2)
        conn.send(("profile", prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)))
    return measure


def _alternate(names: list[str], args) -> dict:
    """Each contender of ``names`` in its own process, --repeats rounds taking turns. Returns name -> the
    (rate, data wait) of each round."""
    ctx = mp.get_context("spawn")
    procs, conns = {}, {}
    for name in names:  # started one at a time: set-up and compilation do not overlap
        kind = VARIANTS[name] if isinstance(VARIANTS[name], str) else ("plain" if VARIANTS[name] is None else name)
        parent, child = ctx.Pipe()
        procs[name] = ctx.Process(target=_worker, args=(child, kind, VARIANTS[name] or [], args), daemon=True)
        procs[name].start()
        conns[name] = parent
        while True:
            tag, payload = parent.recv()
            if tag == "ready":
                break
            print(payload)
    results = {n: [] for n in names}
    for _ in range(args.repeats):
        for name in names:
            conns[name].send("run")
            results[name].append(conns[name].recv()[1])
    for name in names:
        conns[name].send("stop")
        procs[name].join()
    return results


def main() -> None:
    """Run the contenders of the command line and print their rates against the ceilings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="circpad")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256, help="per-rank batch")
    ap.add_argument("--steps", type=int, default=3, help="training steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    ap.add_argument("--variants", default="default,plain,matmul,contiguous,loop_optimizer,system_allocator",
                    help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--data", default="synthetic", help="data of the harness variants: synthetic or a file")
    ap.add_argument("--profile", action="store_true", help="print the harness step's top operators")
    args = ap.parse_args()
    args.threads = args.threads or os.cpu_count()
    names = args.variants.split(",")
    for must in ("default", "plain", *KERNELS):
        if must not in names:
            names.append(must)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.data != "synthetic":  # before the workers start, which would each fail on it
        from data.files import check_input_file

        check_input_file(args.data, "--data")
    import models
    flops, per_op = models.training_flops(models.get_model(args.model, image_size=args.image_size),
                                          args.image_size)
    report(names, _alternate(names, args), flops, per_op, args)


def report(names: list[str], results: dict, flops: float, per_op: dict, args) -> None:
    """Print the ceilings at each precision and every contender against those of its own precision."""
    from bench.projection.ceilings import peak_at, proven_clock_ghz
    from bench.runner.environment import cpuinfo
    med = {n: statistics.median(r[0] for r in results[n]) for n in names}
    info = cpuinfo()
    best = {p: max(med[k] for k in KERNELS if precision_of(k) == p) for p in ("fp32", "bf16")}
    # the fastest single repeat of any kernel proves the clock the cores reached (a VM reports its base clock)
    fastest = {p: max(r[0] for k in KERNELS if precision_of(k) == p for r in results[k]) / 1e9 for p in best}
    ghz, clock = proven_clock_ghz(info, args.threads, fastest)
    peaks = {p: peak_at(info, args.threads, p, ghz) for p in best}
    try:
        load = "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = "load average unknown"
    print(f"{args.model} {args.image_size}x{args.image_size}, batch {args.batch}, {args.threads} threads, "
          f"{args.repeats} alternating repeats of {args.steps} steps; {load} at the end")
    print(f"training FLOPs per image (forward + backward, torch.utils.flop_counter): {flops / 1e9:.3f} GFLOP "
          f"({', '.join(f'{k} {v / 1e9:.3f}' for k, v in per_op.items())})")
    print(f"clock: {ghz:.2f} GHz ({clock})")
    for p, (peak, how) in peaks.items():
        kernels = [k for k in KERNELS if precision_of(k) == p]
        print(f"{p} ceilings on {args.threads} threads: theoretical peak {peak:.1f} GFLOP/s ({how}); "
              + "; ".join(f"{k} {med[k] / 1e9:.1f} GFLOP/s ({min(r[0] for r in results[k]) / 1e9:.1f}-"
                          f"{max(r[0] for r in results[k]) / 1e9:.1f})" for k in kernels))
    print(f"{'contender':18s} {'prec.':>5s} {'images/s':>9s} {'spread':>15s} {'x plain':>8s} {'x default':>9s} "
          f"{'GFLOP/s':>8s} {'of peak':>8s} {'of conv':>8s} {'of matmul':>9s} {'data wait':>9s}")
    for name in (n for n in names if n not in KERNELS):
        p = precision_of(name)
        conv, matmul = med["conv" if p == "fp32" else "conv_bf16"], med["matmul" if p == "fp32" else "matmul_bf16"]
        rates = [r[0] for r in results[name]]
        rate = med[name] * flops
        print(f"{name:18s} {p:>5s} {med[name]:9.1f} {min(rates):7.1f}-{max(rates):<7.1f} "
              f"{med[name] / med['plain']:8.3f} {med[name] / med['default']:9.3f} {rate / 1e9:8.1f} "
              f"{rate / 1e9 / peaks[p][0]:8.1%} {rate / conv:8.1%} {rate / matmul:9.1%} "
              f"{statistics.median(r[1] for r in results[name]):9.1%}")
    print(f"targets: harness / plain {med['default'] / med['plain']:.3f} (>= 1.25); harness at "
          f"{med['default'] * flops / best['fp32']:.1%} of the best measured fp32 kernel (>= 50%), "
          f"{med['default'] * flops / 1e9 / peaks['fp32'][0]:.1%} of the fp32 peak"
          + (f"; bf16 step / fp32 step {med['bf16'] / med['default']:.2f} (>= 2.5 on AMX CPUs)" if "bf16" in med else "")
          + "".join(f"; augmentation's cost{tag.replace('_', ' at ')}: step time {med['device' + tag] / med['augment' + tag] - 1:+.1%} "
                    f"against device{tag} (< 3%)" for tag in ("", "_bf16")
                    if "augment" + tag in med and "device" + tag in med))


if __name__ == "__main__":
    run_main(main)
