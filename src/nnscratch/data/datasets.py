"""The named data sets nnscratch can load and download: one row of :data:`DATASETS` each.

Every set here is stored as MNIST is (the same four IDX files of 28x28 images and labels 0-9),
so reading and validating it is the same code; what differs is its title, the names of its
classes, where its publisher serves it and the checksums the files are pinned to. Only MNIST
ships a bundled sample and reads ``NNSCRATCH_DATA``.

Kuzushiji-MNIST is not here: its publisher (ROIS-CODH, https://github.com/rois-codh/kmnist)
gives no checksum for its files, and a pin copied from a third party would not say that the
files are the publisher's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import DataError

__all__ = ["Pin", "Dataset", "DATASETS", "DEFAULT_DATASET", "get_dataset", "dataset_names"]


@dataclass(frozen=True)
class Pin:
    """What one downloaded IDX file must be.

    ``size``: bytes of IDX data once decompressed (for a pin of the .gz file it only bounds what
    a mirror may send, since a gzip file is never much larger than its content); ``digest``: a
    hex digest by ``algorithm``, of the decompressed data, or of the .gz file as the publisher
    serves it when ``of_gzip_file``.
    """

    size: int
    digest: str
    algorithm: str = "sha256"
    of_gzip_file: bool = False

    @property
    def checksum_name(self) -> str:
        """The algorithm as people write it: "SHA-256", "MD5"."""
        return {"sha256": "SHA-256", "md5": "MD5"}.get(self.algorithm, self.algorithm.upper())


@dataclass(frozen=True)
class Dataset:
    """One named data set: how it is called, shown, labelled, downloaded and verified."""

    name: str  # on the command line (--dataset) and as its cache folder's name
    title: str  # in sentences: "Fashion-MNIST"
    classes: tuple[str, ...]  # the name of each label, 0 first
    mirrors: tuple[str, ...]  # base URLs of the four .gz files, tried in order
    pins: Mapping[str, Pin]  # IDX file name (no .gz) -> what it must be
    has_sample: bool = False

    @property
    def checksum_name(self) -> str:
        return next(iter(self.pins.values())).checksum_name

    @property
    def download_command(self) -> str:
        suffix = "" if self.name == DEFAULT_DATASET else f" --dataset {self.name}"
        return f"nnscratch data download{suffix}"

    @property
    def has_named_classes(self) -> bool:
        """Whether the classes have names other than their numbers (MNIST's digits do not)."""
        return self.classes != tuple(str(label) for label in range(len(self.classes)))


def _idx_sizes(n_train: int, n_test: int) -> dict[str, int]:
    """Bytes of each decompressed IDX file: a 16-byte header and 784 pixels per image, an 8-byte
    header and one byte per label."""
    return {"train-images-idx3-ubyte": 16 + 784 * n_train, "train-labels-idx1-ubyte": 8 + n_train,
            "t10k-images-idx3-ubyte": 16 + 784 * n_test, "t10k-labels-idx1-ubyte": 8 + n_test}


# Pinned on the decompressed IDX bytes rather than on the .gz files: the mirrors serve the
# original release's gzip files (train-images-idx3-ubyte.gz hashes to 440fcabf...), while other
# faithful copies were recompressed and differ as .gz files, not once decompressed. Pinning the
# content accepts every faithful copy and still rejects any changed byte of data.
_MNIST_SIZES = _idx_sizes(60_000, 10_000)
MNIST_PINS = {
    "train-images-idx3-ubyte": Pin(
        _MNIST_SIZES["train-images-idx3-ubyte"],
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": Pin(
        _MNIST_SIZES["train-labels-idx1-ubyte"],
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": Pin(
        _MNIST_SIZES["t10k-images-idx3-ubyte"],
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": Pin(
        _MNIST_SIZES["t10k-labels-idx1-ubyte"],
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

# MD5 of the .gz files, because that is what the publisher publishes: the "MD5 Checksum"
# column of the table under "Get the Data" in https://github.com/zalandoresearch/fashion-mnist
# (README.md). MD5 is no defence against a forger, but the point here is that the files are
# the publisher's, intact, and the publisher's own checksum is the one that says so.
_FASHION_SIZES = _idx_sizes(60_000, 10_000)
_FASHION_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_PINS = {name: Pin(_FASHION_SIZES[name], md5, "md5", of_gzip_file=True)
                      for name, md5 in _FASHION_MD5.items()}

DEFAULT_DATASET = "mnist"

DATASETS: Mapping[str, Dataset] = {
    "mnist": Dataset(
        "mnist", "MNIST", tuple(str(digit) for digit in range(10)),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",  # PyTorch's mirror
         "https://storage.googleapis.com/cvdf-datasets/mnist/"),  # Google's, used by TensorFlow
        MNIST_PINS, has_sample=True),
    "fashion-mnist": Dataset(
        "fashion-mnist", "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),  # Zalando's own
        FASHION_MNIST_PINS),
}


def dataset_names() -> tuple[str, ...]:
    """The names :func:`get_dataset` knows, MNIST first."""
    return tuple(DATASETS)


def get_dataset(name: str | Dataset) -> Dataset:
    """The data set called ``name``; DataError naming the known ones for any other name."""
    if isinstance(name, Dataset):
        return name
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(DATASETS)
        raise DataError(f"unknown data set {str(name)[:40]!r}; nnscratch knows {known}") from None
