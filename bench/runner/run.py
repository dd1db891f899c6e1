"""One measured run on one world: build the model, train the epochs, compare with the cuts, make the record."""
from __future__ import annotations

import resource
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

import models
from bench import physics, records
from bench.runner import backends, checkpoint, cpu_use, speed, stop
from bench.runner.comm import World, mpi_library
from bench.runner.config import Config, UsageError, as_dict, learning_rate
from bench.runner.data_setup import Data
from bench.runner.environment import cpu_model, environment, git_rev, scheduler
from bench.runner.mllog import MLLog
from bench.runner.optimizers import Lamb, Lars
from bench.runner.reduce import rank_summary, reduce_cpu, reduce_ranks
from bench.runner.sampler import epoch_plan
from bench.runner.train import EpochTimes, score_events, train_epoch, validate
from data.base import DataError


def make_optimizer(cfg: Config, model):
    lr = learning_rate(cfg)
    if cfg.optimizer == "lamb":
        return Lamb(model.parameters(), lr=lr)
    if cfg.optimizer == "lars":
        return Lars(model.parameters(), lr=lr, momentum=0.9)
    kw = speed.optimizer_kwargs(cfg.optimizer_impl)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, **kw)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=lr, **kw)


def lr_schedule(cfg: Config):
    """Linear warm-up from lr/10 to lr over ``lr_warmup_epochs`` (Goyal et al. 2017), then constant."""
    if not cfg.lr_warmup_epochs:
        return None
    lr = learning_rate(cfg)
    return lambda epoch, step, steps: lr * min(1.0, 0.1 + 0.9 * (epoch + step / steps) / cfg.lr_warmup_epochs)


