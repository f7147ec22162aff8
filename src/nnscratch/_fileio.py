"""Writing files so that they appear whole or not at all, and reading ``.npy`` headers safely.

One implementation of each, shared by model files, run folders, reports, the download cache and
the data readers:

- :func:`atomic_file` writes under a temporary name beside the target, fsyncs, gives the file the
  mode a plain ``open()`` would, and renames it over the target; on any exception (Ctrl-C
  included) the temporary file is removed and the target is untouched.
- :func:`json_text` is the JSON spelling of everything nnscratch writes.
- :func:`read_npy_header` reads the header of one ``.npy`` member of an archive and refuses, before
  any data is read, what would need unpickling to load.

And the guards every reader and writer shares, so that an operating-system error or a hostile
file becomes one sentence rather than a traceback, a hang or an exhausted machine:

- :func:`write_error` turns an ``OSError`` met while writing into a
  :class:`~nnscratch.errors.WriteError` naming the path (``atomic_file`` and :func:`make_folder`
  use it; so every run-folder, model-file, report and cache write does);
- :func:`open_regular` opens a file for reading only if it is a regular file (a FIFO, a device
  or a folder is refused before anything waits on it);
- :func:`check_memory` refuses, before allocating, what would need more memory than the machine
  (or the process's limit) has.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
import tokenize
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from .errors import NNScratchError, WriteError

__all__ = [
    "CHUNK_BYTES",
    "write_error",
    "os_reason",
    "make_folder",
    "open_regular",
    "as_path",
    "memory_budget",
    "check_memory",
    "human_bytes",
    "TEMP_SUFFIX",
    "sweep_temporary_files",
    "ZIP_SIGNATURES",
    "NpyHeader",
    "NpyVersionError",
    "ObjectArrayError",
    "atomic_file",
    "write_text",
    "json_text",
    "read_json",
    "read_npy_header",
]

# Files are read in pieces this big, so memory follows the data that really exists, never the
# size a header claims.
CHUNK_BYTES = 1 << 20

# Every zip archive (an .npz) starts with a local file header, or with the end record when empty.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")

_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


# --- writing -------------------------------------------------------------------------------------


def _new_file_mode() -> int | None:
    # mkstemp creates 0600 files; give the file the mode a plain open() would, without the
    # os.umask() set-and-restore dance, which races with other threads creating files.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    return None


# The errors that say a write failed, whichever call met them; an OSError with another errno met
# inside an atomic_file block (a network error while a download is written, say) is the
# caller's to report.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES,
                           errno.EPERM, errno.EIO, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                           errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP, errno.EMLINK,
                           errno.ENOLCK, errno.ETXTBSY})


def os_reason(exc: OSError) -> str:
    """The system's reason for ``exc`` in a few lower-case words (``permission denied``)."""
    return " ".join((exc.strerror or str(exc)).rstrip(".").lower().split())


# What an error means when it is met creating a file (or a folder) at a path.
_WRITE_REASONS = {errno.ENOENT: "a folder on the way does not exist",
                  errno.ENOTDIR: "a file is in the way of a folder on the way",
                  errno.EEXIST: "a file is in the way",
                  errno.EISDIR: "it is a folder"}


def write_error(path: str | os.PathLike, exc: OSError, what: str = "") -> WriteError:
    """The one-sentence error for ``exc``, met while writing ``path`` (``what`` names it:
    ``"the run folder"``...): ``cannot write config.json in runs/a: no space left on device``."""
    if isinstance(exc, WriteError):
        return exc
    name = f"{what} {path}" if what else str(path)
    reason = _WRITE_REASONS.get(exc.errno) or os_reason(exc)  # type: ignore[arg-type]
    return WriteError(f"cannot write {name}: {reason}")


def make_folder(path: str | os.PathLike, what: str = "the folder") -> Path:
    """Create the folder ``path`` with its parents (an existing one is fine); a failure is a
    :class:`~nnscratch.errors.WriteError` naming it."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file, not a folder, where the folder should be
        raise WriteError(f"cannot create {what} {folder}: a file is in the way") from None
    except OSError as exc:
        raise write_error(folder, exc, what) from None
    return folder


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write that appears at ``target`` whole when the ``with`` block ends, or
    not at all: it is written beside it under a temporary name, fsynced, given the mode a plain
    ``open()`` would give, and renamed over it. On any exception (Ctrl-C included) the temporary
    file is removed and ``target`` is untouched. A write that fails (a full disk, a read-only
    folder...) raises :class:`~nnscratch.errors.WriteError` naming ``target``.

    The handle's ``name`` is the temporary file's path, so that a caller can check what it wrote
    (and raise to discard it) before the rename.
    """
    target = Path(target)
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                    suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise write_error(target, exc) from None
    try:
        # The opener hands open() the descriptor mkstemp made, so the handle is named by its path.
        with open(temp, "wb", opener=lambda _path, _flags: fd) as handle:
            yield handle
            handle.flush()
            mode = _new_file_mode()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            raise write_error(target, exc) from None
        raise


#: The suffix of atomic_file's temporary files (``.NAME.RANDOM.tmp`` beside the target).
TEMP_SUFFIX = ".tmp"


