"""How often Open MPI fails to start jobs started together on one node, with one shared session directory
(Open MPI's default) and with one of each job's own (bench.mpijob).

    python -m benchmarks.bench_session_race [--jobs 30] [--rounds 30]

Each round starts ``--jobs`` one-rank ``mpirun ... true`` at the same moment and waits for them all; a job
fails when mpirun ends non-zero. The two arms alternate round by round, so both see the same machine. Prints
each arm's failures and the first Open MPI lines of a failed job. Seen here (2 cores, Open MPI 4.1.4,
30 x 30, nothing else running): 2 of 900 failed with the shared directory ('A call to mkdir was unable to
create the desired directory ... File exists', orte/util/session_dir.c line 107), 0 of 900 with a directory
per job, in 54 s. The race is rare per job, and a test suite starts hundreds of jobs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

from bench import mpijob
from benchmarks import MPI_ENV as ENV

COMMAND = ["mpirun", "-np", "1", "true"]


def shared_round(jobs: int) -> list[str]:
    """Start ``jobs`` mpirun at once in Open MPI's shared session directory: the output of each that failed."""
    env = {k: v for k, v in ENV.items() if k not in mpijob.SESSION_VARS}
    procs = [subprocess.Popen(COMMAND, env=env, stdout=subprocess.PIPE,  # noqa: shared-session (the arm measured)
                              stderr=subprocess.STDOUT, text=True) for _ in range(jobs)]
    return [out for p in procs for out in [p.communicate()[0]] if p.returncode != 0]


def own_round(jobs: int) -> list[str]:
    """The same with a session directory per job (bench.mpijob.Job)."""
    procs = [mpijob.Job(COMMAND, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(jobs)]
    return [out for p in procs for out in [p.communicate()[0]] if p.returncode != 0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=30, help="mpirun started at the same moment in each round")
    p.add_argument("--rounds", type=int, default=30, help="rounds of each arm (alternating)")
    a = p.parse_args(argv)
    failed = {"shared": [], "own": []}
    for _ in range(a.rounds):
        failed["shared"] += shared_round(a.jobs)
        failed["own"] += own_round(a.jobs)
    total = a.jobs * a.rounds
    for arm, outs in failed.items():
        print(f"{arm:>6} session directory: {len(outs)} of {total} jobs failed to start")
        if outs:
            print("        first failure: " + " | ".join(mpijob.library_failure(outs[0])[:4] or outs[0].splitlines()[:4]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
