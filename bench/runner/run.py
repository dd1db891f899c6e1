"""One measured run on one world: build the model, train the epochs, compare with the cuts, make the record."""
from __future__ import annotations

import math
import resource
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

import models
from bench import physics, records
from bench.runner import augment, backends, checkpoint, cpu_use, speed, stop
from bench.runner.backends import GradSync
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
from data.files import WriteError


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


def lr_factor(cfg: Config, t: float) -> float:
    """The learning rate over --lr at ``t`` epochs into training (fractional): a linear warm-up from 0.1 to
    1 over ``lr_warmup_epochs`` (Goyal et al. 2017), then ``lr_decay``: constant; cosine, 0.5 (1 + cos(pi
    u)) with u the fraction of the epochs after the warm-up gone (Loshchilov & Hutter 2017, without
    restarts); step, 0.1 from u = 1/2 and 0.01 from u = 3/4."""
    warm = cfg.lr_warmup_epochs
    if warm and t < warm:
        return 0.1 + 0.9 * t / warm
    u = min(max((t - warm) / max(cfg.epochs - warm, 1e-12), 0.0), 1.0)
    if cfg.lr_decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * u))
    if cfg.lr_decay == "step":
        return 0.01 if u >= 0.75 else 0.1 if u >= 0.5 else 1.0
    return 1.0


def lr_schedule(cfg: Config):
    """The learning rate of step ``step`` of ``steps`` in ``epoch`` (``lr_factor`` x the run's rate); None
    for a constant rate."""
    if not cfg.lr_warmup_epochs and cfg.lr_decay == "none":
        return None
    lr = learning_rate(cfg)
    return lambda epoch, step, steps: lr * lr_factor(cfg, epoch + step / steps)


@dataclass
class RunState:
    """One run as it passes from step to step of ``run``: what the run was given, what its set-up built,
    the epochs trained so far (restored by --resume) and, at the end, the results its record is made of."""

    # given
    cfg: Config
    world: World
    backend: str
    device: torch.device
    threads: int
    data: Data
    sweep_id: str | None
    # set up
    per_rank: int  # images per optimizer step on one rank
    micro: int  # images per forward/backward
    node: dict | None  # cpu_use.node_facts before this run's ranks add their load (rank 0; None elsewhere)
    log: MLLog
    flops_per_image: float | None  # training FLOPs of one image, models.training_flops (rank 0)
    net: torch.nn.Module  # the eager model: validation, checkpoints, the test comparison, the saved model
    optimizer: torch.optim.Optimizer  # wrapped by the backend from ``wrap`` on
    ckpt: str | None  # the checkpoint file (--checkpoint)
    # trained so far
    epochs: list[EpochTimes] = field(default_factory=list)
    aucs: list = field(default_factory=list)  # validation AUC per epoch (rank 0)
    losses: list = field(default_factory=list)  # validation loss per epoch (rank 0)
    reached: int | None = None  # epochs after which --target-auc was first reached (reached_target)
    # training's wrapping (``wrap``)
    sync: GradSync | None = None
    model: object = None  # what the training steps run: ``net`` wrapped by the backend, maybe compiled
    precision: speed.Precision | None = None
    lr_at: object = None  # lr_schedule's function, or None
    augment: augment.Augment | None = None  # the training images' symmetry transforms (--augment)
    best: dict | None = None  # with --keep best: {"epoch", "loss", "model"} of the lowest validation loss
    kept_epoch: int | None = None  # the epoch whose weights are scored and saved (``keep_weights``)
    # results
    comparison: dict | None = None  # test_comparison's (rank 0)
    ranks: list | None = None  # every rank's rank_summary (rank 0)

    @property
    def eval_batch(self) -> int:
        """Images per forward pass when scoring (validation, the test comparison)."""
        return min(self.micro, 1024)


