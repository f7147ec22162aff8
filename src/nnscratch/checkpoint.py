"""A run's checkpoint checked against the run that reads it, before anything of it is used.

A checkpoint is trusted only as far as it agrees with the settings and the data of the run
resuming it: :func:`array_specs` says which arrays it may hold (names, dtypes, shapes: checked
from the archive's headers before any data is read) and :func:`check_checkpoint` that the ones
it must hold are there, finite, and that its position and state are possible for this run (the
epoch and step in range, running sums that fit them, a history of the epochs before, the batch
order generator's state of the right kind, the optimiser's own). A damaged or tampered
checkpoint is one :class:`~nnscratch.errors.RunFolderError` sentence, never a traceback, and
never a silent resume into other parameters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .callbacks import EpochStats
from .errors import RunFolderError
from .runs import ArraySpec

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["array_specs", "check_checkpoint"]

_POSITION_FIELDS = ("step", "loss_sum", "seen", "correct", "seconds", "epoch", "order_state",
                    "history", "best_epoch", "best_val_loss", "epochs_without_improvement",
                    "stopped_early")
_STATS_FIELDS = tuple(f.name for f in dataclasses.fields(EpochStats))


def array_specs(trainer: Trainer) -> dict[str, ArraySpec]:
    """Every array a checkpoint of ``trainer``'s run may hold, with its dtype and shape."""
    params = {name: ((str(a.dtype),), tuple(a.shape))
              for name, a in trainer.model.params().items()}
    specs = {f"param.{name}": spec for name, spec in params.items()}
    specs.update({f"best.{name}": spec for name, spec in params.items()})
    specs.update({f"optim.{slot}.{name}": spec for slot in trainer.optimizer.active_slots
                  for name, spec in params.items()})
    return specs


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_checkpoint(arrays: Mapping[str, np.ndarray], state: Mapping[str, Any],
                     trainer: Trainer, path: Path) -> None:
    """Raise a RunFolderError naming ``path`` when the checkpoint (its ``arrays`` and JSON
    ``state``) is not one that ``trainer``'s run could have written."""
    problem = (_state_problem(state, trainer) or _arrays_problem(arrays, state, trainer))
    if problem:
        raise RunFolderError(f"checkpoint {path} is damaged or belongs to another run: "
                             f"{problem}")


def _state_problem(state: Mapping[str, Any], trainer: Trainer) -> str | None:
    position, optimizer = state.get("position"), state.get("optimizer")
    if not isinstance(position, dict) or sorted(position) != sorted(_POSITION_FIELDS):
        return "its position record does not have nnscratch's fields"
    return (_position_problem(position, trainer)
            or _history_problem(position, trainer)
            or _order_problem(position, trainer)
            or _optimizer_problem(optimizer, position, trainer))


def _position_problem(p: dict[str, Any], trainer: Trainer) -> str | None:
    s, steps = trainer.settings, trainer.steps_per_epoch
    for name in ("step", "seen", "correct", "epoch", "epochs_without_improvement"):
        if not _is_int(p[name]) or p[name] < 0:
            return f"its {name} is {p[name]!r:.40}, not a count"
    for name in ("loss_sum", "seconds"):
        if not _is_number(p[name]) or p[name] < 0:
            return f"its {name} is {p[name]!r:.40}, not a finite number of at least 0"
    epoch, step = p["epoch"], p["step"]
    if not 1 <= epoch <= s.epochs + 1:
        return f"it is at epoch {epoch}, outside 1-{s.epochs + 1} of a {s.epochs}-epoch run"
    if not 0 <= step <= (0 if epoch == s.epochs + 1 else steps):
        return f"it is at step {step} of epoch {epoch}, which has {steps} steps"
    if p["seen"] != min(step * trainer.batch_size, trainer.n) or p["correct"] > p["seen"]:
        return (f"its running sums ({p['seen']} images seen, {p['correct']} right) do not fit "
                f"step {step}")
    if not isinstance(p["stopped_early"], bool) or (p["stopped_early"] and s.patience is None):
        return "it says the run stopped early, which it cannot without patience"
    best, loss = p["best_epoch"], p["best_val_loss"]
    if not s.validation and (best is not None or loss is not None):
        return "it tracks a best epoch, but the run has no validation split"
    if best is None and loss is None and (not s.validation or not any(
            trainer.evaluates(e) for e in range(1, epoch))):  # nothing was evaluated yet
        return None
    if not (_is_int(best) and 1 <= best < epoch and _is_number(loss)):
        return f"its best epoch {best!r:.40} (validation loss {loss!r:.40}) is impossible"
    return None


def _history_problem(p: dict[str, Any], trainer: Trainer) -> str | None:
    history, validation = p["history"], bool(trainer.settings.validation)
    if not isinstance(history, list) or len(history) != p["epoch"] - 1:
        return f"its history does not hold the {p['epoch'] - 1} epochs before epoch {p['epoch']}"
    for number, stats in enumerate(history, start=1):
        if not isinstance(stats, dict) or sorted(stats) != sorted(_STATS_FIELDS):
            return f"its history's epoch {number} does not have nnscratch's fields"
        evaluated = trainer.evaluates(number)
        if (stats["epoch"] != number or (stats["val_loss"] is None) == (validation and evaluated)
                or (stats["test_loss"] is None) == evaluated):
            return f"its history's epoch {number} is not the run's epoch {number}"
        numbers = [stats[name] for name in _STATS_FIELDS[1:]
                   if stats[name] is not None or not name.startswith(("val_", "test_"))]
        if not all(_is_number(value) for value in numbers):
            return f"its history's epoch {number} holds a value that is not a finite number"
    return None


def _order_problem(p: dict[str, Any], trainer: Trainer) -> str | None:
    order = p["order_state"]
    if order is None:
        return None if (p["epoch"], p["step"]) == (1, 0) else "it has no batch-order state"
    generator = type(trainer.order_rng.bit_generator)
    try:
        generator().state = order
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError):
        return f"its batch-order state is not that of a {generator.__name__} generator"
    return None


def _optimizer_problem(info: Any, p: dict[str, Any], trainer: Trainer) -> str | None:
    name = trainer.optimizer.name
    if not isinstance(info, dict) or info.get("name") != name:
        return f"its optimiser state is not {name}'s"
    done = (p["epoch"] - 1) * trainer.steps_per_epoch + p["step"]
    expected = {"name": name, **({"steps": done} if name == "adam" else {})}
    if info != expected:
        return f"its {name} state {info!r:.80} does not fit {done} steps done"
    return None


def _arrays_problem(arrays: Mapping[str, np.ndarray], state: Mapping[str, Any],
                    trainer: Trainer) -> str | None:
    p = state["position"]
    specs = array_specs(trainer)
    stepped = (p["epoch"], p["step"]) != (1, 0)
    wanted = [name for name in specs if name.startswith("param.")
              or (name.startswith("best.") and p["best_epoch"] is not None)
              or (name.startswith("optim.") and stepped)]
    missing = [name for name in wanted if name not in arrays]
    if missing:
        return f"it has no array {missing[0]!r}"
    extra = [name for name in arrays if name not in wanted]
    if extra:
        return f"it holds an array {extra[0]!r} this run never writes"
    for name in wanted:
        if not np.isfinite(arrays[name]).all():
            return (f"its array {name!r} holds NaN or infinite values (training never saves "
                    f"such a checkpoint)")
    return None
