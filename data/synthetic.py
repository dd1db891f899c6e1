"""The embedded default data: a physics-shaped toy of multi-jet detector images.

Each event is deterministic from (seed, event index) and made on the fly, at any image size.

Signal (RPV gluino pairs, m = 1400 GeV, each gluino -> t b s): about ten jets, two to four of them b
jets, a high scalar sum of jet pT (HT) shared fairly evenly between jets. Background (QCD multi-jet, three
HT slices with the reference study's cross sections and generated counts): fewer hard jets that carry
most of the HT, b jets from gluon splitting more often in busier events. The classes overlap in jet count and HT, so the task is learnable but
not trivial.

Each jet is a spray of particles around its axis; a charged hadron leaves a track (pT) plus most of its
energy in HCAL and some in ECAL, a photon (from pi0 decays) leaves ECAL energy, a neutral hadron HCAL
energy. Soft noise (pile-up and electronics) lights random pixels in all three channels.
"""
from __future__ import annotations

import numpy as np

from data.base import ETA_MAX, PHI_MAX, Batch, SparseImages, sparse_images

# (name, label, cross section [pb], generated events, selected events): Kim et al., Table 1
# (docs/physics-reference.md, 'Samples and weights').
SAMPLES = (
    ("rpv_gluino_1400", 1, 0.0253, 330_599, 294_762),
    ("qcd_ht1000to1500", 0, 1207.0, 15_466_225, 37_091),
    ("qcd_ht1500to2000", 0, 119.9, 3_368_613, 137_805),
    ("qcd_ht2000toinf", 0, 25.24, 3_250_016, 280_279),
)
_SELECTED = np.array([s[4] for s in SAMPLES], dtype=np.float64)
# Event mixture follows the selected counts of the study: 39% signal.
_SAMPLE_CDF = np.cumsum(_SELECTED) / _SELECTED.sum()
_WEIGHT = np.array([s[2] / s[3] for s in SAMPLES])

# Scale of reconstructed HT per sample [GeV]: (offset, exponential scale) for QCD, (mean, sd) for signal.
_HT_SHAPE = {1: (1500.0, 150.0), 2: (1500.0, 250.0), 3: (1700.0, 380.0)}
JET_MASS_OVER_PT = 0.12  # a typical R = 0.4 jet mass, for MJ in the toy's jet table
_CHARGED, _PHOTON, _NEUTRAL = 0.62, 0.25, 0.13  # particle-type fractions inside a jet


