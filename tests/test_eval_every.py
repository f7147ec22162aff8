"""eval_every: how often the held-out images are evaluated (issue 16). Evaluating never changes
training, so the parameters are the same whatever the cadence; the epochs in between have no
test (or validation) figures, in the history, metrics.csv, the report and the epoch lines."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import ConfigError, TrainSettings, train
from nnscratch.callbacks import format_epoch
from nnscratch.cli import main
from nnscratch.runs import read_metrics


def same_parameters(a, b) -> bool:
    pa, pb = a.model.params(), b.model.params()
    return all(np.array_equal(pa[k], pb[k]) for k in pa)


def evaluated(result) -> list[int]:
    return [s.epoch for s in result.history if s.test_accuracy is not None]


def test_full_batch_runs_evaluate_every_tenth_epoch_and_the_last(sample_mnist, tmp_path):
    options = dict(hidden=(10,), batch_size=None, lr=0.1, init="seed", epochs=25,
                   progress=False)
    every10 = train(sample_mnist, out=tmp_path / "run", **options)
    every1 = train(sample_mnist, eval_every=1, **options)
    assert evaluated(every10) == [10, 20, 25] and evaluated(every1) == list(range(1, 26))
    assert same_parameters(every10, every1)
    assert every10.test_accuracy == every1.test_accuracy == every1.history[-1].test_accuracy
    rows = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in rows if r["test_accuracy"] is not None] == [10, 20, 25]
    assert rows[0]["test_loss"] is None and rows[0]["loss"] == every1.history[0].loss
    assert (tmp_path / "run" / "report.html").is_file()


def test_mini_batch_runs_evaluate_every_epoch_unless_told(sample_mnist):
    options = dict(hidden=(16,), epochs=5, progress=False)
    default = train(sample_mnist, **options)
    every2 = train(sample_mnist, eval_every=2, **options)
    assert evaluated(default) == [1, 2, 3, 4, 5] and evaluated(every2) == [2, 4, 5]
    assert same_parameters(default, every2)


def test_patience_counts_epochs_between_evaluations(sample_mnist):
    # lr 3 makes the validation loss worse from the first evaluations on.
    options = dict(hidden=(16,), epochs=12, lr=3.0, validation=0.2, patience=4, progress=False)
    every2 = train(sample_mnist, eval_every=2, **options)
    assert all((s.val_loss is None) == (s.epoch % 2 == 1) for s in every2.history)
    best = every2.best_epoch
    assert best % 2 == 0 and every2.extra.get("stopped_early")
    assert len(every2.history) == best + 4  # four epochs (two evaluations) without a better one


def test_a_paused_and_resumed_run_keeps_its_cadence(sample_mnist, tmp_path):
    options = dict(hidden=(16,), epochs=5, eval_every=3, validation=0.1, progress=False)
    whole = train(sample_mnist, **options)
    train(sample_mnist, out=tmp_path / "run", pause_after=2, **options)
    resumed = train(sample_mnist, resume=tmp_path / "run", progress=False)
    assert [s.epoch for s in resumed.history if s.val_loss is not None] == [3, 5]
    assert same_parameters(whole, resumed)


def test_the_epoch_line_leaves_out_what_was_not_evaluated(sample_mnist):
    result = train(sample_mnist, hidden=(8,), epochs=2, eval_every=2, progress=False)
    first, last = (format_epoch(s, 2) for s in result.history)
    assert "test" not in first and "test acc" in last


def test_eval_every_is_checked_and_on_the_command_line(capsys):
    with pytest.raises(ConfigError, match="eval_every"):
        TrainSettings(eval_every=0)
    with pytest.raises(SystemExit) as exit:
        main(["train", "--eval-every", "0"])
    assert exit.value.code == 2 and "--eval-every" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--eval-every N" in capsys.readouterr().out
