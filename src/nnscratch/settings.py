"""TrainSettings: the one description of a training run.

Every setting that defines a run is declared once, below, as a field of :class:`TrainSettings`
with its default, the rule its values must follow and its command-line help. From that one
declaration come: the keywords of :func:`nnscratch.train` and :class:`~nnscratch.Trainer`, the
validation (``TrainSettings(...)`` refuses an impossible value or combination with one sentence),
the JSON record in a run folder's ``config.json`` that ``resume`` reads back, and the options of
``nnscratch train`` and ``nnscratch compare``. Adding a setting is adding a field here (plus the
code that uses it, its docs and tests).

Settings are frozen values: they compare by value, hash, and travel to another process as JSON::

    settings = TrainSettings(hidden=(256,), lr=0.05, momentum=0.9)
    TrainSettings.from_json(settings.to_json()) == settings    # True
    settings.replace(seed=1)                                    # a new value, checked again
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = ["TrainSettings", "SettingsError", "Rule", "DTYPES", "INIT_SCHEMES", "OPTIMIZERS",
           "SCHEDULES", "SCALINGS", "STEP_SETTINGS", "POSITIVE", "POSITIVE_INT", "NON_NEGATIVE_INT",
           "NON_NEGATIVE", "FRACTION", "FACTOR", "LEARNING_RATE", "LAYER_SIZES", "DTYPE",
           "SCHEDULE", "FLAG", "EPOCHS_OR_NONE", "check_optimizer_combination", "check_lr_min"]

DTYPES = ("float32", "float64")
INIT_SCHEMES = ("he", "xavier", "seed")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("step", "cosine")  # or None: a constant learning rate
SCALINGS = ("auto", "pixels", "standardize", "none")
AUGMENTS = ("elastic", "affine", "affine+elastic")  # or None: the images as they are


class SettingsError(ConfigError):
    """An impossible setting or combination of settings.

    The message names the settings involved; :meth:`spelled` gives it with other names for them
    (the command line's ``--option`` spellings), so that one check serves every front end.
    """

    def __init__(self, template: str, **values: Any) -> None:
        self.template, self.values = template, values
        super().__init__(self.spelled(lambda name: name))

    def spelled(self, spell: Callable[[str], str]) -> str:
        """The message with each setting's name ``name`` written as ``spell(name)``."""
        return self.template.format_map(_Spelling(spell, self.values))


class _Spelling(dict):
    """Template fields: the values given, and any other name spelled as asked."""

    def __init__(self, spell: Callable[[str], str], values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.spell = spell

    def __missing__(self, name: str) -> str:
        return self.spell(name)


# --- rules: what a value must be -------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is not a count


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: ``accept(value)``, described as ``expected`` ("a positive
    integer"); ``parse`` reads it from command-line text; ``normal`` gives the stored form."""

    expected: str
    accept: Callable[[Any], bool]
    parse: Callable[[str], Any]
    normal: Callable[[Any], Any] = lambda value: value
    choices: tuple[str, ...] | None = None  #: the values, when they are a few names

    def check(self, name: str, value: Any) -> Any:
        """``value`` in its stored form, or a SettingsError naming ``name``."""
        if not self.accept(value):
            raise SettingsError("{%s} must be %s; got %s" % (name, self.expected,
                                                             _shown(value)))
        return self.normal(value)

    def from_text(self, text: str) -> Any:
        """The value that command-line ``text`` stands for; ValueError if it is not one."""
        value = self.parse(text)
        if not self.accept(value):
            raise ValueError(text)
        return value


def _shown(value: Any) -> str:
    # Braces would be read as template fields by SettingsError.
    return repr(value).replace("{", "{{").replace("}", "}}")


def _optional(rule: Rule, word: str, expected: str) -> Rule:
    """``rule``, or None, spelled ``word`` on the command line."""
    return Rule(expected, lambda v: v is None or rule.accept(v),
                lambda text: None if text == word else rule.parse(text),
                lambda v: None if v is None else rule.normal(v))


def _choice(options: Sequence[str]) -> Rule:
    # normal=str: a numpy dtype equals its name, and is stored as that name (JSON has no dtype)
    return Rule(f"one of {', '.join(options)}", lambda v: v in options, str, str,
                choices=tuple(options))


POSITIVE = Rule("a positive number", lambda v: _is_number(v) and v > 0, float, float)
POSITIVE_INT = Rule("a positive integer", lambda v: _is_int(v) and v >= 1, int)
NON_NEGATIVE_INT = Rule("a non-negative integer", lambda v: _is_int(v) and v >= 0, int)
LEARNING_RATE = Rule("a positive learning rate", lambda v: _is_number(v) and v > 0, float,
                     float)
NON_NEGATIVE = Rule("a number of at least 0", lambda v: _is_number(v) and v >= 0, float, float)
FRACTION = Rule("a fraction from 0 up to (not including) 1",
                lambda v: _is_number(v) and 0 <= v < 1, float, float)
FACTOR = Rule("a factor above 0 and at most 1", lambda v: _is_number(v) and 0 < v <= 1, float,
              float)


def _layer_sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


LAYER_SIZES = Rule(
    "positive layer sizes (e.g. 128 or 256,64)",
    lambda v: (isinstance(v, (list, tuple)) and len(v) > 0
               and all(POSITIVE_INT.accept(size) for size in v)),
    _layer_sizes, tuple)
EPOCHS_OR_NONE = _optional(POSITIVE_INT, "none", "a positive number of epochs or None")
DTYPE = _choice(DTYPES)
SCHEDULE = Rule("none, step or cosine", lambda v: v in (None, "none", *SCHEDULES), str,
                lambda v: None if v == "none" else v)
AUGMENT = Rule("none, elastic, affine or affine+elastic",
               lambda v: v in (None, "none", *AUGMENTS), str,
               lambda v: None if v == "none" else v, choices=("none", *AUGMENTS))


def _affine_bounds(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


AFFINE = Rule(
    "four bounds ROTATE,SCALE,SHEAR,SHIFT, each at least 0, SCALE below 1 (e.g. 15,0.15,0.15,2)",
    lambda v: (isinstance(v, (list, tuple)) and len(v) == 4
               and all(NON_NEGATIVE.accept(b) and math.isfinite(b) for b in v) and v[1] < 1),
    _affine_bounds, lambda v: tuple(float(b) for b in v))
BACKEND_NAME = Rule("a backend name", lambda v: v is None or (isinstance(v, str) and v != ""),
                    str)
FLAG = Rule("True or False", lambda v: isinstance(v, bool), bool)


def _setting(default: Any, rule: Rule, help: str, *, metavar: str | None = None,
             shown: str | None = None, step: bool = False) -> Any:
    """A field of TrainSettings: its default, its rule, and its help; ``shown`` is the default
    as the help states it; ``step`` marks the settings a single training step depends on."""
    return field(default=default, metadata={"rule": rule, "help": help, "metavar": metavar,
                                            "shown": shown, "step": step})


# --- the settings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainSettings:
    """Every setting that defines a training run, checked once, when it is made.

    A value that breaks its rule, or a combination that means nothing (``nesterov`` without
    ``momentum``, ``patience`` without ``validation``...), raises :class:`SettingsError` (a
    :class:`~nnscratch.ConfigError`) naming the setting. Values are stored in one form:
    ``hidden`` as a tuple, the rates as floats. ``backend`` is a backend name, or None for the
    current default (see :func:`nnscratch.get_backend`).
    """

    hidden: tuple[int, ...] = _setting(
        (128,), LAYER_SIZES, "hidden layer sizes, comma-separated", metavar="SIZES",
        shown="128", step=True)
    epochs: int = _setting(5, POSITIVE_INT, "passes over the training set", metavar="N")
    batch_size: int | None = _setting(
        128, _optional(POSITIVE_INT, "full", "a positive integer or None (full batch)"),
        "mini-batch size, or 'full' for full-batch gradient descent, one step per epoch",
        metavar="N|full", step=True)
    lr: float = _setting(0.1, LEARNING_RATE, "learning rate", metavar="LR", step=True)
    momentum: float = _setting(0.0, FRACTION, "SGD momentum in [0, 1); 0 is plain SGD",
                               metavar="M", step=True)
    seed: int = _setting(0, NON_NEGATIVE_INT, "seed for the initial weights, the batch order, "
                         "the validation split and the distortions", metavar="N", step=True)
    dtype: str = _setting("float32", DTYPE,
                          "floating-point type of the parameters", step=True)
    init: str = _setting("he", _choice(INIT_SCHEMES),
                         "weight initialisation: he, xavier, or seed (uniform in [0, 0.01), as "
                         "in the blog posts)", step=True)
    optimizer: str = _setting("sgd", _choice(OPTIMIZERS),
                              "sgd (with --momentum, optionally --nesterov) or adam (use a "
                              "learning rate around 0.001)", step=True)
    nesterov: bool = _setting(False, FLAG, "Nesterov momentum instead of heavy-ball (SGD, needs "
                                           "--momentum > 0)", step=True)
    weight_decay: float = _setting(0.0, NON_NEGATIVE,
                                   "L2 weight decay of the weights, not the biases",
                                   metavar="L2", step=True)
    schedule: str | None = _setting(
        None, SCHEDULE, "learning-rate schedule, one rate per epoch: step multiplies it by "
        "--lr-gamma every --lr-step epochs; cosine falls from --lr towards --lr-min",
        metavar="none|step|cosine", shown="none")
    lr_step: int | None = _setting(
        None, EPOCHS_OR_NONE,
        "epochs between the step schedule's drops", metavar="N", shown="a third of --epochs")
    lr_gamma: float = _setting(0.1, FACTOR, "the step schedule's factor per drop, in (0, 1]",
                               metavar="G")
    lr_min: float = _setting(0.0, NON_NEGATIVE, "where the cosine schedule ends", metavar="LR")
    validation: float = _setting(
        0.0, FRACTION, "hold out this fraction of the training images; the model keeps the "
        "parameters of the epoch with the lowest validation loss", metavar="FRACTION")
    patience: int | None = _setting(
        None, EPOCHS_OR_NONE,
        "with --validation, stop after N epochs without a better validation loss",
        metavar="N", shown="train all --epochs")
    eval_every: int | None = _setting(
        None, EPOCHS_OR_NONE,
        "evaluate the test (and validation) images every N epochs and after the last one",
        metavar="N", shown="every epoch; every 10th for full-batch runs, one step an epoch")
    scaling: str = _setting(
        "auto", _choice(SCALINGS), "how inputs are prepared: pixels (0-255, divided by 255), "
        "standardize (each feature by the training set's mean and spread, kept in the model), "
        "none (as given), or auto: pixels for integer data, standardize for floats")
    augment: str | None = _setting(
        None, AUGMENT, "distort the training images anew each epoch (square uint8 images "
        "only): elastic (Simard et al. 2003), affine (random rotation, scale, shear and shift), "
        "or both", metavar="none|elastic|affine|affine+elastic", shown="none")
    elastic_alpha: float = _setting(34.0, POSITIVE, "how far elastic distortions move pixels "
                                    "(the smoothed noise's scale, in pixels)", metavar="A")
    elastic_sigma: float = _setting(4.0, POSITIVE, "how smooth elastic distortions are (the "
                                    "Gaussian's width, in pixels)", metavar="S")
    affine: tuple[float, ...] = _setting(
        (15.0, 0.15, 0.15, 2.0), AFFINE, "bounds of the affine distortions, each either way: "
        "rotation in degrees, scale factor, horizontal shear factor, shift in pixels",
        metavar="ROTATE,SCALE,SHEAR,SHIFT", shown="15,0.15,0.15,2")
    backend: str | None = _setting(
        None, BACKEND_NAME, "array backend (see 'nnscratch backends')", metavar="NAME",
        shown="$NNSCRATCH_BACKEND or numpy")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = spec.metadata["rule"].check(spec.name, getattr(self, spec.name))
            object.__setattr__(self, spec.name, value)  # frozen: set once, in stored form
        self._check_combinations()

    def _check_combinations(self) -> None:
        """Settings that mean something only together with another."""
        check_optimizer_combination(self.optimizer, self.momentum, self.nesterov)
        if self.patience is not None and not self.validation:
            raise SettingsError("{patience} needs {validation}: a held-out fraction (e.g. 0.1) "
                                "to watch")
        check_lr_min(self.lr, self.lr_min)
        check_augment(self.augment, self.elastic_alpha, self.elastic_sigma, self.affine)

    # --- conversions ------------------------------------------------------------------------

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with ``changes`` (setting names and values), checked again."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object (``hidden`` as a list), for ``config.json``."""
        record = dataclasses.asdict(self)
        record["hidden"] = list(self.hidden)
        record["affine"] = list(self.affine)
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> TrainSettings:
        """Settings from :meth:`to_json`'s record; a setting it lacks takes its default (records
        written before that setting existed), an unknown name is refused."""
        if not isinstance(record, Mapping):
            raise ConfigError(f"settings must be a JSON object; got {type(record).__name__}")
        _check_names(record)
        return cls(**record)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name, in declaration order."""
        return _FIELD_NAMES

    @classmethod
    def describe(cls) -> Iterator[tuple[str, Any, Rule, dict[str, Any]]]:
        """Each setting as ``(name, default, rule, metadata)``: what front ends are made from."""
        for spec in dataclasses.fields(cls):
            yield spec.name, spec.default, spec.metadata["rule"], dict(spec.metadata)

    def differences(self, other: TrainSettings) -> dict[str, tuple[Any, Any]]:
        """The settings whose values differ: name -> (this value, the other's)."""
        return {name: (getattr(self, name), getattr(other, name)) for name in _FIELD_NAMES
                if getattr(self, name) != getattr(other, name)}

    def __getitem__(self, name: str) -> Any:
        """``settings["lr"]``: TrainResult.settings was a dict before it was a TrainSettings;
        indexing it by name keeps working for one release."""
        if name not in _FIELD_NAMES:
            raise KeyError(name)
        return getattr(self, name)


def check_optimizer_combination(optimizer: str, momentum: float, nesterov: bool) -> None:
    """Refuse momentum or nesterov with Adam, and nesterov without momentum."""
    if optimizer == "adam" and (momentum or nesterov):
        raise SettingsError("{momentum} and {nesterov} are SGD settings; Adam keeps its own "
                            "running moments, so leave them out with {optimizer} adam")
    if nesterov and not momentum:
        raise SettingsError("{nesterov} needs {momentum} above 0 (e.g. 0.9)")


def check_augment(augment: str | None, alpha: float, sigma: float,
                  affine: tuple[float, ...]) -> None:
    """Refuse elastic or affine settings changed from their defaults without that
    distortion."""
    kinds = () if augment is None else augment.split("+")
    defaults = {spec.name: spec.default for spec in dataclasses.fields(TrainSettings)}
    for name, value, kind in (("elastic_alpha", alpha, "elastic"),
                              ("elastic_sigma", sigma, "elastic"), ("affine", affine, "affine")):
        if value != defaults[name] and kind not in kinds:
            raise SettingsError("{%s} needs {augment} %s (or affine+elastic)" % (name, kind))


def check_lr_min(lr: float, lr_min: float) -> None:
    """Refuse a cosine schedule's floor that is not below the learning rate."""
    if lr_min >= lr:
        raise SettingsError("{lr_min} must be below {lr}, the learning rate (%g); got %r"
                            % (lr, lr_min))


_FIELD_NAMES = tuple(spec.name for spec in dataclasses.fields(TrainSettings))
#: The settings a single training step depends on (what :class:`~nnscratch.Trainer` and
#: ``nnscratch compare`` take).
STEP_SETTINGS = tuple(spec.name for spec in dataclasses.fields(TrainSettings)
                      if spec.metadata["step"])


def _check_names(names: Mapping[str, Any]) -> None:
    unknown = [name for name in names if name not in _FIELD_NAMES]
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}: the settings are "
                          f"{', '.join(_FIELD_NAMES)}")
