"""Run folders, checkpoints, reports and signals against a hostile world: full and read-only
disks, tampered files, a second process, SIGTERM, and wrong argument types.

A full disk and a read-only folder are real ones: a small tmpfs mounted for the test (this
needs root, as CI runs; elsewhere these tests are skipped, saying why).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import Callback, NNScratchError, RunFolderError, TrainingInterrupted
from nnscratch import runs
from nnscratch.errors import WriteError
from nnscratch.report import build_report

from test_cli import assert_user_error, run

SETTINGS = {"hidden": (8,), "epochs": 4, "batch_size": 40, "lr": 0.1, "momentum": 0.9,
            "validation": 0.2, "seed": 2, "progress": False}


def tiny_data(seed=0, n_train=200, n_test=60, width=12, classes=3):
    """Rows of features, a few hundred: a run of 4 epochs takes milliseconds."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, width))  # close enough for a few mistakes
    y_train, y_test = rng.integers(0, classes, n_train), rng.integers(0, classes, n_test)
    return (centres[y_train] + rng.normal(size=(n_train, width)), y_train,
            centres[y_test] + rng.normal(size=(n_test, width)), y_test)


DATA = tiny_data()


class SignalAt(Callback):
    """Sends this process ``signum`` (``times`` times) after ``step`` of ``epoch``; or, with
    ``epoch`` None, when training has ended (before the results are written)."""

    def __init__(self, epoch, step, signum=signal.SIGINT, times=1):
        self.at, self.signum, self.times = (epoch, step), signum, times

    def send(self):
        for _ in range(self.times):
            os.kill(os.getpid(), self.signum)

    def on_epoch_start(self, epoch, epochs, steps):
        self.epoch = epoch

    def on_step(self, step):
        if (self.epoch, step) == self.at:
            self.send()

    def on_train_end(self):
        if self.at[0] is None:
            self.send()


@pytest.fixture
def interrupted(tmp_path):
    """A run folder stopped by Ctrl-C in epoch 3 (of 4) after step 2, and its finished twin."""
    with pytest.raises(TrainingInterrupted):
        nnscratch.train(DATA, out=tmp_path / "cut", callback=SignalAt(3, 2), **SETTINGS)
    return tmp_path / "cut"


def one_line(exc):
    message = str(exc)
    assert message and "\n" not in message, message
    return message


def no_temporary_files(root):
    return [p for p in Path(root).rglob("*") if p.name.endswith(".tmp") or p.name == runs.LOCK]


# --- mounting a real small or read-only disk ---------------------------------------------------

@contextlib.contextmanager
def tmpfs(where, size_kb=64, read_only=False):
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def check_whole(folder):
    """Every file nnscratch left in ``folder`` reads back whole."""
    names = {p.name for p in folder.iterdir()}
    if runs.CONFIG in names:
        config = runs.read_config(folder)
        runs.read_metrics(folder)
        if runs.CHECKPOINT in names:
            assert runs.read_checkpoint(folder) is not None
        if runs.PREDICTIONS in names:
            runs.read_predictions(folder, config)
    if runs.MODEL in names:
        nnscratch.load_model(folder / runs.MODEL)
    if runs.REPORT in names:
        assert (folder / runs.REPORT).read_text().rstrip().endswith("</html>")
    for png in folder.glob("*.png"):
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82"), png


# --- 1. operating-system errors -------------------------------------------------------------

