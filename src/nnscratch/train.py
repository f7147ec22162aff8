"""The training loop: epochs, shuffled mini-batches, optimisers and schedules, validation and
early stopping, metrics, progress, checkpoints, Ctrl-C and divergence."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import rng as _rng
from . import runs
from .backend import Backend
from .data import MnistData, as_labels, as_pixels, load_mnist
from .errors import ConfigError, RunFolderError, TrainingDivergedError
from .model import MLP
from .optim import LRSchedule, make_optimizer

__all__ = ["train", "Trainer", "TrainResult", "EpochStats", "Callback", "ProgressPrinter",
           "TrainingInterrupted"]


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did. ``loss`` and ``train_accuracy`` are running figures: the mean over
    the epoch's batches, each measured just before its update. ``seconds`` is the training time
    alone; the evaluations after it are not counted. ``lr`` is the epoch's learning rate;
    ``val_loss`` and ``val_accuracy`` are None without a validation split."""

    epoch: int
    loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    seconds: float
    lr: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass
class TrainResult:
    """The trained model, its per-epoch history, the settings used and where the data came from.

    With a validation split the model holds the parameters of ``best_epoch``, the epoch with
    the lowest validation loss; ``run_dir`` is the run folder when one was written.
    """

    model: MLP
    history: list[EpochStats]
    settings: dict[str, Any]
    data_source: str
    data_is_sample: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None
    run_dir: Path | None = None

    @property
    def final(self) -> EpochStats:
        """The stats of the epoch whose parameters the model holds."""
        return self.history[(self.best_epoch or len(self.history)) - 1]

    @property
    def test_accuracy(self) -> float:
        """The test accuracy of the model returned (after the last epoch, or the best one)."""
        return self.final.test_accuracy

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model with its training settings, data source and test accuracy."""
        return self.model.save(path, training=self.settings, data_source=self.data_source,
                               test_accuracy=self.test_accuracy)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped :func:`train`; a KeyboardInterrupt, so code that does not know it
    stops as for any Ctrl-C.

    The first Ctrl-C stops after the current step (``step`` of ``steps`` in ``epoch``) and
    writes the checkpoint; a second one stops at once (``at_once``) and leaves the last
    checkpoint written, if any. ``run_dir`` is the run folder (None without one) and
    ``checkpoint`` the checkpoint to resume from (None if there is none).
    """

    def __init__(self, epoch: int, step: int, steps: int, run_dir: Path | None,
                 checkpoint: Path | None, at_once: bool = False) -> None:
        self.epoch, self.step, self.steps, self.at_once = epoch, step, steps, at_once
        self.run_dir, self.checkpoint = run_dir, checkpoint
        if at_once:
            where = f"stopped at once by a second Ctrl-C in epoch {epoch}"
        elif step:
            where = f"interrupted in epoch {epoch} after step {step} of {steps}"
        else:
            where = f"interrupted before epoch {epoch}"
        super().__init__(where)


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


def format_epoch(stats: EpochStats, epochs: int) -> str:
    """One line that reports an epoch."""
    width = len(str(epochs))
    val = ("" if stats.val_accuracy is None else
           f"val loss {stats.val_loss:.4f}  val acc {stats.val_accuracy:6.2%}  ")
    lr = "" if stats.lr is None else f"lr {stats.lr:.3g}  "
    return (f"epoch {stats.epoch:{width}d}/{epochs}  loss {stats.loss:.4f}  "
            f"train acc {stats.train_accuracy:6.2%}  {val}test loss {stats.test_loss:.4f}  "
            f"test acc {stats.test_accuracy:6.2%}  {lr}{stats.seconds:6.2f}s")


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


def _check_settings(epochs: int, batch_size: int | None) -> None:
    if not (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1):
        raise ConfigError(f"epochs must be a positive integer; got {epochs!r}")
    if batch_size is not None and not (
            isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1):
        raise ConfigError(f"batch_size must be a positive integer or None (full batch); "
                          f"got {batch_size!r}")


def _check_patience(patience: int | None, validation: float) -> None:
    if patience is None:
        return
    if not (isinstance(patience, int) and not isinstance(patience, bool) and patience >= 1):
        raise ConfigError(f"patience must be a positive number of epochs or None; "
                          f"got {patience!r}")
    if not validation:
        raise ConfigError("patience needs a validation split to watch: set validation to a "
                          "fraction such as 0.1")


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


