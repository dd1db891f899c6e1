"""Event sources backed by HDF5 files: the sparse store (data/store.py) and the dense layouts in use.

``open_hdf5(path)`` picks the layout from the file:

* sparse store: root attribute ``format = hep-sparse-images`` (data/store.py, docs/data.md);
* dense (a): ``all_events/images`` (n, H, W, 3) or (n, 3, H, W), ``all_events/weights`` (or ``weight``),
  labels in ``all_events/labels`` (or ``y``);
* dense (b): ``all_events/hist`` (HCAL), ``all_events/histEM`` (ECAL), ``all_events/histtrack`` (tracks), each
  (n, H, W), with ``all_events/y`` and ``all_events/weight`` (or ``weights`` / ``labels``).

Only the per-event small arrays (labels, weights, offsets) are held in memory; pixels are read by ``load``.
Small arrays are checked when the file is opened, pixels when they are loaded.
"""
from __future__ import annotations

import threading
from pathlib import Path

import h5py
import numpy as np

from data import store as st
from data.files import InputError, check_input_file
from data.base import NORMALISATIONS, Batch, DataError, SparseImages, normalise, sparse_images

# Sorted indices closer than this are read in one contiguous range: reading a few unwanted events
# (about 5 KB each) is cheaper than another h5py call, but a wide gap would read much of the file.
GAP_EVENTS = 32


def open_hdf5(path: str, image_size: int | None = None, normalisation: str = "max"):
    """Open an HDF5 event file as an EventSource (see the module docstring for accepted layouts)."""
    if normalisation not in NORMALISATIONS:
        raise DataError(f"{path}: unknown normalisation {normalisation!r}; "
                        f"choose from {', '.join(NORMALISATIONS)}")
    try:
        check_input_file(path)
    except InputError as exc:
        raise DataError(str(exc)) from None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or another format): {e}") from None
    try:
        if f.attrs.get("format") == st.FORMAT:
            src = SparseSource(f, path, normalisation)
        elif "all_events" in f:
            src = DenseSource(f, path, normalisation)
        else:
            raise DataError(f"{path}: neither a {st.FORMAT} store nor a dense file with group 'all_events'")
        if image_size is not None and image_size != src.image_size:
            raise DataError(f"{path}: holds {src.image_size}x{src.image_size} images but --image-size "
                            f"{image_size} was asked for")
    except KeyError as e:
        f.close()
        raise DataError(f"{path}: missing dataset or attribute: {e}") from None
    except DataError:
        f.close()
        raise
    return src


def _need(f: h5py.File, path: str, name: str, kinds: str, ndim: int) -> h5py.Dataset:
    """The dataset ``name``, checked for presence, dtype kind ('i', 'u', 'f') and number of dimensions."""
    if name not in f or not isinstance(f[name], h5py.Dataset):
        raise DataError(f"{path}: missing dataset {name}")
    d = f[name]
    if d.dtype.kind not in kinds:
        raise DataError(f"{path}: dataset {name} has dtype {d.dtype}, expected kind {kinds!r}")
    if d.ndim != ndim:
        raise DataError(f"{path}: dataset {name} has shape {d.shape}, expected {ndim} dimension(s)")
    return d


def _check_small(path: str, name: str, a: np.ndarray, n: int, nonneg: bool = False) -> np.ndarray:
    if len(a) < n:
        raise DataError(f"{path}: dataset {name} has {len(a)} entries, expected {n}")
    a = a[:n]
    bad = np.flatnonzero(~np.isfinite(a))
    if len(bad):
        raise DataError(f"{path}: dataset {name} has a non-finite value at event {bad[0]}")
    if nonneg and (a < 0).any():
        raise DataError(f"{path}: dataset {name} has a negative value at event {np.flatnonzero(a < 0)[0]}")
    return a


def _check_labels(path: str, name: str, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y).reshape(len(y), -1)[:, -1] if np.asarray(y).ndim > 1 else np.asarray(y)
    if not np.isin(y, (0, 1)).all():
        raise DataError(f"{path}: dataset {name} holds values other than 0 and 1")
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: dataset {name}: only one class ({int(y[0]) if len(y) else 'none'}) present; "
                        f"training needs signal and background")
    return y.astype(np.float32)


