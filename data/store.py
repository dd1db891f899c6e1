"""The sparse event store: an HDF5 layout for detector images, written in committed chunks.

Layout (format ``hep-sparse-images`` version 2; docs/data.md is the reference):

* root attributes: ``format``, ``format_version``, ``image_size``, ``committed_events`` (written last at every
  commit: what lies beyond it is an interrupted write and is ignored by readers, truncated by writers),
  ``meta`` (JSON: how the file was made).
* ``pixels/index`` int32 and ``pixels/value`` float32: every lit pixel of every event, event after event;
  index = c*H*W + ieta*W + iphi. Version 2 compresses every dataset (gzip level 4 after HDF5's byte
  shuffle: about 4.5 bytes per lit pixel instead of 8, docs/data.md); version 1 files are uncompressed.
  HDF5 decompresses transparently, so readers of either version are the same code.
* ``events/offsets`` int64 (n+1): event i's pixels are ``offsets[i]:offsets[i+1]``.
* ``events/label`` int8, ``events/sample`` int16, ``events/gen_weight`` float64, and the jet quantities of the
  cut-based selection ``events/njet`` int32, ``nb`` int32, ``ht``, ``mj``, ``lead_jet_pt`` float32 (GeV).
* ``samples/name`` (string), ``samples/label`` int8: one row per sample, in the order of ``events/sample``.
* ``jets/*`` (version 3, stores made with jets): every selected jet (anti-kT R = 0.4, pT > 30 GeV,
  |eta| < 2.4) of every event, event after event: ``jets/offsets`` int64 (n+1), event i's jets are
  ``offsets[i]:offsets[i+1]`` in pT order; ``pt`` float32 (GeV), ``eta``, ``phi`` float32, ``btag`` int8 (the
  tag decision that ``nb`` counts), ``btag_eff`` float32 (the jet's tag efficiency for its truth flavour).
  The root attribute ``jets`` is 1 in such a store; version 1 and 2 stores have no jets.
* ``chunks/*``: one row per committed chunk: ``sample``, ``chunk``, ``event_stop``, ``n_generated``,
  ``n_selected``, ``sigma_pb``. The per-sample totals come from these rows, so they grow with resumed runs.

The physical weight is derived at read time, not stored: xsec(sample) / n_generated(sample) * gen_weight,
with xsec = sum(n_generated * sigma_pb) / sum(n_generated) over the sample's chunks (each chunk's own
Pythia estimate, weighted by its statistics). A resumed run changes n_generated of every earlier event's
sample, so a stored weight would go stale.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from data.files import WriteError, cause_of

FORMAT = "hep-sparse-images"
FORMAT_VERSION = 3  # 3: with the jets group; 2: compressed datasets (gzip + shuffle); 1: uncompressed
READABLE_VERSIONS = (1, 2, 3)
EVENT_FIELDS = {"label": np.int8, "sample": np.int16, "gen_weight": np.float64, "njet": np.int32,
                "nb": np.int32, "ht": np.float32, "mj": np.float32, "lead_jet_pt": np.float32}
JET_FIELDS = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "btag": np.int8, "btag_eff": np.float32}
CHUNK_FIELDS = {"sample": np.int32, "chunk": np.int64, "event_stop": np.int64, "n_generated": np.int64,
                "n_selected": np.int64, "sigma_pb": np.float64}
PIXEL_CHUNK = 1 << 15  # pixels per HDF5 chunk (128 KiB of index + 128 KiB of value before compression)
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def _resizable(group: h5py.Group, name: str, dtype, chunk: int, fill_one: bool = False,
               compress: bool = True) -> None:
    group.create_dataset(name, shape=(1 if fill_one else 0,), maxshape=(None,), dtype=dtype, chunks=(chunk,),
                         **(COMPRESSION if compress else {}))


def has_jets(f: h5py.File) -> bool:
    """Whether the store holds every event's jets (the ``jets`` group of format version 3)."""
    return bool(int(f.attrs.get("jets", 0))) and "jets" in f


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions starts[i] .. starts[i] + counts[i] - 1 of every range, range after range (int64): how
    the rows of scattered events are gathered from a flat dataset."""
    starts, counts = np.asarray(starts, np.int64), np.asarray(counts, np.int64)
    within = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + within


def read_jets(f: h5py.File, lo: int, hi: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The jets of events ``lo:hi``: (offsets of shape (hi - lo + 1,) starting at 0, JET_FIELDS arrays).
    Raises KeyError naming the file when the store has no jets."""
    if not has_jets(f):
        raise KeyError(f"{f.filename}: this store has no jets (made before format version 3, or without them)")
    off = f["jets/offsets"][lo:hi + 1].astype(np.int64)
    return off - off[0], {k: f["jets"][k][off[0]:off[-1]] for k in JET_FIELDS}


