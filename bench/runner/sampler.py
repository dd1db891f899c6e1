"""Which events each rank trains on: the split, and every epoch's sharding over ranks.

Pure functions of (seed, epoch, world size, rank): they are unit-tested for simulated worlds without MPI.

Step-major layout: epoch ``e`` shuffles the training events with seed (seed, e), cuts the first
``steps * G`` into ``steps`` global batches of G, and rank r takes columns ``r*b .. (r+1)*b`` of each
(b = G / world size). Every rank gets the same number of steps; ranks are disjoint; together they cover
all ``steps * G`` events. Rank r's batch at step s is exactly the r-th micro-batch of b that one rank
would take from the same global batch when accumulating: that is what makes N ranks equal one rank with
gradient accumulation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def describe(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_counts(n_train: int, n_val: int, n_test: int) -> Split:
    """Consecutive ranges: the synthetic source, whose events are independent by construction."""
    return Split(train=np.arange(n_train), val=np.arange(n_train, n_train + n_val),
                 test=np.arange(n_train + n_val, n_train + n_val + n_test))


def split_fractions(n_events: int, seed: int, fractions=(0.6, 0.2, 0.2), block: int = 1,
                    max_train: int = 0, max_val: int = 0) -> Split:
    """A deterministic random split of a file's events, by whole blocks of ``block`` events.

    The same (n_events, seed, block, fractions) always gives the same split, on every rank and every run.
    ``max_train`` / ``max_val`` cap the training and validation sets (0: no cap) with a random subset of
    whole blocks: the first blocks of the split's own random order, so a smaller cap is a subset of a
    larger one (a learning curve's training sets are nested) and every cap keeps the split's mix of samples.
    """
    n_blocks = -(-n_events // block)
    order = np.random.default_rng([seed, 0x5B11]).permutation(n_blocks)
    edges = np.round(np.cumsum(fractions) / sum(fractions) * n_blocks).astype(int)
    parts = np.split(order, edges[:-1])

    def events(blocks: np.ndarray, cap: int) -> np.ndarray:
        idx = (blocks[:, None] * block + np.arange(block)[None, :]).reshape(-1)  # in the random order
        idx = idx[idx < n_events]
        return np.sort(idx[:cap] if cap else idx)

    return Split(train=events(parts[0], max_train), val=events(parts[1], max_val), test=events(parts[2], 0))


def steps_per_epoch(n_train: int, global_batch: int) -> int:
    return n_train // global_batch


def epoch_plan(train: np.ndarray, epoch: int, seed: int, global_batch: int, world_size: int,
               rank: int, micro_batch: int) -> np.ndarray:
    """Rank ``rank``'s events for epoch ``epoch``: an int array (steps, accumulation, micro_batch).

    Each micro-batch is sorted (cheaper reads; the order inside a batch does not change the gradient).
    """
    steps = steps_per_epoch(len(train), global_batch)
    per_rank = global_batch // world_size
    perm = np.random.default_rng([seed, 0xE90C, epoch]).permutation(len(train))
    batches = train[perm[: steps * global_batch]].reshape(steps, global_batch)
    mine = batches[:, rank * per_rank:(rank + 1) * per_rank]
    mine = mine.reshape(steps, per_rank // micro_batch, micro_batch)
    return np.sort(mine, axis=-1)


def val_shard(val: np.ndarray, world_size: int, rank: int) -> np.ndarray:
    """Rank ``rank``'s contiguous part of the validation set (parts differ by at most one event)."""
    return np.array_split(val, world_size)[rank]
