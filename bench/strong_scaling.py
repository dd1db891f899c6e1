"""Strong-scaling benchmark: ``mpirun -np N python -m bench.strong_scaling [flags]``.

Trains one model at a fixed global batch on N data-parallel ranks and appends one record per run
(docs/records.md). With ``--sweep``, one allocation of N ranks measures 1, 2, 4, ... and N ranks in turn,
each on its own sub-communicator. Without a launcher it runs as one process. The work is done in
``bench.runner``; this module is the command line and the sweep loop.

Exit status: 0 done; 2 bad input, before any work (also a launcher that started several tasks each of which
sees an MPI world of one), or an output that could not be written (a full disk: a record that --out cannot
take is kept in a fallback file the message names, for ``python -m bench.records add``); 1 a failure on some rank (the job is aborted, nothing recorded for that run); 75
(``bench.runner.stop.STOPPED``) stopped at an epoch boundary by the scheduler's warning signal, SIGUSR1,
before its time limit: run the same command with ``--resume`` to continue.
"""
# ruff: noqa: E402 (the handler below is installed before the other imports, on purpose)
from __future__ import annotations

# First of all, before torch loads (seconds): the scheduler's warning before its time limit, SIGUSR1, would
# kill the process by default, and it may come while a rank is still starting.
from bench.runner import stop

stop.install()

import os
import sys
import time
import uuid
from dataclasses import dataclass

import torch

import models
from data.errors import fail, fail_agreed, fail_rank
from bench.outputs import OutputPathError, check_output_file
from bench.records import append_record, keep_aside, record_line, recorded_world_sizes
from bench.runner import backends, checkpoint
from bench.runner.backends import BackendError
from bench.runner.comm import World, WorldOfOne, abort_on_uncaught, init_world
from bench.runner.config import Config, UsageError, parse_config, sweep_sizes
from bench.runner.data_setup import Data, check_fits, open_data, pick_device, place_data
from bench.runner.device_data import DevicePlacementError
from bench.runner.environment import default_threads
from bench.runner.run import run
from bench.runner.train import NonFiniteLoss
from data.base import DataError
from data.files import WriteError

HELP = "--help"  # a rank that printed the help and would exit 0


def check_outputs(cfg: Config) -> None:
    """Every file the run will write can be written (raises OutputPathError naming the flag)."""
    check_output_file(cfg.out, "--out")
    if cfg.save_model:
        check_output_file(cfg.save_model.replace("{ranks}", "1"), "--save-model")
    if cfg.checkpoint:
        check_output_file(f"{cfg.checkpoint}.n1", "--checkpoint")
    if cfg.mllog:
        check_output_file(cfg.mllog, "--mllog")


@dataclass(frozen=True)
class Job:
    cfg: Config
    sizes: list[int]
    backend: str
    device: object  # torch.device
    data: Data
    threads: int


def set_up(argv: list[str] | None, world: World) -> Job:
    """Everything before the first collective of training, on this rank: configuration, output paths, the
    backend, the device, the events, the batch arithmetic, their placement, the threads. Holds no
    collective, so every rank reaches the agreement that follows whatever fails here. Raises UsageError,
    OutputPathError, BackendError, DataError or DevicePlacementError."""
    cfg = parse_config(argv)
    check_outputs(cfg)
    try:
        models.check_available(cfg.model)
    except ImportError as exc:
        raise UsageError(f"--model {cfg.model}: {exc}") from None
    sizes = sweep_sizes(world.size) if cfg.sweep else [world.size]
    backend = backends.resolve(cfg.backend, world.size)
    device = pick_device(cfg.device, world.local_rank)
    data = open_data(cfg)
    check_fits(cfg, data, sizes)
    data = place_data(cfg, data, device)  # free memory can differ between ranks
    threads = default_threads(cfg.threads, world)
    torch.set_num_threads(threads)
    return Job(cfg, sizes, backend, device, data, threads)


def stop_message(cfg: Config, sweep_id: str | None, n: int, stopped: stop.Stopped | None,
                 rest: list[int]) -> str:
    """What the warning signal stopped, what was kept and how to continue (rank 0, which is in every run)."""
    again = "run the same command with --resume" + (f" --sweep-id {sweep_id}" if cfg.sweep else "")
    said = f"{stop.SIGNAL.name} (the scheduler's warning before its time limit) "
    if stopped is None:
        return (f"{said}arrived before the {rest[0]}-rank point of the sweep; the points before it are recorded: "
                f"{again} to run the rest")
    where = f"after {stopped.epochs_done} of {cfg.epochs} epoch(s) of the {n}-rank run, which has no record yet"
    if cfg.checkpoint:
        return f"{said}stopped the job {where}; its checkpoint {checkpoint.path_for(cfg, n)} holds them: {again}"
    return (f"{said}stopped the job {where}; without --checkpoint those epochs are lost: pass --checkpoint "
            "PATH (and --resume when submitting again) to continue a run stopped this way")


def not_recorded(cfg: Config, world: World, sizes: list[int], sweep_id: str) -> list[int]:
    """--resume of a sweep: the world sizes of ``sizes`` that sweep ``sweep_id`` has no record of in --out
    yet (rank 0 reads the file and says which it skips). Collective."""
    done = world.bcast(recorded_world_sizes(cfg.out, sweep_id) if world.is_root else None)
    if world.is_root and done & set(sizes):
        print(f"resume: sweep {sweep_id} already has records for {sorted(done & set(sizes))} rank(s); "
              "skipping them", flush=True)
    return [n for n in sizes if n not in done]


