"""Symmetry augmentation of the training images: ``--augment`` (docs/physics-reference.md, 'Augmentation').

Three transforms, each an exact symmetry of the detector images this project makes (eta along the height,
phi along the width, both binned uniformly; data.generation.detector):

* ``roll-phi``: phi -> phi + k * 2 pi / W for a whole number k of pixels drawn uniformly in [0, W): the
  beam axis is an axis of rotational symmetry of the collision, and the detector (towers and tracks) is
  uniform in phi, so a rotation by whole pixels maps the image grid onto itself.
* ``flip-eta``: eta -> -eta (row i -> H - 1 - i): the two proton beams are alike and the detector is
  forward-backward symmetric (eta cells symmetric about 0).
* ``flip-phi``: phi -> -phi (column j -> W - 1 - j, the phi bins span [-pi, pi) in equal steps): a mirror
  reflection of the transverse plane, parity times a rotation; QCD and the gluino pair production conserve
  parity, and the images hold no track charge or field bending that would tell the two apart.

Each holds only for a detector that has the symmetry: an asymmetric detector card (cracks, dead cells or
a material map that differ in phi or between the two ends), a solenoid whose field bending is seen by the
images, or beams of unequal energy break it. Applied to the training events only, never to validation or
test events, on the lit pixels of the sparse device cache (bench/runner/device_data.py) before the dense
batch is built: a few integer operations per lit pixel.

The draws are reproducible: step ``s`` of epoch ``e`` on rank ``r`` uses numpy's generator seeded with
(seed, e, r, s), whatever else the run does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TRANSFORMS = ("roll-phi", "flip-eta", "flip-phi")


def parse(text: str) -> tuple[str, ...]:
    """The transforms named by ``--augment``: 'none', 'all', or a comma-separated list of TRANSFORMS.
    Raises ValueError naming the unknown name."""
    text = text.strip()
    if text in ("", "none"):
        return ()
    if text == "all":
        return TRANSFORMS
    names = tuple(t.strip() for t in text.split(","))
    bad = [t for t in names if t not in TRANSFORMS]
    if bad:
        raise ValueError(f"unknown transform {bad[0]!r}; choose none, all, or a comma-separated list of "
                         f"{', '.join(TRANSFORMS)}")
    return tuple(t for t in TRANSFORMS if t in names)  # a fixed order, each once


@dataclass(frozen=True)
class Draws:
    """One batch's transforms: ``shift`` int64 (n,) phi pixels, ``flip_eta`` and ``flip_phi`` bool (n,)."""
    shift: np.ndarray
    flip_eta: np.ndarray
    flip_phi: np.ndarray


@dataclass(frozen=True)
class Augment:
    """The transforms of a run and its seed; ``for_step`` draws one batch's."""
    transforms: tuple[str, ...]
    seed: int
    epoch: int = 0
    rank: int = 0

    def at(self, epoch: int, rank: int) -> "Augment":
        return Augment(self.transforms, self.seed, epoch, rank)

    def for_step(self, step: int, n: int, width: int) -> Draws:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, step])
        shift = rng.integers(0, width, n) if "roll-phi" in self.transforms else np.zeros(n, np.int64)
        flip_eta = rng.random(n) < 0.5 if "flip-eta" in self.transforms else np.zeros(n, bool)
        flip_phi = rng.random(n) < 0.5 if "flip-phi" in self.transforms else np.zeros(n, bool)
        return Draws(shift.astype(np.int64), flip_eta, flip_phi)


def transform_pixels(pixel: torch.Tensor, row: torch.Tensor, draws: Draws, size: int, channels: int,
                     channels_last: bool) -> torch.Tensor:
    """The flat pixel indices ``pixel`` (int, shape (P,)) of the events ``row`` (int64 (P,), positions in
    the batch) moved by each event's draws. Layout: c*H*W + ieta*W + iphi (NCHW) or
    (ieta*W + iphi)*C + c (``channels_last``), with H = W = ``size``. Returns int64 (P,)."""
    hw = size * size
    p = pixel.long()
    if channels_last:
        cell, c = p // channels, p % channels
    else:
        c, cell = p // hw, p % hw
    ieta, iphi = cell // size, cell % size
    dev = pixel.device
    shift = torch.from_numpy(draws.shift).to(dev)[row]
    iphi = (iphi + shift) % size
    iphi = torch.where(torch.from_numpy(draws.flip_phi).to(dev)[row], size - 1 - iphi, iphi)
    ieta = torch.where(torch.from_numpy(draws.flip_eta).to(dev)[row], size - 1 - ieta, ieta)
    cell = ieta * size + iphi
    return cell * channels + c if channels_last else c * hw + cell


def transform_dense(x: torch.Tensor, draws: Draws) -> torch.Tensor:
    """The same transforms on dense images (n, C, H, W), one event at a time: the reference the tests hold
    ``transform_pixels`` to."""
    out = []
    for i in range(len(x)):
        img = torch.roll(x[i], int(draws.shift[i]), dims=-1)
        if draws.flip_phi[i]:
            img = torch.flip(img, dims=(-1,))
        if draws.flip_eta[i]:
            img = torch.flip(img, dims=(-2,))
        out.append(img)
    return torch.stack(out) if out else x.clone()
