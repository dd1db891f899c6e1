"""What the training harness asks of an event source.

Every source (the synthetic toy, a sparse HDF5 store, a dense legacy file) gives the harness:

* ``len(source)`` events, each with a label (1 signal, 0 background) and a physical weight
  (cross section / generated events x generator weight), held in memory as small arrays;
* ``load(indices)``: the dense, normalised images of those events plus labels and weights;
* ``block``: how many consecutive events are cheap to read together (1 for the synthetic toy,
  the HDF5 chunk for files). The sampler keeps blocks whole, so a rank reads contiguous runs.

The harness owns the split, the sharding over ranks and the prefetching (``bench.runner.sampler``,
``bench.runner.prefetch``); a source only answers ``load``. ``load`` must be safe to call from one
background thread while the main thread trains.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

# Channel order of every image in this project (NCHW: batch, channel, eta, phi).
CHANNELS = ("hcal_e", "ecal_e", "track_pt")
ETA_MAX = 2.5
PHI_MAX = np.pi


class DataError(ValueError):
    """Bad input data. The message names the file and the dataset or field at fault."""


@dataclass(frozen=True)
class Batch:
    x: np.ndarray  # float32 (n, 3, H, W), normalised
    y: np.ndarray  # float32 (n,), 1 = signal
    w: np.ndarray  # float64 (n,), physical weight


@dataclass(frozen=True)
class SparseImages:
    """Normalised images of ``len(counts)`` events as their lit pixels, event after event.

    Event i owns ``pixel[o:o + counts[i]]`` and ``value[o:o + counts[i]]`` with o = counts[:i].sum();
    pixel = c*H*W + ieta*W + iphi (the sparse store's index, docs/data.md), unique within an event.
    """
    counts: np.ndarray  # int64 (n,)
    pixel: np.ndarray  # int32 (sum counts,)
    value: np.ndarray  # float32 (sum counts,), normalised, non-zero
    channels: int = 3  # 4 with the b-tag channel (data/btag.py)

    def dense(self, size: int) -> np.ndarray:
        """float32 (n, channels, size, size)."""
        n, per = len(self.counts), self.channels * size * size
        x = np.zeros(n * per, dtype=np.float32)
        x[np.repeat(np.arange(n, dtype=np.int64) * per, self.counts) + self.pixel] = self.value
        return x.reshape(n, self.channels, size, size)


def sparse_images(rows: np.ndarray, pixel: np.ndarray, value: np.ndarray, n: int, size: int,
                  mode: str) -> SparseImages:
    """Deposits (event row, pixel, value in GeV) of ``n`` events, with repeats, as normalised SparseImages.

    Deposits on one pixel are summed in the order given (as np.bincount over dense images would), the
    sum is rounded to float32 and then normalised as ``normalise`` does to dense float32 images.
    """
    if mode not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {mode!r}; choose from {', '.join(NORMALISATIONS)}")
    per = 3 * size * size
    row, pix = np.asarray(rows, np.int64), np.asarray(pixel, np.int64)
    keys = row * per + pix
    if (np.diff(keys) > 0).all():  # already in order without repeats (a store's events): nothing to sum
        summed = np.asarray(value, np.float64).astype(np.float32)
    else:
        keys, inverse = np.unique(keys, return_inverse=True)
        summed = np.bincount(inverse, np.asarray(value, np.float64), minlength=len(keys)).astype(np.float32)
        row, pix = keys // per, keys % per
    keep = summed != 0
    if not keep.all():
        row, pix, summed = row[keep], pix[keep], summed[keep]
    if mode == "log":
        summed = np.log10(summed / np.float32(1e-5) + np.float32(1.0))
    elif mode in ("max", "ref_max") and len(summed):
        chan = pix // (size * size)
        slot = row * 3 + chan  # non-decreasing: the deposits are in (event, pixel) order here
        first = np.flatnonzero(np.diff(slot, prepend=-1))
        peak = np.maximum.reduceat(summed, first)
        peak = np.repeat(np.where(peak > 0, peak, np.float32(1.0)), np.diff(first, append=len(slot)))
        divided = summed / peak
        summed = divided if mode == "max" else np.where(chan == 1, summed, divided)
    return SparseImages(counts=np.bincount(row, minlength=n).astype(np.int64), pixel=pix.astype(np.int32),
                        value=summed.astype(np.float32))


def sparse_of_dense(x: np.ndarray) -> SparseImages:
    """SparseImages of dense (n, 3, H, W) images (already normalised)."""
    flat = x.reshape(len(x), -1)
    rows, pix = np.nonzero(flat)
    return SparseImages(counts=np.bincount(rows, minlength=len(x)).astype(np.int64),
                        pixel=pix.astype(np.int32), value=flat[rows, pix].astype(np.float32))


@runtime_checkable
class EventSource(Protocol):
    image_size: int
    block: int
    labels: np.ndarray  # float32 (len,)
    weights: np.ndarray  # float64 (len,), physical weights

    def __len__(self) -> int: ...

    def load(self, indices: np.ndarray) -> Batch: ...

    def describe(self) -> dict:
        """JSON-ready facts for the run record (kind, path, event counts, normalisation)."""
        ...


NORMALISATIONS = ("max", "ref_max", "log", "none")


def normalise(x: np.ndarray, mode: str) -> np.ndarray:
    """Normalise a batch of raw images (n, 3, H, W) in place and return it.

    ``max``: every channel divided by its own per-image maximum (values in [0, 1]).
    ``ref_max``: the reference group's choice, channels 0 (HCAL) and 2 (tracks) only.
    ``log``: log10(x / 1e-5 + 1), the reference code's other option.
    ``none``: raw GeV.
    """
    if mode == "none":
        return x
    if mode == "log":
        np.log10(x / 1e-5 + 1.0, out=x)
        return x
    chans = (0, 1, 2) if mode == "max" else (0, 2) if mode == "ref_max" else None
    if chans is None:
        raise ValueError(f"unknown normalisation {mode!r}; choose from {', '.join(NORMALISATIONS)}")
    for c in chans:
        peak = x[:, c].reshape(len(x), -1).max(axis=1)
        np.divide(x[:, c], np.where(peak > 0, peak, 1.0)[:, None, None], out=x[:, c])
    return x


def training_weights(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Physical weights rescaled so both classes sum to the event count of the larger class.

    Relative weights inside each class are kept (Kim et al., Section 2; docs/physics-reference.md, 'Samples and
    weights', says how the common total differs from the paper's).
    """
    labels = np.asarray(labels)
    out = np.asarray(weights, dtype=np.float64).copy()
    target = max(int((labels == 1).sum()), int((labels == 0).sum()))
    for cls in (0, 1):
        m = labels == cls
        total = out[m].sum()
        if total > 0:
            out[m] *= target / total
    return out
