"""Files read and written the same way by every entry point. Torch-free, MPI-free (the bottom layer).

Inputs: ``check_input_file`` says what is wrong with a path before it is opened (missing, a directory, a
FIFO or other special file, unreadable, empty), naming the flag; the reader of each format then says when
a readable file is of another format.

Outputs: every file is written whole or not at all. ``replaced`` hands the writer a temporary file beside
the target, flushes it to disk and renames it over the target; on any failure (a full disk, a quota, a
read-only or vanished directory) the temporary file is removed, the target keeps its earlier bytes, and a
``WriteError`` names the path and the cause. Entry points turn a WriteError into one ``error:`` line and
exit status 2 (docs/faults.md). Appends (the records file) use ``append_whole``: one write, cut back to
the earlier length when it fails.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

# Control characters other than tab and newline, and DEL: never part of a name, a library string or a
# CPU model, but they reach the environment (MPI_Get_library_version ends in NUL) and from there records,
# tables and pages (a NUL makes grep call report.md a binary file).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class WriteError(OSError):
    """A file that could not be written. ``path``: the target; ``cause``: the system's reason (``No space
    left on device``); ``str()`` is the one line an entry point prints. Exit status 2."""

    def __init__(self, path, cause: str, flag: str = ""):
        super().__init__(f"{flag + ' ' if flag else ''}{path}: cannot be written ({cause})")
        self.path, self.cause, self.flag = str(path), cause, flag

    def named(self, flag: str) -> "WriteError":
        """The same error with the flag that named the path (``--out``) in its message."""
        return WriteError(self.path, self.cause, flag)


class OutputPathError(ValueError):
    """An output path that cannot be written, found before any work: the message names the flag. Exit
    status 2."""


def check_output_file(path: str, flag: str) -> None:
    """``path`` can be created or appended to: its directory exists and is writable, and it is not a
    directory (an existing one, or a path ending in ``/``), a FIFO, socket or device, or a read-only file. Creates nothing. Raises
    OutputPathError naming ``flag``."""
    if str(path).endswith(("/", os.sep)) or os.path.isdir(path):
        raise OutputPathError(f"{flag} {path}: names a directory; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise OutputPathError(f"{flag} {path}: directory {directory} {what}")
    if os.path.exists(path):
        kind = _kind(os.stat(path).st_mode)
        if kind:  # a FIFO would hold the writer until something reads it
            raise OutputPathError(f"{flag} {path}: is {kind}, not a file")
        if not os.access(path, os.W_OK):
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


class InputError(ValueError):
    """An input path that cannot be read as a file: the message names the flag and what the path is.
    Exit status 2."""


class MissingInput(InputError, FileNotFoundError):
    """An input path that does not exist (also a FileNotFoundError, as callers of the readers expect)."""


def cause_of(exc: BaseException) -> str:
    """The system's reason for a failed write (``No space left on device``), or the exception's text."""
    if isinstance(exc, WriteError):
        return exc.cause
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.strerror or os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def clean_text(text: str) -> str:
    """``text`` without control characters (NUL, escape sequences, carriage returns): what reaches a
    record, table or page from the environment. Tabs and newlines stay."""
    return _CONTROL.sub("", text)


def clean(value):
    """``clean_text`` applied to every string in ``value`` (dicts, lists and tuples walked; keys too)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(clean(v) for v in value)
    return value


def _temporary(path: Path) -> Path:
    # Beside the target (a rename does not cross file systems), hidden, and ending in the target's suffix
    # (matplotlib and numpy choose the format from it).
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def replaced(path, mode: int | None = None):
    """``with replaced(path) as tmp: write(tmp)``: the writer writes the temporary file ``tmp`` (a Path
    beside ``path``, with its suffix); on leaving, it is flushed to disk and renamed over ``path`` (with
    permission bits ``mode`` if given, else those of the file it replaces). Raises WriteError naming ``path`` when the writer or the rename
    fails with an OSError (or with an error whose cause is one, as h5py and matplotlib raise); the
    temporary file is then removed and ``path`` is as it was."""
    target = Path(path)
    tmp = _temporary(target)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is None and target.exists():  # a replaced file keeps its permission bits
            mode = os.stat(target).st_mode & 0o7777
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, WriteError) or not _is_os_failure(exc):
            raise
        raise WriteError(target, cause_of(_os_cause(exc))) from exc
    _sync_directory(target.parent)


def _os_cause(exc: BaseException) -> BaseException:
    while not isinstance(exc, OSError) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def _is_os_failure(exc: BaseException) -> bool:
    return isinstance(_os_cause(exc), OSError)


def write_bytes(path, data: bytes, mode: int | None = None) -> None:
    """``data`` as the whole content of ``path`` (``replaced``). Raises WriteError."""
    with replaced(path, mode) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text(path, text: str, mode: int | None = None) -> None:
    """``text`` (UTF-8) as the whole content of ``path`` (``replaced``). Raises WriteError."""
    write_bytes(path, text.encode("utf-8"), mode)


def make_parent(path) -> None:
    """Create the directory ``path`` goes in (and its parents). Raises WriteError naming it."""
    parent = Path(path).absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(parent, cause_of(exc)) from exc


def append_whole(path, data: bytes, lock: bool = True, sync: bool = True) -> None:
    """Append ``data`` to ``path`` (created if absent) in one write under an exclusive lock (with ``lock``),
    then flush it to disk (with ``sync``). A file whose last byte is not a newline gets ``data`` on a fresh line. When the write or the
    flush fails the file is cut back to its earlier length, so its earlier bytes stay as they were (a file
    this call created is removed); raises WriteError naming ``path``."""
    existed = os.path.lexists(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise WriteError(path, cause_of(exc)) from exc
    try:
        if lock:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        end = os.lseek(fd, 0, os.SEEK_END)
        if end and os.pread(fd, 1, end - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:  # a regular file takes it in one write; loop only for safety
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
                if not existed:  # made by this call: gone again
                    os.unlink(path)
            raise WriteError(path, cause_of(exc)) from exc
    finally:
        os.close(fd)  # also releases the lock


def check_input_file(path, flag: str = "", empty_ok: bool = False) -> Path:
    """``path`` is an existing, readable regular file (and not empty, unless ``empty_ok``); returns it as
    a Path. Raises InputError (MissingInput for a missing path) naming ``flag`` and what the path is instead: missing, a directory, a FIFO,
    a socket or device, a file this process may not read, or an empty file. Opens nothing (a FIFO is never
    opened, so never waited on)."""
    p = Path(path)
    where = f"{flag} {path}" if flag else str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise MissingInput(f"{where}: no such file") from None
    except OSError as exc:
        raise InputError(f"{where}: cannot be examined ({cause_of(exc)})") from None
    kind = _kind(st.st_mode)
    if kind:
        raise InputError(f"{where}: is {kind}, not a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{where}: not readable (permission denied)")
    if st.st_size == 0 and not empty_ok:
        raise InputError(f"{where}: is empty")
    return p


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"

