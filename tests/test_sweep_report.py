"""The report of a sweep: a page over real trial run folders (tiny runs on the bundled sample)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

import nnscratch
from nnscratch import TrainSettings
from nnscratch.report import PLOT_HINT
from nnscratch.sweep_report import _axis_scale, write_sweep_report

# (lr, batch_size, seed): lr and batch_size swept, seeds repeating two of the four points
POINTS = [(0.5, 128, 0), (0.5, 128, 1), (0.05, 128, 0), (0.05, 128, 1), (0.5, 64, 0),
          (0.05, 64, 0)]
REASON = "<script>alert('x')</script> diverged at epoch 1"


def trial_row(name, settings, result=None, status="done", reason=""):
    """A row as results.csv holds it (typed), from a trial's settings and its result."""
    row = {"trial": name, "status": status}
    for key in TrainSettings.names():
        value = getattr(settings, key)
        row[key] = ",".join(map(str, value)) if key == "hidden" else value
    history = result.history if result else []
    row["epochs_run"] = len(history)
    for split in ("test", "val"):
        accuracies = [getattr(e, f"{split}_accuracy") for e in history]
        losses = [getattr(e, f"{split}_loss") for e in history]
        known = bool(history) and None not in accuracies
        row[f"final_{split}_accuracy"] = accuracies[-1] if known else None
        row[f"final_{split}_loss"] = losses[-1] if known else None
        row[f"best_{split}_accuracy"] = max(accuracies) if known else None
        row[f"best_{split}_loss"] = min(losses) if known else None
    row.update(seconds=sum(e.seconds for e in history), worker='local"1', reason=reason)
    return row


@pytest.fixture(scope="module")
def sweep(sample_mnist, tmp_path_factory):
    """A sweep folder with six trained trials, one failed and one pending: (folder, rows)."""
    folder = tmp_path_factory.mktemp("sweep")
    rows = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nnscratch.report, "plotting_available", lambda: False)  # fast trial reports
        for i, (lr, batch_size, seed) in enumerate(POINTS):
            settings = TrainSettings(hidden=(8,), epochs=2, lr=lr, batch_size=batch_size,
                                     seed=seed)
            digest = hashlib.sha256(json.dumps(settings.to_json()).encode()).hexdigest()[:8]
            name = f"{i:03d}-{digest}"
            result = nnscratch.train(sample_mnist, settings=settings,
                                     out=folder / "trials" / name, progress=False)
            rows.append(trial_row(name, settings, result))
    failed = trial_row("006-failed", TrainSettings(hidden=(8,), epochs=2, lr=0.5, seed=2),
                       status="failed", reason=REASON)
    failed["final_test_accuracy"] = 0.01  # what it reached before failing: no statistic's
    pending = trial_row("007-pending", TrainSettings(hidden=(8,), epochs=2, lr=0.05, seed=2),
                        status="pending")
    return folder, rows + [failed, pending]


@pytest.fixture(scope="module")
def two_settings(sweep):
    folder, rows = sweep
    path = write_sweep_report(folder, rows, ["lr", "batch_size", "seed"])
    return path, path.read_text()


