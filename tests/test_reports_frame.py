"""Spec: `reports.load_frame(paths)` gives the records as a pandas DataFrame, one row per run.

* Nested fields are flattened with dotted names (`config.image_size`, `env.torch`); an object that is null or
  empty gives no column; `source` says `path:line`.
* Dtypes: the schema's for its fields (int -> Int64, float -> float64, str -> string, bool -> boolean, lists
  in object columns), `timestamp` a UTC datetime, `projected` false where absent; nested columns the type
  their values share.
* Broken or invalid lines and runs without a measured epoch are left out and reported by file and line, as
  `RecordProblem` warnings and in `frame.attrs["problems"]`; a missing file raises FileNotFoundError.
"""
import json
from pathlib import Path

import pandas as pd
import pytest

import reports
from reports.frame import RecordProblem, to_frame

RECORDS = Path(__file__).resolve().parent / "records"


def rec(**over):
    base = {"schema_version": 1, "run_id": "r", "system": "s", "preset": "paper", "backend": "mpi",
            "world_size": 1, "device": "cpu", "model": "circpad", "image_size": 64, "global_batch": 1024,
            "epoch_s": [10.0], "_source": "x.jsonl:1"}
    base.update(over)
    return base


def test_fixture_runs_one_row_each_with_dotted_columns_and_their_sources():
    with pytest.warns(RecordProblem):
        frame = reports.load_frame([RECORDS / "knl.jsonl", RECORDS / "malformed.jsonl"])
    # knl: 13 lines, all usable; malformed: lines 1 and 5 of 6
    assert frame.shape[0] == 15
    assert list(frame["source"][-2:]) == [f"{RECORDS / 'malformed.jsonl'}:1", f"{RECORDS / 'malformed.jsonl'}:5"]
    assert {"config.global_batch", "config.epochs", "env.torch", "env.hosts", "data.kind"} <= set(frame.columns)
    assert "config" not in frame.columns and "env" not in frame.columns
    assert frame["config.global_batch"].dtype == "Int64" and frame["config.global_batch"].eq(32768).all()
    assert frame["env.torch"].dtype == "string" and frame["env.torch"][0] == "2.13.0"
    assert frame["env.hosts"][8] == [f"node{i:04d}" for i in range(8)]  # a list stays a list


def test_schema_dtypes_and_timestamp():
    frame = reports.load_frame([RECORDS / "knl.jsonl"])
    dtypes = frame.dtypes.astype(str)
    assert (dtypes["world_size"], dtypes["nodes"], dtypes["train_events"]) == ("Int64", "Int64", "Int64")
    assert (dtypes["images_per_s"], dtypes["compute_s"], dtypes["per_rank_batch"]) == ("float64",) * 3
    assert (dtypes["system"], dtypes["backend"]) == ("string", "string")
    assert dtypes["epoch_s"] == "object" and frame["epoch_s"][0] == [100, 99, 101]
    assert str(frame["timestamp"].dt.tz) == "UTC" and frame["timestamp"][0] == pd.Timestamp("2026-11-01T12:00Z")
    # 10 measured runs leave `projected` out, 3 model points say true: a boolean column, never null
    assert frame["projected"].dtype == "boolean" and list(frame["projected"]).count(True) == 3
    assert not frame["projected"].isna().any()
    # the schema's order, each object's leaves in its place, source last
    columns = list(frame.columns)
    assert columns.index("label") < columns.index("config.epochs") < columns.index("backend")
    assert columns[-1] == "source"


def test_nested_columns_take_the_type_their_values_share():
    frame = to_frame([
        rec(env={"cpu_count": 2, "mixed": 1, "flag": True, "name": "a", "any": [1], "empty": {}}, physics=None),
        rec(env={"cpu_count": None, "mixed": 1.5, "flag": False, "name": None, "any": "x"}),
    ])
    dtypes = frame.dtypes.astype(str)
    assert dtypes["env.cpu_count"] == "Int64" and frame["env.cpu_count"].isna()[1]
    assert dtypes["env.mixed"] == "float64" and list(frame["env.mixed"]) == [1.0, 1.5]
    assert (dtypes["env.flag"], dtypes["env.name"], dtypes["env.any"]) == ("boolean", "string", "object")
    assert "physics" not in frame and "env.empty" not in frame  # null or empty objects give no column


def test_broken_lines_are_reported_by_file_and_line_and_left_out(tmp_path):
    path = tmp_path / "r.jsonl"
    good = {k: v for k, v in rec().items() if k != "_source"}
    path.write_text("\n".join([json.dumps(good), "{oops", json.dumps(dict(good, world_size="two", run_id="r3")),
                               json.dumps(dict(good, epoch_s=[], run_id="r4"))]) + "\n")
    with pytest.warns(RecordProblem) as caught:
        frame = reports.load_frame([path])
    assert len(frame) == 1 and frame["source"][0] == f"{path}:1"
    messages = [str(w.message) for w in caught]
    assert messages == frame.attrs["problems"]
    assert [m.split(": ")[0] for m in messages] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "not valid JSON" in messages[0] and "world_size" in messages[1] and "no measured epoch" in messages[2]


def test_a_missing_file_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        reports.load_frame([tmp_path / "nope.jsonl"])


def test_no_usable_run_is_an_empty_frame(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("not json\n")
    with pytest.warns(RecordProblem):
        frame = reports.load_frame(path)
    assert frame.empty and list(frame.columns) == ["source"]
