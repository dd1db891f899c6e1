"""The hardware profiles of the projection, read from a data file (default ``bench/projection/profiles.json``).

Every figure in the file carries its source (a key of ``sources``) and, when it was computed from published
figures, how (``derived``); one that could not be confirmed at its source says so (``"confirmed": false``).
A figure with an uncertainty is a band ``{"low", "central", "high"}``; a fixed one is ``{"value"}``.

    sources    key -> the published document (or "measured in this project")
    networks   latency_us, bandwidth_gbs (bands); allreduce policy (bench/projection/collectives.py)
    stacks     framework + communication: policy override, fusion_mb, cycle_ms, servers, overlap (band)
    systems    kind cpu/gpu, network, stack, peak_fp32_tflops (value), achieved_tflops (band) and/or
               images_per_s (band per workload: a measured rate that takes precedence)
    workloads  flops_per_image, params, tensors (parameter counts in the order gradients become ready;
               absent: the gradient is taken as many small tensors), bytes_per_param
    published  the published points the projection reproduces (bench/projection/published.py)

``load`` checks everything and raises ``ProfileError`` naming the first bad field by its dotted path; the
command line turns that into exit status 2. Torch-free.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.projection import collectives, layers, timeline
from bench.projection.timeline import SCHEDULES

DEFAULT_PATH = Path(__file__).with_name("profiles.json")
KINDS = ("cpu", "gpu")
PRECISIONS = ("fp32", "bf16")
POINT_KINDS = ("ratio", "efficiency", "images_per_s_per_node")


class ProfileError(ValueError):
    """A bad or missing field of the profile file: ``path`` is its dotted name."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class Band:
    low: float
    central: float
    high: float
    source: str
    derived: str = ""
    confirmed: bool = True

    def pick(self, which: str) -> float:
        return {"low": self.low, "central": self.central, "high": self.high}[which]


@dataclass(frozen=True)
class Workload:
    name: str
    flops_per_image: float
    params: int
    tensors: tuple  # parameter counts, ready order (backward: last layer first)
    bytes_per_param: int
    source: str
    confirmed: bool = True
    layers: str = ""  # its layer table in bench/projection/layers.py, or "" (gradient ready evenly)

    def tensor_bytes(self, bytes_per_param: int | None = None) -> list[float]:
        per = bytes_per_param or self.bytes_per_param
        return [n * per for n in self.tensors]

    def placed_variables(self) -> list[tuple[float, bool]] | None:
        """Its variables in creation order as (bytes, trainable), from the layer table; None without one."""
        if not self.layers:
            return None
        return [(n * self.bytes_per_param, trainable) for n, trainable in layers.variables(self.layers)]

    def gradient_schedule(self) -> tuple[list[float], list[float]]:
        """(bytes of each gradient tensor, backward FLOPs per image before it is ready), backward order: from
        the network's layer table (bench/projection/layers.py) where it has one, else its gradient ready evenly
        through backward (bench/projection/timeline.py, ``even``)."""
        if self.layers:
            counts, flops = layers.backward_order(self.layers)
            return [n * self.bytes_per_param for n in counts], flops
        return timeline.even(self.params * self.bytes_per_param, 2.0 / 3.0 * self.flops_per_image)


@dataclass(frozen=True)
class System:
    name: str
    key: str
    kind: str
    network: str
    stack: str
    peak_fp32_tflops: float | None
    achieved_tflops: Band | None
    images_per_s: dict = field(default_factory=dict)  # workload -> Band
    precision: str = "fp32"  # of its training step: fp32 or bf16 (docs/precision.md)


@dataclass
class Profiles:
    sources: dict
    networks: dict  # key -> {"latency_us": Band, "bandwidth_gbs": Band, "allreduce": str, "name": str}
    stacks: dict  # key -> dict with "overlap" Band etc.
    systems: dict  # key -> System
    workloads: dict  # key -> Workload
    published: list  # raw dicts, checked
    path: str = ""
    not_expressed: list = field(default_factory=list)  # published points the model cannot express, and why
    fits: list = field(default_factory=list)  # inputs fitted to published points (bench/projection/published.py)


