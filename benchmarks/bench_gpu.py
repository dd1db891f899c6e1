"""The single-GPU baseline: images per second of the circpad training step on one GPU, and its fraction
of the GPU's dense bf16 peak and of a bf16 matrix multiply measured on the device; beside them the fp32 peak
and a measured fp32 (TF32 off) matmul, the ceilings of an fp32 step.

    python -m benchmarks.bench_gpu [--sizes 64,224] [--batch-64 512] [--batch-224 128]
        [--amp bf16|fp16|none] [--compile off|on|both] [--profile] [--steps 20] [--repeats 5] [--out F]

What a competent user runs (the harness's --device cuda settings, bench/runner/speed.py): bf16 autocast,
channels-last, the fused Adam, cuDNN autotuning, optionally torch.compile. Two figures per image size:

* ``step``: a fixed batch already on the device (the I/O-free number, timed between CUDA
  synchronisations after warm-up steps, as nanoGPT's bench.py);
* ``harness, host data``: bench.runner.train.train_epoch with the synthetic source made on the CPU by the
  background loader, pinned and copied with non_blocking; its data-wait share says whether the CPU keeps
  the GPU fed;
* ``harness, device data``: the same epoch with the events preloaded on the GPU as lit pixels and each
  batch built there (``--data-placement device``, bench/runner/device_data.py, the default with --device cuda);
  ``build`` is the GPU time of building one batch, as a share of the step.

The peak comes from a small table of known GPUs (dense bf16 tensor-core TFLOP/s, vendor data sheets);
an unknown GPU gets only the measured matmul as reference. Without a CUDA device it exits with status 1
and says so.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

import models
from bench.runner import speed
from bench.runner.backends import GradSync
from bench.runner.comm import init_world
from bench.runner.device_data import DeviceCache
from bench.runner.sampler import epoch_plan
from bench.runner.train import train_epoch
from benchmarks import run_main
from data.base import training_weights
from data.files import append_whole
from data.synthetic import SyntheticSource

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from NVIDIA's datasheets (half their with-sparsity figures;
# docs/physics-reference.md, 'Hardware'); the first name fragment found in the device name wins.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM5 (device name "NVIDIA H100 80GB HBM3")
    ("H200", 989.0),
    ("A100", 312.0),
    ("TITAN RTX", 130.0),  # Turing has no bf16: fp16 tensor-core peak with fp32 accumulation
)
# Dense fp32 (non-tensor) peak, TFLOP/s (docs/physics-reference.md, 'Hardware'): H100 SXM 66.9 and TITAN RTX
# 16.3 from NVIDIA's figures (the TITAN RTX's not rechecked); H200 as the H100 SXM; the rest not rechecked.
PEAK_FP32_TFLOPS = (
    ("H100 PCIe", 51.2),
    ("H100 NVL", 60.0),
    ("H100", 66.9),
    ("H200", 66.9),
    ("A100", 19.5),
    ("TITAN RTX", 16.3),
)
MATMUL_N = 8192


def peak_tflops(name: str, table=PEAK_BF16_TFLOPS) -> float | None:
    for fragment, tflops in table:
        if fragment.lower() in name.lower():
            return tflops
    return None


def timed(fn, device, repeats: int) -> list[float]:
    """Seconds of ``fn()`` per repeat, between device synchronisations."""
    out = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda d: None)
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def matmul_tflops(device, dtype, repeats: int, n: int = MATMUL_N) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def ten():
        for _ in range(10):
            torch.mm(a, b)
    ten()
    return 10 * 2 * n ** 3 / statistics.median(timed(ten, device, repeats)) / 1e12


def profile(steps, compiled: bool, size: int, top: int = 12) -> None:
    """The kernels of three training steps, by GPU time (torch.profiler)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        steps(3)
        torch.cuda.synchronize()
    # Kernels (and copies) only: an aten operator's own device time repeats its kernels'.
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    total = sum(e.self_device_time_total for e in events) or 1.0
    print(f"  profile, {size}x{size}, compile {'on' if compiled else 'off'}: GPU time of 3 steps "
          f"{total / 1e3:.1f} ms")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:top]:
        print(f"    {e.self_device_time_total / total:6.1%}  {e.count:5d}x  {e.key[:100]}")


@dataclass(frozen=True)
class Bench:
    """What every figure of a run shares: the flags, the device and its name, the world of one, the images'
    memory format, and the reference rates (TFLOP/s; a peak is None for a GPU not in the tables)."""

    args: argparse.Namespace
    device: torch.device
    name: str
    world: object  # bench.runner.comm.World
    fmt: torch.memory_format
    peak: float | None  # dense bf16 peak
    mm_bf16: float  # measured bf16 matmul
    peak32: float | None  # dense fp32 peak
    mm_fp32: float  # measured fp32 matmul, TF32 off


