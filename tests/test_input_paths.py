"""Spec (docs/faults.md, 'Input paths'): every path flag of every entry point says what is wrong with a
path that is not a readable file of its kind (missing, a directory, a FIFO, empty, another format), exits 2
before any work, and never opens a FIFO (so never waits on it). Each entry point runs in this process."""
from __future__ import annotations

import os
import sys

import pytest

pytestmark = pytest.mark.slow  # the entry points start helpers (git, lscpu) as they set up

KINDS = {
    "missing": "no such file",
    "directory": "is a directory, not a file",
    "fifo": "is a FIFO (named pipe), not a file",
    "empty": "is empty",
    "other": None,  # a text file: the reader's own words, per entry point below
}


def make(tmp_path, kind: str, name: str = "input"):
    path = tmp_path / name
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "other":
        path.write_text("hello, not the file you want\n")
    return path


def strong_scaling(path, tmp_path):
    from bench.strong_scaling import main
    return main(["--data", str(path), "--out", str(tmp_path / "r.jsonl")])


def resume_checkpoint(path, tmp_path):
    from bench.strong_scaling import main
    if os.path.lexists(path):
        os.rename(path, f"{path}.n1")  # the checkpoint of the 1-rank run
    return main(["--checkpoint", str(path), "--resume", "--image-size", "16", "--global-batch", "64",
                 "--train-events", "256", "--val-events", "64", "--epochs", "1", "--out", str(tmp_path / "r.jsonl")])


def evaluate(path, tmp_path):
    from bench.evaluate import main
    return main(["--model-weights", str(path), "--out", str(tmp_path / "ev")])


def report(path, tmp_path):
    from reports.build import main
    return main([str(path), "--out", str(tmp_path / "report")])


def records_add(path, tmp_path):
    from bench.records import main
    return main(["add", str(path), "--to", str(tmp_path / "r.jsonl")])


def projection_records(path, tmp_path):
    from bench.projection.cli import main
    return main(["--records", str(path), "--calibration", str(path), "--plot", ""])


def projection_profiles(path, tmp_path):
    from bench.projection.cli import main
    return main(["--published", "--profiles", str(path), "--plot", ""])


def projection_calibration(path, tmp_path):
    from bench.projection.cli import main
    return main(["--calibration", str(path), "--plot", ""])


def delphes(path, tmp_path):
    from data.generation.convert_delphes import main
    return main([str(path), "--sample", "x", "--label", "0", "--xsec", "1", "--out", str(tmp_path / "s.h5")])


def benchmark(module, *flags):
    def run(path, tmp_path, monkeypatch):
        import importlib
        mod = importlib.import_module(module)
        monkeypatch.setattr(sys, "argv", [module, *[str(path) if f == "PATH" else f for f in flags]])
        from benchmarks import run_main
        with pytest.raises(SystemExit) as exc:
            run_main(mod.main)
        return exc.value.code
    return run


# What a path flag says differently: a missing checkpoint with --resume is a run started afresh (no error);
# the checkpoint is also an output, whose check names a directory so.
OWN_WORDS = {("bench.strong_scaling --checkpoint --resume", "directory"): "names a directory; give a file name",
             ("bench.strong_scaling --checkpoint --resume", "missing"): None}

# entry point -> (how to run it on the path, the words of "another format", whether an empty file is allowed)
ENTRIES = {
    "bench.strong_scaling --data": (strong_scaling, "not a readable HDF5 file", False),
    "bench.strong_scaling --checkpoint --resume": (resume_checkpoint, "not a checkpoint of bench.strong_scaling", False),
    "bench.evaluate --model-weights": (evaluate, "not a model file written by bench.strong_scaling --save-model", False),
    "reports.build RECORDS": (report, "no valid records", True),
    "bench.records add FILE": (records_add, "not valid JSON", True),
    "bench.projection --records": (projection_records, "not a calibration written by bench.projection", True),
    "bench.projection --profiles": (projection_profiles, "not valid JSON", False),
    "bench.projection --calibration": (projection_calibration, "not a calibration written by bench.projection", False),
    "data.generation.convert_delphes FILE": (delphes, None, False),
    "benchmarks.bench_cpu_sampling --records": (benchmark("benchmarks.bench_cpu_sampling", "--records", "PATH"),
                                                "not valid JSON", True),
    "benchmarks.validate_generate NPZ": (benchmark("benchmarks.validate_generate", "PATH"),
                                         "not a file of `bench_generate compare --save`", False),
    "benchmarks.bench_step --data": (benchmark("benchmarks.bench_step", "--data", "PATH", "--variants", "default"),
                                     None, False),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("entry", ENTRIES)
def test_a_path_that_is_not_a_readable_file_is_named_with_what_it_is(entry, kind, tmp_path, capsys, monkeypatch):
    run, other_words, empty_ok = ENTRIES[entry]
    if kind == "empty" and empty_ok:
        pytest.skip("an empty records file is a file of no records, not an error of its path")
    words = OWN_WORDS.get((entry, kind), KINDS[kind] or other_words)
    if words is None:
        pytest.skip("not an error here (a missing checkpoint), or a format this entry point reads only after "
                    "the work it checks the path for")
    path = make(tmp_path, kind)
    if "monkeypatch" in run.__code__.co_varnames:
        code = run(path, tmp_path, monkeypatch)
    else:
        try:
            code = run(path, tmp_path)
        except SystemExit as exc:  # argparse's error (convert_delphes)
            code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert words in err, err[-2000:]
    if kind != "other":
        assert str(path) in err


def test_a_delphes_file_given_twice_is_refused_before_it_is_read(tmp_path, capsys):
    """Its events would count twice in the sample (and its weight would halve)."""
    from data.generation.convert_delphes import main
    root = make(tmp_path, "other", "events.root")
    with pytest.raises(SystemExit) as exc:
        main([str(root), str(tmp_path / "." / "events.root"), "--sample", "x", "--label", "0", "--xsec", "1",
              "--out", str(tmp_path / "s.h5")])
    assert exc.value.code == 2 and "given twice" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()
