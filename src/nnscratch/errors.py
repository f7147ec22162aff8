"""The errors a user can cause.

Each one carries a single sentence that names the input and the problem; the command line prints
that sentence and exits with :attr:`exit_code`, without a traceback. Anything else is a bug.
"""

from __future__ import annotations

__all__ = [
    "NNScratchError",
    "ConfigError",
    "DataError",
    "ModelFileError",
    "BackendUnavailableError",
    "TrainingDivergedError",
    "RunFolderError",
    "WriteError",
]


class NNScratchError(Exception):
    """Base class of every error caused by user input rather than by a bug."""

    exit_code = 2


class ConfigError(NNScratchError, ValueError):
    """An option has an impossible value (a negative learning rate, an unknown dtype...)."""


class DataError(NNScratchError, ValueError):
    """A data file or folder is missing, truncated, malformed or inconsistent."""


class ModelFileError(NNScratchError, ValueError):
    """A model file is missing, corrupt, tampered with or of an unknown format."""


class BackendUnavailableError(NNScratchError, RuntimeError):
    """A backend is unknown, not installed, or cannot run on this machine."""


class RunFolderError(NNScratchError, ValueError):
    """A run folder or its checkpoint is missing, incomplete, corrupt or not what was asked."""


class WriteError(NNScratchError, OSError):
    """A file or folder could not be written: a full disk, a read-only or missing folder, no
    permission, a file where a folder should be. Also an ``OSError``, so code that catches
    those still does; the message names the path and the system's reason."""


class TrainingDivergedError(NNScratchError, ArithmeticError):
    """The training loss became NaN, infinite or larger than
    :data:`~nnscratch.trainer.DIVERGED_LOSS` (10,000)."""

    exit_code = 3
