"""Spec (docs/faults.md, 'Writes, inputs and duplicates'): every write is whole or not at all, and a failed one
exits 2 naming the path and the cause, leaving what was there before byte for byte; a run's record that the
records file cannot take is kept aside and added later with ``python -m bench.records add``; a run given
twice counts once; every path flag says what is wrong with a path that is not a readable file; job scripts
carry any path; no control character reaches a record, table or page.

Unit tier: the failures are injected (``os.write`` and the writers raise ENOSPC); tests/test_full_disk.py
fills a real (tmpfs) file system.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shlex

import pytest

from bench import records as rec_mod
from bench.records import DuplicateRunError, append_record, new_record, one_per_run, read_records
from data import files
from data.files import InputError, WriteError, append_whole, check_input_file, replaced, write_text
from launchers.make import main as make


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- data/files.py: whole or not at all -----------------------------------------------------------------

def test_a_failed_replacement_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "report.md"
    path.write_bytes(b"before\n")
    with pytest.raises(WriteError) as exc:
        with replaced(path) as tmp:
            tmp.write_bytes(b"half of the new")
            enospc()
    assert str(exc.value) == f"{path}: cannot be written (No space left on device)"
    assert path.read_bytes() == b"before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_an_error_that_is_not_the_file_systems_passes_unchanged(tmp_path):
    with pytest.raises(KeyError):
        with replaced(tmp_path / "x.csv"):
            raise KeyError("a bug, not a disk")
    assert list(tmp_path.iterdir()) == []


def test_a_replacement_writes_the_new_content_with_the_asked_mode(tmp_path):
    path = tmp_path / "job.sbatch"
    write_text(path, "#!/bin/bash\n", mode=0o755)
    assert path.read_text() == "#!/bin/bash\n" and os.stat(path).st_mode & 0o777 == 0o755


def test_a_failed_append_is_cut_back_to_the_earlier_bytes(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    real_write = os.write

    def half_then_full(fd, data):  # the disk takes part of the line, then is full
        real_write(fd, bytes(data)[: len(data) // 2])
        enospc()

    monkeypatch.setattr(files.os, "write", half_then_full)
    with pytest.raises(WriteError, match="r.jsonl: cannot be written .No space left on device."):
        append_whole(path, b'{"b": 2}\n')
    assert path.read_bytes() == b'{"a": 1}\n'


def test_an_append_to_a_vanished_directory_names_the_path(tmp_path):
    with pytest.raises(WriteError, match="gone/r.jsonl: cannot be written .No such file or directory."):
        append_whole(tmp_path / "gone" / "r.jsonl", b"x\n")


# --- the record kept aside and added later ---------------------------------------------------------------

def record(**over):
    base = dict(system="s", preset="custom", backend="none", world_size=1, device="cpu", model="circpad",
                image_size=16, global_batch=64, epoch_s=[1.0])
    return new_record(**{**base, **over})


def test_a_record_that_cannot_be_appended_is_kept_aside_beside_the_records(tmp_path, monkeypatch):
    out = tmp_path / "r.jsonl"
    r = record()
    kept = rec_mod.keep_aside(str(out), r)
    assert kept == str(tmp_path / f"unrecorded-{r['run_id']}.jsonl")
    assert json.loads(open(kept).read()) == r


def test_the_record_goes_to_the_next_place_when_the_first_is_full(tmp_path, monkeypatch):
    full, cwd = tmp_path / "full", tmp_path / "cwd"
    full.mkdir(), cwd.mkdir()
    monkeypatch.chdir(cwd)
    real = files.write_bytes

    def full_disk(path, data, mode=None):
        if str(path).startswith(str(full)):
            raise WriteError(path, "No space left on device")
        return real(path, data, mode)

    monkeypatch.setattr(rec_mod, "write_bytes", full_disk)
    r = record()
    assert rec_mod.keep_aside(str(full / "r.jsonl"), r) == str(cwd / f"unrecorded-{r['run_id']}.jsonl")


def test_records_add_appends_each_run_once(tmp_path, capsys):
    out, aside = tmp_path / "r.jsonl", tmp_path / "aside.jsonl"
    first, second = record(label="first"), record(label="second")
    append_record(str(out), first)
    before = out.read_bytes()
    aside.write_bytes(rec_mod.record_line(second))
    assert rec_mod.main(["add", str(aside), "--to", str(out)]) == 0
    assert rec_mod.main(["add", str(aside), "--to", str(out)]) == 0  # given again: nothing new
    assert "1 record(s) appended" in capsys.readouterr().out
    assert out.read_bytes().startswith(before)
    assert [r["label"] for r in read_records(str(out))[0]] == ["first", "second"]


@pytest.mark.parametrize("content,why", [(b"not json\n", "not valid JSON"), (b'{"a": 1}\n', "missing required")])
def test_records_add_refuses_a_file_that_is_not_records_and_appends_nothing(tmp_path, capsys, content, why):
    out, bad = tmp_path / "r.jsonl", tmp_path / "bad.jsonl"
    append_record(str(out), record())
    before = out.read_bytes()
    bad.write_bytes(content)
    assert rec_mod.main(["add", str(bad), "--to", str(out)]) == 2
    err = capsys.readouterr().err
    assert why in err and "nothing appended" in err and str(bad) in err
    assert out.read_bytes() == before


def test_records_add_on_a_full_disk_exits_2_and_keeps_the_file(tmp_path, capsys, monkeypatch):
    out, aside = tmp_path / "r.jsonl", tmp_path / "aside.jsonl"
    append_record(str(out), record())
    before = out.read_bytes()
    aside.write_bytes(rec_mod.record_line(record()))
    monkeypatch.setattr(files.os, "write", enospc)
    assert rec_mod.main(["add", str(aside), "--to", str(out)]) == 2
    assert f"--to {out}: cannot be written (No space left on device)" in capsys.readouterr().err
    assert out.read_bytes() == before


# --- a run given twice -------------------------------------------------------------------------------------

def test_a_run_given_twice_is_kept_once_with_a_problem_naming_both_copies():
    r = record()
    kept, copies = one_per_run([dict(r, _source="a.jsonl:1"), dict(r, _source="b.jsonl:4")])
    assert [k["_source"] for k in kept] == ["a.jsonl:1"]
    assert [str(c) for c in copies] == [f"b.jsonl:4: run {r['run_id']} is a copy of a.jsonl:1; counted once"]


def test_copies_of_a_run_that_disagree_are_an_error_naming_both():
    r = record()
    with pytest.raises(DuplicateRunError, match=r"b.jsonl:2: run \w+ is also a.jsonl:1 with other values .label."):
        one_per_run([dict(r, _source="a.jsonl:1"), dict(r, label="edited", _source="b.jsonl:2")])


# --- inputs say what they are -------------------------------------------------------------------------------

@pytest.fixture
def kinds(tmp_path):
    """A path of each kind that is not a readable file, with the words its message must hold."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "empty").write_bytes(b"")
    return {"directory": (tmp_path, "is a directory, not a file"), "fifo": (fifo, "is a FIFO (named pipe), not a file"),
            "empty": (tmp_path / "empty", "is empty"), "missing": (tmp_path / "missing", "no such file")}


