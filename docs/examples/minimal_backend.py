"""A minimal nnscratch backend: NumPy arrays, with two methods written out by hand.

Every method of ``nnscratch.Backend`` has a default written against ``self.xp``, so setting
``xp`` alone makes a working backend. A real backend overrides the methods it can do faster
(fused loops, a GPU kernel); this one overrides two to show what an override must keep:

* ``bias_relu`` works in place: it overwrites its argument ``z`` through NumPy's ``out=``
  arguments (no new array) and returns that same array.
* ``sum_rows`` returns a new array of the input's dtype. It adds up in float64 and rounds once,
  which is more accurate than a float32 running sum, but it must not hand float64 back to a
  float32 model.

The signatures, annotations included, must be the interface's: the agreement suite checks them.
"""

from __future__ import annotations

from typing import Any

import numpy

from nnscratch import Backend

Array = Any  # an array of the backend's array module, as in nnscratch.backend


class MinimalBackend(Backend):
    """NumPy on the CPU, with ``bias_relu`` and ``sum_rows`` written out."""

    name = "minimal"  # what model files record: register the class under this name
    xp = numpy

    def bias_relu(self, z: Array, bias: Array) -> Array:
        """In place on ``z`` (n, d): ``max(z + bias, 0)``, ``bias`` (d,) added to every row."""
        xp = self.xp
        xp.add(z, bias, out=z)  # a kernel of your own would fuse these two passes into one
        return xp.maximum(z, 0, out=z)

    def sum_rows(self, a: Array) -> Array:
        """A new (d,) array of ``a``'s dtype: the sum of the rows of ``a`` (n, d)."""
        return a.sum(axis=0, dtype=self.xp.float64).astype(a.dtype, copy=False)
