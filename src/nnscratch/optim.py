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
from .settings import (EPOCHS_OR_NONE, FACTOR, FRACTION, LEARNING_RATE, NON_NEGATIVE,
                       OPTIMIZERS, POSITIVE, SCHEDULE, SCHEDULES, check_lr_min,
                       check_optimizer_combination)

__all__ = ["SGD", "Adam", "LRSchedule", "OPTIMIZERS", "SCHEDULES", "make_optimizer"]


class _Optimizer:
    """What SGD and Adam share: the learning rate, weight decay and per-parameter state."""

    name = ""
    slots: tuple[str, ...] = ()  # the names of the per-parameter state arrays

    def __init__(self, lr: float, weight_decay: float) -> None:
        self.lr = LEARNING_RATE.check("lr", lr)
        self.weight_decay = NON_NEGATIVE.check("weight_decay", weight_decay)
        self.buffers: dict[str, dict[str, Any]] = {slot: {} for slot in self.slots}

    @property
    def active_slots(self) -> tuple[str, ...]:
        """The slots this optimiser fills once it has taken a step (its checkpoint holds them)."""
        return self.slots

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
        self.momentum = FRACTION.check("momentum", momentum)
        check_optimizer_combination("sgd", self.momentum, nesterov)
        self.nesterov = bool(nesterov)

    @property
    def active_slots(self) -> tuple[str, ...]:
        return self.slots if self.momentum else ()  # plain SGD keeps no velocity

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
        self.beta1 = FRACTION.check("beta1", beta1)
        self.beta2 = FRACTION.check("beta2", beta2)
        self.eps = POSITIVE.check("eps", eps)
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
        check_optimizer_combination(name, momentum, nesterov)
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
        LEARNING_RATE.check("lr", self.lr)
        SCHEDULE.check("schedule", self.kind)
        EPOCHS_OR_NONE.check("lr_step", self.step_size)
        FACTOR.check("lr_gamma", self.gamma)
        NON_NEGATIVE.check("lr_min", self.min_lr)
        check_lr_min(self.lr, self.min_lr)

    def at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch``."""
        if self.kind == "step":
            size = self.step_size or max(1, self.epochs // 3)
            return self.lr * self.gamma ** ((epoch - 1) // size)
        if self.kind == "cosine":
            fraction = (epoch - 1) / self.epochs
            return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * fraction)) / 2
        return self.lr
