"""Any classification data: a table of numeric features and one label column.

- :func:`read_table` reads a CSV with a header row (optionally gzip-compressed, recognised from
  its first bytes) as a :class:`Table`;
- :func:`table_from_arrays` makes the same :class:`Table` from NumPy arrays or a pandas DataFrame;
- :func:`encode_labels` turns raw labels (integers or strings) into sorted classes and int64 codes;
- :func:`split_table` holds out a seeded, stratified test set, as a :class:`TableSplit` of the
  arrays training takes.

Every problem a user can cause is a :class:`~nnscratch.errors.DataError` whose message is one
sentence naming the file and, for a cell, its line (the header is line 1) and its column (by name
and number). The numbers are parsed by numpy's C parser; only once it has refused a file, or its
result holds a non-finite value, does a slow line-by-line scan run to say where the problem is.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, DataError
from .._fileio import CHUNK_BYTES, check_memory, read_npy_header
from .readers import (GZIP_MAGIC, data_path, member_names, open_data, open_zip,
                      read_npy)
from .split import stratified_indices

__all__ = [
    "LABEL_NAMES",
    "MAX_CLASSES",
    "Table",
    "TableSplit",
    "read_table",
    "table_from_arrays",
    "encode_labels",
    "split_table",
    "held_out_data",
    "paired_data",
    "looks_like_table",
    "read_rows",
    "read_npz_table",
    "looks_like_npz_table",
    "read_table_data",
]

# Without label_column, the first header name found in this order (case-insensitive) is the label;
# failing all of them, the last column is.
LABEL_NAMES = ("label", "class", "target", "y")
# More distinct labels than this is almost always a numeric column chosen by mistake (an id, a
# measurement), not classes; and the output layer would be that wide.
MAX_CLASSES = 10_000

_INTEGER = re.compile(r"[+-]?\d+")
_SHOWN = 40  # characters of a cell or name quoted in a message


@dataclass(frozen=True, eq=False)
class Table:
    """Rows of numeric features, each with one raw label, and where they came from."""

    features: np.ndarray = field(repr=False)  # float64 (n, d), C-contiguous, all finite
    labels: np.ndarray = field(repr=False)  # (n,): int64, or str as written
    feature_names: tuple[str, ...]
    label_column: str
    #: How the label column was chosen: "given", "by name" (one of LABEL_NAMES), "last column",
    #: or "arrays" (labels handed over separately).
    label_rule: str
    source: Path | None = None  # the file read; None for arrays

    @property
    def n_rows(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        """One sentence fragment for a report: size, and which column holds the labels and why."""
        why = {"given": "as asked", "by name": "found by its name",
               "last column": "the last column", "arrays": "given separately"}[self.label_rule]
        where = f"{self.source}: " if self.source is not None else ""
        return (f"{where}{self.n_rows:,} rows of {len(self.feature_names):,} features, labels in "
                f"{self.label_column!r} ({why})")


@dataclass(frozen=True, eq=False)
class TableSplit:
    """A table split for training: float64 features and int64 codes into ``classes``."""

    x_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    classes: np.ndarray  # sorted raw labels; classes[code] is the label a code stands for
    feature_names: tuple[str, ...]
    note: str  # a sentence fragment reporting the held-out test set


# --- reading a CSV file -------------------------------------------------------------------------


def read_table(path: str | os.PathLike, *, label_column: str | None = None) -> Table:
    """Read a CSV with a header row: one label column, every other column a numeric feature.

    ``label_column`` names the label column; without it, a column named ``label``, ``class``,
    ``target`` or ``y`` (case-insensitive, in that order of preference), else the last column.
    Labels that all look like integers become int64; any others are kept as the strings written.
    """
    path = data_path(path)
    _require_label_column(label_column)
    raw = _read_bytes(path)
    _require_line_ends(raw, path)
    names = _header_names(_decoded_header(raw, path), path)
    _require_utf8_rows(raw, path)
    label_at, rule = _choose_label(names, label_column, path)
    table, labels = _parse_rows(raw, path, names, label_at)
    features = np.ascontiguousarray(np.delete(table, label_at, axis=1))
    if not np.isfinite(features).all():
        raise DataError(_locate_problem(raw, path, names, label_at))
    feature_names = tuple(name for i, name in enumerate(names) if i != label_at)
    return Table(features, labels, feature_names, names[label_at], rule, path)


def _is_gzip(path: Path) -> bool:
    with open_data(path, "a CSV", compressed=False) as stream:
        return stream.read(len(GZIP_MAGIC)) == GZIP_MAGIC


def _read_bytes(path: Path) -> bytes:
    """The whole file, gunzipped if its first bytes say so; the parser needs it all anyway.
    Read in bounded pieces, so that a gzip stream inflating past the machine's memory is
    refused as it grows rather than exhausting it."""
    chunks, size = [], 0
    with open_data(path, "a CSV", _is_gzip(path)) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            chunks.append(chunk)
            size += len(chunk)
            check_memory(2 * size, f"{path}, read and parsed,", DataError)
    raw = b"".join(chunks)
    if not raw.strip():
        raise DataError(f"{path} is empty: a table needs a header row and at least one data row")
    return raw


def _decoded_header(raw: bytes, path: Path) -> str:
    end = raw.find(b"\n")
    try:
        return raw[:end if end >= 0 else len(raw)].decode("utf-8-sig")  # -sig: drop a BOM
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} has a header (line 1) that is not UTF-8 text (byte "
                        f"{exc.object[exc.start]:#04x} cannot be decoded)") from None


def _cells(line: str, path: Path, number: int) -> list[str]:
    """The cells of one line (without its end), as the csv module splits them."""
    try:
        return next(csv.reader([line], quotechar='"'), [])
    except csv.Error as exc:
        raise DataError(f"{path} line {number} cannot be split into cells "
                        f"({' '.join(str(exc).split())})") from None


_LONE_CR = re.compile(rb"\r(?!\n)")


def _require_line_ends(raw: bytes, path: Path) -> None:
    """Refuse a carriage return that does not end a line: numpy's parser and Python's would
    split such a file into different lines, so no line number could be trusted."""
    found = _LONE_CR.search(raw)
    if found:
        line = 1 + raw.count(b"\n", 0, found.start())
        raise DataError(f"{path} line {line} holds a carriage return (\\r) that does not end "
                        "the line; lines must end with \\n or \\r\\n")


def _require_utf8_rows(raw: bytes, path: Path) -> None:
    """Refuse a byte that is not UTF-8, naming its line; the decoded copy is dropped at once, as
    the parser reads the bytes themselves (a copy of the text would triple the memory needed)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = 1 + raw.count(b"\n", 0, exc.start)
        raise DataError(f"{path} line {line} is not UTF-8 text (byte "
                        f"{exc.object[exc.start]:#04x} cannot be decoded)") from None


