"""The run record: its schema, one writer and one reader. Torch-free, MPI-free.

One JSON object per run, on one line, appended to a JSON-lines file (``--out``). ``FIELDS`` lists every
field with its JSON type, unit and meaning; ``docs/records.md`` carries the same table (``python -m
bench.records`` prints it, and a test checks the two agree). ``new_record`` builds a record through the
schema (the runner and the projection both do), ``append_record`` writes it whole or not at all, and
``read_records`` is the one reader: every line it cannot use comes back as a ``Problem`` (file, line, why)
and the rest of the file is still read.

Writing: one ``write()`` on a descriptor opened with O_APPEND, under an exclusive ``flock`` (two jobs
appending to the same file never interleave), then ``fsync``; a write that fails (a full disk) is cut back,
so the file keeps its earlier bytes, and the runner keeps the record aside (``keep_aside``) for ``python -m
bench.records add``. Reading: a run is one ``run_id``; ``one_per_run`` keeps one copy of a run given twice
(a records file copied and appended to) and refuses copies that disagree.
"""
from __future__ import annotations

import json
import math
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from data.files import WriteError, append_whole, check_input_file, clean, write_bytes

SCHEMA_VERSION = 1
SCHEMA_VERSIONS = (1,)  # versions this reader understands


@dataclass(frozen=True)
class Field:
    """One field of a record. ``kind``: ``int``, ``float``, ``str``, ``bool``, ``object``, ``list of
    float``, each optionally ``... or null``. ``required``: a record without it is left out by readers."""

    name: str
    kind: str
    unit: str
    required: bool
    meaning: str
    present: str = ""  # when the field is written, if not in every measured run's record


