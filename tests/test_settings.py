"""TrainSettings: one declaration of every setting, checked once, in JSON and on the command
line; and files written before it existed (tests/data/v0.1.0) still load and resume."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import ConfigError, SettingsError, TrainSettings
from nnscratch.cli import build_parser

from test_cli import assert_user_error, run

OLD = Path(__file__).parent / "data" / "v0.1.0"


def test_defaults_and_stored_forms():
    s = TrainSettings(hidden=[64, 32], lr=1, batch_size=None, schedule="none")
    assert s.hidden == (64, 32) and s.lr == 1.0 and isinstance(s.lr, float)
    assert s.batch_size is None and s.schedule is None
    assert TrainSettings() == TrainSettings(hidden=(128,), epochs=5, lr=0.1)
    assert TrainSettings(dtype=np.dtype("float64")).to_json()["dtype"] == "float64"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 0.5
    assert hash(s) == hash(TrainSettings(hidden=(64, 32), lr=1.0, batch_size=None))


def test_json_round_trip_and_records_from_before_a_setting_existed():
    s = TrainSettings(hidden=(32,), optimizer="adam", lr=0.002, schedule="cosine",
                      validation=0.2, patience=3, backend="numpy")
    record = s.to_json()
    assert record["hidden"] == [32] and TrainSettings.from_json(record) == s
    old = {k: v for k, v in record.items() if k != "patience"}  # a record without a setting
    assert TrainSettings.from_json(old).patience is None
    with pytest.raises(ConfigError, match="unknown setting 'learning_rate'"):
        TrainSettings.from_json({**record, "learning_rate": 0.1})
    with pytest.raises(ConfigError, match="JSON object"):
        TrainSettings.from_json([1, 2])


@pytest.mark.parametrize("changes,words", [
    ({"epochs": 0}, "epochs must be a positive integer; got 0"),
    ({"epochs": True}, "epochs must be a positive integer; got True"),  # a bool is no count
    ({"epochs": 2.0}, "epochs must be a positive integer"),
    ({"hidden": ()}, "hidden must be positive layer sizes"),
    ({"hidden": (8, 0)}, "hidden must be positive layer sizes"),
    ({"batch_size": 0}, "batch_size must be a positive integer or None"),
    ({"lr": float("inf")}, "lr must be a positive learning rate"),
    ({"momentum": -0.1}, "momentum must be a fraction"),
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"dtype": "float16"}, "dtype must be one of float32, float64"),
    ({"lr_gamma": 0}, "lr_gamma must be a factor above 0 and at most 1"),
    ({"nesterov": 1}, "nesterov must be True or False"),
    ({"nesterov": True}, "nesterov needs momentum above 0"),
    ({"patience": 2}, "patience needs validation"),
    ({"optimizer": "adam", "momentum": 0.5}, "momentum and nesterov are SGD settings"),
    ({"lr_min": 0.2}, r"lr_min must be below lr, the learning rate \(0.1\); got 0.2"),
    ({"backend": ""}, "backend must be a backend name"),
])
def test_each_rule_is_checked_once_and_names_the_setting(changes, words):
    with pytest.raises(SettingsError, match=words):
        TrainSettings(**changes)
    with pytest.raises(SettingsError, match=words):
        TrainSettings().replace(**changes)


def test_a_combination_is_told_in_the_command_lines_names_too():
    with pytest.raises(SettingsError) as error:
        TrainSettings(lr=0.1, lr_min=0.5)
    assert error.value.spelled(lambda name: "--" + name.replace("_", "-")) == (
        "--lr-min must be below --lr, the learning rate (0.1); got 0.5")


def test_every_setting_is_a_keyword_of_train_and_an_option_of_the_command():
    parameters = inspect.signature(nnscratch.train).parameters
    parser = build_parser()
    train_options = parser._subparsers._group_actions[0].choices["train"]._option_string_actions
    for name, default, _, _ in TrainSettings.describe():
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        if name != "backend":
            assert parameters[name].default == default
        assert "--" + name.replace("_", "-") in train_options


def test_settings_object_and_keywords_train_the_same(sample_mnist):
    settings = TrainSettings(hidden=(16,), epochs=1, batch_size=500, momentum=0.5, seed=2)
    by_object = nnscratch.train(sample_mnist, settings=settings, progress=False)
    by_keywords = nnscratch.train(sample_mnist, hidden=(16,), epochs=1, batch_size=500,
                                  momentum=0.5, seed=2, progress=False)
    # keywords given with settings override them
    overridden = nnscratch.train(sample_mnist, settings=settings.replace(seed=9), seed=2,
                                 progress=False)
    for name, value in by_keywords.model.params().items():
        np.testing.assert_array_equal(by_object.model.params()[name], value)
        np.testing.assert_array_equal(overridden.model.params()[name], value)
    assert by_object.settings == settings.replace(backend="numpy")
    assert by_object.settings["lr"] == 0.1  # indexing by name, as when it was a dict


def test_unknown_keyword_is_a_type_error(sample_mnist):
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        nnscratch.train(sample_mnist, learning_rate=0.1)


def test_resume_refuses_a_given_setting_even_when_it_is_the_default(tmp_path, sample_mnist):
    """lr=0.1 is train()'s default, but the run was started with 0.5: given, it is refused."""
    folder = tmp_path / "run"
    nnscratch.train(sample_mnist, out=folder, hidden=(8,), epochs=1, lr=0.5, progress=False)
    (folder / "model.npz").unlink()  # make it look unfinished, without a checkpoint
    with pytest.raises(ConfigError, match="lr 0.1 differs from the 0.5"):
        nnscratch.train(sample_mnist, resume=folder, lr=0.1)
    with pytest.raises(ConfigError, match="lr 0.1 differs from the 0.5"):
        nnscratch.train(sample_mnist, resume=folder, settings=TrainSettings(hidden=(8,), epochs=1))


