"""Pythia 8 event generation for the physics samples, one chunk of selected events at a time.

A chunk is the unit of work of one worker process and the unit of commit of ``data.generation.generate``: it is made
from its own Pythia instance, seeded from (run seed, sample, chunk index), so a chunk is the same whichever
worker makes it and whenever (a resumed run makes the chunks it has not committed yet).

The samples' physics figures and their sources: docs/physics-reference.md, 'Samples and weights'.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data import selection
from data.generation import detector, jets
from data.generation.jets import quiet_stdout as _quiet_stdout

SLHA_FILE = Path(__file__).resolve().parents[1] / "slha" / "rpv_gluino_1400.slha"
MB_TO_PB = 1e9
PYTHIA_SEED_MAX = 900_000_000  # Pythia accepts Random:seed up to this value (manual, RandomNumberSeed)

COMMON = ("Beams:eCM = 13000.", "Print:quiet = on", "Init:showChangedSettings = off",
          "Init:showProcesses = off", "Next:numberCount = 0", "Next:numberShowEvent = 0",
          "Next:numberShowInfo = 0", "Next:numberShowProcess = 0", "Random:setSeed = on")


@dataclass(frozen=True)
class Sample:
    """One generated sample: a name, its label and the Pythia settings that make it."""

    name: str
    label: int
    settings: tuple[str, ...]


SIGNAL = Sample("rpv_gluino_1400", 1, (
    "SUSY:gg2gluinogluino = on", "SUSY:qqbar2gluinogluino = on",
    f"SLHA:file = {SLHA_FILE}", "SLHA:verbose = 0"))

# QCD pT-hat slice edges (GeV). docs/data.md gives the measurement behind the lowest edge: the 300-400 slice
# still adds about 2 % of the selected background cross section; 200-300 adds well under 1 %.
QCD_EDGES = (300.0, 400.0, 600.0, 800.0, 1100.0, -1.0)

# Measured selected cross section (pb) of the default slices (benchmarks/bench_generate.py; docs/data.md).
# Used only to share --background-events over the slices; the weights come from each run's own Pythia.
SELECTED_XSEC_PB = {"qcd_pthat_300_400": 0.24, "qcd_pthat_400_600": 4.2, "qcd_pthat_600_800": 3.5,
                    "qcd_pthat_800_1100": 2.3, "qcd_pthat_1100_inf": 0.40}
# The 300-400 slice keeps one event in ~28,000 generated: at its proportional share it would make the run
# several times slower. It gets a quarter of that share (its events weigh 4x more); unbiased, a bit noisier.
COST_DAMPING = {"qcd_pthat_300_400": 0.25}


def parse_edges(text: str) -> tuple[float, ...]:
    """'400,600,inf' -> (400.0, 600.0, -1.0): pT-hat slice edges, the last may be 'inf'."""
    edges = [-1.0 if t.strip().lower() == "inf" else float(t) for t in text.split(",")]
    finite = [e for e in edges if e >= 0]
    if len(edges) < 2 or finite != sorted(finite) or (-1.0 in edges[:-1]):
        raise argparse.ArgumentTypeError(f"--qcd-edges wants increasing edges like 400,600,inf, got {text!r}")
    return tuple(edges)


def qcd_slice(lo: float, hi: float) -> Sample:
    """The QCD multi-jet sample with pT-hat in [lo, hi) (hi < 0: no upper edge)."""
    name = f"qcd_pthat_{int(lo)}_{int(hi) if hi > 0 else 'inf'}"
    return Sample(name, 0, ("HardQCD:all = on", f"PhaseSpace:pTHatMin = {lo}",
                            f"PhaseSpace:pTHatMax = {hi}"))


def qcd_slices(edges=QCD_EDGES) -> list[Sample]:
    return [qcd_slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]


def split_background(total: int, slices: list[Sample], mode: str = "physical") -> list[int]:
    """Kept background events per slice: in proportion to SELECTED_XSEC_PB ('physical', default slices
    only, so that kept events have similar weights; COST_DAMPING aside) or the same number per slice ('even')."""
    known = [SELECTED_XSEC_PB.get(s.name) for s in slices]
    if mode == "even" or None in known:
        share = np.full(len(slices), 1.0 / len(slices))
    else:
        share = np.array([x * COST_DAMPING.get(s.name, 1.0) for x, s in zip(known, slices)])
        share = share / share.sum()
    counts = np.floor(share * total).astype(int)
    for k in np.argsort(-(share * total - counts))[: total - counts.sum()]:  # largest remainders
        counts[k] += 1
    return counts.tolist()


def chunk_seed(seed: int, sample_index: int, chunk: int) -> int:
    """Pythia seed of one chunk, derived from (run seed, sample, chunk) so chunks are independent."""
    ss = np.random.SeedSequence([seed, sample_index, chunk])
    return int(ss.generate_state(1, np.uint64)[0] % PYTHIA_SEED_MAX) + 1


def make_pythia(settings, seed: int):
    """An initialised, quiet Pythia (its banner goes to /dev/null: it is printed from C++)."""
    import pythia8mc  # imported here: heavy, and only generation needs it

    with _quiet_stdout():
        py = pythia8mc.Pythia("", False)
        for s in COMMON + tuple(settings) + (f"Random:seed = {seed}",):
            if not py.readString(s):
                raise RuntimeError(f"Pythia rejected setting {s!r}")
        if not py.init():
            raise RuntimeError(f"Pythia failed to initialise with {settings}")
    return py


def _heavy_digit(apid: np.ndarray, q: int) -> np.ndarray:
    """True for quark q itself and for hadrons containing it (PDG numbering scheme)."""
    hadron = (apid > 100) & (apid < 10000)
    return (apid == q) | (hadron & (((apid // 100) % 10 == q) | ((apid // 1000) % 10 == q)))


def read_event(event) -> tuple[detector.Particles, np.ndarray, np.ndarray]:
    """Final-state particles and the (eta, phi) of b and c hadrons/quarks with pT > 5 GeV."""
    rows = np.array([(p.id(), p.isFinal(), p.px(), p.py(), p.pz(), p.e(), p.charge()) for p in event],
                    dtype=np.float64)
    pid = rows[:, 0].astype(np.int32)
    final = rows[:, 1] > 0
    parts = detector.Particles(pid[final], *(rows[final, k] for k in (2, 3, 4, 5)),
                               rows[final, 6].astype(np.float32))
    pt, eta, phi = detector.pt_eta_phi(rows[:, 2], rows[:, 3], rows[:, 4])
    apid = np.abs(pid)
    hard = pt > 5.0
    b = _heavy_digit(apid, 5) & hard
    c = _heavy_digit(apid, 4) & hard & ~b
    return parts, np.stack([eta[b], phi[b]], 1), np.stack([eta[c], phi[c]], 1)


def visible_et(p: detector.Particles) -> float:
    """Truth transverse energy that can reach the calorimeters (|eta| < 2.5, no nu / mu)."""
    pt, eta, _ = detector.pt_eta_phi(p.px, p.py, p.pz)
    apid = np.abs(p.pid)
    ok = (np.abs(eta) < 2.5) & ~np.isin(apid, detector.NEUTRINOS) & (apid != detector.MUON) & (apid < 1000000)
    return float((p.e[ok] / np.cosh(eta[ok])).sum())


# An event whose calorimeter-visible truth ET is under 75 % of the HT cut cannot pass it: jet HT is at most
# the summed tower ET, and tower smearing moves a sum of hundreds of towers by a few per cent only. This
# skips the detector and jet finding for most low pT-hat QCD events.
PREFILTER_ET = 0.75 * selection.HT_MIN


class PileUp:
    """A pool of minimum-bias events overlaid Poisson(mu) at a time, each rotated by a random phi."""

    def __init__(self, mu: float, seed: int, pool_size: int = 200):
        self.mu = mu
        py = make_pythia(("SoftQCD:nonDiffractive = on",), seed)
        self.pool = []
        while len(self.pool) < pool_size:
            if py.next():
                self.pool.append(read_event(py.event)[0])

    def overlay(self, hard: detector.Particles, rng: np.random.Generator) -> detector.Particles:
        parts = [hard]
        for k in rng.integers(0, len(self.pool), rng.poisson(self.mu)):
            p = self.pool[k]
            a = rng.uniform(-np.pi, np.pi)
            ca, sa = np.cos(a), np.sin(a)
            parts.append(detector.Particles(p.pid, ca * p.px - sa * p.py, sa * p.px + ca * p.py,
                                            p.pz, p.e, p.charge))
        return detector.Particles.concat(parts)


def generate_chunk(sample: Sample, seed: int, n_select: int, image_size: int, pileup: float = 0.0,
                   batch: int = 32, progress=None, max_generated: int | None = None) -> dict:
    """Generate events of ``sample`` until ``n_select`` pass the baseline.

    Returns the selected events (sparse images, jet quantities, generator weights) and the bookkeeping the
    weights need: ``n_generated`` (events generated up to and including the last one kept) and Pythia's
    cross-section estimate ``sigma_pb``. ``progress(n)`` is called with each newly selected count.
    ``max_generated`` stops after that many generated events (a selection-efficiency measurement).
    """
    py = make_pythia(sample.settings, seed)
    rng = np.random.default_rng(seed)
    pu = PileUp(pileup, seed + 1) if pileup > 0 else None
    kept = {"idx": [], "val": [], "gen_weight": [], **{k: [] for k in jets.QUANTITIES}}
    n_generated = 0
    pending = []  # (ordinal, weight, response, b, c)

    def flush():
        nonlocal n_generated
        q = jets.event_quantities([r.towers_p4() for _, _, r, _, _ in pending],
                                  [b for *_, b, _ in pending], [c for *_, c in pending], rng)
        for i in np.flatnonzero(selection.baseline(q)):
            if len(kept["gen_weight"]) >= n_select:
                break
            ordinal, weight, resp, _, _ = pending[i]
            idx, val = detector.image(resp, image_size)
            kept["idx"].append(idx)
            kept["val"].append(val)
            kept["gen_weight"].append(weight)
            for k in jets.QUANTITIES:
                kept[k].append(q[k][i])
            n_generated = ordinal + 1
            if progress:
                progress(1)
        pending.clear()

    ordinal = n_prefilter = 0
    while len(kept["gen_weight"]) < n_select and (max_generated is None or ordinal < max_generated):
        if not py.next():
            continue  # a failed event is not a generated one: Pythia does not count it in sigmaGen either
        this = ordinal
        ordinal += 1
        parts, b, c = read_event(py.event)
        if pu is not None:
            parts = pu.overlay(parts, rng)
        if visible_et(parts) < PREFILTER_ET:
            continue
        n_prefilter += 1
        pending.append((this, py.infoPython().weight(), detector.simulate(parts, rng), b, c))
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    if max_generated is not None:
        n_generated = ordinal  # a measurement counts every event it generated
    info = py.infoPython()
    return {"sigma_pb": info.sigmaGen() * MB_TO_PB, "sigma_err_pb": info.sigmaErr() * MB_TO_PB,
            "n_generated": n_generated, "n_tried": ordinal, "n_prefilter": n_prefilter,
            "idx": kept["idx"], "val": kept["val"],
            "gen_weight": np.array(kept["gen_weight"], dtype=np.float64),
            **{k: np.array(kept[k], dtype=np.int32 if k in ("njet", "nb") else np.float64)
               for k in jets.QUANTITIES}}
