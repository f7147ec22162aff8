"""Benchmark fixtures: the data, the backends, and the machine facts recorded with the results.

The complete MNIST is read from ``NNSCRATCH_DATA``, as a user's own copy would be. With
``NNSCRATCH_BENCH_QUICK=1`` (a smoke test that the suite works) every case runs on 1,024 images
of the bundled sample instead, for two rounds: those figures mean nothing.
"""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import nnscratch

QUICK = os.environ.get("NNSCRATCH_BENCH_QUICK") == "1"
DTYPES = ["float32", "float64"]
BACKENDS = [name for name, info in nnscratch.available_backends().items() if info.available]


def group(case: str, dtype: str) -> str:
    return f"{case} {dtype}"


@pytest.fixture(scope="session")
def mnist():
    if QUICK:
        data = nnscratch.load_mnist(os.path.join(os.path.dirname(nnscratch.__file__), "sample"))
        n = 1024
        return nnscratch.MnistData(data.x_train[:n], data.y_train[:n], data.x_test[:n],
                                   data.y_test[:n], "quick: 1,024 sample images", True)
    folder = os.environ.get("NNSCRATCH_DATA")
    if not folder:
        pytest.skip("NNSCRATCH_DATA is not set: point it at a folder with the full MNIST "
                    "(or set NNSCRATCH_BENCH_QUICK=1 for a smoke test)")
    return nnscratch.load_mnist(folder)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "nnscratch": nnscratch.__version__}
    for name in ("numba", "torch", "cupy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return versions


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # show_config's layout differs across NumPy versions
        return "unknown"


def _threads() -> dict[str, str]:
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    threads = {name: os.environ.get(name, "unset") for name in names}
    threads["cpu_count"] = str(os.cpu_count())
    try:
        import torch

        threads["torch"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return threads


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["nnscratch"] = {"versions": _versions(), "blas": _blas(), "threads": _threads(),
                                 "backends": BACKENDS, "quick": QUICK}
