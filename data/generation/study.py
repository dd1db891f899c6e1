"""The study sample: 100,000 RPV gluino + 100,000 QCD events at 64x64, made by one resumable command.

    python -m data.generation.study [--out results/study/study64.h5] [--workers N]

It runs ``data.generation.generate`` with the fixed recipe below (the fast path, the 'effective' split of
the background over the pT-hat slices, seed 31, chunks of 500 kept events), so the same command on a new
file remakes the same events chunk for chunk, bit for bit, whatever the number of workers. Interrupted
(Ctrl-C, SIGTERM, a session's end, a full disk), it leaves every committed chunk in place; run it again to
go on. A finished file is left alone. At the end it prints the file's sample table and its split for
training (``--split 0.55,0.1,0.35`` of bench.strong_scaling: 110,000 training, 20,000 validation and 70,000
test events, 35,000 of them QCD: about 42 unweighted background events expected in the cuts' signal
region, fewer than 30 in about 2% of samples (Poisson; the 0.12% itself rests on 18 events);
docs/data.md, 'The study sample').

The file keeps every event's jets (format version 3), so the b-tag channel can be painted from it.
Cost on the project's 2-core machine: docs/data.md, 'The study sample'.
"""
from __future__ import annotations

import argparse
import os
import sys

import h5py

from data.generation import generate

RECIPE = {"signal_events": 100_000, "background_events": 100_000, "image_size": 64, "seed": 31,
          "chunk": 500}
DEFAULT_OUT = "results/study/study64.h5"
SPLIT = "0.55,0.1,0.35"  # the split the study's training runs use (bench.strong_scaling --split)


def generate_argv(recipe: dict, out: str, workers: int) -> list[str]:
    """The data.generation.generate command line of ``recipe`` into ``out``."""
    return ["--signal-events", str(recipe["signal_events"]), "--background-events",
            str(recipe["background_events"]), "--image-size", str(recipe["image_size"]),
            "--seed", str(recipe["seed"]), "--chunk", str(recipe["chunk"]), "--workers", str(workers),
            "--path", "fast", "--out", out]


def summary(path: str) -> list[str]:
    """Lines describing the file: per sample kept and generated events, cross section, Kish effective size."""
    from data.store import physical_weights, sample_table
    from data.validation import kish_ess

    with h5py.File(path, "r") as f:
        t = sample_table(f)
        n = int(f.attrs["committed_events"])
        s = f["events/sample"][:n]
        w = physical_weights(s, f["events/gen_weight"][:n], t)
    lines = [f"{path}: {n} events committed",
             f"{'sample':22s} {'kept':>8s} {'generated':>10s} {'xsec (pb)':>11s} {'Kish ESS':>9s}"]
    for i, name in enumerate(t["name"]):
        mine = w[s == i]
        lines.append(f"{name:22s} {t['n_selected'][i]:8d} {t['n_generated'][i]:10d} {t['xsec_pb'][i]:11.4g} "
                     f"{kish_ess(mine) if len(mine) else 0:9.0f}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data.generation.study", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="the HDF5 store to create or continue")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="worker processes")
    return p


def main(argv: list[str] | None = None, recipe: dict | None = None) -> int:
    """Make or continue the study sample; ``recipe`` (tests) replaces RECIPE. Returns generate's exit
    status (0 done, 130 interrupted, 1 a full disk; bad flags exit 2 before anything is written)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    except OSError as e:
        parser.error(f"--out {a.out}: cannot make its folder ({e.strerror or e})")
    rc = generate.main(generate_argv(recipe or RECIPE, a.out, a.workers))
    if rc == 0:
        print("\n".join(summary(a.out)))
        print(f"train on it with: --data {a.out} --split {SPLIT} --train-events 0 --val-events 0")
    return rc


if __name__ == "__main__":
    sys.exit(main())
