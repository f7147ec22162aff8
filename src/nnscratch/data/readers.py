"""Reading one MNIST file: IDX, CSV or ``.npz``, as uint8 (n, 784) pixels and int64 (n,) labels.

- IDX: the four original files (:func:`read_idx_images`, :func:`read_idx_labels`), raw or gzip;
- CSV: a label 0-9, then 784 pixels 0-255 per row, with or without a header row, optionally
  gzip-compressed (:func:`read_csv`);
- ``.npz``: ``x_train, y_train, x_test, y_test`` as written by ``numpy.savez`` (:func:`read_npz`).

Every problem with a file is a :class:`~nnscratch.errors.DataError` whose message is one sentence
naming the file. Sizes declared in a header are checked against the bytes that actually exist
before anything of that size is allocated, so a corrupt or hostile header fails quickly, and an
``.npz`` is never unpickled. Which reader a file or folder needs is :mod:`.formats`' job.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import math
import os
import re
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Callable, Iterable, Iterator, Mapping, TextIO

import numpy as np

from .._fileio import (CHUNK_BYTES, NpyHeader, ObjectArrayError, as_path, check_memory,
                       open_regular, read_npy_header)
from ..errors import ConfigError, DataError
from ..inputs import IMAGE_SIDE, PIXELS, first_bad_label, first_bad_pixel

__all__ = [
    "data_path",
    "read_idx_images",
    "read_idx_labels",
    "read_csv",
    "read_npz",
    "IDX_MAGICS",
    "GZIP_MAGIC",
    "open_data",
    "read_head",
    "is_gzip",
    "require_one_label_each",
    "member_names",
]


# --- opening files and reading them in bounded pieces --------------------------------------------


def data_path(path: Any, what: str = "the data path") -> Path:
    """``path`` (a ``str``, ``bytes`` or ``os.PathLike``) as a Path, ``~`` expanded (as
    :func:`~nnscratch.load_mnist` does); anything else (a number, None) is a ConfigError naming
    ``what``, rather than a TypeError from deep inside."""
    return as_path(path, ConfigError, what).expanduser()


@contextlib.contextmanager
def open_data(path: Path, what: str, compressed: bool, text: bool = False) -> Iterator[IO]:
    """Open ``path`` (gunzipping it if ``compressed``; as UTF-8 text if ``text``), turning every
    way it can fail to be read into a one-sentence DataError; ``what`` names the expected kind
    of file, with its article. Only a regular file is opened: a folder, a FIFO or a device is
    refused before anything can wait on it."""
    with open_regular(path, DataError, f"{what} file") as raw:
        try:
            stream: IO = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            if text:  # -sig: drop a BOM
                stream = io.TextIOWrapper(stream, encoding="utf-8-sig")
            with stream:
                yield stream
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(f"{path} is not a valid gzip file ({_one_line(exc)})") from None
        except EOFError:
            raise DataError(f"{path} is truncated: its gzip stream ends early") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{path} is not UTF-8 text, so not a CSV file (byte "
                            f"{exc.object[exc.start]:#04x} cannot be decoded)") from None
        except OSError as exc:
            raise DataError(f"{path} cannot be read ({_one_line(exc.strerror or exc)})") from None


def _one_line(text: object) -> str:
    """``text`` (an exception's, say) with every run of whitespace, newlines included, one
    space: a message quoting it stays one line."""
    return " ".join(str(text).split())


_HEAD_BYTES = 4096
GZIP_MAGIC = b"\x1f\x8b"


def read_head(path: Path, compressed: bool = False) -> bytes:
    """The first few KiB of ``path`` (once gunzipped, if ``compressed``): enough to tell its
    format."""
    with open_data(path, "a data", compressed) as stream:
        return stream.read(_HEAD_BYTES)


def is_gzip(path: Path) -> bool:
    """Whether ``path`` is gzip-compressed, from its first bytes rather than its name."""
    return read_head(path)[:2] == GZIP_MAGIC


def require_one_label_each(n_images: int, n_labels: int, images: str, labels: str) -> None:
    """Refuse images and labels of different lengths; ``images`` and ``labels`` name them."""
    if n_images != n_labels:
        raise DataError(f"{images} holds {n_images:,} images but {labels} holds {n_labels:,} "
                        "labels; each image needs exactly one label")


# Deflate codes at most 258 bytes in 2 bits: no gzip or zip member of n bytes, however
# uniform its data, decompresses to more than 1032 * n bytes. A header declaring more than that
# is refused before a byte is inflated.
DEFLATE_MAX_RATIO = 1032


def allocate(shape: tuple[int, ...], dtype: np.dtype | type, what: str) -> np.ndarray:
    """A new, uninitialised C-contiguous array for data that a header declares: checked against
    the machine's memory first (``what`` names the data for the message: "x declares ...,
    which")."""
    dtype = np.dtype(dtype)
    check_memory(math.prod(shape) * dtype.itemsize, what, DataError)
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError) as exc:  # numpy's own limits (an index past 2**63...)
        raise DataError(f"{what} cannot be allocated ({_one_line(exc)})") from None