def run(cfg: Config, world: World, backend: str, device, threads: int, data: Data,
        sweep_id: str | None) -> dict | None:
    """Train and measure on ``world``. Collective; returns the record on rank 0, None elsewhere.

    Raises bench.runner.train.NonFiniteLoss, UsageError (a micro-batch that does not fit) or DataError (a
    bad pixel found while training); checkpoint.AlreadyRecorded on every rank when --resume finds the run
    finished and recorded; stop.Stopped on every rank when a rank received the scheduler's warning signal
    (after the epoch it arrived in, and that epoch's checkpoint). On rank 0 alone: data.files.WriteError when
    a checkpoint or the MLPerf log cannot be written, checkpoint.ModelNotSaved (carrying the record) when
    the --save-model file cannot.
    """
    state = set_up(cfg, world, backend, device, threads, data, sweep_id)
    resume(state)
    wrap(state)
    train_epochs(state)
    keep_weights(state)
    state.comparison = test_comparison(state.net, data, world, device, batch=state.eval_batch)
    state.ranks = gather_ranks(state)
    if not world.is_root:
        return None
    record = build_record(state)
    if cfg.save_model:
        try:
            checkpoint.save_model(checkpoint.model_path(cfg, world.size, sweep_id is not None and cfg.sweep),
                                  cfg, state.net, world.size, record["run_id"], record["data"])
        except WriteError as exc:
            raise checkpoint.ModelNotSaved(record, exc) from None
    return record


def set_up(cfg: Config, world: World, backend: str, device, threads: int, data: Data,
           sweep_id: str | None) -> RunState:
    """The run's batch arithmetic, speed settings, MLPerf log, model and optimizer, with ``run``'s
    arguments, as a RunState with no epoch trained yet."""
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
    ckpt = checkpoint.path_for(cfg, world.size) if cfg.checkpoint else None
    return RunState(cfg, world, backend, device, threads, data, sweep_id, per_rank, micro, node, log,
                    flops_per_image, net, optimizer, ckpt)


def resume(state: RunState) -> None:
    """With --resume and a checkpoint: the model, optimizer, epochs, AUCs and losses it holds, and this
    rank's random-number state, into ``state`` (raises checkpoint.AlreadyRecorded for a recorded run).
    Otherwise seeds this rank's random numbers for training."""
    cfg, world = state.cfg, state.world
    saved = checkpoint.load(state.ckpt, cfg, world) if state.ckpt and cfg.resume else None
    if saved is None:
        torch.manual_seed(cfg.seed * 1_000_003 + world.rank)  # dropout masks differ between ranks
        return
    checkpoint.check_not_recorded(state.ckpt, cfg, saved)  # loading also restored the random-number state
    state.net.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.epochs = [EpochTimes(**e) for e in saved["epochs"]]
    state.aucs, state.losses = saved["aucs"], saved["losses"]
    state.best = saved.get("best")
    if world.is_root:
        print(f"resuming from {state.ckpt} after epoch {len(state.epochs) - 1}", flush=True)


