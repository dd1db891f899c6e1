"""Images kept on the training device: ``--data-placement device`` (the default with ``--device cuda``).

A GPU trains the circpad CNN faster than one host thread can make or read dense images (at 224x224 the
toy makes about 600 dense images/s on a core, the file reader not many more), so the baseline would measure
the loader, not the GPU. Before the first epoch the run's events are read once, as their lit pixels
(detector images are 97-99.8% empty), and kept on the device; each step then builds its dense batch there:
one zero fill and one scatter. Both run inside the timed step; the preload does not, and its duration goes
in the record (``data_preload_s``).

The same code runs on a CPU device (the tests use it there), where it trades memory for not generating or
decoding images during the epoch.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from bench.runner.augment import Augment, Draws, transform_pixels
from bench.runner.prefetch import Prefetcher
from data.base import SparseImages, sparse_of_dense


class DevicePlacementError(RuntimeError):
    """The events do not fit in the device's free memory; the message names --data-placement."""


def sparse_of(source, indices: np.ndarray) -> SparseImages:
    """The source's own sparse reader if it has one (the toy, the sparse store), else its dense images
    compressed (a dense file, or any other EventSource)."""
    if hasattr(source, "sparse"):
        return source.sparse(indices)
    return sparse_of_dense(source.load(indices).x)


