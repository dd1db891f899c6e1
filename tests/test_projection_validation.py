"""Spec: the projection's mechanisms on hand-computed cases and its out-of-sample validation.

* layer tables (bench/projection/layers.py) give the networks' published parameter counts and multiply-adds,
  and the circpad table is the registered model's;
* the overlap timeline (bench/projection/timeline.py): when each gradient is ready, Horovod's cycle and
  fusion, DDP-style buckets, one allreduce after backward, and the realised fraction of the ideal hiding;
* parameter servers holding whole variables (round-robin placement): the busiest task bounds the step;
* fits (profiles.json ``fits``): in sample a fitted input reproduces its points; out of sample the fit is
  redone without the point, and a fit left with no point keeps its prior; a published lower bound counts as
  met when the projection is above it; coverage is the fraction of published values inside the bands;
* ``--published --json`` carries both errors and the coverage.
"""
import json
import math

import pytest

from bench.projection import cli, layers, profiles, published, timeline
from bench.projection import collectives as co


# --- layer tables -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, params, gmacs", [
    ("vgg16", 138_357_544, 15.47),  # Simonyan & Zisserman Table 2: 138 M; 15.5e9 multiply-adds
    ("resnet50", 25_557_032, 4.09),  # He et al. Table 1: 3.8e9 (stride on the 1x1); 4.1e9 with it on the 3x3
    ("resnet101", 44_549_160, 7.80),
    ("resnet152", 60_192_808, 11.51),  # torchvision's resnet152: 60,192,808 parameters, 11.51 GFLOPS
    # torchvision's inception_v3: 27,161,264 parameters with its auxiliary head (3,326,696) and a BatchNorm scale
    # per channel (17,216); tf_cnn_benchmarks has no scale and 1001 classes (+2,049); 5.71 GFLOPS
    ("inception-v3", 27_161_264 - 3_326_696 - 17_216 + 2_049, 5.71),
])
def test_layer_tables_give_the_published_totals(name, params, gmacs):
    p, macs = layers.totals(layers.table(name))
    assert p == params
    assert macs / 1e9 == pytest.approx(gmacs, abs=0.01)


def test_inception_v3_table_follows_tf_cnn_benchmarks_module_widths():
    table = layers.table("inception-v3")
    assert len(table) == 95  # 94 convolutions and the dense layer
    by_name = {la.name: la for la in table}
    # Mixed 5b's pool branch: 192 -> 32, 1x1 at 35x35; Mixed 7c's 3x1 of its second branch: 384 -> 384
    assert by_name["mixed5b_b3_0"].tensors[0] == 192 * 32 and by_name["mixed5b_b3_0"].macs == 192 * 32 * 35 * 35
    assert by_name["mixed7c_b1_3x1"].tensors[0] == 3 * 384 * 384
    assert by_name["fc"].tensors == (2048 * 1001, 1001)  # the last module concatenates 320 + 768 + 768 + 192
    # batch_norm without scale: a shift (trainable) and the moving mean and variance (placed, not exchanged)
    assert by_name["mixed5b_b3_0"].tensors[1:] == (32,) and by_name["mixed5b_b3_0"].state == (32, 32)
    assert sum(la.params for la in table) == 23_819_401


def test_circpad_layer_table_is_the_registered_model():
    import models
    for px in (64, 224):
        net = models.get_model("circpad", image_size=px)
        p, macs = layers.totals(layers.table(f"circpad-{px}"))
        assert p == models.count_parameters(net)
    # torch's FLOP counter: 6 x multiply-adds less the first convolution's input gradient (2 x its macs)
    first = layers.table("circpad-64")[0].macs
    assert 6 * layers.totals(layers.table("circpad-64"))[1] - 2 * first == pytest.approx(
        profiles.load().workloads["circpad-64"].flops_per_image)


def test_backward_order_puts_the_last_layer_first_with_its_flops():
    counts, flops = layers.backward_order("vgg16")
    assert counts[:2] == [4096 * 1000, 1000]  # fc8 weight, then its bias
    assert flops[0] == 4 * 4096 * 1000 and flops[1] == 0.0
    assert sum(counts) == 138_357_544


