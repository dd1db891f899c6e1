"""Generation speed, the fast path against the old one, and the parton-level veto's loss.

    python -m benchmarks.bench_generate rates [--events 300] [--path fast|old]
    python -m benchmarks.bench_generate compare [--seconds 150] [--rounds 2] [--save compare.npz]
    python -m benchmarks.bench_generate veto-loss [--events 6000,25000,2000] [--save veto.npz]

One process, one core: every figure is per core (core seconds are the process's CPU time).

* ``rates``: per sample, a fixed number of generated events; events/s before and after the baseline, the
  selection efficiency, Pythia's cross section and the selected cross section (the measurement behind the
  lowest slice edge, docs/data.md).
* ``compare``: the fast and the old path side by side, per QCD slice, alternating in rounds of ``--seconds``
  each (so both see the same machine load): parton-level events, kept events and Kish effective events
  ((sum w)^2 / sum w^2) per core-hour, and the ratios. Then the whole background as each path would make it
  (its own split over the slices, docs/data.md): kept and effective events per core-hour. ``--save`` keeps
  every kept event's jet quantities, image-channel sums and physical weight for ``benchmarks.validate_generate``.
* ``veto-loss``: events generated without the veto, each kept event (HT, Njet, MJ cuts, weighted by
  P(Nb >= 1)) with its parton-level HT; prints, per candidate threshold, the fraction of the selected
  cross section the veto would lose and the fraction of all events it would veto. Re-run it whenever the
  detector, the jets or the baseline change; the threshold in use is data.generation.pythia.VETO.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks import run_main
from data import validation
from data.files import replaced
from data.generation import pythia

SLICE_EDGES = (400.0, 600.0, 800.0, 1100.0, -1.0)  # the slices with enough kept events to time


def _timed(sample, seed, levers, **kw) -> tuple[dict, float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = pythia.generate_chunk(sample, seed, 10**9, 64, levers=levers, **kw)
    return out, time.process_time() - c0, time.perf_counter() - w0


def cmd_rates(a) -> None:
    samples = ([] if a.no_signal else [pythia.SIGNAL]) + pythia.qcd_slices(a.qcd_edges)
    print(f"path {a.path}; {'sample':22s} {'gen':>6s} {'sel':>5s} {'gen/s/core':>10s} {'sel/s/core':>10s} "
          f"{'eff':>8s} {'prefilt':>7s} {'xsec_pb':>10s} {'sel_xsec_pb':>11s} {'+-':>8s}")
    for i, s in enumerate(samples):
        out, cpu, _ = _timed(s, a.seed + i, pythia.PATHS[a.path], max_generated=a.events)
        n, k = out["n_generated"], len(out["gen_weight"])
        sel = out["sigma_pb"] * out["gen_weight"].sum() / n
        err = sel / k ** 0.5 if k else 3 * out["sigma_pb"] / n
        print(f"{s.name:22s} {n:6d} {k:5d} {n / cpu:10.1f} {k / cpu:10.2f} {k / n:8.4f} "
              f"{out['n_prefilter'] / n:7.3f} {out['sigma_pb']:10.4g} {sel:11.4g} {err:8.2g}", flush=True)
    print("+-: statistical error of sel_xsec_pb (with no event selected: the 95 % upper limit, 3 events)")


def _pool(rounds: list[dict]) -> dict:
    """One slice and path over its rounds: pooled cross section, weights and rates."""
    n = sum(r["out"]["n_generated"] for r in rounds)
    sigma = sum(r["out"]["sigma_pb"] * r["out"]["n_generated"] for r in rounds) / n
    g = np.concatenate([r["out"]["gen_weight"] for r in rounds])
    cpu = sum(r["cpu"] for r in rounds)
    parton = sum(r["out"]["n_tried"] + r["out"]["n_vetoed"] for r in rounds)
    w = sigma / n * g
    k = len(g)
    return {"n_generated": n, "parton_events": parton, "kept": k, "cpu": cpu,
            "wall": sum(r["wall"] for r in rounds), "ess_fraction": validation.kish_ess(g) / k if k else 0.0,
            "sel_xsec_pb": float(w.sum()), "sel_xsec_err_pb": float(np.sqrt((w ** 2).sum())), "weight": w,
            "events": {**{q: np.concatenate([r["out"][q] for r in rounds]) for q in
                          ("ht", "njet", "nb", "mj", "lead_jet_pt")},
                       **dict(zip(validation.CHANNEL_SUMS, np.concatenate(
                           [validation.channel_sums(r["out"]["idx"], r["out"]["val"], 64) for r in rounds]).T
                           if k else [np.zeros(0)] * 3))}}


def whole_sample(per_slice: dict, shares: np.ndarray) -> tuple[float, float]:
    """Kept and Kish-effective events per core-hour of a background made with ``shares`` of kept events
    over the slices (``per_slice``: name -> pooled figures), the selected cross sections S_i of
    data.generation.pythia.SELECTED_XSEC_PB: cost sum a_i c_i per kept event, and
    ESS / N = (sum S_i)^2 / sum S_i^2 / (a_i f_i)."""
    names = list(per_slice)
    c = np.array([per_slice[s]["cpu"] / per_slice[s]["kept"] for s in names])
    f = np.array([per_slice[s]["ess_fraction"] for s in names])
    sx = np.array([pythia.SELECTED_XSEC_PB[s] for s in names])
    cost = float((shares * c).sum())
    ess_per_kept = sx.sum() ** 2 / (sx ** 2 / (shares * f)).sum()
    return 3600.0 / cost, 3600.0 * ess_per_kept / cost


def _compare_slice(task: tuple) -> tuple[str, list[dict], list[dict]]:
    """Both paths on one slice, alternating which goes first, ``rounds`` rounds of ``seconds`` each."""
    i, s, rounds, seconds, seed = task
    out = {"old": [], "fast": []}
    for r in range(rounds):
        for path in (("old", "fast") if r % 2 == 0 else ("fast", "old")):
            o, cpu, wall = _timed(s, 1000 * seed + 10 * i + r, pythia.PATHS[path], max_seconds=seconds)
            out[path].append({"out": o, "cpu": cpu, "wall": wall})
    return s.name, out["old"], out["fast"]


def cmd_compare(a) -> None:
    import multiprocessing as mp

    slices = pythia.qcd_slices(a.qcd_edges)
    tasks = [(i, s, a.rounds, a.seconds, a.seed) for i, s in enumerate(slices)]
    with mp.get_context("spawn").Pool(a.workers) as pool:
        results = pool.map(_compare_slice, tasks, chunksize=1)
    pooled = {}
    for name, old, fast in results:
        for path, rounds in (("old", old), ("fast", fast)):
            pooled[(name, path)] = p = _pool(rounds)
            print(f"{name:20s} {path:4s} parton-level {p['parton_events'] / p['cpu'] * 3600:9.0f}/core-h  "
                  f"kept {p['kept']:4d} = {p['kept'] / p['cpu'] * 3600:7.0f}/core-h  "
                  f"ESS fraction {p['ess_fraction']:.2f}  effective "
                  f"{p['kept'] * p['ess_fraction'] / p['cpu'] * 3600:7.0f}/core-h  "
                  f"sel xsec {p['sel_xsec_pb']:.3f} +- {p['sel_xsec_err_pb']:.3f} pb  "
                  f"(cpu {p['cpu']:.0f} s, wall {p['wall']:.0f} s)", flush=True)
        o, f = pooled[(name, "old")], pooled[(name, "fast")]
        if o["kept"] and f["kept"]:
            rk = (f["kept"] / f["cpu"]) / (o["kept"] / o["cpu"])
            rp = f["parton_events"] / f["cpu"] / (o["parton_events"] / o["cpu"])
            print(f"{name:20s} fast/old: parton-level events {rp:.2f}x, kept {rk:.2f}x, "
                  f"effective {rk * f['ess_fraction'] / o['ess_fraction']:.2f}x", flush=True)
    names = [s.name for s in slices]
    if all(pooled[(n, p)]["kept"] for n in names for p in ("old", "fast")) \
            and all(n in pythia.SELECTED_XSEC_PB for n in names):
        res = {}
        for path, split in (("old", "physical"), ("fast", "effective")):
            per = {n: pooled[(n, path)] for n in names}
            measured = {n: (per[n]["cpu"] / per[n]["kept"], per[n]["ess_fraction"]) for n in names}
            shares = pythia.split_shares(slices, split, cost=measured)  # effective: this run's own costs
            res[path] = whole_sample(per, shares)
            print(f"whole background ({', '.join(names)}), {path} path, {split} split "
                  f"{np.round(shares, 3).tolist()}: kept {res[path][0]:.0f}/core-h, "
                  f"effective {res[path][1]:.0f}/core-h")
        print(f"whole background fast/old: kept {res['fast'][0] / res['old'][0]:.2f}x, "
              f"effective {res['fast'][1] / res['old'][1]:.2f}x")
        print("FAST_COST = " + json.dumps({n: [round(pooled[(n, 'fast')]['cpu'] / pooled[(n, 'fast')]['kept'], 3),
                                               round(pooled[(n, 'fast')]['ess_fraction'], 3)] for n in names}))
    if a.save:
        arrays = {}
        for (name, path), p in pooled.items():
            arrays[f"{name}/{path}/weight"] = p["weight"]
            for q, v in p["events"].items():
                arrays[f"{name}/{path}/{q}"] = v
            for q in ("n_generated", "parton_events", "kept", "cpu", "wall", "ess_fraction", "sel_xsec_pb",
                      "sel_xsec_err_pb"):
                arrays[f"{name}/{path}/{q}"] = np.array(p[q])
        with replaced(a.save) as tmp, open(tmp, "wb") as fh:  # a file object: numpy adds no ".npz"
            np.savez(fh, **arrays)
        print(f"kept events saved to {a.save}")


def _veto_loss_slice(task: tuple) -> dict:
    s, n, seed = task
    out, cpu, _ = _timed(s, seed, pythia.Levers(False, True, True), max_generated=n, record_parton=True)
    return {"name": s.name, "n": n, "cpu": cpu, "w": out["sigma_pb"] / out["n_generated"] * out["gen_weight"],
            "parton_ht": out["parton_ht"], "early_ht": out["early_ht"], "all": out["all_parton_ht"]}


def veto_loss_table(parts: list[dict], pairs: list[tuple[float, float]]) -> list[dict]:
    """Per (early threshold, late threshold): the weighted fraction of kept events each slice and all slices
    together would lose, the kept events lost, and the fraction of all events each slice would veto."""
    rows = []
    for te, tl in pairs:
        row = {"early_ht_min": te, "ht_min": tl, "slices": {}}
        lost_w = tot_w = 0.0
        for p in parts:
            low = (p["early_ht"] < te) | (p["parton_ht"] < tl)
            vetoed = (p["all"][:, 0] < te) | (p["all"][:, 1] < tl)
            row["slices"][p["name"]] = {"lost": int(low.sum()), "kept": len(low),
                                        "vetoed": float(vetoed.mean()),
                                        "vetoed_early": float((p["all"][:, 0] < te).mean())}
            lost_w += p["w"][low].sum()
            tot_w += p["w"].sum()
        row["lost_weight_fraction"] = lost_w / tot_w
        rows.append(row)
    return rows


def load_veto_loss(path: str, like: list[dict]) -> list[dict]:
    """The per-slice kept events of an earlier ``veto-loss --save`` (another --seed), for the slices of ``like``.

    Raises SystemExit naming the file when it cannot be read or lacks one of the slices.
    """
    try:
        d = np.load(path)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--add {path}: cannot be read ({exc})") from None
    parts = []
    for p in like:
        keys = [f"{p['name']}/{k}" for k in ("w", "parton_ht", "early_ht", "all")]
        if any(k not in d.files for k in keys):
            raise SystemExit(f"--add {path}: has no slice {p['name']} (saved with other --qcd-edges?)")
        w, parton_ht, early_ht, every = (d[k] for k in keys)
        parts.append({"name": p["name"], "n": len(every), "cpu": 0.0, "w": w, "parton_ht": parton_ht,
                      "early_ht": early_ht, "all": every})
    return parts


def pool_runs(runs: list[list[dict]]) -> list[dict]:
    """Runs of the same slices pooled: kept events concatenated, each run's weights sigma / n_run x g rescaled
    to sigma / (sum of n) x g, so the pool weighs every generated event alike (``n``: events generated)."""
    pooled = []
    for same in zip(*runs):
        total = sum(len(p["all"]) for p in same)
        pooled.append({"name": same[0]["name"], "n": total, "cpu": sum(p["cpu"] for p in same),
                       "w": np.concatenate([p["w"] * len(p["all"]) / total for p in same]),
                       **{k: np.concatenate([p[k] for p in same]) for k in ("parton_ht", "early_ht", "all")}})
    return pooled


def cmd_veto_loss(a) -> None:
    import multiprocessing as mp

    slices = pythia.qcd_slices(a.qcd_edges)
    counts = [int(x) for x in a.events.split(",")]
    if len(counts) != len(slices):
        raise SystemExit(f"--events wants one count per slice ({len(slices)}), got {a.events!r}")
    tasks = [(s, n, 5000 + a.seed + i) for i, (s, n) in enumerate(zip(slices, counts))]
    with mp.get_context("spawn").Pool(a.workers) as pool:
        parts = pool.map(_veto_loss_slice, tasks, chunksize=1)
    for p in parts:
        print(f"{p['name']}: {p['n']} events in {p['cpu']:.0f} core-s, {len(p['w'])} kept (HT, Njet, MJ; weighted "
              f"by P(Nb >= 1)); lowest kept HT at the early scale "
              f"{p['early_ht'].min() if len(p['w']) else float('nan'):.0f} GeV, after the parton level "
              f"{p['parton_ht'].min() if len(p['w']) else float('nan'):.0f} GeV")
    if a.add:
        parts = pool_runs([parts, *[load_veto_loss(f, parts) for f in a.add]])
        print(f"\npooled with {', '.join(a.add)}: " + ", ".join(f"{p['name']} {p['n']} generated, {len(p['w'])} kept"
                                                         for p in parts))
    pairs = [tuple(float(x) for x in t.split(":")) for t in a.thresholds.split(",")]
    rows = veto_loss_table(parts, pairs)
    print(f"\n{'early:late GeV':>15s} {'lost weight':>11s} " + " ".join(f"{p['name']:>30s}" for p in parts))
    print(f"{'':>15s} {'fraction':>11s} " + " ".join(f"{'lost/kept, vetoed (early)':>30s}" for _ in parts))
    for r in rows:
        cells = [f"{c['lost']}/{c['kept']}, {c['vetoed']:.3f} ({c['vetoed_early']:.3f})" for c in r["slices"].values()]
        print(f"{r['early_ht_min']:7.0f}:{r['ht_min']:<7.0f} {r['lost_weight_fraction']:11.5f} "
              + " ".join(f"{c:>30s}" for c in cells))
    w = np.concatenate([p["w"] for p in parts])
    print(f"\nin use: data.generation.pythia.VETO = {pythia.VETO}; {len(w)} kept events, Kish ESS "
          f"{validation.kish_ess(w):.0f}: with none lost, the 95 % upper limit on the lost fraction is about "
          f"3 / ESS = {3 / validation.kish_ess(w):.4f}")
    if a.save:
        with replaced(a.save) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **{f"{p['name']}/{k}": np.asarray(p[k]) for p in parts
                            for k in ("w", "parton_ht", "early_ht", "all")})


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rates", help="per-sample speed and selection efficiency")
    r.add_argument("--events", type=int, default=300, help="generated events per sample")
    r.add_argument("--qcd-edges", type=pythia.parse_edges, default=pythia.QCD_EDGES, help="pT-hat slice edges")
    r.add_argument("--path", choices=tuple(pythia.PATHS), default="fast")
    r.add_argument("--seed", type=int, default=3)
    r.add_argument("--no-signal", action="store_true", help="QCD slices only")
    c = sub.add_parser("compare", help="fast against old path, side by side")
    c.add_argument("--seconds", type=float, default=150.0, help="wall seconds per round, path and slice")
    c.add_argument("--rounds", type=int, default=2, help="rounds per slice (paths alternate first)")
    c.add_argument("--qcd-edges", type=pythia.parse_edges, default=SLICE_EDGES, help="pT-hat slice edges")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--save", help="npz file for the kept events (benchmarks.validate_generate reads it)")
    c.add_argument("--workers", type=int, default=1,
                   help="processes, one slice each at a time (both paths of a slice share one process)")
    v = sub.add_parser("veto-loss", help="what the parton-level veto loses, per threshold")
    v.add_argument("--qcd-edges", type=pythia.parse_edges, default=(300.0, 400.0, 600.0, 800.0, 1100.0))
    v.add_argument("--events", default="20000,25000,6000,2000", help="generated events per slice")
    v.add_argument("--thresholds", default="0:1200,0:1300,0:1400,800:1300,900:1300,1000:1300,1100:1300,1200:1300",
                   help="early:late HT thresholds (GeV) to tabulate")
    v.add_argument("--workers", type=int, default=2, help="processes (one slice each at a time)")
    v.add_argument("--seed", type=int, default=0,
                   help="slice i uses Pythia seed 5000 + seed + i: runs to be pooled (--add) need seeds at least "
                        "the number of slices apart")
    v.add_argument("--save", help="npz file for the kept events' parton-level HT and weights")
    v.add_argument("--add", nargs="+", default=[], metavar="NPZ",
                   help="earlier --save files (other --seed) whose kept events are pooled with this run's")
    a = p.parse_args(argv)
    {"rates": cmd_rates, "compare": cmd_compare, "veto-loss": cmd_veto_loss}[a.cmd](a)


if __name__ == "__main__":
    run_main(main)
