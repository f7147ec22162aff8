"""report.html: its figures, its numbers, and what a browser shows of it (headless Chromium)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest

import nnscratch
from nnscratch import runs
from nnscratch.report import build_report, confusion_matrix

pytest.importorskip("matplotlib", reason='the figures need matplotlib: pip install '
                                         '"nnscratch[plot]"')

FIGURES = ("curves", "confusion", "mistakes", "weights")


@pytest.fixture(scope="module")
def finished_run(sample_mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report") / "run"
    result = nnscratch.train(sample_mnist, out=folder, hidden=(32,), epochs=3, lr=0.3,
                             momentum=0.5, schedule="cosine", validation=0.1, progress=False)
    return folder, result


def test_page_embeds_the_four_figures_and_writes_them_beside_it(finished_run):
    folder, result = finished_run
    page = (folder / "report.html").read_text()
    for name in FIGURES:
        match = re.search(rf'<img id="{name}" [^>]*src="data:image/png;base64,([^"]+)"', page)
        assert match, name
        png = base64.b64decode(match.group(1))
        assert png.startswith(b"\x89PNG") and png == (folder / f"{name}.png").read_bytes()
    assert "http" not in page.replace("http-equiv", "")  # nothing to fetch: it opens offline
    assert f"{result.history[-1].test_accuracy:.2%}" in page  # the metrics table
    assert "<td class=\"key\">schedule</td><td class=\"key\">cosine</td>" in page


def test_confusion_matrix_counts_the_models_decisions(finished_run, sample_mnist):
    folder, result = finished_run
    predictions = runs.read_predictions(folder)
    counts = confusion_matrix(predictions["labels"], predictions["predicted"])
    predicted = result.model.predict(sample_mnist.x_test)
    assert counts.sum() == len(sample_mnist.y_test) == 2000
    assert np.trace(counts) == int(round(result.test_accuracy * 2000))
    assert counts[3, 5] == np.sum((sample_mnist.y_test == 3) & (predicted == 5))
    np.testing.assert_array_equal(counts.sum(axis=1),
                                  np.bincount(sample_mnist.y_test, minlength=10))


def test_report_of_an_unfinished_run(sample_mnist, tmp_path):
    import os
    import signal

    from nnscratch import Callback, TrainingInterrupted

    class StopInEpoch2(Callback):
        def on_epoch_start(self, epoch, epochs, steps):
            if epoch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted):
        nnscratch.train(sample_mnist, out=tmp_path / "run", hidden=(16,), epochs=3,
                        progress=False, callback=StopInEpoch2())
    report = build_report(tmp_path / "run")
    page = report.path.read_text()
    assert [p.name for p in report.figures] == ["curves.png"]
    assert '<img id="curves"' in page and "1 of 3 epochs done" in page
    assert page.count("available once the run has finished") == 3


def _screenshot(page, png):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", "--window-size=1280,3000", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread

    return (imread(png)[:, :, :3] * 255).round().astype(int)


def _near(pixels, rgb, tolerance=40):
    return int((np.abs(pixels - np.array(rgb)).max(axis=2) <= tolerance).sum())


def test_a_browser_shows_curves_confusion_matrix_mistakes_and_weights(finished_run, tmp_path):
    folder, _ = finished_run
    pixels = _screenshot(folder / "report.html", tmp_path / "report.png")
    assert pixels.shape == (3000, 1280, 3)
    assert (pixels.min(axis=2) < 200).mean() > 0.05  # far from a blank page
    # each figure's own colours, in quantity: curves (matplotlib's blue and orange lines),
    # the confusion matrix's dark blue diagonal, the digits' black ink, the weights' reds
    assert _near(pixels, (255, 127, 14)) > 200, "no training curves"
    assert _near(pixels, (8, 48, 107)) > 2000, "no confusion matrix"
    assert _near(pixels, (0, 0, 0), tolerance=10) > 10000, "no digits"
    assert _near(pixels, (178, 24, 43), tolerance=60) > 300, "no weight images"
