"""Shared fixtures.

Tests that need the complete MNIST read it from the folder named by ``NNSCRATCH_DATA``, exactly as
a user would point the library at their own copy. Without it they are skipped with that reason;
with ``NNSCRATCH_REQUIRE_FULL_DATA=1`` (set by ``.ci/run``) a missing folder fails them instead,
so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest

# A shell starts a background job (`pytest &`, nohup, some CI runners) with SIGINT ignored, and
# every process the tests start inherits that, so a test's Ctrl-C (a SIGINT sent to a child
# `nnscratch sweep`) would be ignored and the child would finish instead. The tests press
# Ctrl-C as a terminal does, on a process that takes it: the children start with the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def full_mnist():
    """The complete MNIST (60,000 + 10,000 images) as a :class:`nnscratch.data.MnistData`."""
    from nnscratch.data import load_mnist

    folder = os.environ.get("NNSCRATCH_DATA")
    if not folder:
        reason = "NNSCRATCH_DATA is not set: point it at a folder with the full MNIST IDX files"
        if os.environ.get("NNSCRATCH_REQUIRE_FULL_DATA") == "1":
            pytest.fail(reason + " (NNSCRATCH_REQUIRE_FULL_DATA=1 forbids skipping)")
        pytest.skip(reason)
    data = load_mnist(folder)
    assert not data.is_sample and len(data.x_train) == 60_000 and len(data.x_test) == 10_000
    return data


@pytest.fixture(scope="session")
def sample_mnist():
    """The small MNIST sample bundled with the package."""
    from nnscratch.data import MnistData, find_mnist, load_mnist

    mp = pytest.MonkeyPatch()
    try:
        for name in ("NNSCRATCH_DATA", "NNSCRATCH_DOWNLOAD", "NNSCRATCH_MIRRORS"):
            mp.delenv(name, raising=False)
        mp.setenv("NNSCRATCH_CACHE", os.devnull)  # a cache folder that cannot hold data
        assert find_mnist().kind == "sample"
        data = load_mnist()
    finally:
        mp.undo()
    assert isinstance(data, MnistData) and data.is_sample
    return data


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """An environment where nnscratch finds no configured data, cache or backend choice."""
    for name in ("NNSCRATCH_DATA", "NNSCRATCH_BACKEND", "NNSCRATCH_DOWNLOAD", "NNSCRATCH_MIRRORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "empty-cache"))
    return os.environ.copy()


@pytest.fixture
def umask_022():
    """A known umask, so that a file left at mkstemp's 0600 cannot pass for a plain one."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.fixture
def dead_url():
    """The URL of a local port that was free a moment ago and is closed now: nobody answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
