"""nnscratch against scikit-learn's MLPClassifier on the small data sets scikit-learn ships.

For each of load_digits, load_iris, load_wine and load_breast_cancer, with a 25% stratified
hold-out (seed 0): scikit-learn's MLPClassifier (features standardized by a StandardScaler in a
pipeline, as nnscratch standardizes them itself), nnscratch's estimator and nnscratch.train() on
each backend, all with one hidden layer of 100 units, Glorot-uniform initial weights (scikit-
learn's), Adam, learning rate 0.001, batches of 200 and exactly 200 epochs (scikit-learn's early
stop on a flat loss and its L2 term are turned off, so both run the same number of epochs of the
same loss); and `nnscratch train` on CSV exports of the same training and test rows (`--data
train.csv --test-data test.csv`). Prints a Markdown table: test accuracy (%) and seconds (of
fitting; for the command line, of the whole process).

    python benchmarks/sklearn_compare.py [--backends numpy,numba]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnscratch
from nnscratch.sklearn import MLPClassifier

import results_file  # benchmarks/results_file.py, beside this script

SETS = {"digits": datasets.load_digits, "iris": datasets.load_iris,
        "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
HIDDEN, EPOCHS, LR, BATCH = 100, 200, 0.001, 200


def timed(fit):
    started = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - started


def sklearn_row(x_train, x_test, y_train, y_test):
    model = make_pipeline(StandardScaler(), SklearnMLP(
        hidden_layer_sizes=(HIDDEN,), solver="adam", learning_rate_init=LR, batch_size=BATCH,
        max_iter=EPOCHS, alpha=0.0, tol=0.0, n_iter_no_change=EPOCHS + 1, random_state=0))
    model, seconds = timed(lambda: model.fit(x_train, y_train))
    return model.score(x_test, y_test), seconds


def estimator_row(x_train, x_test, y_train, y_test, backend):
    model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="adam", learning_rate_init=LR,
                          batch_size=BATCH, max_iter=EPOCHS, random_state=0, backend=backend)
    # (its default init is "xavier", Glorot's uniform scheme, as scikit-learn's)
    model, seconds = timed(lambda: model.fit(x_train, y_train))
    return model.score(x_test, y_test), seconds


def train_row(x_train, x_test, y_train, y_test, backend):
    result, seconds = timed(lambda: nnscratch.train(
        (x_train.astype(float), y_train, x_test.astype(float), y_test), backend=backend,
        hidden=(HIDDEN,), optimizer="adam", lr=LR, batch_size=BATCH, epochs=EPOCHS,
        dtype="float64", init="xavier", progress=False))
    return result.test_accuracy, seconds


def cli_row(x_train, x_test, y_train, y_test, backend, folder: Path, name: str):
    paths = []
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        paths.append(folder / f"{name}-{part}.csv")
        header = ",".join(f"f{i}" for i in range(x.shape[1])) + ",label"
        np.savetxt(paths[-1], np.c_[x, y], delimiter=",", header=header, comments="",
                   fmt="%.17g")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nnscratch", "train", "--data", str(paths[0]),
                           "--test-data", str(paths[1]), "--backend", backend,
                           "--hidden", str(HIDDEN), "--optimizer", "adam", "--lr", str(LR),
                           "--batch-size", str(BATCH), "--epochs", str(EPOCHS), "--dtype",
                           "float64", "--init", "xavier", "--quiet",
                           "--out", str(folder / f"{name}.npz")],
                          capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    line = next(l for l in proc.stdout.splitlines() if l.startswith("test accuracy"))
    return float(line.split()[2].rstrip("%")) / 100, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,numba")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the figures to this results file")
    args = parser.parse_args()
    backends = args.backends.split(",")
    rows = []
    columns = ["scikit-learn"] + [f"{way} {b}" for way in ("estimator", "train()", "CLI")
                                  for b in backends]
    print("| data | rows x features, classes | " + " | ".join(columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    with tempfile.TemporaryDirectory() as folder:
        for name, load in SETS.items():
            x, y = load(return_X_y=True)
            split = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
            cells = [sklearn_row(*split)]
            cells += [estimator_row(*split, b) for b in backends]
            cells += [train_row(*split, b) for b in backends]
            cells += [cli_row(*split, b, Path(folder), name) for b in backends]
            shown = " | ".join(f"{a:.2%} ({s:.2f} s)" for a, s in cells)
            print(f"| {name} | {x.shape[0]} x {x.shape[1]}, {len(np.unique(y))} | {shown} |",
                  flush=True)
            rows.append({"data": name, "rows": x.shape[0], "features": x.shape[1],
                         "classes": len(np.unique(y)), "results": {
                             column: {"test_accuracy": a, "seconds": s}
                             for column, (a, s) in zip(columns, cells)}})
    if args.json:
        results_file.write(args.json, rows, columns=columns)


if __name__ == "__main__":
    main()
