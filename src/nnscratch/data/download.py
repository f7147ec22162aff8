"""Downloading a full data set (MNIST, Fashion-MNIST: :mod:`.datasets`) into the user cache, and
checking the copies already there.

The four IDX files are fetched from the first of the data set's mirrors (or of those in
``$NNSCRATCH_MIRRORS``, comma-separated base URLs, whichever set is downloaded) that serves
them intact. Each download goes to a temporary file beside its target, is checked against its
pin (MNIST: the SHA-256 and size of the decompressed data; Fashion-MNIST: the MD5 of the .gz
file, which is what its publisher gives), and only then renamed into place, so the cache never
holds a partial or unverified file, whatever interrupts the download. A mirror that fails
(unreachable, an HTTP error, no answer within the timeout, a corrupt copy) is reported and the
next one tried. So is a mirror still sending a file after :data:`DEADLINE_SECONDS` (the
timeout is per read: a mirror trickling a byte every few seconds would otherwise hold the
download forever).

Files fetched this way are listed in a small JSON record, ``verified.json`` beside them, with the
size and modification time they had when their checksum was verified. Every later use compares
each file's size and modification time with the record, which costs a ``stat``; only a file
that changed is hashed again. A cache folder without a record was filled by hand and is used as
it is (nnscratch cannot know what the user meant to put there).

Only the standard library is used: ``urllib`` for HTTP, imported when a download starts.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .._fileio import (CHUNK_BYTES, atomic_file, make_folder, open_regular, write_error,
                       write_text)
from ..errors import ConfigError, DataError, WriteError
from .cache import dataset_cache_dir
from .datasets import DATASETS, DEFAULT_DATASET, MNIST_PINS, Dataset, Pin, get_dataset
from .readers import data_path

__all__ = [
    "MIRRORS",
    "MIRRORS_ENV_VAR",
    "PINNED",
    "TIMEOUT_SECONDS",
    "DEADLINE_SECONDS",
    "Fetched",
    "configured_mirrors",
    "download_mnist",
    "download_dataset",
    "has_record",
    "verify_cached",
]

MIRRORS = DATASETS[DEFAULT_DATASET].mirrors  # MNIST's: PyTorch's, then Google's
MIRRORS_ENV_VAR = "NNSCRATCH_MIRRORS"
TIMEOUT_SECONDS = 30.0
#: The most seconds one file may take to come from one mirror, all reads together (the largest
#: MNIST file is 9.9 MB: at 50 kB/s, a slow but working line, it takes three minutes and a
#: half); a mirror past it is abandoned and the next one tried. Read when a download starts, so
#: that tests can lower it.
DEADLINE_SECONDS = 600.0
RECORD_NAME = "verified.json"
_MAX_RECORD_BYTES = 1 << 16  # four small entries; anything longer is not nnscratch's record


_Pin = Pin  # the name this module used before the pins moved to .datasets
PINNED = MNIST_PINS  # MNIST's pins (each data set's are in its row of DATASETS)

# A gzip file is never more than a little larger than its content (stored blocks add 5 bytes per
# 64 KiB); a mirror that sends more than this is sending something else.
_GZIP_OVERHEAD = 1 << 16


@dataclass(frozen=True)
class Fetched:
    """One file of the cache after :func:`download_mnist`."""

    name: str  # e.g. "train-images-idx3-ubyte.gz"
    path: Path
    mirror: str | None  # the base URL it came from; None if the cache already held it, verified
    size: int  # bytes on disk


class _MirrorFailed(Exception):
    """One mirror could not deliver one file; the message says why, for the final error."""


# --- checking files against the pins ----------------------------------------------------------


def _pin_for(path: Path, pins: Mapping[str, Pin]) -> Pin | None:
    """The pin of an IDX file under any of its spellings (raw or .gz, dashes or dots)."""
    return pins.get(path.name.removesuffix(".gz").replace(".idx", "-idx"))


def _content_problem(path: Path, pin: Pin, compressed: bool) -> str | None:
    """None if ``path`` is what ``pin`` says: its bytes as they are (a pin of the .gz file) or
    once gunzipped, if ``compressed`` (a pin of the data); otherwise what is wrong, as a phrase
    to follow the file's name."""
    if pin.of_gzip_file and not compressed:
        return f"is not the .gz file that its pinned {pin.checksum_name} checksum is of"
    whole_file = pin.of_gzip_file or not compressed
    limit = pin.size + _GZIP_OVERHEAD if pin.of_gzip_file else pin.size
    digest, size = hashlib.new(pin.algorithm, usedforsecurity=False), 0
    try:
        with open_regular(path, DataError, "a data file") as raw, (
                contextlib.nullcontext(raw) if whole_file else gzip.GzipFile(fileobj=raw)
        ) as stream:
            while size <= limit and (chunk := stream.read(CHUNK_BYTES)):  # bounded: no gzip bomb
                digest.update(chunk)
                size += len(chunk)
    except DataError as exc:  # not a regular file: a FIFO put where a download was
        return f"cannot be read ({str(exc).removeprefix(str(path)).strip()})"
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        return f"cannot be decompressed ({' '.join(str(exc).split())})"
    if pin.of_gzip_file and size > limit:
        return f"holds more than the {limit:,} bytes its data can take compressed"
    if not pin.of_gzip_file and size != pin.size:
        return f"holds {size:,}{'+' * (size > pin.size)} bytes of data, not the {pin.size:,} pinned"
    if digest.hexdigest() != pin.digest:
        return f"does not match its pinned {pin.checksum_name} checksum"
    return None