FIELDS: tuple[Field, ...] = (
    Field("schema_version", "int", "", True,
          "1"),
    Field("run_id", "str", "", True,
          "unique id of this run (hex)"),
    Field("sweep_id", "str or null", "", False,
          "shared by the records of one `--sweep`"),
    Field("timestamp", "str", "ISO 8601 UTC", False,
          "ISO 8601, UTC, end of run"),
    Field("git_rev", "str", "", False,
          "git revision of the harness (`unknown` outside a checkout)"),
    Field("system", "str", "", True,
          "name of the machine kind, from `--system` (default: the CPU model or GPU name)"),
    Field("preset", "str", "", True,
          "`quick`, `paper` or `custom`"),
    Field("label", "str", "", False,
          "a human note; `quick` runs say they are smoke-sized, not benchmarks"),
    Field("config", "object", "", False,
          "the full resolved configuration (every flag of `bench.strong_scaling`)"),
    Field("precision_why", "str", "", False,
          "how the precision was chosen: `asked: --amp X`, or `auto: ...` with the reason (`--amp auto`)"),
    Field("precision", "str", "", False,
          "arithmetic precision of the training step: `fp32`, `bf16` or `fp16` (`config.amp` resolved; readers "
          "take it from `config.amp` in records without it, `fp32` when neither is there)"),
    Field("backend", "str", "", True,
          "`none` (one process), `mpi`, `ddp`, `horovod`"),
    Field("world_size", "int", "ranks", True,
          "ranks in this run"),
    Field("nodes", "int", "hosts", False,
          "distinct hosts among those ranks"),
    Field("ranks_per_node", "int", "ranks", False,
          "largest number of ranks on one host"),
    Field("cores_available", "int", "cores", False,
          "cores this run's node (rank 0's) lets its ranks use together: their CPU affinities, capped by a cgroup CPU quota; `threads_per_rank` defaults to this over the ranks on the node"),
    Field("threads_per_rank", "int", "threads", False,
          "torch intra-op threads on each rank"),
    Field("cpu_allocator", "str", "", False,
          "`reuse` (glibc keeps freed memory for the next step) or `system`: what was in effect, which differs from `config.cpu_allocator` only where glibc's `mallopt` is missing"),
    Field("data_placement", "str", "", False,
          "`host` (a background thread makes each batch and copies it in) or `device` (the run's events preloaded on the device, batches built there; bench/runner/device_data.py)"),
    Field("data_preload_s", "float or null", "s", False,
          "seconds to preload the events on the device, before and outside the timed epochs (null with `host`)"),
    Field("data_device_bytes", "int or null", "bytes", False,
          "bytes of the preloaded events on the device (null with `host`)"),
    Field("device", "str", "", True,
          "`cpu` or `cuda`"),
    Field("device_name", "str", "", False,
          "CPU model or GPU name"),
    Field("model", "str", "", True,
          "model name (`circpad`, `compact`, or torchvision's `resnet50`, `densenet121`, `inception_v3`, `mobilenet_v2`)"),
    Field("model_params", "int", "parameters", False,
          "trainable parameters"),
    Field("train_flops_per_image", "float", "FLOP", False,
          "floating-point operations of one training image, forward and backward of the loss, counted by `torch.utils.flop_counter` on the meta device (convolutions and matrix products; element-wise work is not counted): `models.training_flops`"),
    Field("achieved_gflop_s", "float or null", "GFLOP/s", False,
          "`images_per_s * train_flops_per_image / 1e9`: the whole job's achieved rate (null without a measured epoch)"),
    Field("image_size", "int", "pixels", True,
          "H = W"),
    Field("global_batch", "int", "images", True,
          "images per optimizer step, all ranks together"),
    Field("per_rank_batch", "float", "images", False,
          "`global_batch / world_size`: a whole number in a measured run; a projected point may be fractional"),
    Field("micro_batch", "int", "images", False,
          "images per forward/backward on a rank (gradient accumulation below `per_rank_batch`)"),
    Field("accumulation_steps", "int", "micro-batches", False,
          "`per_rank_batch / micro_batch`"),
    Field("steps_per_epoch", "int", "steps", False,
          "optimizer steps per epoch"),
    Field("train_events", "int", "images", False,
          "training images per epoch (all ranks): `steps_per_epoch * global_batch`"),
    Field("val_events", "int", "events", False,
          "validation events"),
    Field("data", "object", "", False,
          "the event source: `kind` (`synthetic`, `hdf5`), path, counts, normalisation"),
    Field("batchnorm", "str", "", False,
          "`per_rank` (statistics of each rank's own batch, as in the reference study)"),
    Field("warmup_epoch_s", "float", "s", False,
          "time of the first epoch, kept apart"),
    Field("epoch_s", "list of float", "s", True,
          "time of every measured epoch (after the warm-up), barrier to barrier"),
    Field("images_per_s", "float or null", "images/s", False,
          "`train_events / median(epoch_s)`: global images over the slowest rank's time (null without a measured epoch)"),
    Field("step_s_median", "float or null", "", False,
          "median optimizer-step time over all steps of all ranks (measured epochs)"),
    Field("step_s_max_rank", "float or null", "", False,
          "the slowest rank's median step time"),
    Field("compute_s", "float", "s", False,
          "per measured epoch, on the slowest rank: forward, backward, optimizer"),
    Field("comm_s", "float", "s", False,
          "per measured epoch, on the slowest rank: gradient averaging that was not hidden"),
    Field("data_wait_s", "float", "s", False,
          "per measured epoch, on the slowest rank: waiting for the next batch"),
    Field("auc", "list of float", "", False,
          "validation AUC (physical weights) after each epoch, warm-up included"),
    Field("val_loss", "list of float", "", False,
          "validation loss (training weights) after each epoch, warm-up included"),
    Field("kept_epoch", "int or null", "", False,
          "the epoch (0 = the warm-up) whose weights were scored on the test split and saved: the last with `--keep last`, the one of lowest validation loss with `--keep best`"),
    Field("test_auc", "float or null", "", False,
          "AUC (physical weights) of the kept weights (`kept_epoch`) on the test split"),
    Field("physics", "object", "", False,
          "the final model on the test split against the cut-based selection (`bench/physics.py`, docs/evaluate.md): `auc`, `cut_signal_eff`, `cut_background_eff`, `cnn_signal_eff`, `cnn_background_eff` (the CNN threshold with the largest background efficiency not above the cut's), `eff_ratio` and `eff_ratio_err` (bootstrap), `sig_ratio` (s / sqrt(b)) and `sig_ratio_err`, `asimov_ratio`, expected `cut_s`, `cut_b`, `cnn_s`, `cnn_b` at `luminosity_fb`, unweighted `cut_background_events` / `cnn_background_events`, the 5-sigma point `discovery_s`, `discovery_b`, on a store with per-jet tag efficiencies the truth-tagged cuts `cut_signal_eff_truth_tag`, `cut_background_eff_truth_tag` and their unweighted `truth_tag_background_events` (null otherwise; `bench/physics.py` `truth_tag`), `roc` (`fpr`, `tpr` at 200 log-spaced FPR values), `cut_flow`; for a source without jet quantities only `auc` and `unavailable` (the reason)"),
    Field("peak_rss_bytes", "int", "bytes", False,
          "peak resident memory of the largest rank"),
    Field("cpu", "object", "", False,
          "how busy the ranks' cores were (psutil, bench/runner/cpu_use.py). Rank 0's node at the start of the run: `physical_cores` (null where unknown), `logical_cores`, `process_cores` (CPUs rank 0 may run on), `memory_bytes`, `memory_available_bytes`, `load_average_start` (1 minute). Over the ranks: `cores_available` (cores a node lets its ranks use, the fewest of any node), `ranks_x_threads` (a node's ranks x `threads_per_rank`, the most of any node); over the measured epochs, each rank's CPU time (user + system, all its threads) over wall time: `util_median` (cores kept busy, median over ranks) and per torch thread `util_per_thread_median`, `util_per_thread_min` (the least-used rank), `util_per_thread_max`; per measured epoch, the most-switched rank's `voluntary_ctx_switches` and `involuntary_ctx_switches` (util and switches null without sampled epochs); `oversubscribed`: true when `ranks_x_threads` exceeds a node's available cores or, on CPU, `util_per_thread_min` is under 0.8; `oversubscribed_why`: the reasons (null when not)"),
    Field("env", "object", "", False,
          "`hosts`, `cpu_model`, `cpu_count`, `mem_bytes`, `python`, `torch`, `torchvision` (null where not installed), `numpy`, `mpi_library`, `mpi4py`, `horovod`, `os`, `cuda`, `gpu_name`, selected environment variables"),
    Field("target_auc", "float", "AUC", False, "`--target-auc`: the validation AUC (physical weights) to reach",
          "with --target-auc"),
    Field("epochs_to_target", "int or null", "epochs", False,
          "epochs up to and including the first whose validation AUC reached `target_auc` (warm-up counted); null, with the reason in `undefined`, when none did",
          "with --target-auc"),
    Field("time_to_target_s", "float or null", "s", False,
          "training time of those epochs, warm-up included, validation excluded (each epoch the slowest rank's, as `epoch_s`); null when the target was not reached",
          "with --target-auc"),
    Field("time_to_target_with_validation_s", "float or null", "s", False,
          "the same with each epoch's BatchNorm averaging and validation added", "with --target-auc"),
    Field("scheduler", "object or null", "", False,
          "the batch job the run ran in, from the scheduler's environment (rank 0's): `kind` (`slurm`, `pbs`), `job_id` (`<array job>_<index>` for an array element), `nodelist` (Slurm's compressed form, `node[01-04]`; PBS: the node file's hosts), `cpus_per_task` (Slurm's `--cpus-per-task`, null when not set and under PBS); null outside a scheduler"),
    Field("undefined", "object", "", False,
          "a figure that could not be computed: its dotted path (`physics.sig_ratio`, `auc[0]`, `time_to_target_s`) and why; each such figure is null in the record",
          "when a figure is undefined"),
    # Written by bench.projection for projected (modelled, not measured) points.
    Field("projected", "bool", "", False,
          "true for a point of the performance model (`python -m bench.projection`), absent for a measured run",
          "projected records"),
    Field("projection", "object", "", False,
          "`allreduce_s_per_step`, `overlap`, `grad_bytes` of the modelled step", "projected records"),
    Field("validates_run_id", "str", "", False,
          "the measured run this point projects at its own configuration", "projected records"),
)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class Problem:
    """A line or record a reader left out, and why."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _is_number(value) -> bool:
    # JSON true/false load as bool, an int subclass: never a number here.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fits(kind: str, value) -> bool:
    if kind.endswith(" or null"):
        if value is None:
            return True
        kind = kind[: -len(" or null")]
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return _is_number(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "list of float":  # an entry that could not be computed is null (see ``undefined``)
        return isinstance(value, list) and all(v is None or _is_number(v) for v in value)
    raise ValueError(f"unknown field kind {kind!r}")


def validate(rec) -> list[str]:
    """Reasons ``rec`` is not a usable record (empty when it is). Fields this version does not know are
    allowed (a newer writer); known fields must have their kind. Pure."""
    if not isinstance(rec, dict):
        return [f"expected a JSON object, got {type(rec).__name__}"]
    errors = []
    missing = [f.name for f in FIELDS if f.required and f.name not in rec]
    if missing:
        errors.append("missing required field(s): " + ", ".join(missing))
    for key, value in rec.items():
        field = BY_NAME.get(key)
        if field is not None and not _fits(field.kind, value):
            errors.append(f"field {key!r} should be {field.kind}, got {_describe(value)}")
    if isinstance(rec.get("schema_version"), int) and rec["schema_version"] not in SCHEMA_VERSIONS:
        errors.append(f"unsupported schema_version {rec['schema_version']}")
    if isinstance(rec.get("epoch_s"), list) and not all(_is_number(t) and t > 0 for t in rec["epoch_s"]):
        errors.append("epoch_s must hold positive numbers")
    for key in ("world_size", "nodes"):
        if _fits("int", rec.get(key)) and rec[key] < 1:
            errors.append(f"{key} must be at least 1")
    return errors


def _describe(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        bad = next((v for v in value if not _is_number(v)), None)
        return f"a list holding {bad!r}"
    return type(value).__name__


def _finite(value, path: str, undefined: dict):
    """``value`` with every NaN or infinity, at any depth, replaced by None and noted in ``undefined``."""
    if isinstance(value, float) and not math.isfinite(value):
        undefined[path] = f"not a finite number ({value!r}): the figure is undefined for this run"
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}.{k}" if path else str(k), undefined) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{path}[{i}]", undefined) for i, v in enumerate(value)]
    return value


PRECISION_OF_AMP = {"none": "fp32", "bf16": "bf16", "fp16": "fp16"}  # config.amp -> the step's precision


def precision_of(rec: dict) -> str:
    """The training step's precision of a record: its ``precision``, else its resolved ``config.amp``, else
    fp32 (records before either field ran fp32)."""
    if rec.get("precision"):
        return rec["precision"]
    amp = (rec.get("config") or {}).get("amp")
    return PRECISION_OF_AMP.get(amp, "fp32")


def new_record(**fields) -> dict:
    """A record of ``fields`` with ``schema_version``, a new ``run_id`` and the ``timestamp`` (now, UTC)
    added where not given. No non-finite number reaches a record: each NaN or infinity becomes null and
    ``undefined`` says where and why (a caller may give its own reasons in ``undefined``). Raises ValueError
    naming every unknown field, missing required field or field of the wrong kind (a null where the schema
    allows none included): a writer's mistake, found before anything is written."""
    unknown = sorted(set(fields) - set(BY_NAME))
    if unknown:
        raise ValueError(f"record fields not in the schema (bench/records.py): {', '.join(unknown)}")
    given = dict(fields.pop("undefined", None) or {})
    undefined: dict = {}
    fields = clean(_finite(fields, "", undefined))  # no control characters from the environment
    if given or undefined:
        fields["undefined"] = {**undefined, **given}
    rec = {"schema_version": SCHEMA_VERSION, "run_id": uuid.uuid4().hex,
           "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields}
    errors = validate(rec)
    if errors:
        raise ValueError("invalid record: " + "; ".join(errors))
    return rec


def append_record(path: str, record: dict) -> None:
    """Append ``record`` as one line of ``path`` (created if absent): the whole line or nothing.

    A file whose last line was cut short (a writer killed mid-line, a partial copy) gets the record on a
    fresh line, so the fragment stays one broken line that readers report and the record stays readable.
    Raises ValueError for a value JSON cannot hold (NaN, infinity) before anything is written, and
    data.files.WriteError naming ``path`` when the write fails (a full disk, a quota): the file is then cut
    back to its earlier bytes (``keep_aside`` keeps the record for ``python -m bench.records add``).
    """
    append_whole(path, record_line(record))


def record_line(record: dict) -> bytes:
    """``record`` as the one JSON line the records file holds (sorted keys, no NaN), newline included."""
    return (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()


def fallback_directories(out: str) -> list[str]:
    """Where ``keep_aside`` tries to keep a record that ``out`` could not take, in order: beside ``out``,
    the working directory, ``$HOME``, the temporary directory (``$TMPDIR``, else /tmp)."""
    import tempfile

    places = [os.path.dirname(os.path.abspath(out)), os.getcwd(), os.path.expanduser("~"), tempfile.gettempdir()]
    return list(dict.fromkeys(places))


def keep_aside(out: str, record: dict) -> str | None:
    """Write ``record`` whole to ``unrecorded-<run_id>.jsonl`` in the first of ``fallback_directories(out)``
    that takes it; returns its path, or None when none could (the caller prints the record on stderr too).
    ``python -m bench.records add FILE --to OUT`` appends it to the records later."""
    name = f"unrecorded-{record['run_id']}.jsonl"
    for directory in fallback_directories(out):
        path = os.path.join(directory, name)
        try:
            write_bytes(path, record_line(record))
        except WriteError:
            continue
        return path
    return None


def read_records(paths, flag: str = "") -> tuple[list[dict], list[Problem]]:
    """Every usable record of ``paths`` (a path or a list of them), in order, and a ``Problem`` for each
    line left out: not JSON (a truncated last line named as such), not an object, or failing ``validate``.
    Each record returned carries ``_source`` ("path:line"). Raises data.files.InputError naming ``flag``
    and the first path that is missing, not a regular file or unreadable, before reading any. A run given
    more than once stays in every copy here: ``one_per_run`` keeps one."""
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    for path in paths:
        check_input_file(path, flag, empty_ok=True)
    records: list[dict] = []
    problems: list[Problem] = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
        # A file written line by line ends in "\n", so the last element is "" unless the last line was
        # cut short (a writer killed mid-line, a partial copy).
        last_unterminated = len(lines) if lines[-1].strip() else None
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as err:
                what = "truncated last line" if number == last_unterminated else "not valid JSON"
                problems.append(Problem(str(path), number, f"{what} ({err.msg}); skipped"))
                continue
            errors = validate(rec)
            if errors:
                problems.append(Problem(str(path), number, "; ".join(errors) + "; skipped"))
                continue
            records.append(dict(rec, _source=f"{path}:{number}"))
    return records, problems


class DuplicateRunError(ValueError):
    """Two records with one ``run_id`` that differ: the message names both (file:line). Exit status 2."""


def one_per_run(records: list[dict]) -> tuple[list[dict], list[Problem]]:
    """``records`` with each run once: a record whose ``run_id`` came before is left out when it is the
    same run (equal in every field but ``_source``), with a ``Problem`` at the copy naming the first.
    Raises DuplicateRunError naming both copies when two records share a ``run_id`` and differ."""
    first: dict[str, dict] = {}
    kept, copies = [], []
    for rec in records:
        seen = first.get(rec["run_id"])
        if seen is None:
            first[rec["run_id"]] = rec
            kept.append(rec)
            continue
        a = {k: v for k, v in seen.items() if k != "_source"}
        b = {k: v for k, v in rec.items() if k != "_source"}
        where, there = rec.get("_source", "?:0"), seen.get("_source", "?")
        if a != b:
            differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise DuplicateRunError(f"{where}: run {rec['run_id']} is also {there} with other values "
                                    f"({', '.join(differ)}); keep one of them")
        path, _, line = where.rpartition(":")
        copies.append(Problem(path, int(line or 0), f"run {rec['run_id']} is a copy of {there}; counted once"))
    return kept, copies


def recorded_world_sizes(path: str, sweep_id: str) -> set[int]:
    """World sizes of the sweep ``sweep_id`` already recorded in ``path`` (none if it does not exist);
    lines left out are reported on stderr."""
    if not os.path.exists(path):
        return set()
    recs, problems = read_records(path)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    return {r["world_size"] for r in recs if r.get("sweep_id") == sweep_id}


def markdown_table() -> str:
    """The field table of docs/records.md."""
    lines = ["| field | type | unit | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.name}` | {f.kind} | {f.unit} | {f.meaning}{f' ({f.present} only)' if f.present else ''} |"
              for f in FIELDS]
    return "\n".join(lines)


def add(sources: list[str], out: str) -> tuple[int, int]:
    """Append to ``out`` the records of ``sources`` (files ``keep_aside`` wrote, or any records files) that
    it does not hold yet (by ``run_id``); returns (added, already there). Raises InputError for a source
    that is not a readable file, ValueError when a source has a line that is not a record (nothing is
    appended then), DuplicateRunError for a run whose copies differ, WriteError when ``out`` cannot take
    them (``out`` then keeps its earlier bytes)."""
    records, problems = read_records(sources)
    if problems:
        raise ValueError("; ".join(str(p).removesuffix("; skipped") for p in problems) + "; nothing appended")
    there = read_records(out, "--to")[0] if os.path.exists(out) else []
    incoming, _ = one_per_run(records)
    one_per_run(there + incoming)  # a run already in ``out`` with other values: DuplicateRunError
    known = {r["run_id"] for r in there}
    new = [r for r in incoming if r["run_id"] not in known]
    if new:
        append_whole(out, b"".join(record_line({k: v for k, v in r.items() if k != "_source"}) for r in new))
    return len(new), len(incoming) - len(new)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.records``: the field table; ``python -m bench.records add FILE... --to RECORDS``:
    records kept aside after a failed write, appended once each. Exit status 2 on bad input or a failed
    write."""
    import argparse

    from data.errors import fail
    from data.files import InputError

    parser = argparse.ArgumentParser(prog="python -m bench.records",
                                     description="Print the record schema as the field table of docs/records.md, "
                                                 "or add records kept aside after a failed write.")
    sub = parser.add_subparsers(dest="command")
    a = sub.add_parser("add", help="append the records of FILE... to --to, each run once (by run_id)")
    a.add_argument("sources", nargs="+", metavar="FILE", help="records files (unrecorded-<run_id>.jsonl)")
    a.add_argument("--to", required=True, metavar="RECORDS", help="the records file to append to")
    args = parser.parse_args(argv)
    if args.command is None:
        print(markdown_table())
        return 0
    from bench.outputs import OutputPathError, check_output_file

    try:
        check_output_file(args.to, "--to")
        added, present = add(args.sources, args.to)
    except WriteError as exc:
        return fail(str(exc.named("--to")))
    except (InputError, OutputPathError, ValueError) as exc:
        return fail(str(exc))
    print(f"{added} record(s) appended to {args.to}" + (f"; {present} already there" if present else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
