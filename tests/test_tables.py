"""Tables of any classification data: reading CSVs, tables from arrays, classes, the held-out
split, and a catalogue of malformed tables, each refused with one sentence naming the file and the
place."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data.tables import (MAX_CLASSES, Table, encode_labels, read_table, split_table,
                                   table_from_arrays)
from nnscratch.errors import ConfigError, DataError

IRIS_LIKE = """sepal_length,sepal_width,species
5.1,3.5,setosa
4.9,3.0,setosa
7.0,3.2,versicolor
6.4,3.2,versicolor
6.3,3.3,virginica
5.8,2.7,virginica
"""


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# --- reading valid tables ------------------------------------------------------------------------


def test_a_table_with_string_labels_keeps_them_and_takes_the_last_column(tmp_path):
    table = read_table(write(tmp_path / "iris.csv", IRIS_LIKE))
    assert table.features.dtype == np.float64 and table.features.shape == (6, 2)
    assert table.features.flags.c_contiguous
    assert table.features[2].tolist() == [7.0, 3.2]
    assert table.labels.dtype.kind == "U"
    assert table.labels.tolist() == ["setosa"] * 2 + ["versicolor"] * 2 + ["virginica"] * 2
    assert table.feature_names == ("sepal_length", "sepal_width")
    assert (table.label_column, table.label_rule) == ("species", "last column")
    assert table.source == tmp_path / "iris.csv" and table.n_rows == 6
    assert table.describe() == (f"{tmp_path / 'iris.csv'}: 6 rows of 2 features, labels in "
                                "'species' (the last column)")


@pytest.mark.parametrize("header, expected", [
    ("a,Class,b", "Class"),  # found by name, case-insensitive, wherever it is
    ("TARGET,a,b", "TARGET"),
    ("y,a,label", "label"),  # "label" is preferred to "y"
    ("a,b,c", "c"),  # no label-like name: the last column
])
def test_the_label_column_is_found_by_name_else_it_is_the_last(tmp_path, header, expected):
    table = read_table(write(tmp_path / "t.csv", f"{header}\n1,2,3\n4,5,6\n"))
    assert table.label_column == expected
    at = header.split(",").index(expected)
    assert table.labels.tolist() == [[1, 2, 3][at], [4, 5, 6][at]]
    assert table.features.tolist() == [[v for i, v in enumerate(row) if i != at]
                                       for row in ([1, 2, 3], [4, 5, 6])]
    assert table.label_rule == ("last column" if expected == "c" else "by name")


def test_a_named_label_column_overrides_the_default(tmp_path):
    table = read_table(write(tmp_path / "t.csv", "label,f,kind\n1,2.5,a\n0,3.5,b\n"),
                       label_column="kind")
    assert table.labels.tolist() == ["a", "b"] and table.label_rule == "given"
    assert table.feature_names == ("label", "f")
    assert table.features.tolist() == [[1.0, 2.5], [0.0, 3.5]]


def test_a_table_path_may_start_with_the_home_folder(tmp_path, monkeypatch):
    """``~`` is expanded as for MNIST's folders: train("~/t.csv") trains on the table."""
    import nnscratch
    monkeypatch.setenv("HOME", str(tmp_path))
    rows = "".join(f"{k % 3},{k % 5},{'abc'[k % 3]}\n" for k in range(60))
    write(tmp_path / "t.csv", "a,b,species\n" + rows)
    assert read_table("~/t.csv").n_rows == 60
    result = nnscratch.train("~/t.csv", hidden=(4,), epochs=1)
    assert result.model.classes == ("a", "b", "c")


def test_integer_labels_become_int64_and_mixed_ones_stay_strings(tmp_path):
    ints = read_table(write(tmp_path / "i.csv", "f,label\n0.5,-3\n1.5, 12\n2.5,+7\n"))
    assert ints.labels.dtype == np.int64 and ints.labels.tolist() == [-3, 12, 7]
    mixed = read_table(write(tmp_path / "m.csv", "f,label\n0.5,3\n1.5,cat\n2.5,3.0\n"))
    assert mixed.labels.dtype.kind == "U" and mixed.labels.tolist() == ["3", "cat", "3.0"]


def test_gzip_is_recognised_from_its_bytes_not_its_name(tmp_path):
    path = write(tmp_path / "iris.csv", gzip.compress(IRIS_LIKE.encode()))
    table = read_table(path)
    assert table.features.shape == (6, 2) and table.labels[-1] == "virginica"


