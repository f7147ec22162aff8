"""The Numba backend for nnscratch: NumPy arrays, with the elementwise and row-wise operations of
the MLP compiled into fused CPU loops.

Install it next to nnscratch (``pip install -e backends/numba``) and pick it by name::

    nnscratch.train(backend="numba")

Wide matrix products stay with NumPy's BLAS, which is faster there than any loop Numba compiles.
The first layer of a narrow network (up to 16 units, as in the blog's 784-10-10) is a kernel
that reads uint8 pixels directly, with the 1/255 scale folded in. Over a full batch's rows
(2,048 or more) the work is split over the backend's own threads (``NUMBA_NUM_THREADS``): the
first-layer kernels, the loss and the count of correct answers, and the narrow products, which
run on BLAS with one BLAS thread in each of the backend's threads, so that no BLAS thread is left
spinning beside the kernels (see benchmarks/NOTES.md). BLAS's thread count is put back after
each such product. The kernels live in :mod:`nnscratch_numba._kernels`; importing this package
does not import numba, so the registry can ask :meth:`NumbaBackend.unavailable_reason` first.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy

from nnscratch.backend import Backend

__all__ = ["NumbaBackend"]
__version__ = "0.1.0"

Array = Any  # a NumPy array

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))

# The first-layer kernels: up to this many units (wider layers go to BLAS); rows per chunk of
# the weight gradient's partial sums; rows from which the product is split across threads.
_NARROW = 16
_CHUNK_ROWS = 1024
_THREADED_ROWS = 2048
# A product summed over rows on BLAS takes at most this many chunks (fewer for few rows): each
# holds a partial result as big as the product's (784 x 800 for a wide first layer).
_MAX_CHUNKS = 8


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


def _check_labels(labels: Any, n: int) -> None:
    """What the kernels check for the whole array, for work split into chunks of rows."""
    if labels.shape[0] != n:
        raise ValueError("there must be one label per row")


def _are_logits(logits: Any, labels: Any) -> bool:
    """Float (n, c) logits with c > 0 and integer (n,) labels: what the kernels were written
    for. Anything else gets the NumPy default and its error messages."""
    return (logits.ndim == 2 and logits.shape[1] > 0 and logits.dtype in _FLOATS
            and labels.ndim == 1 and labels.dtype.kind in "iu")


def _same_layout(first: Any, *others: Any) -> bool:
    """Float arrays of one shape, all C-contiguous: what the elementwise kernels take (they
    flatten them to 1-D views inside, so an in-place update reaches the caller's array). Written
    for speed: it runs for every update of every parameter."""
    if first.dtype not in _FLOATS or not first.flags.c_contiguous:
        return False
    shape = first.shape
    for a in others:
        if a.shape != shape or not a.flags.c_contiguous:
            return False
    return True


def _narrow_first_layer(images: Any, w: Any, rows: bool) -> bool:
    """Images (n, d), uint8 pixels or floats of ``w``'s dtype, and a float (d, h) weight (or,
    ``rows``, (n, h) gradient) with h small: where a kernel beats BLAS (whose products with 10
    columns run at a fraction of its speed), reading uint8 pixels directly with the 1/255
    scale folded in. Wide layers go to BLAS."""
    return (images.ndim == 2 and _is_float_matrix(w)
            and (images.dtype == numpy.uint8 or images.dtype == w.dtype)
            and w.shape[0] == images.shape[0 if rows else 1] and 0 < w.shape[1] <= _NARROW)


def _pooled_product(a: Any, b: Any, transpose_a: bool) -> bool:
    """Narrow products over a full batch's rows: sums of at most _NARROW terms (``a`` (n, k)
    @ ``b`` (k, h)), or (``transpose_a``) a small result summed over the n rows. The backend
    splits them over its own threads, each running BLAS on one thread: BLAS's own threads
    would spin after each product and take a core from the threaded first-layer kernels of
    the same step. Wide products and mini-batches stay with BLAS's own threads, where nothing
    of this backend's runs beside them (benchmarks/NOTES.md)."""
    if a.shape[-1 if transpose_a else 0] < _THREADED_ROWS:  # first: the common, cheap answer
        return False
    if not (_is_float_matrix(a) and _is_float_matrix(b) and a.dtype == b.dtype
            and a.shape[1] == b.shape[0]):
        return False
    if transpose_a:
        return a.shape[0] <= _NARROW and b.shape[1] <= _NARROW
    return a.shape[1] <= _NARROW


