"""Calibrate the performance model on this machine and print the fitted figures.

    python -m benchmarks.bench_perfmodel_fit [--compute circpad:64 ...] [--repeats 3] [--ar-max-bytes N]
                                             [--calibration results/calibration.json]

Runs what ``python -m bench.projection --calibrate`` runs (compute steps in this process; allreduce under
``mpirun -np 2``), then prints per model and image size the compute fit t(b) = t0 + b / r_max with the
residual of every batch, and the ring alpha-beta fit with the residual of every message size. The
residuals show how far the simple forms are from the measurements (and how noisy the machine is).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from bench.projection import cli as project
from bench.projection.calibrate import Calibration
from benchmarks import run_main
from data.files import check_output_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compute", nargs="+", default=["circpad:64", "compact:64"])
    ap.add_argument("--batches", type=int, nargs="+")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ar-max-bytes", type=int, default=64 << 20)
    ap.add_argument("--ar-repeats", type=int, default=7)
    ap.add_argument("--calibration", default="", help="keep the calibration here (default: a temporary file)")
    args = ap.parse_args()
    if args.calibration:
        check_output_file(args.calibration, "--calibration")
    path = args.calibration or os.path.join(tempfile.mkdtemp(), "calibration.json")
    argv = ["--calibration", path, "--compute", *args.compute, "--repeats", str(args.repeats),
            "--threads", str(args.threads), "--ar-max-bytes", str(args.ar_max_bytes),
            "--ar-repeats", str(args.ar_repeats)]
    if args.batches:
        argv += ["--batches", *map(str, args.batches)]
    project.calibrate(project.build_parser().parse_args(argv))
    print()
    for stat in ("median", "min"):
        cal = Calibration.load(path, stat)
        for e in cal.data["compute"]:
            fit = cal.compute[(e["model"], e["image_size"], e["threads"])]
            print(f"{e['model']} {e['image_size']}px, {e['threads']} thread(s), {stat} of {len(e['samples'][0])} "
                  f"repeats: t0 = {fit.t0_s * 1e3:.2f} ms, r_max = {fit.r_max:.1f} images/s "
                  f"({fit.r_max * e['flops_per_image'] / 1e9:.1f} GFLOP/s)")
            for b, samples in zip(e["batches"], e["samples"]):
                t = {"median": statistics.median, "min": min}[stat](samples)
                print(f"    batch {b:5d}: measured {t:9.4f} s, fit {fit.step_s(b):9.4f} s "
                      f"({100 * (fit.step_s(b) / t - 1):+6.1f} %)")
    ar = cal.data["allreduce"]
    net = cal.network
    print(f"allreduce, {ar['ranks'][0]} ranks ({ar.get('mpi_library', '?')}): alpha = {net.alpha_s * 1e6:.2f} us, "
          f"B = {net.bandwidth_Bps / 1e9:.2f} GB/s")
    for n, s, t in zip(ar["ranks"], ar["bytes"], ar["time_s"]):
        print(f"    {s:>10d} B: measured {t * 1e6:11.1f} us, fit {net.time_s(n, s) * 1e6:11.1f} us "
              f"({100 * (net.time_s(n, s) / t - 1):+7.1f} %)")


if __name__ == "__main__":
    run_main(main)
