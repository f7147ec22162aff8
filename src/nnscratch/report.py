"""The report of a run: ``report.html``, one self-contained page that opens offline in any
browser, and its figures as PNG files beside it.

Everything comes from the run folder's own files (config.json, metrics.csv, model.npz,
predictions.npz; see :mod:`nnscratch.runs`), so ``nnscratch report RUN`` can rebuild it at any
time. The figures are drawn by matplotlib (the optional extra ``nnscratch[plot]``) with its
Agg renderer, so no display is needed; without matplotlib the page still has the settings, the
metrics and the confusion matrix as tables, and says how to get the pictures.
"""

from __future__ import annotations

import base64
import html
import math
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from ._fileio import atomic_file
from ._signals import signals_deferred
from .data.datasets import DATASETS, DEFAULT_DATASET
from .errors import ConfigError, RunFolderError
from .serialize import read_model_file

__all__ = ["build_report", "Report", "plotting_available", "confusion_matrix", "PLOT_HINT"]

PLOT_HINT = 'pip install "nnscratch[plot]"'
SHOWN_MISTAKES = 40   # 5 rows of 8
SHOWN_UNITS = 64      # 4 rows of 16 hidden units of the first layer
SHOWN_DISTORTED = (6, 7)  # digits, and distortions of each (those of epochs 1-7)


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote: the page and the PNG figures beside it (none when
    matplotlib is not installed)."""

    path: Path
    figures: tuple[Path, ...]

    @property
    def has_figures(self) -> bool:
        return bool(self.figures)


def plotting_available() -> bool:
    """Whether matplotlib can be imported, so that reports get their figures."""
    try:
        with signals_deferred():  # an interrupted import would not come out as the signal
            import matplotlib
    except ImportError:
        return False
    return bool(matplotlib.__version__)  # importing it is the check


def build_report(run: str | os.PathLike) -> Report:
    """Write ``report.html`` (and, with matplotlib, its PNG figures) in the run folder ``run``
    from the files there; return what was written. Works on unfinished runs too: the parts that
    need the final model say so."""
    folder = runs.open_run_folder(run)
    config = runs.read_config(folder)
    metrics = runs.read_metrics(folder)
    predictions = runs.read_predictions(folder, config)
    weights, model = _model_file(folder, config)
    classes = class_names(config, model)
    side = image_side(config, model)
    pictures = (_draw(folder, config, metrics, predictions, weights, classes, side)
                if plotting_available() else {})
    page = _page(folder, config, metrics, predictions, weights, pictures, classes, side)
    path = runs.write_text(folder / runs.REPORT, page)
    return Report(path, tuple(folder / f"{name}.png" for name in pictures))


def _model_file(folder: Path, config: dict[str, Any]) -> tuple[np.ndarray | None,
                                                                dict[str, Any]]:
    """The first layer's weights and the metadata of the run's model (None, {} without one),
    which must be the network the run's config.json describes."""
    if not (folder / runs.MODEL).exists():
        return None, {}
    params, metadata = read_model_file(folder / runs.MODEL)
    if metadata["layer_sizes"] != config["layer_sizes"]:
        sizes = "-".join(map(str, metadata["layer_sizes"]))
        raise RunFolderError(f"the model {folder / runs.MODEL} ({sizes}) is not the network of "
                             f"the run in {folder} ({'-'.join(map(str, config['layer_sizes']))})")
    return params["W1"], metadata


def image_side(config: dict[str, Any], model: dict[str, Any]) -> int | None:
    """The side of the run's square input images (28 for MNIST), or None when its inputs are
    not pixels of a square image (features, or a width that is no square)."""
    width = (config.get("layer_sizes") or [784])[0]
    side = math.isqrt(width) if isinstance(width, int) and width > 0 else 0
    return side if side * side == width and "inputs" not in model else None


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """Counts (classes, classes): row = true digit, column = predicted digit."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def class_names(config: dict[str, Any], model: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The names of the run's classes: the model's own labels when it has them (a table's,
    say); else those of the run's data set (config.json's "dataset"); else the class numbers
    ("0"-"9" for MNIST, and for a data set this nnscratch does not know)."""
    if model and model.get("classes"):
        return tuple(str(label) for label in model["classes"])
    count = (config.get("layer_sizes") or [10])[-1]
    dataset = DATASETS.get(str(config.get("dataset", DEFAULT_DATASET)))
    if dataset is not None and len(dataset.classes) == count:
        return dataset.classes
    return tuple(str(label) for label in range(count))