def read_into(stream: BinaryIO, out: np.ndarray) -> int:
    """Fill the C-contiguous ``out`` with the next bytes of ``stream``, in bounded pieces, so
    that memory follows the data that exists (pages of ``out`` never reached are never
    touched); return how many bytes were read (fewer than ``out.nbytes`` at the end of the
    stream)."""
    view = memoryview(out.reshape(-1).view(np.uint8))
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:got + CHUNK_BYTES])
        if not n:
            break
        got += n
    return got


# --- reading IDX files ----------------------------------------------------------------------


@dataclass(frozen=True)
class _IdxKind:
    what: str  # "image" or "label", for messages
    magic: int  # data type 0x08 (unsigned byte) in the third byte, dimension count in the fourth
    item_dims: tuple[int, ...]  # the header's dimensions after the count
    row: tuple[int, ...]  # the shape of one returned row


_IMAGES = _IdxKind("image", 0x00000803, (IMAGE_SIDE, IMAGE_SIDE), (PIXELS,))
_LABELS = _IdxKind("label", 0x00000801, (), ())
IDX_MAGICS = (_IMAGES.magic, _LABELS.magic)


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX image file (raw, or gzip if its name ends in ``.gz``) as uint8 (n, 784) rows."""
    return _read_idx(data_path(path), _IMAGES)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX label file (raw, or gzip if its name ends in ``.gz``) as int64 (n,) digits."""
    path = data_path(path)
    labels = _read_idx(path, _LABELS)
    bad = first_bad_label(labels)
    if bad is not None:
        raise DataError(f"{path} has label {labels[bad]} at index {bad}; labels must be 0..9")
    return labels.astype(np.int64)


def _read_idx(path: Path, kind: _IdxKind) -> np.ndarray:
    compressed = path.name.endswith(".gz")
    with open_data(path, "an IDX", compressed) as stream:
        count = _read_header(stream, path, kind)
        size = count * math.prod(kind.row)
        file_size = os.fstat(stream.fileno()).st_size
        if compressed:  # only an upper bound on what the stream can hold, known before inflating
            _check_gzip_can_hold(path, kind, count, size, file_size)
        else:  # a plain file: its size settles the question before reading
            _check_payload_size(path, kind, count, size, file_size - stream.tell(), exact=True)
        out = allocate((count, *kind.row), np.uint8,
                       f"{path} declares {count:,} {kind.what}s, which")
        got = read_into(stream, out)
        if got == size:  # the data must end where the header says
            got += len(stream.read(1))
        _check_payload_size(path, kind, count, size, got, exact=not compressed)
        return out


def _check_gzip_can_hold(path: Path, kind: _IdxKind, count: int, size: int,
                         file_size: int) -> None:
    if size > DEFLATE_MAX_RATIO * file_size:
        raise DataError(f"{path} is truncated: its header declares {count:,} {kind.what}s "
                        f"({size:,} bytes), more than a gzip file of {file_size:,} bytes can hold")


