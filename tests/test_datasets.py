"""Named data sets (`--dataset`, `load_dataset`): Fashion-MNIST downloaded over HTTP from a mirror
on 127.0.0.1, verified against pins, cached in a folder of its own, named in `nnscratch data`, in
run folders and in the report; and MNIST unchanged.

The mirror serves small Fashion-MNIST-style IDX files made here, and the pins are monkeypatched
to the MD5 of the served .gz files, as the publisher's MD5s are of the real ones.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import report, runs
from nnscratch.cli import main
from nnscratch.data import (DATASETS, download_dataset, explain_dataset, find_dataset,
                            load_dataset, load_mnist)
from nnscratch.data.datasets import Pin
from nnscratch.errors import DataError
from nnscratch.report import build_report, mistake_captions
from serving import serving

from test_cli import assert_user_error, run
from test_data import images_bytes, labels_bytes

FASHION = DATASETS["fashion-mnist"]
NAMES = list(FASHION.pins)  # train-images-idx3-ubyte, ...
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


def fashion_arrays(n_train: int = 120, n_test: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    """Images whose brightness says their class (so a model can learn them), labels 0-9."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28)) + 19 * labels[:, None, None]
        arrays[f"{prefix}-images-idx3-ubyte"] = images.astype(np.uint8)
        arrays[f"{prefix}-labels-idx1-ubyte"] = labels
    return arrays


def idx_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """The raw IDX bytes of each file, built byte by byte (test_data's helpers)."""
    return {name: images_bytes(a) if "images" in name else labels_bytes(a)
            for name, a in arrays.items()}


def write_folder(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in idx_files(arrays).items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(content, mtime=0))
    return folder