@pytest.mark.parametrize("kind", ["directory", "fifo", "empty", "missing"])
def test_check_input_file_says_what_the_path_is(kinds, kind):
    path, words = kinds[kind]
    with pytest.raises(InputError, match=re.escape(f"--flag {path}: {words}")):
        check_input_file(path, "--flag")


def test_an_unreadable_file_is_named_as_such(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    path.write_text("x")
    monkeypatch.setattr(files.os, "access", lambda *_: False)  # root reads every file; the check is the same
    with pytest.raises(InputError, match="not readable .permission denied."):
        check_input_file(path, "--records")


# --- outputs are clean text ---------------------------------------------------------------------------------

def test_no_control_character_reaches_a_record():
    r = record(env={"mpi_library": "Open MPI v4.1.4\x00", "hosts": ["node\x1b[31m1"]}, system="EPYC\r")
    assert r["env"] == {"mpi_library": "Open MPI v4.1.4", "hosts": ["node[31m1"]} and r["system"] == "EPYC"
    assert "\\u0000" not in json.dumps(r)


# --- job scripts take any path ------------------------------------------------------------------------------

STRANGE = """my jobs; $(touch pwned) `x` & 'q' "d" 100% #1"""


def test_slurm_directives_quote_a_path_as_sbatch_reads_it(tmp_path):
    out = tmp_path / STRANGE
    assert make(["slurm", "--nodes", "1", "--records", str(out / "r s.jsonl"), "--out-dir", str(out),
                 "--job-name", "my job"]) == 0
    text = next(out.glob("*.sbatch")).read_text()
    [output] = [line for line in text.splitlines() if line.startswith("#SBATCH --output=")]
    # sbatch's reading of a directive value: quotes and backslash escapes, as shlex reads them
    assert shlex.split(output.removeprefix("#SBATCH --output=")) == [f"{str(out).replace('%', '%%')}/my job-n0001-%j.out"]
    assert '#SBATCH --job-name="my job-n0001"' in text
    from launchers.scripts import launch_flags
    flags = launch_flags(text)
    assert flags[flags.index("--out") + 1] == str(out / "r s.jsonl")


@pytest.mark.parametrize("scheduler", ["slurm", "pbs", "local"])
@pytest.mark.parametrize("flag", ["--records", "--out-dir", "--job-name"])
def test_a_control_character_in_a_script_value_is_refused(tmp_path, capsys, scheduler, flag):
    value = "a\nb" if flag != "--out-dir" else str(tmp_path / "a\nb")
    args = [scheduler, "--nodes", "1", "--out-dir", str(tmp_path / "jobs"), flag, value]
    assert make(args) == 2
    assert f"{flag} " in capsys.readouterr().err and not (tmp_path / "jobs").exists()


def test_pbs_refuses_a_double_quote_in_a_directive_value(tmp_path, capsys):
    assert make(["pbs", "--nodes", "1", "--out-dir", str(tmp_path / 'a"b')]) == 2
    assert "--out-dir" in capsys.readouterr().err


def test_a_script_that_cannot_be_written_exits_2_and_keeps_the_old_one(tmp_path, capsys, monkeypatch):
    assert make(["slurm", "--nodes", "1", "--out-dir", str(tmp_path)]) == 0
    script = next(tmp_path.glob("*.sbatch"))
    before = script.read_bytes()
    import data.files as f

    monkeypatch.setattr(f.os, "fsync", enospc)
    assert make(["slurm", "--nodes", "1", "--walltime", "02:00:00", "--out-dir", str(tmp_path)]) == 2
    assert f"{script}: cannot be written (No space left on device)" in capsys.readouterr().err
    assert script.read_bytes() == before and sorted(tmp_path.iterdir()) == [script]


def test_a_replaced_file_keeps_its_permission_bits(tmp_path):
    path = tmp_path / "records-view.md"
    path.write_text("old\n")
    os.chmod(path, 0o600)
    write_text(path, "new\n")
    assert path.read_text() == "new\n" and os.stat(path).st_mode & 0o777 == 0o600
