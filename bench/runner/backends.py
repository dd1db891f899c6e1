"""Gradient averaging over the ranks of a World: none, mpi, ddp, horovod.

Every backend gives the same update: the mean over ranks of each rank's gradient, where a rank's gradient
is the mean over its micro-batches. What each can tell about communication time differs:

* ``mpi``: one fused gradient buffer, blocking ``Allreduce`` (a sum of gradients whose losses were scaled
  by 1/N, hence the mean) after the last backward. ``comm_s`` is that
  call's time: nothing is hidden behind compute.
* ``horovod``: allreduces start during backward (hooks) and ``optimizer.synchronize()`` waits for the rest.
  ``comm_s`` is the time spent waiting in ``synchronize()``: the exposed part of communication.
* ``ddp``: gradient buckets are allreduced during backward; backward returns when the last is done.
  A communication hook records when the last bucket was launched and when it finished; ``comm_s`` is the
  difference, the part of communication backward could not hide.

Batch norm keeps per-rank statistics in all backends (as in the reference study); running statistics are
averaged over ranks only before validation (``average_buffers``).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from bench.runner.comm import World, under_launcher

INSTALL_HINT = {
    "mpi": "install Open MPI (apt-get install openmpi-bin libopenmpi-dev) and mpi4py (pip install mpi4py)",
    "ddp": "torch.distributed with gloo ships with PyTorch; it needs mpi4py for the rank mapping "
           "(pip install mpi4py)",
    "horovod": "build it with scripts/build_horovod.sh .venv/bin/python (Horovod 0.28.1 patched for C++17)",
}


class BackendError(RuntimeError):
    """A backend that was asked for cannot run. Exit status 2."""


def available(name: str) -> bool:
    if name == "none":
        return True
    if name == "horovod":
        return importlib.util.find_spec("horovod") is not None
    return importlib.util.find_spec("mpi4py") is not None


def resolve(name: str, world_size: int) -> str:
    """The backend that will run. 'auto' is horovod if installed, else mpi; one process needs none."""
    if name == "auto":
        if world_size == 1 and not under_launcher():
            return "none"
        return "horovod" if available("horovod") else "mpi"
    if name == "none" and world_size > 1:
        raise BackendError(f"--backend none cannot average gradients over {world_size} ranks; "
                           "choose mpi, ddp or horovod")
    if not available(name):
        raise BackendError(f"--backend {name} is not installed: {INSTALL_HINT[name]}")
    return name


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


class GradSync:
    """No communication: one rank."""

    name = "none"
    # Factor on the loss of every micro-batch; the mpi backend folds the 1/N of the average in here so
    # that a plain sum-allreduce yields the mean, saving a pass over the gradient buffer.
    loss_scale = 1.0

    def __init__(self, world: World):
        self.world = world

    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer, accumulation: int):
        return model, optimizer

    def no_sync(self, model: nn.Module):
        """Context for micro-batches whose gradients are only accumulated, not yet averaged."""
        return contextlib.nullcontext()

    def sync(self, model: nn.Module, optimizer) -> float:
        """Finish gradient averaging; return the seconds of communication that were exposed."""
        return 0.0

    def step(self, optimizer, scaler=None) -> None:
        """The optimizer step after ``sync`` (through the fp16 GradScaler if given)."""
        scaler.step(optimizer) if scaler is not None else optimizer.step()

    def zero_grad(self, model: nn.Module, optimizer) -> None:
        optimizer.zero_grad(set_to_none=False)

    def close(self) -> None:
        pass

    # Shared by all backends: plain MPI collectives on parameters and buffers, outside timed regions.
    def broadcast_parameters(self, model: nn.Module) -> None:
        if self.world.size == 1:
            return
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                arr = t.detach().cpu().numpy().copy()
                self.world.mpi.Bcast(arr, root=0)
                t.data.copy_(torch.from_numpy(arr))

    def average_buffers(self, model: nn.Module) -> None:
        """Average BatchNorm running statistics over ranks (before validation)."""
        bufs = [b for b in model.buffers() if b.is_floating_point()]
        if self.world.size == 1 or not bufs:
            return
        flat = torch.cat([b.detach().cpu().reshape(-1) for b in bufs]).double().numpy()
        self.world.allreduce_mean_(flat)
        off = 0
        for b in bufs:
            n = b.numel()
            b.data.copy_(torch.from_numpy(flat[off:off + n]).view_as(b))
            off += n


class MpiSync(GradSync):
    """One fused gradient buffer averaged with a blocking mpi4py Allreduce."""

    name = "mpi"

    def wrap(self, model, optimizer, accumulation):
        params = _params(model)
        self.flat = torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype,
                                device=params[0].device)
        off = 0
        for p in params:  # gradients live inside the fused buffer: no copy in or out
            p.grad = self.flat[off:off + p.numel()].view_as(p)
            off += p.numel()
        self.loss_scale = 1.0 / self.world.size
        return model, optimizer

    def sync(self, model, optimizer):
        from mpi4py import MPI
        t0 = time.perf_counter()
        if self.world.size > 1:
            buf = self.flat.numpy() if self.flat.is_cpu else self.flat.cpu().numpy()
            self.world.mpi.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)  # a mean: losses carry 1/N
            if not self.flat.is_cpu:
                self.flat.copy_(torch.from_numpy(buf))
        return time.perf_counter() - t0

    def zero_grad(self, model, optimizer):
        self.flat.zero_()


class DdpSync(GradSync):
    """PyTorch DistributedDataParallel over gloo (CPU) or nccl (GPU); ranks and rendezvous from MPI."""

    name = "ddp"

    def wrap(self, model, optimizer, accumulation):
        addr, port = None, None
        if self.world.rank == 0:
            addr = os.environ.get("MASTER_ADDR") or socket.gethostbyname(socket.gethostname())
            with socket.socket() as s:  # a free port on rank 0's host
                s.bind(("", 0))
                port = s.getsockname()[1]
        addr, port = self.world.bcast((addr, port))
        device = next(model.parameters()).device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                init_method=f"tcp://{addr}:{port}", rank=self.world.rank,
                                world_size=self.world.size)
        self.dist = dist
        self.times = {"launch": 0.0, "done": 0.0}
        with warnings.catch_warnings():
            # broadcast_buffers=False keeps BatchNorm statistics per rank; newer torch renames it
            # (forward_sync_buffers) with a FutureWarning, older torch has only this name.
            warnings.simplefilter("ignore", FutureWarning)
            ddp = DDP(model, broadcast_buffers=False, gradient_as_bucket_view=True,
                      device_ids=[device.index] if device.type == "cuda" else None)
        ddp.register_comm_hook(self, _timed_allreduce_hook)
        return ddp, optimizer

    def no_sync(self, model):
        return model.no_sync()

    def sync(self, model, optimizer):
        # Backward has already waited for the last bucket; the hook timed the exposed part.
        return max(0.0, self.times["done"] - self.times["launch"])

    def close(self):
        if getattr(self, "dist", None) is not None and self.dist.is_initialized():
            self.dist.destroy_process_group()


def _timed_allreduce_hook(state: DdpSync, bucket):
    """DDP's default allreduce (mean over ranks), with the launch and completion times recorded."""
    state.times["launch"] = time.perf_counter()
    buf = bucket.buffer().div_(state.world.size)
    fut = state.dist.all_reduce(buf, async_op=True).get_future()

    def done(f):
        state.times["done"] = time.perf_counter()
        return f.value()[0]

    return fut.then(done)


