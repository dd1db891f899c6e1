"""Padding for detector images: circular in phi (width), zero in eta (height).

The detector is a cylinder: phi = -pi and phi = +pi are the same place, so the column left of
column 0 is column W-1. The reference group's public code appended the *last* columns on the right,
which reflects the edge instead of wrapping it; a phi roll of the input would then not roll the
feature map. Here it does (tests/test_models.py checks it).
"""
from __future__ import annotations

import torch
from torch import nn


class _PhiWrap(torch.autograd.Function):
    """Append the last ``p`` phi columns on the left and the first ``p`` on the right.

    ``torch.cat([x[..., -p:], x, x[..., :p]])`` is the same forward, but its backward turns each of the
    two edge slices into a zero-filled full-size gradient and adds them up: two fills and two additions
    of the whole activation per layer. Here the backward is one copy plus two edge-column additions, and
    both directions keep the input's memory format (channels-last stays channels-last).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: int) -> torch.Tensor:
        ctx.p = p
        w = x.shape[-1]
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        out = torch.empty((*x.shape[:-1], w + 2 * p), dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        out[..., p:p + w] = x
        out[..., :p] = x[..., w - p:]
        out[..., p + w:] = x[..., :p]
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        p = ctx.p
        w = g.shape[-1] - 2 * p
        grad = g[..., p:p + w].clone(memory_format=torch.preserve_format)
        grad[..., w - p:] += g[..., :p]
        grad[..., :p] += g[..., p + w:]
        return grad, None


def phi_wrap(x: torch.Tensor, p: int) -> torch.Tensor:
    """``x`` (..., W) padded circularly by ``p`` columns on each side of the last (phi) axis."""
    return _PhiWrap.apply(x, p)


class PhiCircularConv2d(nn.Conv2d):
    """A 'same' convolution with circular padding in phi and zero padding in eta.

    Only phi is padded by hand (one copy, see ``_PhiWrap``); the eta zero-padding is the convolution's
    own ``padding=(p, 0)``, which costs no extra copy.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        if kernel_size % 2 != 1:
            raise ValueError("kernel_size must be odd for a 'same' convolution")
        self.phi_pad = kernel_size // 2
        super().__init__(in_channels, out_channels, kernel_size, padding=(self.phi_pad, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(phi_wrap(x, self.phi_pad))
