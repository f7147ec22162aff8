"""Where a data set (MNIST, Fashion-MNIST: :mod:`.datasets`) comes from, and loading it from there.

Where the data comes from, first match wins (:func:`find_dataset` says which, and
:func:`explain_dataset` why, without reading the data):

1. the path passed explicitly (``load_dataset(NAME, PATH)``, ``--data PATH``): it must hold the
   data;
2. for MNIST only, the path named by ``NNSCRATCH_DATA``, when set and non-empty: it must hold
   the data;
3. ``user_cache_dir() / NAME`` (``mnist``, ``fashion-mnist``), if it holds a complete data set (a
   partial cache is skipped). Files that nnscratch downloaded there are checked against their
   pins on every use (cheaply: see :mod:`nnscratch.data.download`); a file that fails is not
   used, and the user is told;
4. a verified download into that cache, only where allowed: ``load_dataset(NAME, download=True)``
   or ``NNSCRATCH_DOWNLOAD=1``, so that nothing ever waits on the network unasked;
5. for MNIST only, the small sample bundled with the package (8,000 + 2,000 real MNIST images),
   so that everything runs out of the box; :attr:`MnistData.is_sample` and
   :attr:`MnistData.source` say so. Another set found nowhere is a DataError saying how to get
   it.

:func:`load_mnist`, :func:`find_mnist` and :func:`explain_mnist` are these for MNIST.

A path names a folder or a file in any format :mod:`.formats` recognises. Data without a test set
gets one held out (:mod:`.split`), which the source sentence reports. A place to look is one
function in :data:`_FALLBACKS`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._fileio import os_reason
from ..errors import ConfigError, DataError
from .cache import dataset_cache_dir
from .datasets import DEFAULT_DATASET, Dataset, get_dataset
from .download import download_dataset, has_record, verify_cached
from .formats import Match, match_folder, require_data
from .readers import data_path
from .split import hold_out_test

__all__ = [
    "MnistData",
    "DataSource",
    "load_mnist",
    "find_mnist",
    "explain_mnist",
    "load_dataset",
    "find_dataset",
    "explain_dataset",
    "SAMPLE_HINT",
    "ENV_VAR",
    "DOWNLOAD_ENV_VAR",
]

ENV_VAR = "NNSCRATCH_DATA"
DOWNLOAD_ENV_VAR = "NNSCRATCH_DOWNLOAD"

SAMPLE_HINT = (
    "To use the full MNIST, pass --data PATH (or data=PATH in Python) or set "
    f"{ENV_VAR}=PATH, where PATH is a folder with the four MNIST IDX files (raw or .gz) or a "
    "CSV or .npz file; or run 'nnscratch data download' (or set "
    f"{DOWNLOAD_ENV_VAR}=1) to download it into the user cache."
)

# The sample ships inside the package (package-data in pyproject.toml), beside this subpackage.
_SAMPLE_DIR = Path(__file__).parent.parent / "sample"


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class MnistData:
    """A training and a test set: uint8 pixels as (n, 784) rows, int64 labels 0-9, of the data
    set named :attr:`dataset` (MNIST unless said otherwise).

    The loaders' arrays are C-contiguous, writable and owned by this object (nothing else holds
    them). One built by hand is checked on construction, in one DataError sentence per problem:
    inputs a NumPy array of numbers, (n, d) rows or (n, h, w) images, the test set as wide as the
    training set; labels 1-D integers, one per row, from 0 to the class count less one (the
    count is ``len(classes)`` when given, the named data set's otherwise; MNIST's own data
    counts its classes from its labels). The checks look at shapes and dtypes and take one
    minimum and maximum of each label array, so nothing is copied except labels of another
    integer dtype, which become int64.
    """

    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    source: str
    is_sample: bool
    #: The file or folder the data was read from (``None`` for the bundled sample and for data
    #: made from arrays): a run folder records it so that ``--resume`` finds the same data.
    location: Path | None = None
    #: The name of the data set (see :mod:`nnscratch.data.datasets`): a run folder records it.
    dataset: str = DEFAULT_DATASET
    #: The labels the class numbers in ``y_train`` and ``y_test`` stand for, when they are not
    #: the numbers themselves (strings, say): the model keeps them and predicts them.
    classes: tuple[Any, ...] | None = None
    #: None for pixels (uint8, divided by 255 on the backend); for features already prepared,
    #: how (see :func:`nnscratch.inputs.fit_scaling`): the model keeps it for new inputs.
    inputs: dict[str, Any] | None = None
    #: For data read from a table: how to read it again (its label column and test table), so
    #: that a run folder can be resumed from the command line.
    table: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        width = _input_width(self.x_train, "x_train")
        if _input_width(self.x_test, "x_test") != width:
            raise DataError(f"MnistData x_test has rows of {_input_width(self.x_test, 'x_test')} "
                            f"values but x_train of {width}; both need the same inputs")
        classes = self._class_count()
        for name, inputs in (("y_train", self.x_train), ("y_test", self.x_test)):
            # Frozen, so set through object: only labels of another integer dtype are replaced.
            object.__setattr__(self, name, _checked_labels(getattr(self, name), name,
                                                           len(inputs), classes))

    def _class_count(self) -> int | None:
        """How many classes the labels may number, when known before looking at them."""
        if self.classes is not None:
            if not isinstance(self.classes, tuple):
                raise DataError(f"MnistData classes must be a tuple of labels or None, not "
                                f"{type(self.classes).__name__}")
            return len(self.classes)
        if self.dataset != DEFAULT_DATASET:
            return len(get_dataset(self.dataset).classes)
        return None  # MNIST's own, or arrays of any number of classes

    @property
    def class_names(self) -> tuple[str, ...]:
        """The name of each label, 0 first: "0"-"9" for MNIST, "T-shirt/top", ... for
        Fashion-MNIST."""
        return get_dataset(self.dataset).classes


def _input_width(x: Any, name: str) -> int:
    """The values per row of the inputs ``x``, after checking what they are."""
    if not isinstance(x, np.ndarray):
        raise DataError(f"MnistData {name} must be a NumPy array, not {type(x).__name__}")
    if x.dtype.kind not in "iuf":
        raise DataError(f"MnistData {name} has dtype {x.dtype}; inputs must be numbers (uint8 "
                        "pixels, or features)")
    if x.ndim not in (2, 3) or x.shape[0] == 0 or 0 in x.shape[1:]:
        raise DataError(f"MnistData {name} has shape {x.shape}; inputs must be (n, d) rows or "
                        "(n, h, w) images, at least one")
    return math.prod(x.shape[1:])


def _checked_labels(y: Any, name: str, n: int, classes: int | None) -> np.ndarray:
    """``y`` as int64 labels (not copied when it is that), after checking them."""
    if not isinstance(y, np.ndarray):
        raise DataError(f"MnistData {name} must be a NumPy array, not {type(y).__name__}")
    if y.dtype.kind not in "iu":
        raise DataError(f"MnistData {name} has dtype {y.dtype}; labels must be integers (class "
                        "numbers 0, 1, 2...)")
    if y.shape != (n,):
        raise DataError(f"MnistData {name} has shape {y.shape}, but its inputs have {n:,} rows; "
                        "each row needs exactly one label")
    low, high = int(y.min()), int(y.max())
    top = classes if classes is not None else 2**63
    if low < 0 or high >= top:
        bad = int(np.flatnonzero((y < 0) | (y >= top))[0])
        allowed = f"0..{classes - 1}" if classes is not None else "0 or more"
        raise DataError(f"MnistData {name} has label {y[bad]} at index {bad}; labels must be "
                        f"class numbers {allowed}")
    return y if y.dtype == np.int64 else y.astype(np.int64)


@dataclass(frozen=True)
class DataSource:
    """Where :func:`load_mnist` would read the data from, and why that place was chosen."""

    kind: str  # "path" | "env" | "cache" | "download" | "sample"
    location: Path  # the folder or file holding the data (for "download": the cache folder)
    reason: str


# --- the places, in order -------------------------------------------------------------------

_OWNERS = {  # whose path it is, for error messages
    "path": "data",
    "env": ENV_VAR,
    "cache": "user cache",
    "download": "user cache",
    "sample": "bundled sample",
}
_TRUE_WORDS, _FALSE_WORDS = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class _Skip:
    """A place that does not provide the data, and why; ``notable`` when the user should hear
    it even though a later place provides the data."""

    why: str
    notable: bool = False


def find_mnist(path: str | os.PathLike | None = None, *,
               download: bool | None = None) -> DataSource:
    """Where :func:`load_mnist` would read MNIST from right now, and why (see
    :func:`find_dataset`); MNIST is always found, if only as the bundled sample."""
    source = find_dataset(DEFAULT_DATASET, path, download=download)
    assert source is not None, "the bundled sample is MNIST's last fallback and always answers"
    return source


def explain_mnist(path: str | os.PathLike | None = None, *,
                  download: bool | None = None) -> list[tuple[str, str]]:
    """:func:`explain_dataset` for MNIST."""
    return explain_dataset(DEFAULT_DATASET, path, download=download)


def find_dataset(name: str | Dataset, path: str | os.PathLike | None = None, *,
                 download: bool | None = None) -> DataSource | None:
    """Where :func:`load_dataset` would read the data set ``name`` from right now, and why;
    None when no place holds it (only a set without a bundled sample: not MNIST).

    Reads no data beyond the first bytes of a file given as ``path`` and, for a file in the
    user cache whose size or modification time changed since it was verified, its checksum.
    ``download`` is as for :func:`load_dataset`. Raises DataError for an unknown name, and when
    ``path`` or (for MNIST) ``NNSCRATCH_DATA`` names a place without the data.
    """
    dataset = get_dataset(name)
    if path is not None:
        return _from_path(path, dataset)
    return _resolve(dataset, _download_permission(download))[0]


def _resolve(dataset: Dataset, allowed: str | None) -> tuple[DataSource | None, list[str]]:
    """The first fallback place that provides ``dataset``, with the notable reasons why the
    places before it did not; (None, those reasons) when none does."""
    notes = []
    for _place, fallback in _FALLBACKS:
        found = fallback(dataset, allowed)
        if isinstance(found, DataSource):
            return dataclasses.replace(found, reason="; ".join([found.reason, *notes])), notes
        if found.notable:
            notes.append(found.why)
    return None, notes


def explain_dataset(name: str | Dataset, path: str | os.PathLike | None = None, *,
                    download: bool | None = None) -> list[tuple[str, str]]:
    """Each place :func:`find_dataset` looks at, in order, with what it found there: pairs of
    (place, finding), the one that provides the data marked "used"."""
    dataset = get_dataset(name)
    chosen = find_dataset(dataset, path, download=download)
    given = "none given" if path is None or chosen is None else f"used: {chosen.location}"
    rows = [("explicit path", given)]
    allowed = _download_permission(download)
    for place, fallback in _FALLBACKS:
        try:
            found = fallback(dataset, allowed)
        except DataError as exc:  # a place that find_dataset did not need to look at
            rows.append((place, f"unusable: {exc}"))
            continue
        if isinstance(found, _Skip):
            rows.append((place, found.why))
            continue
        used = path is None and chosen is not None and found.kind == chosen.kind
        status = "used" if used else "not needed"
        rows.append((place, f"{status}: {found.location} ({found.reason})"))
    return rows


def _from_path(path: str | os.PathLike, dataset: Dataset) -> DataSource:
    location = data_path(path)  # a str or PathLike, then, or a ConfigError
    if not os.fspath(path):
        raise DataError(f"the data path is empty; give a folder or file holding {dataset.title}")
    match = require_data(location, _OWNERS["path"])  # data_path has expanded ~
    return DataSource("path", match.location, "given explicitly")


def _download_permission(download: bool | None) -> str | None:
    """What allows downloading (for the source sentence), or None if it is not allowed."""
    if download is not None:
        if not isinstance(download, (bool, np.bool_)):
            raise ConfigError(f"download must be True, False or None, not "
                              f"{type(download).__name__} {str(download)[:40]!r}")
        return "download=True" if download else None
    value = os.environ.get(DOWNLOAD_ENV_VAR, "")
    if value.strip().lower() in _TRUE_WORDS:
        return f"{DOWNLOAD_ENV_VAR}={value}"
    if value.strip().lower() in _FALSE_WORDS:
        return None
    raise DataError(f"{DOWNLOAD_ENV_VAR} is {value[:40]!r}; set it to 1 to allow downloading "
                    "data sets into the user cache, or to 0 (or unset it) to forbid it")


def _from_env(dataset: Dataset, _download: str | None) -> DataSource | _Skip:
    value = os.environ.get(ENV_VAR)
    if not value:
        return _Skip("not set")
    if dataset.name != DEFAULT_DATASET:
        return _Skip(f"not used: it names MNIST data, not {dataset.title}")
    match = require_data(Path(value).expanduser(), _OWNERS["env"])
    return DataSource("env", match.location, f"from {ENV_VAR}")


def _from_cache(dataset: Dataset, _download: str | None) -> DataSource | _Skip:
    # A partial cache (an interrupted copy, say) is skipped silently: nobody asked for it.
    folder = dataset_cache_dir(dataset.name)
    try:
        match = match_folder(folder) if folder.is_dir() else None
    except OSError as exc:  # a cache folder that may not be entered
        return _Skip(f"the user cache {folder} cannot be read: {os_reason(exc)}", notable=True)
    if match is None or match.missing:
        return _Skip(f"{folder} holds no complete {dataset.title}")
    if not has_record(folder):  # filled by hand, not by nnscratch: nothing to verify against
        return DataSource("cache", folder, "found in the user cache")
    problem = verify_cached(folder, match.files.values(), dataset)
    if problem:
        return _Skip(f"the user cache was not used: {problem}", notable=True)
    return DataSource("cache", folder, f"found in the user cache, verified against pinned "
                                       f"{dataset.checksum_name} checksums")


def _from_download(dataset: Dataset, download: str | None) -> DataSource | _Skip:
    if download is None:
        return _Skip(f"off: run '{dataset.download_command}', or set {DOWNLOAD_ENV_VAR}=1 to "
                     "download automatically")
    return DataSource("download", dataset_cache_dir(dataset.name),
                      f"not in the user cache, and {download} allows downloading it")


def _from_sample(dataset: Dataset, _download: str | None) -> DataSource | _Skip:
    if not dataset.has_sample:
        return _Skip(f"none for {dataset.title}: only MNIST ships one")
    require_data(_SAMPLE_DIR, _OWNERS["sample"])
    return DataSource("sample", _SAMPLE_DIR, "no data was configured")


_FALLBACKS: tuple[tuple[str, Callable[[Dataset, str | None], DataSource | _Skip]], ...] = (
    (ENV_VAR, _from_env),
    ("user cache", _from_cache),
    ("download", _from_download),
    ("bundled sample", _from_sample),
)


def load_mnist(path: str | os.PathLike | None = None, *,
               download: bool | None = None) -> MnistData:
    """Load MNIST from ``path`` (a folder or a file), else from the first place in the module's
    resolution order.

    ``download``: whether the full MNIST may be downloaded into the user cache when no earlier
    place holds it; None (the default) allows it only if ``NNSCRATCH_DOWNLOAD=1``.
    """
    return load_dataset(DEFAULT_DATASET, path, download=download)


def load_dataset(name: str, path: str | os.PathLike | None = None, *,
                 download: bool | None = None) -> MnistData:
    """Load the data set ``name`` ("mnist", "fashion-mnist") from ``path`` (a folder or a file
    holding that set, in any format :func:`load_mnist` reads), else from the first place in the
    module's resolution order: for MNIST ``NNSCRATCH_DATA``, the user cache, a download, the
    bundled sample; for the others the user cache (``user_cache_dir() / name``) or a download.

    ``download``: whether the full set may be downloaded into the user cache when no earlier
    place holds it; None (the default) allows it only if ``NNSCRATCH_DOWNLOAD=1``. Raises
    DataError for an unknown name, and for a set that is nowhere, saying how to get it.
    """
    dataset = get_dataset(name)
    source = find_dataset(dataset, path, download=download)
    if source is None:
        raise DataError(_not_available(dataset))
    if source.kind == "download":
        download_dataset(dataset, source.location)
    match = require_data(source.location, _OWNERS[source.kind])
    x_train, y_train, x_test, y_test = match.format.read(match.files)
    note = ""
    if x_test is None or y_test is None:
        (x_train, y_train, x_test, y_test), note = hold_out_test(x_train, y_train, match.location)
    description = _describe_source(dataset, source, match, len(x_train), len(x_test), note)
    is_sample = source.kind == "sample"
    return MnistData(x_train, y_train, x_test, y_test, description, is_sample,
                     None if is_sample else source.location.resolve(), dataset.name)


def _not_available(dataset: Dataset) -> str:
    _, notes = _resolve(dataset, None)
    where = (f"not in the user cache ({dataset_cache_dir(dataset.name)})" if not notes
             else f"not usable from the user cache ({'; '.join(notes)})")
    return (f"{dataset.title} is {where} and downloading it is off: run "
            f"'{dataset.download_command}' (or set {DOWNLOAD_ENV_VAR}=1 to download it on first "
            f"use), or give --data PATH")


def _describe_source(dataset: Dataset, source: DataSource, match: Match, n_train: int,
                     n_test: int, note: str) -> str:
    counts = f"{n_train:,} training and {n_test:,} test images"
    if source.kind == "sample":
        return (f"The small sample bundled with nnscratch in {source.location} ({counts}), "
                f"not the full MNIST of 60,000 + 10,000 ({source.reason}). {SAMPLE_HINT}")
    what = "file" if match.location.is_file() else "files"
    reason = "downloaded and verified" if source.kind == "download" else source.reason
    return (f"{dataset.title} {match.format.name} {what} in {match.location} ({reason}): "
            f"{counts}{note}.")
