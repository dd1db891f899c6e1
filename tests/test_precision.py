"""Spec (docs/projection.md, 'Per-precision ceilings'; docs/records.md, `precision`): each CPU's ceiling at
fp32 and at bf16 comes from its /proc/cpuinfo flags (and, for AMD, its family), with the per-cycle figure's
source; a measured kernel faster than the reported clock allows raises the clock instead of printing a
fraction above 100%; the training step's precision is a configuration field of the report, so fp32 and
bf16 runs of one configuration are never merged."""
from __future__ import annotations

import pytest

from bench.projection.ceilings import ceiling_unit, peak_at, peak_gflops, proven_clock_ghz, units
from bench.records import new_record, precision_of
from bench.runner import config
from reports.analysis import config_label, scaling_rows
from reports.frame import to_frame

# /proc/cpuinfo first-processor blocks, cut to the fields read (from the machines this project has run on
# and published parts' flags)
SAPPHIRE_RAPIDS = {"vendor_id": "GenuineIntel", "cpu family": "6", "cpu MHz": "2600.000",
                   "flags": "fpu sse avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8"}
COOPER_LAKE = {"vendor_id": "GenuineIntel", "cpu family": "6", "cpu MHz": "2500.000",
               "flags": "sse avx avx2 fma avx512f avx512_bf16"}
SKYLAKE_X = {"vendor_id": "GenuineIntel", "cpu family": "6", "cpu MHz": "2000.000", "flags": "sse avx avx2 fma avx512f"}
GENOA = {"vendor_id": "AuthenticAMD", "cpu family": "25", "cpu MHz": "2596.142",
         "flags": "sse avx avx2 fma avx512f avx512_bf16 avx512_vnni"}
TURIN = {"vendor_id": "AuthenticAMD", "cpu family": "26", "cpu MHz": "2500.000",
         "flags": "sse avx avx2 fma avx512f avx512_bf16"}
ROME = {"vendor_id": "AuthenticAMD", "cpu family": "23", "cpu MHz": "2450.000", "flags": "sse avx avx2 fma"}


@pytest.mark.parametrize("info,fp32,bf16,bf16_unit", [
    (SAPPHIRE_RAPIDS, 64, 1024, "AMX-BF16 tiles (TDPBF16PS)"),
    (COOPER_LAKE, 64, 128, "AVX512_BF16 (VDPBF16PS)"),
    (SKYLAKE_X, 64, 64, "AVX-512 FMA"),  # no bf16 unit: bf16 runs through fp32
    (GENOA, 32, 64, "AVX512_BF16 (VDPBF16PS)"),  # Zen 4: 512-bit operations on 256-bit datapaths
    (TURIN, 64, 128, "AVX512_BF16 (VDPBF16PS)"),
    (ROME, 32, 32, "AVX2+FMA"),
])
def test_the_ceiling_of_each_precision_from_the_flags(info, fp32, bf16, bf16_unit):
    assert ceiling_unit(info, "fp32").flops_per_cycle == fp32
    unit = ceiling_unit(info, "bf16")
    assert (unit.flops_per_cycle, unit.name) == (bf16, bf16_unit)
    assert all(u.source for u in units(info))


def test_the_peak_is_cores_times_clock_times_the_units_flops():
    peak, how = peak_gflops(SAPPHIRE_RAPIDS, 2, "bf16")
    assert peak == pytest.approx(2 * 2.6 * 1024)
    assert how == "2 cores x 2.60 GHz x 1024 bf16 FLOPs/cycle (AMX-BF16 tiles (TDPBF16PS))"
    with pytest.raises(ValueError, match="precision 'fp8'"):
        ceiling_unit(GENOA, "fp8")


def test_a_kernel_faster_than_the_reported_clock_allows_raises_the_clock():
    """A VM reports its base clock; a bf16 convolution at 350 GFLOP/s on 2 Zen 4 cores needs 2.73 GHz."""
    ghz, how = proven_clock_ghz(GENOA, 2, {"fp32": 143.0, "bf16": 350.0})
    assert ghz == pytest.approx(350.0 / (2 * 64)) and "bf16 kernel" in how
    for precision, measured in (("fp32", 143.0), ("bf16", 350.0)):
        assert measured <= peak_at(GENOA, 2, precision, ghz)[0] + 1e-9
    slower, why = proven_clock_ghz(GENOA, 2, {"fp32": 100.0})
    assert slower == pytest.approx(2.596142) and why == "reported by the kernel"


def record(**over):
    base = dict(system="Xeon", preset="custom", backend="mpi", world_size=1, device="cpu", model="circpad",
                image_size=64, global_batch=512, epoch_s=[10.0], train_events=5120)
    return {**new_record(**{**base, **over}), "_source": "r.jsonl:1"}


def test_a_records_precision_is_its_field_else_its_amp_else_fp32():
    assert precision_of(record(precision="bf16")) == "bf16"
    assert precision_of(record(config={"amp": "bf16"})) == "bf16"
    assert precision_of(record(config={"amp": "none"})) == "fp32"
    assert precision_of(record()) == "fp32"


