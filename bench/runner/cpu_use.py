"""How busy each rank's cores were, measured with psutil. Torch-free, MPI-free.

Each rank samples its own process (CPU time of all its threads, user + system, and its voluntary and
involuntary context switches) just before and just after every epoch's ``train_epoch``: outside the timed
region, two samples per epoch, about 0.1 ms together (``python -m benchmarks.bench_cpu_sampling``). CPU time comes
from psutil; context switches from ``getrusage(RUSAGE_SELF)``, which sums every thread, because psutil's come
from ``/proc/self/status`` on Linux, which counts the main thread's only (psutil issue #1467), and the threads
that get preempted are mostly the others (torch's pool, the data thread, Horovod's).
The per-epoch differences travel with the epoch's times into ``bench.runner.reduce``, which turns every
rank's into the record's ``cpu`` object; rank 0 adds what it sees of its node at the start of the run
(``node_facts``).

A run is *oversubscribed* when its ranks had fewer cores than they asked for: a node's ranks x threads
exceed the cores it lets them use, or a rank ran under ``UTIL_FLOOR`` cores per torch thread (other threads,
other ranks or other jobs took the rest). Its times then measure the competition for cores, not the scaling.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import psutil

from bench.runner import cpus

UTIL_FLOOR = 0.8  # cores per torch thread under which a rank counts as starved of CPU

_process: psutil.Process | None = None


@dataclass(frozen=True)
class Sample:
    """One reading of this process: ``wall_s`` (s, ``time.perf_counter``), ``cpu_s`` (s of CPU time, user
    + system, every thread), ``voluntary`` and ``involuntary`` (context switches since the process began)."""

    wall_s: float
    cpu_s: float
    voluntary: int
    involuntary: int


def sample(clock=time.perf_counter) -> Sample:
    """This process now (every thread of it): about 50 us on Linux."""
    global _process
    if _process is None:
        _process = psutil.Process()
    times = _process.cpu_times()
    usage = resource.getrusage(resource.RUSAGE_SELF)  # switches of all threads (psutil: the main thread's)
    return Sample(clock(), times.user + times.system, usage.ru_nvcsw, usage.ru_nivcsw)


def between(start: Sample, end: Sample) -> dict:
    """The CPU use from ``start`` to ``end``: ``{"wall_s": s, "cpu_s": s, "voluntary": n, "involuntary": n}``."""
    return {"wall_s": end.wall_s - start.wall_s, "cpu_s": end.cpu_s - start.cpu_s,
            "voluntary": end.voluntary - start.voluntary, "involuntary": end.involuntary - start.involuntary}


def record(node: dict, ranks: dict, util_floor: float | None) -> dict:
    """The record's ``cpu`` object: rank 0's ``node_facts`` and the ranks' ``bench.runner.reduce.reduce_cpu``
    figures (judged with ``util_floor``). When a rank ran under the floor and the node's load average at the
    start was above its logical cores, ``oversubscribed_why`` adds the load: processes other than the ranks
    were likely taking their cores (the load average looks back a minute, so an earlier run of the same sweep
    counts too)."""
    out = {**node, **ranks}
    load, logical, least = node.get("load_average_start"), node.get("logical_cores"), ranks.get("util_per_thread_min")
    starved = util_floor is not None and least is not None and least < util_floor
    if starved and load is not None and logical and load > logical:
        out["oversubscribed_why"] += (f"; the node's load average was {load:g} on {logical} logical core(s) at the "
                                      "start (the last minute's runnable processes, earlier runs included)")
    return out


def node_facts() -> dict:
    """This node as this process sees it now: ``physical_cores`` (None where the OS does not say),
    ``logical_cores``, ``process_cores`` (the CPUs this process may run on, its affinity),
    ``memory_bytes`` and ``memory_available_bytes``, ``load_average_start`` (runnable processes over the last
    minute; above the logical cores, others compete for them)."""
    memory = psutil.virtual_memory()
    return {
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "process_cores": len(cpus.affinity()),
        "memory_bytes": int(memory.total),
        "memory_available_bytes": int(memory.available),
        "load_average_start": round(psutil.getloadavg()[0], 2),
    }
