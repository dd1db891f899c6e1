"""Jets, b-tagging and the cut-based baseline (docs/physics-reference.md, 'Selection'; the b-tag efficiencies
are the Delphes CMS card's).

Jets are clustered by fastjet's awkward-array interface, many events per call (about 10x faster than one
ClusterSequence per event). Jets are made from calorimeter towers only (massless four-vectors at the tower
centres): adding tracks on top of towers would count charged energy twice, and a particle-flow merge is
more than this harness needs.
"""
from __future__ import annotations

import contextlib
import os
import sys

import awkward as ak
import fastjet
import numpy as np

JET_R = 0.4
FAT_R = 1.2
JET_PT_MIN = 30.0  # GeV
JET_ETA_MAX = 2.4
MATCH_DR = 0.4

QUANTITIES = ("njet", "nb", "ht", "mj", "lead_jet_pt")
# Columns of each event's jet table (``event_quantities``'s ``jets``): pT (GeV), eta, phi, the tag decision
# (1 tagged) and the jet's b-tag efficiency for its truth flavour (what a tag-weighting of a stored event needs).
JET_COLUMNS = ("pt", "eta", "phi", "btag", "btag_eff")


class quiet_stdout:
    """Redirect the C-level stdout (file descriptor 1) to /dev/null for a block."""

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self.saved, 1)
        os.close(self.saved)


_banner_shown = False


def _jagged_p4(p4s: list[np.ndarray]) -> ak.Array:
    """Events of (n, 4) px, py, pz, E arrays as the ListOffsetArray of records fastjet expects."""
    counts = np.array([len(p) for p in p4s], dtype=np.int64)
    flat = np.concatenate(p4s) if len(p4s) else np.zeros((0, 4))
    flat = flat.reshape(-1, 4)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    fields = [ak.contents.NumpyArray(np.ascontiguousarray(flat[:, k], dtype=np.float64)) for k in range(4)]
    return ak.Array(ak.contents.ListOffsetArray(
        ak.index.Index64(offsets), ak.contents.RecordArray(fields, ["px", "py", "pz", "E"])))


