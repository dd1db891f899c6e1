"""Load and validate run records (JSON lines, schema in ``docs/records.md``).

``load_records(paths)`` returns the usable records and a list of ``Problem``s (file, line,
message) for everything it had to leave out: a line that is not JSON (a truncated last line
included), a record missing a field the reports need or holding the wrong type, a record
without a measured epoch. One bad line never stops the rest of the file from being read.
A file that does not exist is an error (``FileNotFoundError``), not a problem: the caller
asked for it by name.

Every record returned carries ``_source`` ("path:line") so warnings can point back at it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

# Fields the reports cannot do without, with the JSON types they must have.
REQUIRED: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "run_id": (str,),
    "system": (str,),
    "preset": (str,),
    "backend": (str,),
    "world_size": (int,),
    "device": (str,),
    "model": (str,),
    "image_size": (int,),
    "global_batch": (int,),
    "epoch_s": (list,),
}
# Fields used when present; a wrong type here is still a malformed record.
OPTIONAL: dict[str, tuple[type, ...]] = {
    "nodes": (int,),
    "train_events": (int,),
    "images_per_s": (int, float),
    "compute_s": (int, float),
    "comm_s": (int, float),
    "data_wait_s": (int, float),
    "auc": (list,),
    "projected": (bool,),
    "timestamp": (str,),
    "env": (dict,),
}
SCHEMA_VERSIONS = (1,)


@dataclass(frozen=True)
class Problem:
    """A line or record left out of the report, and why."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _is_type(value, types: tuple[type, ...]) -> bool:
    # JSON true/false load as bool, which is an int subclass: never accept it as a number.
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def _is_number(value) -> bool:
    return _is_type(value, (int, float)) and math.isfinite(value)


def validate(rec) -> list[str]:
    """Reasons ``rec`` cannot be used (empty when it is fine). Pure; does not modify ``rec``."""
    if not isinstance(rec, dict):
        return [f"expected a JSON object, got {type(rec).__name__}"]
    errors = []
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        errors.append("missing required field(s): " + ", ".join(missing))
    for fields in (REQUIRED, OPTIONAL):
        for key, types in fields.items():
            if key in rec and rec[key] is not None and not _is_type(rec[key], types):
                want = " or ".join(t.__name__ for t in types)
                errors.append(f"field {key!r} should be {want}, got {type(rec[key]).__name__}")
    if _is_type(rec.get("schema_version"), (int,)) and rec["schema_version"] not in SCHEMA_VERSIONS:
        errors.append(f"unsupported schema_version {rec['schema_version']}")
    if isinstance(rec.get("epoch_s"), list) and not all(_is_number(t) and t > 0 for t in rec["epoch_s"]):
        errors.append("epoch_s must hold positive numbers")
    if isinstance(rec.get("auc"), list) and not all(_is_number(a) for a in rec["auc"]):
        errors.append("auc must hold numbers")
    for key in ("world_size", "nodes"):
        if _is_type(rec.get(key), (int,)) and rec[key] < 1:
            errors.append(f"{key} must be at least 1")
    return errors


def _read_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read().split("\n")


def load_records(paths) -> tuple[list[dict], list[Problem]]:
    """Read every record of ``paths`` (in order). Returns ``(records, problems)``.

    Raises ``FileNotFoundError`` naming the first path that does not exist, before reading any.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"record file not found: {path}")
    records: list[dict] = []
    problems: list[Problem] = []
    for path in paths:
        lines = _read_lines(path)
        # A file written line by line ends in "\n", so the last element is "" unless the
        # last line was cut short (a writer killed mid-line, a partial copy).
        last_unterminated = len(lines) - 1 if lines[-1].strip() else None
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as err:
                what = "truncated last line" if number - 1 == last_unterminated else "not valid JSON"
                problems.append(Problem(str(path), number, f"{what} ({err.msg}); skipped"))
                continue
            errors = validate(rec)
            if errors:
                problems.append(Problem(str(path), number, "; ".join(errors) + "; skipped"))
                continue
            if not rec["epoch_s"]:
                problems.append(Problem(str(path), number,
                                        f"no measured epoch (epoch_s is empty) in run {rec['run_id']}; skipped"))
                continue
            rec = dict(rec, _source=f"{path}:{number}")
            records.append(rec)
    return records, problems
