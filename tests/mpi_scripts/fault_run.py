"""bench.strong_scaling with a failure injected on one rank, for the fault tests.

    mpirun -np 2 python tests/mpi_scripts/fault_run.py RANK WHERE [bench.strong_scaling flags]

WHERE is a phase of the job (PHASES below: the function of that phase raises the error that phase really
raises, on rank RANK only), or 'raise@EPOCH' / 'nan@EPOCH': an exception at the start of that training
epoch, or that rank's training loss made NaN there (its weights become NaN). The rank prints
'injected <WHERE> at <unix time>' on stderr first, so a test can time the job's end from the fault.
"""
import os
import sys
import time

import torch

from bench import strong_scaling
from bench.runner import checkpoint, run
from bench.runner.config import UsageError
from bench.runner.device_data import DevicePlacementError
from data.base import DataError
from data.files import WriteError

rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMIX_RANK", "0")))  # mpirun; srun --mpi=pmix
bad_rank, where = int(sys.argv[1]), sys.argv[2]


def injected(message: str):
    print(f"injected {where} at {time.time():.3f}", file=sys.stderr, flush=True)
    return f"injected on rank {rank}: {message}"


# phase -> (module, function, the error it raises there)
PHASES = {
    "open_data": (strong_scaling, "open_data", lambda: DataError(injected("events.h5: no such file on this node"))),
    "pick_device": (strong_scaling, "pick_device", lambda: UsageError(injected("--device cuda: no CUDA device"))),
    "check_fits": (strong_scaling, "check_fits", lambda: UsageError(injected("--global-batch does not fit"))),
    "place_data": (strong_scaling, "place_data", lambda: DevicePlacementError(injected("does not fit in memory"))),
    "threads": (strong_scaling, "default_threads", lambda: RuntimeError(injected("cannot read the CPU set"))),
    "validate": (run, "validate", lambda: RuntimeError(injected("validation failed"))),
    "checkpoint": (checkpoint, "save", lambda: WriteError("c.ckpt.n2", injected("Disk quota exceeded"), "--checkpoint")),
    "test_comparison": (run, "test_comparison", lambda: RuntimeError(injected("test comparison failed"))),
    "save_model": (checkpoint, "save_model", lambda: WriteError("m.pt", injected("No space left on device"),
                                                                "--save-model")),
    "append_record": (strong_scaling, "append_record", lambda: WriteError("r.jsonl", injected("No space left on device"))),
}


def failing(original, make_error):
    def wrapper(*args, **kwargs):
        if rank == bad_rank:
            raise make_error()
        return original(*args, **kwargs)
    return wrapper


if where in PHASES:
    module, name, make_error = PHASES[where]
    setattr(module, name, failing(getattr(module, name), make_error))
else:
    kind, bad_epoch = where.split("@")
    original = run.train_epoch

    def train_epoch(model, *args, **kwargs):
        if rank == bad_rank and args[7] == int(bad_epoch):
            if kind == "raise":
                raise RuntimeError(injected("injected failure on rank %d" % rank))
            injected("nan")
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return original(model, *args, **kwargs)

    run.train_epoch = train_epoch  # where bench.runner.run looks it up
sys.exit(strong_scaling.main(sys.argv[3:]))
