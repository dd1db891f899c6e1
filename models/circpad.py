"""The circular-padding CNN of the KISTI multi-jet study (Kim et al., 'Multi-Jet Event
classification with Convolutional neural network at Large Scale', Section 2 and Figure 1; the layer widths
and every other figure, with their sources: docs/physics-reference.md, 'Model').

    image (3, H, W)  H = eta bins, W = phi bins, H and W divisible by 8
    3 x [pad(circular phi, zero eta) -> conv3x3 -> maxpool2 -> ReLU -> BatchNorm -> Dropout2d]
        channels 3 -> 64 -> 128 -> 256
    pad -> conv3x3 (256 -> 256) -> ReLU -> BatchNorm            (no pool, no dropout)
    flatten -> Linear(256 * H/8 * W/8, 512) -> ReLU -> Dropout -> Linear(512, 1) -> logit

9,351,937 parameters at 64x64 and 103,723,777 at 224x224: almost all in the first dense layer.
"""
from __future__ import annotations

import torch
from torch import nn

from models.padding import PhiCircularConv2d

WIDTHS = (64, 128, 256, 256)


def _block(cin: int, cout: int, pool: bool, dropout: float, bn_momentum: float) -> nn.Sequential:
    layers: list[nn.Module] = [PhiCircularConv2d(cin, cout)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    # BatchNorm after the ReLU, as in the reference. PyTorch's momentum is the weight of the new
    # batch: Keras' momentum 0.99 is PyTorch's 0.01.
    layers += [nn.ReLU(inplace=True), nn.BatchNorm2d(cout, momentum=bn_momentum)]
    if pool and dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class CircularPaddingCNN(nn.Module):
    def __init__(self, image_size: int = 64, channels: int = 3, dropout: float = 0.5,
                 bn_momentum: float = 0.01):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"image size {image_size} is not divisible by 8")
        widths = (channels, *WIDTHS)
        self.features = nn.Sequential(*[
            _block(widths[i], widths[i + 1], pool=i < 3, dropout=dropout, bn_momentum=bn_momentum)
            for i in range(4)
        ])
        flat = WIDTHS[-1] * (image_size // 8) ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(512, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(-1)
