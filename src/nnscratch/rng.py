"""All randomness: initial weights and batch order, drawn on the host.

Every backend starts from the same NumPy-drawn weights and sees the same batches in the same
order; that is what lets the agreement suite compare whole training runs step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigError

__all__ = ["INIT_SCHEMES", "generators", "init_params", "batch_order"]

INIT_SCHEMES = ("he", "xavier", "seed")


def generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators from one seed: one for the weights, one for batch order.

    Separate streams mean that changing the architecture does not change the batch order.
    """
    init_rng, order_rng = np.random.default_rng(seed).spawn(2)
    return init_rng, order_rng


def _weights(scheme: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    if scheme == "he":  # suits ReLU: keeps the activations' variance roughly constant
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
    if scheme == "xavier":  # Glorot's uniform scheme
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))
    if scheme == "seed":  # the blog posts': small positive weights
        return rng.random((fan_in, fan_out)) * 0.01
    raise ConfigError(f"unknown init scheme {scheme!r}: choose one of {', '.join(INIT_SCHEMES)}")


def init_params(layer_sizes: Sequence[int], scheme: str,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Initial parameters ``W1, b1, W2, b2, ...`` as float64 host arrays; biases are zero.

    Drawn in float64 whatever the model's dtype, so float32 and float64 models start from the
    same weights, rounded.
    """
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]), start=1):
        params[f"W{i}"] = _weights(scheme, fan_in, fan_out, rng)
        params[f"b{i}"] = np.zeros(fan_out)
    return params


def batch_order(rng: np.random.Generator, n: int) -> np.ndarray:
    """A fresh permutation of ``range(n)``: the order of one epoch's samples."""
    return rng.permutation(n)