def _header_names(header: str, path: Path) -> list[str]:
    names = [name.strip() for name in _cells(header.rstrip("\r\n"), path, 1)]
    if not any(names):
        raise DataError(f"{path} has an empty first line; a table starts with a header row "
                        "naming its columns")
    blank = [i for i, name in enumerate(names, start=1) if not name]
    if blank:
        # pandas' to_csv() writes its index under a blank name: a feature that is no feature.
        raise DataError(f"{path} header (line 1) has no name for column {blank[0]}; every "
                        "column needs one (an unnamed first column is often a written-out index)")
    if all(_is_number(name) for name in names):
        raise DataError(f"{path} line 1 holds numbers, not a header row; nnscratch needs the "
                        "first line to name the columns")
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(f"{path} header (line 1) names column {_shown(name)} twice (columns "
                            f"{seen[name]} and {i}); column names must be unique")
        seen[name] = i
    return names


def _choose_label(names: list[str], label_column: str | None,
                  path: Path | str) -> tuple[int, str]:
    """The label column's index and how it was chosen; refuses a table with no feature left."""
    if label_column is not None:
        if label_column not in names:
            listed = ", ".join(map(_shown, names[:8])) + (", ..." if len(names) > 8 else "")
            raise DataError(f"{path} has no column named {_shown(label_column)} to take the "
                            f"labels from; its columns are {listed}")
        at, rule = names.index(label_column), "given"
    else:
        lowered = [name.lower() for name in names]
        found = [lowered.index(name) for name in LABEL_NAMES if name in lowered]
        at, rule = (found[0], "by name") if found else (len(names) - 1, "last column")
    if len(names) < 2:
        raise DataError(f"{path} has no feature columns: its only column, {_shown(names[at])}, "
                        "holds the labels")
    return at, rule


