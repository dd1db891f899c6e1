"""Write job scripts for a strong-scaling study.

    python -m launchers.make {slurm,pbs,local} --nodes 1 2 4 ... 1024 [options] -- [bench.strong_scaling flags]

``--mode jobs`` (default for slurm/pbs) writes one script per node count plus ``submit_all.sh``;
``--mode sweep`` writes one script that allocates the largest node count and runs ``--sweep`` in it
(1, 2, 4, ... ranks, one record each). ``local`` always writes one sweep script for this machine.

The flags after ``--`` go to ``bench.strong_scaling`` unchanged. They are checked now, with the
benchmark's own parser and validation (``bench.runner.config``): a flag it does not know, a bad value, or a
global batch that the rank counts do not divide exits with status 2 and names the flag, before any
file is written. ``--threads``, ``--out`` and ``--sweep`` belong to the launcher (``--threads-per-rank``,
``--records``, ``--mode``).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import models
from data.errors import fail
from bench.outputs import OutputPathError, make_output_dir
from data.files import WriteError, write_text
from bench.runner.config import UsageError, parse_config
from bench.runner.config import build_parser as bench_parser
from launchers.scripts import Job, bench_args, local, pbs, slurm, submit_all, sweep_sizes

SCHEDULERS = ("slurm", "pbs", "local")
OWNED = {"--threads": "--threads-per-rank", "--out": "--records", "--sweep": "--mode sweep"}
KNL_CORES = 68  # Nurion's Xeon Phi 7250
LAUNCHES = ("srun-pmix", "srun-pmi2", "mpirun")
STOP_BEFORE = 300  # s: an epoch of the paper's configuration on one KNL node takes minutes


class LaunchError(ValueError):
    """Bad launcher input; the message names the flag. Exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m launchers.make", description=__doc__.splitlines()[0],
                                epilog="Flags after -- go to bench.strong_scaling (checked now).")
    p.add_argument("scheduler", choices=SCHEDULERS)
    p.add_argument("--nodes", type=int, nargs="+", required=True, metavar="N",
                   help="node counts (local: one host runs max(N) x R ranks)")
    p.add_argument("--ranks-per-node", type=int, default=1, metavar="R")
    p.add_argument("--cores-per-node", type=int, default=0, metavar="C",
                   help=f"cores of a node (default: {KNL_CORES}, a Nurion KNL node; local: this machine's)")
    p.add_argument("--threads-per-rank", type=int, default=0, metavar="T",
                   help="torch threads per rank (default: cores per node / R)")
    p.add_argument("--queue", default="", help="Slurm partition / PBS queue (Nurion: normal, flat, ...)")
    p.add_argument("--account", default="", help="Slurm account / PBS project (-A)")
    p.add_argument("--walltime", default="01:00:00", metavar="HH:MM:SS")
    p.add_argument("--mode", choices=("jobs", "sweep"), default="",
                   help="jobs: one job per node count; sweep: one allocation of the largest count "
                        "running --sweep (default: jobs; local: sweep)")
    p.add_argument("--records", default="results/records.jsonl",
                   help="records file the runs append to (relative to the submission directory)")
    p.add_argument("--job-name", default="multijet")
    p.add_argument("--python", default="",
                   help="interpreter in the scripts (default: .venv/bin/python, or .venv-vision/bin/python for a "
                        "torchvision model; local: this one)")
    p.add_argument("--mpi", choices=("intel", "openmpi"), default="intel",
                   help="PBS, and Slurm with --launch mpirun: the MPI whose mpirun the script uses (Nurion: "
                        "Intel MPI)")
    p.add_argument("--mcdram-flat", action="store_true",
                   help="PBS, and Slurm with --launch mpirun: run ranks under numactl --preferred=1 (KNL in "
                        "flat memory mode)")
    p.add_argument("--launch", choices=LAUNCHES, default="",
                   help="Slurm: how the ranks start in the allocation: srun-pmix (default; srun --mpi=pmix: "
                        "Open MPI >= 4, MPICH and Intel MPI with PMIx), srun-pmi2 (srun --mpi=pmi2: Intel MPI, "
                        "MPICH, MVAPICH2), mpirun (the --mpi MPI's own mpirun inside the allocation). `srun "
                        "--mpi=list` shows what a cluster offers")
    p.add_argument("--stop-before", type=int, default=None, metavar="SECONDS",
                   help=f"Slurm: ask for SIGUSR1 this many seconds before the time limit (default "
                        f"{STOP_BEFORE}, or a tenth of a shorter --walltime); the run stops after the epoch it "
                        "is in and its checkpoint, and exits 75 (resubmit with --resume); 0: no signal")
    p.add_argument("--out-dir", default="results/jobs", help="where the scripts are written")
    return p


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def check_bench_flags(flags: list[str], world_sizes: list[int]) -> None:
    """Parse and validate the pass-through flags as bench.strong_scaling would, for every world size.

    Raises LaunchError naming the offending flag.
    """
    for word in flags:
        name = word.split("=", 1)[0]
        if name in OWNED:
            raise LaunchError(f"{name} is set by the launcher; use {OWNED[name]} instead")
    parser = bench_parser()
    parser.exit_on_error = False
    try:
        _, unknown = parser.parse_known_args(flags)
    except argparse.ArgumentError as err:
        raise LaunchError(f"bench.strong_scaling flag {err.argument_name}: {err.message}") from None
    if unknown:
        raise LaunchError(f"bench.strong_scaling does not accept {unknown[0]!r} "
                          "(see python -m bench.strong_scaling --help)")
    try:
        cfg = parse_config(flags)
    except UsageError as err:
        raise LaunchError(f"bench.strong_scaling: {err}") from None
    for n in world_sizes:
        if cfg.global_batch % n:
            raise LaunchError(f"--global-batch {cfg.global_batch} is not divisible by {n} ranks")
        if cfg.micro_batch and (cfg.global_batch // n) % cfg.micro_batch:
            raise LaunchError(f"--micro-batch {cfg.micro_batch} does not divide the per-rank batch "
                              f"{cfg.global_batch // n} at {n} ranks")


def default_python(flags: list[str]) -> str:
    """The interpreter of a scheduler's script: the vision environment's for a torchvision model (README,
    'Standard image models'), the project's otherwise."""
    try:
        model = parse_config(flags).model
    except (UsageError, SystemExit):  # check_bench_flags reports it
        model = ""
    return ".venv-vision/bin/python" if models.is_torchvision(model) else ".venv/bin/python"


def world_sizes(jobs: list[Job]) -> list[int]:
    sizes = set()
    for job in jobs:
        sizes.update(sweep_sizes(job.ranks) if job.sweep else [job.ranks])
    return sorted(sizes)


# The launcher's flags whose values reach a script as text: directive lines, comments, the body.
TEXT_FLAGS = ("records", "out_dir", "job_name", "queue", "account", "python")
# Those that a scheduler's directive lines carry (Slurm: --output, --job-name, --partition, --account).
DIRECTIVE_FLAGS = ("out_dir", "job_name", "queue", "account")


def check_text(args: argparse.Namespace, flags: list[str]) -> None:
    """Every value that reaches a script can be written there as it is: no control character (a newline
    would end a comment or a directive line and start a command); for Slurm, no backslash in a directive
    value (a backslash in --output turns off its %j); for PBS, no double quote or backslash in one (its
    directive lines are quoted with double quotes). Raises LaunchError naming the flag."""
    values = [(f"--{name.replace('_', '-')}", getattr(args, name)) for name in TEXT_FLAGS]
    values += [("the bench.strong_scaling flags after --", word) for word in flags]
    for flag, value in values:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise LaunchError(f"{flag} {value!r}: holds a control character (a newline, a tab, an escape); "
                              "a job script cannot carry it")
    for name in DIRECTIVE_FLAGS:
        flag, value = f"--{name.replace('_', '-')}", getattr(args, name)
        if args.scheduler == "slurm" and "\\" in value:
            raise LaunchError(f"{flag} {value!r}: holds a backslash, which turns off Slurm's filename patterns "
                              "(%j) in #SBATCH --output; choose a name without one")
        if args.scheduler == "pbs" and ('"' in value or "\\" in value):
            raise LaunchError(f"{flag} {value!r}: holds a double quote or a backslash, which a #PBS directive "
                              "line cannot quote; choose a name without one")


def plan(args: argparse.Namespace, flags: list[str]) -> list[Job]:
    """The jobs to write, checked. Raises LaunchError."""
    check_text(args, flags)
    if any(n < 1 for n in args.nodes):
        raise LaunchError(f"--nodes must be positive, got {args.nodes}")
    if args.ranks_per_node < 1:
        raise LaunchError(f"--ranks-per-node must be positive, got {args.ranks_per_node}")
    if not re.fullmatch(r"\d+:[0-5]\d:[0-5]\d", args.walltime):
        raise LaunchError(f"--walltime must be HH:MM:SS, got {args.walltime!r}")
    is_local = args.scheduler == "local"
    cores = args.cores_per_node or ((os.cpu_count() or 1) if is_local else KNL_CORES)
    ranks_here = max(args.nodes) * args.ranks_per_node if is_local else args.ranks_per_node
    threads = args.threads_per_rank or max(1, cores // ranks_here)
    if threads < 1:
        raise LaunchError(f"--threads-per-rank must be positive, got {threads}")
    if not is_local and threads * args.ranks_per_node > cores:
        raise LaunchError(f"--ranks-per-node {args.ranks_per_node} x --threads-per-rank {threads} "
                          f"exceeds --cores-per-node {cores}")
    is_slurm = args.scheduler == "slurm"
    if args.launch and not is_slurm:
        raise LaunchError("--launch is for slurm scripts (PBS and local scripts start the ranks with mpirun)")
    if args.stop_before is not None and not is_slurm:
        raise LaunchError("--stop-before is for slurm scripts (PBS has no warning signal before its walltime)")
    h, m, sec = (int(x) for x in args.walltime.split(":"))
    walltime_s = h * 3600 + m * 60 + sec
    stop_before = min(STOP_BEFORE, walltime_s // 10) if args.stop_before is None else args.stop_before
    if is_slurm and not 0 <= stop_before < walltime_s:
        raise LaunchError(f"--stop-before must be at least 0 and shorter than --walltime {args.walltime}, got "
                          f"{stop_before} s")
    mode = args.mode or ("sweep" if is_local else "jobs")
    if is_local and mode != "sweep":
        raise LaunchError("--mode jobs needs a scheduler; local writes one sweep")
    base = Job(nodes=max(args.nodes), ranks_per_node=args.ranks_per_node, threads_per_rank=threads,
               cores_per_node=cores, walltime=args.walltime, records=args.records, flags=tuple(flags),
               sweep=mode == "sweep", queue=args.queue, account=args.account, job_name=args.job_name,
               log_dir=args.out_dir, mpi=args.mpi, mcdram_flat=args.mcdram_flat,
               launch=args.launch or LAUNCHES[0], stop_before=stop_before,
               python=args.python or (sys.executable if is_local else default_python(flags)))
    jobs = [base] if mode == "sweep" else [replace(base, nodes=n) for n in sorted(set(args.nodes))]
    check_bench_flags(flags, world_sizes(jobs))
    return jobs


def render(scheduler: str, job: Job, root: str) -> str:
    if scheduler == "slurm":
        return slurm(job)
    if scheduler == "pbs":
        return pbs(job)
    return local(job, root)


def write(path: Path, text: str) -> None:
    """``text`` as the executable script ``path``, whole or not at all (data.files.replaced). Raises
    data.files.WriteError."""
    write_text(path, text, mode=0o755)


def main(argv: list[str] | None = None) -> int:
    own, flags = split_argv(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    try:
        jobs = plan(args, flags)
        out = make_output_dir(args.out_dir, "--out-dir")
        written = write_scripts(args.scheduler, jobs, out)
    except (LaunchError, OutputPathError, WriteError) as err:
        return fail(str(err))
    for path in written:
        print(path)
    print(f"flags for bench.strong_scaling: {' '.join(bench_args(jobs[0]))}", file=sys.stderr)
    return 0


def write_scripts(scheduler: str, jobs: list[Job], out: Path) -> list[Path]:
    """The scripts of ``jobs`` (and submit_all.sh for several scheduler jobs) written into ``out``; returns
    their paths. Raises data.files.WriteError (the scripts written before it are whole)."""
    root = str(Path.cwd().resolve())
    suffix = {"slurm": "sbatch", "pbs": "pbs", "local": "sh"}[scheduler]
    written = []
    for job in jobs:
        path = out / f"{job.name}.{suffix}"
        write(path, render(scheduler, job, root))
        written.append(path)
    if scheduler != "local" and len(jobs) > 1:
        path = out / "submit_all.sh"
        write(path, submit_all(scheduler, [str(p) for p in written]))
        written.append(path)
    return written


if __name__ == "__main__":
    sys.exit(main())
