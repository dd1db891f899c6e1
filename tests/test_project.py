"""Spec: the performance model's fits recover known parameters from synthetic timings (alpha-beta of the
ring allreduce; t0 and r_max of the compute curve); exposed communication is all of the allreduce for mpi
and what backward cannot hide for horovod/ddp; a record set made from the model itself is projected with
zero error; `python -m bench.projection` prints the curves, refuses to run without a calibration, and its
projected records load in reports with no problems."""
import json
import math

import numpy as np
import pytest

from bench.projection import cli as project
from bench.projection.model import (AllreduceFit, Case, ComputeFit, Profile, exposed_comm_s, fit_alpha_beta,
                             fit_compute, project_curve, project_step, speedup_efficiency)
from bench.projection.calibrate import Calibration
from bench.runner.config import sweep_sizes
from reports.analysis import group_points, series_of
from bench.records import read_records as load_records

ALPHA, BW = 3e-6, 5e9
T0, RMAX = 0.02, 400.0
PARAMS = {("circpad", 64): 9_351_937, ("compact", 64): 43_189}


def ring(n, s, alpha=ALPHA, bw=BW):
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * s / bw


@pytest.mark.parametrize("ranks", [[2], [2, 4, 8, 64]])
def test_alpha_beta_fit_recovers_known_values(ranks):
    rng = np.random.default_rng(0)
    rows = [(n, s) for n in ranks for s in [4 * 4 ** k for k in range(13)]]
    t = [ring(n, s) * (1 + 0.01 * rng.standard_normal()) for n, s in rows]
    fit = fit_alpha_beta([r[0] for r in rows], [r[1] for r in rows], t)
    assert fit.alpha_s == pytest.approx(ALPHA, rel=0.05)
    assert fit.bandwidth_Bps == pytest.approx(BW, rel=0.05)


def test_alpha_beta_fit_exact_and_clamped():
    sizes = [1e3, 1e5, 1e7]
    fit = fit_alpha_beta([4] * 3, sizes, [ring(4, s) for s in sizes])
    assert (fit.alpha_s, fit.bandwidth_Bps) == (pytest.approx(ALPHA), pytest.approx(BW))
    # timings that would fit a negative latency: alpha is clamped at 0, the bandwidth refitted
    sizes = [1e4, 1e5, 1e7]
    fit = fit_alpha_beta([2] * 3, sizes, [s / BW - 1e-6 for s in sizes])
    assert fit.alpha_s == 0.0 and fit.bandwidth_Bps == pytest.approx(BW, rel=0.5)
    assert AllreduceFit(ALPHA, BW).time_s(1, 1e9) == 0.0


def test_compute_fit_recovers_t0_and_rmax():
    rng = np.random.default_rng(1)
    b = [8, 16, 32, 64, 128, 256, 512]
    t = [(T0 + x / RMAX) * (1 + 0.01 * rng.standard_normal()) for x in b]
    fit = fit_compute(b, t)
    assert fit.t0_s == pytest.approx(T0, rel=0.1)
    assert fit.r_max == pytest.approx(RMAX, rel=0.03)
    exact = fit_compute(b, [T0 + x / RMAX for x in b])
    assert (exact.t0_s, exact.r_max) == (pytest.approx(T0), pytest.approx(RMAX))
    with pytest.raises(ValueError):
        fit_compute([8, 8], [1.0, 1.0])


def test_exposed_communication_by_backend():
    assert exposed_comm_s(1.0, 2.0, "mpi", 0.7) == 1.0
    assert exposed_comm_s(1.0, 2.0, "horovod", 0.7) == 0.0
    assert exposed_comm_s(1.0, 1.0, "ddp", 0.5) == pytest.approx(0.5)


def test_curve_shape():
    profile = Profile("p", "p", {("circpad", 64): ComputeFit(T0, RMAX)}, AllreduceFit(ALPHA, BW))
    case = Case("circpad", 64, PARAMS[("circpad", 64)], backend="mpi")
    steps = project_curve(profile, case, sweep_sizes(1024))
    assert [s.nodes for s in steps] == sweep_sizes(1024) and steps[-1].per_rank_batch == 32
    assert steps[0].epoch_s == pytest.approx(13 * (T0 + 32768 / RMAX))  # 450000 // 32768 = 13 steps
    se = speedup_efficiency(steps)
    assert se[0] == (1.0, 1.0) and all(0 < e <= 1 for _, e in se)
    assert all(a.epoch_s > b.epoch_s for a, b in zip(steps, steps[1:8]))