def _parse_rows(raw: bytes, path: Path, names: list[str],
                label_at: int) -> tuple[np.ndarray, np.ndarray]:
    """All columns as float64 (the label column holding indices into the labels seen) and the
    labels, row by row."""
    seen: dict[str, int] = {}

    def label_index(cell: str) -> int:
        # Called once per row: the labels' only Python-level work, about 2% of the parse.
        cell = cell.strip()
        if not cell:
            raise ValueError("missing label")
        return seen.setdefault(cell, len(seen))

    table = _parse_numbers(raw, path, names, label_at, label_index)
    if table.shape[0] == 0:
        raise DataError(f"{path} has a header but no rows")
    raw_labels = _typed_labels(list(seen))
    return table, raw_labels[table[:, label_at].astype(np.int64)]


def _parse_numbers(raw: bytes, path: Path, names: list[str], label_at: int,
                   label_index: Callable[[str], int]) -> np.ndarray:
    """Every row after the header as float64, the label column through ``label_index``."""
    with warnings.catch_warnings():
        # numpy warns about a file without rows; _parse_rows says so in one sentence.
        warnings.simplefilter("ignore", UserWarning)
        try:
            # numpy's C parser reads 100 MB of numbers in under two seconds; a Python loop over
            # its cells would take a minute. It also refuses a row of the wrong length. Given the
            # bytes, it decodes one line at a time: no second copy of the file as text.
            table = np.loadtxt(io.BytesIO(raw), delimiter=",", quotechar='"', comments=None,
                               skiprows=1, encoding="utf-8", dtype=np.float64, ndmin=2,
                               converters={label_at: label_index})
        except ValueError:
            raise DataError(_locate_problem(raw, path, names, label_at)) from None
    if table.shape[0] and table.shape[1] != len(names):  # numpy counts from the first row
        raise DataError(_locate_problem(raw, path, names, label_at))
    return table


def _typed_labels(cells: list[str]) -> np.ndarray:
    """The distinct labels as int64 if every one is written as an integer, else as str."""
    if all(_INTEGER.fullmatch(cell) for cell in cells):
        values = [int(cell) for cell in cells]
        if all(-2**63 <= value < 2**63 for value in values):
            return np.array(values, dtype=np.int64)
    return np.array(cells, dtype=str)


# --- saying where a file is malformed -----------------------------------------------------------


def _locate_problem(raw: bytes, path: Path, names: list[str], label_at: int) -> str:
    """The first malformed cell or row, found by a slow scan that runs only once the fast parse
    has failed (numpy's own message counts rows differently from one version to the next)."""
    text = io.StringIO(raw.decode("utf-8-sig"), newline=None)
    next(text)  # the header
    for number, line in enumerate(text, start=2):
        if not line.strip("\r\n"):
            continue  # numpy skips blank lines too
        cells = _cells(line.rstrip("\r\n"), path, number)
        problem = _row_problem(cells, names, label_at)
        if problem is not None:
            return f"{path} line {number}{problem}"
    return f"{path} cannot be read as a table of numbers with one label column"


def _row_problem(cells: list[str], names: list[str], label_at: int) -> str | None:
    """What is wrong with one row (a message tail starting after its line number), if anything."""
    if len(cells) != len(names):
        cells_word = "cell" if len(cells) == 1 else "cells"
        return (f" has {len(cells):,} {cells_word}, but the header names {len(names):,} columns; "
                "every row needs one cell per column")
    for at, cell in enumerate(cells):
        where = f", column {_shown(names[at])} ({at + 1})"
        text = cell.strip()
        if at == label_at:
            if not text:
                return f"{where}: the label is missing"
        elif not text:
            return f"{where}: the value is missing; every feature needs a number"
        elif not _is_number(text):
            return f"{where}: {_shown(text)} is not a number"
        elif not math.isfinite(float(text)):
            return f"{where}: {_shown(text)} is not a finite number; features must be finite"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text  # Python's float() reads 1_000; numpy's parser does not


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


