"""Where the user cache is: the folder that downloads fill and that data loading looks in.

It has a module of its own because both :mod:`.sources` (which looks in the cache) and
:mod:`.download` (which fills it) need it, and neither should import the other for it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV_VAR", "user_cache_dir", "dataset_cache_dir", "mnist_cache_dir"]

CACHE_ENV_VAR = "NNSCRATCH_CACHE"


def user_cache_dir() -> Path:
    """nnscratch's cache folder: ``$NNSCRATCH_CACHE``, else ``$XDG_CACHE_HOME/nnscratch``, else
    ``~/.cache/nnscratch``. A data set found in its subfolder (``mnist``, ...) is used
    automatically."""
    override = os.environ.get(CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        return Path(xdg) / "nnscratch"
    return Path.home() / ".cache" / "nnscratch"


def dataset_cache_dir(name: str) -> Path:
    """The cache folder the data set ``name`` is downloaded into and found in:
    ``user_cache_dir() / name`` (``mnist``, ``fashion-mnist``)."""
    return user_cache_dir() / name


def mnist_cache_dir() -> Path:
    """The cache folder MNIST is downloaded into and found in: ``user_cache_dir() / "mnist"``."""
    return dataset_cache_dir("mnist")
