"""A sweep's spec: the TOML file that says which training runs (trials) a sweep is made of.

Reading a spec expands it into its trials, each a :class:`~nnscratch.TrainSettings`, every one
checked before anything runs; :mod:`nnscratch.sweeps` runs them on Dask.

A spec::

    search = "grid"             # "random", or "halving" (default: "grid", "random" with [random])
    seeds = [0, 1, 2]           # repeat every configuration with each seed

    # (TOML: keys of the top level come before the first [table])

    [data]                      # optional: what train() and --data take
    path = "~/mnist"            # a folder or file; else NNSCRATCH_DATA, the cache, the sample
    dataset = "mnist"           # or "fashion-mnist"
    label_column = "species"    # for a CSV table

    [fixed]                     # settings every trial has
    epochs = 5
    optimizer = "adam"

    [grid]                      # every combination of these lists
    hidden = [64, 128, [256, 64]]
    lr = [0.001, 0.003]

    [random]                    # with search = "random": `trials` draws, from `seed`
    trials = 8
    seed = 0
    lr = { log_uniform = [1e-4, 1e-2] }
    momentum = { uniform = [0.0, 0.95] }
    batch_size = { choice = [32, 64, 128] }

    [halving]                   # with search = "halving" (successive halving, see below)
    min_epochs = 1              # the first rung trains every configuration this many epochs
    eta = 3                     # each rung keeps the best third and trains them eta times longer

With ``search = "halving"`` the configurations are the grid's points (and, with a [random]
table, its draws for each of them); each rung trains the trials still in the race up to its
epoch (``min_epochs``, ``min_epochs * eta``, ... and last their ``epochs``), and keeps the best
``1/eta`` of them (by validation accuracy when the settings hold out a validation split, else by
test accuracy) for the next.

Trials are listed in a fixed order (grid points, or random draws, each with every seed) and
named by their position and a digest of their settings, so the same spec always gives the same
trials. A mistake (an unknown table, key or setting, a value a setting refuses, a distribution
nnscratch does not know) is one :class:`~nnscratch.errors.ConfigError` sentence naming the
spec and the key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._fileio import as_path, open_regular
from .errors import ConfigError
from .settings import TrainSettings

__all__ = ["SweepSpec", "Trial", "read_spec", "parse_spec", "SEARCHES", "DISTRIBUTIONS"]

SEARCHES = ("grid", "random", "halving")
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int_uniform")
_DATA_KEYS = ("path", "dataset", "label_column", "test_data")
_TOP_KEYS = ("search", "data", "fixed", "grid", "random", "halving", "seeds")
_HALVING_KEYS = {"min_epochs": 1, "eta": 2}  # each with the least it may be


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: its name (``003-1a2b3c4d``: position and settings digest)
    and its settings."""

    name: str
    settings: TrainSettings


@dataclass(frozen=True)
class SweepSpec:
    """A spec read and checked: the search, the data, the trials it expands to and, for
    successive halving, its ``min_epochs`` and ``eta``; ``record`` is the parsed TOML."""

    source: str
    search: str
    data: dict[str, Any] = field(default_factory=dict)
    trials: tuple[Trial, ...] = ()
    halving: dict[str, int] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def varying(self) -> list[str]:
        """The settings that differ between trials: what the sweep sweeps."""
        return [name for name in TrainSettings.names()
                if len({_shown(getattr(t.settings, name)) for t in self.trials}) > 1]

    def table(self) -> str:
        """The trials as a text table: name, then each setting that varies between trials."""
        varying = self.varying
        rows = [["trial", *varying]] + [[t.name, *(_shown(getattr(t.settings, name))
                                                   for name in varying)] for t in self.trials]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                         for row in rows)


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
        return tomllib
    try:
        import tomli
    except ImportError:
        raise ConfigError("reading a sweep spec on Python 3.10 needs tomli: "
                          "pip install \"nnscratch[sweep]\"") from None
    return tomli


def read_spec(path: str | os.PathLike) -> SweepSpec:
    """The sweep spec in the TOML file at ``path``, checked and expanded into its trials."""
    location = as_path(path, ConfigError, "the sweep spec")
    toml = _toml()
    with open_regular(location, ConfigError, "a sweep spec (TOML)") as handle:
        try:
            record = toml.load(handle)
        except toml.TOMLDecodeError as exc:
            raise ConfigError(f"{location}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{location}: not UTF-8 text, so not a TOML sweep spec") from None
    return parse_spec(record, str(location))


def parse_spec(record: Mapping[str, Any], source: str = "the sweep spec") -> SweepSpec:
    """A spec from its parsed TOML ``record`` (see the module's docstring); ``source`` names it
    in errors."""
    _known(record, _TOP_KEYS, source, "")
    search = record.get("search", "random" if "random" in record else "grid")
    if search not in SEARCHES:
        raise ConfigError(f"{source}: search must be one of {', '.join(SEARCHES)}; "
                          f"got {search!r:.40}")
    data = _table(record, "data", source)
    _known(data, _DATA_KEYS, source, "data.")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigError(f"{source}: data.{key} must be a string; got {value!r:.40}")
    fixed = _settings_table(record, "fixed", source)
    grid = _settings_table(record, "grid", source)
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid.{name} must be a list of values; "
                              f"got {values!r:.40}")
    random_record = _table(record, "random", source)
    if search == "random" and not random_record:
        raise ConfigError(f"{source}: search \"random\" needs a [random] table")
    if search == "grid" and random_record:
        raise ConfigError(f"{source}: a [random] table needs search = \"random\" (or "
                          f"\"halving\")")
    halving = _halving(record, search, source)
    seeds = _seeds(record, source)
    configs = (_random_points(random_record, grid, source) if random_record
               else _grid_points(grid))
    trials = []
    for point in configs:
        for seed in seeds:
            changes = {**fixed, **point, **({} if seed is None else {"seed": seed})}
            settings = _settings(changes, source)
            trials.append(Trial(f"{len(trials):03d}-{_digest(settings)}", settings))
    return SweepSpec(source, search, dict(data), tuple(trials), halving, dict(record))