def test_a_layer_table_that_disagrees_with_params_is_refused():
    data = json.loads(profiles.DEFAULT_PATH.read_text())
    data["workloads"]["resnet50"]["params"] = 10_000_000
    with pytest.raises(profiles.ProfileError) as err:
        profiles.parse(data)
    assert err.value.path == "workloads.resnet50.layers"


# --- the overlap timeline -----------------------------------------------------------------------------------
COST = lambda nbytes: nbytes * 1e-9  # 1 GB/s, no latency: 0.3e9 bytes take 0.3 s


def test_ready_times_follow_the_backward_flops():
    assert timeline.ready_times([1.0, 1.0, 2.0], 2.0) == pytest.approx([0.5, 1.0, 2.0])


def test_buckets_start_when_ready_and_the_tail_is_exposed():
    # backward 1 s; tensors ready at 0.5 s and 1 s, 0.3 s each: 0.5-0.8, then 1.0-1.3: 0.3 s exposed
    exposed, busy = timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 1.0, COST, "buckets", fusion_bytes=0)
    assert (exposed, busy) == pytest.approx((0.3, 0.6))
    # one bucket big enough for both: it waits for the second tensor, 1.0-1.6
    assert timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 1.0, COST, "buckets", fusion_bytes=1e9)[0] == pytest.approx(0.6)


def test_horovod_waits_for_its_cycle_and_fuses_what_is_ready():
    # cycle 0.4 s: ticks at 0.4 (nothing ready), 0.8 (the first), 1.2 (the second): 0.8-1.1, 1.2-1.5
    assert timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 1.0, COST, "horovod", cycle_s=0.4)[0] == pytest.approx(0.5)
    # ready at 0.25 and 0.5, cycle 0.6: both taken at 0.6 and fused into one 0.6 s buffer: 0.6-1.2
    assert timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 0.5, COST, "horovod", fusion_bytes=1e9,
                              cycle_s=0.6)[0] == pytest.approx(0.7)


def test_after_backward_hides_nothing_and_realised_scales_the_hidden_part():
    assert timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 1.0, COST, "after")[0] == pytest.approx(0.6)
    # buckets case: ideal 0.3 exposed, 0.3 hidden; half realised: 0.3 + 0.5 x 0.3
    assert timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 1.0, COST, "buckets",
                              realised=0.5)[0] == pytest.approx(0.45)
    assert timeline.exposed_s([0.3e9, 0.3e9], [1.0, 1.0], 1.0, COST, "buckets", realised=0.0)[0] == pytest.approx(0.6)


@pytest.mark.parametrize("kwargs, word", [
    ({"schedule": "nccl"}, "unknown schedule"), ({"realised": 1.5}, "realised"), ({"flops": [1.0]}, "length")])
def test_timeline_refuses_bad_arguments(kwargs, word):
    args = {"sizes": [1.0, 1.0], "flops": [1.0, 1.0], "backward_s": 1.0, "cost": COST, **kwargs}
    with pytest.raises(ValueError, match=word):
        timeline.exposed_s(**args)


def test_a_workload_without_layers_is_ready_evenly():
    sizes, flops = timeline.even(64e6, 2e9, slices=4)
    assert sizes == [16e6] * 4 and flops == [0.5e9] * 4


# --- parameter servers --------------------------------------------------------------------------------------
def test_round_robin_placement_and_the_busiest_server():
    # global_step (8 bytes, no gradient) goes first, to task 0; then 5 -> 1, 1 -> 0, 1 -> 1, 1 -> 0
    assert co.placement_loads([5, 1, 1, 1], 2) == [2, 6]
    # 4 workers, 2 servers, 1 GB/s: the busiest holds 6 MB, 4 x 6 MB in and out = 48 ms > a worker's 2 x 8 MB
    assert co.placed_parameter_server_s(4, [5e6, 1e6, 1e6, 1e6], 0.0, 1e9, 2) == pytest.approx(0.048)
    # one worker: its own link (2 x 8 MB) bounds
    assert co.placed_parameter_server_s(1, [5e6, 1e6, 1e6, 1e6], 0.0, 1e9, 2) == pytest.approx(0.016)
    # more servers than tensors cannot split the largest one
    assert max(co.placement_loads([5, 1, 1, 1], 64)) == 5


