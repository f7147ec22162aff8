"""Model files: an ``.npz`` of the parameter arrays plus JSON metadata, never pickled.

A model file is a zip archive of ``.npy`` members: ``W1, b1, W2, b2, ...`` (samples-as-rows, so
``W_k`` has shape ``(sizes[k-1], sizes[k])`` and ``b_k`` has shape ``(sizes[k],)``) and
``__metadata__``, the UTF-8 bytes of a JSON object stored as a 1-D ``uint8`` array. The writer
and the reader run the same checks, so a file this module writes is one it will read back.

Writes are atomic (:func:`nnscratch._fileio.atomic_file`): the archive goes to a temporary file
beside the target, is fsynced and then renamed over it, so a reader sees the old file or the new
one, never half of either. ``atomic_file`` and ``json_text`` are importable from here too.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._fileio import (CHUNK_BYTES, ZIP_SIGNATURES, NpyHeader, NpyVersionError, ObjectArrayError,
                      as_path, atomic_file, check_memory, json_text, open_regular, read_json,
                      read_npy_header)
from ._version import __version__
from .errors import ModelFileError, WriteError
from .settings import DTYPES

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "format_version_for",
    "write_model_file",
    "read_model_file",
    "layer_sizes_from_params",
    "atomic_file",
    "json_text",
]

FORMAT = "nnscratch-mlp"
#: The newest format this nnscratch reads and writes. Version 2 adds ``classes``, the labels of
#: the output units, for models whose classes are not simply 0, 1, 2..., and ``inputs``, how
#: features are prepared (a standardization fitted on the training set); a model without either
#: is still written as version 1, so that every nnscratch reads it.
FORMAT_VERSION = 2

METADATA_KEY = "__metadata__"
MAX_METADATA_BYTES = 1 << 20
ACTIVATIONS = ("relu",)

_NOT_METADATA = f"its {METADATA_KEY} entry is not a 1-D uint8 array"


class _Invalid(Exception):
    """A model that breaks the format; the public functions add the file name and re-raise."""


# --- checks shared by the writer and the reader --------------------------------------------------


def _is_int(value: Any) -> bool:
    # bool is an int subclass, and True is not a layer size.
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_layer_sizes(sizes: Any) -> list[int]:
    valid = isinstance(sizes, list) and len(sizes) >= 2
    if not (valid and all(_is_int(size) and size > 0 for size in sizes)):
        raise _Invalid(f"layer_sizes must be a list of at least 2 positive integers, got {sizes!r}")
    return [int(size) for size in sizes]


def _check_format(metadata: Mapping[str, Any]) -> None:
    name, version = metadata.get("format"), metadata.get("format_version")
    if name != FORMAT:
        raise _Invalid(f"its metadata format is {name!r}, expected {FORMAT!r}")
    if not _is_int(version) or version < 1:
        raise _Invalid(f"its format_version {version!r} is not a positive integer")
    if version > FORMAT_VERSION:
        raise _Invalid(f"it has format_version {version}, newer than the {FORMAT_VERSION} this "
                       f"nnscratch reads, so a newer nnscratch wrote it; upgrade to load it")


def _check_metadata(metadata: Mapping[str, Any]) -> list[int]:
    """The layer sizes of a model described by ``metadata``, once every field is valid."""
    _check_format(metadata)
    sizes = _check_layer_sizes(metadata.get("layer_sizes"))
    if metadata.get("dtype") not in DTYPES:
        raise _Invalid(f"its dtype {metadata.get('dtype')!r} is not one of {', '.join(DTYPES)}")
    if metadata.get("activation") not in ACTIVATIONS:
        raise _Invalid(f"its activation {metadata.get('activation')!r} is not one of "
                       f"{', '.join(ACTIVATIONS)}")
    if "classes" in metadata:
        _check_classes(metadata["classes"], sizes[-1], metadata["format_version"])
    if "inputs" in metadata:
        _check_inputs(metadata["inputs"], sizes[0], metadata["format_version"])
    return sizes


def _check_inputs(inputs: Any, width: int, version: int) -> None:
    if version < 2:
        raise _Invalid(f"it has inputs, which format_version {version} does not have")
    scaling = inputs.get("scaling") if isinstance(inputs, dict) else None
    if scaling == "none" and len(inputs) == 1:
        return
    if scaling != "standardize":
        raise _Invalid("its inputs must be {\"scaling\": \"none\"} or a standardization")
    for key, low in (("mean", -math.inf), ("scale", 0.0)):
        values = inputs.get(key)
        if not (isinstance(values, list) and len(values) == width and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and v > low for v in values)):
            raise _Invalid(f"its inputs' {key} must be {width} finite numbers"
                           + (" above 0" if low == 0 else ""))


def _check_classes(classes: Any, outputs: int, version: int) -> None:
    if version < 2:
        raise _Invalid(f"it has classes, which format_version {version} does not have")
    if not (isinstance(classes, list) and len(classes) == outputs):
        raise _Invalid(f"its classes must be a list of {outputs} labels, one per output")
    kinds = {str if isinstance(c, str) else int if _is_int(c) else None for c in classes}
    if len(kinds) != 1 or None in kinds or len(set(classes)) != len(classes):
        raise _Invalid("its classes must be distinct labels, all strings or all integers")


def format_version_for(metadata: Mapping[str, Any]) -> int:
    """The format version a model with ``metadata`` is written in: the oldest that holds it."""
    return 2 if "classes" in metadata or "inputs" in metadata else 1


def _expected_shapes(sizes: list[int]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), 1):
        shapes[f"W{k}"] = (fan_in, fan_out)
        shapes[f"b{k}"] = (fan_out,)
    return shapes


def _check_names(names: Iterable[str], expected: Mapping[str, Any]) -> None:
    present = set(names)
    missing = [name for name in expected if name not in present]
    unexpected = sorted(str(name) for name in present - set(expected))
    if missing:
        raise _Invalid(f"it is missing the array(s) {', '.join(missing)}")
    if unexpected:
        raise _Invalid(f"it has unexpected array(s) {', '.join(unexpected)}")


def _check_layout(name: str, shape: tuple[int, ...], dtype: np.dtype,
                  expected_shape: tuple[int, ...], expected_dtype: str) -> None:
    if tuple(shape) != expected_shape:
        raise _Invalid(f"array {name} has shape {tuple(shape)}, expected {expected_shape} "
                       f"from layer_sizes")
    if dtype != np.dtype(expected_dtype):
        raise _Invalid(f"array {name} has dtype {dtype}, expected the model's {expected_dtype}")


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise _Invalid(f"array {name} contains {bad} non-finite value(s) (NaN or inf)")


def layer_sizes_from_params(params: Mapping[str, Any]) -> list[int]:
    """The layer sizes implied by the weight shapes of ``params`` (``W1, W2, ...``).

    Only the ``W`` arrays are read; :func:`write_model_file` checks that the biases and the
    chaining of the shapes agree.
    """
    count = 0
    while f"W{count + 1}" in params:
        count += 1
    if count == 0:
        raise ValueError("params has no W1 array, so its layer sizes are unknown")
    shapes = [np.shape(params[f"W{k}"]) for k in range(1, count + 1)]
    if any(len(shape) != 2 for shape in shapes):
        raise ValueError(f"params has weight arrays that are not 2-D: shapes {shapes}")
    return [int(shapes[0][0])] + [int(shape[1]) for shape in shapes]


# --- writing -------------------------------------------------------------------------------------


def _encode_metadata(metadata: Mapping[str, Any]) -> np.ndarray:
    try:
        text = json_text(metadata)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"its metadata is not JSON-serializable ({exc})") from None
    blob = text.encode("utf-8")
    if len(blob) > MAX_METADATA_BYTES:
        raise _Invalid(f"its metadata is {len(blob)} bytes, over the 1 MiB limit")
    return np.frombuffer(blob, dtype=np.uint8)


def _archive_members(params: Mapping[str, Any],
                     metadata: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The validated arrays to store, ``__metadata__`` included."""
    info = {**metadata, "format": FORMAT, "format_version": format_version_for(metadata),
            "nnscratch_version": __version__}
    sizes = _check_metadata(info)
    info["layer_sizes"] = sizes
    expected = _expected_shapes(sizes)
    _check_names(params, expected)
    arrays = {name: np.asarray(params[name]) for name in expected}
    for name, array in arrays.items():
        _check_layout(name, array.shape, array.dtype, expected[name], info["dtype"])
        _check_finite(name, array)
    return {**arrays, METADATA_KEY: _encode_metadata(info)}


