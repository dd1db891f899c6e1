"""The one module that owns MPI. Everything else receives a ``World``.

Without a launcher (plain ``python -m bench.strong_scaling``) MPI is not even imported and the world is
one rank. Under ``mpirun``/``srun``/``mpiexec`` the world is ``MPI.COMM_WORLD`` (or a sub-communicator
of it during a sweep). Collective methods say so: every rank of the world must call them.
"""
from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.runner import cpus
from bench.runner.config import UsageError

# Variables that MPI launchers set in every rank's environment.
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "PALS_RANKID",
                  "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE")
# How many tasks the launcher of this process started, most specific first: an MPI's own launcher (Open MPI's
# mpirun, a PMI-1 launcher such as MPICH's or Intel MPI's hydra, MVAPICH2's), then the job step of srun
# (SLURM_STEP_NUM_TASKS, set by srun only; an sbatch script has SLURM_NTASKS, the allocation's size, but is
# one process and not a step, so a single run inside an allocation is not mistaken for a launch), then Flux.
_TASK_COUNT_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS",
                    "FLUX_JOB_SIZE")
# This task's rank as its launcher numbered it: a rank above 0 cannot be alone in its world.
_TASK_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK", "PALS_RANKID")


def under_launcher() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARS) or os.environ.get("MULTIJET_FORCE_MPI") == "1"


class WorldOfOne(UsageError):
    """The launcher started several tasks but MPI gives this one a world of one: each task would run
    alone and write its own one-rank record. Exit status 2."""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def launched_tasks(environ: Mapping[str, str]) -> tuple[int, str] | None:
    """(tasks, the variable that says so) of the launcher that started this process, or None when no
    launcher says. A rank above 0 (``PMIX_RANK=1``) counts as at least rank + 1 tasks. Pure."""
    for name in _TASK_COUNT_VARS:
        n = _int(environ.get(name))
        if n is not None:
            return n, f"{name}={n}"
    for name in _TASK_RANK_VARS:
        rank = _int(environ.get(name))
        if rank is not None and rank > 0:
            return rank + 1, f"{name}={rank}"
    return None


def check_world_size(size: int, environ: Mapping[str, str], library: str | None) -> None:
    """Refuse a world of one where the launcher started several tasks. ``size``: ranks MPI reports (1
    without MPI); ``library``: the MPI library mpi4py uses (None when MPI was not initialised).

    Raises WorldOfOne naming the variable and the fix: a step of srun without a PMI (Slurm's
    ``MpiDefault=none``), or an mpirun of another MPI than the one mpi4py was built with. Pure.
    """
    launched = launched_tasks(environ)
    if size != 1 or launched is None or launched[0] <= 1:
        return
    n, said = launched
    head = (f"the launcher started {n} tasks ({said}) but this process sees an MPI world of one: each task "
            "would train alone and write its own one-rank record. ")
    if library is None and said.startswith("SLURM_"):  # srun gave the step no PMI, so MPI never started
        raise WorldOfOne(head + "srun started the tasks without a PMI (the cluster's MpiDefault is none): "
                         "start them with `srun --mpi=pmix` (`srun --mpi=list` shows the choices; pmi2 for "
                         "Intel MPI or MPICH), as `python -m launchers.make slurm` writes by default "
                         "(--launch srun-pmix), or with mpirun inside the allocation (--launch mpirun)")
    if library is None:
        raise WorldOfOne(head + "the launcher gave the tasks no PMI, so MPI never started: start them with "
                         "the mpirun (or srun --mpi=...) of the MPI that mpi4py was built with")
    raise WorldOfOne(head + f"mpi4py uses {library}, not the MPI of this launcher: start the job with the "
                     "mpirun (or srun --mpi=...) of that MPI, or rebuild mpi4py against the launcher's MPI "
                     "(`pip install --force-reinstall --no-binary mpi4py mpi4py` with its mpicc on PATH)")


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    local_size: int
    nodes: int
    ranks_per_node: int
    hosts: tuple[str, ...]  # host of every rank, by rank
    cpus: frozenset[int] = frozenset({0})  # the CPUs this rank may run on (its affinity)
    node_cores: int = 1  # cores this rank's node lets its ranks use together (affinities, cgroup quota)
    mpi: Any = None  # mpi4py communicator, None for a single process without a launcher

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    # --- collectives: all ranks of this world must call them -------------------------------------
    def barrier(self) -> None:
        if self.mpi is not None:
            self.mpi.Barrier()

    def idle_barrier(self, poll_s: float = 0.02) -> None:
        """A barrier that sleeps instead of spinning, for ranks with nothing to do during a sweep:
        a spinning MPI barrier would steal cores from the ranks that are being measured."""
        if self.mpi is None:
            return
        req = self.mpi.Ibarrier()
        while not req.Test():
            time.sleep(poll_s)

    def bcast(self, obj, root: int = 0):
        return obj if self.mpi is None else self.mpi.bcast(obj, root=root)

    def allgather(self, obj) -> list:
        return [obj] if self.mpi is None else self.mpi.allgather(obj)

    def gather(self, obj, root: int = 0) -> list | None:
        return [obj] if self.mpi is None else self.mpi.gather(obj, root=root)

    def allreduce_max(self, value: float) -> float:
        if self.mpi is None:
            return value
        from mpi4py import MPI
        return self.mpi.allreduce(value, op=MPI.MAX)

    def allreduce_mean_(self, array: np.ndarray) -> np.ndarray:
        """Average a float array over ranks, in place."""
        if self.mpi is not None and self.size > 1:
            from mpi4py import MPI
            self.mpi.Allreduce(MPI.IN_PLACE, array, op=MPI.SUM)
            array /= self.size
        return array

    def failures(self, error: str | None) -> list[tuple[int, str]]:
        """Every rank's error of a phase, known to every rank: ``[(rank, message), ...]`` of the ranks whose
        ``error`` is not None (empty when all succeeded). Collective: call it at the end of a phase that holds
        no other collective, so a rank that failed alone cannot leave the others waiting."""
        return [(rank, e) for rank, e in enumerate(self.allgather(error)) if e is not None]

    def abort(self, code: int) -> None:
        """End the whole job now (every rank of COMM_WORLD). A no-op for a single process."""
        if self.mpi is not None:
            sys.stderr.flush()
            time.sleep(1.0)  # let the launcher forward this rank's message first
            from mpi4py import MPI
            MPI.COMM_WORLD.Abort(code)

    def first(self, n: int) -> "World | None":
        """The world of ranks 0..n-1 (a new sub-communicator), or None on the other ranks.
        Collective over this world."""
        if self.mpi is None:
            return self if n == 1 else None
        from mpi4py import MPI
        sub = self.mpi.Split(0 if self.rank < n else MPI.UNDEFINED, self.rank)
        return None if sub == MPI.COMM_NULL else _world_from(sub)

    def free(self) -> None:
        if self.mpi is not None:
            from mpi4py import MPI
            if self.mpi != MPI.COMM_WORLD:
                self.mpi.Free()