def _runs(order_sorted: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted event indices into (start, stop) positions of runs with gaps < GAP_EVENTS."""
    cut = np.flatnonzero(np.diff(order_sorted) >= GAP_EVENTS) + 1
    bounds = np.concatenate([[0], cut, [len(order_sorted)]])
    return list(zip(bounds[:-1], bounds[1:]))


class _Base:
    """What both layouts share: lock, describe, len."""

    kind = "hdf5"

    def __len__(self) -> int:
        return len(self.labels)

    def _describe(self, fmt: str, samples: list) -> dict:
        return {"kind": self.kind, "path": str(Path(self.path).resolve()), "format": fmt,
                "n_events": len(self), "n_signal": int((self.labels == 1).sum()),
                "n_background": int((self.labels == 0).sum()), "samples": samples,
                "image_size": self.image_size, "normalisation": self.normalisation}

    def _indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: event index out of range 0..{len(self) - 1}")
        return idx

    def close(self) -> None:
        with self._lock:
            self.f.close()


class SparseSource(_Base):
    """The sparse store: images scattered from (pixel index, value) runs into dense arrays per call."""

    def __init__(self, f: h5py.File, path: str, normalisation: str):
        self.f, self.path, self.normalisation = f, path, normalisation
        self._lock = threading.Lock()
        version = int(f.attrs.get("format_version", 0))
        if version not in st.READABLE_VERSIONS:
            raise DataError(f"{path}: attribute format_version is {version}; this reader knows versions "
                            f"{', '.join(map(str, st.READABLE_VERSIONS))} (a newer file wants a newer harness)")
        self.image_size = int(f.attrs["image_size"])
        if self.image_size <= 0 or self.image_size % 8:
            raise DataError(f"{path}: attribute image_size {self.image_size} is not a positive multiple of 8")
        n = int(f.attrs["committed_events"])
        offsets = _need(f, path, "events/offsets", "iu", 1)
        self.offsets = _check_small(path, "events/offsets", offsets[: n + 1], n + 1).astype(np.int64)
        if (np.diff(self.offsets) < 0).any() or self.offsets[0] != 0:
            raise DataError(f"{path}: dataset events/offsets is not non-decreasing from 0")
        self._index = _need(f, path, "pixels/index", "iu", 1)
        self._value = _need(f, path, "pixels/value", "f", 1)
        for d in (self._index, self._value):
            if d.shape[0] < self.offsets[-1]:
                raise DataError(f"{path}: dataset {d.name} has {d.shape[0]} pixels, "
                                f"events/offsets needs {self.offsets[-1]}")
        ev = {k: _need(f, path, f"events/{k}", "iuf", 1) for k in st.EVENT_FIELDS}
        self.labels = _check_labels(path, "events/label", _check_small(path, "events/label", ev["label"][:n], n))
        self.sample = ev["sample"][:n].astype(np.int64)
        gen_weight = _check_small(path, "events/gen_weight", ev["gen_weight"][:n], n)
        self.table = st.sample_table(f)
        if len(self.sample) and (self.sample.min() < 0 or self.sample.max() >= len(self.table["name"])):
            raise DataError(f"{path}: dataset events/sample refers to a sample missing from samples/name")
        for k in ("xsec_pb", "n_generated"):
            _check_small(path, f"chunks ({k})", self.table[k], len(self.table[k]), nonneg=True)
        self.weights_name = "physical weight (events/gen_weight x xsec / n_generated)"
        self.weights = _check_small(path, self.weights_name,
                                    st.physical_weights(self.sample, gen_weight, self.table), n, nonneg=True)
        self._jets = {k: ev[k][:n] for k in ("njet", "nb", "ht", "mj", "lead_jet_pt")}
        self.block = int((ev["label"].chunks or (256,))[0])

    def _pixels(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row in ``idx``, pixel, value) of every stored pixel of the events ``idx``, checked, in the order
        of ``idx`` (each event's pixels as stored: sorted, so that sparse_images has nothing to sort)."""
        npix = 3 * self.image_size ** 2
        counts = self.offsets[idx + 1] - self.offsets[idx]
        out_start = np.cumsum(counts) - counts  # where each requested event's pixels go
        rows = np.repeat(np.arange(len(idx)), counts)
        p = np.empty(len(rows), dtype=np.int64)  # wide enough that a bad index cannot wrap past the check
        v = np.empty(len(rows), dtype=np.float32)
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]
        for a, b in _runs(sidx):
            ev = sidx[a:b]
            lo, hi = int(self.offsets[ev[0]]), int(self.offsets[ev[-1] + 1])
            with self._lock:  # h5py is not safe for concurrent use of one file handle
                pix = self._index[lo:hi]
                val = self._value[lo:hi]
            # Each of these events' pixels: from its place in the range read to its place in the output.
            c = counts[order[a:b]]
            first = np.cumsum(c) - c
            within = np.arange(c.sum()) - np.repeat(first, c)
            src = np.repeat(self.offsets[ev] - lo, c) + within
            dst = np.repeat(out_start[order[a:b]], c) + within
            p[dst], v[dst] = pix[src], val[src]
        bad = ~np.isfinite(v)
        if bad.any():
            raise DataError(f"{self.path}: dataset pixels/value has a non-finite value in event "
                            f"{int(idx[rows[np.flatnonzero(bad)[0]]])}")
        if len(p) and (p.min() < 0 or p.max() >= npix):
            raise DataError(f"{self.path}: dataset pixels/index has an index outside 0..{npix - 1}")
        return rows, p, v

    def sparse(self, indices) -> SparseImages:
        """The normalised images of ``indices`` as their lit pixels (no dense array is made)."""
        idx = self._indices(indices)
        return sparse_images(*self._pixels(idx), len(idx), self.image_size, self.normalisation)

    def load(self, indices) -> Batch:
        idx = self._indices(indices)
        x = self.sparse(idx).dense(self.image_size)
        return Batch(x=x, y=self.labels[idx], w=self.weights[idx])

    def describe(self) -> dict:
        t = self.table
        samples = [{"name": str(t["name"][i]), "label": int(t["label"][i]), "xsec_pb": float(t["xsec_pb"][i]),
                    "n_generated": int(t["n_generated"][i]), "n_selected": int(t["n_selected"][i])}
                   for i in range(len(t["name"]))]
        return self._describe(f"{st.FORMAT} v{int(self.f.attrs.get('format_version', 0))}", samples)

    @property
    def samples(self) -> np.ndarray:
        """Sample index (row of the samples table) of every event."""
        return self.sample

    def event_table(self, indices=None) -> dict[str, np.ndarray]:
        """njet, nb, ht, mj, lead_jet_pt and sample index of the events ``indices`` (all: None)."""
        sel = slice(None) if indices is None else np.asarray(indices, dtype=np.int64)
        return {**{k: np.asarray(v)[sel] for k, v in self._jets.items()}, "sample": self.sample[sel].copy()}