def _record_entry(path: Path, pin: Pin) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, pin.algorithm: pin.digest}


def _read_record(folder: Path) -> dict[str, Any]:
    # An unreadable record only costs a re-verification of every file: the safe direction.
    with contextlib.suppress(DataError, OSError, ValueError), open_regular(
            folder / RECORD_NAME, DataError, "a JSON record") as stream:
        record = json.loads(stream.read(_MAX_RECORD_BYTES).decode("utf-8"))
        if isinstance(record, dict) and isinstance(record.get("files"), dict):
            return record["files"]
    return {}


def _write_record(folder: Path, files: dict[str, Any]) -> None:
    # Written atomically, and a failure (a read-only cache) is ignored: the record only saves
    # work, so without it the files are simply hashed again next time.
    text = json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True)
    with contextlib.suppress(OSError):
        write_text(folder / RECORD_NAME, text)


def _verified(path: Path, record: dict[str, Any], pins: Mapping[str, Pin]) -> str | None:
    """Check one cached file: against the record if its size and mtime are unchanged (a stat),
    else by hashing it, updating ``record`` on success. None if it is good, else the problem."""
    pin = _pin_for(path, pins)
    if pin is None:
        return f"{path.name} is not one of the files nnscratch downloads"
    if record.get(path.name) == _record_entry(path, pin):
        return None
    problem = _content_problem(path, pin, compressed=path.name.endswith(".gz"))
    if problem is None:
        record[path.name] = _record_entry(path, pin)
    return problem and f"{path.name} in it {problem}"