# --- train() ----------------------------------------------------------------------------------

#: A batch loss above this also counts as divergence, like NaN and infinity. Chance level is
#: ln 10 = 2.3; a loss of 10,000 means logits thousands apart, which only an exploding run
#: reaches, and whether such a run's loss overflows to infinity depends on how the backend
#: rounds (NumPy's float32 mean overflows where a float64 accumulator does not).
DIVERGED_LOSS = 1e4

#: The settings that define a run: stored in its config.json and restored by ``resume``.
SETTINGS = ("hidden", "epochs", "batch_size", "lr", "momentum", "seed", "dtype", "init",
            "optimizer", "nesterov", "weight_decay", "schedule", "lr_step", "lr_gamma", "lr_min",
            "validation", "patience")


def train(data: Any = None, *, backend: str | Backend | None = None,
          hidden: Sequence[int] = (128,), epochs: int = 5, batch_size: int | None = 128,
          lr: float = 0.1, momentum: float = 0.0, seed: int = 0, dtype: str = "float32",
          init: str = "he", progress: bool | None = None, callback: Any = None,
          optimizer: str = "sgd", nesterov: bool = False, weight_decay: float = 0.0,
          schedule: str | None = None, lr_step: int | None = None, lr_gamma: float = 0.1,
          lr_min: float = 0.0, validation: float = 0.0, patience: int | None = None,
          out: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None) -> TrainResult:
    """Train a classifier of MNIST digits and return it with its history.

    ``data``: a folder of MNIST IDX files, an :class:`~nnscratch.data.MnistData`, a tuple
    ``(x_train, y_train, x_test, y_test)``, or None to take the data from ``NNSCRATCH_DATA``,
    the user cache or, failing those, the small sample bundled with nnscratch.
    ``backend``: a name (``"numpy"``, ``"numba"``, ``"cupy"``...) or None for the current
    default (see :func:`~nnscratch.get_backend`). ``hidden``: the hidden layers' sizes.
    ``batch_size=None`` is full-batch gradient descent: one step per epoch on all the images.
    ``init``: ``"he"``, ``"xavier"`` or ``"seed"``.

    Learning: ``optimizer`` is ``"sgd"`` (with ``momentum`` > 0 heavy-ball momentum, or
    Nesterov's with ``nesterov=True``) or ``"adam"`` (``lr`` around 0.001).
    ``weight_decay`` adds L2 regularisation of the weights (not the biases). ``schedule``:
    None (constant ``lr``), ``"step"`` (multiply by ``lr_gamma`` every ``lr_step`` epochs,
    default a third of them) or ``"cosine"`` (from ``lr`` down towards ``lr_min``), one
    learning rate per epoch. ``validation``: the fraction of the training images held out to
    pick the best epoch (lowest validation loss), whose parameters the model ends with;
    ``patience``: stop after that many epochs without a better one.

    ``progress``: print progress to stderr (default: only when it is a terminal).
    ``callback``: a :class:`Callback`, a function called with each :class:`EpochStats`, or a
    list of them.

    ``out``: a path ending in ``.npz`` writes the model file there when training ends; any
    other path is a run folder (see :mod:`nnscratch.runs`): settings, metrics, a checkpoint
    after every epoch, the model, and a report. ``resume``: a run folder to continue from its
    checkpoint with its saved settings (setting keywords may be left out; one given must match
    the saved one); on the NumPy backend the result is bit-identical to an uninterrupted run.

    The same seed on the same backend gives bit-identical parameters. Raises
    :class:`~nnscratch.errors.TrainingDivergedError` naming the epoch and step when a batch's
    loss becomes NaN, infinite or larger than :data:`DIVERGED_LOSS` (a run folder keeps its
    last good checkpoint), and :class:`TrainingInterrupted` (a KeyboardInterrupt) on Ctrl-C:
    after the current step, once the checkpoint is written to the run folder if there is one;
    at once on a second Ctrl-C. The Ctrl-C handler is installed only while training runs.
    """
    # The keywords named in SETTINGS, as given: they define the run (config.json, resume).
    settings = {name: value for name, value in locals().items() if name in SETTINGS}
    settings["hidden"] = list(settings["hidden"])
    folder, config = None, None
    if resume is not None:
        if out is not None and Path(out) != Path(resume):
            raise ConfigError("give either out (a new run) or resume (an existing run), not both")
        folder = runs.open_run_folder(resume)
        config = runs.read_config(folder)
        settings = _resumed_settings(settings, config, folder)
        data = config.get("data") if data is None else data
        backend = backend or config["training"].get("backend")
    session = _Session(_as_data(data), settings, backend, _callbacks(progress, callback))
    if resume is not None:
        session.resume(folder, config)
    elif out is not None and not runs.is_model_path(out):
        session.start_run_folder(out, data)
    elif out is not None:
        runs.check_model_target(out)
    with warnings.catch_warnings():
        # A diverging run overflows; it is detected and reported as TrainingDivergedError, so
        # the array library's overflow warnings would only repeat it less clearly.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = session.run()
    if out is not None and runs.is_model_path(out):
        result.save(out)
    return result


