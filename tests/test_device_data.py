"""Spec: --data-placement device (the default with --device cuda) keeps the run's events on the device as
lit pixels and builds each batch there. The images it builds are exactly those the host loader gives, for
every source kind, normalisation and memory format; a run trains to the same losses as with the host
loader; the record says where the data was and what the preload cost; an event that was not preloaded, or
a cache larger than the device can hold, is refused with a message naming it. ``auto`` resolves per device.
The sparse path of the sources (``sparse``) sums repeated deposits and normalises exactly as the dense one.
GPU tests run only where CUDA is available."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from bench.runner.config import parse_config
from bench.runner.device_data import DeviceCache, DeviceLoader, DevicePlacementError
from data.base import NORMALISATIONS, normalise, sparse_images
from data.hdf5_source import open_hdf5
from data.store import write_synthetic
from data.synthetic import SyntheticSource

ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("mode", NORMALISATIONS)
def test_sparse_images_sum_repeats_and_normalise_like_dense(mode):
    rng = np.random.default_rng(5)
    n, size = 7, 8
    per = 3 * size * size
    rows = rng.integers(0, n - 1, 400)  # the last event gets no deposit at all
    pixel = rng.integers(0, per, 400)  # many repeats: 400 deposits on 192 pixels per event at most
    value = rng.exponential(3.0, 400)
    dense = np.bincount(rows * per + pixel, value, minlength=n * per).astype(np.float32)
    expected = normalise(dense.reshape(n, 3, size, size), mode)
    sp = sparse_images(rows, pixel, value, n, size, mode)
    np.testing.assert_array_equal(sp.dense(size), expected)
    assert sp.counts[-1] == 0 and (sp.value != 0).all() and sp.counts.sum() == len(sp.pixel)


def _store(tmp_path):
    path = tmp_path / "s.h5"
    write_synthetic(path, 96, 16, pixels_per_event=30, chunk_events=32)
    return open_hdf5(str(path))


def _dense(tmp_path):
    path = tmp_path / "d.h5"
    rng = np.random.default_rng(2)
    images = rng.exponential(1.0, (40, 16, 16, 3)).astype(np.float32)
    images[images < 1.5] = 0.0
    with h5py.File(path, "w") as f:
        f["all_events/images"] = images
        f["all_events/labels"] = np.arange(40) % 2
        f["all_events/weights"] = np.ones(40)
    return open_hdf5(str(path))


@pytest.mark.parametrize("kind", ["synthetic", "store", "dense"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cache_builds_the_images_the_source_loads(tmp_path, kind, channels_last):
    source = {"synthetic": lambda: SyntheticSource(80, image_size=16, seed=3),
              "store": lambda: _store(tmp_path), "dense": lambda: _dense(tmp_path)}[kind]()
    held = np.arange(len(source))[::2]
    cache = DeviceCache(source, held, CPU, channels_last, chunk=7)  # several chunks
    batch = held[[5, 0, 3, 3, 11]]  # any order, repeats allowed
    x = cache.dense(batch)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert x.shape == (5, 3, 16, 16) and x.is_contiguous(memory_format=fmt)
    np.testing.assert_array_equal(x.numpy(), source.load(batch).x)
    assert cache.events == len(held) and cache.preload_s > 0 and cache.nbytes > 0
    with pytest.raises(IndexError, match="event 1 was not preloaded"):
        cache.dense(np.array([0, 1]))


def test_loader_gives_labels_and_the_given_weights():
    source = SyntheticSource(40, image_size=8, seed=1)
    cache = DeviceCache(source, np.arange(40), CPU, True)
    weights = np.linspace(0.5, 2.0, 40)
    batches = [np.array([[3, 1], [4, 7]]), np.array([[9, 0], [2, 5]])]  # (accumulation, micro) per step
    loader = DeviceLoader(cache, batches, weights)
    for b in batches:
        x, y, w = loader.get()
        flat = b.reshape(-1)
        np.testing.assert_array_equal(x.numpy(), source.load(flat).x)
        np.testing.assert_array_equal(y.numpy(), source.labels[flat])
        np.testing.assert_allclose(w.numpy(), weights[flat], rtol=1e-7)
    with pytest.raises(StopIteration):
        loader.get()


def test_a_cache_too_large_for_the_gpu_is_refused_naming_the_flag(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 10_000))
    with pytest.raises(DevicePlacementError, match="--data-placement host"):
        DeviceCache(SyntheticSource(20, image_size=8, seed=1), np.arange(20), torch.device("cuda", 0), True)


def test_auto_resolves_per_device():
    from bench.runner.config import auto_amp
    cpu, gpu = parse_config([]), parse_config(["--device", "cuda"])
    assert (cpu.amp, cpu.data_placement) == (auto_amp("cpu")[0], "host")  # bf16 where the CPU has a bf16 unit
    assert (gpu.amp, gpu.data_placement) == ("bf16", "device")
    assert parse_config(["--device", "cuda", "--amp", "none", "--data-placement", "host"]).data_placement == "host"
    assert parse_config(["--data-placement", "device"]).data_placement == "device"


def _run(tmp_path, name, *extra):
    out = tmp_path / f"{name}.jsonl"
    args = ["--image-size", "16", "--global-batch", "64", "--train-events", "256", "--val-events", "128",
            "--epochs", "3", "--threads", "1", "--out", str(out), *extra]
    proc = subprocess.run([sys.executable, "-m", "bench.strong_scaling", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
    return rec


@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_a_run_on_device_data_trains_like_the_host_loader(tmp_path):
    host = _run(tmp_path, "host")
    dev = _run(tmp_path, "device", "--data-placement", "device")
    assert host["data_placement"] == "host" and host["data_preload_s"] is None
    assert dev["data_placement"] == dev["config"]["data_placement"] == "device"
    assert dev["data_preload_s"] > 0 and dev["data_device_bytes"] > 0
    # Same images in the same order, same seeds: the same training, to float rounding.
    np.testing.assert_allclose(dev["val_loss"], host["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(dev["auc"], host["auc"], rtol=1e-5)
    assert dev["test_auc"] == pytest.approx(host["test_auc"], rel=1e-5)


@needs_cuda
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_cache_builds_the_images_the_source_loads(channels_last):
    source = SyntheticSource(300, image_size=32, seed=4)
    cache = DeviceCache(source, np.arange(300), torch.device("cuda", 0), channels_last)
    batch = np.random.default_rng(0).permutation(300)[:64]
    x = cache.dense(batch)
    assert x.is_cuda
    np.testing.assert_array_equal(x.cpu().numpy(), source.load(batch).x)


@needs_cuda
@pytest.mark.slow  # runs python -m bench.strong_scaling
def test_cuda_run_defaults_to_device_data_and_bf16(tmp_path):
    rec = _run(tmp_path, "gpu", "--device", "cuda")
    assert rec["device"] == "cuda" and rec["config"]["amp"] == "bf16"
    assert rec["data_placement"] == "device" and rec["data_wait_s"] < rec["compute_s"]


def test_ranks_on_a_node_take_its_gpus_in_turn(monkeypatch):
    from bench.runner.data_setup import pick_device
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert [pick_device("cuda", r).index for r in range(4)] == [0, 1, 0, 1] == [d.index for d in chosen]
    assert pick_device("cpu", 3) == torch.device("cpu")
