"""Image distortions (nnscratch.augment): the smoothing against SciPy's own Gaussian filter, the
warp against exact shifts, the size of elastic displacements, and reproducible streams."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.augment import (Distortion, displacement_fields, distort, epoch_generator,
                               gaussian_matrix, warp)
from nnscratch.errors import ConfigError

ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is not installed")


@pytest.fixture
def digits(sample_mnist):
    return sample_mnist.x_train[:50]


@pytest.mark.parametrize("side,sigma", [(28, 4.0), (28, 1.5), (9, 2.0)])
def test_smoothing_is_scipys_gaussian_filter_with_zeros_outside(side, sigma):
    noise = np.random.default_rng(1).uniform(-1, 1, size=(3, side, side))
    g = gaussian_matrix(side, sigma)
    ours = np.stack([g @ u @ g.T for u in noise])
    theirs = ndimage.gaussian_filter(noise, sigma=(0, sigma, sigma), mode="constant")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_no_distortion_leaves_the_images_as_they_are(digits):
    for distortion in (Distortion(), Distortion(elastic=True, alpha=0.0)):
        out = distort(digits, np.random.default_rng(0), distortion)
        assert out.dtype == np.uint8 and out.shape == digits.shape
        np.testing.assert_array_equal(out, digits)


def test_whole_pixel_displacements_shift_the_image_exactly(digits):
    square = digits.reshape(-1, 28, 28)
    ones = np.ones(square.shape)
    # each output pixel reads the input one pixel up and two to the left: the image moves
    # down by one and right by two, and the uncovered rows and columns are background
    out = warp(square, -ones, -2 * ones)
    np.testing.assert_array_equal(out[:, 1:, 2:], square[:, :-1, :-2])
    assert not out[:, 0, :].any() and not out[:, :, :2].any()


def test_half_pixel_displacements_interpolate_between_neighbours():
    image = np.zeros((1, 4, 4), np.uint8)
    image[0, 1, 1], image[0, 1, 2] = 100, 200
    half = np.full((1, 4, 4), 0.5)
    out = warp(image, np.zeros((1, 4, 4)), half)  # read half a pixel to the right
    assert out[0, 1, 1] == 150 and out[0, 1, 0] == 50 and out[0, 1, 2] == 100


def test_elastic_displacements_have_the_papers_size():
    """Uniform noise in [-1, 1] (variance 1/3), smoothed by a normalised 2-D Gaussian of sigma 4
    (variance divided by about 4 pi sigma^2) and scaled by 34: about 1.4 pixels (RMS) in the
    middle of the image, less near the edges, where the smoothing meets zeros."""
    dy, dx = displacement_fields(np.random.default_rng(2), 400, 28,
                                 Distortion(elastic=True, alpha=34.0, sigma=4.0))
    middle = np.sqrt(np.mean(dy[:, 10:18, 10:18] ** 2))
    expected = 34.0 * np.sqrt(1 / 3 / (4 * np.pi * 16))
    assert expected * 0.85 < middle < expected * 1.15
    assert abs(dx.mean()) < 0.05 and abs(dy.mean()) < 0.05
    assert np.sqrt(np.mean(dx[:, 0, :] ** 2)) < middle


def test_affine_bounds_hold():
    """Rotations within 10 degrees and shifts within 2 pixels move a corner at most as far as
    the bounds allow, and some images reach near the bounds."""
    d = Distortion(rotate=10.0, shift=2.0)
    dy, dx = displacement_fields(np.random.default_rng(3), 500, 28, d)
    corner = np.hypot(dy[:, 0, 0], dx[:, 0, 0])
    reach = 2 * 13.5 * np.sin(np.deg2rad(10) / 2) * np.sqrt(2) + 2 * np.sqrt(2)
    assert corner.max() <= reach + 1e-9 and corner.max() > 0.8 * reach


def test_the_same_seed_and_epoch_give_the_same_images(digits):
    d = Distortion(elastic=True, rotate=5.0, scale=0.1, shear=0.2, shift=1.0)
    first = distort(digits, epoch_generator(7, 3), d)
    np.testing.assert_array_equal(distort(digits, epoch_generator(7, 3), d), first)
    assert not np.array_equal(distort(digits, epoch_generator(7, 4), d), first)
    assert not np.array_equal(distort(digits, epoch_generator(8, 3), d), first)
    assert not np.array_equal(first, digits)


def test_square_images_keep_their_shape(digits):
    d = Distortion(elastic=True)
    out = distort(digits.reshape(-1, 28, 28), np.random.default_rng(0), d)
    assert out.shape == (len(digits), 28, 28) and out.dtype == np.uint8


@pytest.mark.parametrize("kwargs,problem", [
    ({"alpha": -1.0}, "alpha"), ({"sigma": float("nan")}, "sigma"),
    ({"elastic": True, "sigma": 0.0}, "sigma > 0"), ({"scale": 1.0}, "below 1"),
    ({"rotate": "10"}, "rotate"),
])
def test_impossible_distortions_are_refused(kwargs, problem):
    with pytest.raises(ConfigError, match=problem):
        Distortion(**kwargs)


@pytest.mark.parametrize("images,problem", [
    (np.zeros((2, 10), np.uint8), "square"), (np.zeros((2, 784)), "uint8"),
])
def test_images_that_cannot_be_distorted_are_refused(images, problem):
    with pytest.raises(ConfigError, match=problem):
        distort(images, np.random.default_rng(0), Distortion(elastic=True))
