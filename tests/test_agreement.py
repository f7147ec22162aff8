"""The agreement suite (nnscratch.testing) for every backend this installation knows of.

A backend that cannot run here (not installed, no GPU) is skipped with the reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

import nnscratch
import nnscratch.testing
from nnscratch.testing import (BackendAgreementSuite, GradientSuite, OperationsSuite,
                               ResumeSuite, TrajectorySuite, backend_or_skip)

KNOWN = sorted(nnscratch.available_backends())
GROUPS = (OperationsSuite, GradientSuite, TrajectorySuite, ResumeSuite)


class TestAgreement(BackendAgreementSuite):
    @pytest.fixture(params=KNOWN)
    def backend_name(self, request):
        return request.param


def test_the_whole_suite_is_the_groups_and_they_do_not_overlap():
    def tests_of(cls):
        return {name for name in dir(cls) if name.startswith("test_")}

    groups = [tests_of(group) for group in GROUPS]
    assert all(groups)
    assert set().union(*groups) == tests_of(BackendAgreementSuite)
    assert sum(map(len, groups)) == len(tests_of(BackendAgreementSuite))


def test_the_documented_example_runs_one_group_alone(tmp_path):
    """The module docstring's example, pointed at numpy: it collects its group and no other."""
    example = re.search(r"::\n\n((?:    .*\n|\n)+)", nnscratch.testing.__doc__).group(1)
    module = tmp_path / "test_one_group.py"
    module.write_text(textwrap.dedent(example).replace('"mybackend"', '"numpy"'))
    # one test of each group: only the group the example names may be collected and run
    chosen = "take_rows or signatures or loss_gradient or same_seed or interrupted"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(module), "-k", chosen], cwd=tmp_path, env=os.environ.copy(),
                         capture_output=True, text=True)
    assert run.returncode == 0 and re.search(r"\b2 passed\b", run.stdout), run.stdout


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
