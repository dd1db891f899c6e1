"""Run records as one pandas DataFrame: a row per run, nested fields flattened with dotted names.

The report's analysis (``reports.analysis``) works on this frame, and a notebook can start from it:

    >>> import reports
    >>> runs = reports.load_frame(["results/records.jsonl"])
    >>> runs.groupby(["system", "world_size"])["images_per_s"].median()

Columns: every field of the records (docs/records.md), in the schema's order. An object field is flattened
into one column per leaf, named by its dotted path (``config.image_size``, ``env.torch``,
``cpu.util_per_thread_min``); an object that is null or empty in a record gives that row no values. A lone
``source`` column ends the row: ``path:line`` of the record. Types: the schema's for its own fields (``int``
as pandas ``Int64``, ``float`` as ``float64``, ``str`` as ``string``, ``bool`` as ``boolean``, lists as
Python lists in ``object`` columns), ``timestamp`` as a UTC ``datetime64``, ``projected`` false where a
record leaves it out (a measured run); nested columns get the type their values share (mixed: ``object``).
A field no record has is no column. Null is ``<NA>`` (``NaN`` in a ``float64`` column).
"""
from __future__ import annotations

import math
import warnings

import pandas as pd

from bench.records import BY_NAME, FIELDS, Problem, one_per_run, precision_of, read_records

ORDER = {f.name: i for i, f in enumerate(FIELDS)}
DTYPES = {"int": "Int64", "float": "float64", "str": "string", "bool": "boolean"}


class RecordProblem(UserWarning):
    """A record line ``load_frame`` left out: ``path:line: why``."""


def read_frame(paths) -> tuple[pd.DataFrame, list[Problem]]:
    """The frame of every usable run in ``paths`` (a path or a list of them) and a ``Problem`` (file, line,
    why) for each line left out, sorted by file and line: a line ``bench.records.read_records`` cannot use
    (not JSON, truncated, missing or mistyped fields) and a run without a measured epoch (empty
    ``epoch_s``), and a copy of a run already read (the same ``run_id``: one run counts once). Raises
    data.files.InputError naming the first path that is missing or not a readable file, before reading any,
    and bench.records.DuplicateRunError naming both copies of a run that disagree."""
    records, problems = read_records(paths)
    records, copies = one_per_run(records)
    problems += copies
    kept = []
    for rec in records:
        if rec["epoch_s"]:
            kept.append(rec)
        else:
            path, _, line = rec["_source"].rpartition(":")
            problems.append(Problem(path, int(line), f"no measured epoch (epoch_s is empty) in run {rec['run_id']}; "
                                                     "skipped"))
    problems.sort(key=lambda p: (p.path, p.line))
    return to_frame(kept), problems


def load_frame(paths) -> pd.DataFrame:
    """The runs of the JSON-lines record files ``paths`` as a DataFrame, one row per run (the module's
    docstring gives the columns and their types). Every line left out (``read_frame``) is reported as a
    ``RecordProblem`` warning naming its file and line, and listed in ``frame.attrs["problems"]``; a run given
    twice is one row, and its copy such a warning. Raises what ``read_frame`` raises."""
    frame, problems = read_frame(paths)
    for problem in problems:
        warnings.warn(str(problem), RecordProblem, stacklevel=2)
    frame.attrs["problems"] = [str(p) for p in problems]
    return frame


def to_frame(records: list[dict]) -> pd.DataFrame:
    """The frame of already validated ``records`` (dicts as ``read_records`` returns them; ``_source``
    becomes ``source``). Every row has ``precision`` (``bench.records.precision_of``: older records take it
    from ``config.amp``)."""
    rows = [_flatten({**{k: v for k, v in rec.items() if k != "_source"}, "precision": precision_of(rec)})
            for rec in records]
    seen: dict[str, int] = {}
    for row in rows:
        for name in row:
            seen.setdefault(name, len(seen))
    # The schema's order, each object's leaves where the object stands; fields it does not know after.
    names = sorted(seen, key=lambda n: (ORDER.get(n.split(".")[0], len(ORDER)), seen[n]))
    columns = {name: _column(name, [row.get(name) for row in rows]) for name in names}
    columns["source"] = pd.Series([rec.get("_source") for rec in records], dtype="string")
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(records)))
    if "projected" in frame:
        frame["projected"] = frame["projected"].fillna(False)
    return frame


def _flatten(obj: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif not (value is None and (BY_NAME.get(name) and BY_NAME[name].kind == "object")):
            out[name] = value
    return out


def _column(name: str, values: list) -> pd.Series:
    if name == "timestamp":
        return pd.to_datetime(pd.Series(values, dtype="string"), utc=True, format="ISO8601", errors="coerce")
    field = BY_NAME.get(name)
    kind = field.kind.removesuffix(" or null") if field else _kind([v for v in values if v is not None])
    dtype = DTYPES.get(kind, "object")
    return pd.Series(values, dtype=dtype)


def _kind(values: list) -> str:
    """The schema kind the non-null ``values`` of a nested column share (``object`` when none or mixed)."""
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float) and math.isfinite(v):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("str")
        else:
            return "object"
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "object"
