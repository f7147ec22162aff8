"""Backend selection: names, the environment variable, use_backend, register_backend, entry
points, install hints, and that every backend keeps the interface's signatures."""

from __future__ import annotations

import re
import textwrap

import numpy
import pytest

import nnscratch
import nnscratch.backend
from nnscratch import (Backend, BackendUnavailableError, ConfigError, get_backend,
                       register_backend, use_backend)
from nnscratch import registry
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


class ToyBackend(Backend):
    name = "toy"
    xp = numpy


@pytest.fixture
def toy_backend():
    """A backend class added by name, as a user or a test would: with register_backend."""
    register_backend("toy", ToyBackend)
    yield ToyBackend
    registry.unregister_backend("toy")


@pytest.fixture
def installed_toy(tmp_path, monkeypatch):
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


def test_entry_point_backend_is_found_and_trains(installed_toy, sample_mnist):
    info = nnscratch.available_backends()["toy"]
    assert info.available and info.detail == "from toy_nnscratch_backend:ToyBackend"
    assert type(get_backend("toy")).__module__ == "toy_nnscratch_backend"
    result = nnscratch.train(sample_mnist, backend="toy", hidden=(8,), epochs=1, progress=False)
    reference = nnscratch.train(sample_mnist, backend="numpy", hidden=(8,), epochs=1,
                                progress=False)
    assert result.settings["backend"] == "toy"
    assert result.test_accuracy == reference.test_accuracy  # same defaults, same numbers


def test_registered_class_wins_over_an_entry_point(installed_toy):
    from_entry_point = get_backend("toy")
    register_backend("toy", ToyBackend)
    try:
        assert type(get_backend("toy")) is ToyBackend
        detail = nnscratch.available_backends()["toy"].detail
        assert detail == f"registered {ToyBackend.__module__}:ToyBackend"
    finally:
        registry.unregister_backend("toy")
    fallback = get_backend("toy")
    assert fallback is not from_entry_point  # the cached instance went with the registration
    assert type(fallback).__module__ == "toy_nnscratch_backend"


def test_registered_backend_is_listed_and_used(toy_backend):
    info = nnscratch.available_backends()["toy"]
    assert info == nnscratch.BackendInfo("toy", True, f"registered {__name__}:ToyBackend")
    backend = get_backend("toy")
    assert type(backend) is ToyBackend and get_backend("toy") is backend
    assert nnscratch.MLP((8,), backend="toy").backend is backend
    with use_backend("toy") as chosen:
        assert chosen is backend and get_backend() is backend


def test_registering_again_replaces_the_class_and_its_instance(toy_backend):
    first = get_backend("toy")
    register_backend("toy", ToyBackend)
    second = get_backend("toy")
    assert second is not first and type(second) is ToyBackend

    class OtherToy(ToyBackend):
        pass

    register_backend("toy", OtherToy)
    assert type(get_backend("toy")) is OtherToy
    assert nnscratch.available_backends()["toy"].detail.endswith(".<locals>.OtherToy")


def test_unregistering_forgets_the_name():
    register_backend("toy", ToyBackend)
    get_backend("toy")
    registry.unregister_backend("toy")
    assert "toy" not in nnscratch.available_backends() and "toy" not in registry._instances
    with pytest.raises(BackendUnavailableError, match="unknown backend 'toy'"):
        get_backend("toy")
    with pytest.raises(ConfigError, match="'toy' was not registered"):
        registry.unregister_backend("toy")


@pytest.mark.parametrize("name, cls, message", [
    ("", ToyBackend, "non-empty string, not ''"),
    (None, ToyBackend, "non-empty string, not None"),
    ("numpy", ToyBackend, "'numpy' is the reference and cannot be replaced"),
    ("toy", object, "'toy' must be a nnscratch Backend subclass, not <class 'object'>"),
    ("toy", ToyBackend(), "'toy' must be a nnscratch Backend subclass, not <nnscratch backend"),
    ("toy", "my_package:ToyBackend", "must be a nnscratch Backend subclass"),
])
def test_register_backend_rejects_bad_input(name, cls, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        register_backend(name, cls)
    assert "toy" not in nnscratch.available_backends()


def test_numpy_cannot_be_replaced():
    reference = get_backend("numpy")
    with pytest.raises(ConfigError, match="cannot be replaced"):
        register_backend("numpy", ToyBackend)
    assert get_backend("numpy") is reference and type(reference).__name__ == "NumpyBackend"


def test_backend_that_cannot_run_reports_why():
    class Deviceless(ToyBackend):
        @classmethod
        def unavailable_reason(cls):
            return "no toy device found"

    register_backend("toy", Deviceless)
    try:
        with pytest.raises(BackendUnavailableError, match="cannot run here: no toy device found"):
            get_backend("toy")
        assert nnscratch.available_backends()["toy"] == nnscratch.BackendInfo(
            "toy", False, "no toy device found")
    finally:
        registry.unregister_backend("toy")


def test_old_backend_module_names_are_aliases_of_the_registry():
    """nnscratch.backend kept the registry's names for one release: the same objects."""
    assert nnscratch.backend.get_backend is registry.get_backend
    for name in ("KNOWN_BACKENDS", "ENV_VAR", "ENTRY_POINT_GROUP", "BackendInfo", "use_backend",
                 "available_backends", "selected_backend_name", "_instances"):
        assert getattr(nnscratch.backend, name) is getattr(registry, name), name
    with pytest.raises(AttributeError, match="has no attribute 'register_backend'"):
        nnscratch.backend.register_backend  # noqa: B018 - new names live in the registry only


def test_every_importable_backend_keeps_the_interface_signatures():
    """Checked on the class, so it runs even where the backend cannot (no GPU, say)."""
    public = [n for n in dir(Backend) if not n.startswith("_") and callable(getattr(Backend, n))]
    assert len(public) >= 15
    checked = 0
    for name, source in registry._sources().items():
        try:
            cls = registry._load_class(name, source)
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
