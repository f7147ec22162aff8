"""Compare two backends step by step: same weights, same batches, every parameter after every step.

This is the user-facing form of the agreement suite's trajectory check (``nnscratch compare``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .settings import TrainSettings
from .trainer import Trainer, settings_from

if TYPE_CHECKING:
    from .data import MnistData

__all__ = ["StepDifference", "Comparison", "compare_backends", "tolerance",
           "trajectory_tolerance"]


def tolerance(dtype: Any, scale: float = 1.0) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing a result of ``dtype`` with another computation of it.

    About a hundred units in the last place: loose enough for sums taken in another order, tight
    enough to catch a wrong formula or a silent cast. ``scale`` is the size of the values
    involved (e.g. the largest magnitude in the expected result); ``atol`` grows with it, so that
    entries that cancel to near zero are judged against the size of the terms that made them.
    """
    rtol = 100 * float(np.finfo(np.dtype(dtype)).eps)
    return rtol, rtol * max(scale, 1.0)


def trajectory_tolerance(dtype: Any, step: int) -> float:
    """Largest relative difference allowed between two backends' losses or parameters after
    ``step`` steps from the same start. Every update feeds the rounding differences back, and
    they accumulate like a random walk, so the bound grows with the square root of the steps.
    (Measured, numba against numpy, 784-128-10: 5e-7 in float32 and 1e-15 in float64 after 300
    steps, against bounds of 2e-4 and 4e-13.)"""
    return tolerance(dtype)[0] * math.sqrt(max(step, 1))


@dataclass(frozen=True)
class StepDifference:
    """How far ``other`` is from ``reference`` after one step (relative differences)."""

    step: int
    loss: float    #: |loss_other - loss_ref| / |loss_ref|, the loss of the batch before the update
    params: float  #: the largest over parameters of max|p_other - p_ref| / max|p_ref|


@dataclass
class Comparison:
    """The result of :func:`compare_backends`."""

    reference: str
    other: str
    dtype: str
    differences: list[StepDifference]
    reference_accuracy: float  #: test accuracy after the last step
    other_accuracy: float

    def worst(self, first: int = 1, last: int | None = None) -> tuple[float, float]:
        """The largest loss and parameter differences over steps ``first..last``."""
        chosen = [d for d in self.differences if first <= d.step <= (last or d.step)]
        return max(d.loss for d in chosen), max(d.params for d in chosen)

    def step_ranges(self) -> list[tuple[int, int]]:
        """Steps grouped by decades, for reports: 1, 2-10, 11-100, 101-1000..."""
        ranges, first, last = [], 1, 1
        while first <= len(self.differences):
            ranges.append((first, min(last, len(self.differences))))
            first, last = last + 1, last * 10
        return ranges

    def failures(self) -> list[StepDifference]:
        """The steps whose differences exceed :func:`trajectory_tolerance`."""
        return [d for d in self.differences
                if max(d.loss, d.params) > trajectory_tolerance(self.dtype, d.step)]


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b))) / (scale or 1.0)


def compare_backends(reference: str, other: str, data: MnistData, *, steps: int = 300,
                     settings: TrainSettings | None = None, **options: Any) -> Comparison:
    """Train on both backends from the same seed for ``steps`` steps, comparing the batch loss
    and every parameter after each step, then both models' test accuracy. ``data`` is anything
    :func:`~nnscratch.train` takes (MNIST data, a table, arrays), prepared the same way. The
    run is described by ``settings`` and/or setting keywords, as for train() (of them, those
    of a single step and ``scaling`` matter); its backend is replaced by each of the two."""
    from .training import training_data  # here: training loads the data modules

    settings = settings_from(settings, options)
    data = training_data(data, settings.scaling)  # a table, arrays... as train() takes them
    ref = Trainer(data, settings, backend=reference)
    oth = Trainer(data, settings, backend=other)
    differences: list[StepDifference] = []
    while len(differences) < steps:
        for (x_ref, y_ref), (x_oth, y_oth) in zip(ref.batches(), oth.batches()):
            loss_ref = float(ref.model.backend.to_numpy(ref.step(x_ref, y_ref)[0]))
            loss_oth = float(oth.model.backend.to_numpy(oth.step(x_oth, y_oth)[0]))
            p_ref, p_oth = ref.model.params(), oth.model.params()
            differences.append(StepDifference(
                len(differences) + 1, abs(loss_oth - loss_ref) / (abs(loss_ref) or 1.0),
                max(_relative(p_oth[name], p_ref[name]) for name in p_ref)))
            if len(differences) == steps:
                break
    return Comparison(ref.model.backend.name, oth.model.backend.name, settings.dtype,
                      differences,
                      ref.evaluate_test()["accuracy"], oth.evaluate_test()["accuracy"])