def test_a_bom_crlf_quotes_blank_lines_and_spaces_are_read(tmp_path):
    content = ('\ufeff"x 1", x2 ,label\r\n1, 2 ,"a, b"\r\n\r\n3,4e-1, c \r\n').encode("utf-8")
    table = read_table(write(tmp_path / "t.csv", content))
    assert table.feature_names == ("x 1", "x2")
    assert table.features.tolist() == [[1.0, 2.0], [3.0, 0.4]]
    assert table.labels.tolist() == ["a, b", "c"]


# --- classes -------------------------------------------------------------------------------------


def test_classes_sort_numbers_numerically_and_strings_lexically():
    classes, codes = encode_labels(np.array([10, 9, 100, 9]))
    assert classes.tolist() == [9, 10, 100] and codes.tolist() == [1, 0, 2, 0]
    assert codes.dtype == np.int64
    classes, codes = encode_labels(["b", "B", "a", "b"])
    assert classes.tolist() == ["B", "a", "b"] and codes.tolist() == [2, 0, 1, 2]
    classes, codes = encode_labels(np.array(["10", "9"]))  # strings, so lexical
    assert classes.tolist() == ["10", "9"]
    labels = np.array(["x", "y", "z", "x", "z"])
    classes, codes = encode_labels(labels)
    assert (classes[codes] == labels).all()


@pytest.mark.parametrize("labels, words", [
    (np.array([1, "a"], dtype=object), ["the labels mix int and str"]),
    ([3, 3, 3], ["only one class ('3')"]),
    (np.arange(MAX_CLASSES + 1), ["10,001 distinct labels", "more than the 10,000"]),
    (np.array([0.5, 1.0]), ["label 0 is 0.5, not a whole number"]),
    (np.array([[1, 2]]), ["must be a non-empty 1-D"]),
])
def test_encode_labels_refuses(labels, words):
    with pytest.raises(DataError) as caught:
        encode_labels(labels)
    for word in words:
        assert word in str(caught.value)


def test_encode_labels_names_the_file_it_is_given():
    with pytest.raises(DataError, match=r"^data/one\.csv has only one class \('a'\)"):
        encode_labels(["a", "a"], source="data/one.csv")


# --- the held-out split --------------------------------------------------------------------------


def make_table(counts: dict, d: int = 3) -> Table:
    labels = np.concatenate([[label] * n for label, n in counts.items()])
    features = np.arange(len(labels) * d, dtype=np.float64).reshape(len(labels), d)
    return table_from_arrays(features, labels)


def test_the_split_is_stratified_seeded_and_complete():
    table = make_table({"a": 70, "b": 21, "c": 14})
    split = split_table(table)
    assert len(split.y_test) == 105 // 7 == 15 and len(split.y_train) == 90
    assert split.classes.tolist() == ["a", "b", "c"]
    assert np.bincount(split.y_test).tolist() == [10, 3, 2]  # each class keeps its share
    assert split.x_train.dtype == np.float64 and split.x_train.flags.c_contiguous
    rows = np.concatenate([split.x_train, split.x_test])[:, 0] // 3
    assert sorted(rows.tolist()) == list(range(105))  # every row exactly once
    # The codes travel with their rows: row r of the table has label table.labels[r].
    test_rows = (split.x_test[:, 0] // 3).astype(int)
    assert (split.classes[split.y_test] == table.labels[test_rows]).all()
    again = split_table(table)
    assert np.array_equal(again.x_test, split.x_test)
    other = split_table(table, seed=1)
    assert not np.array_equal(other.x_test, split.x_test)
    assert "15 of its 105 rows" in split.note and "seed 0" in split.note


def test_the_split_takes_a_fraction_and_refuses_an_impossible_one():
    table = make_table({0: 10, 1: 10})
    assert len(split_table(table, fraction=0.5).y_test) == 10
    for fraction in (0, 1, -0.1, 1.5):
        with pytest.raises(ConfigError, match="between 0 and 1"):
            split_table(table, fraction=fraction)
    with pytest.raises(ConfigError, match="leaves a class without training rows"):
        split_table(make_table({0: 2, 1: 10}), fraction=0.9)


# --- tables from arrays --------------------------------------------------------------------------


class DuckFrame:
    """The two things table_from_arrays asks of a pandas DataFrame (pandas is optional)."""

    def __init__(self, columns: dict):
        self.columns = list(columns)
        self._values = np.array(list(zip(*columns.values())), dtype=object)

    def to_numpy(self) -> np.ndarray:
        return self._values


def test_arrays_make_a_table():
    table = table_from_arrays([[1, 2], [3, 4]], np.array(["no", "yes"]))
    assert table.features.dtype == np.float64 and table.features.flags.c_contiguous
    assert table.feature_names == ("x1", "x2") and table.label_rule == "arrays"
    assert table.labels.tolist() == ["no", "yes"] and table.source is None
    floats = table_from_arrays(np.ones((2, 1)), np.array([1.0, 2.0]))  # pandas' integers with NaN
    assert floats.labels.dtype == np.int64


def test_a_frame_gives_its_column_names_and_its_label_column():
    frame = DuckFrame({"width": [1.5, 2.5, 3.5], "species": ["a", "b", "a"], "h": [1, 2, 3]})
    table = table_from_arrays(frame, label_column="species")
    assert table.feature_names == ("width", "h") and table.label_column == "species"
    assert table.features.tolist() == [[1.5, 1], [2.5, 2], [3.5, 3]]
    assert table.labels.tolist() == ["a", "b", "a"]
    by_name = table_from_arrays(DuckFrame({"f": [1.0, 2.0], "Target": [0, 1]}))
    assert by_name.label_column == "Target" and by_name.labels.tolist() == [0, 1]
    assert by_name.labels.dtype == np.int64
    separate = table_from_arrays(DuckFrame({"f": [1.0, 2.0]}), y=[5, 6])
    assert separate.feature_names == ("f",) and separate.labels.tolist() == [5, 6]


def test_a_real_pandas_frame_when_pandas_is_installed():
    pd = pytest.importorskip("pandas", reason="pandas is optional; DuckFrame covers the API")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["x", "y", "x"]})
    table = table_from_arrays(frame)
    assert table.features.tolist() == [[1.0], [2.0], [3.0]] and table.labels.tolist() == [
        "x", "y", "x"]
    assert table_from_arrays(frame[["a"]], frame["label"]).labels.tolist() == ["x", "y", "x"]


