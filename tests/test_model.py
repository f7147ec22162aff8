"""The MLP: gradients against finite differences, dtypes, inputs, predictions, model files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import nnscratch
from nnscratch import MLP, ConfigError, DataError, ModelFileError, load_model


def test_bias_gradients_are_per_unit(sample_mnist):
    model = MLP((16,), dtype="float64", seed=1)
    _, grads = model.loss_and_grads(sample_mnist.x_train[:32], sample_mnist.y_train[:32])
    for name in ("b1", "b2"):
        assert grads[name].ndim == 1 and len(np.unique(grads[name])) > 1


def test_float32_stays_float32(sample_mnist):
    model = MLP((32,), seed=0)
    assert model.dtype == "float32"
    loss, grads = model.loss_and_grads(sample_mnist.x_train[:16], sample_mnist.y_train[:16])
    assert all(p.dtype == np.float32 for p in model.params().values())
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.predict_proba(sample_mnist.x_test[:4]).dtype == np.float32
    assert 0 < loss < 10


def test_parameters_follow_samples_as_rows_and_init_schemes():
    for init in ("he", "xavier", "seed"):
        params = MLP((20, 7), init=init, seed=0).params()
        assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
        assert params["W1"].shape == (784, 20) and params["b1"].shape == (20,)
        assert params["W3"].shape == (7, 10) and not params["b3"].any()
    seed_w = MLP((10,), init="seed", seed=0).params()["W1"]
    assert seed_w.min() >= 0 and seed_w.max() < 0.01 and seed_w.mean() == pytest.approx(0.005,
                                                                                         rel=0.05)
    he_w = MLP((256,), init="he", seed=0).params()["W1"]
    assert he_w.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)


def test_uint8_and_scaled_float_inputs_agree(sample_mnist):
    model = MLP((32,), seed=2)
    pixels = sample_mnist.x_test[:50]
    scaled = pixels.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(model.predict_proba(pixels), model.predict_proba(scaled))
    np.testing.assert_array_equal(model.predict_proba(pixels),
                                  model.predict_proba(pixels.reshape(50, 28, 28)))
    assert model.predict(pixels[0]).shape == (1,)


def test_predictions_and_evaluate_agree(sample_mnist):
    model = nnscratch.train(sample_mnist, hidden=(32,), epochs=1, progress=False).model
    x, y = sample_mnist.x_test, sample_mnist.y_test
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    labels = model.predict(x)
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    scores = model.evaluate(x, y)
    assert scores["accuracy"] == pytest.approx(np.mean(labels == y), abs=1e-12)
    expected_loss = -np.mean(np.log(proba[np.arange(len(y)), y].astype(np.float64)))
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert scores["accuracy"] > 0.8 and scores["n"] == len(y)


def test_set_params_copies():
    params = MLP((4,), seed=0).params()
    model = MLP.from_params(params)
    params["W1"][:] = 7
    assert not (model.params()["W1"] == 7).any()


@pytest.mark.parametrize("kwargs,word", [
    ({"hidden": (0,)}, "hidden"), ({"hidden": (3.5,)}, "hidden"), ({"dtype": "float16"}, "dtype"),
    ({"init": "zeros"}, "init"), ({"backend": "no-such-backend"}, "unknown backend"),
])
def test_bad_model_options(kwargs, word):
    with pytest.raises(nnscratch.NNScratchError, match=word):
        MLP(**kwargs)


@pytest.mark.parametrize("bad", [np.full((2, 784), 300), np.full((2, 784), 1.5), np.zeros((2, 5)),
                                 np.full((2, 784), np.nan)])
def test_bad_inputs_are_data_errors(bad):
    with pytest.raises(DataError):
        MLP((4,)).predict(bad)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_and_load_round_trip(tmp_path, sample_mnist, dtype):
    result = nnscratch.train(sample_mnist, hidden=(24, 12), epochs=1, dtype=dtype, progress=False)
    path = result.save(tmp_path / "model.npz")
    loaded = load_model(path)
    assert loaded.layer_sizes == (784, 24, 12, 10) and loaded.dtype == dtype
    for name, value in result.model.params().items():
        np.testing.assert_array_equal(loaded.params()[name], value)
    x = sample_mnist.x_test
    np.testing.assert_array_equal(loaded.predict(x), result.model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), result.model.predict_proba(x))
    assert loaded.metadata["test_accuracy"] == result.test_accuracy
    assert loaded.metadata["training"]["hidden"] == [24, 12]
    assert loaded.metadata["backend"] == "numpy"


def _rewrite_npz(src, dst, change):
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    with open(dst, "wb") as out:
        np.savez(out, **arrays)


def _set_meta(arrays, **updates):
    meta = json.loads(arrays["__metadata__"].tobytes())
    meta.update(updates)
    arrays["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


@pytest.mark.parametrize("change,word", [
    (lambda a: a.__setitem__("W2", a["W2"][:, :5]), "W2"),
    (lambda a: a["b1"].__setitem__(0, np.inf), "b1"),
    (lambda a: a.pop("b2"), "b2"),
    (lambda a: _set_meta(a, layer_sizes=[784, 16, 10]), "shape"),
    (lambda a: _set_meta(a, format_version=99), "version"),
])
def test_tampered_model_files_are_rejected(tmp_path, change, word):
    good = MLP((8,), seed=0).save(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    _rewrite_npz(good, bad, change)
    with pytest.raises(ModelFileError, match=word) as info:
        load_model(bad)
    assert "bad.npz" in str(info.value)


def test_model_for_other_inputs_loads_and_checks_its_input_width(tmp_path):
    """A model file for 100 inputs (issue 13: sizes come from the data) loads, predicts rows of
    100 pixels and refuses MNIST's 784 in one sentence."""
    good = MLP((8,), seed=0).save(tmp_path / "good.npz")
    other = tmp_path / "other.npz"

    def shrink(a):
        a["W1"] = a["W1"][:100]
        _set_meta(a, layer_sizes=[100, 8, 10])
    _rewrite_npz(good, other, shrink)
    model = load_model(other)
    assert model.layer_sizes == (100, 8, 10)
    assert model.predict(np.zeros((3, 100), np.uint8)).shape == (3,)
    with pytest.raises(DataError, match="images must have 100 pixels per row"):
        model.predict(np.zeros((3, 784), np.uint8))