# --- tables from arrays -------------------------------------------------------------------------


def table_from_arrays(x: Any, y: Any = None, *, feature_names: tuple[str, ...] | None = None,
                      label_column: str | None = None, source: str | None = None) -> Table:
    """A :class:`Table` from Python objects: ``x`` a 2-D array (or a pandas DataFrame) of numeric
    features and ``y`` its labels (integers or strings, one per row).

    With a DataFrame and no ``y``, the labels are one of its columns, chosen as
    :func:`read_table` chooses (``label_column``, else a column named like a label, else the last).
    ``source`` names the data in messages (default: "the features" / "the labels").
    """
    if _is_frame(x):
        x, y, feature_names, label_column, rule = _from_frame(x, y, label_column)
    else:
        rule = "arrays"
    features = _feature_array(x, source or "the features", feature_names)
    labels = _label_array(y, source or "the labels", len(features))
    names = tuple(feature_names) if feature_names is not None else tuple(
        f"x{i}" for i in range(1, features.shape[1] + 1))
    if len(names) != features.shape[1]:
        raise DataError(f"{len(names)} feature names were given for {features.shape[1]} "
                        "feature columns")
    return Table(features, labels, names, label_column or "y", rule,
                 Path(source) if source else None)


def _is_frame(x: Any) -> bool:
    # Duck-typed, so that pandas is never imported here (nor needed).
    return hasattr(x, "columns") and hasattr(x, "to_numpy")


def _from_frame(frame: Any, y: Any,
                label_column: str | None) -> tuple[np.ndarray, Any, list[str], str | None, str]:
    """Split a DataFrame into features, labels, feature names, label column name and rule."""
    names = [str(name) for name in frame.columns]
    values = frame.to_numpy()
    if y is not None:
        return values, y, names, label_column, "arrays"
    at, rule = _choose_label(names, label_column, "the data frame")
    return (np.delete(values, at, axis=1), values[:, at],
            names[:at] + names[at + 1:], names[at], rule)


def _feature_array(x: Any, what: str, names: tuple[str, ...] | list[str] | None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{what} must be a 2-D array (rows, features), not {x.ndim}-D of shape "
                        f"{x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{what} hold no data: shape {x.shape}; a table needs at least one row "
                        "and one feature column")
    if x.dtype.kind not in "biuf" and x.dtype != object:
        raise DataError(f"{what} have dtype {x.dtype}; features must be real numbers")
    try:
        features = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        features = None
    if features is None:  # an object column holding text
        column = next(j for j in range(x.shape[1]) if not _column_is_numeric(x[:, j]))
        raise DataError(f"{what} column {_column_name(names, column)} holds values that are not "
                        "numbers")
    _require_finite(features, what, names)
    return features


def _column_is_numeric(column: np.ndarray) -> bool:
    try:
        column.astype(np.float64)
    except (TypeError, ValueError):
        return False
    return True


def _require_finite(features: np.ndarray, what: str, names: Any) -> None:
    bad = np.argwhere(~np.isfinite(features))
    if len(bad):
        row, column = map(int, bad[0])
        raise DataError(f"{what} row {row}, column {_column_name(names, column)} is "
                        f"{features[row, column]}; features must be finite numbers")


def _column_name(names: Any, column: int) -> str:
    return f"{_shown(str(names[column]))} ({column + 1})" if names is not None else str(column + 1)


def _label_array(y: Any, what: str, n_rows: int) -> np.ndarray:
    if y is None:
        raise DataError(f"{what} are missing: give y, or a data frame with a label column")
    labels = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if labels.ndim != 1:
        raise DataError(f"{what} must be 1-D, one per row, not of shape {labels.shape}")
    if len(labels) != n_rows:
        raise DataError(f"{what} number {len(labels):,} for {n_rows:,} rows of features; each "
                        "row needs exactly one label")
    return _normalised_labels(labels, what)


