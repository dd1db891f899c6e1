"""Spec (bench/runner/train.py, train_epoch): each step's time is split exactly into data wait + exposed
communication + compute, and the steps add up to no more than the epoch (which also holds the learning-rate
updates between steps and the closing barrier, but not the opening one).

train_epoch reads every time from its ``clock`` argument. Here the clock is fake and only the fakes move it,
by known amounts that are multiples of 1/64 s (exact in floating point, so the checks are ==):

* the loader's ``get`` (data wait): 0.25, 0.5, 0.125 s for steps 0, 1, 2;
* the gradient sync (exposed communication): 0.0625, 0.75, 0.1875 s, spent either inside ``sync()`` (as the
  mpi and horovod backends do) or at the end of the last micro-batch's backward (as ddp does, ``sync()``
  then only reports it): the split must come out the same;
* compute: forward 0.5 s and backward 0.125 s per micro-batch (2 per step), the optimizer step
  0.25, 0.375, 0.5 s, zero_grad 0.03125 s;
* outside the steps: the learning-rate schedule 0.015625 s before each step, each barrier 2.0 s.

The model is a real one-layer network on 3x8x8 images; its loss is real, only time is fake.
"""
import contextlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bench.runner import train
from bench.runner.backends import GradSync
from bench.runner.comm import World
from bench.runner.train import train_epoch

WAIT = [0.25, 0.5, 0.125]
COMM = [0.0625, 0.75, 0.1875]
FORWARD, BACKWARD = 0.5, 0.125
OPT_STEP = [0.25, 0.375, 0.5]
ZERO_GRAD = 0.03125
LR_AT = 0.015625
BARRIER = 2.0
STEPS, ACCUMULATION, MICRO = 3, 2, 4
COMMS, COMM_IDS = [False, True], ["comm-in-sync", "comm-in-backward"]  # where communication is spent

# By hand, per step: compute = 2 x (0.5 + 0.125) + optimizer step + 0.03125
#   step 0: 1.25 + 0.25  + 0.03125 = 1.53125;  time 0.25  + 0.0625 + 1.53125 = 1.84375
#   step 1: 1.25 + 0.375 + 0.03125 = 1.65625;  time 0.5   + 0.75   + 1.65625 = 2.90625
#   step 2: 1.25 + 0.5   + 0.03125 = 1.78125;  time 0.125 + 0.1875 + 1.78125 = 2.09375
# Epoch: steps 6.84375 + 3 x 0.015625 (lr) + 2.0 (closing barrier) = 8.890625.
STEP_S = [1.84375, 2.90625, 2.09375]
COMPUTE_S = 1.53125 + 1.65625 + 1.78125  # 4.96875
DATA_WAIT_S = 0.25 + 0.5 + 0.125  # 0.875
COMM_S = 0.0625 + 0.75 + 0.1875  # 1.0
EPOCH_S = 8.890625


