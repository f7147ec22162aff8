"""The report of a sweep: ``report.html`` in the sweep's folder, one self-contained page that
opens offline in any browser.

A sweep folder::

    NAME/
      results.csv         one row per trial (the sweep runner's)
      trials/TRIAL/       each trial's ordinary run folder (config.json, metrics.csv, report.html)
      report.html         this page

The page has a summary (the trials by status, the best one and which accuracy ranks them),
every trial in a table sorted by clicking a column's header, the final accuracy against each
swept setting, a heatmap when two settings are swept, the curves of the best trials (read from
their metrics.csv) and, when seeds repeat each configuration, the mean and spread over seeds.
Its figures are drawn as :mod:`nnscratch.report`'s are (matplotlib's Agg renderer, embedded as
PNG); without matplotlib the page has everything else, and says how to get them.

Failed and pending trials are in the table only. Stopped trials (dropped by successive halving
before their last epoch) are drawn, hollow, against the settings; the ranking, the heatmap, the
curves and the statistics are of the done trials alone, which ran every epoch.
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from . import report, runs
from ._fileio import write_text
from .errors import NNScratchError
from .report import _STYLE, PLOT_HINT, _format_metric, _note, _picture, _png, _section
from .sweep_spec import _shown

__all__ = ["write_sweep_report", "TOP_CURVES", "HEATMAP_SIDE"]

TOP_CURVES = 5    # the best trials whose curves are drawn
# A heatmap is of a grid: past this many values along a side (a random search), it is empty
# cells more than numbers.
HEATMAP_SIDE = 12
_STATUSES = ("done", "stopped", "paused", "failed", "pending")
_MEASURED = ("done", "stopped")
# rates are swept over decades: on a linear axis all but the largest would sit at the left edge
_LOG_SCALED = ("lr", "weight_decay", "lr_min")
_RESULTS = ("final_val_accuracy", "best_val_accuracy", "final_val_loss", "best_val_loss",
            "final_test_accuracy", "best_test_accuracy", "final_test_loss", "best_test_loss")
_WORDS = {"final_val_accuracy": "final validation accuracy",
          "final_test_accuracy": "final test accuracy"}


def write_sweep_report(folder: Path, rows: Sequence[Mapping[str, Any]],
                       varying: Sequence[str]) -> Path:
    """Write the sweep's page, ``folder/report.html``, atomically, and return its path.

    ``rows``: one mapping per trial, keyed by results.csv's columns, with typed values (None
    for an empty cell). ``varying``: the settings that differ between trials, "seed" included
    when seeds repeat each configuration. A trial folder that is missing or unreadable is left
    out of the curves with a note, never the whole page.
    """
    folder = Path(folder)
    rows = list(rows)
    metric = _ranking(rows)
    ranked = _ranked(rows, metric)
    curves, skipped = _best_curves(folder, ranked[:TOP_CURVES])
    swept = [name for name in varying if name != "seed"]
    plotting = report.plotting_available()
    pictures = _draw(rows, swept, metric, curves) if plotting else {}
    page = _page(folder, rows, varying, metric, ranked, pictures, skipped, plotting)
    return write_text(folder / runs.REPORT, page)


# --- the numbers ------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    """``value`` as a finite float; None for an empty cell, a word, NaN or a bool."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int past float's range
        return None
    return number if math.isfinite(number) else None


def _ranking(rows: Sequence[Mapping[str, Any]]) -> str:
    """The column that ranks trials: the final validation accuracy when any trial held out a
    validation set (a choice made on the test set would make its accuracy optimistic), else
    the final test accuracy."""
    if any(_number(row.get("final_val_accuracy")) is not None for row in rows):
        return "final_val_accuracy"
    return "final_test_accuracy"


