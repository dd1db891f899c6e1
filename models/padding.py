"""Padding for detector images: circular in phi (width), zero in eta (height).

The detector is a cylinder: phi = -pi and phi = +pi are the same place, so the column left of
column 0 is column W-1. The reference group's public code appended the *last* columns on the right,
which reflects the edge instead of wrapping it; a phi roll of the input would then not roll the
feature map. Here it does (tests/test_models.py checks it).
"""
from __future__ import annotations

import torch
from torch import nn


class PhiCircularConv2d(nn.Conv2d):
    """A 'same' convolution with circular padding in phi and zero padding in eta.

    Only phi is padded by hand (one concatenation); the eta zero-padding is the convolution's own
    ``padding=(p, 0)``, which costs no extra copy.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd for a 'same' convolution")
        self.phi_pad = kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, padding=(self.phi_pad, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.phi_pad
        x = torch.cat([x[..., -p:], x, x[..., :p]], dim=-1)
        return super().forward(x)