def synthetic_calibration(threads=2) -> dict:
    """Timings that follow the model exactly."""
    batches = [8, 16, 32, 64, 128]
    sizes = [4 * 4 ** k for k in range(13)]
    compute = [{"model": m, "image_size": s, "threads": threads, "params": p, "flops_per_image": 1e9,
                "batches": batches, "step_s": [T0 / k + b / (RMAX * k) for b in batches], "samples": []}
               for k, ((m, s), p) in enumerate(PARAMS.items(), start=1)]
    return {"schema": 1, "host": {"cpu_model": "Test CPU", "cpu_count": threads, "cpu_mhz": 2000.0, "avx512": True},
            "compute": compute,
            "allreduce": {"ranks": [2] * len(sizes), "bytes": sizes, "time_s": [ring(2, s) for s in sizes]}}


def model_records(cal: Calibration, backend: str) -> list[dict]:
    """Measured-looking records whose epoch times are the model's own prediction."""
    recs = []
    fit = cal.compute[("circpad", 64, 2)]
    for n in (1, 2, 4):
        case = Case("circpad", 64, PARAMS[("circpad", 64)], 4096, 4096 * 3, backend if n > 1 else "mpi")
        step = project_step(Profile("x", "Test CPU", {("circpad", 64): fit}, cal.network), case, n)
        recs.append({"schema_version": 1, "run_id": f"r{n}", "system": "Test CPU", "preset": "custom",
                     "backend": backend if n > 1 else "none", "world_size": n, "nodes": 1, "threads_per_rank": 2,
                     "device": "cpu", "model": "circpad", "model_params": PARAMS[("circpad", 64)],
                     "image_size": 64, "global_batch": 4096, "steps_per_epoch": 3, "train_events": 4096 * 3,
                     "epoch_s": [step.epoch_s, step.epoch_s * 1.0]})
    return recs


@pytest.mark.parametrize("backend", ["mpi", "horovod"])
def test_projection_of_model_made_records_matches_by_construction(backend):
    cal = Calibration(synthetic_calibration())
    projected, lines = project.project_measured(model_records(cal, backend), cal, overlap=0.7)
    assert len(projected) == 3
    errors = [float(line.split()[-1]) for line in lines[1:]]
    assert errors == pytest.approx([0.0] * 3, abs=1e-6)


def test_compute_fit_at_other_thread_counts_is_scaled_and_said():
    cal = Calibration(synthetic_calibration(threads=2))
    fit, note = cal.compute_fit("circpad", 64, 4)
    assert fit.r_max == pytest.approx(2 * RMAX) and "scaled" in note
    with pytest.raises(KeyError, match="--calibrate"):
        cal.compute_fit("circpad", 224, 2)


def test_cli_prints_emits_records_that_reports_load(tmp_path, capsys):
    cal_path = tmp_path / "cal.json"
    cal_path.write_text(json.dumps(synthetic_calibration()))
    measured = tmp_path / "measured.jsonl"
    measured.write_text("".join(json.dumps(r) + "\n" for r in model_records(Calibration(synthetic_calibration()), "mpi")))
    out = tmp_path / "projected.jsonl"
    assert project.main(["--calibration", str(cal_path), "--image-sizes", "64", "--records", str(measured),
                         "--emit-records", str(out), "--plot", str(tmp_path / "p.png")]) == 0
    text = capsys.readouterr().out
    assert "Nurion KNL (central published rate)" in text and "PUBLISHED-RATE" in text and "projected vs measured" in text
    assert "KNL nodes that train an epoch as fast as one GPU" in text
    assert (tmp_path / "p.png").stat().st_size > 0
    records, problems = load_records([out, measured])
    assert problems == []
    proj = [r for r in records if r.get("projected")]
    assert len(proj) == 2 * 11 + 3  # two profiles x 1..1024 nodes, plus one per measured run
    assert all(r["projected"] is True and r["epoch_s"][0] > 0 and math.isfinite(r["images_per_s"]) for r in proj)
    series = series_of(group_points(records))
    assert ("Test CPU", "cpu", "fp32", "mpi", "circpad", 64, 4096, "custom") in {c for c, _ in series}
    assert any(p for _, p in series)  # projected series kept apart from measured ones