def _normalised_labels(labels: np.ndarray, what: str) -> np.ndarray:
    """Labels as int64 or str; integral floats (as pandas makes of integers) become int64."""
    if labels.dtype.kind in "biu":
        return labels.astype(np.int64)
    if labels.dtype.kind == "U":
        return labels
    if labels.dtype.kind == "f":
        return _float_labels(labels, what)
    if labels.dtype == object:
        return _object_labels(labels, what)
    raise DataError(f"{what} have dtype {labels.dtype}; labels must be integers or strings")


def _float_labels(labels: np.ndarray, what: str) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
    if len(bad):
        i = int(bad[0])
        problem = "is missing" if np.isnan(labels[i]) else f"is {labels[i]}, not a whole number"
        raise DataError(f"{what}: label {i} {problem}; labels must be integers or strings")
    return labels.astype(np.int64)


def _object_labels(labels: np.ndarray, what: str) -> np.ndarray:
    for i, label in enumerate(labels):
        if label is None or (isinstance(label, float) and math.isnan(label)):
            raise DataError(f"{what}: label {i} is missing")
    kinds = {_label_kind(label) for label in labels}
    if kinds == {"int"}:
        return labels.astype(np.int64)
    if kinds == {"str"}:
        return labels.astype(str)
    raise DataError(f"{what} mix {' and '.join(sorted(kinds))} values; labels must be all "
                    "integers or all strings")


def _label_kind(label: Any) -> str:
    if isinstance(label, (str, np.str_)):
        return "str"
    if isinstance(label, (int, np.integer)):
        return "int"
    return type(label).__name__


# --- classes and the held-out split -------------------------------------------------------------


