"""What machine and software a run used, for every record."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path

import numpy
import torch

_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "KMP_AFFINITY", "SLURM_JOB_ID", "SLURM_JOB_NODELIST",
             "PBS_JOBID", "PBS_NODEFILE", "MASTER_ADDR", "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME",
             "OMPI_MCA_btl", "OMPI_MCA_mpi_yield_when_idle", "HOROVOD_FUSION_THRESHOLD", "HOROVOD_CYCLE_TIME", "CUDA_VISIBLE_DEVICES")


def cpuinfo() -> dict[str, str]:
    """The first processor's entries of ``/proc/cpuinfo`` (``model name``, ``cpu MHz``, ``flags``, ...);
    empty where the file does not exist or cannot be read."""
    info: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the first processor's block
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    return info


def cpu_model() -> str:
    return cpuinfo().get("model name") or platform.processor() or platform.machine()


def default_threads(requested: int, world) -> int:
    """Torch threads per rank: ``requested`` when positive, else the cores this node lets its ranks use
    (CPU affinity and cgroup quota, ``World.node_cores``) shared among its ranks, and never more than the
    CPUs this rank itself may run on (a rank bound to one core gets one thread)."""
    return requested or max(1, min(len(world.cpus), world.node_cores // world.local_size))


def scheduler(environ: Mapping[str, str] = os.environ) -> dict | None:
    """The batch job this process runs in, from the scheduler's variables; None outside a scheduler.

    Slurm: ``{"kind": "slurm", "job_id": SLURM_JOB_ID, "nodelist": SLURM_JOB_NODELIST (Slurm's compressed
    form, ``node[01-04]``), "cpus_per_task": SLURM_CPUS_PER_TASK as an int (None when the job did not set
    it)}``. PBS: ``{"kind": "pbs", "job_id": PBS_JOBID, "nodelist": the distinct hosts of PBS_NODEFILE
    joined by commas (None when unreadable), "cpus_per_task": None}`` (PBS states threads per chunk, not per
    rank). An array job's element is ``<array job id>_<index>``, as the scheduler names it. Reads the
    node file only."""
    if "SLURM_JOB_ID" in environ:
        job = environ["SLURM_JOB_ID"]
        if "SLURM_ARRAY_JOB_ID" in environ and "SLURM_ARRAY_TASK_ID" in environ:
            job = f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
        cpus = environ.get("SLURM_CPUS_PER_TASK", "")
        return {"kind": "slurm", "job_id": job, "nodelist": environ.get("SLURM_JOB_NODELIST"),
                "cpus_per_task": int(cpus) if cpus.isdigit() else None}
    if "PBS_JOBID" in environ:
        try:
            hosts = Path(environ["PBS_NODEFILE"]).read_text().split()
            nodelist = ",".join(dict.fromkeys(hosts)) or None
        except (KeyError, OSError):
            nodelist = None
        return {"kind": "pbs", "job_id": environ["PBS_JOBID"], "nodelist": nodelist, "cpus_per_task": None}
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_rev() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + ("-dirty" if dirty else "")) if rev else "unknown"


def environment(hosts: tuple[str, ...], mpi_library: str | None) -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "hosts": sorted(set(hosts)),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "mem_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": numpy.__version__,
        "mpi_library": mpi_library,
        "mpi4py": _version("mpi4py"),
        "horovod": _version("horovod"),
        "os": platform.platform(),
        "cuda": torch.version.cuda,
        "gpu_name": gpu,
        "env_vars": {k: os.environ[k] for k in _ENV_VARS if k in os.environ},
    }
