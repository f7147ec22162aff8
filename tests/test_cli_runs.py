"""`nnscratch train --out RUN`, Ctrl-C and `--resume`, divergence and `nnscratch report`, run
end to end in subprocesses as a user would run them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import runs

from test_cli import assert_user_error, run

# Adam, a cosine schedule, weight decay and a validation split: every kind of state a
# checkpoint has to carry. Batches of 16 make it long enough (9 epochs of 450 steps) to be
# interrupted in the middle.
SETTINGS = ["--hidden", "64", "--epochs", "9", "--batch-size", "16", "--optimizer", "adam",
            "--lr", "0.002", "--schedule", "cosine", "--weight-decay", "1e-4",
            "--validation", "0.1", "--seed", "3"]


def interrupt(args, env, after_line):
    """Run ``nnscratch ARGS``, send it SIGINT once it has printed a line starting with
    ``after_line``, and return the finished process's exit code, stdout and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "nnscratch", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if line.startswith(after_line):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    return proc.returncode, "".join(printed) + out, err


def metrics_without_seconds(folder):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in runs.read_metrics(folder)]


def test_sigint_then_resume_is_bit_identical(tmp_path, clean_env):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    proc = run(["train", *SETTINGS, "--out", str(whole)], clean_env)
    assert proc.returncode == 0, proc.stderr

    code, out, err = interrupt(["train", *SETTINGS, "--out", str(cut)], clean_env, "epoch 2/9")
    assert code == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert re.fullmatch(rf"nnscratch train: interrupted (in epoch \d after step \d+ of 450|"
                        rf"before epoch \d); "
                        rf"checkpoint saved to {re.escape(str(cut / 'checkpoint.npz'))}; "
                        rf"resume with: nnscratch train --resume {re.escape(str(cut))}", lines[0])
    assert sorted(p.name for p in cut.iterdir()) == ["checkpoint.npz", "config.json",
                                                     "metrics.csv"]  # nothing half-written
    stopped = int(re.search(r"epoch (\d)", lines[0]).group(1))
    assert 2 <= stopped < 9 and "epoch 9/9" not in out

    proc = run(["train", "--resume", str(cut)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 9/9" in proc.stdout and "epoch 1/9" not in proc.stdout
    resumed, uninterrupted = (nnscratch.load_model(f / "model.npz").params() for f in (cut, whole))
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert metrics_without_seconds(cut) == metrics_without_seconds(whole)
    assert not (cut / "checkpoint.npz").exists()


def test_resume_reads_the_data_the_run_was_given(tmp_path, clean_env):
    """A run trained on ``--data PATH`` records the path, so ``--resume`` alone finds it again
    (here the bundled sample's folder, given explicitly, so that the default would differ)."""
    given = tmp_path / "mnist"
    given.mkdir()
    for idx in (Path(nnscratch.__file__).parent / "sample").glob("*.gz"):
        (given / idx.name).write_bytes(idx.read_bytes())
    cut = tmp_path / "cut"
    code, _, err = interrupt(["train", *SETTINGS, "--data", str(given), "--out", str(cut)],
                             clean_env, "epoch 1/9")
    assert code == 130, err
    assert runs.read_config(cut)["data"] == str(given.resolve())

    proc = run(["train", "--resume", str(cut)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"data: MNIST IDX files in {given.resolve()}")


def test_lr_1e6_stops_in_the_first_epoch_with_exit_3(tmp_path, clean_env):
    folder = tmp_path / "run"
    proc = run(["train", "--lr", "1e6", "--epochs", "3", "--out", str(folder)], clean_env)
    assert_user_error(proc, code=3)
    assert re.fullmatch(r"nnscratch train: error: training diverged at epoch 1, step \d: the "
                        r"loss became \S+; the learning rate \(1e\+06\) is probably too large; "
                        rf"{re.escape(str(folder))} has no checkpoint: no epoch had finished",
                        proc.stderr.strip())
    # no epoch finished, so only the settings were written; nothing half-written
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


@pytest.mark.parametrize("args,words", [
    (["train", "--resume", "/no/such/run"], ["/no/such/run", "does not exist"]),
    (["train", "--resume", "RUN", "--out", "x.npz"], ["--out and --resume"]),
    (["train", "--resume", "RUN", "--lr", "0.7"], ["lr 0.7 differs"]),
    (["train", "--out", "RUN"], ["already holds an unfinished run", "--resume"]),
    (["train", "--validation", "1"], ["--validation"]),
    (["train", "--schedule", "linear"], ["--schedule"]),
    (["train", "--lr-gamma", "2"], ["--lr-gamma"]),
    (["train", "--weight-decay", "-1"], ["--weight-decay"]),
    (["report", "/no/such/run"], ["/no/such/run"]),
])
def test_run_folder_mistakes_are_one_line_and_exit_2(tmp_path, clean_env, args, words):
    folder = tmp_path / "run"
    folder.mkdir()  # an unfinished run: the default settings, no checkpoint yet
    runs.write_config(folder, {"training": nnscratch.TrainSettings().to_json(),
                               "layer_sizes": [784, 128, 10]})
    args = [str(folder) if a == "RUN" else a for a in args]
    assert_user_error(run(args, clean_env, cwd=tmp_path), *words)


def test_report_rebuilds_a_run_and_says_how_to_get_figures(tmp_path, clean_env):
    folder = tmp_path / "run"
    proc = run(["train", "--epochs", "1", "--hidden", "16", "--out", str(folder)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert f"report {folder / 'report.html'}" in proc.stdout
    for name in ("report.html", "curves.png", "confusion.png", "mistakes.png", "weights.png"):
        (folder / name).unlink()
    proc = run(["report", str(folder)], clean_env)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "report.html").is_file() and (folder / "weights.png").is_file()
    # without matplotlib (an import that fails), the page comes without pictures, and says so
    blocker = tmp_path / "blocker" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked')\n")
    env = {**clean_env, "PYTHONPATH": str(blocker.parent)}
    proc = run(["report", str(folder)], env)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "nnscratch[plot]"' in proc.stdout
    page = (folder / "report.html").read_text()
    assert "<img" not in page and 'pip install "nnscratch[plot]"' in page
    assert "<th>true \\ predicted</th>" in page  # the confusion matrix as a table instead
    proc = run(["train", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path / "r2")], env)
    assert proc.returncode == 0 and 'pip install "nnscratch[plot]"' in proc.stdout
    assert nnscratch.load_model(tmp_path / "r2" / "model.npz").layer_sizes == (784, 16, 10)


def test_help_lists_the_new_options(clean_env):
    proc = run(["train", "--help"], clean_env)
    assert proc.returncode == 0
    for option in ("--optimizer", "--nesterov", "--weight-decay", "--schedule", "--lr-step",
                   "--lr-gamma", "--lr-min", "--validation", "--patience", "--resume", "--out"):
        assert option in proc.stdout
    proc = run(["report", "--help"], clean_env)
    assert proc.returncode == 0 and "RUN" in proc.stdout and "nnscratch[plot]" in proc.stdout
