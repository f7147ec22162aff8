"""Whole runs, as a user starts them: the figures that count (the isolated cases of
test_bench.py are their diagnosis). Float32; the blog's code in float64, as it was written.

* ``run-blog``: the posts' setup, 784-10-10, full batch, 500 iterations from weights uniform in
  [0, 0.01): ``train(data, hidden=(10,), batch_size=None, lr=0.1, init="seed", epochs=500)``,
  against the posts' own loop (which works out the training accuracy every 10th iteration);
* ``run-128`` / ``run-800``: three epochs of 784-128-10 / 784-800-10, SGD, batch 128, through
  ``train()`` (the test set evaluated after each epoch), against plain NumPy and a hand-written
  PyTorch loop doing the same epochs and evaluations;
* ``first-command``: the README's first command, ``nnscratch train --lr 0.5``, on the full MNIST
  (``NNSCRATCH_DATA``), start to finish as a process: interpreter start, imports, reading the
  data, 5 epochs of 784-128-10, writing the model file.

The data is loaded before the timing (except for ``first-command``); one warm-up round runs
first, so JIT compilation is not counted, as in the isolated cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from . import baselines as impl
from .conftest import BACKENDS, QUICK, group

pytest.importorskip("pytest_benchmark")

ROUNDS = {"run-blog": 2, "run-128": 3, "run-800": 2, "first-command": 3}
ITERATIONS = 20 if QUICK else 500
EPOCHS = 1 if QUICK else 3
NNSCRATCH = [f"nnscratch-{b}" for b in BACKENDS]


def _run(benchmark, case: str, name: str, dtype: str, work) -> None:
    benchmark.group = group(case, dtype)
    benchmark.extra_info.update(case=case, implementation=name, dtype=dtype)
    benchmark.pedantic(work, rounds=1 if QUICK else ROUNDS[case], warmup_rounds=1)


@pytest.mark.parametrize("name", ["blog", *NNSCRATCH])
def test_run_blog(benchmark, mnist, name):
    m = mnist
    if name == "blog":
        work, dtype = impl.blog_run(m.x_train, m.y_train, m.x_test, m.y_test, ITERATIONS), \
            "float64"
    else:
        dtype = "float32"
        work = impl.nnscratch_run(name.removeprefix("nnscratch-"))(
            m, dtype, hidden=(10,), batch_size=None, lr=0.1, init="seed", epochs=ITERATIONS)
    _run(benchmark, "run-blog", name, dtype, work)


@pytest.mark.parametrize("hidden", [128, 800])
@pytest.mark.parametrize("name", ["plain-numpy", "torch", *NNSCRATCH])
def test_run_epochs(benchmark, mnist, name, hidden):
    m, dtype = mnist, "float32"
    if name.startswith("nnscratch-"):
        work = impl.nnscratch_run(name.removeprefix("nnscratch-"))(
            m, dtype, hidden=(hidden,), batch_size=128, lr=0.1, epochs=EPOCHS)
    else:
        if name == "torch":
            pytest.importorskip("torch", reason="PyTorch is not installed: no torch column")
        make = impl.torch_run if name == "torch" else impl.plain_run
        work = make(m.x_train, m.y_train, m.x_test, m.y_test, hidden, EPOCHS, dtype)
    _run(benchmark, f"run-{hidden}", name, dtype, work)


@pytest.mark.parametrize("name", NNSCRATCH)
def test_first_command(benchmark, name):
    data = os.environ.get("NNSCRATCH_DATA")
    if not data and not QUICK:
        pytest.skip("NNSCRATCH_DATA is not set: the first command would train on the sample")
    env = {**os.environ, **({"NNSCRATCH_DATA": data} if data and not QUICK else {})}
    if QUICK:
        env.pop("NNSCRATCH_DATA", None)  # the bundled sample: a smoke test of the case
    backend = name.removeprefix("nnscratch-")
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "nnscratch", "train", "--lr", "0.5", "--backend",
                   backend, "--out", os.path.join(folder, "model.npz")]

        def work() -> None:
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        _run(benchmark, "first-command", name, "float32", work)
