"""Strong-scaling benchmark: ``mpirun -np N python -m bench.strong_scaling [flags]``.

Trains one model at a fixed global batch on N data-parallel ranks and appends one record per run
(docs/records.md). With ``--sweep``, one allocation of N ranks measures 1, 2, 4, ... and N ranks in turn,
each on its own sub-communicator. Without a launcher it runs as one process.
"""
from __future__ import annotations

import os
import resource
import sys
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from bench import backends
from bench.backends import BackendError
from bench.comm import World, abort_on_uncaught, init_world, mpi_library
from bench.config import Config, UsageError, as_dict, parse_config
from bench.device_data import DeviceCache, DevicePlacementError
from bench.records import SCHEMA_VERSION, RecordPathError, append_record, check_writable
from bench.train import NonFiniteLoss
from data.base import DataError


@dataclass(frozen=True)
class Data:
    source: object
    split: object
    train_weights: np.ndarray  # per event of the source; classes balanced on the training split
    cache: object = None  # bench.device_data.DeviceCache with --data-placement device

    @property
    def images(self):
        """Where training and scoring take their images from: the device cache, else the source."""
        return self.cache if self.cache is not None else self.source


def place_data(cfg: Config, data: Data, device) -> Data:
    """With --data-placement device: every event of the three splits preloaded on ``device``."""
    if cfg.data_placement != "device":
        return data
    events = np.concatenate([data.split.train, data.split.val, data.split.test])
    cache = DeviceCache(data.source, events, device, cfg.memory_format == "channels_last")
    return replace(data, cache=cache)


def fail(world: World | None, message: str) -> int:
    if world is None or world.is_root:
        print(f"error: {message}", file=sys.stderr, flush=True)
    return 2


def fail_rank(world: World, message: str, code: int) -> int:
    """An error that may be this rank's alone: one process returns ``code``; under MPI this rank prints
    its message and ends every rank (the others may be waiting in a collective)."""
    if world.size == 1:
        fail(world, message)
        return code
    print(f"error: rank {world.rank}: {message}", file=sys.stderr, flush=True)
    world.abort(code)


def sweep_sizes(n: int) -> list[int]:
    sizes = [1 << k for k in range(n.bit_length()) if 1 << k <= n]
    return sizes + ([n] if sizes[-1] != n else [])


def default_threads(cfg: Config, world: World) -> int:
    """Cores of the node shared among the ranks on it (the allocation's layout, fixed during a sweep)."""
    return cfg.threads or max(1, (os.cpu_count() or 1) // world.ranks_per_node)


def open_data(cfg: Config) -> Data:
    from bench.sampler import split_counts, split_fractions
    from data import open_source, training_weights

    if cfg.data == "synthetic":
        n_test = cfg.val_events
        source = open_source("synthetic", cfg.image_size, cfg.normalisation, cfg.seed,
                             cfg.train_events + cfg.val_events + n_test)
        split = split_counts(cfg.train_events, cfg.val_events, n_test)
    else:
        source = open_source(cfg.data, cfg.image_size, cfg.normalisation, cfg.seed)
        # Split by event, not by the reader's block: generated and converted stores hold one sample per
        # chunk, and whole-chunk splits of a small file can leave a class out of a split.
        split = split_fractions(len(source), cfg.seed, block=1, max_train=cfg.train_events,
                                max_val=cfg.val_events)
    labels, weights = source.labels, source.weights
    tw = np.zeros(len(source))
    for part in (split.train, split.val, split.test):
        tw[part] = training_weights(labels[part], weights[part])
    return Data(source=source, split=split, train_weights=tw)


def check_fits(cfg: Config, data: Data, sizes: list[int]) -> None:
    """Batch arithmetic for every world size this job will run; all ranks agree before any work."""
    for n in sizes:
        if cfg.global_batch % n:
            raise UsageError(f"--global-batch {cfg.global_batch} is not divisible by {n} ranks")
        per_rank = cfg.global_batch // n
        if cfg.micro_batch and per_rank % cfg.micro_batch:
            raise UsageError(f"per-rank batch {per_rank} (--global-batch / {n} ranks) is not divisible "
                             f"by --micro-batch {cfg.micro_batch}")
    if len(data.split.train) < cfg.global_batch:
        raise UsageError(f"--global-batch {cfg.global_batch} is larger than the {len(data.split.train)} "
                         "training events: not one step per epoch")
    if len(data.split.train) < max(sizes):
        raise UsageError(f"{max(sizes)} ranks but only {len(data.split.train)} training events")
    val_labels = data.source.labels[data.split.val]
    if len(np.unique(val_labels)) < 2:
        raise UsageError(f"the {len(data.split.val)} validation events hold "
                         f"{'no events' if len(val_labels) == 0 else 'one class only'}: AUC needs both "
                         "(raise --val-events, or check the data file's labels)")


def make_optimizer(cfg: Config, model):
    import torch

    from bench.speed import optimizer_kwargs
    kw = optimizer_kwargs(cfg.optimizer_impl)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, **kw)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=cfg.lr, **kw)


