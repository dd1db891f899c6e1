"""Models by name. Add one by registering a factory in ``_REGISTRY``; imports stay lazy so a
heavy optional model costs nothing until it is asked for."""
from __future__ import annotations

import importlib

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


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
