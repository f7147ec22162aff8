"""train(): determinism, the history, full-batch descent, options, divergence, and accuracy on
the full MNIST (the issue's two reference setups)."""

from __future__ import annotations

import io

import numpy as np
import pytest

import nnscratch
from nnscratch import ConfigError, TrainingDivergedError
from nnscratch.optim import SGD
from nnscratch import Callback, ProgressPrinter


def small_run(data, **kwargs):
    settings = {"hidden": (32,), "epochs": 1, "progress": False, **kwargs}
    return nnscratch.train(data, **settings)


def test_same_seed_gives_bit_identical_parameters(sample_mnist):
    a = small_run(sample_mnist, epochs=2, momentum=0.9).model.params()
    b = small_run(sample_mnist, epochs=2, momentum=0.9).model.params()
    c = small_run(sample_mnist, epochs=2, momentum=0.9, seed=1).model.params()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["W1"], c["W1"])


def test_history_and_result(sample_mnist):
    result = small_run(sample_mnist, epochs=3, lr=0.2)
    assert [s.epoch for s in result.history] == [1, 2, 3]
    assert result.history[-1].loss < result.history[0].loss
    assert all(s.seconds > 0 and 0 <= s.train_accuracy <= 1 for s in result.history)
    scores = result.model.evaluate(sample_mnist.x_test, sample_mnist.y_test)
    assert result.test_accuracy == scores["accuracy"]
    assert result.history[-1].test_loss == pytest.approx(scores["loss"], rel=1e-6)
    assert result.settings["lr"] == 0.2 and result.settings["backend"] == "numpy"
    assert result.data_is_sample and "sample" in result.data_source


def test_one_step_is_plain_gradient_descent(sample_mnist):
    """A single full-batch epoch equals params - lr * loss_and_grads, computed independently."""
    x, y = sample_mnist.x_train[:300], sample_mnist.y_train[:300]
    data = (x, y, sample_mnist.x_test[:50], sample_mnist.y_test[:50])
    result = small_run(data, batch_size=None, lr=0.5, dtype="float64", init="xavier", seed=4)
    start = nnscratch.MLP((32,), dtype="float64", init="xavier",
                          seed=nnscratch.rng.generators(4)[0])
    loss, grads = start.loss_and_grads(x, y)
    assert result.history[0].loss == pytest.approx(loss, rel=1e-12)
    for name, value in start.params().items():
        np.testing.assert_allclose(result.model.params()[name], value - 0.5 * grads[name],
                                   rtol=1e-12, atol=1e-15)


class StepCounter(Callback):
    def __init__(self):
        self.steps = []

    def on_epoch_start(self, epoch, epochs, steps):
        self.steps.append(steps)

    def on_step(self, step):
        self.last = step


def test_full_batch_takes_one_step_per_epoch(sample_mnist):
    counter = StepCounter()
    small_run(sample_mnist, batch_size=None, epochs=2, callback=counter)
    assert counter.steps == [1, 1] and counter.last == 1
    counter = StepCounter()
    small_run(sample_mnist, batch_size=1000, callback=counter)
    assert counter.steps == [8] and counter.last == 8  # 8,000 images, the last batch full


def test_momentum_changes_the_result(sample_mnist):
    plain = small_run(sample_mnist).model.params()["W1"]
    heavy = small_run(sample_mnist, momentum=0.5).model.params()["W1"]
    assert not np.allclose(plain, heavy)


@pytest.mark.parametrize("kwargs,word", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "learning rate"),
    ({"lr": float("nan")}, "learning rate"), ({"momentum": 1.0}, "momentum"),
    ({"dtype": "int8"}, "dtype"), ({"init": "ones"}, "init"), ({"hidden": (-4,)}, "hidden"),
    ({"backend": "nope"}, "unknown backend"),
])
def test_impossible_options_are_refused(sample_mnist, kwargs, word):
    with pytest.raises(nnscratch.NNScratchError, match=word):
        small_run(sample_mnist, **kwargs)


def test_bad_data_argument(sample_mnist):
    with pytest.raises(ConfigError, match="data must be"):
        small_run([1, 2, 3])


def test_divergence_is_reported(sample_mnist):
    with pytest.raises(TrainingDivergedError, match="epoch 1.*learning rate"):
        small_run(sample_mnist, lr=1e6)


