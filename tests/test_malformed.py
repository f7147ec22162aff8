"""A catalogue of broken data files, each built here byte by byte, and what nnscratch does with it.

Every case must give, from the API, a one-line :class:`DataError` (a ``ValueError``) that names
the broken file and says what is wrong; and from the command line (``nnscratch train --data``),
exit code 2 with exactly one line on stderr naming the file, no traceback, and no model file
written.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import load_mnist
from nnscratch.errors import DataError

from bounded import traced_peak, within
from test_data import IMAGES_MAGIC, LABELS_MAGIC
from test_data import NAMES as IDX_NAMES

CSV_HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))


# --- building valid pieces, to break one of them ----------------------------------------------


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">I{len(dims)}I", magic, *dims) + payload


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10


def idx_folder(folder: Path, **replace: bytes) -> Path:
    """A folder of valid tiny IDX files (3 + 2 images), except the roles given in ``replace``
    (``train_images_gz=...`` writes that role's content under its ``.gz`` name)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 3), ("test", 2)):
        images, labels = digits(n, seed=n)
        contents = {f"{split}_images": idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes()),
                    f"{split}_labels": idx_bytes(LABELS_MAGIC, labels.shape,
                                                 labels.astype(np.uint8).tobytes())}
        for role, content in contents.items():
            if f"{role}_gz" in replace:
                (folder / f"{IDX_NAMES[role]}.gz").write_bytes(replace[f"{role}_gz"])
            else:
                (folder / IDX_NAMES[role]).write_bytes(replace.get(role, content))
    return folder


def csv_rows(n: int = 10, seed: int = 0) -> list[list[int]]:
    images, labels = digits(n, seed)
    return [[int(label), *map(int, image.reshape(-1))] for image, label in zip(images, labels)]


def csv_text(rows: list[list], header: bool = True) -> str:
    lines = [CSV_HEADER] if header else []
    lines += [",".join(map(str, row)) for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[list], header: bool = True) -> Path:
    path.write_text(csv_text(rows, header))
    return path


