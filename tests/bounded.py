"""Tests that a call stays within bounds: of memory (what Python allocates while it runs) and
of time (a call that would wait forever fails the test instead of hanging the suite)."""

from __future__ import annotations

import contextlib
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["Peak", "traced_peak", "within"]


@dataclass
class Peak:
    """The most bytes Python had allocated at once inside a :func:`traced_peak` block."""

    bytes: int = 0


@contextlib.contextmanager
def traced_peak() -> Iterator[Peak]:
    """``with traced_peak() as peak:``, then ``peak.bytes``, also when the block raised."""
    peak = Peak()
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def within(seconds: float, call: Callable[[], Any], what: str) -> tuple[str, Any]:
    """``("returned", value)`` or ``("raised", exception)`` of ``call``, run in a daemon thread;
    a call still running after ``seconds`` fails the test, saying ``what`` was still going on."""
    outcome: list[tuple[str, Any]] = []

    def target() -> None:
        try:
            outcome.append(("returned", call()))
        except BaseException as exc:  # noqa: BLE001 (handed to the test)
            outcome.append(("raised", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still {what} after {seconds} s")
    return outcome[0]
