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


def fail_agreed(world, failures: list[tuple[int, str]], code: int = USAGE) -> int:
    """End every rank after ``World.failures`` found some: rank 0 prints each failure once (``error:
    message`` when every rank failed alike, ``error: rank R: message`` otherwise) and every rank returns
    ``code``, so the job ends without an abort and without a rank left in a collective."""
    if world.is_root:
        if len(failures) == world.size and len({m for _, m in failures}) == 1:
            print(f"error: {failures[0][1]}", file=sys.stderr, flush=True)
        else:
            for rank, message in failures:
                print(f"error: rank {rank}: {message}", file=sys.stderr, flush=True)
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
