"""What the training harness asks of an event source.

Every source (the synthetic toy, a sparse HDF5 store, a dense legacy file) gives the harness:

* ``len(source)`` events, each with a label (1 signal, 0 background) and a physical weight
  (cross section / generated events x generator weight), held in memory as small arrays;
* ``load(indices)``: the dense, normalised images of those events plus labels and weights;
* ``block``: how many consecutive events are cheap to read together (1 for the synthetic toy,
  the HDF5 chunk for files). The sampler keeps blocks whole, so a rank reads contiguous runs.

The harness owns the split, the sharding over ranks and the prefetching (``bench.sampler``,
``bench.prefetch``); a source only answers ``load``. ``load`` must be safe to call from one
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

    Relative weights inside each class are kept (SPEC: 'Training weight').
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
