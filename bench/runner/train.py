"""One training epoch, timed honestly, and validation on the whole validation set.

The epoch's timed region starts and ends at a barrier (after a device synchronisation) and contains only
training steps: no logging, no ``.item()``, no validation, no file writing. Inside it each step is split
into data wait (blocked on the prefetcher), compute (forward, backward, optimizer) and exposed
communication (what the backend reports, see bench/runner/backends.py).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, roc_auc_score

from bench.runner.backends import GradSync
from bench.runner.comm import World
from bench.runner.device_data import loader as make_loader
from bench.runner.sampler import val_shard
from bench.runner.speed import Precision


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run is not a valid result."""


@dataclass
class EpochTimes:
    epoch_s: float = 0.0
    step_s: list[float] = field(default_factory=list)
    compute_s: float = 0.0
    comm_s: float = 0.0
    data_wait_s: float = 0.0
    train_loss: float = 0.0
    validation_s: float = 0.0  # after the epoch, outside its timed region: BN averaging and validation
    cpu: dict | None = None  # this rank's CPU use around the epoch (bench/runner/cpu_use.py), set by the caller


def _sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(model, optimizer, sync: GradSync, world: World, source, plan: np.ndarray,
                train_weights: np.ndarray, device: torch.device, epoch: int, prefetch: int,
                lr_at=None, precision: Precision | None = None,
                memory_format: torch.memory_format = torch.contiguous_format,
                clock=time.perf_counter, augment=None) -> EpochTimes:
    """Train one epoch on this rank's ``plan`` (steps, accumulation, micro_batch). Collective.

    ``source``: an EventSource (batches made by the background Prefetcher) or a DeviceCache (batches built
    on the device, bench/runner/device_data.py).

    ``precision``: autocast and loss scaling (default fp32); ``memory_format``: layout the loader gives
    the images in (bench/runner/speed.py); ``clock``: what every time inside is read from (tests pass a
    fake one); ``augment``: the run's bench.runner.augment.Augment (its draws for this epoch and rank), or
    None.
    """
    steps, accumulation, micro = plan.shape
    precision = precision or Precision()
    times = EpochTimes()
    losses = torch.zeros(steps, dtype=torch.float64, device=device)  # checked after the timed region
    model.train()
    loader = make_loader(source, list(plan), train_weights, depth=prefetch, pin=device.type == "cuda",
                         memory_format=memory_format,
                         augment=None if augment is None else augment.at(epoch, world.rank))
    try:
        _sync_device(device)
        world.barrier()
        t_start = clock()
        for s in range(steps):
            if lr_at is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(epoch, s, steps)
            t0 = clock()
            batch = tuple(t.to(device, non_blocking=True) for t in loader.get())  # x, y, w
            t1 = clock()
            _forward_backward(model, sync, precision, batch, accumulation, micro, losses[s])
            comm = sync.sync(model, optimizer)
            precision.step(sync, optimizer)
            sync.zero_grad(model, optimizer)
            _sync_device(device)
            t2 = clock()
            times.step_s.append(t2 - t0)
            times.data_wait_s += t1 - t0
            times.comm_s += comm
            times.compute_s += (t2 - t1) - comm
        _sync_device(device)
        world.barrier()
        times.epoch_s = clock() - t_start
    finally:
        loader.close()
    times.train_loss = _mean_loss(losses, epoch)
    return times


def _forward_backward(model, sync: GradSync, precision: Precision, batch, accumulation: int, micro: int,
                      loss_sum: torch.Tensor) -> None:
    """One step's forward and backward passes over the ``accumulation`` micro-batches of ``micro`` images of
    ``batch`` (x, y, w), the backend's exchange held back until the last; each micro-batch's loss is added
    to ``loss_sum`` (the step's element of the epoch's loss tensor, in place)."""
    x, y, w = batch
    for k in range(accumulation):
        part = slice(k * micro, (k + 1) * micro)
        last = k == accumulation - 1
        with sync.no_sync(model) if not last else contextlib.nullcontext():
            with precision.autocast():
                logits = model(x[part])
            loss = F.binary_cross_entropy_with_logits(logits.float(), y[part], weight=w[part]) / accumulation
            precision.backward(loss * sync.loss_scale if sync.loss_scale != 1.0 else loss)
        loss_sum += loss.detach().double()


def _mean_loss(losses: torch.Tensor, epoch: int) -> float:
    """The mean of the epoch's step ``losses``; raises NonFiniteLoss naming the first step that is not
    finite."""
    losses = losses.cpu()
    bad = ~torch.isfinite(losses)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0])
        raise NonFiniteLoss(f"non-finite training loss at epoch {epoch}, step {first}: "
                            f"{float(losses[first])}")
    return float(losses.mean())


@torch.no_grad()
def predict(model, source, indices: np.ndarray, device: torch.device, batch: int) -> np.ndarray:
    """Signal probabilities for ``indices`` (in the order given)."""
    model.eval()
    out = []
    chunks = [indices[i:i + batch] for i in range(0, len(indices), batch)]
    loader = make_loader(source, chunks, None, depth=2)
    try:
        for _ in chunks:
            x, _, _ = loader.get()
            out.append(torch.sigmoid(model(x.to(device))).float().cpu().numpy())
    finally:
        loader.close()
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def score_events(model, source, indices: np.ndarray, world: World, device: torch.device,
                 batch: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(indices, signal probabilities) of all ``indices``, on rank 0 (None elsewhere).

    Each rank scores its own share; rank 0 gathers them. Collective.
    """
    mine = val_shard(indices, world.size, world.rank)
    parts = world.gather((mine, predict(model, source, mine, device, batch)))
    if not world.is_root:
        return None
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]).astype(np.float64))


def validate(model, source, val_indices: np.ndarray, train_weights: np.ndarray, world: World,
             device: torch.device, batch: int) -> tuple[float, float]:
    """(AUC with physical weights, loss with training weights) over the whole validation set.

    Collective; the returned values are meaningful on rank 0 only (NaN elsewhere).
    """
    scored = score_events(model, source, val_indices, world, device, batch)
    if scored is None:
        return float("nan"), float("nan")
    idx, score = scored
    y = source.labels[idx]
    auc = float(roc_auc_score(y, score, sample_weight=source.weights[idx]))
    loss = float(log_loss(y, np.clip(score, 1e-7, 1 - 1e-7), sample_weight=train_weights[idx],
                          labels=[0, 1]))
    return auc, loss
