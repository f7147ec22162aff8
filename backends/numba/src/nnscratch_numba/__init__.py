"""The Numba backend for nnscratch: NumPy arrays, with the elementwise and row-wise operations of
the MLP compiled into fused CPU loops.

Install it next to nnscratch (``pip install -e backends/numba``) and pick it by name::

    nnscratch.train(backend="numba")

Matrix products stay with NumPy's BLAS, which is faster than any loop Numba compiles. The
kernels live in :mod:`nnscratch_numba._kernels`; importing this package does not import numba,
so the registry can ask :meth:`NumbaBackend.unavailable_reason` first.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy

from nnscratch.backend import Backend

__all__ = ["NumbaBackend"]
__version__ = "0.1.0"

Array = Any  # a NumPy array

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


@functools.cache
def _numba_import_error() -> str | None:
    try:
        import numba  # noqa: F401  (importing it is the check: it fails on a too-new NumPy)
    except Exception as exc:  # an ImportError, or numba's own complaint about NumPy's version
        return f"numba cannot be imported ({exc}); pip install 'numba>=0.60'"
    return None


def _is_float_matrix(a: Any) -> bool:
    return a.ndim == 2 and a.dtype in _FLOATS


def _is_bias(z: Any, bias: Any) -> bool:
    return z.ndim == 2 and z.dtype in _FLOATS and bias.ndim == 1


def _are_logits(logits: Any, labels: Any) -> bool:
    """Float (n, c) logits with c > 0 and integer (n,) labels: what the kernels were written
    for. Anything else gets the NumPy default and its error messages."""
    return (logits.ndim == 2 and logits.shape[1] > 0 and logits.dtype in _FLOATS
            and labels.ndim == 1 and labels.dtype.kind in "iu")


def _flat_views(first: Any, *others: Any) -> list[Any] | None:
    """1-D views of arrays of one shape and float dtype, for the elementwise kernels, or None
    when one is not C-contiguous (reshape would copy, and an in-place update would be lost)."""
    if first.dtype not in _FLOATS or not first.flags.c_contiguous:
        return None
    for a in others:
        if a.shape != first.shape or not a.flags.c_contiguous:
            return None
    return [a.reshape(-1) for a in (first, *others)]


class NumbaBackend(Backend):
    """NumPy arrays on the CPU, with Numba kernels for everything but the matrix products.

    Each method keeps the interface's contract (see :class:`nnscratch.Backend`); inputs that a
    kernel was not written for (other dtypes or ranks) go to the NumPy defaults.
    """

    name = "numba"
    xp = numpy

    def __init__(self) -> None:
        from . import _kernels  # imports numba: only now that the backend is wanted

        self._kernels = _kernels

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return _numba_import_error()

    # --- inputs ----------------------------------------------------------------------------

    def pixels_to_float(self, pixels: Array, dtype: str, rows: Array | None = None) -> Array:
        dtype_ = numpy.dtype(dtype)
        if pixels.dtype != numpy.uint8 or pixels.ndim != 2 or dtype_ not in _FLOATS or (
                rows is not None and (rows.ndim != 1 or rows.dtype.kind not in "iu")):
            return super().pixels_to_float(pixels, dtype, rows)
        k = self._kernels
        if rows is not None:
            out = numpy.empty((rows.shape[0], pixels.shape[1]), dtype_)
            return k.gather_scale_pixels(pixels, rows, out)
        return k.scale_pixels(pixels, numpy.empty(pixels.shape, dtype_))

    # --- forward and backward ----------------------------------------------------------------

    def bias_add(self, z: Array, bias: Array) -> Array:
        if not _is_bias(z, bias):
            return super().bias_add(z, bias)
        return self._kernels.bias_add(z, bias)

    def bias_relu(self, z: Array, bias: Array) -> Array:
        if not _is_bias(z, bias):
            return super().bias_relu(z, bias)
        return self._kernels.bias_relu(z, bias)

    def bias_relu_backward(self, grad: Array, activation: Array) -> Array:
        flat = _flat_views(grad, activation)
        if flat is None:
            return super().bias_relu_backward(grad, activation)
        self._kernels.relu_mask(*flat)
        return grad

    # exp stays with NumPy: its ufunc is vectorised (SIMD), while an exp inside a Numba loop is
    # a scalar libm call, twice as slow on 60,000 x 10 float32 logits. Max, shift, sum, divide
    # and loss are fused around it.

    def softmax(self, logits: Array) -> Array:
        if not _is_float_matrix(logits) or logits.shape[1] == 0:
            return super().softmax(logits)
        k = self._kernels
        probs = k.shift_rows(logits, numpy.empty_like(logits))
        return k.normalize_rows(numpy.exp(probs, out=probs))

    def softmax_cross_entropy(self, logits: Array, labels: Array) -> tuple[Array, Array]:
        if not _are_logits(logits, labels):
            return super().softmax_cross_entropy(logits, labels)
        k = self._kernels
        shifted = k.shift_rows(logits, logits)
        probs = numpy.exp(shifted)
        total = k.normalize_cross_entropy(shifted, labels, probs)
        n = logits.shape[0]
        # The float64 mean, rounded once to the model's dtype: a 0-d array, like the interface's.
        loss = numpy.array(total / n if n else numpy.nan, dtype=logits.dtype)
        return loss, probs

    def softmax_cross_entropy_backward(self, probs: Array, labels: Array) -> Array:
        if not _are_logits(probs, labels):
            return super().softmax_cross_entropy_backward(probs, labels)
        return self._kernels.softmax_cross_entropy_backward(probs, labels)

    def sum_rows(self, a: Array) -> Array:
        if not _is_float_matrix(a):
            return super().sum_rows(a)
        return self._kernels.sum_rows(a, numpy.empty(a.shape[1], a.dtype))

    # --- results and updates --------------------------------------------------------------

    def argmax_rows(self, a: Array) -> Array:
        if not (_is_float_matrix(a) and a.shape[1] > 0):
            return super().argmax_rows(a)
        return self._kernels.argmax_rows(a, numpy.empty(a.shape[0], numpy.intp))

    def count_correct(self, logits: Array, labels: Array) -> Array:
        if not _are_logits(logits, labels):
            return super().count_correct(logits, labels)
        return numpy.array(self._kernels.count_correct(logits, labels), dtype=numpy.int64)

    def sgd_update(self, param: Array, grad: Array, lr: float, *, velocity: Array | None = None,
                   momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> None:
        # Nesterov and weight decay take the NumPy default: no kernel for them has been measured.
        if nesterov or weight_decay:
            super().sgd_update(param, grad, lr, velocity=velocity, momentum=momentum,
                               nesterov=nesterov, weight_decay=weight_decay)
            return
        # On small arrays NumPy's ufunc calls cost less than a kernel call (see README.md);
        # both round alike, so the choice changes no bits.
        if velocity is None and param.size >= _KERNEL_MIN_SGD:
            flat = _flat_views(param, grad)
            if flat is not None:
                self._kernels.sgd(*flat, lr)
                return
        elif velocity is not None and param.size >= _KERNEL_MIN_SGD_MOMENTUM:
            flat = _flat_views(param, grad, velocity)
            if flat is not None:
                self._kernels.sgd_momentum(*flat, lr, momentum)
                return
        super().sgd_update(param, grad, lr, velocity=velocity, momentum=momentum)


# Sizes from which one kernel pass beats NumPy's two (plain) or four (momentum) ufunc calls.
_KERNEL_MIN_SGD = 16384
_KERNEL_MIN_SGD_MOMENTUM = 1024
