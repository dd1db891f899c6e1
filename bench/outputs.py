"""Output paths checked before any work: a path that cannot be written exits 2 naming its flag, before a
single event is read or a step trained, and nothing already written is touched. Torch-free.
"""
from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be written. The message names the flag. Exit status 2."""


def check_output_file(path: str, flag: str) -> None:
    """``path`` can be created or appended to: its directory exists and is writable, and it is not a
    directory (an existing one, or a path ending in ``/``) or a read-only file. Creates nothing. Raises
    OutputPathError naming ``flag``."""
    if str(path).endswith(("/", os.sep)) or os.path.isdir(path):
        raise OutputPathError(f"{flag} {path}: names a directory; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise OutputPathError(f"{flag} {path}: directory {directory} {what}")
    if os.path.exists(path):
        if os.path.isdir(path) or not os.access(path, os.W_OK):
            raise OutputPathError(f"{flag} {path}: not a writable file")
    elif not os.access(directory, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {path}: directory {directory} is not writable")


def check_output_dir(path: str | os.PathLike, flag: str) -> None:
    """The directory ``path`` exists and is writable, or can be created: its nearest existing ancestor is a
    writable directory. Creates nothing. Raises OutputPathError naming ``flag``."""
    out = Path(path).absolute()
    if out.exists():
        if not out.is_dir():
            raise OutputPathError(f"{flag} {path}: exists and is not a directory")
        if not os.access(out, os.W_OK | os.X_OK):
            raise OutputPathError(f"{flag} {path}: directory is not writable")
        return
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"{flag} {path}: cannot be created, {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {path}: cannot be created, {ancestor} is not writable")


def make_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """``check_output_dir``, then create it (and its parents). Raises OutputPathError naming ``flag`` also
    when the creation itself fails (a read-only file system, which a root user's access check misses)."""
    check_output_dir(path, flag)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{flag} {path}: cannot create the directory ({exc.strerror})") from None
    return Path(path)