def wrap(state: RunState) -> None:
    """The backend's gradient exchange (parameters broadcast from rank 0), the model and optimizer wrapped
    by it, torch.compile, the precision and the learning-rate schedule, into ``state``."""
    cfg = state.cfg
    state.sync = backends.make(state.backend, state.world)
    state.sync.broadcast_parameters(state.net)
    state.model, state.optimizer = state.sync.wrap(state.net, state.optimizer, state.per_rank // state.micro)
    state.model = speed.maybe_compile(state.model, cfg.compile == "on")  # training only; validation: eager net
    state.precision = speed.Precision(cfg.amp, state.device)
    state.lr_at = lr_schedule(cfg)
    transforms = augment.parse(cfg.augment)
    state.augment = augment.Augment(transforms, cfg.seed) if transforms else None


def train_epochs(state: RunState) -> None:
    """The epoch loop, from the first epoch not trained yet: each epoch trained, validated, checkpointed
    and printed, until --epochs or (--stop-at-target) the target. Closes the backend. Collective; raises
    stop.Stopped after an epoch in which a rank received the scheduler's warning signal."""
    cfg, world = state.cfg, state.world
    bar = tqdm(total=cfg.epochs, initial=len(state.epochs), desc=f"{world.size} rank(s)", unit="epoch",
               disable=not world.is_root, file=sys.stderr)
    state.log.run_start()
    state.reached = reached_target(cfg, world, state.aucs)
    try:
        for epoch in range(len(state.epochs), cfg.epochs):
            if state.reached is not None and cfg.stop_at_target:
                break
            times = train_timed(state, epoch)
            validate_epoch(state, epoch, times)
            end_epoch(state, epoch, bar)
    finally:
        bar.close()
        state.sync.close()
    state.log.run_stop(success=state.reached is not None or not cfg.target_auc)


def train_timed(state: RunState, epoch: int) -> EpochTimes:
    """Train ``epoch`` (its timed region), with this rank's CPU use around it. Raises UsageError when a
    micro-batch does not fit in the device's memory."""
    cfg, world, data = state.cfg, state.world, state.data
    state.log.epoch_start(epoch)
    plan = epoch_plan(data.split.train, epoch, cfg.seed, cfg.global_batch, world.size, world.rank, state.micro)
    try:
        # CPU use sampled just outside the timed region (two psutil readings per epoch).
        before = cpu_use.sample()
        times = train_epoch(state.model, state.optimizer, state.sync, world, data.images, plan,
                            data.train_weights, state.device, epoch, cfg.prefetch, state.lr_at, state.precision,
                            speed.memory_format(cfg.memory_format), augment=state.augment)
        times.cpu = cpu_use.between(before, cpu_use.sample())
    except torch.OutOfMemoryError as exc:
        raise UsageError(f"--micro-batch: {state.micro} images of {cfg.image_size}x{cfg.image_size} per "
                         f"forward pass do not fit in the memory of {state.device} ({str(exc).splitlines()[0]}); "
                         f"set --micro-batch to a smaller divisor of the per-rank batch {state.per_rank}") from None
    state.log.epoch_stop(epoch)
    return times


def validate_epoch(state: RunState, epoch: int, times: EpochTimes) -> None:
    """After ``epoch``'s timed region: BN statistics averaged over ranks, then validation; the epoch's
    ``times`` (with its validation time), AUC and loss appended to ``state``. Collective."""
    data = state.data
    state.log.eval_start(epoch)
    t_val = time.perf_counter()
    state.sync.average_buffers(state.net)
    auc, val_loss = validate(state.net, data.images, data.split.val, data.train_weights, state.world,
                             state.device, batch=state.eval_batch)
    times.validation_s = time.perf_counter() - t_val
    state.log.eval_stop(epoch, auc)
    state.epochs.append(times)
    state.aucs.append(auc)
    state.losses.append(val_loss)
    state.reached = reached_target(state.cfg, state.world, state.aucs)
    if state.cfg.keep == "best":
        remember_if_best(state, epoch, val_loss)


def remember_if_best(state: RunState, epoch: int, val_loss) -> None:
    """With --keep best: a copy of the weights (on every rank, for the collective test scoring) when
    ``epoch``'s validation loss (rank 0's, broadcast) is the lowest so far. Collective."""
    world = state.world
    loss = world.bcast(val_loss if world.is_root else None)
    if loss is not None and math.isfinite(loss) and loss < (state.best["loss"] if state.best else math.inf):
        state.best = {"epoch": epoch, "loss": loss,
                      "model": {k: v.detach().to("cpu", copy=True) for k, v in state.net.state_dict().items()}}


def keep_weights(state: RunState) -> None:
    """The weights the test split and --save-model see: the last epoch's, or with --keep best those of the
    epoch of lowest validation loss (the last epoch's when no loss was finite); ``kept_epoch`` says which."""
    if state.cfg.keep == "best" and state.best is not None:
        state.net.load_state_dict(state.best["model"])
        state.kept_epoch = state.best["epoch"]
    else:
        state.kept_epoch = len(state.epochs) - 1


def end_epoch(state: RunState, epoch: int, bar) -> None:
    """After ``epoch`` is validated: its checkpoint, its line on the terminal (rank 0), and the stop signal
    (raises stop.Stopped on every rank when any rank got it and epochs remain). Collective."""
    cfg, world = state.cfg, state.world
    if state.ckpt:
        checkpoint.save(state.ckpt, cfg, world, state.net, state.optimizer, state.epochs, state.aucs,
                        state.losses, best=state.best)
    bar.update(1)
    if world.is_root:
        times, auc, val_loss = state.epochs[-1], state.aucs[-1], state.losses[-1]
        kind = "warm-up" if epoch == 0 else "measured"
        bar.write(f"epoch {epoch} ({kind}): {times.epoch_s:.2f} s, "
                  f"train loss {times.train_loss:.4f}, val loss {val_loss:.4f}, AUC {auc:.4f}")
        sys.stdout.flush()  # a job's log (Slurm's --output, a pipe) shows each epoch as it ends
    # The scheduler's warning before its time limit (bench/runner/stop.py): all ranks stop here,
    # after this epoch's checkpoint, if any rank got it.
    if epoch + 1 < cfg.epochs and stop.agreed(world):
        raise stop.Stopped(len(state.epochs))


def gather_ranks(state: RunState) -> list | None:
    """Every rank's summary of its epochs, peak memory and placement (bench/runner/reduce.py), on rank 0
    (None elsewhere). Collective."""
    world = state.world
    placement = {"threads": state.threads, "ranks_on_node": world.local_size, "node_cores": world.node_cores}
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return world.gather(rank_summary(state.epochs, peak_rss, placement))


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


def build_record(state: RunState) -> dict:
    """The run's record (docs/records.md) from rank 0's ``state`` at the end of the run: its configuration,
    epochs, AUCs, losses, every rank's summary (``state.ranks``) and the test comparison."""
    cfg, world, device, data = state.cfg, state.world, state.device, state.data
    steps_per_epoch = len(state.epochs[0].step_s)
    train_events = steps_per_epoch * cfg.global_batch
    env = environment(world.hosts, mpi_library())
    gpu = env["gpu_name"] if device.type == "cuda" else None
    timing = reduce_ranks(state.ranks, train_events)
    target = time_to_target(cfg, state.epochs, [timing["warmup_epoch_s"], *timing["epoch_s"]], state.aucs)
    # On a GPU the host threads mostly wait for the device: their utilisation says nothing of oversubscription.
    floor = cpu_use.UTIL_FLOOR if device.type == "cpu" else None
    cpu = reduce_cpu(state.ranks, floor)
    return records.new_record(
        sweep_id=state.sweep_id,
        git_rev=git_rev(),
        system=cfg.system or gpu or cpu_model(),
        preset=cfg.preset,
        label=cfg.label,
        config=as_dict(cfg),
        precision=records.PRECISION_OF_AMP[cfg.amp],
        precision_why=cfg.amp_why,
        backend=state.backend,
        world_size=world.size,
        nodes=world.nodes,
        ranks_per_node=world.ranks_per_node,
        cores_available=world.node_cores,
        threads_per_rank=state.threads,
        cpu_allocator=speed.cpu_allocator_in_effect(),
        data_placement=cfg.data_placement,
        data_preload_s=data.cache.preload_s if data.cache is not None else None,
        data_device_bytes=data.cache.nbytes if data.cache is not None else None,
        device=device.type,
        device_name=gpu or cpu_model(),
        model=cfg.model,
        model_params=models.count_parameters(state.net),
        train_flops_per_image=state.flops_per_image,
        achieved_gflop_s=timing["images_per_s"] * state.flops_per_image / 1e9 if timing["images_per_s"] else None,
        image_size=cfg.image_size,
        global_batch=cfg.global_batch,
        per_rank_batch=state.per_rank,
        micro_batch=state.micro,
        accumulation_steps=state.per_rank // state.micro,
        steps_per_epoch=steps_per_epoch,
        train_events=train_events,
        val_events=len(data.split.val),
        data={**data.source.describe(), "split": data.split.describe(), "split_seed": cfg.seed},
        batchnorm="per_rank",
        **timing,
        **target,
        cpu=cpu_use.record(state.node, cpu, floor),
        auc=state.aucs,
        val_loss=state.losses,
        kept_epoch=state.kept_epoch,
        test_auc=state.comparison.get("auc") if state.comparison else None,
        physics=state.comparison,
        env=env,
        scheduler=scheduler(),
    )
