"""Training-step benchmarks for every available backend (pytest-benchmark).

Run: ``NNSCRATCH_DATA=FOLDER python -m pytest benchmarks --benchmark-only``. The first round of
each case is a warm-up (JIT compilation, caches) and is not measured.
"""

from __future__ import annotations

import pytest

import nnscratch
from nnscratch.optim import SGD

from .conftest import BACKENDS

pytest.importorskip("pytest_benchmark")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_blog_step(benchmark, mnist, backend, dtype):
    """One full-batch gradient-descent step of 784-10-10 on all 60,000 training images."""
    model = nnscratch.MLP((10,), backend=backend, dtype=dtype, init="seed")
    b = model.backend
    x = b.pixels_to_float(b.asarray(mnist.x_train), dtype)
    y = b.asarray(mnist.y_train)
    optimizer = SGD(0.1)

    def step():
        model.fit_batch(x, y, optimizer)
        b.synchronize()

    benchmark.pedantic(step, rounds=10, warmup_rounds=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hidden", [128, 800])
def test_epoch_batch_128(benchmark, mnist, backend, hidden):
    """One epoch of mini-batch SGD (batch 128, float32), shuffling and batching included."""
    def epoch():
        nnscratch.train(mnist, backend=backend, hidden=(hidden,), epochs=1, progress=False)

    benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
