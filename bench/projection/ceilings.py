"""What a CPU can reach: its theoretical fp32 peak and the best measured kernels, for the achieved fractions
that benchmarks.bench_step prints and the projection's calibration records.

* ``theoretical_peak_gflops``: cores x clock x fp32 FLOPs per cycle of the vector units the CPU reports in
  /proc/cpuinfo. Per cycle and core: 64 with AVX-512 (two 512-bit FMA units, 16 lanes x 2 FLOPs each: Intel
  server cores; parts with one AVX-512 FMA unit, and AMD Zen 4, which splits 512-bit operations in two,
  reach half), 32 with AVX2 + FMA (two 256-bit FMA units: Intel Haswell and later, AMD Zen 2 and later), 16
  with AVX, 8 with SSE. The clock is the highest the kernel reports (cpufreq's maximum when present, else
  /proc/cpuinfo's "cpu MHz", which a VM often shows as the base clock): turbo clocks above it are not counted.
* ``measure_matmul_gflops``: ``torch.mm`` on n x n fp32 matrices. On non-Intel CPUs MKL may take a slow
  path, so this is not a ceiling there.
* ``measure_conv_gflops``: a large 3x3 channels-last fp32 convolution (forward), which PyTorch runs through
  oneDNN on any x86 CPU: the ceiling a CNN's training step can actually approach.
"""
from __future__ import annotations

import time
from pathlib import Path

CONV_SHAPE = (32, 128, 56, 56)  # batch, channels in = out, height, width: a mid-network VGG/ResNet layer


def flops_per_cycle(flags: set[str]) -> int:
    if "avx512f" in flags:
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    if "avx" in flags:
        return 16
    return 8


def max_clock_ghz(info: dict, cpufreq: str = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") -> float | None:
    try:
        return int(Path(cpufreq).read_text()) / 1e6
    except (OSError, ValueError):
        pass
    try:
        return float(info["cpu MHz"]) / 1e3
    except (KeyError, ValueError):
        return None


def theoretical_peak_gflops(info: dict, cores: int) -> tuple[float | None, str]:
    """(peak GFLOP/s of ``cores`` cores or None, how it was derived) from /proc/cpuinfo's first processor."""
    flags = set(info.get("flags", "").split())
    per_cycle = flops_per_cycle(flags)
    ghz = max_clock_ghz(info)
    if ghz is None:
        return None, "clock unknown"
    unit = "AVX-512" if per_cycle == 64 else "AVX2+FMA" if per_cycle == 32 else "AVX" if per_cycle == 16 else "SSE"
    return cores * ghz * per_cycle, f"{cores} cores x {ghz:.2f} GHz x {per_cycle} fp32 FLOPs/cycle ({unit})"


def measure_matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    import torch
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return repeats * 2 * n ** 3 / (time.perf_counter() - t0) / 1e9


def measure_conv_gflops(shape=CONV_SHAPE, repeats: int = 3) -> float:
    import torch
    import torch.nn.functional as F
    n, c, h, w = shape
    x = torch.randn(n, c, h, w).contiguous(memory_format=torch.channels_last)
    k = torch.randn(c, c, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        F.conv2d(x, k, padding=1)
        t0 = time.perf_counter()
        for _ in range(repeats):
            F.conv2d(x, k, padding=1)
        elapsed = time.perf_counter() - t0
    return repeats * 2 * n * c * h * w * c * 9 / elapsed / 1e9
