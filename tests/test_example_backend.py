"""The documentation's example backend (docs/examples/minimal_backend.py), tested as a third
party would test theirs: registered by name and put through the agreement suite."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import registry
from nnscratch.compare import trajectory_tolerance
from nnscratch.testing import BackendAgreementSuite

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "minimal_backend.py"
NAME = "minimal"


def _load_example() -> type[nnscratch.Backend]:
    spec = importlib.util.spec_from_file_location("minimal_backend", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MinimalBackend


MinimalBackend = _load_example()


@pytest.fixture
def minimal():
    """The example registered under its name for one test, and unregistered after it."""
    nnscratch.register_backend(NAME, MinimalBackend)
    yield MinimalBackend
    registry.unregister_backend(NAME)


class TestMinimalBackend(BackendAgreementSuite):
    """The whole agreement suite, as the documentation tells a backend's author to run it."""

    @pytest.fixture
    def backend_name(self, minimal):
        return NAME


def test_training_calls_the_overrides(minimal, sample_mnist, monkeypatch):
    """A training on backend="minimal" goes through the example's own bias_relu and sum_rows."""
    assert {"bias_relu", "sum_rows"} <= vars(minimal).keys()  # the example's own methods
    calls = Counter()
    for method in ("bias_relu", "sum_rows"):
        def spy(self, *args, _method=method, _original=getattr(minimal, method), **kwargs):
            calls[_method] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(minimal, method, spy)
    result = nnscratch.train(sample_mnist, backend=NAME, hidden=(16,), epochs=1,
                             batch_size=128, progress=False)
    assert type(result.model.backend) is minimal
    steps = -(-len(sample_mnist.x_train) // 128)
    # every step: one hidden layer's forward pass, and a bias gradient for each of two layers
    assert calls["bias_relu"] >= steps and calls["sum_rows"] >= 2 * steps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_agrees_with_numpy(minimal, sample_mnist, dtype):
    """In float64 a float64 accumulation is what NumPy does: the same bits. In float32 sum_rows
    rounds differently from NumPy's float32 sum, which shows it is used, and the run stays
    within the tolerance two float32 backends get between each other."""
    settings = dict(hidden=(16,), epochs=1, batch_size=128, dtype=dtype, momentum=0.9,
                    progress=False)
    ours = nnscratch.train(sample_mnist, backend=NAME, **settings).model.params()
    reference = nnscratch.train(sample_mnist, backend="numpy", **settings).model.params()
    assert ours.keys() == reference.keys()
    if dtype == "float64":
        for name in reference:
            np.testing.assert_array_equal(ours[name], reference[name], err_msg=name)
        return
    assert any((ours[name] != reference[name]).any() for name in reference)
    steps = -(-len(sample_mnist.x_train) // 128)
    for name in reference:
        assert ours[name].dtype == np.float32, name
        worst = np.abs(ours[name] - reference[name]).max() / np.abs(reference[name]).max()
        assert worst <= trajectory_tolerance("float32", steps), name
