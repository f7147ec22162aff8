"""Sweeps: the trials of a spec (see :mod:`nnscratch.sweep_spec`) trained on Dask distributed,
each an ordinary run folder, with a table of results and a report.

By default the trials run on a ``LocalCluster`` of worker processes sized to the machine, each
trial with one BLAS thread (so trials do not fight over cores); given a scheduler's address
(``scheduler=`` or ``NNSCRATCH_SCHEDULER``), on that cluster. The client loads the data once
and sends it to the workers, so they need not see its files; they need nnscratch installed and
the sweep folder on a filesystem they share with the client (a cluster's shared home or
scratch), since each trial writes its run folder there.

A sweep folder::

    sweep.json        the spec as read (data paths made absolute): all --resume needs
    results.csv       a row per trial (its settings, results, status, worker), as they finish
    report.html       the sweep's report (see nnscratch.sweep_report)
    trials/<trial>/   each trial's run folder: config, metrics, checkpoint, model, report

A trial's results depend only on its settings and the data, never on the worker or on how many
there are. A worker that dies mid-trial (killed, out of memory) loses nothing but time: Dask
runs the trial again elsewhere and it continues from its last checkpoint. A trial that fails
by itself (it diverges, say) is recorded as failed with the reason and the others go on.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import runs
from ._fileio import as_path, make_folder, open_regular, read_json, json_text, write_text
from ._version import __version__
from .callbacks import Callback, history_as_dicts
from .errors import ConfigError, NNScratchError, RunFolderError
from .settings import POSITIVE_INT, SettingsError, TrainSettings
from .sweep_spec import SweepSpec, Trial, parse_spec, read_spec

__all__ = ["sweep", "SweepResult", "SweepInterrupted", "run_trial", "read_results",
           "build_sweep_report", "is_sweep_folder", "RESULT_COLUMNS", "SCHEDULER_ENV",
           "DASK_HINT"]

STATE, RESULTS, REPORT, TRIALS = "sweep.json", "results.csv", "report.html", "trials"
SWEEP_FORMAT, FORMAT_VERSION = "nnscratch-sweep", 1
SCHEDULER_ENV = "NNSCRATCH_SCHEDULER"
DASK_HINT = 'pip install "nnscratch[sweep]"'
# The threads a trial may use: BLAS's, and the numba backend's for its full-batch kernels.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
# done: trained all its epochs (or stopped early); failed: by itself, with a reason; stopped:
# left behind by successive halving; paused: has a checkpoint and goes on in the next rung;
# pending: not run yet (or interrupted before its first epoch ended).
STATUSES = ("done", "failed", "stopped", "paused", "pending")
METRIC_COLUMNS = ("epochs_run", "final_test_accuracy", "final_test_loss", "best_test_accuracy",
                  "best_test_loss", "final_val_accuracy", "final_val_loss", "best_val_accuracy",
                  "best_val_loss", "seconds")
RESULT_COLUMNS = ("trial", "status", *TrainSettings.names(), *METRIC_COLUMNS, "worker",
                  "reason")
_TEXT_COLUMNS = ("trial", "status", "worker", "reason")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped :func:`sweep`: the finished trials are kept in ``folder``
    and ``sweep(resume=folder)`` runs the rest. ``signum`` is the signal's number."""

    def __init__(self, folder: Path, finished: int, total: int, signum: int) -> None:
        self.folder, self.finished, self.total, self.signum = folder, finished, total, signum
        super().__init__(f"interrupted with {finished} of {total} trials finished")


@dataclass
class SweepResult:
    """What :func:`sweep` did: its folder, a row per trial (the columns of results.csv, typed)
    and the report it wrote."""

    folder: Path
    rows: list[dict[str, Any]]
    report: Path | None = None

    @property
    def ranked_by(self) -> str:
        """The column trials are ranked by: final validation accuracy when the trials hold
        out a validation split, else final test accuracy."""
        return ("final_val_accuracy" if any(r["final_val_accuracy"] is not None
                                            for r in self.rows) else "final_test_accuracy")

    @property
    def best(self) -> dict[str, Any] | None:
        """The row of the best trial that finished (the first in trial order among equals)."""
        return _best(self.rows, self.ranked_by)


