"""The cores a process may use: its CPU affinity (taskset, Slurm's --cpus-per-task and cpusets, mpirun's
binding) capped by a cgroup CPU quota (containers, Slurm with cgroup enforcement). Torch-free, MPI-free."""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def affinity() -> frozenset[int]:
    """The CPUs this process may run on."""
    try:
        return frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return frozenset(range(os.cpu_count() or 1))


def cgroup_quota(root: Path = CGROUP) -> float | None:
    """Cores' worth of CPU time the cgroup quota allows (quota / period), or None without a quota.

    Reads cgroup v2's ``cpu.max`` ("max 100000" or "200000 100000") or v1's ``cpu/cpu.cfs_quota_us`` and
    ``cpu/cpu.cfs_period_us`` (quota -1: none) at ``root``, which inside a container is the container's own
    cgroup."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def node_cores(cpu_sets: list[frozenset[int]], quota: float | None) -> int:
    """Cores the ranks of one node may use together: the union of their CPU sets, capped by the quota
    (rounded up: a quota of 1.5 cores lets 2 threads share it)."""
    cores = len(frozenset().union(*cpu_sets)) if cpu_sets else 1
    return max(1, min(cores, math.ceil(quota)) if quota else cores)
