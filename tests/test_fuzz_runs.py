"""Fuzzing the files of a run folder through what reads them: a resume (checkpoint.npz,
config.json) and ``nnscratch report``'s builder (metrics.csv, predictions.npz, config.json).

Each mutated file is put in a fresh copy of the folder; the resume or the report must then end
as the untouched folder's does, or fail with the project's own error in one line (see
tests/fuzzing.py for the mutations and the rule). A resume is run whole, through
``nnscratch.train(resume=...)``; the report without its figures, which only cost time here.
"""

from __future__ import annotations

import shutil

import pytest

import nnscratch
from nnscratch import TrainingInterrupted, runs
from nnscratch.report import build_report

from fuzzing import fuzz_reader
from test_hardening_runs import DATA, SETTINGS, SignalAt

RUN = {**SETTINGS, "epochs": 3}


@pytest.fixture
def no_figures(monkeypatch):
    monkeypatch.setattr("nnscratch.report.plotting_available", lambda: False)


@pytest.fixture
def interrupted(tmp_path, no_figures):
    """Stopped in the last epoch, so that a resume has one step left: a few milliseconds."""
    with pytest.raises(TrainingInterrupted):
        nnscratch.train(DATA, out=tmp_path / "cut", callback=SignalAt(3, 2), **RUN)
    return tmp_path / "cut"


@pytest.fixture
def finished(tmp_path, no_figures):
    return nnscratch.train(DATA, out=tmp_path / "run", **RUN).run_dir


def in_copy(folder, name, action):
    """A reader for fuzz_reader: the mutated file ``name`` in a fresh copy of ``folder``, then
    ``action(copy)``."""
    def read(mutant):
        copy = folder.with_name(folder.name + "-copy")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(folder, copy)
        shutil.copyfile(mutant, copy / name)
        return action(copy)
    return read


def resumed_params(copy):
    return nnscratch.train(DATA, resume=copy).model.params()


def report_built(copy):
    build_report(copy)
    return "built"


@pytest.mark.parametrize("name", [runs.CHECKPOINT, runs.CONFIG])
def test_fuzz_resume(interrupted, name):
    original = interrupted.with_name("original-" + name)
    shutil.copyfile(interrupted / name, original)
    fuzz_reader(in_copy(interrupted, name, resumed_params), original)()


@pytest.mark.parametrize("name", [runs.METRICS, runs.PREDICTIONS, runs.CONFIG])
def test_fuzz_report(finished, name):
    original = finished.with_name("original-" + name)
    shutil.copyfile(finished / name, original)
    fuzz_reader(in_copy(finished, name, report_built), original)()
