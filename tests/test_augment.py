"""Spec (bench/runner/augment.py; docs/physics-reference.md, 'Augmentation'): --augment moves each training
event's lit pixels by an exact symmetry of the detector image (a roll in phi by whole pixels, eta -> -eta,
phi -> -phi), checked on hand-made images and against the same transforms on dense images in both memory
layouts; the draws are reproducible from (seed, epoch, rank, step) and differ between steps; validation and
test scoring never see them; the circular-padded CNN's convolutional features follow a phi roll by its total
pooling stride exactly, and only then; bad --augment values and --data-placement host are refused naming
the flag. --lr-decay's schedule and --keep best are checked on hand-computed values and a short run."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.runner import augment, train
from bench.runner.augment import Augment, Draws, transform_dense, transform_pixels
from bench.runner.config import UsageError, parse_config
from bench.runner.device_data import DeviceCache, DeviceLoader
from bench.runner.run import lr_factor
from data.synthetic import SyntheticSource
from models.circpad import CircularPaddingCNN

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")


def _one(shift=0, flip_eta=False, flip_phi=False):
    return Draws(np.array([shift]), np.array([flip_eta]), np.array([flip_phi]))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("draws, where", [
    (_one(shift=3), (2, 0)),  # iphi 5 + 3 wraps round to 0 in an 8-pixel row
    (_one(flip_eta=True), (5, 5)),
    (_one(flip_phi=True), (2, 2)),
    (_one(shift=1, flip_eta=True, flip_phi=True), (5, 1)),  # roll to 6, then mirrored: 7 - 6
])
def test_each_transform_moves_a_hand_made_pixel(draws, where, channels_last):
    size, c, ieta, iphi = 8, 1, 2, 5
    hw = size * size
    pixel = c * hw + ieta * size + iphi
    if channels_last:
        pixel = (ieta * size + iphi) * 3 + c
    out = int(transform_pixels(torch.tensor([pixel]), torch.tensor([0]), draws, size, 3, channels_last)[0])
    e, p = where
    assert out == ((e * size + p) * 3 + c if channels_last else c * hw + e * size + p)
    x = torch.zeros(1, 3, size, size)
    x[0, c, ieta, iphi] = 1.0
    assert transform_dense(x, draws)[0, c, e, p] == 1.0  # the dense reference agrees


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_cache_builds_the_transformed_images(channels_last):
    src = SyntheticSource(12, 16, seed=3)
    cache = DeviceCache(src, np.arange(12), CPU, channels_last)
    idx = np.arange(12)
    plain = cache.dense(idx)
    draws = Augment(augment.TRANSFORMS, seed=7).for_step(0, 12, 16)
    assert draws.shift.any() and draws.flip_eta.any() and draws.flip_phi.any() and not draws.flip_eta.all()
    slots = torch.from_numpy(cache.slots(idx))
    moved = cache.build(slots, cache.pixels_of(cache.slots(idx)), draws)
    torch.testing.assert_close(moved.contiguous(), transform_dense(plain.contiguous(), draws), rtol=0, atol=0)
    # nothing is lost or made: the same pixel values, moved
    torch.testing.assert_close(moved.sum(dim=(2, 3)), plain.sum(dim=(2, 3)))


def test_draws_are_reproducible_and_differ_between_steps_epochs_and_ranks():
    a = Augment(augment.TRANSFORMS, seed=11)
    same = [a.at(2, 1).for_step(5, 64, 64) for _ in range(2)]
    np.testing.assert_array_equal(same[0].shift, same[1].shift)
    np.testing.assert_array_equal(same[0].flip_eta, same[1].flip_eta)
    for other in (a.at(2, 1).for_step(6, 64, 64), a.at(3, 1).for_step(5, 64, 64), a.at(2, 0).for_step(5, 64, 64),
                  Augment(augment.TRANSFORMS, seed=12).at(2, 1).for_step(5, 64, 64)):
        assert not np.array_equal(other.shift, same[0].shift)
    assert (same[0].shift >= 0).all() and (same[0].shift < 64).all()
    only_roll = Augment(("roll-phi",), seed=11).for_step(0, 64, 64)
    assert not only_roll.flip_eta.any() and not only_roll.flip_phi.any() and only_roll.shift.any()


def test_parse_names_the_transforms():
    assert augment.parse("none") == () and augment.parse("all") == augment.TRANSFORMS
    assert augment.parse("flip-phi,roll-phi") == ("roll-phi", "flip-phi")
    with pytest.raises(ValueError, match="'roll-eta'"):
        augment.parse("roll-eta")


def test_bad_flags_are_refused_naming_them():
    with pytest.raises(UsageError, match="--augment: unknown transform 'spin'"):
        parse_config(["--augment", "spin"])
    with pytest.raises(UsageError, match="--augment works on the sparse device cache"):
        parse_config(["--augment", "all", "--data-placement", "host"])
    assert parse_config(["--augment", "all"]).data_placement == "device"  # auto picks the cache
    for bad in ("0.6,0.4", "0.6,0,0.4", "a,b,c", "0.6,0.2,nan", "0.6,0.2,-1"):
        with pytest.raises(UsageError, match="--split"):
            parse_config(["--split", bad])
    assert parse_config(["--split", "0.6,0.1,0.3"]).split == "0.6,0.1,0.3"
    assert parse_config([]).data_placement == "host"


def test_validation_and_test_scoring_are_never_augmented(monkeypatch):
    """The loaders that score events carry no augmentation, so their images are the plain ones."""
    calls = []
    real = augment.transform_pixels

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr("bench.runner.device_data.transform_pixels", counting)
    src = SyntheticSource(32, 16, seed=1)
    cache = DeviceCache(src, np.arange(32), CPU, True)
    net = CircularPaddingCNN(16).eval()
    first = train.predict(net, cache, np.arange(32), CPU, batch=8)
    assert not calls
    np.testing.assert_array_equal(first, train.predict(net, cache, np.arange(32), CPU, batch=8))
    loader = DeviceLoader(cache, [np.arange(8)], None, Augment(augment.TRANSFORMS, 1))
    loader.get()
    assert calls  # the training loader does transform


def test_circpad_features_follow_a_roll_by_the_pooling_stride_exactly():
    """Circular padding in phi makes each convolution commute with a roll in phi; three 2x2 poolings keep
    that for rolls by multiples of 8 pixels only, so the dense layers see a shifted feature map: the roll
    augmentation is a symmetry the model has to learn, not one it already has."""
    torch.manual_seed(0)
    net = CircularPaddingCNN(32).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        f = net.features(x)
        torch.testing.assert_close(net.features(torch.roll(x, 8, dims=-1)), torch.roll(f, 1, dims=-1))
        torch.testing.assert_close(net.features(torch.roll(x, 16, dims=-1)), torch.roll(f, 2, dims=-1))
        rolled_once = net.features(torch.roll(x, 1, dims=-1))
        assert not torch.allclose(rolled_once, f, atol=1e-3)
        assert not torch.allclose(net(torch.roll(x, 8, dims=-1)), net(x), atol=1e-6)  # the classifier is not


def _cfg(*flags):
    return parse_config(["--epochs", "10", *flags])


def test_learning_rate_schedules_by_hand():
    warm = _cfg("--lr-warmup-epochs", "2", "--lr-decay", "cosine")
    assert lr_factor(warm, 0.0) == pytest.approx(0.1)
    assert lr_factor(warm, 1.0) == pytest.approx(0.55)
    assert lr_factor(warm, 2.0) == pytest.approx(1.0)
    assert lr_factor(warm, 6.0) == pytest.approx(0.5)  # halfway through the 8 epochs after the warm-up
    assert lr_factor(warm, 10.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(warm, 4.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    step = _cfg("--lr-decay", "step")
    assert [lr_factor(step, t) for t in (0, 4.9, 5.0, 7.4, 7.5, 9.9)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert lr_factor(_cfg(), 7.0) == 1.0
    with pytest.raises(SystemExit):
        parse_config(["--lr-decay", "linear"])


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_a_run_keeps_the_epoch_of_lowest_validation_loss(tmp_path):
    out = tmp_path / "r.jsonl"
    args = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "128",
            "--epochs", "4", "--threads", "1", "--lr", "0.02", "--keep", "best", "--augment", "all",
            "--lr-decay", "cosine", "--out", str(out), "--save-model", str(tmp_path / "m.pt")]
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert rec["kept_epoch"] == int(np.argmin(rec["val_loss"]))
    assert rec["config"]["augment"] == "all" and rec["data_placement"] == "device"
    assert rec["config"]["keep"] == "best" and rec["config"]["lr_decay"] == "cosine"
