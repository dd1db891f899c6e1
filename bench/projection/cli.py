"""Project epoch time, speedup and efficiency at 1 ... 1024 nodes from a calibrated performance model.

    python -m bench.projection --calibrate                 # measure compute and allreduce here (minutes)
    python -m bench.projection                             # table + plot: this machine, Nurion KNL, the answer
    python -m bench.projection --published [--json F]      # published points reproduced, crossover, ratio
    python -m bench.projection --records results/*.jsonl   # + projected vs measured for every run in them
    python -m bench.projection --emit-records results/projected.jsonl   # dashed "projected" curves in reports

The model is in bench/projection/model.py; measurements in bench/projection/calibrate.py; the hardware
profiles (achieved rates and networks, each with its source) in bench/projection/profiles.json, read by
bench/projection/profiles.py; the published points and the cluster-against-one-GPU answer in
bench/projection/published.py. docs/projection.md says what is assumed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import uuid
from dataclasses import replace

import models
from data.errors import fail
from bench.outputs import check_output_dir, check_output_file
from bench.projection import layers, published
from bench.projection.calibrate import (
    Calibration,
    host_info,
    measure_allreduce,
    measure_compute,
    save,
)
from bench.projection.model import (
    AllreduceFit,
    Case,
    ComputeFit,
    Profile,
    project_curve,
    project_step,
    speedup_efficiency,
    with_compression,
)
from bench.projection.plot import plot_curves
from bench.projection.profiles import ProfileError
from bench.projection.profiles import load as load_profiles
from bench.records import DuplicateRunError, new_record, one_per_run, precision_of, read_records, record_line
from data.files import InputError, MissingInput, WriteError, append_whole, check_input_file, clean, write_text
from bench.runner.config import sweep_sizes

KNL_CORES = 68  # Xeon Phi 7250 (docs/physics-reference.md, 'Hardware')
DEFAULT_COMPUTE = ("circpad:64", "circpad:224", "compact:64", "compact:224")


def default_batches(model: str, image_size: int) -> list[int]:
    if model == "compact":
        return [8, 32, 128, 512] if image_size <= 64 else [4, 16, 64]
    return [8, 16, 32, 64, 128] if image_size <= 64 else [2, 4, 8]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.projection", description=__doc__.splitlines()[0])
    p.add_argument("--calibration", default="results/calibration.json", help="calibration JSON (read/written)")
    c = p.add_argument_group("calibration (--calibrate)")
    c.add_argument("--calibrate", action="store_true", help="measure compute and allreduce here, then project")
    c.add_argument("--compute", nargs="+", default=list(DEFAULT_COMPUTE), metavar="MODEL:SIZE",
                   help="model:image_size pairs to time (default: %(default)s)")
    c.add_argument("--batches", type=int, nargs="+", help="per-rank batches (default: by model and size)")
    c.add_argument("--repeats", type=int, default=3, help="timed steps per batch (224px: at most 2)")
    c.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1],
                   help="torch threads to calibrate at (records with other counts are scaled)")
    c.add_argument("--ar-max-bytes", type=int, default=64 << 20, help="largest allreduce message")
    c.add_argument("--ar-repeats", type=int, default=7)
    c.add_argument("--statistic", choices=("median", "min"), default="median",
                   help="reduction of repeated step times before the fit (min: least disturbed by other load)")
    c.add_argument("--no-allreduce", action="store_true", help="keep the stored allreduce timings")
    m = p.add_argument_group("projection")
    m.add_argument("--model", default="circpad", choices=models.available(),
                   help="the model to project; it must be in the calibration at one of --image-sizes")
    m.add_argument("--image-sizes", type=int, nargs="+", default=[64, 224])
    m.add_argument("--global-batch", type=int, default=32768)
    m.add_argument("--events", type=int, default=450_000, help="training events per epoch")
    m.add_argument("--backend", default="horovod", choices=("horovod", "ddp", "mpi"))
    m.add_argument("--overlap", type=float, default=0.7,
                   help="horovod/ddp: the fraction of the overlap timeline's ideal hiding that is realised "
                        "(bench/projection/timeline.py; 1 the ideal timeline, 0 no overlap)")
    m.add_argument("--max-nodes", type=int, default=1024)
    m.add_argument("--local-threads", type=int, default=0,
                   help="thread count of the 'this machine' profile (default: the largest calibrated)")
    m.add_argument("--profiles", default="", metavar="FILE",
                   help="hardware profiles (default: bench/projection/profiles.json, every figure with its source)")
    m.add_argument("--knl-band", choices=("low", "central", "high"), default="central",
                   help="which end of the Nurion KNL achieved-rate band the curves use")
    m.add_argument("--knl-alpha-us", type=float, default=None, help="override the profile's Omni-Path latency")
    m.add_argument("--knl-bandwidth-gbs", type=float, default=None, help="override the profile's bandwidth")
    p.add_argument("--published", action="store_true",
                   help="reproduce the published scaling points and print the KNL-against-one-GPU answer; no "
                        "calibration needed")
    p.add_argument("--json", default="", metavar="FILE",
                   help="write the published points, the crossover and the 1024-node ratio as JSON")
    p.add_argument("--records", nargs="+", default=[], metavar="FILE",
                   help="measured records: project each run and compare; cuda records add a GPU profile")
    p.add_argument("--cpu-share", nargs="+", default=[], metavar="N=SHARE",
                   help="contention: the CPU use of each rank ((user+sys)/wall, /usr/bin/time) in the measured "
                        "runs of world size N (N:BACKEND for one backend); compute runs at SHARE / "
                        "--calibration-cpu-share of the calibrated speed")
    p.add_argument("--calibration-cpu-share", type=float, default=1.0,
                   help="the CPU use of the calibration process itself (default 1: it had its core)")
    p.add_argument("--emit-records", default="", metavar="OUT.jsonl", help="append projected records here")
    p.add_argument("--plot", default="results/projection.png", help="figure path ('' for none)")
    return p


def check_compute_specs(specs: list[str]) -> str | None:
    """What is wrong with the first bad ``--compute MODEL:SIZE`` (a model that is not registered, a size it
    cannot take, a torchvision model without torchvision), or None: checked before minutes of calibration."""
    for spec in specs:
        model, sep, size = spec.partition(":")
        if not sep or not size.isdigit():
            return f"--compute {spec}: expected MODEL:SIZE, e.g. circpad:64"
        try:
            models.check_image_size(model, int(size))
            models.check_available(model)
        except (ValueError, ImportError) as exc:
            return f"--compute {spec}: {exc}"
    return None


def calibrate(args) -> None:
    entries = []
    for spec in args.compute:
        model, size = spec.split(":")
        size = int(size)
        for threads in args.threads:
            repeats = min(args.repeats, 2) if size >= 224 and model != "compact" else args.repeats
            entries.append(measure_compute(model, size, args.batches or default_batches(model, size),
                                           repeats, threads))
    allreduce = None
    if not args.no_allreduce:
        print(f"  allreduce: mpirun -np 2, 4 B ... {args.ar_max_bytes} B", flush=True)
        allreduce = measure_allreduce(2, args.ar_max_bytes, args.ar_repeats)
    save(args.calibration, {"host": host_info(), "compute": entries, "allreduce": allreduce})
    print(f"calibration written to {args.calibration}")


def local_profile(cal: Calibration, threads: int) -> Profile:
    fits, notes = {}, set()
    for key in {k[:2] for k in cal.compute}:
        fits[key], note = cal.compute_fit(*key, threads)
        notes.add(note)
    scaled = f"; compute {', '.join(sorted(n for n in notes if n))} to {threads}" if any(notes) else ""
    return Profile(name=f"this machine ({threads} thread(s))", system=cal.host.get("cpu_model", "local"),
                   compute=fits, network=cal.network, threads_per_rank=threads,
                   estimate="network: 2 ranks on one host (shared memory), not a cluster interconnect" + scaled)


def knl_profile(cal: Calibration, prof, args) -> Profile:
    """The Nurion KNL node from the profile file: its published achieved rate (a FLOP/s band) over each
    calibrated model's training FLOPs per image, and Omni-Path's latency and bandwidth (central). The rate is
    the fitted one (the study's 25x; bench/projection/published.py, ``fitted``), as in the published answer."""
    prof = published.fitted(prof)
    knl = prof.systems["nurion-knl"]
    net = prof.networks[knl.network]
    rate = knl.achieved_tflops.pick(args.knl_band) * 1e12
    fits = {key: ComputeFit(0.0, rate / flops) for key, flops in cal.flops.items()}
    alpha = args.knl_alpha_us if args.knl_alpha_us is not None else net["latency_us"].central
    bw = args.knl_bandwidth_gbs if args.knl_bandwidth_gbs is not None else net["bandwidth_gbs"].central
    exchange = replace(published.exchange(prof, published.setting_of(prof, "nurion-knl", ""), {}),
                       alpha_s=alpha * 1e-6, bandwidth_Bps=bw * 1e9)
    return Profile(name=f"Nurion KNL ({args.knl_band} published rate)", system="Nurion KNL", compute=fits,
                   network=AllreduceFit(alpha * 1e-6, bw * 1e9), threads_per_rank=KNL_CORES, exchange=exchange,
                   estimate=f"PUBLISHED-RATE PROJECTION: {rate / 1e12:.3g} TFLOP/s per node ({args.knl_band} of "
                            f"{knl.achieved_tflops.low:g}-{knl.achieved_tflops.high:g}, {prof.path}); Omni-Path "
                            f"alpha {alpha:g} us, B {bw:g} GB/s, {exchange.policy} allreduce with Horovod fusion; no "
                            "per-step overhead")


def gpu_profile(records: list[dict]) -> Profile | None:
    gpu = [r for r in records if r["device"] == "cuda" and r["world_size"] == 1 and not r.get("projected")]
    if not gpu:
        return None
    precision = statistics.mode(precision_of(r) for r in gpu)  # one precision per profile, never mixed
    gpu = [r for r in gpu if precision_of(r) == precision]
    fits = {}
    for key in {(r["model"], r["image_size"]) for r in gpu}:
        rates = [r["train_events"] / statistics.median(r["epoch_s"]) for r in gpu
                 if (r["model"], r["image_size"]) == key and r.get("train_events")]
        if rates:
            fits[key] = ComputeFit(0.0, statistics.median(rates))
    return Profile(name=f"one GPU ({gpu[0]['system']}, measured)", system=gpu[0]["system"], compute=fits,
                   network=AllreduceFit(0.0, 1.0), device="cuda", max_nodes=1,
                   estimate="measured images/s of the given records; no scaling", precision=precision)


def cases(args, cal: Calibration, prof) -> list[Case]:
    out = []
    for size in args.image_sizes:
        params = cal.params.get((args.model, size))
        if params is None:
            continue
        w = prof.workloads.get(f"{args.model}-{size}")
        tensors, flops = (), ()
        if w and w.params == params and w.layers:
            counts, flops = layers.backward_order(w.layers)
            tensors, flops = tuple(counts), tuple(flops)
        elif w and w.params == params:
            tensors = w.tensors
        out.append(Case(args.model, size, params, args.global_batch, args.events, args.backend,
                        overlap=args.overlap, tensors=tensors, flops=flops))
    return out


def compact_case(profile: Profile, case: Case, cal: Calibration) -> Case | None:
    """The same projection with the 43k-parameter compact CNN, when it is calibrated at this size."""
    params = cal.params.get(("compact", case.image_size))
    if case.model == "compact" or not params or ("compact", case.image_size) not in profile.compute:
        return None
    return replace(case, model="compact", params=params, tensors=())


def print_curve(profile: Profile, case: Case, small: Case | None, nodes: list[int]) -> list:
    steps = project_curve(profile, case, nodes)
    if not steps:
        return []
    fp16 = project_curve(profile, with_compression(case), nodes)
    compact = project_curve(profile, small, nodes) if small else []
    print(f"\n## {profile.name}: {case.model} {case.image_size}x{case.image_size}, {case.params:,} params "
          f"({case.grad_bytes / 1e6:.1f} MB fp32 gradients), global batch {case.global_batch}, "
          f"{case.events:,} events/epoch" + (f", {case.backend}" if profile.device == "cpu" else ""))
    if profile.estimate:
        print(f"   {profile.estimate}")
    print(f"{'nodes':>6} {'b/rank':>8} {'compute s':>10} {'allred s':>9} {'exposed s':>10} {'epoch s':>9} "
          f"{'speedup':>8} {'eff %':>6} | {'fp16 eff %':>10} | {'compact epoch s':>15} {'eff %':>6}")
    se, se16 = speedup_efficiency(steps), speedup_efficiency(fp16)
    sec = speedup_efficiency(compact) if compact else []
    for i, s in enumerate(steps):
        tail = f"{compact[i].epoch_s:15.3f} {100 * sec[i][1]:6.1f}" if compact else f"{'-':>15} {'-':>6}"
        print(f"{s.nodes:6d} {s.per_rank_batch:8.0f} {s.compute_s:10.4f} {s.allreduce_s:9.4f} "
              f"{s.exposed_s:10.4f} {s.epoch_s:9.2f} {se[i][0]:8.1f} {100 * se[i][1]:6.1f} | "
              f"{100 * se16[i][1]:10.1f} | {tail}")
    return steps


def projected_record(profile: Profile, case: Case, step, preset: str, backend: str, sweep_id: str | None,
                     **extra) -> dict:
    """A record (bench/records.py) of one projected point, marked ``projected``."""
    train_events = step.steps_per_epoch * case.global_batch
    return new_record(
        sweep_id=sweep_id, projected=True,
        label=f"projected by bench.projection ({profile.name}){': ' + profile.estimate if profile.estimate else ''}",
        system=profile.system, preset=preset, backend=backend, world_size=step.ranks,
        nodes=step.nodes, ranks_per_node=profile.ranks_per_node, precision=profile.precision,
        threads_per_rank=profile.threads_per_rank, device=profile.device, model=case.model,
        model_params=case.params, image_size=case.image_size, global_batch=case.global_batch,
        per_rank_batch=step.per_rank_batch, steps_per_epoch=step.steps_per_epoch,
        train_events=train_events, epoch_s=[step.epoch_s], images_per_s=train_events / step.epoch_s,
        compute_s=step.steps_per_epoch * step.compute_s, comm_s=step.steps_per_epoch * step.exposed_s,
        data_wait_s=0.0,
        projection={"allreduce_s_per_step": step.allreduce_s, "overlap": case.overlap,
                    "grad_bytes": case.grad_bytes},
        **extra)


def cpu_shares(pairs: list[str]) -> dict:
    """``--cpu-share 1=0.46 2:horovod=0.28`` -> {"1": 0.46, "2:horovod": 0.28}: per world size (optionally
    per backend) the share of a core each rank got; a run looks up "N:backend", then "N"."""
    out = {}
    for pair in pairs:
        key, _, share = pair.partition("=")
        n, _, backend = key.partition(":")
        try:
            int(n)
            out[key] = float(share)
        except ValueError:
            raise ValueError(f"--cpu-share {pair!r}: expected N=SHARE or N:BACKEND=SHARE, e.g. 2=0.41") from None
        if not out[key] > 0:
            raise ValueError(f"--cpu-share {pair!r}: the share must be positive")
    return out


def project_measured(records: list[dict], cal: Calibration, overlap: float, shares: dict | None = None,
                     cal_share: float = 1.0) -> tuple[list[dict], list[str]]:
    """Project every measured CPU run at its own configuration. Returns (projected records, table lines).

    Contention: with ``shares`` ("N" or "N:backend" -> the CPU use of each rank, (user + sys) / wall, measured
    with /usr/bin/time) and ``cal_share`` (the calibration's own), compute runs at share / cal_share of the
    calibrated speed: a rank that got half a core takes twice as long (docs/projection.md)."""
    shares = shares or {}
    out, lines = [], []
    lines.append(f"{'system':>24} {'backend':>8} {'model':>8} {'px':>4} {'G':>6} {'N':>3} {'thr':>3} "
                 f"{'measured s':>10} {'projected s':>11} {'error %':>8}  note")
    for r in records:
        if r.get("projected") or r["device"] != "cpu":
            continue
        threads = r.get("threads_per_rank") or 1
        try:
            fit, note = cal.compute_fit(r["model"], r["image_size"], threads)
        except KeyError as err:
            lines.append(f"  skipped {r.get('_source', r['run_id'])}: {err}")
            continue
        n = r["world_size"]
        share = shares.get(f"{n}:{r['backend']}", shares.get(str(n)))
        if share is not None:
            fit = fit.scaled(share / cal_share)
            note = (note + "; " if note else "") + f"CPU share {share:g} (calibration {cal_share:g})"
        profile = Profile("measured run", r["system"], {(r["model"], r["image_size"]): fit}, cal.network,
                          threads_per_rank=threads)
        steps = r.get("steps_per_epoch") or r["train_events"] // r["global_batch"]
        backend = r["backend"] if r["backend"] != "none" else "mpi"
        case = Case(r["model"], r["image_size"], r.get("model_params") or cal.params[(r["model"], r["image_size"])],
                    r["global_batch"], steps * r["global_batch"], backend, overlap=overlap)
        step = project_step(profile, case, n)
        measured = statistics.median(r["epoch_s"])
        err = 100 * (step.epoch_s - measured) / measured
        lines.append(f"{r['system'][:24]:>24} {r['backend']:>8} {r['model']:>8} {r['image_size']:4d} "
                     f"{r['global_batch']:6d} {n:3d} {threads:3d} {measured:10.2f} {step.epoch_s:11.2f} "
                     f"{err:+8.1f}  {note}")
        rec = projected_record(profile, case, step, r["preset"], r["backend"], None, validates_run_id=r["run_id"])
        rec["nodes"] = r.get("nodes") or n
        out.append(rec)
    return out, lines


def check_outputs(args) -> None:
    """Every path the command will write can be written (raises OutputPathError naming the flag)."""
    if args.calibrate:
        check_output_dir(os.path.dirname(os.path.abspath(args.calibration)), "--calibration")
    if args.plot:
        check_output_dir(os.path.dirname(os.path.abspath(args.plot)), "--plot")
    if args.emit_records:
        check_output_file(args.emit_records, "--emit-records")
    if args.json:
        check_output_file(args.json, "--json")


def check_inputs(args) -> None:
    """Every file the command will read is a readable file: --records, and --calibration unless this run
    makes it (raises data.files.InputError naming the flag)."""
    for path in args.records:
        check_input_file(path, "--records", empty_ok=True)
    if args.published and not args.calibrate:
        return
    if not args.calibrate:
        try:
            check_input_file(args.calibration, "--calibration")
        except MissingInput as exc:
            raise MissingInput(f"{exc}; run with --calibrate first") from None


def missing_model(args, cal: Calibration) -> str | None:
    """Why ``cal`` cannot project --model at any of --image-sizes, with how to calibrate it; None if it can."""
    if any((args.model, size) in cal.params for size in args.image_sizes):
        return None
    have = ", ".join(sorted(f"{m}:{s}" for m, s in cal.params)) or "nothing"
    return (f"--model {args.model}: {args.calibration} has no calibration of it at "
            f"{', '.join(f'{s}px' for s in args.image_sizes)} (it has {have}); calibrate it with --calibrate "
            f"--compute {args.model}:{args.image_sizes[-1]} plus the entries to keep")


def read_measured(paths: list[str]) -> list[dict]:
    """The records of the --records files (none without them); a line that cannot be used is a warning on
    stderr, and so is a run given twice (counted once). Raises data.files.InputError and
    bench.records.DuplicateRunError."""
    if not paths:
        return []
    records, problems = read_records(paths, "--records")
    records, copies = one_per_run(records)
    problems += copies
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return records


def print_calibration(args, cal: Calibration) -> None:
    """The calibration's compute fits (with their share of the theoretical peak, where the calibration has
    it) and its allreduce fit, on stdout."""
    print(f"calibration {args.calibration}: {cal.host.get('cpu_model')}, compute fits ({args.statistic} of "
          "repeats):")
    peak = cal.host.get("peak_gflops_per_core")  # calibrations before the ceilings have none
    for (model, size, t), fit in sorted(cal.compute.items()):
        flops = cal.flops[(model, size)]
        of_peak = f", {fit.r_max * flops / 1e9 / (peak * t):.0%} of peak" if peak else ""
        print(f"  {model:8s} {size:4d}px {t:2d} thr: t0 {fit.t0_s * 1e3:8.2f} ms, r_max {fit.r_max:9.1f} images/s "
              f"({fit.r_max * flops / 1e9:6.1f} GFLOP/s{of_peak}, {flops / 1e9:.2f} GFLOP/image)")
    if peak:
        print(f"  theoretical peak per core: {peak:.1f} GFLOP/s ({cal.host.get('peak_derivation')})")
    if cal.network:
        print(f"  allreduce (ring fit, 2 ranks on this host): alpha {cal.network.alpha_s * 1e6:.2f} us, "
              f"B {cal.network.bandwidth_Bps / 1e9:.2f} GB/s")


def project_profiles(args, cal: Calibration, prof, profiles: list[Profile]) -> tuple[list, list[dict]]:
    """Every case of the command line on every profile that has it, its curve printed. Returns the curves
    (profile, case, steps, compact case) and the projected records of the profiles that scale."""
    nodes = sweep_sizes(args.max_nodes)
    curves, emitted = [], []
    sweep_id = uuid.uuid4().hex
    paper = args.global_batch == 32768 and args.events == 450_000
    for profile in profiles:
        for case in cases(args, cal, prof):
            if (case.model, case.image_size) not in profile.compute:
                continue
            small = compact_case(profile, case, cal)
            steps = print_curve(profile, case, small, nodes)
            curves.append((profile, case, steps, small))
            if profile.max_nodes == 1:
                continue  # a measured single GPU: its records already are the point; nothing to project
            preset = "paper" if paper and case.image_size == 224 else "custom"
            emitted += [projected_record(profile, case, s, preset, args.backend, sweep_id) for s in steps]
    return curves, emitted


def print_answer(args, prof, rows, before: str = "") -> None:
    """The published points reproduced (``rows``: published.reproduce), the crossover and the 1024-node ratio
    (bench/projection/published.py) on stdout after ``before``, and where --json wrote them."""
    print(before + "\n".join(published.report_lines(prof, rows)))
    if args.json:
        print(f"\nJSON: {args.json}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status (2: bad input, or an
    output that could not be written: each file is whole or as it was)."""
    try:
        return project(build_parser().parse_args(argv))
    except WriteError as exc:
        return fail(str(exc))


def read_profiles(args):
    """The --profiles file (default: the package's) and its published points reproduced (published.reproduce:
    the fits are made here, before any other work). Raises data.files.InputError naming the flag: a path
    that is not a readable file, a file that is not JSON, a bad or missing field, a fit no factor satisfies."""
    if args.profiles:
        check_input_file(args.profiles, "--profiles")
    try:
        prof = load_profiles(args.profiles or None)
        return prof, published.reproduce(prof)
    except ProfileError as exc:
        raise InputError(f"--profiles {args.profiles or 'bench/projection/profiles.json'}: field {exc}") from None


def project(args) -> int:
    """``main`` on parsed flags. Raises data.files.WriteError."""
    try:  # every input and path before the minutes of calibration
        prof, rows = read_profiles(args)
        shares = cpu_shares(args.cpu_share)
        check_outputs(args)
        check_inputs(args)
    except ValueError as exc:  # InputError, OutputPathError, a bad --cpu-share
        return fail(str(exc))
    if args.json:
        write_text(args.json, json.dumps(clean(published.as_json(prof, rows)), indent=1))
    if args.published and not args.calibrate:  # the answer needs no calibration; a full run prints it too
        print_answer(args, prof, rows)
        return 0
    if args.calibrate:
        bad = check_compute_specs(args.compute)
        if bad:
            return fail(bad)
        calibrate(args)
    try:
        cal = Calibration.load(args.calibration, args.statistic)
    except InputError as exc:
        return fail(str(exc))
    missing = missing_model(args, cal)
    if missing:
        return fail(missing)
    try:
        records = read_measured(args.records)
    except (InputError, DuplicateRunError) as exc:
        return fail(str(exc))
    print_calibration(args, cal)
    # This machine at its largest calibrated thread count; KNL from its published achieved rate.
    threads = args.local_threads or (max(k[2] for k in cal.compute) if cal.compute else 1)
    profiles = [local_profile(cal, threads), knl_profile(cal, prof, args)]
    gpu = gpu_profile(records)
    if gpu:
        profiles.append(gpu)
    curves, emitted = project_profiles(args, cal, prof, profiles)
    if records:
        valid, lines = project_measured(records, cal, args.overlap, shares, args.calibration_cpu_share)
        print("\n## projected vs measured (each run at its own configuration; projection has no data wait)")
        print("\n".join(lines))
        emitted += valid
    if args.plot and curves:
        plot_curves(curves, args.plot)
        print(f"\nfigure: {args.plot}")
    if args.emit_records:
        append_whole(args.emit_records, b"".join(record_line(rec) for rec in emitted))
        print(f"{len(emitted)} projected records appended to {args.emit_records}")
    print_answer(args, prof, rows, "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
