"""Model files: exact round trips, atomic writes, and a catalogue of damaged or tampered files."""

from __future__ import annotations

import ast
import io
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from nnscratch import MLP, serialize
from nnscratch.errors import ModelFileError
from nnscratch.serialize import (FORMAT, layer_sizes_from_params,
                                 read_model_file, write_model_file)

SIZES = [784, 16, 10]


def random_params(sizes: list[int], dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), 1):
        params[f"W{k}"] = rng.standard_normal((fan_in, fan_out)).astype(dtype)
        params[f"b{k}"] = rng.standard_normal(fan_out).astype(dtype)
    return params


def caller_metadata(sizes: list[int], dtype: str) -> dict[str, Any]:
    return {"layer_sizes": list(sizes), "dtype": dtype, "activation": "relu", "backend": "numpy",
            "training": {"epochs": 3, "batch_size": 64, "learning_rate": 0.1, "seed": 7},
            "test_accuracy": 0.9123, "data_source": "sample"}


def stored_metadata(sizes: list[int] = SIZES, dtype: str = "float32") -> dict[str, Any]:
    """Metadata as it sits in a valid file, for building tampered ones by hand."""
    return {"format": FORMAT, "format_version": 1, "layer_sizes": list(sizes),
            "dtype": dtype, "activation": "relu"}


def write_npz(path: Path, arrays: dict[str, np.ndarray], metadata: Any = None) -> Path:
    """An npz written directly with numpy, bypassing the writer's checks.

    ``metadata`` is JSON-encoded unless it is bytes; ``None`` leaves ``__metadata__`` out.
    """
    members = dict(arrays)
    if metadata is not None:
        blob = metadata if isinstance(metadata, bytes) else json.dumps(metadata).encode()
        members["__metadata__"] = np.frombuffer(blob, dtype=np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, **members)
    return path


def temp_leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


