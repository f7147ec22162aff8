"""The NumPy backend: the reference every other backend is checked against.

It is the interface's own defaults run on NumPy, with nothing overridden: the executable
specification of what each operation means. Matrix products go to the BLAS NumPy was built with.
"""

from __future__ import annotations

import numpy

from .backend import Backend

__all__ = ["NumpyBackend"]


class NumpyBackend(Backend):
    """Plain NumPy on the CPU; always available."""

    name = "numpy"
    xp = numpy
