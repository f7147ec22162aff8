"""Distortions in training: each epoch's images, the same on every backend, resumed exactly
after Ctrl-C, stored in the run's config, and refused where they mean nothing."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import nnscratch
from nnscratch import Callback, ConfigError, Trainer, TrainingInterrupted, runs
from nnscratch.augment import Distortion, distort, epoch_key
from nnscratch.testing import backend_or_skip

pytest.importorskip("numba", reason="distorting images needs Numba")

SMALL = {"hidden": (16,), "epochs": 3, "batch_size": 200, "progress": False,
         "augment": "affine+elastic"}


class SigintAt(Callback):
    """Sends this process SIGINT after step ``step`` of epoch ``epoch``."""

    def __init__(self, epoch, step):
        self.at = (epoch, step)

    def on_epoch_start(self, epoch, epochs, steps):
        self.epoch = epoch

    def on_step(self, step):
        if (self.epoch, step) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def _placed(trainer: Trainer, epoch: int) -> np.ndarray:
    next(trainer.batches(epoch=epoch))
    return trainer.model.backend.to_numpy(trainer.x_train)


def _pixels(trainer: Trainer, x) -> np.ndarray:
    """A batch's images as uint8 pixels: a full batch may reach the model as its pixels."""
    x = trainer.model.backend.to_numpy(x)
    return x if x.dtype == np.uint8 else np.rint(x * 255).astype(np.uint8)


def test_each_epoch_trains_on_its_own_distortions(sample_mnist):
    t = Trainer(sample_mnist, hidden=(16,), epochs=2, augment="elastic", elastic_alpha=20.0)
    try:
        distortion = Distortion(elastic=True, alpha=20.0)
        for epoch in (1, 2):
            np.testing.assert_array_equal(
                _placed(t, epoch), distort(sample_mnist.x_train, epoch_key(0, epoch), distortion))
        assert not np.array_equal(_placed(t, 1), _placed(t, 2))
    finally:
        t.close()


@pytest.mark.parametrize("batch_size", [100, None])
def test_numpy_and_numba_train_on_the_same_augmented_batches(sample_mnist, batch_size):
    backend_or_skip("numba")
    settings = {"hidden": (16,), "epochs": 2, "batch_size": batch_size, "augment": "elastic"}
    ref = Trainer(sample_mnist, backend="numpy", **settings)
    other = Trainer(sample_mnist, backend="numba", **settings)
    try:
        for epoch in (1, 2):
            pairs = zip(ref.batches(epoch=epoch), other.batches(epoch=epoch), strict=True)
            for (x_ref, y_ref), (x_other, y_other) in pairs:
                np.testing.assert_array_equal(_pixels(ref, x_ref), _pixels(other, x_other))
                np.testing.assert_array_equal(ref.model.backend.to_numpy(y_ref),
                                              other.model.backend.to_numpy(y_other))
    finally:
        ref.close()
        other.close()


@pytest.mark.parametrize("step", [7, 27])  # of 40: before and after SHARED_PART of them
def test_resume_after_ctrl_c_of_an_augmented_run_is_bit_identical(sample_mnist, tmp_path, step):
    whole = nnscratch.train(sample_mnist, out=tmp_path / "whole", **SMALL)
    with pytest.raises(TrainingInterrupted):
        nnscratch.train(sample_mnist, out=tmp_path / "cut", callback=SigintAt(2, step), **SMALL)
    resumed = nnscratch.train(sample_mnist, resume=tmp_path / "cut", progress=False)
    for name, value in whole.model.params().items():
        np.testing.assert_array_equal(resumed.model.params()[name], value)
    for ours, theirs in zip(resumed.history, whole.history, strict=True):
        assert (ours.loss, ours.train_accuracy, ours.test_accuracy) == (
            theirs.loss, theirs.train_accuracy, theirs.test_accuracy)
    unaugmented = nnscratch.train(sample_mnist, **{**SMALL, "augment": None})
    assert unaugmented.history[0].loss != whole.history[0].loss