def test_cli_without_calibration_exits_2(tmp_path, capsys):
    assert project.main(["--calibration", str(tmp_path / "none.json"), "--plot", ""]) == 2
    assert "--calibrate" in capsys.readouterr().err


def test_measure_compute_smoke():
    from bench.projection.calibrate import measure_compute
    e = measure_compute("compact", 16, [2, 4], repeats=1, threads=1, log=lambda *_: None)
    assert e["params"] > 0 and e["flops_per_image"] > 0 and len(e["step_s"]) == 2


def test_gpu_record_adds_a_one_gpu_profile(tmp_path, capsys):
    from pathlib import Path
    cal_path = tmp_path / "cal.json"
    cal_path.write_text(json.dumps(synthetic_calibration()))
    gpu = Path(__file__).parent / "records" / "gpu.jsonl"
    out = tmp_path / "p.jsonl"
    assert project.main(["--calibration", str(cal_path), "--image-sizes", "64", "--records", str(gpu),
                         "--plot", "", "--emit-records", str(out)]) == 0
    assert "one GPU (titanrtx, measured)" in capsys.readouterr().out
    records, problems = load_records([out])
    assert problems == [] and not [r for r in records if r["device"] == "cuda"]  # measured, not projected
    profile = project.gpu_profile(load_records([gpu])[0])
    rate = (32768 * 14 / 20.0 + 32768 * 14 / 22.0) / 2  # the fixture's two runs: medians 20 s and 22 s
    assert profile.max_nodes == 1 and profile.compute[("circpad", 64)].r_max == pytest.approx(rate)


def test_cpu_share_scales_compute_of_validated_runs():
    cal = Calibration(synthetic_calibration())
    recs = model_records(cal, "mpi")
    # each rank of the 2-rank run got half a core, the calibration all of one: its compute takes twice as long
    projected, lines = project.project_measured(recs, cal, 0.7, {"2": 0.5, "4:horovod": 9.0}, 1.0)
    by_n = {p["world_size"]: p for p in projected}
    fit = cal.compute[("circpad", 64, 2)].scaled(0.5)
    case = Case("circpad", 64, PARAMS[("circpad", 64)], 4096, 4096 * 3, "mpi")
    expected = project_step(Profile("x", "Test CPU", {("circpad", 64): fit}, cal.network), case, 2)
    assert by_n[2]["epoch_s"][0] == pytest.approx(expected.epoch_s)
    assert by_n[1]["epoch_s"][0] == pytest.approx(recs[0]["epoch_s"][0])  # no share given: unchanged
    assert any("CPU share 0.5 (calibration 1)" in line for line in lines)
    assert by_n[4]["epoch_s"][0] == pytest.approx(recs[2]["epoch_s"][0])  # 4:horovod does not match an mpi run
    assert project.cpu_shares(["1=0.46", "2:horovod=0.28"]) == {"1": 0.46, "2:horovod": 0.28}
    with pytest.raises(ValueError, match="N=SHARE"):
        project.cpu_shares(["two"])


def test_cli_refuses_a_model_the_calibration_lacks_and_bad_compute_specs(tmp_path, capsys):
    """Any registered model can be projected once calibrated; one that is not says how to calibrate it, and a
    --compute spec naming an unknown model or a size it cannot take is refused before minutes of timing."""
    cal_path = tmp_path / "cal.json"
    cal_path.write_text(json.dumps(synthetic_calibration()))
    assert project.main(["--calibration", str(cal_path), "--model", "resnet50", "--plot", ""]) == 2
    err = capsys.readouterr().err
    assert "--model resnet50" in err and "--compute resnet50:224" in err and "circpad:64" in err
    for spec, said in (("resnet18:64", "unknown model"), ("inception_v3:64", "at least 75x75"),
                       ("circpad:60", "divisible by 8"), ("circpad", "MODEL:SIZE")):
        assert project.main(["--calibrate", "--compute", spec, "--calibration", str(tmp_path / "c.json"),
                             "--plot", ""]) == 2
        assert f"--compute {spec}: " in capsys.readouterr().err and not (tmp_path / "c.json").exists()
