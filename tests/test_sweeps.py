"""Sweeps on Dask (nnscratch.sweeps, ``nnscratch sweep``): real clusters, never a mock.

A LocalCluster of worker processes; a ``dask scheduler`` and two ``dask worker`` processes on
127.0.0.1 with one of them killed by SIGKILL mid-trial; 1 worker against 2; Ctrl-C then
--resume; successive halving; failures recorded per trial. The trials train on the sample
bundled with nnscratch (named in each spec), so that they take about a second each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed", reason="sweeps need Dask: pip install \"nnscratch[sweep]\"")

import nnscratch  # noqa: E402
from nnscratch import ConfigError, RunFolderError, train  # noqa: E402
from nnscratch.serialize import read_model_file  # noqa: E402
from nnscratch.sweeps import RESULT_COLUMNS, read_results, sweep  # noqa: E402

SAMPLE = Path(nnscratch.__file__).parent / "sample"
TIMES_AND_PLACES = ("seconds", "worker")


def write_spec(folder: Path, body: str, name: str = "spec.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'{body}\n[data]\npath = "{SAMPLE}"\n')
    return path


GRID = """
[fixed]
epochs = 3
hidden = [32]
[grid]
lr = [0.05, 0.2]
batch_size = [64, 128]
"""


def comparable(rows):
    """The rows without what may differ between equal sweeps: times and worker names."""
    return [{k: v for k, v in row.items() if k not in TIMES_AND_PLACES} for row in rows]


def parameters(trial_folder: Path) -> dict[str, np.ndarray]:
    return read_model_file(trial_folder / "model.npz")[0]


def same_parameters(a: Path, b: Path) -> bool:
    pa, pb = parameters(a), parameters(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[k], pb[k]) for k in pa)


ONE_BLAS_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")}


def train_alone(trial: Path, out: Path) -> float:
    """Train a trial's settings with train() in a process of its own, outside any sweep, with
    one BLAS thread as each trial has (BLAS may round differently with more); its accuracy."""
    code = ("import json, sys, nnscratch; c = json.load(open(sys.argv[1])); "
            "r = nnscratch.train(sys.argv[2], settings=nnscratch.TrainSettings.from_json("
            "c['training']), out=sys.argv[3], progress=False); print(repr(r.test_accuracy))")
    done = subprocess.run([sys.executable, "-c", code, str(trial / "config.json"), str(SAMPLE),
                           str(out)], capture_output=True, text=True,
                          env={**os.environ, **ONE_BLAS_THREAD}, check=True)
    return float(done.stdout)


@pytest.fixture(scope="module")
def two_worker_sweep(tmp_path_factory):
    """The GRID spec swept on a LocalCluster of 2 worker processes."""
    folder = tmp_path_factory.mktemp("sweep2")
    result = sweep(write_spec(folder, GRID), folder / "out", workers=2, progress=False)
    return result


def test_a_local_sweep_writes_a_run_folder_per_trial_and_its_results(two_worker_sweep):
    result = two_worker_sweep
    assert [r["status"] for r in result.rows] == ["done"] * 4
    assert read_results(result.folder) == result.rows  # results.csv holds what was returned
    header = (result.folder / "results.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == RESULT_COLUMNS
    assert {r["lr"] for r in result.rows} == {0.05, 0.2}
    assert {r["batch_size"] for r in result.rows} == {64, 128}
    workers = {r["worker"] for r in result.rows}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
    for row in result.rows:
        trial = result.folder / "trials" / row["trial"]
        assert {"config.json", "metrics.csv", "model.npz", "report.html"} <= {
            p.name for p in trial.iterdir()}
        assert row["epochs_run"] == 3 and 0.5 < row["final_test_accuracy"] <= 1
        assert row["best_test_accuracy"] >= row["final_test_accuracy"]
        assert row["best_val_accuracy"] is None  # no validation split was asked for
    assert (result.folder / "report.html").is_file()
    best = result.best
    assert best["final_test_accuracy"] == max(r["final_test_accuracy"] for r in result.rows)


def test_a_trial_is_the_run_train_makes_with_its_settings(two_worker_sweep, tmp_path):
    """A trial depends only on its settings: the same settings given to train() outside any
    sweep give the same parameters bit for bit and the same accuracy."""
    row = two_worker_sweep.rows[3]
    trial = two_worker_sweep.folder / "trials" / row["trial"]
    assert train_alone(trial, tmp_path / "direct") == row["final_test_accuracy"]
    assert same_parameters(trial, tmp_path / "direct")


def test_one_worker_gives_the_results_of_two(two_worker_sweep, tmp_path):
    one = sweep(write_spec(tmp_path, GRID), tmp_path / "out", workers=1, progress=False)
    assert {r["worker"] for r in one.rows} != {r["worker"] for r in two_worker_sweep.rows}
    assert comparable(one.rows) == comparable(two_worker_sweep.rows)
    for row in one.rows:
        assert same_parameters(one.folder / "trials" / row["trial"],
                               two_worker_sweep.folder / "trials" / row["trial"])


def test_a_failing_trial_is_recorded_and_the_others_finish(tmp_path):
    spec = write_spec(tmp_path, "[fixed]\nepochs = 2\nhidden = [16]\n[grid]\nlr = [0.1, 1e6]\n")
    result = sweep(spec, tmp_path / "out", workers=1, progress=False)
    good, bad = result.rows
    assert good["status"] == "done" and good["reason"] == ""
    assert bad["status"] == "failed" and "diverged" in bad["reason"]
    assert read_results(result.folder)[1]["reason"] == bad["reason"]


# --- a cluster started by hand: dask scheduler + dask worker, one of them killed -----------------

def _dask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]]


@pytest.fixture
def hand_started_cluster(tmp_path):
    """A scheduler and two single-thread workers started as separate processes, as a user
    would on a cluster (workers without a nanny, so a killed one stays dead)."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, **ONE_BLAS_THREAD}
    processes = [subprocess.Popen(_dask_command("scheduler", "--host", "127.0.0.1", "--port",
                                                "0", "--no-dashboard", "--scheduler-file",
                                                str(scheduler_file)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            processes.append(subprocess.Popen(
                _dask_command("worker", address, "--nthreads", "1", "--no-nanny",
                              "--no-dashboard", "--host", "127.0.0.1"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        from distributed import Client
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait()


def _kill_a_worker_mid_trial(folder: Path) -> tuple[Path, str]:
    """SIGKILL the worker that trains a trial once the trial has a checkpoint (its first
    epoch done, more to come); the trial's .lock names the process. Returns the trial folder
    and its config.json as it was then."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for checkpoint in sorted(folder.glob("trials/*/checkpoint.npz")):
            trial = checkpoint.parent
            try:
                pid = int((trial / ".lock").read_text())
                config = (trial / "config.json").read_text()
            except (OSError, ValueError):
                continue
            os.kill(pid, signal.SIGKILL)
            return trial, config
        time.sleep(0.01)
    raise AssertionError("no trial reached its first checkpoint")


def test_a_worker_killed_mid_trial_loses_nothing(hand_started_cluster, tmp_path,
                                                  two_worker_sweep):
    import threading

    spec = write_spec(tmp_path, GRID)
    outcome = {}

    def run() -> None:
        try:
            outcome["result"] = sweep(spec, tmp_path / "out", scheduler=hand_started_cluster,
                                      progress=False)
        except BaseException as exc:  # shown by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    killed, config_then = _kill_a_worker_mid_trial(tmp_path / "out")
    thread.join(timeout=300)
    assert "result" in outcome, repr(outcome.get("error"))
    result = outcome["result"]
    assert [r["status"] for r in result.rows] == ["done"] * 4
    # The same results as the undisturbed sweep on a LocalCluster, parameters bit for bit.
    assert comparable(result.rows) == comparable(two_worker_sweep.rows)
    for row in result.rows:
        assert same_parameters(result.folder / "trials" / row["trial"],
                               two_worker_sweep.folder / "trials" / row["trial"])
    # The killed trial was continued from its checkpoint (a new start rewrites config.json),
    # on the worker still alive.
    assert (killed / "config.json").read_text() == config_then
    assert len({r["worker"] for r in result.rows if r["trial"] == killed.name}) == 1


# --- the command line: Ctrl-C, --resume, mistakes ---------------------------------------------

def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnscratch", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_ctrl_c_then_resume_gives_the_uninterrupted_results(tmp_path, two_worker_sweep):
    spec = write_spec(tmp_path, GRID)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "nnscratch", "sweep", str(spec), "--out",
                                str(out), "--workers", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # interrupt once the first trial has finished
        try:
            if "done" in [r["status"] for r in read_results(out)]:
                break
        except (OSError, RunFolderError):
            pass
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert f"nnscratch sweep --resume {out}" in stderr
    rows = read_results(out)
    finished = [r for r in rows if r["status"] == "done"]
    assert 1 <= len(finished) < 4, "the interruption came after the sweep had finished"

    resumed = run_cli("sweep", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "4 trials: 4 done" in resumed.stdout
    after = read_results(out)
    assert comparable(after) == comparable(two_worker_sweep.rows)
    for before in finished:  # kept as they were, not run again
        assert next(r for r in after if r["trial"] == before["trial"]) == before


def test_dry_run_lists_the_trials_and_runs_nothing(tmp_path):
    spec = write_spec(tmp_path, GRID)
    done = run_cli("sweep", str(spec), "--dry-run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["trial", "batch_size", "lr"]
    assert len(lines) == 6 and "4 trials (grid search)" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


@pytest.mark.parametrize("args, words", [
    (["sweep"], "give a sweep spec"),
    (["sweep", "SPEC"], "--out is needed"),
    (["sweep", "SPEC", "--out", "o", "--resume", "o"], "--resume takes the sweep folder alone"),
    (["sweep", "--resume", "nowhere"], "not a sweep folder"),
    (["sweep", "SPEC", "--out", "o", "--scheduler", "tcp://127.0.0.1:9"],
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    (["sweep", "SPEC", "--out", "o", "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"],
     "--workers and --threads-per-trial size the local cluster"),
    (["sweep", "SPEC", "--out", "o", "--scheduler", "tcp://127.0.0.1:9",
      "--threads-per-trial", "2"], "--workers and --threads-per-trial size the local cluster"),
    (["sweep", "SPEC", "--out", "o", "--workers", "0"], "--workers"),
    (["sweep", "--dry-run"], "give a sweep spec"),
])
def test_mistakes_are_one_line_and_a_nonzero_exit(tmp_path, args, words):
    spec = write_spec(tmp_path, GRID)
    args = [str(spec) if a == "SPEC" else a for a in args]
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode != 0
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "o" / "results.csv").exists()


def test_an_existing_sweep_folder_is_not_overwritten(two_worker_sweep):
    before = (two_worker_sweep.folder / "results.csv").read_bytes()
    spec = two_worker_sweep.folder.parent / "spec.toml"
    with pytest.raises(RunFolderError, match="already holds a sweep; continue it with --resume"):
        sweep(spec, two_worker_sweep.folder, workers=1, progress=False)
    assert (two_worker_sweep.folder / "results.csv").read_bytes() == before


def test_without_dask_the_command_says_how_to_install_it(tmp_path):
    spec = write_spec(tmp_path, GRID)
    code = ("import sys; sys.modules['distributed'] = None; from nnscratch.cli import main; "
            f"sys.exit(main(['sweep', {str(spec)!r}, '--out', {str(tmp_path / 'o')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert 'pip install "nnscratch[sweep]"' in done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage, words", [
    (lambda text: "not,a,results,table\n", "does not start with the header"),
    (lambda text: text + "x,done\n", "line 6: 2 cells"),
    (lambda text: text.replace(",done,", ",finished,", 1), "unknown status 'finished'"),
    (lambda text: text.replace("0.05", "nan", 1), "not a finite number"),
])
def test_a_damaged_results_table_is_refused_in_one_sentence(two_worker_sweep, tmp_path,
                                                            damage, words):
    (tmp_path / "results.csv").write_text(
        damage((two_worker_sweep.folder / "results.csv").read_text()))
    with pytest.raises(RunFolderError, match=words):
        read_results(tmp_path)


# --- successive halving ---------------------------------------------------------------------

def test_successive_halving_keeps_the_best_third_and_continues_them_exactly(tmp_path):
    spec = write_spec(tmp_path, """search = "halving"
[halving]
min_epochs = 1
eta = 3
[fixed]
epochs = 3
hidden = [16]
[grid]
lr = [0.01, 0.05, 0.3]
batch_size = [32, 128, 512]
""")
    result = sweep(spec, tmp_path / "out", workers=2, progress=False)
    rows = result.rows
    assert sorted(r["status"] for r in rows) == ["done"] * 3 + ["stopped"] * 6
    stopped = [r for r in rows if r["status"] == "stopped"]
    done = [r for r in rows if r["status"] == "done"]
    assert all(r["epochs_run"] == 1 and "not among the best 3 of 9" in r["reason"]
               for r in stopped)
    assert all(r["epochs_run"] == 3 for r in done)
    # The three kept are the best three after epoch 1 (read from their own metrics).
    after_one = {r["trial"]: nnscratch.runs.read_metrics(
        result.folder / "trials" / r["trial"])[0]["test_accuracy"] for r in rows}
    assert min(after_one[r["trial"]] for r in done) >= max(r["final_test_accuracy"]
                                                           for r in stopped)
    # A kept trial, paused after epoch 1 and continued, is the run train() makes in one go.
    best = result.folder / "trials" / result.best["trial"]
    assert train_alone(best, tmp_path / "direct") == result.best["final_test_accuracy"]
    assert same_parameters(best, tmp_path / "direct")


# --- train(pause_after=...) --------------------------------------------------------------------

def test_pause_after_then_resume_is_the_uninterrupted_run(tmp_path, sample_mnist):
    options = dict(hidden=[16], epochs=3, progress=False)
    paused = train(sample_mnist, out=tmp_path / "run", pause_after=1, **options)
    assert paused.paused and len(paused.history) == 1
    assert not (tmp_path / "run" / "model.npz").exists()
    again = train(sample_mnist, resume=tmp_path / "run", pause_after=1, progress=False)
    assert again.paused and len(again.history) == 1  # already past epoch 1: nothing trained
    finished = train(sample_mnist, resume=tmp_path / "run", progress=False)
    whole = train(sample_mnist, out=tmp_path / "whole", **options)
    assert not finished.paused and finished.test_accuracy == whole.test_accuracy
    assert same_parameters(tmp_path / "run", tmp_path / "whole")


@pytest.mark.parametrize("kwargs, words", [
    (dict(pause_after=0, out="run"), "pause_after must be an epoch number"),
    (dict(pause_after=True, out="run"), "pause_after must be an epoch number"),
    (dict(pause_after=1), "pause_after needs a run folder"),
    (dict(pause_after=1, out="model.npz"), "pause_after needs a run folder"),
])
def test_pause_after_mistakes(tmp_path, sample_mnist, kwargs, words):
    if "out" in kwargs:
        kwargs["out"] = tmp_path / kwargs["out"]
    with pytest.raises(ConfigError, match=words):
        train(sample_mnist, epochs=1, progress=False, **kwargs)


def test_report_rebuilds_a_sweep_report(two_worker_sweep):
    page = two_worker_sweep.folder / "report.html"
    page.unlink()
    done = run_cli("report", str(two_worker_sweep.folder))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report written to {page}"
    text = page.read_text()
    assert all(row["trial"] in text for row in two_worker_sweep.rows)


@pytest.mark.parametrize("text, error, words", [
    ("{not json", RunFolderError, "sweep.json is damaged"),
    ('{"format": "something-else", "spec": {}}', RunFolderError, "not a sweep record"),
    ('{"format": "nnscratch-sweep", "spec": {"grid": {"lr": [0.1]}, "colour": 1}}',
     ConfigError, "unknown key 'colour'"),
    ('{"format": "nnscratch-sweep", "spec": {"grid": {"lr": [-1]}}}', ConfigError,
     "is impossible"),
    ("[" * 100_000, RunFolderError, "nested too deeply"),
])
def test_a_damaged_sweep_record_is_refused_before_anything_runs(tmp_path, text, error, words):
    (tmp_path / "sweep.json").write_text(text)
    with pytest.raises(error, match=words):
        sweep(resume=tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json"]


def test_the_scheduler_can_come_from_the_environment(tmp_path):
    spec = write_spec(tmp_path, GRID)
    done = run_cli("sweep", str(spec), "--out", str(tmp_path / "o"),
                   env={**os.environ, "NNSCRATCH_SCHEDULER": "tcp://127.0.0.1:9"})
    assert done.returncode != 0
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert not (tmp_path / "o").exists()