@dataclass(frozen=True)
class Events:
    """One image size's synthetic events: on the host (``source``), preloaded on the device (``cache``), the
    epoch's ``plan``, and one fixed batch already on the device (``x``, ``y``)."""

    size: int
    batch: int
    source: SyntheticSource
    cache: DeviceCache
    weights: np.ndarray  # training weights
    plan: np.ndarray
    x: torch.Tensor
    y: torch.Tensor


def parse_args() -> argparse.Namespace:
    """The command line (the module's docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,224")
    ap.add_argument("--batch-64", type=int, default=1024)
    ap.add_argument("--batch-224", type=int, default=256)
    ap.add_argument("--amp", default="bf16", choices=["bf16", "fp16", "none"])
    ap.add_argument("--compile", default="off", choices=["off", "on", "both"],
                    help="torch.compile the model; both: eager and compiled in turn, side by side")
    ap.add_argument("--no-host-data", dest="host_data", action="store_false",
                    help="skip the epoch with the CPU loader (eager only anyway)")
    ap.add_argument("--profile", action="store_true", help="print the GPU kernels that take the most time")
    ap.add_argument("--memory-format", default="channels_last", choices=["channels_last", "contiguous"])
    ap.add_argument("--steps", type=int, default=20, help="training steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="", help="append one JSON line per figure to this file")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: a dry run of this script's code on small sizes (its figures mean nothing)")
    return ap.parse_args()


def main() -> int:
    """Measure every image size and variant of the command line; returns the exit status (1: no GPU)."""
    args = parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU is available (torch.cuda.is_available() is False, torch "
              f"{torch.__version__}); nothing measured. Run it on a machine with a GPU and a CUDA build of "
              "PyTorch.", file=sys.stderr)
        return 1
    device = torch.device(args.device, 0) if args.device == "cuda" else torch.device("cpu")
    speed.configure_device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    peak, mm_bf16, peak32, mm_fp32 = reference_rates(device, name, args.repeats)
    bench = Bench(args, device, name, init_world(), speed.memory_format(args.memory_format), peak, mm_bf16,
                  peak32, mm_fp32)
    for size in (int(s) for s in args.sizes.split(",")):
        events = make_events(bench, size)
        flops = None
        for compiled in {"off": [False], "on": [True], "both": [False, True]}[args.compile]:
            torch.manual_seed(0)
            net = models.get_model("circpad", image_size=size).to(device)
            if flops is None:
                flops, _ = models.training_flops(net, size)
            measure(bench, events, net, compiled, flops)
    return 0


def reference_rates(device, name: str, repeats: int) -> tuple[float | None, float, float | None, float]:
    """(bf16 peak, measured bf16 matmul, fp32 peak, measured fp32 matmul with TF32 off) in TFLOP/s, printed."""
    n = MATMUL_N if device.type == "cuda" else 256
    peak = peak_tflops(name)
    mm_bf16 = matmul_tflops(device, torch.bfloat16, repeats, n)
    print(f"{name}: bf16 dense peak {f'{peak:.0f} TFLOP/s (table)' if peak else 'unknown (not in the table)'}; "
          f"bf16 matmul {n}^3 measured {mm_bf16:.0f} TFLOP/s" + (f" ({mm_bf16 / peak:.0%} of peak)" if peak else ""))
    peak32 = peak_tflops(name, PEAK_FP32_TFLOPS)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # the plain fp32 rate, not TF32 tensor cores
    mm_fp32 = matmul_tflops(device, torch.float32, repeats, n)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    print(f"  fp32 dense peak {f'{peak32:.1f} TFLOP/s (table)' if peak32 else 'unknown'}; fp32 matmul (TF32 off) "
          f"measured {mm_fp32:.1f} TFLOP/s" + (f" ({mm_fp32 / peak32:.0%} of peak)" if peak32 else ""))
    return peak, mm_bf16, peak32, mm_fp32


def make_events(bench: Bench, size: int) -> Events:
    """The events of one image size: --steps batches of its --batch-64 or --batch-224."""
    args, device, fmt = bench.args, bench.device, bench.fmt
    batch = args.batch_64 if size <= 64 else args.batch_224
    source = SyntheticSource(batch * args.steps, image_size=size, seed=1)
    cache = DeviceCache(source, np.arange(len(source)), device, fmt == torch.channels_last)
    tw = training_weights(source.labels, source.weights)
    plan = epoch_plan(np.arange(len(source)), 0, 1, batch, 1, 0, batch)
    b = source.load(np.arange(batch))
    xb = torch.from_numpy(b.x).to(device).contiguous(memory_format=fmt)
    yb = torch.from_numpy(b.y).to(device)
    return Events(size, batch, source, cache, tw, plan, xb, yb)


def measure(bench: Bench, events: Events, net, compiled: bool, flops: float) -> None:
    """The figures of one variant (``net`` eager or compiled) on ``events``, printed and written to --out:
    the step on a batch on the device, the harness epoch with host data (eager) and with device data, the
    cost of building a batch on the device (eager), and with --profile the top kernels."""
    args, device, size, batch = bench.args, bench.device, events.size, events.batch
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, **speed.optimizer_kwargs("fused"))
    model = speed.maybe_compile(net, compiled)
    precision = speed.Precision(args.amp, device)
    sync = GradSync(bench.world)
    steps = step_loop(model, opt, sync, precision, events, args.steps)
    t0 = time.perf_counter()
    steps(3)  # warm-up: cuDNN autotuning, compilation
    warm_s = time.perf_counter() - t0
    step_rate = args.steps * batch / statistics.median(timed(steps, device, args.repeats))
    rows = [("step (batch on the device)", step_rate, None)]
    if args.host_data and not compiled:
        rows.append(("harness, host data (CPU loader)",
                     *epoch_rates(bench, events, model, opt, sync, precision, events.source)))
    dev_rate, dev_wait = epoch_rates(bench, events, model, opt, sync, precision, events.cache)
    rows.append(("harness, device data", dev_rate, dev_wait))
    print(f"circpad {size}x{size}, batch {batch}, amp {args.amp}, {args.memory_format}, "
          f"compile {'on' if compiled else 'off'} (warm-up {warm_s:.0f} s): "
          f"{flops / 1e9:.2f} training GFLOP/image")
    for label, rate, wait in rows:
        report(bench, events, compiled, flops, label, rate, wait)
    if not compiled:
        cache, plan = events.cache, events.plan
        build_s = statistics.median(timed(lambda: [cache.dense(p.reshape(-1)) for p in plan], device,
                                          args.repeats)) / len(plan)
        print(f"  building one batch on the device: {build_s * 1e3:.2f} ms, "
              f"{build_s * dev_rate / batch:.1%} of the step; {cache.events} events preloaded in "
              f"{cache.preload_s:.1f} s ({cache.nbytes / 2**20:.0f} MiB on the device)")
    if args.profile and device.type == "cuda":
        try:
            profile(steps, compiled, size)
        except Exception as exc:  # noqa: BLE001 - the figures above are kept
            print(f"  profile failed: {exc!r}")


def step_loop(model, opt, sync, precision, events: Events, default_steps: int):
    """``steps(n)``: n training steps of ``model`` on the batch already on the device (default
    ``default_steps``)."""
    xb, yb = events.x, events.y

    def steps(n=default_steps):
        for _ in range(n):
            with precision.autocast():
                logits = model(xb)
            precision.backward(F.binary_cross_entropy_with_logits(logits.float(), yb))
            precision.step(sync, opt)
            opt.zero_grad(set_to_none=False)
    return steps


def epoch_rates(bench: Bench, events: Events, model, opt, sync, precision, images) -> tuple[float, float]:
    """(images/s, data-wait fraction of the epoch), medians over --repeats harness epochs on ``images`` (the
    host source or the device cache) after a warm-up epoch."""
    rates, waits = [], []
    for r in range(bench.args.repeats + 1):  # the first epoch is the warm-up
        t = train_epoch(model, opt, sync, bench.world, images, events.plan, events.weights, bench.device, r,
                        prefetch=4, precision=precision, memory_format=bench.fmt)
        if r:
            rates.append(len(t.step_s) * events.batch / t.epoch_s)
            waits.append(t.data_wait_s / t.epoch_s)
    return statistics.median(rates), statistics.median(waits)


def report(bench: Bench, events: Events, compiled: bool, flops: float, label: str, rate: float,
           wait: float | None) -> None:
    """One figure's line, against the peak and the matmul, and its JSON line appended to --out."""
    args, peak = bench.args, bench.peak
    achieved = rate * flops / 1e12
    print(f"  {label:32s} {rate:9.0f} images/s  {achieved:6.1f} TFLOP/s"
          + (f"  {achieved / peak:5.1%} of peak" if peak else "")
          + f"  {achieved / bench.mm_bf16:5.1%} of the bf16 matmul"
          + (f", data wait {wait:.1%} of the epoch" if wait is not None else ""))
    if args.out:
        append_whole(args.out, (json.dumps({
                "benchmark": "bench_gpu", "variant": label, "gpu": bench.name, "torch": torch.__version__,
                "image_size": events.size, "batch": events.batch, "amp": args.amp,
                "memory_format": args.memory_format, "compile": compiled, "images_per_s": rate,
                "training_gflop_per_image": flops / 1e9, "achieved_tflops": achieved,
                "peak_bf16_tflops": peak, "matmul_bf16_tflops": bench.mm_bf16,
                "peak_fp32_tflops": bench.peak32, "matmul_fp32_tflops": bench.mm_fp32,
                "data_wait_fraction": wait}) + "\n").encode())

if __name__ == "__main__":
    run_main(main)
