"""The MLP: gradients against finite differences, dtypes, inputs, predictions, model files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import nnscratch
from nnscratch import MLP, DataError, ModelFileError, load_model


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