def _best(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any] | None:
    scored = [r for r in rows if r["status"] == "done" and r[key] is not None]
    return dict(max(scored, key=lambda r: r[key])) if scored else None


# --- what a worker does -----------------------------------------------------------------------

class _Stopped(Exception):
    """The sweep was stopped (its stop event set) between two epochs of a trial."""


class _StopWhenSet(Callback):
    """Before each epoch: has the sweep's client asked the trials to stop (Ctrl-C)? The epoch
    before has its checkpoint, so the trial continues from there when the sweep is resumed."""

    def __init__(self, event_name: str) -> None:
        self.event_name = event_name

    def on_epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        from distributed import Event

        if Event(self.event_name).is_set():
            raise _Stopped


def _worker_name() -> str:
    try:
        from distributed import get_worker
        return str(get_worker().address)
    except (ImportError, ValueError):  # run outside a Dask worker
        return "local"


def run_trial(data: Any, folder: str, settings: Mapping[str, Any],
              pause_after: int | None = None, stop_event: str | None = None) -> dict[str, Any]:
    """Train one trial in its run ``folder`` (what each Dask task does) and say how it went:
    ``{"status", "history", "reason", "worker"}``.

    A folder holding a finished run is only read; one with a checkpoint is continued from it
    (a worker died, the sweep was interrupted, or successive halving continues it); else the
    trial starts. ``pause_after``: stop after that epoch, keeping the checkpoint (status
    "paused"). A trial that fails by itself (diverges, an impossible setting for this data) is
    returned as "failed" with the reason; it never raises for that.
    """
    from .training import train

    where, worker = Path(folder), _worker_name()
    callback = None if stop_event is None else _StopWhenSet(stop_event)
    try:
        if (where / runs.MODEL).exists() and not (where / runs.CHECKPOINT).exists():
            history, status = runs.read_metrics(where), "done"
        else:
            started = (where / runs.CONFIG).exists()
            result = train(data, settings=TrainSettings.from_json(dict(settings)),
                           out=None if started else where, resume=where if started else None,
                           pause_after=pause_after, progress=False, callback=callback)
            history = history_as_dicts(result.history)
            status = "paused" if result.paused else "done"
    except _Stopped:
        return {"status": "pending", "history": _history(where), "reason": "", "worker": worker}
    except NNScratchError as exc:
        return {"status": "failed", "history": _history(where), "reason": str(exc),
                "worker": worker}
    return {"status": status, "history": history, "reason": "", "worker": worker}


def _history(folder: Path) -> list[dict[str, Any]]:
    """The epochs a trial's folder records, or none where it records nothing readable."""
    try:
        return runs.read_metrics(folder) if (folder / runs.METRICS).exists() else []
    except NNScratchError:
        return []


# --- results.csv ------------------------------------------------------------------------------

def _row(trial: Trial, outcome: Mapping[str, Any]) -> dict[str, Any]:
    """A results.csv row: the trial's settings, then what its epochs say."""
    history = outcome.get("history") or []
    row: dict[str, Any] = {"trial": trial.name, "status": outcome["status"]}
    row.update(_setting_cells(trial.settings))
    row["epochs_run"] = len(history)
    for part in ("test", "val"):
        accuracy = [h[f"{part}_accuracy"] for h in history if h[f"{part}_accuracy"] is not None]
        loss = [h[f"{part}_loss"] for h in history if h[f"{part}_loss"] is not None]
        row[f"final_{part}_accuracy"] = accuracy[-1] if accuracy else None
        row[f"final_{part}_loss"] = loss[-1] if loss else None
        row[f"best_{part}_accuracy"] = max(accuracy) if accuracy else None
        row[f"best_{part}_loss"] = min(loss) if loss else None
    row["seconds"] = round(sum(h["seconds"] for h in history), 3) if history else None
    row["worker"] = outcome.get("worker", "")
    row["reason"] = outcome.get("reason", "")
    return row


