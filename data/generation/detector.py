"""A CMS-like detector response in numpy, after the Delphes 3.4 CMS card (cards/delphes_card_CMS.tcl); every
figure and its source: docs/physics-reference.md, 'Detector'.

Input: the final-state particles of one event as numpy arrays (``Particles``). Output: what the detector
sees (``Response``): ECAL towers, HCAL towers and reconstructed tracks, each as (eta, phi, value) arrays,
plus ``image()`` which bins them into the project's three-channel sparse image.

Choices, with the reason for each (docs/data.md repeats them):

* Towers cover |eta| < 2.5 only: the images stop there and jets need |eta| < 2.4, so forward calorimetry
  would only add cost. ECAL cells are 0.0174 x 2pi/360 everywhere (the card uses these cells in the barrel
  and in the endcaps up to |eta| 2.958), HCAL cells 0.087 x 5 degrees everywhere (the card widens them beyond
  |eta| 1.74; we keep one grid so the images see one granularity).
* Photons and electrons deposit in the ECAL; hadrons in the HCAL, except K0S and Lambda which the card
  splits 30 % ECAL / 70 % HCAL; muons, neutrinos and any invisible BSM particle deposit nothing.
* Tower energies are smeared with a log-normal of the card's resolution (Delphes smears the same way, which
  keeps energies positive); towers below the card's thresholds (ECAL 0.5 GeV, HCAL 1.0 GeV) are dropped.
* Tracks: every charged final-state particle with pT > 0.1 GeV and |eta| < 2.5 is found with the card's
  charged-hadron efficiency; pT is smeared log-normally with the card's relative resolution
  sqrt(a^2 + (b pT)^2), a/b = 0.06/1.3e-3 (|eta| <= 0.5), 0.10/1.7e-3 (0.5-1.5), 0.25/3.1e-3 (1.5-2.5).
  Delphes' MomentumSmearing multiplies the formula by pT, so the figures are relative, not GeV.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.base import ETA_MAX

TWO_PI = 2.0 * np.pi


def _edges(width: float) -> np.ndarray:
    """Cell edges of a fixed width, symmetric about eta = 0, the outer cells cut at |eta| = ETA_MAX."""
    n = int(np.ceil(ETA_MAX / width))
    return np.clip(width * np.arange(-n, n + 1), -ETA_MAX, ETA_MAX)


ECAL_ETA_EDGES = _edges(0.0174)
ECAL_NPHI = 360
HCAL_ETA_EDGES = _edges(0.087)
HCAL_NPHI = 72
ECAL_E_MIN = 0.5  # GeV, card's ECal EnergyMin
HCAL_E_MIN = 1.0  # GeV, card's HCal EnergyMin

NEUTRINOS = (12, 14, 16)
MUON = 13
EM_IDS = (11, 22)
SPLIT_HADRONS = (310, 3122)  # K0S, Lambda: 30 % ECAL, 70 % HCAL in the card


@dataclass
class Particles:
    """Final-state particles of one event (GeV)."""

    pid: np.ndarray  # int32
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    charge: np.ndarray  # float32, units of e

    @staticmethod
    def concat(parts: list["Particles"]) -> "Particles":
        """Join events (used to overlay pile-up on a hard event)."""
        return Particles(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                           ("pid", "px", "py", "pz", "e", "charge")))


@dataclass
class Response:
    """What the detector sees in one event: towers (eta, phi, E) and tracks (eta, phi, pT)."""

    ecal: np.ndarray  # float64 (n, 3): eta, phi, E
    hcal: np.ndarray  # float64 (n, 3)
    tracks: np.ndarray  # float64 (n, 3): eta, phi, pT

    def towers_p4(self) -> np.ndarray:
        """Massless four-vectors (px, py, pz, E) of all towers: what the jets are clustered from."""
        t = np.concatenate([self.ecal, self.hcal])
        eta, phi, e = t[:, 0], t[:, 1], t[:, 2]
        pt = e / np.cosh(eta)
        return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], axis=1)


def pt_eta_phi(px, py, pz):
    """pT, pseudorapidity and phi of momenta (arrays)."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.full_like(pz, np.sign(pz) * 1e9), where=pt > 0))
    return pt, eta, np.arctan2(py, px)


def lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Log-normal numbers with the given mean and standard deviation (Delphes' LogNormal)."""
    mean = np.maximum(mean, 1e-12)
    s2 = np.log1p((sigma / mean) ** 2)
    return rng.lognormal(np.log(mean) - 0.5 * s2, np.sqrt(s2))


def ecal_resolution(e: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Card's ECAL resolution (GeV): its barrel (|eta| <= 1.5) and endcap (1.5-2.5) terms."""
    stoch = np.sqrt((0.008 * e) ** 2 + 0.11 ** 2 * e + 0.40 ** 2)
    a = np.abs(eta)
    return np.where(a <= 1.5, 1.0 + 0.64 * a ** 2, 2.16 + 5.6 * (a - 2.0) ** 2) * stoch


def hcal_resolution(e: np.ndarray) -> np.ndarray:
    """Card's HCAL resolution (GeV) for |eta| <= 3."""
    return np.sqrt((0.050 * e) ** 2 + 1.50 ** 2 * e)


def _towers(eta, phi, e, eta_edges, nphi, resolution, e_min, rng) -> np.ndarray:
    """Sum deposits into cells, smear each cell's energy, drop cells under threshold.

    Returns (n, 3) eta, phi, E at the cell centres, as Delphes' towers sit at the cell centre.
    """
    neta = len(eta_edges) - 1
    ieta = np.clip(np.searchsorted(eta_edges, eta, side="right") - 1, 0, neta - 1)
    iphi = np.clip(((phi + np.pi) / TWO_PI * nphi).astype(np.int64), 0, nphi - 1)
    cell, inv = np.unique(ieta * nphi + iphi, return_inverse=True)
    energy = np.bincount(inv, weights=e, minlength=len(cell))
    ceta = 0.5 * (eta_edges[cell // nphi] + eta_edges[cell // nphi + 1])
    cphi = -np.pi + (cell % nphi + 0.5) * TWO_PI / nphi
    smeared = lognormal(rng, energy, resolution(energy, ceta))
    keep = smeared >= e_min
    return np.stack([ceta[keep], cphi[keep], smeared[keep]], axis=1)


def _track_efficiency(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    a = np.abs(eta)
    central = np.where(pt > 1.0, 0.95, 0.70)
    forward = np.where(pt > 1.0, 0.85, 0.60)
    eff = np.where(a <= 1.5, central, forward)
    return np.where((pt > 0.1) & (a <= ETA_MAX), eff, 0.0)


def _track_resolution(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Relative pT resolution of the card (multiplied by pT in Delphes' MomentumSmearing)."""
    a = np.abs(eta)
    ca = np.select([a <= 0.5, a <= 1.5], [0.06, 0.10], 0.25)
    cb = np.select([a <= 0.5, a <= 1.5], [1.3e-3, 1.7e-3], 3.1e-3)
    return np.sqrt(ca ** 2 + (cb * pt) ** 2)


def simulate(p: Particles, rng: np.random.Generator) -> Response:
    """Detector response of one event."""
    pt, eta, phi = pt_eta_phi(p.px, p.py, p.pz)
    apid = np.abs(p.pid)
    inside = np.abs(eta) < ETA_MAX
    invisible = np.isin(apid, NEUTRINOS) | (apid == MUON) | (apid > 1000000)
    em = np.isin(apid, EM_IDS)
    split = np.isin(apid, SPLIT_HADRONS)
    visible = inside & ~invisible
    f_ecal = np.where(em, 1.0, np.where(split, 0.3, 0.0)) * visible
    f_hcal = np.where(em, 0.0, np.where(split, 0.7, 1.0)) * visible

    m = f_ecal > 0
    ecal = _towers(eta[m], phi[m], p.e[m] * f_ecal[m], ECAL_ETA_EDGES, ECAL_NPHI,
                   ecal_resolution, ECAL_E_MIN, rng)
    m = f_hcal > 0
    hcal = _towers(eta[m], phi[m], p.e[m] * f_hcal[m], HCAL_ETA_EDGES, HCAL_NPHI,
                   lambda e, _eta: hcal_resolution(e), HCAL_E_MIN, rng)

    charged = (p.charge != 0) & ~np.isin(apid, NEUTRINOS)
    found = charged & (rng.random(len(pt)) < _track_efficiency(pt, eta))
    tpt = lognormal(rng, pt[found], _track_resolution(pt[found], eta[found]) * pt[found])
    tracks = np.stack([eta[found], phi[found], tpt], axis=1)
    return Response(ecal=ecal, hcal=hcal, tracks=tracks)


def image(r: Response, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The event's sparse image: (flat pixel index int32, value float32), sorted by index.

    Flat index = c*H*W + ieta*W + iphi with H = W = size, channels HCAL E, ECAL E, track pT, eta in
    [-2.5, 2.5] along the height and phi in [-pi, pi] along the width. Several towers falling in one pixel
    are summed, so each channel's pixel sum equals its tower (or track) sum exactly.
    """
    idx, val = [], []
    for c, obj in enumerate((r.hcal, r.ecal, r.tracks)):
        ieta = np.clip(((obj[:, 0] + ETA_MAX) / (2 * ETA_MAX) * size).astype(np.int64), 0, size - 1)
        iphi = np.clip(((obj[:, 1] + np.pi) / TWO_PI * size).astype(np.int64), 0, size - 1)
        idx.append(c * size * size + ieta * size + iphi)
        val.append(obj[:, 2])
    flat, inv = np.unique(np.concatenate(idx), return_inverse=True)
    values = np.bincount(inv, weights=np.concatenate(val), minlength=len(flat))
    return flat.astype(np.int32), values.astype(np.float32)