@pytest.fixture(autouse=True)
def no_unpickling(monkeypatch):
    """Any unpickling in this module's tests is a failure, whatever catches exceptions."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was asked to load data")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


# --- round trip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[784, 16, 10], [784, 32, 16, 10]], ids=["1-hidden", "2-hidden"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_exact_and_keeps_metadata(tmp_path, sizes, dtype):
    params = random_params(sizes, dtype, seed=len(sizes))
    params["W1"][0, :3] = [-0.0, np.finfo(dtype).tiny / 2, np.finfo(dtype).max]  # edge bits
    given = caller_metadata(sizes, dtype)

    write_model_file(tmp_path / "model.npz", params, given)
    loaded, metadata = read_model_file(tmp_path / "model.npz")

    assert list(loaded) == [f"{kind}{k}" for k in range(1, len(sizes)) for kind in "Wb"]
    for name, array in params.items():
        assert loaded[name].dtype == np.dtype(dtype)
        assert loaded[name].shape == array.shape
        assert loaded[name].tobytes() == array.tobytes(), name  # bit-identical, -0.0 included
        assert np.array_equal(loaded[name], array)
    assert {k: metadata[k] for k in given} == given
    assert metadata["format"] == "nnscratch-mlp" and metadata["format_version"] == 1
    assert isinstance(metadata["nnscratch_version"], str) and metadata["nnscratch_version"]


def test_loaded_arrays_are_fresh_writable_and_c_contiguous(tmp_path):
    params = random_params(SIZES, "float32")
    params["W1"] = np.asfortranarray(params["W1"])
    write_model_file(tmp_path / "m.npz", params, caller_metadata(SIZES, "float32"))

    first, _ = read_model_file(tmp_path / "m.npz")
    for array in first.values():
        assert array.flags.c_contiguous and array.flags.writeable
    first["W1"][:] = 0
    second, _ = read_model_file(tmp_path / "m.npz")
    assert np.array_equal(second["W1"], params["W1"]) and not np.array_equal(second["W1"], 0)


def test_metadata_read_back_can_be_written_again(tmp_path):
    params = random_params(SIZES, "float64")
    write_model_file(tmp_path / "a.npz", params, caller_metadata(SIZES, "float64"))
    loaded, metadata = read_model_file(tmp_path / "a.npz")

    write_model_file(tmp_path / "b.npz", loaded, {**metadata, "format_version": 0, "note": "x"})
    again, metadata_again = read_model_file(tmp_path / "b.npz")

    assert all(np.array_equal(again[name], params[name]) for name in params)
    assert metadata_again == {**metadata, "note": "x"}  # format fields are the writer's own


def test_numpy_scalars_in_metadata_are_stored_as_json_numbers(tmp_path):
    given = {**caller_metadata(SIZES, "float32"), "test_accuracy": np.float32(0.5),
             "layer_sizes": [np.int64(size) for size in SIZES]}
    write_model_file(tmp_path / "m.npz", random_params(SIZES, "float32"), given)
    _, metadata = read_model_file(tmp_path / "m.npz")
    assert metadata["test_accuracy"] == 0.5 and metadata["layer_sizes"] == SIZES


@pytest.mark.parametrize("name", ["model.npz", "model", "model.bin", "weights.v2"])
def test_file_is_written_at_exactly_the_given_path(tmp_path, name):
    returned = write_model_file(str(tmp_path / name), random_params(SIZES, "float32"),
                                caller_metadata(SIZES, "float32"))
    assert returned == tmp_path / name
    assert os.listdir(tmp_path) == [name]  # no "model.npz.npz", no temp file
    assert read_model_file(tmp_path / name)[1]["layer_sizes"] == SIZES


@pytest.mark.skipif(not Path("/proc/self/status").exists(),
                    reason="the umask is read from /proc; elsewhere files keep mkstemp's 0600")
def test_written_file_gets_the_mode_a_plain_open_would_give(tmp_path):
    write_model_file(tmp_path / "m.npz", random_params(SIZES, "float32"),
                     caller_metadata(SIZES, "float32"))
    with open(tmp_path / "plain", "wb"):
        pass
    assert (tmp_path / "m.npz").stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_missing_parent_folder_is_named(tmp_path):
    target = tmp_path / "no-such-folder" / "m.npz"
    with pytest.raises(ModelFileError, match="no-such-folder") as caught:
        write_model_file(target, random_params(SIZES, "float32"),
                         caller_metadata(SIZES, "float32"))
    assert "does not exist" in str(caught.value)
    assert not target.parent.exists()


def test_layer_sizes_from_params():
    assert layer_sizes_from_params(random_params([784, 32, 16, 10], "float32")) == [784, 32, 16,
                                                                                    10]
    with pytest.raises(ValueError, match="W1"):
        layer_sizes_from_params({"b1": np.zeros(3)})


# --- atomicity -----------------------------------------------------------------------------------


def _half_written_savez(handle, **arrays):
    handle.write(b"PK\x03\x04 half an archive")
    raise RuntimeError("simulated crash inside np.savez")


def _failing(error: BaseException) -> Callable[..., Any]:
    def fail(*args, **kwargs):
        raise error

    return fail


@pytest.mark.parametrize("target, replacement, expected", [
    (np, ("savez", _half_written_savez), RuntimeError),
    (os, ("fsync", _failing(OSError(5, "Input/output error"))), ModelFileError),
    (os, ("replace", _failing(OSError(28, "No space left on device"))), ModelFileError),
    (os, ("replace", _failing(KeyboardInterrupt())), KeyboardInterrupt),
], ids=["savez-raises", "fsync-fails", "replace-fails", "interrupted"])
def test_a_failed_write_leaves_the_previous_file_untouched(tmp_path, monkeypatch, target,
                                                          replacement, expected):
    path = tmp_path / "model.npz"
    write_model_file(path, random_params(SIZES, "float32", seed=1),
                     caller_metadata(SIZES, "float32"))
    before = path.read_bytes()

    with monkeypatch.context() as patch, pytest.raises(expected):
        patch.setattr(target, *replacement)
        write_model_file(path, random_params(SIZES, "float32", seed=2),
                         caller_metadata(SIZES, "float32"))

    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    assert np.array_equal(read_model_file(path)[0]["W1"],
                          random_params(SIZES, "float32", seed=1)["W1"])


def _bad_write(change: Callable[[dict, dict], None]) -> tuple[dict, dict]:
    params, metadata = random_params(SIZES, "float32"), caller_metadata(SIZES, "float32")
    change(params, metadata)
    return params, metadata


INCONSISTENT = {
    "shape-vs-layer-sizes": (lambda p, m: m.update(layer_sizes=[784, 32, 10]), "W1"),
    "nan": (lambda p, m: p["W2"].__setitem__((3, 4), np.nan), "non-finite"),
    "inf": (lambda p, m: p["b1"].__setitem__(0, -np.inf), "b1"),
    "mixed-dtypes": (lambda p, m: p.update(b2=p["b2"].astype(np.float64)), "float64"),
    "missing-b2": (lambda p, m: p.pop("b2"), "b2"),
    "extra-array": (lambda p, m: p.update(W3=np.zeros((10, 10), np.float32)), "W3"),
    "one-layer": (lambda p, m: m.update(layer_sizes=[784]), "layer_sizes"),
    "float16": (lambda p, m: m.update(dtype="float16"), "float16"),
    "no-activation": (lambda p, m: m.pop("activation"), "activation"),
    "nan-accuracy": (lambda p, m: m.update(test_accuracy=float("nan")), "JSON"),
    "unjsonable": (lambda p, m: m.update(training={"callback": print}), "JSON"),
    "huge-metadata": (lambda p, m: m.update(notes="x" * (1 << 20)), "limit"),
}


@pytest.mark.parametrize("change, keyword", INCONSISTENT.values(), ids=INCONSISTENT.keys())
def test_an_inconsistent_model_is_refused_and_nothing_is_written(tmp_path, change, keyword):
    path = tmp_path / "model.npz"
    write_model_file(path, random_params(SIZES, "float32", seed=1),
                     caller_metadata(SIZES, "float32"))
    before = path.read_bytes()
    params, metadata = _bad_write(change)

    with pytest.raises(ModelFileError, match="refusing to write") as caught:
        write_model_file(path, params, metadata)

    assert keyword in str(caught.value) and str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


# --- damaged and tampered files ------------------------------------------------------------------

unpickled = []


def _mark_unpickled():
    unpickled.append(True)


class Tripwire:
    """Unpickling this object calls :func:`_mark_unpickled`."""

    def __reduce__(self):
        return (_mark_unpickled, ())


def _valid_file(path: Path) -> Path:
    return write_npz(path, random_params(SIZES, "float32"), stored_metadata())


def _with(path: Path, metadata: Any = "keep", **changes: Any) -> Path:
    """A hand-written file: the valid parts, with arrays replaced (None drops one)."""
    arrays = {**random_params(SIZES, "float32"), **changes}
    arrays = {name: array for name, array in arrays.items() if array is not None}
    return write_npz(path, arrays, stored_metadata() if metadata == "keep" else metadata)


def _truncated(path: Path) -> Path:
    data = _valid_file(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _nan_at(name: str, index: tuple[int, ...], value: float) -> np.ndarray:
    array = random_params(SIZES, "float32")[name]
    array[index] = value
    return array


def _make_dir(path: Path) -> Path:
    path.mkdir()
    return path


def _raw(data: bytes) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return make


TAMPERED: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "nonexistent": (lambda p: p, ("does not exist",)),
    "directory": (_make_dir, ("a folder, not a model file",)),
    "empty": (_raw(b""), ("empty",)),
    "random-bytes": (_raw(np.random.default_rng(3).bytes(4096)), ("not an .npz",)),
    "text-file": (_raw(b"W1,b1\n1,2\n"), ("not an .npz",)),
    "truncated-half": (_truncated, ("corrupt or truncated",)),
    "object-array-dict": (lambda p: _with(p, W1=np.array([{"a": 1}], dtype=object)),
                          ("pickled object array", "W1")),
    "object-array-tripwire": (lambda p: _with(p, b2=np.array([Tripwire()] * 10, dtype=object)),
                              ("pickled object array", "b2")),
    "object-metadata": (lambda p: write_npz(p, {**random_params(SIZES, "float32"),
                                                "__metadata__": np.array([Tripwire()])}),
                        ("__metadata__", "uint8")),
    "no-metadata": (lambda p: _with(p, metadata=None), ("__metadata__",)),
    "metadata-not-utf8": (lambda p: _with(p, metadata=b"\xff\xfe{}"), ("JSON",)),
    "metadata-not-json": (lambda p: _with(p, metadata=b"{layer_sizes: [784, 10]"), ("JSON",)),
    "metadata-nan-constant": (lambda p: _with(p, metadata=b'{"a": NaN}'), ("JSON",)),
    "metadata-is-list": (lambda p: _with(p, metadata=[784, 16, 10]), ("list", "object")),
    "metadata-over-1MiB": (lambda p: _with(p, metadata={**stored_metadata(), "x": "y" * (1 << 20)}),
                           ("limit",)),
    "wrong-format": (lambda p: _with(p, metadata={**stored_metadata(), "format": "keras"}),
                     ("format", "keras")),
    "no-format": (lambda p: _with(p, metadata={"layer_sizes": SIZES}), ("format",)),
    "format-version-99": (lambda p: _with(p, metadata={**stored_metadata(), "format_version": 99}),
                          ("format_version 99", "newer nnscratch")),
    "format-version-text": (lambda p: _with(p, metadata={**stored_metadata(),
                                                         "format_version": "1"}),
                            ("format_version",)),
    "layer-sizes-abc": (lambda p: _with(p, metadata={**stored_metadata(), "layer_sizes": "abc"}),
                        ("layer_sizes", "abc")),
    "layer-sizes-one": (lambda p: _with(p, metadata={**stored_metadata(), "layer_sizes": [784]}),
                        ("layer_sizes", "[784]")),
    "layer-sizes-negative": (lambda p: _with(p, metadata={**stored_metadata(),
                                                          "layer_sizes": [784, -3, 10]}),
                             ("layer_sizes", "-3")),
    "layer-sizes-bool": (lambda p: _with(p, metadata={**stored_metadata(),
                                                      "layer_sizes": [784, True, 10]}),
                         ("layer_sizes", "[784, True, 10]")),
    "dtype-float16": (lambda p: _with(p, metadata={**stored_metadata(), "dtype": "float16"}),
                      ("dtype", "float16")),
    "activation-tanh": (lambda p: _with(p, metadata={**stored_metadata(), "activation": "tanh"}),
                        ("activation", "tanh")),
    "missing-b2": (lambda p: _with(p, b2=None), ("missing", "b2")),
    "extra-array": (lambda p: _with(p, W9=np.zeros((2, 2), np.float32)), ("unexpected", "W9")),
    "W1-wrong-shape": (lambda p: _with(p, W1=np.zeros((16, 784), np.float32)),
                       ("W1", "shape (16, 784)", "expected (784, 16)")),
    "float64-in-float32": (lambda p: _with(p, W2=np.zeros((16, 10), np.float64)),
                           ("W2", "dtype float64", "float32")),
    "big-endian": (lambda p: _with(p, b1=np.zeros(16, ">f4")), ("b1", "dtype")),
    "nan-in-W2": (lambda p: _with(p, W2=_nan_at("W2", (5, 7), np.nan)), ("W2", "non-finite")),
    "inf-in-b1": (lambda p: _with(p, b1=_nan_at("b1", (0,), np.inf)), ("b1", "non-finite")),
}


@pytest.mark.parametrize("make, keywords", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_damaged_file_raises_one_sentence_naming_it(tmp_path, make, keywords):
    unpickled.clear()
    path = make(tmp_path / "suspect.npz")

    with pytest.raises(ModelFileError) as caught:
        read_model_file(path)

    message = str(caught.value)
    assert "suspect.npz" in message
    for keyword in keywords:
        assert keyword in message
    assert "\n" not in message and message.count(". ") == 0
    assert unpickled == []


def test_the_hand_written_valid_file_loads(tmp_path):
    # The control for the catalogue: its files differ from this one only by the tampering.
    params, metadata = read_model_file(_valid_file(tmp_path / "valid.npz"))
    assert metadata == stored_metadata()
    assert np.array_equal(params["W2"], random_params(SIZES, "float32")["W2"])
    changed = _nan_at("W2", (5, 7), np.nan) != params["W2"]
    assert np.argwhere(changed).tolist() == [[5, 7]]  # the NaN case changes one value only


def test_the_tripwire_does_fire_when_unpickled(monkeypatch):
    # Proves the object-array cases could catch unpickling: the payload really marks the list.
    monkeypatch.undo()
    unpickled.clear()
    pickle.loads(pickle.dumps(Tripwire()))
    assert unpickled == [True]


def test_serialize_imports_no_pickle_numba_or_cupy():
    tree = ast.parse(Path(serialize.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported.isdisjoint({"pickle", "cPickle", "dill", "joblib", "numba", "cupy"})
    assert "numpy" in imported  # the walk does see the imports


@pytest.mark.parametrize("extra,words", [
    ({"classes": ["a", "b"]}, "list of 10 labels"),
    ({"classes": ["a"] * 10}, "distinct labels"),
    ({"classes": [0, 1, 2, 3, 4, 5, 6, 7, 8, "x"]}, "all strings or all integers"),
    ({"classes": [True] + list(range(9))}, "all strings or all integers"),
    ({"classes": "abcdefghij"}, "list of 10 labels"),
    ({"inputs": {"scaling": "minmax"}}, "standardization"),
    ({"inputs": {"scaling": "standardize", "mean": [0.0] * 784}},
     "scale must be 784 finite numbers"),
    ({"inputs": {"scaling": "standardize", "mean": [0.0] * 3, "scale": [1.0] * 784}},
     "mean must be 784"),
    ({"inputs": {"scaling": "standardize", "mean": [0.0] * 784, "scale": [0.0] * 784}},
     "above 0"),
    ({"inputs": {"scaling": "none", "mean": [0.0]}}, "standardization"),
    ({"inputs": [1, 2]}, "standardization"),
])
def test_a_model_files_classes_and_input_scaling_are_checked(tmp_path, extra, words):
    params = MLP((4,), seed=0).params()
    metadata = {"layer_sizes": [784, 4, 10], "dtype": "float32", "activation": "relu", **extra}
    with pytest.raises(ModelFileError, match=words):
        write_model_file(tmp_path / "m.npz", params, metadata)


def test_classes_in_a_version_1_file_are_refused(tmp_path):
    good = MLP((4,), seed=0, classes=[str(i) for i in range(10)]).save(tmp_path / "good.npz")
    params, metadata = read_model_file(good)
    assert metadata["format_version"] == 2
    bad = tmp_path / "bad.npz"
    members = dict(params)
    metadata = {**metadata, "format_version": 1}
    members["__metadata__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    np.savez(bad, **members)
    with pytest.raises(ModelFileError, match="format_version 1 does not have"):
        read_model_file(bad)


# --- resources, special files and the words for damage -------------------------------------------


def test_layer_sizes_that_need_terabytes_are_refused_before_any_array_is_read(tmp_path):
    # The arrays are small and of the wrong shape: were they read first, the complaint would
    # be W1's shape, not the memory.
    path = _with(tmp_path / "huge.npz", metadata={**stored_metadata(),
                                                  "layer_sizes": [784, 10 ** 12, 10]})
    with pytest.raises(ModelFileError) as caught:
        read_model_file(path)
    message = str(caught.value)
    assert "huge.npz" in message and "784-1000000000000-10" in message
    assert re.search(r"would need 3\.18 PB, more than the", message), message


def _zip(path: Path, members: list[tuple[str, bytes]],
         method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, payload in members:
            archive.writestr(name, payload)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _valid_members(**changes: bytes) -> list[tuple[str, bytes]]:
    metadata = np.frombuffer(json.dumps(stored_metadata()).encode(), dtype=np.uint8)
    params = random_params(SIZES, "float32")
    members = {f"{name}.npy": _npy(array) for name, array in params.items()}
    members["__metadata__.npy"] = _npy(metadata)
    members.update(changes)
    return list(members.items())


def _flipped_in(name: str) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        _zip(path, _valid_members())
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(name)
        data = bytearray(path.read_bytes())
        data[info.header_offset + 30 + len(name) + 150] ^= 0xFF  # inside the stored data
        path.write_bytes(bytes(data))
        return path

    return make


def _table_of_contents_broken(path: Path) -> Path:
    data = bytearray(_zip(path, _valid_members()).read_bytes())
    start = data.index(b"PK\x01\x02")  # the central directory's first record
    data[start + 3] = 0x09
    path.write_bytes(bytes(data))
    return path


def _member_moved(path: Path) -> Path:
    data = bytearray(_zip(path, _valid_members()).read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 16:end + 20] = struct.pack("<I", 0xFFFFFF00)  # where the directory starts
    path.write_bytes(bytes(data))
    return path


def _method_unknown(path: Path) -> Path:
    data = bytearray(_zip(path, _valid_members()).read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.index(signature)  # the first member, in its header and the directory
        data[start + offset:start + offset + 2] = struct.pack("<H", 99)
    path.write_bytes(bytes(data))
    return path


W1_NPY = _npy(random_params(SIZES, "float32")["W1"])
DAMAGE = {
    "checksum": (_flipped_in("W2.npy"), "its array W2 is damaged: its data does not match its "
                                        "checksum"),
    "table-of-contents": (_table_of_contents_broken, "table of contents cannot be read"),
    "moved": (_member_moved, "is damaged: the archive's record of it is corrupt"),
    "compression": (_method_unknown, "compressed or encrypted in a way nnscratch does not read"),
    "not-npy": (lambda p: _zip(p, _valid_members(**{"W1.npy": b"not an array at all"})),
                "its entry W1 is not a readable NumPy array"),
    "header": (lambda p: _zip(p, _valid_members(**{"W1.npy": W1_NPY[:12] + b"{'descr': <f4"
                                                                           + W1_NPY[25:]})),
               "the header that gives its shape and type is damaged"),
    "cut-short": (lambda p: _zip(p, _valid_members(**{"W1.npy": W1_NPY[:-100]})),
                  "its array W1 is cut short"),
    "data-after": (lambda p: _zip(p, _valid_members(**{"W1.npy": W1_NPY + b"more"})),
                   "its entry W1 holds more data than its array"),
    "twice": (lambda p: _zip(p, _valid_members() + [("b1.npy", _npy(np.zeros(16, "f4")))]),
              "it holds the entry b1.npy twice"),
    "deflated": (lambda p: _zip(p, _valid_members(), zipfile.ZIP_DEFLATED), None),
}


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("make, words", DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_is_told_in_plain_words(tmp_path, make, words):
    path = make(tmp_path / "suspect.npz")
    if words is None:  # the control: a valid file, only compressed
        params, _ = read_model_file(path)
        assert np.array_equal(params["W1"], random_params(SIZES, "float32")["W1"])
        return
    with pytest.raises(ModelFileError) as caught:
        read_model_file(path)
    message = str(caught.value)
    assert f"model file {path}" in message and words in message, message
    assert not re.search(r"Errno|Error|\\x|b'", message), message


@pytest.mark.parametrize("make, kind", [
    (lambda p: os.mkfifo(p), "a named pipe (FIFO), not a model file"),
    (lambda p: p.symlink_to("/dev/zero"), "a character device, not a model file"),
], ids=["fifo", "device"])
def test_a_fifo_or_device_is_refused_without_waiting(tmp_path, make, kind):
    path = tmp_path / "model.npz"
    make(path)
    code = ("import sys\nfrom nnscratch import load_model\nfrom nnscratch.errors import "
            "ModelFileError\ntry:\n    load_model(sys.argv[1])\nexcept ModelFileError as e:\n"
            "    print(e)\n")
    # A regression would wait forever on the FIFO: the timeout turns that into a failure.
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == f"{path} is {kind}", proc.stdout + proc.stderr


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 64 kB tmpfs: a real full disk (mounting needs root; else skipped)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_model_that_does_not_fit_on_the_disk(full_disk):
    path = full_disk / "model.npz"
    with pytest.raises(ModelFileError) as caught:
        MLP((64,), seed=0).save(path)  # 200 kB of weights
    assert str(caught.value) == f"cannot write model file {path}: no space left on device"
    assert os.listdir(full_disk) == []  # no temporary file left behind
    MLP((4,), seed=0).save(path)  # 13 kB: fits
    assert read_model_file(path)[1]["layer_sizes"] == [784, 4, 10]


def _npy_with_header(header: str, data: bytes) -> bytes:
    padded = header + " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(padded)) + padded.encode() + data


@pytest.mark.parametrize("header, loads", [
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (784L, 16L), }", True),  # Python 2's
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (784, 16), '\\g': 1}", False),
], ids=["python-2", "stray-backslash"])
def test_a_header_numpy_warns_about_is_read_without_a_warning(tmp_path, header, loads):
    w1 = random_params(SIZES, "float32")["W1"]
    path = _zip(tmp_path / "m.npz", _valid_members(**{"W1.npy": _npy_with_header(
        header, w1.tobytes())}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        if loads:
            assert np.array_equal(read_model_file(path)[0]["W1"], w1)
        else:
            with pytest.raises(ModelFileError, match="the header that gives its shape"):
                read_model_file(path)
