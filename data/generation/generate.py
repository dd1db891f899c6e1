"""Generate a training file of real simulated events: RPV gluino signal against QCD multi-jet background.

    python -m data.generation.generate --signal-events 1000 --background-events 1000 --image-size 64 --out train.h5

Events are made by Pythia 8 in worker processes, seen by a CMS-like detector (data/generation/detector.py), clustered
into jets by fastjet, and kept only if they pass the baseline; the counts asked for are of kept events.
The background is split over the QCD pT-hat slices (``--qcd-edges``, ``--background-split``); every event
carries its slice's physical weight, so the weighted mixture of slices is physical whatever the split.

``--path fast`` (the default) makes QCD several times cheaper without moving the physics: a parton-level
veto, b-tag weighting (a kept event's generator weight is its probability of at least one b tag), a
vectorised event read and a split over the slices by effective events per core-second
(data.generation.pythia.Levers; docs/data.md, 'The fast path', has the measurements and the validation).
``--path old`` is the generator before it. The levers and the veto's cuts and measured loss are written
into the file's ``meta``.

The file (data/store.py) is written chunk by chunk, each chunk committed by moving a counter written last.
A run that is killed continues where it stopped when the same command is run again; ``--signal-events`` and
``--background-events`` may grow between runs (more chunks are added). A finished file is left alone.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import sys
import time

import numpy as np
from tqdm import tqdm

from data.generation import jets, pythia
from data.errors import fail
from data.files import OutputPathError, WriteError, check_output_file
from data.store import StoreWriter

_counter = None  # shared count of selected events, for the progress bar (set in each worker)


def _init_worker(counter) -> None:
    global _counter
    _counter = counter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    with pythia._quiet_stdout():  # fastjet prints its banner on the first clustering: do it here, muted
        jets.cluster([np.array([[1.0, 0.0, 0.0, 1.0]])], jets.JET_R, 0.0)


def _bump(n: int) -> None:
    with _counter.get_lock():
        _counter.value += n


def _run_task(task: tuple) -> tuple:
    sample_i, sample, chunk, n, seed, image_size, pileup, path = task
    out = pythia.generate_chunk(sample, pythia.chunk_seed(seed, sample_i, chunk), n, image_size,
                                pileup=pileup, progress=_bump, levers=pythia.PATHS[path])
    return sample_i, chunk, out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data.generation.generate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--signal-events", type=int, required=True, help="signal events to keep (after baseline)")
    p.add_argument("--background-events", type=int, required=True,
                   help="QCD events to keep (after baseline), split over the pT-hat slices")
    p.add_argument("--image-size", type=int, default=64, help="image height = width; divisible by 8")
    p.add_argument("--out", required=True, help="HDF5 file to create or continue")
    p.add_argument("--seed", type=int, default=1, help="run seed; chunk seeds derive from (seed, sample, chunk)")
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="worker processes")
    p.add_argument("--pileup", type=float, default=0.0, help="mean pile-up interactions (0 = off)")
    p.add_argument("--chunk", type=int, default=256, help="kept events per chunk (unit of work and commit)")
    p.add_argument("--path", choices=tuple(pythia.PATHS), default="fast",
                   help="'fast': QCD parton-level veto, b-tag weighting and the vectorised event read "
                        "(docs/data.md, 'The fast path'); 'old': the generator before it, for comparison")
    p.add_argument("--background-split", choices=pythia.SPLITS, default=None,
                   help="share of --background-events per slice: 'effective' (default with --path fast) the "
                        "most effective events per core-second, 'physical' (default with --path old) in "
                        "proportion to the slice's selected cross section, 'even' the same count per slice "
                        "(custom --qcd-edges use 'even')")
    p.add_argument("--qcd-edges", type=pythia.parse_edges, default=pythia.QCD_EDGES,
                   help="QCD pT-hat slice edges in GeV, comma separated, last may be inf")
    return p


def check_args(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Reject bad values with exit status 2 and a message naming the flag."""
    if a.image_size <= 0 or a.image_size % 8:
        p.error(f"--image-size must be a positive multiple of 8, got {a.image_size}")
    for flag, v in (("--signal-events", a.signal_events), ("--background-events", a.background_events)):
        if v < 0:
            p.error(f"{flag} must be >= 0, got {v}")
    if a.signal_events == 0 and a.background_events == 0:
        p.error("--signal-events and --background-events are both 0: no event to generate")
    if a.workers < 1:
        p.error(f"--workers must be >= 1, got {a.workers}")
    if a.chunk < 1:
        p.error(f"--chunk must be >= 1, got {a.chunk}")
    if a.pileup < 0:
        p.error(f"--pileup must be >= 0, got {a.pileup}")
    try:
        check_output_file(a.out, "--out")
    except OutputPathError as e:
        p.error(str(e))


