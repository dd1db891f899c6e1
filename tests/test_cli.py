"""Spec: bad input exits with status 2 and a message naming the flag, before any work and without
touching the records file; presets give their values unless a flag overrides them; asking for a backend
that is not installed says how to install it."""
import pytest

from bench.runner import backends
from bench.runner.config import PRESETS, Config, parse_config
from bench.strong_scaling import main


@pytest.fixture
def records(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"existing": 1}\n')
    return path


@pytest.mark.parametrize("args,flag", [
    (["--image-size", "60"], "--image-size"),
    (["--global-batch", "100", "--micro-batch", "30"], "--micro-batch"),
    (["--model", "resnet50"], "--model"),
    (["--epochs", "0"], "--epochs"),
    (["--train-events", "-5"], "--train-events"),
    (["--global-batch", "0"], "--global-batch"),
    (["--backend", "nccl"], "--backend"),
    (["--device", "tpu"], "--device"),
    (["--optimizer", "lion"], "--optimizer"),
    (["--normalisation", "zscore"], "--normalisation"),
    (["--dropout", "1.5"], "--dropout"),
    (["--global-batch", "4096", "--train-events", "1024"], "--global-batch"),
    (["--device", "cuda"], "--device cuda"),
    (["--data", "/nonexistent/file.h5"], "/nonexistent/file.h5"),
])
def test_bad_input_exits_2_naming_the_flag(args, flag, records, capsys):
    before = records.read_text()
    assert main(args + ["--out", str(records)]) == 2
    assert flag in capsys.readouterr().err
    assert records.read_text() == before


def test_argparse_errors_also_exit_2(records, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--preset", "huge", "--out", str(records)])
    assert exc.value.code == 2 and "--preset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "three"])
    assert exc.value.code == 2


@pytest.mark.parametrize("out,why", [("/nonexistent-dir/r.jsonl", "does not exist"), ("/", "not a writable file")])
def test_unwritable_records_path(out, why, capsys):
    assert main(["--out", out]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and why in err


def test_preset_then_flags():
    quick = parse_config(["--preset", "quick"])
    assert quick.image_size == PRESETS["quick"]["image_size"] and quick.label.startswith("quick")
    assert parse_config(["--preset", "quick", "--image-size", "64"]).image_size == 64
    paper = parse_config(["--preset", "paper"])
    assert (paper.image_size, paper.global_batch) == (224, 32768)
    assert parse_config([]).global_batch == Config().global_batch == 32768
    assert parse_config(["--sweep"]).sweep is True


def test_missing_backend_says_how_to_install(monkeypatch):
    monkeypatch.setattr(backends, "available", lambda name: name == "none")
    with pytest.raises(backends.BackendError, match="build_horovod.sh"):
        backends.resolve("horovod", 2)
    with pytest.raises(backends.BackendError, match="mpi4py"):
        backends.resolve("mpi", 2)
    with pytest.raises(backends.BackendError, match="cannot average"):
        backends.resolve("none", 4)
    assert backends.resolve("auto", 1) == "none"
