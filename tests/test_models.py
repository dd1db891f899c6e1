"""Spec: the reference CNN and the compact CNN, by name, with the exact parameter counts of the papers;
phi is wrapped (a roll of the input by k pixels in phi rolls the first convolution's output by k), eta is
zero-padded (not wrapped)."""
import pytest
import torch

import models
from bench.runner.config import UsageError, parse_config
from models.padding import PhiCircularConv2d

STUDY_MODELS = [n for n in models.available() if not models.is_torchvision(n)]


@pytest.mark.parametrize("name,size,expected", [
    ("circpad", 64, 9_351_937),
    ("circpad", 224, 103_723_777),
    ("compact", 64, 43_189),  # the poster's 43,009 with one input channel; 3 channels add 180
])
def test_parameter_counts(name, size, expected):
    assert models.count_parameters(models.get_model(name, image_size=size)) == expected


def test_compact_with_one_channel_matches_the_poster():
    assert models.count_parameters(models.get_model("compact", image_size=64, channels=1)) == 43_009


@pytest.mark.parametrize("name", STUDY_MODELS)
@pytest.mark.parametrize("size", [32, 64])
def test_output_is_one_logit_per_image(name, size):
    out = models.get_model(name, image_size=size).eval()(torch.randn(5, 3, size, size))
    assert out.shape == (5,)


def test_unknown_model_and_bad_size_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        models.get_model("resnet")
    with pytest.raises(ValueError, match="divisible by 8"):
        models.get_model("circpad", image_size=60)


def first_conv(name):
    torch.manual_seed(0)
    model = models.get_model(name, image_size=32).eval()
    return next(m for m in model.modules() if isinstance(m, PhiCircularConv2d))


@pytest.mark.parametrize("name", STUDY_MODELS)
@pytest.mark.parametrize("k", [1, 5, 31])
def test_phi_roll_rolls_the_feature_map(name, k):
    conv = first_conv(name)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        rolled_then_conv = conv(torch.roll(x, k, dims=-1))
        conv_then_rolled = torch.roll(conv(x), k, dims=-1)
    torch.testing.assert_close(rolled_then_conv, conv_then_rolled)


def test_column_zero_sees_the_last_column():
    conv = PhiCircularConv2d(1, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 1, 0] = 1.0  # output(i, j) = input(i, j - 1)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 7] = 1.0  # last phi column
    y = conv(x)
    assert y[0, 0, 3, 0] == 1.0  # wrapped to the first column, not reflected or dropped


def test_eta_is_not_wrapped():
    conv = first_conv("circpad")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(conv(torch.roll(x, 3, dims=-2)), torch.roll(conv(x), 3, dims=-2))
        # zero padding in eta: the top row's output sees only rows 0 and 1
        changed = x.clone()
        changed[:, :, -1] += 10.0  # the bottom row cannot reach the top row through a wrap
        torch.testing.assert_close(conv(changed)[..., 0, :], conv(x)[..., 0, :])


def test_batchnorm_momentum_defaults_to_the_models_own():
    """0 (the default) resolves, in the configuration the record carries, to the study's 0.01 for its CNN and
    PyTorch's 0.1 for torchvision's models; a given value is kept; one outside [0, 1] is refused."""
    assert parse_config(["--model", "circpad"]).bn_momentum == 0.01
    assert parse_config(["--model", "resnet50", "--image-size", "224"]).bn_momentum == 0.1
    assert parse_config(["--model", "resnet50", "--image-size", "224", "--bn-momentum", "0.05"]).bn_momentum == 0.05
    with pytest.raises(UsageError, match="--bn-momentum"):
        parse_config(["--bn-momentum", "-0.1"])
    net = models.get_model("circpad", image_size=16)
    assert {m.momentum for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.01}
