"""MNIST as CSV and .npz: the same data in another format must give the same arrays and train to
the same accuracy as the IDX files, and a file is recognised by its content, not its name.

The full-size files are made here from the full MNIST (``NNSCRATCH_DATA``) with numpy and the
standard library, not with nnscratch's code, so the readers are checked against the formats.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.data import HOLDOUT_SEED, DataSource, find_mnist, load_mnist
from nnscratch.errors import DataError

HEADER = "label," + ",".join(f"pixel{i}" for i in range(784))
_CELLS = np.array([str(value) for value in range(256)], dtype=object)


def csv_text(x: np.ndarray, y: np.ndarray, header: bool = False, newline: str = "\n") -> str:
    rows = np.concatenate([y.reshape(-1, 1).astype(np.uint8), x.reshape(len(x), -1)], axis=1)
    lines = [",".join(_CELLS[row]) for row in rows]
    return newline.join([HEADER, *lines] if header else lines) + newline


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with open(path, "wb") as handle:  # a file object: np.savez would add ".npz" to a path
        np.savez(handle, **arrays)
    return path


def same_arrays(data, x_train, y_train, x_test, y_test) -> bool:
    expected = (x_train.reshape(len(x_train), 784), y_train, x_test.reshape(len(x_test), 784),
                y_test)
    got = (data.x_train, data.y_train, data.x_test, data.y_test)
    return all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(got, expected))


def accuracy(data, lr: float = 0.1) -> float:
    return nnscratch.train(data, epochs=1, hidden=(32,), lr=lr, progress=False).test_accuracy


@pytest.fixture(scope="module")
def idx_accuracy(full_mnist) -> float:
    return accuracy(full_mnist)


def check_like_idx(data, full, idx_accuracy) -> None:
    assert same_arrays(data, full.x_train, full.y_train, full.x_test, full.y_test)
    for array in (data.x_train, data.y_train, data.x_test, data.y_test):
        assert array.flags.c_contiguous and array.flags.owndata
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert accuracy(data) == idx_accuracy  # the same arrays and seed: bit-identical training


# --- the full MNIST in each format -------------------------------------------------------------


def test_csv_pair_trains_like_idx(full_mnist, idx_accuracy, tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "mnist_train.csv").write_text(csv_text(full_mnist.x_train, full_mnist.y_train))
    (folder / "mnist_test.csv").write_text(csv_text(full_mnist.x_test, full_mnist.y_test))
    data = load_mnist(folder)
    assert data.source.startswith(f"MNIST CSV files in {folder} (given explicitly): 60,000 "
                                  "training and 10,000 test images")
    check_like_idx(data, full_mnist, idx_accuracy)


@pytest.mark.parametrize("shape", [(28, 28), (784,)], ids=["n,28,28", "n,784"])
def test_npz_trains_like_idx(shape, full_mnist, idx_accuracy, tmp_path):
    path = write_npz(tmp_path / "mnist.npz",
                     x_train=full_mnist.x_train.reshape(-1, *shape), y_train=full_mnist.y_train,
                     x_test=full_mnist.x_test.reshape(-1, *shape), y_test=full_mnist.y_test)
    data = load_mnist(path)
    assert data.source.startswith(f"MNIST npz file in {path} (given explicitly)")
    check_like_idx(data, full_mnist, idx_accuracy)


@pytest.fixture(scope="module")
def kaggle(full_mnist, tmp_path_factory):
    """Kaggle's layout: train.csv with a header and 42,000 labelled rows, and an unlabelled
    test.csv (here short), made from the first 42,000 MNIST training images."""
    folder = tmp_path_factory.mktemp("kaggle")
    x, y = full_mnist.x_train[:42_000], full_mnist.y_train[:42_000]
    (folder / "train.csv").write_text(csv_text(x, y, header=True))
    pixels = ",".join(f"pixel{i}" for i in range(784))
    (folder / "test.csv").write_text(pixels + "\n" + "\n".join(
        ",".join(_CELLS[row]) for row in full_mnist.x_test[:5]) + "\n")
    return folder, x, y


def test_kaggle_train_csv_gets_a_stratified_test_split(kaggle):
    folder, x, y = kaggle
    data = load_mnist(folder)
    assert (len(data.x_train), len(data.x_test)) == (36_000, 6_000)
    assert len(data.y_train) == 36_000 and len(data.y_test) == 6_000
    assert "Kaggle's train.csv" in data.source
    assert (f"it has no test set, so 6,000 of its 42,000 images (1 in 7, stratified by digit, "
            f"seed {HOLDOUT_SEED}) were held out as the test set") in data.source
    # Stratified: each digit's test count is its share of 6,000, to within one image.
    share = np.bincount(y, minlength=10) / 7
    assert np.all(np.abs(np.bincount(data.y_test, minlength=10) - share) < 1)
    # A split, not a sample: together the two parts are exactly the file's rows.
    rows = np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train,
                                                                        data.y_test])
    assert sorted_rows(*rows) == sorted_rows(x, y)


def sorted_rows(x: np.ndarray, y: np.ndarray) -> bytes:
    rows = np.concatenate([y.reshape(-1, 1).astype(np.uint8), x], axis=1)
    return np.sort(np.ascontiguousarray(rows).view(f"V{rows.shape[1]}").ravel()).tobytes()


def test_kaggle_split_is_seeded_and_the_same_from_the_file(kaggle):
    folder, _, _ = kaggle
    first, again = load_mnist(folder), load_mnist(folder / "train.csv")
    assert same_arrays(again, first.x_train, first.y_train, first.x_test, first.y_test)
    assert again.source.startswith(f"MNIST CSV file in {folder / 'train.csv'}")


def test_kaggle_data_trains(kaggle):
    folder, _, _ = kaggle
    assert accuracy(load_mnist(folder), lr=0.5) > 0.85  # misaligned labels would give 0.1


# --- recognising formats -------------------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(3)
    x_train = rng.integers(0, 256, (20, 784), dtype=np.uint8)
    x_test = rng.integers(0, 256, (6, 784), dtype=np.uint8)
    return x_train, np.arange(20) % 10, x_test, np.array([3, 1, 4, 1, 5, 9])


@pytest.mark.parametrize("variant", ["no header", "header", "quoted header", "CRLF", "BOM",
                                     "spaces", "blank last lines", "gzip"])
def test_csv_variants_read_the_same(variant, small, tmp_path):
    x_train, y_train, x_test, y_test = small
    text = csv_text(x_train, y_train, header=variant != "no header",
                    newline="\r\n" if variant == "CRLF" else "\n")
    if variant == "quoted header":
        first, rest = text.split("\n", 1)
        text = ",".join(f'"{name}"' for name in first.split(",")) + "\n" + rest
    elif variant == "spaces":
        text = text.replace(",", ", ")
    elif variant == "blank last lines":
        text += "\n\n"
    raw = ("\ufeff" + text if variant == "BOM" else text).encode("utf-8")
    folder = tmp_path / "pair"
    folder.mkdir()
    suffix = ".csv.gz" if variant == "gzip" else ".csv"
    (folder / f"mnist_train{suffix}").write_bytes(gzip.compress(raw) if variant == "gzip"
                                                  else raw)
    (folder / "mnist_test.csv").write_text(csv_text(x_test, y_test))
    assert same_arrays(load_mnist(folder), *small)


@pytest.mark.parametrize("name", ["digits.txt", "digits", "digits.npz"])
def test_a_csv_is_recognised_by_content(name, small, tmp_path):
    x_train, y_train, _, _ = small
    path = tmp_path / name
    path.write_text(csv_text(x_train, y_train, header=True))
    assert find_mnist(path) == DataSource("path", path, "given explicitly")
    data = load_mnist(path)
    assert (len(data.x_train), len(data.x_test)) == (18, 2)  # 20 // 7 == 2 held out
    assert "held out" in data.source


def test_a_gzipped_csv_without_gz_suffix(small, tmp_path):
    x_train, y_train, _, _ = small
    plain, packed = tmp_path / "digits.csv", tmp_path / "digits.dat"
    plain.write_text(csv_text(x_train, y_train))
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = load_mnist(plain), load_mnist(packed)
    assert same_arrays(b, a.x_train, a.y_train, a.x_test, a.y_test)


@pytest.mark.parametrize("name", ["mnist.bin", "mnist.csv", "mnist"])
def test_an_npz_is_recognised_by_content(name, small, tmp_path):
    x_train, y_train, x_test, y_test = small
    path = write_npz(tmp_path / name, x_train=x_train, y_train=y_train, x_test=x_test,
                     y_test=y_test)
    assert same_arrays(load_mnist(path), *small)


def test_npz_dtypes_and_layouts(small, tmp_path):
    """Big-endian, Fortran-ordered and other integer arrays read as the same digits."""
    x_train, y_train, x_test, y_test = small
    path = write_npz(tmp_path / "mnist.npz",
                     x_train=np.asfortranarray(x_train.reshape(-1, 28, 28).astype(">u2")),
                     y_train=y_train.astype(">i4"), x_test=x_test.astype(np.int64),
                     y_test=y_test.astype(np.uint8), extra=np.arange(3))
    data = load_mnist(path)
    assert same_arrays(data, *small)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64


def test_npz_in_a_folder(small, tmp_path):
    x_train, y_train, x_test, y_test = small
    write_npz(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
              y_test=y_test)
    data = load_mnist(tmp_path)
    assert same_arrays(data, *small) and "npz files in" in data.source


def test_an_idx_file_means_its_folder(full_mnist):
    folder = Path(os.environ["NNSCRATCH_DATA"])
    one_file = next(folder.glob("t10k-labels*"))
    assert find_mnist(one_file) == DataSource("path", folder, "given explicitly")
    assert len(load_mnist(one_file).x_train) == 60_000


def write_idx(folder: Path, x_train, y_train, x_test, y_test) -> None:
    """The four IDX files, raw, built from the format's definition."""
    for name, array, magic in (("train-images-idx3-ubyte", x_train.reshape(-1, 28, 28), 0x803),
                               ("train-labels-idx1-ubyte", y_train, 0x801),
                               ("t10k-images-idx3-ubyte", x_test.reshape(-1, 28, 28), 0x803),
                               ("t10k-labels-idx1-ubyte", y_test, 0x801)):
        header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
        (folder / name).write_bytes(header + array.astype(np.uint8).tobytes())


def test_idx_wins_over_other_formats_in_one_folder(small, tmp_path):
    x_train, y_train, x_test, y_test = small
    write_idx(tmp_path, x_train, y_train, x_test, y_test)
    write_npz(tmp_path / "mnist.npz", x_train=x_train[::-1], y_train=y_train[::-1],
              x_test=x_test, y_test=y_test)
    (tmp_path / "train.csv").write_text(csv_text(x_train[::-1], y_train[::-1], header=True))
    data = load_mnist(tmp_path)
    assert data.source.startswith("MNIST IDX files")
    assert same_arrays(data, *small)


def test_a_partial_csv_pair_names_the_missing_file(small, tmp_path):
    x_train, y_train, _, _ = small
    (tmp_path / "mnist_train.csv").write_text(csv_text(x_train, y_train))
    with pytest.raises(DataError, match=r"is missing mnist_test\.csv"):
        load_mnist(tmp_path)
