"""The NERSC compact CNN (Ayyar et al., 'Use of CNNs for signal-background classification in
High Energy Physics', poster: best ATLAS RPV-SUSY model, 43,009 parameters at 64x64x1).

    3 x [conv3x3 (10 filters) -> ReLU -> maxpool2 -> Dropout]
    flatten -> Dropout -> Linear(10 * H/8 * W/8, 64) -> ReLU -> Linear(64, 1) -> logit

The poster's convolutions are 'same'; here they pad circularly in phi like the reference CNN.
With 3 input channels it has 43,189 parameters at 64x64. Sources: docs/physics-reference.md, 'Model'.
"""
from __future__ import annotations

import torch
from torch import nn

from models.padding import PhiCircularConv2d

FILTERS = 10
HIDDEN = 64


class CompactCNN(nn.Module):
    def __init__(self, image_size: int = 64, channels: int = 3, dropout: float = 0.5,
                 bn_momentum: float = 0.01):  # no batch norm here; accepted for a uniform signature
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image size {image_size} is not divisible by 8")
        layers: list[nn.Module] = []
        cin = channels
        for _ in range(3):
            layers += [PhiCircularConv2d(cin, FILTERS), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                       nn.Dropout(dropout)]
            cin = FILTERS
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(FILTERS * (image_size // 8) ** 2, HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(HIDDEN, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(-1)