def _world_from(comm) -> World:
    host, mine = socket.gethostname(), cpus.affinity()
    gathered = comm.allgather((host, mine))
    hosts = tuple(h for h, _ in gathered)
    per_host = Counter(hosts)
    local_rank = hosts[: comm.rank].count(host)
    node = cpus.node_cores([s for h, s in gathered if h == host], cpus.cgroup_quota())
    return World(rank=comm.rank, size=comm.size, local_rank=local_rank, local_size=per_host[host],
                 nodes=len(per_host), ranks_per_node=max(per_host.values()), hosts=hosts, cpus=mine,
                 node_cores=node, mpi=comm)


def init_world() -> World:
    """The world of this job: MPI.COMM_WORLD under a launcher, else one rank.

    Raises WorldOfOne (a UsageError: exit status 2) when the launcher started several tasks and this one
    would run alone (``check_world_size``); a single process inside an allocation (an sbatch script, ``srun
    -n 1``) runs."""
    if not under_launcher():
        check_world_size(1, os.environ, None)
        mine = cpus.affinity()
        return World(rank=0, size=1, local_rank=0, local_size=1, nodes=1, ranks_per_node=1,
                     hosts=(socket.gethostname(),), cpus=mine, node_cores=cpus.node_cores([mine], cpus.cgroup_quota()))
    # Open MPI: a rank waiting in MPI yields its core. Horovod's background thread waits in MPI on the same
    # core as the rank's compute threads; spinning there cost a third of the 2-rank throughput on a
    # 2-core machine (benchmarks/bench_two_rank_efficiency.py). Read at MPI_Init; a user's setting wins.
    os.environ.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    from mpi4py import MPI
    if MPI.COMM_WORLD.size == 1:
        check_world_size(1, os.environ, mpi_library())
    return _world_from(MPI.COMM_WORLD)


def mpi_library() -> str | None:
    if not under_launcher():
        return None
    from mpi4py import MPI
    return MPI.Get_library_version().splitlines()[0].strip().rstrip(",")


def abort_on_uncaught(world: World) -> None:
    """Make an uncaught exception on any rank end the whole job at once, with that rank's message.

    Without this, the other ranks would wait forever in their next collective.
    """
    if world.mpi is None:
        return

    def hook(kind, value, tb):
        # The real stderr: torch.distributed wraps this hook and buffers sys.stderr around it, and the
        # abort below would lose that buffer.
        err = sys.__stderr__
        err.write(f"[rank {world.rank} on {socket.gethostname()}] fatal error, aborting the job:\n")
        traceback.print_exception(kind, value, tb, file=err)
        err.flush()
        time.sleep(1.0)  # let the launcher forward the message before the abort kills the rank
        from mpi4py import MPI
        MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook
