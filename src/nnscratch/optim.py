"""Optimisers and learning-rate schedules: how gradients become parameter updates.

The update math goes through the backend (:meth:`~nnscratch.Backend.sgd_update`,
:meth:`~nnscratch.Backend.adam_update`), so every backend gets every optimiser. An optimiser's
state (velocities, moments, step count) can be taken out as host arrays and put back, which is
what checkpoints store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .backend import Backend
from .errors import ConfigError

__all__ = ["SGD", "Adam", "LRSchedule", "OPTIMIZERS", "SCHEDULES", "make_optimizer"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "cosine")  # or None: a constant learning rate


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_lr(lr: Any) -> float:
    if not (_is_number(lr) and lr > 0):
        raise ConfigError(f"the learning rate must be a positive number; got {lr!r}")
    return float(lr)


def _check_fraction(value: Any, what: str) -> float:
    if not (_is_number(value) and 0.0 <= value < 1.0):
        raise ConfigError(f"{what} must be at least 0 and below 1; got {value!r}")
    return float(value)


def _check_weight_decay(value: Any) -> float:
    if not (_is_number(value) and value >= 0):
        raise ConfigError(f"weight_decay must be a number of at least 0; got {value!r}")
    return float(value)


class _Optimizer:
    """What SGD and Adam share: the learning rate, weight decay and per-parameter state."""

    name = ""
    slots: tuple[str, ...] = ()  # the names of the per-parameter state arrays

    def __init__(self, lr: float, weight_decay: float) -> None:
        self.lr = _check_lr(lr)
        self.weight_decay = _check_weight_decay(weight_decay)
        self.buffers: dict[str, dict[str, Any]] = {slot: {} for slot in self.slots}

    def _decay(self, name: str) -> float:
        # L2 on the weight matrices only: decaying the biases only pulls the units' thresholds
        # towards zero, which regularises nothing.
        return self.weight_decay if name.startswith("W") else 0.0

    def _buffer(self, backend: Backend, slot: str, name: str, param: Any) -> Any:
        buffers = self.buffers[slot]
        if name not in buffers:
            buffers[name] = backend.zeros(param.shape, param.dtype)
        return buffers[name]

    def state(self, backend: Backend) -> tuple[dict[str, Any], dict[str, Any]]:
        """The optimiser's state: host copies of its arrays, named ``slot.param`` (e.g.
        ``velocity.W1``), and its JSON-able scalars."""
        arrays = {f"{slot}.{name}": backend.to_numpy(a).copy()
                  for slot, buffers in self.buffers.items() for name, a in buffers.items()}
        return arrays, {}

    def load_state(self, backend: Backend, arrays: dict[str, Any], info: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned (arrays as host arrays, copied to ``backend``)."""
        for key, value in arrays.items():
            slot, _, name = key.partition(".")
            if slot not in self.buffers:
                raise ConfigError(f"optimiser state {key!r} does not belong to {self.name}")
            self.buffers[slot][name] = backend.asarray(value)


