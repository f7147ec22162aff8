"""nnscratch: train neural networks on MNIST digits, with the math written once and run on
interchangeable array backends (NumPy here; Numba and CuPy as plugins).

>>> import nnscratch
>>> result = nnscratch.train(epochs=1)          # doctest: +SKIP
>>> result.test_accuracy                        # doctest: +SKIP
"""

from __future__ import annotations

from .backend import Backend, BackendInfo, available_backends, get_backend, use_backend
from .data import MnistData, load_mnist
from .errors import (BackendUnavailableError, ConfigError, DataError, ModelFileError,
                     NNScratchError, RunFolderError, TrainingDivergedError)
from .model import MLP, load_model
from .optim import SGD, Adam, LRSchedule
from .report import build_report
from .train import Callback, EpochStats, ProgressPrinter, TrainingInterrupted, TrainResult, train
from ._version import __version__

__all__ = [
    "train",
    "TrainResult",
    "EpochStats",
    "Callback",
    "ProgressPrinter",
    "TrainingInterrupted",
    "build_report",
    "MLP",
    "SGD",
    "Adam",
    "LRSchedule",
    "load_model",
    "load_mnist",
    "MnistData",
    "Backend",
    "BackendInfo",
    "get_backend",
    "available_backends",
    "use_backend",
    "NNScratchError",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "BackendUnavailableError",
    "TrainingDivergedError",
    "RunFolderError",
    "__version__",
]
