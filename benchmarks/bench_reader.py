"""Reader speed and memory: images/s per rank at 64 and 224 against what training consumes; peak RSS.

    python -m benchmarks.bench_reader [--events 20000] [--big-events 200000] [--dir /tmp]

* Speed: a synthetic sparse store (data.store.write_synthetic, ``--pixels`` lit pixels per event) is read in
  batches of 256 consecutive events starting at a random block boundary, as the harness' block sampler asks;
  normalisation ``max`` included. Compared with the training rate of this machine (100 images/s/rank at
  64x64, 8 at 224x224; override with --train-rate-64 / --train-rate-224).
* Memory: a fresh process opens a 224x224 store of ``--big-events`` events and reads a 1/8 shard of it
  (contiguous blocks, batches of 256); its peak RSS is printed next to the file size.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from data.hdf5_source import open_hdf5
from data.store import write_synthetic

BATCH = 256


def speed(path: Path, seconds: float = 4.0, scattered: bool = False) -> float:
    """Images/s for batches of 256 consecutive events from a random block (or 256 scattered events)."""
    src = open_hdf5(str(path))
    rng = np.random.default_rng(0)
    nblocks = len(src) // src.block
    src.load(np.arange(BATCH))  # warm-up: first touch of the file and allocator
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if scattered:
            idx = np.sort(rng.choice(len(src), BATCH, replace=False))
        else:
            start = min(int(rng.integers(0, nblocks)) * src.block, len(src) - BATCH)
            idx = np.arange(start, start + BATCH)
        src.load(idx)
        n += BATCH
    return n / (time.perf_counter() - t0)


def shard_peak_rss(path: str, shard: int, of: int) -> None:
    """Child process: read shard ``shard`` of ``of`` and print peak RSS in bytes."""
    src = open_hdf5(path)
    per = len(src) // of
    lo = shard * per
    for start in range(lo, lo + per, BATCH):
        src.load(np.arange(start, min(start + BATCH, lo + per)))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20000, help="events in the speed files")
    p.add_argument("--big-events", type=int, default=200000, help="events in the 224x224 memory file")
    p.add_argument("--pixels", type=int, default=600,
                   help="mean lit pixels per event, all channels (generated events: about 350-550)")
    p.add_argument("--dir", default=None,
                   help="where the synthetic files go, in a fresh folder of this run's own (removed afterwards; "
                        "default: the system's temporary directory)")
    p.add_argument("--train-rate-64", type=float, default=100.0, help="training images/s/rank at 64x64")
    p.add_argument("--train-rate-224", type=float, default=8.0, help="training images/s/rank at 224x224")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        shard_peak_rss(a.child[0], int(a.child[1]), int(a.child[2]))
        return
    work = Path(tempfile.mkdtemp(prefix="bench_reader-", dir=a.dir))  # two runs at once never share a file
    try:
        measure(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(a: argparse.Namespace, work: Path) -> None:
    """Print the reader's speed at 64x64 and 224x224 and the peak RSS of reading a shard, with the
    synthetic files in ``work``."""
    for size, train in ((64, a.train_rate_64), (224, a.train_rate_224)):
        path = work / f"bench_reader_{size}.h5"
        write_synthetic(path, a.events, size, pixels_per_event=a.pixels)
        rate, scattered = speed(path), speed(path, scattered=True)
        print(f"reader {size}x{size}: {rate:9.0f} images/s/rank (1 thread), training consumes {train:g}: "
              f"{rate / train:7.0f}x; scattered indices {scattered:9.0f} images/s", flush=True)
        path.unlink()
    big = work / "bench_reader_big_224.h5"
    t0 = time.perf_counter()
    write_synthetic(big, a.big_events, 224, pixels_per_event=a.pixels, chunk_events=512)
    made = time.perf_counter() - t0
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, __file__, "--child", str(big), "0", "8"], env=env,
                         capture_output=True, text=True, check=True)
    rss = int(out.stdout.split()[-1])
    size = big.stat().st_size
    print(f"peak RSS reading a 1/8 shard of a {a.big_events}-event 224x224 file: {rss / 2**20:.0f} MiB "
          f"(file {size / 2**20:.0f} MiB, made in {made:.0f} s; dense float32 would be "
          f"{a.big_events * 3 * 224 * 224 * 4 / 2**30:.0f} GiB)")
    big.unlink()


if __name__ == "__main__":
    main()