@pytest.mark.parametrize("x, y, words", [
    (np.ones(3), [0, 1, 0], ["the features must be a 2-D array", "1-D of shape (3,)"]),
    (np.ones((2, 2, 2)), [0, 1], ["2-D array", "3-D"]),
    (np.ones((0, 2)), [], ["hold no data: shape (0, 2)"]),
    (np.ones((3, 2)), [0, 1], ["the labels number 2 for 3 rows"]),
    (np.ones((2, 2)), [[0], [1]], ["the labels must be 1-D"]),
    (np.array([[1.0, 2.0], [3.0, np.nan]]), [0, 1], ["row 1, column 2 is nan", "finite"]),
    (np.array([[1.0, np.inf]]), [0], ["row 0, column 2 is inf"]),
    (np.ones((2, 1), dtype=complex), [0, 1], ["dtype complex128", "real numbers"]),
    (DuckFrame({"a": [1.0, 2.0], "b": ["x", "y"]}), [0, 1], ["column 'b' (2) holds values"]),
    (DuckFrame({"a": [1.0, 2.0], "label": [0, None]}), None, ["label 1 is missing"]),
    (DuckFrame({"a": [1.0, 2.0], "label": [0, "b"]}), None, ["mix int and str"]),
    (DuckFrame({"label": [0, 1]}), None, ["the data frame has no feature columns"]),
    (DuckFrame({"a": [1.0], "b": [0]}), None, []),  # valid: b, the last column, is the label
    (np.ones((2, 1)), None, ["the labels are missing"]),
])
def test_arrays_are_checked(x, y, words):
    if not words:
        assert table_from_arrays(x, y).labels.tolist() == [0]
        return
    with pytest.raises(DataError) as caught:
        table_from_arrays(x, y)
    for word in words:
        assert word in str(caught.value)


def test_the_data_frame_names_its_missing_label_column():
    with pytest.raises(DataError, match="the data frame has no column named 'kind'"):
        table_from_arrays(DuckFrame({"a": [1.0]}), label_column="kind")


