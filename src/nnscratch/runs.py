"""Run folders: what one training run leaves behind, and the checkpoint that lets it continue.

A run folder holds::

    config.json        the settings, the data and the versions; written when the run starts
    metrics.csv        one row per finished epoch (learning rate, losses, accuracies, seconds)
    checkpoint.npz     while the run is unfinished: parameters, optimiser state and position
    model.npz          the trained model, an ordinary model file (load_model, nnscratch evaluate)
    predictions.npz    the test set's labels and predictions and the worst mistakes' images
    report.html        the report (see :mod:`nnscratch.report`), with its figures as PNG files

Every file is written under a temporary name and renamed into place, so each one is whole or
absent; nothing here is ever pickled. A checkpoint is an ``.npz`` of arrays (``param.W1``...,
``optim.<slot>.W1``..., ``best.W1``... for early stopping) and ``__state__``, the UTF-8 bytes of
a JSON object: the position in the run (epoch, step, the batch-order generator's state at the
start of that epoch, the epoch's running sums, the history) and the optimiser's scalars.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NNScratchError, RunFolderError
from ._fileio import atomic_file, json_text, write_text

__all__ = [
    "CONFIG", "METRICS", "CHECKPOINT", "MODEL", "PREDICTIONS", "REPORT", "METRIC_COLUMNS",
    "is_model_path", "check_model_target", "create_run_folder", "open_run_folder",
    "write_text", "write_config", "read_config", "write_metrics", "read_metrics",
    "write_checkpoint", "read_checkpoint", "write_predictions", "read_predictions",
    "data_fingerprint",
]

CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
PREDICTIONS = "predictions.npz"
REPORT = "report.html"
METRIC_COLUMNS = ("epoch", "lr", "loss", "train_accuracy", "val_loss", "val_accuracy",
                  "test_loss", "test_accuracy", "seconds")

RUN_FORMAT = "nnscratch-run"
CHECKPOINT_FORMAT = "nnscratch-checkpoint"
FORMAT_VERSION = 1
STATE_KEY = "__state__"
#: How many of the most confidently wrong test images predictions.npz keeps, for the report.
WORST_KEPT = 64


# --- where things go ----------------------------------------------------------------------------

def is_model_path(path: str | os.PathLike) -> bool:
    """True when ``--out``/``out=`` names a model file (ends in ``.npz``), not a run folder."""
    return os.fspath(path).lower().endswith(".npz")


def check_model_target(path: str | os.PathLike) -> Path:
    """Check before training, not after it, that a model file can be written at ``path``."""
    target = Path(path)
    if target.is_dir():
        raise NNScratchError(f"cannot write the model to {path}: it is a folder")
    folder = target.parent
    if not folder.is_dir():
        raise NNScratchError(f"cannot write the model to {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise NNScratchError(f"cannot write the model to {path}: folder {folder} is not writable")
    return target


def _default_name(parent: Path, layer_sizes: Sequence[int]) -> Path:
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + "-".join(map(str, layer_sizes))
    candidate, n = parent / stem, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{stem}-{n}"
    return candidate


def create_run_folder(out: str | os.PathLike, layer_sizes: Sequence[int]) -> Path:
    """Make the folder for a new run and return it.

    ``out`` is the run folder itself (created with its parents; an existing one must be empty),
    or, when it ends with a slash, the folder to make a new run in, named after the time and the
    layer sizes (e.g. ``runs/20250101-120000-784-128-10``).
    """
    text = os.fspath(out)
    folder = Path(text)
    if text.endswith(("/", os.sep)):
        folder.mkdir(parents=True, exist_ok=True)
        folder = _default_name(folder, layer_sizes)
    elif folder.exists():
        _check_reusable(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {folder}: "
                             f"{exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise RunFolderError(f"cannot write to the run folder {folder}: permission denied")
    return folder


def _check_reusable(folder: Path) -> None:
    if not folder.is_dir():
        raise RunFolderError(f"cannot make a run folder at {folder}: a file is in the way "
                             f"(a path ending in .npz writes just the model file)")
    if (folder / CONFIG).exists():
        state = "a finished" if (folder / MODEL).exists() else "an unfinished"
        hint = "" if state == "a finished" else f" (continue it with --resume {folder})"
        raise RunFolderError(f"{folder} already holds {state} run{hint}; choose another --out, "
                             f"or end it with / to make a new run inside it")
    if any(folder.iterdir()):
        raise RunFolderError(f"{folder} is a folder of other files, not a new run folder; choose "
                             f"another --out, or end it with / to make a new run inside it")


def open_run_folder(run: str | os.PathLike) -> Path:
    """The folder of an existing run (one holding config.json), or a one-sentence error."""
    folder = Path(run)
    if not folder.is_dir():
        raise RunFolderError(f"run folder {run} does not exist")
    if not (folder / CONFIG).is_file():
        raise RunFolderError(f"{run} is not a run folder: it has no {CONFIG}")
    return folder


# --- text files -------------------------------------------------------------------------------

def write_config(folder: Path, config: Mapping[str, Any]) -> None:
    """Write config.json: ``config`` plus the format name and version."""
    record = {"format": RUN_FORMAT, "format_version": FORMAT_VERSION, **config}
    write_text(folder / CONFIG, json_text(record, indent=2) + "\n")


def read_config(folder: Path) -> dict[str, Any]:
    """The run's config.json, checked to be one that nnscratch wrote."""
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}") from None
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise RunFolderError(f"{path} is not an nnscratch run configuration")
    if config.get("format_version") != FORMAT_VERSION:
        raise RunFolderError(f"{path} has format version {config.get('format_version')!r}; "
                             f"this nnscratch reads version {FORMAT_VERSION}")
    return config


