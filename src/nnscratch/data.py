"""MNIST: finding it, reading it, and checking the images and labels a user hands the model.

Where the data comes from, first match wins (:func:`find_mnist` says which, and
:func:`explain_mnist` why, without reading the data):

1. the path passed explicitly (``load_mnist(PATH)``, ``--data PATH``): it must hold the data;
2. the path named by ``NNSCRATCH_DATA``, when set and non-empty: it must hold the data;
3. ``user_cache_dir() / "mnist"``, if it holds a complete data set (a partial cache is skipped).
   Files that nnscratch downloaded there are checked against their pinned SHA-256 on every use
   (cheaply: see :mod:`nnscratch.download`); a file that fails is not used, and the user is told;
4. a verified download into that cache, only where allowed: ``load_mnist(download=True)`` or
   ``NNSCRATCH_DOWNLOAD=1``, so that nothing ever waits on the network unasked;
5. the small sample bundled with the package (8,000 + 2,000 real MNIST images), so that everything
   runs out of the box; :attr:`MnistData.is_sample` and :attr:`MnistData.source` say so.

A path names a folder or a file. A folder holds the data when it has the four original IDX files
(each raw or ``.gz``, with dashes, ``train-images-idx3-ubyte``, or dots,
``train-images.idx3-ubyte``), or ``mnist_train.csv`` and ``mnist_test.csv``, or Kaggle's
``train.csv``, or ``mnist.npz``. A file's format is recognised from its content, not its name:
an ``.npz`` archive (``x_train, y_train, x_test, y_test``), a CSV with the label first (with or
without a header row, optionally gzip-compressed), or one of the four IDX files (its folder is
read). Data without a test set (a single CSV, such as Kaggle's) gets one held out: a seeded split,
stratified by digit, of one image in seven, which the source sentence reports.

A storage format is one reader plus one row in :data:`_FORMATS`, and a place to look is one
function in :data:`_FALLBACKS`.

Every problem with a file is a :class:`~nnscratch.errors.DataError` whose message is one sentence
naming the file. Sizes declared in a header are checked against the bytes that actually exist
before anything of that size is allocated, so a corrupt or hostile header fails quickly, and an
``.npz`` is never unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import math
import os
import re
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Callable, Iterator, Mapping, TextIO

import numpy as np
from numpy.typing import ArrayLike

from .download import download_mnist, has_record, verify_cached
from .errors import DataError

__all__ = [
    "MnistData",
    "DataSource",
    "load_mnist",
    "find_mnist",
    "explain_mnist",
    "read_idx_images",
    "read_idx_labels",
    "read_csv",
    "read_npz",
    "user_cache_dir",
    "as_pixels",
    "as_labels",
    "class_quotas",
    "stratified_indices",
    "SAMPLE_HINT",
    "ENV_VAR",
    "CACHE_ENV_VAR",
    "DOWNLOAD_ENV_VAR",
    "HOLDOUT_SEED",
]

ENV_VAR = "NNSCRATCH_DATA"
CACHE_ENV_VAR = "NNSCRATCH_CACHE"
DOWNLOAD_ENV_VAR = "NNSCRATCH_DOWNLOAD"

SAMPLE_HINT = (
    "To use the full MNIST, pass --data PATH (or data=PATH in Python) or set "
    f"{ENV_VAR}=PATH, where PATH is a folder with the four MNIST IDX files (raw or .gz) or a "
    "CSV or .npz file; or run 'nnscratch data download' (or set "
    f"{DOWNLOAD_ENV_VAR}=1) to download it into the user cache."
)

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

# Data without a test set gets one image in HOLDOUT_DENOMINATOR held out, MNIST's own ratio
# (10,000 of 70,000): Kaggle's 42,000 training images become 36,000 + 6,000.
HOLDOUT_DENOMINATOR = 7
HOLDOUT_SEED = 0

# Decompressed bytes are read in pieces this big, so memory follows the data that really exists,
# never the size a header claims.
_CHUNK = 1 << 20

_SAMPLE_DIR = Path(__file__).parent / "sample"


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class MnistData:
    """A training and a test set: uint8 pixels as (n, 784) rows, int64 labels 0-9.

    The arrays are C-contiguous, writable and owned by this object (nothing else holds them).
    """

    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    source: str
    is_sample: bool
    #: The file or folder the data was read from (``None`` for the bundled sample and for data
    #: made from arrays): a run folder records it so that ``--resume`` finds the same data.
    location: Path | None = None


@dataclass(frozen=True)
class DataSource:
    """Where :func:`load_mnist` would read the data from, and why that place was chosen."""

    kind: str  # "path" | "env" | "cache" | "download" | "sample"
    location: Path  # the folder or file holding the data (for "download": the cache folder)
    reason: str


# --- reading IDX files ----------------------------------------------------------------------


@dataclass(frozen=True)
class _IdxKind:
    what: str  # "image" or "label", for messages
    magic: int  # data type 0x08 (unsigned byte) in the third byte, dimension count in the fourth
    item_dims: tuple[int, ...]  # the header's dimensions after the count
    row: tuple[int, ...]  # the shape of one returned row


_IMAGES = _IdxKind("image", 0x00000803, (IMAGE_SIDE, IMAGE_SIDE), (PIXELS,))
_LABELS = _IdxKind("label", 0x00000801, (), ())


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX image file (raw, or gzip if its name ends in ``.gz``) as uint8 (n, 784) rows."""
    return _read_idx(Path(path), _IMAGES)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX label file (raw, or gzip if its name ends in ``.gz``) as int64 (n,) digits."""
    path = Path(path)
    labels = _read_idx(path, _LABELS)
    bad = _first_bad_label(labels)
    if bad is not None:
        raise DataError(f"{path} has label {labels[bad]} at index {bad}; labels must be 0..9")
    return labels.astype(np.int64)


def _read_idx(path: Path, kind: _IdxKind) -> np.ndarray:
    with _open_data(path, "an IDX", compressed=path.name.endswith(".gz")) as stream:
        count = _read_header(stream, path, kind)
        shape = (count, *kind.row)
        size = count * int(np.prod(kind.row, dtype=np.int64))
        raw_size = _raw_payload_size(stream)
        if raw_size is not None:  # a plain file: its size settles the question before reading
            _check_payload_size(path, kind, count, size, raw_size, exact=True)
        chunks, got = _read_at_most(stream, size + 1)
        _check_payload_size(path, kind, count, size, got, exact=raw_size is not None)
        return _join_chunks(chunks, shape)


@contextlib.contextmanager
def _open_data(path: Path, what: str, compressed: bool, text: bool = False) -> Iterator[IO]:
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
        _GZIP_MAGIC) else ""


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


def _read_at_most(stream: BinaryIO, limit: int) -> tuple[list[bytes], int]:
    """Read up to ``limit`` bytes in bounded chunks; return the chunks and their total length."""
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = stream.read(min(_CHUNK, limit - got))
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


def _first_bad_label(labels: np.ndarray) -> int | None:
    """Index of the first label outside 0..9, or None if all are digits."""
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    return int(bad[0]) if bad.size else None


def _first_bad_pixel(pixels: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first value outside 0..255 in 2-D ``pixels``, or None."""
    if pixels.dtype == np.uint8:
        return None
    bad = np.argwhere((pixels < 0) | (pixels > 255))
    return (int(bad[0, 0]), int(bad[0, 1])) if len(bad) else None


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
    compressed = _is_gzip(path)
    with _open_data(path, "a CSV", compressed, text=True) as stream:
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
            raise  # _open_data reports it
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
    with _open_data(path, "a CSV", compressed, text=True) as stream:
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
    bad = _first_bad_label(labels)
    if bad is not None:  # line numbers count the header; numpy skips no other lines but blanks
        raise DataError(f"{path} line {header_lines + bad + 1} has label {labels[bad]}; labels "
                        "must be 0..9")
    spot = _first_bad_pixel(pixels)
    if spot is not None:
        row, column = spot
        raise DataError(f"{path} line {header_lines + row + 1}, column {column + 2} has pixel "
                        f"{pixels[row, column]}; pixels must be 0..255")
    return pixels.astype(np.uint8, order="C"), labels.astype(np.int64)


