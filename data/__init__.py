"""Reading events: the event-source protocol (``data.base``), the embedded synthetic toy
(``data.synthetic``), the HDF5 event store (``data.store``, its format and writer) and its readers
(``data.hdf5_source``), and the cut-based selection (``data.selection``, numpy only). Making stores from
physics is ``data.generation``.

``open_source`` is the single way the runner opens a source.
"""
from __future__ import annotations

from data.base import Batch, DataError, EventSource, normalise, training_weights  # noqa: F401
from data.hdf5_source import open_hdf5
from data.synthetic import SyntheticSource


def open_source(spec: str, image_size: int, normalisation: str, seed: int, n_events: int = 0) -> EventSource:
    """``spec`` is 'synthetic' (``n_events`` toy events) or the path of an HDF5 file.

    Raises DataError, naming the file and dataset, when a file cannot be used.
    """
    if spec == "synthetic":
        return SyntheticSource(n_events, image_size=image_size, seed=seed, normalisation=normalisation)
    return open_hdf5(spec, image_size=image_size, normalisation=normalisation)
