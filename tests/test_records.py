"""Spec: the record schema (bench/records.py) is the one source of the format: docs/records.md carries its
table; records are built through it, appended as whole lines (several processes appending to one file at
once never interleave); the one reader skips a broken line and says which line it was."""
import json
import multiprocessing as mp
import re
from pathlib import Path

import pytest

from bench.records import FIELDS, Problem, append_record, markdown_table, new_record, read_records, recorded_world_sizes

ROOT = Path(__file__).resolve().parent.parent


def rec(**over):
    return new_record(**{"system": "s", "preset": "custom", "backend": "mpi", "world_size": 1, "device": "cpu",
                         "model": "circpad", "image_size": 16, "global_batch": 64, "epoch_s": [1.0], **over})


def _writer(path, who, n):
    for i in range(n):
        append_record(path, rec(label=f"{who}:{i}", git_rev="x" * 20000))


def test_docs_table_is_the_schema():
    text = (ROOT / "docs" / "records.md").read_text()
    assert markdown_table() in text, "docs/records.md: regenerate the table with python -m bench.records"
    documented = re.findall(r"^\| `(\w+)` \|", text, flags=re.M)
    assert documented == [f.name for f in FIELDS]


def test_new_record_fills_identity_and_refuses_unknown_or_wrong_fields():
    r = rec()
    assert r["schema_version"] == 1 and len(r["run_id"]) == 32 and r["timestamp"].endswith("+00:00")
    with pytest.raises(ValueError, match="not in the schema.*bogus"):
        rec(bogus=1)
    with pytest.raises(ValueError, match="world_size"):
        rec(world_size="two")
    with pytest.raises(ValueError, match="epoch_s"):
        rec(epoch_s=[float("inf")])  # nulled, and a measured epoch must be a positive number
    with pytest.raises(ValueError, match="global_batch"):
        new_record(system="s")


@pytest.mark.slow  # forks four writer processes: appends must not interleave across processes
def test_concurrent_appends_do_not_interleave(tmp_path):
    path = str(tmp_path / "r.jsonl")
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    records, problems = read_records(path)
    assert problems == []
    assert len(records) == 240
    assert {r["label"] for r in records} == {f"{w}:{i}" for w in range(4) for i in range(60)}


def test_broken_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "r.jsonl"
    append_record(str(path), rec(label="1"))
    with open(path, "a") as fh:
        fh.write('{"truncated": \n')
    append_record(str(path), rec(label="3"))
    records, problems = read_records(str(path))
    assert [r["label"] for r in records] == ["1", "3"]
    assert records[1]["_source"] == f"{path}:3"
    assert len(problems) == 1 and isinstance(problems[0], Problem) and str(problems[0]).startswith(f"{path}:2:")


def test_nan_is_refused_before_writing(tmp_path):
    path = tmp_path / "r.jsonl"
    with pytest.raises(ValueError):
        append_record(str(path), {"auc": float("nan")})
    assert not path.exists() or path.read_text() == ""
    append_record(str(path), {"ok": True})
    assert json.loads(path.read_text()) == {"ok": True}


def test_recorded_world_sizes_reads_one_sweep(tmp_path):
    path = tmp_path / "r.jsonl"
    assert recorded_world_sizes(str(path), "s1") == set()
    for n, sweep in ((1, "s1"), (2, "s1"), (4, "s2")):
        append_record(str(path), rec(world_size=n, sweep_id=sweep))
    assert recorded_world_sizes(str(path), "s1") == {1, 2}


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    """A writer killed mid-line leaves a fragment without a newline; the next record goes on its own line."""
    path = tmp_path / "r.jsonl"
    append_record(str(path), rec(label="before"))
    with open(path, "a") as fh:
        fh.write(json.dumps(rec(label="torn"))[:60])
    append_record(str(path), rec(label="after"))
    records, problems = read_records(str(path))
    assert [r["label"] for r in records] == ["before", "after"]
    assert [p.line for p in problems] == [2] and "not valid JSON" in problems[0].message


def test_no_non_finite_number_reaches_a_record():
    """An undefined figure is null with a reason, at any depth; the record is valid JSON."""
    r = rec(images_per_s=float("nan"), auc=[0.7, float("nan")],
            physics={"auc": 0.8, "sig_ratio": float("inf"), "roc": {"fpr": [0.0, float("nan")]}},
            undefined={"test_auc": "the test events hold one class only"})
    assert r["images_per_s"] is None and r["auc"] == [0.7, None] and r["physics"]["sig_ratio"] is None
    assert r["physics"]["roc"]["fpr"] == [0.0, None]
    assert set(r["undefined"]) == {"images_per_s", "auc[1]", "physics.sig_ratio", "physics.roc.fpr[1]", "test_auc"}
    assert "not a finite number" in r["undefined"]["physics.sig_ratio"]
    json.dumps(r, allow_nan=False)