def _committed_rows(f: h5py.File) -> int:
    """Chunk rows that belong to committed events (an interrupted append may leave a partial row)."""
    rows = min(f["chunks"][name].shape[0] for name in CHUNK_FIELDS)
    return int((f["chunks/event_stop"][:rows] <= int(f.attrs["committed_events"])).sum())


def sample_table(f: h5py.File) -> dict[str, np.ndarray]:
    """Per-sample name, label, xsec_pb, n_generated, n_selected from the committed chunk rows."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["samples/name"][:]]
    labels = f["samples/label"][:].astype(np.int8)
    rows = _committed_rows(f)
    s = f["chunks/sample"][:rows]
    ngen = f["chunks/n_generated"][:rows].astype(np.float64)
    k = len(names)
    n_generated = np.bincount(s, weights=ngen, minlength=k)
    sig_n = np.bincount(s, weights=ngen * f["chunks/sigma_pb"][:rows], minlength=k)
    return {"name": np.array(names, dtype=object), "label": labels,
            "xsec_pb": np.divide(sig_n, n_generated, out=np.zeros(k), where=n_generated > 0),
            "n_generated": n_generated.astype(np.int64),
            "n_selected": np.bincount(s, weights=f["chunks/n_selected"][:rows], minlength=k).astype(np.int64)}


def physical_weights(sample: np.ndarray, gen_weight: np.ndarray, table: dict[str, np.ndarray]) -> np.ndarray:
    """xsec / n_generated * gen_weight per event (pb per event)."""
    per_event = np.divide(table["xsec_pb"], table["n_generated"], out=np.zeros(len(table["xsec_pb"])),
                          where=table["n_generated"] > 0)
    return per_event[sample] * gen_weight


class StoreWriter:
    """Appends committed chunks of events to a store, creating it or resuming it.

    Opening an existing store truncates everything past its ``committed_events`` counter, so a run killed
    mid-write leaves a file that the next run continues cleanly.
    """

    def __init__(self, path: str | Path, image_size: int, chunk_events: int = 512, meta: dict | None = None,
                 compress: bool = True, jets: bool = False):
        """``jets``: a new store keeps every event's jets (then every chunk must carry them); an existing
        store keeps what it was made with."""
        self.path = str(path)
        self.compress = compress
        exists = Path(self.path).exists()
        self.f = h5py.File(self.path, "a")
        if not exists or "format" not in self.f.attrs:
            self._create(image_size, chunk_events, meta or {}, jets)
        elif self.f.attrs["format"] != FORMAT:
            raise ValueError(f"{self.path}: not a {FORMAT} store (format={self.f.attrs['format']!r})")
        elif int(self.f.attrs.get("format_version", 0)) not in READABLE_VERSIONS:
            raise ValueError(f"{self.path}: store format version {self.f.attrs.get('format_version')} is not "
                             f"one this code writes ({', '.join(map(str, READABLE_VERSIONS))})")
        elif int(self.f.attrs["image_size"]) != image_size:
            raise ValueError(f"{self.path}: holds {self.f.attrs['image_size']}x{self.f.attrs['image_size']} "
                             f"images, asked for --image-size {image_size}")
        self.image_size = image_size
        self.jets = has_jets(self.f)
        self._truncate_uncommitted()

    def _create(self, image_size: int, chunk_events: int, meta: dict, jets: bool) -> None:
        f = self.f
        z = self.compress
        version = (3 if jets else 2) if z else 1
        if jets and not z:
            raise ValueError(f"{self.path}: a store with jets is compressed (format version 3)")
        f.attrs.update(format=FORMAT, format_version=version, image_size=image_size,
                       committed_events=0, meta=json.dumps(meta), jets=int(jets))
        if jets:
            jg = f.require_group("jets")
            _resizable(jg, "offsets", np.int64, chunk_events, fill_one=True)
            for name, dt in JET_FIELDS.items():
                _resizable(jg, name, dt, 8 * chunk_events)
        _resizable(f.require_group("pixels"), "index", np.int32, PIXEL_CHUNK, compress=z)
        _resizable(f["pixels"], "value", np.float32, PIXEL_CHUNK, compress=z)
        ev = f.require_group("events")
        _resizable(ev, "offsets", np.int64, chunk_events, fill_one=True, compress=z)
        for name, dt in EVENT_FIELDS.items():
            _resizable(ev, name, dt, chunk_events, compress=z)
        _resizable(f.require_group("samples"), "name", h5py.string_dtype(), 64)
        _resizable(f["samples"], "label", np.int8, 64)
        for name, dt in CHUNK_FIELDS.items():
            _resizable(f.require_group("chunks"), name, dt, 256)
        f.flush()

    @property
    def committed(self) -> int:
        return int(self.f.attrs["committed_events"])

    @property
    def meta(self) -> dict:
        return json.loads(self.f.attrs.get("meta", "{}"))

    def _truncate_uncommitted(self) -> None:
        n = self.committed
        ev = self.f["events"]
        npix = int(ev["offsets"][n])
        ev["offsets"].resize((n + 1,))
        for name in EVENT_FIELDS:
            ev[name].resize((n,))
        for name in ("index", "value"):
            self.f["pixels"][name].resize((npix,))
        if self.jets:
            jg = self.f["jets"]
            njet = int(jg["offsets"][n])
            jg["offsets"].resize((n + 1,))
            for name in JET_FIELDS:
                jg[name].resize((njet,))
        keep = _committed_rows(self.f)
        for name in CHUNK_FIELDS:
            self.f["chunks"][name].resize((keep,))
        self.f.flush()

    def sample_index(self, name: str, label: int) -> int:
        """Row of ``name`` in the sample table, added if new (label must match an existing row)."""
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in self.f["samples/name"][:]]
        if name in names:
            i = names.index(name)
            if int(self.f["samples/label"][i]) != label:
                raise ValueError(f"{self.path}: sample {name!r} already stored with label "
                                 f"{int(self.f['samples/label'][i])}, not {label}")
            return i
        for ds, value in (("name", name), ("label", label)):
            d = self.f["samples"][ds]
            d.resize((len(names) + 1,))
            d[len(names)] = value
        return len(names)

    def committed_chunks(self, sample: int) -> set[int]:
        """Chunk numbers of ``sample`` already committed (a resumed run skips them)."""
        s = self.f["chunks/sample"][:]
        return set(self.f["chunks/chunk"][:][s == sample].tolist())

    def selected(self, sample: int) -> int:
        s = self.f["chunks/sample"][:]
        return int(self.f["chunks/n_selected"][:][s == sample].sum())

    def append(self, sample: int, chunk: int, events: dict, n_generated: int, sigma_pb: float) -> None:
        """Write one chunk (``events``: idx/val lists of sparse images and the EVENT_FIELDS arrays but label
        and sample), then move the commit counter past it: the counter is the last thing written.

        Raises data.files.WriteError naming the file, with the committed events left as they were, when
        the file system has less room than the chunk needs (``check_room``: HDF5 does not report every
        failed write of its caches, so a full disk is refused before the chunk is written) or a write
        fails."""
        check_room(self.path, chunk_bytes(events))
        before = self.committed
        try:
            self._append(sample, chunk, events, n_generated, sigma_pb)
        except (OSError, RuntimeError) as exc:  # h5py's failed writes and flushes
            raise WriteError(self.path, f"{cause_of(exc)}; the {before} events committed before stay") from exc

    def _append(self, sample: int, chunk: int, events: dict, n_generated: int, sigma_pb: float) -> None:
        n0, k = self.committed, len(events["idx"])
        ev, px = self.f["events"], self.f["pixels"]
        if self.jets and k and "jets" not in events:
            raise ValueError(f"{self.path}: this store keeps every event's jets and the chunk has none")
        p0 = int(ev["offsets"][n0])
        counts = np.array([len(i) for i in events["idx"]], dtype=np.int64)
        if k:
            index = np.concatenate(events["idx"]).astype(np.int32)
            value = np.concatenate(events["val"]).astype(np.float32)
            px["index"].resize((p0 + len(index),))
            px["index"][p0:] = index
            px["value"].resize((p0 + len(value),))
            px["value"][p0:] = value
            ev["offsets"].resize((n0 + k + 1,))
            ev["offsets"][n0 + 1:] = p0 + np.cumsum(counts)
            label = int(self.f["samples/label"][sample])
            fields = dict(events, label=np.full(k, label), sample=np.full(k, sample))
            for name, dt in EVENT_FIELDS.items():
                ev[name].resize((n0 + k,))
                ev[name][n0:] = np.asarray(fields[name], dtype=dt)
            if self.jets:
                self._append_jets(n0, events["jets"])
        row = {"sample": sample, "chunk": chunk, "event_stop": n0 + k, "n_generated": n_generated,
               "n_selected": k, "sigma_pb": sigma_pb}
        m = self.f["chunks/sample"].shape[0]
        for name, value in row.items():
            self.f["chunks"][name].resize((m + 1,))
            self.f["chunks"][name][m] = value
        self.f.flush()
        self.f.attrs["committed_events"] = n0 + k
        self.f.flush()

    def _append_jets(self, n0: int, tables: list) -> None:
        """Each event's (m, 5) jet table (data.generation.jets.JET_COLUMNS) after the committed jets."""
        jg = self.f["jets"]
        j0 = int(jg["offsets"][n0])
        counts = np.array([len(t) for t in tables], dtype=np.int64)
        rows = np.concatenate([np.asarray(t, dtype=np.float64).reshape(-1, len(JET_FIELDS)) for t in tables])
        jg["offsets"].resize((n0 + len(tables) + 1,))
        jg["offsets"][n0 + 1:] = j0 + np.cumsum(counts)
        for c, (name, dt) in enumerate(JET_FIELDS.items()):
            jg[name].resize((j0 + len(rows),))
            jg[name][j0:] = rows[:, c].astype(dt)

    def close(self) -> None:
        """Close the file. Raises data.files.WriteError when HDF5's last flush fails."""
        try:
            self.f.close()
        except (OSError, RuntimeError) as exc:
            raise WriteError(self.path, cause_of(exc)) from exc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


