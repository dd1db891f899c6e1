"""bench.strong_scaling with a failure injected on one rank, for the fault tests.

    mpirun -np 2 python tests/mpi_scripts/fault_run.py RANK EPOCH KIND [bench.strong_scaling flags]

KIND 'raise' raises an exception on rank RANK at the start of epoch EPOCH; 'nan' makes that rank's
training loss NaN there (its weights become NaN).
"""
import os
import sys

import torch

from bench import strong_scaling
from bench.runner import run, train

rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
bad_rank, bad_epoch, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
original = train.train_epoch


def train_epoch(model, *args, **kwargs):
    epoch = args[7]
    if rank == bad_rank and epoch == bad_epoch:
        if kind == "raise":
            raise RuntimeError(f"injected failure on rank {rank}")
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    return original(model, *args, **kwargs)


run.train_epoch = train_epoch  # where bench.runner.run looks it up
sys.exit(strong_scaling.main(sys.argv[4:]))
