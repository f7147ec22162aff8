"""Choosing images so that each digit keeps its share: the held-out test set and stratified subsets.

Data without a test set (a single CSV, such as Kaggle's ``train.csv``) gets one held out by
:func:`hold_out_test`: a seeded split, stratified by digit, of one image in seven, which the
source sentence reports. :func:`stratified_indices` also chooses the bundled sample
(``tools/make_sample.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..inputs import NUM_CLASSES

__all__ = ["HOLDOUT_DENOMINATOR", "HOLDOUT_SEED", "hold_out_test", "class_quotas",
           "stratified_indices"]

# Data without a test set gets one image in HOLDOUT_DENOMINATOR held out, MNIST's own ratio
# (10,000 of 70,000): Kaggle's 42,000 training images become 36,000 + 6,000.
HOLDOUT_DENOMINATOR = 7
HOLDOUT_SEED = 0


def hold_out_test(x: np.ndarray, y: np.ndarray,
                  location: Path) -> tuple[tuple[np.ndarray, ...], str]:
    """Split a seeded, stratified test set off training-only data (read from ``location``);
    returns ``(x_train, y_train, x_test, y_test)`` and the sentence fragment that reports it."""
    n = len(y)
    if n < 2:
        raise DataError(f"{location} holds only {n} image and no test set; nnscratch needs at "
                        "least 2 images to hold one out for testing")
    n_test = max(1, n // HOLDOUT_DENOMINATOR)
    chosen = stratified_indices(y, n_test, np.random.default_rng(HOLDOUT_SEED))
    test = np.zeros(n, dtype=bool)
    test[chosen] = True
    note = (f"; it has no test set, so {n_test:,} of its {n:,} images (1 in "
            f"{HOLDOUT_DENOMINATOR}, stratified by digit, seed {HOLDOUT_SEED}) were held out as "
            "the test set")
    return (x[~test], y[~test], x[test], y[test]), note


def class_quotas(labels: np.ndarray, k: int) -> np.ndarray:
    """How many images of each digit to keep: proportional shares of ``k`` summing to ``k``."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(np.int64)
    # Largest remainders, in integers, so that no float rounding can change the split.
    quotas, remainders = np.divmod(counts * k, len(labels))
    short = k - int(quotas.sum())
    quotas[np.argsort(-remainders, kind="stable")[:short]] += 1
    return quotas


def stratified_indices(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``k`` images in which each digit keeps its share of ``labels``: the
    held-out test set here, and the bundled sample (tools/make_sample.py)."""
    if not 0 < k <= len(labels):
        raise ValueError(f"cannot choose {k} images from a split of {len(labels)}")
    picked = [rng.permutation(np.flatnonzero(labels == digit))[:quota]
              for digit, quota in enumerate(class_quotas(labels, k))]
    return np.sort(np.concatenate(picked))
