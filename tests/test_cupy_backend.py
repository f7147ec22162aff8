"""The CuPy backend (backends/cupy) where it cannot run, and what it promises where it can.

Without CuPy or a GPU: the package imports without cupy, its class keeps the interface's
signatures, ``nnscratch backends`` lists it as unavailable with the reason, ``train`` raises
``BackendUnavailableError`` and the command line says so in one line with exit code 2. The
agreement suite itself runs on cupy from tests/test_agreement.py.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch.testing import backend_or_skip, interface_mismatches

PACKAGE = Path(__file__).resolve().parents[1] / "backends" / "cupy"
CUPY_IMPORTABLE = importlib.util.find_spec("cupy") is not None
without_cupy = pytest.mark.skipif(CUPY_IMPORTABLE, reason="cupy is installed here")


@pytest.fixture
def cupy_package(monkeypatch):
    """nnscratch_cupy importable from the working tree, installed or not, with a fresh answer
    from unavailable_reason."""
    monkeypatch.syspath_prepend(str(PACKAGE / "src"))
    import nnscratch_cupy

    nnscratch_cupy._cupy_problem.cache_clear()
    yield nnscratch_cupy
    nnscratch_cupy._cupy_problem.cache_clear()


def _env_with_package() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE / "src"),
                                                      env.get("PYTHONPATH")]))
    env.pop("NNSCRATCH_BACKEND", None)
    return env


def test_the_class_keeps_the_interface_signatures(cupy_package):
    assert interface_mismatches(cupy_package.CupyBackend) == []
    assert cupy_package.CupyBackend.name == "cupy"
    assert cupy_package.CupyBackend.loss_check_interval > 1


def test_importing_the_package_does_not_import_cupy():
    code = "import sys, nnscratch_cupy; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=_env_with_package(),
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_distribution_offers_both_cuda_wheels_and_pins_neither():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    assert not any("cupy" in dep for dep in project["dependencies"])
    extras = project["optional-dependencies"]
    assert extras["cuda12"][0].startswith("cupy-cuda12x")
    assert extras["cuda13"][0].startswith("cupy-cuda13x")
    assert project["entry-points"]["nnscratch.backends"]["cupy"] == "nnscratch_cupy:CupyBackend"


@pytest.mark.parametrize("device_count,message", [
    (RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is\ninsufficient"),
     "no usable CUDA device (cudaErrorInsufficientDriver: CUDA driver version is insufficient)"),
    (0, "no CUDA device found"),
])
def test_a_machine_without_a_gpu_is_reported_not_raised(cupy_package, monkeypatch, device_count,
                                                        message):
    def get_device_count():
        if isinstance(device_count, Exception):
            raise device_count
        return device_count

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=get_device_count))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    assert cupy_package.CupyBackend.unavailable_reason() == message


@without_cupy
def test_without_cupy_the_reason_says_how_to_install_it(cupy_package):
    reason = cupy_package.CupyBackend.unavailable_reason()
    assert reason.startswith("CuPy cannot be imported (No module named 'cupy')")
    assert "backends/cupy[cuda12]" in reason and "[cuda13]" in reason
    info = nnscratch.available_backends()["cupy"]
    assert not info.available and info.detail == reason


@without_cupy
def test_without_cupy_train_raises_a_clear_error(cupy_package, sample_mnist):
    with pytest.raises(nnscratch.BackendUnavailableError,
                       match=r"^backend 'cupy' cannot run here: CuPy cannot be imported "):
        nnscratch.train(sample_mnist, backend="cupy", epochs=1, progress=False)


@without_cupy
def test_without_cupy_the_command_line_says_so_in_one_line(tmp_path):
    env = _env_with_package()
    run = [sys.executable, "-m", "nnscratch"]
    listed = subprocess.run([*run, "backends"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.split()[0] == "cupy")
    assert row.split()[1] == "unavailable" and "No module named 'cupy'" in row
    trained = subprocess.run([*run, "train", "--backend", "cupy", "--epochs", "1"], env=env,
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert trained.returncode == 2
    lines = trained.stderr.strip().splitlines()
    assert len(lines) == 1 and "backend 'cupy' cannot run here" in lines[0], trained.stderr
    assert not (tmp_path / "nnscratch-model.npz").exists()


# --- on a GPU ------------------------------------------------------------------------------

@pytest.fixture
def cupy_backend():
    return backend_or_skip("cupy")


def test_losses_and_counts_stay_on_the_device(cupy_backend):
    b = cupy_backend
    logits = b.asarray(np.random.default_rng(0).standard_normal((64, 10)).astype("float32"))
    labels = b.asarray(np.arange(64) % 10)
    loss, _ = b.softmax_cross_entropy(logits, labels)
    correct = b.count_correct(logits, labels)
    for value in (loss, correct):  # device arrays: reading them is the only wait
        assert isinstance(value, b.xp.ndarray) and value.shape == ()


def test_float32_products_are_not_rounded_to_tf32(cupy_backend):
    # TF32 keeps 10 bits of mantissa: 1 + 2**-12 would become 1, and the sum 1024.
    a = np.full((1024, 1024), 1 + 2.0 ** -12, dtype="float32")
    b = np.ones((1024, 1), dtype="float32")
    product = cupy_backend.to_numpy(cupy_backend.matmul(cupy_backend.asarray(a),
                                                        cupy_backend.asarray(b)))
    np.testing.assert_allclose(product, 1024 * (1 + 2.0 ** -12), rtol=1e-6)