def _write_atomically(target: Path, members: Mapping[str, np.ndarray]) -> None:
    with atomic_file(target) as handle:
        # A file object, not a path: np.savez would append ".npz" to a path.
        np.savez(handle, **members)


def write_model_file(path: str | os.PathLike, params: Mapping[str, np.ndarray],
                     metadata: Mapping[str, Any]) -> Path:
    """Write ``params`` and ``metadata`` to the model file at exactly ``path``; return its path.

    ``metadata`` needs ``layer_sizes``, ``dtype`` and ``activation``; ``format``,
    ``format_version`` and ``nnscratch_version`` are added (replacing any given). The model is
    checked as :func:`read_model_file` would check it, and an inconsistent one is refused with
    :class:`~nnscratch.errors.ModelFileError` before anything is written. The file appears
    whole or not at all: on any failure an existing file at ``path`` is left untouched.
    """
    target = _model_path(path, "write")
    try:
        members = _archive_members(params, metadata)
    except _Invalid as problem:
        raise ModelFileError(f"refusing to write model file {target}: {problem}") from None
    if target.is_dir():
        raise ModelFileError(f"cannot write model file {target}: it is a folder")
    if not target.parent.is_dir():
        raise ModelFileError(f"cannot write model file {target}: its folder {target.parent} "
                             f"does not exist")
    try:
        _write_atomically(target, members)
    except WriteError as exc:  # its message is "cannot write PATH: REASON"
        reason = str(exc).removeprefix(f"cannot write {target}: ")
        raise ModelFileError(f"cannot write model file {target}: {reason}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot write model file {target}: "
                             f"{exc.strerror or exc}") from None
    return target


