"""Measurements behind the performance model, stored as one calibration JSON.

* compute: forward + backward + Adam step of a model on random images, at several per-rank batches, in
  this process (``torch.set_num_threads(threads)``); median of ``repeats`` steps after one warm-up step
  per batch. Also the model's parameter count and training flops per image (torch's flop counter).
* allreduce: ``mpirun -np 2 python -m bench.projection.allreduce`` (a child job), median times per size.

The fits are not stored as truth: ``load`` refits them from the raw timings (bench.projection.model).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import mpijob
from data.files import InputError, clean, make_parent, write_text
from bench.projection.model import AllreduceFit, ComputeFit, fit_alpha_beta, fit_compute

SCHEMA = 1
ROOT = Path(__file__).resolve().parents[2]


def _train_step(model, opt, x, y):
    import torch.nn.functional as F
    opt.zero_grad(set_to_none=False)
    F.binary_cross_entropy_with_logits(model(x), y).backward()
    opt.step()


def measure_compute(model_name: str, image_size: int, batches: list[int], repeats: int, threads: int,
                    log=print) -> dict:
    import torch

    import models
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = models.get_model(model_name, image_size=image_size)
    model.train()
    flops, _ = models.training_flops(model, image_size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    samples = []
    for b in batches:
        x = torch.rand(b, 3, image_size, image_size)
        y = (torch.rand(b) < 0.5).float()
        _train_step(model, opt, x, y)  # warm-up: allocator and thread pool at this shape
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _train_step(model, opt, x, y)
            times.append(time.perf_counter() - t0)
        samples.append(times)
        log(f"  {model_name} {image_size}px batch {b:4d}: median {statistics.median(times):.4f} s/step "
            f"({b / statistics.median(times):.1f} images/s), {threads} thread(s)")
    return {"model": model_name, "image_size": image_size, "threads": threads,
            "params": models.count_parameters(model), "flops_per_image": flops,
            "batches": list(batches), "step_s": [statistics.median(t) for t in samples], "samples": samples}


def measure_allreduce(ranks: int = 2, max_bytes: int = 64 << 20, repeats: int = 7) -> dict:
    """Launch ``mpirun -np ranks`` on the allreduce helper and return its timings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "allreduce.json"
        cmd = ["mpirun", "--oversubscribe", "-np", str(ranks)]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        cmd += [sys.executable, "-m", "bench.projection.allreduce", str(out), "--max-bytes", str(max_bytes),
                "--repeats", str(repeats)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_"))}
        mpijob.run(cmd, cwd=ROOT, env=env, check=True, timeout=600)
        return json.loads(out.read_text())


def host_info() -> dict:
    import torch

    from bench.runner.environment import cpu_model, cpuinfo
    info = cpuinfo()
    try:
        mhz = float(info["cpu MHz"])
    except (KeyError, ValueError):
        mhz = None
    from bench.projection.ceilings import theoretical_peak_gflops
    peak, how = theoretical_peak_gflops(info, 1)
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "cpu_mhz": mhz,
            "avx512": "avx512f" in info.get("flags", "").split(), "torch": torch.__version__,
            "peak_gflops_per_core": peak, "peak_derivation": how}


def save(path: str, calibration: dict) -> None:
    """Write ``calibration``, merged into what ``path`` holds (compute entries replaced by key), whole or not
    at all. Raises data.files.WriteError."""
    old = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    key = lambda e: (e["model"], e["image_size"], e["threads"])  # noqa: E731
    compute = {key(e): e for e in old.get("compute", [])}
    compute.update({key(e): e for e in calibration.get("compute", [])})
    merged = {"schema": SCHEMA, "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "host": calibration.get("host") or old.get("host"),
              "compute": sorted(compute.values(), key=key),
              "allreduce": calibration.get("allreduce") or old.get("allreduce")}
    make_parent(path)
    write_text(path, json.dumps(clean(merged), indent=1) + "\n")


STATISTICS = {"median": statistics.median, "min": min}


class Calibration:
    """The fits of a calibration file.

    ``statistic`` reduces each batch's repeated step times: the median (default), or the minimum, which
    is closer to the uncontended cost when other work shares the machine.
    """

    def __init__(self, data: dict, statistic: str = "median"):
        self.data = data
        self.statistic = statistic
        self.host = data.get("host") or {}
        self.compute: dict[tuple, ComputeFit] = {}
        self.params: dict[tuple, int] = {}
        self.flops: dict[tuple, float] = {}
        for e in data.get("compute", []):
            k = (e["model"], e["image_size"], e["threads"])
            times = ([STATISTICS[statistic](t) for t in e["samples"]] if e.get("samples")
                     else e["step_s"])
            self.compute[k] = fit_compute(e["batches"], times)
            self.params[(e["model"], e["image_size"])] = e["params"]
            self.flops[(e["model"], e["image_size"])] = e["flops_per_image"]
        ar = data.get("allreduce")
        self.network: AllreduceFit | None = (fit_alpha_beta(ar["ranks"], ar["bytes"], ar["time_s"])
                                             if ar else None)

    @classmethod
    def load(cls, path: str, statistic: str = "median") -> "Calibration":
        """The calibration file ``path``. Raises data.files.InputError naming --calibration for a file of
        another format."""
        try:
            return cls(json.loads(Path(path).read_text()), statistic)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # not JSON, or not a calibration's
            raise InputError(f"--calibration {path}: not a calibration written by bench.projection --calibrate "
                             f"({type(exc).__name__}: {exc})") from None

    def compute_fit(self, model: str, image_size: int, threads: int) -> tuple[ComputeFit, str]:
        """The fit at ``threads``; else the nearest thread count scaled linearly (said in the note)."""
        if (model, image_size, threads) in self.compute:
            return self.compute[(model, image_size, threads)], ""
        have = [k for k in self.compute if k[:2] == (model, image_size)]
        if not have:
            raise KeyError(f"no compute calibration for {model} at {image_size}px "
                           f"(run python -m bench.projection --calibrate --compute {model}:{image_size})")
        k = min(have, key=lambda k: abs(k[2] - threads))
        return self.compute[k].scaled(threads / k[2]), f"scaled from {k[2]} thread(s)"
