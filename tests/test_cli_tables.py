"""`nnscratch train --data TABLE.csv`: a CSV table from the command line, as a user runs it."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.data.tables import looks_like_table

from test_cli import assert_user_error, run
from test_cli_runs import interrupt
from test_tables import MALFORMED, SPLIT_MALFORMED, write
from test_train import _measurements


def test_a_csv_table_trains_from_the_command_line(tmp_path, clean_env):
    x, labels = _measurements(tmp_path / "m.csv")
    model = tmp_path / "m.npz"
    proc = run(["train", "--data", str(tmp_path / "m.csv"), "--hidden", "16", "--epochs", "20",
                "--lr", "0.05", "--out", str(model)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "labels in 'species' (the last column)" in proc.stdout
    assert "85 of its 600 rows (stratified by class, seed 0) were held out" in proc.stdout
    loaded = nnscratch.load_model(model)
    assert loaded.classes == ("setosa", "versicolor", "virginica")
    assert (loaded.predict(x) == labels).mean() > 0.9  # raw rows in, the labels out


def test_label_column_names_the_labels(tmp_path, clean_env):
    path = tmp_path / "m.csv"
    _measurements(path)
    # the species as the first column: found by --label-column
    rows = [line.split(",") for line in path.read_text().splitlines()]
    path.write_text("\n".join(",".join([r[-1], *r[:-1]]) for r in rows) + "\n")
    proc = run(["train", "--data", str(path), "--label-column", "species", "--epochs", "1",
                "--out", str(tmp_path / "m.npz")], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "labels in 'species'" in proc.stdout and "4 rows" not in proc.stdout


@pytest.mark.parametrize("args,words", [
    (["--label-column", "nope"], ["has no column named 'nope'"]),
])
def test_table_mistakes_are_one_line_and_write_nothing(tmp_path, clean_env, args, words):
    _measurements(tmp_path / "m.csv")
    args = [str(tmp_path / "run") if a == "RUN" else a for a in args]
    proc = run(["train", "--data", str(tmp_path / "m.csv"), *args], clean_env, cwd=tmp_path)
    assert_user_error(proc, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_a_test_table_replaces_the_held_out_rows(tmp_path, clean_env):
    _measurements(tmp_path / "m.csv")
    lines = (tmp_path / "m.csv").read_text().splitlines()
    (tmp_path / "train.csv").write_text("\n".join(lines[:451]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join([lines[0], *lines[451:]]) + "\n")
    (tmp_path / "other.csv").write_text("a,b,c,species\n1,2,3,setosa\n")
    proc = run(["train", "--data", str(tmp_path / "train.csv"), "--test-data",
                str(tmp_path / "test.csv"), "--hidden", "16", "--epochs", "20", "--lr", "0.05",
                "--out", str(tmp_path / "m.npz")], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "450 rows of 3 features" in proc.stdout and "tested on" in proc.stdout
    assert "150 rows" in proc.stdout and "held out" not in proc.stdout
    proc = run(["train", "--data", str(tmp_path / "train.csv"), "--test-data",
                str(tmp_path / "other.csv")], clean_env)
    assert_user_error(proc, "other.csv has the columns 'a', 'b', 'c', 'species'",
                      "a test table needs the training table's columns")


def test_a_table_run_folder_reports_per_class_and_resumes_bit_for_bit(tmp_path, clean_env):
    """A run folder of a table: the report has no pictures of inputs but a table per class; a
    run stopped by Ctrl-C resumes from the command line, reading the table as the first time,
    to the parameters of the run that was not stopped."""
    _measurements(tmp_path / "m.csv")
    args = ["train", "--data", str(tmp_path / "m.csv"), "--hidden", "16", "--epochs", "40",
            "--batch-size", "1", "--lr", "0.01"]
    proc = run([*args, "--out", str(tmp_path / "whole")], clean_env)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "whole" / "report.html").read_text()
    assert "<th>precision</th>" in page and "<tr><th>versicolor</th>" in page
    assert "not the pixels of a square image" in page
    code, _, err = interrupt([*args, "--out", str(tmp_path / "cut")], clean_env, "epoch  2/40")
    assert code == 130, err
    proc = run(["train", "--resume", str(tmp_path / "cut")], clean_env)
    assert proc.returncode == 0, proc.stderr
    whole, cut = (nnscratch.load_model(tmp_path / f / "model.npz") for f in ("whole", "cut"))
    assert cut.classes == whole.classes == ("setosa", "versicolor", "virginica")
    for name, value in whole.params().items():
        assert (cut.params()[name] == value).all(), name
    assert_user_error(run(["train", "--resume", str(tmp_path / "cut"), "--label-column", "x"],
                          clean_env), "cannot be used with --resume")


def test_predict_on_a_csv_of_raw_rows_returns_the_labels(tmp_path, clean_env):
    x, labels = _measurements(tmp_path / "m.csv")
    model = tmp_path / "m.npz"
    assert run(["train", "--data", str(tmp_path / "m.csv"), "--hidden", "16", "--epochs", "20",
                "--lr", "0.05", "--out", str(model)], clean_env).returncode == 0
    rows = ["width,height,noise"] + [",".join(f"{v:.6f}" for v in row) for row in x[:50]]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    proc = run(["predict", str(model), str(tmp_path / "rows.csv")], clean_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "prediction,p(setosa),p(versicolor),p(virginica)" and len(lines) == 51
    predicted = [line.split(",")[0] for line in lines[1:]]
    assert (np.array(predicted) == labels[:50]).mean() > 0.85
    # with the label column too, into a file: and how many match
    out = tmp_path / "predictions.csv"
    proc = run(["predict", str(model), str(tmp_path / "m.csv"), "--out", str(out)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "600 predictions written" in proc.stdout
    assert "of 600 match the file's labels" in proc.stdout
    assert len(out.read_text().splitlines()) == 601
    proc = run(["evaluate", str(model), "--data", str(tmp_path / "m.csv")], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "the 600 rows of the table" in proc.stdout and "on 600 rows" in proc.stdout
    assert_user_error(run(["evaluate", str(model), "--data", str(tmp_path / "rows.csv")],
                          clean_env), "has no label column to evaluate against")


@pytest.mark.parametrize("content,words", [
    ("a,b\n1,2\n", ["has 2 columns, but the model takes 3 features"]),
    ("a,b,c\n1,2,oops\n", ["line 2, column 'c' (3): 'oops' is not a number"]),
    ("a,b,c\n", ["has a header but no rows"]),
])
def test_predict_on_a_bad_csv_is_one_line_exit_2_and_writes_nothing(tmp_path, clean_env,
                                                                     content, words):
    model = nnscratch.MLP((4,), n_inputs=3, classes=["x", "y"])
    model.inputs = {"scaling": "none"}
    model.save(tmp_path / "m.npz")
    (tmp_path / "rows.csv").write_text(content)
    proc = run(["predict", str(tmp_path / "m.npz"), str(tmp_path / "rows.csv"), "--out",
                str(tmp_path / "out.csv")], clean_env)
    assert_user_error(proc, *words)
    assert not (tmp_path / "out.csv").exists()


def test_compare_takes_the_same_table_as_train(tmp_path, clean_env):
    from nnscratch.testing import backend_or_skip

    backend_or_skip("numba")
    _measurements(tmp_path / "m.csv")
    proc = run(["compare", "--backends", "numpy,numba", "--data", str(tmp_path / "m.csv"),
                "--steps", "30", "--hidden", "16", "--batch-size", "32"], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "3-16-3" in proc.stdout and "labels in 'species'" in proc.stdout
    assert "agree: every difference is within its tolerance" in proc.stdout


def test_label_column_and_test_data_need_a_table(clean_env):
    assert_user_error(run(["train", "--label-column", "y"], clean_env),
                      "--label-column needs --data naming a CSV table")
    assert_user_error(run(["train", "--test-data", "t.csv"], clean_env),
                      "--test-data needs --data")


def test_mnist_csv_is_not_taken_for_a_table(tmp_path):
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    (tmp_path / "kaggle.csv").write_text(header + "\n" + "3," + ",".join(["0"] * 784) + "\n")
    (tmp_path / "plain.csv").write_text("3," + ",".join(["0"] * 784) + "\n")
    with gzip.open(tmp_path / "table.csv.gz", "wt") as f:
        f.write("a,b,label\n1,2,x\n")
    assert not looks_like_table(tmp_path / "kaggle.csv")
    assert not looks_like_table(tmp_path / "plain.csv")
    assert looks_like_table(tmp_path / "table.csv.gz")


CASES = {**{name: (content, kwargs.get("label_column", "label"), words)
            for name, (content, kwargs, words) in MALFORMED.items()},
         **{name: (content, "label", words)
            for name, (content, words) in SPLIT_MALFORMED.items()}}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_malformed_table_on_the_command_line_is_one_line_exit_2_and_writes_nothing(
        tmp_path, clean_env, case):
    content, label_column, words = CASES[case]
    path = write(tmp_path / "broken.csv", content)
    proc = run(["train", "--data", str(path), "--label-column", label_column], clean_env,
               cwd=tmp_path)
    assert_user_error(proc, str(path), *words)
    assert [p.name for p in tmp_path.iterdir()] == ["broken.csv"]


def test_an_npz_of_feature_arrays_is_a_table(tmp_path, clean_env):
    """x_train/y_train (and x_test/y_test) of any features and string labels, from Python's
    numpy.savez: trained from train() and the command line; malformed ones are one line."""
    x, labels = _measurements(tmp_path / "m.csv")
    np.savez(tmp_path / "both.npz", x_train=x[:450], y_train=labels[:450], x_test=x[450:],
             y_test=labels[450:])
    np.savez(tmp_path / "train-only.npz", x_train=x, y_train=labels)
    result = nnscratch.train(str(tmp_path / "both.npz"), hidden=(16,), epochs=20, lr=0.05,
                             progress=False)
    assert result.model.classes == ("setosa", "versicolor", "virginica")
    assert result.test_accuracy > 0.85 and "tested on" in result.data_source
    proc = run(["train", "--data", str(tmp_path / "train-only.npz"), "--epochs", "2",
                "--out", str(tmp_path / "m.npz")], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "held out as the test set" in proc.stdout
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=labels, x_test=x)
    np.savez(tmp_path / "objects.npz", x_train=np.array([[1, "a"]], dtype=object),
             y_train=np.array(["a"]))
    for name, words in (("bad.npz", "has only one of x_test and y_test"),
                        ("objects.npz", "pickled object array")):
        assert_user_error(run(["train", "--data", str(tmp_path / name), "--out",
                               str(tmp_path / "never.npz")], clean_env), name, words)
    assert not (tmp_path / "never.npz").exists()


def test_mnist_files_given_as_data_are_not_taken_for_tables(tmp_path, clean_env,
                                                            sample_mnist):
    """An MNIST .npz and one of the IDX files, given as --data, still train as MNIST."""
    np.savez(tmp_path / "mnist.npz", x_train=sample_mnist.x_train[:300],
             y_train=sample_mnist.y_train[:300], x_test=sample_mnist.x_test[:100],
             y_test=sample_mnist.y_test[:100])
    idx = Path(nnscratch.__file__).parent / "sample" / "train-images-idx3-ubyte.gz"
    for data, words in ((tmp_path / "mnist.npz", "MNIST npz file"), (idx, "MNIST IDX files")):
        proc = run(["train", "--data", str(data), "--epochs", "1", "--hidden", "8",
                    "--out", str(tmp_path / "m.npz")], clean_env)
        assert proc.returncode == 0, proc.stderr
        assert words in proc.stdout


def test_an_npz_table_run_resumes_from_the_command_line(tmp_path, clean_env):
    """A run on an .npz table records it, and --resume reads it again as an .npz."""
    import os
    import signal

    x, labels = _measurements(tmp_path / "m.csv")
    np.savez(tmp_path / "t.npz", x_train=x, y_train=labels)

    class Stop(nnscratch.Callback):
        def on_epoch_end(self, stats):
            if stats.epoch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    settings = dict(hidden=(8,), epochs=3, progress=False)
    whole = nnscratch.train(str(tmp_path / "t.npz"), out=tmp_path / "whole", **settings)
    with pytest.raises(nnscratch.TrainingInterrupted):
        nnscratch.train(str(tmp_path / "t.npz"), out=tmp_path / "cut", callback=Stop(),
                        **settings)
    proc = run(["train", "--resume", str(tmp_path / "cut")], clean_env)
    assert proc.returncode == 0, proc.stderr
    resumed = nnscratch.load_model(tmp_path / "cut" / "model.npz").params()
    for name, value in whole.model.params().items():
        assert (resumed[name] == value).all(), name
