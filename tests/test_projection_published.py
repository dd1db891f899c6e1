"""Spec: the profile file loads, and a bad or missing field is refused naming its dotted path (exit 2 from
the command line); each allreduce algorithm costs what its formula gives on hand-computed cases, MPICH's
choice switches at 2048 bytes, tensor fusion makes the bucket count Horovod would; the crossover and the
1024-node ratio come out of a toy profile with the answer worked by hand; `--published --json` writes the
documented schema; the circpad workloads in the file match the registered models."""
import copy
import json
import math

import pytest

from bench.projection import cli, profiles, published
from bench.projection import collectives as co

A, B = 2e-6, 10e9  # alpha 2 us, 10 GB/s


# --- the profile file ---------------------------------------------------------------------------------------
def raw() -> dict:
    return json.loads(profiles.DEFAULT_PATH.read_text())


def test_package_profile_file_loads_and_every_band_has_a_known_source():
    prof = profiles.load()
    assert {"nurion-knl", "titan-rtx", "h100", "cori-knl-tensorflow", "this-machine"} <= set(prof.systems)
    for s in prof.systems.values():
        band = s.achieved_tflops or next(iter(s.images_per_s.values()))
        assert band.low <= band.central <= band.high and band.source


@pytest.mark.parametrize("edit, path", [
    (lambda d: d["systems"]["nurion-knl"]["achieved_tflops"].pop("central"), "systems.nurion-knl.achieved_tflops.central"),
    (lambda d: d["systems"]["nurion-knl"]["achieved_tflops"].update(low=1.0), "systems.nurion-knl.achieved_tflops"),
    (lambda d: d["networks"]["omnipath"]["latency_us"].update(source="nobody"), "networks.omnipath.latency_us.source"),
    (lambda d: d["systems"]["titan-rtx"].update(network="ethernet"), "systems.titan-rtx.network"),
    (lambda d: d["networks"]["aries"]["bandwidth_gbs"].update(high="fast"), "networks.aries.bandwidth_gbs.high"),
    (lambda d: d["workloads"]["circpad-64"]["tensors"].append(1), "workloads.circpad-64.tensors"),
    (lambda d: d["published"][0].pop("baseline"), "published[0].baseline"),
    (lambda d: d.pop("stacks"), "profiles.stacks"),
])
def test_bad_profile_fields_are_named(edit, path):
    data = copy.deepcopy(raw())
    edit(data)
    with pytest.raises(profiles.ProfileError) as err:
        profiles.parse(data)
    assert err.value.path == path


