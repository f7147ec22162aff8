"""MNIST: finding it, reading it, and checking the images and labels a user hands the model.

Where the data comes from, first match wins (:func:`find_mnist` says which, without reading it):

1. the folder passed explicitly (``load_mnist(FOLDER)``, ``--data FOLDER``): it must hold the data;
2. the folder named by ``NNSCRATCH_DATA``, when set and non-empty: it must hold the data;
3. ``user_cache_dir() / "mnist"``, if it holds all four files (a partial cache is skipped);
4. the small sample bundled with the package (8,000 + 2,000 real MNIST images), so that everything
   runs out of the box; :attr:`MnistData.is_sample` and :attr:`MnistData.source` say so.

A folder holds the data when it has the four original IDX files, each raw or ``.gz``, with
dashes (``train-images-idx3-ubyte``) or the common dotted spelling (``train-images.idx3-ubyte``).
A storage format is one reader plus one row in :data:`_FORMATS`, and a place to look is one
function in :data:`_FALLBACKS`.

Every problem with a file is a :class:`~nnscratch.errors.DataError` whose message is one sentence
naming the file. Sizes declared in a header are checked against the bytes that actually exist
before anything of that size is allocated, so a corrupt or hostile header fails quickly.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping

import numpy as np
from numpy.typing import ArrayLike

from .errors import DataError

__all__ = [
    "MnistData",
    "DataSource",
    "load_mnist",
    "find_mnist",
    "read_idx_images",
    "read_idx_labels",
    "user_cache_dir",
    "as_pixels",
    "as_labels",
    "SAMPLE_HINT",
    "ENV_VAR",
    "CACHE_ENV_VAR",
]

ENV_VAR = "NNSCRATCH_DATA"
CACHE_ENV_VAR = "NNSCRATCH_CACHE"

SAMPLE_HINT = (
    "To use the full MNIST, pass --data FOLDER (or data=FOLDER in Python) or set "
    f"{ENV_VAR}=FOLDER, where FOLDER holds the four MNIST IDX files (raw or .gz)."
)

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

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


@dataclass(frozen=True)
class DataSource:
    """Where :func:`load_mnist` would read the data from, and why that place was chosen."""

    kind: str  # "path" | "env" | "cache" | "sample"
    location: Path  # the folder holding the files
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
    with _open_idx(path) as stream:
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
def _open_idx(path: Path) -> Iterator[BinaryIO]:
    """Open ``path``, turning every way it can fail to be read into a one-sentence DataError."""
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as stream:
            yield stream
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an IDX file") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a valid gzip file ({exc})") from exc
    except EOFError as exc:
        raise DataError(f"{path} is truncated: its gzip stream ends early") from exc
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
        b"\x1f\x8b") else ""


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


def _join_chunks(chunks: list[bytes], shape: tuple[int, ...]) -> np.ndarray:
    # Filling one new array (rather than np.frombuffer on the joined bytes) makes the result
    # owned and writable, with a single copy of the data.
    out = np.empty(shape, dtype=np.uint8)
    flat = out.reshape(-1)  # a view: out is C-contiguous
    start = 0
    for chunk in chunks:
        flat[start:start + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        start += len(chunk)
    return out


def _first_bad_label(labels: np.ndarray) -> int | None:
    """Index of the first label outside 0..9, or None if all are digits."""
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    return int(bad[0]) if bad.size else None


# --- folders and formats --------------------------------------------------------------------

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test

_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class _Format:
    """One way MNIST can be stored in a folder."""

    name: str  # shown in MnistData.source
    find: Callable[[Path], _Match]  # cheap: looks at file names (or first bytes), reads no data
    read: Callable[[Mapping[str, Path]], _Arrays]


@dataclass(frozen=True)
class _Match:
    format: _Format
    files: Mapping[str, Path]  # role -> file found
    missing: tuple[str, ...]  # names of the files not found, for the error message


def _find_idx_files(folder: Path) -> _Match:
    files, missing = {}, []
    for role, name in _IDX_NAMES.items():
        dotted = name.replace("-idx", ".idx")
        spellings = (name, f"{name}.gz", dotted, f"{dotted}.gz")  # raw first: it reads faster
        found = next((folder / s for s in spellings if (folder / s).is_file()), None)
        if found is None:
            missing.append(name)
        else:
            files[role] = found
    return _Match(_IDX_FORMAT, files, tuple(missing))


def _read_idx_files(files: Mapping[str, Path]) -> _Arrays:
    x_train, y_train = _read_idx_split(files["train_images"], files["train_labels"])
    x_test, y_test = _read_idx_split(files["test_images"], files["test_labels"])
    return x_train, y_train, x_test, y_test


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images):,} images but {labels_path} holds "
                        f"{len(labels):,} labels; each image needs exactly one label")
    return images, labels


_IDX_FORMAT = _Format("IDX", _find_idx_files, _read_idx_files)
_FORMATS: tuple[_Format, ...] = (_IDX_FORMAT,)


def _match_folder(folder: Path) -> _Match:
    """The first format complete in ``folder``, else the one missing fewest files."""
    matches = [fmt.find(folder) for fmt in _FORMATS]
    return min(matches, key=lambda match: len(match.missing))  # min keeps the first of ties


def _require_data(folder: Path, subject: str) -> _Match:
    """The complete match in ``folder``; ``subject`` names the folder in the error otherwise."""
    if not folder.exists():
        raise DataError(f"{subject} {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{subject} {folder} is a file, not a folder holding the four MNIST "
                        "IDX files")
    match = _match_folder(folder)
    if match.missing:
        raise DataError(f"{subject} {folder} is missing {_describe_missing(match)}")
    return match


def _describe_missing(match: _Match) -> str:
    names = ", ".join(match.missing)
    if match.files:
        return f"{names} (each raw or .gz)"
    return f"all the MNIST {match.format.name} files ({names}, each raw or .gz)"


# --- where the data comes from --------------------------------------------------------------

_SUBJECTS = {
    "path": "data folder",
    "env": f"{ENV_VAR} folder",
    "cache": "user cache folder",
    "sample": "bundled sample folder",
}


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


def find_mnist(path: str | os.PathLike | None = None) -> DataSource:
    """Where :func:`load_mnist` would read MNIST from right now, and why; reads no data.

    Raises DataError when ``path`` or ``NNSCRATCH_DATA`` names a folder without the data.
    """
    if path is not None:
        if not os.fspath(path):
            raise DataError("the data folder path is empty; give a folder holding the four "
                            "MNIST IDX files")
        folder = Path(path).expanduser()
        _require_data(folder, _SUBJECTS["path"])
        return DataSource("path", folder, "given explicitly")
    for fallback in _FALLBACKS:
        source = fallback()
        if source is not None:
            return source
    raise AssertionError("the bundled sample is the last fallback and always answers")


def _from_env() -> DataSource | None:
    value = os.environ.get(ENV_VAR)
    if not value:
        return None
    folder = Path(value).expanduser()
    _require_data(folder, _SUBJECTS["env"])
    return DataSource("env", folder, f"from {ENV_VAR}")


def _from_cache() -> DataSource | None:
    # A partial cache (an interrupted copy, say) is skipped silently: nobody asked for it.
    folder = user_cache_dir() / "mnist"
    if folder.is_dir() and not _match_folder(folder).missing:
        return DataSource("cache", folder, "found in the user cache")
    return None


def _from_sample() -> DataSource:
    _require_data(_SAMPLE_DIR, _SUBJECTS["sample"])
    return DataSource("sample", _SAMPLE_DIR, "no data configured: using the bundled sample")


_FALLBACKS: tuple[Callable[[], DataSource | None], ...] = (_from_env, _from_cache, _from_sample)


def load_mnist(path: str | os.PathLike | None = None) -> MnistData:
    """Load MNIST from ``path``, else from the first place in the module's resolution order."""
    source = find_mnist(path)
    match = _require_data(source.location, _SUBJECTS[source.kind])
    x_train, y_train, x_test, y_test = match.format.read(match.files)
    description = _describe_source(source, match.format, len(x_train), len(x_test))
    return MnistData(x_train, y_train, x_test, y_test, description, source.kind == "sample")


def _describe_source(source: DataSource, fmt: _Format, n_train: int, n_test: int) -> str:
    counts = f"{n_train:,} training and {n_test:,} test images"
    if source.kind == "sample":
        return (f"The small sample bundled with nnscratch in {source.location} ({counts}), "
                f"not the full MNIST of 60,000 + 10,000. {SAMPLE_HINT}")
    return f"MNIST {fmt.name} files in {source.location} ({source.reason}): {counts}."


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
