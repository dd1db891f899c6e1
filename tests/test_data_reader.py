"""Spec: data.hdf5_source.open_hdf5 reads the sparse store and the dense layouts as an EventSource.

``load`` returns exactly the images that were written (any index order, duplicates, several runs), normalised
as asked, with labels and physical weights; it is safe from several threads; ``describe`` and ``event_table``
report the file. Dense files in layout (a) NHWC / NCHW ``all_events/images`` and (b) ``hist`` / ``histEM`` /
``histtrack`` load to the same images. Every kind of bad input raises DataError naming the file and the
dataset or field (or the --image-size flag).
"""
from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest

from data.base import Batch, DataError, EventSource
from data.hdf5_source import open_hdf5
from data.store import StoreWriter, write_synthetic

SIZE = 16


def _dense_truth(path, n):
    """The raw images of a sparse store, rebuilt the slow, obvious way."""
    with h5py.File(path, "r") as f:
        off, idx, val = f["events/offsets"][:], f["pixels/index"][:], f["pixels/value"][:]
    out = np.zeros((n, 3 * SIZE * SIZE), np.float32)
    for i in range(n):
        out[i, idx[off[i]:off[i + 1]]] = val[off[i]:off[i + 1]]
    return out.reshape(n, 3, SIZE, SIZE)


@pytest.fixture
def sparse(tmp_path):
    p = tmp_path / "s.h5"
    write_synthetic(p, 300, SIZE, pixels_per_event=40, chunk_events=32)
    return p


def test_sparse_load_matches_what_was_written(sparse):
    src = open_hdf5(str(sparse), normalisation="none")
    assert isinstance(src, EventSource)
    assert len(src) == 300 and src.image_size == SIZE and src.block == 32
    truth = _dense_truth(sparse, 300)
    for idx in (np.arange(64, 128), np.array([299, 3, 3, 150, 0, 1000 % 300]), np.arange(300)[::-7]):
        b = src.load(idx)
        assert isinstance(b, Batch) and b.x.dtype == np.float32 and b.x.shape == (len(idx), 3, SIZE, SIZE)
        np.testing.assert_array_equal(b.x, truth[idx])
        np.testing.assert_array_equal(b.y, src.labels[idx])
        np.testing.assert_array_equal(b.w, src.weights[idx])
    assert src.labels.dtype == np.float32 and src.weights.dtype == np.float64


def test_weights_and_description(sparse):
    src = open_hdf5(str(sparse))
    d = src.describe()
    assert d["kind"] == "hdf5" and d["n_events"] == 300 and d["n_signal"] + d["n_background"] == 300
    assert d["normalisation"] == "max" and d["format"].startswith("hep-sparse-images")
    xs = {s["name"]: s["xsec_pb"] / s["n_generated"] for s in d["samples"]}
    sample = src.event_table()["sample"]
    names = [s["name"] for s in d["samples"]]
    np.testing.assert_allclose(src.weights, [xs[names[s]] for s in sample])
    t = src.event_table()
    assert set(t) == {"njet", "nb", "ht", "mj", "lead_jet_pt", "sample"} and len(t["ht"]) == 300
    x = src.load(np.arange(10)).x
    assert np.allclose(x.reshape(10, 3, -1).max(axis=2), 1.0)  # "max": every channel peaks at 1


def test_load_is_thread_safe(sparse):
    src = open_hdf5(str(sparse), normalisation="none")
    truth = _dense_truth(sparse, 300)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(30):
            i = np.sort(rng.choice(300, 40, replace=False))
            if not np.array_equal(src.load(i).x, truth[i]):
                errors.append(seed)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors


def _dense_file(path, layout, n=20, size=SIZE, labels=None, weights=None, images=None):
    rng = np.random.default_rng(0)
    img = rng.exponential(1.0, (n, 3, size, size)).astype(np.float32) if images is None else images
    y = np.arange(n) % 2 if labels is None else labels
    w = rng.uniform(0.1, 1.0, n) if weights is None else weights
    with h5py.File(path, "w") as f:
        g = f.create_group("all_events")
        if layout == "nhwc":
            g["images"] = img.transpose(0, 2, 3, 1)
            g["weights"], g["labels"] = w, y
        elif layout == "nchw":
            g["images"] = img
            g["weights"], g["y"] = w, y
        else:
            g["hist"], g["histEM"], g["histtrack"] = img[:, 0], img[:, 1], img[:, 2]
            g["weight"], g["y"] = w, y
    return img, y, w