# --- reading -------------------------------------------------------------------------------------


def _model_path(path: Any, doing: str) -> Path:
    """``path`` as a Path, or a ModelFileError when it is not a file name at all."""
    return as_path(path, ModelFileError, f"the model file to {doing}")


def _damage(what: str, exc: BaseException) -> _Invalid:
    """What a zipfile or zlib error met while reading the member ``what`` (``its array W1``)
    says about the file, in words."""
    if isinstance(exc, EOFError):
        return _Invalid(f"{what} is cut short")
    if isinstance(exc, (NotImplementedError, RuntimeError)):
        return _Invalid(f"{what} is compressed or encrypted in a way nnscratch does not read")
    if "CRC" in str(exc):
        return _Invalid(f"{what} is damaged: its data does not match its checksum")
    return _Invalid(f"{what} is damaged: the archive's record of it is corrupt")


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's ``.npy`` members by array name (``W1`` for ``W1.npy``); any other entry
    keeps its whole name, so that it is reported as unexpected."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in members:
            raise _Invalid(f"it holds the entry {info.filename} twice")
        members[name] = info
    return members


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
                   if_objects: str) -> tuple[NpyHeader, BinaryIO]:
    """The ``.npy`` header of a member and the member opened at its first byte of data; an
    object array is refused with the problem ``if_objects``."""
    if not info.filename.endswith(".npy"):
        raise _Invalid(f"its entry {name} is not a NumPy array")
    member = archive.open(info)
    try:
        return _npy_header(member, name, if_objects), member
    except BaseException:
        member.close()
        raise


def _npy_header(member: BinaryIO, name: str, if_objects: str) -> NpyHeader:
    try:
        return read_npy_header(member)  # which keeps numpy's warnings about headers quiet
    except NpyVersionError as exc:
        raise _Invalid(f"its array {name} uses .npy format version {exc.version}, "
                       f"which nnscratch does not read") from None
    except ObjectArrayError:
        raise _Invalid(if_objects) from None
    except ValueError as exc:
        if str(exc).startswith("EOF"):  # numpy's words for a header cut short
            raise _Invalid(f"its array {name} is cut short") from None
        raise _Invalid(f"its entry {name} is not a readable NumPy array: the header that "
                       f"gives its shape and type is damaged") from None


def _read_data(member: BinaryIO, name: str, header: NpyHeader, stored_bytes: int) -> np.ndarray:
    """The array whose ``header`` was just read from ``member``, read to the member's end so
    that the archive's checksum of it is checked."""
    array = np.empty(header.shape, dtype=header.dtype, order="F" if header.fortran_order else "C")
    # A header can promise more data than the member holds; check before reading into it.
    if array.nbytes > stored_bytes:
        raise _Invalid(f"its array {name} is cut short")
    view = memoryview(array.reshape(-1, order="A").view(np.uint8))
    got = 0
    while got < len(view):
        count = member.readinto(view[got:got + CHUNK_BYTES])
        if not count:
            raise _Invalid(f"its array {name} is cut short")
        got += count
    if member.read(1):
        raise _Invalid(f"its entry {name} holds more data than its array")
    return np.ascontiguousarray(array)


