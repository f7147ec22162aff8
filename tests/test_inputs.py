"""Tests of nnscratch.inputs: checking the images and labels a user hands the model."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.inputs import as_labels, as_pixels

from test_data import expect_data_error, random_split


# --- as_pixels / as_labels --------------------------------------------------------------------


def test_as_pixels_keeps_uint8_rows():
    images = random_split(3, seed=2)[0]
    for given in (images.reshape(3, 784), images, images.tolist()):
        out = as_pixels(np.asarray(given, dtype=np.uint8))
        assert out.dtype == np.uint8 and out.shape == (3, 784)
        assert np.array_equal(out, images.reshape(3, 784))


def test_as_pixels_takes_one_image():
    image = random_split(1, seed=3)[0][0]
    assert np.array_equal(as_pixels(image), image.reshape(1, 784))
    assert np.array_equal(as_pixels(image.reshape(784)), image.reshape(1, 784))


def test_as_pixels_casts_other_integers():
    out = as_pixels(np.full((2, 784), 255, dtype=np.int64))
    assert out.dtype == np.uint8 and out.flags.c_contiguous and int(out.sum()) == 2 * 784 * 255


@pytest.mark.parametrize("dtype, expected", [(np.float64, np.float64), (np.float32, np.float32),
                                             (np.float16, np.float32)])
def test_as_pixels_takes_scaled_floats(dtype, expected):
    pixels = random_split(2, seed=4)[0]
    out = as_pixels((pixels / 255).astype(dtype))
    assert out.dtype == expected and out.shape == (2, 784)
    tolerance = 100 * np.finfo(dtype).eps
    assert np.allclose(out, pixels.reshape(2, 784) / 255, rtol=0, atol=tolerance)


BAD_IMAGES = {
    "bool": (np.zeros((1, 784), dtype=bool), "dtype bool"),
    "complex": (np.zeros((1, 784), dtype=complex), "dtype complex128"),
    "strings": (np.full((1, 784), "a"), "dtype <U1"),
    "ragged": ([[1, 2], [3]], "rectangular"),
    "wrong width": (np.zeros((5, 100), dtype=np.uint8), "got shape (5, 100)"),
    "4-d": (np.zeros((1, 1, 28, 28), dtype=np.uint8), "got shape (1, 1, 28, 28)"),
    "empty": (np.zeros((0, 784), dtype=np.uint8), "at least one image"),
    "negative int": (np.full((1, 784), -1), "0..255"),
    "int over 255": (np.full((1, 784), 256), "0..255"),
    "unscaled float": (np.full((1, 784), 255.0), "[0, 1]"),
    "negative float": (np.full((1, 784), -0.5), "[0, 1]"),
    "nan": (np.full((1, 784), np.nan), "finite"),
    "inf": (np.full((1, 784), np.inf, dtype=np.float32), "finite"),
}


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_as_pixels_rejects(case):
    given, fragment = BAD_IMAGES[case]
    expect_data_error(lambda: as_pixels(given), "images", fragment)


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="longdouble is float64 here")
def test_as_pixels_rejects_long_double():
    expect_data_error(lambda: as_pixels(np.zeros((1, 784), dtype=np.longdouble)), "dtype")


def test_as_labels_returns_int64():
    out = as_labels(np.array([3, 0, 9], dtype=np.uint8), 3)
    assert out.dtype == np.int64 and out.tolist() == [3, 0, 9]
    assert as_labels([1, 2], 2).tolist() == [1, 2]


BAD_LABELS = {
    "floats": (np.array([1.0, 2.0]), 2, "dtype float64"),
    "bools": (np.array([True, False]), 2, "dtype bool"),
    "too few": (np.array([1, 2]), 3, "shape (3,)"),
    "2-d": (np.array([[1, 2]]), 2, "got shape (1, 2)"),
    "ten": (np.array([0, 10]), 2, "got 10 at index 1"),
    "negative": (np.array([-1, 0]), 2, "got -1 at index 0"),
}


@pytest.mark.parametrize("case", BAD_LABELS)
def test_as_labels_rejects(case):
    given, n, fragment = BAD_LABELS[case]
    expect_data_error(lambda: as_labels(given, n), "labels", fragment)
