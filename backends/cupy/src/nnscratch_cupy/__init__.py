"""The CuPy backend for nnscratch: arrays on an NVIDIA GPU, matrix products on cuBLAS, and the
MLP's elementwise and row-wise work in fused CUDA kernels.

Install it next to nnscratch with the extra that matches the machine's CUDA driver
(``pip install -e 'backends/cupy[cuda12]'`` or ``'[cuda13]'``) and pick it by name::

    nnscratch.train(backend="cupy")

Importing this package does not import cupy, so the registry can ask
:meth:`CupyBackend.unavailable_reason` first; creating the backend imports cupy and the kernels
(:mod:`nnscratch_cupy._kernels`). Nothing here waits for the device except :meth:`to_numpy` and
:meth:`synchronize`: losses and correct counts stay on the GPU until the trainer reads them.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy

from nnscratch.backend import Backend
from nnscratch.registry import KNOWN_BACKENDS

__all__ = ["CupyBackend"]
__version__ = "0.1.0"

Array = Any  # a cupy.ndarray

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@functools.cache
def _cupy_problem() -> str | None:
    """Why cupy cannot run kernels here, or None. Never raises: CuPy reports a missing driver or
    library with its own exception types, so anything raised is taken as the reason."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        return f"CuPy cannot be imported ({_one_line(exc)}): {KNOWN_BACKENDS['cupy'][1]}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, or one too old for this CuPy
        return f"no usable CUDA device ({_one_line(exc)})"
    if count == 0:
        return "no CUDA device found"
    try:
        cupy.cuda.nvrtc.getVersion()  # the kernels are compiled at run time by NVRTC
    except Exception as exc:
        return (f"CuPy cannot load NVRTC, the CUDA compiler its kernels need "
                f"({_one_line(exc)}); install the CUDA toolkit or the NVRTC wheel for your "
                f"CUDA version")
    return None


def _contiguous(a: Array) -> Array:
    # The row-wise kernels address rows through pointers. A no-op (no copy) for the arrays the
    # model passes, which are all C-contiguous.
    return a if a.flags.c_contiguous else a.copy()


def _are_logits(logits: Any, labels: Any) -> bool:
    """Float (n, c) logits with c > 0 and integer (n,) labels: what the kernels were written
    for. Anything else gets the interface's default and its error messages."""
    return (logits.ndim == 2 and logits.shape[1] > 0 and logits.dtype in _FLOATS
            and labels.ndim == 1 and labels.dtype.kind in "iu"
            and labels.shape[0] == logits.shape[0])


def _same_float_arrays(first: Any, *others: Any) -> bool:
    return first.dtype in _FLOATS and all(
        a.shape == first.shape and a.dtype == first.dtype for a in others)


