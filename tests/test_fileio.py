"""Tests of nnscratch._fileio: atomic writes, JSON text and safe .npy headers."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnscratch._fileio import (NpyVersionError, ObjectArrayError, atomic_file, json_text,
                               read_npy_header, write_text)

HAS_PROC = Path("/proc/self/status").exists()


# --- atomic writes -------------------------------------------------------------------------------


def test_the_file_appears_only_when_the_block_ends(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_file(target) as handle:
        handle.write(b"abc")
        temp = Path(handle.name)
        assert temp.parent == tmp_path and temp != target  # written beside it, under another name
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.skipif(not HAS_PROC, reason="the umask is read from /proc")
def test_the_file_gets_the_mode_a_plain_open_would_give(tmp_path, umask_022):
    write_text(tmp_path / "a.txt", "x")
    with atomic_file(tmp_path / "b.bin") as handle:
        handle.write(b"x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("error", [RuntimeError("in the block"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, error):
    target = write_text(tmp_path / "config.json", "old")
    with pytest.raises(type(error)):
        with atomic_file(target) as handle:
            handle.write(b"new, half written")
            raise error
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["config.json"]


def test_write_text_is_utf8(tmp_path):
    path = write_text(tmp_path / "t.txt", "accuracy ≥ 0.9\n")
    assert path == tmp_path / "t.txt" and path.read_bytes() == "accuracy ≥ 0.9\n".encode()


def test_json_text_spells_numpy_scalars_and_refuses_nan():
    assert json_text({"a": np.float32(0.5), "n": np.int64(3)}) == '{"a": 0.5, "n": 3}'
    with pytest.raises(ValueError):
        json_text({"loss": float("nan")})


# --- .npy headers --------------------------------------------------------------------------------


def npy_bytes(descr: Any, shape: tuple[int, ...], version: tuple[int, int] = (1, 0),
              payload: bytes = b"") -> bytes:
    """A .npy file built by hand: magic, version, header length, padded header dict, data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    length_format = "<H" if version == (1, 0) else "<I"
    prefix = 8 + struct.calcsize(length_format)
    header += b" " * (-(prefix + len(header) + 1) % 64) + b"\n"
    return (b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(header)) + header
            + payload)


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_a_header_is_read_up_to_the_data(version):
    data = np.arange(6, dtype="<i2").tobytes()
    stream = io.BytesIO(npy_bytes("<i2", (2, 3), version, data))
    header = read_npy_header(stream)
    assert header.shape == (2, 3) and header.dtype == np.dtype("<i2")
    assert not header.fortran_order
    assert stream.read() == data


def test_an_unknown_version_is_refused():
    with pytest.raises(NpyVersionError, match=r"version \(3, 0\) is not supported"):
        read_npy_header(io.BytesIO(npy_bytes("<u1", (4,), (3, 0), b"abcd")))


@pytest.mark.parametrize("descr", ["|O", [("a", "<i4"), ("b", "|O")]], ids=["object", "record"])
def test_object_arrays_are_refused_before_their_data_is_read(descr):
    stream = io.BytesIO(npy_bytes(descr, (1,), payload=b"\x80\x04 pickled bytes would follow"))
    with pytest.raises(ObjectArrayError):
        read_npy_header(stream)
    assert stream.getvalue()[stream.tell():].startswith(b"\x80\x04")  # stopped at the data


def test_a_garbled_header_is_a_value_error():
    with pytest.raises(ValueError):
        read_npy_header(io.BytesIO(b"not an npy file at all"))
