"""What a CPU can reach at each precision: its theoretical peaks and the best measured kernels, for the
achieved fractions that benchmarks.bench_step prints and the projection's calibration records.

* ``units(info)``: the arithmetic units /proc/cpuinfo's flags (and, for AMD, the CPU family) say a core has,
  each with its FLOPs per cycle and per core at its precision and the source of the figure (``UNITS``):

  - fp32 FMA: 64 FLOPs/cycle with AVX-512 on Intel server cores (two 512-bit FMA units x 16 lanes x 2 FLOPs;
    parts with one unit reach half, which the flags cannot tell), 32 on AMD Zen 4 (family 0x19), which runs
    512-bit operations on 256-bit datapaths, 64 on Zen 5 (family 0x1A) with its 512-bit datapaths; 32 with
    AVX2 + FMA (two 256-bit units: Intel Haswell on, AMD Zen 2 on), 16 with AVX, 8 with SSE.
  - bf16 through AVX512_BF16 (VDPBF16PS): two bf16 products and their sums per fp32 lane at the FMA's
    issue rate, so twice the fp32 FMA figure of the same core (128 on Intel, 64 on Zen 4, 128 on Zen 5).
  - bf16 through AMX tiles (AMX-BF16, TDPBF16PS): 1024 FLOPs/cycle per core (Intel: "1,024 BF16 operations
    per cycle" per core of 4th Gen Xeon Scalable; a 16x32 by 32x16 tile product, 16,384 FLOPs, in 16
    cycles).

  A CPU without a bf16 unit runs bf16 through conversions to fp32: its bf16 ceiling is its fp32 one.
* ``peak_gflops(info, cores, precision)``: cores x clock x the fastest unit of that precision. The clock is
  the highest the kernel reports (cpufreq's maximum when present, else /proc/cpuinfo's "cpu MHz", which a VM
  often shows as the base clock): turbo clocks above it are not counted, and AVX-512 and AMX clocks below it
  are not either, so a fraction of the peak is a lower bound of the fraction of what the clock then allowed.
  ``theoretical_peak_gflops`` is the fp32 peak.
* ``measure_matmul_gflops``: ``torch.mm`` on n x n matrices (fp32 or bf16). On non-Intel CPUs MKL may take a
  slow fp32 path, so this is not a ceiling there.
* ``measure_conv_gflops``: a large 3x3 channels-last convolution (forward, fp32 or bf16), which PyTorch runs
  through oneDNN on any x86 CPU: the ceiling a CNN's training step can actually approach.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

CONV_SHAPE = (32, 128, 56, 56)  # batch, channels in = out, height, width: a mid-network VGG/ResNet layer
PRECISIONS = ("fp32", "bf16")

# Sources of the per-cycle figures (docs/projection.md, 'Per-precision ceilings', lists them).
SOURCES = {
    "fma": "Intel 64 and IA-32 Architectures Optimization Reference Manual (two FMA units per server core); "
           "AMD Software Optimization Guide for Family 19h (Zen 4: 512-bit operations on 256-bit datapaths) "
           "and Family 1Ah (Zen 5: 512-bit datapaths)",
    "avx512_bf16": "derived: VDPBF16PS (Intel SDM vol. 2) does 2 bf16 products and their sums per fp32 lane, "
                   "issued as the FMA is, so twice the core's fp32 FMA FLOPs per cycle",
    "amx_bf16": "Intel, 'Accelerate AI Workloads with Intel AMX' (4th Gen Xeon Scalable): 1,024 BF16 "
                "operations per cycle per core",
}


@dataclass(frozen=True)
class Unit:
    """An arithmetic unit of a core: its ``precision`` (fp32 or bf16), ``name``, FLOPs per cycle and per
    core, and the source of that figure."""

    precision: str
    name: str
    flops_per_cycle: int
    source: str


def _family(info: dict) -> int | None:
    try:
        return int(info.get("cpu family", ""))
    except ValueError:
        return None


def flops_per_cycle(flags: set[str], vendor: str = "GenuineIntel", family: int | None = None) -> int:
    """fp32 FLOPs per cycle and core of the widest FMA unit the flags name (the module's docstring)."""
    if "avx512f" in flags:
        if vendor == "AuthenticAMD" and family is not None and family < 0x1A:
            return 32  # Zen 4: 512-bit operations on 256-bit datapaths
        return 64
    if "avx2" in flags and "fma" in flags:
        return 32
    if "avx" in flags:
        return 16
    return 8


def units(info: dict) -> list[Unit]:
    """The units of /proc/cpuinfo's first processor ``info`` (``flags``, ``vendor_id``, ``cpu family``):
    its fp32 vector unit, and its bf16 units where it has them."""
    flags = set(info.get("flags", "").split())
    fp32 = flops_per_cycle(flags, info.get("vendor_id", "GenuineIntel"), _family(info))
    name = {64: "AVX-512 FMA", 32: "AVX-512 FMA (256-bit datapaths)" if "avx512f" in flags else "AVX2+FMA",
            16: "AVX", 8: "SSE"}[fp32]
    found = [Unit("fp32", name, fp32, SOURCES["fma"])]
    if "avx512_bf16" in flags:
        found.append(Unit("bf16", "AVX512_BF16 (VDPBF16PS)", 2 * fp32, SOURCES["avx512_bf16"]))
    if "amx_bf16" in flags and "amx_tile" in flags:
        found.append(Unit("bf16", "AMX-BF16 tiles (TDPBF16PS)", 1024, SOURCES["amx_bf16"]))
    return found


def ceiling_unit(info: dict, precision: str) -> Unit:
    """The fastest unit for ``precision`` (fp32 or bf16; a CPU without a bf16 unit: its fp32 unit, through
    which bf16 runs). Raises ValueError for another precision."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    have = units(info)
    mine = [u for u in have if u.precision == precision] or [u for u in have if u.precision == "fp32"]
    return max(mine, key=lambda u: u.flops_per_cycle)


def max_clock_ghz(info: dict, cpufreq: str = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") -> float | None:
    try:
        return int(Path(cpufreq).read_text()) / 1e6
    except (OSError, ValueError):
        pass
    try:
        return float(info["cpu MHz"]) / 1e3
    except (KeyError, ValueError):
        return None


def peak_gflops(info: dict, cores: int, precision: str = "fp32") -> tuple[float | None, str]:
    """(peak GFLOP/s of ``cores`` cores at ``precision`` or None, how it was derived) from /proc/cpuinfo's
    first processor ``info``."""
    unit = ceiling_unit(info, precision)
    ghz = max_clock_ghz(info)
    if ghz is None:
        return None, "clock unknown"
    return cores * ghz * unit.flops_per_cycle, (f"{cores} cores x {ghz:.2f} GHz x {unit.flops_per_cycle} "
                                                f"{precision} FLOPs/cycle ({unit.name})")


def proven_clock_ghz(info: dict, cores: int, measured: dict[str, float]) -> tuple[float | None, str]:
    """The clock the cores ran at, at least: the reported one (``max_clock_ghz``), raised where a measured
    kernel (``measured``: precision -> GFLOP/s on ``cores`` cores) could not have reached its rate at the
    reported clock with its unit's FLOPs per cycle (a VM reports the base clock while the cores boost).
    Returns (GHz or None, how it was found)."""
    ghz = max_clock_ghz(info)
    how = "reported by the kernel"
    for precision, gflops in measured.items():
        need = gflops / (cores * ceiling_unit(info, precision).flops_per_cycle)
        if ghz is None or need > ghz:
            ghz, how = need, f"at least what the measured {precision} kernel needs ({gflops:.1f} GFLOP/s)"
    return ghz, how


def peak_at(info: dict, cores: int, precision: str, ghz: float) -> tuple[float, str]:
    """(GFLOP/s, how) of ``cores`` cores at ``ghz`` with the fastest ``precision`` unit."""
    unit = ceiling_unit(info, precision)
    return cores * ghz * unit.flops_per_cycle, (f"{cores} cores x {ghz:.2f} GHz x {unit.flops_per_cycle} "
                                                f"{precision} FLOPs/cycle, {unit.name}")


def theoretical_peak_gflops(info: dict, cores: int) -> tuple[float | None, str]:
    """The fp32 ``peak_gflops``."""
    return peak_gflops(info, cores, "fp32")


def _dtype(precision: str):
    import torch
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]


def measure_matmul_gflops(n: int = 2048, repeats: int = 3, precision: str = "fp32") -> float:
    """GFLOP/s of ``torch.mm`` on n x n matrices at ``precision``."""
    import torch
    a, b = torch.randn(n, n, dtype=_dtype(precision)), torch.randn(n, n, dtype=_dtype(precision))
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return repeats * 2 * n ** 3 / (time.perf_counter() - t0) / 1e9


def measure_conv_gflops(shape=CONV_SHAPE, repeats: int = 3, precision: str = "fp32") -> float:
    """GFLOP/s of a 3x3 channels-last convolution (forward) of ``shape`` at ``precision``, through oneDNN."""
    import torch
    import torch.nn.functional as F
    n, c, h, w = shape
    x = torch.randn(n, c, h, w, dtype=_dtype(precision)).contiguous(memory_format=torch.channels_last)
    k = torch.randn(c, c, 3, 3, dtype=_dtype(precision)).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        F.conv2d(x, k, padding=1)
        t0 = time.perf_counter()
        for _ in range(repeats):
            F.conv2d(x, k, padding=1)
        elapsed = time.perf_counter() - t0
    return repeats * 2 * n * c * h * w * c * 9 / elapsed / 1e9