def npz_arrays(n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    x_train, y_train = digits(n_train, 1)
    x_test, y_test = digits(n_test, 2)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with open(path, "wb") as handle:  # a file object: np.savez would add ".npz" to a path
        np.savez(handle, **arrays)
    return path


class Unpickled:
    """An object whose unpickling would leave a trace: it creates the folder it names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


# --- the catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], tuple[Path, Path]]  # tmp folder -> (path to load, file to be named)
    words: tuple[str, ...]  # what the message must say, besides the file's name


def idx_case(role: str, content: bytes, *words: str, gz: bool = False) -> Case:
    def build(tmp: Path) -> tuple[Path, Path]:
        folder = idx_folder(tmp / "mnist", **{f"{role}_gz" if gz else role: content})
        return folder, folder / (IDX_NAMES[role] + ".gz" * gz)
    return Case(build, words)


def file_case(name: str, make: Callable[[Path], object], *words: str) -> Case:
    def build(tmp: Path) -> tuple[Path, Path]:
        path = tmp / name
        make(path)
        return path, path
    return Case(build, words)


def images_idx(n: int = 3, side: tuple[int, int] = (28, 28)) -> bytes:
    images = np.zeros((n, *side), dtype=np.uint8)
    return idx_bytes(IMAGES_MAGIC, images.shape, images.tobytes())


def labels_idx(labels: list[int]) -> bytes:
    return idx_bytes(LABELS_MAGIC, (len(labels),), bytes(labels))


def with_cell(row: int, column: int, value: object,
              header: bool = True) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        rows = csv_rows()
        rows[row][column] = value
        write_csv(path, rows, header)
    return make


def npz_with(**changes: object) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        arrays = {**npz_arrays(), **changes}
        return write_npz(path, **{k: v for k, v in arrays.items() if v is not None})
    return make


def npz_with_huge_header(path: Path) -> None:
    """A valid archive, except that x_train's header declares 2**31 images and 100 bytes follow."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in npz_arrays().items():
            member = io.BytesIO()
            if key == "x_train":
                np.lib.format.write_array_header_1_0(
                    member, {"descr": "|u1", "fortran_order": False, "shape": (2**31, 784)})
                member.write(bytes(100))
            else:
                np.save(member, array)
            archive.writestr(f"{key}.npy", member.getvalue())


def object_array_npz(path: Path) -> None:
    marker = path.parent / "unpickled"
    arrays = npz_arrays()
    arrays["y_train"] = np.array([Unpickled(marker)] * 5, dtype=object)
    write_npz(path, **arrays)


def npz_with_a_newline_in_a_name(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in npz_arrays().items():
            member = io.BytesIO()
            np.save(member, array)
            archive.writestr("\n_train.npy" if key == "y_train" else f"{key}.npy",
                             member.getvalue())


def npz_with_a_name_changed_in_its_directory(path: Path) -> None:
    """x_test renamed in the central directory only (no checksum covers a name): read as it
    is, the archive would silently lack its test set."""
    write_npz(path, **npz_arrays())
    data = bytearray(path.read_bytes())
    at = data.find(b"x_test.npy", data.find(b"PK\x01\x02"))
    data[at] = 0
    path.write_bytes(bytes(data))


def npz_with_directory_entries_swallowed(path: Path) -> None:
    """y_train's directory entry given a comment as long as the two entries after it, so that
    they read as its comment: the archive would silently lack x_test and y_test."""
    write_npz(path, **npz_arrays())
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)  # y_train's
    swallowed = data.find(b"PK\x05\x06") - data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<H", data, entry + 32, swallowed)
    path.write_bytes(bytes(data))


def truncated_npz(path: Path) -> None:
    write_npz(path, **npz_arrays())
    path.write_bytes(path.read_bytes()[:3000])


def csv_pair_with_wide_test(tmp: Path) -> tuple[Path, Path]:
    folder = tmp / "mnist"
    folder.mkdir()
    write_csv(folder / "mnist_train.csv", csv_rows(), header=False)
    test = write_csv(folder / "mnist_test.csv", [row + [0] for row in csv_rows(4)], header=False)
    return folder, test


def not_utf8_after_the_head(path: Path) -> None:
    path.write_bytes(csv_text(csv_rows(3), header=False).encode() + b"5,\xff\xfe" + b"0," * 783
                     + b"0\n")


def lone_idx_file(tmp: Path) -> tuple[Path, Path]:
    folder = tmp / "alone"
    folder.mkdir()
    path = folder / IDX_NAMES["train_images"]
    path.write_bytes(images_idx())
    return path, path


def empty_folder(tmp: Path) -> tuple[Path, Path]:
    folder = tmp / "empty"
    folder.mkdir()
    return folder, folder


def nowhere(tmp: Path) -> tuple[Path, Path]:
    return tmp / "no-such-data", tmp / "no-such-data"


def kaggle_test_csv(path: Path) -> None:
    header = ",".join(f"pixel{i}" for i in range(784))
    path.write_text(header + "\n" + "\n".join(",".join(["0"] * 784) for _ in range(3)) + "\n")


_VALID_GZ = gzip.compress(images_idx(), mtime=0)

CASES = {
    # IDX folders with one broken file
    "idx truncated gzip": idx_case("train_images", _VALID_GZ[:len(_VALID_GZ) // 2], "truncated",
                                   gz=True),
    "idx gz name, not gzip": idx_case("train_images", b"\x00" * 64, "not a valid gzip", gz=True),
    "idx wrong magic": idx_case("train_images", idx_bytes(0x00000804, (3, 28, 28), bytes(2352)),
                                "magic number is 0x00000804"),
    "idx wrong image size": idx_case("train_images", images_idx(3, (27, 28)), "27x28"),
    "idx count mismatch": idx_case("test_labels", labels_idx([0, 1, 2]), "2 images", "3 labels"),
    "idx 2**31 images in 100 bytes": idx_case(
        "train_images", idx_bytes(IMAGES_MAGIC, (2**31, 28, 28), bytes(84)), "truncated",
        "2,147,483,648"),
    "idx empty file": idx_case("train_labels", b"", "is empty"),
    "idx label 10": idx_case("train_labels", labels_idx([0, 10, 2]), "label 10"),
    "idx trailing bytes": idx_case("test_images", images_idx(2) + b"xx", "trailing bytes"),
    "idx truncated header": idx_case("test_images", struct.pack(">II", IMAGES_MAGIC, 2),
                                     "truncated header"),
    "idx file alone": Case(lone_idx_file, ("missing", IDX_NAMES["test_labels"])),
    # CSV files
    "csv non-numeric cell": file_case("digits.csv", with_cell(1, 5, "x"), "line 3, column 6",
                                      "'x' is not a whole number"),
    "csv ragged row": file_case("digits.csv", lambda p: write_csv(
        p, [csv_rows()[0], csv_rows()[1][:-1]]), "line 3 has 784 values"),
    "csv pixel 256": file_case("digits.csv", with_cell(2, 100, 256), "pixel 256", "line 4"),
    "csv pixel -1": file_case("digits.csv", with_cell(0, 1, -1, header=False), "pixel -1",
                              "line 1, column 2"),
    "csv label 10": file_case("digits.csv", with_cell(4, 0, 10), "label 10", "line 6"),
    "csv no label column (header)": file_case("test.csv", kaggle_test_csv, "no label column",
                                              "pixel0"),
    "csv no label column (784 columns)": file_case(
        "digits.csv", lambda p: write_csv(p, [row[1:] for row in csv_rows()], header=False),
        "784 columns", "label column"),
    "csv label 10 after blank lines": file_case("digits.csv", lambda p: p.write_text(
        "\n\n" + csv_text(csv_rows(4)).replace("\n", "\n\n", 2) + "\n" + csv_text(
            [[10, *csv_rows(1)[0][1:]]], header=False)), "label 10", "line 11"),
    "csv pixel 300 after blank lines": file_case("digits.csv", lambda p: p.write_bytes(
        b"\r\n   \r\n" + csv_text([*csv_rows(2), [1, 300, *[0] * 783]], header=False).replace(
            "\n", "\r\n\r\n").encode()), "pixel 300", "line 7, column 2"),
    "csv ragged row after blank lines": file_case("digits.csv", lambda p: p.write_text(
        "\n" + csv_text(csv_rows(3)) + "\n\n1,2,3\n"), "line 8 has 3 values"),
    "csv empty file": file_case("digits.csv", lambda p: p.write_bytes(b""), "is empty"),
    "csv header only": file_case("digits.csv", lambda p: p.write_text(CSV_HEADER + "\n"),
                                 "no rows"),
    "csv fraction": file_case("digits.csv", with_cell(3, 7, "0.5"), "'0.5' is not a whole"),
    "csv empty cell": file_case("digits.csv", with_cell(3, 7, ""), "'' is not a whole number"),
    "csv huge number": file_case("digits.csv", with_cell(3, 7, "99999999999"), "far outside"),
    "csv one row": file_case("digits.csv", lambda p: write_csv(p, csv_rows(1)), "at least 2"),
    "csv not UTF-8": file_case("digits.csv", not_utf8_after_the_head, "not UTF-8"),
    "csv pair, test file too wide": Case(csv_pair_with_wide_test, ("786 columns",)),
    # .npz archives
    "npz missing a key": file_case("mnist.npz", npz_with(y_test=None), "no y_test array"),
    "npz object array": file_case("mnist.npz", object_array_npz, "pickled object array",
                                  "never loads"),
    "npz length mismatch": file_case("mnist.npz", npz_with(y_train=np.arange(4)),
                                     "5 images", "4 labels"),
    "npz wrong image shape": file_case("mnist.npz", npz_with(
        x_test=np.zeros((3, 27, 27), np.uint8)), "x_test", "(3, 27, 27)"),
    "npz float images": file_case("mnist.npz", npz_with(x_train=np.zeros((5, 784))),
                                  "dtype float64"),
    "npz label 10": file_case("mnist.npz", npz_with(y_test=np.array([1, 10, 2])), "label 10"),
    "npz member named with a newline": file_case("mnist.npz", npz_with_a_newline_in_a_name,
                                                 "no y_train array", "'\\n_train'"),
    "npz name changed in the directory": file_case(
        "mnist.npz", npz_with_a_name_changed_in_its_directory, "not a valid .npz archive",
        "'\\x00_test.npy' and header b'x_test.npy' differ"),
    "npz directory entries swallowed": file_case(
        "mnist.npz", npz_with_directory_entries_swallowed, "not a valid .npz archive",
        "its directory holds 2 members but its end record counts 4"),
    "npz truncated archive": file_case("mnist.npz", truncated_npz, "not a valid .npz"),
    "npz 2**31 images declared": file_case("mnist.npz", npz_with_huge_header, "truncated",
                                           "(2147483648, 784)"),
    # neither
    "unknown binary format": file_case("digits.bin", lambda p: p.write_bytes(
        bytes(range(256)) * 4), "no format nnscratch reads"),
    "empty folder": Case(empty_folder, ("missing", IDX_NAMES["train_images"], "mnist.npz")),
    "path does not exist": Case(nowhere, ("does not exist",)),
}


def test_the_catalogue_is_large_enough():
    assert len(CASES) >= 25


# --- the checks ----------------------------------------------------------------------------------


@pytest.fixture
def env(clean_env):
    """The command's environment: no data configured and no download allowed."""
    return {k: v for k, v in clean_env.items()
            if k not in ("NNSCRATCH_DOWNLOAD", "NNSCRATCH_MIRRORS")}


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("case", CASES)
def test_api_raises_one_line_data_error(case, tmp_path, monkeypatch):
    monkeypatch.delenv("NNSCRATCH_DOWNLOAD", raising=False)
    path, named = CASES[case].build(tmp_path)
    with pytest.raises(DataError) as info:
        load_mnist(path)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message, message
    assert named.name in message, message
    for word in CASES[case].words:
        assert word in message, f"{word!r} not in {message!r}"
    assert not (tmp_path / "unpickled").exists()  # the object array was never unpickled


@pytest.mark.parametrize("case", CASES)
def test_cli_says_one_line_and_writes_nothing(case, tmp_path, env):
    path, named = CASES[case].build(tmp_path)
    before = files_under(tmp_path)
    model = tmp_path / "m.npz"
    proc = subprocess.run([sys.executable, "-m", "nnscratch", "train", "--data", str(path),
                           "--epochs", "1", "--out", str(model)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert named.name in lines[0] and lines[0].startswith("nnscratch train: error:"), lines[0]
    assert not model.exists()
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("case", ["idx 2**31 images in 100 bytes", "npz 2**31 images declared"])
def test_huge_declared_sizes_fail_before_allocating(case, tmp_path):
    path, _ = CASES[case].build(tmp_path)
    with traced_peak() as peak:
        with pytest.raises(DataError):
            load_mnist(path)
    assert peak.bytes < 8 * 2**20  # the declared arrays would take 1.6 GB


def test_a_valid_build_loads(tmp_path):
    """The builders' valid pieces are valid, so each case fails for its one defect alone."""
    data = load_mnist(idx_folder(tmp_path / "idx"))
    assert (len(data.x_train), len(data.x_test)) == (3, 2)
    data = load_mnist(write_csv(tmp_path / "digits.csv", csv_rows()))
    assert len(data.x_train) + len(data.x_test) == 10
    data = load_mnist(write_npz(tmp_path / "mnist.npz", **npz_arrays()))
    assert data.y_train.tolist() == [0, 1, 2, 3, 4] and data.x_test.shape == (3, 784)


# --- size bombs: what a header declares is refused before it is allocated or inflated -----------


def gzip_of_zeros_declaring(count: int, zeros: int = 8 << 20) -> bytes:
    """A gzip IDX image file whose header declares ``count`` images and whose stream is that
    header and ``zeros`` zero bytes (8 MB inflate from about 8 kB)."""
    compressor = __import__("zlib").compressobj(9, wbits=31)  # gzip framing
    header = idx_bytes(IMAGES_MAGIC, (count, 28, 28), b"")
    chunk = bytes(1 << 20)
    out = [compressor.compress(header)]
    out += [compressor.compress(chunk) for _ in range(zeros >> 20)]
    return b"".join(out) + compressor.flush()


def test_a_gzip_bomb_declaring_four_billion_images_is_refused_unread(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_of_zeros_declaring(4_000_000_000))
    from nnscratch.data import read_idx_images

    with traced_peak() as peak:
        with pytest.raises(DataError) as info:
            read_idx_images(path)
    message = str(info.value)
    assert "4,000,000,000 images" in message and "more than a gzip file of" in message, message
    assert peak.bytes < 2**20  # the 8 MB of zeros were never inflated, let alone the 3.1 TB declared


@pytest.mark.parametrize("kind", ["raw", "gz"])
def test_a_declared_size_is_checked_against_memory_before_allocating(kind, tmp_path,
                                                                      monkeypatch):
    import nnscratch._fileio as fileio
    from nnscratch.data import read_idx_images

    content = images_idx(3)
    path = tmp_path / ("images.gz" if kind == "gz" else "images")
    path.write_bytes(gzip.compress(content) if kind == "gz" else content)
    assert read_idx_images(path).shape == (3, 784)
    monkeypatch.setattr(fileio, "memory_budget", lambda: 2000)  # the 3 images need 2,352 bytes
    with pytest.raises(DataError, match=r"declares 3 images, which would need 2\.35 kB, more "
                                        r"than the 2 kB"):
        read_idx_images(path)


def npz_bytes_with_member(key: str, member: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in npz_arrays().items():
            archive.writestr(f"{name}.npy", member if name == key else _npy(array))
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_an_npz_member_declaring_a_huge_shape_is_refused_via_memory(tmp_path, monkeypatch):
    import nnscratch._fileio as fileio
    from nnscratch.data import read_npz

    path = tmp_path / "mnist.npz"
    path.write_bytes(npz_bytes_with_member("x_train", _npy(np.zeros((5, 784), np.uint8))))
    assert read_npz(path)[0].shape == (5, 784)
    monkeypatch.setattr(fileio, "memory_budget", lambda: 3000)
    with pytest.raises(DataError, match=r"array x_train declares shape \(5, 784\), which would "
                                        r"need 3\.92 kB"):
        read_npz(path)


def test_an_npz_member_declaring_more_than_its_compressed_bytes_hold(tmp_path):
    """A zip member of 8 MB of zeros (8 kB compressed) whose .npy header declares 4e9 images:
    refused from the sizes alone, without inflating the member."""
    from nnscratch.data import read_npz

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (4_000_000_000, 784)})
    path = tmp_path / "mnist.npz"
    path.write_bytes(npz_bytes_with_member("x_train", header.getvalue() + bytes(8 << 20)))
    with traced_peak() as peak:
        with pytest.raises(DataError) as info:
            read_npz(path)
    assert "x_train is truncated" in str(info.value) and "(4000000000, 784)" in str(info.value)
    assert peak.bytes < 2**20


def test_a_zip_member_is_not_inflated_past_its_declared_size(tmp_path):
    """A y_train member whose archive entry declares 5 labels but whose deflate stream goes on
    for 64 MB of zeros: only the declared bytes are inflated, and they are all that is read."""
    from nnscratch.data import read_npz

    declared = _npy(np.zeros(5, np.int64))
    path = tmp_path / "mnist.npz"
    data = bytearray(npz_bytes_with_member("y_train", declared + bytes(64 << 20)))
    full_size = len(declared) + (64 << 20)
    crc = __import__("zlib").crc32(declared)
    # Rewrite the member's CRC and size, in its local header and in the central directory.
    for signature, crc_at, size_at in ((b"PK\x03\x04", 14, 22), (b"PK\x01\x02", 16, 24)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            if struct.unpack_from("<I", data, at + size_at)[0] == full_size:
                struct.pack_into("<I", data, at + crc_at, crc)
                struct.pack_into("<I", data, at + size_at, len(declared))
            at += 4
    path.write_bytes(bytes(data))
    with traced_peak() as peak:
        x_train, y_train, _, _ = read_npz(path)
    assert y_train.tolist() == [0] * 5 and x_train.shape == (5, 784)
    assert peak.bytes < 8 << 20  # the 64 MB behind the declared end were never inflated


def test_a_gzip_csv_table_growing_past_memory_is_refused_as_it_grows(tmp_path, monkeypatch):
    import nnscratch._fileio as fileio
    from nnscratch.data.tables import read_table

    path = tmp_path / "table.csv.gz"
    path.write_bytes(gzip.compress(b"a,label\n" + b"1,2\n" * (1 << 20)))  # 4 MB inflated
    assert read_table(path).n_rows == 1 << 20
    monkeypatch.setattr(fileio, "memory_budget", lambda: 3 << 20)
    with pytest.raises(DataError, match=r"table\.csv\.gz, read and parsed, would need"):
        read_table(path)


def test_an_endless_csv_line_is_refused_at_a_bounded_length(tmp_path):
    from nnscratch.data import read_csv

    path = tmp_path / "digits.csv.gz"
    path.write_bytes(gzip.compress(b"1,2" + b"0" * (32 << 20)))  # one 32 MB line
    with traced_peak() as peak:
        with pytest.raises(DataError, match="line 1 is longer than 65,536 characters"):
            read_csv(path)
    assert peak.bytes < 4 << 20


# --- files that are not regular files: refused in one sentence, never waited on -----------------


@pytest.fixture
def fifo(tmp_path):
    """A named pipe nobody writes to; a reader left waiting on it is released afterwards."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    yield path
    try:  # a reader blocked in open() is let go by a writer appearing
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody was waiting


def _readers():
    from nnscratch.data import read_csv, read_idx_images, read_idx_labels, read_npz
    from nnscratch.data.tables import (looks_like_table, read_npz_table, read_rows, read_table,
                                       read_table_data)

    return {"read_idx_images": read_idx_images, "read_idx_labels": read_idx_labels,
            "read_csv": read_csv, "read_npz": read_npz, "read_table": read_table,
            "read_npz_table": read_npz_table, "read_table_data": read_table_data,
            "read_rows": lambda p: read_rows(p, 3), "looks_like_table": looks_like_table,
            "load_mnist": load_mnist}


@pytest.mark.parametrize("reader", sorted(_readers()))
@pytest.mark.parametrize("kind", ["fifo", "folder", "/dev/zero"])
def test_a_non_regular_file_is_refused_in_one_sentence(reader, kind, fifo, tmp_path):
    path = {"fifo": fifo, "folder": tmp_path, "/dev/zero": Path("/dev/zero")}[kind]
    how, raised = within(10, lambda: _readers()[reader](path),
                         "waiting: the read blocked on a non-regular file")
    if reader == "looks_like_table":
        assert (how, raised) == ("returned", False)  # answered no: the reader then says why
        return
    assert how == "raised" and isinstance(raised, DataError), repr(raised)
    message = str(raised)
    assert "\n" not in message and str(path) in message, message
    if kind == "folder" and reader in ("load_mnist",):
        assert "is missing" in message  # a folder is where MNIST's files are looked for
    else:
        expected = {"fifo": "is a named pipe (FIFO)", "folder": "is a folder",
                    "/dev/zero": "is a character device"}[kind]
        assert expected in message, message


@pytest.mark.parametrize("role", ["train_images", "test_labels"])
def test_a_fifo_inside_a_data_folder_is_refused(role, tmp_path):
    folder = idx_folder(tmp_path / "mnist")
    (folder / IDX_NAMES[role]).unlink()
    os.mkfifo(folder / IDX_NAMES[role])
    try:
        how, raised = within(10, lambda: load_mnist(folder),
                             "waiting: the read blocked on a non-regular file")
    finally:
        with __import__("contextlib").suppress(OSError):
            os.close(os.open(folder / IDX_NAMES[role], os.O_WRONLY | os.O_NONBLOCK))
    assert how == "raised" and isinstance(raised, DataError), repr(raised)
    assert f"{IDX_NAMES[role]} is a named pipe (FIFO), not an IDX file" in str(raised)
