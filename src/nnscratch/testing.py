"""Tolerances and float64 reference formulas for checking a backend against the reference.

Comparisons look at shape and dtype first and only then at values, with tolerances derived from
the dtype by :func:`tolerance`, so that one rule serves float32 and float64 alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["tolerance", "assert_same_array", "Reference"]


def tolerance(dtype: Any, scale: float = 1.0) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing a result of ``dtype`` with an exact (float64) value.

    About a hundred units in the last place: loose enough for reordered sums, tight enough to
    catch a wrong formula or a silent cast. ``scale`` is the size of the values involved (e.g.
    the largest magnitude in the expected result); ``atol`` grows with it, so that entries that
    cancel to near zero are judged against the size of the terms that produced them.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    rtol = 100 * eps
    return rtol, rtol * max(scale, 1.0)


def assert_same_array(actual: Any, expected: Any, dtype: Any, *, scale: float | None = None,
                      what: str = "result") -> None:
    """Assert that host array ``actual`` has ``expected``'s shape, the given ``dtype``, and
    values within :func:`tolerance` of ``expected`` (usually computed in float64)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype} != {np.dtype(dtype)}"
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 1.0
    rtol, atol = tolerance(dtype, scale)
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol,
                               err_msg=what)


class Reference:
    """Each backend operation as a plain float64 formula, written for clarity, not speed."""

    @staticmethod
    def pixels_to_float(pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float64) / 255.0 if pixels.dtype == np.uint8 else pixels

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((a.shape[0], b.shape[1]))
        for k in range(a.shape[1]):  # a sum of outer products: independent of BLAS
            out += np.outer(a[:, k].astype(np.float64), b[k, :].astype(np.float64))
        return out

    @staticmethod
    def bias_relu(z: np.ndarray, bias: np.ndarray) -> np.ndarray:
        s = z.astype(np.float64) + bias
        return np.where(s > 0, s, 0.0)

    @staticmethod
    def softmax(logits: np.ndarray) -> np.ndarray:
        z = logits.astype(np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    @staticmethod
    def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
        z = logits.astype(np.float64)
        top = z.max(axis=1)
        log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))

    @staticmethod
    def cross_entropy_backward(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        onehot = np.eye(logits.shape[1])[labels]
        return (Reference.softmax(logits) - onehot) / len(labels)
