"""Spec: every output path of every entry point is checked before any work; one that cannot be written
exits 2 with one line naming the flag, and nothing already written changes."""
import pytest

from bench import strong_scaling
from bench.projection import cli as projection
from launchers import make as launchers
from reports import build


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a directory\n")
    return path


@pytest.mark.parametrize("flag", ["--save-model", "--checkpoint", "--out"])
def test_runner_outputs(flag, tmp_path, a_file, capsys):
    records = tmp_path / "r.jsonl"
    records.write_text('{"kept": true}\n')
    args = {"--out": str(records), flag: str(tmp_path / "no_such_dir" / "x")}
    assert strong_scaling.main([t for kv in args.items() for t in kv] + ["--epochs", "500"]) == 2
    err = capsys.readouterr().err
    assert flag in err and "does not exist" in err and err.count("\n") == 1
    assert records.read_text() == '{"kept": true}\n'


def test_report_out_below_a_file(a_file, capsys):
    assert build.main([str(a_file), "--out", str(a_file / "report")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and err.count("\n") == 1


@pytest.mark.parametrize("flag", ["--plot", "--emit-records", "--calibration", "--json"])
def test_projection_outputs(flag, a_file, capsys):
    args = {"--plot": "", flag: str(a_file / "x")}
    extra = ["--calibrate"] if flag == "--calibration" else []
    assert projection.main([t for kv in args.items() for t in kv] + extra) == 2
    err = capsys.readouterr().err
    assert flag in err and err.count("\n") == 1


def test_launcher_out_dir(a_file, capsys):
    assert launchers.main(["slurm", "--nodes", "2", "--out-dir", str(a_file / "jobs"), "--", "--preset", "quick"]) == 2
    assert "--out-dir" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--out", "--save-model", "--mllog"])
def test_a_file_flag_naming_a_directory_is_refused(flag, tmp_path, capsys):
    """A file flag ending in '/' (or naming an existing directory) is refused; it never becomes a file such as
    ``DIR/-1ranks`` (the stray files once committed at the root came from a path like that)."""
    args = ["--out", str(tmp_path / "r.jsonl"), flag, f"{tmp_path}/new/"] if flag != "--out" else \
        ["--out", f"{tmp_path}/"]
    assert strong_scaling.main([*args, "--sweep"]) == 2
    assert "names a directory" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*ranks*"))


def test_run_path_keeps_empty_and_refuses_a_directory():
    from bench.runner.checkpoint import run_path
    assert run_path("", 2, sweep=True) == ""
    assert run_path("m.pt", 2, sweep=True) == "m-2ranks.pt"
    with pytest.raises(ValueError, match="names a directory"):
        run_path("results/", 2, sweep=True)
