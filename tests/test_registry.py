"""Backend selection: names, the environment variable, use_backend, entry points, install hints,
and that every backend keeps the interface's signatures."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import nnscratch
from nnscratch import Backend, BackendUnavailableError, get_backend, use_backend
from nnscratch import backend as registry
from nnscratch.testing import interface_mismatches


def test_numpy_is_the_default(monkeypatch):
    monkeypatch.delenv("NNSCRATCH_BACKEND", raising=False)
    assert get_backend().name == "numpy"
    assert get_backend("numpy") is get_backend()


def test_selection_order(monkeypatch, toy_backend):
    monkeypatch.setenv("NNSCRATCH_BACKEND", "toy")
    assert get_backend().name == "toy"
    with use_backend("numpy"):
        assert get_backend().name == "numpy"          # the context beats the environment
        assert get_backend("toy").name == "toy"       # an explicit name beats the context
        with use_backend("toy"):
            assert get_backend().name == "toy"
        assert get_backend().name == "numpy"
    assert get_backend().name == "toy"


def test_unknown_backend_lists_the_choices():
    with pytest.raises(BackendUnavailableError, match="unknown backend 'nope'.*numpy"):
        get_backend("nope")


def test_missing_first_party_backend_says_how_to_install(monkeypatch):
    monkeypatch.setitem(registry.KNOWN_BACKENDS, "ghost",
                        ("nnscratch_ghost_backend:GhostBackend", "pip install nnscratch-ghost"))
    with pytest.raises(BackendUnavailableError, match="not installed.*pip install nnscratch-ghost"):
        get_backend("ghost")
    info = nnscratch.available_backends()["ghost"]
    assert not info.available and "pip install nnscratch-ghost" in info.detail


def test_first_party_names_are_always_listed():
    infos = nnscratch.available_backends()
    assert {"numpy", "numba", "cupy"} <= set(infos)
    assert infos["numpy"].available
    for name in ("numba", "cupy"):
        assert infos[name].available or "pip install" in infos[name].detail


@pytest.fixture
def toy_backend(tmp_path, monkeypatch):
    """A third-party backend installed the way a package would be: an entry point in a
    dist-info folder on sys.path."""
    package = tmp_path / "toy_nnscratch_backend.py"
    package.write_text(textwrap.dedent("""
        import numpy
        from nnscratch import Backend

        class ToyBackend(Backend):
            name = "toy"
            xp = numpy
    """))
    dist = tmp_path / "toy_nnscratch_backend-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-nnscratch-backend\n"
                                   "Version: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[nnscratch.backends]\ntoy = toy_nnscratch_backend:ToyBackend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    registry._instances.pop("toy", None)


def test_entry_point_backend_is_found_and_trains(toy_backend, sample_mnist):
    assert nnscratch.available_backends()["toy"].available
    result = nnscratch.train(sample_mnist, backend="toy", hidden=(8,), epochs=1, progress=False)
    reference = nnscratch.train(sample_mnist, backend="numpy", hidden=(8,), epochs=1,
                                progress=False)
    assert result.settings["backend"] == "toy"
    assert result.test_accuracy == reference.test_accuracy  # same defaults, same numbers


def test_backend_that_cannot_run_reports_why(monkeypatch, toy_backend):
    cls = type(get_backend("toy"))
    registry._instances.pop("toy")
    monkeypatch.setattr(cls, "unavailable_reason", classmethod(lambda c: "no toy device found"))
    with pytest.raises(BackendUnavailableError, match="cannot run here: no toy device found"):
        get_backend("toy")
    assert nnscratch.available_backends()["toy"].detail == "no toy device found"


def test_every_importable_backend_keeps_the_interface_signatures():
    """Checked on the class, so it runs even where the backend cannot (no GPU, say)."""
    public = [n for n in dir(Backend) if not n.startswith("_") and callable(getattr(Backend, n))]
    assert len(public) >= 15
    checked = 0
    for name, target in registry._targets().items():
        try:
            cls = registry._load_class(name, target)
        except BackendUnavailableError:
            continue  # not installed: nothing to check
        checked += 1
        assert interface_mismatches(cls) == [], name
    assert checked >= 1


def test_interface_mismatches_finds_a_changed_signature():
    class Drifted(Backend):
        def matmul(self, a, b):  # lost its keyword arguments
            return a @ b

        def fused_everything(self):
            pass

    problems = interface_mismatches(Drifted)
    assert len(problems) == 2
    assert any("matmul" in p for p in problems) and any("fused_everything" in p for p in problems)


def test_importing_nnscratch_loads_no_optional_array_library():
    code = ("import sys, nnscratch; m = nnscratch.MLP((8,)); m.predict([[0] * 784]); "
            "assert nnscratch.get_backend().name == 'numpy'; "
            "print(sorted(n for n in ('numba', 'cupy', 'llvmlite', 'torch') if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