def test_importing_tables_imports_no_pandas():
    code = ("import sys, nnscratch.data.tables; "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- malformed tables ----------------------------------------------------------------------------

HEAD = "a,b,label\n"


def many_labels(n: int) -> str:
    return HEAD + "".join(f"{i},{i},c{i}\n" for i in range(n))


MALFORMED = {
    # id: (content, read_table keyword arguments, words the message must hold)
    "text in a feature": (HEAD + "1,2,x\n3,oops,y\n", {},
                          ["line 3, column 'b' (2): 'oops' is not a number"]),
    "empty feature": (HEAD + "1,,x\n", {}, ["line 2, column 'b' (2): the value is missing"]),
    "blank feature": (HEAD + "1,2,x\n  ,2,y\n", {},
                      ["line 3, column 'a' (1): the value is missing"]),
    "empty label": (HEAD + "1,2,x\n3,4,\n", {},
                    ["line 3, column 'label' (3): the label is missing"]),
    "quoted empty label": (HEAD + '1,2,""\n', {}, ["line 2, column 'label' (3): the label is"]),
    "short row": (HEAD + "1,2,x\n3,4\n", {}, ["line 3 has 2 cells", "names 3 columns"]),
    "long row": (HEAD + "1,2,x\n3,4,y,5\n", {}, ["line 3 has 4 cells", "names 3 columns"]),
    "named label absent": (HEAD + "1,2,x\n", {"label_column": "species"},
                           ["no column named 'species'", "its columns are 'a', 'b', 'label'"]),
    "header only": (HEAD, {}, ["has a header but no rows"]),
    "header only, no newline": ("a,b,label", {}, ["has a header but no rows"]),
    "a row of spaces": (HEAD + "   \n1,2,x\n", {}, ["line 2 has 1 cell,", "names 3 columns"]),
    "empty file": ("", {}, ["is empty"]),
    "blank file": ("\n \n", {}, ["is empty"]),
    "no feature columns": ("label\nx\ny\n", {}, ["has no feature columns", "'label'"]),
    "duplicate names": ("a,a,label\n1,2,x\n", {},
                        ["header (line 1) names column 'a' twice (columns 1 and 2)"]),
    "unnamed column": (",a,label\n0,1,x\n", {}, ["header (line 1) has no name for column 1"]),
    "no header": ("1,2,3\n4,5,6\n", {}, ["line 1 holds numbers, not a header row"]),
    "not UTF-8": (HEAD.encode() + b"1,2,x\n3,4,caf\xe9\n", {},
                  ["line 3 is not UTF-8 text (byte 0xe9"]),
    "undecodable header": (b"a,b\xff,label\n1,2,x\n", {},
                           ["header (line 1) that is not UTF-8 text (byte 0xff"]),
    "truncated gzip": (gzip.compress((HEAD + "1,2,x\n" * 500).encode())[:-30], {},
                       ["is truncated", "gzip"]),
    "corrupt gzip": (b"\x1f\x8b" + b"\x00" * 40, {}, ["is not a valid gzip file"]),
    "nan feature": (HEAD + "nan,2,x\n", {},
                    ["line 2, column 'a' (1): 'nan' is not a finite number"]),
    "inf feature": (HEAD + "1,2,x\n1,-Infinity,y\n", {},
                    ["line 3, column 'b' (2): '-Infinity' is not a finite number"]),
    "overflowing feature": (HEAD + "1,1e999,x\n", {},
                            ["line 2, column 'b' (2): '1e999' is not a finite number"]),
    "underscore number": (HEAD + "1_000,2,x\n", {}, ["line 2, column 'a' (1): '1_000' is not a"]),
    "error after blank lines": (HEAD + "1,2,x\n\n\n3,zz,y\n", {},
                                ["line 5, column 'b' (2): 'zz' is not a number"]),
    "error in CRLF file": ((HEAD + "1,2,x\n3,zz,y\n").replace("\n", "\r\n"), {},
                           ["line 3, column 'b' (2): 'zz' is not a number"]),
    "error in gzip file": (gzip.compress((HEAD + "1,2,x\n3,4\n").encode()), {},
                           ["line 3 has 2 cells"]),
    "long cell is cut": (HEAD + "1," + "z" * 100 + ",x\n", {}, ["'" + "z" * 40 + "...'"]),
}

# Refused only once a split is needed: read_table then split_table.
SPLIT_MALFORMED = {
    "one class": (HEAD + "1,2,x\n3,4,x\n5,6,x\n", ["has only one class ('x')"]),
    "too many labels": (many_labels(MAX_CLASSES + 1),
                        ["has 10,001 distinct labels", "more than the 10,000"]),
    "a class of one row": (HEAD + "1,2,x\n3,4,x\n5,6,lonely\n",
                           ["has only one row of class 'lonely'", "at least two rows"]),
}


def assert_one_sentence(error: DataError, path: Path, words: list[str]) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(str(path))
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_table_is_refused_with_one_sentence(tmp_path, case):
    content, kwargs, words = MALFORMED[case]
    path = write(tmp_path / "broken.csv", content)
    with pytest.raises(DataError) as caught:
        read_table(path, **kwargs)
    assert_one_sentence(caught.value, path, words)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, OSError | EOFError)