class HorovodSync(GradSync):
    """Horovod's DistributedOptimizer (the reference study's stack), on this world's communicator."""

    name = "horovod"

    def wrap(self, model, optimizer, accumulation):
        import horovod.torch as hvd

        # Horovod: one init per (sub-)communicator, shut down in close(), so a sweep can re-init.
        hvd.init(comm=self.world.mpi)
        if hvd.size() != self.world.size:
            raise BackendError(f"horovod sees {hvd.size()} ranks, MPI {self.world.size}")
        self.hvd = hvd
        optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                             backward_passes_per_step=accumulation, op=hvd.Average)
        return model, optimizer

    def sync(self, model, optimizer):
        t0 = time.perf_counter()
        optimizer.synchronize()
        return time.perf_counter() - t0

    def step(self, optimizer, scaler=None):
        # Horovod: synchronize() already ran in sync(); the step must not wait a second time.
        with optimizer.skip_synchronize():
            scaler.step(optimizer) if scaler is not None else optimizer.step()

    def zero_grad(self, model, optimizer):
        # Horovod's optimizer.zero_grad() has no set_to_none; keep the gradient tensors (its hooks
        # are on the parameters, not on the tensors) and zero them in place.
        model.zero_grad(set_to_none=False)

    def close(self):
        if getattr(self, "hvd", None) is not None:
            self.hvd.shutdown()


_BACKENDS = {"none": GradSync, "mpi": MpiSync, "ddp": DdpSync, "horovod": HorovodSync}


def make(name: str, world: World) -> GradSync:
    return _BACKENDS[name](world)


def flat_parameters(model: nn.Module) -> np.ndarray:
    """All trainable parameters as one float64 vector (for equivalence checks)."""
    return torch.cat([p.detach().cpu().reshape(-1).double() for p in _params(model)]).numpy()
