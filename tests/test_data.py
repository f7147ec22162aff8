"""Tests of nnscratch.data: reading MNIST and where it comes from.

Small IDX files are built byte by byte here (not with the library's code), so the reader is checked
against the format itself.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import (
    SAMPLE_HINT,
    DataSource,
    class_quotas,
    find_mnist,
    load_mnist,
    read_idx_images,
    read_idx_labels,
    stratified_indices,
    user_cache_dir,
)
from nnscratch.errors import DataError

from bounded import traced_peak

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "src" / "nnscratch" / "sample"
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FULL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
FULL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- building IDX files -----------------------------------------------------------------------


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file: big-endian magic, one big-endian uint32 per dimension, then the payload."""
    return struct.pack(f">I{len(dims)}I", magic, *dims) + payload


def images_bytes(images: np.ndarray) -> bytes:
    return idx_bytes(IMAGES_MAGIC, images.shape, images.astype(np.uint8).tobytes())


def labels_bytes(labels: np.ndarray) -> bytes:
    return idx_bytes(LABELS_MAGIC, labels.shape, labels.astype(np.uint8).tobytes())


def write(path: Path, content: bytes, gz: bool = False) -> Path:
    """Write ``content`` to ``path`` (plus ``.gz``, compressed, if ``gz``); return the file."""
    if gz:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content, mtime=0)
    path.write_bytes(content)
    return path


def random_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10


def make_folder(folder: Path, n_train: int = 3, n_test: int = 2, gz: bool = False,
                dotted: bool = False, skip: str | None = None) -> dict[str, np.ndarray]:
    """A tiny MNIST folder; returns the arrays written, keyed like NAMES."""
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = random_split(n_train, seed=n_train)
    x_test, y_test = random_split(n_test, seed=100 + n_test)
    arrays = {"train_images": x_train, "train_labels": y_train,
              "test_images": x_test, "test_labels": y_test}
    for role, array in arrays.items():
        if role == skip:
            continue
        name = NAMES[role].replace("-idx", ".idx") if dotted else NAMES[role]
        content = images_bytes(array) if role.endswith("images") else labels_bytes(array)
        write(folder / name, content, gz)
    return arrays