def _named(classes: Sequence[str]) -> bool:
    """Whether the classes have names other than their digits."""
    return tuple(classes) != tuple(str(label) for label in range(len(classes)))


def mistake_captions(predictions: dict[str, Any], classes: Sequence[str],
                     shown: int = SHOWN_MISTAKES) -> list[str]:
    """The caption under each of the worst mistakes shown: the true class, what it was read as,
    and both probabilities."""
    probs = predictions["worst_probs"][:shown]
    labels = predictions["labels"][predictions["worst_index"][:shown]]
    captions = []
    for row, true in zip(probs, labels.tolist()):
        predicted = int(row.argmax())
        # a class name can be long ("Ankle boot"): its probability is then p(true), not p(name)
        which = "true" if _named(classes) else classes[true]
        captions.append(f"{classes[true]} read as {classes[predicted]}\n"
                        f"p={row[predicted]:.2f}, p({which})={row[true]:.2f}")
    return captions


# --- figures (matplotlib) -------------------------------------------------------------------

def _draw(folder: Path, config: dict[str, Any], metrics: list[dict[str, Any]],
          predictions: dict[str, Any] | None, weights: np.ndarray | None,
          classes: Sequence[str], side: int | None) -> dict[str, bytes]:
    """Each figure that the run's files allow, as PNG bytes, also written beside the page."""
    makers: dict[str, Callable[[Any], Any]] = {}
    if metrics:
        makers["curves"] = lambda fig: _curves(fig, metrics)
    if predictions is not None:
        makers["confusion"] = lambda fig: _confusion(fig, predictions, classes)
        if len(predictions["worst_index"]):
            if side is not None:
                makers["mistakes"] = lambda fig: _mistakes(fig, predictions, classes, side)
    if weights is not None:
        if side is not None:
            makers["weights"] = lambda fig: _weights(fig, weights, side)
    distortion = _distortion(config)
    if (distortion is not None and predictions is not None and side is not None
            and len(predictions["worst_index"]) and _distorting_available()):
        seed = config["training"].get("seed", 0)
        makers["distortions"] = lambda fig: _distortions(
            fig, predictions["worst_images"], distortion, seed, side)
    pictures = {}
    for name, make in makers.items():
        pictures[name] = _png(make)
        with atomic_file(folder / f"{name}.png") as handle:
            handle.write(pictures[name])
    return pictures


