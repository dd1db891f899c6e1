"""The trained CNN against the cut-based selection, on the test split, with physical weights: the numbers.

    python -m bench.evaluate --model-weights results/model.pt [more.pt ...] [--data FILE.h5] [--out DIR]
    mpirun -np N python -m bench.evaluate ...          (the scoring is shared over the ranks)

A model file is what ``bench.strong_scaling --save-model`` writes: the weights and the run's configuration,
so the model and the test split (the same seed and caps as in training) are rebuilt exactly. Writes
``physics.json`` into ``--out`` (one entry per model file: the comparison, its ROC and the cut flow) and prints
one line per model. ``python -m reports.physics`` takes the same flags, runs this evaluation and draws from its
entries the ROC figure and the tables; this module draws nothing. The method is in docs/evaluate.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import models
from bench import physics
from data.errors import fail, fail_agreed, fail_rank
from bench.outputs import OutputPathError, make_output_dir
from bench.runner.checkpoint import load_model
from bench.runner.comm import WorldOfOne, abort_on_uncaught, init_world
from bench.runner.config import UsageError, from_dict
from bench.runner.data_setup import open_data
from bench.runner.environment import default_threads
from bench.runner.train import score_events
from data.base import DataError
from data.files import WriteError, clean, write_text

# Fewer unweighted background events than this at the comparison point make the ratio a rough estimate.
FEW_EVENTS = 10


@dataclass
class Evaluation:
    """What one evaluation hands on: ``code`` the exit status (0: ``entries`` are complete on the root rank),
    ``entries`` one dict per model file (the fields of ``physics.Comparison.asdict`` plus label, model_file,
    run_id, data, image_size, split and cut_flow), ``out`` the checked --out directory, ``is_root`` whether
    this rank writes."""
    code: int
    entries: list[dict]
    out: Path
    is_root: bool


def build_parser(prog: str = "python -m bench.evaluate", description: str = "") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description or __doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model-weights", nargs="+", required=True, metavar="FILE",
                   help="model files written by bench.strong_scaling --save-model (one ROC curve each)")
    p.add_argument("--data", default="",
                   help="event file to evaluate on (default: the file each model was trained on)")
    p.add_argument("--all-events", action="store_true",
                   help="score every event of --data instead of the test split (only for a file the models "
                        "never saw in training)")
    p.add_argument("--labels", nargs="+", default=None, help="legend text per model file (default: its ranks)")
    p.add_argument("--luminosity", type=float, default=physics.LUMINOSITY_FB, help="integrated luminosity in fb^-1")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates for the uncertainties (0: none)")
    p.add_argument("--batch", type=int, default=256, help="images per forward pass")
    p.add_argument("--threads", type=int, default=0, help="torch threads per rank (0: the node's usable cores / its ranks)")
    p.add_argument("--out", default="results/evaluation", help="directory for the figure and tables")
    return p


def check_args(a: argparse.Namespace) -> None:
    if a.labels is not None and len(a.labels) != len(a.model_weights):
        raise UsageError(f"--labels gives {len(a.labels)} labels for {len(a.model_weights)} --model-weights files")
    for flag, v in (("--luminosity", a.luminosity), ("--batch", a.batch)):
        if v <= 0:
            raise UsageError(f"{flag} must be positive, got {v}")
    for flag, v in (("--bootstrap", a.bootstrap), ("--threads", a.threads)):
        if v < 0:
            raise UsageError(f"{flag} must not be negative, got {v}")
    if a.all_events and not a.data:
        raise UsageError("--all-events needs --data: the training file's every event includes training events")
    seen = {}
    for path in a.model_weights:  # one model given twice would be two rows of one run
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"--model-weights {path}: given twice (also as {seen[key]}); give each model once")
        seen[key] = path
    make_output_dir(a.out, "--out")


def load(path: str, data: str):
    """(model, config, events to score, source, model file dict) for one model file."""
    state = load_model(path)
    cfg = from_dict({**state["config"], **({"data": data} if data else {})})
    trained_on = state.get("data", {})
    d = open_data(cfg)
    if not data and trained_on.get("n_events") not in (None, len(d.source)):
        raise UsageError(f"--model-weights {path}: trained when {cfg.data} held {trained_on['n_events']} events; "
                         f"it now holds {len(d.source)}, so the split differs and test events could be training "
                         "events. Evaluate on a file the model never saw with --data FILE --all-events")
    net = models.from_config(cfg)
    try:
        net.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise UsageError(f"--model-weights {path}: weights do not fit model {cfg.model} at "
                         f"{cfg.image_size}x{cfg.image_size}: {str(exc).splitlines()[0]}") from None
    return net, cfg, d, state


def check_runs_once(paths: list[str], states: list[dict]) -> None:
    """Each model file is another run: two files of one ``run_id`` (a copy) raise UsageError naming both."""
    first: dict[str, str] = {}
    for path, state in zip(paths, states):
        run_id = state.get("run_id")
        if run_id and run_id in first:
            raise UsageError(f"--model-weights {path}: the same run ({run_id}) as {first[run_id]}; give each run once")
        first.setdefault(run_id, path)


def run_evaluation(argv: list[str] | None, prog: str = "python -m bench.evaluate",
                   description: str = "") -> Evaluation:
    """Parse ``argv``, load every model file on every rank, score its events (shared over the ranks) and
    compare with the cuts. Bad input gives ``code`` 2 on every rank with the message printed (argparse's
    own errors exit 2 through SystemExit); nothing is written here."""
    a = build_parser(prog, description).parse_args(argv)
    try:
        world = init_world()
    except WorldOfOne as exc:  # each task alone in its world: every one of them says so
        return Evaluation(fail(str(exc)), [], Path(a.out), False)
    abort_on_uncaught(world)
    loaded, error = [], None
    try:  # every model file and its events on every rank, before the first collective
        check_args(a)
        torch.set_num_threads(default_threads(a.threads, world))
        loaded = [load(path, a.data) for path in a.model_weights]
        check_runs_once(a.model_weights, [state for *_, state in loaded])
    except (UsageError, DataError, OutputPathError) as exc:
        error = str(exc)
    failed = world.failures(error)
    if failed:
        return Evaluation(fail_agreed(world, failed), [], Path(a.out), world.is_root)
    entries = []
    for k, (path, (net, cfg, d, state)) in enumerate(zip(a.model_weights, loaded)):
        indices = np.arange(len(d.source)) if a.all_events else d.split.test
        try:
            scored = score_events(net, d.source, indices, world, torch.device("cpu"), a.batch)
            if scored is None:
                continue
            idx, scores = scored
            cmp, flow = physics.on_source(d.source, idx, scores, a.luminosity, a.bootstrap, seed=k)
        except (DataError, ValueError) as exc:  # may be this rank's alone (rank 0 compares): end every rank
            return Evaluation(fail_rank(world, f"--model-weights {path}: {exc}"), [], Path(a.out), world.is_root)
        label = a.labels[k] if a.labels else f"{state.get('world_size', '?')} rank(s)"
        entries.append({"label": label, "model_file": os.path.abspath(path), "run_id": state.get("run_id"),
                        "data": d.source.describe(), "image_size": cfg.image_size,
                        "split": "all events" if a.all_events else f"test split (seed {cfg.seed})",
                        **cmp.asdict(), "cut_flow": flow})
    return Evaluation(0, entries, Path(a.out), world.is_root)


def main(argv: list[str] | None = None) -> int:
    ev = run_evaluation(argv)
    if ev.code == 0 and ev.is_root:
        try:
            write_entries(ev.entries, ev.out)
        except WriteError as exc:  # rank 0 alone writes, after the last collective: the others have ended
            return fail(str(exc))
        summarize(ev.entries)
        print(f"written: {ev.out / 'physics.json'} (python -m reports.physics, same flags, also draws the ROC "
              "and the tables)")
    return ev.code


def write_entries(entries: list[dict], out: Path) -> Path:
    """Write the entries to ``out/physics.json`` (indented JSON), whole or not at all; returns the path.
    Raises data.files.WriteError."""
    path = out / "physics.json"
    write_text(path, json.dumps(clean(entries), indent=1))
    return path


def summarize(entries: list[dict]) -> None:
    """One line per entry on stdout (background counts, efficiency ratio); a warning on stderr for an entry
    whose comparison point holds fewer than FEW_EVENTS unweighted background events."""
    for e in entries:
        n = e["cnn_background_events"]
        print(f"{e['label']}: {n} unweighted background events (b = {e['cnn_b']:.4g} at {e['luminosity_fb']:g} "
              f"fb^-1) at the CNN's working point, {e['cut_background_events']} in the signal region; "
              f"efficiency ratio {_pm(e['eff_ratio'], e['eff_ratio_err'])}")
        if min(n, e["cut_background_events"]) < FEW_EVENTS:
            print(f"  warning: fewer than {FEW_EVENTS} background events at the comparison point: the ratio "
                  "rests on a handful of events (see the bootstrap uncertainty); evaluate on more background",
                  file=sys.stderr)


def _pm(v, err) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" + (f" +- {err:.3f} (bootstrap)" if err is not None else "")


if __name__ == "__main__":
    sys.exit(main())