def expect_data_error(call, *fragments: str) -> str:
    """Run ``call``; it must raise a one-line DataError containing every fragment."""
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.fixture
def nothing_configured(monkeypatch, tmp_path):
    """No NNSCRATCH_DATA, and an empty user cache; returns the cache folder."""
    monkeypatch.delenv("NNSCRATCH_DATA", raising=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("NNSCRATCH_CACHE", str(cache))
    return cache


# --- the full MNIST ---------------------------------------------------------------------------


def test_full_data_shapes_and_dtypes(full_mnist):
    d = full_mnist
    assert d.x_train.shape == (60_000, 784) and d.x_test.shape == (10_000, 784)
    assert d.y_train.shape == (60_000,) and d.y_test.shape == (10_000,)
    assert d.x_train.dtype == np.uint8 and d.x_test.dtype == np.uint8
    assert d.y_train.dtype == np.int64 and d.y_test.dtype == np.int64
    for array in (d.x_train, d.y_train, d.x_test, d.y_test):
        assert array.flags.c_contiguous and array.flags.writeable and array.flags.owndata
    assert d.y_train.min() == 0 and d.y_train.max() == 9
    assert not d.is_sample and "60,000" in d.source and "10,000" in d.source


def test_full_data_known_facts(full_mnist):
    assert full_mnist.y_train[0] == 5 and full_mnist.y_test[0] == 7
    assert np.bincount(full_mnist.y_train).tolist() == FULL_TRAIN_COUNTS
    assert np.bincount(full_mnist.y_test).tolist() == FULL_TEST_COUNTS


def test_full_pixels_match_an_independent_read(full_mnist):
    folder = Path(os.environ["NNSCRATCH_DATA"])
    gz_path, raw_path = folder / "train-images-idx3-ubyte.gz", folder / "train-images-idx3-ubyte"
    content = gzip.open(gz_path).read() if gz_path.exists() else raw_path.read_bytes()
    expected = np.frombuffer(content, dtype=np.uint8, offset=16).sum(dtype=np.int64)
    assert full_mnist.x_train.sum(dtype=np.int64) == expected
    assert full_mnist.x_train[0].tobytes() == content[16:16 + 784]


# --- the bundled sample -----------------------------------------------------------------------


def test_sample_is_used_when_nothing_is_configured(nothing_configured):
    data = load_mnist()
    assert data.is_sample
    assert len(data.x_train) == len(data.y_train) == 8_000
    assert len(data.x_test) == len(data.y_test) == 2_000
    assert set(data.y_train.tolist()) == set(range(10)) == set(data.y_test.tolist())
    assert SAMPLE_HINT in data.source and "not the full MNIST" in data.source
    source = find_mnist()
    assert source.kind == "sample" and source.location == SAMPLE_DIR


def test_sample_keeps_each_digit_share(full_mnist, nothing_configured):
    sample = load_mnist()
    for sample_labels, full_labels in ((sample.y_train, full_mnist.y_train),
                                       (sample.y_test, full_mnist.y_test)):
        share = np.bincount(full_labels) * len(sample_labels) / len(full_labels)
        assert np.all(np.abs(np.bincount(sample_labels, minlength=10) - share) < 1)


def test_sample_is_small():
    total = sum(path.stat().st_size for path in SAMPLE_DIR.glob("*.gz"))
    assert 0 < total <= 2 * 1024 * 1024


def test_sample_is_reproducible(full_mnist, tmp_path):
    script = ROOT / "tools" / "make_sample.py"
    result = subprocess.run(
        [sys.executable, str(script), "--source", os.environ["NNSCRATCH_DATA"],
         "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in NAMES.values():
        rebuilt = gzip.decompress((tmp_path / f"{name}.gz").read_bytes())
        bundled = gzip.decompress((SAMPLE_DIR / f"{name}.gz").read_bytes())
        assert rebuilt == bundled, name


def test_stratified_selection_is_proportional_sorted_and_seeded():
    labels = np.repeat(np.arange(10), [50, 30, 20, 10, 10, 10, 10, 20, 20, 20])  # 200 images
    chosen = stratified_indices(labels, 20, np.random.default_rng(7))
    assert len(chosen) == 20 and np.all(np.diff(chosen) > 0)
    assert np.bincount(labels[chosen], minlength=10).tolist() == [5, 3, 2, 1, 1, 1, 1, 2, 2, 2]
    again = stratified_indices(labels, 20, np.random.default_rng(7))
    other = stratified_indices(labels, 20, np.random.default_rng(8))
    assert np.array_equal(chosen, again) and not np.array_equal(chosen, other)


def test_quotas_give_leftovers_to_largest_remainders():
    labels = np.repeat(np.arange(10), [3, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # 12 images
    # Shares of 5: 1.25 for digit 0, 5/12 for the others. The floors sum to 1; the 4 leftovers go
    # to the largest remainders (5/12 beats 0.25), ties to the lower digits.
    assert class_quotas(labels, 5).tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]


# --- where the data comes from ----------------------------------------------------------------


@pytest.fixture
def three_places(tmp_path, monkeypatch, nothing_configured):
    """Distinct tiny data sets (3, 4 and 5 training images) for the explicit, env and cache
    places; NNSCRATCH_DATA is left unset."""
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    make_folder(explicit, n_train=3)
    make_folder(env, n_train=4)
    make_folder(nothing_configured / "mnist", n_train=5, gz=True)
    return explicit, env, nothing_configured / "mnist"


def test_explicit_path_beats_env_and_cache(three_places, monkeypatch):
    explicit, env, _ = three_places
    monkeypatch.setenv("NNSCRATCH_DATA", str(env))
    assert find_mnist(explicit) == DataSource("path", explicit, "given explicitly")
    data = load_mnist(str(explicit))
    assert len(data.x_train) == 3 and not data.is_sample and str(explicit) in data.source


def test_env_beats_cache(three_places, monkeypatch):
    _, env, _ = three_places
    monkeypatch.setenv("NNSCRATCH_DATA", str(env))
    assert find_mnist() == DataSource("env", env, "from NNSCRATCH_DATA")
    assert len(load_mnist().x_train) == 4


def test_cache_beats_sample(three_places):
    _, _, cache = three_places
    assert find_mnist() == DataSource("cache", cache, "found in the user cache")
    data = load_mnist()
    assert len(data.x_train) == 5 and not data.is_sample


def test_empty_env_variable_counts_as_unset(three_places, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_DATA", "")
    assert find_mnist().kind == "cache"


def test_partial_cache_falls_through_to_the_sample(nothing_configured):
    make_folder(nothing_configured / "mnist", skip="test_labels")
    assert find_mnist().kind == "sample"
    assert load_mnist().is_sample


def test_user_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NNSCRATCH_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "nnscratch"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "nnscratch"
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"


# --- file formats -----------------------------------------------------------------------------


def test_raw_and_gz_give_the_same_arrays(tmp_path):
    written = make_folder(tmp_path / "raw")
    make_folder(tmp_path / "gz", gz=True)
    raw, gz = load_mnist(tmp_path / "raw"), load_mnist(tmp_path / "gz")
    assert np.array_equal(raw.x_train, written["train_images"].reshape(3, 784))
    assert np.array_equal(raw.y_test, written["test_labels"])
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a, b = getattr(raw, name), getattr(gz, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name


@pytest.mark.parametrize("gz", [False, True])
def test_dotted_file_names_work(tmp_path, gz):
    written = make_folder(tmp_path, dotted=True, gz=gz)
    data = load_mnist(tmp_path)
    assert np.array_equal(data.x_test, written["test_images"].reshape(2, 784))
    assert data.y_train.tolist() == [0, 1, 2]


def test_readers_return_owned_contiguous_arrays(tmp_path):
    images, labels = random_split(4, seed=1)
    x = read_idx_images(write(tmp_path / "i", images_bytes(images), gz=True))
    y = read_idx_labels(write(tmp_path / "l", labels_bytes(labels)))
    assert x.shape == (4, 784) and x.dtype == np.uint8 and y.dtype == np.int64
    assert x.flags.c_contiguous and x.flags.writeable and x.flags.owndata
    assert np.array_equal(x, images.reshape(4, 784)) and y.tolist() == [0, 1, 2, 3]


# --- invalid files ----------------------------------------------------------------------------


def images_file(tmp_path, content: bytes, gz: bool = False) -> Path:
    return write(tmp_path / "train-images-idx3-ubyte", content, gz)


def test_images_with_the_labels_magic(tmp_path):
    path = images_file(tmp_path, labels_bytes(np.arange(3)))
    expect_data_error(lambda: read_idx_images(path), path.name, "magic", "0x00000801",
                      "expected 0x00000803")


def test_labels_with_the_images_magic(tmp_path):
    path = write(tmp_path / "t10k-labels-idx1-ubyte", images_bytes(random_split(1, 0)[0]))
    expect_data_error(lambda: read_idx_labels(path), path.name, "magic", "0x00000803",
                      "expected 0x00000801")


def test_compressed_file_without_gz_suffix_gets_a_hint(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(gzip.compress(images_bytes(random_split(1, 0)[0])))
    expect_data_error(lambda: read_idx_images(path), path.name, "magic", ".gz suffix")


def test_images_must_be_28x28(tmp_path):
    path = images_file(tmp_path, idx_bytes(IMAGES_MAGIC, (2, 27, 28), bytes(2 * 27 * 28)))
    expect_data_error(lambda: read_idx_images(path), path.name, "27x28")


def test_truncated_raw_file(tmp_path):
    path = images_file(tmp_path, idx_bytes(IMAGES_MAGIC, (3, 28, 28), bytes(2 * 784)))
    expect_data_error(lambda: read_idx_images(path), path.name, "truncated", "3 images")


@pytest.mark.parametrize("gz, count", [(False, "5 unexpected trailing bytes"),
                                       (True, "unexpected trailing bytes")])
def test_trailing_bytes(tmp_path, gz, count):
    path = images_file(tmp_path, idx_bytes(IMAGES_MAGIC, (2, 28, 28), bytes(2 * 784 + 5)), gz)
    expect_data_error(lambda: read_idx_images(path), path.name, count)


def test_truncated_gz_file(tmp_path):
    images = random_split(3, 0)[0]
    compressed = gzip.compress(images_bytes(images))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    expect_data_error(lambda: read_idx_images(path), path.name, "truncated")


def test_gz_file_that_is_not_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(labels_bytes(np.arange(10)))
    expect_data_error(lambda: read_idx_labels(path), path.name, "not a valid gzip file")


def test_gz_file_with_a_bad_checksum(tmp_path):
    compressed = bytearray(gzip.compress(labels_bytes(np.arange(10))))
    compressed[-8] ^= 0xFF  # the trailer's CRC-32 of the content
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(compressed))
    expect_data_error(lambda: read_idx_labels(path), path.name, "not a valid gzip file")


@pytest.mark.parametrize("suffix, content", [("", b""), (".gz", b""), (".gz", gzip.compress(b""))],
                         ids=["raw", "zero-byte gz", "gz of nothing"])
def test_empty_file(tmp_path, suffix, content):
    path = tmp_path / f"train-labels-idx1-ubyte{suffix}"
    path.write_bytes(content)
    expect_data_error(lambda: read_idx_labels(path), path.name, "is empty")


@pytest.mark.parametrize("gz", [False, True])
def test_header_shorter_than_declared(tmp_path, gz):
    path = images_file(tmp_path, struct.pack(">II", IMAGES_MAGIC, 5), gz)  # 1 of 3 dimensions
    expect_data_error(lambda: read_idx_images(path), path.name, "truncated header")


def test_file_shorter_than_a_magic_number(tmp_path):
    path = images_file(tmp_path, b"\x00\x00")
    expect_data_error(lambda: read_idx_images(path), path.name, "truncated")


@pytest.mark.parametrize("gz", [False, True])
def test_huge_declared_count_fails_without_allocating(tmp_path, gz):
    path = images_file(tmp_path, idx_bytes(IMAGES_MAGIC, (2**31, 28, 28), bytes(84)), gz)
    with traced_peak() as peak:
        expect_data_error(lambda: read_idx_images(path), path.name, "truncated", "2,147,483,648")
    assert peak.bytes < 8 * 2**20  # a real allocation for the header's count would be 1.6 TB


def test_label_out_of_range(tmp_path):
    path = write(tmp_path / "train-labels-idx1-ubyte", labels_bytes(np.array([1, 2, 10, 3])))
    expect_data_error(lambda: read_idx_labels(path), path.name, "label 10", "index 2")


def test_image_and_label_counts_must_match(tmp_path):
    make_folder(tmp_path, n_test=2)
    labels = write(tmp_path / NAMES["test_labels"], labels_bytes(np.arange(3)))
    message = expect_data_error(lambda: load_mnist(tmp_path), labels.name, NAMES["test_images"])
    assert "2 images" in message and "3 labels" in message


def test_missing_file_in_folder(tmp_path):
    make_folder(tmp_path, skip="test_labels")
    message = expect_data_error(lambda: load_mnist(tmp_path), str(tmp_path), "missing",
                                NAMES["test_labels"])
    assert NAMES["train_images"] not in message


def test_explicit_path_that_does_not_exist(tmp_path, monkeypatch):
    make_folder(tmp_path / "env")
    monkeypatch.setenv("NNSCRATCH_DATA", str(tmp_path / "env"))  # no falling through to it
    missing = tmp_path / "nowhere"
    expect_data_error(lambda: load_mnist(missing), str(missing), "does not exist")
    expect_data_error(lambda: find_mnist(missing), str(missing), "does not exist")


def test_env_variable_naming_an_empty_folder(tmp_path, monkeypatch, nothing_configured):
    make_folder(nothing_configured / "mnist")  # a valid cache must not hide the mistake
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("NNSCRATCH_DATA", str(empty))
    expect_data_error(load_mnist, "NNSCRATCH_DATA", str(empty), NAMES["train_images"])


# --- the package's names ------------------------------------------------------------------------

OLD_DATA_NAMES = [
    "MnistData", "DataSource", "load_mnist", "find_mnist", "explain_mnist", "read_idx_images",
    "read_idx_labels", "read_csv", "read_npz", "user_cache_dir", "as_pixels", "as_labels",
    "class_quotas", "stratified_indices", "SAMPLE_HINT", "ENV_VAR", "CACHE_ENV_VAR",
    "DOWNLOAD_ENV_VAR", "HOLDOUT_SEED",
]
OLD_DOWNLOAD_NAMES = [
    "MIRRORS", "MIRRORS_ENV_VAR", "PINNED", "TIMEOUT_SECONDS", "Fetched", "configured_mirrors",
    "download_mnist", "has_record", "verify_cached",
]
DATASET_NAMES = [
    "load_dataset", "find_dataset", "explain_dataset", "download_dataset", "DATASETS", "Dataset",
    "get_dataset", "dataset_names",
]


def test_the_data_package_keeps_the_names_of_the_modules_it_replaced():
    import nnscratch.data as data
    import nnscratch.download as old_download
    import nnscratch.inputs as inputs

    assert sorted(data.__all__) == sorted(OLD_DATA_NAMES + OLD_DOWNLOAD_NAMES + DATASET_NAMES)
    assert all(hasattr(data, name) for name in data.__all__)
    assert all(getattr(old_download, name) is getattr(data, name) for name in OLD_DOWNLOAD_NAMES)
    assert data.as_pixels is inputs.as_pixels and data.as_labels is inputs.as_labels



# --- wrong argument types: the project's own error in one sentence, never numpy's or a TypeError --


def _wrong_type_calls():
    from nnscratch.data import (MnistData, download_mnist, load_mnist, read_csv, read_idx_images,
                                read_idx_labels, read_npz, verify_cached)
    from nnscratch.data.tables import (read_npz_table, read_rows, read_table, read_table_data,
                                       split_table, table_from_arrays)

    x, y = np.zeros((3, 784), np.uint8), np.array([0, 1, 2])
    table = table_from_arrays(np.eye(4), [0, 1, 0, 1])
    return {
        "read_idx_images(3)": (lambda: read_idx_images(3), "must be a file path"),
        "read_idx_labels(None)": (lambda: read_idx_labels(None), "must be a file path"),
        "read_csv(b'x.csv')": (lambda: read_csv(b"x.csv"), "x.csv does not exist"),  # bytes name a file too
        "read_npz([path])": (lambda: read_npz(["mnist.npz"]), "must be a file path"),
        "read_table(2.5)": (lambda: read_table(2.5), "must be a file path"),
        "read_table(label_column=3)": (lambda: read_table("t.csv", label_column=3),
                                       "label column must be a column name"),
        "read_rows(width='3')": (lambda: read_rows("t.csv", "3"), "feature count"),
        "read_npz_table(fraction='a')": (lambda: read_npz_table("t.npz", fraction="a"),
                                         "fraction must be a number"),
        "read_table_data(test_data=7)": (lambda: read_table_data("t.csv", test_data=7),
                                         "test data path"),
        "split_table(seed='x')": (lambda: split_table(table, seed="x"), "seed must be"),
        "split_table(fraction=None)": (lambda: split_table(table, fraction=None), "fraction"),
        "split_table(array)": (lambda: split_table(np.eye(3)), "takes a Table"),
        "load_mnist(42)": (lambda: load_mnist(42), "must be a file path"),
        "load_mnist(download='yes')": (lambda: load_mnist(download="yes"),
                                       "download must be True, False or None"),
        "download_mnist(folder=1)": (lambda: download_mnist(1), "download folder"),
        "download_mnist(mirrors=str)": (lambda: download_mnist("f", mirrors="http://a/"),
                                        "mirrors must be a list"),
        "download_mnist(timeout='5')": (lambda: download_mnist("f", timeout="5"), "timeout"),
        "verify_cached(folder=1.5)": (lambda: verify_cached(1.5, []), "cache folder"),
        "MnistData(lists)": (lambda: MnistData([[0] * 784], [0], x, y, "s", False),
                             "x_train must be a NumPy array"),
        "MnistData(float labels)": (lambda: MnistData(x, y.astype(float), x, y, "s", False),
                                    "y_train has dtype float64"),
        "MnistData(short labels)": (lambda: MnistData(x, y[:2], x, y, "s", False),
                                    "y_train has shape (2,), but its inputs have 3 rows"),
        "MnistData(label 10)": (lambda: MnistData(x, y, x, np.array([0, 10, 1]), "s", False,
                                                  dataset="fashion-mnist"),
                                "y_test has label 10 at index 1"),
        "MnistData(label past classes)": (lambda: MnistData(x, y, x, y, "s", False,
                                                            classes=("a", "b")),
                                          "label 2 at index 2; labels must be class numbers 0..1"),
        "MnistData(negative label)": (lambda: MnistData(x, np.array([0, -1, 1]), x, y, "s",
                                                        False), "label -1"),
        "MnistData(narrow test)": (lambda: MnistData(x, y, x[:, :700], y, "s", False),
                                   "x_test has rows of 700 values but x_train of 784"),
        "MnistData(strings)": (lambda: MnistData(x.astype(str), y, x, y, "s", False),
                               "inputs must be numbers"),
        "MnistData(1-D inputs)": (lambda: MnistData(x[0], y, x, y, "s", False), "shape (784,)"),
    }


@pytest.mark.parametrize("call", sorted(_wrong_type_calls()))
def test_wrong_argument_types_are_one_sentence(call, tmp_path, monkeypatch):
    from nnscratch.errors import NNScratchError

    monkeypatch.chdir(tmp_path)  # relative names in the calls point at nothing there
    function, words = _wrong_type_calls()[call]
    with pytest.raises(NNScratchError) as info:
        function()
    message = str(info.value)
    assert "\n" not in message and words in message, message


def test_hand_built_mnist_data_keeps_its_arrays_and_makes_labels_int64():
    from nnscratch.data import MnistData

    x = np.zeros((3, 784), np.uint8)
    y64, y8 = np.array([0, 1, 2]), np.array([2, 1, 0], dtype=np.uint8)
    data = MnistData(x, y64, x, y8, "s", False)
    assert data.x_train is x and data.y_train is y64  # nothing copied
    assert data.y_test.dtype == np.int64 and data.y_test.tolist() == [2, 1, 0]
    images = MnistData(x.reshape(3, 28, 28), y64, x, y64, "s", False)  # images as (n, h, w)
    assert images.x_train.shape == (3, 28, 28)