def test_blas_leaves_a_core_to_the_distortions_in_the_first_part_of_an_epoch(sample_mnist):
    from threadpoolctl import threadpool_info

    from nnscratch.trainer import SHARED_PART

    def blas_threads():
        return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")

    full = blas_threads()
    if full < 2:
        pytest.skip("BLAS runs on one thread here: there is none to leave")
    seen = []

    class Record(Callback):
        def on_epoch_start(self, epoch, epochs, steps):
            self.epoch = epoch

        def on_step(self, step):
            seen.append((self.epoch, step, blas_threads()))

    nnscratch.train(sample_mnist, callback=Record(), **{**SMALL, "epochs": 2})
    shared = round(40 * SHARED_PART)  # 8,000 images in batches of 200
    # epoch 2's images are made during epoch 1; epoch 2, the last, makes none
    assert [t for e, s, t in seen if e == 1 and s < shared] == [full - 1] * (shared - 1)
    assert {t for e, s, t in seen if e == 2 or s >= shared} == {full}
    assert blas_threads() == full


def test_the_run_config_keeps_the_distortion(sample_mnist, tmp_path):
    nnscratch.train(sample_mnist, out=tmp_path / "run", **{**SMALL, "epochs": 1},
                    affine=(10, 0.1, 0.0, 1))
    training = runs.read_config(tmp_path / "run")["training"]
    assert training["augment"] == "affine+elastic" and training["affine"] == [10, 0.1, 0, 1]
    assert (training["elastic_alpha"], training["elastic_sigma"]) == (34.0, 4.0)
    assert Distortion.from_settings(training) == Distortion(
        elastic=True, rotate=10.0, scale=0.1, shift=1.0)


@pytest.mark.parametrize("options,problem", [
    ({"elastic_alpha": 20.0}, "elastic_alpha needs augment elastic"),
    ({"augment": "affine", "elastic_sigma": 3.0}, "elastic_sigma needs augment elastic"),
    ({"augment": "elastic", "affine": (5, 0, 0, 0)}, "affine needs augment affine"),
    ({"augment": "affine", "affine": (5, 1.0, 0, 0)}, "SCALE below 1"),
    ({"augment": "affine", "affine": (5, 0.1, 0)}, "four bounds"),
    ({"augment": "shear"}, "none, elastic, affine or affine"),
])
def test_impossible_augment_settings_are_refused(options, problem):
    with pytest.raises(ConfigError, match=problem):
        nnscratch.TrainSettings(**options)


def test_augmenting_data_that_are_not_images_is_refused(tmp_path):
    table = tmp_path / "t.csv"
    rows = "\n".join(f"{i * 0.5},{i % 3},{i % 2}" for i in range(40))
    table.write_text("a,b,label\n" + rows + "\n")
    with pytest.raises(ConfigError, match="distorts images of uint8 pixels"):
        nnscratch.train(str(table), augment="elastic", epochs=1, progress=False)


def test_the_command_line_trains_with_distortions_and_refuses_what_cannot_be(tmp_path,
                                                                            clean_env):
    from test_cli import assert_user_error, run

    proc = run(["train", "--augment", "elastic", "--elastic-alpha", "30", "--hidden", "16",
                "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")], clean_env)
    assert proc.returncode == 0, proc.stderr
    training = runs.read_config(tmp_path / "run")["training"]
    assert (training["augment"], training["elastic_alpha"]) == ("elastic", 30.0)
    assert (tmp_path / "run" / "distortions.png").is_file()
    assert_user_error(run(["train", "--elastic-alpha", "30"], clean_env),
                      "--elastic-alpha needs --augment elastic")
    assert_user_error(run(["train", "--augment", "affine", "--affine", "1,2"], clean_env),
                      "--affine")
    table = tmp_path / "t.csv"
    table.write_text("a,b,label\n" + "\n".join(f"{i * 0.5},{i % 3},{i % 2}" for i in range(40)))
    proc = run(["train", "--data", str(table), "--augment", "elastic", "--out",
                str(tmp_path / "table-run")], clean_env)
    assert_user_error(proc, "distorts images of uint8 pixels", code=proc.returncode)
    assert proc.returncode != 0 and not (tmp_path / "table-run").exists()
