"""The step and epoch engine: a model, its optimiser and the data on its backend, and
:meth:`Trainer.run_epoch`, the loop that :func:`nnscratch.train`, ``nnscratch compare``, the
agreement suite and the benchmarks all run.

It knows nothing of run folders, resuming or Ctrl-C (:mod:`nnscratch.training` adds those); it
only trains, reads the losses back, and stops at the first that shows divergence.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import rng as _rng
from .augment import Distortion, EpochImages
from .backend import Backend
from .errors import ConfigError
from .inputs import class_count
from .model import MLP
from .optim import make_optimizer
from .settings import TrainSettings

if TYPE_CHECKING:
    from .callbacks import Callback
    from .data import MnistData

__all__ = ["Trainer", "EpochProgress", "LossDiverged", "DIVERGED_LOSS", "settings_from"]

#: A batch loss above this also counts as divergence, like NaN and infinity. Chance level is
#: ln 10 = 2.3; a loss of 10,000 means logits thousands apart, which only an exploding run
#: reaches, and whether such a run's loss overflows to infinity depends on how the backend
#: rounds (NumPy's float32 mean overflows where a float64 accumulator does not).
DIVERGED_LOSS = 1e4


def settings_from(settings: TrainSettings | None, options: dict[str, Any]) -> TrainSettings:
    """``settings`` (default: the defaults) with the setting keywords ``options`` applied."""
    if settings is None:
        return TrainSettings(**options) if options else TrainSettings()
    if not isinstance(settings, TrainSettings):
        raise ConfigError(f"settings must be a TrainSettings; got {type(settings).__name__}")
    return settings.replace(**options) if options else settings


# Epochs between evaluations of a full-batch run: evaluating 784-10-10 on the 10,000 test
# images took 8-11% of its full-batch step on the full MNIST (6.4 of 57 ms on numba, 8.1 of
# 97.5 ms on numpy), so every 10th epoch costs about 1% (issue 16).
FULL_BATCH_EVAL_EVERY = 10

#: The share of an augmented epoch's steps that a backend on the host's cores trains with one
#: BLAS thread fewer, leaving a core to the next epoch's distortions (made meanwhile in a
#: background thread). On two cores (benchmarks/NOTES.md, "Distortions"), one BLAS thread fewer
#: for the whole epoch made it 1.21x (numba) / 1.23x (numpy) as long as an epoch without
#: distortions: training on one BLAS thread is itself that much slower; for its first half,
#: 1.11x / 1.09x: the distortions (about 1.1 s) are done by then, in an epoch of about 2.5 s.
SHARED_PART = 0.5


@dataclass
class EpochProgress:
    """How far an epoch has got: ``step`` steps done, and the running sums over them (losses
    times batch rows, images seen, correct predictions, seconds spent training)."""

    step: int = 0
    loss_sum: float = 0.0
    seen: int = 0
    correct: int = 0
    seconds: float = 0.0

    def start_epoch(self) -> None:
        self.step, self.loss_sum, self.seen, self.correct, self.seconds = 0, 0.0, 0, 0, 0.0


class LossDiverged(ArithmeticError):
    """The loss of step ``step`` became ``value`` (NaN, infinite or above DIVERGED_LOSS);
    :func:`nnscratch.train` reports it as a TrainingDivergedError with the run's context."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"the loss became {value:.3g} at step {step}")
        self.step, self.value = step, value