def test_progress_lines(sample_mnist, capsys):
    small_run(sample_mnist, epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "test acc" in err
    small_run(sample_mnist)  # progress=None and stderr is not a terminal: quiet
    assert capsys.readouterr().err == ""
    stream = io.StringIO()
    small_run(sample_mnist, epochs=5, callback=ProgressPrinter(stream, every=2))
    printed = [line.split()[1] for line in stream.getvalue().splitlines()]
    assert printed == ["1/5", "2/5", "4/5", "5/5"]


def test_sgd_rejects_bad_settings():
    with pytest.raises(ConfigError):
        SGD(0.0)
    with pytest.raises(ConfigError):
        SGD(0.1, momentum=-0.1)


# --- the reference setups, on the complete MNIST --------------------------------------

def test_784_128_10_reaches_97_percent(full_mnist):
    result = nnscratch.train(full_mnist, hidden=(128,), epochs=5, batch_size=128, lr=0.5, seed=0,
                             progress=False)
    print(f"784-128-10, 5 epochs: test accuracy {result.test_accuracy:.4f}")
    assert result.test_accuracy >= 0.970


def test_blog_setup_reaches_87_percent(full_mnist):
    result = nnscratch.train(full_mnist, hidden=(10,), epochs=500, batch_size=None, lr=0.1,
                             init="seed", seed=0, progress=False)
    print(f"784-10-10 full batch, 500 iterations: test accuracy {result.test_accuracy:.4f}")
    assert result.test_accuracy >= 0.87


def test_784_800_10_reaches_98_2_percent(full_mnist):
    """The issue's target (the published figure for this network is 98.4%): Adam with a cosine
    schedule, 12 epochs; about 25 s on two cores (measured: 98.33%)."""
    result = nnscratch.train(full_mnist, hidden=(800,), epochs=12, batch_size=128,
                             optimizer="adam", lr=0.001, schedule="cosine", seed=0,
                             progress=False)
    print(f"784-800-10, Adam + cosine, 12 epochs: test accuracy {result.test_accuracy:.4f}")
    assert result.test_accuracy >= 0.982


# --- sizes from the data (issue 13) ---------------------------------------------------------------

def test_sizes_and_classes_come_from_the_data(tmp_path):
    """64-pixel (8x8) images of 3 classes: the model is 64-16-3, learns them, and its file
    loads with those sizes; labels outside the classes are refused."""
    from nnscratch.testing import synthetic_data

    data = synthetic_data(64, 3)
    arrays = (data.x_train, data.y_train, data.x_test.reshape(-1, 8, 8), data.y_test)
    result = small_run(arrays, hidden=(16,), epochs=5, lr=0.05)
    assert result.model.layer_sizes == (64, 16, 3)
    assert result.test_accuracy > 0.9  # three well-separated prototypes
    loaded = nnscratch.load_model(result.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.predict(data.x_test), result.model.predict(data.x_test))
    with pytest.raises(nnscratch.DataError, match=r"class numbers 0..2; got 3 at index 0"):
        loaded.evaluate(data.x_test[:2], [3, 0])


def test_two_classes_work_and_one_class_is_refused():
    from nnscratch.testing import synthetic_data

    data = synthetic_data(30, 2)
    result = small_run((data.x_train, data.y_train, data.x_test, data.y_test), epochs=3)
    assert result.model.layer_sizes == (30, 32, 2) and result.test_accuracy > 0.9
    with pytest.raises(nnscratch.DataError, match="at least two classes"):
        small_run((data.x_train, np.zeros(len(data.x_train), int), data.x_test,
                   np.zeros(len(data.x_test), int)))


def test_a_run_folder_for_other_sizes_has_a_report_that_fits_them(tmp_path):
    """8x8 images of 3 classes: the report draws 8x8 weights and mistakes, a 3x3 confusion
    matrix, and precision and recall per class."""
    from nnscratch.testing import synthetic_data

    data = synthetic_data(64, 3)
    result = small_run((data.x_train, data.y_train, data.x_test, data.y_test), epochs=2,
                       out=tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<th>precision</th><th>recall</th>" in page and page.count("<tr><th>2</th>") >= 1
    predictions = nnscratch.runs.read_predictions(tmp_path / "run")
    right = (predictions["labels"] == predictions["predicted"]).mean()
    assert right == pytest.approx(result.test_accuracy, abs=1e-12)
    if nnscratch.report.plotting_available():  # (no mistakes.png: every test image is right)
        assert {"weights.png", "confusion.png"} <= {p.name for p in (tmp_path / "run").iterdir()}


def test_labels_of_any_kind_are_the_models_classes(tmp_path):
    """String labels: the model's classes are the sorted labels, predict returns them, and the
    model file (format version 2) carries them; an MNIST model stays version 1."""
    from nnscratch.testing import synthetic_data

    data = synthetic_data(64, 3)
    names = np.array(["emu", "cat", "dog"])  # class 0 is "emu": the classes get sorted
    result = small_run((data.x_train, names[data.y_train], data.x_test, names[data.y_test]),
                       hidden=(16,), epochs=5, lr=0.05)
    assert result.model.classes == ("cat", "dog", "emu") and result.test_accuracy > 0.9
    expected = names[data.y_test]
    assert (result.model.predict(data.x_test) == expected).mean() == result.test_accuracy
    loaded = nnscratch.load_model(result.save(tmp_path / "m.npz"))
    assert loaded.metadata["format_version"] == 2 and loaded.classes == ("cat", "dog", "emu")
    np.testing.assert_array_equal(loaded.predict(data.x_test), result.model.predict(data.x_test))
    assert loaded.evaluate(data.x_test, expected)["accuracy"] == result.test_accuracy
    with pytest.raises(nnscratch.DataError, match=r"the model's classes \('cat', 'dog', 'emu'\); "
                                                  r"got 'yak' at index 1"):
        loaded.evaluate(data.x_test[:2], ["cat", "yak"])
    small_run((data.x_train, names[data.y_train], data.x_test, names[data.y_test]),
              out=tmp_path / "run")  # a run folder, its report naming the classes
    page = (tmp_path / "run" / "report.html").read_text()
    assert all(f"<tr><th>{name}</th>" in page for name in ("cat", "dog", "emu"))
    mnist_like = nnscratch.MLP((4,), seed=0).save(tmp_path / "plain.npz")
    assert nnscratch.load_model(mnist_like).metadata["format_version"] == 1


@pytest.mark.parametrize("classes", [("a", "a"), ("a", 1), (True, False), ("a",), (1.5, 2.5)])
def test_impossible_classes_are_refused(classes):
    with pytest.raises(ConfigError, match="classes must be"):
        nnscratch.MLP((4,), n_inputs=8, classes=classes)


def _measurements(path, n=600, seed=0):
    """A CSV of three features on very different scales and a string label column."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    names = np.array(["setosa", "versicolor", "virginica"])
    x = np.c_[1000 + 50 * y + rng.normal(0, 20, n), 0.01 * y + rng.normal(0, 0.004, n),
              rng.normal(0, 1, n)]
    lines = ["width,height,noise,species"] + [
        ",".join(f"{v:.6f}" for v in row) + f",{label}" for row, label in zip(x, names[y])]
    path.write_text("\n".join(lines) + "\n")
    return x, names[y]


def test_a_table_trains_with_standardized_features_kept_in_the_model(tmp_path):
    """A table with string labels and features thousands of times apart in scale: the
    features are standardized with the training rows' mean and spread, the model file keeps
    that and the classes, and the loaded model predicts the strings from raw rows."""
    from nnscratch.data.tables import read_table

    x, labels = _measurements(tmp_path / "m.csv")
    result = small_run(read_table(tmp_path / "m.csv"), hidden=(16,), epochs=20, lr=0.05)
    assert "species" in result.data_source and "held out" in result.data_source
    model = result.model
    assert model.layer_sizes == (3, 16, 3) and model.classes == ("setosa", "versicolor",
                                                                "virginica")
    assert model.inputs["scaling"] == "standardize" and 1000 < model.inputs["mean"][0] < 1100
    assert result.test_accuracy > 0.9
    loaded = nnscratch.load_model(result.save(tmp_path / "m.npz"))
    assert loaded.metadata["format_version"] == 2 and loaded.inputs == model.inputs
    kept = x.copy()
    assert (loaded.predict(x) == labels).mean() > 0.9
    np.testing.assert_array_equal(x, kept)  # the user's rows are not scaled in place
    with pytest.raises(nnscratch.DataError, match="features must be rows of 3 numbers"):
        loaded.predict(np.zeros((2, 4)))
    with pytest.raises(nnscratch.DataError, match=r"finite; got nan in row 1, column 2"):
        loaded.predict([[1, 2, 3], [1, 2, np.nan]])


def test_scaling_chooses_how_inputs_are_prepared(tmp_path):
    x, labels = _measurements(tmp_path / "m.csv")
    data = (x[:500], labels[:500], x[500:], labels[500:])
    kept = x.copy()
    auto = small_run(data, epochs=1)
    np.testing.assert_array_equal(x, kept)  # training on them left the user's arrays alone
    assert auto.model.inputs["scaling"] == "standardize"  # floats: standardized by default
    kept = small_run(data, epochs=1, lr=1e-7, scaling="none")
    assert kept.model.inputs == {"scaling": "none"}
    with pytest.raises(nnscratch.DataError, match=r"scaled to \[0, 1\]"):
        small_run(data, scaling="pixels")  # floats far outside [0, 1] are no pixels
    pixels = np.random.default_rng(0).integers(0, 256, (60, 16), dtype=np.uint8)
    as_pixels = small_run((pixels, np.arange(60) % 2, pixels, np.arange(60) % 2), epochs=1)
    assert as_pixels.model.inputs is None  # integers: pixels, divided by 255, by default
    standardized = small_run((pixels, np.arange(60) % 2, pixels, np.arange(60) % 2), epochs=1,
                             scaling="standardize")
    assert standardized.model.inputs["scaling"] == "standardize"


def test_compare_backends_prepares_arrays_as_train_does(tmp_path):
    """Float features given to compare_backends are standardized, as train() would: the two
    trainings start from the same prepared rows (numpy against itself agrees exactly)."""
    from nnscratch.compare import compare_backends

    x, labels = _measurements(tmp_path / "m.csv")
    comparison = compare_backends("numpy", "numpy", (x[:500], labels[:500], x[500:],
                                                      labels[500:]), steps=20, hidden=(8,))
    assert comparison.worst() == (0.0, 0.0) and comparison.reference_accuracy > 0.5