def _measured(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The trials with results to draw: done, or stopped early, with a final accuracy."""
    return [row for row in rows if row.get("status") in _MEASURED
            and any(_number(row.get(key)) is not None for key in _WORDS)]


def _ranked(rows: Sequence[Mapping[str, Any]], metric: str) -> list[Mapping[str, Any]]:
    """The done trials that have ``metric``, best first (ties in results.csv's order)."""
    done = [row for row in rows
            if row.get("status") == "done" and _number(row.get(metric)) is not None]
    return sorted(done, key=lambda row: -_number(row[metric]))  # type: ignore[operator]


def _order_key(value: Any) -> tuple[int, tuple[float, ...], str]:
    """Numbers by value, layer sizes ("256,64") by their sizes, then words alphabetically."""
    text = _shown(value)
    try:
        return 0, tuple(float(part) for part in text.split(",")), text
    except ValueError:
        return 1, (), text


def _categories(rows: Sequence[Mapping[str, Any]], name: str) -> list[str]:
    values = {_shown(row.get(name)): row.get(name) for row in rows}
    return sorted(values, key=lambda label: _order_key(values[label]))


def _axis_scale(name: str, values: Sequence[Any]) -> str:
    """How a setting's axis is laid out: "category" unless every value is a number, "log" for a
    rate whose values span ten times or more, else "linear"."""
    numbers = [_number(value) for value in values]
    if not numbers or any(n is None for n in numbers):
        return "category"
    low, high = min(numbers), max(numbers)  # type: ignore[type-var]
    return "log" if name in _LOG_SCALED and low > 0 and high >= 10 * low else "linear"


def _grid_means(rows: Sequence[Mapping[str, Any]], first: str, second: str,
                metric: str) -> tuple[list[str], list[str], np.ndarray]:
    """The mean of ``metric`` over the done trials (the seeds) of each pair of values of the two
    swept settings: their values (rows, columns) and the means (NaN where no trial is done)."""
    done = _ranked(rows, metric)
    down, across = _categories(done, first), _categories(done, second)
    sums = np.zeros((len(down), len(across)))
    counts = np.zeros_like(sums)
    for row in done:
        cell = down.index(_shown(row.get(first))), across.index(_shown(row.get(second)))
        sums[cell] += _number(row[metric])
        counts[cell] += 1
    with np.errstate(invalid="ignore"):
        return down, across, sums / counts


def _is_grid(rows: Sequence[Mapping[str, Any]], swept: Sequence[str], metric: str) -> bool:
    down, across, _ = _grid_means(rows, *swept, metric)
    return max(len(down), len(across)) <= HEATMAP_SIDE


def _seed_groups(rows: Sequence[Mapping[str, Any]],
                 others: Sequence[str]) -> list[tuple[tuple[str, ...], list[float]]]:
    """The final test accuracies of the done trials, grouped by the values of the other swept
    settings (so each group differs by seed alone); the best mean first."""
    groups: dict[tuple[str, ...], list[float]] = {}
    for row in _ranked(rows, "final_test_accuracy"):
        key = tuple(_shown(row.get(name)) for name in others)
        groups.setdefault(key, []).append(_number(row["final_test_accuracy"]))  # type: ignore
    return sorted(groups.items(), key=lambda item: -statistics.fmean(item[1]))


def _trial_folder(folder: Path, trial: Any) -> Path | None:
    """Where a trial's run folder belongs; None for a name that is not one plain folder name
    (a damaged results.csv must not lead the page out of the sweep)."""
    name = str(trial)
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        return None
    return folder / "trials" / name


def _exists(path: Path, file: bool = False) -> bool:
    """Whether ``path`` is a folder (a file); one that cannot be looked at (no permission, a
    name too long) is not."""
    try:
        return path.is_file() if file else path.is_dir()
    except OSError:
        return False


def _best_curves(folder: Path, best: Sequence[Mapping[str, Any]]
                 ) -> tuple[list[tuple[Mapping[str, Any], list[dict[str, Any]]]], list[str]]:
    """The metrics.csv rows of each of the ``best`` trials that has them, and a note for each
    that has not (its folder is missing, or its metrics.csv cannot be read)."""
    curves, skipped = [], []
    for row in best:
        trial = _trial_folder(folder, row.get("trial"))
        if trial is None:
            skipped.append(f"trial {row.get('trial')}: its name is not a folder name")
            continue
        if not _exists(trial):
            skipped.append(f"trial {row.get('trial')}: its run folder {trial} is missing")
            continue
        try:
            metrics = runs.read_metrics(trial)
        except (NNScratchError, OSError) as exc:
            skipped.append(f"trial {row.get('trial')}: {exc}")
            continue
        if not metrics:
            skipped.append(f"trial {row.get('trial')}: {trial} has no {runs.METRICS}")
            continue
        curves.append((row, metrics))
    return curves, skipped


def _settings_text(row: Mapping[str, Any], names: Sequence[str]) -> str:
    return ", ".join(f"{name} {_shown(row.get(name))}" for name in names)


# --- figures (matplotlib) -------------------------------------------------------------------

def _draw(rows: Sequence[Mapping[str, Any]], swept: Sequence[str], metric: str,
          curves: Sequence[tuple[Mapping[str, Any], list[dict[str, Any]]]]) -> dict[str, bytes]:
    """Each figure the trials allow, as PNG bytes, by name."""
    measured = _measured(rows)
    pictures = {}
    if measured:
        for name in swept:
            pictures[_figure_name(name)] = _png(lambda fig, name=name:
                                                _against(fig, measured, name))
    if len(swept) == 2 and _ranked(rows, metric) and _is_grid(rows, swept, metric):
        pictures["heatmap"] = _png(lambda fig: _heatmap(fig, rows, *swept, metric))
    if curves:
        pictures["curves"] = _png(lambda fig: _curves(fig, curves, swept, metric))
    return pictures


def _figure_name(setting: str) -> str:
    # report's _picture writes the name into the <img>'s id as it is
    return html.escape(f"accuracy-{setting}")


def _plain(text: str) -> str:
    # matplotlib reads text between dollar signs as mathematics, and may fail to
    return text.replace("$", r"\$")


def _points(measured: Sequence[Mapping[str, Any]], name: str, key: str, scale: str,
            labels: Sequence[str]) -> list[tuple[float, float, str]]:
    """(x, accuracy in %, status) of each trial with a value of ``key``: x is the setting's
    value, or its position among ``labels`` on a categorical axis."""
    points = []
    for row in measured:
        accuracy = _number(row.get(key))
        if accuracy is not None:
            x = (labels.index(_shown(row.get(name))) if scale == "category"
                 else _number(row.get(name)))
            points.append((float(x), 100 * accuracy, str(row.get("status"))))  # type: ignore
    return points


def _against(figure: Any, measured: Sequence[Mapping[str, Any]], name: str) -> None:
    """The final accuracies of the trials against one setting's values, and their means."""
    figure.set_size_inches(6, 4)
    axes = figure.subplots()
    scale = _axis_scale(name, [row.get(name) for row in measured])
    labels = _categories(measured, name)
    keys = [key for key in ("final_test_accuracy", "final_val_accuracy")
            if any(_number(row.get(key)) is not None for row in measured)]
    # side by side on a categorical axis, so that test and validation do not hide each other
    shifts = (-0.08, 0.08) if len(keys) == 2 and scale == "category" else (0.0, 0.0)
    for key, shift, color in zip(keys, shifts, ("tab:blue", "tab:orange")):
        points = [(x + shift, y, status)
                  for x, y, status in _points(measured, name, key, scale, labels)]
        what = "test" if key == "final_test_accuracy" else "validation"
        for status, fill, label in (("done", color, what),
                                    ("stopped", "none", f"{what}, stopped early")):
            chosen = [(x, y) for x, y, s in points if s == status]
            if chosen:
                axes.scatter(*zip(*chosen), s=24, facecolors=fill, edgecolors=color,
                             label=label)
        means: dict[float, list[float]] = {}
        for x, y, status in points:
            if status == "done":
                means.setdefault(x, []).append(y)
        xs = sorted(means)
        # categories in a row are not a function of x: their means are marks, not a line
        marks = {"linestyle": "none", "marker": "_", "markersize": 24, "markeredgewidth": 2}
        axes.plot(xs, [statistics.fmean(means[x]) for x in xs], color=color, alpha=0.6,
                  **(marks if scale == "category" else {}))
    _setting_axis(axes, scale, labels, [row.get(name) for row in measured])
    axes.set_xlabel(name)
    axes.set_ylabel("final accuracy (%)")
    mark = "marks" if scale == "category" else "line"
    axes.set_title(f"final accuracy against {name} ({mark}: mean of the done trials)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)


def _setting_axis(axes: Any, scale: str, labels: Sequence[str], values: Sequence[Any]) -> None:
    if scale == "category":
        axes.set_xticks(range(len(labels)), [_plain(label) for label in labels])
    elif scale == "log":
        axes.set_xscale("log")
        ticks = sorted({_number(value) for value in values})  # type: ignore[type-var]
        if len(ticks) <= HEATMAP_SIDE:  # a grid's values, named (decades alone hide 0.5)
            axes.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
            axes.minorticks_off()


def _heatmap(figure: Any, rows: Sequence[Mapping[str, Any]], first: str, second: str,
             metric: str) -> None:
    down, across, means = _grid_means(rows, first, second, metric)
    figure.set_size_inches(max(4.5, 1.8 + 1.0 * len(across)), max(3, 1.4 + 0.6 * len(down)))
    axes = figure.subplots()
    image = axes.imshow(100 * means, cmap="viridis", aspect="auto")  # NaN (no trial): blank
    shown = means[np.isfinite(means)]
    middle = (shown.min() + shown.max()) / 2
    for (i, j), mean in np.ndenumerate(means):
        if np.isfinite(mean):  # viridis is dark below its middle, light above
            axes.text(j, i, f"{100 * mean:.2f}", ha="center", va="center", fontsize=9,
                      color="black" if mean > middle else "white")
    axes.set_xticks(range(len(across)), [_plain(label) for label in across])
    axes.set_yticks(range(len(down)), [_plain(label) for label in down])
    axes.set_xlabel(second)
    axes.set_ylabel(first)
    axes.set_title(f"mean {_WORDS[metric]} (%) over seeds")
    figure.colorbar(image, ax=axes, label="accuracy (%)")


def _curves(figure: Any, curves: Sequence[tuple[Mapping[str, Any], list[dict[str, Any]]]],
            swept: Sequence[str], metric: str) -> None:
    from matplotlib.ticker import MaxNLocator

    figure.set_size_inches(10, 4.5)
    axes = figure.subplots()
    for row, metrics in curves:
        label = _plain(f"{row.get('trial')} ({_settings_text(row, swept)})" if swept
                       else str(row.get("trial")))
        # The epochs that were evaluated (every one, unless the trial set eval_every).
        tested = [line for line in metrics if line["test_accuracy"] is not None]
        test, = axes.plot([line["epoch"] for line in tested],
                          [100 * line["test_accuracy"] for line in tested],
                          marker="o", markersize=3, label=label)
        validated = [line for line in metrics if line["val_accuracy"] is not None]
        if validated:  # the same trial's colour
            axes.plot([line["epoch"] for line in validated],
                      [100 * line["val_accuracy"] for line in validated],
                      color=test.get_color(), linestyle="--")
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("accuracy (%)")
    dashed = ("; dashed: validation" if any(line["val_accuracy"] is not None
                                            for _, m in curves for line in m) else "")
    axes.set_title(f"test accuracy per epoch of the best trials by {_WORDS[metric]}{dashed}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)


# --- the page --------------------------------------------------------------------------------

_SWEEP_STYLE = """
table.sortable th { cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.text { text-align: left; } .figures img { max-width: 49%; vertical-align: top; }
"""

# Sorting by a click on a column's header: a cell's data-sort (its number) or its text; numbers
# numerically, words naturally ("9" before "10"), empty cells last in either direction.
_SORTING = """
function compareCells(a, b, ascending) {
  if (a === "" || b === "") return (a === "") - (b === "");
  const x = Number(a), y = Number(b);
  const order = Number.isNaN(x) || Number.isNaN(y)
    ? a.localeCompare(b, undefined, {numeric: true}) : x - y;
  return ascending ? order : -order;
}
document.querySelectorAll("table.sortable").forEach(table => {
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((head, column) => head.addEventListener("click", () => {
    const ascending = head.getAttribute("aria-sort") !== "ascending";
    heads.forEach(other => other.removeAttribute("aria-sort"));
    head.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const value = row => (row.cells[column].dataset.sort ?? row.cells[column].textContent).trim();
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort((r, s) => compareCells(value(r), value(s), ascending));
    body.append(...rows);
  }));
});
"""


def _page(folder: Path, rows: Sequence[Mapping[str, Any]], varying: Sequence[str],
          metric: str, ranked: Sequence[Mapping[str, Any]], pictures: dict[str, bytes],
          skipped: Sequence[str], plotting: bool) -> str:
    swept = [name for name in varying if name != "seed"]
    measured = bool(_measured(rows))
    sections = [
        _section("Trials", _trials_table(folder, rows, varying)),
        _section("Accuracy against each swept setting", _against_part(swept, measured,
                                                                      pictures)),
    ]
    if len(swept) == 2:
        sections.append(_section(f"Mean accuracy per {swept[0]} and {swept[1]}",
                                 _heatmap_part(rows, swept, metric, ranked, pictures)))
    sections.append(_section("Curves of the best trials",
                             _curves_part(folder, metric, ranked, pictures, skipped)))
    if "seed" in varying:
        sections.append(_section("Mean and spread over seeds", _seeds_part(rows, swept)))
    hint = "" if plotting or not measured else _note(
        f"The figures need matplotlib: {PLOT_HINT}, then write the report again")
    name = html.escape(folder.resolve().name)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>nnscratch sweep {name}</title>"
            f"<style>{_STYLE}{_SWEEP_STYLE}</style></head><body>\n"
            f"<h1>nnscratch sweep {name}</h1>\n"
            f"{_summary(folder, rows, varying, metric, ranked)}\n{hint}\n{''.join(sections)}"
            f"<script>{_SORTING}</script>\n</body></html>\n")


def _trial_link(folder: Path, trial: Any) -> str:
    """The trial's name, linked to its own report when it has one."""
    name = html.escape(str(trial))
    where = _trial_folder(folder, trial)
    if where is None or not _exists(where / runs.REPORT, file=True):
        return name
    href = html.escape(f"trials/{quote(str(trial))}/{runs.REPORT}")
    return f'<a href="{href}">{name}</a>'


def _summary(folder: Path, rows: Sequence[Mapping[str, Any]], varying: Sequence[str],
             metric: str, ranked: Sequence[Mapping[str, Any]]) -> str:
    counts = Counter(str(row.get("status")) for row in rows)
    statuses = [s for s in _STATUSES if counts[s]] + sorted(set(counts) - set(_STATUSES))
    tally = ", ".join(f"{counts[status]} {status}" for status in statuses)
    swept = ", ".join(varying) or "nothing"
    why = ("so the test accuracy of the best stays an honest estimate" if metric ==
           "final_val_accuracy" else "no trial holds out a validation set")
    parts = [f"<p>{len(rows)} trials{': ' if rows else ''}{html.escape(tally)}; "
             f"swept: {html.escape(swept)}.</p>",
             f"<p>Trials are ranked by their {_WORDS[metric]} ({why}).</p>"]
    if not ranked:
        parts.append(_note("no trial is done yet: there is no best trial"))
        return "\n".join(parts)
    best = ranked[0]
    scores = [f"{_WORDS[key]} {_number(best.get(key)):.2%}" for key in _WORDS
              if _number(best.get(key)) is not None]
    settings = _settings_text(best, [n for n in varying if n != "seed"] + ["seed"])
    parts.append(f"<p>The best trial: <strong>{_trial_link(folder, best.get('trial'))}"
                 f"</strong>, {html.escape(', '.join(scores))} ({html.escape(settings)}).</p>")
    return "\n".join(parts)


def _cell(text: str, sort: float | None = None, kind: str = "") -> str:
    attributes = (f' data-sort="{sort!r}"' if sort is not None else "") + (
        f' class="{kind}"' if kind else "")
    return f"<td{attributes}>{text}</td>"


def _sortable(columns: Sequence[str], body: Sequence[str], table_id: str) -> str:
    head = "".join(f'<th title="sort by {html.escape(c)}">{html.escape(c)}</th>'
                   for c in columns)
    return (f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _trials_table(folder: Path, rows: Sequence[Mapping[str, Any]],
                  varying: Sequence[str]) -> str:
    if not rows:
        return _note("the sweep has no trials")
    results = [key for key in _RESULTS
               if "_val_" not in key or any(_number(row.get(key)) is not None for row in rows)]
    numeric = ["epochs_run", *results, "seconds"]
    body = []
    for row in rows:
        cells = [_cell(_trial_link(folder, row.get("trial")), kind="text"),
                 _cell(html.escape(str(row.get("status"))), kind="text")]
        cells += [_cell(html.escape(_shown(row.get(name))), _number(row.get(name)))
                  for name in varying]
        for key in numeric:
            number = _number(row.get(key))
            # (report's metrics table spells an epoch count "epoch")
            text = _format_metric("epoch" if key == "epochs_run" else key,
                                  None if number is None else row.get(key))
            cells.append(_cell(text, number))
        cells += [_cell(html.escape(str(row.get(key) or "")), kind="text")
                  for key in ("worker", "reason")]
        body.append(f"<tr>{''.join(cells)}</tr>")
    columns = ["trial", "status", *varying, *numeric, "worker", "reason"]
    return (_sortable(columns, body, "trials")
            + '<p class="muted">Click a column\'s header to sort by it.</p>')


def _against_part(swept: Sequence[str], measured: bool, pictures: dict[str, bytes]) -> str:
    if not swept:
        return _note("no setting other than the seed is swept")
    if not measured:
        return _note("no trial has results yet")
    figures = "".join(_picture(pictures, _figure_name(name), f"accuracy against {name}")
                      for name in swept)
    return f'<div class="figures">{figures}</div>'


def _heatmap_part(rows: Sequence[Mapping[str, Any]], swept: Sequence[str], metric: str,
                  ranked: Sequence[Mapping[str, Any]], pictures: dict[str, bytes]) -> str:
    if not ranked:
        return _note("no trial is done yet")
    if not _is_grid(rows, swept, metric):
        return _note(f"{swept[0]} and {swept[1]} take more than {HEATMAP_SIDE} values each "
                     f"(not a grid): see the figures above")
    if "heatmap" in pictures:
        return _picture(pictures, "heatmap", f"mean accuracy per {swept[0]} and {swept[1]}")
    # Without the picture, its numbers as a table.
    down, across, means = _grid_means(rows, *swept, metric)
    head = (f"<tr><th>{html.escape(swept[0])} \\ {html.escape(swept[1])}</th>"
            + "".join(f"<th>{html.escape(label)}</th>" for label in across) + "</tr>")
    body = "".join(f"<tr><th>{html.escape(label)}</th>"
                   + "".join(f"<td>{f'{mean:.2%}' if np.isfinite(mean) else ''}</td>"
                             for mean in line) + "</tr>"
                   for label, line in zip(down, means))
    return (f"<p>Mean {_WORDS[metric]} over seeds:</p>"
            f'<table id="heatmap">{head}{body}</table>')


def _curves_part(folder: Path, metric: str, ranked: Sequence[Mapping[str, Any]],
                 pictures: dict[str, bytes], skipped: Sequence[str]) -> str:
    if not ranked:
        return _note("no trial is done yet")
    best = ranked[:TOP_CURVES]
    links = ", ".join(_trial_link(folder, row.get("trial")) for row in best)
    text = (f"<p>The {len(best)} best trials by {_WORDS[metric]}: {links} (each one's own "
            f"report has all its curves).</p>")
    notes = "".join(_note(f"left out: {reason}") for reason in skipped)
    if len(skipped) == len(best):
        return text + notes
    return text + _picture(pictures, "curves", "accuracy curves of the best trials") + notes


def _seeds_part(rows: Sequence[Mapping[str, Any]], swept: Sequence[str]) -> str:
    groups = _seed_groups(rows, swept)
    if not groups:
        return _note("no trial is done yet")
    body = []
    for values, accuracies in groups:
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else None
        numbers = (statistics.fmean(accuracies), spread, min(accuracies), max(accuracies))
        body.append("<tr>" + "".join(_cell(html.escape(v), kind="text") for v in values)
                    + _cell(str(len(accuracies)), len(accuracies))
                    + "".join(_cell("" if n is None else f"{n:.2%}", n) for n in numbers)
                    + "</tr>")
    columns = [*swept, "seeds", "mean", "std", "min", "max"]
    return ("<p>Final test accuracy of the done trials, by the settings they share (the "
            "standard deviation is the sample's, over n - 1).</p>"
            + _sortable(columns, body, "seeds"))
