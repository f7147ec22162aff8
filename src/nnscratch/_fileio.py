"""Writing files so that they appear whole or not at all, and reading ``.npy`` headers safely.

One implementation of each, shared by model files, run folders, reports, the download cache and
the data readers:

- :func:`atomic_file` writes under a temporary name beside the target, fsyncs, gives the file the
  mode a plain ``open()`` would, and renames it over the target; on any exception (Ctrl-C
  included) the temporary file is removed and the target is untouched.
- :func:`json_text` is the JSON spelling of everything nnscratch writes.
- :func:`read_npy_header` reads the header of one ``.npy`` member of an archive and refuses, before
  any data is read, what would need unpickling to load.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

__all__ = [
    "CHUNK_BYTES",
    "ZIP_SIGNATURES",
    "NpyHeader",
    "NpyVersionError",
    "ObjectArrayError",
    "atomic_file",
    "write_text",
    "json_text",
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


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write that appears at ``target`` whole when the ``with`` block ends, or
    not at all: it is written beside it under a temporary name, fsynced, given the mode a plain
    ``open()`` would give, and renamed over it. On any exception (Ctrl-C included) the temporary
    file is removed and ``target`` is untouched.

    The handle's ``name`` is the temporary file's path, so that a caller can check what it wrote
    (and raise to discard it) before the rename.
    """
    target = Path(target)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
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
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


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
    shape, fortran_order, dtype = _HEADER_READERS[version](member)
    if dtype.hasobject:
        raise ObjectArrayError(f"its dtype {dtype} holds Python objects")
    return NpyHeader(tuple(shape), fortran_order, dtype)
