"""Spec: records are appended as whole lines; several processes appending to one file at once never
interleave; a reader skips a broken line and says which line it was."""
import json
import multiprocessing as mp

from bench.records import append_record, read_records


def _writer(path, who, n):
    for i in range(n):
        append_record(path, {"who": who, "i": i, "pad": "x" * 20000})


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
    assert {(r["who"], r["i"]) for r in records} == {(w, i) for w in range(4) for i in range(60)}


def test_broken_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "r.jsonl"
    append_record(str(path), {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"truncated": \n')
    append_record(str(path), {"a": 3})
    records, problems = read_records(str(path))
    assert [r["a"] for r in records] == [1, 3]
    assert len(problems) == 1 and f"{path}:2:" in problems[0]


def test_nan_is_refused_before_writing(tmp_path):
    path = tmp_path / "r.jsonl"
    try:
        append_record(str(path), {"auc": float("nan")})
    except ValueError:
        pass
    assert not path.exists() or path.read_text() == ""
    append_record(str(path), {"ok": True})
    assert json.loads(path.read_text()) == {"ok": True}
