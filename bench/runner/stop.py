"""Stopping cleanly before a scheduler's time limit.

A job script asks the scheduler for a warning signal some time before the limit (Slurm: ``#SBATCH
--signal=USR1@300``, which ``launchers.make slurm`` writes). The handler installed here only notes that
SIGUSR1 arrived; the run checks between epochs, outside the timed region, and every rank of the run learns
whether any rank got it (``agreed``), so that all stop at the same epoch boundary, after that epoch's
checkpoint is written. The job then ends with status ``STOPPED`` and writes no record for the unfinished
run; the same job with ``--resume`` continues from the checkpoint and gives the record an uninterrupted run
would have given.
"""
from __future__ import annotations

import signal

STOPPED = 75  # exit status of a run stopped before its time limit (sysexits' EX_TEMPFAIL: try again)
SIGNAL = signal.SIGUSR1

_received: list[int] = []


class Stopped(Exception):
    """Raised on every rank of a run that agreed to stop at an epoch boundary. ``epochs_done``: epochs the
    run has finished (and checkpointed, with --checkpoint)."""

    def __init__(self, epochs_done: int):
        super().__init__(f"stopped after {epochs_done} epoch(s)")
        self.epochs_done = epochs_done


def _note(signum, frame) -> None:
    _received.append(signum)


def install() -> None:
    """Note SIGUSR1 instead of dying of it (its default action). Main thread only.

    The signal restarts interrupted system calls, so that MPI, gloo and Horovod's threads, which it may
    land in, carry on undisturbed (``signal.signal`` alone would make them fail with EINTR)."""
    signal.signal(SIGNAL, _note)
    signal.siginterrupt(SIGNAL, False)


def requested() -> bool:
    """Whether this process received the warning signal."""
    return bool(_received)


def agreed(world) -> bool:
    """Whether any rank of ``world`` received the warning signal. Collective: every rank of ``world`` calls
    it at the same point, and all get the same answer."""
    return world.allreduce_max(1.0 if requested() else 0.0) > 0.0


def reset() -> None:
    """Forget a received signal (tests)."""
    _received.clear()
