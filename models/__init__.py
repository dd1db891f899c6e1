"""Models by name. Add one by registering a factory in ``_REGISTRY``; imports stay lazy so a
heavy optional model costs nothing until it is asked for.

Two families: the study's CNN (``circpad``) and the compact CNN, which pad circularly in phi by
construction and need an image size divisible by 8; and torchvision's standard models (models/vision.py:
``resnet50``, ``densenet121``, ``inception_v3``, ``mobilenet_v2``), which take any size from their minimum
and pad circularly in phi only when asked (``circular_phi``).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself stays torch-free: bench.runner.config reads it for --help
    from torch import nn

# name -> (module, class)
_REGISTRY: dict[str, tuple[str, str]] = {
    "circpad": ("models.circpad", "CircularPaddingCNN"),
    "compact": ("models.compact", "CompactCNN"),
    "resnet50": ("models.vision", "resnet50"),
    "densenet121": ("models.vision", "densenet121"),
    "inception_v3": ("models.vision", "inception_v3"),
    "mobilenet_v2": ("models.vision", "mobilenet_v2"),
}
# The torchvision models (models/vision.py) and the smallest square image each trains on, measured in
# training mode at batch 2; kept here so that checking a size needs neither torch nor torchvision.
TORCHVISION_MIN_SIZE = {"resnet50": 32, "densenet121": 32, "inception_v3": 75, "mobilenet_v2": 32}


def available() -> list[str]:
    return sorted(_REGISTRY)


def default_bn_momentum(name: str) -> float:
    """The BatchNorm momentum (PyTorch convention) a model trains with unless told otherwise: 0.01 for the
    study's CNNs (the reference's Keras momentum 0.99; the compact CNN has no BatchNorm), PyTorch's default 0.1
    for torchvision's models, whose deep BatchNorm stacks evaluate badly on short runs with 0.01 (MobileNet-V2
    on the toy: validation AUC 0.50 after 3 epochs with 0.01, 0.84 with 0.1; docs/models.md)."""
    return 0.1 if is_torchvision(name) else 0.01


def is_torchvision(name: str) -> bool:
    return name in TORCHVISION_MIN_SIZE


def check_image_size(name: str, image_size: int) -> None:
    """Raise ValueError (saying which sizes work) when model ``name`` cannot take square images of
    ``image_size`` pixels. Needs no torch."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(available())}")
    if is_torchvision(name):
        least = TORCHVISION_MIN_SIZE[name]
        if image_size < least:
            raise ValueError(f"{name} takes images of at least {least}x{least} pixels (a smaller one leaves a "
                             f"feature map smaller than a kernel), got {image_size}")
    elif image_size % 8:
        raise ValueError(f"{name} needs an image size divisible by 8 (three 2x2 poolings), got {image_size}")


def check_available(name: str) -> None:
    """Raise ImportError (models.vision.TorchvisionUnavailable, saying how to install it) when model ``name``
    needs torchvision and torchvision does not work in this environment."""
    if is_torchvision(name):
        from models.vision import torchvision_models
        torchvision_models()


def get_model(name: str, image_size: int = 64, channels: int = 3, dropout: float = 0.5,
              bn_momentum: float | None = None, circular_phi: bool = False) -> nn.Module:
    """Build model ``name`` for square images of ``image_size`` pixels with ``channels`` channels; its
    forward takes (N, channels, image_size, image_size) and returns logits (N,). ``circular_phi`` applies to
    the torchvision models (the study's CNNs always pad circularly in phi); ``bn_momentum`` None or 0: the
    model's own (``default_bn_momentum``). Raises ValueError for an unknown
    name or a size the model cannot take, ImportError when a torchvision model's torchvision is missing."""
    check_image_size(name, image_size)
    module, cls = _REGISTRY[name]
    factory = getattr(importlib.import_module(module), cls)
    kw = {"circular_phi": circular_phi} if is_torchvision(name) else {}
    return factory(image_size=image_size, channels=channels, dropout=dropout,
                   bn_momentum=bn_momentum or default_bn_momentum(name), **kw)


def from_config(cfg) -> nn.Module:
    """The model a run configuration names (``bench.runner.config.Config`` or anything with ``model``,
    ``image_size``, ``dropout``, ``bn_momentum`` and optionally ``circular_phi``), on the CPU."""
    return get_model(cfg.model, image_size=cfg.image_size, channels=channels_of(cfg), dropout=cfg.dropout,
                     bn_momentum=cfg.bn_momentum, circular_phi=getattr(cfg, "circular_phi", False))


def channels_of(cfg) -> int:
    """Image channels a configuration trains on: 3 (HCAL E, ECAL E, track pT), 4 with ``btag_channel``."""
    return 4 if getattr(cfg, "btag_channel", False) else 3


def training_flops_of_config(cfg) -> float:
    """Training FLOPs per image (``training_flops``) of the model a configuration names, counted on PyTorch's
    meta device: no memory is allocated and nothing is computed, so it costs milliseconds even for
    ResNet-50 at 224x224."""
    import torch

    with torch.device("meta"):
        net = from_config(cfg)
    return training_flops(net, cfg.image_size, channels_of(cfg))[0]


def training_flops(model: nn.Module, image_size: int, channels: int = 3, batch: int = 2) -> tuple[float, dict]:
    """Floating-point operations of one training image: forward and backward of the binary cross-entropy
    loss, counted by ``torch.utils.flop_counter`` (convolutions and matrix products; element-wise work is not
    counted). Runs one step on ``batch`` random images on the model's device and leaves no gradient behind.

    Returns ``(flops per image, {operator: flops per image})``.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    x = torch.rand(batch, channels, image_size, image_size, device=device)
    y = torch.rand(batch, device=device)
    fixed = {torch.ops.aten.convolution_backward: _conv_backward_flop}
    with FlopCounterMode(display=False, custom_mapping=fixed) as counter:
        F.binary_cross_entropy_with_logits(model(x).reshape(-1), y).backward()
    model.zero_grad(set_to_none=True)
    per_op = {str(k): v / batch for k, v in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops() / batch, per_op


def _conv_backward_flop(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of a convolution's backward (shapes in, as torch.utils.flop_counter's formulas take them):
    torch's own formula (``conv_backward_flop``) counts the weight gradient of a grouped convolution as if it
    were ungrouped, ``groups`` times too much (x 32 to x 960 for MobileNet-V2's depthwise layers, which
    made its training FLOPs 6.8 times its published forward cost instead of 3). Here the weight gradient
    costs what the forward does, as for an ungrouped convolution: the grad-input term is torch's, the
    grad-weight term is divided by ``groups``."""
    from torch.utils.flop_counter import conv_flop_count, get_shape

    def t(shape):
        return [shape[1], shape[0], *shape[2:]]

    flop = 0
    if output_mask[0]:
        flop += conv_flop_count(grad_out_shape, w_shape, list(get_shape(out_shape[0])), not transposed)
    if output_mask[1]:
        gw = list(get_shape(out_shape[1]))
        pair = (t(grad_out_shape), t(x_shape)) if transposed else (t(x_shape), t(grad_out_shape))
        flop += conv_flop_count(*pair, t(gw), transposed=False) // groups
    return flop


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