class Tables(HTMLParser):
    """Each table of a page by id: its rows, each a list of (text, data-sort) per cell."""

    def __init__(self, page):
        super().__init__()
        self.tables, self._rows, self._cell = {}, None, None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._rows = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = ["", attrs.get("data-sort")]
            self._rows[-1].append(self._cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "table":
            self._rows = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data


def table(page, table_id):
    return [[tuple(cell) for cell in row] for row in Tables(page).tables[table_id]]


def column(rows, name):
    header = [text for text, _ in rows[0]]
    return [row[header.index(name)] for row in rows[1:]]


def test_every_trial_is_in_a_sortable_table_linked_to_its_report(sweep, two_settings):
    (folder, rows), (path, page) = sweep, two_settings
    assert path == folder / "report.html" and path.is_file()
    trials = table(page, "trials")
    assert [text for text, _ in trials[0]] == [
        "trial", "status", "lr", "batch_size", "seed", "epochs_run", "final_test_accuracy",
        "best_test_accuracy", "final_test_loss", "best_test_loss", "seconds", "worker",
        "reason"]  # no validation columns: no trial held out a validation set
    assert [text for text, _ in column(trials, "trial")] == [row["trial"] for row in rows]
    assert [text for text, _ in column(trials, "status")] == ["done"] * 6 + ["failed", "pending"]
    for row, (text, sort) in zip(rows[:6], column(trials, "final_test_accuracy")):
        assert text == f"{row['final_test_accuracy']:.2%}"
        assert float(sort) == row["final_test_accuracy"]  # sorted by the number, not the text
        assert f'href="trials/{row["trial"]}/report.html"' in page
    assert column(trials, "final_test_loss")[-1] == ("", None)  # the pending trial's: empty
    assert 'href="trials/006-failed/' not in page  # no folder, no report: no link
    assert '<table id="trials" class="sortable"><thead>' in page
    assert "function compareCells" in page


def test_text_from_the_files_is_escaped(two_settings):
    _, page = two_settings
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; diverged" in page
    assert "local&quot;1" in page


def test_the_figures_are_embedded_and_the_page_opens_offline(two_settings):
    _, page = two_settings
    names = re.findall(r'<img id="([^"]+)" [^>]*src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in names] == ["accuracy-lr", "accuracy-batch_size", "heatmap",
                                           "curves"]  # no figure against the seed
    for _, data in names:
        assert base64.b64decode(data).startswith(b"\x89PNG")
    assert "http" not in page and "<link" not in page and "src=\"http" not in page
    assert PLOT_HINT not in page


def test_the_summary_names_the_best_trial_by_test_accuracy(sweep, two_settings):
    (_, rows), (_, page) = sweep, two_settings
    done = [row for row in rows if row["status"] == "done"]
    best = max(done, key=lambda row: row["final_test_accuracy"])
    summary = page.split("<h2>", 1)[0]
    assert "8 trials: 6 done, 1 failed, 1 pending" in summary
    assert "ranked by their final test accuracy" in summary
    assert (f'The best trial: <strong><a href="trials/{best["trial"]}/report.html">'
            f'{best["trial"]}</a></strong>, final test accuracy '
            f'{best["final_test_accuracy"]:.2%}') in summary


def test_a_validation_accuracy_ranks_the_trials_when_there_is_one(sweep, tmp_path):
    folder, rows = sweep
    done = [row for row in rows if row["status"] == "done"]
    worst = min(done, key=lambda row: row["final_test_accuracy"])["trial"]
    # the trial worst on the test set is best on the validation set
    rows = [{**row, "final_val_accuracy": 0.99 if row["trial"] == worst else 0.5}
            if row["status"] == "done" else row for row in rows]
    page = write_sweep_report(folder, rows, ["lr", "batch_size", "seed"]).read_text()
    summary = page.split("<h2>", 1)[0]
    assert "ranked by their final validation accuracy" in summary
    assert f'<a href="trials/{worst}/report.html">{worst}</a></strong>' in summary
    assert "final validation accuracy 99.00%" in summary
    assert "final_val_accuracy" in [text for text, _ in table(page, "trials")[0]]


def test_one_swept_setting_draws_no_heatmap(sweep):
    folder, rows = sweep
    rows = [row for row in rows if row["batch_size"] == 128]
    page = write_sweep_report(folder, rows, ["lr", "seed"]).read_text()
    assert '<img id="accuracy-lr"' in page and '<img id="curves"' in page
    assert 'id="heatmap"' not in page and "Mean accuracy per" not in page
    assert [len(row) for row in table(page, "seeds")] == [6, 6, 6]  # lr, seeds, mean..max


def test_the_seed_statistics_of_each_configuration(sweep, two_settings):
    (_, rows), (_, page) = sweep, two_settings
    seeds = table(page, "seeds")
    assert [text for text, _ in seeds[0]] == ["lr", "batch_size", "seeds", "mean", "std",
                                              "min", "max"]
    found = {(line[0][0], line[1][0]): [sort for _, sort in line[2:]] for line in seeds[1:]}
    assert sorted(found) == [("0.05", "128"), ("0.05", "64"), ("0.5", "128"), ("0.5", "64")]
    for lr in (0.05, 0.5):
        a, b = (next(row["final_test_accuracy"] for row in rows if row["status"] == "done"
                     and (row["lr"], row["batch_size"], row["seed"]) == (lr, 128, seed))
                for seed in (0, 1))
        n, mean, std, low, high = found[(f"{lr:g}", "128")]
        assert int(n) == 2  # the failed trial (lr 0.5, seed 2) is not counted
        assert float(mean) == pytest.approx((a + b) / 2, abs=1e-12)
        assert float(std) == pytest.approx(abs(a - b) / math.sqrt(2), abs=1e-12)  # ddof=1
        assert (float(low), float(high)) == (min(a, b), max(a, b))
    n, mean, std, low, high = found[("0.5", "64")]
    assert int(n) == 1 and std is None and float(mean) == float(low) == float(high)
    means = [float(line[3][1]) for line in seeds[1:]]
    assert means == sorted(means, reverse=True)  # the best configuration first


def test_without_matplotlib_the_numbers_stay_and_the_page_says_how(sweep, monkeypatch):
    folder, rows = sweep
    monkeypatch.setattr(nnscratch.report, "plotting_available", lambda: False)
    page = write_sweep_report(folder, rows, ["lr", "batch_size", "seed"]).read_text()
    assert "<img" not in page and PLOT_HINT in page
    heatmap = table(page, "heatmap")
    # rows and columns in numeric order (as text, "128" would come before "64")
    assert [text for text, _ in heatmap[0]] == ["lr \\ batch_size", "64", "128"]
    assert [line[0][0] for line in heatmap[1:]] == ["0.05", "0.5"]
    for line in heatmap[1:]:
        for (text, _), batch_size in zip(line[1:], (64, 128)):
            cell = [row["final_test_accuracy"] for row in rows if row["status"] == "done"
                    and (f"{row['lr']:g}", row["batch_size"]) == (line[0][0], batch_size)]
            assert text == f"{sum(cell) / len(cell):.2%}"
    assert table(page, "seeds")  # the statistics need no figure


def test_a_missing_or_damaged_trial_folder_is_left_out_of_the_curves(sweep, tmp_path):
    source, rows = sweep
    folder = tmp_path / "sweep"
    shutil.copytree(source / "trials", folder / "trials")
    best, second = sorted((row for row in rows if row["status"] == "done"),
                          key=lambda row: -row["final_test_accuracy"])[:2]
    shutil.rmtree(folder / "trials" / best["trial"])
    (folder / "trials" / second["trial"] / "metrics.csv").write_text("epoch,oops\n1,2\n")
    page = write_sweep_report(folder, rows, ["lr", "batch_size", "seed"]).read_text()
    notes = re.findall(r'<p class="note">left out: trial ([^:]+): (.*?)</p>', page)
    assert [trial for trial, _ in notes] == [best["trial"], second["trial"]]
    assert "is missing" in notes[0][1] and "is damaged" in notes[1][1]
    assert '<img id="curves"' in page  # the other three best trials are drawn
    assert f"<strong>{best['trial']}</strong>" in page  # still the best; no report to link


def test_a_sweep_with_no_trial_done_yet(tmp_path):
    settings = TrainSettings(hidden=(8,), epochs=2)
    rows = [trial_row(f"00{i}-x", settings.replace(lr=lr), status=status)
            for i, (lr, status) in enumerate([(0.1, "pending"), (0.2, "failed")])]
    page = write_sweep_report(tmp_path, rows, ["lr"]).read_text()
    assert "2 trials: 1 failed, 1 pending" in page
    assert "no trial is done yet: there is no best trial" in page
    assert "<img" not in page and PLOT_HINT not in page  # nothing to draw, nothing missing
    assert len(table(page, "trials")) == 3


def test_stopped_trials_are_not_ranked_and_names_stay_in_the_sweep(tmp_path):
    settings = TrainSettings(hidden=(8,), epochs=2)
    rows = [trial_row(name, settings.replace(lr=lr), status=status)
            for name, lr, status in [("000-a", 0.1, "done"), ("001-b", 0.2, "stopped"),
                                     ("../../x", 0.3, "done")]]
    for row, accuracy in zip(rows, (0.5, 0.99, 0.9)):
        row["final_test_accuracy"] = accuracy
    page = write_sweep_report(tmp_path, rows, ["lr"]).read_text()
    assert "3 trials: 2 done, 1 stopped" in page
    assert "The best trial: <strong>../../x</strong>" in page  # not the stopped one's 99%
    notes = re.findall(r'<p class="note">left out: trial ([^:]+): (.*?)</p>', page)
    assert notes == [("../../x", "its name is not a folder name"),
                     ("000-a", f"its run folder {tmp_path / 'trials' / '000-a'} is missing")]
    assert "href" not in page and '<img id="curves"' not in page
    assert '<img id="accuracy-lr"' in page  # the stopped trial is drawn, hollow


def test_the_axis_of_each_kind_of_setting():
    assert _axis_scale("lr", [0.001, 0.01, 0.1]) == "log"
    assert _axis_scale("lr", [0.05, 0.1, 0.3]) == "linear"  # less than ten times
    assert _axis_scale("weight_decay", [0.0, 0.01]) == "linear"  # 0 has no logarithm
    assert _axis_scale("momentum", [0.001, 0.9]) == "linear"  # not a rate
    assert _axis_scale("hidden", ["128", "256,64"]) == "category"
    assert _axis_scale("batch_size", [64, None]) == "category"  # None: the full batch
    assert _axis_scale("nesterov", [True, False]) == "category"


def test_the_sorting_puts_numbers_in_order_and_empty_cells_last(two_settings):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's sorting script is not run")
    script = re.search(r"<script>(.*?)</script>", two_settings[1], re.S).group(1)
    check = ("const document = {querySelectorAll: () => []};\n" + script + """
const cells = ["10", "", "9", "100.5", "-1", "2"], names = ["010-b", "", "002-a", "001-c"];
const sizes = ["256,64", "128", "64"];
const sorted = (values, up) => [...values].sort((a, b) => compareCells(a, b, up));
console.log(JSON.stringify([sorted(cells, true), sorted(cells, false), sorted(names, true),
                            sorted(sizes, true)]));
""")
    out = subprocess.run([node, "-e", check], capture_output=True, text=True, check=True,
                         timeout=60)
    assert json.loads(out.stdout) == [["-1", "2", "9", "10", "100.5", ""],
                                      ["100.5", "10", "9", "2", "-1", ""],
                                      ["001-c", "002-a", "010-b", ""],
                                      ["64", "128", "256,64"]]