def _scale(images: Any, dtype: Any) -> Any:
    """What the first layer's sums are divided by: 255 for uint8 pixels, 1 for floats."""
    return dtype.type(255 if images.dtype == numpy.uint8 else 1)


def _sum_chunk(n: int) -> int:
    """Rows per chunk of a sum over ``n`` (at least _THREADED_ROWS) rows split among the
    threads: at most _MAX_CHUNKS chunks, set by ``n`` alone."""
    return max(_CHUNK_ROWS, -(-n // _MAX_CHUNKS))


def _product_rows(a: Any, b: Any, out: Any, start: int, stop: int) -> None:
    """out[start:stop] = a[start:stop] @ b (NumPy's matmul lets go of the GIL)."""
    numpy.matmul(a[start:stop], b, out=out[start:stop])


def _product_chunks(a: Any, b: Any, partials: Any, first: int, last: int, chunk: int) -> None:
    """partials[c] = a[rows].T @ b[rows] for the rows of chunks first..last of ``chunk`` rows."""
    for c in range(first, last):
        rows = slice(c * chunk, (c + 1) * chunk)
        numpy.matmul(a[rows].T, b[rows], out=partials[c])


def _even(i: int) -> int:
    return i - i % 2


class NumbaBackend(Backend):
    """NumPy arrays on the CPU, with Numba kernels for everything but the matrix products.

    Each method keeps the interface's contract (see :class:`nnscratch.Backend`); inputs that a
    kernel was not written for (other dtypes or ranks) go to the NumPy defaults.
    """

    name = "numba"
    xp = numpy
    reads_pixels_directly = True
    # Large blocks: each threaded call costs about 100 us of handing work to a waiting thread,
    # and on a cache as large as this machine's smaller blocks gained nothing (benchmarks/NOTES.md).
    block_bytes = 64 * 2**20

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
            k.gather_scale_pixels(pixels, rows, out)
        else:
            out = numpy.empty(pixels.shape, dtype_)
            self._in_threads(k.scale_pixels, pixels, out, parts=self._row_parts(len(pixels)))
        return out

    # --- forward and backward ----------------------------------------------------------------

    def matmul(self, a: Array, b: Array, *, transpose_a: bool = False,
               transpose_b: bool = False) -> Array:
        """Over a full batch's rows, BLAS runs on one thread in each of this backend's threads,
        on a share of the rows: BLAS's own threads would spin after each product and take a
        core from the kernels that follow (see benchmarks/NOTES.md)."""
        a_, b_ = (a.T if transpose_a else a), (b.T if transpose_b else b)
        if not _pooled_product(a_, b_, transpose_a):
            return super().matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
        out = numpy.empty((a_.shape[0], b_.shape[1]), a.dtype)
        with self._blas_on_one_thread():
            if transpose_a:
                # a sum over rows: fixed chunks, whatever the number of threads
                return self._chunked_sums(_product_chunks, a, b_, out,
                                          _sum_chunk(a.shape[0]))
            self._in_threads(_product_rows, a_, b_, out, parts=self._row_parts(a_.shape[0]))
        return out

    def _blas_on_one_thread(self) -> Any:
        """A context in which BLAS runs each product on the calling thread; BLAS's thread
        count (the user's own setting included) is put back on leaving it."""
        return self._blas.limit(limits=1, user_api="blas")

    @functools.cached_property
    def _blas(self) -> Any:
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController()

    def _row_parts(self, n: int) -> list[tuple[int, int]]:
        """Row ranges, one per thread for many rows; they start on even rows."""
        if n < _THREADED_ROWS:  # first: the common, cheap answer
            return [(0, n)]
        threads = self._threads
        bounds = [_even(n * t // threads) for t in range(threads)] + [n]
        return list(zip(bounds, bounds[1:]))

    def _chunked_sums(self, kernel: Any, a: Array, b: Array, out: Array,
                      chunk: int = _CHUNK_ROWS) -> Array:
        """``out`` = the sum over fixed chunks of rows (``chunk`` rows each) of ``kernel``'s
        partial sums for each chunk, added in chunk order in float64: the same bits for any
        number of threads."""
        chunks = max(1, -(-a.shape[0] // chunk))
        partials = numpy.empty((chunks, *out.shape), out.dtype)
        self._in_threads(kernel, a, b, partials, chunk, parts=self._chunk_parts(chunks))
        numpy.copyto(out, partials.sum(axis=0, dtype=numpy.float64), casting="same_kind")
        return out

    def pixels_matmul(self, pixels: Array, w: Array) -> Array:
        if not _narrow_first_layer(pixels, w, rows=False):
            return super().pixels_matmul(pixels, w)
        out = numpy.empty((pixels.shape[0], w.shape[1]), w.dtype)
        # Rows are independent: any split gives the same bits (the kernel takes rows in fours).
        self._in_threads(self._kernels.pixels_matmul_rows, pixels,
                         numpy.ascontiguousarray(w.T), out, _scale(pixels, w.dtype),
                         parts=self._row_parts(len(pixels)))
        return out

    def pixels_matmul_backward(self, pixels: Array, grad: Array) -> Array:
        if not _narrow_first_layer(pixels, grad, rows=True):
            return super().pixels_matmul_backward(pixels, grad)
        # The kernel sums (h, d), contiguous along the pixels; scaled and transposed at the end.
        sums = numpy.empty((grad.shape[1], pixels.shape[1]), grad.dtype)
        sums = self._chunked_sums(self._kernels.pixels_matmul_backward_chunks, pixels, grad, sums)
        if pixels.dtype == numpy.uint8:
            sums /= 255
        return numpy.ascontiguousarray(sums.T)

    def _in_threads(self, kernel: Any, *args: Any, parts: list[tuple[int, int]]) -> None:
        """Run ``kernel(*args[:3], start, stop, *args[3:])`` for each part, side by side: the
        first on this thread (handing a part to a waiting thread costs tens of microseconds)."""
        head, tail = args[:3], args[3:]
        futures = [self._pool.submit(kernel, *head, start, stop, *tail)
                   for start, stop in parts[1:]]
        try:
            kernel(*head, *parts[0], *tail)
        finally:
            for future in futures:
                future.result()

    @functools.cached_property
    def _pool(self) -> ThreadPoolExecutor:
        import numba

        return ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS,
                                  thread_name_prefix="nnscratch-numba")

    @property
    def _threads(self) -> int:
        """Numba's thread count, read on every use: ``NUMBA_NUM_THREADS`` or the caller's
        ``numba.set_num_threads`` (the user's setting wins)."""
        import numba

        return numba.get_num_threads()

    def bias_add(self, z: Array, bias: Array) -> Array:
        if not _is_bias(z, bias):
            return super().bias_add(z, bias)
        self._kernels.bias_add(z, bias)
        return z

    def bias_relu(self, z: Array, bias: Array) -> Array:
        if not _is_bias(z, bias):
            return super().bias_relu(z, bias)
        self._kernels.bias_relu(z, bias)
        return z

    def bias_relu_backward(self, grad: Array, activation: Array) -> Array:
        if not _same_layout(grad, activation):
            return super().bias_relu_backward(grad, activation)
        self._kernels.relu_mask(grad, activation)
        return grad

    # exp stays with NumPy: its ufunc is vectorised (SIMD), while an exp inside a Numba loop is
    # a scalar libm call, twice as slow on 60,000 x 10 float32 logits. Max, shift, sum, divide
    # and loss are fused around it.

    def softmax(self, logits: Array) -> Array:
        if not _is_float_matrix(logits) or logits.shape[1] == 0:
            return super().softmax(logits)
        k = self._kernels
        probs = numpy.empty_like(logits)
        k.shift_rows(logits, probs)
        k.normalize_rows(numpy.exp(probs, out=probs))
        return probs

    def softmax_cross_entropy(self, logits: Array, labels: Array) -> tuple[Array, Array]:
        if not _are_logits(logits, labels):
            return super().softmax_cross_entropy(logits, labels)
        k, n = self._kernels, logits.shape[0]
        if n < _THREADED_ROWS:
            k.shift_rows(logits, logits)  # in place: the interface lets logits be overwritten
            probs = numpy.exp(logits)
            total = k.normalize_cross_entropy(logits, labels, probs)
        else:  # a float64 loss per chunk, added in chunk order: the same for any thread count
            _check_labels(labels, n)
            probs = numpy.empty_like(logits)
            chunk = _sum_chunk(n)
            losses = numpy.empty(-(-n // chunk))
            self._in_threads(self._softmax_cross_entropy_chunks, logits, labels, probs, losses,
                             chunk, parts=self._chunk_parts(len(losses)))
            total = float(losses.sum())
        # The float64 mean, rounded once to the model's dtype: a 0-d array, like the interface's.
        loss = numpy.array(total / n if n else numpy.nan, dtype=logits.dtype)
        return loss, probs

    def _softmax_cross_entropy_chunks(self, logits: Array, labels: Array, probs: Array,
                                      first: int, last: int, losses: Array, chunk: int) -> None:
        k = self._kernels
        for c in range(first, last):
            rows = slice(c * chunk, (c + 1) * chunk)
            k.shift_rows(logits[rows], logits[rows])
            numpy.exp(logits[rows], out=probs[rows])
            losses[c] = k.normalize_cross_entropy(logits[rows], labels[rows], probs[rows])

    def _chunk_parts(self, chunks: int) -> list[tuple[int, int]]:
        """Ranges of chunk numbers, one per thread (fewer for few chunks)."""
        threads = self._threads
        bounds = [chunks * t // threads for t in range(threads + 1)]
        return [(c, d) for c, d in zip(bounds, bounds[1:]) if d > c]

    def softmax_cross_entropy_backward(self, probs: Array, labels: Array,
                                       batch_rows: int | None = None) -> Array:
        if not _are_logits(probs, labels):
            return super().softmax_cross_entropy_backward(probs, labels, batch_rows)
        self._kernels.softmax_cross_entropy_backward(
            probs, labels, probs.shape[0] if batch_rows is None else batch_rows)
        return probs

    def sum_rows(self, a: Array) -> Array:
        if not _is_float_matrix(a):
            return super().sum_rows(a)
        out = numpy.empty(a.shape[1], a.dtype)
        self._kernels.sum_rows(a, out)
        return out

    # --- results and updates --------------------------------------------------------------

    def argmax_rows(self, a: Array) -> Array:
        if not (_is_float_matrix(a) and a.shape[1] > 0):
            return super().argmax_rows(a)
        out = numpy.empty(a.shape[0], numpy.intp)
        self._kernels.argmax_rows(a, out)
        return out

    def count_correct(self, logits: Array, labels: Array) -> Array:
        if not _are_logits(logits, labels):
            return super().count_correct(logits, labels)
        n = logits.shape[0]
        if n < _THREADED_ROWS:
            return numpy.array(self._kernels.count_correct(logits, labels), dtype=numpy.int64)
        _check_labels(labels, n)
        chunk = _sum_chunk(n)
        counts = numpy.empty(-(-n // chunk), numpy.int64)
        self._in_threads(self._count_chunks, logits, labels, counts, chunk,
                         parts=self._chunk_parts(len(counts)))
        return numpy.array(counts.sum(), dtype=numpy.int64)

    def _count_chunks(self, logits: Array, labels: Array, counts: Array, first: int,
                      last: int, chunk: int) -> None:
        for c in range(first, last):
            rows = slice(c * chunk, (c + 1) * chunk)
            counts[c] = self._kernels.count_correct(logits[rows], labels[rows])

    def sgd_update(self, param: Array, grad: Array, lr: float, *, velocity: Array | None = None,
                   momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> None:
        # Nesterov and weight decay take the NumPy default: no kernel for them has been measured.
        if nesterov or weight_decay:
            super().sgd_update(param, grad, lr, velocity=velocity, momentum=momentum,
                               nesterov=nesterov, weight_decay=weight_decay)
            return
        # One kernel pass for every size: with nothing returned from the kernel, its call costs
        # less than NumPy's two (plain) or four (momentum) ufunc calls even on 10 entries, and
        # both round alike, so the choice changes no bits.
        if velocity is None:
            if _same_layout(param, grad):
                self._kernels.sgd(param, grad, lr)
                return
        elif _same_layout(param, grad, velocity):
            self._kernels.sgd_momentum(param, grad, velocity, lr, momentum)
            return
        super().sgd_update(param, grad, lr, velocity=velocity, momentum=momentum)