def _setting_cells(settings: TrainSettings) -> dict[str, Any]:
    cells = settings.to_json()
    cells["hidden"] = ",".join(map(str, cells["hidden"]))
    cells["affine"] = ",".join(f"{bound:g}" for bound in cells["affine"])  # as --affine takes it
    return cells


def _pending(trial: Trial) -> dict[str, Any]:
    return _row(trial, {"status": "pending"})


def read_results(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a sweep's results.csv, typed as :func:`sweep` returns them; a file that is
    not one nnscratch wrote is a :class:`~nnscratch.errors.RunFolderError` naming the line."""
    path = Path(folder) / RESULTS
    with open_regular(path, RunFolderError, "a sweep's results table (results.csv)") as handle:
        try:
            lines = list(csv.reader(io.TextIOWrapper(handle, encoding="utf-8", newline="")))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RunFolderError(f"{path} is not a results table nnscratch wrote ({exc})") from None
    if not lines or tuple(lines[0]) != RESULT_COLUMNS:
        raise RunFolderError(f"{path} does not start with the header of nnscratch's results "
                             f"table, so it is not one nnscratch wrote")
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(RESULT_COLUMNS):
            raise RunFolderError(f"{path}, line {number}: {len(cells)} cells where the header "
                                 f"has {len(RESULT_COLUMNS)}")
        row = dict(zip(RESULT_COLUMNS, cells))
        if row["status"] not in STATUSES:
            raise RunFolderError(f"{path}, line {number}: unknown status {row['status']!r:.40}")
        rows.append({name: value if name in _TEXT_COLUMNS else _typed(name, value, path, number)
                     for name, value in row.items()})
    return rows


def _typed(name: str, text: str, path: Path, line: int) -> Any:
    if text == "" or name in ("hidden", "affine"):
        return None if text == "" else text
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        if name in METRIC_COLUMNS:
            raise RunFolderError(f"{path}, line {line}: {name} is {text!r:.40}, not a "
                                 f"number") from None
        return text
    if not math.isfinite(number):
        raise RunFolderError(f"{path}, line {line}: {name} is {text!r:.40}, not a finite "
                             f"number")
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


# --- the sweep folder ---------------------------------------------------------------------------

def _absolute_data(record: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The spec's record with its data paths absolute: relative ones are taken from ``base``
    (the spec's folder), so that the sweep reads the same data wherever it is resumed from."""
    record = dict(record)
    data = dict(record.get("data", {}))
    for key in ("path", "test_data"):
        if key in data:
            data[key] = str((base / Path(data[key]).expanduser()).resolve())
    if data:
        record["data"] = data
    return record


def _check_target(folder: Path) -> None:
    """A new sweep's folder: one that does not exist yet, or an empty one."""
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"cannot make a sweep folder at {folder}: a file is in the way")
    if (folder / STATE).exists():
        raise RunFolderError(f"{folder} already holds a sweep; continue it with --resume "
                             f"{folder}, or choose another --out")
    if folder.is_dir() and any(p.name != runs.LOCK for p in folder.iterdir()):
        raise RunFolderError(f"{folder} is a folder of other files, not a new sweep folder; "
                             f"choose another --out")


def _new_folder(out: str | os.PathLike, spec: SweepSpec) -> tuple[Path, runs.RunFolderLock]:
    folder = as_path(out, ConfigError, "out")
    _check_target(folder)
    created = not folder.exists()
    make_folder(folder, "the sweep folder")
    lock = runs.RunFolderLock(folder, created=created)
    try:
        _check_target(folder)  # again, under the lock
        write_text(folder / STATE, json_text({
            "format": SWEEP_FORMAT, "format_version": FORMAT_VERSION,
            "nnscratch_version": __version__, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "source": spec.source, "spec": spec.record}, indent=2) + "\n")
        make_folder(folder / TRIALS, "the sweep's trials folder")
    except BaseException:
        lock.release()
        raise
    return folder, lock


def is_sweep_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a sweep (its sweep.json)."""
    return (Path(folder) / STATE).is_file()


def build_sweep_report(folder: str | os.PathLike) -> Path:
    """Write a sweep folder's report.html again from its results.csv and trials; its path."""
    from .sweep_report import write_sweep_report

    location = Path(folder)
    spec = _recorded_spec(location)
    return write_sweep_report(location, read_results(location), spec.varying)


