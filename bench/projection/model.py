"""A performance model of one data-parallel training step, and of an epoch, at N nodes.

Pure functions on plain numbers (no torch, no MPI): the fits are tested on synthetic timings.

Step time at N nodes, one rank per node, global batch G, per-rank batch b = G / N::

    compute(b)   = t0 + b / r_max                       (fit to measured steps: small batches are less
                                                          efficient, t0 is the per-step overhead)
    allreduce(S) = 2 (N - 1) alpha + 2 (N - 1) / N * S / B   (ring allreduce; S gradient bytes; Patarasuk &
                                                          Yuan 2009, Thakur et al. 2005: docs/physics-reference.md,
                                                          'Hardware')
    exposed      = the overlap timeline (bench/projection/timeline.py) over the gradient tensors in backward
                   order, each ready when backward reaches its layer (the workload's layer table, else
                   evenly through backward): backend horovod, Horovod's cycle and fusion buffer; ddp,
                   PyTorch's 25 MB buckets; mpi, one blocking Allreduce after backward (nothing hidden).
                   ``overlap`` is the fraction of the ideal timeline's hiding that is realised (an
                   assumption, default 0.7), as in the published-point model (bench/projection/published.py)
    backward     = BACKWARD_SHARE * b / r_max            (backward is about 2/3 of the batch-proportional work)
    step         = compute(b) + exposed
    epoch        = floor(events / G) * step              (no data wait: the loader is assumed to keep up)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from bench.projection import timeline
from bench.projection.collectives import ring_s

BACKWARD_SHARE = 2.0 / 3.0  # backward ~ 2x forward flops
OVERLAP_BACKENDS = ("horovod", "ddp")
# The harness's backends as timeline schedules, and their defaults where the profile has no Exchange:
# Horovod 0.21 and later (this project installs a later one, docs/install.md) fuses up to 128 MB every 1 ms
# (HOROVOD_FUSION_THRESHOLD, HOROVOD_CYCLE_TIME; Horovod's v0.21.0 release notes); PyTorch DDP's
# bucket_cap_mb is 25 (torch.nn.parallel.DistributedDataParallel; Li et al. 2020).
SCHEDULE_OF = {"horovod": "horovod", "ddp": "buckets", "mpi": "after"}
DEFAULT_FUSION = {"horovod": (128 * 2**20, 1e-3), "ddp": (25 * 2**20, 0.0), "mpi": (0.0, 0.0)}


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
    tensors: tuple = ()  # parameter counts in backward order (profiles.json workloads); () = even slices
    flops: tuple = ()  # backward FLOPs before each of ``tensors`` is ready (the layer table); () = even

    @property
    def grad_bytes(self) -> int:
        return self.params * self.grad_bytes_per_param

    def tensor_bytes(self) -> list[int]:
        return [n * self.grad_bytes_per_param for n in self.tensors] or [self.grad_bytes]

    def gradient_schedule(self) -> tuple[list[float], list[float]]:
        """(bytes of each gradient tensor, backward FLOPs before it is ready), backward order: the layer
        table's where the case has one, else the gradient ready evenly through backward."""
        if self.tensors and len(self.flops) == len(self.tensors):
            return [float(b) for b in self.tensor_bytes()], [float(f) for f in self.flops]
        if self.tensors:
            return [float(b) for b in self.tensor_bytes()], [1.0] * len(self.tensors)
        return timeline.even(float(self.grad_bytes), 1.0)


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
    """The older, coarser overlap: all of the allreduce for mpi, what ``overlap`` of backward cannot hide for
    horovod/ddp. Kept for comparison; ``project_step`` uses the timeline."""
    if backend in OVERLAP_BACKENDS:
        return max(0.0, allreduce_s - overlap * backward_s)
    return allreduce_s


def exchange_s(profile: Profile, case: Case, ranks: int, backward_s: float) -> tuple[float, float]:
    """(exposed seconds, total communication seconds) of one step's gradient exchange on ``ranks`` ranks:
    the overlap timeline of the case's backend, one collective's cost from the profile's Exchange or its
    fitted ring allreduce. Raises ValueError for a backend the timeline does not know."""
    if ranks <= 1:
        return 0.0, 0.0
    if case.backend not in SCHEDULE_OF:
        raise ValueError(f"unknown backend {case.backend!r}; choose from {', '.join(SCHEDULE_OF)}")
    ex = profile.exchange
    if ex is not None:
        cost, fusion, cycle = (lambda n: ex.one_s(ranks, n)), ex.fusion_bytes, ex.cycle_s
    else:
        cost = lambda n: profile.network.time_s(ranks, n)  # noqa: E731
        fusion, cycle = DEFAULT_FUSION[case.backend]
    sizes, flops = case.gradient_schedule()
    return timeline.exposed_s(sizes, flops, backward_s, cost, SCHEDULE_OF[case.backend], fusion, cycle,
                              case.overlap)


def project_step(profile: Profile, case: Case, nodes: int) -> Step:
    fit = profile.compute[(case.model, case.image_size)]
    ranks = nodes * profile.ranks_per_node
    b = case.global_batch / ranks
    compute = fit.step_s(b)
    backward = BACKWARD_SHARE * b / fit.r_max
    exposed, allreduce = exchange_s(profile, case, ranks, backward)
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
