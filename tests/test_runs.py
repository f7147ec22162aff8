"""train() with run folders, checkpoints, Ctrl-C, divergence, validation and early stopping,
and the progress bar; in this process (the command line is tested in test_cli_runs.py)."""

from __future__ import annotations

import io
import os
import re
import signal

import numpy as np
import pytest

import nnscratch
from nnscratch import ConfigError, RunFolderError, TrainingDivergedError
from nnscratch import runs
from nnscratch import Callback, ProgressPrinter, Trainer, TrainingInterrupted

SMALL = {"hidden": (16,), "epochs": 2, "batch_size": 200, "progress": False}


class SigintAt(Callback):
    """Sends this process SIGINT (``times`` times) after step ``step`` of epoch ``epoch``."""

    def __init__(self, epoch, step, times=1):
        self.at, self.times = (epoch, step), times

    def on_epoch_start(self, epoch, epochs, steps):
        self.epoch = epoch

    def on_step(self, step):
        if (self.epoch, step) == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), signal.SIGINT)


def test_run_folder_files(sample_mnist, tmp_path):
    result = nnscratch.train(sample_mnist, out=tmp_path / "run", schedule="step", lr_step=1,
                             lr_gamma=0.5, lr=0.2, **SMALL)
    folder = tmp_path / "run"
    assert result.run_dir == folder
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "metrics.csv", "model.npz", "predictions.npz",
            "report.html"} <= names
    assert "checkpoint.npz" not in names and not [n for n in names if n.startswith(".")]
    model = nnscratch.load_model(folder / "model.npz")  # an ordinary model file
    for name, value in result.model.params().items():
        np.testing.assert_array_equal(model.params()[name], value)
    rows = runs.read_metrics(folder)
    assert [r["epoch"] for r in rows] == [1, 2] and [r["lr"] for r in rows] == [0.2, 0.1]
    for row, stats in zip(rows, result.history):  # written in full: read back exactly
        assert (row["loss"], row["test_accuracy"], row["val_loss"]) == (
            stats.loss, stats.test_accuracy, None)
    config = runs.read_config(folder)
    assert config["training"]["schedule"] == "step" and config["layer_sizes"] == [784, 16, 10]
    predictions = runs.read_predictions(folder)
    wrong = predictions["labels"] != predictions["predicted"]
    assert 1 - wrong.mean() == pytest.approx(result.test_accuracy, abs=1e-12)
    worst = predictions["worst_probs"]
    confidence = worst.max(axis=1)
    assert len(worst) == min(wrong.sum(), runs.WORST_KEPT)
    assert (np.diff(confidence) <= 0).all()  # most confident mistakes first
    assert confidence[0] == pytest.approx(
        result.model.predict_proba(sample_mnist.x_test[wrong]).max(axis=1).max(), rel=1e-6)


def test_out_npz_writes_only_the_model_file(sample_mnist, tmp_path):
    result = nnscratch.train(sample_mnist, out=tmp_path / "m.npz", **SMALL)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"] and result.run_dir is None
    assert nnscratch.load_model(tmp_path / "m.npz").metadata["test_accuracy"] == \
        result.test_accuracy


def test_trailing_slash_names_a_new_run_inside(sample_mnist, tmp_path):
    first = nnscratch.train(sample_mnist, out=f"{tmp_path}/runs/", **SMALL).run_dir
    second = nnscratch.train(sample_mnist, out=f"{tmp_path}/runs/", **SMALL).run_dir
    assert first.parent == second.parent == tmp_path / "runs" and first != second
    assert first.name.endswith("-784-16-10") and (second / "model.npz").is_file()


@pytest.mark.parametrize("prepare,words", [
    (lambda d: (d / "run").mkdir() or (d / "run" / "notes.txt").write_text("x"),
     "folder of other files"),
    (lambda d: (d / "run").write_text("x"), "a file is in the way"),
])
def test_out_that_is_not_a_new_run_folder_is_refused(sample_mnist, tmp_path, prepare, words):
    prepare(tmp_path)
    with pytest.raises(RunFolderError, match=words):
        nnscratch.train(sample_mnist, out=tmp_path / "run", **SMALL)


