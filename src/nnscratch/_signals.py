"""SIGINT (Ctrl-C) and SIGTERM (what ``kill``, systemd, Docker and SLURM send): both stop
nnscratch the same way, cleanly.

- While :func:`nnscratch.train` runs, :func:`stop_requests` turns the first of them into a
  request that the training loop honours after the current step (a checkpoint, then
  :class:`~nnscratch.TrainingInterrupted`); a second one stops at once.
- Elsewhere in the command line, :func:`terminate_as_interrupt` makes SIGTERM raise
  :class:`Terminated`, a KeyboardInterrupt, so the same clean-up runs as for Ctrl-C: every
  file being written is discarded whole (:func:`nnscratch._fileio.atomic_file`).
- :func:`signals_deferred` holds either signal back while a C extension works that would
  mangle the exception (matplotlib drawing a figure turns a KeyboardInterrupt raised inside it
  into "ValueError: Invalid bounding box"), and delivers it afterwards.

The exit code of a command stopped by a signal is 128 plus its number: 130 for SIGINT, 143 for
SIGTERM. Handlers are installed only in the main thread (the only one Python delivers signals
to) and the previous ones are put back afterwards.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Terminated", "StopRequest", "stop_requests", "terminate_as_interrupt",
           "signals_deferred", "signal_name", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``"Ctrl-C"`` for SIGINT, else the signal's name (``"SIGTERM"``)."""
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived where nnscratch handles it like Ctrl-C."""

    signum = signal.SIGTERM


class StopRequest:
    """Which stop signal has arrived, if any (``signum``: None until one does)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handlers(handler: Any, signums: tuple[int, ...]) -> Iterator[None]:
    if not _in_main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """While the block runs, the first SIGINT or SIGTERM only records itself in the
    :class:`StopRequest` yielded (the caller checks it when it can stop cleanly); a second one
    raises KeyboardInterrupt (:class:`Terminated` for SIGTERM) at once."""
    request = StopRequest()

    def record(signum: int, frame: Any) -> None:
        if request:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        request.signum = signum

    with _handlers(record, STOP_SIGNALS):
        yield request


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt)."""
    def interrupt(signum: int, frame: Any) -> None:
        raise Terminated

    with _handlers(interrupt, (signal.SIGTERM,)):
        yield


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM are only recorded; when it ends, the handlers
    that were in place come back and the first signal recorded is delivered to them."""
    arrived: list[int] = []

    def record(signum: int, frame: Any) -> None:
        arrived.append(signum)

    with _handlers(record, STOP_SIGNALS):
        yield
    if arrived:
        signal.raise_signal(arrived[0])