def record_not_kept(cfg: Config, record: dict, error: WriteError) -> str:
    """The message of a record --out could not take (rank 0): the record is written whole to a fallback
    file (``bench.records.keep_aside``) and printed on stderr, and the message says where and how to add it
    to the records once there is room."""
    kept = keep_aside(cfg.out, record)
    sys.stderr.write("record: " + record_line(record).decode())
    where = f"kept in {kept} and printed above" if kept else "printed above (no fallback file could be written)"
    add = f"python -m bench.records add {kept or 'FILE'} --to {cfg.out}"
    return f"{error.named('--out')}; the run's record is {where}: add it with `{add}` once there is room"


def keep_record(cfg: Config, world: World, n: int, backend: str, record: dict) -> int | None:
    """On the ``n``-rank run's rank 0: ``record`` appended to --out and marked in the run's checkpoint, its
    line printed, and a warning on stderr when the run was oversubscribed. When --out cannot take it (a full
    disk), the record is kept aside (``record_not_kept``) and the job ends with status 2 (``fail_rank``:
    every rank of ``world``); a checkpoint that cannot be marked ends it likewise, the record appended."""
    try:
        append_record(cfg.out, record)
    except WriteError as exc:
        return fail_rank(world, record_not_kept(cfg, record, exc))
    if cfg.checkpoint:
        try:
            checkpoint.mark_recorded(checkpoint.path_for(cfg, n), record["run_id"])
        except WriteError as exc:
            return fail_rank(world, f"{exc}; the record is appended to {cfg.out}, but the checkpoint does not say "
                                    "so: remove the checkpoint before running this job again with --resume, or "
                                    "the run is recorded twice")
    rate = record["images_per_s"]
    print(f"{n} rank(s), backend {backend}: "
          f"{'%.1f images/s' % rate if rate else 'no measured epoch'}, "
          f"final AUC {record['auc'][-1]:.4f}; record appended to {cfg.out}", flush=True)
    cpu = record.get("cpu") or {}
    if cpu.get("oversubscribed"):  # once, by this run's rank 0
        print(f"warning: the {n}-rank run {record['run_id']} was oversubscribed: "
              f"{cpu['oversubscribed_why']}; its times measure the competition for cores, not the "
              "scaling (set --threads, or fewer ranks per node)", file=sys.stderr, flush=True)
    return None


def run_point(job: Job, world: World, sub: World, n: int, sweep_id: str | None) -> tuple[int | None, object]:
    """The ``n``-rank point of the job on ``sub`` (this rank is in it), its record kept on rank 0: (None, the
    stop.Stopped that ended it early or None), or (an exit status, None) when the job must end here."""
    cfg, backend = job.cfg, job.backend
    stopped, record = None, None
    try:
        record = run(cfg, sub, backend, job.device, job.threads, job.data, sweep_id)
    except checkpoint.AlreadyRecorded as exc:  # on every rank of sub alike
        if sub.is_root:
            print(f"resume: {exc}", flush=True)
    except stop.Stopped as exc:  # on every rank of sub alike, after the epoch's checkpoint
        stopped = exc
    except (NonFiniteLoss, UsageError, DataError) as exc:  # not a valid result: nothing recorded
        suffix = "" if world.size == 1 else "; no record written"
        return fail_rank(world, f"{exc}{suffix}", 1 if isinstance(exc, NonFiniteLoss) else 2), None
    except checkpoint.ModelNotSaved as exc:  # rank 0: the measurement stands, its model file does not
        code = keep_record(cfg, world, n, backend, exc.record)
        return code if code is not None else fail_rank(world, f"{exc.error}; the run's record is kept"), None
    except WriteError as exc:  # rank 0: a checkpoint or the MLPerf log, during the run
        return fail_rank(world, f"{exc}; the run stopped there, no record written"), None
    if record is not None:
        code = keep_record(cfg, world, n, backend, record)
        if code is not None:
            return code, None
    if sub is not world:
        sub.free()
    return None, stopped


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) on this rank; returns the exit status (the
    module's docstring says which)."""
    try:
        world = init_world()
    except WorldOfOne as exc:  # each task alone in its world: every one of them says so
        return fail(str(exc))
    abort_on_uncaught(world)
    job, error = None, None
    try:
        job = set_up(argv, world)
    except SystemExit as exc:  # argparse has printed its message (or --help) on this rank
        if world.size == 1:
            raise
        error = HELP if exc.code == 0 else f"bad command line: {exc}"
    except (UsageError, OutputPathError, BackendError, DataError, DevicePlacementError) as exc:
        error = str(exc)
    failed = world.failures(error)
    if failed:
        if all(m == HELP for _, m in failed) and len(failed) == world.size:
            return 0
        return fail_agreed(world, failed)
    cfg, sizes = job.cfg, job.sizes
    sweep_id = world.bcast(cfg.sweep_id or (uuid.uuid4().hex if cfg.sweep else None))
    if cfg.resume and sweep_id:
        sizes = not_recorded(cfg, world, sizes, sweep_id)
    t0 = time.perf_counter()
    for i, n in enumerate(sizes):
        sub = world if n == world.size else world.first(n)
        code, stopped = (None, None) if sub is None else run_point(job, world, sub, n, sweep_id)
        if code is not None:
            return code
        world.idle_barrier()
        # A warning that reached a rank during this point's last epoch, or an idle rank, stops the sweep here.
        if stop.agreed(world) and (stopped is not None or i + 1 < len(sizes)):
            if world.is_root:
                print(f"stopped: {stop_message(cfg, sweep_id, n, stopped, sizes[i + 1:])}", file=sys.stderr,
                      flush=True)
            return stop.STOPPED
    if world.is_root:
        print(f"done in {time.perf_counter() - t0:.0f} s; records: {os.path.abspath(cfg.out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
