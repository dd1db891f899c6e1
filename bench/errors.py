"""One way for every entry point to end on bad input or a failed rank: ``error: <message>`` on stderr.

Torch-free and MPI-free (a ``world`` is passed in, never imported), so the report builder, the launchers
and the data tools use it as the runner does.
"""
from __future__ import annotations

import sys

USAGE = 2  # exit status of bad input: a flag, a file, a path


def fail(message: str, world=None, code: int = USAGE) -> int:
    """Print ``error: message`` once (on rank 0 of ``world``, or here without one) and return ``code``.

    For errors every rank reaches alike (the same flags, the same file): each rank returns ``code`` and the
    job ends without a collective waiting.
    """
    if world is None or world.is_root:
        print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def fail_rank(world, message: str, code: int = USAGE) -> int:
    """An error that may be this rank's alone: one process prints it and returns ``code``; under MPI this
    rank prints it with its rank number and ends every rank (the others may be waiting in a collective),
    so this call does not return."""
    if world.size == 1:
        return fail(message, None, code)
    print(f"error: rank {world.rank}: {message}", file=sys.stderr, flush=True)
    world.abort(code)
    return code  # not reached under MPI: abort ends this process
