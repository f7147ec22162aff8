"""The reference (NumPy) backend's operations against plain float64 formulas.

The reference is checked against the math here; every other backend is checked against the
reference by the agreement suite (tests/test_agreement.py). Shape and dtype are checked before
values, with tolerances derived from the dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch
from nnscratch.testing import Reference, assert_same_array, tolerance

DTYPES = ["float32", "float64"]


@pytest.fixture
def backend():
    return nnscratch.get_backend("numpy")


@pytest.fixture(params=DTYPES)
def dtype(request):
    return request.param


def host(backend, a):
    return np.asarray(backend.to_numpy(a))


def randn(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


SHAPES = [(1, 784, 10), (7, 13, 5), (128, 784, 128), (33, 10, 1)]


@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul(backend, dtype, m, k, n, ta, tb):
    rng = np.random.default_rng(m * k + n)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    a_in, b_in = (np.ascontiguousarray(a.T) if ta else a), (np.ascontiguousarray(b.T) if tb else b)
    out = backend.matmul(backend.asarray(a_in), backend.asarray(b_in), transpose_a=ta,
                         transpose_b=tb)
    # each entry sums k products of size ~1, so the error scales with sqrt(k) terms of size 1
    assert_same_array(host(backend, out), Reference.matmul(a, b), dtype, scale=np.sqrt(k))


@pytest.mark.parametrize("n", [1, 5, 128])
def test_pixels_to_float(backend, dtype, n):
    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    pixels[0, :2] = (0, 255)
    out = host(backend, backend.pixels_to_float(backend.asarray(pixels), dtype))
    assert_same_array(out, Reference.pixels_to_float(pixels), dtype)
    assert out[0, 0] == 0 and out[0, 1] == 1
    # division by 255 is correctly rounded in the target dtype: exact, not just close
    np.testing.assert_array_equal(out, (pixels.astype(dtype) / np.asarray(255, dtype)))


def test_pixels_to_float_gathers_rows(backend, dtype):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(50, 784), dtype=np.uint8)
    rows = np.array([49, 0, 7, 7, 3])
    out = backend.pixels_to_float(backend.asarray(pixels), dtype, rows=backend.asarray(rows))
    assert_same_array(host(backend, out), Reference.pixels_to_float(pixels[rows]), dtype)


def test_pixels_to_float_takes_floats_as_scaled(backend, dtype):
    floats = np.linspace(0, 1, 784 * 3).reshape(3, 784)
    out = host(backend, backend.pixels_to_float(backend.asarray(floats), dtype))
    assert_same_array(out, floats, dtype)


def test_take_rows(backend):
    labels = np.arange(20, dtype=np.int64) % 10
    rows = np.array([3, 19, 0])
    out = host(backend, backend.take_rows(backend.asarray(labels), backend.asarray(rows)))
    np.testing.assert_array_equal(out, [3, 9, 0])


@pytest.mark.parametrize("n,d", [(1, 10), (9, 17), (128, 128)])
def test_bias_add_and_bias_relu(backend, dtype, n, d):
    rng = np.random.default_rng(d)
    z, bias = randn(rng, (n, d), dtype), randn(rng, (d,), dtype)
    added = host(backend, backend.bias_add(backend.asarray(z), backend.asarray(bias)))
    assert_same_array(added, z.astype(np.float64) + bias, dtype)
    out = host(backend, backend.bias_relu(backend.asarray(z), backend.asarray(bias)))
    assert_same_array(out, Reference.bias_relu(z, bias), dtype)
    assert (out >= 0).all() and (out == 0).any()


def test_bias_relu_backward(backend, dtype):
    rng = np.random.default_rng(3)
    grad, act = randn(rng, (9, 17), dtype), np.maximum(randn(rng, (9, 17), dtype), 0)
    out = host(backend, backend.bias_relu_backward(backend.asarray(grad), backend.asarray(act)))
    assert_same_array(out, np.where(act > 0, grad.astype(np.float64), 0.0), dtype)


@pytest.mark.parametrize("n,scale", [(1, 1.0), (13, 5.0), (128, 1e4)])
def test_softmax_cross_entropy(backend, dtype, n, scale):
    rng = np.random.default_rng(n)
    logits = randn(rng, (n, 10), dtype, scale)
    labels = rng.integers(0, 10, size=n)
    loss, probs = backend.softmax_cross_entropy(backend.asarray(logits), backend.asarray(labels))
    loss, probs = host(backend, loss), host(backend, probs)
    assert loss.shape == () and loss.dtype == np.dtype(dtype)
    assert_same_array(probs, Reference.softmax(logits), dtype, scale=1.0)
    expected = Reference.cross_entropy(logits, labels)
    rtol, _ = tolerance(dtype)
    # the loss is a difference of terms as large as the logits: judge it against their size
    assert np.isfinite(loss) and abs(float(loss) - expected) <= rtol * max(scale, 1, expected)
    softmax = host(backend, backend.softmax(backend.asarray(logits)))
    assert_same_array(softmax, Reference.softmax(logits), dtype, scale=1.0)
    assert np.allclose(softmax.sum(axis=1), 1.0, rtol=0, atol=tolerance(dtype)[0])


@pytest.mark.parametrize("n", [1, 13, 128])
def test_softmax_cross_entropy_backward(backend, dtype, n):
    rng = np.random.default_rng(n)
    logits, labels = randn(rng, (n, 10), dtype, 3.0), rng.integers(0, 10, size=n)
    _, probs = backend.softmax_cross_entropy(backend.asarray(logits), backend.asarray(labels))
    grad = host(backend, backend.softmax_cross_entropy_backward(probs, backend.asarray(labels)))
    assert_same_array(grad, Reference.cross_entropy_backward(logits, labels), dtype,
                      scale=1.0 / n)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=tolerance(dtype)[0])


@pytest.mark.parametrize("n,d", [(1, 10), (128, 33), (1000, 7)])
def test_sum_rows(backend, dtype, n, d):
    a = randn(np.random.default_rng(n), (n, d), dtype)
    out = host(backend, backend.sum_rows(backend.asarray(a)))
    assert_same_array(out, a.astype(np.float64).sum(axis=0), dtype, scale=np.sqrt(n))


def test_argmax_rows_and_count_correct(backend, dtype):
    logits = np.array([[0, 3, 1], [5, -1, 2], [0, 0, 9], [1, 2, 3]], dtype=dtype)
    labels = np.array([1, 0, 1, 2])
    np.testing.assert_array_equal(host(backend, backend.argmax_rows(backend.asarray(logits))),
                                  [1, 0, 2, 2])
    count = host(backend, backend.count_correct(backend.asarray(logits), backend.asarray(labels)))
    assert count.shape == () and int(count) == 3


def test_sgd_update_plain(backend, dtype):
    rng = np.random.default_rng(5)
    param, grad = randn(rng, (6, 4), dtype), randn(rng, (6, 4), dtype)
    p = backend.asarray(param)
    backend.sgd_update(p, backend.asarray(grad), 0.25)
    assert_same_array(host(backend, p), param.astype(np.float64) - 0.25 * grad, dtype)


def test_sgd_update_momentum(backend, dtype):
    rng = np.random.default_rng(6)
    param, g1, g2 = (randn(rng, (6, 4), dtype) for _ in range(3))
    p, v = backend.asarray(param), backend.zeros((6, 4), dtype)
    backend.sgd_update(p, backend.asarray(g1), 0.1, velocity=v, momentum=0.9)
    backend.sgd_update(p, backend.asarray(g2), 0.1, velocity=v, momentum=0.9)
    v_expected = 0.9 * g1.astype(np.float64) + g2
    assert_same_array(host(backend, v), v_expected, dtype)
    assert_same_array(host(backend, p), param - 0.1 * g1.astype(np.float64) - 0.1 * v_expected,
                      dtype)


def test_asarray_copies_and_zeros(backend, dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    on_backend = backend.asarray(a)
    a[0, 0] = 99
    assert host(backend, on_backend)[0, 0] == 0
    zeros = host(backend, backend.zeros((2, 3), dtype))
    assert zeros.shape == (2, 3) and zeros.dtype == np.dtype(dtype) and not zeros.any()


def test_asarray_without_copy_shares_a_host_array_on_the_cpu(backend, dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    assert backend.asarray(a, copy=False) is a        # read-only inputs: no copy on the CPU
    cast = backend.asarray(a, "float32" if dtype == "float64" else "float64", copy=False)
    assert cast is not a and host(backend, cast).tolist() == a.tolist()   # a cast must copy
