"""The trained CNN against the cut-based selection, on the test split, with physical weights.

    python -m bench.evaluate --model-weights results/model.pt [more.pt ...] [--data FILE.h5] [--out DIR]
    mpirun -np N python -m bench.evaluate ...          (the scoring is shared over the ranks)

A model file is what ``bench.strong_scaling --save-model`` writes: the weights and the run's configuration,
so the model and the test split (the same seed and caps as in training) are rebuilt exactly. Writes into
``--out``: ``roc.png`` / ``roc.svg`` (one curve per model file, the cut-based point marked), ``physics.md`` and
``physics.csv`` (one row per model, the study's row last), ``physics.json`` (everything, ROC and cut flow
included), and prints the table. The method is in docs/evaluate.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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

# Fewer unweighted background events than this at the comparison point make the ratio a rough estimate.
FEW_EVENTS = 10


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.evaluate", description=__doc__.split("\n\n")[0],
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        world = init_world()
    except WorldOfOne as exc:  # each task alone in its world: every one of them says so
        return fail(str(exc))
    abort_on_uncaught(world)
    loaded, error = [], None
    try:  # every model file and its events on every rank, before the first collective
        check_args(a)
        torch.set_num_threads(default_threads(a.threads, world))
        loaded = [load(path, a.data) for path in a.model_weights]
    except (UsageError, DataError, OutputPathError) as exc:
        error = str(exc)
    failed = world.failures(error)
    if failed:
        return fail_agreed(world, failed)
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
            return fail_rank(world, f"--model-weights {path}: {exc}")
        label = a.labels[k] if a.labels else f"{state.get('world_size', '?')} rank(s)"
        entries.append({"label": label, "model_file": os.path.abspath(path), "run_id": state.get("run_id"),
                        "data": d.source.describe(), "image_size": cfg.image_size,
                        "split": "all events" if a.all_events else f"test split (seed {cfg.seed})",
                        **cmp.asdict(), "cut_flow": flow})
    if world.is_root:
        report(entries, Path(a.out))
    return 0


def report(entries: list[dict], out: Path) -> None:
    from reports import cnn_vs_cuts as figs

    sizes = {e["image_size"] for e in entries}
    figs.roc_figure(entries, out)
    figs.write_tables(entries, out, image_size=sizes.pop() if len(sizes) == 1 else None)
    with open(out / "physics.json", "w") as f:
        json.dump(entries, f, indent=1)
    print((out / "physics.md").read_text())
    first = entries[0]
    print(f"cut flow on the {first['split']} of {first['data'].get('path', first['data'].get('kind'))}:")
    print(figs.cut_flow_table(first["cut_flow"]))
    for e in entries:
        n = e["cnn_background_events"]
        print(f"{e['label']}: {n} unweighted background events (b = {e['cnn_b']:.4g} at {e['luminosity_fb']:g} "
              f"fb^-1) at the CNN's working point, {e['cut_background_events']} in the signal region; "
              f"efficiency ratio {_pm(e['eff_ratio'], e['eff_ratio_err'])}")
        if min(n, e["cut_background_events"]) < FEW_EVENTS:
            print(f"  warning: fewer than {FEW_EVENTS} background events at the comparison point: the ratio "
                  "rests on a handful of events (see the bootstrap uncertainty); evaluate on more background",
                  file=sys.stderr)
    print(f"written: {out / 'roc.png'}, {out / 'physics.md'}, {out / 'physics.csv'}, {out / 'physics.json'}")


def _pm(v, err) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" + (f" +- {err:.3f} (bootstrap)" if err is not None else "")


if __name__ == "__main__":
    sys.exit(main())