def run(cfg: Config, world: World, backend: str, device, threads: int, data: Data,
        sweep_id: str | None) -> dict | None:
    """Train and measure on ``world``. Collective; returns the record on rank 0, None elsewhere.

    Raises bench.runner.train.NonFiniteLoss, UsageError (a micro-batch that does not fit) or DataError (a
    bad pixel found while training); checkpoint.AlreadyRecorded on every rank when --resume finds the run
    finished and recorded; stop.Stopped on every rank when a rank received the scheduler's warning signal
    (after the epoch it arrived in, and that epoch's checkpoint).
    """
    per_rank = cfg.global_batch // world.size
    micro = cfg.micro_batch or per_rank
    node = cpu_use.node_facts() if world.is_root else None  # the load before this run's ranks add theirs
    speed.configure_cpu_allocator(cfg.cpu_allocator)
    speed.configure_device(device)
    log = MLLog(checkpoint.run_path(cfg.mllog, world.size, cfg.sweep), world.is_root)
    log.init_start(cfg, world.size, cfg.system or str(device), len(data.split.train), len(data.split.val),
                   learning_rate(cfg))
    flops_per_image = models.training_flops_of_config(cfg) if world.is_root else None  # meta device: no work
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (and broadcast anyway)
    net = models.from_config(cfg).to(device)
    optimizer = make_optimizer(cfg, net)
    epochs, aucs, losses = [], [], []
    ckpt = checkpoint.path_for(cfg, world.size) if cfg.checkpoint else None
    state = checkpoint.load(ckpt, cfg, world) if ckpt and cfg.resume else None
    if state is not None:  # also restores this rank's random-number state
        checkpoint.check_not_recorded(ckpt, cfg, state)
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
    log.run_start()
    reached = reached_target(cfg, world, aucs)
    try:
        for epoch in range(len(epochs), cfg.epochs):
            if reached is not None and cfg.stop_at_target:
                break
            log.epoch_start(epoch)
            plan = epoch_plan(data.split.train, epoch, cfg.seed, cfg.global_batch, world.size, world.rank, micro)
            try:
                # CPU use sampled just outside the timed region (two psutil readings per epoch).
                before = cpu_use.sample()
                times = train_epoch(model, optimizer, sync, world, data.images, plan, data.train_weights,
                                    device, epoch, cfg.prefetch, lr_at, precision,
                                    speed.memory_format(cfg.memory_format))
                times.cpu = cpu_use.between(before, cpu_use.sample())
            except torch.OutOfMemoryError as exc:
                raise UsageError(f"--micro-batch: {micro} images of {cfg.image_size}x{cfg.image_size} per "
                                 f"forward pass do not fit in the memory of {device} ({str(exc).splitlines()[0]}); "
                                 f"set --micro-batch to a smaller divisor of the per-rank batch {per_rank}") from None
            log.epoch_stop(epoch)
            # Outside the timed region: BN statistics averaged over ranks, then validation.
            log.eval_start(epoch)
            t_val = time.perf_counter()
            sync.average_buffers(net)
            auc, val_loss = validate(net, data.images, data.split.val, data.train_weights, world, device,
                                     batch=min(micro, 1024))
            times.validation_s = time.perf_counter() - t_val
            log.eval_stop(epoch, auc)
            epochs.append(times)
            aucs.append(auc)
            losses.append(val_loss)
            reached = reached_target(cfg, world, aucs)
            if ckpt:
                checkpoint.save(ckpt, cfg, world, net, optimizer, epochs, aucs, losses)
            bar.update(1)
            if world.is_root:
                kind = "warm-up" if epoch == 0 else "measured"
                bar.write(f"epoch {epoch} ({kind}): {times.epoch_s:.2f} s, "
                          f"train loss {times.train_loss:.4f}, val loss {val_loss:.4f}, AUC {auc:.4f}")
                sys.stdout.flush()  # a job's log (Slurm's --output, a pipe) shows each epoch as it ends
            # The scheduler's warning before its time limit (bench/runner/stop.py): all ranks stop here,
            # after this epoch's checkpoint, if any rank got it.
            if epoch + 1 < cfg.epochs and stop.agreed(world):
                raise stop.Stopped(len(epochs))
    finally:
        bar.close()
        sync.close()
    log.run_stop(success=reached is not None or not cfg.target_auc)
    comparison = test_comparison(net, data, world, device, batch=min(micro, 1024))
    placement = {"threads": threads, "ranks_on_node": world.local_size, "node_cores": world.node_cores}
    ranks = world.gather(rank_summary(epochs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, placement))
    if not world.is_root:
        return None
    record = build_record(cfg, world, backend, device, threads, data, sweep_id, epochs, aucs, losses,
                          models.count_parameters(net), flops_per_image, per_rank, micro,
                          ranks, comparison, node)
    if cfg.save_model:
        checkpoint.save_model(checkpoint.model_path(cfg, world.size, sweep_id is not None and cfg.sweep),
                              cfg, net, world.size, record["run_id"], record["data"])
    return record


def first_reaching(target: float, aucs: list) -> int | None:
    """The number of epochs after which an AUC of ``aucs`` (None: undefined) first reached ``target``."""
    return next((k + 1 for k, auc in enumerate(aucs) if auc is not None and auc >= target), None)


def reached_target(cfg: Config, world: World, aucs: list[float]) -> int | None:
    """The number of epochs after which the validation AUC first reached --target-auc (None: not yet, or no
    target). Rank 0 holds the AUCs; with --stop-at-target every rank must know, so it is broadcast (a
    collective, outside the timed region)."""
    if not cfg.target_auc:
        return None
    first = first_reaching(cfg.target_auc, aucs) if world.is_root else None
    return world.bcast(first) if cfg.stop_at_target else first


