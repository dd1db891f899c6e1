"""Models by name. Add one by registering a factory in ``_REGISTRY``; imports stay lazy so a
heavy optional model costs nothing until it is asked for."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself stays torch-free: bench.runner.config reads it for --help
    from torch import nn

# name -> (module, class)
_REGISTRY: dict[str, tuple[str, str]] = {
    "circpad": ("models.circpad", "CircularPaddingCNN"),
    "compact": ("models.compact", "CompactCNN"),
}


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_model(name: str, image_size: int = 64, channels: int = 3, dropout: float = 0.5,
              bn_momentum: float = 0.01) -> nn.Module:
    """Build model ``name`` for square images of ``image_size`` pixels with ``channels`` channels."""
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(available())}") from None
    factory = getattr(importlib.import_module(module), cls)
    return factory(image_size=image_size, channels=channels, dropout=dropout, bn_momentum=bn_momentum)


def from_config(cfg) -> nn.Module:
    """The model a run configuration names (``bench.runner.config.Config`` or anything with ``model``,
    ``image_size``, ``dropout`` and ``bn_momentum``), on the CPU."""
    return get_model(cfg.model, image_size=cfg.image_size, dropout=cfg.dropout, bn_momentum=cfg.bn_momentum)


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
    with FlopCounterMode(display=False) as counter:
        F.binary_cross_entropy_with_logits(model(x).reshape(-1), y).backward()
    model.zero_grad(set_to_none=True)
    per_op = {str(k): v / batch for k, v in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops() / batch, per_op


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
