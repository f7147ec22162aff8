"""What a training run tells the outside: per-epoch statistics, callback hooks, and the progress
printer (a line per epoch, with a tqdm bar in a terminal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from .errors import ConfigError

__all__ = ["EpochStats", "Callback", "ProgressPrinter", "format_epoch", "history_as_dicts",
           "make_callbacks"]


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did. ``loss`` and ``train_accuracy`` are running figures: the mean over
    the epoch's batches, each measured just before its update. ``seconds`` is the training time
    alone; the evaluations after it are not counted. ``lr`` is the epoch's learning rate;
    ``val_loss`` and ``val_accuracy`` are None without a validation split; the test and
    validation figures are None for an epoch after which they were not evaluated (see
    ``eval_every``)."""

    epoch: int
    loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float
    lr: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None


def history_as_dicts(history: Sequence[EpochStats]) -> list[dict[str, Any]]:
    """The history as plain dicts (for JSON or CSV)."""
    return [asdict(stats) for stats in history]


class Callback:
    """Hooks the training loop calls; subclass and override what you need."""

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """Before the first step of ``epoch`` (1-based) of ``epochs``, which has ``steps``."""

    def on_step(self, step: int) -> None:
        """After step ``step`` (1-based) of the current epoch."""

    def on_loss(self, step: int, seen: int, running_loss: float) -> None:
        """After the losses up to step ``step`` were read back and checked: ``seen`` images of
        this epoch so far, and their mean loss. Every step on CPU backends; every
        :attr:`~nnscratch.Backend.loss_check_interval` steps on backends that set more."""

    def on_epoch_end(self, stats: EpochStats) -> None:
        """After the epoch and its evaluations."""

    def on_train_end(self) -> None:
        """When training stops, finished or not (interrupted, diverged)."""


class _FunctionCallback(Callback):
    def __init__(self, function: Callable[[EpochStats], None]) -> None:
        self.function = function

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.function(stats)


def make_callbacks(progress: bool | None, callback: Any) -> list[Callback]:
    """The callbacks of one run: a :class:`ProgressPrinter` on stderr when ``progress`` (None:
    when stderr is a terminal), then ``callback`` — a Callback, a function of each epoch's
    :class:`EpochStats`, or a list of them."""
    if progress is None:
        progress = _is_terminal(sys.stderr)
    if not isinstance(progress, bool):
        raise ConfigError(f"progress must be True, False or None; got {progress!r:.40}")
    callbacks: list[Callback] = [ProgressPrinter(sys.stderr)] if progress else []
    for cb in callback if isinstance(callback, (list, tuple)) else [callback]:
        if cb is not None and not (isinstance(cb, Callback) or callable(cb)):
            raise ConfigError(f"callback must be a Callback, a function of each epoch's "
                              f"EpochStats, or a list of them; got {type(cb).__name__}")
        if cb is not None:
            callbacks.append(cb if isinstance(cb, Callback) else _FunctionCallback(cb))
    return callbacks


def format_epoch(stats: EpochStats, epochs: int) -> str:
    """One line that reports an epoch."""
    width = len(str(epochs))
    val = ("" if stats.val_accuracy is None else
           f"val loss {stats.val_loss:.4f}  val acc {stats.val_accuracy:6.2%}  ")
    lr = "" if stats.lr is None else f"lr {stats.lr:.3g}  "
    test = ("" if stats.test_accuracy is None else
            f"test loss {stats.test_loss:.4f}  test acc {stats.test_accuracy:6.2%}  ")
    return (f"epoch {stats.epoch:{width}d}/{epochs}  loss {stats.loss:.4f}  "
            f"train acc {stats.train_accuracy:6.2%}  {val}{test}{lr}{stats.seconds:6.2f}s")


class ProgressPrinter(Callback):
    """Prints a line per epoch (every ``every``-th, and always the first and last) to
    ``stream``. In a terminal it also shows a progress bar (tqdm) while an epoch runs, with the
    running loss and the images per second, redrawn at most every ``refresh`` seconds;
    elsewhere (a file, a pipe) only the lines."""

    def __init__(self, stream: TextIO | None = None, every: int = 1,
                 refresh: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.refresh = refresh
        self.live = _is_terminal(self.stream)
        self._epochs = 0
        self._bar: Any = None
        self._started = 0.0

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self._epochs = epochs
        if self.live and steps > 1:
            from tqdm import tqdm  # only when a bar is drawn: importing nnscratch stays light

            self._bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", file=self.stream,
                             leave=False, dynamic_ncols=True, mininterval=self.refresh, unit="step",
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} "
                                        "[{elapsed}<{remaining}{postfix}]")
            self._started = time.perf_counter()

    def on_step(self, step: int) -> None:
        if self._bar is not None:
            self._bar.update(step - self._bar.n)

    def on_loss(self, step: int, seen: int, running_loss: float) -> None:
        if self._bar is not None:
            rate = seen / max(time.perf_counter() - self._started, 1e-9)
            self._bar.set_postfix_str(f"loss {running_loss:.4f}, {rate:,.0f} img/s",
                                      refresh=False)

    def on_epoch_end(self, stats: EpochStats) -> None:
        self.on_train_end()
        if stats.epoch % self.every == 0 or stats.epoch in (1, self._epochs):
            self.stream.write(format_epoch(stats, self._epochs) + "\n")
        self.stream.flush()

    def on_train_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
