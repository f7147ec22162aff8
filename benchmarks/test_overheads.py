"""One-off costs, kept apart from the steady-state figures: JIT compilation (with an empty and
with a warm on-disk cache) and copying the training set to the backend."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from .conftest import BACKENDS, QUICK, group

pytest.importorskip("pytest_benchmark")

# A child process that creates the backend and runs every kernel of a training step once.
WARM_UP = """
import numpy, nnscratch
from nnscratch import Trainer
x = numpy.zeros((256, 784), numpy.uint8); y = numpy.arange(256) % 10
for dtype in ("float32", "float64"):
    t = Trainer(nnscratch.MnistData(x, y, x, y, "", False), backend="{backend}", dtype=dtype,
                hidden=(16,), momentum=0.9)
    t.run_epoch()
    t.evaluate_test()
"""


def _child(backend: str, cache_dir: str) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    subprocess.run([sys.executable, "-c", WARM_UP.format(backend=backend)], env=env, check=True)


@pytest.mark.parametrize("cache", ["cold", "warm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_start_up(benchmark, backend, cache):
    """A fresh process: import, create the backend, run each kernel once (float32 and float64).
    With ``cold`` the JIT cache is empty, so this includes compiling every kernel."""
    benchmark.group = "start-up (new process)"
    benchmark.extra_info.update(case=f"start-up, {cache} cache", implementation=f"nnscratch-"
                                f"{backend}", dtype="both")
    folder = tempfile.mkdtemp(prefix="nnscratch-jit-")
    if cache == "warm":
        _child(backend, folder)

    def fresh() -> tuple[tuple, dict]:
        if cache == "cold":
            return (backend, tempfile.mkdtemp(prefix="nnscratch-jit-")), {}
        return (backend, folder), {}

    benchmark.pedantic(_child, setup=fresh, rounds=1 if QUICK else 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_transfer_training_set(benchmark, mnist, backend):
    """Copying the uint8 training images to the backend (host to device on a GPU)."""
    import nnscratch

    b = nnscratch.get_backend(backend)
    benchmark.group = group("transfer", "uint8")
    benchmark.extra_info.update(case="transfer", implementation=f"nnscratch-{backend}",
                                dtype="uint8")

    def copy() -> None:
        b.asarray(mnist.x_train)
        b.synchronize()

    benchmark.pedantic(copy, rounds=2 if QUICK else 10, warmup_rounds=1)