def _known(record: Mapping[str, Any], keys: Sequence[str], source: str, prefix: str) -> None:
    for key in record:
        if key not in keys:
            raise ConfigError(f"{source}: unknown key {prefix}{key!r}; a spec has "
                              f"{', '.join(prefix + k for k in keys)}")


def _table(record: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    table = record.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {name} must be a table ([{name}]); got {table!r:.40}")
    return table


def _settings_table(record: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    table = _table(record, name, source)
    for key in table:
        if key in _TOP_KEYS:
            raise ConfigError(f"{source}: {name}.{key} is not a setting: {key} belongs to the "
                              f"top level, before the first [table]")
        if key not in TrainSettings.names():
            raise ConfigError(f"{source}: {name}.{key} is not a setting; the settings are "
                              f"{', '.join(TrainSettings.names())}")
    return table


def _halving(record: Mapping[str, Any], search: str, source: str) -> dict[str, int]:
    table = _table(record, "halving", source)
    if table and search != "halving":
        raise ConfigError(f"{source}: a [halving] table needs search = \"halving\"")
    if search != "halving":
        return {}
    _known(table, tuple(_HALVING_KEYS), source, "halving.")
    chosen = {"min_epochs": 1, "eta": 3, **table}
    for key, least in _HALVING_KEYS.items():
        value = chosen[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{source}: halving.{key} must be an integer of at least {least}; "
                              f"got {value!r:.40}")
    return chosen


def _seeds(record: Mapping[str, Any], source: str) -> list[int | None]:
    seeds = record.get("seeds")
    if seeds is None:
        return [None]
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ConfigError(f"{source}: seeds must be a list of integers; got {seeds!r:.40}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{source}: seeds lists a seed twice")
    return list(seeds)


def _grid_points(grid: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        yield dict(zip(names, values))


def _random_points(record: Mapping[str, Any], grid: Mapping[str, list[Any]],
                   source: str) -> list[dict[str, Any]]:
    """``trials`` draws of the [random] settings (for each grid point, when there is a grid),
    from a generator seeded by ``seed``: the same spec draws the same trials."""
    trials, seed = record.get("trials"), record.get("seed", 0)
    for key, value in (("trials", trials), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (key == "trials"):
            raise ConfigError(f"{source}: random.{key} must be an integer of at least "
                              f"{int(key == 'trials')}; got {value!r:.40}")
    draws = {name: spec for name, spec in record.items() if name not in ("trials", "seed")}
    for name in draws:
        if name not in TrainSettings.names():
            raise ConfigError(f"{source}: random.{name} is not a setting (nor trials, seed); "
                              f"the settings are {', '.join(TrainSettings.names())}")
    samplers = {name: _sampler(name, spec, source) for name, spec in draws.items()}
    rng = np.random.default_rng(seed)
    points = []
    for base in _grid_points(grid):
        for _ in range(trials):
            points.append({**base, **{name: draw(rng) for name, draw in samplers.items()}})
    return points


def _sampler(name: str, spec: Any, source: str) -> Any:
    where = f"{source}: random.{name}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where} must be one distribution, e.g. {{ uniform = [0.0, 0.9] }}; "
                          f"the distributions are {', '.join(DISTRIBUTIONS)}")
    (kind, args), = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution {kind!r}; the distributions are "
                          f"{', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}: choice needs a list of values")
        return lambda rng: args[int(rng.integers(len(args)))]
    if (not isinstance(args, list) or len(args) != 2
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
            or not args[0] < args[1]):
        raise ConfigError(f"{where}: {kind} needs [low, high] with low < high; "
                          f"got {args!r:.40}")
    low, high = args
    if kind == "int_uniform":
        if not all(isinstance(a, int) for a in args):
            raise ConfigError(f"{where}: int_uniform needs integer bounds; got {args!r:.40}")
        return lambda rng: int(rng.integers(low, high + 1))
    if kind == "log_uniform":
        if low <= 0:
            raise ConfigError(f"{where}: log_uniform needs bounds above 0; got {args!r:.40}")
        return lambda rng: float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return lambda rng: float(rng.uniform(low, high))


def _settings(changes: Mapping[str, Any], source: str) -> TrainSettings:
    hidden = changes.get("hidden")
    if isinstance(hidden, int) and not isinstance(hidden, bool):  # one layer: hidden = 128
        changes = {**changes, "hidden": [hidden]}
    try:
        return TrainSettings(**changes)
    except ConfigError as exc:
        shown = ", ".join(f"{k} = {json.dumps(v) if not isinstance(v, tuple) else list(v)}"
                          for k, v in changes.items())
        raise ConfigError(f"{source}: a trial ({shown}) is impossible: {exc}") from None


def _digest(settings: TrainSettings) -> str:
    text = json.dumps(settings.to_json(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]