def test_a_full_disk_at_every_point_of_a_run_is_one_sentence_and_leaves_files_whole(tmp_path):
    reference = nnscratch.train(DATA, out=tmp_path / "ref", **SETTINGS).run_dir
    pages = [-(-p.stat().st_size // 4096) for p in reference.iterdir()]
    enough = 4 * (sum(pages) + max(pages) + 4)  # kB: the files, a rewrite's copy, the folder
    outcomes = set()
    for size_kb in range(4, enough + 1, max(4, enough // 12 // 4 * 4)):
        with tmpfs(tmp_path / f"disk{size_kb}", size_kb) as disk:
            try:
                nnscratch.train(DATA, out=disk / "run", **SETTINGS)
                outcomes.add("finished")
            except WriteError as exc:
                assert "no space left on device" in one_line(exc), exc
                assert str(disk) in str(exc)
                outcomes.add("full")
            assert no_temporary_files(disk) == []
            if (disk / "run").exists():
                check_whole(disk / "run")
    assert outcomes == {"finished", "full"}  # the sizes went from too small to enough


def test_a_read_only_disk_is_one_sentence(tmp_path, clean_env):
    with tmpfs(tmp_path / "ro", read_only=True) as disk:
        with pytest.raises(WriteError) as error:
            nnscratch.train(DATA, out=disk / "run", **SETTINGS)
        assert "read-only file system" in one_line(error.value)
        proc = run(["train", "--epochs", "1", "--out", str(disk / "run")], clean_env)
        assert_user_error(proc, str(disk / "run"), "read-only file system")
        proc = run(["train", "--epochs", "1", "--out", str(disk / "m.npz")], clean_env)
        assert_user_error(proc, "m.npz")


def test_report_on_a_full_disk_keeps_the_old_report_whole(tmp_path, clean_env):
    with tmpfs(tmp_path / "disk", 1024) as disk:
        folder = nnscratch.train(DATA, out=disk / "run", **SETTINGS).run_dir
        before = (folder / runs.REPORT).read_bytes()
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        proc = run(["report", str(folder)], clean_env)
        assert_user_error(proc, "no space left on device")
        assert (folder / runs.REPORT).read_bytes() == before
        assert no_temporary_files(disk) == []


def test_a_model_file_on_a_full_disk(tmp_path, clean_env):
    with tmpfs(tmp_path / "disk", 8) as disk:
        proc = run(["train", "--epochs", "1", "--hidden", "32", "--out", str(disk / "m.npz")],
                   clean_env)
        assert_user_error(proc, "m.npz", "no space left on device")
        assert list(disk.iterdir()) == []


@pytest.mark.parametrize("out,words", [
    ("afile/", ["afile", "a file is in the way"]),
    ("afile/run", ["afile", "a file is in the way"]),
    ("afolder.npz", ["afolder.npz", "is a folder"]),
])
def test_out_where_a_file_or_folder_is_in_the_way(tmp_path, clean_env, out, words):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "afolder.npz").mkdir()
    proc = run(["train", "--epochs", "1", "--out", out], clean_env, cwd=tmp_path)
    assert_user_error(proc, *words)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "empty-cache")
    assert left == ["afile", "afolder.npz"]


@pytest.mark.parametrize("name", [runs.CONFIG, runs.METRICS, runs.PREDICTIONS, runs.MODEL])
def test_a_folder_where_a_run_file_belongs(tmp_path, clean_env, name):
    folder = nnscratch.train(DATA, out=tmp_path / "run", **SETTINGS).run_dir
    (folder / name).unlink()
    (folder / name).mkdir()
    assert_user_error(run(["report", str(folder)], clean_env), name)


# --- 2. resume checks its files ------------------------------------------------------------

def rewrite_checkpoint(folder, change_arrays=None, change_state=None):
    arrays, state = runs.read_checkpoint(folder)
    if change_arrays:
        change_arrays(arrays)
    if change_state:
        change_state(state)
    runs.write_checkpoint(folder, arrays, {k: v for k, v in state.items()
                                           if k not in ("format", "format_version")})


def set_position(**values):
    return lambda state: state["position"].update(values)


def other_generator(state):
    state["position"]["order_state"] = np.random.MT19937(1).state
    state["position"]["order_state"]["state"]["key"] = state["position"]["order_state"][
        "state"]["key"].tolist()


def nan_weight(arrays):
    arrays["param.W1"][0, 0] = np.nan


@pytest.mark.parametrize("arrays,state,words", [
    (lambda a: a.pop("optim.velocity.W1"), None, "has no array 'optim.velocity.W1'"),
    (lambda a: a.pop("best.b2"), None, "has no array 'best.b2'"),
    (lambda a: a.update({"optim.m.W1": a["param.W1"]}), None, "unexpected member"),
    (lambda a: a.update({"param.W1": a["param.W1"][:, :3]}), None, "shape"),
    (lambda a: a.update({"param.W1": a["param.W1"].astype(np.float64)}), None, "dtype"),
    (nan_weight, None, "NaN or infinite"),
    (None, set_position(epoch=0), "outside 1-5"),
    (None, set_position(epoch=9), "outside 1-5"),
    (None, set_position(step=99), "step 99"),
    (None, set_position(step=-1), "not a count"),
    (None, set_position(seen="many"), "not a count"),
    (None, set_position(loss_sum=-1.0), "loss_sum"),
    (None, set_position(history=[]), "history"),
    (None, set_position(history=[{"epoch": 1}, {"epoch": 2}]), "history"),
    (None, set_position(best_epoch=7), "best epoch"),
    (None, set_position(stopped_early=True), "stopped early"),
    (None, set_position(order_state={"bit_generator": "PCG64", "state": 5}), "PCG64"),
    (None, other_generator, "PCG64"),
    (None, lambda s: s["position"].pop("step"), "fields"),
    (None, lambda s: s.update(optimizer={"name": "adam", "steps": 3}), "sgd"),
    (None, lambda s: s.update(position=[1, 2]), "fields"),
])
def test_a_tampered_checkpoint_is_refused_in_one_sentence(interrupted, arrays, state, words):
    if arrays is not None:
        rewrite_checkpoint(interrupted, change_arrays=arrays)
    if state is not None:
        rewrite_checkpoint(interrupted, change_state=state)
    with pytest.raises(RunFolderError) as error:
        nnscratch.train(DATA, resume=interrupted)
    assert words in one_line(error.value) and "checkpoint" in str(error.value)
    assert "learning rate" not in str(error.value)  # a NaN saved is not a divergence


def test_an_untouched_checkpoint_resumes_exactly(interrupted, tmp_path):
    whole = nnscratch.train(DATA, out=tmp_path / "whole", **SETTINGS)
    resumed = nnscratch.train(DATA, resume=interrupted)
    for name, value in whole.model.params().items():
        np.testing.assert_array_equal(resumed.model.params()[name], value)


def test_a_checkpoint_declaring_a_huge_array_is_refused_before_reading(interrupted):
    path = interrupted / runs.CHECKPOINT
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    header = members["param.W1.npy"]
    members["param.W1.npy"] = header.replace(b"(12, 8)", b"(99999999999, 8)".ljust(7))
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    with pytest.raises(RunFolderError) as error:
        nnscratch.train(DATA, resume=interrupted)
    assert "param.W1" in one_line(error.value)


def nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("change,words", [
    (lambda c: c.update(layer_sizes="784-10"), "'layer_sizes'"),
    (lambda c: c.update(layer_sizes=[12, 8, 4]), "layer sizes"),
    (lambda c: c.update(training=[1]), "'training'"),
    (lambda c: c["training"].update(lr="fast"), "lr"),
    (lambda c: c["training"].update(epochs=True), "epochs"),
    (lambda c: c.update(data_fingerprint={"n_train": "x"}), "'data_fingerprint'"),
    (lambda c: c.update(dataset=[]), "'dataset'"),
    (lambda c: c.update(format_version=2), "format version 2"),
])
def test_a_tampered_config_is_refused_in_one_sentence(interrupted, change, words):
    config = json.loads((interrupted / runs.CONFIG).read_text())
    change(config)
    (interrupted / runs.CONFIG).write_text(json.dumps(config))
    with pytest.raises(NNScratchError) as error:
        nnscratch.train(DATA, resume=interrupted)
    assert words in one_line(error.value)


@pytest.mark.parametrize("text,words", [
    (nested(100_000), "nested too deeply"),
    ('{"format": "nnscratch-run", "format_version": NaN}', "NaN"),
    ("\xff\xfe", "cannot be read"),
    ("", "cannot be read"),
])
def test_an_unreadable_config_is_one_line_from_the_command_line(interrupted, clean_env, text,
                                                                  words):
    (interrupted / runs.CONFIG).write_text(text, encoding="latin-1")
    for args in (["train", "--resume", str(interrupted)], ["report", str(interrupted)]):
        assert_user_error(run(args, clean_env), str(interrupted / runs.CONFIG), words)


def test_resume_refuses_a_given_option_equal_to_the_default(tmp_path, clean_env):
    args = ["train", "--epochs", "3", "--lr", "0.05", "--batch-size", "500"]
    proc = subprocess.Popen([sys.executable, "-m", "nnscratch", *args, "--out",
                             str(tmp_path / "run")], env=clean_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:
        if line.startswith("epoch 1/3"):
            proc.send_signal(signal.SIGINT)
            break
    proc.communicate(timeout=120)
    default_lr = str(nnscratch.TrainSettings().lr)
    proc = run(["train", "--resume", str(tmp_path / "run"), "--lr", default_lr], clean_env)
    assert_user_error(proc, f"--lr {default_lr} differs from the 0.05")


# --- 3. report checks its run folder ---------------------------------------------------------

@pytest.fixture
def finished(tmp_path):
    return nnscratch.train(DATA, out=tmp_path / "run", **SETTINGS).run_dir


def rewrite_predictions(folder, change):
    arrays = runs.read_arrays(folder / runs.PREDICTIONS, None, "predictions")
    change(arrays)
    with runs.atomic_file(folder / runs.PREDICTIONS) as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize("change,words", [
    (lambda a: a["labels"].__setitem__(0, -1), "outside 0-2"),
    (lambda a: a["predicted"].__setitem__(3, 3), "outside 0-2"),
    (lambda a: a.update(labels=a["labels"].astype(np.float64)), "'labels'"),
    (lambda a: a.update(labels=a["labels"][:-1]), "'labels'"),
    (lambda a: a.update(worst_index=a["worst_index"] + 1000), "outside"),
    (lambda a: a.update(worst_probs=a["worst_probs"] * np.nan), "probabilities"),
    (lambda a: a.update(worst_images=a["worst_images"][:, :5]), "'worst_images'"),
    (lambda a: a.pop("predicted"), "'predicted'"),
])
def test_report_refuses_tampered_predictions(finished, clean_env, change, words):
    rewrite_predictions(finished, change)
    with pytest.raises(RunFolderError) as error:
        build_report(finished)
    assert words in one_line(error.value)
    assert_user_error(run(["report", str(finished)], clean_env), "predictions", words)


@pytest.mark.parametrize("edit,words", [
    (lambda text: text.replace("test_accuracy,", ""), "header"),
    (lambda text: text.replace("\n2,", "\n7,"), "epoch 7"),
    (lambda text: text.replace("\n2,", "\n2.5,"), "line 3"),
    (lambda text: text + "5,nan,1,1,1,1,1,1,1\n", "nan"),
    (lambda text: text + "5,1\n", "cells"),
    (lambda text: "\0" + text, "header"),
])
def test_report_refuses_a_damaged_metrics_file(finished, clean_env, edit, words):
    path = finished / runs.METRICS
    path.write_text(edit(path.read_text()))
    assert_user_error(run(["report", str(finished)], clean_env), runs.METRICS, words)


def test_report_refuses_a_model_that_is_not_the_runs(finished, tmp_path, clean_env):
    nnscratch.MLP((5,), n_inputs=12, n_classes=3).save(finished / runs.MODEL)
    assert_user_error(run(["report", str(finished)], clean_env), "model")


# --- 5. signals, temporary files and locks ------------------------------------------------

def test_sigterm_stops_train_like_ctrl_c(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as stop:
        nnscratch.train(DATA, out=tmp_path / "run", callback=SignalAt(2, 2, signal.SIGTERM),
                        **SETTINGS)
    assert stop.value.signum == signal.SIGTERM
    assert str(stop.value) == "interrupted by SIGTERM in epoch 2 after step 3 of 4"
    assert stop.value.checkpoint == tmp_path / "run" / runs.CHECKPOINT
    assert signal.getsignal(signal.SIGTERM) is before
    whole = nnscratch.train(DATA, out=tmp_path / "whole", **SETTINGS)
    resumed = nnscratch.train(DATA, resume=tmp_path / "run")
    for name, value in whole.model.params().items():
        np.testing.assert_array_equal(resumed.model.params()[name], value)


def test_a_signal_while_the_results_are_written_lets_them_finish(tmp_path):
    result = nnscratch.train(DATA, out=tmp_path / "run", callback=SignalAt(None, 0), **SETTINGS)
    assert (result.run_dir / runs.MODEL).exists()
    assert not (result.run_dir / runs.CHECKPOINT).exists()
    check_whole(result.run_dir)


def test_a_second_signal_while_the_results_are_written_keeps_the_checkpoint(tmp_path):
    with pytest.raises(TrainingInterrupted) as stop:
        nnscratch.train(DATA, out=tmp_path / "run", callback=SignalAt(None, 0, times=2),
                        **SETTINGS)
    assert stop.value.at_once and stop.value.finishing
    assert str(stop.value) == "stopped at once by a second Ctrl-C while writing the run's results"
    assert stop.value.checkpoint == tmp_path / "run" / runs.CHECKPOINT
    assert no_temporary_files(tmp_path) == []
    result = nnscratch.train(DATA, resume=tmp_path / "run")  # finishes writing them
    assert len(result.history) == SETTINGS["epochs"]
    check_whole(result.run_dir)


def cli_train(folder, env, *extra):
    return subprocess.Popen([sys.executable, "-m", "nnscratch", "train", "--epochs", "40",
                             "--batch-size", "20", "--hidden", "16", "--out", str(folder),
                             *extra], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_for_line(proc, prefix):
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r}: {proc.communicate()}")


def test_sigterm_from_the_command_line_exits_143_and_resumes(tmp_path, clean_env):
    proc = cli_train(tmp_path / "run", clean_env)
    wait_for_line(proc, "epoch  1/40")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert_user_error(subprocess.CompletedProcess([], 143, "", err), "interrupted by SIGTERM",
                      "checkpoint saved", "--resume", code=143)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.npz", "config.json", "metrics.csv"]


class Trickle(BaseHTTPRequestHandler):
    """Promises a large file and sends it a kilobyte at a time."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(600):
                self.wfile.write(b"\x1f" * 1024)
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args):
        pass


def test_sigterm_in_a_download_discards_the_partial_file(tmp_path, clean_env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**clean_env, "NNSCRATCH_MIRRORS": f"http://127.0.0.1:{server.server_port}/",
               "NNSCRATCH_CACHE": str(tmp_path / "cache")}
        proc = subprocess.Popen([sys.executable, "-m", "nnscratch", "data", "download"],
                                env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not list((tmp_path / "cache").rglob("*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the download has begun writing
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        server.shutdown()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == ("nnscratch data: interrupted by SIGTERM; no file was "
                                            "left half-written")
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_a_second_process_is_refused_naming_the_holder(tmp_path, clean_env):
    first = cli_train(tmp_path / "run", clean_env)
    try:
        wait_for_line(first, "epoch  1/40")
        for args in (["train", "--resume", str(tmp_path / "run")],
                     ["train", "--out", str(tmp_path / "run")]):
            proc = run(args, clean_env)
            assert_user_error(proc, f"PID {first.pid}", "in use")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 143
    assert not (tmp_path / "run" / runs.LOCK).exists()


def test_the_lock_is_held_while_training_and_released_after(interrupted):
    lock = runs.RunFolderLock(interrupted)
    try:
        with pytest.raises(RunFolderError) as error:
            nnscratch.train(DATA, resume=interrupted)
        assert f"PID {os.getpid()}" in one_line(error.value)
    finally:
        lock.release()
    nnscratch.train(DATA, resume=interrupted)
    assert not (interrupted / runs.LOCK).exists()


def test_temporary_files_of_a_killed_run_are_swept_on_resume(interrupted):
    stray = [interrupted / ".checkpoint.npz.x1y2.tmp", interrupted / ".metrics.csv.abc.tmp"]
    for path in stray:
        path.write_bytes(b"half")
    (interrupted / runs.LOCK).write_text("12345\n")  # a killed holder's file, not its lock
    nnscratch.train(DATA, resume=interrupted)
    assert no_temporary_files(interrupted) == []


def test_a_killed_run_leaves_a_folder_that_resumes(tmp_path, clean_env):
    proc = cli_train(tmp_path / "run", clean_env)
    wait_for_line(proc, "epoch  2/40")
    proc.kill()
    proc.communicate(timeout=60)
    stray = tmp_path / "run" / ".checkpoint.npz.k1ll.tmp"
    stray.write_bytes(b"half")  # what a kill in the middle of a write leaves
    resumed = run(["train", "--resume", str(tmp_path / "run")], clean_env)
    assert resumed.returncode == 0, resumed.stderr
    assert no_temporary_files(tmp_path / "run") == []
    check_whole(tmp_path / "run")


def test_two_runs_started_in_the_same_second_get_a_folder_each(tmp_path, clean_env):
    procs = [subprocess.Popen([sys.executable, "-m", "nnscratch", "train", "--epochs", "1",
                               "--hidden", "8", "--out", str(tmp_path / "runs") + "/"],
                              env=clean_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    assert len(list((tmp_path / "runs").iterdir())) == 3


# --- 8. the Python API's argument types -----------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: nnscratch.train(5),
    lambda: nnscratch.train(DATA, out=5),
    lambda: nnscratch.train(DATA, resume=5),
    lambda: nnscratch.train(DATA, settings=5),
    lambda: nnscratch.train(DATA, progress="yes"),
    lambda: nnscratch.train(DATA, callback=5),
    lambda: nnscratch.train(DATA, callback=[print, 5]),
    lambda: nnscratch.train(DATA, backend=5),
    lambda: nnscratch.train(DATA, hidden="many"),
    lambda: nnscratch.train(DATA, epochs=2.5),
    lambda: nnscratch.train((DATA[0], DATA[1][:-1], DATA[2], DATA[3])),
    lambda: nnscratch.train((DATA[0], DATA[1], DATA[2])),
    lambda: nnscratch.train((DATA[0].tolist(), DATA[1], "x", DATA[3])),
    lambda: nnscratch.Trainer(5),
])
def test_wrong_argument_types_are_the_projects_errors(call):
    with pytest.raises(NNScratchError) as error:
        call()
    one_line(error.value)


# --- permission denied, as a user who may not write there ------------------------------------

#: The user the permission tests run nnscratch as, when they run as root (who may write
#: anywhere): root without the capabilities that bypass file permissions, so that a folder owned
#: by ``nobody`` (65534) is one it may read but not write, while the virtual environment (root's,
#: perhaps in a folder only root may enter) still runs.
NOBODY = 65534
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def as_another_user(args, env, cwd):
    """``nnscratch ARGS`` run by a user without write permission to the folders the tests give
    to ``nobody`` (see :func:`give_away`)."""
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv here: cannot drop the permission to write anywhere")
    command = [*WITHOUT_OVERRIDE, sys.executable, "-m", "nnscratch", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def give_away(*paths, mode=0o755):
    """``paths`` owned by ``nobody``, with ``mode`` (the tests run as root)."""
    for path in paths:
        path.chmod(mode)
        os.chown(path, NOBODY, NOBODY)


@pytest.fixture
def locked():
    """A folder we may read but not write, holding a finished run (outside pytest's temporary
    folders, so that another user could enter it)."""
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root, to give folders to another user (as CI runs)")
    folder = Path(tempfile.mkdtemp(prefix="nnscratch-locked-"))
    run_dir = nnscratch.train(DATA, out=folder / "run", **SETTINGS).run_dir
    give_away(*run_dir.iterdir(), mode=0o644)
    give_away(run_dir, folder)
    yield folder
    for path in (folder, run_dir):
        path.chmod(0o755)
    shutil.rmtree(folder)


@pytest.mark.parametrize("args,words", [
    (["train", "--epochs", "1", "--out", "{locked}/new"], ["{locked}/new", "permission denied"]),
    (["train", "--epochs", "1", "--out", "{locked}/"], ["{locked}", "permission denied"]),
    (["train", "--epochs", "1", "--out", "{locked}/m.npz"], ["{locked}", "not writable"]),
    (["report", "{locked}/run"], ["{locked}/run", "permission denied"]),
    (["data", "download"], ["{locked}/cache", "permission denied"]),
])
def test_permission_denied_is_one_sentence_and_leaves_nothing(locked, args, words):
    import tempfile

    home = tempfile.mkdtemp(prefix="nnscratch-home-")  # theirs to write: matplotlib's cache
    os.chmod(home, 0o777)
    env = {**os.environ, "HOME": home, "NNSCRATCH_CACHE": str(locked / "cache"),
           "NNSCRATCH_MIRRORS": "http://127.0.0.1:9/"}
    for name in ("NNSCRATCH_DATA", "NNSCRATCH_BACKEND", "NNSCRATCH_DOWNLOAD"):
        env.pop(name, None)
    before = sorted(p.relative_to(locked) for p in locked.rglob("*"))
    try:
        proc = as_another_user([a.format(locked=locked) for a in args], env, cwd=locked)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert_user_error(proc)
    for word in words:
        assert word.format(locked=locked) in proc.stderr.lower(), proc.stderr
    assert sorted(p.relative_to(locked) for p in locked.rglob("*")) == before


# --- every writer writes whole files ------------------------------------------------------------

AUDIT = r'''
import json, os, sys
written, renamed = [], []

def hook(event, args):
    if event == "open" and args[0] is not None and not isinstance(args[0], int):
        mode, flags = args[1] or "", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR):
            written.append(os.fspath(args[0]))
    elif event in ("os.rename", "os.replace"):
        renamed.append(os.fspath(args[1]))

sys.addaudithook(hook)
from nnscratch.cli import main
codes = [main(command) for command in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "written": written, "renamed": renamed}))
'''


def test_every_file_the_commands_write_is_written_whole(tmp_path, clean_env):
    """Each file a command writes in the user's folders is opened for writing only under a
    temporary name (atomic_file's) and renamed into place; seen through Python's audit hooks
    (every open of a file for writing, every rename), in a process of its own."""
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{'xy'[i % 2]}\n"
                                             for i in range(60)))
    commands = [
        ["train", "--epochs", "2", "--hidden", "8", "--out", str(tmp_path / "run")],
        ["train", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "m.npz")],
        ["report", str(tmp_path / "run")],
        ["train", "--data", str(rows), "--epochs", "2", "--out", str(tmp_path / "t.npz")],
        ["predict", str(tmp_path / "t.npz"), str(rows), "--out", str(tmp_path / "p.csv")],
    ]
    proc = subprocess.run([sys.executable, "-c", AUDIT, json.dumps(commands)], env=clean_env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["codes"] == [0] * len(commands)
    ours = [Path(p) for p in seen["written"] if Path(p).is_relative_to(tmp_path)
            and not Path(p).is_relative_to(tmp_path / "empty-cache")]
    direct = [p for p in ours if not (p.name.startswith(".") and p.name.endswith(".tmp"))
              and p.name != runs.LOCK]
    assert direct == [], "opened for writing under their own names"
    renamed = {Path(p) for p in seen["renamed"]}
    expected = {tmp_path / "run" / name for name in (runs.CONFIG, runs.METRICS, runs.CHECKPOINT,
                                                     runs.MODEL, runs.PREDICTIONS, runs.REPORT)}
    expected |= {tmp_path / "m.npz", tmp_path / "t.npz", tmp_path / "p.csv"}
    assert expected <= renamed
    assert no_temporary_files(tmp_path) == []


def test_an_evaluation_that_overflows_is_divergence_not_a_damaged_model():
    """One full-batch step with a learning rate of 1e20 leaves weights whose outputs on the test
    rows overflow: the run reports divergence (the model is fine as a file; its training blew)."""
    with pytest.raises(nnscratch.TrainingDivergedError) as error:
        nnscratch.train(DATA, batch_size=None, epochs=2, lr=1e20, hidden=(8,), eval_every=1,
                        progress=False)
    assert "loss on held-out images became" in one_line(error.value)


@pytest.mark.parametrize("args,words", [
    (["train", "--epochs", "1", "--data", "{secret}/mnist", "--out", "/tmp/never-written.npz"],
     ["{secret}/mnist", "cannot be read", "permission denied"]),
    (["data", "--data", "{secret}/mnist"], ["{secret}/mnist", "permission denied"]),
])
def test_a_folder_that_may_not_be_entered_is_one_sentence(locked, args, words):
    secret = locked / "secret"
    shutil.copytree(Path(nnscratch.__file__).parent / "sample", secret / "mnist")
    give_away(secret, mode=0o700)
    env = {**os.environ, "HOME": str(locked), "NNSCRATCH_CACHE": str(locked / "cache")}
    proc = as_another_user([a.format(secret=secret) for a in args], env, cwd=locked)
    assert_user_error(proc, *[w.format(secret=secret) for w in words])


def test_a_user_cache_that_may_not_be_entered_is_passed_over_saying_why(locked):
    import tempfile

    cache = locked / "secret-cache"
    shutil.copytree(Path(nnscratch.__file__).parent / "sample", cache / "mnist")
    give_away(cache, mode=0o700)
    home = tempfile.mkdtemp(prefix="nnscratch-home-")
    os.chmod(home, 0o777)
    env = {**os.environ, "HOME": home, "NNSCRATCH_CACHE": str(cache)}
    env.pop("NNSCRATCH_DATA", None)
    try:
        proc = as_another_user(["data"], env, cwd=locked)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    assert f"the user cache {cache / 'mnist'} cannot be read: permission denied" in proc.stdout
