"""All randomness: initial weights and batch order, drawn on the host.

Every backend starts from the same NumPy-drawn weights and sees the same batches in the same
order; that is what lets the agreement suite compare whole training runs step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigError
from .settings import INIT_SCHEMES

__all__ = ["INIT_SCHEMES", "generators", "init_params", "batch_order", "validation_split"]



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


def validation_split(seed: int, n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``(train, validation)`` of a training set of ``n`` images when ``fraction`` of
    them (rounded, at least one) are held out for validation, both sorted.

    Drawn from a third stream of ``seed``, so holding out data changes neither the initial
    weights nor how the batch order is drawn.
    """
    if not (isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
            and 0 < fraction < 1):
        raise ConfigError(f"validation must be a fraction above 0 and below 1; got {fraction!r}")
    held_out = max(1, round(n * fraction))
    if held_out >= n:
        raise ConfigError(f"validation {fraction:g} of {n} training images leaves none to train on")
    split_rng = np.random.default_rng(seed).spawn(3)[2]
    rows = split_rng.permutation(n)
    return np.sort(rows[held_out:]), np.sort(rows[:held_out])
