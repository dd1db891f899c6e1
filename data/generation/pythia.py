"""Pythia 8 event generation for the physics samples, one chunk of selected events at a time.

A chunk is the unit of work of one worker process and the unit of commit of ``data.generation.generate``: it is made
from its own Pythia instance, seeded from (run seed, sample, chunk index), so a chunk is the same whichever
worker makes it and whenever (a resumed run makes the chunks it has not committed yet).

The samples' physics figures and their sources: docs/physics-reference.md, 'Samples and weights'.
"""
from __future__ import annotations

import argparse
import time
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
# several times slower. The old path gives it a quarter of that share (its events weigh 4x more).
COST_DAMPING = {"qcd_pthat_300_400": 0.25}

# The fast path's cost of a kept event (core seconds) and its slice's Kish effective-sample fraction
# (sum w)^2 / (n sum w^2) of the kept events' generator weights. 400 GeV and up: measured 2026-12-01 with
# `python -m benchmarks.bench_generate compare --seconds 120 --rounds 2 --workers 2` (docs/data.md, 'The fast
# path'). 300-400: derived, too rare to time: about 0.8 ms per parton-level event (98 % are vetoed early,
# each costing under 0.3 ms) over 1e-4 kept per event (2 of 20,000 in the veto-loss run), the ESS fraction
# of 400-600. Used only by the 'effective' split: the weights come from each run's own Pythia.
FAST_COST = {"qcd_pthat_300_400": (8.0, 0.63), "qcd_pthat_400_600": (0.63, 0.629),
             "qcd_pthat_600_800": (0.264, 0.60), "qcd_pthat_800_1100": (0.105, 0.627),
             "qcd_pthat_1100_inf": (0.057, 0.651)}
SPLITS = ("effective", "physical", "even")


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


def split_shares(slices: list[Sample], mode: str, cost: dict | None = None) -> np.ndarray:
    """Fraction of the kept background events given to each slice.

    * ``effective`` (the fast path's default): n_i proportional to S_i / sqrt(c_i f_i), with S_i the slice's
      selected cross section (SELECTED_XSEC_PB), c_i its cost in core seconds per kept event and f_i its
      effective-sample fraction (FAST_COST). This maximises the Kish effective sample size of the weighted
      background, (sum w)^2 / sum w^2 = (sum S_i)^2 / sum S_i^2 / (n_i f_i), at a fixed cost sum n_i c_i
      (Lagrange multipliers): a slice whose effective events are dear gets fewer, heavier events.
    * ``physical`` (the old path's): n_i proportional to S_i (COST_DAMPING aside), so kept events have
      similar weights.
    * ``even``: the same count per slice. Slices without a measured S_i (custom ``--qcd-edges``) use it.

    ``cost``: slice name -> (c_i, f_i) for ``effective``; default FAST_COST.
    """
    known = [SELECTED_XSEC_PB.get(s.name) for s in slices]
    cost = [(FAST_COST if cost is None else cost).get(s.name, (None, None)) for s in slices]
    if mode == "even" or None in known or (mode == "effective" and any(None in c for c in cost)):
        share = np.full(len(slices), 1.0)
    elif mode == "effective":
        share = np.array([x / np.sqrt(c * f) for x, (c, f) in zip(known, cost)])
    else:
        share = np.array([x * COST_DAMPING.get(s.name, 1.0) for x, s in zip(known, slices)])
    return share / share.sum()


def split_background(total: int, slices: list[Sample], mode: str = "physical") -> list[int]:
    """Kept background events per slice (``split_shares``), rounded by largest remainders to sum to
    ``total``."""
    share = split_shares(slices, mode)
    counts = np.floor(share * total).astype(int)
    for k in np.argsort(-(share * total - counts))[: total - counts.sum()]:  # largest remainders
        counts[k] += 1
    return counts.tolist()


def chunk_seed(seed: int, sample_index: int, chunk: int) -> int:
    """Pythia seed of one chunk, derived from (run seed, sample, chunk) so chunks are independent."""
    ss = np.random.SeedSequence([seed, sample_index, chunk])
    return int(ss.generate_state(1, np.uint64)[0] % PYTHIA_SEED_MAX) + 1