def test_colocated_parameter_servers_keep_the_local_share_off_the_network():
    tensors = [5e6, 1e6, 1e6, 1e6]  # tasks hold 6 MB and 2 MB; S = 8 MB; 1 GB/s, no latency
    # 4 nodes: the 6 MB task's node takes 3 x 6 MB in (its own worker's share is local), more than any node
    # sends (8 - 6, 8 - 2, or 8 MB from the two nodes without a task): 2 x 18 MB = 36 ms, against 48 ms apart
    assert co.placed_parameter_server_s(4, tensors, 0.0, 1e9, 2, colocated=True) == pytest.approx(0.036)
    # 2 nodes, 1 task: it takes 1 x 8 MB while the other node sends 8 MB: 16 ms, half of the separate task's
    assert co.placed_parameter_server_s(2, [8e6], 0.0, 1e9, 1, colocated=True) == pytest.approx(0.016)
    assert co.placed_parameter_server_s(2, [8e6], 0.0, 1e9, 1) == pytest.approx(0.032)
    # the latency counts once per push and once per pull: 2 x 1 ms on top of the 36 ms
    assert co.placed_parameter_server_s(4, tensors, 1e-3, 1e9, 2, colocated=True) == pytest.approx(0.038)
    # one node: everything is local, whatever the task count
    assert co.placed_parameter_server_s(1, tensors, 1e-3, 1e9, 2, colocated=True) == 0.0
    # 8 equal tasks on 8 nodes: each takes 7/8 of S in, sends 7/8 S out: 2 x 7 MB = 14 ms
    assert co.placed_parameter_server_s(8, [1e6] * 8, 0.0, 1e9, 8, colocated=True) == pytest.approx(0.014)
    with pytest.raises(ValueError):
        co.placed_parameter_server_s(2, tensors, 0.0, 1e9, 3, colocated=True)


@pytest.mark.parametrize("edit, path", [
    (lambda pt: pt.update(colocated="yes"), "colocated"),
    (lambda pt: pt.update(colocated=True, servers=pt["nodes"] + 1), "servers"),
])
def test_bad_colocated_points_are_named(edit, path):
    data = json.loads(profiles.DEFAULT_PATH.read_text())
    i = next(k for k, pt in enumerate(data["published"]) if pt.get("colocated"))
    edit(data["published"][i])
    with pytest.raises(profiles.ProfileError) as err:
        profiles.parse(data)
    assert err.value.path == f"published[{i}].{path}"


def test_greedy_and_replicated_placement_by_hand():
    v = [(100, True), (10, False), (60, True), (50, True), (30, False)]  # bytes, trainable
    # greedy, every variable to the lighter task: global_step 8 -> t0; 100 -> t1; 10 -> t0 (18); 60 -> t0 (78);
    # 50 -> t0 (78 < 100: 128); 30 -> t1 (100 < 128). Exchanged (trainable only): t0 60 + 50, t1 100
    assert co.placement_loads(v, 2, "greedy") == [110, 100]
    # round-robin, every variable: 8 -> t0, 100 -> t1, 10 -> t0, 60 -> t1, 50 -> t0, 30 -> t1: t0 50, t1 160
    assert co.placement_loads(v, 2, "round_robin") == [50, 160]
    # replicated: trainable copies only, after global_step: 8 -> t0, 100 -> t1, 60 -> t0, 50 -> t1
    assert co.placement_loads(v, 2, "replicated") == [60, 150]
    # the placement reaches the step: 2 workers on their own links, 1 GB/s: 2 x 2 x 160 / 1e9 for round-robin
    assert co.placed_parameter_server_s(2, v, 0.0, 1e9, 2, placement="round_robin") == pytest.approx(6.4e-7)
    assert co.placed_parameter_server_s(2, v, 0.0, 1e9, 2, placement="greedy") == pytest.approx(4.4e-7)
    with pytest.raises(ValueError):
        co.placement_loads(v, 2, "random")


