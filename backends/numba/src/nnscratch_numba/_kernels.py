"""The compiled kernels behind :class:`nnscratch_numba.NumbaBackend`.

Importing this module imports numba; :mod:`nnscratch_numba` imports it only when a backend is
created. Every kernel is compiled on first use for the argument types it meets (float32 and
float64 get separate machine code) and cached on disk (``cache=True``), so a later process loads
the machine code instead of compiling it again. ``nogil=True`` lets Python threads run kernels
side by side.

Numerics, kept the same as the NumPy reference's where that costs nothing:

* Scalars (255, 0, 1, the learning rate, the momentum, n) are cast to the arrays' dtype inside the
  kernels (``a.dtype.type(x)``), so float32 arithmetic stays float32: an untyped literal would
  silently promote the loop to float64.
* Without ``fastmath``, LLVM neither reassociates nor fuses a multiply and an add into an FMA, so
  the elementwise kernels round exactly as NumPy's ufuncs do (bit-identical results). Only the
  first layer's two pixel kernels use it (see there): their long sums need it to vectorise.
* Sums (the loss, the bias gradients) accumulate in float64: more accurate than NumPy's float32
  sums, in one fixed order, so the same input always gives the same bits.
* No kernel is ``parallel=True``: on two cores a threaded kernel is faster alone but slows the
  whole training step, its threads competing with OpenBLAS's (benchmarks/NOTES.md). The
  backend instead runs full-batch work (``*_rows``, ``*_chunks``, and the loss and count over
  chunks of rows) on row ranges from its own Python threads (kernels are ``nogil``), with
  sums per chunk of rows fixed by the row count, so the bits do not depend on the number of
  threads.
* Kernels write into arrays that the caller passes and return nothing (or a scalar): boxing a
  returned array into a new Python object costs about 0.4 us a call, a tenth of a small kernel.
* Indices (rows, labels) are checked: an out-of-range one raises IndexError instead of reading
  outside the array.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True)


# --- inputs -----------------------------------------------------------------------------------

@_jit
def scale_pixels(pixels, out, start, stop):
    """out[i, j] = pixels[i, j] / 255 in out's dtype (pixels uint8), for rows start..stop."""
    denominator = out.dtype.type(255)
    for i in range(start, stop):
        for j in range(pixels.shape[1]):
            out[i, j] = pixels[i, j]
            out[i, j] /= denominator  # divide, as the reference does: correctly rounded


@_jit
def gather_scale_pixels(pixels, rows, out):
    """out[i, j] = pixels[rows[i], j] / 255: a shuffled mini-batch gathered and scaled in one
    pass. Negative rows count from the end, as in ``numpy.take``.

    A first pass checks the rows and reads one byte of every cache line of them: the loads are
    independent, so the memory fetches overlap, where the scaling pass alone would wait for
    each randomly placed row in turn (28 -> 24 us for 128 rows of MNIST, benchmarks/NOTES.md).
    """
    count, d = pixels.shape
    touched = 0
    for i in range(rows.shape[0]):
        row = rows[i]
        if row < 0:
            row += count
        if row < 0 or row >= count:
            raise IndexError("pixels_to_float: a row index is out of range")
        for j in range(0, d, 64):
            touched += pixels[row, j]
        touched += pixels[row, d - 1]
    denominator = out.dtype.type(255)
    for i in range(rows.shape[0]):
        row = rows[i] + count if rows[i] < 0 else rows[i]
        for j in range(d):
            out[i, j] = pixels[row, j]
            out[i, j] /= denominator
    return touched  # returned so that the first pass is not optimised away


# --- the first layer, straight from uint8 pixels ----------------------------------------------
# These two kernels may reassociate and fuse multiply-adds (``fastmath`` reassoc and contract):
# that is what lets LLVM vectorise their sums over 784 pixels. They still round the same way on
# every call, since the order is fixed by the code, not by threads; the agreement suite judges
# them with its dtype-derived tolerances, like BLAS's products.

_jit_sums = njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})