def lr_schedule(cfg: Config):
    """Linear warm-up from lr/10 to lr over ``lr_warmup_epochs`` (Goyal et al. 2017), then constant."""
    if not cfg.lr_warmup_epochs:
        return None
    return lambda epoch, step, steps: cfg.lr * min(1.0, 0.1 + 0.9 * (epoch + step / steps) / cfg.lr_warmup_epochs)


def run(cfg: Config, world: World, backend: str, device, threads: int, data: Data,
        sweep_id: str | None) -> dict | None:
    """Train and measure on ``world``. Collective; returns the record on rank 0, None elsewhere."""
    import torch
    from tqdm import tqdm

    import models
    from bench import checkpoint, speed
    from bench.sampler import epoch_plan
    from bench.train import EpochTimes, train_epoch, validate

    per_rank = cfg.global_batch // world.size
    micro = cfg.micro_batch or per_rank
    speed.configure_cpu_allocator(cfg.cpu_allocator)
    speed.configure_device(device)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (and broadcast anyway)
    net = models.get_model(cfg.model, image_size=cfg.image_size, dropout=cfg.dropout,
                           bn_momentum=cfg.bn_momentum).to(device)
    optimizer = make_optimizer(cfg, net)
    epochs, aucs, losses = [], [], []
    ckpt = checkpoint.path_for(cfg, world.size) if cfg.checkpoint else None
    state = checkpoint.load(ckpt, cfg, world) if ckpt and cfg.resume else None
    if state is not None:  # also restores this rank's random-number state
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epochs = [EpochTimes(**e) for e in state["epochs"]]
        aucs, losses = state["aucs"], state["losses"]
        if world.is_root:
            print(f"resuming from {ckpt} after epoch {len(epochs) - 1}", flush=True)
    else:
        torch.manual_seed(cfg.seed * 1_000_003 + world.rank)  # dropout masks differ between ranks
    sync = backends.make(backend, world)
    sync.broadcast_parameters(net)
    model, optimizer = sync.wrap(net, optimizer, per_rank // micro)
    model = speed.maybe_compile(model, cfg.compile == "on")  # training only; validation runs the eager net
    precision = speed.Precision(cfg.amp, device)
    lr_at = lr_schedule(cfg)
    bar = tqdm(total=cfg.epochs, initial=len(epochs), desc=f"{world.size} rank(s)", unit="epoch",
               disable=not world.is_root, file=sys.stderr)
    try:
        for epoch in range(len(epochs), cfg.epochs):
            plan = epoch_plan(data.split.train, epoch, cfg.seed, cfg.global_batch, world.size, world.rank, micro)
            try:
                times = train_epoch(model, optimizer, sync, world, data.images, plan, data.train_weights,
                                    device, epoch, cfg.prefetch, lr_at, precision,
                                    speed.memory_format(cfg.memory_format))
            except torch.OutOfMemoryError as exc:
                raise UsageError(f"--micro-batch: {micro} images of {cfg.image_size}x{cfg.image_size} per "
                                 f"forward pass do not fit in the memory of {device} ({str(exc).splitlines()[0]}); "
                                 f"set --micro-batch to a smaller divisor of the per-rank batch {per_rank}") from None
            # Outside the timed region: BN statistics averaged over ranks, then validation.
            sync.average_buffers(net)
            auc, val_loss = validate(net, data.images, data.split.val, data.train_weights, world, device,
                                     batch=min(micro, 1024))
            epochs.append(times)
            aucs.append(auc)
            losses.append(val_loss)
            if ckpt:
                checkpoint.save(ckpt, cfg, world, net, optimizer, epochs, aucs, losses)
            bar.update(1)
            if world.is_root:
                kind = "warm-up" if epoch == 0 else "measured"
                bar.write(f"epoch {epoch} ({kind}): {times.epoch_s:.2f} s, "
                          f"train loss {times.train_loss:.4f}, val loss {val_loss:.4f}, AUC {auc:.4f}")
    finally:
        bar.close()
        sync.close()
    physics = test_comparison(net, data, world, device, batch=min(micro, 1024))
    record = summarise(cfg, world, backend, device, threads, data, sweep_id, epochs, aucs, losses,
                       models.count_parameters(net), per_rank, micro)
    if record is not None:
        record["test_auc"] = physics.get("auc")
        record["physics"] = physics
        if cfg.save_model:
            checkpoint.save_model(checkpoint.model_path(cfg, world.size, sweep_id is not None and cfg.sweep),
                                  cfg, net, world.size, record["run_id"], record["data"])
    return record


def test_comparison(net, data: Data, world: World, device, batch: int) -> dict | None:
    """The trained model on the test split: AUC, and against the cut-based selection where the source has
    jet quantities (bench/physics.py). Outside the timed region. Collective; the dict on rank 0 only."""
    from bench import physics
    from bench.train import score_events

    scored = score_events(net, data.images, data.split.test, world, device, batch)
    if scored is None:
        return None
    idx, scores = scored
    y, w = data.source.labels[idx], data.source.weights[idx]
    if len(np.unique(y)) < 2:
        return {"auc": None, "unavailable": f"the {len(idx)} test events hold one class only"}
    try:
        cmp, flow = physics.on_source(data.source, idx, scores)
    except DataError as exc:  # a dense file: no jet quantities, so no cut-based selection
        return {"auc": physics.auc(y, scores, w), "unavailable": str(exc)}
    return {**cmp.asdict(), "cut_flow": flow}


def summarise(cfg, world, backend, device, threads, data, sweep_id, epochs, aucs, losses, n_params,
              per_rank, micro) -> dict | None:
    """Reduce per-rank timings to the record (rank 0) . Collective."""
    from bench.environment import cpu_model, environment, git_rev
    from bench.speed import cpu_allocator_in_effect

    measured = epochs[1:]
    steps = [s for t in measured for s in t.step_s]
    n_measured = max(1, len(measured))
    mine = {
        "step_median": float(np.median(steps)) if steps else None,
        "busy": float(sum(steps)),
        "compute": sum(t.compute_s for t in measured) / n_measured,
        "comm": sum(t.comm_s for t in measured) / n_measured,
        "wait": sum(t.data_wait_s for t in measured) / n_measured,
        "steps": steps,
        "epoch_s": [t.epoch_s for t in epochs],
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    ranks = world.gather(mine)
    if not world.is_root:
        return None
    epoch_s = [max(times) for times in zip(*(r["epoch_s"] for r in ranks))]  # the slowest rank's clock
    slowest = max(ranks, key=lambda r: r["busy"])
    all_steps = [s for r in ranks for s in r["steps"]]
    steps_per_epoch = len(epochs[0].step_s)
    train_events = steps_per_epoch * cfg.global_batch
    env = environment(world.hosts, mpi_library())
    gpu = env["gpu_name"] if device.type == "cuda" else None
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex,
        "sweep_id": sweep_id,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git_rev": git_rev(),
        "system": cfg.system or gpu or cpu_model(),
        "preset": cfg.preset,
        "label": cfg.label,
        "config": as_dict(cfg),
        "backend": backend,
        "world_size": world.size,
        "nodes": world.nodes,
        "ranks_per_node": world.ranks_per_node,
        "threads_per_rank": threads,
        "cpu_allocator": cpu_allocator_in_effect(),
        "data_placement": cfg.data_placement,
        "data_preload_s": data.cache.preload_s if data.cache is not None else None,
        "data_device_bytes": data.cache.nbytes if data.cache is not None else None,
        "device": device.type,
        "device_name": gpu or cpu_model(),
        "model": cfg.model,
        "model_params": n_params,
        "image_size": cfg.image_size,
        "global_batch": cfg.global_batch,
        "per_rank_batch": per_rank,
        "micro_batch": micro,
        "accumulation_steps": per_rank // micro,
        "steps_per_epoch": steps_per_epoch,
        "train_events": train_events,
        "val_events": len(data.split.val),
        "data": {**data.source.describe(), "split": data.split.describe(), "split_seed": cfg.seed},
        "batchnorm": "per_rank",
        "warmup_epoch_s": epoch_s[0],
        "epoch_s": epoch_s[1:],
        "images_per_s": train_events / float(np.median(epoch_s[1:])) if measured else None,
        "step_s_median": float(np.median(all_steps)) if all_steps else None,
        "step_s_max_rank": max(r["step_median"] for r in ranks) if all_steps else None,
        "compute_s": slowest["compute"],
        "comm_s": slowest["comm"],
        "data_wait_s": slowest["wait"],
        "auc": aucs,
        "val_loss": losses,
        "peak_rss_bytes": max(r["rss"] for r in ranks),
        "env": env,
    }


def recorded_sizes(path: str, sweep_id: str) -> set[int]:
    """World sizes of the sweep ``sweep_id`` already recorded in ``path`` (a broken line is skipped)."""
    from bench.records import read_records
    if not os.path.exists(path):
        return set()
    records, problems = read_records(path)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return {r["world_size"] for r in records if r.get("sweep_id") == sweep_id and "world_size" in r}


def pick_device(name: str, local_rank: int = 0):
    """The CPU, or the GPU of this rank: ranks on a node take its GPUs in turn (local rank modulo count)."""
    import torch
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if name != "cuda":
        return torch.device("cpu")
    device = torch.device("cuda", local_rank % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = parse_config(argv)
        check_writable(cfg.out)
    except (UsageError, RecordPathError) as exc:
        return fail(None, str(exc))
    world = init_world()
    abort_on_uncaught(world)
    sizes = sweep_sizes(world.size) if cfg.sweep else [world.size]
    try:
        backend = backends.resolve(cfg.backend, world.size)
        device = pick_device(cfg.device, world.local_rank)
        data = open_data(cfg)
        check_fits(cfg, data, sizes)
    except (UsageError, BackendError, DataError) as exc:
        return fail(world, str(exc))
    try:
        data = place_data(cfg, data, device)
    except (DevicePlacementError, DataError) as exc:  # free memory can differ between ranks
        return fail_rank(world, str(exc), 2)
    import torch
    threads = default_threads(cfg, world)
    torch.set_num_threads(threads)
    sweep_id = world.bcast(cfg.sweep_id or (uuid.uuid4().hex if cfg.sweep else None))
    if cfg.resume and sweep_id:
        done = world.bcast(recorded_sizes(cfg.out, sweep_id) if world.is_root else None)
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
