"""Spec: each rank trains on its own disjoint part of every epoch, all parts together cover the epoch's
global batches, every rank has the same number of steps, the order is reshuffled every epoch from the
shared seed, and rank r's batch is the r-th micro-batch of the one-rank accumulation of the same step.
Tested without MPI over simulated (world size, rank) pairs."""
import numpy as np
import pytest

from bench.runner.sampler import epoch_plan, split_counts, split_fractions, val_shard
from bench.runner.config import sweep_sizes


@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
def test_disjoint_complete_equal_steps(world):
    train = np.arange(1000, 1000 + 4800)
    G = 48 * world // world * 8  # 384, divisible by every world size here
    plans = [epoch_plan(train, epoch=2, seed=9, global_batch=G, world_size=world, rank=r,
                        micro_batch=G // world) for r in range(world)]
    assert len({p.shape for p in plans}) == 1
    steps = plans[0].shape[0]
    assert steps == len(train) // G
    seen = np.concatenate([p.reshape(-1) for p in plans])
    assert len(np.unique(seen)) == len(seen) == steps * G  # disjoint and complete
    assert set(seen) <= set(train)


def test_reshuffled_every_epoch_and_reproducible():
    train = np.arange(512)
    a = epoch_plan(train, 0, 1, 64, 2, 0, 32)
    assert np.array_equal(a, epoch_plan(train, 0, 1, 64, 2, 0, 32))
    assert not np.array_equal(a, epoch_plan(train, 1, 1, 64, 2, 0, 32))
    assert not np.array_equal(a, epoch_plan(train, 0, 2, 64, 2, 0, 32))


@pytest.mark.parametrize("world", [2, 4])
def test_rank_batches_are_the_micro_batches_of_one_rank(world):
    train = np.arange(2048)
    G, b = 256, 256 // world
    one = epoch_plan(train, 3, 5, G, 1, 0, micro_batch=b)  # (steps, world, b)
    for r in range(world):
        mine = epoch_plan(train, 3, 5, G, world, r, micro_batch=b)  # (steps, 1, b)
        np.testing.assert_array_equal(mine[:, 0], one[:, r])


def test_accumulation_shape():
    plan = epoch_plan(np.arange(1000), 0, 0, 200, 2, 1, micro_batch=25)
    assert plan.shape == (5, 4, 25)


def test_file_split_is_deterministic_disjoint_and_whole_blocks():
    s = split_fractions(10_000, seed=3, block=100)
    again = split_fractions(10_000, seed=3, block=100)
    for a, b in zip((s.train, s.val, s.test), (again.train, again.val, again.test)):
        np.testing.assert_array_equal(a, b)
    allidx = np.concatenate([s.train, s.val, s.test])
    assert len(np.unique(allidx)) == 10_000
    assert len(s.train) == 6000 and len(s.val) == 2000
    assert set(np.unique(s.train // 100)).isdisjoint(np.unique(s.val // 100))
    capped = split_fractions(10_000, seed=3, block=100, max_train=1000, max_val=10)
    assert len(capped.train) == 1000 and len(capped.val) == 10
    np.testing.assert_array_equal(capped.test, s.test)  # a cap moves no event into or out of the test split
    # a cap is a random subset of whole blocks, nested in a larger cap, not the file's first events
    assert set(capped.train) <= set(s.train) and capped.train.max() > 5000
    small = split_fractions(10_000, seed=3, block=1, max_train=500)
    large = split_fractions(10_000, seed=3, block=1, max_train=3000)
    assert set(small.train) <= set(large.train)
    assert 0.3 < (small.train < 5000).mean() < 0.7  # spread over the file
    other = split_fractions(10_000, seed=3, fractions=(0.6, 0.1, 0.3), block=1)
    assert (len(other.train), len(other.val), len(other.test)) == (6000, 1000, 3000)


def test_validation_shards_cover_the_set():
    val = np.arange(1001)
    parts = [val_shard(val, 4, r) for r in range(4)]
    np.testing.assert_array_equal(np.concatenate(parts), val)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_counts_split_and_sweep_sizes():
    s = split_counts(10, 4, 4)
    assert list(s.val) == [10, 11, 12, 13]
    assert sweep_sizes(1) == [1]
    assert sweep_sizes(2) == [1, 2]
    assert sweep_sizes(6) == [1, 2, 4, 6]
    assert sweep_sizes(1024)[-1] == 1024 and len(sweep_sizes(1024)) == 11