def _recorded_spec(folder: Path) -> SweepSpec:
    """The spec a sweep folder recorded in its sweep.json, checked again."""
    if not is_sweep_folder(folder):
        raise RunFolderError(f"{folder} is not a sweep folder: it has no {STATE}")
    with open_regular(folder / STATE, RunFolderError, "a sweep's record") as handle:
        try:
            record = read_json(handle.read().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise RunFolderError(f"{folder / STATE} is damaged: {exc}") from None
    if (not isinstance(record, dict) or record.get("format") != SWEEP_FORMAT
            or not isinstance(record.get("spec"), dict)):
        raise RunFolderError(f"{folder / STATE} is not a sweep record nnscratch wrote")
    return parse_spec(record["spec"], str(folder / STATE))


def _open_folder(resume: str | os.PathLike) -> tuple[Path, SweepSpec, runs.RunFolderLock]:
    folder = as_path(resume, ConfigError, "resume")
    if not is_sweep_folder(folder):
        raise RunFolderError(f"{folder} is not a sweep folder: it has no {STATE}")
    lock = runs.RunFolderLock(folder)
    try:
        spec = _recorded_spec(folder)
    except BaseException:
        lock.release()
        raise
    return folder, spec, lock


# --- the data -------------------------------------------------------------------------------------

def _load_data(data: Mapping[str, str]) -> Any:
    """The data a spec's [data] table names, read once by the client (see train()'s data)."""
    from .data import load_dataset
    from .data.datasets import DEFAULT_DATASET
    from .data.tables import looks_like_npz_table, looks_like_table, read_table_data

    path, label_column, test_data = data.get("path"), data.get("label_column"), data.get(
        "test_data")
    if path is not None and Path(path).is_file() and (
            label_column is not None or test_data is not None or looks_like_table(path)
            or looks_like_npz_table(path)):
        return read_table_data(path, label_column, test_data)
    if label_column is not None or test_data is not None:
        raise ConfigError("the spec's data.label_column and data.test_data go with a table "
                          f"(a CSV file) as data.path; {path} is not one")
    return load_dataset(data.get("dataset", DEFAULT_DATASET), path)


# --- the cluster ----------------------------------------------------------------------------------

def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"sweeps run on Dask distributed, which is not installed: "
                          f"{DASK_HINT}") from None
    return distributed


def machine_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None,
            threads_per_trial: int | None) -> Iterator[tuple[Any, str]]:
    """A Dask client and a sentence saying what it runs on: the cluster at ``scheduler``, or a
    LocalCluster of ``workers`` processes (default: one per core) made for the sweep."""
    distributed = _dask()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                              ) from None
        with client:
            count = len(client.scheduler_info(n_workers=-1)["workers"])
            yield client, f"the Dask cluster at {scheduler} ({count} workers now)"
        return
    count = machine_cores() if workers is None else workers
    threads_per_trial = threads_per_trial or 1
    cluster = _local_cluster(distributed, count, threads_per_trial)
    try:
        with distributed.Client(cluster) as client:
            threads = f"{threads_per_trial} BLAS thread{'s' * (threads_per_trial != 1)}"
            yield client, (f"a local Dask cluster of {count} worker process"
                           f"{'es' * (count != 1)}, {threads} each")
    finally:
        cluster.close()