def plan(store: StoreWriter, samples: list, targets: list[int], a: argparse.Namespace) -> list[tuple]:
    """Tasks still to do: chunks of each sample up to its target, after what the file already holds.

    Chunks are numbered on from the last committed one, so a resumed run makes exactly the chunks an
    uninterrupted run would have made next. Samples are interleaved so all advance together.
    """
    per_sample = []
    for sample, target in zip(samples, targets):
        si = store.sample_index(sample.name, sample.label)
        remaining = max(0, target - store.selected(si))  # a file holding more than asked is left as is
        first = max(store.committed_chunks(si), default=-1) + 1
        sizes = [a.chunk] * (remaining // a.chunk) + ([remaining % a.chunk] if remaining % a.chunk else [])
        per_sample.append([(si, sample, first + k, n, a.seed, a.image_size, a.pileup, a.path)
                           for k, n in enumerate(sizes)])
    tasks = []
    for k in range(max((len(t) for t in per_sample), default=0)):
        tasks += [t[k] for t in per_sample if k < len(t)]
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    check_args(parser, a)
    slices = pythia.qcd_slices(a.qcd_edges)
    samples = [pythia.SIGNAL] + slices
    split = a.background_split or ("effective" if a.path == "fast" else "physical")
    share = pythia.split_background(a.background_events, slices, split)
    targets = [a.signal_events] + share
    meta = {"generator": "pythia8mc", "seed": a.seed, "pileup": a.pileup, "qcd_edges": list(a.qcd_edges),
            "chunk": a.chunk, "path": a.path, "levers": pythia.PATHS[a.path].to_meta(),
            "background_split": split}
    try:
        store = StoreWriter(a.out, a.image_size, chunk_events=a.chunk, meta=meta, jets=True)
    except (OSError, ValueError) as e:
        parser.error(f"--out {a.out}: {e}")
    try:
        with store:
            old = store.meta
            old.setdefault("path", "old")  # files from before the fast path
            for key, flag in (("seed", "--seed"), ("pileup", "--pileup"), ("qcd_edges", "--qcd-edges"),
                              ("chunk", "--chunk"), ("path", "--path")):
                if key in old and old[key] != meta[key]:
                    parser.error(f"--out {a.out} was made with {flag} {old[key]}, not {meta[key]}; "
                                 f"use the same value to continue it, or a new file")
            def cuts(levers: dict) -> dict:  # the levers and veto cuts; the recorded loss figures may be updated
                return {k: v for k, v in levers.items() if k != "veto_loss"}
            if "levers" in old and cuts(old["levers"]) != cuts(meta["levers"]):
                parser.error(f"--out {a.out} was made by a fast path with other levers or veto cuts "
                             f"({old['levers']}); continue it with the harness version that made it, or use a "
                             f"new file")
            tasks = plan(store, samples, targets, a)
            if not tasks:
                print(f"{a.out}: already holds at least the {a.signal_events} signal and {a.background_events} "
                      f"background events asked for; nothing to do")
                return 0
            return _run(store, tasks, a)
    except WriteError as exc:  # the store's last flush on closing it
        return fail(f"{exc.named('--out')}: run the same command again once there is room to continue")


def _run(store: StoreWriter, tasks: list[tuple], a: argparse.Namespace) -> int:
    stop = {"now": False}

    def on_signal(signum, _frame):  # finish the chunk being written, then leave a consistent file
        stop["now"] = True

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    counter = mp.get_context("spawn").Value("q", 0)
    total = sum(t[3] for t in tasks)
    t0 = time.perf_counter()
    workers = min(a.workers, len(tasks))
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(counter,)) as pool, \
            tqdm(total=total, unit="ev", desc=f"generating {a.out}", file=sys.stderr) as bar:
        results = pool.imap(_run_task, tasks)  # in task order: chunks commit in the planned order
        done, failed = 0, None
        while done < len(tasks) and not stop["now"]:
            try:
                si, chunk, out = results.next(timeout=0.5)
            except mp.TimeoutError:
                bar.update(counter.value - bar.n)
                continue
            try:
                store.append(si, chunk, out, n_generated=out["n_generated"], sigma_pb=out["sigma_pb"])
            except WriteError as exc:  # a full disk: the chunks committed before stay, the next run continues
                failed = exc
                break
            done += 1
            bar.update(counter.value - bar.n)
        if stop["now"] or failed:
            pool.terminate()
    for s, h in old_handlers.items():
        signal.signal(s, h)
    if failed:
        return fail(f"{failed.named('--out')}; {done} of {len(tasks)} chunks of this run were committed: run "
                    "the same command again once there is room to continue")
    if stop["now"]:
        print(f"interrupted after {done} of {len(tasks)} chunks; {store.committed} events are committed "
              f"in {a.out}; run the same command again to continue", file=sys.stderr)
        return 130
    print(f"{a.out}: {store.committed} events committed ({total} new in "
          f"{time.perf_counter() - t0:.1f} s with {workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