def test_cli_exits_2_naming_the_bad_field(tmp_path, capsys):
    data = raw()
    del data["systems"]["h100"]["images_per_s"]["circpad-224"]["high"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert cli.main(["--published", "--profiles", str(bad)]) == 2
    assert "systems.h100.images_per_s.circpad-224.high: missing" in capsys.readouterr().err
    assert cli.main(["--published", "--profiles", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err


# --- allreduce algorithms -----------------------------------------------------------------------------------
def test_ring_is_the_hand_computed_formula():
    # 8 ranks, 80 MB: 2 * 7 * 2 us + 2 * 7/8 * 80e6 / 10e9 = 28 us + 14 ms
    assert co.ring_s(8, 80e6, A, B) == pytest.approx(28e-6 + 0.014)
    assert co.ring_s(1, 80e6, A, B) == 0.0


def test_recursive_doubling_rabenseifner_tree_and_parameter_server():
    # 8 ranks: 3 steps; 1 kB
    assert co.recursive_doubling_s(8, 1000, A, B) == pytest.approx(3 * (A + 1000 / B))
    assert co.rabenseifner_s(8, 80e6, A, B) == pytest.approx(6 * A + 2 * 7 / 8 * 80e6 / B)
    assert co.binary_tree_s(8, 1000, A, B) == pytest.approx(6 * (A + 1000 / B))
    # 6 ranks (not a power of two): one more step, ceil(log2 6) = 3
    assert co.recursive_doubling_s(6, 1000, A, B) == pytest.approx(3 * (A + 1000 / B))
    # 64 workers, 16 servers, 10 MB: each server link moves 64/16 shards each way
    assert co.parameter_server_s(64, 10e6, A, B, servers=16) == pytest.approx(2 * A + 2 * 4 * 10e6 / B)
    assert co.parameter_server_s(4, 10e6, A, B, servers=16) == pytest.approx(2 * A + 2 * 10e6 / B)


def test_mpich_switches_algorithm_at_2048_bytes():
    assert co.choose("mpich", 64, 2048) == "recursive_doubling"
    assert co.choose("mpich", 64, 2049) == "rabenseifner"
    assert co.allreduce_s("mpich", 64, 2048, A, B) == pytest.approx(co.recursive_doubling_s(64, 2048, A, B))
    assert co.allreduce_s("mpich", 64, 4096, A, B) == pytest.approx(co.rabenseifner_s(64, 4096, A, B))
    assert co.choose("ring", 64, 8) == "ring"
    with pytest.raises(ValueError, match="unknown allreduce policy"):
        co.choose("tree", 4, 8)


def test_tensor_fusion_bucket_count():
    mb = 2**20
    # the 224px circpad, backward order: the last layers' 3 tensors, the 411 MB dense weight alone, the rest
    tensors = [t * 4 for t in profiles.load().workloads["circpad-224"].tensors]
    buckets = co.fusion_buckets(tensors, 64 * mb)
    assert len(buckets) == 3 and sum(buckets) == sum(tensors)
    assert max(buckets) == 102760448 * 4
    assert co.fusion_buckets([30 * mb] * 5, 64 * mb) == [60 * mb, 60 * mb, 30 * mb]
    assert co.fusion_buckets([1, 2, 3], 0) == [1, 2, 3]  # threshold 0: fusion off


def test_exchange_sums_buckets_and_hierarchy_divides_latency():
    ex = co.Exchange("ring", A, B, fusion_bytes=64 * 2**20, cycle_s=0.005)
    t = ex.time_s(8, [30 * 2**20] * 3)  # two buckets: 60 MiB and 30 MiB
    assert t == pytest.approx(2 * 0.0025 + co.ring_s(8, 60 * 2**20, A, B) + co.ring_s(8, 30 * 2**20, A, B))
    flat = co.Exchange("ring", A, B, ranks_per_node=4).time_s(512, [1000])
    hier = co.Exchange("ring", A, B, ranks_per_node=4, hierarchical=True, intra=(1e-7, 50e9)).time_s(512, [1000])
    assert hier < flat  # 2 * 127 inter-node latencies instead of 2 * 511
    assert co.hierarchical_s(128, 4, 4e6, (1e-7, 50e9), (A, B), "ring") == pytest.approx(
        co.ring_s(4, 4e6, 1e-7, 50e9) + co.ring_s(128, 1e6, A, B / 4))


# --- the answer on a toy profile ----------------------------------------------------------------------------
def toy() -> profiles.Profiles:
    """A cluster node at 0.99 TFLOP/s (0.5-2), a GPU at 100 (49.9-199.9), a network so fast it costs nothing:
    the crossover is ceil(100 / 0.99) = 102 nodes, 25 and 400 at the ends; the 1024-node ratio 1024 x 0.99 / 100."""
    band = lambda lo, c, hi: {"low": lo, "central": c, "high": hi, "source": "s"}
    net = {"name": "n", "allreduce": "mpich", "latency_us": band(1e-9, 1e-9, 1e-9),
           "bandwidth_gbs": band(1e9, 1e9, 1e9)}
    return profiles.parse({
        "sources": {"s": "a test"},
        "networks": {"fast": net, "none": net},
        "stacks": {"h": {"name": "h", "overlap": band(0, 0, 0)}},
        "workloads": {f"circpad-{px}": {"flops_per_image": 1e9, "params": 1000, "source": "s"} for px in (64, 224)},
        "systems": {"nurion-knl": {"name": "k", "kind": "cpu", "network": "fast", "stack": "h",
                                   "achieved_tflops": band(0.5, 0.99, 2.0)},
                    "gpu": {"name": "g", "kind": "gpu", "network": "none", "stack": "h",
                            "achieved_tflops": band(49.9, 100.0, 199.9)}},
        "published": []})


def test_crossover_and_ratio_on_a_toy_profile():
    prof = toy()
    rows = published.crossover_table(prof, gpus=("gpu",), sizes=(64,))
    # low: cluster at 2, GPU at 49.9 -> 24.95 -> 25 nodes; central 101.01 -> 102; high: 0.5 and 199.9 -> 400
    assert rows == [{"gpu": "gpu", "image_size": 64, "knl_nodes_low": 25, "knl_nodes_central": 102,
                     "knl_nodes_high": 400}]
    ratio = published.ratio_table(prof, gpus=("gpu",), sizes=(64,))[0]
    assert (ratio["low"], ratio["central"], ratio["high"]) == pytest.approx(
        (1024 * 0.5 / 199.9, 1024 * 0.99 / 100, 1024 * 2 / 49.9), rel=1e-6)


def test_crossover_is_none_when_communication_never_lets_the_cluster_catch_up():
    prof = toy()
    prof.networks["fast"]["latency_us"] = profiles.Band(1e6, 1e6, 1e6, "s")  # one second per message
    assert published.crossover_nodes(prof, "gpu", "circpad-64", {}) is None


# --- the published points and the JSON ----------------------------------------------------------------------
def test_published_json_schema(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli.main(["--published", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "kim-1024-knl-vs-titan-rtx" in text and "not expressed" in text
    doc = json.loads(out.read_text())
    assert doc["published"] and doc["crossover"] and doc["ratio_at_1024"]
    bounds = {p["name"]: p.get("bound") for p in profiles.load().published}
    for p in doc["published"]:
        assert {"name", "source", "measured", "projected", "rel_error"} <= set(p)
        met = bounds[p["name"]] == "lower" and p["projected"] >= p["measured"]  # a lower bound met: error 0
        assert p["rel_error"] == pytest.approx(0.0 if met else (p["projected"] - p["measured"]) / p["measured"])
    for c in doc["crossover"]:
        assert {"gpu", "image_size", "knl_nodes_low", "knl_nodes_central", "knl_nodes_high"} <= set(c)
        assert c["knl_nodes_low"] <= c["knl_nodes_central"] <= c["knl_nodes_high"]
    for r in doc["ratio_at_1024"]:
        assert {"gpu", "image_size", "low", "central", "high"} <= set(r) and r["low"] <= r["central"] <= r["high"]
    assert {(c["gpu"], c["image_size"]) for c in doc["crossover"]} == {
        (g, s) for g in ("titan-rtx", "h100") for s in (64, 224)}


def test_needed_scale_reproduces_the_published_value():
    prof = profiles.load()
    point = next(p for p in prof.published if p["name"] == "you-resnet50-2048-knl")
    f = published.needed_scale(prof, point, "rate", "knl-intelcaffe")
    assert published.point_value(prof, point, {("scale", "rate", "knl-intelcaffe"): f}) == pytest.approx(
        point["measured"]["value"], rel=1e-6)


def test_circpad_workloads_match_the_registered_models():
    import models
    prof = profiles.load()
    for px in (64, 224):
        w = prof.workloads[f"circpad-{px}"]
        net = models.get_model("circpad", image_size=px)
        assert list(w.tensors) == [p.numel() for p in net.parameters()][::-1]
        if px == 64:  # the 224px count takes seconds; the file's figure is the same counter's
            assert w.flops_per_image == pytest.approx(models.training_flops(net, px)[0])
    assert math.isclose(prof.workloads["circpad-224"].params * 4 / 1e6, 414.9, rel_tol=1e-3)


def test_theoretical_peak_from_cpu_flags():
    from bench.projection.ceilings import flops_per_cycle, theoretical_peak_gflops
    assert flops_per_cycle({"avx512f", "avx2", "fma"}) == 64
    assert flops_per_cycle({"avx2", "fma", "avx"}) == 32 and flops_per_cycle({"avx"}) == 16
    peak, how = theoretical_peak_gflops({"cpu MHz": "2450.0", "flags": "sse avx avx2 fma"}, 2)
    # the test machine may expose cpufreq's maximum instead of cpu MHz: the form, not the clock, is checked
    assert "32 fp32 FLOPs/cycle (AVX2+FMA)" in how and peak == pytest.approx(2 * 32 * float(how.split()[3]))


def test_docs_profile_table_is_the_data_file():
    from pathlib import Path
    doc = (Path(__file__).parents[1] / "docs" / "projection.md").read_text()
    assert profiles.markdown_table(profiles.load()) in doc, "regenerate with python -m bench.projection.profiles"


def test_curve_steps_use_the_exchange_and_the_workload_tensors():
    from bench.projection.model import (
        AllreduceFit,
        Case,
        ComputeFit,
        Profile,
        project_step,
    )
    ex = co.Exchange("mpich", A, B, fusion_bytes=64 * 2**20, cycle_s=0.005)
    prof = Profile("p", "p", {("circpad", 224): ComputeFit(0.0, 10.0)}, AllreduceFit(A, B), exchange=ex)
    tensors = profiles.load().workloads["circpad-224"].tensors
    case = Case("circpad", 224, sum(tensors), tensors=tensors)
    step = project_step(prof, case, 1024)
    # the timeline's collectives on the exchange's cost: no fewer than with every tensor fused at once (a
    # wake-up fuses only the tensors ready by then), the cycle placed in time instead of half a cycle each
    from bench.projection import timeline
    from bench.projection.model import BACKWARD_SHARE
    backward = BACKWARD_SHARE * 32768 / 1024 / 10.0
    for per in (4, 2):
        sizes = [per * n for n in tensors]
        step = project_step(prof, Case("circpad", 224, sum(tensors), grad_bytes_per_param=per, tensors=tensors), 1024)
        want = timeline.exposed_s(sizes, [1.0] * len(sizes), backward, lambda n: ex.one_s(1024, n), "horovod",
                                  ex.fusion_bytes, ex.cycle_s, 0.7)
        assert (step.exposed_s, step.allreduce_s) == pytest.approx(want)
        assert step.allreduce_s >= sum(ex.one_s(1024, b) for b in co.fusion_buckets(sizes, ex.fusion_bytes)) - 1e-12


def test_curve_steps_run_the_backends_timeline():
    """mpi waits for the whole allreduce after backward; horovod hides what the timeline hides, scaled by
    ``overlap``; one rank exchanges nothing; the layer table's order and FLOPs are used when given."""
    from bench.projection import timeline
    from bench.projection.model import BACKWARD_SHARE, AllreduceFit, Case, ComputeFit, Profile, project_step
    prof = Profile("p", "p", {("circpad", 64): ComputeFit(0.0, 100.0)}, AllreduceFit(1e-6, 1e9))
    mpi = project_step(prof, Case("circpad", 64, 10_000_000, global_batch=4096, backend="mpi"), 8)
    assert mpi.exposed_s == pytest.approx(mpi.allreduce_s) and mpi.allreduce_s > 0
    hv = project_step(prof, Case("circpad", 64, 10_000_000, global_batch=4096, backend="horovod", overlap=1.0), 8)
    assert hv.exposed_s < 0.5 * mpi.exposed_s  # 0.08 s of allreduce against 3.4 s of backward
    none = project_step(prof, Case("circpad", 64, 10_000_000, global_batch=4096, overlap=0.0), 8)
    assert none.exposed_s == pytest.approx(none.allreduce_s)  # nothing realised: all of it waits
    assert project_step(prof, Case("circpad", 64, 10_000_000, global_batch=4096), 1).exposed_s == 0.0
    from bench.projection import layers as L
    counts, flops = L.backward_order("circpad-64")
    case = Case("circpad", 64, sum(counts), global_batch=4096, tensors=tuple(counts), flops=tuple(flops))
    step = project_step(prof, case, 8)
    backward = BACKWARD_SHARE * 4096 / 8 / 100.0
    want = timeline.exposed_s([4.0 * n for n in counts], flops, backward, lambda n: prof.network.time_s(8, n),
                              "horovod", 128 * 2**20, 1e-3, 0.7)
    assert (step.exposed_s, step.allreduce_s) == pytest.approx(want)
