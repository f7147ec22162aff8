"""The agreement suite (nnscratch.testing) for every backend this installation knows of.

A backend that cannot run here (not installed, no GPU) is skipped with the reason.
"""

from __future__ import annotations

import pytest

import nnscratch
from nnscratch.testing import BackendAgreementSuite, backend_or_skip

KNOWN = sorted(nnscratch.available_backends())


class TestAgreement(BackendAgreementSuite):
    @pytest.fixture(params=KNOWN)
    def backend_name(self, request):
        return request.param


OTHERS = [name for name in KNOWN if name != "numpy"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", OTHERS)
def test_one_epoch_on_full_mnist_matches_the_reference(full_mnist, name, dtype):
    """784-128-10, batch 128, seed 0: test accuracies within 0.1 percentage points."""
    backend_or_skip(name)
    settings = dict(hidden=(128,), epochs=1, batch_size=128, seed=0, dtype=dtype, progress=False)
    reference = nnscratch.train(full_mnist, backend="numpy", **settings)
    other = nnscratch.train(full_mnist, backend=name, **settings)
    print(f"{name} {dtype}: {other.test_accuracy:.4f} vs numpy {reference.test_accuracy:.4f}")
    assert abs(other.test_accuracy - reference.test_accuracy) <= 0.001