@pytest.mark.parametrize("layout", ["nhwc", "nchw", "hist"])
def test_dense_layouts_load_the_same_images(tmp_path, layout):
    p = tmp_path / f"{layout}.h5"
    img, y, w = _dense_file(p, layout)
    src = open_hdf5(str(p), normalisation="none")
    idx = np.array([5, 1, 19, 2])
    b = src.load(idx)
    np.testing.assert_array_equal(b.x, img[idx])
    np.testing.assert_array_equal(b.y, y[idx])
    np.testing.assert_allclose(b.w, w[idx])
    assert src.describe()["format"] == f"dense-{layout}" and src.image_size == SIZE


def _expect(path, *words, **kw):
    with pytest.raises(DataError) as e:
        src = open_hdf5(str(path), **kw)
        src.load(np.arange(len(src)))
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


def test_missing_file_and_not_hdf5(tmp_path, sparse):
    _expect(tmp_path / "nope.h5", "no such file")
    (tmp_path / "text.h5").write_text("hello")
    _expect(tmp_path / "text.h5", "HDF5")
    data = sparse.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    _expect(tmp_path / "cut.h5")


def test_wrong_image_size_names_the_flag(sparse):
    _expect(sparse, "--image-size", "16x16", image_size=64)


def test_missing_dataset(tmp_path, sparse):
    with h5py.File(sparse, "a") as f:
        del f["events/gen_weight"]
    _expect(sparse, "events/gen_weight")
    p = tmp_path / "d.h5"
    _dense_file(p, "nhwc")
    with h5py.File(p, "a") as f:
        del f["all_events/weights"]
    _expect(p, "all_events/weights")
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_group("other")
    _expect(tmp_path / "empty.h5", "all_events")


def test_wrong_shapes_and_dtypes(tmp_path, sparse):
    p = tmp_path / "shape.h5"
    _dense_file(p, "nchw")
    with h5py.File(p, "a") as f:
        del f["all_events/images"]
        f["all_events/images"] = np.zeros((20, 4, SIZE, SIZE), np.float32)
    _expect(p, "all_events/images", "shape")
    p = tmp_path / "hist.h5"
    _dense_file(p, "hist")
    with h5py.File(p, "a") as f:
        del f["all_events/histEM"]
        f["all_events/histEM"] = np.zeros((20, SIZE, 8), np.float32)
    _expect(p, "histEM")
    p = tmp_path / "wlen.h5"
    _dense_file(p, "nhwc", weights=np.ones(7))
    _expect(p, "all_events/weights")
    with h5py.File(sparse, "a") as f:
        del f["pixels/value"]
        f.create_dataset("pixels/value", data=np.zeros(10, dtype="S4"))
    _expect(sparse, "pixels/value", "dtype")


def test_non_finite_pixels_name_the_event(tmp_path, sparse):
    with h5py.File(sparse, "a") as f:
        off = f["events/offsets"][:]
        f["pixels/value"][off[123]] = np.nan
    with pytest.raises(DataError, match=r"pixels/value.*event 123"):
        open_hdf5(str(sparse)).load(np.arange(100, 200))
    p = tmp_path / "inf.h5"
    img, _, _ = _dense_file(p, "hist")
    with h5py.File(p, "a") as f:
        f["all_events/histtrack"][7, 1, 1] = np.inf
    with pytest.raises(DataError, match=r"event 7"):
        open_hdf5(str(p)).load(np.arange(20))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_weights(tmp_path, bad):
    p = tmp_path / "w.h5"
    w = np.ones(20)
    w[4] = bad
    _dense_file(p, "nhwc", weights=w)
    _expect(p, "all_events/weights", "event 4")


def test_bad_generator_weight_in_store(sparse):
    with h5py.File(sparse, "a") as f:
        f["events/gen_weight"][9] = -2.0
    _expect(sparse, "event 9")


def test_one_class_only(tmp_path):
    p = tmp_path / "one.h5"
    _dense_file(p, "nchw", labels=np.ones(20))
    _expect(p, "all_events/y", "one class")
    p = tmp_path / "one_sparse.h5"
    with StoreWriter(p, SIZE) as w:
        s = w.sample_index("bkg", 0)
        w.append(s, 0, {"idx": [np.array([1], np.int32)], "val": [np.array([1.0], np.float32)],
                        "gen_weight": [1.0], "njet": [4], "nb": [1], "ht": [2000.0], "mj": [600.0],
                        "lead_jet_pt": [500.0]}, n_generated=10, sigma_pb=1.0)
    _expect(p, "events/label", "one class")


def test_uncommitted_events_are_invisible(sparse):
    with h5py.File(sparse, "a") as f:
        f.attrs["committed_events"] = 200
    src = open_hdf5(str(sparse))
    assert len(src) == 200
    assert sum(s["n_selected"] for s in src.describe()["samples"]) <= 200
