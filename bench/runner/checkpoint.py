"""Per-epoch checkpoints, so that a run killed by a walltime or a node failure continues where it stopped.

Rank 0 writes model, optimizer, epoch results and every rank's random-number state after each epoch
(outside the timed region), to a temporary file renamed over the old one: a checkpoint is whole or absent.
After BatchNorm statistics are averaged the model is the same on every rank, so rank 0's copy serves all.
A resumed run gives the same weights and losses as an uninterrupted one on CPU with the same seed.
"""
from __future__ import annotations

import dataclasses
import os
import zipfile

import torch

from bench.runner.config import Config, UsageError, as_dict
from data.files import InputError, WriteError, check_input_file, replaced

# Fields that may change between a run and its resumption without changing what is computed.
_FREE = {"epochs", "out", "resume", "checkpoint", "save_model", "sweep_id", "system", "prefetch", "target_auc",
         "stop_at_target", "mllog", "amp_why"}


def path_for(cfg: Config, world_size: int) -> str:
    return f"{cfg.checkpoint}.n{world_size}"


def _key(cfg: Config, world_size: int) -> dict:
    """What must match for a run to continue from a checkpoint. --epochs may grow, unless the learning
    rate decays towards the last epoch (--lr-decay): then more epochs would be a different schedule."""
    free = _FREE - ({"epochs"} if cfg.lr_decay != "none" else set())
    return {**{k: v for k, v in as_dict(cfg).items() if k not in free}, "world_size": world_size}


def save(path: str, cfg: Config, world, model, optimizer, epochs: list, aucs: list, losses: list,
         best: dict | None = None) -> None:
    """Collective: gathers the ranks' RNG states; rank 0 writes. ``best``: with --keep best, the epoch,
    loss and weights of the lowest validation loss so far."""
    rng = world.gather(torch.get_rng_state())
    if not world.is_root:
        return
    state = {"key": _key(cfg, world.size), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "epochs": [dataclasses.asdict(e) for e in epochs], "aucs": aucs, "losses": losses, "rng": rng,
             "best": best}
    _save_whole(state, path, "--checkpoint")


class AlreadyRecorded(Exception):
    """--resume found the run finished and its record written: nothing to do (not an error)."""


def mark_recorded(path: str, run_id: str) -> None:
    """Note in the checkpoint that its finished run's record was appended as ``run_id``, so that running
    the same job again with --resume does not record the run twice. Rank 0 only."""
    state = torch.load(path, weights_only=False)
    state["recorded_run_id"] = run_id
    _save_whole(state, path, "--checkpoint")


def check_not_recorded(path: str, cfg: Config, state: dict) -> None:
    """Raise AlreadyRecorded when ``state`` (the checkpoint at ``path``) holds every epoch ``cfg`` asks for
    and its record was written."""
    if state.get("recorded_run_id") and len(state["epochs"]) >= cfg.epochs:
        raise AlreadyRecorded(f"{path}: the run finished its {cfg.epochs} epochs and was recorded as run "
                              f"{state['recorded_run_id']}; nothing to do (raise --epochs to train on)")


def _save_whole(state: dict, path: str, flag: str) -> None:
    """torch.save to a temporary file renamed over ``path``: the file is whole or as it was. Raises
    data.files.WriteError naming ``flag`` and ``path`` (a full disk, a quota)."""
    try:
        with replaced(path) as tmp, open(tmp, "wb") as fh:  # a Python file: a full disk is an OSError
            torch.save(state, fh)
    except WriteError as exc:
        raise exc.named(flag) from None


def load(path: str, cfg: Config, world) -> dict | None:
    """The checkpoint to continue from, or None if there is none. Every rank reads it."""
    if not os.path.lexists(path):
        return None
    try:
        check_input_file(path, "--checkpoint")
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not zipfile.is_zipfile(path):
        raise UsageError(f"--checkpoint {path}: not a checkpoint of bench.strong_scaling (not a PyTorch archive: "
                         "another format, or cut short); remove it or give another path")
    try:
        state = torch.load(path, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the same user error
        raise UsageError(f"--checkpoint {path}: cannot be read ({exc})") from None
    want = _key(cfg, world.size)
    diff = sorted(k for k in set(want) | set(state["key"]) if want.get(k) != state["key"].get(k))
    if diff:
        raise UsageError(f"--checkpoint {path} was made with a different configuration "
                         f"({', '.join(diff)}); remove it or match those flags")
    torch.set_rng_state(state["rng"][world.rank])
    return state


MODEL_FORMAT = "multijet-bench-model"


def model_path(cfg: Config, world_size: int, sweep: bool) -> str:
    """``--save-model`` for a run of ``world_size`` ranks (``run_path``)."""
    return run_path(cfg.save_model, world_size, sweep)


def run_path(path: str, world_size: int, sweep: bool) -> str:
    """A per-run output path (``--save-model``, ``--mllog``) for a run of ``world_size`` ranks: ``{ranks}`` in
    the path is replaced; in a sweep without it, ``-<N>ranks`` goes before the suffix so the sweep's points do
    not overwrite each other. An empty path (no such output) stays empty: it never becomes ``-<N>ranks``.
    A path that names a directory (ending in ``/``) raises ValueError; the flag checks of
    ``bench.outputs.check_output_file`` refuse it before any work."""
    if not path:
        return path
    if path.endswith(("/", os.sep)):
        raise ValueError(f"{path}: names a directory, not a file")
    if "{ranks}" in path:
        return path.replace("{ranks}", str(world_size))
    if not sweep:
        return path
    root, ext = os.path.splitext(path)
    return f"{root}-{world_size}ranks{ext}"


class ModelNotSaved(Exception):
    """The --save-model file could not be written after the run was measured (rank 0): ``record`` is the
    run's record, which stands and is kept; ``error`` the data.files.WriteError naming the file."""

    def __init__(self, record: dict, error: WriteError):
        super().__init__(str(error))
        self.record, self.error = record, error


def save_model(path: str, cfg: Config, model, world_size: int, run_id: str, data: dict) -> None:
    """The final weights with what ``bench.evaluate`` needs to rebuild the model and its test split, whole
    or not at all. Raises data.files.WriteError naming --save-model."""
    state = {"format": MODEL_FORMAT, "version": 1, "state_dict": model.state_dict(), "config": as_dict(cfg),
             "world_size": world_size, "run_id": run_id, "data": data}
    _save_whole(state, path, "--save-model")


def load_model(path: str) -> dict:
    """A ``--save-model`` file as a dict (``state_dict``, ``config``, ``world_size``, ``run_id``, ``data``).

    Raises UsageError naming the file when it is missing or not such a file.
    """
    try:
        check_input_file(path, "--model-weights")
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; torch.load's own message misleads
        raise UsageError(f"--model-weights {path}: not a model file written by bench.strong_scaling --save-model "
                         "(not a PyTorch archive: another format, or cut short)")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UsageError(f"--model-weights {path}: cannot be read ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise UsageError(f"--model-weights {path}: not a model file written by bench.strong_scaling "
                         "--save-model (it carries the configuration the evaluation needs)")
    return state
