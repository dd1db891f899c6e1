"""A background thread that prepares the next batches while the current one trains.

It calls ``source.load`` (numpy: decoding or generating images releases the GIL for the heavy parts),
wraps the arrays as tensors without copying (a copy only to change the images' memory format), and
pins them for a GPU. An exception in the thread is
re-raised in the training thread at the next ``get``.
"""
from __future__ import annotations

import queue
import threading

import numpy as np
import torch

_END = object()


class Prefetcher:
    def __init__(self, source, batches: list[np.ndarray], train_weights: np.ndarray | None, depth: int = 2,
                 pin: bool = False, memory_format: torch.memory_format = torch.contiguous_format):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source, batches, train_weights, pin,
                                                                 memory_format),
                                        daemon=True, name="prefetch")
        self._thread.start()

    def _run(self, source, batches, train_weights, pin, memory_format):
        try:
            for idx in batches:
                if self._stop.is_set():
                    return
                flat = idx.reshape(-1)
                b = source.load(flat)
                w = b.w if train_weights is None else train_weights[flat]
                # The layout change (channels-last) is made here, off the training thread.
                x = torch.from_numpy(b.x).contiguous(memory_format=memory_format)
                item = (x, torch.from_numpy(b.y), torch.from_numpy(w.astype(np.float32)))
                if pin:
                    item = tuple(t.pin_memory() for t in item)
                self._put(item)
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the training thread
            self._put(exc)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self):
        """The next (x, y, weight) tensors (training weights if given, else the physical ones);
        raises what the loader raised."""
        item = self._queue.get()
        if item is _END:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
