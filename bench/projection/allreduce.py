"""Allreduce timings for the performance model: ``mpirun -np N python -m bench.projection.allreduce OUT.json``.

Times ``MPI_Allreduce`` (sum, float32, mpi4py buffers) at message sizes from 4 bytes to ``--max-bytes``.
Each size: a warm-up call, then ``repeats`` timed batches of calls, each batch started at a barrier; a
batch's time is the slowest rank's (the collective finishes when the last rank does), per call. Rank 0
writes the median of the batches per size. Collective: all ranks run all of it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from mpi4py import MPI

from data.errors import fail
from data.files import WriteError, clean_text, write_text


def sizes_up_to(max_bytes: int) -> list[int]:
    sizes, s = [], 4
    while s <= max_bytes:
        sizes.append(s)
        s *= 4
    return sizes


def time_allreduce(comm, nbytes: int, repeats: int) -> float:
    buf = np.ones(max(1, nbytes // 4), np.float32)
    calls = max(1, min(200, (1 << 22) // max(nbytes, 1)))  # many calls for tiny messages, few for big
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    samples = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(calls):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        mine = (time.perf_counter() - t0) / calls
        samples.append(comm.allreduce(mine, op=MPI.MAX))
    return float(np.median(samples))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--max-bytes", type=int, default=64 << 20)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    rows = [(s, time_allreduce(comm, s, args.repeats)) for s in sizes_up_to(args.max_bytes)]
    if comm.rank == 0:  # after the last collective: the other ranks end by themselves
        try:
            write_text(args.out, json.dumps({"ranks": [comm.size] * len(rows), "bytes": [s for s, _ in rows],
                                             "time_s": [t for _, t in rows], "repeats": args.repeats,
                                             "mpi_library": clean_text(MPI.Get_library_version().split(",")[0])
                                             .strip()}))
        except WriteError as exc:
            sys.exit(fail(str(exc)))


if __name__ == "__main__":
    main()