@_jit_sums
def _load_rows(pixels, first, count, rows):
    """rows[q] = pixels[first + q] (uint8 or float) as floats, for q < count; later rows of
    the buffer are 0."""
    zero = rows.dtype.type(0)
    for q in range(rows.shape[0]):
        for k in range(pixels.shape[1]):
            rows[q, k] = pixels[first + q, k] if q < count else zero


@_jit_sums
def _store_five(out, i, j, s0, s1, s2, s3, s4, denominator):
    out[i, j], out[i, j + 1], out[i, j + 2] = s0 / denominator, s1 / denominator, s2 / denominator
    out[i, j + 3], out[i, j + 4] = s3 / denominator, s4 / denominator


@_jit_sums
def pixels_matmul_rows(pixels, w_t, out, start, stop, denominator):
    """out[i, j] = (sum over k of pixels[i, k] * w_t[j, k]) / denominator for rows
    start..stop: 255 for uint8 pixels, 1 for floats already scaled.

    ``w_t`` is the (h, d) transposed weights, so every sum runs over contiguous memory. Four
    rows and five columns at a time: twenty running sums (vector registers once LLVM vectorises
    the loop over k) share each load of four pixel rows and five weight rows.
    """
    h, d = w_t.shape
    quad = np.empty((4, d), w_t.dtype)
    zero = w_t.dtype.type(0)
    for i in range(start, stop, 4):
        count = min(4, stop - i)
        _load_rows(pixels, i, count, quad)
        for j in range(0, h - h % 5, 5):
            a0 = a1 = a2 = a3 = a4 = b0 = b1 = b2 = b3 = b4 = zero
            c0 = c1 = c2 = c3 = c4 = e0 = e1 = e2 = e3 = e4 = zero
            for k in range(d):
                x0, x1, x2, x3 = quad[0, k], quad[1, k], quad[2, k], quad[3, k]
                w0, w1, w2, w3, w4 = w_t[j, k], w_t[j + 1, k], w_t[j + 2, k], w_t[j + 3, k], \
                    w_t[j + 4, k]
                a0 += x0 * w0
                a1 += x0 * w1
                a2 += x0 * w2
                a3 += x0 * w3
                a4 += x0 * w4
                b0 += x1 * w0
                b1 += x1 * w1
                b2 += x1 * w2
                b3 += x1 * w3
                b4 += x1 * w4
                c0 += x2 * w0
                c1 += x2 * w1
                c2 += x2 * w2
                c3 += x2 * w3
                c4 += x2 * w4
                e0 += x3 * w0
                e1 += x3 * w1
                e2 += x3 * w2
                e3 += x3 * w3
                e4 += x3 * w4
            _store_five(out, i, j, a0, a1, a2, a3, a4, denominator)
            if count > 1:
                _store_five(out, i + 1, j, b0, b1, b2, b3, b4, denominator)
            if count > 2:
                _store_five(out, i + 2, j, c0, c1, c2, c3, c4, denominator)
            if count > 3:
                _store_five(out, i + 3, j, e0, e1, e2, e3, e4, denominator)
        for j in range(h - h % 5, h):
            for q in range(count):
                total = zero
                for k in range(d):
                    total += quad[q, k] * w_t[j, k]
                out[i + q, j] = total / denominator


@_jit_sums
def _grad_row(grad, i, j, count, q):
    """grad[i + q, j:j + 5] as five scalars, zeros for a row past ``count``."""
    zero = grad.dtype.type(0)
    if q >= count:
        return zero, zero, zero, zero, zero
    return grad[i + q, j], grad[i + q, j + 1], grad[i + q, j + 2], grad[i + q, j + 3], \
        grad[i + q, j + 4]