def sweep_temporary_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that :func:`atomic_file` left in ``folder`` when its process
    was killed before it could clean up (SIGKILL, a power cut); returns what was removed. Call
    it only while no other process writes there (a run folder's lock is held)."""
    removed = []
    for path in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if path.is_file():
                path.unlink()
                removed.append(path)
    return removed


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path`` as a Path."""
    with atomic_file(path) as handle:
        handle.write(text.encode("utf-8"))
    return Path(path)


def _json_scalar(value: Any) -> Any:
    # NumPy scalars (a float32 accuracy, an int64 size) are JSON numbers in all but type.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def read_json(text: str) -> Any:
    """:func:`json_text`'s reverse, for files nnscratch wrote: NaN and infinity (which it never
    writes) and nesting deep enough to exhaust Python's stack are refused, as ValueError."""
    def refuse_constant(token: str) -> Any:
        raise ValueError(f"{token} is not a JSON number")
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON text: NumPy scalars become numbers; NaN and infinity are refused
    (``ValueError``), since JSON has no spelling for them."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, default=_json_scalar,
                      indent=indent)


# --- reading .npy headers ------------------------------------------------------------------------


class NpyHeader(NamedTuple):
    """What a ``.npy`` header declares about the data that follows it."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype


class NpyVersionError(ValueError):
    """A ``.npy`` member in a format version nnscratch does not read."""

    def __init__(self, version: tuple[int, int]) -> None:
        super().__init__(f".npy format version {version} is not supported")
        self.version = version


class ObjectArrayError(ValueError):
    """A ``.npy`` member of Python objects: loading its data would mean unpickling it."""


def read_npy_header(member: BinaryIO) -> NpyHeader:
    """Read the magic string and header of the ``.npy`` data at the start of ``member``, leaving
    it at the first byte of data.

    Raises :class:`NpyVersionError` for a version other than 1.0 and 2.0,
    :class:`ObjectArrayError` for an object dtype (refused here, before numpy gets anywhere near
    unpickling it), and ``ValueError`` for a malformed header.
    """
    version = np.lib.format.read_magic(member)
    if version not in _HEADER_READERS:
        raise NpyVersionError(version)
    try:
        with warnings.catch_warnings():
            # numpy warns about a header in Python 2's spelling, or with a stray backslash, on
            # its way to reading it; what it reads is checked here, and a command prints one line.
            warnings.simplefilter("ignore")
            shape, fortran_order, dtype = _HEADER_READERS[version](member)
    except (SyntaxError, TypeError, KeyError, AttributeError, OverflowError, RecursionError,
            MemoryError, tokenize.TokenError) as exc:
        # numpy parses the header as a Python literal; garbage there fails in many ways.
        raise ValueError(f"its .npy header cannot be parsed ({type(exc).__name__})") from None
    if not isinstance(fortran_order, bool) or not all(
            isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"its .npy header declares an impossible shape {shape!r}")
    if dtype.hasobject:
        raise ObjectArrayError(f"its dtype {dtype} holds Python objects")
    return NpyHeader(tuple(shape), fortran_order, dtype)


# --- reading only what can be read -----------------------------------------------------------


def as_path(path: Any, error: type[NNScratchError], what: str) -> Path:
    """``path`` (a ``str``, ``bytes`` or ``os.PathLike``) as a Path; anything else (a number,
    None, a list) is ``error`` naming ``what`` ("the model file to load"), rather than a
    TypeError from deep inside."""
    if isinstance(path, (str, bytes, os.PathLike)):
        name = os.fspath(path)
        return Path(os.fsdecode(name) if isinstance(name, bytes) else name)
    raise error(f"{what} must be a file path (a str or os.PathLike), not "
                f"{type(path).__name__} {path!r:.40}")


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike, error: type[NNScratchError],
                 what: str = "a file") -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file (or a link to one).

    A folder, a FIFO, a socket or a device is refused as ``error(sentence)`` without waiting on
    it: the file is opened non-blocking and checked with ``fstat`` before a byte is read, so a
    FIFO with no writer cannot hang the command. ``what`` (with its article) names what was
    expected: ``"a model file"``. A missing or unreadable file is ``error`` too.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path} does not exist") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not {what}") from None
    except OSError as exc:
        raise error(f"{path} cannot be opened: {os_reason(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path} is {_kind(mode)}, not {what}")
        os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# --- memory ---------------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    """``n`` bytes in words: ``"3.2 TB"``, ``"512 MB"``, ``"17 bytes"``."""
    if n < 1000:
        return f"{int(n)} bytes"
    for unit in ("kB", "MB", "GB", "TB", "PB", "EB"):
        n /= 1000
        if n < 1000 or unit == "EB":
            return f"{n:.3g} {unit}"
    raise AssertionError("unreachable")


def _physical_memory() -> int | None:
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def _address_space_left() -> int | None:
    """What the process's address-space limit (``ulimit -v``) leaves, if one is set."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    limits = []
    for name in ("RLIMIT_AS", "RLIMIT_DATA"):
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    if not limits:
        return None
    used = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    return max(min(limits) - used, 0)


def memory_budget() -> int | None:
    """The most bytes one allocation may ask for: the machine's physical memory, or what the
    process's address-space limit leaves, whichever is smaller (None if neither is known)."""
    known = [n for n in (_physical_memory(), _address_space_left()) if n is not None]
    return min(known) if known else None


def check_memory(nbytes: int, what: str, error: type[NNScratchError]) -> None:
    """Raise ``error`` naming ``what`` when ``nbytes`` is more than :func:`memory_budget`:
    checked before allocating, so a header that declares four billion images, or a layer of a
    hundred billion units, is refused in one sentence instead of exhausting the machine."""
    budget = memory_budget()
    if budget is not None and nbytes > budget:
        where = ("the memory this process may still use" if budget < (_physical_memory() or 0)
                 else "the memory this machine has")
        raise error(f"{what} would need {human_bytes(nbytes)}, more than the "
                    f"{human_bytes(budget)} of {where}")