def _train_defaults() -> dict[str, Any]:
    parameters = inspect.signature(train).parameters
    return {name: parameters[name].default for name in SETTINGS}


def _resumed_settings(given: dict[str, Any], config: dict[str, Any],
                      folder: Path) -> dict[str, Any]:
    """The saved settings of a run; a setting given that differs from its default and from the
    saved value is refused, since it would change the run being continued."""
    missing = [name for name in SETTINGS if name not in config.get("training", {})]
    if missing:
        raise RunFolderError(f"{folder / runs.CONFIG} lacks the setting(s) "
                             f"{', '.join(missing)}, so the run cannot be resumed")
    saved = {name: config["training"][name] for name in SETTINGS}
    defaults = _train_defaults()
    defaults["hidden"] = list(defaults["hidden"])
    for name, value in given.items():
        if value != defaults[name] and value != saved[name]:
            raise ConfigError(f"{name} {value!r} differs from the {saved[name]!r} of the run in "
                              f"{folder}: a resumed run keeps the settings it started with")
    return saved


@contextlib.contextmanager
def _stop_on_sigint() -> Iterator[dict[str, bool]]:
    """While training, the first Ctrl-C (SIGINT) only sets a flag, which the loop checks after
    every step; a second one raises KeyboardInterrupt at once. The previous handler comes back
    afterwards. Outside the main thread signals cannot be caught, and Ctrl-C acts as usual."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def request_stop(signum: int, frame: Any) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


@dataclass
class _Position:
    """Where a run stands: with the parameters and the optimiser's state, all it takes to
    continue it exactly. ``step`` steps of ``epoch`` are done; ``order_state`` is the batch-order
    generator's state at the start of ``epoch``, so its batch order can be drawn again."""

    epoch: int = 1
    step: int = 0
    order_state: dict[str, Any] | None = None
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    epochs_without_improvement: int = 0
    stopped_early: bool = False

    def start_epoch(self) -> None:
        self.step, self.loss_sum, self.correct, self.seen, self.seconds = 0, 0.0, 0, 0, 0.0

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["history"] = [asdict(stats) for stats in self.history]
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> _Position:
        position = cls(**{**record, "history": []})
        position.history = [EpochStats(**stats) for stats in record["history"]]
        return position