class FakeClock:
    def __init__(self, start=1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeComm:
    """The mpi4py communicator's Barrier, taking BARRIER seconds."""

    def __init__(self, clock):
        self.clock, self.barriers = clock, 0

    def Barrier(self):  # mpi4py's name
        self.barriers += 1
        self.clock.advance(BARRIER)


class FakeLoader:
    """The Prefetcher's interface (get/close); each get takes WAIT of the step being run (counted over
    epochs by the sync, so that one-step epochs go on through the table)."""

    def __init__(self, clock, sync, images, labels, batches, weights):
        self.clock, self.sync, self.images, self.labels = clock, sync, images, labels
        self.batches, self.weights = batches, weights
        self.served, self.closed = 0, False

    def get(self):
        idx = self.batches[self.served].reshape(-1)
        self.served += 1
        self.clock.advance(WAIT[self.sync.syncs])
        return (torch.from_numpy(self.images[idx]), torch.from_numpy(self.labels[idx]),
                torch.from_numpy(self.weights[idx].astype(np.float32)))

    def close(self):
        self.closed = True


class _Clocked(torch.autograd.Function):
    """Identity whose backward takes BACKWARD seconds, plus, in ddp style, the exposed communication of the
    step at the end of the last micro-batch's backward."""

    @staticmethod
    def forward(ctx, x, net):
        ctx.net = net
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        net = ctx.net
        net.clock.advance(BACKWARD)
        if net.sync.comm_in_backward and not net.sync.accumulating:
            net.clock.advance(COMM[net.sync.syncs])
        return grad, None


class Tiny(nn.Module):
    """One linear layer on 3x8x8 images; forward takes FORWARD seconds."""

    def __init__(self, clock, sync):
        super().__init__()
        self.lin = nn.Linear(3 * 8 * 8, 1)
        self.clock, self.sync = clock, sync

    def forward(self, x):
        self.clock.advance(FORWARD)
        return _Clocked.apply(self.lin(x.flatten(1)), self).squeeze(1)


class FakeSync(GradSync):
    """One rank's GradSync whose communication takes COMM[step] seconds, exposed; spent in ``sync()`` or,
    with ``comm_in_backward``, already in the last backward (then ``sync()`` only reports it)."""

    def __init__(self, world, clock, comm_in_backward):
        super().__init__(world)
        self.clock, self.comm_in_backward = clock, comm_in_backward
        self.accumulating, self.syncs = False, 0

    @contextlib.contextmanager
    def no_sync(self, model):
        self.accumulating = True
        try:
            yield
        finally:
            self.accumulating = False

    def sync(self, model, optimizer):
        exposed = COMM[self.syncs]
        if not self.comm_in_backward:
            self.clock.advance(exposed)
        return exposed

    def step(self, optimizer, scaler=None):
        super().step(optimizer, scaler)
        self.clock.advance(OPT_STEP[self.syncs])

    def zero_grad(self, model, optimizer):
        super().zero_grad(model, optimizer)
        self.clock.advance(ZERO_GRAD)
        self.syncs += 1  # the step is over: counts steps over epochs


def one_rank_world(comm):
    return World(rank=0, size=1, local_rank=0, local_size=1, nodes=1, ranks_per_node=1, hosts=("h",), mpi=comm)


@pytest.fixture
def run(monkeypatch):
    """Run the 3 steps (2 micro-batches of 4 each) on the fake clock, as one epoch or as three epochs of one
    step; returns ([EpochTimes per epoch], fakes)."""

    def go(comm_in_backward, one_step_epochs=False):
        clock = FakeClock()
        rng = np.random.default_rng(0)
        n = STEPS * ACCUMULATION * MICRO
        images = rng.random((n, 3, 8, 8), dtype=np.float32)
        labels = (np.arange(n) % 2).astype(np.float32)
        weights = np.linspace(0.5, 1.5, n)
        plan = rng.permutation(n).reshape(STEPS, ACCUMULATION, MICRO)
        loaders = []

        def make_loader(source, batches, w, depth, pin=False, memory_format=torch.contiguous_format, augment=None):
            loaders.append(FakeLoader(clock, sync, images, labels, batches, w))
            return loaders[-1]

        monkeypatch.setattr(train, "make_loader", make_loader)  # the name train_epoch looks it up by
        comm = FakeComm(clock)
        world = one_rank_world(comm)
        sync = FakeSync(world, clock, comm_in_backward)
        torch.manual_seed(0)
        model = Tiny(clock, sync)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        lr_calls = []

        def lr_at(epoch, step, steps):
            lr_calls.append((epoch, step, steps))
            clock.advance(LR_AT)
            return 0.1

        start = clock()
        parts = [plan[k:k + 1] for k in range(STEPS)] if one_step_epochs else [plan]
        times = [train_epoch(model, optimizer, sync, world, None, part, weights, torch.device("cpu"), epoch=4,
                             prefetch=2, lr_at=lr_at, clock=clock) for part in parts]
        return times, SimpleNamespace(clock=clock, start=start, comm=comm, sync=sync, loaders=loaders,
                                      plan=plan, lr_calls=lr_calls)

    return go


@pytest.mark.parametrize("comm_in_backward", COMMS, ids=COMM_IDS)
def test_each_step_is_data_wait_plus_exposed_comm_plus_compute(run, comm_in_backward):
    # One step per epoch, so that the record's split is that step's own.
    epochs, _ = run(comm_in_backward, one_step_epochs=True)
    compute = [1.53125, 1.65625, 1.78125]  # by hand above
    for k, times in enumerate(epochs):
        assert times.step_s == [STEP_S[k]]
        assert (times.data_wait_s, times.comm_s, times.compute_s) == (WAIT[k], COMM[k], compute[k])
        assert times.data_wait_s + times.comm_s + times.compute_s == times.step_s[0]
        assert times.step_s[0] <= times.epoch_s == STEP_S[k] + LR_AT + BARRIER


@pytest.mark.parametrize("comm_in_backward", COMMS, ids=COMM_IDS)
def test_an_epoch_sums_its_steps_splits(run, comm_in_backward):
    (times,), _ = run(comm_in_backward)
    assert times.step_s == STEP_S
    assert times.data_wait_s == DATA_WAIT_S
    assert times.comm_s == COMM_S
    assert times.compute_s == COMPUTE_S
    assert times.data_wait_s + times.comm_s + times.compute_s == sum(times.step_s)


@pytest.mark.parametrize("comm_in_backward", COMMS, ids=COMM_IDS)
def test_steps_add_up_to_no_more_than_the_epoch(run, comm_in_backward):
    (times,), fake = run(comm_in_backward)
    assert sum(times.step_s) <= times.epoch_s
    # The epoch also holds the three lr updates and the closing barrier; the opening barrier is before it.
    assert times.epoch_s == EPOCH_S == sum(STEP_S) + STEPS * LR_AT + BARRIER
    assert fake.comm.barriers == 2
    assert fake.clock() - fake.start == EPOCH_S + BARRIER  # nothing else took time


def test_the_epoch_runs_the_plan_in_order_and_closes_its_loader(run):
    (times,), fake = run(False)
    (loader,) = fake.loaders
    assert loader.served == STEPS and loader.closed
    assert [b.tolist() for b in loader.batches] == fake.plan.tolist()
    assert fake.sync.syncs == STEPS
    assert fake.lr_calls == [(4, 0, 3), (4, 1, 3), (4, 2, 3)]
    assert np.isfinite(times.train_loss) and times.train_loss > 0


def test_the_default_clock_gives_the_same_accounting():
    """Without a fake anything: perf_counter, the real loader (a background Prefetcher), real GradSync."""
    from bench.runner.comm import init_world
    from bench.runner.sampler import epoch_plan
    from data.base import training_weights
    from data.synthetic import SyntheticSource

    torch.manual_seed(0)
    source = SyntheticSource(64, image_size=8, seed=3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1), nn.Flatten(0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    world = init_world()
    plan = epoch_plan(np.arange(len(source)), 0, 1, 16, 1, 0, 8)  # 4 steps of 2 micro-batches of 8
    times = train_epoch(model, optimizer, GradSync(world), world, source, plan,
                        training_weights(source.labels, source.weights), torch.device("cpu"), 0, 2)
    assert len(times.step_s) == 4 and min(times.step_s) > 0
    assert times.comm_s == 0.0  # one rank, no communication
    assert times.data_wait_s + times.comm_s + times.compute_s == pytest.approx(sum(times.step_s), abs=1e-9)
    assert sum(times.step_s) <= times.epoch_s
