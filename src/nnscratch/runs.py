"""Run folders: what one training run leaves behind, and the checkpoint that lets it continue.

A run folder holds::

    config.json        the settings, the data and nnscratch's version; written when it starts
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

import contextlib
import csv
import io
import math
import os
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NNScratchError, RunFolderError
from ._fileio import (TEMP_SUFFIX, atomic_file, check_memory, json_text, make_folder,
                      open_regular, read_json, read_npy_header, sweep_temporary_files,
                      write_error, write_text)

try:
    import fcntl
except ImportError:  # Windows: run folders are not locked there
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CONFIG", "METRICS", "CHECKPOINT", "MODEL", "PREDICTIONS", "REPORT", "METRIC_COLUMNS",
    "is_model_path", "check_model_target", "create_run_folder", "open_run_folder",
    "RunFolderLock", "LOCK",
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
#: Held (``flock``) by the process training in the folder; holds its PID. Removed when it ends.
LOCK = ".lock"
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


def _new_named_folder(parent: Path, layer_sizes: Sequence[int]) -> Path:
    """A new folder in ``parent`` named after the time and the layer sizes; made here, with
    ``exist_ok=False``, so that two runs started in the same second get a folder each."""
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + "-".join(map(str, layer_sizes))
    for n in range(1, 10_000):
        candidate = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_error(candidate, exc, "the run folder") from None
        return candidate
    raise RunFolderError(f"cannot find a free name for a new run in {parent}")


def create_run_folder(out: str | os.PathLike,
                      layer_sizes: Sequence[int]) -> tuple[Path, RunFolderLock]:
    """Make the folder for a new run and lock it; return it with its lock (release it when the
    run ends).

    ``out`` is the run folder itself (created with its parents; an existing one must be empty),
    or, when it ends with a slash, the folder to make a new run in, named after the time and the
    layer sizes (e.g. ``runs/20250101-120000-784-128-10``). A folder that cannot be made (a file
    in the way, a read-only disk) is a :class:`~nnscratch.errors.WriteError`; one that another
    process is training in, a :class:`~nnscratch.errors.RunFolderError` naming its PID.
    """
    text = os.fspath(out)
    if text.endswith(("/", os.sep)):
        parent = make_folder(text, "the folder for new runs")
        folder, created = _new_named_folder(parent, layer_sizes), True
    else:
        folder = Path(text)
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"cannot make a run folder at {folder}: a file is in the way "
                                 f"(a path ending in .npz writes just the model file)")
        created = not folder.exists()
        make_folder(folder, "the run folder")
    lock = RunFolderLock(folder, created=created)
    try:
        _check_reusable(folder)  # under the lock: another process cannot start here meanwhile
    except BaseException:
        lock.release()
        raise
    return folder, lock


def _check_reusable(folder: Path) -> None:
    if (folder / CONFIG).exists():
        state = "a finished" if (folder / MODEL).exists() else "an unfinished"
        hint = "" if state == "a finished" else f" (continue it with --resume {folder})"
        raise RunFolderError(f"{folder} already holds {state} run{hint}; choose another --out, "
                             f"or end it with / to make a new run inside it")
    if any(not _ours(path) for path in folder.iterdir()):
        raise RunFolderError(f"{folder} is a folder of other files, not a new run folder; choose "
                             f"another --out, or end it with / to make a new run inside it")


def _ours(path: Path) -> bool:
    """The lock, or a temporary file a killed run left (swept when the folder is locked)."""
    return path.name == LOCK or (path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX))


class RunFolderLock:
    """An exclusive lock on a run folder while a process trains in it: ``.lock`` in the folder,
    held with ``flock`` (released by the system when the process ends, however it ends) and
    holding the process's PID. Taking it sweeps the temporary files a killed run left behind;
    a second process is refused with a :class:`~nnscratch.errors.RunFolderError` naming the
    holder's PID. Not available on Windows, where it does nothing. ``created``: the folder was
    made for this run, so :meth:`release` removes it if the run wrote nothing in it."""

    def __init__(self, folder: Path, created: bool = False) -> None:
        self.folder, self.path, self.fd, self.created = folder, folder / LOCK, None, created
        if fcntl is None:
            return
        while self.fd is None:
            self.fd = self._take()
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        sweep_temporary_files(folder)

    def _take(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise write_error(self.path, exc, "the lock file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderError(f"{self.folder} is in use: another nnscratch process (PID "
                                 f"{holder}) is training in it; wait for it to end or stop "
                                 f"it") from None
        try:  # the holder before us may have removed the file after we opened it: take anew
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(fd).st_ino:
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        """Remove the lock file and let go of the lock (again: nothing); remove the folder too
        if it was made for the run and the run left nothing in it (its first write failed)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only if empty


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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What each field of config.json must be, when present ("layer_sizes" and "training" must be).
_CONFIG_FIELDS: dict[str, tuple[Any, str]] = {
    "layer_sizes": (lambda v: isinstance(v, list) and len(v) >= 2
                    and all(_is_int(n) and n > 0 for n in v),
                    "a list of at least two positive layer sizes"),
    "training": (lambda v: isinstance(v, dict), "an object of settings"),
    "data": (lambda v: v is None or isinstance(v, str), "a path or null"),
    "dataset": (lambda v: isinstance(v, str), "a data set's name"),
    "data_source": (lambda v: isinstance(v, str), "text"),
    "started": (lambda v: isinstance(v, str), "text"),
    "nnscratch_version": (lambda v: isinstance(v, str), "text"),
    "table": (lambda v: isinstance(v, dict) and all(
        v.get(key) is None or isinstance(v.get(key), str) for key in ("label_column", "test_data")),
              "an object of a label column and a test table's path"),
    "data_fingerprint": (lambda v: isinstance(v, dict) and all(_is_int(n) for n in v.values()),
                         "an object of counts and checksums"),
}