def encode_labels(labels: Any, *, source: str | os.PathLike | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels (numbers numerically, strings lexically) and, for each label, its
    int64 index into them. Refuses a single class, more than MAX_CLASSES, and mixed types;
    ``source`` (a file) is named in those refusals."""
    what = f"{source}" if source is not None else "the labels"
    labels = _normalised_labels(np.asarray(labels), what)
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"{what} must be a non-empty 1-D sequence of labels, not of shape "
                        f"{labels.shape}")
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{what} has only one class ({_shown(str(classes[0]))}); classification "
                        "needs at least two")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{what} has {len(classes):,} distinct labels, more than the "
                        f"{MAX_CLASSES:,} classes nnscratch accepts; is the label column right?")
    return classes, codes.reshape(-1).astype(np.int64)


def split_table(table: Table, fraction: float = 1 / 7, seed: int = 0) -> TableSplit:
    """Hold out ``fraction`` of the rows (rounded down, at least one) as a test set, stratified by
    class and seeded; every class keeps at least one training row."""
    if not isinstance(table, Table):
        raise ConfigError(f"split_table takes a Table, not {type(table).__name__}")
    _require_fraction(fraction)
    _require_seed(seed)
    what = f"{table.source}" if table.source is not None else "the table"
    classes, codes = encode_labels(table.labels, source=table.source)
    _require_two_of_each(classes, codes, what)
    n = len(codes)
    n_test = max(1, math.floor(n * fraction + 1e-9))  # 1e-9: 14 * (1/7) is 2, not 1.999...
    test = np.zeros(n, dtype=bool)
    test[stratified_indices(codes, n_test, np.random.default_rng(seed))] = True
    if len(np.unique(codes[~test])) < len(classes):
        raise ConfigError(f"holding out {fraction:.3g} of {what} leaves a class without training "
                          "rows; hold out a smaller fraction")
    note = (f"{n_test:,} of its {n:,} rows (stratified by class, seed {seed}) were held out as "
            "the test set")
    return TableSplit(table.features[~test], codes[~test], table.features[test], codes[test],
                      classes, table.feature_names, note)


def _require_fraction(fraction: Any) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) or not (
            0 < fraction < 1):
        raise ConfigError(f"the held-out fraction must be a number between 0 and 1, not "
                          f"{_shown(repr(fraction))}")


def _require_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the seed must be a whole number 0 or more, not {_shown(repr(seed))}")


def _require_label_column(label_column: Any) -> None:
    if label_column is not None and not isinstance(label_column, str):
        raise ConfigError(f"the label column must be a column name (a str), not "
                          f"{type(label_column).__name__} {_shown(repr(label_column))}")


def _require_two_of_each(classes: np.ndarray, codes: np.ndarray, what: str) -> None:
    counts = np.bincount(codes, minlength=len(classes))
    lonely = np.flatnonzero(counts < 2)
    if len(lonely):
        label = _shown(str(classes[lonely[0]]))
        others = f" ({len(lonely):,} classes have one)" if len(lonely) > 1 else ""
        raise DataError(f"{what} has only one row of class {label}; holding out a test set needs "
                        f"at least two rows of each class{others}")



def held_out_data(table: Table, fraction: float = 1 / 7, seed: int = 0) -> Any:
    """The table as training data (a :class:`~nnscratch.data.MnistData` of float features):
    :func:`split_table`'s stratified, seeded test set held out; the classes are the sorted
    labels, kept as the data's ``classes`` unless they are 0, 1, 2... themselves."""
    from .sources import MnistData

    split = split_table(table, fraction, seed)
    classes = tuple(split.classes.tolist())
    named = None if classes == tuple(range(len(classes))) else classes
    return MnistData(split.x_train, split.y_train, split.x_test, split.y_test,
                     f"{table.describe()}; {split.note}", False, table.source, classes=named,
                     table={"label_column": table.label_column, "test_data": None})


def paired_data(train: Table, test: Table) -> Any:
    """A training table and a test table with the same columns as training data (see
    :func:`held_out_data`); the classes are the sorted labels of both."""
    from .sources import MnistData

    if (train.feature_names, train.label_column) != (test.feature_names, test.label_column):
        raise DataError(f"{test.source} has the columns {_names(test)}, but {train.source} has "
                        f"{_names(train)}; a test table needs the training table's columns")
    classes, codes = encode_labels(np.concatenate([train.labels, test.labels]),
                                   source=train.source)
    named = None if classes.tolist() == list(range(len(classes))) else tuple(classes.tolist())
    n = train.n_rows
    return MnistData(train.features, codes[:n], test.features, codes[n:],
                     f"{train.describe()}; tested on {test.describe()}", False, train.source,
                     classes=named, table={"label_column": train.label_column,
                                           "test_data": str(Path(test.source).resolve())})


def _names(table: Table) -> str:
    shown = ", ".join(repr(name) for name in (*table.feature_names, table.label_column)[:6])
    return shown + (", ..." if len(table.feature_names) > 5 else "")


def looks_like_table(path: str | os.PathLike) -> bool:
    """Whether the CSV file at ``path`` is a table (a header row, then rows) rather than MNIST
    in CSV (no header, or a header of ``label`` and 784 pixel columns): from its first line."""
    from .formats import file_kind

    path = data_path(path)
    try:
        if file_kind(path) != "csv":
            return False  # an .npz, an IDX file: the MNIST readers take it
    except DataError:
        return False  # no format at all: the MNIST readers say so
    with open_data(path, "a CSV", _is_gzip(path), text=True) as stream:
        names = [name.strip().strip('"') for name in stream.readline().split(",")]
    if not names[0] or _INTEGER.fullmatch(names[0]):
        return False  # no header: MNIST's headerless CSV
    return not (names[0].lower() == "label" and len(names) == 785)


def read_rows(path: str | os.PathLike, width: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows to predict from a CSV with a header: ``width`` numeric feature columns, and perhaps
    one column more, the labels (found as :func:`read_table` finds them), also returned."""
    path = data_path(path)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ConfigError(f"the feature count must be a whole number 1 or more, not "
                          f"{_shown(repr(width))}")
    raw = _read_bytes(path)
    _require_line_ends(raw, path)
    names = _header_names(_decoded_header(raw, path), path)
    if len(names) == width + 1:
        table = read_table(path)
        return table.features, table.labels
    if len(names) != width:
        raise DataError(f"{path} has {len(names)} columns, but the model takes {width} "
                        "features (and a label column may come with them)")
    _require_utf8_rows(raw, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows or not: said below, in a sentence
        try:
            rows = np.loadtxt(io.BytesIO(raw), delimiter=",", quotechar='"', comments=None,
                              skiprows=1, encoding="utf-8", dtype=np.float64, ndmin=2)
        except ValueError:
            raise DataError(_locate_problem(raw, path, names, None)) from None
    if rows.shape[0] and rows.shape[1] != len(names):  # numpy counts from the first row
        raise DataError(_locate_problem(raw, path, names, None))
    if rows.shape[0] == 0:
        raise DataError(f"{path} has a header but no rows")
    if not np.isfinite(rows).all():
        raise DataError(_locate_problem(raw, path, names, None))
    return rows, None


_NPZ_TABLE_KEYS = ("x_train", "y_train", "x_test", "y_test")


def looks_like_npz_table(path: str | os.PathLike) -> bool:
    """Whether the ``.npz`` at ``path`` holds a table (``x_train`` of any numeric features)
    rather than MNIST (integer images of 784 pixels or 28x28), from ``x_train``'s header."""
    from .._fileio import ObjectArrayError

    try:
        with open_zip(data_path(path)) as archive, archive.open("x_train.npy") as member:
            shape, _, dtype = read_npy_header(member)
    except ObjectArrayError:
        return True  # refused as a table, in those words
    except (DataError, KeyError, ValueError):
        return False  # not readable as one: the MNIST reader says what is wrong
    mnist = dtype.kind in "iu" and tuple(shape[1:]) in ((784,), (28, 28))
    return not mnist


def read_npz_table(path: str | os.PathLike, fraction: float = 1 / 7, seed: int = 0) -> Any:
    """Training data from an ``.npz`` of arrays: ``x_train`` (n, d) numeric features,
    ``y_train`` (n,) labels (numbers or strings), and ``x_test``, ``y_test`` alike, or no test
    pair (one is then held out as for a CSV table). Read like MNIST's ``.npz``: never unpickled,
    each array checked from its header before its bytes are read."""
    path = data_path(path)
    _require_fraction(fraction)
    _require_seed(seed)
    with open_zip(path) as archive:
        present = {name[:-4] for name in archive.namelist() if name.endswith(".npy")}
        if not {"x_train", "y_train"} <= present:
            raise DataError(f"{path} has no x_train and y_train arrays; a table .npz holds "
                            f"x_train, y_train and optionally x_test, y_test (it has: "
                            f"{member_names(present)})")
        keys = [key for key in _NPZ_TABLE_KEYS if key in present]
        arrays = {key: read_npy(archive, path, key, _check_table_layout) for key in keys}
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path} has only one of x_test and y_test; give both or neither")
    tables = [table_from_arrays(arrays[f"x_{part}"], arrays[f"y_{part}"], source=path)
              for part in ("train", "test") if f"x_{part}" in arrays]
    if len(tables) == 1:
        return held_out_data(tables[0], fraction, seed)
    return paired_data(*tables)


def _check_table_layout(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    features = key.startswith("x")
    kinds, rank = ("iuf", 2) if features else ("iuU", 1)
    if dtype.kind not in kinds:
        raise DataError(f"{path} array {key} has dtype {dtype}, but a table's "
                        + ("features must be numbers" if features else
                           "labels must be integers or strings"))
    if len(shape) != rank or shape[0] == 0:
        expected = "(n, d), a row of features each" if features else "(n,), a label each"
        raise DataError(f"{path} array {key} has shape {shape}, but it must be {expected}")


def read_table_data(path: str | os.PathLike, label_column: str | None = None,
                    test_data: str | os.PathLike | None = None) -> Any:
    """Training data from a table file: an ``.npz`` of arrays (:func:`read_npz_table`), or a
    CSV (labels in ``label_column``) tested on the CSV ``test_data`` with the same columns, or
    on rows held out of it. What the command line reads, and reads again to resume a run."""
    if test_data is not None:
        data_path(test_data, "the test data path")
    if looks_like_npz_table(path):
        return read_npz_table(path)
    table = read_table(path, label_column=label_column)
    if test_data is None:
        return held_out_data(table)
    return paired_data(table, read_table(test_data, label_column=table.label_column))