class _Session:
    """One call of :func:`train`: the trainer, the epoch loop and, if any, the run folder."""

    def __init__(self, mnist: MnistData, settings: dict[str, Any],
                 backend: str | Backend | None, callbacks: list[Callback]) -> None:
        s = settings
        _check_settings(s["epochs"], s["batch_size"])
        _check_patience(s["patience"], s["validation"])
        self.schedule = LRSchedule(s["lr"], s["epochs"], s["schedule"], s["lr_step"],
                                   s["lr_gamma"], s["lr_min"])
        self.trainer = Trainer(mnist, backend=backend, **{
            name: s[name] for name in ("hidden", "batch_size", "lr", "momentum", "seed", "dtype",
                                       "init", "optimizer", "nesterov", "weight_decay",
                                       "validation")})
        self.mnist = mnist
        self.settings = {**settings, "backend": self.trainer.model.backend.name}
        self.callbacks = callbacks
        self.position = _Position()
        self.best_params: dict[str, Any] | None = None
        self.folder: Path | None = None
        self.saved_at: tuple[int, int] | None = None  # (epoch, step) of the last checkpoint

    # --- run folders ------------------------------------------------------------------------

    def start_run_folder(self, out: str | os.PathLike, data: Any) -> None:
        self.folder = runs.create_run_folder(out, self.trainer.model.layer_sizes)
        from . import __version__

        if isinstance(data, (str, os.PathLike)):
            data_path = str(Path(data).resolve())
        else:
            location = getattr(data, "location", None)
            data_path = None if location is None else str(location)
        runs.write_config(self.folder, {
            "nnscratch_version": __version__, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "layer_sizes": list(self.trainer.model.layer_sizes), "training": self.settings,
            "data": data_path, "data_source": self.mnist.source,
            "data_fingerprint": self._fingerprint()})

    def _fingerprint(self) -> dict[str, int]:
        m = self.mnist
        return runs.data_fingerprint(m.x_train, m.y_train, m.x_test, m.y_test)

    def resume(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder = folder
        if config.get("data_fingerprint") != self._fingerprint():
            raise RunFolderError(f"the data given ({self.mnist.source}) is not the data the run "
                                 f"in {folder} was trained on ({config.get('data_source')}); "
                                 f"give it the same data as the first time (--data)")
        checkpoint = runs.read_checkpoint(folder)
        if checkpoint is None and (folder / runs.MODEL).exists():
            raise RunFolderError(f"the run in {folder} has finished (its model is "
                                 f"{folder / runs.MODEL}); there is nothing to resume")
        if checkpoint is not None:  # without one, the run never finished an epoch: start over
            self._restore(*checkpoint)

    def _restore(self, arrays: dict[str, Any], state: dict[str, Any]) -> None:
        t = self.trainer
        try:
            t.model.set_params(_prefixed(arrays, "param."))
            t.optimizer.load_state(t.model.backend, _prefixed(arrays, "optim."),
                                   state["optimizer"])
            self.position = _Position.from_json(state["position"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RunFolderError(f"the checkpoint in {self.folder} does not fit its run "
                                 f"({type(exc).__name__}: {exc})") from None
        self.best_params = _prefixed(arrays, "best.") or None
        self.saved_at = (self.position.epoch, self.position.step)
        if self.position.order_state is not None:  # None: saved before the first epoch began
            t.order_rng.bit_generator.state = self.position.order_state

    def _save_checkpoint(self) -> None:
        if self.folder is None:
            return
        t, pos = self.trainer, self.position
        params = t.model.params()
        if not all(np.isfinite(p).all() for p in params.values()):
            raise self._diverged(pos.epoch, pos.step, "the parameters became NaN or infinite")
        optim_arrays, optim_info = t.optimizer.state(t.model.backend)
        arrays = {**_with_prefix(params, "param."), **_with_prefix(optim_arrays, "optim."),
                  **_with_prefix(self.best_params or {}, "best.")}
        runs.write_checkpoint(self.folder, arrays, {
            "position": pos.to_json(), "optimizer": {"name": t.optimizer.name, **optim_info}})
        runs.write_metrics(self.folder, history_as_dicts(pos.history))
        self.saved_at = (pos.epoch, pos.step)

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        epochs = self.settings["epochs"]
        try:
            with _stop_on_sigint() as flag:
                while self.position.epoch <= epochs and not self.position.stopped_early:
                    self._stop_if_asked(flag)
                    stats = self._train_epoch(epochs, flag)
                    self._end_epoch(stats)
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:  # the second Ctrl-C: whatever was running was cut short
            raise self._interrupted(at_once=True) from None
        finally:
            for cb in self.callbacks:
                cb.on_train_end()
        return self._finish()

    def _stop_if_asked(self, flag: dict[str, bool]) -> None:
        if flag["stop"]:
            self._save_checkpoint()
            raise self._interrupted()

    def _interrupted(self, at_once: bool = False) -> TrainingInterrupted:
        pos = self.position
        checkpoint = None
        if self.folder is not None and self.saved_at is not None:
            checkpoint = self.folder / runs.CHECKPOINT
        return TrainingInterrupted(pos.epoch, pos.step, self.trainer.steps_per_epoch,
                                   self.folder, checkpoint, at_once)

    def _train_epoch(self, epochs: int, flag: dict[str, bool]) -> EpochStats:
        t, pos = self.trainer, self.position
        b = t.model.backend
        t.optimizer.lr = lr = self.schedule.at(pos.epoch)
        # Before the order is drawn: a run resumed inside this epoch draws the same order again.
        pos.order_state = t.order_rng.bit_generator.state
        for cb in self.callbacks:
            cb.on_epoch_start(pos.epoch, epochs, t.steps_per_epoch)
        started, pending, correct = time.perf_counter(), [], 0
        for step, (x, y) in enumerate(t.batches(start=pos.step), start=pos.step + 1):
            loss, right = t.step(x, y)
            correct = correct + right  # summed on the backend: no waiting for it
            pending.append((step, loss, int(y.shape[0])))
            stop = flag["stop"]  # read once: the signal may arrive at any moment
            if stop or len(pending) >= b.loss_check_interval or step == t.steps_per_epoch:
                self._check_losses(pending)
                pending = []
            pos.step = step
            for cb in self.callbacks:
                cb.on_step(step)
            if stop:
                pos.correct += int(b.to_numpy(correct))
                pos.seconds += time.perf_counter() - started
                self._stop_if_asked(flag)
        b.synchronize()
        pos.seconds += time.perf_counter() - started
        pos.correct += int(b.to_numpy(correct))
        return self._evaluate(lr)

    def _check_losses(self, pending: list[tuple[int, Any, int]]) -> None:
        """Read the pending steps' losses back; stop at the first that shows divergence."""
        pos, to_host = self.position, self.trainer.model.backend.to_numpy
        for step, loss, n in pending:
            value = float(to_host(loss))
            if not value <= DIVERGED_LOSS:  # NaN fails every comparison
                raise self._diverged(pos.epoch, step, f"the loss became {value:.3g}")
            pos.loss_sum += value * n
            pos.seen += n
        for cb in self.callbacks:
            cb.on_loss(pending[-1][0], pos.seen, pos.loss_sum / pos.seen)

    def _diverged(self, epoch: int, step: int, what: str) -> TrainingDivergedError:
        message = (f"training diverged at epoch {epoch}, step {step}: {what}; the learning "
                   f"rate ({self.trainer.optimizer.lr:g}) is probably too large")
        if self.folder is not None and self.saved_at is not None:
            saved_epoch, saved_step = self.saved_at
            when = (f"epoch {saved_epoch}, step {saved_step}" if saved_step else
                    f"the end of epoch {saved_epoch - 1}" if saved_epoch > 1 else
                    "before the first epoch")
            message += f"; {self.folder / runs.CHECKPOINT} keeps the state from {when}"
        elif self.folder is not None:
            message += f"; {self.folder} has no checkpoint: no epoch had finished"
        return TrainingDivergedError(message)

    def _evaluate(self, lr: float) -> EpochStats:
        t, pos = self.trainer, self.position
        test = t.evaluate_test()
        val = t.evaluate_validation()
        for scores in (test, val or test):
            if not math.isfinite(scores["loss"]):
                raise self._diverged(pos.epoch, pos.step, f"the loss on held-out images "
                                     f"became {scores['loss']} after the last update")
        return EpochStats(pos.epoch, pos.loss_sum / pos.seen, pos.correct / t.n, test["loss"],
                          test["accuracy"], pos.seconds, lr,
                          None if val is None else val["loss"],
                          None if val is None else val["accuracy"])

    def _end_epoch(self, stats: EpochStats) -> None:
        pos = self.position
        pos.history.append(stats)
        if stats.val_loss is not None:
            self._track_best(stats)
        for cb in self.callbacks:
            cb.on_epoch_end(stats)
        pos.epoch += 1
        pos.start_epoch()
        pos.order_state = self.trainer.order_rng.bit_generator.state
        self._save_checkpoint()

    def _track_best(self, stats: EpochStats) -> None:
        pos = self.position
        if pos.best_val_loss is None or stats.val_loss < pos.best_val_loss:
            pos.best_epoch, pos.best_val_loss = stats.epoch, stats.val_loss
            pos.epochs_without_improvement = 0
            self.best_params = self.trainer.model.params()
            return
        pos.epochs_without_improvement += 1
        patience = self.settings["patience"]
        pos.stopped_early = patience is not None and pos.epochs_without_improvement >= patience

    def _finish(self) -> TrainResult:
        pos, model = self.position, self.trainer.model
        if self.best_params is not None:
            model.set_params(self.best_params)
        result = TrainResult(model, pos.history, self.settings, self.mnist.source,
                             self.mnist.is_sample, best_epoch=pos.best_epoch,
                             run_dir=self.folder)
        if pos.stopped_early:
            result.extra["stopped_early"] = True
        if self.folder is not None:
            _write_run_results(self.folder, result, self.mnist)
        return result


def _with_prefix(arrays: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + name: value for name, value in arrays.items()}


def _prefixed(arrays: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name[len(prefix):]: value for name, value in arrays.items()
            if name.startswith(prefix)}


def _write_run_results(folder: Path, result: TrainResult, mnist: MnistData) -> None:
    """The finished run's model, predictions and report (its metrics are written after each
    epoch); then the checkpoint goes. Each file appears whole; if this is cut short, the
    checkpoint is still there and resuming finishes it."""
    from .report import build_report

    result.save(folder / runs.MODEL)
    probs = result.model.predict_proba(mnist.x_test)
    runs.write_predictions(folder, probs, mnist.y_test, mnist.x_test)
    result.extra["report"] = build_report(folder)
    (folder / runs.CHECKPOINT).unlink(missing_ok=True)


class Trainer:
    """A model, its optimiser and the data on its backend (copied there once).

    Two trainers built with the same settings on different backends start from the same
    weights and yield the same batches in the same order: :mod:`nnscratch.compare` relies on it.
    With ``validation`` > 0 that fraction of the training images is held out (see
    :func:`nnscratch.rng.validation_split`) and :attr:`n` counts the rest.
    """

    def __init__(self, mnist: MnistData, *, backend: str | Backend | None = None,
                 hidden: Sequence[int] = (128,), batch_size: int | None = 128, lr: float = 0.1,
                 momentum: float = 0.0, seed: int = 0, dtype: str = "float32",
                 init: str = "he", optimizer: str = "sgd", nesterov: bool = False,
                 weight_decay: float = 0.0, validation: float = 0.0) -> None:
        _check_settings(1, batch_size)
        self.optimizer = make_optimizer(optimizer, lr, momentum=momentum, nesterov=nesterov,
                                        weight_decay=weight_decay)
        init_rng, self.order_rng = _rng.generators(seed)
        self.model = MLP(hidden, backend=backend, dtype=dtype, init=init, seed=init_rng)
        b = self.model.backend
        x_train, y_train = mnist.x_train, mnist.y_train
        self.x_val = self.y_val = None
        if validation:
            train_rows, val_rows = _rng.validation_split(seed, len(x_train), validation)
            self.x_val = b.pixels_to_float(b.asarray(x_train[val_rows], copy=False), dtype)
            self.y_val = b.asarray(y_train[val_rows])
            x_train, y_train = x_train[train_rows], y_train[train_rows]
        self.n = len(x_train)
        self.batch_size = self.n if batch_size is None else min(batch_size, self.n)
        # Pixels travel as uint8 (a quarter of float32's bytes) and are scaled per batch.
        self.x_train = b.asarray(x_train)
        self.y_train = b.asarray(y_train)
        # Full batch: every step reads all images, so scale them once, not once per step,
        # unless the backend reads the uint8 images faster than a float copy.
        self.x_full = None
        if self.batch_size == self.n:
            self.x_full = (self.x_train if b.reads_pixels_directly
                           else b.pixels_to_float(self.x_train, dtype))
        self.x_test = b.pixels_to_float(b.asarray(mnist.x_test, copy=False), dtype)
        self.y_test = b.asarray(mnist.y_test)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n // self.batch_size)

    def batches(self, start: int = 0) -> Iterator[tuple[Any, Any]]:
        """One epoch's batches as backend arrays: images (n, 784) and integer labels (n,). The
        images are floats, or the uint8 pixels for a full batch on a backend that
        :attr:`~nnscratch.Backend.reads_pixels_directly`; the model takes either.

        The epoch's order is drawn whole even when ``start`` (0-based) skips its first
        batches, so the batch-order generator advances exactly as in a whole epoch.
        """
        b = self.model.backend
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

    def evaluate_test(self) -> dict[str, float]:
        """Accuracy and loss on the test set."""
        return self.model.evaluate_arrays(self.x_test, self.y_test)

    def evaluate_validation(self) -> dict[str, float] | None:
        """Accuracy and loss on the held-out validation images; None without a split."""
        if self.x_val is None:
            return None
        return self.model.evaluate_arrays(self.x_val, self.y_val)


def history_as_dicts(history: Sequence[EpochStats]) -> list[dict[str, Any]]:
    """The history as plain dicts (for JSON or CSV)."""
    return [asdict(stats) for stats in history]
