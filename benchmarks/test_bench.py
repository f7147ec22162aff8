"""The benchmark suite: each case, for each implementation and dtype (pytest-benchmark).

Cases (full MNIST, or a small slice of the bundled sample with ``NNSCRATCH_BENCH_QUICK=1``):

* ``blog-step``: one full-batch gradient-descent iteration of 784-10-10 on all training images;
* ``epoch-128`` / ``epoch-800``: one epoch of SGD with batch 128, 784-128-10 / 784-800-10,
  shuffling and batching included;
* ``inference``: predicting the test images (784-128-10), from uint8 pixels to digits.

The epochs also time ``blas-floor``, the two large BLAS products of each step and nothing else
(``baselines.floor_epoch``), so that every epoch's distance from its floor is measured in the
same run.

Set-up (data conversion, building the model, moving data to the backend) is not timed; one
warm-up round runs first, so JIT compilation is not in these figures. Overheads that a user
does pay once are measured separately in ``test_overheads.py``.

Run all of it with ``python benchmarks/run.py`` (see its --help).
"""

from __future__ import annotations

import pytest

from . import baselines as impl
from .conftest import BACKENDS, DTYPES, QUICK, group

pytest.importorskip("pytest_benchmark")

ROUNDS = 2 if QUICK else {"blog-step": 15, "epoch-128": 5, "epoch-800": 3, "inference": 15}
IMPLEMENTATIONS = ["blog", "plain-numpy", "torch", *(f"nnscratch-{b}" for b in BACKENDS)]
FLOOR = "blas-floor"  # epochs only: the two large products of each step, nothing else


def _factory(name: str, case: str):
    kind = {"blog-step": "step", "epoch-128": "epoch", "epoch-800": "epoch",
            "inference": "inference"}[case]
    if name.startswith("nnscratch-"):
        return getattr(impl, f"nnscratch_{kind}")(name.removeprefix("nnscratch-"))
    if name == "torch":
        pytest.importorskip("torch", reason="PyTorch is not installed: no torch column")
    if name == FLOOR:
        return impl.floor_epoch
    return getattr(impl, f"{name.replace('-numpy', '')}_{kind}")


def _skip_redundant(name: str, dtype: str) -> None:
    if name == "blog" and dtype != "float64":
        pytest.skip("the blog's code is float64 only; its float64 row is the baseline for both")


def _run(benchmark, case: str, name: str, dtype: str, work) -> None:
    benchmark.group = group(case, dtype)
    benchmark.extra_info.update(case=case, implementation=name, dtype=dtype)
    rounds = ROUNDS if QUICK else ROUNDS[case]
    benchmark.pedantic(work, rounds=rounds, warmup_rounds=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_blog_step(benchmark, mnist, name, dtype):
    _skip_redundant(name, dtype)
    work = _factory(name, "blog-step")(mnist.x_train, mnist.y_train, dtype)
    _run(benchmark, "blog-step", name, dtype, work)


@pytest.mark.parametrize("hidden", [128, 800])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", [*IMPLEMENTATIONS, FLOOR])
def test_epoch(benchmark, mnist, name, dtype, hidden):
    _skip_redundant(name, dtype)
    case = f"epoch-{hidden}"
    work = _factory(name, case)(mnist.x_train, mnist.y_train, hidden, dtype)
    _run(benchmark, case, name, dtype, work)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_inference(benchmark, mnist, name, dtype):
    _skip_redundant(name, dtype)
    work = _factory(name, "inference")(mnist.x_test, 128, dtype)
    _run(benchmark, "inference", name, dtype, work)