# --- reading .npz archives --------------------------------------------------------------------

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_NPY_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read ``x_train, y_train, x_test, y_test`` from an ``.npz`` archive (as written by
    ``numpy.savez``): images (n, 28, 28) or (n, 784) of integers 0-255, labels (n,) of integers
    0-9. Returns uint8 (n, 784) images and int64 labels.

    Nothing is unpickled, and each array's bytes are read in bounded pieces, so a header that
    promises more data than the archive holds fails before anything of that size is allocated.
    """
    path = Path(path)
    with _open_zip(path) as archive:
        _check_npz_keys(archive, path)
        arrays = {key: _read_npy(archive, path, key) for key in _NPZ_KEYS}
    x_train, y_train = _npz_split(arrays, path, "train")
    x_test, y_test = _npz_split(arrays, path, "test")
    return x_train, y_train, x_test, y_test


@contextlib.contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
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


def _read_npy(archive: zipfile.ZipFile, path: Path, key: str) -> np.ndarray:
    """One member of the archive, checked from its header before its data is read."""
    with archive.open(f"{key}.npy") as member:
        shape, fortran_order, dtype = _npy_header(member, path, key)
        _check_npy_layout(path, key, shape, dtype)
        size = math.prod(shape) * dtype.itemsize
        chunks, got = _read_at_most(member, size + 1)
    if got != size:
        problem = "is truncated" if got < size else "has unexpected trailing bytes"
        raise DataError(f"{path} array {key} {problem}: its header declares shape {shape} "
                        f"({size:,} bytes) but {'only ' * (got < size)}{got:,} bytes follow")
    if fortran_order:  # column-major bytes are the row-major bytes of the transpose
        return _join_chunks(chunks, shape[::-1], dtype).T
    return _join_chunks(chunks, shape, dtype)


def _npy_header(member: BinaryIO, path: Path, key: str) -> tuple[tuple[int, ...], bool,
                                                                 np.dtype]:
    try:
        version = np.lib.format.read_magic(member)
        if version not in _NPY_HEADER_READERS:
            raise ValueError(f".npy format version {version} is not supported")
        shape, fortran_order, dtype = _NPY_HEADER_READERS[version](member)
    except ValueError as exc:
        raise DataError(f"{path} array {key} is not a valid .npy array "
                        f"({' '.join(str(exc).split())})") from None
    return tuple(shape), fortran_order, dtype


def _check_npy_layout(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    # Refuse object arrays from the header, before numpy gets anywhere near unpickling them.
    if dtype.hasobject:
        raise DataError(f"{path} contains a pickled object array ({key}), which nnscratch never "
                        "loads")
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
    _require_one_label_each(len(images), len(labels), f"{path} array x_{part}",
                            f"array y_{part}")
    pixels = images.reshape(len(images), PIXELS)
    spot = _first_bad_pixel(pixels)
    if spot is not None:
        raise DataError(f"{path} array x_{part} has pixel {pixels[spot]} in image {spot[0]}; "
                        "pixels must be 0..255")
    bad = _first_bad_label(labels)
    if bad is not None:
        raise DataError(f"{path} array y_{part} has label {labels[bad]} at index {bad}; labels "
                        "must be 0..9")
    return pixels.astype(np.uint8, order="C"), labels.astype(np.int64)


def _require_one_label_each(n_images: int, n_labels: int, images: str, labels: str) -> None:
    if n_images != n_labels:
        raise DataError(f"{images} holds {n_images:,} images but {labels} holds {n_labels:,} "
                        "labels; each image needs exactly one label")


# --- recognising a file's format from its content ----------------------------------------------

_HEAD_BYTES = 4096
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive's end


def _read_head(path: Path, compressed: bool = False) -> bytes:
    with _open_data(path, "a data", compressed) as stream:
        return stream.read(_HEAD_BYTES)


def _is_gzip(path: Path) -> bool:
    return _read_head(path)[:2] == _GZIP_MAGIC


def _file_kind(path: Path) -> str:
    """``"idx"``, ``"csv"`` or ``"npz"``: what the file at ``path`` holds, from its first bytes."""
    head = _read_head(path)
    compressed = head[:2] == _GZIP_MAGIC
    if compressed:
        head = _read_head(path, compressed=True)
    if not head:
        raise DataError(f"{path} is empty")
    if head[:4] in _ZIP_MAGICS and not compressed:
        return "npz"
    if int.from_bytes(head[:4], "big") in (_IMAGES.magic, _LABELS.magic):
        return "idx"
    if _looks_like_csv(head):
        return "csv"
    raise DataError(f"{path} is in no format nnscratch reads: it is neither MNIST IDX, nor CSV "
                    "(a label, then 784 pixels per row), nor an .npz archive")


def _looks_like_csv(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut in two by the end of the head
            return False
        text = head[:exc.start].decode("utf-8")
    text = text.lstrip("\ufeff")
    first_line = text.partition("\n")[0]
    return "," in first_line and all(ch.isprintable() or ch in "\r\n\t" for ch in text)


# --- folders and formats --------------------------------------------------------------------

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
# x_train, y_train, x_test, y_test; the test pair is None for data that comes without one.

_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class _Format:
    """One way MNIST can be stored."""

    name: str  # shown in MnistData.source
    names: Mapping[str, tuple[str, ...]]  # role -> file names looked for in a folder, best first
    read: Callable[[Mapping[str, Path]], _Arrays]


@dataclass(frozen=True)
class _Match:
    format: _Format
    location: Path  # the folder, or the file, that holds the data
    files: Mapping[str, Path]  # role -> file found
    missing: tuple[str, ...]  # names of the files not found, for the error message


def _idx_spellings(name: str) -> tuple[str, ...]:
    dotted = name.replace("-idx", ".idx")
    return (name, f"{name}.gz", dotted, f"{dotted}.gz")  # raw first: it reads faster


def _read_idx_files(files: Mapping[str, Path]) -> _Arrays:
    x_train, y_train = _read_idx_split(files["train_images"], files["train_labels"])
    x_test, y_test = _read_idx_split(files["test_images"], files["test_labels"])
    return x_train, y_train, x_test, y_test


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
    _require_one_label_each(len(images), len(labels), str(images_path), str(labels_path))
    return images, labels


def _read_csv_pair(files: Mapping[str, Path]) -> _Arrays:
    return (*read_csv(files["train"]), *read_csv(files["test"]))


def _read_training_csv(files: Mapping[str, Path]) -> _Arrays:
    return (*read_csv(files["train"]), None, None)


def _read_npz_file(files: Mapping[str, Path]) -> _Arrays:
    return read_npz(files["npz"])


_IDX_FORMAT = _Format("IDX", {role: _idx_spellings(name) for role, name in _IDX_NAMES.items()},
                      _read_idx_files)
_CSV_PAIR_FORMAT = _Format("CSV", {"train": ("mnist_train.csv", "mnist_train.csv.gz"),
                                   "test": ("mnist_test.csv", "mnist_test.csv.gz")},
                           _read_csv_pair)
_KAGGLE_FORMAT = _Format("CSV (Kaggle's train.csv)", {"train": ("train.csv", "train.csv.gz")},
                         _read_training_csv)
_NPZ_FORMAT = _Format("npz", {"npz": ("mnist.npz",)}, _read_npz_file)
_FORMATS: tuple[_Format, ...] = (_IDX_FORMAT, _CSV_PAIR_FORMAT, _KAGGLE_FORMAT, _NPZ_FORMAT)
# A file given directly is read by the format its content shows (an IDX file: by its folder).
_FILE_FORMATS = {"csv": _Format("CSV", {"train": ()}, _read_training_csv), "npz": _NPZ_FORMAT}


def _find_files(fmt: _Format, folder: Path) -> _Match:
    files, missing = {}, []
    for role, spellings in fmt.names.items():
        found = next((folder / s for s in spellings if (folder / s).is_file()), None)
        if found is None:
            missing.append(spellings[0])
        else:
            files[role] = found
    return _Match(fmt, folder, files, tuple(missing))


def _match_folder(folder: Path) -> _Match:
    """The first format complete in ``folder``, else the partly present one missing fewest
    files, else (an empty folder) the IDX format, the one the error message describes."""
    matches = [_find_files(fmt, folder) for fmt in _FORMATS]
    complete = [match for match in matches if not match.missing]
    if complete:
        return complete[0]
    partial = [match for match in matches if match.files]
    return min(partial, key=lambda match: len(match.missing)) if partial else matches[0]


def _match_file(path: Path) -> _Match:
    kind = _file_kind(path)
    if kind != "idx":
        fmt = _FILE_FORMATS[kind]
        return _Match(fmt, path, {next(iter(fmt.names)): path}, ())
    match = _find_files(_IDX_FORMAT, path.parent)
    if match.missing:
        raise DataError(f"{path} is an MNIST IDX file, but its folder {path.parent} is missing "
                        f"{_describe_missing(match)}")
    if path.resolve() not in {found.resolve() for found in match.files.values()}:
        raise DataError(f"{path} is an IDX file but not one of the four MNIST files in its "
                        f"folder ({', '.join(_IDX_NAMES.values())}, each raw or .gz)")
    return match


def _require_data(location: Path, owner: str) -> _Match:
    """The complete match at ``location`` (a folder or a file); ``owner`` says whose path it is
    in the error otherwise."""
    if not location.exists():
        raise DataError(f"{owner} path {location} does not exist")
    if location.is_file():
        return _match_file(location)
    if not location.is_dir():
        raise DataError(f"{owner} path {location} is neither a file nor a folder")
    match = _match_folder(location)
    if match.missing:
        raise DataError(f"{owner} folder {location} is missing {_describe_missing(match)}")
    return match


def _describe_missing(match: _Match) -> str:
    names = ", ".join(match.missing)
    if match.files:
        return f"{names} (each raw or .gz)"
    others = ", ".join(" with ".join(spellings[0] for spellings in fmt.names.values())
                       for fmt in _FORMATS if fmt is not match.format)
    return (f"all the MNIST {match.format.name} files ({names}, each raw or .gz) and holds "
            f"no other format nnscratch reads ({others})")


# --- a test set for data that comes without one ------------------------------------------------


def _hold_out_test(x: np.ndarray, y: np.ndarray, location: Path) -> tuple[_Arrays, str]:
    """Split a seeded, stratified test set off training-only data; returns the four arrays and
    the sentence fragment that reports it."""
    n = len(y)
    if n < 2:
        raise DataError(f"{location} holds only {n} image and no test set; nnscratch needs at "
                        "least 2 images to hold one out for testing")
    n_test = max(1, n // HOLDOUT_DENOMINATOR)
    chosen = stratified_indices(y, n_test, np.random.default_rng(HOLDOUT_SEED))
    test = np.zeros(n, dtype=bool)
    test[chosen] = True
    note = (f"; it has no test set, so {n_test:,} of its {n:,} images (1 in "
            f"{HOLDOUT_DENOMINATOR}, stratified by digit, seed {HOLDOUT_SEED}) were held out as "
            "the test set")
    return (x[~test], y[~test], x[test], y[test]), note


def class_quotas(labels: np.ndarray, k: int) -> np.ndarray:
    """How many images of each digit to keep: proportional shares of ``k`` summing to ``k``."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.int64)
    # Largest remainders, in integers, so that no float rounding can change the split.
    quotas, remainders = np.divmod(counts * k, len(labels))
    short = k - int(quotas.sum())
    quotas[np.argsort(-remainders, kind="stable")[:short]] += 1
    return quotas


