"""Fuzzing the model-file and image readers with the mutations of ``tests/fuzzing.py``.

A mutated model file must load as the original model, as another model that could have been
written (shapes that chain, finite weights, one label per output), or fail with one line of
:class:`~nnscratch.errors.NNScratchError`; a mutated picture must read as the original gray
levels, as another picture of the same size, or fail the same way. ``NNSCRATCH_FUZZ_CASES``
sets the cases per file (default 300).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fuzzing import fuzz_reader
from nnscratch import MLP, load_model
from nnscratch.errors import NNScratchError


def _in_words(read: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """``read``, checking that each refusal is told in words (no exception class, errno or
    bytes of the file in it) and that no warning escapes (a command prints one line)."""
    def checked(path: Path) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return read(path)
        except NNScratchError as exc:
            assert not re.search(r"Errno|[A-Z][a-z]+Error\b|\\x|b'", str(exc)), str(exc)
            raise

    return checked


def _model_result(path: Path) -> dict[str, Any]:
    model = load_model(path)
    return {"params": model.params(), "classes": model.classes, "inputs": model.inputs}


def _valid_model(result: dict[str, Any]) -> bool:
    params = result["params"]
    count = len(params) // 2
    sizes = [params["W1"].shape[0]] + [params[f"W{k}"].shape[1] for k in range(1, count + 1)]
    chained = all(params[f"W{k}"].shape == (sizes[k - 1], sizes[k])
                  and params[f"b{k}"].shape == (sizes[k],) for k in range(1, count + 1))
    finite = all(np.isfinite(p).all() and p.dtype == params["W1"].dtype for p in params.values())
    classes, inputs = result["classes"], result["inputs"]
    labelled = classes is None or len(classes) == sizes[-1]
    scaled = inputs is None or inputs["scaling"] == "none" or (
        len(inputs["mean"]) == len(inputs["scale"]) == sizes[0])
    return len(params) == 2 * count and chained and finite and labelled and scaled


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    mnist_style = MLP((8,), seed=1)
    labelled = MLP((6, 4), n_inputs=5, classes=["cat", "dog", "eel"], dtype="float64", seed=2)
    labelled.inputs = {"scaling": "standardize", "mean": [0.5, -1.0, 2.0, 0.0, 3.25],
                       "scale": [1.0, 2.0, 0.5, 4.0, 1.5]}
    return {"v1": mnist_style.save(folder / "v1.npz"),
            "v2": labelled.save(folder / "v2.npz")}


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_fuzzed_model_files(model_files, kind):
    fuzz_reader(_in_words(_model_result), model_files[kind], valid=_valid_model)()


def _valid_picture(shape: tuple[int, ...]) -> Any:
    # Pillow reads some damaged pictures anyway (a flipped pixel in an uncompressed run, a
    # chunk it skips): gray levels of the same size are a picture it could have read.
    def valid(gray: np.ndarray) -> bool:
        return (gray.shape == shape and gray.dtype == np.float32 and bool(np.isfinite(gray).all())
                and 0 <= gray.min() and gray.max() <= 255)

    return valid


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, sample_mnist) -> dict[str, Path]:
    Image = pytest.importorskip("PIL.Image", reason="reading images needs Pillow")
    folder = tmp_path_factory.mktemp("pictures")
    digit = 255 - sample_mnist.x_test[0].reshape(28, 28)  # dark ink on white paper
    Image.fromarray(digit).save(folder / "digit.png")
    Image.fromarray(digit.astype(np.uint16) * 257).save(folder / "digit16.png")
    return {"png": folder / "digit.png", "16-bit png": folder / "digit16.png"}


@pytest.mark.parametrize("kind", ["png", "16-bit png"])
def test_fuzzed_pictures(pictures, kind):
    from nnscratch.imageprep import read_grayscale

    assert read_grayscale(pictures[kind]).shape == (28, 28)
    fuzz_reader(_in_words(read_grayscale), pictures[kind], valid=_valid_picture((28, 28)))()
