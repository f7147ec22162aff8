"""Optimisers: how gradients become parameter updates, written against the backend interface."""

from __future__ import annotations

import math
from typing import Any

from .backend import Backend
from .errors import ConfigError

__all__ = ["SGD"]


class SGD:
    """Stochastic gradient descent, with optional (heavy-ball) momentum.

    With momentum ``m`` each parameter keeps a velocity ``v = m * v + grad`` and moves by
    ``-lr * v`` (PyTorch's form); with ``m = 0`` this is plain ``param -= lr * grad``.
    """

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ConfigError(f"the learning rate must be a positive number; got {lr!r}")
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum < 1.0):
            raise ConfigError(f"momentum must be at least 0 and below 1; got {momentum!r}")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.velocities: dict[str, Any] = {}

    def step(self, backend: Backend, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """Update every array in ``params`` in place from ``grads`` (which may be overwritten)."""
        for name, param in params.items():
            velocity = None
            if self.momentum:
                velocity = self.velocities.get(name)
                if velocity is None:
                    velocity = self.velocities[name] = backend.zeros(param.shape, param.dtype)
            backend.sgd_update(param, grads[name], self.lr, velocity=velocity,
                               momentum=self.momentum)