def time_to_target(cfg: Config, epochs: list, epoch_s: list[float], aucs: list[float]) -> dict:
    """The record's time-to-target fields: ``epochs_to_target``; ``time_to_target_s``, the training time of
    the epochs up to and including the first that reached --target-auc (warm-up included, validation not; each
    epoch the slowest rank's, ``epoch_s`` with the warm-up first); ``time_to_target_with_validation_s``; and
    the reason in ``undefined`` when the target was not reached. Empty without a target."""
    if not cfg.target_auc:
        return {}
    k = first_reaching(cfg.target_auc, aucs)
    if k is None:
        best = max((a for a in aucs if a is not None), default=float("nan"))
        why = f"the validation AUC did not reach {cfg.target_auc:g} in {len(aucs)} epoch(s) (best {best:.4f})"
        return {"target_auc": cfg.target_auc, "epochs_to_target": None, "time_to_target_s": None,
                "time_to_target_with_validation_s": None,
                "undefined": {name: why for name in ("epochs_to_target", "time_to_target_s",
                                                     "time_to_target_with_validation_s")}}
    train_s = sum(epoch_s[:k])
    return {"target_auc": cfg.target_auc, "epochs_to_target": k, "time_to_target_s": train_s,
            "time_to_target_with_validation_s": train_s + sum(e.validation_s for e in epochs[:k])}


def test_comparison(net, data: Data, world: World, device, batch: int) -> dict | None:
    """The trained model on the test split: AUC, and against the cut-based selection where the source has
    jet quantities (bench/physics.py). Outside the timed region. Collective; the dict on rank 0 only."""
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


def build_record(cfg, world, backend, device, threads, data, sweep_id, epochs, aucs, losses, n_params,
                 flops_per_image, per_rank, micro, ranks, comparison, node) -> dict:
    """The run's record (docs/records.md) from rank 0's view (``node``: ``cpu_use.node_facts`` at the start)
    and every rank's summary; ``flops_per_image``: training FLOPs of one image (models.training_flops)."""
    steps_per_epoch = len(epochs[0].step_s)
    train_events = steps_per_epoch * cfg.global_batch
    env = environment(world.hosts, mpi_library())
    gpu = env["gpu_name"] if device.type == "cuda" else None
    timing = reduce_ranks(ranks, train_events)
    target = time_to_target(cfg, epochs, [timing["warmup_epoch_s"], *timing["epoch_s"]], aucs)
    # On a GPU the host threads mostly wait for the device: their utilisation says nothing of oversubscription.
    floor = cpu_use.UTIL_FLOOR if device.type == "cpu" else None
    cpu = reduce_cpu(ranks, floor)
    return records.new_record(
        sweep_id=sweep_id,
        git_rev=git_rev(),
        system=cfg.system or gpu or cpu_model(),
        preset=cfg.preset,
        label=cfg.label,
        config=as_dict(cfg),
        backend=backend,
        world_size=world.size,
        nodes=world.nodes,
        ranks_per_node=world.ranks_per_node,
        cores_available=world.node_cores,
        threads_per_rank=threads,
        cpu_allocator=speed.cpu_allocator_in_effect(),
        data_placement=cfg.data_placement,
        data_preload_s=data.cache.preload_s if data.cache is not None else None,
        data_device_bytes=data.cache.nbytes if data.cache is not None else None,
        device=device.type,
        device_name=gpu or cpu_model(),
        model=cfg.model,
        model_params=n_params,
        train_flops_per_image=flops_per_image,
        achieved_gflop_s=timing["images_per_s"] * flops_per_image / 1e9 if timing["images_per_s"] else None,
        image_size=cfg.image_size,
        global_batch=cfg.global_batch,
        per_rank_batch=per_rank,
        micro_batch=micro,
        accumulation_steps=per_rank // micro,
        steps_per_epoch=steps_per_epoch,
        train_events=train_events,
        val_events=len(data.split.val),
        data={**data.source.describe(), "split": data.split.describe(), "split_seed": cfg.seed},
        batchnorm="per_rank",
        **timing,
        **target,
        cpu=cpu_use.record(node, cpu, floor),
        auc=aucs,
        val_loss=losses,
        test_auc=comparison.get("auc") if comparison else None,
        physics=comparison,
        env=env,
        scheduler=scheduler(),
    )