def _read_header(stream: BinaryIO, path: Path, kind: _IdxKind) -> int:
    """Check the magic number and dimensions; return the item count the header declares."""
    magic_bytes = stream.read(4)
    if not magic_bytes:
        raise DataError(f"{path} is empty")
    if len(magic_bytes) < 4:
        raise DataError(f"{path} is truncated: it ends inside the 4-byte IDX magic number")
    magic = int.from_bytes(magic_bytes, "big")
    if magic != kind.magic:
        raise DataError(f"{path} is not an IDX {kind.what} file: its magic number is "
                        f"0x{magic:08x}, expected 0x{kind.magic:08x}{_gzip_hint(magic_bytes)}")
    ndims = 1 + len(kind.item_dims)
    dims_bytes = stream.read(4 * ndims)
    if len(dims_bytes) < 4 * ndims:
        raise DataError(f"{path} has a truncated header: it declares {ndims} dimensions "
                        f"({4 * ndims} bytes) but only {len(dims_bytes)} bytes follow")
    count, *item_dims = struct.unpack(f">{ndims}I", dims_bytes)
    if tuple(item_dims) != kind.item_dims:
        got = "x".join(map(str, item_dims))
        raise DataError(f"{path} holds {got} images, but the model takes 28x28 (784 inputs)")
    if count == 0:
        raise DataError(f"{path} holds no {kind.what}s: its header declares a count of 0")
    return count


def _gzip_hint(magic_bytes: bytes) -> str:
    # A compressed file without its .gz suffix is the likeliest cause of a bad magic number.
    return " (it looks gzip-compressed: name it with a .gz suffix)" if magic_bytes[:2] == (
        GZIP_MAGIC) else ""


def _check_payload_size(path: Path, kind: _IdxKind, count: int, size: int, actual: int,
                        exact: bool) -> None:
    """Compare the bytes after the header with what it declares; ``exact`` if ``actual`` is
    the full remainder rather than a read stopped one byte past the declared size."""
    if actual < size:
        raise DataError(f"{path} is truncated: its header declares {count:,} {kind.what}s "
                        f"({size:,} bytes) but only {actual:,} bytes follow")
    if actual > size:
        extra = f"{actual - size:,} unexpected trailing bytes" if exact else (
            "unexpected trailing bytes")
        raise DataError(f"{path} has {extra} after the {count:,} {kind.what}s its header declares")


# --- reading CSV files ----------------------------------------------------------------------

