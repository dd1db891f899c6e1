"""Published scaling points reproduced from the profile file, and the CPU-cluster-against-one-GPU answer.

Torch-free and MPI-free: everything is computed from ``bench/projection/profiles.json`` (bench.projection.profiles)
with the allreduce costs of bench.projection.collectives.

One synchronous data-parallel step of a rank with batch b on a device that trains R images/s::

    compute   = b / R                     R = achieved FLOP/s / training FLOPs per image, or a measured images/s
    allreduce = the stack's exchange of the workload's gradient tensors (fusion, algorithm by message size)
    exposed   = what the overlap timeline (bench/projection/timeline.py) leaves after backward (backward is
                about 2/3 of the step), the stack's ``overlap`` the realised fraction of its hiding;
                parameter servers: max(0, push + pull - overlap * 2/3 * compute)
    step      = compute + exposed

Inputs fitted to published points (the file's ``fits``) are applied by ``fitted``; ``reproduce`` gives each
point in sample and out of sample (the fits redone without it).

Every input is a band (low / central / high). A *scenario* picks one end of each band by name, e.g.
``{("rate", "nurion-knl"): "high"}``; what is not named is central. The published points are evaluated
centrally, and each input is swung over its band to find the assumption that moves the answer most.

``crossover_table(profiles)`` and ``ratio_table(profiles)`` are what a report shows: how many Nurion KNL nodes
train one epoch as fast as one GPU, and the ratio at 1024 nodes, each with the band from the ends of every
input that favour the cluster (low) or the GPU (high).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bench.projection import timeline
from bench.projection.collectives import Exchange
from bench.projection.model import BACKWARD_SHARE
from bench.projection.profiles import Band, ProfileError, Profiles

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
    servers: int = 0  # parameter-server tasks when the point names them (0: the stack's)
    colocated: bool = False  # the point's PS tasks run on its worker nodes
    placement: str = "round_robin"  # how its variables were placed on the PS tasks (collectives.placement_loads)


def setting_of(prof: Profiles, system: str, workload: str, point: dict | None = None) -> Setting:
    point = point or {}
    s = prof.systems[system]
    return Setting(system, workload, point.get("stack", s.stack), point.get("network", s.network),
                   int(point.get("ranks_per_node", 1)), int(point.get("servers", 0)),
                   bool(point.get("colocated", False)), str(point.get("placement", "round_robin")))


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
    efficiency = stack["efficiency"].pick(_pick(scenario, "efficiency", st.stack)) * scenario.get(
        ("scale", "efficiency", st.stack), 1.0)
    return Exchange(policy=stack["policy"] or net["allreduce"],
                    alpha_s=net["latency_us"].pick(_pick(scenario, "latency", st.network)) * 1e-6,
                    bandwidth_Bps=net["bandwidth_gbs"].pick(_pick(scenario, "bandwidth", st.network)) * 1e9
                    * scenario.get(("scale", "bandwidth", st.network), 1.0) * efficiency,
                    fusion_bytes=stack["fusion_mb"] * 2**20, cycle_s=stack["cycle_ms"] * 1e-3,
                    servers=st.servers or stack["servers"], colocated=st.colocated, placement=st.placement,
                    ranks_per_node=st.ranks_per_node)


def exposed_s(prof: Profiles, st: Setting, ranks: int, compute_s: float, scenario: dict) -> float:
    """The communication a step waits for after its backward pass (bench/projection/timeline.py): parameter
    servers push and pull the placed variables (``overlap`` of backward at most); allreduce stacks run the
    stack's schedule (Horovod's cycle and fusion, DDP's buckets, or one allreduce after backward) over the
    workload's gradient tensors in backward order, and realise ``overlap`` of the ideal timeline's hiding."""
    stack = prof.stacks[st.stack]
    ex = exchange(prof, st, scenario)
    overlap = stack["overlap"].pick(_pick(scenario, "overlap", st.stack))
    backward = BACKWARD_SHARE * compute_s
    work = prof.workloads[st.workload]
    sizes, flops = work.gradient_schedule()
    if ex.policy == "parameter_server":
        return max(0.0, ex.time_s(ranks, sizes, work.placed_variables()) - overlap * backward)
    if ranks <= 1:
        return 0.0
    return timeline.exposed_s(sizes, flops, backward, lambda n: ex.one_s(ranks, n), stack["schedule"],
                              ex.fusion_bytes, ex.cycle_s, overlap)[0]


def step_s(prof: Profiles, st: Setting, nodes: float, batch_per_rank: float, scenario: dict) -> float:
    """One training step at ``nodes`` nodes, ``batch_per_rank`` images per rank (all ranks in parallel)."""
    compute = batch_per_rank / images_per_s(prof, st.system, st.workload, scenario)
    ranks = max(1, round(nodes * st.ranks_per_node))
    return compute + exposed_s(prof, st, ranks, compute, scenario)


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
        one = replace(st, ranks_per_node=1)  # one rank, weak scaling
        return step_s(prof, one, 1, b, scenario) / step_s(prof, st, nodes, b, scenario)
    return b * st.ranks_per_node / step_s(prof, st, nodes, b, scenario)  # images_per_s_per_node


def assumptions(prof: Profiles, point: dict) -> list[tuple[str, str]]:
    """The banded inputs a point depends on, as (kind, key)."""
    st = setting_of(prof, point["system"], point["workload"], point)
    keys = [("rate", st.system)]
    if point["kind"] == "ratio":
        keys.append(("rate", point["baseline"]))
    keys += [("latency", st.network), ("bandwidth", st.network), ("overlap", st.stack)]
    if prof.stacks[st.stack]["efficiency"].source != "none":
        keys.append(("efficiency", st.stack))
    return keys


def _band_of(prof: Profiles, kind: str, key: str, workload: str):
    """The band of input ``kind`` of ``key``; a rate is the system's images/s for ``workload`` where it has
    one, else its achieved TFLOP/s (the band a fit scales: ``workload`` "")."""
    if kind == "rate":
        s = prof.systems[key]
        return s.images_per_s.get(workload) or s.achieved_tflops
    if kind in ("overlap", "efficiency"):
        return prof.stacks[key][kind]
    return prof.networks[key]["latency_us" if kind == "latency" else "bandwidth_gbs"]


def evaluate(prof: Profiles, point: dict) -> dict:
    """One published point under ``prof`` (fits already applied): the central projection, its relative error,
    the range over all bands, whether that range covers the published value, the dominant assumption, the
    unconfirmed inputs and the factor on each rate or bandwidth that would match."""
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
    rng = [min(ends + [lo, hi]), max(ends + [lo, hi])]
    unconfirmed = [f"{k}:{n}" for k, n in keys if not _band_of(prof, k, n, point["workload"]).confirmed]
    if not prof.workloads[point["workload"]].confirmed:
        unconfirmed.append(f"workload:{point['workload']}")
    needed = {f"{k} of {n}": needed_scale(prof, point, k, n) for k, n in keys if k in ("rate", "bandwidth")}
    return {"projected": projected, "rel_error": rel_error(point, projected), "projected_range": rng,
            "covered": covers(point, rng),
            "dominant_assumption": f"{kind} of {key}", "dominant_range": [lo, hi],
            "unconfirmed_inputs": unconfirmed, "scale_to_match": needed}


def rel_error(point: dict, projected: float) -> float:
    """(projected - published) / published; for a published lower bound (``"bound": "lower"``, e.g. '> 80 %')
    0 when the projection is at or above it."""
    measured = point["measured"]["value"]
    if point.get("bound") == "lower" and projected >= measured:
        return 0.0
    return (projected - measured) / measured


def covers(point: dict, rng: list[float]) -> bool:
    """Whether the range of all bands holds the published value (a lower bound: reaches it)."""
    m = point["measured"]["value"]
    if point.get("bound") == "lower":
        return rng[1] * (1 + 1e-9) >= m
    return rng[0] * (1 - 1e-9) <= m <= rng[1] * (1 + 1e-9)


def reproduce(prof: Profiles) -> list[dict]:
    """Every published point, in sample (every fit of the profile file applied, ``fitted(prof)``) and out of
    sample (the fits refitted without the point: ``fitted(prof, exclude={point})``; a fit left with no point
    keeps its prior band). ``prof`` is the file as loaded, before any fit."""
    inside = fitted(prof)
    rows = []
    for point in prof.published:
        uses = [f["name"] for f in prof.fits if point["name"] in f["points"]]
        row = {"name": point["name"], "source": point["measured"]["source"], "kind": point["kind"],
               "measured": point["measured"]["value"], **evaluate(inside, point), "note": point.get("note", ""),
               "fitted_to_it": uses}
        out = evaluate(fitted(prof, exclude={point["name"]}), point) if uses else row
        row["out_of_sample"] = {k: out[k] for k in ("projected", "rel_error", "projected_range", "covered")}
        rows.append(row)
    return rows


def coverage(rows: list[dict], tolerance: float = 0.25) -> dict:
    """{points, in_sample: {covered, within}, out_of_sample: {covered, within}}: the fraction of published
    values inside the range of all bands, and within ``tolerance`` of the central projection."""
    def frac(sel):
        return sum(1 for r in rows if sel(r)) / len(rows) if rows else float("nan")
    return {"points": len(rows), "tolerance": tolerance,
            "in_sample": {"covered": frac(lambda r: r["covered"]),
                          "within": frac(lambda r: abs(r["rel_error"]) <= tolerance)},
            "out_of_sample": {"covered": frac(lambda r: r["out_of_sample"]["covered"]),
                              "within": frac(lambda r: abs(r["out_of_sample"]["rel_error"]) <= tolerance)}}


# --- fits: inputs taken from published points, refitted without each point ----------------------------------
def _with_band(prof: Profiles, kind: str, key: str, band) -> Profiles:
    if kind == "rate":
        return replace(prof, systems={**prof.systems, key: replace(prof.systems[key], achieved_tflops=band)})
    if kind == "bandwidth":
        return replace(prof, networks={**prof.networks, key: {**prof.networks[key], "bandwidth_gbs": band}})
    return replace(prof, stacks={**prof.stacks, key: {**prof.stacks[key], "efficiency": band}})


def fit_band(prof: Profiles, fit: dict, points: list[dict]):
    """The band of ``fit``'s input that reproduces ``points``: the factor on its prior's central value that
    matches each point with the point's other inputs central (geometric mean over the points: the central
    value; a published lower bound counts there only when the fit has no other point), and with them all at
    their low or all at their high ends (the extremes: low and high). Raises
    ProfileError when no factor in [1e-3, 1e3] reaches a point."""
    kind, key = fit["kind"], fit["key"]
    prior = _band_of(prof, kind, key, "")
    centrals, ends = [], []
    for pt in points:
        others = [k for k in assumptions(prof, pt) if k != (kind, key)]
        c = needed_scale(prof, pt, kind, key)
        if c is None:
            raise ProfileError(f"fits.{fit['name']}", f"no factor on {kind} of {key} reproduces {pt['name']}")
        centrals.append(c)
        ends += [e for w in ("low", "high") if (e := needed_scale(prof, pt, kind, key, {o: w for o in others}))]
    exact = [c for c, pt in zip(centrals, points) if pt.get("bound") != "lower"] or centrals  # a bound only
    central = math.exp(sum(math.log(c) for c in exact) / len(exact))  # sets the centre when nothing else does
    lo, hi = min(ends + centrals), max(ends + centrals)
    cap = 1.0 / prior.central if kind == "efficiency" else math.inf  # an efficiency stays at most 1
    lo, central, hi = (prior.central * min(x, cap) for x in (lo, central, hi))
    return Band(lo, central, hi, prior.source, f"fitted to {', '.join(p['name'] for p in points)}: {fit['derived']}",
                prior.confirmed)


def fitted(prof: Profiles, exclude=frozenset()) -> Profiles:
    """``prof`` with every fit applied in file order, each to its points less ``exclude``; a fit left with no
    point keeps its prior band (the file's)."""
    out = prof
    for fit in prof.fits:
        points = [p for p in prof.published if p["name"] in fit["points"] and p["name"] not in exclude]
        if points:
            out = _with_band(out, fit["kind"], fit["key"], fit_band(out, fit, points))
    return out


def needed_scale(prof: Profiles, point: dict, kind: str, key: str, base: dict | None = None) -> float | None:
    """The factor on one input (a rate, a bandwidth or a stack's link efficiency; the rest central, or as
    ``base`` picks them) at which the model gives the published value; None when no factor in [1e-3, 1e3]
    does (the point does not depend on it enough)."""
    measured = point["measured"]["value"]
    base = base or {}
    f = lambda x: point_value(prof, point, {**base, ("scale", kind, key): x}) - measured
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


def as_json(prof: Profiles, rows: list[dict] | None = None) -> dict:
    """The ``--json`` document: published points (in and out of sample), coverage, the fits, and the
    crossover, current-CPU and 1024-node tables from the fitted profiles. ``prof`` as loaded; ``rows``:
    ``reproduce(prof)`` when already computed."""
    rows, fp = rows or reproduce(prof), fitted(prof)
    fits = [{**f, "band": vars(_band_of(fp, f["kind"], f["key"], "")),
             "prior": vars(_band_of(prof, f["kind"], f["key"], ""))} for f in prof.fits]
    return {"profiles": prof.path, "published": rows, "coverage": coverage(rows), "fits": fits,
            "crossover": crossover_table(fp), "ratio_at_1024": ratio_table(fp), "current_cpus": current_cpu_table(fp),
            "not_expressed": prof.not_expressed}


def _fmt(x) -> str:
    if x is None:
        return "none"
    return f"{x:.3g}" if isinstance(x, float) and not math.isnan(x) else str(x)


def _published_lines(prof: Profiles, rows: list[dict]) -> list[str]:
    out = [f"## Published points reproduced from {prof.path} (measured = published; projected = this model; "
           "in sample: every fit applied; out of sample: the fits redone without the point)",
           (f"{'point':34s} {'published':>9s} {'in sample':>9s} {'error':>6s} {'out of sample':>13s} {'error':>6s} "
            f"{'range of all bands (oos)':>24s}  dominant assumption (its range)")]
    for r in rows:
        o = r["out_of_sample"]
        flag = "  [unconfirmed inputs: " + ", ".join(r["unconfirmed_inputs"]) + "]" if r["unconfirmed_inputs"] else ""
        lo, hi = o["projected_range"]
        dlo, dhi = r["dominant_range"]
        cover = "" if o["covered"] else " !"
        out.append(f"{r['name']:34s} {_fmt(r['measured']):>9s} {_fmt(r['projected']):>9s} {100 * r['rel_error']:+5.0f}% "
                   f"{_fmt(o['projected']):>13s} {100 * o['rel_error']:+5.0f}% {_fmt(lo):>11s}-{_fmt(hi):<10s}{cover:2s} "
                   f"{r['dominant_assumption']} ({_fmt(dlo)}-{_fmt(dhi)}){flag}")
        if r["fitted_to_it"]:
            out.append(f"{'':34s} in-sample fits to it: {', '.join(r['fitted_to_it'])}")
        if abs(o["rel_error"]) > 0.25:
            fixes = [f"{k} x {v:.2g}" for k, v in r["scale_to_match"].items() if v is not None]
            out.append(f"{'':34s} off by more than 25 % out of sample; the published value needs (in sample) "
                       + (" or ".join(fixes) if fixes else "a change no rate or bandwidth alone gives"))
    c = coverage(rows)
    out.append(f"coverage of {c['points']} points: range of all bands covers {100 * c['in_sample']['covered']:.0f} % in "
               f"sample, {100 * c['out_of_sample']['covered']:.0f} % out of sample (! = not covered); within 25 %: "
               f"{100 * c['in_sample']['within']:.0f} % in sample, {100 * c['out_of_sample']['within']:.0f} % out of sample")
    for p in prof.not_expressed:
        out.append(f"{p['name']:34s} not expressed: {p['why']}")
    return out


def report_lines(prof: Profiles, rows: list[dict] | None = None) -> list[str]:
    """The text of ``python -m bench.projection --published`` (``prof`` as loaded; the tables use its fits;
    ``rows``: ``reproduce(prof)`` when already computed)."""
    out = _published_lines(prof, rows or reproduce(prof))
    prof = fitted(prof)
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
