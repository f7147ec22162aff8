"""Reading pictures that are not plain 8-bit images, and files that are not pictures at all.

A clear digit stored with more than 8 bits a pixel (a 16-bit PNG, a 32-bit integer or float TIFF)
must be read like its 8-bit version; a FIFO, a folder or a device named as an image must be
refused at once, in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

pytest.importorskip("PIL", reason="reading images needs Pillow (nnscratch[images])")
from PIL import Image  # noqa: E402

import nnscratch  # noqa: E402
from nnscratch.errors import DataError  # noqa: E402
from nnscratch.imageprep import gray_levels, prepare_digit, read_digit, read_grayscale  # noqa: E402

N_DIGITS = 40


@pytest.fixture(scope="module")
def model(sample_mnist):
    return nnscratch.train(sample_mnist, hidden=(64,), epochs=2, lr=0.5, progress=False).model


@pytest.fixture(scope="module")
def digits(sample_mnist) -> np.ndarray:
    return sample_mnist.x_test[:N_DIGITS].reshape(-1, 28, 28)


# Each way of storing an 8-bit digit ``d`` (uint8) with more bits, as Pillow writes it.
WIDER: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "16-bit PNG": (lambda d: d.astype(np.uint16) * 257, "png"),
    "16-bit PNG of 0-255": (lambda d: d.astype(np.uint16), "png"),
    "32-bit int TIFF of 0-255": (lambda d: d.astype(np.int32), "tif"),
    "32-bit int TIFF, full range": (lambda d: d.astype(np.int32) * 8_421_504 - 2 ** 30, "tif"),
    "float TIFF of 0-255": (lambda d: d.astype(np.float32), "tif"),
    "float TIFF in [0, 1]": (lambda d: d.astype(np.float32) / 255, "tif"),
}


@pytest.mark.parametrize("store, suffix", WIDER.values(), ids=WIDER.keys())
def test_a_wider_picture_of_a_digit_reads_like_its_8_bit_version(model, digits, tmp_path, store,
                                                                 suffix):
    eight, wide = [], []
    for i, digit in enumerate(digits):
        Image.fromarray(digit).save(tmp_path / f"{i}.png")
        Image.fromarray(store(digit)).save(tmp_path / f"{i}-wide.{suffix}")
        assert Image.open(tmp_path / f"{i}-wide.{suffix}").mode in ("I;16", "I", "F")
        eight.append(read_digit(tmp_path / f"{i}.png"))
        wide.append(read_digit(tmp_path / f"{i}-wide.{suffix}"))
    eight, wide = np.stack(eight), np.stack(wide)
    difference = np.abs(eight.astype(int) - wide)
    assert difference.max() <= 2 and difference.mean() < 0.1, (difference.max(), difference.mean())
    assert np.array_equal(model.predict(wide), model.predict(eight))


def test_gray_levels_rescale_by_the_type_and_stretch_only_past_it():
    faint = np.full((4, 4), 3000.0)
    faint[1, 1] = 4000.0  # a faint 16-bit mark: stays faint, so "no digit" can still be said
    assert gray_levels(faint, "I;16")[1, 1] == pytest.approx(4000 * 255 / 65535)
    assert gray_levels(np.array([[0.0, 0.5, 1.0]]), "F").tolist() == [[0.0, 127.5, 255.0]]
    assert gray_levels(np.array([[0.0, 0.5, 1.0]]), "I").tolist() == [[0.0, 0.5, 1.0]]
    assert gray_levels(np.array([[-100.0, 0.0, 100.0]]), "I").tolist() == [[0.0, 127.5, 255.0]]
    assert gray_levels(np.array([[1e6, 1e6]]), "F").tolist() == [[0.0, 0.0]]
    with pytest.raises(DataError, match="1 pixel\\(s\\) that are not numbers"):
        gray_levels(np.array([[0.0, np.nan]]), "F", "nan.tif")


def test_a_float_picture_with_nan_is_refused_in_one_sentence(tmp_path):
    picture = np.zeros((30, 30), np.float32)
    picture[3, 4] = np.nan
    Image.fromarray(picture).save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match=r"nan\.tif has 1 pixel\(s\) that are not numbers"):
        read_grayscale(tmp_path / "nan.tif")


def test_a_picture_too_small_is_told_in_width_x_height(tmp_path):
    Image.fromarray(np.zeros((1, 5), np.uint8)).save(tmp_path / "strip.png")  # 5 wide, 1 high
    with pytest.raises(DataError) as caught:
        read_digit(tmp_path / "strip.png")
    assert str(caught.value) == (f"{tmp_path / 'strip.png'} is 5x1 pixels: a digit needs at "
                                 f"least 2 pixels a side")
    with pytest.raises(DataError, match=r"\(height, width\); got shape \(2, 3, 4\)"):
        prepare_digit(np.zeros((2, 3, 4)))


@pytest.mark.parametrize("path", [5, None, 2.5])
def test_an_image_named_by_something_else_than_a_path(path):
    with pytest.raises(DataError, match="must be a file path"):
        read_digit(path)


def _special(kind: str, path: Path) -> str:
    """Make ``path`` a special file of ``kind``; return how the refusal names it."""
    if kind == "fifo":
        os.mkfifo(path)
        return "a named pipe (FIFO), not an image"
    if kind == "device":
        path.symlink_to("/dev/zero")
        return "a character device, not an image"
    path.mkdir()
    return "a folder, not an image"


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_special_file_given_as_an_image_is_refused_without_waiting(tmp_path, kind):
    model = nnscratch.MLP((4,), seed=0).save(tmp_path / "m.npz")
    path = tmp_path / "digit.png"
    words = _special(kind, path)
    # A regression would wait forever on the FIFO: the timeout turns that into a failure.
    proc = subprocess.run([sys.executable, "-m", "nnscratch", "predict", str(model), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    assert proc.stderr == f"nnscratch predict: error: {path} is {words}\n"


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_special_file_given_as_a_model_to_predict_is_refused_without_waiting(tmp_path, kind):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "digit.png")
    path = tmp_path / "model.npz"
    words = _special(kind, path).replace("an image", "a model file")
    proc = subprocess.run([sys.executable, "-m", "nnscratch", "predict", str(path),
                           str(tmp_path / "digit.png")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == f"nnscratch predict: error: {path} is {words}\n"


def test_a_damaged_picture_is_told_in_words(tmp_path):
    picture = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataError) as caught:
        read_grayscale(tmp_path / "cut.png")
    assert str(caught.value) == (f"{tmp_path / 'cut.png'} cannot be decoded as an image: it is "
                                 f"cut short")