def test_the_old_module_path_still_imports():
    from nnscratch.train import Callback, Trainer, TrainingInterrupted

    assert callable(nnscratch.train) and Trainer is nnscratch.Trainer
    assert Callback is nnscratch.Callback and TrainingInterrupted is nnscratch.TrainingInterrupted


# --- files written before TrainSettings ---------------------------------------------------------

def test_a_run_folder_from_before_resumes_bit_for_bit(tmp_path, sample_mnist):
    folder = shutil.copytree(OLD / "interrupted-run", tmp_path / "run")
    result = nnscratch.train(sample_mnist, resume=folder, progress=False)
    assert result.settings == TrainSettings(hidden=(16,), epochs=3, batch_size=100,
                                            momentum=0.9, schedule="cosine", validation=0.1,
                                            seed=5, backend="numpy")
    expected = nnscratch.load_model(OLD / "uninterrupted-model.npz").params()
    for name, value in expected.items():
        np.testing.assert_array_equal(result.model.params()[name], value, err_msg=name)
    assert [row["epoch"] for row in nnscratch.runs.read_metrics(folder)] == [1, 2, 3]


def test_a_model_file_from_before_loads_and_evaluates(sample_mnist, tmp_path, clean_env):
    model = nnscratch.load_model(OLD / "uninterrupted-model.npz")
    assert model.layer_sizes == (784, 16, 10)
    assert model.evaluate(sample_mnist.x_test, sample_mnist.y_test)["accuracy"] > 0.85
    assert TrainSettings.from_json(model.metadata["training"]).hidden == (16,)
    proc = run(["evaluate", str(OLD / "uninterrupted-model.npz")], clean_env)
    assert proc.returncode == 0 and "test accuracy" in proc.stdout, proc.stderr


def test_command_line_refuses_a_combination_in_its_own_names(clean_env):
    proc = run(["train", "--lr", "0.1", "--lr-min", "0.3"], clean_env)
    assert_user_error(proc, "--lr-min must be below --lr")
    assert proc.stdout == ""