def has_record(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds files that nnscratch downloaded (and so can verify)."""
    return (Path(folder) / RECORD_NAME).is_file()


def verify_cached(folder: str | os.PathLike, files: Iterable[str | os.PathLike],
                  dataset: str | Dataset = DEFAULT_DATASET) -> str | None:
    """Check ``files`` in the cache ``folder`` against the pins of ``dataset``: None when all
    are intact, else a phrase saying which is not and what to do."""
    folder, chosen = data_path(folder, "the cache folder"), get_dataset(dataset)
    record = _read_record(folder)
    before = dict(record)
    for path in map(Path, files):
        problem = _verified(path, record, chosen.pins)
        if problem:
            return f"{problem}; run '{chosen.download_command}' to fetch it again"
    if record != before:
        _write_record(folder, record)
    return None


# --- downloading ---------------------------------------------------------------------------------


def configured_mirrors(dataset: str | Dataset = DEFAULT_DATASET) -> tuple[str, ...]:
    """The base URLs to download ``dataset`` from: ``$NNSCRATCH_MIRRORS`` if set, else the data
    set's own mirrors (:data:`MIRRORS` for MNIST)."""
    chosen = get_dataset(dataset)
    value = os.environ.get(MIRRORS_ENV_VAR, "")
    if not value.strip():
        return MIRRORS if chosen.name == DEFAULT_DATASET else chosen.mirrors
    return _check_mirrors(value.split(","), MIRRORS_ENV_VAR)


def _check_mirrors(urls: Iterable[str], source: str) -> tuple[str, ...]:
    bases = []
    for url in (url.strip() for url in urls):
        if not url:
            continue
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise DataError(f"{source} lists {url[:80]!r}, which is not an http:// or https:// "
                            "URL")
        bases.append(url if url.endswith("/") else url + "/")
    if not bases:
        raise DataError(f"{source} lists no mirror URL")
    return tuple(bases)


def download_mnist(folder: str | os.PathLike | None = None, *,
                   mirrors: Sequence[str] | None = None, timeout: float = TIMEOUT_SECONDS,
                   progress: bool | None = None,
                   report: Callable[[Fetched], None] | None = None) -> list[Fetched]:
    """:func:`download_dataset` for MNIST (default folder: ``user_cache_dir() / "mnist"``)."""
    return download_dataset(DEFAULT_DATASET, folder, mirrors=mirrors, timeout=timeout,
                            progress=progress, report=report)


def download_dataset(dataset: str | Dataset, folder: str | os.PathLike | None = None, *,
                     mirrors: Sequence[str] | None = None, timeout: float = TIMEOUT_SECONDS,
                     progress: bool | None = None,
                     report: Callable[[Fetched], None] | None = None) -> list[Fetched]:
    """Make ``folder`` (default: ``user_cache_dir() / NAME``) hold the four verified ``.gz``
    files of the data set ``dataset`` ("mnist", "fashion-mnist"), downloading each one it lacks
    (or holds damaged) from the first mirror that serves it intact. Returns one
    :class:`Fetched` per file, also passed to ``report`` as each is done.

    ``mirrors``: base URLs (default: :func:`configured_mirrors`); ``timeout``: seconds to wait
    for a mirror to answer each read (a mirror taking more than :data:`DEADLINE_SECONDS` for
    a whole file is abandoned too); ``progress``: a progress line on stderr (default: only when stderr
    is a terminal). Raises DataError naming each mirror's failure when none serves a file, and
    :class:`~nnscratch.errors.WriteError` when the folder cannot be written (a full disk, a
    read-only folder), leaving no partial or temporary file.
    """
    chosen = get_dataset(dataset)
    target = (data_path(folder, "the download folder") if folder is not None
              else dataset_cache_dir(chosen.name))
    if mirrors is not None and (isinstance(mirrors, (str, bytes)) or not all(
            isinstance(url, str) for url in _listed(mirrors))):
        raise ConfigError(f"mirrors must be a list of base URLs (str), not "
                          f"{_shown_value(mirrors)}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"the timeout must be a number of seconds above 0, not "
                          f"{_shown_value(timeout)}")
    bases = (configured_mirrors(chosen) if mirrors is None
             else _check_mirrors(mirrors, "mirrors"))
    make_folder(target, "the cache folder")
    show = _Progress(sys.stderr, sys.stderr.isatty() if progress is None else progress)
    record = _read_record(target)
    fetched = []
    for name, pin in chosen.pins.items():
        path = target / f"{name}.gz"
        if path.is_file() and _verified(path, record, chosen.pins) is None:
            done = Fetched(path.name, path, None, path.stat().st_size)
        else:
            mirror, size = _fetch(path, pin, bases, timeout, show)
            record[path.name] = _record_entry(path, pin)
            done = Fetched(path.name, path, mirror, size)
        _write_record(target, record)  # after each file: a later failure keeps this one's entry
        fetched.append(done)
        if report is not None:
            report(done)
    return fetched


def _listed(values: Any) -> list[Any]:
    try:
        return list(values)
    except TypeError:  # not iterable: a number, say
        return [values]


def _shown_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:40] + '...'}"


def _fetch(path: Path, pin: Pin, bases: Sequence[str], timeout: float,
           show: _Progress) -> tuple[str, int]:
    """Download ``path`` from the first mirror that delivers it intact; (mirror, bytes)."""
    failures = []
    for base in bases:
        try:
            return base, _fetch_from(base + path.name, path, pin, timeout, show)
        except _MirrorFailed as exc:
            failures.append(f"{base}: {exc}")
            show.note(f"{path.name} from {base} failed: {exc}")
    raise DataError(f"could not download {path.name} from any mirror ({'; '.join(failures)})")


def _fetch_from(url: str, path: Path, pin: Pin, timeout: float, show: _Progress) -> int:
    """Download ``url`` to a temporary file beside ``path``, verify it, and rename it to
    ``path``; on any failure (or interruption) the temporary file is removed."""
    with atomic_file(path) as out:
        temp = Path(out.name)
        size = _copy_url(url, out, pin.size + _GZIP_OVERHEAD, timeout, show, path)
        out.flush()  # verified by reading the file back, before atomic_file renames it
        problem = _content_problem(temp, pin, compressed=True)
        if problem:
            raise _MirrorFailed(f"the file it serves {problem}")
    return size