class Mirror(ThreadingHTTPServer):
    """/good/NAME.gz serves the files as made; /corrupt/NAME.gz a valid gzip of the data with one
    byte changed (only the checksum can tell); anything else is 404."""

    daemon_threads = True

    def __init__(self, raw: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.good = {f"{name}.gz": gzip.compress(data, mtime=0) for name, data in raw.items()}
        self.corrupt = {}
        for name, data in raw.items():
            changed = bytearray(data)
            changed[len(changed) // 2] ^= 0x01
            self.corrupt[f"{name}.gz"] = gzip.compress(bytes(changed), mtime=0)
        self.requests: list[str] = []

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{kind}/"


class _Handler(BaseHTTPRequestHandler):
    server: Mirror

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self.server.requests.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        body = {"good": self.server.good, "corrupt": self.server.corrupt}.get(kind, {}).get(name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # quiet


@pytest.fixture(scope="module")
def arrays():
    return fashion_arrays()


@pytest.fixture(scope="module")
def mirror(arrays):
    with serving(Mirror(idx_files(arrays))) as server:
        yield server


@pytest.fixture
def pinned(mirror, monkeypatch):
    """Fashion-MNIST's pins replaced by the MD5 of the files the mirror serves, as the
    publisher's are of the real ones (same kind of pin: MD5 of the .gz file)."""
    for name in NAMES:
        served = mirror.good[f"{name}.gz"]
        pin = Pin(len(gzip.decompress(served)), hashlib.md5(served).hexdigest(), "md5",
                  of_gzip_file=True)
        monkeypatch.setitem(FASHION.pins, name, pin)
    mirror.requests.clear()
    return mirror


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache; no data configured, downloading not allowed by the environment."""
    for name in ("NNSCRATCH_DATA", "NNSCRATCH_DOWNLOAD", "NNSCRATCH_MIRRORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_publishers_pins_are_what_it_publishes():
    # Zalando's README, "Get the Data": the MD5 of each .gz file.
    assert {name: (pin.algorithm, pin.digest, pin.of_gzip_file)
            for name, pin in FASHION.pins.items()} == {
        "train-images-idx3-ubyte": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", True),
        "train-labels-idx1-ubyte": ("md5", "25c81989df183df01b3e8a0aad5dffbe", True),
        "t10k-images-idx3-ubyte": ("md5", "bef4ecab320f06d8554ea6380940ec79", True),
        "t10k-labels-idx1-ubyte": ("md5", "bb300cfdad3c16e7a12a480ee83cd310", True),
    }
    assert FASHION.pins["train-images-idx3-ubyte"].size == 16 + 784 * 60_000
    assert FASHION.pins["t10k-labels-idx1-ubyte"].size == 8 + 10_000
    assert FASHION.classes == FASHION_CLASSES
    assert FASHION.mirrors == ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    assert all(pin.algorithm == "sha256" and not pin.of_gzip_file
               for pin in DATASETS["mnist"].pins.values())


# --- downloading into a cache folder of its own --------------------------------------------------


def test_download_then_load_from_the_verified_cache(pinned, cache, dead_url, arrays,
                                                    monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", f"{dead_url},{pinned.url('good')}")
    fetched = download_dataset("fashion-mnist", progress=False)
    folder = cache / "fashion-mnist"
    assert [f.path for f in fetched] == [folder / f"{name}.gz" for name in NAMES]
    assert {f.mirror for f in fetched} == {pinned.url("good")}
    assert sorted(p.name for p in cache.iterdir()) == ["fashion-mnist"]  # not mnist's folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f"{name}.gz" for name in NAMES), "verified.json"])
    for name in NAMES:
        assert (folder / f"{name}.gz").read_bytes() == pinned.good[f"{name}.gz"]
    record = json.loads((folder / "verified.json").read_text())["files"]
    assert record["train-images-idx3-ubyte.gz"]["md5"] == FASHION.pins[NAMES[0]].digest

    data = load_dataset("fashion-mnist")
    assert data.dataset == "fashion-mnist" and data.class_names == FASHION_CLASSES
    assert not data.is_sample and data.location == folder.resolve()
    assert data.source.startswith(f"Fashion-MNIST IDX files in {folder}")
    assert "verified against pinned MD5 checksums" in data.source
    np.testing.assert_array_equal(data.x_train, arrays["train-images-idx3-ubyte"].reshape(-1, 784))
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    # MNIST does not see it: it still comes from the bundled sample
    assert load_mnist().is_sample and load_dataset("mnist").dataset == "mnist"


def test_a_corrupt_served_file_is_refused(pinned, cache, dead_url):
    folder = cache / "fashion-mnist"
    with pytest.raises(DataError) as info:
        download_dataset("fashion-mnist", mirrors=[dead_url, pinned.url("corrupt")],
                         progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"could not download {NAMES[0]}.gz from any mirror")
    assert (f"{pinned.url('corrupt')}: the file it serves does not match its pinned MD5 "
            "checksum") in message
    assert list(folder.iterdir()) == []  # no partial or unverified file

    fetched = download_dataset("fashion-mnist",
                               mirrors=[pinned.url("corrupt"), pinned.url("good")],
                               progress=False)
    assert {f.mirror for f in fetched} == {pinned.url("good")}
    assert pinned.requests.count(f"/corrupt/{NAMES[0]}.gz") == 2


def test_downloads_when_allowed_and_says_how_when_not(pinned, cache, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", pinned.url("good"))
    monkeypatch.setenv("NNSCRATCH_DATA", str(Path(nnscratch.__file__).parent / "sample"))
    with pytest.raises(DataError) as info:  # NNSCRATCH_DATA names MNIST, never Fashion-MNIST
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert "\n" not in message and message.startswith("Fashion-MNIST is not in the user cache")
    assert "'nnscratch data download --dataset fashion-mnist'" in message
    assert "NNSCRATCH_DOWNLOAD=1" in message
    assert find_dataset("fashion-mnist") is None and pinned.requests == []

    monkeypatch.setenv("NNSCRATCH_DOWNLOAD", "1")
    source = find_dataset("fashion-mnist")
    assert (source.kind, source.location) == ("download", cache / "fashion-mnist")
    data = load_dataset("fashion-mnist")
    assert data.source.endswith("(downloaded and verified): 120 training and 40 test images.")
    assert len(pinned.requests) == 4


def test_a_damaged_cache_is_not_used_and_says_how_to_fetch_it_again(pinned, cache, monkeypatch):
    download_dataset("fashion-mnist", mirrors=[pinned.url("good")], progress=False)
    damaged = cache / "fashion-mnist" / f"{NAMES[1]}.gz"
    damaged.write_bytes(pinned.corrupt[damaged.name])
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert f"{damaged.name} in it does not match its pinned MD5 checksum" in message
    assert "run 'nnscratch data download --dataset fashion-mnist' to fetch it again" in message
    rows = dict(explain_dataset("fashion-mnist"))
    assert rows["user cache"].startswith("the user cache was not used")


# --- the command line ----------------------------------------------------------------------------


def test_data_download_and_data_commands(pinned, cache, dead_url, monkeypatch, capsys):
    monkeypatch.setenv("NNSCRATCH_MIRRORS", f"{dead_url},{pinned.url('good')}")
    assert main(["data", "--dataset", "fashion-mnist"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Fashion-MNIST is not available here yet: run 'nnscratch data download "
                      "--dataset fashion-mnist' (or set NNSCRATCH_DOWNLOAD=1), or give --data PATH")
    assert "bundled sample  none for Fashion-MNIST: only MNIST ships one" in "\n".join(out)
    assert out[-2] == ("classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, "
                       "5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot")

    assert main(["data", "download", "--dataset", "fashion-mnist"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, line in zip(NAMES, lines):
        size = len(pinned.good[f"{name}.gz"])
        assert line == (f"{name}.gz: downloaded from {pinned.url('good')} ({size:,} bytes), "
                        "MD5 verified")
    assert lines[4].startswith(f"the full Fashion-MNIST is in {cache / 'fashion-mnist'}")

    # the option before the action counts too; the files are there now
    assert main(["data", "--dataset", "fashion-mnist", "download"]) == 0
    assert capsys.readouterr().out.count("already there") == 4
    assert main(["data", "--dataset", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Fashion-MNIST would come from the user cache, {cache / 'fashion-mnist'}"
                          ": found in the user cache, verified against pinned MD5 checksums")
    assert not (cache / "mnist").exists()


@pytest.mark.parametrize("args", [
    ["data", "--dataset", "kmnist"],
    ["data", "download", "--dataset", "kmnist"],
    ["train", "--dataset", "kmnist", "--epochs", "1", "--out", "run"],
    ["evaluate", "model.npz", "--dataset", "kmnist"],
    ["compare", "--backends", "numpy,numpy", "--dataset", "kmnist"],
])
def test_an_unknown_data_set_is_one_line_exit_2_and_writes_nothing(args, tmp_path, clean_env):
    work = tmp_path / "work"
    work.mkdir()
    proc = run(args, clean_env, cwd=work)
    assert_user_error(proc, "--dataset", "'kmnist'", "mnist", "fashion-mnist")
    assert list(work.iterdir()) == [] and not (tmp_path / "empty-cache").exists()


def test_an_unknown_data_set_in_python():
    with pytest.raises(DataError) as info:
        load_dataset("kmnist")
    assert str(info.value) == "unknown data set 'kmnist'; nnscratch knows mnist, fashion-mnist"
    with pytest.raises(DataError, match="unknown data set"):
        download_dataset("digits")


def test_dataset_mnist_changes_nothing(tmp_path, clean_env, capsys):
    assert main(["data"]) == 0
    plain = capsys.readouterr().out
    assert main(["data", "--dataset", "mnist"]) == 0
    assert capsys.readouterr().out == plain
    assert plain.startswith("MNIST would come from the small bundled sample")
    assert "\nclasses: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n" in plain
    folder = write_folder(tmp_path / "digits", fashion_arrays(30, 10))
    named, plain = load_dataset("mnist", folder), load_mnist(folder)
    assert named.source == plain.source and named.source.startswith("MNIST IDX files in ")
    assert named.dataset == plain.dataset == "mnist" and plain.class_names == tuple("0123456789")
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(named, field), getattr(plain, field))


# --- run folders, resuming and the report ------------------------------------------------------


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    """A finished run on a small Fashion-MNIST-style folder (given with --data --dataset)."""
    folder = tmp_path_factory.mktemp("fashion-run") / "run"
    given = write_folder(folder.parent / "fashion", fashion_arrays(200, 60, seed=3))
    nnscratch.train(load_dataset("fashion-mnist", given), out=folder, hidden=(8,), epochs=1,
                    lr=0.01, progress=False)
    return folder


def test_a_fashion_run_records_its_set_and_resumes_on_it(tmp_path, clean_env):
    given = write_folder(tmp_path / "fashion", fashion_arrays(300, 100, seed=1))
    folder = tmp_path / "run"

    def interrupt_after_epoch_1(stats):  # as Ctrl-C would: stop, checkpoint, raise
        if stats.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(nnscratch.TrainingInterrupted):
        nnscratch.train(load_dataset("fashion-mnist", given), out=folder, hidden=(16,),
                        epochs=3, batch_size=32, lr=0.05, callback=interrupt_after_epoch_1,
                        progress=False)
    config = runs.read_config(folder)
    assert (config["dataset"], config["data"]) == ("fashion-mnist", str(given.resolve()))
    assert config["data_source"].startswith(f"Fashion-MNIST IDX files in {given.resolve()}")

    proc = run(["train", "--resume", str(folder), "--dataset", "mnist"], clean_env)
    assert_user_error(proc, f"the run in {folder} was trained on fashion-mnist, not mnist")

    proc = run(["train", "--resume", str(folder)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"data: Fashion-MNIST IDX files in {given.resolve()}")
    assert "epoch 3/3" in proc.stdout and "epoch 1/3" not in proc.stdout
    assert runs.read_config(folder)["dataset"] == "fashion-mnist"

    page = (folder / "report.html").read_text()
    assert '<td class="key">dataset</td><td class="key">fashion-mnist</td>' in page


def test_the_report_names_the_classes_without_matplotlib(fashion_run, monkeypatch):
    monkeypatch.setattr(report, "plotting_available", lambda: False)
    page = build_report(fashion_run).path.read_text()
    header = "".join(f"<th>{name}</th>" for name in ("T-shirt/top", "Trouser", "Pullover"))
    assert header in page and "<th>Ankle boot</th>" in page
    captions = mistake_captions(runs.read_predictions(fashion_run), FASHION_CLASSES)
    assert captions and all(f"<li>{c.replace(chr(10), ': ')}</li>" in page for c in captions)


def test_the_report_figures_name_the_classes(fashion_run):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    predictions = runs.read_predictions(fashion_run)
    confusion, mistakes = Figure(), Figure()
    report._confusion(confusion, predictions, FASHION_CLASSES)
    axes = confusion.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == list(FASHION_CLASSES)
    assert [t.get_text() for t in axes.get_yticklabels()] == list(FASHION_CLASSES)
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("predicted class", "true class")
    report._mistakes(mistakes, predictions, FASHION_CLASSES, 28)
    texts = [t.get_text() for t in mistakes.axes[0].texts]
    assert texts == mistake_captions(predictions, FASHION_CLASSES)
    assert any(name in texts[0].split(" read as ")[0] for name in FASHION_CLASSES)


def test_mistake_captions_name_the_classes():
    probs = np.array([[0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.05],
                      [0.0, 0.0, 0.0, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0, 0.3]])
    predictions = {"worst_probs": probs, "worst_index": np.array([4, 1]),
                   "labels": np.array([3, 9, 2, 1, 0])}
    assert mistake_captions(predictions, FASHION_CLASSES) == [
        "T-shirt/top read as Shirt\np=0.90, p(true)=0.05",
        "Ankle boot read as Sandal\np=0.70, p(true)=0.30",
    ]
    assert mistake_captions(predictions, tuple("0123456789")) == [
        "0 read as 6\np=0.90, p(0)=0.05",
        "9 read as 5\np=0.70, p(9)=0.30",
    ]


def test_a_run_without_a_recorded_set_reports_digits(tmp_path):
    folder = tmp_path / "run"
    given = write_folder(tmp_path / "digits", fashion_arrays(60, 20, seed=2))
    nnscratch.train(load_dataset("mnist", given), out=folder, hidden=(8,), epochs=1,
                    progress=False)
    config = json.loads((folder / "config.json").read_text())
    assert config["dataset"] == "mnist"
    del config["dataset"]  # as a run folder from before data sets had names
    (folder / "config.json").write_text(json.dumps(config))
    page = build_report(folder).path.read_text()
    assert '<td class="key">dataset</td><td class="key">mnist</td>' in page
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "plotting_available", lambda: False)
        page = build_report(folder).path.read_text()
    assert "<th>true \\ predicted</th><th>0</th><th>1</th>" in page
    assert re.search(r"<li>\d read as \d: p=[\d.]+, p\(\d\)=[\d.]+</li>", page)
