"""Strong-scaling benchmark: ``mpirun -np N python -m bench.strong_scaling [flags]``.

Trains one model at a fixed global batch on N data-parallel ranks and appends one record per run
(docs/records.md). With ``--sweep``, one allocation of N ranks measures 1, 2, 4, ... and N ranks in turn,
each on its own sub-communicator. Without a launcher it runs as one process. The work is done in
``bench.runner``; this module is the command line and the sweep loop.
"""
from __future__ import annotations

import os
import sys
import time
import uuid

import torch

from bench.errors import fail, fail_rank
from bench.records import RecordPathError, append_record, check_writable, recorded_world_sizes
from bench.runner import backends
from bench.runner.backends import BackendError
from bench.runner.comm import abort_on_uncaught, init_world
from bench.runner.config import UsageError, parse_config, sweep_sizes
from bench.runner.data_setup import check_fits, open_data, pick_device, place_data
from bench.runner.device_data import DevicePlacementError
from bench.runner.environment import default_threads
from bench.runner.run import run
from bench.runner.train import NonFiniteLoss
from data.base import DataError


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_config(argv)
        check_writable(cfg.out)
    except (UsageError, RecordPathError) as exc:
        return fail(str(exc))
    world = init_world()
    abort_on_uncaught(world)
    sizes = sweep_sizes(world.size) if cfg.sweep else [world.size]
    try:
        backend = backends.resolve(cfg.backend, world.size)
        device = pick_device(cfg.device, world.local_rank)
        data = open_data(cfg)
        check_fits(cfg, data, sizes)
    except (UsageError, BackendError, DataError) as exc:
        return fail(str(exc), world)
    try:
        data = place_data(cfg, data, device)
    except (DevicePlacementError, DataError) as exc:  # free memory can differ between ranks
        return fail_rank(world, str(exc))
    threads = default_threads(cfg.threads, world.ranks_per_node)
    torch.set_num_threads(threads)
    sweep_id = world.bcast(cfg.sweep_id or (uuid.uuid4().hex if cfg.sweep else None))
    if cfg.resume and sweep_id:
        done = world.bcast(recorded_world_sizes(cfg.out, sweep_id) if world.is_root else None)
        if world.is_root and done & set(sizes):
            print(f"resume: sweep {sweep_id} already has records for {sorted(done & set(sizes))} rank(s); "
                  "skipping them", flush=True)
        sizes = [n for n in sizes if n not in done]
    t0 = time.perf_counter()
    for n in sizes:
        sub = world if n == world.size else world.first(n)
        if sub is not None:
            try:
                record = run(cfg, sub, backend, device, threads, data, sweep_id)
            except (NonFiniteLoss, UsageError, DataError) as exc:  # not a valid result: nothing recorded
                suffix = "" if world.size == 1 else "; no record written"
                return fail_rank(world, f"{exc}{suffix}", 1 if isinstance(exc, NonFiniteLoss) else 2)
            if record is not None:
                append_record(cfg.out, record)
                rate = record["images_per_s"]
                print(f"{n} rank(s), backend {backend}: "
                      f"{'%.1f images/s' % rate if rate else 'no measured epoch'}, "
                      f"final AUC {record['auc'][-1]:.4f}; record appended to {cfg.out}", flush=True)
            if sub is not world:
                sub.free()
        world.idle_barrier()
    if world.is_root:
        print(f"done in {time.perf_counter() - t0:.0f} s; records: {os.path.abspath(cfg.out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