_CSV_COLUMNS = 1 + PIXELS  # the label, then the pixels row by row
_INTEGER_CELL = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)  # ASCII: int() also reads other digits
_INT32 = np.iinfo(np.int32)
# A row is a label and 784 pixels of at most a few characters each; a line this long is no row,
# and reading it whole (a gzip stream that inflates to one endless line) could fill the memory.
_MAX_CSV_LINE = 1 << 16


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV of labelled images as uint8 (n, 784) pixels and int64 (n,) labels.

    Each row is a label 0-9, then 784 pixels 0-255. A header row is recognised from its content
    (its first cell is not a number) and must name the first column ``label``. The file may be
    gzip-compressed, which is recognised from its first bytes. Blank lines are skipped; an
    error names the line of the file as an editor numbers it.
    """
    path = data_path(path)
    compressed = is_gzip(path)
    with open_data(path, "a CSV", compressed, text=True) as stream:
        lines = _csv_lines(stream, path)
        first = next(lines, None)
        header = first is not None and _is_csv_header(first[1], path)
        rows = lines if header or first is None else itertools.chain([first], lines)
        numbers: list[int] = []  # the line number of each row parsed
        table = _parse_csv(_numbered(rows, numbers), path, compressed, header)
    return _csv_columns(table, path, numbers)


def _numbered(rows: Iterator[tuple[int, str]], numbers: list[int]) -> Iterator[str]:
    """The lines of ``rows``, noting the number of each in ``numbers`` as it is handed out."""
    for number, line in rows:
        numbers.append(number)
        yield line


def _csv_lines(stream: TextIO, path: Path) -> Iterator[tuple[int, str]]:
    """The non-blank lines of ``stream`` with their numbers (1 for the first line of the
    file), each read with a bounded length."""
    for number in itertools.count(1):
        line = stream.readline(_MAX_CSV_LINE)
        if not line:
            return
        if len(line) >= _MAX_CSV_LINE and not line.endswith("\n"):
            raise DataError(f"{path} line {number} is longer than {_MAX_CSV_LINE:,} characters, "
                            "far more than a label and 784 pixels need")
        if line.strip():
            yield number, line


def _is_csv_header(first: str, path: Path) -> bool:
    """Whether the first line is a header row (refused unless it is MNIST's)."""
    names = [name.strip().strip('"').strip() for name in first.split(",")]
    if _INTEGER_CELL.fullmatch(names[0]):
        return False
    if names[0].lower() != "label":
        problem = ("has no label column" if names[0].lower().startswith("pixel") else
                   "does not start with a label column")
        raise DataError(f"{path} {problem}: its header's first column is {names[0][:40]!r}, but "
                        "nnscratch reads the label first, then 784 pixels")
    if len(names) != _CSV_COLUMNS:
        raise DataError(f"{path} has a header of {len(names):,} columns, but an MNIST CSV has "
                        f"{_CSV_COLUMNS}: the label, then 784 pixels")
    return True


def _parse_csv(rows: Iterator[str], path: Path, compressed: bool, header: bool) -> np.ndarray:
    with warnings.catch_warnings():
        # numpy warns about a file without rows; the check below says so in one sentence.
        warnings.simplefilter("ignore", UserWarning)
        try:
            # numpy's C parser reads the 60,000-row file in about a second; a Python loop over
            # its 47 million cells would take minutes.
            table = np.loadtxt(rows, delimiter=",", dtype=np.int32, ndmin=2, comments=None)
        except UnicodeDecodeError:
            raise  # open_data reports it
        except ValueError:
            raise DataError(_csv_syntax_problem(path, compressed)) from None
    if table.shape[0] == 0:
        raise DataError(f"{path} has a header but no rows" if header else
                        f"{path} is empty: it holds no rows")
    return table


def _csv_syntax_problem(path: Path, compressed: bool) -> str:
    """The first malformed line, found by a slow scan that runs only once numpy has failed
    (numpy's own message counts rows differently from one version to the next, and speaks of
    its own options)."""
    width = None
    with open_data(path, "a CSV", compressed, text=True) as stream:
        lines = _csv_lines(stream, path)
        first = next(lines, None)
        rows = lines if first is None or _is_csv_header(first[1], path) else itertools.chain(
            [first], lines)
        for number, line in rows:
            cells = line.split(",")
            for column, cell in enumerate(cells, start=1):
                if not _INTEGER_CELL.fullmatch(cell):
                    return (f"{path} line {number}, column {column}: {cell.strip()[:20]!r} is not "
                            "a whole number")
                if not _INT32.min <= int(cell) <= _INT32.max:
                    return (f"{path} line {number}, column {column}: {cell.strip()[:20]} is far "
                            "outside 0..255")
            if width is not None and len(cells) != width:
                return (f"{path} line {number} has {len(cells):,} values, but the lines before it "
                        f"have {width:,}")
            width = len(cells)
    return f"{path} cannot be read as CSV: each line must be whole numbers separated by commas"


def _csv_columns(table: np.ndarray, path: Path, numbers: list[int]) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Check the parsed table and split it into pixels and labels; ``numbers`` holds each
    row's line number in the file."""
    if table.shape[1] != _CSV_COLUMNS:
        hint = "; the label column seems to be missing" if table.shape[1] == PIXELS else ""
        raise DataError(f"{path} has {table.shape[1]:,} columns, but an MNIST CSV has "
                        f"{_CSV_COLUMNS}: the label, then 784 pixels{hint}")
    labels, pixels = table[:, 0], table[:, 1:]
    bad = first_bad_label(labels)
    if bad is not None:
        raise DataError(f"{path} line {numbers[bad]} has label {labels[bad]}; labels must be "
                        "0..9")
    spot = first_bad_pixel(pixels)
    if spot is not None:
        row, column = spot
        raise DataError(f"{path} line {numbers[row]}, column {column + 2} has pixel "
                        f"{pixels[row, column]}; pixels must be 0..255")
    return pixels.astype(np.uint8, order="C"), labels.astype(np.int64)


# --- reading .npz archives --------------------------------------------------------------------

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``x_train, y_train, x_test, y_test`` from an ``.npz`` archive (as written by
    ``numpy.savez``): images (n, 28, 28) or (n, 784) of integers 0-255, labels (n,) of integers
    0-9. Returns uint8 (n, 784) images and int64 labels.

    Nothing is unpickled, and each array's bytes are read in bounded pieces, so a header that
    promises more data than the archive holds fails before anything of that size is allocated.
    """
    path = data_path(path)
    with open_zip(path) as archive:
        _check_npz_keys(archive, path)
        arrays = {key: read_npy(archive, path, key) for key in _NPZ_KEYS}
    x_train, y_train = _npz_split(arrays, path, "train")
    x_test, y_test = _npz_split(arrays, path, "test")
    return x_train, y_train, x_test, y_test


@contextlib.contextmanager
def open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """``path`` opened as a zip archive (an ``.npz``), if it is a regular file; every way it
    can fail to be read, then or while its members are read, is a one-sentence DataError."""
    with open_regular(path, DataError, "an .npz file") as raw:
        try:
            archive = zipfile.ZipFile(raw)
            _check_member_count(archive, raw)
            _check_member_headers(archive)
        except (ValueError, *_ZIP_ERRORS) as exc:  # ValueError: a field zipfile cannot parse
            raise DataError(_zip_problem(path, exc)) from None
        with archive:
            try:
                yield archive
            except _ZIP_ERRORS as exc:
                raise DataError(_zip_problem(path, exc)) from None


# RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
               OSError)


def _check_member_count(archive: zipfile.ZipFile, raw: BinaryIO) -> None:
    """Compare the members zipfile found in the central directory with the count in the
    archive's end record. zipfile does not: a corrupt length field in one directory entry can
    swallow the entries after it, and the archive would silently lack those members."""
    end = os.fstat(raw.fileno()).st_size - _END_RECORD_BYTES - len(archive.comment)
    raw.seek(max(end, 0))
    record = raw.read(_END_RECORD_BYTES)
    if record[:4] != b"PK\x05\x06":
        return  # not where zipfile found it (a Zip64 archive...): its own parse stands
    total = struct.unpack_from("<H", record, 10)[0]
    found = len(archive.infolist())
    if total != 0xFFFF and total != found % 0x10000:  # 0xFFFF: the count is in a Zip64 record
        raise zipfile.BadZipFile(f"its directory holds {found} members but its end record "
                                 f"counts {total}")


_END_RECORD_BYTES = 22  # without the archive comment that may follow it


def _check_member_headers(archive: zipfile.ZipFile) -> None:
    """Open every member once: zipfile then compares the name in its local header with the
    central directory's. A zip archive stores each name twice and no checksum covers either, so
    this is what tells a corrupt name (an ``x_test`` become ``\\x00_test``, and the test set
    silently missing) from a real one. It reads headers only, no data."""
    for info in archive.infolist():
        with archive.open(info):
            pass


def _zip_problem(path: Path, exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, zipfile.BadZipFile):
        return f"{path} cannot be read ({_one_line(exc.strerror or exc)})"
    return f"{path} is not a valid .npz archive ({_one_line(exc)})"


def _check_npz_keys(archive: zipfile.ZipFile, path: Path) -> None:
    present = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
    missing = [key for key in _NPZ_KEYS if key not in present]
    if missing:
        has = member_names(present)
        raise DataError(f"{path} has no {' or '.join(missing)} array; an MNIST .npz holds "
                        f"x_train, y_train, x_test and y_test (it has: {has})")


def member_names(names: Iterable[str]) -> str:
    """The first few of an archive's member ``names`` for a message: a name holding a newline
    or another unprintable character is quoted, so that the message stays one line."""
    shown = [name if name.isprintable() else repr(name) for name in sorted(names)[:8]]
    return ", ".join(shown) or "none"


def read_npy(archive: zipfile.ZipFile, path: Path, key: str,
             check: Callable[[Path, str, tuple[int, ...], np.dtype], None] | None = None
             ) -> np.ndarray:
    """One member of the archive, checked from its header (by ``check``, MNIST's layout by
    default) and against the size the archive declares for it before its data is read; never
    inflated past that size."""
    info = archive.getinfo(f"{key}.npy")
    with archive.open(info) as member:
        shape, fortran_order, dtype = _npy_header(member, path, key)
        (check or _check_npy_layout)(path, key, shape, dtype)
        if dtype.itemsize == 0:
            raise DataError(f"{path} array {key} has dtype {dtype}, whose items hold nothing")
        size = math.prod(shape) * dtype.itemsize
        _check_member_size(path, key, shape, size, info, info.file_size - member.tell())
        out = allocate(shape[::-1] if fortran_order else shape, dtype,
                       f"{path} array {key} declares shape {shape}, which")
        got = read_into(member, out)
        if got == size:
            got += len(member.read(1))
    _check_npy_size(path, key, shape, size, got)
    # Column-major bytes are the row-major bytes of the transpose.
    return out.T if fortran_order else out


def _check_member_size(path: Path, key: str, shape: tuple[int, ...], size: int,
                       info: zipfile.ZipInfo, stored: int) -> None:
    """Compare what the .npy header declares with what the archive says its member holds."""
    _check_npy_size(path, key, shape, size, stored)
    if info.compress_type == zipfile.ZIP_DEFLATED and size > DEFLATE_MAX_RATIO * max(
            info.compress_size, 1):
        raise DataError(f"{path} array {key} is truncated: its header declares shape {shape} "
                        f"({size:,} bytes), more than its {info.compress_size:,} compressed bytes "
                        "can hold")


def _check_npy_size(path: Path, key: str, shape: tuple[int, ...], size: int, got: int) -> None:
    if got != size:
        problem = "is truncated" if got < size else "has unexpected trailing bytes"
        raise DataError(f"{path} array {key} {problem}: its header declares shape {shape} "
                        f"({size:,} bytes) but {'only ' * (got < size)}{got:,} bytes follow")


def _npy_header(member: BinaryIO, path: Path, key: str) -> NpyHeader:
    try:
        return read_npy_header(member)
    except ObjectArrayError:
        raise DataError(f"{path} contains a pickled object array ({key}), which nnscratch never "
                        "loads") from None
    except ValueError as exc:
        raise DataError(f"{path} array {key} is not a valid .npy array "
                        f"({_one_line(exc)})") from None


def _check_npy_layout(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype.kind not in "iu":
        raise DataError(f"{path} array {key} has dtype {dtype}, but nnscratch reads images as "
                        "integers 0..255 and labels as integers 0..9")
    is_images = key.startswith("x")
    if is_images:
        valid = (len(shape) == 3 and shape[1:] == (IMAGE_SIDE, IMAGE_SIDE)) or (
            len(shape) == 2 and shape[1] == PIXELS)
    else:
        valid = len(shape) == 1
    if not valid:
        expected = "(n, 28, 28) or (n, 784)" if is_images else "(n,), one digit per image"
        raise DataError(f"{path} array {key} has shape {shape}, but it must be {expected}")
    if shape[0] == 0:
        raise DataError(f"{path} array {key} is empty")


def _npz_split(arrays: Mapping[str, np.ndarray], path: Path,
               part: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
    require_one_label_each(len(images), len(labels), f"{path} array x_{part}", f"array y_{part}")
    pixels = images.reshape(len(images), PIXELS)
    spot = first_bad_pixel(pixels)
    if spot is not None:
        raise DataError(f"{path} array x_{part} has pixel {pixels[spot]} in image {spot[0]}; "
                        "pixels must be 0..255")
    bad = first_bad_label(labels)
    if bad is not None:
        raise DataError(f"{path} array y_{part} has label {labels[bad]} at index {bad}; labels "
                        "must be 0..9")
    return pixels.astype(np.uint8, order="C"), labels.astype(np.int64)
