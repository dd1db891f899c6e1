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
    (["--epochs", "0"], "--epochs"),
    (["--train-events", "-5"], "--train-events"),
    (["--global-batch", "0"], "--global-batch"),
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


@pytest.mark.parametrize("flag,value", [("--preset", "huge"), ("--model", "resnet18"), ("--backend", "nccl"),
                                        ("--device", "tpu"), ("--optimizer", "lion"), ("--normalisation", "zscore"),
                                        ("--amp", "fp8"), ("--compile", "maybe")])
def test_choices_are_enforced_by_the_parser(flag, value, records, capsys):
    """Each choice's allowed values live with its field: the parser refuses others, naming the flag and them."""
    with pytest.raises(SystemExit) as exc:
        main([flag, value, "--out", str(records)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and flag in err and "invalid choice" in err
    assert records.read_text() == '{"existing": 1}\n'


def test_help_lists_each_choice(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "choices: auto, none, mpi, ddp, horovod" in out and "choices: circpad, compact" in out


def test_validate_checks_choices_of_a_config_made_in_code():
    from dataclasses import replace

    from bench.runner.config import UsageError, validate
    with pytest.raises(UsageError, match="--backend"):
        validate(replace(Config(), backend="nccl"))


def test_argparse_errors_also_exit_2(records, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--epochs", "three"])
    assert exc.value.code == 2


@pytest.mark.parametrize("out,why", [("/nonexistent-dir/r.jsonl", "does not exist"), ("/", "names a directory")])
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