def _first(f: h5py.File, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in f), None)


class DenseSource(_Base):
    """Dense images as others already store them (layouts (a) and (b) of the module docstring)."""

    def __init__(self, f: h5py.File, path: str, normalisation: str):
        self.f, self.path, self.normalisation = f, path, normalisation
        self._lock = threading.Lock()
        if "all_events/images" in f:
            d = _need(f, path, "all_events/images", "f", 4)
            if d.shape[3] == 3 and d.shape[1] == d.shape[2]:
                self.layout = "dense-nhwc"
            elif d.shape[1] == 3 and d.shape[2] == d.shape[3]:
                self.layout = "dense-nchw"
            else:
                raise DataError(f"{path}: dataset all_events/images has shape {d.shape}; expected "
                                f"(n, H, H, 3) or (n, 3, H, H)")
            self._images = [d]
            self.image_size = d.shape[2]
        else:
            names = ("all_events/hist", "all_events/histEM", "all_events/histtrack")
            self._images = [_need(f, path, n, "f", 3) for n in names]
            shapes = {d.shape for d in self._images}
            if len(shapes) != 1 or self._images[0].shape[1] != self._images[0].shape[2]:
                raise DataError(f"{path}: datasets {', '.join(names)} must share one (n, H, H) shape, got "
                                f"{[d.shape for d in self._images]}")
            self.layout = "dense-hist"
            self.image_size = self._images[0].shape[1]
        n = self._images[0].shape[0]
        if self.image_size <= 0 or self.image_size % 8:
            raise DataError(f"{path}: images are {self.image_size}x{self.image_size}; "
                            f"the size must be a multiple of 8")
        yname = _first(f, ("all_events/labels", "all_events/y"))
        wname = _first(f, ("all_events/weights", "all_events/weight"))
        if yname is None:
            raise DataError(f"{path}: missing dataset all_events/labels (or all_events/y)")
        if wname is None:
            raise DataError(f"{path}: missing dataset all_events/weights (or all_events/weight)")
        y = f[yname][...]
        if y.shape[0] != n or f[wname].shape != (n,):
            raise DataError(f"{path}: datasets {yname} {y.shape} and {wname} {f[wname].shape} must have "
                            f"{n} entries like the images")
        if f[wname].dtype.kind not in "iuf":
            raise DataError(f"{path}: dataset {wname} has dtype {f[wname].dtype}, expected numbers")
        self.labels = _check_labels(path, yname, _check_small(path, yname, y.astype(np.float64), n))
        self.weights_name = wname
        self.weights = _check_small(path, wname, f[wname][...].astype(np.float64), n, nonneg=True)
        self.block = int((self._images[0].chunks or (256,))[0])

    def load(self, indices) -> Batch:
        idx = self._indices(indices)
        s = self.image_size
        x = np.empty((len(idx), 3, s, s), dtype=np.float32)
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]
        for a, b in _runs(sidx):
            lo, hi = int(sidx[a]), int(sidx[b - 1]) + 1
            with self._lock:
                parts = [d[lo:hi] for d in self._images]
            rel = sidx[a:b] - lo
            if self.layout == "dense-nhwc":
                block = parts[0][rel].transpose(0, 3, 1, 2)
            elif self.layout == "dense-nchw":
                block = parts[0][rel]
            else:
                block = np.stack([p[rel] for p in parts], axis=1)
            x[order[a:b]] = block
        bad = ~np.isfinite(x.reshape(len(idx), -1)).all(axis=1)
        if bad.any():
            raise DataError(f"{self.path}: dataset {self._images[0].name} has a non-finite pixel in event "
                            f"{int(idx[np.flatnonzero(bad)[0]])}")
        return Batch(x=normalise(x, self.normalisation), y=self.labels[idx], w=self.weights[idx])

    def describe(self) -> dict:
        return self._describe(self.layout, [])

    def event_table(self, indices=None) -> dict[str, np.ndarray]:
        raise DataError(f"{self.path}: dense layout {self.layout} holds no jet quantities (njet, nb, ht, mj); "
                        f"make a sparse store with data.generation.generate or data.generation.convert_delphes")