def _read_member(archive: zipfile.ZipFile, members: Mapping[str, zipfile.ZipInfo], name: str,
                 shape: tuple[int, ...], dtype: str) -> np.ndarray:
    pickled = f"it contains a pickled object array {name}, which nnscratch never loads"
    try:
        header, member = _member_header(archive, members[name], name, pickled)
        with member:
            _check_layout(name, header.shape, header.dtype, shape, dtype)
            array = _read_data(member, name, header, members[name].file_size)
    except _ARCHIVE_ERRORS as exc:
        raise _damage(f"its array {name}", exc) from None
    _check_finite(name, array)
    return array


def _decode_metadata(blob: bytes) -> dict[str, Any]:
    try:
        value = read_json(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Invalid("its metadata is not UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise _Invalid(f"its metadata is a JSON {type(value).__name__}, not an object")
    return value


def _read_metadata(archive: zipfile.ZipFile,
                   members: Mapping[str, zipfile.ZipInfo]) -> dict[str, Any]:
    if METADATA_KEY not in members:
        raise _Invalid(f"it has no {METADATA_KEY} entry, so nnscratch did not write it")
    try:
        header, member = _member_header(archive, members[METADATA_KEY], METADATA_KEY,
                                        _NOT_METADATA)
        with member:
            if header.dtype != np.uint8 or len(header.shape) != 1:
                raise _Invalid(_NOT_METADATA)
            if header.shape[0] > MAX_METADATA_BYTES:
                raise _Invalid(f"its metadata is {header.shape[0]} bytes, over the 1 MiB limit")
            blob = _read_data(member, METADATA_KEY, header, members[METADATA_KEY].file_size)
    except _ARCHIVE_ERRORS as exc:
        raise _damage("its metadata", exc) from None
    return _decode_metadata(blob.tobytes())


def _check_declared_memory(sizes: list[int], dtype: str) -> None:
    """Refuse, before reading any array, layer sizes whose arrays this machine cannot hold."""
    values = sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(sizes, sizes[1:]))
    shown = "-".join(map(str, sizes))
    try:
        check_memory(values * np.dtype(dtype).itemsize, f"its layer sizes {shown}",
                     ModelFileError)
    except ModelFileError as exc:
        raise _Invalid(str(exc)) from None


def _read_archive(archive: zipfile.ZipFile) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    members = _members(archive)
    metadata = _read_metadata(archive, members)
    sizes = _check_metadata(metadata)
    expected = _expected_shapes(sizes)
    _check_names((name for name in members if name != METADATA_KEY), expected)
    _check_declared_memory(sizes, metadata["dtype"])
    params = {name: _read_member(archive, members, name, shape, metadata["dtype"])
              for name, shape in expected.items()}
    return params, metadata


def _open_archive(handle: BinaryIO, source: Path) -> zipfile.ZipFile:
    if os.fstat(handle.fileno()).st_size == 0:
        raise ModelFileError(f"model file {source} is empty")
    if handle.read(4) not in ZIP_SIGNATURES:
        raise ModelFileError(f"model file {source} is not an .npz archive (no zip signature)")
    handle.seek(0)
    try:
        return zipfile.ZipFile(handle)
    except _ARCHIVE_ERRORS:
        raise ModelFileError(f"model file {source} is corrupt or truncated: its zip archive's "
                             f"table of contents cannot be read") from None


# What reading a damaged zip archive can raise, from zipfile, zlib or the file underneath (a
# forged offset makes a seek fail with EINVAL).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                   RuntimeError, ValueError)


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The parameter arrays and metadata stored in the model file at ``path``.

    The file is never unpickled, and is checked whole: format and version, layer sizes (and
    that this machine has the memory for the arrays they declare, before any is read), dtype,
    activation, the names, shapes and dtypes of the arrays, the archive's checksums and finite
    values. Any problem raises :class:`~nnscratch.errors.ModelFileError`, one sentence naming
    the file; a folder, a FIFO or a device is refused before anything waits on it. The arrays
    returned are fresh, writable and C-contiguous.
    """
    source = _model_path(path, "read")
    with open_regular(source, ModelFileError, "a model file") as handle:
        with _open_archive(handle, source) as archive:
            try:
                return _read_archive(archive)
            except _Invalid as problem:
                raise ModelFileError(f"model file {source} cannot be loaded: "
                                     f"{problem}") from None