class DeviceCache:
    """The normalised images of ``indices`` of ``source``, as lit pixels on ``device``.

    ``channels_last``: the pixel index is stored in NHWC order, so that the dense batch comes out in the
    channels-last layout without a copy.
    """

    def __init__(self, source, indices: np.ndarray, device: torch.device, channels_last: bool,
                 chunk: int = 2048):
        t0 = time.perf_counter()
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        self.source, self.device, self.channels_last = source, device, channels_last
        self.size = int(source.image_size)
        self.channels = int(getattr(source, "channels", 3))
        self.slot = np.full(len(source), -1, dtype=np.int64)
        self.slot[indices] = np.arange(len(indices))
        counts, pixels, values = [], [], []
        for a in range(0, len(indices), chunk):
            sp = sparse_of(source, indices[a:a + chunk])
            counts.append(sp.counts)
            pixels.append(self._layout(sp.pixel))
            values.append(sp.value)
        counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.nbytes = int(self.offsets[-1]) * 8 + len(self.offsets) * 8
        self._check_fits()
        self._offsets = torch.from_numpy(self.offsets).to(device)
        self._pixel = torch.from_numpy(np.concatenate(pixels) if pixels else np.zeros(0, np.int32)).to(device)
        self._value = torch.from_numpy(np.concatenate(values) if values else np.zeros(0, np.float32)).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.events = len(indices)
        self.preload_s = time.perf_counter() - t0

    def _layout(self, pixel: np.ndarray) -> np.ndarray:
        """NCHW pixel index -> the index in the layout of the dense batch."""
        if not self.channels_last:
            return pixel.astype(np.int32)
        hw = self.size * self.size
        return ((pixel % hw) * self.channels + pixel // hw).astype(np.int32)

    def _check_fits(self) -> None:
        if self.device.type != "cuda":
            return
        free, total = torch.cuda.mem_get_info(self.device)
        # Leave most of the device to training: the cache may take at most half of what is free.
        if self.nbytes > free // 2:
            raise DevicePlacementError(
                f"--data-placement device: the {len(self.offsets) - 1} events' {self.offsets[-1]} lit pixels "
                f"need {self.nbytes / 2**30:.1f} GiB on {self.device}, more than half of its "
                f"{free / 2**30:.1f} GiB free; use --data-placement host, or fewer --train-events/--val-events")

    # The EventSource facts the harness reads pass through to the source.
    @property
    def labels(self) -> np.ndarray:
        return self.source.labels

    @property
    def weights(self) -> np.ndarray:
        return self.source.weights

    @property
    def image_size(self) -> int:
        return self.size

    def __len__(self) -> int:
        return len(self.source)

    def describe(self) -> dict:
        return self.source.describe()

    def slots(self, indices: np.ndarray) -> np.ndarray:
        """Positions of ``indices`` in the cache; IndexError naming an event that was not preloaded."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        slots = self.slot[idx]
        if len(slots) and slots.min() < 0:
            missing = int(idx[np.flatnonzero(slots < 0)[0]])
            raise IndexError(f"event {missing} was not preloaded on {self.device}")
        return slots

    def pixels_of(self, slots: np.ndarray) -> int:
        return int((self.offsets[slots + 1] - self.offsets[slots]).sum())

    def dense(self, indices: np.ndarray) -> torch.Tensor:
        """float32 (n, C, H, W) images of ``indices`` on the device (channels-last strides if asked)."""
        slots = self.slots(indices)
        dev_slots = torch.from_numpy(slots).to(self.device)
        return self.build(dev_slots, self.pixels_of(slots))

    def build(self, dev_slots: torch.Tensor, total: int, draws: Draws | None = None) -> torch.Tensor:
        """The dense batch of the cache positions ``dev_slots`` (a device tensor) holding ``total`` lit
        pixels in all (known on the host, so that nothing waits for the device); ``draws``: each event's
        symmetry transforms (bench/runner/augment.py), applied to its lit pixels."""
        n, s, c = len(dev_slots), self.size, self.channels
        per = c * s * s
        start = self._offsets[dev_slots]
        count = self._offsets[dev_slots + 1] - start
        row = torch.repeat_interleave(torch.arange(n, device=self.device), count, output_size=total)
        first = torch.cumsum(count, 0) - count  # each event's first position in the gathered pixels
        src = start[row] + torch.arange(total, device=self.device) - first[row]
        x = torch.zeros(n * per, dtype=torch.float32, device=self.device)
        pixel = self._pixel[src]
        if draws is not None:
            pixel = transform_pixels(pixel, row, draws, s, c, self.channels_last)
        x[row * per + pixel] = self._value[src]
        if self.channels_last:
            return x.view(n, s, s, c).permute(0, 3, 1, 2)
        return x.view(n, c, s, s)


class DeviceLoader:
    """The Prefetcher's interface (``get``/``close``) over a DeviceCache: the next batch is built on the
    device when asked for. The positions of all batches go to the device once, with the labels and
    weights, so that a step copies nothing from the host and waits for nothing. ``augment``: the
    training batches' symmetry transforms (drawn per step on the host, a few bytes per event)."""

    def __init__(self, cache: DeviceCache, batches: list[np.ndarray], weights: np.ndarray | None,
                 augment: Augment | None = None):
        self.cache, self.augment = cache, augment
        flat = [np.asarray(b, dtype=np.int64).reshape(-1) for b in batches]
        every = np.concatenate(flat) if flat else np.zeros(0, np.int64)
        slots = cache.slots(every)
        bounds = np.concatenate([[0], np.cumsum([len(f) for f in flat])]).astype(np.int64)
        self._totals = [cache.pixels_of(slots[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        self._bounds = bounds
        w = cache.weights if weights is None else weights
        dev = cache.device
        self._slots = torch.from_numpy(slots).to(dev)
        self._y = torch.from_numpy(np.asarray(cache.labels, np.float32)[every]).to(dev)
        self._w = torch.from_numpy(np.asarray(w, np.float32)[every]).to(dev)
        self._next = 0

    def get(self):
        k = self._next
        if k >= len(self._totals):
            raise StopIteration
        self._next += 1
        part = slice(int(self._bounds[k]), int(self._bounds[k + 1]))
        draws = None
        if self.augment is not None and self.augment.transforms:
            draws = self.augment.for_step(k, part.stop - part.start, self.cache.size)
        return self.cache.build(self._slots[part], self._totals[k], draws), self._y[part], self._w[part]

    def close(self) -> None:
        pass


def loader(source, batches: list[np.ndarray], weights: np.ndarray | None, depth: int, pin: bool = False,
           memory_format: torch.memory_format = torch.contiguous_format, augment: Augment | None = None):
    """A DeviceLoader for a DeviceCache, else the background Prefetcher (bench/runner/prefetch.py).
    ``augment`` works on the cache's lit pixels only: with another source it raises ValueError naming
    --data-placement (config.validate stops such a run before any work)."""
    if isinstance(source, DeviceCache):
        return DeviceLoader(source, batches, weights, augment)
    if augment is not None and augment.transforms:
        raise ValueError("--augment works on the sparse device cache: use --data-placement device")
    return Prefetcher(source, batches, weights, depth=depth, pin=pin, memory_format=memory_format)