@pytest.mark.parametrize("case", SPLIT_MALFORMED, ids=list(SPLIT_MALFORMED))
def test_a_table_that_cannot_be_split_is_refused_with_one_sentence(tmp_path, case):
    content, words = SPLIT_MALFORMED[case]
    path = write(tmp_path / "classes.csv", content)
    table = read_table(path)  # reading alone is fine: a test file may hold one class
    with pytest.raises(DataError) as caught:
        split_table(table)
    assert_one_sentence(caught.value, path, words)


def test_a_folder_and_a_missing_file_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"is a folder, not a CSV file"):
        read_table(tmp_path)
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError) as caught:
        read_table(missing)
    assert_one_sentence(caught.value, missing, ["does not exist"])


# --- a large table -------------------------------------------------------------------------------

SLOW = os.environ.get("NNSCRATCH_SLOW_TESTS") == "1"


@pytest.mark.skipif(not SLOW, reason="writes and reads a 100 MB CSV; set NNSCRATCH_SLOW_TESTS=1")
def test_a_100_mb_table_is_read_whole(tmp_path):
    # 40 features of 8 significant digits and a string label: about 340 bytes a row.
    rng = np.random.default_rng(0)
    block = np.round(rng.normal(size=(10_000, 40)), 6)
    labels = np.array(["cat", "dog", "bird"])[rng.integers(0, 3, 10_000)]
    lines = [",".join(f"{v:.6f}" for v in row) + f",{label}" for row, label in zip(block, labels)]
    chunk = "\n".join(lines) + "\n"
    repeats = 100_000_000 // len(chunk) + 1
    path = tmp_path / "big.csv"
    with open(path, "w") as out:
        out.write(",".join(f"f{i}" for i in range(40)) + ",label\n")
        for _ in range(repeats):
            out.write(chunk)
    start = time.perf_counter()
    table = read_table(path)
    seconds = time.perf_counter() - start
    print(f"\nread_table: {path.stat().st_size / 1e6:.0f} MB in {seconds:.2f} s")
    assert path.stat().st_size >= 100_000_000
    assert table.features.shape == (10_000 * repeats, 40)
    assert np.array_equal(table.features[-10_000:], block)
    assert (table.labels[:10_000] == labels).all()


def test_rows_narrower_than_the_header_name_their_line(tmp_path):
    """numpy counts the columns from the first row, not the header: the header must be checked."""
    from nnscratch.data.tables import read_rows, read_table
    from nnscratch.errors import DataError

    path = tmp_path / "t.csv"
    path.write_text("height,weight,label,extra\n1.25,-3e2,dog\n0.5,7,cat\n")
    for read in (read_table, lambda p: read_rows(p, 4)):
        with pytest.raises(DataError, match=r"t\.csv line 2 has 3 cells, but the header names 4 "
                                            "columns"):
            read(path)


def test_a_lone_carriage_return_names_its_line(tmp_path):
    from nnscratch.data.tables import read_table
    from nnscratch.errors import DataError

    path = tmp_path / "t.csv"
    path.write_bytes(b"a,label\r\n1,2\r\n3,4\r5,6\n")
    with pytest.raises(DataError, match=r"line 3 holds a carriage return \(\\r\) that does not "
                                        "end the line"):
        read_table(path)


def test_train_takes_a_csv_table_path_and_resumes_it_from_python(tmp_path):
    """train("rows.csv") reads a table as --data does; train(resume=RUN) reads it again."""
    import signal

    import nnscratch
    from test_hardening_runs import SignalAt

    rng = np.random.default_rng(3)
    lines = ["width,height,kind"] + [f"{w:.3f},{h:.3f},{'ab'[int(w > h)]}"
                                     for w, h in rng.uniform(0, 1, (300, 2))]
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(lines) + "\n")
    settings = {"hidden": (8,), "epochs": 3, "batch_size": 32, "progress": False}
    by_path = nnscratch.train(str(rows), out=tmp_path / "whole", **settings)
    by_table = nnscratch.train(read_table(rows), **settings)
    assert by_path.model.classes == ("a", "b")
    for name, value in by_table.model.params().items():
        np.testing.assert_array_equal(by_path.model.params()[name], value)
    with pytest.raises(nnscratch.TrainingInterrupted):
        nnscratch.train(str(rows), out=tmp_path / "cut", callback=SignalAt(2, 3, signal.SIGINT),
                        **settings)
    resumed = nnscratch.train(resume=tmp_path / "cut", progress=False)
    for name, value in by_path.model.params().items():
        np.testing.assert_array_equal(resumed.model.params()[name], value)
