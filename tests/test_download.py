"""Downloading MNIST for real, over HTTP from mirrors on 127.0.0.1, and checking the cache.

The mirrors serve the full MNIST from ``NNSCRATCH_DATA`` (the same files a user would download):
``good/`` as they are, ``corrupt/`` as valid gzip files of slightly changed data, ``garbled/``
with a byte of the compressed stream flipped, ``truncated/`` cut off halfway through its
announced length, ``missing/`` as HTTP 404. A dead mirror is a port nothing listens on; a
stalled one accepts connections and never answers.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import nnscratch.download as download
from nnscratch.data import find_mnist, load_mnist
from nnscratch.data.datasets import Dataset, Pin
from nnscratch.download import PINNED, download_mnist
from nnscratch.errors import DataError, WriteError
from bounded import within
from serving import serving

GZ_NAMES = [f"{name}.gz" for name in PINNED]


class Mirrors(ThreadingHTTPServer):
    """An HTTP server whose first path segment says how it misbehaves."""

    daemon_threads = True

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {name: _gz_bytes(folder, name) for name in GZ_NAMES}
        self.requests: list[str] = []
        self._corrupt: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{kind}/"

    def corrupt(self, name: str) -> bytes:
        """A valid gzip file of the data with one byte changed: only the checksum can tell."""
        with self._lock:
            if name not in self._corrupt:
                data = bytearray(gzip.decompress(self.files[name]))
                data[len(data) // 2] ^= 0x01
                self._corrupt[name] = gzip.compress(bytes(data), compresslevel=1, mtime=0)
            return self._corrupt[name]

    def count(self, kind: str) -> int:
        return sum(path.startswith(f"/{kind}/") for path in self.requests)


def _gz_bytes(folder: Path, name: str) -> bytes:
    path = folder / name
    if path.is_file():
        return path.read_bytes()
    return gzip.compress((folder / name.removesuffix(".gz")).read_bytes(), mtime=0)


class _Handler(BaseHTTPRequestHandler):
    server: Mirrors

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self.server.requests.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        if kind not in ("good", "corrupt", "garbled", "truncated") or name not in (
                self.server.files):
            self.send_error(404)
            return
        body = self.server.corrupt(name) if kind == "corrupt" else self.server.files[name]
        if kind == "garbled":
            body = body[:len(body) // 2] + bytes([body[len(body) // 2] ^ 0xFF]) + (
                body[len(body) // 2 + 1:])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if kind == "truncated" else body)

    def log_message(self, *args: object) -> None:
        pass  # quiet


@pytest.fixture(scope="module")
def mirrors(full_mnist):
    """The mirror server, serving the full MNIST from NNSCRATCH_DATA (skipped without it)."""
    with serving(Mirrors(Path(os.environ["NNSCRATCH_DATA"]))) as server:
        yield server


@pytest.fixture
def fresh(mirrors):
    """The server with its request log cleared."""
    mirrors.requests.clear()
    return mirrors


@pytest.fixture
def stalled_url():
    """A server that accepts connections (the kernel does, from its backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache; no data configured and downloading not allowed by the environment."""
    for name in ("NNSCRATCH_DATA", "NNSCRATCH_DOWNLOAD", "NNSCRATCH_MIRRORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mnist"


def assert_holds_exactly_the_files(folder: Path, mirrors: Mirrors) -> None:
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted([*GZ_NAMES, "verified.json"])  # no temporary or partial file
    for name in GZ_NAMES:
        assert (folder / name).read_bytes() == mirrors.files[name], name


# --- downloading -------------------------------------------------------------------------------


def test_skips_a_dead_and_a_corrupt_mirror(fresh, dead_url, tmp_path):
    folder = tmp_path / "mnist"
    order = [dead_url, fresh.url("corrupt"), fresh.url("good")]
    fetched = download_mnist(folder, mirrors=order, progress=False)
    assert [f.name for f in fetched] == GZ_NAMES
    assert all(f.mirror == fresh.url("good") for f in fetched)
    assert [f.size for f in fetched] == [len(fresh.files[name]) for name in GZ_NAMES]
    assert fresh.count("corrupt") == 4 and fresh.count("good") == 4
    assert_holds_exactly_the_files(folder, fresh)


def test_every_mirror_failing_is_one_error_and_leaves_nothing(fresh, dead_url, tmp_path):
    folder = tmp_path / "mnist"
    kinds = ["missing", "corrupt", "garbled", "truncated"]
    with pytest.raises(DataError) as info:
        download_mnist(folder, mirrors=[dead_url, *map(fresh.url, kinds)], progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {GZ_NAMES[0]} from any mirror")
    reasons = message.partition(" (")[2].removesuffix(")").split("; ")  # one per mirror
    size = len(fresh.files[GZ_NAMES[0]])
    expected = [(dead_url, "unreachable"), (fresh.url("missing"), "HTTP error 404"),
                (fresh.url("corrupt"), "the file it serves does not match its pinned SHA-256"),
                (fresh.url("garbled"), "the file it serves cannot be decompressed"),
                (fresh.url("truncated"), f"it sent {size // 2:,} of the {size:,} bytes it "
                                         "announced")]
    assert len(reasons) == len(expected), message
    for reason, (url, why) in zip(reasons, expected):
        assert reason.startswith(f"{url}: {why}"), (reason, why)
    assert list(folder.iterdir()) == []


def test_a_stalled_mirror_times_out(fresh, stalled_url, tmp_path):
    with pytest.raises(DataError, match=r"no answer within 0\.5 s"):
        download_mnist(tmp_path / "a", mirrors=[stalled_url], timeout=0.5, progress=False)
    fetched = download_mnist(tmp_path / "b", mirrors=[stalled_url, fresh.url("good")],
                             timeout=0.5, progress=False)
    assert {f.mirror for f in fetched} == {fresh.url("good")}


def test_an_interrupted_download_leaves_nothing(fresh, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_content_problem", interrupt)  # while verifying
    folder = tmp_path / "mnist"
    with pytest.raises(KeyboardInterrupt):
        download_mnist(folder, mirrors=[fresh.url("good")], progress=False)
    assert list(folder.iterdir()) == []


def test_files_already_verified_are_not_downloaded_again(fresh, dead_url, tmp_path):
    folder = tmp_path / "mnist"
    download_mnist(folder, mirrors=[fresh.url("good")], progress=False)
    (folder / GZ_NAMES[1]).unlink()
    fresh.requests.clear()
    fetched = download_mnist(folder, mirrors=[fresh.url("good")], progress=False)
    assert [f.mirror is None for f in fetched] == [True, False, True, True]
    assert fresh.requests == [f"/good/{GZ_NAMES[1]}"]
    assert_holds_exactly_the_files(folder, fresh)


def test_progress_goes_to_stderr(fresh, dead_url, tmp_path, capsys):
    download_mnist(tmp_path / "mnist", mirrors=[dead_url, fresh.url("good")], progress=True)
    err = capsys.readouterr().err
    assert f"downloading {fresh.url('good')}{GZ_NAMES[0]}" in err and "MB" in err
    assert f"{GZ_NAMES[0]} from {dead_url} failed: unreachable" in err


@pytest.mark.parametrize("mirrors_value, words", [
    ("ftp://example.org/mnist/", ["NNSCRATCH_MIRRORS", "ftp://example.org/mnist/", "http"]),
    (" , ", ["NNSCRATCH_MIRRORS", "no mirror URL"]),
])
def test_bad_mirror_settings(mirrors_value, words, cache, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", mirrors_value)
    with pytest.raises(DataError) as info:
        download_mnist(cache)
    assert all(word in str(info.value) for word in words), str(info.value)


# --- the cache and the resolution order ----------------------------------------------------------


def test_download_is_off_unless_allowed(fresh, cache, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", fresh.url("good"))
    data = load_mnist()
    assert data.is_sample and "nnscratch data download" in data.source
    assert find_mnist(download=False).kind == "sample"
    monkeypatch.setenv("NNSCRATCH_DOWNLOAD", "1")
    assert load_mnist(download=False).is_sample  # the argument beats the environment
    assert fresh.requests == []  # an offline user never waits for the network


def test_download_when_allowed_then_the_verified_cache(fresh, full_mnist, cache, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", f"{fresh.url('missing')},{fresh.url('good')}")
    monkeypatch.setenv("NNSCRATCH_DOWNLOAD", "1")
    assert find_mnist().kind == "download"
    data = load_mnist()
    assert "downloaded and verified" in data.source and str(cache) in data.source
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(data, name), getattr(full_mnist, name)), name
    monkeypatch.delenv("NNSCRATCH_DOWNLOAD")
    source = find_mnist()
    assert source.kind == "cache" and "verified against pinned SHA-256" in source.reason


def test_load_mnist_download_argument(fresh, cache, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", fresh.url("good"))
    assert find_mnist(download=True).reason.endswith("download=True allows downloading it")
    assert len(load_mnist(download=True).x_train) == 60_000


@pytest.fixture
def downloaded(fresh, cache, monkeypatch):
    """A cache that nnscratch filled, and a count of the files it hashes from now on."""
    download_mnist(cache, mirrors=[fresh.url("good")], progress=False)
    hashed: list[str] = []
    real = download._content_problem

    def counting(path, pin, compressed):
        hashed.append(path.name)
        return real(path, pin, compressed)

    monkeypatch.setattr(download, "_content_problem", counting)
    return cache, hashed


def test_an_unchanged_cache_costs_no_hashing(downloaded):
    cache, hashed = downloaded
    for _ in range(3):
        assert find_mnist().kind == "cache"
    assert hashed == []


def test_a_touched_file_is_hashed_once(downloaded):
    cache, hashed = downloaded
    path = cache / GZ_NAMES[2]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert find_mnist().kind == "cache" and hashed == [GZ_NAMES[2]]
    assert find_mnist().kind == "cache" and hashed == [GZ_NAMES[2]]  # the record was updated


@pytest.mark.parametrize("damage", ["changed byte", "truncated"])
def test_a_damaged_cache_is_not_used_and_says_why(damage, downloaded, fresh, monkeypatch):
    cache, hashed = downloaded
    path = cache / GZ_NAMES[3]  # the test labels
    if damage == "changed byte":  # the same size, a valid gzip file: only the checksum tells
        path.write_bytes(fresh.corrupt(GZ_NAMES[3]))
    else:
        path.write_bytes(path.read_bytes()[:-100])
    source = find_mnist()
    assert source.kind == "sample"
    assert f"the user cache was not used: {GZ_NAMES[3]} in it" in source.reason
    assert "nnscratch data download" in source.reason
    data = load_mnist()
    assert data.is_sample and GZ_NAMES[3] in data.source
    # Allowed to download, nnscratch replaces just the damaged file.
    monkeypatch.setenv("NNSCRATCH_MIRRORS", fresh.url("good"))
    monkeypatch.setenv("NNSCRATCH_DOWNLOAD", "1")
    fresh.requests.clear()
    assert len(load_mnist().x_test) == 10_000
    assert fresh.requests == [f"/good/{GZ_NAMES[3]}"]


def test_bad_download_setting(cache, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_DOWNLOAD", "maybe")
    with pytest.raises(DataError, match="NNSCRATCH_DOWNLOAD is 'maybe'; set it to 1"):
        load_mnist()


@pytest.mark.skipif(not Path("/proc/self/status").exists(),
                    reason="the umask is read from /proc; elsewhere files keep mkstemp's 0600")
def test_cache_files_get_the_mode_a_plain_open_would_give(fresh, tmp_path, umask_022):
    folder = tmp_path / "mnist"
    download_mnist(folder, mirrors=[fresh.url("good")], progress=False)
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes == dict.fromkeys([*GZ_NAMES, "verified.json"], 0o644)


def test_the_old_module_name_is_the_same_module():
    import nnscratch.data.download as real

    assert download is real  # so monkeypatching either patches both
    assert download.download_mnist is real.download_mnist


# --- the command line ----------------------------------------------------------------------------


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnscratch", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_data_download_command(fresh, dead_url, clean_env, tmp_path):
    env = {**clean_env, "NNSCRATCH_MIRRORS": f"{dead_url},{fresh.url('good')}"}
    env.pop("NNSCRATCH_DOWNLOAD", None)
    proc = run(["data"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("MNIST would come from the small bundled sample")
    assert "download        off: run 'nnscratch data download'" in proc.stdout
    proc = run(["data", "download"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for line, name in zip(lines, GZ_NAMES):
        assert line.startswith(f"{name}: downloaded from {fresh.url('good')} (")
        assert line.endswith("bytes), SHA-256 verified")
    assert "the full MNIST is in" in lines[4]
    proc = run(["data", "download"], env)
    assert proc.returncode == 0 and proc.stdout.count("already there") == 4, proc.stderr
    proc = run(["data"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("MNIST would come from the user cache")
    assert "verified against pinned SHA-256" in proc.stdout.splitlines()[0]


def test_data_download_command_failing(dead_url, clean_env, tmp_path):
    env = {**clean_env, "NNSCRATCH_MIRRORS": dead_url}
    proc = run(["data", "download"], env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("nnscratch data: error: could not download")
    assert dead_url in lines[0]


# --- hostile mirrors and unwritable caches, with a tiny data set of its own ----------------------

def _tiny_files() -> dict[str, bytes]:
    """Two IDX files of 200 random images: 157 kB, more than a 64 kB disk holds, even as .gz."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 784), dtype=np.uint8)
    return {"train-images-idx3-ubyte": struct.pack(">IIII", 0x803, 200, 28, 28)
            + images.tobytes(),
            "train-labels-idx1-ubyte": struct.pack(">II", 0x801, 200)
            + (np.arange(200) % 10).astype(np.uint8).tobytes()}


TINY_FILES = _tiny_files()
TINY = Dataset("tiny", "Tiny", tuple("0123456789"), (), {
    name: Pin(len(data), hashlib.sha256(data).hexdigest()) for name, data in TINY_FILES.items()})
TINY_GZ = {f"{name}.gz": gzip.compress(data, mtime=0) for name, data in TINY_FILES.items()}


class HostileMirrors(ThreadingHTTPServer):
    """good/ serves the tiny files; trickle/ their headers, then a byte every 50 ms; slowstart/
    its status line a byte every 50 ms; loop/ a redirect to itself."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HostileHandler)

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{kind}/"

    def handle_error(self, request, client_address) -> None:
        pass  # a client that hung up on a trickle: expected


class _HostileHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        kind, _, name = self.path.strip("/").partition("/")
        body = TINY_GZ.get(name)
        if body is None:
            self.send_error(404)
        elif kind == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.end_headers()
        elif kind == "slowstart":
            for byte in b"HTTP/1.0 200 OK\r\n" * 1000:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if kind == "good":
                self.wfile.write(body)
                return
            for byte in body:  # trickle: every read gets a byte well within any timeout
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile():
    with serving(HostileMirrors()) as server:
        yield server


@pytest.mark.parametrize("kind", ["trickle", "slowstart"])
def test_a_trickling_mirror_is_abandoned_at_the_deadline(kind, hostile, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setattr(download, "DEADLINE_SECONDS", 1.0)
    how, fetched = within(60, lambda: download.download_dataset(
        TINY, tmp_path / "a", mirrors=[hostile.url(kind), hostile.url("good")], timeout=5,
        progress=True), "downloading")
    assert how == "returned", fetched
    assert {f.mirror for f in fetched} == {hostile.url("good")}
    notes = [line for line in capsys.readouterr().err.splitlines() if "failed" in line]
    assert len(notes) == 2, notes  # one line per file, saying why that mirror was left
    assert all(f"from {hostile.url(kind)} failed: it had sent" in note and "after 1 s, the "
               "deadline for one file, so it was abandoned" in note for note in notes), notes
    how, error = within(60, lambda: download.download_dataset(
        TINY, tmp_path / "b", mirrors=[hostile.url(kind)], timeout=5, progress=False),
        "downloading")
    assert how == "raised" and isinstance(error, DataError), error
    assert "\n" not in str(error) and "abandoned" in str(error)
    assert sorted(path.name for path in (tmp_path / "b").iterdir()) == []


def test_the_deadline_is_documented_and_generous():
    assert download.DEADLINE_SECONDS >= 10 * download.TIMEOUT_SECONDS
    assert "DEADLINE_SECONDS" in download.__doc__


def test_a_redirect_loop_is_one_sentence(hostile, tmp_path):
    with pytest.raises(DataError) as info:
        download.download_dataset(TINY, tmp_path / "a", mirrors=[hostile.url("loop")],
                                  progress=False)
    message = str(info.value)
    assert "\n" not in message, message
    assert f"{hostile.url('loop')}: it redirects in a loop (HTTP 302)" in message, message


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mount a tmpfs with the options given (a tiny one is a real full disk; "ro" a read-only
    one); unmounted afterwards. Needs root: skipped without it."""
    points: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mount{len(points)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (needs root): {proc.stderr.strip()}")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_a_full_disk_is_one_sentence_and_leaves_nothing(hostile, mount_tmpfs):
    disk = mount_tmpfs("size=64k")
    folder = disk / "tiny"
    with pytest.raises(WriteError) as info:
        download.download_dataset(TINY, folder, mirrors=[hostile.url("good")], progress=False)
    message = str(info.value)
    assert "\n" not in message, message
    assert message == f"cannot write {folder / 'train-images-idx3-ubyte.gz'}: no space left on device"
    assert list(folder.iterdir()) == []  # no partial or temporary file


def test_a_read_only_cache_is_one_sentence(hostile, mount_tmpfs):
    disk = mount_tmpfs("ro")
    with pytest.raises(WriteError) as info:
        download.download_dataset(TINY, disk / "tiny", mirrors=[hostile.url("good")],
                                  progress=False)
    assert str(info.value) == (f"cannot write the cache folder {disk / 'tiny'}: read-only file "
                               "system")
    with pytest.raises(WriteError) as info:
        download.download_dataset(TINY, disk, mirrors=[hostile.url("good")], progress=False)
    assert str(info.value) == (f"cannot write {disk / 'train-images-idx3-ubyte.gz'}: read-only "
                               "file system")
    assert list(disk.iterdir()) == []