def read_config(folder: Path) -> dict[str, Any]:
    """The run's config.json, checked to be one that nnscratch wrote: its format and version,
    and each field it holds of the kind nnscratch writes there."""
    path = folder / CONFIG
    try:
        config = read_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        raise RunFolderError(f"{path} cannot be read: {' '.join(reason.split())}") from None
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        raise RunFolderError(f"{path} is not an nnscratch run configuration")
    if config.get("format_version") != FORMAT_VERSION:
        raise RunFolderError(f"{path} has format version {config.get('format_version')!r:.40}; "
                             f"this nnscratch reads version {FORMAT_VERSION}")
    for name, (check, kind) in _CONFIG_FIELDS.items():
        required = name in ("layer_sizes", "training")
        if (name in config or required) and not check(config.get(name)):
            raise RunFolderError(f"{path} is damaged: its {name!r} is not {kind}")
    return config


def _cell(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write a CSV table atomically: the header ``columns``, then a line per row (empty cells
    for missing values; floats written in full, so reading them back gives the same numbers)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    write_text(path, buffer.getvalue())


def write_metrics(folder: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write metrics.csv: a header and one row per epoch (see :func:`write_csv`)."""
    write_csv(folder / METRICS, METRIC_COLUMNS, rows)


def read_metrics(folder: Path) -> list[dict[str, float | int | None]]:
    """The rows of metrics.csv as dicts of numbers (None for empty cells); [] if it is absent.
    Its header must be nnscratch's, each row's epoch the next one, each number finite."""
    path = folder / METRICS
    if not path.exists():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        raise RunFolderError(f"{path} cannot be read: {' '.join(reason.split())}") from None
    if not lines or tuple(lines[0]) != METRIC_COLUMNS:
        raise RunFolderError(f"{path} is damaged: its header is not "
                             f"{','.join(METRIC_COLUMNS)}")
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        try:
            if len(cells) != len(METRIC_COLUMNS):
                raise ValueError(f"{len(cells)} cells, not {len(METRIC_COLUMNS)}")
            row = {key: _number(key, value) for key, value in zip(METRIC_COLUMNS, cells)}
            if row["epoch"] != len(rows) + 1:
                raise ValueError(f"epoch {row['epoch']} where epoch {len(rows) + 1} belongs")
        except ValueError as exc:
            raise RunFolderError(f"{path} is damaged at line {number}: {exc}") from None
        rows.append(row)
    return rows


def _number(key: str, value: str) -> float | int | None:
    if value == "":
        if key in ("epoch", "lr", "loss", "train_accuracy"):
            raise ValueError(f"its {key} is empty")
        return None
    if key == "epoch":
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"its {key} is {value}")
    return number


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


#: An array of a run file: its dtypes (kind letters or dtypes) and shape (None: any length;
#: the shape None: any shape).
ArraySpec = tuple[tuple[str, ...], "tuple[int | None, ...] | None"]
_NUMERIC: ArraySpec = (("f", "i", "u"), None)


def read_arrays(path: Path, specs: Mapping[str, ArraySpec] | None,
                what: str) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path``, each checked against its spec (the dtypes it may
    have, its shape) from the member's header, before any data is read: a name not in
    ``specs``, another dtype or shape, or a size beyond the memory this machine has is a
    RunFolderError naming ``what`` and the array; nothing is ever unpickled. ``specs`` None
    takes numeric arrays of any name and shape."""
    arrays: dict[str, np.ndarray] = {}
    try:
        with open_regular(path, RunFolderError, what) as handle, \
                zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if (specs is not None and name not in specs) or name in arrays:
                    raise RunFolderError(f"{what} {path} is damaged: it holds an unexpected "
                                         f"member {info.filename!r:.60}")
                spec = _NUMERIC if specs is None else specs[name]
                with archive.open(info) as member:
                    arrays[name] = _read_member(member, path, name, spec, what)
    except RunFolderError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile,
            NotImplementedError, RuntimeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise RunFolderError(f"{what} {path} is corrupt or truncated ({reason:.120})") from None
    return arrays


def _read_member(member: Any, path: Path, name: str, spec: ArraySpec,
                 what: str) -> np.ndarray:
    kinds, shape = spec
    header = read_npy_header(member)
    wrong = (shape is not None and len(header.shape) != len(shape)
             or any(want is not None and got != want
                    for got, want in zip(header.shape, shape or ()))
             or not any(header.dtype == np.dtype(k) if len(k) > 1 else header.dtype.kind == k
                        for k in kinds))
    if wrong:
        raise RunFolderError(f"{what} {path} is damaged: array {name!r} has shape "
                             f"{header.shape} and dtype {header.dtype}, which nnscratch "
                             f"never writes there")
    count = math.prod(header.shape)
    check_memory(count * header.dtype.itemsize, f"array {name!r} of {what} {path}",
                 RunFolderError)
    data = member.read(count * header.dtype.itemsize)
    if len(data) != count * header.dtype.itemsize:
        raise RunFolderError(f"{what} {path} is truncated: array {name!r} ends early")
    order = "F" if header.fortran_order else "C"
    return np.frombuffer(data, header.dtype).reshape(header.shape, order=order).copy()


def read_checkpoint(folder: Path, specs: Mapping[str, ArraySpec] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and state of the run's checkpoint, or None if it has none. ``specs`` names
    every array it may hold, with its dtypes and shape (None: numeric arrays of any name);
    which of them must be there, and the state's content, are checked by the caller, which
    knows the run (:mod:`nnscratch.checkpoint`)."""
    path = folder / CHECKPOINT
    if not path.exists():
        return None
    state_spec: dict[str, ArraySpec] = {STATE_KEY: (("u1",), (None,))}
    arrays = read_arrays(path, None if specs is None else {**specs, **state_spec},
                         "checkpoint")
    if STATE_KEY not in arrays:
        raise RunFolderError(f"checkpoint {path} is damaged: it has no {STATE_KEY}")
    try:
        state = read_json(arrays.pop(STATE_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"checkpoint {path} is damaged: its state cannot be read "
                             f"({' '.join(str(exc).split()):.120})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise RunFolderError(f"checkpoint {path} was not written by nnscratch")
    if state.get("format_version") != FORMAT_VERSION:
        raise RunFolderError(f"checkpoint {path} has format version "
                             f"{state.get('format_version')!r:.40}; this nnscratch reads "
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


def read_predictions(folder: Path, config: Mapping[str, Any] | None = None
                     ) -> dict[str, np.ndarray] | None:
    """The arrays of predictions.npz, or None if the run has none (it has not finished),
    checked against the run's ``config`` (its config.json, read when not given): one label and
    one prediction per test row, each a class of the network's output, the worst mistakes' rows
    as wide as its input, their probabilities finite and between 0 and 1."""
    path = folder / PREDICTIONS
    if not path.exists():
        return None
    config = read_config(folder) if config is None else config
    inputs, classes = config["layer_sizes"][0], config["layer_sizes"][-1]
    n = config.get("data_fingerprint", {}).get("n_test")
    specs: dict[str, ArraySpec] = {
        "labels": (("i",), (n,)), "predicted": (("i",), (n,)),
        "worst_index": (("i",), (None,)), "worst_images": (("u1", "f"), (None, inputs)),
        "worst_probs": (("f",), (None, classes))}
    arrays = read_arrays(path, specs, "the predictions file")
    problem = _predictions_problem(arrays, specs, classes)
    if problem:
        raise RunFolderError(f"the predictions file {path} is damaged: {problem}")
    return arrays


def _predictions_problem(arrays: Mapping[str, np.ndarray], specs: Mapping[str, Any],
                         classes: int) -> str | None:
    missing = [name for name in specs if name not in arrays]
    if missing:
        return f"it has no {missing[0]!r}"
    labels, predicted, worst = arrays["labels"], arrays["predicted"], arrays["worst_index"]
    if len(labels) != len(predicted):
        return "it holds a different number of labels and predictions"
    for name, values, bound in (("labels", labels, classes), ("predicted", predicted, classes),
                                ("worst_index", worst, len(labels))):
        if len(values) and (values.min() < 0 or values.max() >= bound):
            return f"its {name!r} holds values outside 0-{bound - 1}"
    if not len(arrays["worst_images"]) == len(arrays["worst_probs"]) == len(worst):
        return "its worst mistakes' arrays have different lengths"
    probs = arrays["worst_probs"]
    if not (np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()):
        return "its 'worst_probs' are not probabilities"
    return None


def data_fingerprint(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                     y_test: np.ndarray) -> dict[str, int]:
    """Counts and checksums of the labels: enough to tell whether a resumed run was given the
    data it started on, in milliseconds even for the full MNIST."""
    return {"n_train": len(x_train), "n_test": len(x_test),
            "train_labels_crc32": zlib.crc32(np.ascontiguousarray(y_train, np.int64).tobytes()),
            "test_labels_crc32": zlib.crc32(np.ascontiguousarray(y_test, np.int64).tobytes())}
