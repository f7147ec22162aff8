"""Fuzzing the readers of every file nnscratch reads: the same mutations for every file kind.

A reader given a mutated file must either read exactly what it read from the original, or fail
with the project's own error (an :class:`~nnscratch.errors.NNScratchError`) in one line; any
other exception or a message over several lines is a defect. "Exactly what it read" is required
where the file's own checksums cover the change (a byte of a gzip stream or a zip archive
flipped, cut, deleted or inserted); a change no checksum covers (a pixel of a raw IDX file, a
weight in a zip member rewritten with its CRC) may read as a different result, which must still
be one the reader could have returned for a well-formed file (the ``valid`` check).

The mutations, drawn by hypothesis from the original bytes:

- byte flips (one to four bytes replaced), truncation at any length, a run of bytes deleted
  or inserted;
- inside a gzip stream: the same flips and cuts applied to the *decompressed* bytes, then
  compressed again, so that the gzip checksum is right and the reader's own checks are tested;
- inside a zip archive (.npz): a member removed, duplicated, renamed, replaced by random bytes,
  an extra member added, or one member's bytes flipped or cut and written back with a correct
  CRC, so that the reader's own checks of each ``.npy`` member are tested.

``NNSCRATCH_FUZZ_CASES`` sets the cases per file kind (default 300, what CI runs); a long run is
``NNSCRATCH_FUZZ_CASES=10000 python -m pytest tests -k fuzz``.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch.errors import NNScratchError

__all__ = ["FUZZ_CASES", "fuzz_settings", "mutated", "check_reader", "same", "fuzz_reader"]

FUZZ_CASES = int(os.environ.get("NNSCRATCH_FUZZ_CASES", "300"))

#: hypothesis settings for a fuzz test: FUZZ_CASES examples, no deadline (the first read of a
#: file may be slow), no example database (nothing written into the checkout).
fuzz_settings = settings(max_examples=FUZZ_CASES, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))


# --- mutations --------------------------------------------------------------------------------

def _flip(data: bytes, draw: Any) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(out) - 1))
        out[i] = draw(st.integers(0, 255).filter(lambda b, old=out[i]: b != old))
    return bytes(out)


def _cut(data: bytes, draw: Any) -> bytes:
    return data[:draw(st.integers(0, max(len(data) - 1, 0)))]


def _delete(data: bytes, draw: Any) -> bytes:
    if not data:
        return data
    i = draw(st.integers(0, len(data) - 1))
    return data[:i] + data[i + draw(st.integers(1, 16)):]


def _insert(data: bytes, draw: Any) -> bytes:
    i = draw(st.integers(0, len(data)))
    return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]


_BYTE_MUTATIONS: dict[str, Callable[[bytes, Any], bytes]] = {
    "flip": _flip, "cut": _cut, "delete": _delete, "insert": _insert}


def _gzip_inner(data: bytes, draw: Any) -> bytes:
    inner = gzip.decompress(data)
    mutation = draw(st.sampled_from(sorted(_BYTE_MUTATIONS)))
    return gzip.compress(_BYTE_MUTATIONS[mutation](inner, draw), mtime=0)


def _zip_members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a duplicate name is the point
        for name, payload in members:
            archive.writestr(name, payload)
    return buffer.getvalue()


def _zip_level(data: bytes, draw: Any) -> bytes:
    members = [(info.filename, payload) for info, payload in _zip_members(data)]
    kind = draw(st.sampled_from(["remove", "duplicate", "rename", "replace", "add", "member"]))
    if not members:
        kind = "add"
    i = draw(st.integers(0, max(len(members) - 1, 0)))
    if kind == "remove":
        del members[i]
    elif kind == "duplicate":
        members.append(members[i])
    elif kind == "rename":
        members[i] = (draw(st.sampled_from(["x.npy", members[i][0].upper(), "../evil.npy",
                                            members[i][0][:-4], "a/" + members[i][0]])),
                      members[i][1])
    elif kind == "replace":
        members[i] = (members[i][0], draw(st.binary(max_size=200)))
    elif kind == "add":
        buffer = io.BytesIO()
        np.save(buffer, np.arange(draw(st.integers(0, 5))))
        members.append((draw(st.sampled_from(["extra.npy", "x_train.npy", "W1.npy"])),
                        buffer.getvalue()))
    else:
        mutation = draw(st.sampled_from(sorted(_BYTE_MUTATIONS)))
        members[i] = (members[i][0], _BYTE_MUTATIONS[mutation](members[i][1], draw))
    return _zip(members)


def _is_gzip(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def _is_zip(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


@st.composite
def mutated(draw: Any, data: bytes) -> tuple[bool, bytes]:
    """A strategy: ``(covered, mutant)``, ``data`` mutated once by any of the mutations that
    fit its kind; ``covered`` says whether a checksum of the file covers the change (a raw
    byte of a gzip stream or a zip archive)."""
    kinds = sorted(_BYTE_MUTATIONS)
    if _is_gzip(data):
        kinds += ["gzip-inner"] * 4
    if _is_zip(data):
        kinds += ["zip-level"] * 4
    kind = draw(st.sampled_from(kinds))
    if kind == "gzip-inner":
        return False, _gzip_inner(data, draw)
    if kind == "zip-level":
        return False, _zip_level(data, draw)
    return _is_gzip(data) or _is_zip(data), _BYTE_MUTATIONS[kind](data, draw)


# --- checking a reader ------------------------------------------------------------------------

def same(a: Any, b: Any) -> bool:
    """Whether two results of a reader are the same: arrays equal in shape, dtype and values
    (NaN equal to NaN), containers element by element, anything else by ``==``."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return (a.shape == b.shape and a.dtype == b.dtype
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return bool(a == b)


def check_reader(read: Callable[[Path], Any], path: Path, data: bytes, expected: Any,
                 covered: bool = True, valid: Callable[[Any], bool] = lambda result: True,
                 errors: tuple[type[BaseException], ...] = (NNScratchError,)) -> str:
    """Write ``data`` to ``path`` and read it: the read must fail with one of ``errors`` in one
    line, or return ``expected`` (``covered``: a checksum covers the change) or a result that
    passes ``valid``. Returns ``"same"``, ``"different"`` or the error's message."""
    path.write_bytes(data)
    try:
        result = read(path)
    except errors as exc:
        message = str(exc)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return message
    if same(result, expected):
        return "same"
    assert not covered, "a corrupt file was read as something else, silently"
    assert valid(result), f"a mutated file was read as an impossible result: {result!r}"
    return "different"


def fuzz_reader(read: Callable[[Path], Any], original: Path,
                valid: Callable[[Any], bool] = lambda result: True,
                errors: tuple[type[BaseException], ...] = (NNScratchError,)) -> Callable[[], None]:
    """A function that checks ``read`` (which returns what is compared: arrays, or a dict or
    tuple of them) on FUZZ_CASES mutations of the file ``original``; call it from a test."""
    data = original.read_bytes()
    expected = read(original)
    target = original.with_name("mutated-" + original.name)

    @fuzz_settings
    @given(mutated(data))
    def run(case: tuple[bool, bytes]) -> None:
        covered, mutant = case
        check_reader(read, target, mutant, expected, covered, valid, errors)

    return run