def test_model_file_is_a_plain_npz(tmp_path):
    path = MLP((8,), seed=0).save(tmp_path / "m.npz")
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["W1.npy", "W2.npy", "__metadata__.npy", "b1.npy", "b2.npy"]


# --- wrong arguments, sizes and weights -------------------------------------------------------

_SMALL = MLP((8,), n_inputs=4, n_classes=3, seed=0)

WRONG_CALLS = {
    "load_model(5)": (lambda tmp: load_model(5), ModelFileError, "must be a file path"),
    "load_model(None)": (lambda tmp: load_model(None), ModelFileError, "not NoneType"),
    "load_model(folder)": (lambda tmp: load_model(tmp), ModelFileError, "is a folder"),
    "MLP(hidden='x')": (lambda tmp: MLP(hidden="x"), ConfigError, "hidden"),
    "MLP(hidden=5)": (lambda tmp: MLP(hidden=5), ConfigError, "hidden"),
    "MLP(seed='x')": (lambda tmp: MLP(seed="x"), ConfigError, "seed"),
    "MLP(seed=-1)": (lambda tmp: MLP(seed=-1), ConfigError, "seed"),
    "MLP(classes=5)": (lambda tmp: MLP(classes=5), ConfigError, "classes"),
    "MLP(classes='abc')": (lambda tmp: MLP(classes="abc"), ConfigError, "classes"),
    "MLP(n_inputs='x')": (lambda tmp: MLP(n_inputs="x"), ConfigError, "n_inputs"),
    "predict('abc')": (lambda tmp: _SMALL.predict("abc"), DataError, "images"),
    "predict(None)": (lambda tmp: _SMALL.predict(None), DataError, "images"),
    "predict(ragged)": (lambda tmp: _SMALL.predict([[1, 2, 3, 4], [1, 2]]), DataError,
                        "rectangular"),
    "predict(no rows)": (lambda tmp: _SMALL.predict(np.zeros((0, 4))), DataError, "at least one"),
    "predict_proba(width)": (lambda tmp: _SMALL.predict_proba(np.zeros((2, 5))), DataError,
                             "4 pixels"),
    "evaluate(shape)": (lambda tmp: _SMALL.evaluate(np.zeros((3, 5)), [0, 1, 2]), DataError,
                        "4 pixels"),
    "evaluate(labels count)": (lambda tmp: _SMALL.evaluate(np.zeros((3, 4)), [0, 1]), DataError,
                               "shape (3,)"),
    "evaluate(labels 'abc')": (lambda tmp: _SMALL.evaluate(np.zeros((3, 4)), "abc"), DataError,
                               "labels"),
    "evaluate(labels float)": (lambda tmp: _SMALL.evaluate(np.zeros((3, 4)), [0.0, 1.0, 2.0]),
                               DataError, "labels"),
    "save(folder)": (lambda tmp: _SMALL.save(tmp), ModelFileError, "is a folder"),
    "save(5)": (lambda tmp: _SMALL.save(5), ModelFileError, "must be a file path"),
    "from_params(5)": (lambda tmp: MLP.from_params(5), ConfigError, "mapping"),
    "from_params({})": (lambda tmp: MLP.from_params({}), ConfigError, "W1"),
    "from_params(no b2)": (lambda tmp: MLP.from_params({k: v for k, v in _SMALL.params().items()
                                                        if k != "b2"}), ConfigError, "b2"),
    "from_params(1-D W1)": (lambda tmp: MLP.from_params({**_SMALL.params(), "W1": np.zeros(8)}),
                            ConfigError, "W1"),
    "set_params(W1 'x')": (lambda tmp: _SMALL.set_params({**_SMALL.params(), "W1": "x"}),
                           DataError, "W1"),
    "set_params(strings)": (lambda tmp: _SMALL.set_params(
        {**_SMALL.params(), "b1": np.array(["a"] * 8)}), ConfigError, "b1"),
}
@pytest.mark.parametrize("call, error, word", [
    pytest.param(*case, id=name) for name, case in WRONG_CALLS.items()])
