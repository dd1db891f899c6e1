"""Appending run records: one JSON object per line, a complete line or nothing.

The line is written by one ``write()`` on a descriptor opened with O_APPEND, under an exclusive
``flock`` (so two jobs appending to the same file never interleave), then ``fsync``ed.
"""
from __future__ import annotations

import fcntl
import json
import os

SCHEMA_VERSION = 1


class RecordPathError(ValueError):
    """The records file cannot be written. The message names --out. Exit status 2."""


def check_writable(path: str) -> None:
    """Fail before any work if ``path`` cannot be appended to. Creates nothing."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RecordPathError(f"--out {path}: directory {directory} does not exist")
    if os.path.exists(path):
        if os.path.isdir(path) or not os.access(path, os.W_OK):
            raise RecordPathError(f"--out {path}: not a writable file")
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise RecordPathError(f"--out {path}: directory {directory} is not writable")


def append_record(path: str, record: dict) -> None:
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(line)
        while view:  # a regular file takes it in one write; loop only for safety
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock


def read_records(path: str) -> tuple[list[dict], list[str]]:
    """Records of a file, and one message per broken line (file:line: reason)."""
    records, problems = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
                records.append(rec)
            except ValueError as exc:
                problems.append(f"{path}:{number}: skipped broken record ({exc})")
    return records, problems
