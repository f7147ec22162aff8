"""Every writer of nnscratch, stopped by a real SIGTERM or SIGINT at many moments, or given a
full disk or a folder it may not write: what it leaves is whole, and no temporary file stays.

The writers: model files, each file of a run folder (config, metrics, checkpoint,
predictions, report and figures), ``predict --out``; the download cache is tested in
tests/test_download.py and tests/test_hardening_runs.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import nnscratch
from nnscratch.data.tables import read_table

from test_cli import assert_user_error, run
import test_hardening_runs
from test_hardening_runs import (DATA, SETTINGS, as_another_user, check_whole,
                                 no_temporary_files, tmpfs)

locked = test_hardening_runs.locked  # the fixture: a folder others may not write

# Rewrites every file of a finished run folder, over and over, until a signal stops it; the
# signal comes from a timer after argv[2] seconds: SIGTERM (handled as nnscratch's commands do)
# or SIGINT.
REWRITER = r'''
import os, signal, sys
from pathlib import Path
import nnscratch
from nnscratch.data.tables import read_table
from nnscratch import runs
from nnscratch._signals import terminate_as_interrupt
from nnscratch._fileio import write_text
from nnscratch.report import build_report

folder, delay, signum = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
model = nnscratch.load_model(folder / runs.MODEL)
config = runs.read_config(folder)
arrays = {f"param.{k}": v for k, v in model.params().items()}
signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signum))
signal.setitimer(signal.ITIMER_REAL, delay)
try:
    with terminate_as_interrupt():
        while True:
            model.save(folder / runs.MODEL)
            runs.write_config(folder, {k: v for k, v in config.items()
                                       if k not in ("format", "format_version")})
            runs.write_metrics(folder, runs.read_metrics(folder))
            runs.write_checkpoint(folder, arrays, {"position": {}, "optimizer": {}})
            build_report(folder)
            write_text(folder / "predicted.csv", "label\n" * 5000)
except KeyboardInterrupt as exc:
    sys.exit(128 + getattr(exc, "signum", signal.SIGINT))
'''


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_at_any_moment_leaves_every_file_whole(tmp_path, signum):
    folder = nnscratch.train(DATA, out=tmp_path / "run", **SETTINGS).run_dir
    for delay in np.linspace(0.2, 1.6, 8):  # the loop takes about a second a round
        proc = subprocess.run([sys.executable, "-c", REWRITER, str(folder), str(delay),
                               str(int(signum))], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 128 + signum, proc.stderr
        assert no_temporary_files(folder) == []
        check_whole(folder)
        if (folder / "predicted.csv").exists():
            assert (folder / "predicted.csv").read_text() == "label\n" * 5000


@pytest.fixture
def table(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{'xy'[i % 2]}\n"
                                             for i in range(400)))
    return rows


def test_predict_out_on_a_full_disk(tmp_path, clean_env, table):
    proc = run(["train", "--data", str(table), "--epochs", "2", "--out", str(tmp_path / "t.npz")],
               clean_env)
    assert proc.returncode == 0, proc.stderr
    with tmpfs(tmp_path / "disk", 4) as disk:
        (disk / "filler").write_bytes(b"\0" * 2048)
        proc = run(["predict", str(tmp_path / "t.npz"), str(table), "--out",
                    str(disk / "p.csv")], clean_env)
        assert_user_error(proc, "p.csv", "no space left on device")
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_predict_out_where_it_may_not_write(locked, table):
    model = locked / "t.npz"
    nnscratch.train(read_table(table), out=model, epochs=2, progress=False)
    model.chmod(0o644)
    shutil.copy(table, locked / "rows.csv")
    (locked / "rows.csv").chmod(0o644)
    env = {**os.environ, "HOME": str(locked)}
    proc = as_another_user(["predict", str(model), str(locked / "rows.csv"), "--out",
                            str(locked / "p.csv")], env, cwd=locked)
    assert_user_error(proc, "p.csv", "permission denied")
    assert not (locked / "p.csv").exists() and no_temporary_files(locked) == []


def test_sigterm_while_training_to_a_model_file_writes_nothing(tmp_path, clean_env):
    proc = subprocess.Popen([sys.executable, "-m", "nnscratch", "train", "--epochs", "30",
                             "--batch-size", "20", "--hidden", "16", "--out",
                             str(tmp_path / "m.npz")], env=clean_env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in proc.stdout:
        if line.startswith("epoch  1/30"):
            proc.terminate()
            break
    _, err = proc.communicate(timeout=120)
    assert_user_error(subprocess.CompletedProcess([], proc.returncode, "", err),
                      "interrupted by SIGTERM", "nothing was written", code=143)
    assert [p.name for p in tmp_path.iterdir() if p.name != "empty-cache"] == []
