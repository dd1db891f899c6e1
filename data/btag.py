"""The b-tag channel: a fourth image channel with the b-tagged jets' positions (``--btag-channel``).

The study's images carry three channels (HCAL E, ECAL E, track pT) and no b tag, while the cuts' strongest
step is Nb >= 3 (docs/physics-reference.md, 'Selection'). This channel paints each tagged jet of a store
with jets (format version 3, data/store.py) as a 1 at the pixel of its axis (eta along the height in
[-2.5, 2.5], phi along the width in [-pi, pi], the binning of data.generation.detector.image); two tagged
jets in one pixel give 1. It is normalised by nothing (its values are already 0 or 1), and the
symmetry transforms of --augment move it with the other channels. The tags are the store's own decisions
(the ones ``nb`` counts), so the CNN sees exactly the information the cuts use.
"""
from __future__ import annotations

import numpy as np

from data import store as st
from data.base import ETA_MAX, Batch, DataError, SparseImages

CHANNEL = "btag"  # the name of channel 3


def jet_pixels(eta: np.ndarray, phi: np.ndarray, size: int) -> np.ndarray:
    """Pixel ieta*W + iphi (int64) of jet axes at (eta, phi), on the detector image's grid."""
    ieta = np.clip(((np.asarray(eta, np.float64) + ETA_MAX) / (2 * ETA_MAX) * size).astype(np.int64), 0, size - 1)
    iphi = np.clip(((np.asarray(phi, np.float64) + np.pi) / (2 * np.pi) * size).astype(np.int64), 0, size - 1)
    return ieta * size + iphi


class BtagChannelSource:
    """A sparse store source (data.hdf5_source.SparseSource) with the b-tag channel added: images of shape
    (4, H, W). Everything else (labels, weights, the jet quantities, the split's blocks) is the store's.
    Raises DataError naming the file when the store has no jets."""

    channels = 4

    def __init__(self, source):
        if not hasattr(source, "f") or not st.has_jets(source.f):
            where = getattr(source, "path", "synthetic")
            raise DataError(f"{where}: --btag-channel needs a store with every event's jets (format version 3, "
                            "made by data.generation.generate or convert_delphes of this version); this "
                            "source has none")
        self.source = source
        n = len(source)
        self._jet_offsets = source.f["jets/offsets"][: n + 1].astype(np.int64)
        tagged = source.f["jets/btag"][: int(self._jet_offsets[-1])].astype(bool)
        self._cum = np.concatenate([[0], np.cumsum(tagged)]).astype(np.int64)  # tagged jets before jet j
        keep = np.flatnonzero(tagged)
        size = source.image_size
        self._pixel = jet_pixels(source.f["jets/eta"][: len(tagged)][keep],
                                 source.f["jets/phi"][: len(tagged)][keep], size)
        counts = self._cum[self._jet_offsets[1:]] - self._cum[self._jet_offsets[:-1]]
        nb = np.asarray(source.event_table()["nb"], np.int64)
        if not np.array_equal(counts, nb):
            bad = int(np.flatnonzero(counts != nb)[0])
            raise DataError(f"{source.path}: event {bad} has {counts[bad]} tagged jets in jets/btag but "
                            f"events/nb says {nb[bad]}")

    def __getattr__(self, name):  # labels, weights, block, path, event_table, samples, ...
        return getattr(self.source, name)

    def __len__(self) -> int:
        return len(self.source)

    def _tags(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row in ``idx``, channel-3 pixel) of every tagged jet of the events ``idx``, unique per event."""
        lo, hi = self._cum[self._jet_offsets[idx]], self._cum[self._jet_offsets[idx + 1]]
        counts = hi - lo
        rows = np.repeat(np.arange(len(idx)), counts)
        pix = self._pixel[st.ranges(lo, counts)]
        key = np.unique(rows * self.source.image_size ** 2 + pix)
        return key // self.source.image_size ** 2, key % self.source.image_size ** 2

    def sparse(self, indices) -> SparseImages:
        """The store's normalised three channels and the b-tag channel, as lit pixels, each event's pixels
        in increasing order."""
        idx = self.source._indices(indices)
        base = self.source.sparse(idx)
        hw = self.source.image_size ** 2
        rows, pix = self._tags(idx)
        base_rows = np.repeat(np.arange(len(idx)), base.counts)
        row = np.concatenate([base_rows, rows])
        pixel = np.concatenate([base.pixel.astype(np.int64), 3 * hw + pix])
        value = np.concatenate([base.value, np.ones(len(pix), np.float32)])
        order = np.lexsort((pixel, row))
        return SparseImages(counts=np.bincount(row, minlength=len(idx)).astype(np.int64),
                            pixel=pixel[order].astype(np.int32), value=value[order], channels=4)

    def load(self, indices) -> Batch:
        idx = self.source._indices(indices)
        return Batch(x=self.sparse(idx).dense(self.source.image_size), y=self.source.labels[idx],
                     w=self.source.weights[idx])

    def describe(self) -> dict:
        return {**self.source.describe(), "channels": ["hcal_e", "ecal_e", "track_pt", CHANNEL]}
