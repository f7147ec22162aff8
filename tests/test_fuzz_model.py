"""Fuzzing the model-file and image readers with the mutations of ``tests/fuzzing.py``.

A mutated model file must load as the original model, as another model that could have been
written (shapes that chain, finite weights, one label per output), or fail with one line of
:class:`~nnscratch.errors.NNScratchError`; a mutated picture must read as the original gray
levels, as another picture of the same size, or fail the same way. ``NNSCRATCH_FUZZ_CASES``
sets the cases per file (default 300).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fuzzing import fuzz_reader
from nnscratch import MLP, load_model


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
    fuzz_reader(_model_result, model_files[kind], valid=_valid_model)()