def _copy_url(url: str, out: BinaryIO, limit: int, timeout: float, show: _Progress,
              target: Path) -> int:
    """Copy the body at ``url`` into ``out`` (the temporary file of ``target``); the number of
    bytes. Network failures, and a
    mirror past its deadline, become _MirrorFailed; a failure to write stays a WriteError
    (another mirror would not help)."""
    # Imported here: importing nnscratch should not load the HTTP stack (ssl, email, ...).
    import http.client
    import urllib.error

    copied, announced = 0, None
    with _Deadline(DEADLINE_SECONDS) as deadline:
        try:
            with deadline.opener().open(_request(url), timeout=timeout) as response:
                announced = _announced_length(response, limit)
                show.start(url, announced)
                # read1: whatever has arrived, so that the deadline is looked at as bytes trickle
                while chunk := response.read1(CHUNK_BYTES):
                    copied += len(chunk)
                    if copied > limit:
                        raise _MirrorFailed(f"it sends more than the {limit:,} bytes the file "
                                            "can have")
                    _write(out, chunk, target)
                    show.update(copied)
                    deadline.check(copied)
        except (_MirrorFailed, WriteError):
            raise
        except urllib.error.HTTPError as exc:
            deadline.check(copied)
            raise _MirrorFailed(_http_problem(exc)) from None
        except urllib.error.URLError as exc:
            deadline.check(copied)
            raise _MirrorFailed(f"unreachable ({_one_line(exc.reason)})") from None
        except TimeoutError:
            raise _MirrorFailed(f"no answer within {timeout:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            deadline.check(copied)
            raise _MirrorFailed(f"the transfer failed ({type(exc).__name__}: "
                                f"{_one_line(exc)})") from None
        finally:
            show.finish()
        deadline.check(copied)  # a connection the deadline shut reads as an early end
    if announced is not None and copied != announced:
        raise _MirrorFailed(f"it sent {copied:,} of the {announced:,} bytes it announced")
    return copied


def _request(url: str) -> Any:
    import urllib.request

    return urllib.request.Request(url, headers={"User-Agent": "nnscratch"})


def _http_problem(exc: Any) -> str:
    reason = _one_line(exc.reason)
    if 300 <= exc.code < 400:  # urllib follows redirects; it stops at a loop or a bad target
        if "infinite loop" in reason:
            return f"it redirects in a loop (HTTP {exc.code})"
        return f"its redirect (HTTP {exc.code}) cannot be followed ({reason})"
    return f"HTTP error {exc.code} ({reason})"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class _Deadline:
    """The whole-download deadline of one file from one mirror. When it passes, a timer thread
    shuts the connections down, which wakes a read blocked on them (the per-read timeout
    restarts with every byte, so it alone cannot end a trickle); :meth:`check` then raises."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.passed = seconds, False
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def check(self, copied: int) -> None:
        if self.passed:
            raise _MirrorFailed(f"it had sent {copied:,} bytes after {self.seconds:g} s, the "
                                "deadline for one file, so it was abandoned")

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for connection in self._connections:
                if connection.sock is not None:
                    with contextlib.suppress(OSError):
                        connection.sock.shutdown(socket.SHUT_RDWR)

    def _tracked(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        def connection(*args: Any, **kwargs: Any) -> Any:
            made = factory(*args, **kwargs)
            with self._lock:
                self._connections.append(made)
            return made
        return connection

    def opener(self) -> Any:
        """A urllib opener whose HTTP and HTTPS connections this deadline can shut."""
        import http.client
        import urllib.request

        deadline = self

        class HTTPHandler(urllib.request.HTTPHandler):
            def http_open(self, req: Any) -> Any:
                return self.do_open(deadline._tracked(http.client.HTTPConnection), req)

        class HTTPSHandler(urllib.request.HTTPSHandler):
            def https_open(self, req: Any) -> Any:
                return self.do_open(deadline._tracked(http.client.HTTPSConnection), req,
                                    context=self._context)

        return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def _announced_length(response: Any, limit: int) -> int | None:
    try:
        announced = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    if announced > limit:
        raise _MirrorFailed(f"it announces {announced:,} bytes, more than the {limit:,} the file "
                            "can have")
    return announced


def _write(out: BinaryIO, chunk: bytes, target: Path) -> None:
    try:
        out.write(chunk)
    except OSError as exc:  # a full disk, say
        raise write_error(target, exc) from None


class _Progress:
    """One line on stderr, redrawn at most ten times a second, while a file downloads."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled = stream, enabled
        self.url, self.total, self.drawn_at, self.active = "", None, 0.0, False

    def start(self, url: str, total: int | None) -> None:
        self.url, self.total, self.drawn_at, self.active = url, total, 0.0, True
        self.update(0)

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.drawn_at < 0.1:
            return
        self.drawn_at = now
        amount = f"{done / 1e6:.1f} MB"
        if self.total:
            amount += f" of {self.total / 1e6:.1f} MB ({done / self.total:.0%})"
        self.stream.write(f"\r\033[Kdownloading {self.url}: {amount}")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.active:
            self.stream.write("\r\033[K")
            self.stream.flush()
        self.active = False

    def note(self, text: str) -> None:
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()
