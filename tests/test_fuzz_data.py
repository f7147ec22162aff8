"""Fuzzing every kind of data file through its public reader (see ``tests/fuzzing.py``).

For each kind, a small valid file is built here and mutated FUZZ_CASES times (byte flips, cuts,
deletions, insertions; inside a gzip stream, mutations recompressed; in a zip archive, members
removed, renamed, replaced or rewritten). Each read must return what the original gave, or fail
with a one-line :class:`~nnscratch.errors.NNScratchError`, or (where no checksum covers the
change) return something the reader could return for a well-formed file: the ``valid`` checks
below are each reader's own promises about dtypes, shapes and ranges.

``NNSCRATCH_FUZZ_CASES=10000 python -m pytest tests/test_fuzz_data.py`` is the long run.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fuzzing import fuzz_reader
from nnscratch.data import load_mnist, read_csv, read_idx_images, read_idx_labels, read_npz
from nnscratch.data.tables import read_npz_table, read_table

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801

# A warning escaping a reader is a line more on the command line's stderr: here it fails the read.
pytestmark = pytest.mark.filterwarnings("error")


# --- small originals -----------------------------------------------------------------------------


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 784), dtype=np.uint8), np.arange(n) % 10


def images_idx(n: int = 3) -> bytes:
    return struct.pack(">IIII", IMAGES_MAGIC, n, 28, 28) + digits(n)[0].tobytes()


def labels_idx(n: int = 3) -> bytes:
    return struct.pack(">II", LABELS_MAGIC, n) + digits(n)[1].astype(np.uint8).tobytes()


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(gzip.compress(content, mtime=0) if path.name.endswith(".gz") else content)
    return path


def mnist_npz(path: Path) -> Path:
    (x_train, y_train), (x_test, y_test) = digits(4, 1), digits(2, 2)
    with open(path, "wb") as handle:  # a file object: np.savez would add ".npz" to a path
        np.savez(handle, x_train=x_train.reshape(4, 28, 28), y_train=y_train, x_test=x_test,
                 y_test=y_test)
    return path


def mnist_csv(path: Path) -> Path:
    images, labels = digits(3)
    lines = ["label," + ",".join(f"pixel{i}" for i in range(784))]
    lines += [",".join(map(str, [label, *image])) for image, label in zip(images, labels)]
    return write(path, ("\n".join(lines) + "\n").encode())


TABLE_CSV = b"""height,weight,label
1.5,60,cat
1.25,-3e2,dog
0.5,7,cat
2,8.5,dog
"""


def table_npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with open(path, "wb") as handle:
        np.savez(handle, x_train=rng.normal(size=(6, 2)), y_train=np.array([0, 1, 2] * 2),
                 x_test=rng.normal(size=(3, 2)), y_test=np.array([2, 1, 0]))
    return path


# --- what each reader promises -------------------------------------------------------------------


def is_pixels(x: Any) -> bool:
    return (isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 2
            and x.shape[1] == 784 and len(x) > 0 and x.flags.c_contiguous)


def is_digits(y: Any, n: int | None = None) -> bool:
    return (isinstance(y, np.ndarray) and y.dtype == np.int64 and y.ndim == 1 and len(y) > 0
            and (n is None or len(y) == n) and bool(((y >= 0) & (y <= 9)).all()))


def is_mnist_split(x: Any, y: Any) -> bool:
    return is_pixels(x) and is_digits(y, len(x))


def is_features(x: Any) -> bool:
    return (isinstance(x, np.ndarray) and x.dtype == np.float64 and x.ndim == 2
            and x.size > 0 and bool(np.isfinite(x).all()))


def is_table(result: tuple) -> bool:
    features, labels, names, label_column = result
    return (is_features(features) and labels.ndim == 1 and len(labels) == len(features)
            and (labels.dtype == np.int64 or labels.dtype.kind == "U")
            and len(names) == features.shape[1] and label_column not in names)


def is_training_data(result: tuple) -> bool:
    x_train, y_train, x_test, y_test, classes = result
    n_classes = len(classes) if classes is not None else int(max(y_train.max(), y_test.max())) + 1
    return all(is_features(x) and x.shape[1] == x_train.shape[1] for x in (x_train, x_test)) and all(
        y.dtype == np.int64 and y.ndim == 1 and len(y) == len(x) and bool(
            ((y >= 0) & (y < n_classes)).all()) for x, y in ((x_train, y_train), (x_test, y_test)))


# --- the readers, as fuzz_reader calls them --------------------------------------------------


def table_parts(path: Path) -> tuple:
    table = read_table(path)  # its source (the path) differs between original and mutant
    return table.features, table.labels, table.feature_names, table.label_column


def npz_table_parts(path: Path) -> tuple:
    data = read_npz_table(path)
    return data.x_train, data.y_train, data.x_test, data.y_test, data.classes


def folder_reader(folder: Path, name: str):
    """Read MNIST from ``folder`` after copying the file given in as its ``name``."""
    def read(path: Path) -> tuple:
        if path.parent != folder or path.name != name:
            shutil.copyfile(path, folder / name)
        data = load_mnist(folder)
        return data.x_train, data.y_train, data.x_test, data.y_test
    return read


def idx_folder(folder: Path) -> Path:
    folder.mkdir()
    write(folder / "train-images-idx3-ubyte.gz", images_idx(3))
    write(folder / "train-labels-idx1-ubyte.gz", labels_idx(3))
    write(folder / "t10k-images-idx3-ubyte", images_idx(2))
    write(folder / "t10k-labels-idx1-ubyte", labels_idx(2))
    return folder


CASES = {
    "idx-images": (lambda tmp: write(tmp / "images-idx3-ubyte", images_idx()),
                   read_idx_images, is_pixels),
    "idx-images-gz": (lambda tmp: write(tmp / "images-idx3-ubyte.gz", images_idx()),
                       read_idx_images, is_pixels),
    "idx-labels": (lambda tmp: write(tmp / "labels-idx1-ubyte", labels_idx()),
                   read_idx_labels, is_digits),
    "idx-labels-gz": (lambda tmp: write(tmp / "labels-idx1-ubyte.gz", labels_idx()),
                       read_idx_labels, is_digits),
    "mnist-npz": (lambda tmp: mnist_npz(tmp / "mnist.npz"), read_npz,
                   lambda r: is_mnist_split(r[0], r[1]) and is_mnist_split(r[2], r[3])),
    "mnist-csv": (lambda tmp: mnist_csv(tmp / "digits.csv"), read_csv,
                  lambda r: is_mnist_split(*r)),
    "mnist-csv-gz": (lambda tmp: mnist_csv(tmp / "digits.csv.gz"), read_csv,
                      lambda r: is_mnist_split(*r)),
    "table-csv": (lambda tmp: write(tmp / "table.csv", TABLE_CSV), table_parts, is_table),
    "table-csv-gz": (lambda tmp: write(tmp / "table.csv.gz", TABLE_CSV), table_parts,
                      is_table),
    "table-npz": (lambda tmp: table_npz(tmp / "table.npz"), npz_table_parts,
                   is_training_data),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fuzzed_files_read_the_same_or_fail_in_one_line(kind, tmp_path):
    make, read, valid = CASES[kind]
    fuzz_reader(read, make(tmp_path), valid=valid)()


@pytest.mark.parametrize("name", ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte"])
def test_fuzzed_files_in_an_mnist_folder(name, tmp_path):
    folder = idx_folder(tmp_path / "mnist")
    valid = (lambda r: is_mnist_split(r[0], r[1]) and is_mnist_split(r[2], r[3]))
    fuzz_reader(folder_reader(folder, name), folder / name, valid=valid)()


def test_the_originals_read_as_built(tmp_path):
    """The fuzzed originals are valid, so every mutant starts from a file that reads."""
    for kind, (make, read, valid) in CASES.items():
        assert valid(read(make(tmp_path))), kind
    data = load_mnist(idx_folder(tmp_path / "mnist"))
    assert (len(data.x_train), len(data.x_test)) == (3, 2)
