"""The run's events: opened, split, weighted, checked against the batch arithmetic, and placed.

Shared by ``bench.strong_scaling`` and ``bench.evaluate`` (which rebuilds a trained model's test split
from the configuration saved with it), so neither entry point imports the other.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from bench.runner.config import Config, UsageError, split_fractions_of
from bench.runner.device_data import DeviceCache
from bench.runner.sampler import Split, split_counts, split_fractions
from data import open_source, training_weights
from data.btag import BtagChannelSource
from data.base import DataError


@dataclass(frozen=True)
class Data:
    source: object  # data.base.EventSource
    split: Split
    train_weights: np.ndarray  # (n_events,) per event of the source; classes balanced within each split
    cache: object = None  # bench.runner.device_data.DeviceCache with --data-placement device

    @property
    def images(self):
        """Where training and scoring take their images from: the device cache, else the source."""
        return self.cache if self.cache is not None else self.source


def open_data(cfg: Config) -> Data:
    """The source ``cfg.data`` names, its train/validation/test split and the training weights.

    Raises data.base.DataError naming the file and dataset when a file cannot be used.
    """
    if cfg.data == "synthetic":
        if cfg.btag_channel:
            raise DataError("synthetic: --btag-channel needs a store with every event's jets; the toy has none")
        n_test = cfg.val_events
        source = open_source("synthetic", cfg.image_size, cfg.normalisation, cfg.seed,
                             cfg.train_events + cfg.val_events + n_test)
        split = split_counts(cfg.train_events, cfg.val_events, n_test)
    else:
        source = open_source(cfg.data, cfg.image_size, cfg.normalisation, cfg.seed)
        # Split by event, not by the reader's block: generated and converted stores hold one sample per
        # chunk, and whole-chunk splits of a small file can leave a class out of a split.
        if cfg.btag_channel:
            source = BtagChannelSource(source)
        split = split_fractions(len(source), cfg.seed, split_fractions_of(cfg.split), block=1,
                                max_train=cfg.train_events, max_val=cfg.val_events)
    labels, weights = source.labels, source.weights
    tw = np.zeros(len(source))
    for name, part in (("training", split.train), ("validation", split.val), ("test", split.test)):
        check_class_weights(source, name, part)
        tw[part] = training_weights(labels[part], weights[part])
    return Data(source=source, split=split, train_weights=tw)


def check_class_weights(source, split_name: str, part: np.ndarray) -> None:
    """Each class present in a split must carry weight: a class whose physical weights sum to 0 would make
    the training weights, the loss and the AUC undefined. Raises DataError naming the file, the weights'
    dataset, the class and the split."""
    for label, cls in ((1, "signal"), (0, "background")):
        mine = source.labels[part] == label
        if mine.any() and not source.weights[part][mine].sum() > 0:
            where = getattr(source, "path", "synthetic")
            raise DataError(f"{where}: the {int(mine.sum())} {cls} events of the {split_name} split have "
                            f"weights ({getattr(source, 'weights_name', 'weights')}) summing to 0; nothing "
                            "can be trained or measured on them")


def check_fits(cfg: Config, data: Data, sizes: list[int]) -> None:
    """Batch arithmetic for every world size this job will run; all ranks agree before any work.

    Raises UsageError naming the flag.
    """
    for n in sizes:
        if cfg.global_batch % n:
            raise UsageError(f"--global-batch {cfg.global_batch} is not divisible by {n} ranks")
        per_rank = cfg.global_batch // n
        if cfg.micro_batch and per_rank % cfg.micro_batch:
            raise UsageError(f"per-rank batch {per_rank} (--global-batch / {n} ranks) is not divisible "
                             f"by --micro-batch {cfg.micro_batch}")
    if len(data.split.train) < cfg.global_batch:
        raise UsageError(f"--global-batch {cfg.global_batch} is larger than the {len(data.split.train)} "
                         "training events: not one step per epoch")
    if len(data.split.train) < max(sizes):
        raise UsageError(f"{max(sizes)} ranks but only {len(data.split.train)} training events")
    val_labels = data.source.labels[data.split.val]
    if len(np.unique(val_labels)) < 2:
        raise UsageError(f"the {len(data.split.val)} validation events hold "
                         f"{'no events' if len(val_labels) == 0 else 'one class only'}: AUC needs both "
                         "(raise --val-events, or check the data file's labels)")


def place_data(cfg: Config, data: Data, device) -> Data:
    """With --data-placement device: every event of the three splits preloaded on ``device``.

    Raises bench.runner.device_data.DevicePlacementError when they do not fit, DataError on a bad pixel.
    """
    if cfg.data_placement != "device":
        return data
    events = np.concatenate([data.split.train, data.split.val, data.split.test])
    cache = DeviceCache(data.source, events, device, cfg.memory_format == "channels_last")
    return replace(data, cache=cache)


def pick_device(name: str, local_rank: int = 0):
    """The CPU, or the GPU of this rank: ranks on a node take its GPUs in turn (local rank modulo count).

    Raises UsageError naming --device when CUDA is asked for and absent.
    """
    if name == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
    if name != "cuda":
        return torch.device("cpu")
    device = torch.device("cuda", local_rank % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device