def _need(obj: dict, key: str, path: str):
    if not isinstance(obj, dict):
        raise ProfileError(path, f"should be an object, got {type(obj).__name__}")
    if key not in obj:
        raise ProfileError(f"{path}.{key}", "missing")
    return obj[key]


def _number(value, path: str, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(path, f"should be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ProfileError(path, f"should be positive, got {value!r}")
    return float(value)


def _source(obj: dict, path: str, sources: dict) -> str:
    src = _need(obj, "source", path)
    if not isinstance(src, str) or not src.strip():
        raise ProfileError(f"{path}.source", "should name a source")
    for key in src.split("+"):
        if key.strip() not in sources:
            raise ProfileError(f"{path}.source", f"unknown source {key.strip()!r} (not in 'sources')")
    return src


def _band(obj, path: str, sources: dict, positive: bool = True) -> Band:
    low, central, high = (_number(_need(obj, k, path), f"{path}.{k}", positive) for k in ("low", "central", "high"))
    if low < 0:
        raise ProfileError(f"{path}.low", f"should not be negative, got {low!r}")
    if not low <= central <= high:
        raise ProfileError(path, f"needs low <= central <= high, got {low:g}, {central:g}, {high:g}")
    confirmed = obj.get("confirmed", True)
    if not isinstance(confirmed, bool):
        raise ProfileError(f"{path}.confirmed", "should be true or false")
    return Band(low, central, high, _source(obj, path, sources), str(obj.get("derived", "")), confirmed)


def _value(obj, path: str, sources: dict) -> float:
    _source(obj, path, sources)
    return _number(_need(obj, "value", path), f"{path}.value")


def _check_choice(value, choices, path: str) -> str:
    if value not in choices:
        raise ProfileError(path, f"should be one of {', '.join(choices)}, got {value!r}")
    return value


def parse(data: dict, path: str = "") -> Profiles:
    """Check ``data`` (the file's JSON) and build the profiles. Raises ProfileError."""
    from bench.projection.collectives import POLICIES

    sources = _need(data, "sources", "profiles")
    if not isinstance(sources, dict) or not all(isinstance(v, str) and v for v in sources.values()):
        raise ProfileError("sources", "should map keys to documents")
    networks = _networks(_need(data, "networks", "profiles"), sources, POLICIES)
    stacks = _stacks(_need(data, "stacks", "profiles"), sources, POLICIES)
    workloads = _workloads(_need(data, "workloads", "profiles"), sources)
    systems = {key: _system(s, key, sources, networks, stacks, workloads)
               for key, s in _need(data, "systems", "profiles").items()}
    published = _need(data, "published", "profiles")
    for i, pt in enumerate(published):
        _check_point(pt, f"published[{i}]", sources, systems, workloads)
    not_expressed = data.get("not_expressed", [])
    for i, pt in enumerate(not_expressed):
        _need(pt, "why", f"not_expressed[{i}]")
        _source(pt, f"not_expressed[{i}]", sources)
    fits = [_check_fit(f, f"fits[{i}]", systems, networks, stacks, published) for i, f in enumerate(data.get("fits", []))]
    return Profiles(sources, networks, stacks, systems, workloads, published, path, not_expressed, fits)


FIT_KINDS = ("rate", "bandwidth", "efficiency")  # of a system, a network, a stack


def _check_fit(fit: dict, p: str, systems: dict, networks: dict, stacks: dict, published: list) -> dict:
    """A fitted input: ``kind`` (rate, bandwidth, efficiency) of ``key`` (a system, network or stack) fitted to
    the published ``points`` named; its band in the file is the prior (from sources that exclude them)."""
    for k in ("name", "kind", "key", "points", "derived"):
        _need(fit, k, p)
    kind = _check_choice(fit["kind"], FIT_KINDS, f"{p}.kind")
    noun, table = {"rate": ("system", systems), "bandwidth": ("network", networks), "efficiency": ("stack", stacks)}[kind]
    if fit["key"] not in table:
        raise ProfileError(f"{p}.key", f"unknown {noun} {fit['key']!r}")
    if kind == "rate" and systems[fit["key"]].achieved_tflops is None:
        raise ProfileError(f"{p}.key", f"{fit['key']!r} has no achieved_tflops band to fit")
    names = {pt["name"] for pt in published}
    if not isinstance(fit["points"], list) or not fit["points"]:
        raise ProfileError(f"{p}.points", "should list one or more published points")
    for name in fit["points"]:
        if name not in names:
            raise ProfileError(f"{p}.points", f"unknown published point {name!r}")
    return fit


def _networks(raw: dict, sources: dict, policies) -> dict:
    networks = {}
    for key, net in raw.items():
        p = f"networks.{key}"
        networks[key] = {"name": str(_need(net, "name", p)),
                         "latency_us": _band(_need(net, "latency_us", p), f"{p}.latency_us", sources),
                         "bandwidth_gbs": _band(_need(net, "bandwidth_gbs", p), f"{p}.bandwidth_gbs", sources),
                         "allreduce": _check_choice(_need(net, "allreduce", p), policies, f"{p}.allreduce")}
    return networks


def _stacks(raw: dict, sources: dict, policies) -> dict:
    stacks = {}
    for key, st in raw.items():
        p = f"stacks.{key}"
        stacks[key] = {"name": str(_need(st, "name", p)),
                       "overlap": _band(_need(st, "overlap", p), f"{p}.overlap", sources, positive=False),
                       "policy": (_check_choice(st["policy"], policies, f"{p}.policy") if "policy" in st else None),
                       "fusion_mb": _number(st.get("fusion_mb", 0), f"{p}.fusion_mb", positive=False),
                       "cycle_ms": _number(st.get("cycle_ms", 0), f"{p}.cycle_ms", positive=False),
                       "servers": int(_number(st.get("servers", 1), f"{p}.servers")),
                       "schedule": _check_choice(st.get("schedule", "horovod"), SCHEDULES, f"{p}.schedule"),
                       "efficiency": (_band(st["efficiency"], f"{p}.efficiency", sources) if "efficiency" in st
                                      else Band(1.0, 1.0, 1.0, "none", "the link's bandwidth as the network gives it"))}
        if stacks[key]["efficiency"].high > 1:
            raise ProfileError(f"{p}.efficiency.high", "an efficiency is a fraction of the link, at most 1")
        if stacks[key]["overlap"].high > 1:
            raise ProfileError(f"{p}.overlap.high", "an overlap is a fraction, at most 1")
    return stacks


def _workloads(raw: dict, sources: dict) -> dict:
    workloads = {}
    for key, w in raw.items():
        p = f"workloads.{key}"
        params = int(_number(_need(w, "params", p), f"{p}.params"))
        tensors = w.get("tensors")
        if tensors is None:
            tensors = [params]
        elif not isinstance(tensors, list) or sum(tensors) != params:
            raise ProfileError(f"{p}.tensors", f"should be a list of parameter counts summing to params ({params})")
        table = w.get("layers", "")
        if table:
            if table not in layers.NETWORKS:
                raise ProfileError(f"{p}.layers", f"no layer table {table!r}; choose from {', '.join(layers.NETWORKS)}")
            total = layers.totals(layers.table(table))[0]
            if abs(total - params) > 0.01 * params:
                raise ProfileError(f"{p}.layers", f"the {table} table has {total} parameters, params says {params}")
        workloads[key] = Workload(key, _number(_need(w, "flops_per_image", p), f"{p}.flops_per_image"), params,
                                  tuple(tensors), int(_number(w.get("bytes_per_param", 4), f"{p}.bytes_per_param")),
                                  _source(w, p, sources), bool(w.get("confirmed", True)), table)
    return workloads


def _system(s: dict, key: str, sources: dict, networks: dict, stacks: dict, workloads: dict) -> System:
    p = f"systems.{key}"
    kind = _check_choice(_need(s, "kind", p), KINDS, f"{p}.kind")
    net = _need(s, "network", p)
    if net not in networks:
        raise ProfileError(f"{p}.network", f"unknown network {net!r}")
    stack = _need(s, "stack", p)
    if stack not in stacks:
        raise ProfileError(f"{p}.stack", f"unknown stack {stack!r}")
    peak = _value(s["peak_fp32_tflops"], f"{p}.peak_fp32_tflops", sources) if "peak_fp32_tflops" in s else None
    achieved = _band(s["achieved_tflops"], f"{p}.achieved_tflops", sources) if "achieved_tflops" in s else None
    rates = {}
    for wk, band in s.get("images_per_s", {}).items():
        if wk not in workloads:
            raise ProfileError(f"{p}.images_per_s.{wk}", "unknown workload")
        rates[wk] = _band(band, f"{p}.images_per_s.{wk}", sources)
    if achieved is None and not rates:
        raise ProfileError(f"{p}.achieved_tflops", "missing (and no measured images_per_s)")
    precision = _check_choice(s.get("precision", "fp32"), PRECISIONS, f"{p}.precision")
    return System(str(_need(s, "name", p)), key, kind, net, stack, peak, achieved, rates, precision)


def _check_point(pt: dict, p: str, sources: dict, systems: dict, workloads: dict) -> None:
    for k in ("name", "kind", "system", "workload", "nodes"):
        _need(pt, k, p)
    _check_choice(pt["kind"], POINT_KINDS, f"{p}.kind")
    _value(_need(pt, "measured", p), f"{p}.measured", sources)
    for k in ("system", "baseline"):
        if k in pt and pt[k] not in systems:
            raise ProfileError(f"{p}.{k}", f"unknown system {pt[k]!r}")
    if pt["kind"] == "ratio" and "baseline" not in pt:
        raise ProfileError(f"{p}.baseline", "missing (a ratio is baseline epoch / system epoch)")
    if pt["workload"] not in workloads:
        raise ProfileError(f"{p}.workload", f"unknown workload {pt['workload']!r}")
    _number(pt["nodes"], f"{p}.nodes")
    if "bound" in pt:
        _check_choice(pt["bound"], ("lower",), f"{p}.bound")
    if "placement" in pt:
        _check_choice(pt["placement"], collectives.PLACEMENTS, f"{p}.placement")
    if "colocated" in pt:
        if not isinstance(pt["colocated"], bool):
            raise ProfileError(f"{p}.colocated", "should be true or false (PS tasks on the worker nodes)")
        if pt["colocated"] and int(pt.get("servers", 1)) > int(pt["nodes"]):
            raise ProfileError(f"{p}.servers", "colocated PS tasks: at most one per worker node")
    if "global_batch" not in pt and "batch_per_rank" not in pt:
        raise ProfileError(f"{p}.batch_per_rank", "missing (or global_batch)")


def load(path=None) -> Profiles:
    """Read and check the profile file at ``path`` (default: the package's). Raises ProfileError, also for a
    file that is missing or not JSON."""
    path = Path(path) if path else DEFAULT_PATH
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(str(path), "no such file") from None
    except json.JSONDecodeError as err:
        raise ProfileError(str(path), f"not valid JSON ({err})") from None
    return parse(data, str(path))


def markdown_table(prof: Profiles) -> str:
    """The profile table of docs/projection.md: every banded figure with its source and derivation."""
    def row(what, band: Band, unit):
        note = band.derived + ("" if band.confirmed else " **Not confirmed at a source.**")
        return f"| {what} | {band.low:g} / {band.central:g} / {band.high:g} {unit} | {band.source} | {note} |"
    lines = ["| figure | low / central / high | source | how |", "|---|---|---|---|"]
    for key, s in prof.systems.items():
        if s.achieved_tflops:
            lines.append(row(f"{s.name}: achieved training rate", s.achieved_tflops, "TFLOP/s"))
        for wk, band in s.images_per_s.items():
            lines.append(row(f"{s.name}: {wk}", band, "images/s"))
    for key, n in prof.networks.items():
        if key != "none":
            lines.append(row(f"{n['name']}: MPI latency", n["latency_us"], "us"))
            lines.append(row(f"{n['name']}: bandwidth", n["bandwidth_gbs"], "GB/s"))
    for key, st in prof.stacks.items():
        if key != "single":
            lines.append(row(f"{st['name']}: overlap", st["overlap"], ""))
        if st["efficiency"].source != "none":
            lines.append(row(f"{st['name']}: link efficiency", st["efficiency"], ""))
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(prog="python -m bench.projection.profiles",
                            description="Print the projection's profile table (docs/projection.md) from "
                                        "bench/projection/profiles.json.").parse_args()
    print(markdown_table(load()))
