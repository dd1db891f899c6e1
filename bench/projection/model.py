"""A performance model of one data-parallel training step, and of an epoch, at N nodes.

Pure functions on plain numbers (no torch, no MPI): the fits are tested on synthetic timings.

Step time at N nodes, one rank per node, global batch G, per-rank batch b = G / N::

    compute(b)   = t0 + b / r_max                       (fit to measured steps: small batches are less
                                                          efficient, t0 is the per-step overhead)
    allreduce(S) = 2 (N - 1) alpha + 2 (N - 1) / N * S / B   (ring allreduce; S gradient bytes; Patarasuk &
                                                          Yuan 2009, Thakur et al. 2005: docs/physics-reference.md,
                                                          'Hardware')
    exposed      = allreduce                             backend mpi: one blocking Allreduce after backward
                 = max(0, allreduce - overlap * backward) backends horovod/ddp: allreduces run during
                                                          backward; ``overlap`` is the fraction of backward
                                                          they can hide behind (an assumption, default 0.7)
    backward     = BACKWARD_SHARE * b / r_max            (backward is about 2/3 of the batch-proportional work)
    step         = compute(b) + exposed
    epoch        = floor(events / G) * step              (no data wait: the loader is assumed to keep up)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bench.projection.collectives import ring_s

BACKWARD_SHARE = 2.0 / 3.0  # backward ~ 2x forward flops
OVERLAP_BACKENDS = ("horovod", "ddp")


@dataclass(frozen=True)
class ComputeFit:
    """Training-step time of one rank: t(b) = t0_s + b / r_max (images per second at large batch)."""

    t0_s: float
    r_max: float

    def step_s(self, batch: float) -> float:
        return self.t0_s + batch / self.r_max

    def scaled(self, factor: float) -> "ComputeFit":
        """The same curve on hardware ``factor`` times faster."""
        return ComputeFit(self.t0_s / factor, self.r_max * factor)


@dataclass(frozen=True)
class AllreduceFit:
    """Ring allreduce: t = 2 (n - 1) alpha_s + 2 (n - 1) / n * S / bandwidth_Bps."""

    alpha_s: float
    bandwidth_Bps: float

    def time_s(self, ranks: int, nbytes: float) -> float:
        return ring_s(ranks, nbytes, self.alpha_s, self.bandwidth_Bps)


def _weighted_lstsq(design: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Least squares in relative error (each row divided by its time): small and large timings count alike."""
    w = 1.0 / np.asarray(times, float)
    coef, *_ = np.linalg.lstsq(design * w[:, None], np.asarray(times, float) * w, rcond=None)
    return coef


def fit_compute(batches, times) -> ComputeFit:
    """Fit t = t0 + b / r_max to step times at several per-rank batches (t0 clamped at 0)."""
    b = np.asarray(batches, float)
    if len(set(b.tolist())) < 2:
        raise ValueError("fit_compute needs step times at two or more batch sizes")
    t0, slope = _weighted_lstsq(np.column_stack([np.ones_like(b), b]), times)
    if slope <= 0:
        raise ValueError("step time does not grow with the batch: timings too noisy to fit")
    if t0 < 0:  # no overhead visible: refit through the origin
        t0, slope = 0.0, float(np.sum(np.asarray(times) / b) / len(b))
    return ComputeFit(float(t0), float(1.0 / slope))


def fit_alpha_beta(ranks, nbytes, times) -> AllreduceFit:
    """Fit the ring form to allreduce times measured at (ranks, bytes); alpha clamped at 0."""
    n = np.asarray(ranks, float)
    s = np.asarray(nbytes, float)
    if np.any(n < 2):
        raise ValueError("allreduce timings need at least 2 ranks")
    design = np.column_stack([2 * (n - 1), 2 * (n - 1) / n * s])
    alpha, inv_b = _weighted_lstsq(design, times)
    if inv_b <= 0:
        raise ValueError("allreduce time does not grow with the message size: timings too noisy to fit")
    if alpha < 0:
        inv_b = float(np.sum(np.asarray(times) / design[:, 1]) / len(s))
        alpha = 0.0
    return AllreduceFit(float(alpha), float(1.0 / inv_b))


@dataclass(frozen=True)
class Profile:
    """A kind of node: how fast it trains each model, and the network between nodes."""

    name: str
    system: str  # the ``system`` of its records
    compute: dict  # (model, image_size) -> ComputeFit for one rank using the whole node
    network: AllreduceFit  # the fitted ring form; replaced by ``exchange`` when that is given
    device: str = "cpu"
    ranks_per_node: int = 1
    threads_per_rank: int = 1
    estimate: str = ""  # how the figures were obtained when not measured; empty when measured
    max_nodes: int | None = None  # a single GPU: 1
    exchange: object = None  # a bench.projection.collectives.Exchange: algorithms by message size, fusion
    precision: str = "fp32"  # of the training step its compute rates were measured or published at


@dataclass(frozen=True)
class Case:
    """What is projected: a model at an image size, trained at a fixed global batch."""

    model: str
    image_size: int
    params: int
    global_batch: int = 32768
    events: int = 450_000
    backend: str = "horovod"
    grad_bytes_per_param: int = 4  # 2: fp16 gradient compression
    overlap: float = 0.7
    tensors: tuple = ()  # parameter counts in backward order (profiles.json workloads); () = one tensor

    @property
    def grad_bytes(self) -> int:
        return self.params * self.grad_bytes_per_param

    def tensor_bytes(self) -> list[int]:
        return [n * self.grad_bytes_per_param for n in self.tensors] or [self.grad_bytes]


@dataclass(frozen=True)
class Step:
    nodes: int
    ranks: int
    per_rank_batch: float
    compute_s: float
    allreduce_s: float
    exposed_s: float
    steps_per_epoch: int
    epoch_s: float = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "epoch_s", self.steps_per_epoch * (self.compute_s + self.exposed_s))


def exposed_comm_s(allreduce_s: float, backward_s: float, backend: str, overlap: float) -> float:
    """Communication the step waits for: all of it for mpi, what backward cannot hide for horovod/ddp."""
    if backend in OVERLAP_BACKENDS:
        return max(0.0, allreduce_s - overlap * backward_s)
    return allreduce_s


def project_step(profile: Profile, case: Case, nodes: int) -> Step:
    fit = profile.compute[(case.model, case.image_size)]
    ranks = nodes * profile.ranks_per_node
    b = case.global_batch / ranks
    compute = fit.step_s(b)
    allreduce = (profile.exchange.time_s(ranks, case.tensor_bytes()) if profile.exchange is not None
                 else profile.network.time_s(ranks, case.grad_bytes))
    backward = BACKWARD_SHARE * b / fit.r_max
    exposed = exposed_comm_s(allreduce, backward, case.backend, case.overlap)
    return Step(nodes=nodes, ranks=ranks, per_rank_batch=b, compute_s=compute, allreduce_s=allreduce,
                exposed_s=exposed, steps_per_epoch=case.events // case.global_batch)


def project_curve(profile: Profile, case: Case, node_counts) -> list[Step]:
    return [project_step(profile, case, n) for n in node_counts
            if profile.max_nodes is None or n <= profile.max_nodes]


def speedup_efficiency(steps: list[Step]) -> list[tuple[float, float]]:
    """(speedup, efficiency) of each step against the first (smallest node count)."""
    base = steps[0]
    return [(base.epoch_s / s.epoch_s, base.epoch_s / s.epoch_s / (s.nodes / base.nodes)) for s in steps]


def with_compression(case: Case) -> Case:
    return replace(case, grad_bytes_per_param=2)