def stratified_indices(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``k`` images in which each digit keeps its share of ``labels``: the
    held-out test set here, and the bundled sample (tools/make_sample.py)."""
    if not 0 < k <= len(labels):
        raise ValueError(f"cannot choose {k} images from a split of {len(labels)}")
    picked = [rng.permutation(np.flatnonzero(labels == digit))[:quota]
              for digit, quota in enumerate(class_quotas(labels, k))]
    return np.sort(np.concatenate(picked))


# --- where the data comes from --------------------------------------------------------------

_OWNERS = {  # whose path it is, for error messages
    "path": "data",
    "env": ENV_VAR,
    "cache": "user cache",
    "download": "user cache",
    "sample": "bundled sample",
}
_TRUE_WORDS, _FALSE_WORDS = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class _Skip:
    """A place that does not provide the data, and why; ``notable`` when the user should hear
    it even though a later place provides the data."""

    why: str
    notable: bool = False


def user_cache_dir() -> Path:
    """nnscratch's cache folder: ``$NNSCRATCH_CACHE``, else ``$XDG_CACHE_HOME/nnscratch``, else
    ``~/.cache/nnscratch``. MNIST found in its ``mnist`` subfolder is used automatically."""
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        return Path(xdg) / "nnscratch"
    return Path.home() / ".cache" / "nnscratch"


def find_mnist(path: str | os.PathLike | None = None, *,
               download: bool | None = None) -> DataSource:
    """Where :func:`load_mnist` would read MNIST from right now, and why.

    Reads no data beyond the first bytes of a file given as ``path`` and, for a file in the
    user cache whose size or modification time changed since it was verified, its checksum.
    ``download`` is as for :func:`load_mnist`. Raises DataError when ``path`` or
    ``NNSCRATCH_DATA`` names a place without the data.
    """
    if path is not None:
        return _from_path(path)
    allowed = _download_permission(download)
    notes = []
    for _place, fallback in _FALLBACKS:
        found = fallback(allowed)
        if isinstance(found, DataSource):
            reason = "; ".join([found.reason, *notes])
            return dataclasses.replace(found, reason=reason)
        if found.notable:
            notes.append(found.why)
    raise AssertionError("the bundled sample is the last fallback and always answers")


def explain_mnist(path: str | os.PathLike | None = None, *,
                  download: bool | None = None) -> list[tuple[str, str]]:
    """Each place :func:`find_mnist` looks at, in order, with what it found there: pairs of
    (place, finding), the one that provides the data marked "used"."""
    chosen = find_mnist(path, download=download)
    given = "none given" if path is None else f"used: {chosen.location}"
    rows = [("explicit path", given)]
    allowed = _download_permission(download)
    for place, fallback in _FALLBACKS:
        try:
            found = fallback(allowed)
        except DataError as exc:  # a place that find_mnist did not need to look at
            rows.append((place, f"unusable: {exc}"))
            continue
        if isinstance(found, _Skip):
            rows.append((place, found.why))
            continue
        used = path is None and found.kind == chosen.kind
        status = "used" if used else "not needed"
        rows.append((place, f"{status}: {found.location} ({found.reason})"))
    return rows


def _from_path(path: str | os.PathLike) -> DataSource:
    if not os.fspath(path):
        raise DataError("the data path is empty; give a folder or file holding MNIST")
    match = _require_data(Path(path).expanduser(), _OWNERS["path"])
    return DataSource("path", match.location, "given explicitly")


def _download_permission(download: bool | None) -> str | None:
    """What allows downloading (for the source sentence), or None if it is not allowed."""
    if download is not None:
        return "download=True" if download else None
    value = os.environ.get(DOWNLOAD_ENV_VAR, "")
    if value.strip().lower() in _TRUE_WORDS:
        return f"{DOWNLOAD_ENV_VAR}={value}"
    if value.strip().lower() in _FALSE_WORDS:
        return None
    raise DataError(f"{DOWNLOAD_ENV_VAR} is {value[:40]!r}; set it to 1 to allow downloading "
                    "MNIST into the user cache, or to 0 (or unset it) to forbid it")


def _from_env(_download: str | None) -> DataSource | _Skip:
    value = os.environ.get(ENV_VAR)
    if not value:
        return _Skip("not set")
    match = _require_data(Path(value).expanduser(), _OWNERS["env"])
    return DataSource("env", match.location, f"from {ENV_VAR}")


def _from_cache(_download: str | None) -> DataSource | _Skip:
    # A partial cache (an interrupted copy, say) is skipped silently: nobody asked for it.
    folder = user_cache_dir() / "mnist"
    match = _match_folder(folder) if folder.is_dir() else None
    if match is None or match.missing:
        return _Skip(f"{folder} holds no complete MNIST")
    if not has_record(folder):  # filled by hand, not by nnscratch: nothing to verify against
        return DataSource("cache", folder, "found in the user cache")
    problem = verify_cached(folder, match.files.values())
    if problem:
        return _Skip(f"the user cache was not used: {problem}", notable=True)
    return DataSource("cache", folder, "found in the user cache, verified against pinned "
                                       "SHA-256 checksums")


def _from_download(download: str | None) -> DataSource | _Skip:
    if download is None:
        return _Skip(f"off: run 'nnscratch data download', or set {DOWNLOAD_ENV_VAR}=1 to "
                     "download automatically")
    return DataSource("download", user_cache_dir() / "mnist",
                      f"not in the user cache, and {download} allows downloading it")


def _from_sample(_download: str | None) -> DataSource:
    _require_data(_SAMPLE_DIR, _OWNERS["sample"])
    return DataSource("sample", _SAMPLE_DIR, "no data was configured")


_FALLBACKS: tuple[tuple[str, Callable[[str | None], DataSource | _Skip]], ...] = (
    (ENV_VAR, _from_env),
    ("user cache", _from_cache),
    ("download", _from_download),
    ("bundled sample", _from_sample),
)


def load_mnist(path: str | os.PathLike | None = None, *,
               download: bool | None = None) -> MnistData:
    """Load MNIST from ``path`` (a folder or a file), else from the first place in the module's
    resolution order.

    ``download``: whether the full MNIST may be downloaded into the user cache when no earlier
    place holds it; None (the default) allows it only if ``NNSCRATCH_DOWNLOAD=1``.
    """
    source = find_mnist(path, download=download)
    if source.kind == "download":
        download_mnist(source.location)
    match = _require_data(source.location, _OWNERS[source.kind])
    x_train, y_train, x_test, y_test = match.format.read(match.files)
    note = ""
    if x_test is None or y_test is None:
        (x_train, y_train, x_test, y_test), note = _hold_out_test(x_train, y_train,
                                                                  match.location)
    description = _describe_source(source, match, len(x_train), len(x_test), note)
    is_sample = source.kind == "sample"
    return MnistData(x_train, y_train, x_test, y_test, description, is_sample,
                     None if is_sample else source.location.resolve())


def _describe_source(source: DataSource, match: _Match, n_train: int, n_test: int,
                     note: str) -> str:
    counts = f"{n_train:,} training and {n_test:,} test images"
    if source.kind == "sample":
        return (f"The small sample bundled with nnscratch in {source.location} ({counts}), "
                f"not the full MNIST of 60,000 + 10,000 ({source.reason}). {SAMPLE_HINT}")
    what = "file" if match.location.is_file() else "files"
    reason = "downloaded and verified" if source.kind == "download" else source.reason
    return (f"MNIST {match.format.name} {what} in {match.location} ({reason}): "
            f"{counts}{note}.")


# --- user-given images and labels -----------------------------------------------------------

# Float pixels by byte size: float16 is too coarse to compute in, so it becomes float32.
_FLOAT_RESULT = {2: np.dtype(np.float32), 4: np.dtype(np.float32), 8: np.dtype(np.float64)}


def as_pixels(x: ArrayLike) -> np.ndarray:
    """Check images a user gives the model and return them as C-contiguous (n, 784) rows.

    Accepts (n, 784), (n, 28, 28), or one image as (784,) or (28, 28). uint8 is returned as is
    (possibly sharing memory with ``x``); other integers must be 0..255 and become uint8; floats
    count as already scaled, must be finite and in [0, 1], and become float32 (float64 stays).
    """
    arr = _as_array(x, "images")
    is_float = arr.dtype.kind == "f" and arr.dtype.itemsize in _FLOAT_RESULT
    if arr.dtype.kind not in "iu" and not is_float:
        raise DataError("images must be uint8, integers in 0..255 or floats in [0, 1]; got "
                        f"dtype {arr.dtype}")
    rows = _pixel_rows(arr)
    if arr.dtype == np.uint8:
        return rows
    if arr.dtype.kind in "iu":
        return _integer_pixels(rows)
    return _float_pixels(rows)


def _as_array(x: ArrayLike, what: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, unconvertible objects
        raise DataError(f"{what} must be a rectangular array of numbers ({exc})") from exc


def _pixel_rows(arr: np.ndarray) -> np.ndarray:
    shape = arr.shape
    single = shape in ((PIXELS,), (IMAGE_SIDE, IMAGE_SIDE))
    batch = (arr.ndim == 2 and shape[1] == PIXELS) or (
        arr.ndim == 3 and shape[1:] == (IMAGE_SIDE, IMAGE_SIDE))
    if not (single or batch):
        raise DataError(f"images must have 784 pixels per row (or be 28x28); got shape {shape}")
    n = 1 if single else shape[0]
    if n == 0:
        raise DataError(f"images must hold at least one image; got shape {shape}")
    return np.ascontiguousarray(arr.reshape(n, PIXELS))


def _integer_pixels(rows: np.ndarray) -> np.ndarray:
    low, high = rows.min(), rows.max()
    if low < 0 or high > 255:
        raise DataError(f"integer images must have pixel values in 0..255; got values from "
                        f"{low} to {high}")
    return rows.astype(np.uint8)


def _float_pixels(rows: np.ndarray) -> np.ndarray:
    finite = np.isfinite(rows)
    if not finite.all():
        raise DataError(f"float images must be finite; got {np.count_nonzero(~finite)} NaN or "
                        "infinite values")
    low, high = rows.min(), rows.max()
    if low < 0 or high > 1:
        raise DataError(f"float images must be scaled to [0, 1] (divide 0..255 pixels by 255); "
                        f"got values from {low:g} to {high:g}")
    return rows.astype(_FLOAT_RESULT[rows.dtype.itemsize], copy=False)


def as_labels(y: ArrayLike, n: int) -> np.ndarray:
    """Check labels a user gives the model: integers 0..9, shape (n,); returned as new int64."""
    arr = _as_array(y, "labels")
    if arr.dtype.kind not in "iu":
        raise DataError(f"labels must be integers 0..9; got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise DataError(f"labels must have shape ({n},), one per image; got shape {arr.shape}")
    bad = _first_bad_label(arr)
    if bad is not None:
        raise DataError(f"labels must be digits 0..9; got {arr[bad]} at index {bad}")
    return arr.astype(np.int64)
