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
import math
import os
import re
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Callable, Iterator, Mapping, TextIO

import numpy as np

from .._fileio import CHUNK_BYTES, NpyHeader, ObjectArrayError, read_npy_header
from ..errors import DataError
from ..inputs import IMAGE_SIDE, PIXELS, first_bad_label, first_bad_pixel

__all__ = [
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
]


# --- opening files and reading them in bounded pieces --------------------------------------------


@contextlib.contextmanager
def open_data(path: Path, what: str, compressed: bool, text: bool = False) -> Iterator[IO]:
    """Open ``path`` (gunzipping it if ``compressed``; as UTF-8 text if ``text``), turning every
    way it can fail to be read into a one-sentence DataError; ``what`` names the expected kind
    of file, with its article."""
    try:
        opener = gzip.open if compressed else open
        mode, encoding = ("rt", "utf-8-sig") if text else ("rb", None)  # -sig: drop a BOM
        with opener(path, mode, encoding=encoding) as stream:
            yield stream
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not {what} file") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc})") from exc
    except EOFError as exc:
        raise DataError(f"{path} is truncated: its gzip stream ends early") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text, so not a CSV file (byte "
                        f"{exc.object[exc.start]:#04x} cannot be decoded)") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc})") from exc


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


def _read_at_most(stream: BinaryIO, limit: int) -> tuple[list[bytes], int]:
    """Read up to ``limit`` bytes in bounded chunks; return the chunks and their total length."""
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = stream.read(min(CHUNK_BYTES, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return chunks, got


def _join_chunks(chunks: list[bytes], shape: tuple[int, ...],
                 dtype: np.dtype | type = np.uint8) -> np.ndarray:
    # Filling one new array (rather than np.frombuffer on the joined bytes) makes the result
    # owned and writable, with a single copy of the data.
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1).view(np.uint8)  # a view: out is C-contiguous
    start = 0
    for chunk in chunks:
        flat[start:start + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        start += len(chunk)
    return out


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
    return _read_idx(Path(path), _IMAGES)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX label file (raw, or gzip if its name ends in ``.gz``) as int64 (n,) digits."""
    path = Path(path)
    labels = _read_idx(path, _LABELS)
    bad = first_bad_label(labels)
    if bad is not None:
        raise DataError(f"{path} has label {labels[bad]} at index {bad}; labels must be 0..9")
    return labels.astype(np.int64)


def _read_idx(path: Path, kind: _IdxKind) -> np.ndarray:
    with open_data(path, "an IDX", compressed=path.name.endswith(".gz")) as stream:
        count = _read_header(stream, path, kind)
        shape = (count, *kind.row)
        size = count * int(np.prod(kind.row, dtype=np.int64))
        raw_size = _raw_payload_size(stream)
        if raw_size is not None:  # a plain file: its size settles the question before reading
            _check_payload_size(path, kind, count, size, raw_size, exact=True)
        chunks, got = _read_at_most(stream, size + 1)
        _check_payload_size(path, kind, count, size, got, exact=raw_size is not None)
        return _join_chunks(chunks, shape)


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


def _raw_payload_size(stream: BinaryIO) -> int | None:
    """Bytes left after the header in a plain file; None for a compressed stream (unknowable)."""
    if isinstance(stream, gzip.GzipFile):
        return None
    return os.fstat(stream.fileno()).st_size - stream.tell()


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
_INTEGER_CELL = re.compile(r"\s*[+-]?\d+\s*")
_INT32 = np.iinfo(np.int32)


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV of labelled images as uint8 (n, 784) pixels and int64 (n,) labels.

    Each row is a label 0-9, then 784 pixels 0-255. A header row is recognised from its content
    (its first cell is not a number) and must name the first column ``label``. The file may be
    gzip-compressed, which is recognised from its first bytes.
    """
    path = Path(path)
    compressed = is_gzip(path)
    with open_data(path, "a CSV", compressed, text=True) as stream:
        header_lines = _skip_csv_header(stream, path)
        table = _parse_csv(stream, path, compressed, header_lines)
    return _csv_columns(table, path, header_lines)


def _skip_csv_header(stream: TextIO, path: Path) -> int:
    """Consume the header row if there is one; return how many lines were consumed (0 or 1)."""
    first = stream.readline()
    names = [name.strip().strip('"').strip() for name in first.split(",")]
    if not first.strip() or _INTEGER_CELL.fullmatch(names[0]):
        stream.seek(0)
        return 0
    if names[0].lower() != "label":
        problem = ("has no label column" if names[0].lower().startswith("pixel") else
                   "does not start with a label column")
        raise DataError(f"{path} {problem}: its header's first column is {names[0][:40]!r}, but "
                        "nnscratch reads the label first, then 784 pixels")
    if len(names) != _CSV_COLUMNS:
        raise DataError(f"{path} has a header of {len(names):,} columns, but an MNIST CSV has "
                        f"{_CSV_COLUMNS}: the label, then 784 pixels")
    return 1


def _parse_csv(stream: TextIO, path: Path, compressed: bool, header_lines: int) -> np.ndarray:
    with warnings.catch_warnings():
        # numpy warns about a file without rows; the check below says so in one sentence.
        warnings.simplefilter("ignore", UserWarning)
        try:
            # numpy's C parser reads the 60,000-row file in about a second; a Python loop over
            # its 47 million cells would take minutes.
            table = np.loadtxt(stream, delimiter=",", dtype=np.int32, ndmin=2, comments=None)
        except UnicodeDecodeError:
            raise  # open_data reports it
        except ValueError as exc:
            raise DataError(_csv_syntax_problem(path, compressed, header_lines, exc)) from None
    if table.shape[0] == 0:
        raise DataError(f"{path} has a header but no rows" if header_lines else
                        f"{path} is empty: it holds no rows")
    return table


def _csv_syntax_problem(path: Path, compressed: bool, header_lines: int, exc: Exception) -> str:
    """The first malformed line, found by a slow scan that runs only once numpy has failed
    (numpy's own message counts rows differently from one version to the next)."""
    width = None
    with open_data(path, "a CSV", compressed, text=True) as stream:
        for number, line in enumerate(stream, start=1):
            if number <= header_lines or not line.strip():
                continue
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
    return f"{path} cannot be read as CSV ({' '.join(str(exc).split())})"


def _csv_columns(table: np.ndarray, path: Path, header_lines: int) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Check the parsed table and split it into pixels and labels."""
    if table.shape[1] != _CSV_COLUMNS:
        hint = "; the label column seems to be missing" if table.shape[1] == PIXELS else ""
        raise DataError(f"{path} has {table.shape[1]:,} columns, but an MNIST CSV has "
                        f"{_CSV_COLUMNS}: the label, then 784 pixels{hint}")
    labels, pixels = table[:, 0], table[:, 1:]
    bad = first_bad_label(labels)
    if bad is not None:  # line numbers count the header; numpy skips no other lines but blanks
        raise DataError(f"{path} line {header_lines + bad + 1} has label {labels[bad]}; labels "
                        "must be 0..9")
    spot = first_bad_pixel(pixels)
    if spot is not None:
        row, column = spot
        raise DataError(f"{path} line {header_lines + row + 1}, column {column + 2} has pixel "
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
    path = Path(path)
    with open_zip(path) as archive:
        _check_npz_keys(archive, path)
        arrays = {key: read_npy(archive, path, key) for key in _NPZ_KEYS}
    x_train, y_train = _npz_split(arrays, path, "train")
    x_test, y_test = _npz_split(arrays, path, "test")
    return x_train, y_train, x_test, y_test


@contextlib.contextmanager
def open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an .npz file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression method.
        raise DataError(f"{path} is not a valid .npz archive "
                        f"({' '.join(str(exc).split())})") from exc
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc})") from exc


def _check_npz_keys(archive: zipfile.ZipFile, path: Path) -> None:
    present = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
    missing = [key for key in _NPZ_KEYS if key not in present]
    if missing:
        has = ", ".join(sorted(present)[:8]) or "none"
        raise DataError(f"{path} has no {' or '.join(missing)} array; an MNIST .npz holds "
                        f"x_train, y_train, x_test and y_test (it has: {has})")


def read_npy(archive: zipfile.ZipFile, path: Path, key: str,
              check: Callable[[Path, str, tuple[int, ...], np.dtype], None] | None = None
              ) -> np.ndarray:
    """One member of the archive, checked from its header (by ``check``, MNIST's layout by
    default) before its data is read."""
    with archive.open(f"{key}.npy") as member:
        shape, fortran_order, dtype = _npy_header(member, path, key)
        (check or _check_npy_layout)(path, key, shape, dtype)
        size = math.prod(shape) * dtype.itemsize
        chunks, got = _read_at_most(member, size + 1)
    if got != size:
        problem = "is truncated" if got < size else "has unexpected trailing bytes"
        raise DataError(f"{path} array {key} {problem}: its header declares shape {shape} "
                        f"({size:,} bytes) but {'only ' * (got < size)}{got:,} bytes follow")
    if fortran_order:  # column-major bytes are the row-major bytes of the transpose
        return _join_chunks(chunks, shape[::-1], dtype).T
    return _join_chunks(chunks, shape, dtype)


def _npy_header(member: BinaryIO, path: Path, key: str) -> NpyHeader:
    try:
        return read_npy_header(member)
    except ObjectArrayError:
        raise DataError(f"{path} contains a pickled object array ({key}), which nnscratch never "
                        "loads") from None
    except ValueError as exc:
        raise DataError(f"{path} array {key} is not a valid .npy array "
                        f"({' '.join(str(exc).split())})") from None


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
