"""nnscratch: train neural networks on MNIST digits, with the math written once and run on
interchangeable array backends (NumPy here; Numba and CuPy as plugins).

>>> import nnscratch
>>> result = nnscratch.train(epochs=1)          # doctest: +SKIP
>>> result.test_accuracy                        # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types

from . import callbacks as _callbacks
from . import trainer as _trainer
from . import training as _training
from .backend import Backend
from .callbacks import Callback, EpochStats, ProgressPrinter
from .data import MnistData, load_dataset, load_mnist
from .errors import (BackendUnavailableError, ConfigError, DataError, ModelFileError,
                     NNScratchError, RunFolderError, TrainingDivergedError)
from .model import MLP, load_model
from .optim import SGD, Adam, LRSchedule
from .registry import (BackendInfo, available_backends, get_backend, register_backend,
                       use_backend)
from .report import build_report
from .settings import SettingsError, TrainSettings
from .sweeps import SweepInterrupted, SweepResult, sweep
from .trainer import Trainer
from .training import TrainingInterrupted, TrainResult, train
from ._version import __version__

__all__ = [
    "train",
    "TrainSettings",
    "TrainResult",
    "Trainer",
    "EpochStats",
    "Callback",
    "ProgressPrinter",
    "TrainingInterrupted",
    "sweep",
    "SweepResult",
    "SweepInterrupted",
    "build_report",
    "MLP",
    "SGD",
    "Adam",
    "LRSchedule",
    "load_model",
    "load_mnist",
    "load_dataset",
    "MnistData",
    "Backend",
    "BackendInfo",
    "get_backend",
    "available_backends",
    "use_backend",
    "register_backend",
    "NNScratchError",
    "ConfigError",
    "SettingsError",
    "DataError",
    "ModelFileError",
    "BackendUnavailableError",
    "TrainingDivergedError",
    "RunFolderError",
    "__version__",
]


def _old_train_module() -> types.ModuleType:
    """``nnscratch.train`` was a module as well as the function, and the function hid it; it
    was split into trainer, training and callbacks. For one release, ``from nnscratch.train
    import Trainer`` (and its other names) still works; ``nnscratch.train`` is the function."""
    module = types.ModuleType(f"{__name__}.train", _old_train_module.__doc__)
    for source in (_callbacks, _trainer, _training):
        module.__dict__.update({name: getattr(source, name) for name in source.__all__})
    return module


sys.modules.setdefault(f"{__name__}.train", _old_train_module())
