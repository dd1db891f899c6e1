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

from data.base import SparseImages, sparse_of_dense


class DevicePlacementError(RuntimeError):
    """The events do not fit in the device's free memory; the message names --data-placement."""


def sparse_of(source, indices: np.ndarray) -> SparseImages:
    """The source's own sparse reader if it has one, else its dense images compressed."""
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
        return ((pixel % hw) * 3 + pixel // hw).astype(np.int32)

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

    def dense(self, indices: np.ndarray) -> torch.Tensor:
        """float32 (n, 3, H, W) images of ``indices`` on the device (channels-last strides if asked)."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        slots = self.slot[idx]
        if len(slots) and slots.min() < 0:
            missing = int(idx[np.flatnonzero(slots < 0)[0]])
            raise IndexError(f"event {missing} was not preloaded on {self.device}")
        n, s = len(idx), self.size
        per = 3 * s * s
        total = int((self.offsets[slots + 1] - self.offsets[slots]).sum())  # on the host: no device sync
        dev_slots = torch.from_numpy(slots).to(self.device, non_blocking=True)
        start = self._offsets[dev_slots]
        count = self._offsets[dev_slots + 1] - start
        row = torch.repeat_interleave(torch.arange(n, device=self.device), count, output_size=total)
        first = torch.cumsum(count, 0) - count  # each event's first position in the gathered pixels
        src = start[row] + torch.arange(total, device=self.device) - first[row]
        x = torch.zeros(n * per, dtype=torch.float32, device=self.device)
        x[row * per + self._pixel[src]] = self._value[src]
        if self.channels_last:
            return x.view(n, s, s, 3).permute(0, 3, 1, 2)
        return x.view(n, 3, s, s)


class DeviceLoader:
    """The Prefetcher's interface (``get``/``close``) over a DeviceCache: the next batch is built on the
    device when asked for; labels and weights are indexed on the device too."""

    def __init__(self, cache: DeviceCache, batches: list[np.ndarray], weights: np.ndarray | None):
        self.cache, self.batches = cache, batches
        w = cache.weights if weights is None else weights
        self._y = torch.from_numpy(np.asarray(cache.labels, np.float32)).to(cache.device)
        self._w = torch.from_numpy(np.asarray(w, np.float32)).to(cache.device)
        self._next = 0

    def get(self):
        if self._next >= len(self.batches):
            raise StopIteration
        idx = np.ascontiguousarray(self.batches[self._next].reshape(-1), dtype=np.int64)
        self._next += 1
        dev_idx = torch.from_numpy(idx).to(self.cache.device, non_blocking=True)
        return self.cache.dense(idx), self._y[dev_idx], self._w[dev_idx]

    def close(self) -> None:
        pass


def loader(source, batches: list[np.ndarray], weights: np.ndarray | None, depth: int, pin: bool = False,
           memory_format: torch.memory_format = torch.contiguous_format):
    """A DeviceLoader for a DeviceCache, else the background Prefetcher (bench/prefetch.py)."""
    if isinstance(source, DeviceCache):
        return DeviceLoader(source, batches, weights)
    from bench.prefetch import Prefetcher
    return Prefetcher(source, batches, weights, depth=depth, pin=pin, memory_format=memory_format)
