"""Generation speed per core and selection efficiency per sample (signal and each QCD pT-hat slice).

    python -m benchmarks.bench_generate [--events 300] [--qcd-edges 300,400,600,800,1100,inf]

One process, one core: every figure is per core. For each sample it generates a fixed number of events
(the chunk code of data.generation.generate, pile-up off) and prints events/s before and after the baseline, the
selection efficiency, Pythia's cross section and the selected cross section (xsec x efficiency): the last
column is what a slice adds to the selected background, the measurement behind the lowest slice edge.
"""
from __future__ import annotations

import argparse
import time

from data.generation import pythia


def measure(sample: pythia.Sample, events: int, seed: int) -> dict:
    t0 = time.perf_counter()
    out = pythia.generate_chunk(sample, seed, 10**9, 64, max_generated=events)
    dt = time.perf_counter() - t0
    n, k = out["n_generated"], len(out["gen_weight"])
    return {"sample": sample.name, "generated": n, "selected": k, "seconds": dt, "gen_per_s": n / dt,
            "sel_per_s": k / dt, "efficiency": k / n, "xsec_pb": out["sigma_pb"],
            "selected_xsec_pb": out["sigma_pb"] * k / n, "prefilter_pass": out["n_prefilter"] / n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=300, help="generated events per sample")
    p.add_argument("--qcd-edges", type=pythia.parse_edges, default=pythia.QCD_EDGES, help="pT-hat slice edges")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--no-signal", action="store_true", help="QCD slices only")
    a = p.parse_args()
    samples = ([] if a.no_signal else [pythia.SIGNAL]) + pythia.qcd_slices(a.qcd_edges)
    print(f"{'sample':22s} {'gen':>6s} {'sel':>5s} {'gen/s/core':>10s} {'sel/s/core':>10s} {'eff':>8s} "
          f"{'prefilt':>7s} {'xsec_pb':>10s} {'sel_xsec_pb':>11s} {'+-':>8s}")
    for i, s in enumerate(samples):
        r = measure(s, a.events, a.seed + i)
        if r["selected"]:
            err = r["selected_xsec_pb"] / r["selected"] ** 0.5
        else:
            err = 3 * r["xsec_pb"] / r["generated"]
        print(f"{r['sample']:22s} {r['generated']:6d} {r['selected']:5d} {r['gen_per_s']:10.1f} "
              f"{r['sel_per_s']:10.2f} {r['efficiency']:8.4f} {r['prefilter_pass']:7.3f} {r['xsec_pb']:10.4g} "
              f"{r['selected_xsec_pb']:11.4g} {err:8.2g}", flush=True)
    print("+-: statistical error of sel_xsec_pb (with no event selected: the 95 % upper limit, 3 events)")


if __name__ == "__main__":
    main()
