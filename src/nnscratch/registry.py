"""Finding backends by name: registered classes, entry points, and a lazy table of known names.

A name resolves, first match wins, to the reference ``numpy`` (it cannot be replaced), then a class
given to :func:`register_backend`, then an entry point of the ``nnscratch.backends`` group (how an
installed package adds a backend), then :data:`KNOWN_BACKENDS`, the first-party backends that live
in their own distributions. Nothing is imported until a backend is asked for, so importing
nnscratch loads neither numba nor cupy, and a missing backend is reported with how to install it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from dataclasses import dataclass
from importlib import import_module, metadata
from typing import Iterator

from .backend import Backend
from .errors import BackendUnavailableError, ConfigError

__all__ = [
    "BackendInfo",
    "get_backend",
    "use_backend",
    "available_backends",
    "selected_backend_name",
    "register_backend",
    "unregister_backend",
    "KNOWN_BACKENDS",
    "ENV_VAR",
    "ENTRY_POINT_GROUP",
]

ENV_VAR = "NNSCRATCH_BACKEND"
ENTRY_POINT_GROUP = "nnscratch.backends"

#: First-party backends by name: ``"module:Class"`` and how to install the distribution.
KNOWN_BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("nnscratch.numpy_backend:NumpyBackend", "it ships with nnscratch"),
    "numba": ("nnscratch_numba:NumbaBackend",
              "pip install -e backends/numba (from a checkout of nnscratch)"),
    "cupy": ("nnscratch_cupy:CupyBackend",
             "pip install -e 'backends/cupy[cuda12]' or '[cuda13]' (needs an NVIDIA GPU)"),
}

# Where a name's class comes from: an import path "module:Class", or a registered class.
Source = str | type[Backend]

_registered: dict[str, type[Backend]] = {}
_instances: dict[str, Backend] = {}
_active: contextvars.ContextVar[str | None] = contextvars.ContextVar("nnscratch_backend",
                                                                    default=None)


@dataclass(frozen=True)
class BackendInfo:
    """What the registry knows of one backend name."""

    name: str
    available: bool
    detail: str  #: where it comes from when available, else why not and how to install it


def register_backend(name: str, cls: type[Backend]) -> None:
    """Make ``cls``, a :class:`Backend` subclass, the backend called ``name`` in this process.

    It wins over an entry point or a first-party backend of the same name; registering a name
    again replaces the class and drops the instance already created for it. ``cls.name`` should
    be ``name``: it is what model files record. Raises :class:`ConfigError` for an empty name, for
    ``"numpy"`` (the reference cannot be replaced) or for a class that is not a Backend subclass.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a backend name must be a non-empty string, not {name!r}")
    if name == "numpy":
        raise ConfigError("backend 'numpy' is the reference and cannot be replaced")
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"backend {name!r} must be a nnscratch Backend subclass, not {cls!r}")
    _registered[name] = cls
    _instances.pop(name, None)


def unregister_backend(name: str) -> None:
    """Undo :func:`register_backend` for ``name``: drop its class and its instance, so the name
    falls back to an entry point or a first-party backend, if any. Raises :class:`ConfigError`
    when ``name`` was not registered."""
    if _registered.pop(name, None) is None:
        raise ConfigError(f"backend {name!r} was not registered with register_backend")
    _instances.pop(name, None)


def _entry_points() -> dict[str, str]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in eps}


def _sources() -> dict[str, Source]:
    """Every known name and where its class comes from, in order of precedence."""
    sources: dict[str, Source] = {name: target for name, (target, _) in KNOWN_BACKENDS.items()}
    sources.update(_entry_points())
    sources.update(_registered)
    sources["numpy"] = KNOWN_BACKENDS["numpy"][0]  # the reference cannot be replaced
    return sources


def _describe(source: Source) -> str:
    if isinstance(source, str):
        return f"from {source}"
    return f"registered {source.__module__}:{source.__qualname__}"


def _load_class(name: str, source: Source) -> type[Backend]:
    if not isinstance(source, str):
        return source  # registered: register_backend checked it
    module_name, _, attr = source.partition(":")
    try:
        cls = getattr(import_module(module_name), attr)
    except ImportError as exc:
        hint = KNOWN_BACKENDS.get(name, (None, "install the package that provides it"))[1]
        raise BackendUnavailableError(
            f"backend {name!r} is not installed ({exc.name or module_name} cannot be imported): "
            f"{hint}") from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendUnavailableError(
            f"backend {name!r} points at {source}, which is not a nnscratch Backend subclass")
    return cls


def _create(name: str) -> Backend:
    sources = _sources()
    if name not in sources:
        raise BackendUnavailableError(
            f"unknown backend {name!r}: choose one of {', '.join(sorted(sources))}")
    cls = _load_class(name, sources[name])
    reason = cls.unavailable_reason()
    if reason:
        raise BackendUnavailableError(f"backend {name!r} cannot run here: {reason}")
    return cls()


def selected_backend_name(name: str | None = None) -> str:
    """The name that :func:`get_backend` would use: the argument, then the innermost
    :func:`use_backend`, then ``$NNSCRATCH_BACKEND``, then ``"numpy"``."""
    return name or _active.get() or os.environ.get(ENV_VAR) or "numpy"


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend called ``name`` (created once per process and then shared).

    ``name`` may also be a :class:`Backend` instance, which is returned as it is. With no name,
    the choice falls to :func:`use_backend`, then the ``NNSCRATCH_BACKEND`` environment
    variable, then ``"numpy"``. Raises :class:`BackendUnavailableError` with the reason and an
    install hint when the backend is unknown, not installed or cannot run on this machine.
    """
    if isinstance(name, Backend):
        return name
    chosen = selected_backend_name(name)
    if chosen not in _instances:
        _instances[chosen] = _create(chosen)
    return _instances[chosen]


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[Backend]:
    """Within the ``with`` block, make ``name`` the default backend (for this thread/task)."""
    backend = get_backend(name)
    token = _active.set(name)
    try:
        yield backend
    finally:
        _active.reset(token)


def available_backends() -> dict[str, BackendInfo]:
    """Every backend this installation knows of, by name, with whether it can run here.

    Known first-party names (``numba``, ``cupy``) are listed even when not installed, with the
    command that installs them; registered classes are listed too. Checking loads each installed
    backend's module.
    """
    infos = {}
    for name, source in sorted(_sources().items()):
        try:
            reason = _load_class(name, source).unavailable_reason()
        except BackendUnavailableError as exc:
            reason = str(exc)
        infos[name] = BackendInfo(name, reason is None, reason or _describe(source))
    return infos