@_jit_sums
def pixels_matmul_backward_chunks(pixels, grad, partials, first, last, chunk):
    """partials[c, j, k] = sum over the rows i of chunk c of grad[i, j] * pixels[i, k]
    (unscaled pixels, or floats), for chunks first..last of ``chunk`` rows. Four rows and five
    units at a time: each pass over the four pixel rows (in registers) updates five rows of
    the (h, d) sums."""
    n, d = pixels.shape
    h = grad.shape[1]
    quad = np.empty((4, d), partials.dtype)
    zero = partials.dtype.type(0)
    for c in range(first, last):
        sums = partials[c]
        sums[:] = 0
        start, stop = c * chunk, min(n, (c + 1) * chunk)
        for i in range(start, stop, 4):
            count = min(4, stop - i)
            _load_rows(pixels, i, count, quad)
            for j in range(0, h - h % 5, 5):
                g00, g01, g02, g03, g04 = _grad_row(grad, i, j, count, 0)
                g10, g11, g12, g13, g14 = _grad_row(grad, i, j, count, 1)
                g20, g21, g22, g23, g24 = _grad_row(grad, i, j, count, 2)
                g30, g31, g32, g33, g34 = _grad_row(grad, i, j, count, 3)
                s0, s1, s2, s3, s4 = sums[j], sums[j + 1], sums[j + 2], sums[j + 3], sums[j + 4]
                for k in range(d):
                    x0, x1, x2, x3 = quad[0, k], quad[1, k], quad[2, k], quad[3, k]
                    s0[k] += (g00 * x0 + g10 * x1) + (g20 * x2 + g30 * x3)
                    s1[k] += (g01 * x0 + g11 * x1) + (g21 * x2 + g31 * x3)
                    s2[k] += (g02 * x0 + g12 * x1) + (g22 * x2 + g32 * x3)
                    s3[k] += (g03 * x0 + g13 * x1) + (g23 * x2 + g33 * x3)
                    s4[k] += (g04 * x0 + g14 * x1) + (g24 * x2 + g34 * x3)
            for j in range(h - h % 5, h):  # the last units, one at a time
                g0 = grad[i, j]
                g1 = grad[i + 1, j] if count > 1 else zero
                g2 = grad[i + 2, j] if count > 2 else zero
                g3 = grad[i + 3, j] if count > 3 else zero
                s0, x0, x1, x2, x3 = sums[j], quad[0], quad[1], quad[2], quad[3]
                for k in range(d):
                    s0[k] += (g0 * x0[k] + g1 * x1[k]) + (g2 * x2[k] + g3 * x3[k])


# --- forward and backward ---------------------------------------------------------------------

@_jit
def _check_bias(z, bias):
    if bias.shape[0] != z.shape[1]:
        raise ValueError("the bias must have one entry per column")


@_jit
def _check_labels(labels, n):
    if labels.shape[0] != n:
        raise ValueError("there must be one label per row")


@_jit
def bias_add(z, bias):
    _check_bias(z, bias)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] += bias[j]


@_jit
def bias_relu(z, bias):
    _check_bias(z, bias)
    zero = z.dtype.type(0)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            value = z[i, j] + bias[j]
            # ``not value < 0`` keeps NaN (as numpy.maximum does), so divergence stays visible.
            z[i, j] = value if not value < zero else zero


@_jit
def relu_mask(grad, activation):
    """grad *= (activation > 0), for C-contiguous arrays of one shape (any rank)."""
    g, a = grad.reshape(grad.size), activation.reshape(activation.size)  # views, not copies
    zero, one = g.dtype.type(0), g.dtype.type(1)
    for i in range(g.shape[0]):
        # Multiply by the 0/1 mask, as the reference does, rather than store 0: the same
        # bits, NaN and signed zeros included.
        g[i] *= one if a[i] > zero else zero


@_jit
def shift_rows(logits, out):
    """out[i] = logits[i] - max(logits[i]) (out may be logits itself). A NaN in a row makes
    the row's maximum NaN, as numpy.max does."""
    for i in range(logits.shape[0]):
        top = logits[i, 0]
        for j in range(1, logits.shape[1]):
            value = logits[i, j]
            top = value if value > top or value != value else top
        for j in range(logits.shape[1]):
            out[i, j] = logits[i, j] - top


@_jit
def _normalize_row(probs, i):
    """probs[i] /= sum(probs[i]), in place; returns the sum."""
    total = probs.dtype.type(0)
    for j in range(probs.shape[1]):
        total += probs[i, j]
    for j in range(probs.shape[1]):
        probs[i, j] /= total
    return total