class SGD(_Optimizer):
    """Stochastic gradient descent, with optional momentum (heavy-ball or Nesterov) and L2
    weight decay on the weights.

    With momentum ``m`` each parameter keeps a velocity ``v = m * v + grad`` and moves by
    ``-lr * v``, or ``-lr * (grad + m * v)`` with Nesterov (PyTorch's forms); with ``m = 0``
    this is plain ``param -= lr * grad``. ``weight_decay`` adds ``weight_decay * W`` to the
    gradient of each weight matrix ``W`` (biases are not decayed).
    """

    name = "sgd"
    slots = ("velocity",)

    def __init__(self, lr: float, momentum: float = 0.0, *, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = _check_fraction(momentum, "momentum")
        if nesterov and not self.momentum:
            raise ConfigError("nesterov needs momentum above 0; got momentum 0")
        self.nesterov = bool(nesterov)

    def step(self, backend: Backend, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """Update every array in ``params`` in place from ``grads`` (which may be overwritten)."""
        for name, param in params.items():
            velocity = self._buffer(backend, "velocity", name, param) if self.momentum else None
            # The newer keywords go only where used: a backend written against the interface
            # before them still runs plain and heavy-ball SGD.
            extra: dict[str, Any] = {"nesterov": True} if self.nesterov else {}
            if self._decay(name):
                extra["weight_decay"] = self._decay(name)
            backend.sgd_update(param, grads[name], self.lr, velocity=velocity,
                               momentum=self.momentum, **extra)


class Adam(_Optimizer):
    """Adam: per-parameter step sizes from running moments of the gradient, with L2 weight
    decay added to the gradient of the weights (the original Adam's form, not AdamW's)."""

    name = "adam"
    slots = ("m", "v")

    def __init__(self, lr: float = 0.001, *, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.beta1 = _check_fraction(beta1, "beta1")
        self.beta2 = _check_fraction(beta2, "beta2")
        if not (_is_number(eps) and eps > 0):
            raise ConfigError(f"eps must be a positive number; got {eps!r}")
        self.eps = float(eps)
        self.steps = 0

    def step(self, backend: Backend, params: dict[str, Any], grads: dict[str, Any]) -> None:
        """Update every array in ``params`` in place from ``grads`` (which may be overwritten)."""
        self.steps += 1
        for name, param in params.items():
            backend.adam_update(param, grads[name], self._buffer(backend, "m", name, param),
                                self._buffer(backend, "v", name, param), self.lr,
                                step=self.steps, beta1=self.beta1, beta2=self.beta2,
                                eps=self.eps, weight_decay=self._decay(name))

    def state(self, backend: Backend) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, _ = super().state(backend)
        return arrays, {"steps": self.steps}

    def load_state(self, backend: Backend, arrays: dict[str, Any], info: dict[str, Any]) -> None:
        super().load_state(backend, arrays, info)
        self.steps = int(info["steps"])


def make_optimizer(name: str, lr: float, *, momentum: float = 0.0, nesterov: bool = False,
                   weight_decay: float = 0.0) -> SGD | Adam:
    """The optimiser called ``name`` (``"sgd"`` or ``"adam"``) with these settings."""
    if name == "sgd":
        return SGD(lr, momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "adam":
        if momentum or nesterov:
            raise ConfigError("momentum and nesterov are SGD settings; Adam keeps its own "
                              "running moments, so leave them out with optimizer 'adam'")
        return Adam(lr, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate of each epoch (1-based) of a run of ``epochs`` epochs.

    ``kind`` None keeps ``lr``; ``"step"`` multiplies it by ``gamma`` every ``step_size``
    epochs (default: a third of the epochs); ``"cosine"`` falls from ``lr`` in epoch 1 towards
    ``min_lr`` along half a cosine: ``min_lr + (lr - min_lr) * (1 + cos(pi * (e - 1) / epochs))
    / 2``.
    """

    lr: float
    epochs: int
    kind: str | None = None
    step_size: int | None = None
    gamma: float = 0.1
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if self.kind is not None and self.kind not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.kind!r}: choose one of "
                              f"{', '.join(SCHEDULES)} or None")
        if self.step_size is not None and not (
                isinstance(self.step_size, int) and not isinstance(self.step_size, bool)
                and self.step_size >= 1):
            raise ConfigError(f"lr_step must be a positive number of epochs; "
                              f"got {self.step_size!r}")
        if not (_is_number(self.gamma) and 0 < self.gamma <= 1):
            raise ConfigError(f"lr_gamma must be above 0 and at most 1; got {self.gamma!r}")
        if not (_is_number(self.min_lr) and 0 <= self.min_lr < self.lr):
            raise ConfigError(f"lr_min must be at least 0 and below the learning rate "
                              f"({self.lr:g}); got {self.min_lr!r}")

    def at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch``."""
        if self.kind == "step":
            size = self.step_size or max(1, self.epochs // 3)
            return self.lr * self.gamma ** ((epoch - 1) // size)
        if self.kind == "cosine":
            fraction = (epoch - 1) / self.epochs
            return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * fraction)) / 2
        return self.lr