def _cell(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def write_metrics(folder: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write metrics.csv: a header and one row per epoch (empty cells for missing values;
    floats written in full, so reading them back gives the same numbers)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in METRIC_COLUMNS])
    write_text(folder / METRICS, buffer.getvalue())


def read_metrics(folder: Path) -> list[dict[str, float | int | None]]:
    """The rows of metrics.csv as dicts of numbers (None for empty cells); [] if it is absent."""
    path = folder / METRICS
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [{key: _number(key, value) for key, value in row.items()}
                    for row in csv.DictReader(handle)]
    except (OSError, ValueError, TypeError) as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}") from None


def _number(key: str, value: str | None) -> float | int | None:
    if value is None or value == "":
        return None
    return int(value) if key == "epoch" else float(value)


# --- checkpoints ----------------------------------------------------------------------------------

def write_checkpoint(folder: Path, arrays: Mapping[str, np.ndarray],
                     state: Mapping[str, Any]) -> Path:
    """Write checkpoint.npz: ``arrays`` (host arrays, numeric) and ``state`` (JSON-able)."""
    record = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, **state}
    blob = np.frombuffer(json_text(record).encode("utf-8"), dtype=np.uint8)
    path = folder / CHECKPOINT
    with atomic_file(path) as handle:
        np.savez(handle, **arrays, **{STATE_KEY: blob})
    return path


def read_checkpoint(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and state of the run's checkpoint, or None if it has none."""
    path = folder / CHECKPOINT
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: np.array(archive[name]) for name in archive.files}
        state = json.loads(arrays.pop(STATE_KEY).tobytes().decode("utf-8"))
    except (OSError, KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as exc:
        raise RunFolderError(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise RunFolderError(f"checkpoint {path} was not written by nnscratch")
    if state.get("format_version") != FORMAT_VERSION:
        raise RunFolderError(f"checkpoint {path} has format version "
                             f"{state.get('format_version')!r}; this nnscratch reads "
                             f"version {FORMAT_VERSION}")
    return arrays, state


# --- the test set's predictions, for the report -----------------------------------------------

def write_predictions(folder: Path, probs: np.ndarray, labels: np.ndarray,
                      images: np.ndarray) -> None:
    """Write predictions.npz from the test set's ``probs`` (n, 10), ``labels`` (n,) and uint8
    ``images`` (n, 784): every label and prediction, and the :data:`WORST_KEPT` mistakes made
    with the most confidence, with their images and probabilities."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:WORST_KEPT]
    with atomic_file(folder / PREDICTIONS) as handle:
        np.savez(handle, labels=labels.astype(np.int64), predicted=predicted.astype(np.int64),
                 worst_index=worst.astype(np.int64), worst_images=images[worst],
                 worst_probs=probs[worst].astype(np.float64))


def read_predictions(folder: Path) -> dict[str, np.ndarray] | None:
    """The arrays of predictions.npz, or None if the run has none (it has not finished)."""
    path = folder / PREDICTIONS
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.array(archive[name]) for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RunFolderError(f"{path} cannot be read ({type(exc).__name__})") from None


def data_fingerprint(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                     y_test: np.ndarray) -> dict[str, int]:
    """Counts and checksums of the labels: enough to tell whether a resumed run was given the
    data it started on, in milliseconds even for the full MNIST."""
    return {"n_train": len(x_train), "n_test": len(x_test),
            "train_labels_crc32": zlib.crc32(np.ascontiguousarray(y_train, np.int64).tobytes()),
            "test_labels_crc32": zlib.crc32(np.ascontiguousarray(y_test, np.int64).tobytes())}