def test_wrong_arguments_are_one_sentence_of_the_projects_own(tmp_path, call, error, word):
    with pytest.raises(nnscratch.NNScratchError) as caught:
        call(tmp_path)
    message = str(caught.value)
    assert isinstance(caught.value, error) and word in message, message
    assert "\n" not in message and not re.search(r"\.\s+[A-Z]", message), message


def test_a_model_too_big_for_the_machine_is_refused_before_allocating():
    with pytest.raises(ConfigError) as caught:
        MLP(hidden=(99_999_999_999,))
    message = str(caught.value)
    assert "784-99999999999-10" in message and "79,499,999,999,215 float32 parameters" in message
    assert re.search(r"would need 1\.37 PB, more than the [\d.]+ [kMGT]?B of", message), message


@pytest.mark.parametrize("hidden", [(800,), (4096, 4096)])
def test_big_but_reasonable_models_are_built(hidden):
    assert MLP(hidden, seed=0).layer_sizes == (784, *hidden, 10)


def test_the_command_refuses_a_model_too_big_in_one_line(tmp_path, clean_env):
    proc = subprocess.run([sys.executable, "-m", "nnscratch", "train", "--hidden", "99999999999",
                           "--epochs", "1", "--quiet", "--out", str(tmp_path / "m.npz")],
                          env=clean_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert re.fullmatch(r"nnscratch train: error: training a model of layer sizes "
                        r"784-99999999999-10 .+ would need 1\.37 PB, more than .+\n",
                        proc.stderr), proc.stderr


def _scaled(model: MLP, factor: float, dtype: str | None = None) -> MLP:
    params = {name: (value * factor if name.startswith("W") else value)
              for name, value in model.params().items()}
    return MLP.from_params(params, dtype=dtype)


def test_finite_weights_that_overflow_float32_still_give_probabilities(sample_mnist):
    # Weights up to about 1e31: a float32 forward pass overflows to inf, and softmax would
    # make NaN of it.
    small = MLP((16,), seed=3)
    model = _scaled(small, 1e30)
    x, y = sample_mnist.x_test[:200], sample_mnist.y_test[:200]
    with np.errstate(over="ignore", invalid="ignore"):
        logits, _ = model.forward(model._inputs(x))
    assert not np.isfinite(model.backend.to_numpy(logits)).all()  # the case this is about
    wide = MLP.from_params(model.params(), dtype="float64")  # the same weights, wider
    proba = model.predict_proba(x)
    assert proba.dtype == np.float32 and np.isfinite(proba).all()
    np.testing.assert_allclose(proba, wide.predict_proba(x), atol=1e-6)
    np.testing.assert_array_equal(model.predict(x), wide.predict(x))
    scores, expected = model.evaluate(x, y), wide.evaluate(x, y)
    # the same up to the float32 rounding of the scaled pixels
    assert scores == {**expected, "loss": pytest.approx(expected["loss"], rel=1e-6)}


def test_weights_that_overflow_even_float64_are_refused_in_one_sentence(sample_mnist):
    model = _scaled(MLP((16, 16), seed=3, dtype="float64"), 1e150)
    for call in (model.predict, model.predict_proba,
                 lambda x: model.evaluate(x, sample_mnist.y_test[:20])):
        with pytest.raises(ModelFileError) as caught:
            call(sample_mnist.x_test[:20])
        message = str(caught.value)
        assert message.startswith("MLP(784-16-16-10, dtype=float64") and "\n" not in message
        assert "overflow even in float64" in message and "up to 1.03e+150" in message, message