def _png(make: Callable[[Any], Any]) -> bytes:
    # A signal inside matplotlib's drawing code would come out as its own ValueError, and one
    # during its first import (in a class body) as a RuntimeError: it waits until the figure is
    # drawn.
    with signals_deferred():
        # The object-oriented API with Agg: no pyplot, so no global state and no display.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(layout="constrained")
        FigureCanvasAgg(figure)
        make(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _series(metrics: list[dict[str, Any]], key: str) -> list[float] | None:
    values = [row[key] for row in metrics]
    return None if any(v is None for v in values) else values


def _curves(figure: Any, metrics: list[dict[str, Any]]) -> None:
    from matplotlib.ticker import MaxNLocator

    figure.set_size_inches(12, 3.6)
    loss, accuracy, rate = figure.subplots(1, 3)
    epochs = [row["epoch"] for row in metrics]
    for axes, keys in ((loss, ("loss", "val_loss", "test_loss")),
                       (accuracy, ("train_accuracy", "val_accuracy", "test_accuracy"))):
        for key, label in zip(keys, ("training (running)", "validation", "test")):
            points = [(e, row[key]) for e, row in zip(epochs, metrics) if row[key] is not None]
            if points:  # the epochs that were evaluated (see eval_every)
                scale = 100 if axes is accuracy else 1
                axes.plot([e for e, _ in points], [scale * v for _, v in points], marker="o",
                          markersize=3, label=label)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    loss.set_title("loss (cross-entropy)")
    accuracy.set_title("accuracy (%)")
    rates = _series(metrics, "lr")
    if rates is not None:
        rate.plot(epochs, rates, marker="o", markersize=3, color="tab:purple")
    rate.set_title("learning rate")
    rate.set_xlabel("epoch")
    rate.xaxis.set_major_locator(MaxNLocator(integer=True))
    rate.grid(alpha=0.3)


def _confusion(figure: Any, predictions: dict[str, Any], classes: Sequence[str]) -> None:
    counts = confusion_matrix(predictions["labels"], predictions["predicted"], len(classes))
    figure.set_size_inches(6.4, 5.6)
    axes = figure.subplots()
    # log scale: the diagonal holds ~1,000 per digit, the mistakes a handful; both must show
    image = axes.imshow(np.log10(1 + counts), cmap="Blues")
    threshold = np.log10(1 + counts).max() / 2
    for (true, pred), count in np.ndenumerate(counts):
        if count:
            color = "white" if np.log10(1 + count) > threshold else "black"
            axes.text(pred, true, str(count), ha="center", va="center", fontsize=8, color=color)
    named = _named(classes)
    what = "class" if named else "digit"
    # names are long: slanted, so that "T-shirt/top" and "Trouser" do not overlap
    axes.set_xticks(range(len(classes)), classes, rotation=45 if named else 0,
                    ha="right" if named else "center")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel(f"predicted {what}")
    axes.set_ylabel(f"true {what}")
    accuracy = np.trace(counts) / counts.sum()
    axes.set_title(f"confusion matrix: {counts.sum() - np.trace(counts)} mistakes "
                   f"in {counts.sum():,} ({accuracy:.2%} right)")
    figure.colorbar(image, ax=axes, label="log10(1 + count)")


def _mosaic(tiles: np.ndarray, columns: int, gap: int, fill: float) -> np.ndarray:
    """(n, side, side) tiles laid out in rows of ``columns``, each followed by ``gap`` pixels of
    ``fill`` (below: room for a caption): one image, drawn by one imshow, where a subplot per
    tile would take seconds."""
    rows, side = -(-len(tiles) // columns), tiles.shape[1]
    step = side + gap
    canvas = np.full((rows * step, columns * step - gap), fill, dtype=np.float64)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * step:r * step + side, c * step:c * step + side] = tile
    return canvas


def _mistakes(figure: Any, predictions: dict[str, Any], classes: Sequence[str],
              side: int) -> None:
    shown = min(len(predictions["worst_index"]), SHOWN_MISTAKES)
    images = predictions["worst_images"][:shown].reshape(-1, side, side)
    captions = mistake_captions(predictions, classes, shown)
    columns, gap = 8, round(22 * side / 28)  # the gap leaves room for each image's caption
    canvas = _mosaic(images, columns, gap, 0)
    figure.set_size_inches(12, 12 * canvas.shape[0] / canvas.shape[1] + 0.5)
    axes = figure.subplots()
    axes.imshow(canvas, cmap="gray_r", vmin=0, vmax=255)
    axes.set_axis_off()
    for i, caption in enumerate(captions):
        r, c = divmod(i, columns)
        axes.text(c * (side + gap) + side / 2, r * (side + gap) + side + 0.5, caption,
                  ha="center", va="top", fontsize=7 if _named(classes) else 8)
    what = ("images", "class") if _named(classes) else ("digits", "digit")
    axes.set_title(f"the test {what[0]} misclassified with the most confidence "
                   f"(true {what[1]}, prediction, probabilities)")


def _weights(figure: Any, weights: np.ndarray, side: int) -> None:
    shown = min(weights.shape[1], SHOWN_UNITS)
    tiles = weights[:, :shown].T.reshape(-1, side, side)
    # each unit on its own scale, so that units with small weights show their pattern too
    tiles = tiles / np.maximum(np.abs(tiles).max(axis=(1, 2), keepdims=True), 1e-12)
    canvas = _mosaic(tiles, min(shown, 16), 2, np.nan)
    figure.set_size_inches(12, 12 * canvas.shape[0] / canvas.shape[1] + 0.5)
    axes = figure.subplots()
    axes.imshow(canvas, cmap="RdBu_r", vmin=-1, vmax=1)
    axes.set_axis_off()
    axes.set_title(f"first-layer weights of hidden units 1-{shown} of {weights.shape[1]} as "
                   f"{side}x{side} images, each on its own scale (red positive, blue negative)")


def _distortion(config: dict[str, Any]) -> Any:
    """The run's image distortion (a :class:`~nnscratch.augment.Distortion`), or None."""
    from .augment import Distortion

    training = config.get("training")
    if not isinstance(training, dict) or not training.get("augment"):
        return None
    try:
        return Distortion.from_settings(training)
    except (ConfigError, KeyError, TypeError, ValueError):
        return None


def _distorting_available() -> bool:
    try:
        from .augment import _kernels
        _kernels()
    except ConfigError:
        return False
    return True


def _distortions(figure: Any, images: np.ndarray, distortion: Any, seed: int,
                 side: int) -> None:
    from .augment import distort, epoch_key

    digits, shown = SHOWN_DISTORTED
    originals = images[:digits].reshape(-1, side, side)
    versions = [distort(originals, epoch_key(seed, epoch), distortion)
                for epoch in range(1, shown + 1)]
    tiles = np.stack([originals, *versions], axis=1).reshape(-1, side, side)
    canvas = _mosaic(tiles, shown + 1, 2, np.nan)
    figure.set_size_inches(9, 9 * canvas.shape[0] / canvas.shape[1] + 0.5)
    axes = figure.subplots()
    axes.imshow(canvas, cmap="gray_r", vmin=0, vmax=255)
    axes.set_axis_off()
    axes.set_title(f"test images (left) distorted as epochs 1-{shown} distort the training "
                   f"images", fontsize=10)


# --- the page --------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1240px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f4f4f4; } td.key { text-align: left; font-family: monospace; }
img { max-width: 100%; } .note { color: #8a5a00; } .muted { color: #666; }
"""


def _page(folder: Path, config: dict[str, Any], metrics: list[dict[str, Any]],
          predictions: dict[str, Any] | None, weights: np.ndarray | None,
          pictures: dict[str, bytes], classes: Sequence[str], side: int | None) -> str:
    finished = predictions is not None and weights is not None
    sections = [
        _section("Training curves", _picture(pictures, "curves", "training curves")
                 if metrics else _note("no epoch has finished yet")),
        _section("Confusion matrix on the test set",
                 _confusion_part(predictions, pictures, classes)),
        _section("Worst mistakes", _mistakes_part(folder, predictions, pictures, classes,
                                                  side)),
        *([_section("Distortions", _distortions_part(folder, config, predictions, pictures,
                                                     side))] if _distortion(config) else []),
        _section("First-layer weights", _not_an_image() if side is None else
                 _picture(pictures, "weights", "first-layer weights")
                 if weights is not None else _unfinished(folder)),
        _section("Settings", _settings_table(config)),
        _section("Epochs", _metrics_table(metrics)),
    ]
    hint = "" if pictures or not (metrics or finished) else _note(
        f"The figures need matplotlib: {PLOT_HINT}, then run: nnscratch report {folder}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>nnscratch run {html.escape(folder.name)}</title>"
            f"<style>{_STYLE}</style></head><body>\n"
            f"<h1>nnscratch run {html.escape(folder.name)}</h1>\n"
            f"{_summary(config, metrics, finished)}\n{hint}\n{''.join(sections)}"
            f"</body></html>\n")


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>\n{body}\n"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text, quote=False)}</p>'


def _unfinished(folder: Path) -> str:
    return _note(f"available once the run has finished (continue it with: "
                 f"nnscratch train --resume {folder})")


def _picture(pictures: dict[str, bytes], name: str, alt: str) -> str:
    if name not in pictures:
        return _note(f"no picture: {PLOT_HINT}")
    # Embedded, so the page stays whole when copied alone; the same PNG is beside it too.
    data = base64.b64encode(pictures[name]).decode("ascii")
    return f'<img id="{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _summary(config: dict[str, Any], metrics: list[dict[str, Any]], finished: bool) -> str:
    t = config.get("training", {})
    sizes = "-".join(map(str, config.get("layer_sizes", [])))
    parts = [f"{sizes} network, {t.get('optimizer', 'sgd')}, lr {t.get('lr')}",
             f"{t.get('schedule') or 'constant'} schedule", f"backend {t.get('backend')}",
             f"{len(metrics)} of {t.get('epochs')} epochs done"]
    if metrics:
        last = metrics[-1]
        parts.append(f"last test accuracy {last['test_accuracy']:.2%}")
    if not finished:
        parts.append("the run has not finished")
    source = html.escape(str(config.get("data_source", "")))
    return (f"<p>{html.escape('; '.join(parts))}.</p>\n"
            f'<p class="muted">data: {source}</p>')


def _confusion_part(predictions: dict[str, Any] | None, pictures: dict[str, bytes],
                    classes: Sequence[str]) -> str:
    if predictions is None:
        return _note("available once the run has finished")
    counts = confusion_matrix(predictions["labels"], predictions["predicted"], len(classes))
    names = [html.escape(name) for name in classes]
    if "confusion" in pictures:
        matrix = _picture(pictures, "confusion", "confusion matrix")
    else:
        head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{name}</th>" for name in names)
        rows = "".join(f"<tr><th>{name}</th>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                       for name, row in zip(names, counts))
        matrix = f"<table>{head}</tr>{rows}</table>"
    return matrix + _per_class_table(counts, names)


def _per_class_table(counts: np.ndarray, names: Sequence[str]) -> str:
    """Precision (of the predictions of a class, how many are right) and recall (of the test
    rows of a class, how many are found), class by class."""
    right = np.diag(counts)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    rows = "".join(
        f"<tr><th>{name}</th><td>{n:,}</td><td>{_share(r, p)}</td><td>{_share(r, a)}</td></tr>"
        for name, n, r, p, a in zip(names, actual, right, predicted, actual))
    return ("<p>Per class:</p><table><tr><th>class</th><th>test rows</th><th>precision</th>"
            f"<th>recall</th></tr>{rows}</table>")


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.2%}" if whole else "-"


def _not_an_image() -> str:
    return _note("the inputs are not the pixels of a square image: there is nothing to draw")


def _mistakes_part(folder: Path, predictions: dict[str, Any] | None,
                   pictures: dict[str, bytes], classes: Sequence[str],
                   side: int | None) -> str:
    if predictions is None:
        return _unfinished(folder)
    if not len(predictions["worst_index"]):
        return _note("no test image was misclassified")
    if "mistakes" in pictures:
        return _picture(pictures, "mistakes", "misclassified test images")
    # Without the picture, the captions alone still say which classes the model confuses.
    items = "".join(f"<li>{html.escape(caption.replace(chr(10), ': '))}</li>"
                    for caption in mistake_captions(predictions, classes))
    picture = (_not_an_image() if side is None else
               _picture(pictures, 'mistakes', 'misclassified test images'))
    return f"{picture}\n<ol>{items}</ol>"


def _distortions_part(folder: Path, config: dict[str, Any],
                      predictions: dict[str, Any] | None, pictures: dict[str, bytes],
                      side: int | None) -> str:
    if "distortions" in pictures:
        return _picture(pictures, "distortions", "digits and their distortions")
    if side is None:
        return _not_an_image()
    if predictions is None:
        return _unfinished(folder)
    if not pictures:
        return ""  # the page says how to get the figures
    from .augment import AUGMENT_HINT

    return _note(f"drawing the distortions needs Numba: {AUGMENT_HINT}, then run: "
                 f"nnscratch report {folder}")


def _settings_table(config: dict[str, Any]) -> str:
    items = {**config.get("training", {}), "layer_sizes": config.get("layer_sizes"),
             "data": config.get("data"), "dataset": config.get("dataset", DEFAULT_DATASET),
             "started": config.get("started"),
             "nnscratch_version": config.get("nnscratch_version")}
    rows = "".join(f'<tr><td class="key">{html.escape(str(k))}</td>'
                   f'<td class="key">{html.escape(str(v))}</td></tr>' for k, v in items.items())
    return f"<table>{rows}</table>"


def _format_metric(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "epoch":
        return str(value)
    if "accuracy" in key:
        return f"{value:.2%}"
    return f"{value:.4g}" if key == "lr" else f"{value:.4f}" if "loss" in key else f"{value:.2f}"


def _metrics_table(metrics: Sequence[dict[str, Any]]) -> str:
    if not metrics:
        return _note("no epoch has finished yet")
    columns = [c for c in runs.METRIC_COLUMNS if any(row[c] is not None for row in metrics)]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(f"<td>{_format_metric(c, row[c])}</td>" for c in columns)
                   + "</tr>" for row in metrics)
    return f"<table><tr>{head}</tr>{rows}</table>"