def _local_cluster(distributed: Any, workers: int, threads_per_trial: int) -> Any:
    """A LocalCluster of ``workers`` single-thread processes whose BLAS (and the numba
    backend) uses ``threads_per_trial`` threads.

    The variables are set before each worker process starts (numpy reads them on import), and
    Dask's default MALLOC_TRIM_THRESHOLD_ is left out: it turns off glibc's adaptive mmap
    threshold, so every array over 128 KiB is mapped and faulted in afresh, which made
    training 1.5-2x slower in a worker than in a plain process (benchmarks/NOTES.md).
    Dask writes these variables into this process's environment too; they are put back.
    """
    import dask

    environ = {"MALLOC_TRIM_THRESHOLD_": None,
               **{name: str(threads_per_trial) for name in THREAD_VARIABLES}}
    touched = (*environ, "PYTHONHASHSEED")
    before = {name: os.environ.get(name) for name in touched}
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{name}": value
                              for name, value in environ.items()}):
            return distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                            processes=True, silence_logs=logging.ERROR)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _dashboard(client: Any) -> str | None:
    """The dashboard's address when the scheduler runs one (it needs bokeh)."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # the address is a courtesy; never fail a sweep over it
        return None
    return client.dashboard_link if "dashboard" in services else None


# --- the sweep --------------------------------------------------------------------------------

def sweep(spec: str | os.PathLike | SweepSpec | None = None,
          out: str | os.PathLike | None = None, *, resume: str | os.PathLike | None = None,
          data: Any = None, scheduler: str | None = None, workers: int | None = None,
          threads_per_trial: int | None = None, progress: bool | None = None) -> SweepResult:
    """Run the trials of ``spec`` (a TOML file, or a :class:`~nnscratch.sweep_spec.SweepSpec`)
    on Dask, each in its run folder under ``out/trials/``, and return their results.

    ``resume``: a sweep folder to finish instead (its spec is the one it recorded): trials
    that finished or failed are kept, the others run (from their checkpoints where they have
    one). ``data``: what :func:`~nnscratch.train` accepts, instead of the spec's [data] table.
    ``scheduler``: the address of a running Dask scheduler (``tcp://HOST:8786``; default: the
    ``NNSCRATCH_SCHEDULER`` environment variable, else a LocalCluster made for the sweep of
    ``workers`` processes, one per core by default, each trial with ``threads_per_trial`` BLAS
    and numba threads, one by default). ``progress``: a bar over the trials on stderr with
    the best result so far (default: when stderr is a terminal); unless it is False, what the
    sweep runs on and the Dask dashboard's address are printed there too.

    Ctrl-C (or SIGTERM) stops the sweep, keeping what finished, and raises
    :class:`SweepInterrupted`. Scripts that run a sweep on the default LocalCluster need the
    ``if __name__ == "__main__":`` guard, as for any code that starts processes.
    """
    from .callbacks import make_callbacks  # the same rule for `progress` as train()'s

    for name, value in (("workers", workers), ("threads_per_trial", threads_per_trial)):
        if value is not None:
            POSITIVE_INT.check(name, value)
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV)
    if scheduler and (workers is not None or threads_per_trial is not None):
        raise SettingsError("{workers} and {threads_per_trial} size the local cluster; the "
                            "cluster at {scheduler} has the workers it was started with",
                            scheduler=scheduler)
    bar = bool(make_callbacks(progress, None))
    if (spec is None) == (resume is None):
        raise ConfigError("give either a spec (a new sweep) or resume (a sweep folder to "
                          "finish), not both" if spec is not None else
                          "give a spec (a new sweep) or resume (a sweep folder to finish)")
    folder, lock = None, None
    if resume is not None:
        if out is not None:
            raise ConfigError("give either out (a new sweep) or resume, not both: a resumed "
                              "sweep stays in its folder")
        folder, spec, lock = _open_folder(resume)
    else:
        if out is None:
            raise ConfigError("a sweep needs out: the folder to write its trials and results in")
        if not isinstance(spec, SweepSpec):
            location = as_path(spec, ConfigError, "the sweep spec")
            spec = read_spec(location)
            spec = parse_spec(_absolute_data(spec.record, location.resolve().parent),
                              spec.source)
        _check_target(as_path(out, ConfigError, "out"))
    try:
        _dask()  # without Dask nothing can run, and nothing is written
        if data is None:  # read once, here, before a cluster starts
            data = _load_data(spec.data)
        with _client(scheduler, workers, threads_per_trial) as (client, where):
            if folder is None:
                folder, lock = _new_folder(out, spec)
            return _Sweep(folder, spec, bar, progress is not False).run(client, where, data)
    finally:
        if lock is not None:
            lock.release()


class _Sweep:
    """One call of :func:`sweep`: its trials, their rows, and the loop over Dask futures."""

    def __init__(self, folder: Path, spec: SweepSpec, bar: bool, talk: bool) -> None:
        self.folder, self.spec, self.show, self.talk = folder, spec, bar, talk
        self.trials = {t.name: t for t in spec.trials}
        self.rows = {t.name: _pending(t) for t in spec.trials}
        if (folder / RESULTS).exists():
            self._keep_finished(read_results(folder))
        self.stop_event = f"nnscratch-sweep-stop-{uuid.uuid4().hex}"
        self.bar: Any = None
        self.raw_data: Any = None
        self.data: Any = None  # the data's future on the cluster

    def _keep_finished(self, saved: list[dict[str, Any]]) -> None:
        """A resumed sweep keeps the rows of trials that finished (with their model) or failed;
        the others run again. Successive halving runs its rungs again from the start, each
        trial taking what its folder already holds."""
        for row in saved:
            name = row["trial"]
            if name not in self.rows:
                raise RunFolderError(f"{self.folder / RESULTS} lists trial {name}, which the "
                                     f"sweep's spec does not make; the folder is damaged")
            finished = (row["status"] == "failed" or row["status"] == "done"
                        and (self._trial_folder(name) / runs.MODEL).exists())
            if finished and self.spec.search != "halving":
                self.rows[name] = row

    def _trial_folder(self, name: str) -> Path:
        return self.folder / TRIALS / name

    def run(self, client: Any, where: str, data: Any) -> SweepResult:
        """Run the trials still to run on ``client``'s cluster (described by ``where``)."""
        import signal

        todo = [t for t in self.spec.trials if self.rows[t.name]["status"] not in
                ("done", "failed")]
        self._write()
        if getattr(data, "is_sample", False):
            self._say("data: the small sample bundled with nnscratch, not the full MNIST "
                      "(give the spec a [data] path, or set NNSCRATCH_DATA)")
        elif getattr(data, "source", None):  # where train() would say it came from
            self._say(f"data: {data.source}")
        self._say(f"sweep: {len(self.trials)} trials ({len(todo)} to run) on {where}")
        dashboard = _dashboard(client)
        if dashboard:
            self._say(f"Dask dashboard: {dashboard}")
        self._start_bar()
        try:
            try:
                self.raw_data = data
                self.data = client.scatter(data, broadcast=True)
                if self.spec.search == "halving":
                    self._halving(client, todo)
                else:
                    self._run_all(client, todo, None)
            except KeyboardInterrupt:
                self._stop(client)
                raise
        except KeyboardInterrupt as exc:
            self._write()
            finished = sum(r["status"] in ("done", "failed", "stopped")
                           for r in self.rows.values())
            raise SweepInterrupted(self.folder, finished, len(self.rows),
                                   getattr(exc, "signum", signal.SIGINT)) from None
        finally:
            if self.bar is not None:
                self.bar.close()
        report = self._write(report=True)
        return SweepResult(self.folder, self._ordered(), report)

    def _stop(self, client: Any) -> None:
        """Ask the trials still training on the cluster to stop after their epoch (a local
        cluster is closed anyway; a cluster given by address keeps running)."""
        from distributed import Event

        with contextlib.suppress(Exception):  # stopping must not fail on a cluster in trouble
            Event(self.stop_event, client=client).set()

    def _say(self, line: str) -> None:
        if self.talk:
            print(line, file=sys.stderr, flush=True)

    def _start_bar(self) -> None:
        if not self.show:
            return
        from tqdm import tqdm

        settled = sum(r["status"] in ("done", "failed") for r in self.rows.values())
        self.bar = tqdm(total=len(self.rows), initial=settled, unit="trial", file=sys.stderr,
                        dynamic_ncols=True, desc="trials")
        self._show_best()

    def _show_best(self) -> None:
        if self.bar is None:
            return
        result = SweepResult(self.folder, self._ordered())
        best = result.best
        if best is not None:
            metric = "val" if result.ranked_by == "final_val_accuracy" else "test"
            self.bar.set_postfix_str(f"best {metric} {best[result.ranked_by]:.2%} "
                                     f"({best['trial']})")

    def _ordered(self) -> list[dict[str, Any]]:
        return [self.rows[name] for name in self.trials]

    def _write(self, report: bool = False) -> Path | None:
        runs.write_csv(self.folder / RESULTS, RESULT_COLUMNS, self._ordered())
        if not report:
            return None
        from .sweep_report import write_sweep_report

        return write_sweep_report(self.folder, self._ordered(), self.spec.varying)

    def _settle(self, trial: Trial, outcome: Mapping[str, Any]) -> None:
        self.rows[trial.name] = _row(trial, outcome)
        self._write()
        if self.bar is not None and outcome["status"] in ("done", "failed"):
            self.bar.update(1)
        self._show_best()

    def _run_all(self, client: Any, trials: Sequence[Trial],
                 pause_after: Callable[[Trial], int | None] | None) -> None:
        """Run ``trials`` at once on the cluster, each row settled as its trial ends. Dask
        itself runs a trial again when its worker dies (up to its allowed failures); a trial
        whose data was lost with the workers that held it is sent again with the data."""
        from distributed import KilledWorker, as_completed
        from distributed.client import FutureCancelledError

        def submit(trial: Trial) -> Any:
            pause = None if pause_after is None else pause_after(trial)
            future = client.submit(run_trial, self.data, str(self._trial_folder(trial.name)),
                                   trial.settings.to_json(), pause, self.stop_event,
                                   key=f"trial-{trial.name}-{pause}-{uuid.uuid4().hex[:8]}",
                                   pure=False)
            futures[future] = trial
            return future

        futures: dict[Any, Trial] = {}
        for trial in trials:
            submit(trial)
        resent: dict[str, int] = {}
        pending = as_completed(list(futures))
        for future in pending:
            trial = futures.pop(future)
            try:
                outcome = future.result()
            except KilledWorker:
                outcome = {"status": "failed", "reason": "the workers running it died again "
                           "and again (killed, or out of memory)"}
            except FutureCancelledError:
                resent[trial.name] = resent.get(trial.name, 0) + 1
                if resent[trial.name] > 3:
                    raise
                self.data = client.scatter(self.raw_data, broadcast=True)
                pending.add(submit(trial))
                continue
            except Exception as exc:  # nnscratch's own mistake: recorded, the sweep goes on
                outcome = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
            self._settle(trial, outcome)

    def _halving(self, client: Any, trials: Sequence[Trial]) -> None:
        """Successive halving: every trial trains to the first rung's epoch; the best
        ``1/eta`` of them continue from their checkpoints to the next rung's, and so on to
        their last epoch. Ties go to the trial listed first, so the same spec always keeps the
        same trials."""
        eta, budget = self.spec.halving["eta"], self.spec.halving["min_epochs"]
        longest = max(t.settings.epochs for t in trials)
        racing = list(trials)
        while racing:
            def pause(trial: Trial, budget: int = budget) -> int | None:
                return budget if budget < trial.settings.epochs else None

            self._run_all(client, racing, pause)
            going_on = [t for t in racing if self.rows[t.name]["status"] == "paused"]
            if not going_on:
                break
            ranked = sorted((t for t in racing if self.rows[t.name]["status"] != "failed"),
                            key=lambda t: -self._score(t))  # sorted() keeps the spec's order
            kept = set(t.name for t in ranked[:max(1, math.ceil(len(racing) / eta))])
            for trial in going_on:
                if trial.name not in kept:
                    row = self.rows[trial.name]
                    row["status"] = "stopped"
                    row["reason"] = (f"not among the best {len(kept)} of {len(racing)} after "
                                     f"{row['epochs_run']} epochs")
                    if self.bar is not None:
                        self.bar.update(1)
            racing = [t for t in going_on if t.name in kept]
            budget = min(budget * eta, longest)
            self._write()

    def _score(self, trial: Trial) -> float:
        row = self.rows[trial.name]
        value = row["final_val_accuracy"]
        return row["final_test_accuracy"] if value is None else value
