"""Which format holds the data: a folder's from the file names in it, a file's from its content.

A folder holds MNIST when it has the four original IDX files (each raw or ``.gz``, with dashes,
``train-images-idx3-ubyte``, or dots, ``train-images.idx3-ubyte``), or ``mnist_train.csv`` and
``mnist_test.csv``, or Kaggle's ``train.csv``, or ``mnist.npz``. A file's format is recognised
from its content, not its name: an ``.npz`` archive, a CSV with the label first (with or without
a header row, optionally gzip-compressed), or one of the four IDX files (its folder is read).

A storage format is one reader (:mod:`.readers`) plus one row in :data:`FORMATS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .._fileio import ZIP_SIGNATURES, os_reason
from ..errors import DataError
from .readers import (GZIP_MAGIC, IDX_MAGICS, read_csv, read_head, read_idx_images,
                      read_idx_labels, read_npz, require_one_label_each)

__all__ = ["Arrays", "Format", "Match", "FORMATS", "match_folder", "require_data"]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
# x_train, y_train, x_test, y_test; the test pair is None for data that comes without one.

_IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Format:
    """One way MNIST can be stored."""

    name: str  # shown in MnistData.source
    names: Mapping[str, tuple[str, ...]]  # role -> file names looked for in a folder, best first
    read: Callable[[Mapping[str, Path]], Arrays]


@dataclass(frozen=True)
class Match:
    format: Format
    location: Path  # the folder, or the file, that holds the data
    files: Mapping[str, Path]  # role -> file found
    missing: tuple[str, ...]  # names of the files not found, for the error message


def _idx_spellings(name: str) -> tuple[str, ...]:
    dotted = name.replace("-idx", ".idx")
    return (name, f"{name}.gz", dotted, f"{dotted}.gz")  # raw first: it reads faster


def _read_idx_files(files: Mapping[str, Path]) -> Arrays:
    x_train, y_train = _read_idx_split(files["train_images"], files["train_labels"])
    x_test, y_test = _read_idx_split(files["test_images"], files["test_labels"])
    return x_train, y_train, x_test, y_test


def _read_idx_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx_images(images_path), read_idx_labels(labels_path)
    require_one_label_each(len(images), len(labels), str(images_path), str(labels_path))
    return images, labels


def _read_csv_pair(files: Mapping[str, Path]) -> Arrays:
    return (*read_csv(files["train"]), *read_csv(files["test"]))


def _read_training_csv(files: Mapping[str, Path]) -> Arrays:
    return (*read_csv(files["train"]), None, None)


def _read_npz_file(files: Mapping[str, Path]) -> Arrays:
    return read_npz(files["npz"])


_IDX_FORMAT = Format("IDX", {role: _idx_spellings(name) for role, name in _IDX_NAMES.items()},
                      _read_idx_files)
_CSV_PAIR_FORMAT = Format("CSV", {"train": ("mnist_train.csv", "mnist_train.csv.gz"),
                                   "test": ("mnist_test.csv", "mnist_test.csv.gz")},
                           _read_csv_pair)
_KAGGLE_FORMAT = Format("CSV (Kaggle's train.csv)", {"train": ("train.csv", "train.csv.gz")},
                         _read_training_csv)
_NPZ_FORMAT = Format("npz", {"npz": ("mnist.npz",)}, _read_npz_file)
FORMATS: tuple[Format, ...] = (_IDX_FORMAT, _CSV_PAIR_FORMAT, _KAGGLE_FORMAT, _NPZ_FORMAT)
# A file given directly is read by the format its content shows (an IDX file: by its folder).
_FILE_FORMATS = {"csv": Format("CSV", {"train": ()}, _read_training_csv), "npz": _NPZ_FORMAT}


def _find_files(fmt: Format, folder: Path) -> Match:
    files, missing = {}, []
    for role, spellings in fmt.names.items():
        # exists(), not is_file(): a FIFO or a folder under a data file's name is found, and
        # its reader refuses it in words, rather than being reported missing.
        found = next((folder / s for s in spellings if (folder / s).exists()), None)
        if found is None:
            missing.append(spellings[0])
        else:
            files[role] = found
    return Match(fmt, folder, files, tuple(missing))


def match_folder(folder: Path) -> Match:
    """The first format complete in ``folder``, else the partly present one missing fewest
    files, else (an empty folder) the IDX format, the one the error message describes."""
    matches = [_find_files(fmt, folder) for fmt in FORMATS]
    complete = [match for match in matches if not match.missing]
    if complete:
        return complete[0]
    partial = [match for match in matches if match.files]
    return min(partial, key=lambda match: len(match.missing)) if partial else matches[0]


def _match_file(path: Path) -> Match:
    kind = file_kind(path)
    if kind != "idx":
        fmt = _FILE_FORMATS[kind]
        return Match(fmt, path, {next(iter(fmt.names)): path}, ())
    match = _find_files(_IDX_FORMAT, path.parent)
    if match.missing:
        raise DataError(f"{path} is an MNIST IDX file, but its folder {path.parent} is missing "
                        f"{_describe_missing(match)}")
    if path.resolve() not in {found.resolve() for found in match.files.values()}:
        raise DataError(f"{path} is an IDX file but not one of the four MNIST files in its "
                        f"folder ({', '.join(_IDX_NAMES.values())}, each raw or .gz)")
    return match


def require_data(location: Path, owner: str) -> Match:
    """The complete match at ``location`` (a folder or a file); ``owner`` says whose path it is
    in the error otherwise."""
    try:
        if not location.exists():
            raise DataError(f"{owner} path {location} does not exist")
        if not location.is_dir():  # a FIFO or a device too: its reader refuses it in words
            return _match_file(location)
        match = match_folder(location)
    except OSError as exc:  # a folder on the way that may not be entered, say
        raise DataError(f"{owner} path {location} cannot be read: {os_reason(exc)}") from None
    if match.missing:
        raise DataError(f"{owner} folder {location} is missing {_describe_missing(match)}")
    return match


def _describe_missing(match: Match) -> str:
    names = ", ".join(match.missing)
    if match.files:
        return f"{names} (each raw or .gz)"
    others = ", ".join(" with ".join(spellings[0] for spellings in fmt.names.values())
                       for fmt in FORMATS if fmt is not match.format)
    return (f"all the MNIST {match.format.name} files ({names}, each raw or .gz) and holds "
            f"no other format nnscratch reads ({others})")


# --- recognising a file's format from its content ----------------------------------------------


def file_kind(path: Path) -> str:
    """``"idx"``, ``"csv"`` or ``"npz"``: what the file at ``path`` holds, from its first bytes."""
    head = read_head(path)
    compressed = head[:2] == GZIP_MAGIC
    if compressed:
        head = read_head(path, compressed=True)
    if not head:
        raise DataError(f"{path} is empty")
    if head[:4] in ZIP_SIGNATURES and not compressed:
        return "npz"
    if int.from_bytes(head[:4], "big") in IDX_MAGICS:
        return "idx"
    if _looks_like_csv(head):
        return "csv"
    raise DataError(f"{path} is in no format nnscratch reads: it is neither MNIST IDX, nor CSV "
                    "(a label, then 784 pixels per row), nor an .npz archive")


def _looks_like_csv(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut in two by the end of the head
            return False
        text = head[:exc.start].decode("utf-8")
    text = text.lstrip("\ufeff")
    first_line = next((line for line in text.splitlines() if line.strip()), "")  # blanks skipped
    return "," in first_line and all(ch.isprintable() or ch in "\r\n\t" for ch in text)