class CupyBackend(Backend):
    """CuPy arrays on the current CUDA device, with fused kernels for the hot operations.

    Matrix products are ``cupy.matmul`` (cuBLAS). TF32 is off: CuPy enables it for float32
    products only when the environment sets ``CUPY_TF32=1``, and then float32 results no longer
    agree with the reference to the suite's tolerances.
    """

    name = "cupy"
    # Reading a loss back waits for the GPU to finish every queued step; checking every 32 steps
    # keeps the queue full while still naming the exact step that diverged.
    loss_check_interval = 32
    host_cores = False  # the GPU computes: the host's cores are free to distort images

    def __init__(self) -> None:
        import cupy

        from . import _kernels  # imports cupy: only now that the backend is wanted

        self.xp = cupy
        self._kernels = _kernels

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return _cupy_problem()

    # --- moving data ---------------------------------------------------------------------

    def to_numpy(self, a: Array) -> Any:
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()

    # --- inputs ----------------------------------------------------------------------------

    def pixels_to_float(self, pixels: Array, dtype: str, rows: Array | None = None) -> Array:
        dtype_ = numpy.dtype(dtype)
        if pixels.dtype != numpy.uint8 or pixels.ndim != 2 or dtype_ not in _FLOATS or (
                rows is not None and (rows.ndim != 1 or rows.dtype.kind not in "iu")):
            return super().pixels_to_float(pixels, dtype, rows)
        k, xp = self._kernels, self.xp
        if rows is None:
            return k.scale_pixels(pixels, xp.empty(pixels.shape, dtype_))
        if pixels.shape[0] == 0:  # nothing to gather from: let the default raise
            return super().pixels_to_float(pixels, dtype, rows)
        out = xp.empty((rows.shape[0], pixels.shape[1]), dtype_)
        return k.gather_scale_pixels(_contiguous(pixels), rows, pixels.shape[0],
                                     pixels.shape[1], out)

    # --- forward and backward ----------------------------------------------------------------

    def bias_relu(self, z: Array, bias: Array) -> Array:
        if not (z.ndim == 2 and bias.ndim == 1 and _same_float_arrays(z) and
                bias.dtype == z.dtype):
            return super().bias_relu(z, bias)
        return self._kernels.bias_relu(bias, z)

    def bias_relu_backward(self, grad: Array, activation: Array) -> Array:
        if not _same_float_arrays(grad, activation):
            return super().bias_relu_backward(grad, activation)
        return self._kernels.bias_relu_backward(activation, grad)

    def softmax(self, logits: Array) -> Array:
        if not (logits.ndim == 2 and logits.shape[1] > 0 and logits.dtype in _FLOATS):
            return super().softmax(logits)
        logits = _contiguous(logits)
        probs = self.xp.empty_like(logits)
        n, c = logits.shape
        if n:
            self._kernels.softmax(logits, c, probs, size=n)
        return probs

    def softmax_cross_entropy(self, logits: Array, labels: Array) -> tuple[Array, Array]:
        if not _are_logits(logits, labels):
            return super().softmax_cross_entropy(logits, labels)
        k, xp = self._kernels, self.xp
        logits = _contiguous(logits)
        probs = xp.empty_like(logits)
        row_losses = xp.empty(logits.shape[0], logits.dtype)
        k.softmax_cross_entropy(logits, labels, logits.shape[1], probs, row_losses)
        return k.mean_in_double(row_losses), probs

    def softmax_cross_entropy_backward(self, probs: Array, labels: Array,
                                       batch_rows: int | None = None) -> Array:
        if not _are_logits(probs, labels):
            return super().softmax_cross_entropy_backward(probs, labels, batch_rows)
        n, c = probs.shape
        return self._kernels.softmax_cross_entropy_backward(
            labels, c, n if batch_rows is None else batch_rows, probs)

    def sum_rows(self, a: Array) -> Array:
        if not (a.ndim == 2 and a.dtype in _FLOATS):
            return super().sum_rows(a)
        return self._kernels.sum_in_double(a, axis=0)

    # --- results and updates --------------------------------------------------------------

    def argmax_rows(self, a: Array) -> Array:
        if not (a.ndim == 2 and a.shape[1] > 0 and a.dtype in _FLOATS):
            return super().argmax_rows(a)
        columns = self.xp.empty(a.shape[0], numpy.int64)
        return self._kernels.argmax_rows(_contiguous(a), a.shape[1], columns)

    def count_correct(self, logits: Array, labels: Array) -> Array:
        if not _are_logits(logits, labels):
            return super().count_correct(logits, labels)
        hits = self._kernels.correct_rows(_contiguous(logits), labels, logits.shape[1])
        return hits.sum()  # a 0-d int64 array, like NumPy's count: not waited for

    def sgd_update(self, param: Array, grad: Array, lr: float, *, velocity: Array | None = None,
                   momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> None:
        k = self._kernels
        if velocity is None and _same_float_arrays(param, grad):
            k.sgd(grad, lr, weight_decay, param)
        elif velocity is not None and _same_float_arrays(param, grad, velocity):
            k.sgd_momentum(grad, lr, momentum, weight_decay, bool(nesterov), param, velocity)
        else:
            super().sgd_update(param, grad, lr, velocity=velocity, momentum=momentum,
                               nesterov=nesterov, weight_decay=weight_decay)

    def adam_update(self, param: Array, grad: Array, m: Array, v: Array, lr: float, *,
                    step: int, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                    weight_decay: float = 0.0) -> None:
        if not _same_float_arrays(param, grad, m, v):
            super().adam_update(param, grad, m, v, lr, step=step, beta1=beta1, beta2=beta2,
                                eps=eps, weight_decay=weight_decay)
            return
        # The scalars the reference computes in Python floats, computed the same way.
        self._kernels.adam(grad, lr / (1 - beta1 ** step), beta1, 1 - beta1, beta2, 1 - beta2,
                           math.sqrt(1 - beta2 ** step), eps, weight_decay, param, m, v)
