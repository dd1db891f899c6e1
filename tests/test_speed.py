"""Spec: the speed options of the training step change how it runs, not what it computes. The circular phi
padding has the gradient of the concatenation it replaces, in both memory formats; channels-last, each
optimizer implementation and torch.compile train to the default's loss within float tolerance; the chosen
options are in the record's config; fp16 on a CPU is refused naming the flag; bf16 autocast on a CPU is an
explicit, recorded choice. GPU tests run only where CUDA is available."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import models
from bench.runner import speed
from bench.runner.backends import GradSync
from bench.runner.comm import init_world
from bench.runner.config import parse_config
from bench.runner.sampler import epoch_plan
from bench.strong_scaling import main
from bench.runner.train import train_epoch
from data.base import training_weights
from data.synthetic import SyntheticSource
from models.padding import phi_wrap

ROOT = Path(__file__).resolve().parent.parent
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("p", [1, 2])
def test_phi_wrap_is_the_concatenation_with_its_gradient(fmt, p):
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    ref = torch.cat([x[..., -p:], x, x[..., :p]], dim=-1)
    out = phi_wrap(x, p)
    assert torch.equal(out, ref) and out.is_contiguous(memory_format=fmt)
    g = torch.randn_like(out)
    (got,), (want,) = torch.autograd.grad(out, x, g), torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(got, want)
    assert got.is_contiguous(memory_format=fmt)
    assert torch.autograd.gradcheck(lambda t: phi_wrap(t, p), (x,))


def train_losses(model_name="circpad", fmt="contiguous", impl="loop", compile=False, amp="none",
                 device="cpu", steps=3):
    """Losses of ``steps`` optimizer steps on the same data and initial weights (dropout off)."""
    torch.manual_seed(0)
    dev = torch.device(device)
    net = models.get_model(model_name, image_size=16, dropout=0.0).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, **speed.optimizer_kwargs(impl))
    source = SyntheticSource(32 * steps, image_size=16, seed=3)
    tw = training_weights(source.labels, source.weights)
    plan = epoch_plan(np.arange(len(source)), 0, 1, 32, 1, 0, 32)
    world = init_world()
    losses = []
    for s in range(steps):
        t = train_epoch(speed.maybe_compile(net, compile), opt, GradSync(world), world, source, plan[s:s + 1],
                        tw, dev, 0, 1, precision=speed.Precision(amp, dev),
                        memory_format=speed.memory_format(fmt))
        losses.append(t.train_loss)
    return losses


@pytest.mark.parametrize("options", [dict(fmt="channels_last"), dict(impl="foreach"), dict(impl="fused"),
                                     dict(fmt="channels_last", impl="fused")])
def test_speed_options_train_like_the_default(options):
    # Adam normalises each update, so summation-order differences of float32 grow over steps: 1e-3.
    np.testing.assert_allclose(train_losses(**options), train_losses(), rtol=1e-3)


@pytest.mark.slow  # torch.compile starts Inductor's compile workers; ~9 s on 2 cores
def test_compile_trains_like_eager():
    np.testing.assert_allclose(train_losses("compact", compile=True), train_losses("compact"), rtol=1e-3)


@pytest.mark.slow  # bf16 autocast on the CPU: ~7 s by itself on 2 cores
def test_bf16_autocast_on_cpu_trains_close_to_fp32():
    np.testing.assert_allclose(train_losses(amp="bf16"), train_losses(), rtol=0.05)


def test_fp16_on_cpu_is_refused_naming_the_flag(tmp_path, capsys):
    assert main(["--amp", "fp16", "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "--amp fp16" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("flag,value", [("--memory-format", "nhwc"), ("--amp", "fp8"),
                                        ("--optimizer-impl", "magic"), ("--cpu-allocator", "tcmalloc")])
def test_unknown_speed_option_exits_2(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # the parser refuses a value outside the field's choices
        main([flag, value, "--out", str(tmp_path / "r.jsonl")])
    assert exc.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()


def test_defaults_and_flags():
    from bench.runner.config import auto_amp
    cfg = parse_config([])
    assert (cfg.memory_format, cfg.amp, cfg.compile, cfg.optimizer_impl, cfg.cpu_allocator) == \
        ("channels_last", auto_amp("cpu")[0], "off", "fused", "reuse")  # bf16 where the CPU has a bf16 unit
    assert parse_config(["--compile"]).compile == "on"
    assert parse_config(["--compile", "off", "--device", "cuda"]).compile == "off"
    assert parse_config(["--device", "cuda"]).compile == "on"


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_options_are_in_the_record(tmp_path):
    out = tmp_path / "r.jsonl"
    args = ["--image-size", "16", "--global-batch", "32", "--train-events", "64", "--val-events", "64",
            "--epochs", "2", "--threads", "1", "--amp", "bf16", "--memory-format", "contiguous",
            "--optimizer-impl", "foreach", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (rec["config"]["amp"], rec["config"]["memory_format"], rec["config"]["optimizer_impl"]) == \
        ("bf16", "contiguous", "foreach")
    assert rec["cpu_allocator"] in ("reuse", "system") and rec["config"]["cpu_allocator"] == "reuse"


@needs_cuda
@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_cuda_training_step(amp):
    losses = train_losses(fmt="channels_last", impl="fused", amp=amp, device="cuda")
    # fp32 on the GPU runs the convolutions in TF32 (PyTorch's default for cuDNN): 10 mantissa bits, so a
    # few 1e-3 after three steps (seen on an H100: 2.9e-3).
    np.testing.assert_allclose(losses, train_losses(), rtol=0.05 if amp != "none" else 1e-2)


@needs_cuda
@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_cuda_run_records_the_gpu(tmp_path):
    out = tmp_path / "r.jsonl"
    args = ["--device", "cuda", "--amp", "bf16", "--image-size", "16", "--global-batch", "32",
            "--train-events", "64", "--val-events", "64", "--epochs", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["device"] == "cuda" and rec["config"]["amp"] == "bf16" and rec["device_name"]