def make_pythia(settings, seed: int, hooks=None):
    """An initialised, quiet Pythia (its banner goes to /dev/null: it is printed from C++). ``hooks``: a
    ``pythia8mc.UserHooks`` instance (the parton-level veto), kept alive by the caller."""
    import pythia8mc  # imported here: heavy, and only generation needs it

    with _quiet_stdout():
        py = pythia8mc.Pythia("", False)
        for s in COMMON + tuple(settings) + (f"Random:seed = {seed}",):
            if not py.readString(s):
                raise RuntimeError(f"Pythia rejected setting {s!r}")
        if hooks is not None:
            py.setUserHooksPtr(hooks)
        if not py.init():
            raise RuntimeError(f"Pythia failed to initialise with {settings}")
    return py


def _heavy_digit(apid: np.ndarray, q: int) -> np.ndarray:
    """True for quark q itself and for hadrons containing it (PDG numbering scheme)."""
    hadron = (apid > 100) & (apid < 10000)
    return (apid == q) | (hadron & (((apid // 100) % 10 == q) | ((apid // 1000) % 10 == q)))


def _heavy_flavour(pid: np.ndarray, pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of b and c quarks/hadrons with pT > 5 GeV (a particle with both counts as b)."""
    apid = np.abs(pid)
    hard = pt > 5.0
    b = _heavy_digit(apid, 5) & hard
    return b, _heavy_digit(apid, 4) & hard & ~b


def read_event(event) -> tuple[detector.Particles, np.ndarray, np.ndarray]:
    """Final-state particles and the (eta, phi) of b and c hadrons/quarks with pT > 5 GeV."""
    rows = np.array([(p.id(), p.isFinal(), p.px(), p.py(), p.pz(), p.e(), p.charge()) for p in event],
                    dtype=np.float64)
    pid = rows[:, 0].astype(np.int32)
    final = rows[:, 1] > 0
    parts = detector.Particles(pid[final], *(rows[final, k] for k in (2, 3, 4, 5)),
                               rows[final, 6].astype(np.float32))
    pt, eta, phi = detector.pt_eta_phi(rows[:, 2], rows[:, 3], rows[:, 4])
    b, c = _heavy_flavour(pid, pt)
    return parts, np.stack([eta[b], phi[b]], 1), np.stack([eta[c], phi[c]], 1)


class ChargeTable:
    """Electric charge (units of e) by PDG id, from Pythia's particle data, cached per id."""

    def __init__(self, particle_data):
        self.pd = particle_data
        self.known: dict[int, float] = {}

    def __call__(self, pid: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(pid, return_inverse=True)
        for u in uniq.tolist():
            if u not in self.known:
                self.known[u] = float(self.pd.charge(u))
        return np.array([self.known[u] for u in uniq.tolist()], dtype=np.float32)[inv]


def read_batch(events, charge: ChargeTable) -> list[tuple[detector.Particles, np.ndarray, np.ndarray]]:
    """``read_event`` for a batch from ``Pythia.nextBatch`` (an awkward array of events), vectorised over
    every particle of the batch: the same arrays, without a Python call per particle."""
    import awkward as ak

    prt = events["prt"]
    counts = ak.to_numpy(ak.num(prt)).astype(np.int64)
    pid = ak.to_numpy(ak.flatten(prt["id"])).astype(np.int32)
    final = ak.to_numpy(ak.flatten(prt["status"])) > 0
    mom = prt["p"]
    px, py_, pz, e = (ak.to_numpy(ak.flatten(mom[k])).astype(np.float64) for k in ("px", "py", "pz", "e"))
    pt, eta, phi = detector.pt_eta_phi(px, py_, pz)
    b, c = _heavy_flavour(pid, pt)
    q = np.zeros(len(pid), dtype=np.float32)
    q[final] = charge(pid[final])
    out = []
    stops = np.cumsum(counts)
    for lo, hi in zip(stops - counts, stops):
        f = np.flatnonzero(final[lo:hi]) + lo
        bb, cc = np.flatnonzero(b[lo:hi]) + lo, np.flatnonzero(c[lo:hi]) + lo
        out.append((detector.Particles(pid[f], px[f], py_[f], pz[f], e[f], q[f]),
                    np.stack([eta[bb], phi[bb]], 1), np.stack([eta[cc], phi[cc]], 1)))
    return out


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


@dataclass(frozen=True)
class Levers:
    """How a chunk is generated. ``FAST`` is the default of data.generation.generate, ``OLD`` the generator
    before it (``--path old``), kept for comparison; docs/data.md, 'The fast path', has the measurements.

    * ``parton_veto``: QCD only. Pythia's jet finder (SlowJet, anti-kT) clusters the partons twice: when
      the shower evolution reaches ``VETO['early_scale']`` and after the parton level, and a ``UserHooks``
      veto drops events whose parton HT is under ``VETO['early_ht_min']`` or ``VETO['ht_min']``, before the
      rest of the shower (early) or hadronisation (late), decays, the read-out, the detector and fastjet.
      Pythia counts a vetoed event as not accepted and lowers ``sigmaGen`` by the veto's pass fraction, so
      the store's weight xsec / n_generated stays physical with n_generated the accepted events.
    * ``btag_weight``: an event passing HT, Njet and MJ is kept with its generator weight multiplied by
      P(Nb >= 1) = 1 - prod(1 - eff_j), and its Nb drawn given at least one tag
      (data.generation.jets.event_quantities), instead of being dropped when a random draw tags no jet.
    * ``batch_read``: events come from ``Pythia.nextBatch`` as awkward arrays, read in one vectorised pass
      (``read_batch``) instead of a Python loop over the particles (``read_event``).
    """

    parton_veto: bool = True
    btag_weight: bool = True
    batch_read: bool = True

    def to_meta(self) -> dict:
        out = {"parton_veto": self.parton_veto, "btag_weight": self.btag_weight, "batch_read": self.batch_read}
        if self.parton_veto:
            out["veto"] = dict(VETO, applies_to="QCD samples")
            out["veto_loss"] = dict(VETO_LOSS)
        return out


FAST = Levers()
OLD = Levers(parton_veto=False, btag_weight=False, batch_read=False)
PATHS = {"fast": FAST, "old": OLD}

# The parton-level veto, in two steps, each on the scalar pT sum (HT) of anti-kT R = 0.4 jets of the partons
# with pT > 20 GeV and |eta| < 2.5 (Pythia's SlowJet, through its bundled fjcore):
# * early: when the interleaved shower and multi-parton-interaction evolution has come down to the scale
#   early_scale (GeV), veto if HT of the partons so far is under early_ht_min. Most of the cost of an event
#   comes after that point (softer emissions, MPI, beam remnants, hadronisation), so a vetoed event costs
#   about 1 % of a full one;
# * late: after the parton level (showers, MPI, beam remnants), veto if HT is under ht_min.
# The thresholds are set from the measured loss of baseline-passing events (VETO_LOSS; re-measure with
# `python -m benchmarks.bench_generate veto-loss`, docs/data.md, 'The fast path').
VETO = {"jet_r": 0.4, "jet_pt_min": 20.0, "jet_eta_max": 2.5, "early_scale": 20.0, "early_ht_min": 1200.0,
        "ht_min": 1300.0}
# Measured 2026-12-01 with the command below, two runs pooled (seeds 0 and 10; each 20,000 / 25,000 / 6,000 /
# 2,000 events of the 300-400 / 400-600 / 600-800 / 800-1100 slices, no veto; docs/data.md): no kept event lies
# under either threshold; the nearest is 243 GeV above the early and 134 GeV above the late one. With no loss
# seen, the statistical 95 % upper limit is 3 / ESS.
VETO_LOSS = {"lost_weight_fraction": 0.0, "kept_events": 1374, "kish_ess": 569, "upper_limit_95": 0.0053,
             "lowest_kept_early_ht": 1443.0, "lowest_kept_ht": 1434.0,
             "command": "python -m benchmarks.bench_generate veto-loss"}


def parton_veto(cuts: dict = VETO, veto: bool = True):
    """A ``pythia8mc.UserHooks`` that computes the parton-level HT of every event twice, at the evolution
    scale ``cuts['early_scale']`` (``last_early_ht``, GeV) and after the parton level (``last_ht``), and,
    with ``veto``, vetoes the event when the first is under ``cuts['early_ht_min']`` or the second under
    ``cuts['ht_min']``; ``n_vetoed`` counts vetoed events. ``veto=False`` records only, every event's pair
    in ``history``: the veto-loss measurement."""
    import pythia8mc

    class PartonVeto(pythia8mc.UserHooks):
        def __init__(self):
            pythia8mc.UserHooks.__init__(self)
            self.jets = pythia8mc.SlowJet(-1, cuts["jet_r"], cuts["jet_pt_min"], cuts["jet_eta_max"], 2, 1)
            self.n_vetoed = 0
            self.first = True
            self.last_ht = self.last_early_ht = float("nan")
            self.history: list[tuple[float, float]] = []  # (early HT, HT) of every event, when recording

        def _ht(self, event) -> float:
            if self.first:  # fjcore prints its banner on the first clustering
                self.first = False
                with _quiet_stdout():
                    self.jets.analyze(event)
            else:
                self.jets.analyze(event)
            return sum(self.jets.pT(i) for i in range(self.jets.sizeJet()))

        def canVetoPT(self):
            return True

        def scaleVetoPT(self):
            return cuts["early_scale"]

        def doVetoPT(self, iPos, event):
            self.last_early_ht = self._ht(event)
            self.last_ht = float("nan")
            vetoed = veto and self.last_early_ht < cuts["early_ht_min"]
            self.n_vetoed += vetoed
            return vetoed

        def canVetoPartonLevel(self):
            return True

        def doVetoPartonLevel(self, event):
            self.last_ht = self._ht(event)
            if not veto:
                self.history.append((self.last_early_ht, self.last_ht))
            vetoed = veto and self.last_ht < cuts["ht_min"]
            self.n_vetoed += vetoed
            self.last_early_ht = float("nan")
            return vetoed

    return PartonVeto()


def generate_chunk(sample: Sample, seed: int, n_select: int, image_size: int, pileup: float = 0.0,
                   batch: int = 32, progress=None, max_generated: int | None = None,
                   levers: Levers = FAST, record_parton: bool = False,
                   max_seconds: float | None = None) -> dict:
    """Generate events of ``sample`` until ``n_select`` pass the baseline.

    Returns the selected events (sparse images, jet quantities, generator weights) and the bookkeeping the
    weights need: ``n_generated`` (accepted events generated up to and including the last one kept) and
    Pythia's cross-section estimate ``sigma_pb`` (after the veto, when there is one). ``progress(n)`` is
    called with each newly selected count. ``max_generated`` stops after that many generated events (a
    selection-efficiency measurement); ``max_seconds`` after that much wall time (a rate measurement).
    ``levers``: ``FAST`` or ``OLD`` (see ``Levers``). ``record_parton``
    adds each kept event's parton-level HT (``parton_ht``, GeV) and its HT at the early scale (``early_ht``)
    without vetoing, and ``all_parton_ht`` (n, 2) of every event: the veto-loss measurement
    (it reads events one at a time and ignores ``levers.parton_veto``).
    """
    veto = levers.parton_veto and sample.label == 0 and not record_parton
    hook = parton_veto(VETO, veto=veto) if veto or record_parton else None
    py = make_pythia(sample.settings, seed, hook)
    rng = np.random.default_rng(seed)
    pu = PileUp(pileup, seed + 1) if pileup > 0 else None
    charge = ChargeTable(py.particleData)
    fields = jets.QUANTITIES + (("parton_ht", "early_ht") if record_parton else ())
    kept = _Kept(n_select, image_size, fields, levers, record_parton, rng, progress)
    ordinal = n_prefilter = 0
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    while not kept.full() and (max_generated is None or ordinal < max_generated) \
            and (deadline is None or time.perf_counter() < deadline):
        # one event at a time when recording, so that the hook's last HT is this event's
        n = 1 if record_parton else batch if max_generated is None else min(batch, max_generated - ordinal)
        for parts, b, c, weight, parton_ht in _next_events(py, hook, charge, levers, n, record_parton):
            this = ordinal
            ordinal += 1
            if pu is not None:
                parts = pu.overlay(parts, rng)
            if visible_et(parts) < PREFILTER_ET:
                continue
            n_prefilter += 1
            kept.pending.append((this, weight, detector.simulate(parts, rng), b, c, parton_ht))
            if len(kept.pending) >= batch:
                kept.flush()
            if kept.full():
                break
    if kept.pending:
        kept.flush()
    # a measurement counts every event it generated
    n_generated = ordinal if max_generated is not None or max_seconds is not None else kept.n_generated
    info = py.infoPython()
    return {"sigma_pb": info.sigmaGen() * MB_TO_PB, "sigma_err_pb": info.sigmaErr() * MB_TO_PB,
            "n_generated": n_generated, "n_tried": ordinal, "n_prefilter": n_prefilter,
            "n_vetoed": hook.n_vetoed if hook is not None else 0,
            **({"all_parton_ht": np.array(hook.history).reshape(-1, 2)} if record_parton else {}),
            **kept.arrays()}


def _next_events(py, hook, charge: ChargeTable, levers: Levers, n: int, record_parton: bool) -> list[tuple]:
    """(particles, b, c, weight, (early HT, parton HT)) of the next accepted event(s): ``n`` read at once
    with ``levers.batch_read`` or ``record_parton``, else one."""
    if levers.batch_read or record_parton:
        evs = py.nextBatch(n)  # failed events are skipped: Pythia does not count them in sigmaGen
        w = [ws[0] if len(ws) else 1.0 for ws in evs["info"]["weights"].tolist()]
        ht = (hook.history[-1] if hook.history else (np.nan, np.nan)) if record_parton else (np.nan, np.nan)
        return [(*r, wi, ht) for r, wi in zip(read_batch(evs, charge), w)]
    if not py.next():
        return []  # a failed event is not a generated one: Pythia does not count it in sigmaGen either
    return [(*read_event(py.event), py.infoPython().weight(), (np.nan, np.nan))]


class _Kept:
    """The events of one chunk that pass the baseline selection, up to ``n_select``. Simulated events wait
    in ``pending`` until ``flush`` puts them through the jet quantities and the selection together;
    ``n_generated``: the generated events up to and including the last one kept."""

    def __init__(self, n_select: int, image_size: int, fields: tuple, levers: Levers, record_parton: bool,
                 rng, progress):
        self.n_select, self.image_size, self.fields = n_select, image_size, fields
        self.levers, self.record_parton, self.rng, self.progress = levers, record_parton, rng, progress
        self.kept = {"idx": [], "val": [], "gen_weight": [], "jets": [], **{k: [] for k in fields}}
        self.pending = []  # (ordinal, weight, response, b, c, (early HT, parton HT))
        self.n_generated = 0

    def full(self) -> bool:
        return len(self.kept["gen_weight"]) >= self.n_select

    def flush(self) -> None:
        """The pending events' jet quantities; those that pass the baseline kept, as long as there is room."""
        pending, kept = self.pending, self.kept
        q = jets.event_quantities([p[2].towers_p4() for p in pending], [p[3] for p in pending],
                                  [p[4] for p in pending], self.rng, btag_weight=self.levers.btag_weight)
        if self.record_parton:
            q["early_ht"] = np.array([p[5][0] for p in pending])
            q["parton_ht"] = np.array([p[5][1] for p in pending])
        for i in np.flatnonzero(selection.baseline(q)):
            if self.full():
                break
            ordinal, weight, resp = pending[i][:3]
            idx, val = detector.image(resp, self.image_size)
            kept["idx"].append(idx)
            kept["val"].append(val)
            kept["gen_weight"].append(weight * (q["p_btag"][i] if self.levers.btag_weight else 1.0))
            kept["jets"].append(q["jets"][i])
            for k in self.fields:
                kept[k].append(q[k][i])
            self.n_generated = ordinal + 1
            if self.progress:
                self.progress(1)
        pending.clear()

    def arrays(self) -> dict:
        """The kept events: sparse images (``idx``, ``val``), ``gen_weight``, the jet quantities and each
        event's jet table (``jets``, data.generation.jets.JET_COLUMNS)."""
        kept = self.kept
        return {"idx": kept["idx"], "val": kept["val"], "jets": kept["jets"],
                "gen_weight": np.array(kept["gen_weight"], dtype=np.float64),
                **{k: np.array(kept[k], dtype=np.int32 if k in ("njet", "nb") else np.float64)
                   for k in self.fields}}
