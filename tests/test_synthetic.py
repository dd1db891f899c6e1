"""Spec: the embedded synthetic toy is deterministic from (seed, event index), any image size divisible by
8, three channels (HCAL E, ECAL E, track pT), labels and physical weights from the study's samples, and
signal events are busier and harder (more energy, more lit pixels) than background on average."""
import numpy as np
import pytest

from data.base import normalise, training_weights
from data.synthetic import SAMPLES, SyntheticSource


def test_same_event_whatever_the_batch():
    src = SyntheticSource(100, image_size=32, seed=7)
    alone = src.load(np.array([42])).x[0]
    in_batch = src.load(np.array([3, 42, 99])).x[1]
    np.testing.assert_array_equal(alone, in_batch)
    again = SyntheticSource(100, image_size=32, seed=7).load(np.array([42])).x[0]
    np.testing.assert_array_equal(alone, again)
    other_seed = SyntheticSource(100, image_size=32, seed=8).load(np.array([42])).x[0]
    assert not np.array_equal(alone, other_seed)


@pytest.mark.parametrize("size", [8, 64, 224])
def test_shape_and_range(size):
    b = SyntheticSource(10, image_size=size, seed=1).load(np.arange(4))
    assert b.x.shape == (4, 3, size, size) and b.x.dtype == np.float32
    assert b.x.min() >= 0 and b.x.max() <= 1.0 + 1e-6  # 'max' normalisation
    assert b.y.dtype == np.float32 and b.w.dtype == np.float64


def test_labels_and_weights_follow_the_samples():
    src = SyntheticSource(20000, image_size=8, seed=3)
    assert 0.35 < src.labels.mean() < 0.43  # the study's 294,762 / 749,937 = 0.393
    # xsec / generated of the study, scaled so each sample's weights sum to its selected cross section
    scale = sum(s[4] for s in SAMPLES) / len(src)
    expected = {s[2] / s[3] * scale for s in SAMPLES}
    assert set(np.unique(src.weights).round(15)) <= {round(w, 15) for w in expected}
    sig = src.labels == 1
    np.testing.assert_allclose(src.weights[sig], SAMPLES[0][2] / SAMPLES[0][3] * scale)
    for k, (_, _, xsec, generated, selected) in enumerate(SAMPLES):
        np.testing.assert_allclose(src.weights[src.samples == k].sum(), xsec * selected / generated, rtol=0.05)


def test_signal_is_harder_and_busier_than_background():
    src = SyntheticSource(600, image_size=64, seed=5)
    raw = src.raw_images(np.arange(600))
    eta = (np.arange(64) + 0.5) / 64 * 5.0 - 2.5  # pixel centres
    transverse = (raw[:, :2].sum(axis=1) / np.cosh(eta)[None, :, None]).sum(axis=(1, 2))
    lit = (raw.sum(axis=1) > 1.0).sum(axis=(1, 2))
    sig = src.labels == 1
    assert transverse[sig].mean() > 1.05 * transverse[~sig].mean()  # scalar ET sum, like HT
    assert lit[sig].mean() > lit[~sig].mean()
    # tracks only carry charged particles: less than the calorimeters' total
    assert raw[:, 2].sum() < raw[:, :2].sum()


def test_normalisations():
    x = np.random.default_rng(0).exponential(10, size=(3, 3, 8, 8)).astype(np.float32)
    m = normalise(x.copy(), "max")
    np.testing.assert_allclose(m.reshape(3, 3, -1).max(axis=-1), 1.0, rtol=1e-6)
    r = normalise(x.copy(), "ref_max")
    np.testing.assert_array_equal(r[:, 1], x[:, 1])  # the reference leaves ECAL alone
    np.testing.assert_allclose(normalise(x.copy(), "log"), np.log10(x / 1e-5 + 1), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(x, "minmax")


def test_training_weights_balance_classes_and_keep_relative_weights():
    labels = np.array([1, 1, 0, 0, 0, 0])
    phys = np.array([1e-7, 1e-7, 1e-4, 1e-4, 1e-5, 3e-5])
    tw = training_weights(labels, phys)
    assert tw[labels == 1].sum() == pytest.approx(4) and tw[labels == 0].sum() == pytest.approx(4)
    assert tw[2] / tw[4] == pytest.approx(10)