def _hash_uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """A uniform number in [0, 1) per (seed, index, stream), with no state: splitmix64."""
    with np.errstate(over="ignore"):
        z = (np.asarray(index, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
             + np.uint64(stream) * np.uint64(0xD1B54A32D192ED03))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def sample_of(seed: int, index: np.ndarray) -> np.ndarray:
    """Which sample (row of SAMPLES) each event comes from."""
    return np.searchsorted(_SAMPLE_CDF, _hash_uniform(seed, index, 1), side="right").astype(np.int64)


def _jets(rng: np.random.Generator, sample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Jet pT, eta, phi and b flag of one event."""
    if sample == 0:  # signal: ~10 partons, some merged or out of acceptance
        n = int(np.clip(rng.binomial(12, 0.72) + 1, 5, 14))
        ht = max(rng.normal(2150.0, 380.0), 1300.0)
        frac = rng.dirichlet(np.full(n, 1.6))
        nb = min(n, 1 + rng.binomial(3, 0.55))
        eta_sd = 1.05
    else:  # QCD: 2 hard jets plus radiation
        offset, scale = _HT_SHAPE[sample]
        n = int(np.clip(2 + rng.poisson(4.2), 3, 13))
        ht = offset + rng.exponential(scale)
        frac = rng.dirichlet(np.full(n, 0.75))
        nb = rng.binomial(min(n, 6), 0.14)  # more jets, more gluon splittings to b pairs
        eta_sd = 1.35
    pt = ht * frac
    eta = np.clip(rng.normal(0.0, eta_sd, n), -2.4, 2.4)
    phi = rng.uniform(-np.pi, np.pi, n)
    is_b = np.zeros(n, dtype=bool)
    is_b[rng.choice(n, size=nb, replace=False)] = True
    return pt, eta, phi, is_b


def _deposits(rng: np.random.Generator, pt, eta, phi, is_b):
    """Particles of all jets plus soft noise, as (channel, eta, phi, value) arrays."""
    # Harder jets have more, narrower constituents; b jets are a little wider.
    n_const = np.minimum(3 + rng.poisson(pt / 20.0), 60)
    jet = np.repeat(np.arange(len(pt)), n_const)
    share = rng.gamma(0.7, size=len(jet))
    share /= np.bincount(jet, share)[jet]
    p_pt = pt[jet] * share
    width = (0.04 + 2.5 / np.sqrt(pt + 25.0)) * np.where(is_b, 1.3, 1.0)
    p_eta = eta[jet] + rng.normal(0.0, 1.0, len(jet)) * width[jet]
    p_phi = phi[jet] + rng.normal(0.0, 1.0, len(jet)) * width[jet]
    kind = rng.random(len(jet))
    charged = kind < _CHARGED
    photon = (kind >= _CHARGED) & (kind < _CHARGED + _PHOTON)
    energy = p_pt * np.cosh(p_eta)
    # A charged hadron: track pT, ~75% of its energy in HCAL, the rest in ECAL.
    hcal_share = np.where(charged, rng.uniform(0.6, 0.9, len(jet)), np.where(photon, 0.0, 1.0))
    track = np.where(charged & (rng.random(len(jet)) < 0.9), p_pt, 0.0)
    # Soft noise: ~120 low-energy hits spread over the whole detector.
    n_noise = rng.poisson(120)
    n_eta = rng.uniform(-ETA_MAX, ETA_MAX, n_noise)
    n_phi = rng.uniform(-np.pi, np.pi, n_noise)
    n_val = rng.exponential(0.6, n_noise) * np.cosh(n_eta)
    n_chan = rng.integers(0, 3, n_noise)
    chan = np.concatenate([np.zeros(len(jet)), np.ones(len(jet)), np.full(len(jet), 2), n_chan])
    etas = np.concatenate([p_eta, p_eta, p_eta, n_eta])
    phis = np.concatenate([p_phi, p_phi, p_phi, n_phi])
    vals = np.concatenate([energy * hcal_share, energy * (1 - hcal_share), track, n_val])
    return chan.astype(np.int64), etas, phis, vals


class SyntheticSource:
    """An endless stream of toy events; ``n_events`` of them are exposed to the harness."""

    block = 1

    def __init__(self, n_events: int, image_size: int = 64, seed: int = 0, normalisation: str = "max"):
        if image_size % 8:
            raise ValueError(f"image size {image_size} is not divisible by 8")
        self.n_events = int(n_events)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.normalisation = normalisation
        idx = np.arange(self.n_events)
        self.samples = sample_of(self.seed, idx)
        self.labels = np.array([SAMPLES[s][1] for s in range(len(SAMPLES))], dtype=np.float32)[self.samples]
        # Physical weights: xsec / generated of the study, times (study's selected events / toy events), so
        # that a sample's weights sum to its selected cross section and yields at a luminosity make sense.
        self.weights = _WEIGHT[self.samples] * (_SELECTED.sum() / max(self.n_events, 1))

    def __len__(self) -> int:
        return self.n_events

    def _deposits_of(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(event row, pixel, GeV) of every deposit in the events ``indices``, repeats included."""
        size = self.image_size
        rows, pixels, values = [], [], []
        for row, i in enumerate(indices):
            rng = np.random.default_rng([self.seed, int(i)])
            chan, eta, phi, val = _deposits(rng, *_jets(rng, int(sample_of(self.seed, i))))
            keep = (np.abs(eta) < ETA_MAX) & (val > 0)
            ieta = ((eta[keep] + ETA_MAX) * (size / (2 * ETA_MAX))).astype(np.int64)
            # phi wraps: a particle that drifted past +pi lands near -pi.
            iphi = np.floor((phi[keep] + PHI_MAX) * (size / (2 * PHI_MAX))).astype(np.int64) % size
            pixels.append(chan[keep] * size * size + ieta * size + iphi)
            values.append(val[keep])
            rows.append(np.full(len(values[-1]), row, dtype=np.int64))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(rows), np.concatenate(pixels), np.concatenate(values)

    def raw_images(self, indices: np.ndarray) -> np.ndarray:
        """Un-normalised images (n, 3, H, W) in GeV."""
        indices = np.asarray(indices, dtype=np.int64)
        return self.sparse(indices, normalisation="none").dense(self.image_size)

    def sparse(self, indices: np.ndarray, normalisation: str | None = None) -> SparseImages:
        """The normalised images of ``indices`` as their lit pixels (no dense array is made)."""
        indices = np.asarray(indices, dtype=np.int64)
        rows, pixels, values = self._deposits_of(indices)
        return sparse_images(rows, pixels, values, len(indices), self.image_size,
                             self.normalisation if normalisation is None else normalisation)

    def load(self, indices: np.ndarray) -> Batch:
        indices = np.asarray(indices, dtype=np.int64)
        x = self.sparse(indices).dense(self.image_size)
        return Batch(x=x, y=self.labels[indices], w=self.weights[indices])

    def event_table(self, indices=None) -> dict[str, np.ndarray]:
        """njet, nb, ht, mj, lead_jet_pt and sample of the events ``indices`` (all: None), from the toy's jets.

        Jets below 30 GeV or outside |eta| < 2.4 are dropped, a jet's b flag is its tag, and MJ clusters the
        jets (given a mass of JET_MASS_OVER_PT times their pT) into anti-kT R = 1.2 jets with fastjet, as for
        generated events.
        """
        from data.generation import jets

        indices = np.arange(self.n_events) if indices is None else np.asarray(indices, dtype=np.int64)
        out = {k: np.zeros(len(indices)) for k in jets.QUANTITIES}
        p4s = []
        for i, event in enumerate(indices):
            rng = np.random.default_rng([self.seed, int(event)])
            pt, eta, phi, is_b = _jets(rng, int(self.samples[event]))
            keep = (pt > jets.JET_PT_MIN) & (np.abs(eta) < jets.JET_ETA_MAX)
            pt, eta, phi, is_b = pt[keep], eta[keep], phi[keep], is_b[keep]
            out["njet"][i], out["nb"][i], out["ht"][i] = len(pt), is_b.sum(), pt.sum()
            out["lead_jet_pt"][i] = pt.max() if len(pt) else 0.0
            mass = JET_MASS_OVER_PT * pt
            p4s.append(np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta),
                                 np.sqrt((pt * np.cosh(eta)) ** 2 + mass ** 2)], 1))
        for i, fat in enumerate(jets.cluster(p4s, jets.FAT_R, 0.0)):
            out["mj"][i] = jets.kinematics(fat)[3].sum() if len(fat) else 0.0
        out["njet"] = out["njet"].astype(np.int32)
        out["nb"] = out["nb"].astype(np.int32)
        return {**out, "sample": self.samples[indices]}

    def describe(self) -> dict:
        return {"kind": "synthetic", "seed": self.seed, "n_events": self.n_events,
                "n_signal": int(self.labels.sum()), "normalisation": self.normalisation}