class Trainer:
    """A model, its optimiser and the data on its backend (copied there once).

    Built from a :class:`~nnscratch.TrainSettings` (or its keywords; of them, the settings of
    a single step and ``validation`` matter here). Two trainers built with the same settings on
    different backends start from the same weights and yield the same batches in the same
    order: :mod:`nnscratch.compare` relies on it. With ``validation`` > 0 that fraction of the
    training images is held out (see :func:`nnscratch.rng.validation_split`) and :attr:`n`
    counts the rest. ``backend`` (a name or a Backend) overrides the settings' backend.
    """

    def __init__(self, data: MnistData, settings: TrainSettings | None = None, *,
                 backend: str | Backend | None = None, **options: Any) -> None:
        s = self.settings = settings_from(settings, options)
        if not all(hasattr(data, name) for name in ("x_train", "y_train", "x_test", "y_test")):
            raise ConfigError(f"Trainer needs an MnistData (see nnscratch.training_data); got "
                              f"{type(data).__name__}")
        self.optimizer = make_optimizer(s.optimizer, s.lr, momentum=s.momentum,
                                        nesterov=s.nesterov, weight_decay=s.weight_decay)
        init_rng, self.order_rng = _rng.generators(s.seed)
        # The data sizes the first and last layers: MNIST's 784 pixels and 10 digits, or others.
        self.model = MLP(s.hidden, backend=backend if backend is not None else s.backend,
                         dtype=s.dtype, init=s.init, seed=init_rng,
                         n_inputs=data.x_train.shape[1],
                         n_classes=class_count(data.y_train, data.y_test),
                         classes=getattr(data, "classes", None))
        self.model.inputs = getattr(data, "inputs", None)
        self.distortion = Distortion.from_settings(s)
        self.augmented: EpochImages | None = None
        self.epochs_done = 0  # whole epochs run: the next one is epoch epochs_done + 1
        self.place_data(data)

    def place_data(self, data: MnistData) -> None:
        """Put ``data`` on the backend as the data to train on (the model, the optimiser and
        the batch-order generator stay as they are: ``partial_fit`` trains on new data)."""
        s = self.settings
        b, dtype = self.model.backend, s.dtype
        x_train, y_train = data.x_train, data.y_train
        self.x_val = self.y_val = None
        if s.validation:
            train_rows, val_rows = _rng.validation_split(s.seed, len(x_train), s.validation)
            self.x_val = b.pixels_to_float(b.asarray(x_train[val_rows], copy=False), dtype)
            self.y_val = b.asarray(y_train[val_rows])
            x_train, y_train = x_train[train_rows], y_train[train_rows]
        self.n = len(x_train)
        self.y_train = b.asarray(y_train)
        self.batch_size = self.n if s.batch_size is None else min(s.batch_size, self.n)
        self.close()
        self._images_epoch: int | None = None  # the epoch whose distorted images are placed
        if self.distortion is not None:  # each epoch's images are placed as it starts
            self.augmented = self._epoch_images(x_train, data)
            self.x_train = self.x_full = None
        else:
            self.place_images(x_train)
        self.x_test = b.pixels_to_float(b.asarray(data.x_test, copy=False), dtype)
        self.y_test = b.asarray(data.y_test)

    def _epoch_images(self, x_train: Any, data: MnistData) -> EpochImages:
        s = self.settings
        if x_train.dtype != "uint8":
            raise ConfigError(f"--augment {s.augment} distorts images of uint8 pixels; the "
                              f"training data ({data.source}) are {x_train.dtype} features")
        side = math.isqrt(x_train.shape[1])
        if side * side != x_train.shape[1]:
            raise ConfigError(f"--augment {s.augment} distorts square images; the training "
                              f"data ({data.source}) have {x_train.shape[1]} features a row, "
                              f"not a square number of pixels")
        return EpochImages(x_train, self.distortion, s.seed, last=s.epochs)

    def place_images(self, x_train: Any) -> None:
        """Put the training images ``x_train`` (host rows, in the order of :attr:`y_train`)
        on the backend: an augmented run places each epoch's distorted images."""
        b, dtype = self.model.backend, self.settings.dtype
        # Pixels travel as uint8 (a quarter of float32's bytes) and are scaled per batch.
        # Full batch: every step reads all images, so they are scaled once, not once per step
        # (scaling them block by block would cost about half a NumPy step, benchmarks/NOTES.md),
        # unless the backend reads the uint8 images faster than a float copy. The float copy is
        # then all the trainer keeps: the uint8 images it was made from are not copied.
        # Distorted images are the trainer's own: they are not copied.
        full = self.batch_size == self.n
        own = self.augmented is not None
        self.x_train = b.asarray(x_train, copy=not own and (not full or b.reads_pixels_directly))
        self.x_full = None
        if full:
            self.x_full = (self.x_train if b.reads_pixels_directly
                           else b.pixels_to_float(self.x_train, dtype))

    def close(self) -> None:
        """Stop making distorted images ahead, if any are being made."""
        if getattr(self, "augmented", None) is not None:
            self.augmented.close()

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    @property
    def eval_every(self) -> int:
        """Every how many epochs the held-out images are evaluated: the setting, else every
        epoch, or every :data:`FULL_BATCH_EVAL_EVERY` when an epoch is one full-batch step
        (there evaluating the test set would cost a large part of each step)."""
        if self.settings.eval_every is not None:
            return self.settings.eval_every
        return FULL_BATCH_EVAL_EVERY if self.steps_per_epoch == 1 else 1

    def evaluates(self, epoch: int) -> bool:
        """Whether the held-out images are evaluated after ``epoch`` (always after the last)."""
        return epoch % self.eval_every == 0 or epoch == self.settings.epochs

    def batches(self, start: int = 0, epoch: int | None = None) -> Iterator[tuple[Any, Any]]:
        """One epoch's batches as backend arrays: images (n, 784) and integer labels (n,). The
        images are floats, or the uint8 pixels for a full batch on a backend that
        :attr:`~nnscratch.Backend.reads_pixels_directly`; the model takes either.

        The epoch's order is drawn whole even when ``start`` (0-based) skips its first
        batches, so the batch-order generator advances exactly as in a whole epoch. An
        augmented run trains on epoch ``epoch``'s distorted images (default: the one after
        :attr:`epochs_done`).
        """
        b = self.model.backend
        if self.augmented is not None:
            epoch = self.epochs_done + 1 if epoch is None else epoch
            if self._images_epoch != epoch:
                self.place_images(self.augmented.get(epoch))
                self._images_epoch = epoch
        if self.x_full is not None:
            if start == 0:
                yield self.x_full, self.y_train
            return
        order = b.asarray(_rng.batch_order(self.order_rng, self.n))
        for begin in range(start * self.batch_size, self.n, self.batch_size):
            rows = order[begin:begin + self.batch_size]
            yield (b.pixels_to_float(self.x_train, self.model.dtype, rows=rows),
                   b.take_rows(self.y_train, rows))

    def step(self, x: Any, y: Any) -> tuple[Any, Any]:
        """One update; the batch's loss and correct count, as 0-d backend arrays."""
        return self.model.fit_batch(x, y, self.optimizer)

    def run_epoch(self, progress: EpochProgress | None = None, *, epoch: int | None = None,
                  callbacks: Sequence[Callback] = (),
                  stop: Callable[[], bool] | None = None) -> EpochProgress:
        """Train one epoch, or its rest after ``progress.step`` steps; returns ``progress``
        (a new one by default) with its running sums updated.

        The losses are read back every :attr:`~nnscratch.Backend.loss_check_interval` steps
        and at the end; the first that is NaN, infinite or above :data:`DIVERGED_LOSS` raises
        :class:`LossDiverged` naming its step. ``callbacks`` get ``on_loss`` after each read
        and ``on_step`` after each step. ``stop`` is asked after every step: when it answers
        True, the losses are checked and the epoch ends there (``progress.step`` then is less
        than :attr:`steps_per_epoch`). ``epoch`` (1-based; default: the one after
        :attr:`epochs_done`) chooses an augmented run's distorted images; while the next
        epoch's are made in the background, a backend on the host's cores trains the first
        :data:`SHARED_PART` of the epoch's steps with one BLAS thread fewer
        (:meth:`~nnscratch.augment.EpochImages.cores_shared`).
        """
        progress = EpochProgress() if progress is None else progress
        b = self.model.backend
        started = time.perf_counter()
        epoch = self.epochs_done + 1 if epoch is None else epoch
        batches = self.batches(start=progress.step, epoch=epoch)
        first = next(batches, None)  # an augmented run's images for the epoch are placed now
        # Steps up to `shared` leave a core to the next epoch's distortions (a fixed share of
        # the epoch, not "until they are ready": the bits depend on BLAS's thread count).
        shared = math.ceil(self.steps_per_epoch * SHARED_PART)
        with contextlib.ExitStack() as context:
            if self.augmented is not None and b.host_cores and progress.step < shared:
                context.enter_context(self.augmented.cores_shared())
            correct = self._steps(itertools.chain([] if first is None else [first], batches),
                                  progress, callbacks, stop, release=(shared, context.close))
        b.synchronize()
        progress.seconds += time.perf_counter() - started
        progress.correct += int(b.to_numpy(correct))
        if progress.step == self.steps_per_epoch:
            self.epochs_done = epoch
        return progress

    def _steps(self, batches: Iterator[tuple[Any, Any]], progress: EpochProgress,
               callbacks: Sequence[Callback], stop: Callable[[], bool] | None,
               release: tuple[int, Callable[[], None]]) -> Any:
        """The steps of :meth:`run_epoch`; the sum of their correct counts (on the backend).
        ``release``: after that step, call that."""
        b = self.model.backend
        pending, correct = [], 0
        for step, (x, y) in enumerate(batches, start=progress.step + 1):
            loss, right = self.step(x, y)
            correct = correct + right  # summed on the backend: no waiting for it
            pending.append((step, loss, int(y.shape[0])))
            stopping = stop is not None and stop()  # asked once: a signal may come any moment
            if stopping or len(pending) >= b.loss_check_interval or step == self.steps_per_epoch:
                self._check_losses(pending, progress, callbacks)
                pending = []
            progress.step = step
            if step == release[0]:
                release[1]()
            for cb in callbacks:
                cb.on_step(step)
            if stopping:
                break
        return correct

    def _check_losses(self, pending: list[tuple[int, Any, int]], progress: EpochProgress,
                      callbacks: Sequence[Callback]) -> None:
        """Read the pending steps' losses back; stop at the first that shows divergence."""
        to_host = self.model.backend.to_numpy
        for step, loss, n in pending:
            value = float(to_host(loss))
            if not value <= DIVERGED_LOSS:  # NaN fails every comparison
                raise LossDiverged(step, value)
            progress.loss_sum += value * n
            progress.seen += n
        for cb in callbacks:
            cb.on_loss(pending[-1][0], progress.seen, progress.loss_sum / progress.seen)

    def evaluate_test(self) -> dict[str, float]:
        """Accuracy and loss on the test set (a loss that overflows is returned as it is: the
        training loop reports it as divergence)."""
        return self.model.evaluate_arrays(self.x_test, self.y_test, widen=False)

    def evaluate_validation(self) -> dict[str, float] | None:
        """Accuracy and loss on the held-out validation images; None without a split."""
        if self.x_val is None:
            return None
        return self.model.evaluate_arrays(self.x_val, self.y_val, widen=False)