def test_a_finished_run_is_neither_overwritten_nor_resumed(sample_mnist, tmp_path):
    nnscratch.train(sample_mnist, out=tmp_path / "run", **SMALL)
    with pytest.raises(RunFolderError, match="already holds a finished run"):
        nnscratch.train(sample_mnist, out=tmp_path / "run", **SMALL)
    with pytest.raises(RunFolderError, match="has finished"):
        nnscratch.train(sample_mnist, resume=tmp_path / "run", progress=False)


def test_ctrl_c_without_a_run_folder(sample_mnist):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        nnscratch.train(sample_mnist, callback=SigintAt(1, 3), **SMALL)
    assert (stop.value.epoch, stop.value.step, stop.value.steps) == (1, 4, 40)
    assert stop.value.checkpoint is None and isinstance(stop.value, KeyboardInterrupt)
    assert str(stop.value) == "interrupted in epoch 1 after step 4 of 40"
    assert signal.getsignal(signal.SIGINT) is before  # the handler was only for training


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(sample_mnist, tmp_path):
    with pytest.raises(TrainingInterrupted) as stop:
        nnscratch.train(sample_mnist, out=tmp_path / "run", callback=SigintAt(2, 3, times=2),
                        **SMALL)
    assert stop.value.at_once and str(stop.value) == "stopped at once by a second Ctrl-C in epoch 2"
    assert stop.value.checkpoint == tmp_path / "run" / "checkpoint.npz"
    arrays, state = runs.read_checkpoint(tmp_path / "run")
    assert (state["position"]["epoch"], state["position"]["step"]) == (2, 0)
    one_epoch = nnscratch.train(sample_mnist, **{**SMALL, "epochs": 1}).model.params()
    for name, value in one_epoch.items():
        np.testing.assert_array_equal(arrays[f"param.{name}"], value)


def test_resume_refuses_other_settings_and_other_data(sample_mnist, tmp_path):
    with pytest.raises(TrainingInterrupted):
        nnscratch.train(sample_mnist, out=tmp_path / "run", callback=SigintAt(1, 5), **SMALL)
    with pytest.raises(ConfigError, match="lr 0.5 differs from the 0.1"):
        nnscratch.train(sample_mnist, resume=tmp_path / "run", lr=0.5)
    other = (sample_mnist.x_train[:1000], sample_mnist.y_train[:1000], sample_mnist.x_test,
             sample_mnist.y_test)
    with pytest.raises(RunFolderError, match="not the data"):
        nnscratch.train(other, resume=tmp_path / "run")
    with pytest.raises(ConfigError, match="not both"):
        nnscratch.train(sample_mnist, resume=tmp_path / "run", out=tmp_path / "elsewhere")
    # the saved settings, given again, are accepted
    result = nnscratch.train(sample_mnist, resume=tmp_path / "run", hidden=(16,),
                             batch_size=200, progress=False)
    assert len(result.history) == 2


def test_divergence_keeps_the_last_good_checkpoint(sample_mnist, tmp_path, monkeypatch):
    """A NaN loss at step 5 of epoch 2 stops the run there; the checkpoint of epoch 1 stays,
    and no model, report or temporary file is written."""
    real_step, calls = Trainer.step, []

    def step(self, x, y):
        loss, right = real_step(self, x, y)
        calls.append(1)
        if len(calls) == self.steps_per_epoch + 5:
            loss = self.model.backend.asarray(np.float32("nan"))
        return loss, right

    monkeypatch.setattr(Trainer, "step", step)
    folder = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as error:
        nnscratch.train(sample_mnist, out=folder, **{**SMALL, "epochs": 3})
    assert str(error.value) == (
        f"training diverged at epoch 2, step 5: the loss became nan; the learning rate (0.1) is "
        f"probably too large; {folder / 'checkpoint.npz'} keeps the state from the end of "
        f"epoch 1")
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz", "config.json",
                                                        "metrics.csv"]
    monkeypatch.undo()
    arrays, _ = runs.read_checkpoint(folder)
    one_epoch = nnscratch.train(sample_mnist, **{**SMALL, "epochs": 1}).model.params()
    for name, value in one_epoch.items():
        np.testing.assert_array_equal(arrays[f"param.{name}"], value)


