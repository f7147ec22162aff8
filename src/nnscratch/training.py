""":func:`train`: a whole training run — epochs of :meth:`~nnscratch.Trainer.run_epoch`,
schedules, validation and early stopping, evaluation, run folders with checkpoints, resuming,
Ctrl-C and divergence."""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import signal
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from ._fileio import as_path
from ._signals import StopRequest, signal_name, stop_requests
from .backend import Backend
from .checkpoint import array_specs, check_checkpoint
from .callbacks import Callback, EpochStats, history_as_dicts, make_callbacks
from ._version import __version__
from .data import MnistData, load_dataset, load_mnist
from .data.tables import (Table, encode_labels, held_out_data, looks_like_npz_table,
                          looks_like_table, read_table_data)
from .inputs import (apply_scaling, as_array, as_features, as_labels, as_pixels, class_count,
                     fit_scaling, pixel_width, scaled_features)
from .errors import ConfigError, DataError, RunFolderError, TrainingDivergedError
from .model import MLP
from .optim import LRSchedule
from .settings import SettingsError, TrainSettings
from .trainer import EpochProgress, LossDiverged, Trainer, settings_from

__all__ = ["train", "TrainResult", "TrainingInterrupted", "training_data"]


@dataclass
class TrainResult:
    """The trained model, its per-epoch history, the settings used and where the data came from.

    With a validation split the model holds the parameters of ``best_epoch``, the epoch with
    the lowest validation loss; ``run_dir`` is the run folder when one was written. ``paused``:
    the run stopped at ``train(pause_after=...)`` and its run folder's checkpoint continues it
    (the model holds the parameters of its last epoch).
    """

    model: MLP
    history: list[EpochStats]
    settings: TrainSettings
    data_source: str
    data_is_sample: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None
    run_dir: Path | None = None
    paused: bool = False

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
        return self.model.save(path, training=self.settings.to_json(),
                               data_source=self.data_source, test_accuracy=self.test_accuracy)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped :func:`train`; a KeyboardInterrupt, so code that does
    not know it stops as for any Ctrl-C.

    The first signal stops after the current step (``step`` of ``steps`` in ``epoch``) and
    writes the checkpoint; a second one stops at once (``at_once``) and leaves the last
    checkpoint written, if any. ``signum`` is the signal (``signal.SIGINT`` or
    ``signal.SIGTERM``); ``run_dir`` is the run folder (None without one) and ``checkpoint`` the
    checkpoint to resume from (None if there is none). ``finishing``: the signal came while the
    finished run's results were being written.
    """

    def __init__(self, epoch: int, step: int, steps: int, run_dir: Path | None,
                 checkpoint: Path | None, at_once: bool = False,
                 signum: int = signal.SIGINT, finishing: bool = False) -> None:
        self.epoch, self.step, self.steps, self.at_once = epoch, step, steps, at_once
        self.run_dir, self.checkpoint = run_dir, checkpoint
        self.signum, self.finishing = signum, finishing
        name = signal_name(signum)
        by = "" if signum == signal.SIGINT else f" by {name}"  # Ctrl-C goes without saying
        if at_once and finishing:
            where = f"stopped at once by a second {name} while writing the run's results"
        elif at_once:
            where = f"stopped at once by a second {name} in epoch {epoch}"
        elif step:
            where = f"interrupted{by} in epoch {epoch} after step {step} of {steps}"
        else:
            where = f"interrupted{by} before epoch {epoch}"
        super().__init__(where)


# --- train() ----------------------------------------------------------------------------------

def train(data: Any = None, *, settings: TrainSettings | None = None,
          backend: str | Backend | None = None, progress: bool | None = None,
          callback: Any = None, out: str | os.PathLike | None = None,
          resume: str | os.PathLike | None = None, pause_after: int | None = None,
          **options: Any) -> TrainResult:
    """Train a classifier (of MNIST digits, unless ``data`` says otherwise) and return it with
    its history.

    The run is described by ``settings`` (a :class:`~nnscratch.TrainSettings`) and/or the
    settings as keywords, one per field of TrainSettings (``hidden``, ``epochs``, ``lr``,
    ``optimizer``, ``augment``...; see TrainSettings for each), which override the ``settings``
    given.

    ``data``: a path (a folder of MNIST IDX files; a CSV or ``.npz`` file, of MNIST or a table
    of features and labels, with a test set held out of a table), an
    :class:`~nnscratch.data.MnistData`, a :class:`~nnscratch.data.tables.Table`, a tuple
    ``(x_train, y_train, x_test, y_test)``, or None to take the data from ``NNSCRATCH_DATA``,
    the user cache or, failing those, the small sample bundled with nnscratch.
    ``backend``: a name (``"numpy"``, ``"numba"``, ``"cupy"``...), a Backend, or None for the
    settings' backend, else the current default (see :func:`~nnscratch.get_backend`).
    ``progress``: print progress to stderr (default: only when it is a terminal).
    ``callback``: a :class:`Callback`, a function called with each :class:`EpochStats`, or a
    list of them.

    ``out``: a path ending in ``.npz`` writes the model file there when training ends; any
    other path is a run folder (see :mod:`nnscratch.runs`): settings, metrics, a checkpoint
    after every epoch, the model, and a report. ``resume``: a run folder to continue from its
    checkpoint with its saved settings (settings may be left out; one given must equal the
    saved one; the backend may differ); on the NumPy backend the result is bit-identical to an
    uninterrupted run. ``pause_after``: an epoch; with a run folder (``out`` or ``resume``),
    stop once that epoch is done (at once if the run is already past it), keep the checkpoint
    and return the result so far with ``paused`` True; resuming continues the run exactly as if
    it had not stopped (successive-halving sweeps train this way).

    The same seed on the same backend gives bit-identical parameters. Raises
    :class:`~nnscratch.errors.TrainingDivergedError` naming the epoch and step when a batch's
    loss becomes NaN, infinite or larger than :data:`~nnscratch.trainer.DIVERGED_LOSS` (a run
    folder keeps its last good checkpoint), and :class:`TrainingInterrupted` (a
    KeyboardInterrupt) on Ctrl-C: after the current step, once the checkpoint is written to the
    run folder if there is one; at once on a second Ctrl-C. The Ctrl-C handler is installed
    only while training runs.
    """
    unknown = [name for name in options if name not in TrainSettings.names()]
    if unknown:
        raise TypeError(f"train() got an unexpected keyword argument {unknown[0]!r}")
    _check_paths(out=out, resume=resume)
    if pause_after is not None:
        if not isinstance(pause_after, int) or isinstance(pause_after, bool) or pause_after < 1:
            raise ConfigError(f"pause_after must be an epoch number (1 or more); got "
                              f"{pause_after!r:.40}")
        if resume is None and (out is None or runs.is_model_path(out)):
            raise ConfigError("pause_after needs a run folder (out or resume) to keep the "
                              "checkpoint in")
    folder, config = None, None
    if resume is not None:
        if out is not None and Path(out) != Path(resume):
            raise ConfigError("give either out (a new run) or resume (an existing run), not both")
        folder = runs.open_run_folder(resume)
        config = runs.read_config(folder)
        run_settings = _resumed_settings(settings, options, config, folder)
        if data is None:
            data = recorded_data(config)
    else:
        run_settings = settings_from(settings, options)
    session = _Session(training_data(data, run_settings.scaling), run_settings, backend,
                       make_callbacks(progress, callback), pause_after)
    # From the first file written to the last, a signal stops the run where it can stop cleanly.
    with stop_requests() as request, session:
        session.request = request
        if resume is not None:
            session.resume(folder, config)
        elif out is not None and not runs.is_model_path(out):
            session.start_run_folder(out, data)
        elif out is not None:
            runs.check_model_target(out)
        with warnings.catch_warnings():
            # A diverging run overflows; it is detected and reported as TrainingDivergedError,
            # so the array library's overflow warnings would only repeat it less clearly.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = session.run()
        if out is not None and runs.is_model_path(out):
            result.save(out)
    return result


def recorded_data(config: dict[str, Any], path: str | os.PathLike | None = None) -> Any:
    """The data a run was trained on, read again as its config.json records it: from ``path``
    when given, else the path recorded; a table with its label column and test table, else the
    data set named there."""
    table = config.get("table")
    if table is None:
        return load_dataset(config.get("dataset", "mnist"), path or config.get("data"))
    return read_table_data(path or config.get("data"), table.get("label_column"),
                           table.get("test_data"))


def _check_paths(**paths: Any) -> None:
    for name, value in paths.items():
        if value is not None:
            as_path(value, ConfigError, name)


def _signature_with_settings() -> inspect.Signature:
    """train()'s signature with each setting as a keyword and its default, for help() and
    editors; the settings themselves are declared once, in TrainSettings."""
    parameters = list(inspect.signature(train).parameters.values())[:-1]  # without **options
    parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                   for name, default, _, _ in TrainSettings.describe()
                   if name != "backend"]  # train() has its own, which also takes a Backend
    return inspect.signature(train).replace(parameters=parameters)


train.__signature__ = _signature_with_settings()  # type: ignore[attr-defined]


def training_data(data: Any, scaling: str = "auto") -> MnistData:
    """The data :func:`train` trains on, from what it accepts: a path (or None: the default
    resolution order; an ``.npz`` of feature arrays is read as a table), an MnistData, a
    :class:`~nnscratch.data.tables.Table` (a test set is held out of it), or a tuple
    ``(x_train, y_train, x_test, y_test)`` of host arrays; its inputs prepared as ``scaling``
    says (see :class:`~nnscratch.TrainSettings`)."""
    if isinstance(data, (str, os.PathLike)) and (looks_like_npz_table(data)
                                                 or looks_like_table(data)):
        data = read_table_data(data)  # a CSV table's labels: its label, class, target or y
    if data is None or isinstance(data, (str, os.PathLike)):
        data = load_mnist(data)
    if isinstance(data, Table):
        data = held_out_data(data)
    if isinstance(data, MnistData):
        return _prepared(data, scaling)
    if isinstance(data, tuple) and len(data) == 4:
        # Sizes from the data: the classes of the labels here, the inputs' width in _prepared.
        x_train, x_test = as_array(data[0], "x_train"), as_array(data[2], "x_test")
        _check_inputs(x_train, x_test)
        classes, y_train, y_test = _class_numbers(data[1], len(x_train), data[3], len(x_test))
        return _prepared(MnistData(x_train, y_train, x_test, y_test, "arrays given to train()",
                                   False, classes=classes), scaling)
    raise ConfigError("data must be a folder path, an MnistData, a Table, or a tuple "
                      f"(x_train, y_train, x_test, y_test); got {type(data).__name__}")


def _check_inputs(x_train: np.ndarray, x_test: np.ndarray) -> None:
    """The inputs of a tuple given to train(): numbers, rows of one width in both sets."""
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.dtype.kind not in "buif" or x.ndim < 2:
            raise DataError(f"{name} must be rows of numbers (an array of shape (n, d), or "
                            f"(n, h, w) for images); got {x.dtype} of shape {x.shape}")
    widths = [math.prod(x.shape[1:]) for x in (x_train, x_test)]
    if widths[0] != widths[1]:
        raise DataError(f"x_test has rows of {widths[1]} values but x_train of {widths[0]}; "
                        f"both need the same inputs")


def _uses_pixels(x: Any, scaling: str) -> bool:
    return scaling == "pixels" or (scaling == "auto" and np.asarray(x).dtype.kind in "iu")


def _prepared(data: MnistData, scaling: str) -> MnistData:
    """``data`` with its inputs checked and prepared: pixels as uint8 (or floats already in
    [0, 1]) rows, which the backend divides by 255; features as float64 rows scaled as fitted on
    the training set, which the model will keep."""
    width = pixel_width(data.x_train)
    if _uses_pixels(data.x_train, scaling):
        if all(x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == width
               for x in (data.x_train, data.x_test)):
            return data  # uint8 rows, as the data readers give them: nothing to check
        return dataclasses.replace(data, x_train=as_pixels(data.x_train, width),
                                   x_test=as_pixels(data.x_test, width))
    x_train = as_features(data.x_train, width)
    inputs = fit_scaling(x_train, "none" if scaling == "none" else "standardize")
    return dataclasses.replace(data, x_train=apply_scaling(x_train, inputs),
                               x_test=scaled_features(data.x_test, inputs, width),
                               inputs=inputs)


def _class_numbers(y_train: Any, n_train: int, y_test: Any,
                   n_test: int) -> tuple[tuple[Any, ...] | None, Any, Any]:
    """``(classes, train codes, test codes)``: labels that are already class numbers 0, 1, 2...
    are kept (classes None); others (strings, say) become the numbers of their sorted classes."""
    train, test = np.asarray(y_train), np.asarray(y_test)
    if train.dtype.kind in "iu" and test.dtype.kind in "iu" and min(
            train.min(initial=0), test.min(initial=0)) >= 0:
        count = class_count(train, test)
        return None, as_labels(train, n_train, count), as_labels(test, n_test, count)
    for labels, n in ((train, n_train), (test, n_test)):
        if labels.shape != (n,):
            raise DataError(f"labels must have shape ({n},), one per image; got shape "
                            f"{labels.shape}")
    classes, codes = encode_labels(np.concatenate([train, test]))
    return tuple(classes.tolist()), codes[:n_train], codes[n_train:]


def _resumed_settings(settings: TrainSettings | None, options: dict[str, Any],
                      config: dict[str, Any], folder: Path) -> TrainSettings:
    """The saved settings of a run. A setting given (as a keyword or in ``settings``) that
    differs from the saved one is refused: it would change the run being continued. The
    backend may differ; where it is not given, the saved one is used."""
    try:
        saved = TrainSettings.from_json(config.get("training"))
    except ConfigError as exc:
        raise RunFolderError(f"{folder / runs.CONFIG} holds settings this nnscratch cannot "
                             f"use ({exc}), so the run cannot be resumed") from None
    given = {**(settings.to_json() if settings is not None else {}), **options}
    given.pop("backend", None)
    # The given values in stored form (a list of layer sizes as a tuple, 1 as 1.0), so that
    # only real differences are refused; an impossible value fails here, as for a new run.
    mine = saved.replace(**given)
    for name, (value, kept) in mine.differences(saved).items():
        raise SettingsError(f"{{{name}}} {{value!r}} differs from the {{kept!r}} of the run in "
                            f"{{folder}}: a resumed run keeps the settings it started with",
                            value=value, kept=kept, folder=folder)
    return saved


@dataclass
class _Position(EpochProgress):
    """Where a run stands: with the parameters and the optimiser's state, all it takes to
    continue it exactly. ``step`` steps of ``epoch`` are done (with the epoch's running sums of
    :class:`~nnscratch.trainer.EpochProgress`); ``order_state`` is the batch-order generator's
    state at the start of ``epoch``, so its batch order can be drawn again."""

    epoch: int = 1
    order_state: dict[str, Any] | None = None
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    epochs_without_improvement: int = 0
    stopped_early: bool = False

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["history"] = history_as_dicts(self.history)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> _Position:
        position = cls(**{**record, "history": []})
        position.history = [EpochStats(**stats) for stats in record["history"]]
        return position


class _Session:
    """One call of :func:`train`: the trainer, the epoch loop and, if any, the run folder."""

    def __init__(self, mnist: MnistData, settings: TrainSettings,
                 backend: str | Backend | None, callbacks: list[Callback],
                 pause_after: int | None = None) -> None:
        s = settings
        self.schedule = LRSchedule(s.lr, s.epochs, s.schedule, s.lr_step, s.lr_gamma, s.lr_min)
        self.trainer = Trainer(mnist, s, backend=backend)
        self.mnist = mnist
        self.settings = s.replace(backend=self.trainer.model.backend.name)
        self.callbacks = callbacks
        self.pause_after = pause_after
        self.position = _Position()
        self.best_params: dict[str, Any] | None = None
        self.folder: Path | None = None
        self.lock: runs.RunFolderLock | None = None
        self.saved_at: tuple[int, int] | None = None  # (epoch, step) of the last checkpoint
        self.request = StopRequest()  # the stop signal that has arrived, if any
        self.finishing = False  # the run's results are being written

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.trainer.close()
        if self.lock is not None:
            self.lock.release()

    # --- run folders ------------------------------------------------------------------------

    def start_run_folder(self, out: str | os.PathLike, data: Any) -> None:
        self.folder, self.lock = runs.create_run_folder(out, self.trainer.model.layer_sizes)
        if isinstance(data, (str, os.PathLike)):
            data_path = str(Path(data).resolve())
        else:
            location = getattr(data, "location", None)
            data_path = None if location is None else str(location)
        runs.write_config(self.folder, {
            "nnscratch_version": __version__, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "layer_sizes": list(self.trainer.model.layer_sizes),
            "training": self.settings.to_json(), "data": data_path, "dataset": self.mnist.dataset,
            **({"table": self.mnist.table} if self.mnist.table else {}),
            "data_source": self.mnist.source, "data_fingerprint": self._fingerprint()})

    def _fingerprint(self) -> dict[str, int]:
        m = self.mnist
        return runs.data_fingerprint(m.x_train, m.y_train, m.x_test, m.y_test)

    def resume(self, folder: Path, config: dict[str, Any]) -> None:
        if config.get("layer_sizes") != list(self.trainer.model.layer_sizes):
            raise RunFolderError(f"{folder / runs.CONFIG} is damaged: its layer sizes "
                                 f"{config.get('layer_sizes')} do not fit its settings and data "
                                 f"({'-'.join(map(str, self.trainer.model.layer_sizes))})")
        if config.get("data_fingerprint") != self._fingerprint():
            raise RunFolderError(f"the data given ({self.mnist.source}) is not the data the run "
                                 f"in {folder} was trained on ({config.get('data_source')}); "
                                 f"give it the same data as the first time (--data)")
        self.lock = runs.RunFolderLock(folder)
        self.folder = folder
        checkpoint = runs.read_checkpoint(folder, array_specs(self.trainer))
        if checkpoint is None and (folder / runs.MODEL).exists():
            raise RunFolderError(f"the run in {folder} has finished (its model is "
                                 f"{folder / runs.MODEL}); there is nothing to resume")
        if checkpoint is not None:  # without one, the run never finished an epoch: start over
            self._restore(*checkpoint)

    def _restore(self, arrays: dict[str, Any], state: dict[str, Any]) -> None:
        t = self.trainer
        check_checkpoint(arrays, state, t, self.folder / runs.CHECKPOINT)
        t.model.set_params(_prefixed(arrays, "param."))
        t.optimizer.load_state(t.model.backend, _prefixed(arrays, "optim."), state["optimizer"])
        self.position = _Position.from_json(state["position"])
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
        """Train the remaining epochs and write the results. The first stop signal is honoured
        after the current step; once the last epoch is done, the results are written whole
        even if one comes (the run has finished). A second signal stops at once."""
        epochs, pos = self.settings.epochs, self.position
        last = epochs if self.pause_after is None else min(epochs, self.pause_after)
        try:
            try:
                while pos.epoch <= last and not pos.stopped_early:
                    self._stop_if_asked(self.request.signum)
                    stats = self._train_epoch(epochs)
                    self._end_epoch(stats)
                self.finishing = pos.epoch > epochs or pos.stopped_early
            finally:
                for cb in self.callbacks:
                    cb.on_train_end()
            return self._finish() if self.finishing else self._paused()
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt as exc:  # a second signal: whatever ran was cut short
            signum = getattr(exc, "signum", self.request.signum or signal.SIGINT)
            raise self._interrupted(signum, at_once=True) from None

    def _stop_if_asked(self, signum: int | None) -> None:
        if signum is not None:
            self._save_checkpoint()
            raise self._interrupted(signum)

    def _interrupted(self, signum: int, at_once: bool = False) -> TrainingInterrupted:
        pos = self.position
        checkpoint = None
        if self.folder is not None and self.saved_at is not None:
            checkpoint = self.folder / runs.CHECKPOINT
            if not checkpoint.exists():  # removed as the last of the results' writes
                checkpoint = None
        return TrainingInterrupted(pos.epoch, pos.step, self.trainer.steps_per_epoch,
                                   self.folder, checkpoint, at_once, signum, self.finishing)

    def _train_epoch(self, epochs: int) -> EpochStats:
        t, pos = self.trainer, self.position
        t.optimizer.lr = lr = self.schedule.at(pos.epoch)
        # Before the order is drawn: a run resumed inside this epoch draws the same order again.
        pos.order_state = t.order_rng.bit_generator.state
        for cb in self.callbacks:
            cb.on_epoch_start(pos.epoch, epochs, t.steps_per_epoch)
        asked: list[int | None] = []

        def stop() -> bool:
            asked.append(self.request.signum)  # read once: a signal may arrive at any moment
            return asked[-1] is not None

        try:
            t.run_epoch(pos, epoch=pos.epoch, callbacks=self.callbacks, stop=stop)
        except LossDiverged as exc:
            raise self._diverged(pos.epoch, exc.step, f"the loss became {exc.value:.3g}") from None
        self._stop_if_asked(asked[-1] if asked else None)
        return self._evaluate(lr)

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
        if not t.evaluates(pos.epoch):
            return EpochStats(pos.epoch, pos.loss_sum / pos.seen, pos.correct / t.n, None, None,
                              pos.seconds, lr)
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
        # Counted in epochs, whichever of them were evaluated (see eval_every).
        evaluated = [s.epoch for s in pos.history[:-1] if s.val_loss is not None]
        pos.epochs_without_improvement += stats.epoch - (evaluated[-1] if evaluated else 0)
        patience = self.settings.patience
        pos.stopped_early = patience is not None and pos.epochs_without_improvement >= patience

    def _result(self, paused: bool = False) -> TrainResult:
        pos = self.position
        return TrainResult(self.trainer.model, pos.history, self.settings, self.mnist.source,
                           self.mnist.is_sample, best_epoch=pos.best_epoch,
                           run_dir=self.folder, paused=paused)

    def _paused(self) -> TrainResult:
        """The result of a run stopped by ``pause_after``: its epochs so far and its current
        parameters; the checkpoint written after the last epoch continues it."""
        return self._result(paused=True)

    def _finish(self) -> TrainResult:
        pos = self.position
        if self.best_params is not None:
            self.trainer.model.set_params(self.best_params)
        result = self._result()
        if pos.stopped_early:
            result.extra["stopped_early"] = True
        if self.folder is not None:
            _write_run_results(self.folder, result, self.mnist, self.trainer)
        return result


def _with_prefix(arrays: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {prefix + name: value for name, value in arrays.items()}


def _prefixed(arrays: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name[len(prefix):]: value for name, value in arrays.items()
            if name.startswith(prefix)}


def _write_run_results(folder: Path, result: TrainResult, mnist: MnistData,
                       trainer: Trainer) -> None:
    """The finished run's model, predictions and report (its metrics are written after each
    epoch); then the checkpoint goes. Each file appears whole; if this is cut short, the
    checkpoint is still there and resuming finishes it."""
    from .report import build_report

    result.save(folder / runs.MODEL)
    # From the test rows as the trainer holds them: features already prepared are not
    # prepared a second time, as predict_proba would do to raw rows.
    probs = trainer.model.predict_proba_arrays(trainer.x_test)
    runs.write_predictions(folder, probs, mnist.y_test, mnist.x_test)
    result.extra["report"] = build_report(folder)
    (folder / runs.CHECKPOINT).unlink(missing_ok=True)
