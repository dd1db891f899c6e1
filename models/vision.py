"""Standard image models from torchvision, adapted the usual way for detector images.

    resnet50      He et al. 2016, arXiv:1512.03385          23,510,081 parameters
    densenet121   Huang et al. 2017, arXiv:1608.06993        6,954,881 parameters
    inception_v3  Szegedy et al. 2016, arXiv:1512.00567     21,787,617 parameters (no auxiliary head)
    mobilenet_v2  Sandler et al. 2018, arXiv:1801.04381      2,225,153 parameters

Each is torchvision's own definition (``torchvision.models``), randomly initialised (no weights are
downloaded), with the three detector channels as its three input channels and one output: the logit. The
parameter counts above are for three channels (tests/test_vision_models.py checks them).

* ``bn_momentum`` is set on every BatchNorm layer (PyTorch convention); its default, 0.1, is PyTorch's and
  torchvision's own (the study's 0.01 leaves the running statistics of these deep BatchNorm stacks far behind
  on short runs: models.default_bn_momentum).
* ``dropout`` is the classifier dropout of mobilenet_v2 and inception_v3; resnet50 and densenet121 have
  none as torchvision builds them (densenet121's per-layer ``drop_rate`` stays 0).
* ``circular_phi``: every convolution that pads pads circularly in phi (the image's width; the detector is a
  cylinder) and with zeros in eta, as the study's CNN does; pooling layers keep their own padding. Without
  it the models are torchvision's, zero-padded.
* inception_v3 is built without its auxiliary classifier (``aux_logits=False``), so training and evaluation
  return the same single output.

Image sizes (``models.TORCHVISION_MIN_SIZE``, measured: batch 2, training mode): torchvision's models take
any size from their minimum up, through their global average pooling; the native sizes are 224x224 (299x299
for inception_v3). Below the minimum a feature map becomes smaller than a kernel.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from models import TORCHVISION_MIN_SIZE, check_image_size
from models.padding import phi_wrap


class TorchvisionUnavailable(ImportError):
    """torchvision does not import, or its C++ operators do not load, in this environment."""


@functools.cache
def torchvision_models():
    """``torchvision.models``; raises TorchvisionUnavailable saying why and how to install it."""
    try:
        import torchvision
        cpu = torch.device("cpu")  # also under a ``with torch.device("meta")`` block
        torchvision.ops.nms(torch.zeros(1, 4, device=cpu), torch.ones(1, device=cpu), 0.5)  # C++ operators loaded
    except Exception as exc:  # ModuleNotFoundError, or a wheel built for another torch (RuntimeError)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TorchvisionUnavailable(
            f"torchvision does not work beside torch {torch.__version__} here ({why}); set up the "
            "environment of the torchvision models with 'MULTIJET_VISION=1 bash scripts/setup.sh' and run "
            "with .venv-vision/bin/python (README, 'Standard image models')") from None
    return torchvision.models


def _wrap_phi(p: int, module: nn.Module, args: tuple) -> tuple:
    return (phi_wrap(args[0], p),)


def circular_phi(model: nn.Module) -> nn.Module:
    """Make every padded convolution of ``model`` pad circularly in phi (last axis) and with zeros in eta:
    its phi padding is moved into a forward pre-hook that wraps the input (models.padding.phi_wrap), so the
    parameters and their names are unchanged. Returns ``model``."""
    for conv in model.modules():
        if isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple):
            ph, pw = conv.padding
            if pw:
                conv.padding = (ph, 0)
                conv.register_forward_pre_hook(functools.partial(_wrap_phi, pw))
    return model


class VisionModel(nn.Module):
    """A torchvision model (name as torchvision spells it) for ``channels`` x ``image_size`` x
    ``image_size`` images, returning logits of shape (N,). Raises ValueError for a name that is not a torchvision
    model or a size it cannot take (models.check_image_size), TorchvisionUnavailable when torchvision does not
    work here."""

    def __init__(self, name: str, image_size: int = 224, channels: int = 3, dropout: float = 0.5,
                 bn_momentum: float = 0.1, circular: bool = False):
        super().__init__()
        if name not in TORCHVISION_MIN_SIZE:
            raise ValueError(f"{name!r} is not one of the torchvision models {', '.join(TORCHVISION_MIN_SIZE)}")
        check_image_size(name, image_size)
        tm = torchvision_models()
        if name == "resnet50":
            net = tm.resnet50(num_classes=1)
        elif name == "densenet121":
            net = tm.densenet121(num_classes=1)
        elif name == "inception_v3":
            net = tm.inception_v3(num_classes=1, aux_logits=False, init_weights=True, dropout=dropout)
        else:
            net = tm.mobilenet_v2(num_classes=1, dropout=dropout)
        if channels != 3:
            _set_input_channels(net, channels)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = bn_momentum
        self.net = circular_phi(net) if circular else net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def _set_input_channels(net: nn.Module, channels: int) -> None:
    """Replace the first convolution by one with ``channels`` inputs and otherwise the same shape."""
    for parent in net.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(parent, name, nn.Conv2d(channels, child.out_channels, child.kernel_size, child.stride,
                                                child.padding, bias=child.bias is not None))
                return


def _factory(name: str):
    def build(image_size: int = 224, channels: int = 3, dropout: float = 0.5, bn_momentum: float = 0.1,
              circular_phi: bool = False) -> VisionModel:
        return VisionModel(name, image_size, channels, dropout, bn_momentum, circular_phi)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"torchvision's {name} as a VisionModel."
    return build


resnet50 = _factory("resnet50")
densenet121 = _factory("densenet121")
inception_v3 = _factory("inception_v3")
mobilenet_v2 = _factory("mobilenet_v2")
