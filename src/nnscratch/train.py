"""The training loop: epochs, shuffled mini-batches, metrics and progress."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import rng as _rng
from .backend import Backend
from .data import MnistData, as_labels, as_pixels, load_mnist
from .errors import ConfigError, TrainingDivergedError
from .model import MLP
from .optim import SGD

__all__ = ["train", "Trainer", "TrainResult", "EpochStats", "Callback", "ProgressPrinter"]


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did. ``loss`` and ``train_accuracy`` are running figures: the mean over
    the epoch's batches, each measured just before its update. ``seconds`` is the training time
    alone; the test evaluation after it is not counted."""

    epoch: int
    loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    """The trained model, its per-epoch history, the settings used and where the data came from."""

    model: MLP
    history: list[EpochStats]
    settings: dict[str, Any]
    data_source: str
    data_is_sample: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float:
        """The test accuracy after the last epoch."""
        return self.history[-1].test_accuracy

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model with its training settings, data source and test accuracy."""
        return self.model.save(path, training=self.settings, data_source=self.data_source,
                               test_accuracy=self.test_accuracy)


class Callback:
    """Hooks the training loop calls; subclass and override what you need."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """Before the first step of ``epoch`` (1-based) of ``epochs``, which has ``steps``."""

    def on_step(self, step: int) -> None:
        """After step ``step`` (1-based) of the current epoch."""

    def on_epoch_end(self, stats: EpochStats) -> None:
        """After the epoch and its test evaluation."""


class _FunctionCallback(Callback):
    def __init__(self, function: Callable[[EpochStats], None]) -> None:
        self.function = function

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.function(stats)


def format_epoch(stats: EpochStats, epochs: int) -> str:
    """One line that reports an epoch."""
    width = len(str(epochs))
    return (f"epoch {stats.epoch:{width}d}/{epochs}  loss {stats.loss:.4f}  "
            f"train acc {stats.train_accuracy:6.2%}  test loss {stats.test_loss:.4f}  "
            f"test acc {stats.test_accuracy:6.2%}  {stats.seconds:6.2f}s")


class ProgressPrinter(Callback):
    """Prints a line per epoch (every ``every``-th, and always the last) to ``stream``; in a
    terminal it also redraws a bar while an epoch runs, at most ten times a second."""

    def __init__(self, stream: TextIO | None = None, every: int = 1) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.live = _is_terminal(self.stream)
        self._epoch = self._epochs = self._steps = 0
        self._drawn_at = 0.0

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self._epoch, self._epochs, self._steps = epoch, epochs, steps

    def on_step(self, step: int) -> None:
        now = time.monotonic()
        if self.live and self._steps > 1 and now - self._drawn_at > 0.1:
            self._drawn_at = now
            filled = 30 * step // self._steps
            self.stream.write(f"\repoch {self._epoch}/{self._epochs} "
                              f"[{'#' * filled}{'.' * (30 - filled)}] {step}/{self._steps}")
            self.stream.flush()

    def on_epoch_end(self, stats: EpochStats) -> None:
        if self.live:
            self.stream.write("\r\033[K")
        if stats.epoch % self.every == 0 or stats.epoch in (1, self._epochs):
            self.stream.write(format_epoch(stats, self._epochs) + "\n")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _check_settings(epochs: int, batch_size: int | None) -> None:
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ConfigError(f"epochs must be a positive integer; got {epochs!r}")
    if batch_size is not None and not (
            isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1):
        raise ConfigError(f"batch_size must be a positive integer or None (full batch); "
                          f"got {batch_size!r}")


def _as_data(data: Any) -> MnistData:
    """Accept a path (or None: the default resolution order), an MnistData, or a tuple
    ``(x_train, y_train, x_test, y_test)`` of host arrays."""
    if data is None or isinstance(data, (str, os.PathLike)):
        return load_mnist(data)
    if isinstance(data, MnistData):
        return data
    if isinstance(data, tuple) and len(data) == 4:
        x_train, x_test = as_pixels(data[0]), as_pixels(data[2])
        return MnistData(x_train, as_labels(data[1], len(x_train)), x_test,
                         as_labels(data[3], len(x_test)), "arrays given to train()", False)
    raise ConfigError("data must be a folder path, an MnistData, or a tuple "
                      f"(x_train, y_train, x_test, y_test); got {type(data).__name__}")


def _callbacks(progress: bool | None, callback: Any) -> list[Callback]:
    if progress is None:
        progress = _is_terminal(sys.stderr)
    callbacks: list[Callback] = [ProgressPrinter(sys.stderr)] if progress else []
    for cb in callback if isinstance(callback, (list, tuple)) else [callback]:
        if cb is not None:
            callbacks.append(cb if isinstance(cb, Callback) else _FunctionCallback(cb))
    return callbacks


def train(data: Any = None, *, backend: str | Backend | None = None,
          hidden: Sequence[int] = (128,), epochs: int = 5, batch_size: int | None = 128,
          lr: float = 0.1, momentum: float = 0.0, seed: int = 0, dtype: str = "float32",
          init: str = "he", progress: bool | None = None,
          callback: Any = None) -> TrainResult:
    """Train a classifier of MNIST digits and return it with its history.

    ``data``: a folder of MNIST IDX files, an :class:`~nnscratch.data.MnistData`, a tuple
    ``(x_train, y_train, x_test, y_test)``, or None to take the data from ``NNSCRATCH_DATA``,
    the user cache or, failing those, the small sample bundled with nnscratch.
    ``backend``: a name (``"numpy"``, ``"numba"``, ``"cupy"``...) or None for the current
    default (see :func:`~nnscratch.get_backend`). ``hidden``: the hidden layers' sizes.
    ``batch_size=None`` is full-batch gradient descent: one step per epoch on all the images.
    ``momentum`` > 0 adds heavy-ball momentum to SGD. ``init``: ``"he"``, ``"xavier"`` or
    ``"seed"``. ``progress``: print progress to stderr (default: only when it is a terminal).
    ``callback``: a :class:`Callback`, a function called with each :class:`EpochStats`, or a
    list of them.

    The same seed on the same backend gives bit-identical parameters. Raises
    :class:`~nnscratch.errors.TrainingDivergedError` if the loss becomes NaN or infinite.
    """
    _check_settings(epochs, batch_size)
    mnist = _as_data(data)
    trainer = Trainer(mnist, backend=backend, hidden=hidden, batch_size=batch_size, lr=lr,
                      momentum=momentum, seed=seed, dtype=dtype, init=init)
    settings = {"hidden": list(hidden), "epochs": epochs, "batch_size": batch_size, "lr": lr,
                "momentum": momentum, "seed": seed, "dtype": dtype, "init": init,
                "backend": trainer.model.backend.name}
    history = []
    callbacks = _callbacks(progress, callback)
    with warnings.catch_warnings():
        # A diverging run overflows; it is detected and reported as TrainingDivergedError, so
        # the array library's overflow warnings would only repeat it less clearly.
        warnings.simplefilter("ignore", RuntimeWarning)
        for epoch in range(1, epochs + 1):
            stats = trainer.run_epoch(epoch, epochs, callbacks)
            history.append(stats)
            for cb in callbacks:
                cb.on_epoch_end(stats)
    return TrainResult(trainer.model, history, settings, mnist.source, mnist.is_sample)


class Trainer:
    """A model, its optimiser and the data on its backend (copied there once).

    Two trainers built with the same settings on different backends start from the same
    weights and yield the same batches in the same order: :mod:`nnscratch.compare` relies on it.
    """

    def __init__(self, mnist: MnistData, *, backend: str | Backend | None = None,
                 hidden: Sequence[int] = (128,), batch_size: int | None = 128, lr: float = 0.1,
                 momentum: float = 0.0, seed: int = 0, dtype: str = "float32",
                 init: str = "he") -> None:
        _check_settings(1, batch_size)
        self.optimizer = SGD(lr, momentum)
        init_rng, self.order_rng = _rng.generators(seed)
        self.model = MLP(hidden, backend=backend, dtype=dtype, init=init, seed=init_rng)
        b = self.model.backend
        self.n = len(mnist.x_train)
        self.batch_size = self.n if batch_size is None else min(batch_size, self.n)
        # Pixels travel as uint8 (a quarter of float32's bytes) and are scaled per batch.
        self.x_train = b.asarray(mnist.x_train)
        self.y_train = b.asarray(mnist.y_train)
        # Full batch: every step reads all images, so scale them once, not once per step.
        self.x_full = b.pixels_to_float(self.x_train, dtype) if self.batch_size == self.n else None
        self.x_test = b.pixels_to_float(b.asarray(mnist.x_test), dtype)
        self.y_test = b.asarray(mnist.y_test)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    def batches(self) -> Iterator[tuple[Any, Any]]:
        """One epoch's batches as backend arrays: floats (n, 784) and integer labels (n,)."""
        b = self.model.backend
        if self.x_full is not None:
            yield self.x_full, self.y_train
            return
        order = b.asarray(_rng.batch_order(self.order_rng, self.n))
        for start in range(0, self.n, self.batch_size):
            rows = order[start:start + self.batch_size]
            yield (b.pixels_to_float(self.x_train, self.model.dtype, rows=rows),
                   b.take_rows(self.y_train, rows))

    def step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """One update; the batch's loss and correct count, as 0-d backend arrays."""
        return self.model.fit_batch(x, y, self.optimizer)

    def evaluate_test(self) -> dict[str, float]:
        """Accuracy and loss on the test set."""
        return self.model.evaluate_arrays(self.x_test, self.y_test)

    def run_epoch(self, epoch: int, epochs: int, callbacks: Sequence[Callback] = ()) -> EpochStats:
        """Train for one epoch, then evaluate on the test set."""
        b = self.model.backend
        for cb in callbacks:
            cb.on_epoch_start(epoch, epochs, self.steps_per_epoch)
        started = time.perf_counter()
        loss_sum, correct = 0.0, 0  # accumulated on the backend: no waiting inside the epoch
        for step, (x, y) in enumerate(self.batches(), start=1):
            loss, right = self.step(x, y)
            loss_sum, correct = loss_sum + loss * y.shape[0], correct + right
            for cb in callbacks:
                cb.on_step(step)
        b.synchronize()
        seconds = time.perf_counter() - started
        mean_loss = float(b.to_numpy(loss_sum)) / self.n
        if not math.isfinite(mean_loss):
            raise TrainingDivergedError(
                f"training diverged in epoch {epoch}: the mean loss became {mean_loss}; "
                f"the learning rate ({self.optimizer.lr:g}) is probably too large")
        test = self.evaluate_test()
        return EpochStats(epoch, mean_loss, int(b.to_numpy(correct)) / self.n, test["loss"],
                          test["accuracy"], seconds)


def history_as_dicts(history: Sequence[EpochStats]) -> list[dict[str, Any]]:
    """The history as plain dicts (for JSON or CSV)."""
    return [asdict(stats) for stats in history]