def test_the_points_name_the_placement_their_runs_used():
    prof = profiles.load()
    for pt in prof.published:
        if pt["name"].startswith("daint-"):  # parameter_server rows: greedy; the 4-node distributed_replicated
            assert pt["placement"] == ("replicated" if pt["nodes"] == 4 else "greedy"), pt["name"]
        elif pt["name"].startswith("aws-"):
            assert pt["placement"] == "replicated", pt["name"]
    data = json.loads(profiles.DEFAULT_PATH.read_text())
    i = next(k for k, pt in enumerate(data["published"]) if "placement" in pt)
    data["published"][i]["placement"] = "random"
    with pytest.raises(profiles.ProfileError) as err:
        profiles.parse(data)
    assert err.value.path == f"published[{i}].placement"


def test_resnet50_busiest_ps_task_holds_its_largest_variable_whatever_the_count():
    tensors = [n for la in layers.table("resnet50") for n in la.tensors]
    assert max(co.placement_loads(tensors, 64)) >= 3 * 3 * 512 * 512
    assert max(co.placement_loads(tensors, 64)) > 5 * sum(tensors) / 64  # far from balanced


# --- fits and out-of-sample validation ----------------------------------------------------------------------
def toy(fit_points=("p1",), bound=False) -> profiles.Profiles:
    """A cluster and a GPU on a free network; two published ratios of one GPU's epoch to 100 nodes' epoch.
    With the cluster at r TFLOP/s and the GPU at 10, the ratio is 100 r / 10 = 10 r. p1 says 20 (r = 2),
    p2 says 40 (r = 4). The cluster's prior band is 0.5 / 1 / 1.5."""
    band = lambda lo, c, hi: {"low": lo, "central": c, "high": hi, "source": "s"}
    net = {"name": "n", "allreduce": "ring", "latency_us": band(1e-9, 1e-9, 1e-9), "bandwidth_gbs": band(1e9, 1e9, 1e9)}
    point = lambda name, v: {"name": name, "kind": "ratio", "system": "c", "baseline": "g", "workload": "w",
                             "nodes": 100, "global_batch": 1000, "measured": {"value": v, "source": "s"}}
    pts = [point("p1", 20.0), point("p2", 40.0)]
    if bound:
        pts[1]["bound"] = "lower"
    return profiles.parse({
        "sources": {"s": "a test"}, "networks": {"n": net},
        "stacks": {"h": {"name": "h", "overlap": band(0, 0, 0)}},
        "workloads": {"w": {"flops_per_image": 1e9, "params": 1000, "source": "s"}},
        "systems": {"c": {"name": "c", "kind": "cpu", "network": "n", "stack": "h", "achieved_tflops": band(0.5, 1.0, 1.5)},
                    "g": {"name": "g", "kind": "gpu", "network": "n", "stack": "h", "achieved_tflops": band(10, 10, 10)}},
        "published": pts,
        "fits": [{"name": "c-rate", "kind": "rate", "key": "c", "points": list(fit_points), "derived": "test"}]})


def test_a_fit_reproduces_its_point_in_sample_and_out_of_sample_keeps_the_prior():
    prof = toy(("p1",))
    assert published.fitted(prof).systems["c"].achieved_tflops.central == pytest.approx(2.0, rel=1e-6)
    rows = {r["name"]: r for r in published.reproduce(prof)}
    assert rows["p1"]["projected"] == pytest.approx(20.0, rel=1e-6)
    assert rows["p1"]["fitted_to_it"] == ["c-rate"]
    assert rows["p1"]["out_of_sample"]["projected"] == pytest.approx(10.0, rel=1e-6)  # prior r = 1
    assert rows["p1"]["out_of_sample"]["rel_error"] == pytest.approx(-0.5)
    # p2 is not a fit point: in sample (r = 2) and out of sample alike, 20 against 40
    assert rows["p2"]["projected"] == rows["p2"]["out_of_sample"]["projected"] == pytest.approx(20.0, rel=1e-6)


