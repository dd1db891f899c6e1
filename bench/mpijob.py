"""Every ``mpirun`` the project starts gets a session directory of its own.

Open MPI 4.x keeps its per-node state in a session directory, ``<base>/ompi.<host>.<uid>``, with ``<base>``
the system's temporary directory unless ``orte_tmpdir_base`` names another. Two ``mpirun`` started in the
same instant on one node race to create and remove that shared directory, and the loser dies in
``orte_init`` before any rank runs::

    A call to mkdir was unable to create the desired directory:
      Directory: /tmp/ompi.<host>.0
      Error:     File exists
    ORTE_ERROR_LOG: Error in file ../../../orte/util/session_dir.c at line 107

(open-mpi/ompi issue 8510, "several small MPI jobs simultaneously on a single node"; seen here in 2 of 900
one-rank jobs started 30 at a time, in none of 900 with a base per job: benchmarks/bench_session_race.py). The fix is a fresh base per job, passed in
the environment so that it reaches the daemons Open MPI starts: ``OMPI_MCA_orte_tmpdir_base`` (Open MPI
4.x) and ``PRTE_MCA_prte_tmpdir_base`` (Open MPI 5 / PRRTE). Other MPIs (Intel MPI, MPICH, MVAPICH2)
ignore both variables.

``Job`` (a ``subprocess.Popen``) and ``run`` (like ``subprocess.run``) make the directory, pass it, and
remove it when the job has ended, also when it failed or timed out. ``SHELL_LINES`` are the same steps for
the shell scripts the project runs (``scripts/mpi_session.sh``) and writes (``launchers``). docs/faults.md,
'Jobs started together on one node', has the one line for jobs started by hand.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence

# The MCA parameters, as environment variables, that name the session directory's base.
SESSION_VARS = ("OMPI_MCA_orte_tmpdir_base", "PRTE_MCA_prte_tmpdir_base")
PREFIX = "multijet-mpi."  # the fresh directories' names start so (short: Open MPI puts sockets inside)

# Bash: a fresh base for the jobs this shell starts, removed when the shell exits however it exits (this
# sets the shell's EXIT trap). Open MPI makes the same path on the other nodes of a job itself.
SHELL_LINES = (
    "# Each job its own Open MPI session directory: jobs started together on a node otherwise race for one",
    "# (open-mpi/ompi issue 8510); Intel MPI and MPICH ignore these variables.",
    f'mpi_session=$(mktemp -d "${{TMPDIR:-/tmp}}/{PREFIX}XXXXXX")',
    "export " + " ".join(f'{v}="$mpi_session"' for v in SESSION_VARS),
    "trap 'rm -rf \"$mpi_session\"' EXIT",
)


def session_env(base: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with every variable of ``SESSION_VARS`` set to
    ``base``. Pure."""
    return {**(os.environ if env is None else env), **{name: str(base) for name in SESSION_VARS}}


def new_session_dir() -> str:
    """A fresh, empty directory for one job's session directory (under the system's temporary
    directory, ``$TMPDIR`` or /tmp). Raises OSError when it cannot be made."""
    return tempfile.mkdtemp(prefix=PREFIX)


class Job(subprocess.Popen):
    """``subprocess.Popen`` of an ``mpirun`` command with a session directory of its own.

    Takes Popen's arguments; ``env`` (default: this process's environment) gains ``SESSION_VARS``. The
    directory is ``session_dir``; it is removed once the job has been seen to end (``wait``,
    ``communicate``, ``poll``, leaving a ``with`` block), or at the latest when the object is collected.
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str] | None = None, **kwargs):
        self.session_dir = new_session_dir()
        self._remove = weakref.finalize(self, shutil.rmtree, self.session_dir, True)
        try:
            super().__init__(args, env=session_env(self.session_dir, env), **kwargs)
        except BaseException:
            self._remove()
            raise

    def _ended(self, code):
        if code is not None:
            self._remove()
        return code

    def wait(self, timeout=None):
        return self._ended(super().wait(timeout))

    def poll(self):
        return self._ended(super().poll())


def run(args: Sequence[str], env: Mapping[str, str] | None = None, timeout: float | None = None,
        check: bool = False, capture_output: bool = False, input=None, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` of an ``mpirun`` command through ``Job``: same arguments and result, and the
    job's session directory is removed when it has ended, also on a timeout (the job is killed first,
    as ``subprocess.run`` does) or an error."""
    if capture_output:
        kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with Job(args, env=env, **kwargs) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            exc.stdout, exc.stderr = proc.communicate()
            raise
        except BaseException:
            proc.kill()
            raise
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result


# Lines by which Open MPI (ORTE, PMIx, PRRTE) reports that it could not start a job, before any rank ran.
LIBRARY_MARKERS = ("ORTE_ERROR_LOG", "orte_init", "orte_session_dir", "ompi_rte_init", "PMIX_ERROR",
                   "PRTE_ERROR_LOG", "A call to mkdir was unable", "It looks like orte_init failed",
                   "It looks like MPI_INIT failed")


def library_failure(output: str) -> list[str]:
    """The lines of a job's ``output`` in which the MPI library (not the project) says it failed to start
    the job; empty when there are none. Pure."""
    lines = output.splitlines()
    hits = [k for k, line in enumerate(lines) if any(m in line for m in LIBRARY_MARKERS)]
    if not hits:
        return []
    return [line for line in lines[max(0, hits[0] - 3):hits[-1] + 2] if line.strip()]
