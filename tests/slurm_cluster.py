"""The local Slurm cluster of the slurm tier (scripts/slurm_local.sh): finding or starting it, submitting
job scripts with sbatch and waiting for their end with scontrol (there is no accounting database, so no
sacct)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mpi_env import MPI_ENV, ROOT

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
CONF = Path(os.environ.get("MULTIJET_SLURM_DIR", "/var/tmp/multijet-slurm")) / "slurm.conf"
ENDED = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE", "PREEMPTED"}


def unavailable(which=shutil.which, uid: int | None = None) -> str | None:
    """Why this machine cannot bring up the local cluster (one line), or None when it can (root with
    apt-get, or Slurm installed and the cluster perhaps already running)."""
    uid = os.getuid() if uid is None else uid
    if which("sbatch") is None:
        if uid == 0 and which("apt-get") is not None:
            return None  # scripts/slurm_local.sh start installs slurm-wlm and munge
        return ("sbatch not found: the slurm tier needs Slurm and munge (Debian/Ubuntu: apt-get install "
                "slurm-wlm munge), then, as root, bash scripts/slurm_local.sh start")
    if uid != 0 and subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, check=False).returncode != 0:
        return "the local Slurm cluster is not running: start it as root with bash scripts/slurm_local.sh start"
    return None


@dataclass(frozen=True)
class Cluster:
    env: dict  # for sbatch and the jobs: SLURM_CONF, MULTIJET_PYTHON, PYTHONPATH, Open MPI as root
    nodes: tuple[str, ...]  # node names, first the one with this host's name

    def submit(self, script: Path, *sbatch_args: str) -> str:
        """Submit ``script`` from the repository root (the job's SLURM_SUBMIT_DIR); its job id."""
        proc = subprocess.run(["sbatch", "--parsable", *sbatch_args, str(script)], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, f"sbatch {script.name}: {proc.stderr}"
        return proc.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields of the job (JobState, ExitCode, RunTime, NodeList, ...)."""
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=self.env, capture_output=True,
                             text=True, timeout=30, check=False).stdout
        return dict(re.findall(r"(\S+?)=(\S*)", out))

    def wait(self, job_id: str, timeout: float, log: Path | None = None) -> dict[str, str]:
        """The job's fields once it has ended; cancels it and fails the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fields = self.job(job_id)
            if fields.get("JobState") in ENDED:
                return fields
            time.sleep(0.5)
        subprocess.run(["scancel", job_id], env=self.env, timeout=30, check=False)
        tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
        pytest.fail(f"job {job_id} did not end within {timeout:.0f} s ({self.job(job_id).get('JobState')})\n{tail}")

    def signal_batch_shell(self, job_id: str, name: str) -> None:
        """Send signal ``name`` to the job's batch shell only, as Slurm's --signal=B:... does."""
        subprocess.run(["scancel", "--batch", f"--signal={name}", job_id], env=self.env, check=True, timeout=30)


def bring_up() -> Cluster:
    """The running local cluster, started (and installed, as root on Debian) if need be; skips the test
    with one line saying what is missing where it cannot be started."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    if os.getuid() == 0:
        proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600,
                              check=False)
        if proc.returncode != 0:
            pytest.fail(f"bash scripts/slurm_local.sh start failed:\n{proc.stdout}{proc.stderr}")
    env = {**MPI_ENV, "SLURM_CONF": str(CONF), "MULTIJET_PYTHON": sys.executable}
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], env=env, capture_output=True, text=True,
                           timeout=30, check=True).stdout.split()
    return Cluster(env=env, nodes=tuple(dict.fromkeys(nodes)))
