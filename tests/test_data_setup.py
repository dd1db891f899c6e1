"""Spec: what can be checked before training is: a class whose physical weights sum to zero in a split
stops the run before any work, naming the file, the weights' dataset, the class and the split."""
from dataclasses import replace

import numpy as np
import pytest

from bench.runner.config import Config
from bench.runner.data_setup import open_data
from data.base import DataError
from tests.test_data_reader import SIZE, _dense_file


@pytest.mark.parametrize("layout,dataset", [("nhwc", "all_events/weights"), ("hist", "all_events/weight")])
def test_a_class_without_weight_is_refused_before_training(tmp_path, layout, dataset):
    n = 40
    labels = np.arange(n) % 2
    weights = np.where(labels == 0, 0.0, 1.0)  # every background event weighs 0
    path = tmp_path / "zero.h5"
    _dense_file(path, layout, n=n, labels=labels, weights=weights)
    cfg = replace(Config(), data=str(path), image_size=SIZE, train_events=0, val_events=0)
    with pytest.raises(DataError) as err:
        open_data(cfg)
    message = str(err.value)
    assert str(path) in message and dataset in message and "background" in message
    assert "training split" in message and "summing to 0" in message


def test_weighted_classes_pass(tmp_path):
    path = tmp_path / "ok.h5"
    _dense_file(path, "nchw", n=40)
    data = open_data(replace(Config(), data=str(path), image_size=SIZE, train_events=0, val_events=0))
    assert np.isfinite(data.train_weights).all() and (data.train_weights > 0).all()
