"""Published scaling points reproduced from the profile file, and the CPU-cluster-against-one-GPU answer.

Torch-free and MPI-free: everything is computed from ``bench/projection/profiles.json`` (bench.projection.profiles)
with the allreduce costs of bench.projection.collectives.

One synchronous data-parallel step of a rank with batch b on a device that trains R images/s::

    compute   = b / R                     R = achieved FLOP/s / training FLOPs per image, or a measured images/s
    allreduce = the stack's exchange of the workload's gradient tensors (fusion, algorithm by message size)
    exposed   = max(0, allreduce - overlap * 2/3 * compute)     (backward is about 2/3 of the step)
    step      = compute + exposed

Every input is a band (low / central / high). A *scenario* picks one end of each band by name, e.g.
``{("rate", "nurion-knl"): "high"}``; what is not named is central. The published points are evaluated
centrally, and each input is swung over its band to find the assumption that moves the answer most.

``crossover_table(profiles)`` and ``ratio_table(profiles)`` are what a report shows: how many Nurion KNL nodes
train one epoch as fast as one GPU, and the ratio at 1024 nodes, each with the band from the ends of every
input that favour the cluster (low) or the GPU (high).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bench.projection.collectives import Exchange
from bench.projection.model import BACKWARD_SHARE
from bench.projection.profiles import Profiles

CLUSTER = "nurion-knl"
GPUS = ("titan-rtx", "h100")
IMAGE_SIZES = (64, 224)
GLOBAL_BATCH = 32768
FLIP = {"low": "high", "central": "central", "high": "low"}


@dataclass(frozen=True)
class Setting:
    """Where a step runs: a system, its network and stack (the system's unless overridden), ranks per node."""

    system: str
    workload: str
    stack: str
    network: str
    ranks_per_node: int = 1


def setting_of(prof: Profiles, system: str, workload: str, point: dict | None = None) -> Setting:
    point = point or {}
    s = prof.systems[system]
    return Setting(system, workload, point.get("stack", s.stack), point.get("network", s.network),
                   int(point.get("ranks_per_node", 1)))


def _pick(scenario: dict, kind: str, key: str) -> str:
    return scenario.get((kind, key), "central")


def images_per_s(prof: Profiles, system: str, workload: str, scenario: dict) -> float:
    """One device's training rate: a measured images/s where the profile has one, else FLOP/s / FLOPs."""
    s = prof.systems[system]
    which = _pick(scenario, "rate", system)
    scale = scenario.get(("scale", "rate", system), 1.0)
    if workload in s.images_per_s:
        return scale * s.images_per_s[workload].pick(which)
    return scale * s.achieved_tflops.pick(which) * 1e12 / prof.workloads[workload].flops_per_image


def exchange(prof: Profiles, st: Setting, scenario: dict) -> Exchange:
    net, stack = prof.networks[st.network], prof.stacks[st.stack]
    return Exchange(policy=stack["policy"] or net["allreduce"],
                    alpha_s=net["latency_us"].pick(_pick(scenario, "latency", st.network)) * 1e-6,
                    bandwidth_Bps=net["bandwidth_gbs"].pick(_pick(scenario, "bandwidth", st.network)) * 1e9
                    * scenario.get(("scale", "bandwidth", st.network), 1.0),
                    fusion_bytes=stack["fusion_mb"] * 2**20, cycle_s=stack["cycle_ms"] * 1e-3,
                    servers=stack["servers"], ranks_per_node=st.ranks_per_node)


def step_s(prof: Profiles, st: Setting, nodes: float, batch_per_rank: float, scenario: dict) -> float:
    """One training step at ``nodes`` nodes, ``batch_per_rank`` images per rank (all ranks in parallel)."""
    compute = batch_per_rank / images_per_s(prof, st.system, st.workload, scenario)
    ranks = max(1, round(nodes * st.ranks_per_node))
    comm = exchange(prof, st, scenario).time_s(ranks, prof.workloads[st.workload].tensor_bytes())
    overlap = prof.stacks[st.stack]["overlap"].pick(_pick(scenario, "overlap", st.stack))
    return compute + max(0.0, comm - overlap * BACKWARD_SHARE * compute)


def strong_step_s(prof: Profiles, st: Setting, nodes: float, global_batch: int, scenario: dict) -> float:
    return step_s(prof, st, nodes, global_batch / (nodes * st.ranks_per_node), scenario)


def gpu_step_s(prof: Profiles, gpu: str, workload: str, global_batch: int, scenario: dict) -> float:
    """One device processing the whole global batch (gradient accumulation: no communication)."""
    return global_batch / images_per_s(prof, gpu, workload, scenario)


# --- published points -------------------------------------------------------------------------------------
def point_value(prof: Profiles, point: dict, scenario: dict) -> float:
    """The model's value of a published point's measured quantity under ``scenario``."""
    st = setting_of(prof, point["system"], point["workload"], point)
    nodes = point["nodes"]
    if point["kind"] == "ratio":
        g = point["global_batch"]
        return gpu_step_s(prof, point["baseline"], point["workload"], g, scenario) / strong_step_s(
            prof, st, nodes, g, scenario)
    b = point.get("batch_per_rank") or point["global_batch"] / (nodes * st.ranks_per_node)
    if point["kind"] == "efficiency":
        one = Setting(st.system, st.workload, st.stack, st.network, 1)  # one rank, weak scaling
        return step_s(prof, one, 1, b, scenario) / step_s(prof, st, nodes, b, scenario)
    return b * st.ranks_per_node / step_s(prof, st, nodes, b, scenario)  # images_per_s_per_node


def assumptions(prof: Profiles, point: dict) -> list[tuple[str, str]]:
    """The banded inputs a point depends on, as (kind, key)."""
    st = setting_of(prof, point["system"], point["workload"], point)
    keys = [("rate", st.system)]
    if point["kind"] == "ratio":
        keys.append(("rate", point["baseline"]))
    keys += [("latency", st.network), ("bandwidth", st.network), ("overlap", st.stack)]
    return keys


def _band_of(prof: Profiles, kind: str, key: str, workload: str):
    if kind == "rate":
        s = prof.systems[key]
        return s.images_per_s.get(workload) or s.achieved_tflops
    if kind == "overlap":
        return prof.stacks[key]["overlap"]
    return prof.networks[key]["latency_us" if kind == "latency" else "bandwidth_gbs"]


def reproduce(prof: Profiles) -> list[dict]:
    """Every published point: measured, projected (central), relative error, the projected range over all
    bands, and the assumption whose band moves the projection most (with the range it alone gives)."""
    rows = []
    for point in prof.published:
        measured = point["measured"]["value"]
        projected = point_value(prof, point, {})
        keys = assumptions(prof, point)
        swings = []
        for kind, key in keys:
            lo = point_value(prof, point, {(kind, key): "low"})
            hi = point_value(prof, point, {(kind, key): "high"})
            swings.append((abs(hi - lo), kind, key, lo, hi))
        _, kind, key, lo, hi = max(swings)
        ends = [point_value(prof, point, {k: w for k in keys}) for w in ("low", "high")]
        unconfirmed = [f"{k}:{n}" for k, n in keys if not _band_of(prof, k, n, point["workload"]).confirmed]
        if not prof.workloads[point["workload"]].confirmed:
            unconfirmed.append(f"workload:{point['workload']}")
        needed = {f"{k} of {n}": needed_scale(prof, point, k, n) for k, n in keys if k in ("rate", "bandwidth")}
        rows.append({"name": point["name"], "source": point["measured"]["source"], "kind": point["kind"],
                     "measured": measured, "projected": projected, "rel_error": (projected - measured) / measured,
                     "projected_range": [min(ends + [lo, hi]), max(ends + [lo, hi])],
                     "dominant_assumption": f"{kind} of {key}", "dominant_range": [lo, hi],
                     "unconfirmed_inputs": unconfirmed, "note": point.get("note", ""),
                     "scale_to_match": needed})
    return rows


def needed_scale(prof: Profiles, point: dict, kind: str, key: str) -> float | None:
    """The factor on one input (a rate or a bandwidth, the rest central) at which the model gives the
    published value; None when no factor in [1e-3, 1e3] does (the point does not depend on it enough)."""
    measured = point["measured"]["value"]
    f = lambda x: point_value(prof, point, {("scale", kind, key): x}) - measured
    lo, hi = 1e-3, 1e3
    flo, fhi = f(lo), f(hi)
    if flo == 0 or fhi == 0 or (flo > 0) == (fhi > 0):
        return None
    for _ in range(60):  # bisection in log space
        mid = math.sqrt(lo * hi)
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return math.sqrt(lo * hi)


# --- the cluster against one GPU ----------------------------------------------------------------------------
def scenario_for(prof: Profiles, gpu: str, end: str, cluster: str = CLUSTER) -> dict:
    """``end`` = "low": every input at the end that favours the cluster (fewest nodes to match the GPU);
    "high": the end that favours the GPU; "central": all central."""
    st = prof.systems[cluster]
    return {("rate", cluster): FLIP[end], ("latency", st.network): end, ("bandwidth", st.network): FLIP[end],
            ("overlap", st.stack): FLIP[end], ("rate", gpu): end}


def crossover_nodes(prof: Profiles, gpu: str, workload: str, scenario: dict, global_batch: int = GLOBAL_BATCH,
                    cluster: str = CLUSTER) -> int | None:
    """The fewest cluster nodes whose epoch is no longer than one GPU's (same global batch and events), or
    None when no node count up to one image per rank gets there."""
    st = setting_of(prof, cluster, workload)
    target = gpu_step_s(prof, gpu, workload, global_batch, scenario)
    step = lambda n: strong_step_s(prof, st, n, global_batch, scenario)
    top, lo = global_batch // st.ranks_per_node, 1
    n = 1
    while n <= top and step(n) > target:  # doublings first: a bracket [n/2, n]
        lo, n = n, n * 2
    if n > top:
        return None if step(top) > target else _first(step, target, lo, top)
    return _first(step, target, max(1, n // 2), n)


def _first(step, target: float, lo: int, hi: int) -> int:
    """Smallest n in [lo, hi] with step(n) <= target, given step(hi) <= target (bisection: the step time
    falls with n inside one doubling)."""
    if step(lo) <= target:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if step(mid) <= target else (mid, hi)
    return hi


def crossover_table(prof: Profiles, gpus=GPUS, sizes=IMAGE_SIZES, cluster: str = CLUSTER) -> list[dict]:
    """[{gpu, image_size, knl_nodes_low, knl_nodes_central, knl_nodes_high}]: KNL nodes equal to one GPU."""
    rows = []
    for gpu in gpus:
        for size in sizes:
            w = f"circpad-{size}"
            rows.append({"gpu": gpu, "image_size": size, **{
                f"knl_nodes_{end}": crossover_nodes(prof, gpu, w, scenario_for(prof, gpu, end, cluster),
                                                    cluster=cluster) for end in ("low", "central", "high")}})
    return rows


# Today's CPU nodes beside KNL (docs/precision.md, docs/projection.md): each at its precision.
CURRENT_CPUS = ("spr-2s-amx", "zen4-2s-fp32", "zen4-2s-bf16")


def comparison(cpu_precision: str, gpu_precision: str) -> str:
    """How a CPU node and a GPU are compared: like for like when their precisions agree."""
    if cpu_precision == gpu_precision:
        return f"like for like ({cpu_precision})"
    return f"{cpu_precision} CPU against {gpu_precision} GPU"


def current_cpu_table(prof: Profiles, clusters=CURRENT_CPUS, gpus=GPUS, sizes=IMAGE_SIZES) -> list[dict]:
    """[{cluster, precision, gpu, gpu_precision, comparison, image_size, nodes_low, nodes_central,
    nodes_high}]: nodes of each current CPU profile that train an epoch as fast as one GPU (the KNL table's
    method, ``crossover_nodes``, with the cluster's own profile), for every pair: ``comparison`` says whether
    it is like for like (fp32 against fp32, bf16 against bf16); the bf16 CPU rows against the H100 (bf16) are
    also best against best, each at its fastest precision."""
    rows = []
    for cluster in (c for c in clusters if c in prof.systems):
        cpu = prof.systems[cluster]
        for gpu in gpus:
            for size in sizes:
                w = f"circpad-{size}"
                rows.append({"cluster": cluster, "precision": cpu.precision, "gpu": gpu,
                             "gpu_precision": prof.systems[gpu].precision,
                             "comparison": comparison(cpu.precision, prof.systems[gpu].precision), "image_size": size,
                             **{f"nodes_{end}": crossover_nodes(prof, gpu, w, scenario_for(prof, gpu, end, cluster),
                                                                cluster=cluster) for end in ("low", "central", "high")}})
    return rows


def ratio_table(prof: Profiles, nodes: int = 1024, gpus=GPUS, sizes=IMAGE_SIZES, cluster: str = CLUSTER) -> list[dict]:
    """[{gpu, image_size, low, central, high}]: one GPU's epoch / the cluster's at ``nodes`` nodes (low: the
    ends that favour the GPU; high: those that favour the cluster)."""
    rows = []
    for gpu in gpus:
        for size in sizes:
            w = f"circpad-{size}"
            st = setting_of(prof, cluster, w)
            out = {}
            for end, sc in (("low", "high"), ("central", "central"), ("high", "low")):
                scenario = scenario_for(prof, gpu, sc, cluster)
                out[end] = gpu_step_s(prof, gpu, w, GLOBAL_BATCH, scenario) / strong_step_s(
                    prof, st, nodes, GLOBAL_BATCH, scenario)
            rows.append({"gpu": gpu, "image_size": size, **out})
    return rows


def as_json(prof: Profiles) -> dict:
    """The ``--json`` document: published points, crossover and the 1024-node ratio."""
    return {"profiles": prof.path, "published": reproduce(prof), "crossover": crossover_table(prof),
            "ratio_at_1024": ratio_table(prof), "current_cpus": current_cpu_table(prof),
            "not_expressed": prof.not_expressed}


def _fmt(x) -> str:
    if x is None:
        return "none"
    return f"{x:.3g}" if isinstance(x, float) and not math.isnan(x) else str(x)


def report_lines(prof: Profiles) -> list[str]:
    """The text of ``python -m bench.projection --published``."""
    out = [f"## Published points reproduced from {prof.path} (measured = published; projected = this model)",
           (f"{'point':34s} {'published':>10s} {'projected':>10s} {'error':>8s} {'range of all bands':>19s}  "
            "dominant assumption (its range)")]
    for r in reproduce(prof):
        flag = "  [unconfirmed inputs: " + ", ".join(r["unconfirmed_inputs"]) + "]" if r["unconfirmed_inputs"] else ""
        lo, hi = r["projected_range"]
        dlo, dhi = r["dominant_range"]
        out.append(f"{r['name']:34s} {_fmt(r['measured']):>10s} {_fmt(r['projected']):>10s} "
                   f"{100 * r['rel_error']:+7.0f}% {_fmt(lo):>9s}-{_fmt(hi):<9s}  {r['dominant_assumption']} "
                   f"({_fmt(dlo)}-{_fmt(dhi)}){flag}")
        if abs(r["rel_error"]) > 0.25:
            fixes = [f"{k} x {v:.2g}" for k, v in r["scale_to_match"].items() if v is not None]
            out.append(f"{'':34s} off by more than 25 %; the published value needs "
                       + (" or ".join(fixes) if fixes else "a change no rate or bandwidth alone gives"))
    for p in prof.not_expressed:
        out.append(f"{p['name']:34s} not expressed: {p['why']}")
    out += ["", ("## Projection (no KNL or GPU run of this harness): Nurion KNL nodes that train an epoch as fast "
                 "as one GPU (circpad, global batch 32768; low = every band at the cluster's good end, high = the "
                 "GPU's)"),
            f"{'GPU':10s} {'px':>4s} {'nodes low':>10s} {'central':>8s} {'high':>8s}"]
    for r in crossover_table(prof):
        out.append(f"{r['gpu']:10s} {r['image_size']:4d} {_fmt(r['knl_nodes_low']):>10s} "
                   f"{_fmt(r['knl_nodes_central']):>8s} {_fmt(r['knl_nodes_high']):>8s}")
    out += ["", ("## Projection: today's CPU nodes that train an epoch as fast as one GPU (each at its precision; "
                 "sources in docs/projection.md)"),
            f"{'CPU node':14s} {'GPU':10s} {'comparison':28s} {'px':>4s} {'nodes low':>10s} {'central':>8s} {'high':>8s}"]
    for r in current_cpu_table(prof):
        out.append(f"{r['cluster']:14s} {r['gpu']:10s} {r['comparison']:28s} {r['image_size']:4d} "
                   f"{_fmt(r['nodes_low']):>10s} {_fmt(r['nodes_central']):>8s} {_fmt(r['nodes_high']):>8s}")
    out += ["", "## Projection: one GPU's epoch / 1024 Nurion KNL nodes' epoch",
            f"{'GPU':10s} {'px':>4s} {'low':>8s} {'central':>8s} {'high':>8s}"]
    for r in ratio_table(prof):
        out.append(f"{r['gpu']:10s} {r['image_size']:4d} {r['low']:8.2f} {r['central']:8.2f} {r['high']:8.2f}")
    return out
