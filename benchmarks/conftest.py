"""Benchmarks read the complete MNIST from NNSCRATCH_DATA, as a user's own copy would be read."""

from __future__ import annotations

import os

import pytest

import nnscratch


@pytest.fixture(scope="session")
def mnist():
    folder = os.environ.get("NNSCRATCH_DATA")
    if not folder:
        pytest.skip("NNSCRATCH_DATA is not set: point it at a folder with the full MNIST")
    return nnscratch.load_mnist(folder)


BACKENDS = [name for name, info in nnscratch.available_backends().items() if info.available]