def test_leave_one_out_refits_from_the_other_points():
    prof = toy(("p1", "p2"))
    # in sample: geometric mean of 2 and 4; out of sample each is fitted to the other alone
    assert published.fitted(prof).systems["c"].achieved_tflops.central == pytest.approx(math.sqrt(8), rel=1e-6)
    rows = {r["name"]: r for r in published.reproduce(prof)}
    assert rows["p1"]["out_of_sample"]["projected"] == pytest.approx(40.0, rel=1e-6)
    assert rows["p2"]["out_of_sample"]["projected"] == pytest.approx(20.0, rel=1e-6)
    cov = published.coverage(list(rows.values()))
    assert cov["points"] == 2 and cov["out_of_sample"]["within"] == 0.0


def test_a_lower_bound_is_met_above_it_and_sets_no_centre():
    prof = toy(("p1", "p2"), bound=True)  # p2: '> 40'
    assert published.fitted(prof).systems["c"].achieved_tflops.central == pytest.approx(2.0, rel=1e-6)
    rows = {r["name"]: r for r in published.reproduce(prof)}
    assert rows["p2"]["rel_error"] == pytest.approx(-0.5)  # 20 is below the bound
    assert published.rel_error({"bound": "lower", "measured": {"value": 40.0}}, 50.0) == 0.0
    assert published.covers({"bound": "lower", "measured": {"value": 40.0}}, [10.0, 45.0])
    assert not published.covers({"measured": {"value": 40.0}}, [10.0, 39.0])


@pytest.mark.parametrize("edit, path", [
    (lambda f: f.update(points=["nowhere"]), "fits[0].points"),
    (lambda f: f.update(kind="latency"), "fits[0].kind"),
    (lambda f: f.update(key="gpu9"), "fits[0].key"),
    (lambda f: f.pop("derived"), "fits[0].derived"),
])
def test_bad_fits_are_named(edit, path):
    data = json.loads(profiles.DEFAULT_PATH.read_text())
    edit(data["fits"][0])
    with pytest.raises(profiles.ProfileError) as err:
        profiles.parse(data)
    assert err.value.path == path


def test_the_package_file_fits_are_not_their_own_evidence():
    """Every fitted input's prior (the file's band) is from sources other than its fit points' sources."""
    prof = profiles.load()
    by_name = {p["name"]: p for p in prof.published}
    for fit in prof.fits:
        prior = published._band_of(prof, fit["kind"], fit["key"], "")
        for name in fit["points"]:
            assert by_name[name]["measured"]["source"] not in prior.source.split("+"), (fit["name"], name)