ROOM_MARGIN = 1 << 20  # bytes kept free beyond twice a chunk's own size: HDF5's metadata and its next flush


def chunk_bytes(events: dict) -> int:
    """Bytes of one chunk's events before compression (pixels as int32 + float32, 8 per event field)."""
    jets = 4 * len(JET_FIELDS) * sum(len(t) for t in events.get("jets", ()))
    return 8 * sum(len(i) for i in events["idx"]) + 8 * len(EVENT_FIELDS) * len(events["idx"]) + jets


def check_room(path: str, need: int) -> None:
    """Raise data.files.WriteError naming ``path`` when its file system has fewer than ``2 * need +
    ROOM_MARGIN`` bytes free for this user (statvfs; a quota below that is found by the write itself)."""
    st = os.statvfs(os.path.dirname(os.path.abspath(path)))
    free = st.f_bavail * st.f_frsize
    if free < 2 * need + ROOM_MARGIN:
        raise WriteError(path, f"No space left on device: {free / 2**20:.1f} MiB free, the next chunk needs "
                               f"about {(2 * need + ROOM_MARGIN) / 2**20:.1f} MiB with its margin")


def write_synthetic(path: str | Path, n_events: int, image_size: int, pixels_per_event: int = 300,
                    chunk_events: int = 512, seed: int = 0) -> None:
    """A store of random sparse images (half signal, half background) for reader tests and benchmarks.

    Not physics: lit pixels are uniform, values exponential; jet quantities are random but pass the baseline.
    """
    rng = np.random.default_rng(seed)
    npix = 3 * image_size * image_size
    with StoreWriter(path, image_size, chunk_events=chunk_events, meta={"synthetic": True}) as w:
        samples = [w.sample_index("synthetic_signal", 1), w.sample_index("synthetic_background", 0)]
        for c, start in enumerate(range(0, n_events, chunk_events)):
            k = min(chunk_events, n_events - start)
            counts = rng.poisson(pixels_per_event, k)
            idx = [np.unique(rng.integers(0, npix, m)).astype(np.int32) for m in counts]
            ev = {"idx": idx, "val": [rng.exponential(5.0, len(i)).astype(np.float32) for i in idx],
                  "gen_weight": np.ones(k), "njet": rng.integers(4, 12, k), "nb": rng.integers(1, 4, k),
                  "ht": rng.uniform(1500, 3000, k), "mj": rng.uniform(500, 1500, k),
                  "lead_jet_pt": rng.uniform(300, 1000, k)}
            w.append(samples[c % 2], c // 2, ev, n_generated=10 * k, sigma_pb=1.0 if c % 2 else 0.01)