def cluster(p4s: list[np.ndarray], radius: float, min_pt: float) -> list[np.ndarray]:
    """Anti-kT jets of each event, as (n, 4) px, py, pz, E arrays sorted by decreasing pT."""
    if not p4s:
        return []
    global _banner_shown
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    # fastjet prints its banner to the C-level stdout on the first clustering
    with quiet_stdout() if not _banner_shown else contextlib.nullcontext():
        jets = fastjet.ClusterSequence(_jagged_p4(p4s), jetdef).inclusive_jets(min_pt=min_pt)
    _banner_shown = True
    offsets = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(jets)))])
    flat = np.stack([ak.to_numpy(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E")], axis=1)
    out = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        j = flat[a:b]
        out.append(j[np.argsort(-np.hypot(j[:, 0], j[:, 1]), kind="stable")])
    return out


def kinematics(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pT, eta, phi, mass of (n, 4) four-vectors."""
    px, py, pz, e = j.T
    pt = np.hypot(px, py)
    p = np.sqrt(pt ** 2 + pz ** 2)
    eta = np.arctanh(np.divide(pz, p, out=np.zeros_like(pz), where=p > 0).clip(-1 + 1e-12, 1 - 1e-12))
    mass = np.sqrt(np.maximum(e ** 2 - p ** 2, 0.0))
    return pt, eta, np.arctan2(py, px), mass


def btag_efficiency(pt: np.ndarray, flavour: np.ndarray) -> np.ndarray:
    """Delphes CMS card b-tag efficiency for b (5), c (4) and light (0) jets."""
    eff_b = 0.85 * np.tanh(0.0025 * pt) * 25.0 / (1.0 + 0.063 * pt)
    eff_c = 0.25 * np.tanh(0.018 * pt) / (1.0 + 0.0013 * pt)
    eff_l = 0.01 + 3.8e-5 * pt
    return np.select([flavour == 5, flavour == 4], [eff_b, eff_c], eff_l)


def jet_flavour(eta: np.ndarray, phi: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """5 if a b hadron/quark lies within dR < 0.4 of the jet axis, else 4 for c, else 0.

    ``b`` and ``c`` are (n, 2) arrays of (eta, phi) of the truth heavy-flavour objects.
    """
    def near(objs):
        if len(objs) == 0:
            return np.zeros(len(eta), dtype=bool)
        deta = eta[:, None] - objs[None, :, 0]
        dphi = np.angle(np.exp(1j * (phi[:, None] - objs[None, :, 1])))
        return ((deta ** 2 + dphi ** 2) < MATCH_DR ** 2).any(axis=1)
    return np.where(near(b), 5, np.where(near(c), 4, 0))


def p_any_tag(eff: np.ndarray) -> float:
    """Probability that at least one of the jets is b-tagged: 1 - prod(1 - eff_j) (0 without jets)."""
    return float(1.0 - np.prod(1.0 - eff))


def draw_tags_given_one(eff: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tag decisions (bool, one per jet) drawn from independent tags with efficiencies ``eff``, conditioned
    on at least one tag. Exact: the first tagged jet k is drawn with probability
    eff_k prod_{j<k} (1 - eff_j) / P(>= 1 tag), the jets after it independently. Raises ValueError when no
    jet can be tagged."""
    first = eff * np.concatenate([[1.0], np.cumprod(1.0 - eff)[:-1]])
    total = first.sum()
    if not total > 0:
        raise ValueError("no jet can be tagged: P(Nb >= 1) = 0")
    k = int(rng.choice(len(eff), p=first / total))
    tagged = np.zeros(len(eff), dtype=bool)
    tagged[k] = True
    tagged[k + 1:] = rng.random(len(eff) - k - 1) < eff[k + 1:]
    return tagged


def event_quantities(tower_p4s: list[np.ndarray], b_truth: list[np.ndarray], c_truth: list[np.ndarray],
                     rng: np.random.Generator, btag_weight: bool = False) -> dict[str, np.ndarray]:
    """njet, nb, ht, mj, lead_jet_pt of each event (arrays of shape (n,)), from its towers and truth heavy
    flavour, and ``p_btag``: each event's probability of at least one b tag, 1 - prod(1 - eff_j).

    ``btag_weight=False`` draws every jet's tag independently (the detector as it is). ``btag_weight=True``
    draws the tags conditioned on at least one tag (so Nb >= 1 whenever a jet exists): the event then stands
    for the fraction ``p_btag`` of its copies, and its generator weight must be multiplied by ``p_btag``
    (data.generation.pythia does). Every expectation over tagged events is unchanged, since nothing else in
    the event depends on the tags.

    ``jets``: one float64 array of shape (m, 5) per event, the selected jets in fastjet's pT order with
    the columns of ``JET_COLUMNS`` (pt GeV, eta, phi in [-pi, pi], btag 0/1, btag_eff). Recording them draws
    no random number, so the events are the same with or without them.
    """
    jets = cluster(tower_p4s, JET_R, JET_PT_MIN)
    selected = []
    out = {k: np.zeros(len(jets), dtype=np.float64) for k in QUANTITIES + ("p_btag",)}
    table = []
    for i, j in enumerate(jets):
        pt, eta, phi, _ = kinematics(j)
        keep = (pt > JET_PT_MIN) & (np.abs(eta) < JET_ETA_MAX)
        j, pt, eta, phi = j[keep], pt[keep], eta[keep], phi[keep]
        selected.append(j)
        eff = btag_efficiency(pt, jet_flavour(eta, phi, b_truth[i], c_truth[i]))
        out["p_btag"][i] = p_any_tag(eff)
        if btag_weight:
            tagged = draw_tags_given_one(eff, rng) if out["p_btag"][i] > 0 else np.zeros(len(pt), bool)
        else:
            tagged = rng.random(len(pt)) < eff
        out["njet"][i] = len(pt)
        out["nb"][i] = tagged.sum()
        out["ht"][i] = pt.sum()
        out["lead_jet_pt"][i] = pt[0] if len(pt) else 0.0
        table.append(np.column_stack([pt, eta, phi, tagged, eff]).astype(np.float64).reshape(-1, 5))
    # MJ: the selected R = 0.4 jets reclustered into R = 1.2 jets, every fat jet's mass summed.
    for i, fat in enumerate(cluster(selected, FAT_R, 0.0)):
        out["mj"][i] = kinematics(fat)[3].sum() if len(fat) else 0.0
    out["njet"] = out["njet"].astype(np.int32)
    out["nb"] = out["nb"].astype(np.int32)
    out["jets"] = table
    return out
