"""How much of a step's gradient exchange hides behind backward: a timeline of when each gradient is ready
and when the communication thread can send it.

Pure functions (no torch, no MPI). Backward runs the layers last to first; a tensor's gradient is ready when
its layer's backward ends, at a time proportional to the backward FLOPs spent so far (bench/projection/
layers.py gives them for the published networks; a workload without a layer table is taken as ready evenly
through backward). One communication channel sends one collective at a time, in the order they are issued:

    horovod   every ``cycle_s`` the background thread takes the tensors ready by then and fuses them, in
              ready order, into buffers of at most ``fusion_bytes`` (a larger tensor goes alone); each buffer
              is one allreduce (Sergeev & Del Balso 2018; Horovod docs/tensor-fusion.rst; docs/projection.md)
    buckets   PyTorch DDP: buckets of at most ``fusion_bytes`` (25 MB by default, Li et al. 2020) filled in
              ready order, each launched the moment its last tensor is ready
    after     one allreduce of everything after backward (the harness's --backend mpi): nothing hidden

``exposed_s`` is what the step waits for after backward ends: the channel's finish time minus backward's,
never negative. ``realised`` (the stack's ``overlap`` band, an assumption) scales the part the ideal timeline
hides: communication that runs during backward slows it down (shared cores, memory bandwidth, SMs), so
``exposed = ideal + (1 - realised) * hidden``; 1 is the ideal timeline, 0 no overlap at all.
"""
from __future__ import annotations

import math
from typing import Callable

from bench.projection.collectives import fusion_buckets

SCHEDULES = ("horovod", "buckets", "after")
EVEN_SLICES = 64  # a workload without layers: its gradient ready in this many equal slices


def even(params_bytes: float, backward_flops: float, slices: int = EVEN_SLICES) -> tuple[list, list]:
    """A gradient of ``params_bytes`` ready evenly through backward: equal slices, equal FLOPs."""
    return [params_bytes / slices] * slices, [backward_flops / slices] * slices


def ready_times(flops: list[float], backward_s: float) -> list[float]:
    """When each tensor is ready (s from the start of backward): cumulative FLOPs, scaled to ``backward_s``."""
    total = sum(flops) or 1.0
    out, done = [], 0.0
    for f in flops:
        done += f
        out.append(backward_s * done / total)
    return out


def _issues(schedule: str, sizes: list[float], ready: list[float], fusion_bytes: float, cycle_s: float,
            backward_s: float) -> list[tuple[float, float]]:
    """(time issued, bytes) of each collective, in issue order."""
    if schedule == "after":
        return [(backward_s, float(sum(sizes)))]
    if schedule == "buckets":
        out, current, last = [], 0.0, 0.0
        for size, t in zip(sizes, ready):
            if current and fusion_bytes > 0 and current + size > fusion_bytes:
                out.append((last, current))
                current = 0.0
            current, last = current + size, t
            if fusion_bytes <= 0:
                out.append((t, current))
                current = 0.0
        return out + ([(last, current)] if current else [])
    if schedule != "horovod":
        raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    out, i = [], 0
    while i < len(sizes):
        # the thread's first wake-up at or after tensor i is ready (the first is one cycle in); it takes
        # every tensor ready by then
        if cycle_s > 0:
            k = max(1, math.ceil(ready[i] / cycle_s - 1e-9))
            tick, limit = k * cycle_s, (k + 1e-9) * cycle_s
        else:
            tick = limit = ready[i]
        j = i + 1  # tensor i is ready by ``tick``
        while j < len(sizes) and ready[j] <= limit:
            j += 1
        out += [(tick, b) for b in fusion_buckets(sizes[i:j], fusion_bytes)]
        i = j
    return out


def exposed_s(sizes: list[float], flops: list[float], backward_s: float, cost: Callable[[float], float],
              schedule: str = "horovod", fusion_bytes: float = 0.0, cycle_s: float = 0.0,
              realised: float = 1.0) -> tuple[float, float]:
    """(exposed seconds, total communication seconds) of one step's exchange.

    sizes: bytes of each gradient tensor in backward order; flops: the backward FLOPs before each is ready
    (same order); backward_s: the backward pass's duration; cost(nbytes): one collective's seconds; realised
    in [0, 1]: the fraction of the ideal overlap reached (module docstring). Raises ValueError for an unknown
    schedule, mismatched lists or ``realised`` outside [0, 1]."""
    if len(sizes) != len(flops):
        raise ValueError(f"sizes ({len(sizes)}) and flops ({len(flops)}) differ in length")
    if not 0.0 <= realised <= 1.0:
        raise ValueError(f"realised should be in [0, 1], got {realised}")
    ready = ready_times(flops, backward_s)
    free, busy = 0.0, 0.0
    for issued, nbytes in _issues(schedule, sizes, ready, fusion_bytes, cycle_s, backward_s):
        t = cost(nbytes)
        free = max(free, issued) + t
        busy += t
    ideal = max(0.0, free - backward_s)
    hidden = max(0.0, busy - ideal)
    return ideal + (1.0 - realised) * hidden, busy
