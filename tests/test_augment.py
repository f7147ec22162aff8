"""Image distortions (nnscratch.augment): the noise and its smoothing against SciPy's own
Gaussian filter, the warp against SciPy's map_coordinates and exact shifts, the size of elastic
displacements, the affine bounds, and reproducible streams."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.augment import (Distortion, EpochImages, displacement_fields, distort,
                               epoch_key, gaussian_matrix, warp)
from nnscratch.errors import ConfigError

ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is not installed")
pytest.importorskip("numba", reason="distorting images needs Numba")


@pytest.fixture
def digits(sample_mnist):
    return sample_mnist.x_train[:50]


def _noise(key: int, n: int, side: int) -> np.ndarray:
    """The uniform noise behind the elastic fields of images 0 .. n - 1: (n, 2, side, side)."""
    from nnscratch._distort_kernels import fill_uniform

    noise = np.empty((n, 2, side, side), np.float32)
    for i in range(n):
        for f in range(2):
            fill_uniform(np.uint64(key), (2 * i + f) * side * side, noise[i, f])
    return noise


def test_the_noise_is_uniform_in_minus_one_to_one():
    noise = _noise(5, 200, 28).ravel()
    assert noise.min() >= -1 and noise.max() < 1
    assert abs(noise.mean()) < 0.01 and abs(noise.var() - 1 / 3) < 0.01
    counts = np.histogram(noise, bins=10, range=(-1, 1))[0]
    assert counts.min() > 0.95 * len(noise) / 10
    assert not np.array_equal(_noise(6, 2, 28), _noise(5, 2, 28))


@pytest.mark.parametrize("side,sigma,alpha", [(28, 4.0, 34.0), (28, 1.5, 10.0), (9, 2.0, 1.0)])
def test_elastic_fields_are_the_noise_smoothed_by_scipys_gaussian_filter(side, sigma, alpha):
    images = np.zeros((70, side, side), np.uint8)  # more than a group of 64 fields
    dy, dx = displacement_fields(images, 11, Distortion(elastic=True, alpha=alpha, sigma=sigma))
    noise = _noise(11, len(images), side).astype(np.float64)
    smoothed = alpha * ndimage.gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="constant")
    scale = np.abs(smoothed).max()
    np.testing.assert_allclose(dy, smoothed[:, 0], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(dx, smoothed[:, 1], rtol=0, atol=1e-5 * scale)


def test_the_smoothing_matrix_is_scipys_filter_along_a_line():
    u = np.random.default_rng(1).uniform(-1, 1, 28)
    np.testing.assert_allclose(gaussian_matrix(28, 4.0) @ u,
                               ndimage.gaussian_filter1d(u, 4.0, mode="constant"), atol=1e-12)


def test_the_warp_is_scipys_bilinear_map_coordinates_rounded(digits):
    square = digits.reshape(-1, 28, 28)
    rng = np.random.default_rng(4)
    dy, dx = rng.normal(0, 2, square.shape), rng.normal(0, 2, square.shape)
    grid_y, grid_x = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    theirs = np.stack([
        ndimage.map_coordinates(image.astype(np.float64), [grid_y + y, grid_x + x], order=1,
                                mode="grid-constant", cval=0.0)
        for image, y, x in zip(square, dy, dx)])
    theirs = np.clip(np.floor(theirs + 0.5), 0, 255).astype(np.uint8)  # rounded half up
    np.testing.assert_array_equal(warp(square, dy, dx), theirs)


def test_no_distortion_leaves_the_images_as_they_are(digits):
    for distortion in (Distortion(), Distortion(elastic=True, alpha=0.0)):
        out = distort(digits, 3, distortion)
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


@pytest.mark.parametrize("distortion", [
    Distortion(elastic=True), Distortion(rotate=10.0, scale=0.1, shear=0.2, shift=2.0),
    Distortion(elastic=True, alpha=20.0, sigma=3.0, rotate=5.0, shift=1.0)])
def test_distorting_is_warping_by_the_displacement_fields(digits, distortion):
    dy, dx = displacement_fields(digits, 9, distortion)
    np.testing.assert_array_equal(distort(digits, 9, distortion), warp(digits, dy, dx))


def test_elastic_displacements_have_the_papers_size():
    """Uniform noise in [-1, 1] (variance 1/3), smoothed by a normalised 2-D Gaussian of sigma 4
    (variance divided by about 4 pi sigma^2) and scaled by 34: about 1.4 pixels (RMS) in the
    middle of the image, less near the edges, where the smoothing meets zeros."""
    dy, dx = displacement_fields(np.zeros((400, 28, 28), np.uint8), 2,
                                 Distortion(elastic=True, alpha=34.0, sigma=4.0))
    middle = np.sqrt(np.mean(dy[:, 10:18, 10:18] ** 2))
    expected = 34.0 * np.sqrt(1 / 3 / (4 * np.pi * 16))
    assert expected * 0.85 < middle < expected * 1.15
    assert abs(dx.mean()) < 0.05 and abs(dy.mean()) < 0.05
    assert np.sqrt(np.mean(dx[:, 0, :] ** 2)) < middle


def test_affine_bounds_hold():
    """Rotations within 10 degrees and shifts within 2 pixels move a corner at most as far as
    the bounds allow, and some images reach near the bounds; a shift alone moves every pixel
    of an image alike."""
    d = Distortion(rotate=10.0, shift=2.0)
    dy, dx = displacement_fields(np.zeros((500, 28, 28), np.uint8), 3, d)
    corner = np.hypot(dy[:, 0, 0], dx[:, 0, 0])
    reach = 2 * 13.5 * np.sin(np.deg2rad(10) / 2) * np.sqrt(2) + 2 * np.sqrt(2)
    assert corner.max() <= reach + 1e-9 and corner.max() > 0.8 * reach
    dy, dx = displacement_fields(np.zeros((500, 28, 28), np.uint8), 3, Distortion(shift=2.0))
    assert np.ptp(dy, axis=(1, 2)).max() < 1e-12 and np.abs(dx).max() <= 2
    assert np.abs(dx[:, 0, 0]).max() > 1.9


def test_the_same_key_gives_the_same_images_and_parts_match_the_whole(digits):
    d = Distortion(elastic=True, rotate=5.0, scale=0.1, shear=0.2, shift=1.0)
    whole = distort(digits, epoch_key(7, 3), d)
    np.testing.assert_array_equal(distort(digits, epoch_key(7, 3), d), whole)
    # image i's distortion depends on the key and i alone
    np.testing.assert_array_equal(distort(digits[20:30], epoch_key(7, 3), d, first=20),
                                  whole[20:30])
    assert not np.array_equal(distort(digits, epoch_key(7, 4), d), whole)
    assert not np.array_equal(distort(digits, epoch_key(8, 3), d), whole)
    assert not np.array_equal(whole, digits)


def test_epoch_images_made_ahead_are_those_made_at_once(digits):
    d = Distortion(elastic=True, shift=1.0)
    epochs = EpochImages(digits, d, seed=4, last=3)
    try:
        for epoch in (1, 2, 3):  # 2 and 3 were made in the background while asked for
            np.testing.assert_array_equal(epochs.get(epoch), epochs.make(epoch))
        assert epochs._next is None  # nothing is made beyond the last epoch
        np.testing.assert_array_equal(epochs.get(2), distort(digits, epoch_key(4, 2), d))
    finally:
        epochs.close()


def test_square_images_keep_their_shape(digits):
    out = distort(digits.reshape(-1, 28, 28), 0, Distortion(elastic=True))
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
    (np.zeros((2, 0), np.uint8), "square"),
])
def test_images_that_cannot_be_distorted_are_refused(images, problem):
    with pytest.raises(ConfigError, match=problem):
        distort(images, 0, Distortion(elastic=True))