def test_the_report_keeps_fp32_and_bf16_runs_of_one_configuration_apart():
    runs = [record(precision="fp32", epoch_s=[10.0]), record(precision="bf16", epoch_s=[4.0]),
            record(config={"amp": "bf16"}, epoch_s=[4.2])]  # an older bf16 record without the field
    rows = scaling_rows(to_frame(runs))
    assert sorted(zip(rows["precision"], rows["runs"])) == [("bf16", 2), ("fp32", 1)]
    labels = {config_label(tuple(r[f] for f in ("system", "device", "precision", "backend", "model", "image_size",
                                                  "global_batch", "preset")))
              for _, r in rows.iterrows()}
    assert labels == {"Xeon, cpu, mpi, circpad, 64px, batch 512, custom",
                      "Xeon, cpu, bf16, mpi, circpad, 64px, batch 512, custom"}


@pytest.mark.parametrize("info,costs,amp,why", [
    (ROME, False, "none", "auto: fp32, this CPU has no bf16 unit"),
    (SKYLAKE_X, False, "none", "auto: fp32, this CPU has no bf16 unit"),
    (GENOA, True, "none", "auto: fp32; this CPU has AVX512_BF16 (VDPBF16PS), but bf16 is not shown to cost no AUC"),
    (GENOA, False, "bf16", "auto: bf16 through AVX512_BF16 (VDPBF16PS)"),
    (SAPPHIRE_RAPIDS, False, "bf16", "auto: bf16 through AMX-BF16 tiles (TDPBF16PS)"),
])
def test_amp_auto_on_a_cpu_follows_its_bf16_unit_and_the_accuracy_table(info, costs, amp, why, monkeypatch):
    from bench.runner import config
    monkeypatch.setattr(config, "BF16_COSTS_AUC", costs)
    got, reason = config.auto_amp("cpu", info)
    assert got == amp and reason.startswith(why)
    assert config.auto_amp("cuda", info) == ("bf16", "auto: bf16 on cuda")


def test_the_precision_asked_for_is_kept_and_said(monkeypatch):
    from bench.runner import config
    monkeypatch.setattr(config, "BF16_COSTS_AUC", False)
    monkeypatch.setattr(config, "auto_amp", lambda device, info=None: ("bf16", "auto: bf16 through a test unit"))
    assert (config.parse_config([]).amp, config.parse_config([]).amp_why) == ("bf16", "auto: bf16 through a test unit")
    fp32 = config.parse_config(["--amp", "none"])  # the study's fp32, asked for
    assert (fp32.amp, fp32.amp_why) == ("none", "asked: --amp none")
    with pytest.raises(SystemExit):
        config.parse_config(["--amp-why", "x"])  # internal, not a flag


def test_the_verdict_weighs_the_auc_difference_against_the_seeds_spread():
    from benchmarks.precision_accuracy import verdict
    runs = lambda aucs: {s: {"test_auc": a} for s, a in zip((11, 12, 13), aucs)}  # noqa: E731
    within, why = verdict({"fp32": runs([0.950, 0.946, 0.954]), "bf16": runs([0.948, 0.947, 0.951])})
    assert not within and "within the seeds' spread" in why  # 0.0013 lower, spread 0.004
    costs, why = verdict({"fp32": runs([0.950, 0.949, 0.951]), "bf16": runs([0.940, 0.941, 0.939])})
    assert costs and "+0.0100" in why


def test_todays_cpu_nodes_are_in_the_answer_like_for_like():
    """bench.projection --published: each current CPU profile against each GPU, its comparison named; the
    central node count is the compute-only count (GPU rate / node rate) or a little more for the allreduce."""
    import math

    from bench.projection import profiles, published
    prof = profiles.load()
    rows = published.current_cpu_table(prof)
    assert {r["cluster"] for r in rows} == set(published.CURRENT_CPUS)
    spr = next(r for r in rows if (r["cluster"], r["gpu"], r["image_size"]) == ("spr-2s-amx", "h100", 64))
    assert spr["comparison"] == "like for like (bf16)" and prof.systems["spr-2s-amx"].precision == "bf16"
    node_rate = prof.systems["spr-2s-amx"].achieved_tflops.central * 1e12 / prof.workloads["circpad-64"].flops_per_image
    gpu_rate = prof.systems["h100"].images_per_s["circpad-64"].central
    assert math.ceil(gpu_rate / node_rate) <= spr["nodes_central"] <= math.ceil(gpu_rate / node_rate) + 2
    assert spr["nodes_low"] <= spr["nodes_central"] <= spr["nodes_high"]
    fp32 = next(r for r in rows if (r["cluster"], r["gpu"]) == ("zen4-2s-fp32", "titan-rtx"))
    assert fp32["comparison"] == "like for like (fp32)"
    assert "current_cpus" in published.as_json(prof)


def test_the_paper_preset_pins_the_studys_fp32_unless_a_precision_is_asked_for():
    cfg = config.parse_config(["--preset", "paper"])
    assert (cfg.amp, cfg.amp_why) == ("none", "preset paper: the study's fp32")
    asked = config.parse_config(["--preset", "paper", "--amp", "bf16"])
    assert (asked.amp, asked.amp_why) == ("bf16", "asked: --amp bf16")


def test_auto_follows_the_accuracy_table():
    """The committed table (reports/reference/precision/records.jsonl) and BF16_COSTS_AUC agree."""
    from pathlib import Path

    from benchmarks.precision_accuracy import verdict_of
    records = Path(__file__).parents[1] / "reports" / "reference" / "precision" / "records.jsonl"
    assert config.BF16_COSTS_AUC == verdict_of(records)