def test_validation_split_and_early_stopping(sample_mnist):
    """On 400 images with a large learning rate the validation loss soon rises: the run stops
    `patience` epochs after its best one, and the model holds that epoch's parameters."""
    data = (sample_mnist.x_train[:400], sample_mnist.y_train[:400], sample_mnist.x_test[:500],
            sample_mnist.y_test[:500])
    result = nnscratch.train(data, hidden=(64,), epochs=60, batch_size=20, lr=0.3,
                             momentum=0.9, validation=0.25, patience=3, progress=False)
    val_losses = [s.val_loss for s in result.history]
    best = int(np.argmin(val_losses)) + 1
    assert result.best_epoch == best and len(result.history) == best + 3 < 60
    assert result.extra["stopped_early"] is True
    train_rows, val_rows = nnscratch.rng.validation_split(0, 400, 0.25)
    assert len(val_rows) == 100 and len(np.intersect1d(train_rows, val_rows)) == 0
    scores = result.model.evaluate(data[0][val_rows], data[1][val_rows])
    assert scores["loss"] == pytest.approx(val_losses[best - 1], rel=1e-6)
    assert result.test_accuracy == result.history[best - 1].test_accuracy


def test_holding_out_data_changes_neither_initial_weights_nor_batch_order(sample_mnist):
    plain = Trainer(sample_mnist, hidden=(8,))
    held = Trainer(sample_mnist, hidden=(8,), validation=0.1)
    assert held.n == 7200 and plain.n == 8000
    for name, value in plain.model.params().items():
        np.testing.assert_array_equal(held.model.params()[name], value)
    assert plain.order_rng.bit_generator.state == held.order_rng.bit_generator.state


@pytest.mark.parametrize("kwargs,word", [
    ({"patience": 2}, "patience needs validation"),
    ({"validation": 1.0}, "validation"),
    ({"optimizer": "adam", "momentum": 0.9}, "momentum"),
    ({"schedule": "cosine", "lr_min": 1.0}, "lr_min"),
])
def test_impossible_learning_settings_are_refused(sample_mnist, tmp_path, kwargs, word):
    with pytest.raises(ConfigError, match=word):
        nnscratch.train(sample_mnist, out=tmp_path / "run", **{**SMALL, **kwargs})
    assert not (tmp_path / "run").exists()  # refused before anything was written


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_in_a_terminal_and_lines_elsewhere(sample_mnist):
    terminal, pipe = Terminal(), io.StringIO()
    result = nnscratch.train(sample_mnist, callback=[ProgressPrinter(terminal, refresh=0),
                                                     ProgressPrinter(pipe)], **SMALL)
    lines = pipe.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert "img/s" not in pipe.getvalue() and "\r" not in pipe.getvalue()
    drawn = terminal.getvalue()
    first_epoch = drawn.split(lines[0])[0]
    # tqdm redraws the bar in place; drawn after every step here (refresh=0), the last one
    # shows the whole epoch: 40 of 40 steps, the epoch's mean loss, and its throughput
    shown = re.findall(r"epoch 1/2 [^\r]* (\d+)/40 [^\r]*loss (\d+\.\d{4}), ([\d,]+) img/s",
                       first_epoch)
    assert len(shown) == 40
    steps, loss, rate = shown[-1]
    assert steps == "40" and loss == f"{result.history[0].loss:.4f}"
    assert int(rate.replace(",", "")) > 0
    assert "epoch 2/2" in drawn.split(lines[0])[1] and lines[1] in drawn


def test_optional_libraries_are_imported_only_when_used():
    import subprocess
    import sys

    code = ("import sys, nnscratch; nnscratch.train(hidden=(8,), epochs=1, progress=False); "
            "print(sorted(n for n in ('tqdm', 'matplotlib') if n in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "NNSCRATCH_DATA"}
    env["NNSCRATCH_CACHE"] = os.devnull
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "[]"