@_jit
def normalize_rows(probs):
    """probs[i] /= sum(probs[i]), in place."""
    for i in range(probs.shape[0]):
        _normalize_row(probs, i)


@_jit
def _label_at(labels, i, classes):
    label = labels[i]
    if label < 0 or label >= classes:
        raise IndexError("a label is out of range for the number of classes")
    return label


@_jit
def normalize_cross_entropy(shifted, labels, probs):
    """probs[i] /= sum(probs[i]), where probs = exp(shifted); returns the float64 sum of the
    rows' losses, log(sum(exp(shifted[i]))) - shifted[i, label]."""
    _check_labels(labels, probs.shape[0])
    loss = 0.0
    for i in range(probs.shape[0]):
        total = _normalize_row(probs, i)
        loss += math.log(total) - shifted[i, _label_at(labels, i, shifted.shape[1])]
    return loss


@_jit
def softmax_cross_entropy_backward(probs, labels, batch_rows):
    """probs = (probs - onehot(labels)) / batch_rows, in place."""
    n, classes = probs.shape
    _check_labels(labels, n)
    count, one = probs.dtype.type(batch_rows), probs.dtype.type(1)
    for i in range(n):
        probs[i, _label_at(labels, i, classes)] -= one
        for j in range(classes):
            probs[i, j] /= count  # divide by n, as the reference does


@_jit
def sum_rows(a, out):
    """out[j] = sum over i of a[i, j], accumulated in float64, four rows at a time."""
    n, d = a.shape
    total = np.zeros(d, dtype=np.float64)
    quads = n - n % 4
    for i in range(0, quads, 4):
        # Touching the float64 accumulator once per four rows, not once per row, gives float64
        # accuracy at about the speed of NumPy's float32 sum (README.md).
        for j in range(d):
            total[j] += ((np.float64(a[i, j]) + np.float64(a[i + 1, j]))
                         + (np.float64(a[i + 2, j]) + np.float64(a[i + 3, j])))
    for i in range(quads, n):
        for j in range(d):
            total[j] += a[i, j]
    for j in range(d):
        out[j] = total[j]


# --- results and updates ----------------------------------------------------------------------

@_jit
def _first_nan(a, i):
    for j in range(a.shape[1]):
        if a[i, j] != a[i, j]:
            return j
    return -1


@_jit
def _argmax_row(a, i):
    """numpy.argmax of row i: the first largest value, or the first NaN if there is one."""
    best, where, nan = a[i, 0], 0, False
    for j in range(1, a.shape[1]):
        value = a[i, j]
        bigger = value > best
        # selects, not branches: the largest column of random logits is unpredictable
        where = j if bigger else where
        best = value if bigger else best
        nan |= value != value
    if nan or best != best:
        return _first_nan(a, i)
    return where


@_jit
def argmax_rows(a, out):
    for i in range(a.shape[0]):
        out[i] = _argmax_row(a, i)


@_jit
def count_correct(logits, labels):
    _check_labels(labels, logits.shape[0])
    count = 0
    for i in range(logits.shape[0]):
        if _argmax_row(logits, i) == labels[i]:
            count += 1
    return count


@_jit
def sgd(param, grad, lr):
    """param -= lr * grad, for C-contiguous arrays of one shape (any rank), lr cast to param's
    dtype first (as NumPy does)."""
    p, g = param.reshape(param.size), grad.reshape(grad.size)  # views, not copies
    rate = p.dtype.type(lr)
    for i in range(p.shape[0]):
        p[i] -= rate * g[i]


@_jit
def sgd_momentum(param, grad, velocity, lr, momentum):
    """velocity = momentum * velocity + grad; param -= lr * velocity, for C-contiguous arrays of
    one shape (any rank), rounding after each operation in the reference's order."""
    p, g = param.reshape(param.size), grad.reshape(grad.size)
    v = velocity.reshape(velocity.size)
    rate, decay = p.dtype.type(lr), p.dtype.type(momentum)
    for i in range(p.shape[0]):
        value = v[i] * decay
        value += g[i]
        v[i] = value
        p[i] -= rate * value
