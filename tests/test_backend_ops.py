"""The reference formulas against hand-worked numbers, and what only the NumPy backend promises.

Every backend, NumPy's included, is checked against :class:`nnscratch.testing.Reference` by the
agreement suite (tests/test_agreement.py); these tests pin the reference itself to numbers worked
out by hand, so that a backend and the reference cannot be wrong together.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch
from nnscratch.testing import Reference

DTYPES = ["float32", "float64"]


def test_pixels_to_float_maps_0_to_255_onto_0_to_1():
    pixels = np.array([[0, 51, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(Reference.pixels_to_float(pixels), [[0.0, 0.2, 1.0]])
    floats = np.array([[0.5, 1.0]], dtype=np.float32)  # already scaled: taken as they are
    np.testing.assert_array_equal(Reference.pixels_to_float(floats), floats)


def test_matmul_and_bias_layers():
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0], [7.0, 8.0]])
    np.testing.assert_array_equal(Reference.matmul(a, b), [[19.0, 22.0], [43.0, 50.0]])
    np.testing.assert_array_equal(Reference.matmul(np.ones((1, 3)), np.ones((3, 1))), [[3.0]])
    z, bias = np.array([[-1.0, 2.0], [1.0, 4.0]]), np.array([0.5, -3.0])
    np.testing.assert_array_equal(Reference.bias_add(z, bias), [[-0.5, -1.0], [1.5, 1.0]])
    np.testing.assert_array_equal(Reference.bias_relu(z, bias), [[0.0, 0.0], [1.5, 1.0]])
    grad = np.array([[7.0, 8.0], [9.0, 10.0]])
    np.testing.assert_array_equal(
        Reference.bias_relu_backward(grad, Reference.bias_relu(z, bias)), [[0, 0], [9.0, 10.0]])
    np.testing.assert_array_equal(Reference.sum_rows(grad), [16.0, 18.0])


def test_softmax_and_cross_entropy():
    logits = np.array([[0.0, np.log(3.0)], [1e4, -1e4]])
    np.testing.assert_allclose(Reference.softmax(logits), [[0.25, 0.75], [1.0, 0.0]],
                               rtol=1e-15)
    np.testing.assert_allclose(Reference.softmax(logits + 700), Reference.softmax(logits))
    # labels 1 and 0: -log(3/4) and -log(1) = 0, averaged
    assert Reference.cross_entropy(logits, np.array([1, 0])) == pytest.approx(
        -np.log(0.75) / 2, rel=1e-15)
    assert Reference.cross_entropy(logits, np.array([0, 1])) == pytest.approx(
        (-np.log(0.25) + 2e4) / 2, rel=1e-15)  # finite for logits of +-1e4


def test_cross_entropy_backward_is_the_derivative_of_the_mean_loss():
    rng = np.random.default_rng(0)
    logits, labels, h = rng.standard_normal((4, 5)) * 3, np.array([0, 4, 2, 2]), 1e-6
    numeric = np.empty_like(logits)
    for index in np.ndindex(*logits.shape):
        step = np.zeros_like(logits)
        step[index] = h
        numeric[index] = (Reference.cross_entropy(logits + step, labels)
                          - Reference.cross_entropy(logits - step, labels)) / (2 * h)
    exact = Reference.cross_entropy_backward(logits, labels)
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=1e-9)
    probs = Reference.softmax(logits)
    expected = probs.copy()
    expected[np.arange(4), labels] -= 1
    np.testing.assert_array_equal(Reference.softmax_cross_entropy_backward(probs, labels),
                                  expected / 4)


def test_argmax_rows_and_count_correct():
    logits = np.array([[0, 3, 1], [5, -1, 2], [0, 0, 9], [1, 2, 3]], dtype=np.float32)
    labels = np.array([1, 0, 1, 2])
    np.testing.assert_array_equal(Reference.argmax_rows(logits), [1, 0, 2, 2])
    assert Reference.count_correct(logits, labels) == 3
    np.testing.assert_array_equal(Reference.argmax_rows(np.array([[2.0, 2.0, 1.0]])), [0])


def test_sgd_update_plain_momentum_nesterov_and_weight_decay():
    rng = np.random.default_rng(6)
    param, g1, g2 = (rng.standard_normal((6, 4)) for _ in range(3))
    np.testing.assert_allclose(Reference.sgd_update(param, g1, 0.25)[0], param - 0.25 * g1)
    p, v = Reference.sgd_update(param, g1, 0.1, velocity=np.zeros((6, 4)), momentum=0.9)
    p, v = Reference.sgd_update(p, g2, 0.1, velocity=v, momentum=0.9)
    v_expected = 0.9 * g1 + g2
    np.testing.assert_allclose(v, v_expected, rtol=1e-15)
    np.testing.assert_allclose(p, param - 0.1 * g1 - 0.1 * v_expected, rtol=1e-15, atol=1e-15)
    p, v = Reference.sgd_update(param, g1, 0.1, velocity=np.zeros((6, 4)), momentum=0.9,
                                nesterov=True)  # PyTorch: the step looks ahead along v
    np.testing.assert_allclose(p, param - 0.1 * (g1 + 0.9 * g1), rtol=1e-15, atol=1e-15)
    p, _ = Reference.sgd_update(param, g1, 0.1, weight_decay=0.01)
    np.testing.assert_allclose(p, param - 0.1 * (g1 + 0.01 * param), rtol=1e-15, atol=1e-15)


def test_adam_update_first_step_moves_each_weight_by_about_lr():
    rng = np.random.default_rng(7)
    param, grad = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) * 1e-3
    zeros = np.zeros((6, 4))
    p, m, v = Reference.adam_update(param, grad, zeros, zeros, 0.01, step=1)
    # bias-corrected, the first step is lr * g / (|g| + eps): lr times the gradient's sign
    np.testing.assert_allclose(param - p, 0.01 * grad / (np.abs(grad) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(m, 0.1 * grad, rtol=1e-12)
    np.testing.assert_allclose(v, 0.001 * grad * grad, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_asarray_without_copy_shares_a_host_array_on_the_cpu(dtype):
    backend = nnscratch.get_backend("numpy")
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    assert backend.asarray(a, copy=False) is a        # read-only inputs: no copy on the CPU
    cast = backend.asarray(a, "float32" if dtype == "float64" else "float64", copy=False)
    assert cast is not a and np.asarray(backend.to_numpy(cast)).tolist() == a.tolist()