def test_published_json_carries_both_errors_and_the_coverage(tmp_path):
    out = tmp_path / "p.json"
    assert cli.main(["--published", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["coverage"]) == {"points", "tolerance", "in_sample", "out_of_sample"}
    assert doc["coverage"]["points"] == len(doc["published"]) >= 10
    covered = sum(p["out_of_sample"]["covered"] for p in doc["published"]) / len(doc["published"])
    assert doc["coverage"]["out_of_sample"]["covered"] == pytest.approx(covered)
    for p in doc["published"]:
        o = p["out_of_sample"]
        assert {"projected", "rel_error", "projected_range", "covered"} <= set(o)
        if not p["fitted_to_it"]:
            assert o["projected"] == p["projected"]
    kim = next(p for p in doc["published"] if p["name"] == "kim-1024-knl-vs-titan-rtx")
    assert kim["fitted_to_it"] == ["nurion-knl-rate"] and abs(kim["rel_error"]) < 0.01
    assert {f["name"] for f in doc["fits"]} == {"nurion-knl-rate", "grpc-efficiency"}


# Bugliarello 2017, report/source/benchmarks.tex, 'Parameters achieving peak performance on Piz Daint' (synthetic
# data, variable_update parameter_server): nodes -> (PS tasks, images/s); one node: 138.23 images/s.
DAINT_TABLE = {2: (1, 264.57), 4: (3, 523.38), 8: (2, 1018.18), 16: (4, 2001.00), 32: (12, 3840.35), 64: (40, 7118.31),
               128: (116, 9219.70)}


def test_the_piz_daint_points_are_the_reports_table_and_are_tested_out_of_sample():
    prof = profiles.load()
    assert prof.systems["daint-p100-tensorflow"].images_per_s["inception-v3"].central == 138.23
    by_name = {p["name"]: p for p in prof.published}
    (fit,) = [f for f in prof.fits if f["name"] == "grpc-efficiency"]
    for nodes, (servers, images_per_s) in DAINT_TABLE.items():
        pt = by_name[f"daint-grpc-inception-v3-{nodes}-nodes"]
        assert (pt["nodes"], pt["servers"], pt["batch_per_rank"]) == (nodes, servers, 64)
        assert pt["measured"]["value"] == pytest.approx(images_per_s / (nodes * 138.23), abs=1e-4)
        assert pt["name"] in fit["points"]
    assert [p["colocated"] for p in prof.published if p["name"].startswith("daint-")] == [True] * 7
    rows = {r["name"]: r for r in published.reproduce(prof)}
    inside = vars(published.fitted(prof).stacks["tensorflow-grpc"]["efficiency"])
    moved = 0
    for name in fit["points"]:  # each gRPC point's out-of-sample row comes from the fit made without it
        alone = published.fitted(prof, exclude={name})
        moved += vars(alone.stacks["tensorflow-grpc"]["efficiency"]) != inside
        oos = published.evaluate(alone, by_name[name])
        assert rows[name]["out_of_sample"]["projected_range"] == pytest.approx(oos["projected_range"], rel=1e-9)
    assert moved >= 1  # leaving a point out changes the fitted band for some point


# TensorFlow's benchmarks page (docs_src/performance/benchmarks.md, May 2017), 'Details for Amazon EC2 Distributed
# (NVIDIA Tesla K80)': (system, workload, batch per GPU) -> one instance's images/s, then instances -> (PS, images/s)
AWS_TABLE = {("aws-p2-8xlarge", "inception-v3", 64): (229, {2: (2, 459), 4: (4, 902), 8: (6, 1783)}),
             ("aws-p2-8xlarge", "resnet50", 64): (378, {2: (2, 751), 4: (4, 1388), 8: (8, 2744)}),
             ("aws-p2-8xlarge", "resnet152", 32): (146, {2: (2, 291), 4: (4, 565), 8: (4, 981)}),
             ("aws-p2-8xlarge-b32", "inception-v3", 32): (219, {2: (2, 427), 4: (4, 820), 8: (6, 1608)}),
             ("aws-p2-8xlarge-b32", "resnet50", 32): (333, {2: (2, 667), 4: (4, 1180), 8: (4, 2315)})}


def test_the_amazon_points_are_the_pages_table_and_in_no_fit():
    prof = profiles.load()
    fitted_points = {n for f in prof.fits for n in f["points"]}
    got = {}
    for pt in prof.published:
        if pt["system"].startswith("aws-"):
            assert pt["colocated"] is True and pt["name"] not in fitted_points and pt["stack"] == "tensorflow-grpc"
            got[(pt["system"], pt["workload"], pt["batch_per_rank"] // 8, pt["nodes"])] = (
                pt["servers"], pt["measured"]["value"])
    want = {}
    for (system, workload, batch), (one, rows) in AWS_TABLE.items():
        assert prof.systems[system].images_per_s[workload].central == one
        for n, (servers, ips) in rows.items():
            want[(system, workload, batch, n)] = (servers, pytest.approx(ips / (n * one), abs=1e-4))
    assert got == want
