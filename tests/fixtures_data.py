"""Shared fixtures of the data tests (imported explicitly by tests/test_data_*.py, not via conftest).

``generated`` makes one small real dataset per test session (Pythia + detector + fastjet at 64x64) and
exercises the resume path on the way: a first run, a simulated crash that leaves uncommitted junk past the
commit counter, a second run asking for more that is stopped by SIGTERM, a third that finishes, and a
fourth that finds nothing to do.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import pytest

from data.generation import generate
from data.store import StoreWriter

REPO = Path(__file__).resolve().parents[1]
# Two high pT-hat slices keep the session fixture to about a minute on two cores; the full slice set
# (data.generation.pythia.QCD_EDGES) needs far more events for the low slices' small selection efficiency.
TEST_EDGES = "800,1100,inf"
FIRST = (100, 100)
FINAL = (200, 200)


@dataclass
class Generated:
    path: Path
    first_committed: int
    after_term: int
    rc_interrupted: int
    rerun_output: str
    seconds: float


def _run_cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "data.generation.generate", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _args(out: Path, s: int, b: int) -> list[str]:
    return ["--signal-events", str(s), "--background-events", str(b), "--image-size", "64", "--out", str(out),
            "--seed", "11", "--chunk", "25", "--qcd-edges", TEST_EDGES, "--background-split", "even",
            "--workers", "2"]


def write_uncommitted_junk(path: Path) -> None:
    """What a kill in the middle of StoreWriter.append leaves: data past the counter, counter unchanged."""
    with h5py.File(path, "a") as f:
        n = int(f.attrs["committed_events"])
        for name in ("index", "value"):
            d = f["pixels"][name]
            d.resize((d.shape[0] + 500,))
            d[-500:] = 7
        f["events/offsets"].resize((n + 11,))
        f["events/label"].resize((n + 7,))
        d = f["chunks/sample"]
        d.resize((d.shape[0] + 1,))


def _terminate_once_working(proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """SIGTERM ``proc`` as soon as its progress bar counts a generated event, then wait for it to exit.

    A fixed sleep raced the generator: the fast path can finish all eight chunks of the second run within
    the sleep on a quick machine, and then there is nothing left to interrupt.
    """
    seen, t0 = "", time.monotonic()
    while time.monotonic() - t0 < timeout:
        c = proc.stdout.read(1)
        if not c:  # exited before any progress: the caller's assertions on the return code say so
            break
        seen += c
        if re.search(r"\| *[1-9]\d*/\d+ \[", seen[-200:]):
            proc.send_signal(signal.SIGTERM)
            break
    proc.communicate(timeout=timeout)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Generated:
    out = tmp_path_factory.mktemp("gen") / "small.h5"
    t0 = time.perf_counter()
    assert generate.main(_args(out, *FIRST)) == 0
    with StoreWriter(out, 64) as w:
        first = w.committed
    write_uncommitted_junk(out)
    proc = _run_cli(*_args(out, *FINAL))
    _terminate_once_working(proc)
    with StoreWriter(out, 64) as w:
        after_term = w.committed
    assert generate.main(_args(out, *FINAL)) == 0
    again = _run_cli(*_args(out, *FINAL))
    text, _ = again.communicate(timeout=120)
    assert again.returncode == 0, text
    return Generated(out, first, after_term, proc.returncode, text, time.perf_counter() - t0)
