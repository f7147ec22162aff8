"""Random distortions of training images: affine transforms and elastic distortions.

Elastic distortions are those of Simard, Steinkraus and Platt, "Best Practices for Convolutional
Neural Networks Applied to Visual Document Analysis" (ICDAR 2003): for each image, a random
displacement field whose two components are uniform in [-1, 1] at every pixel, smoothed by a
Gaussian of standard deviation ``sigma`` pixels and scaled by ``alpha``; the image is then
resampled at the displaced positions by bilinear interpolation, pixels outside the image reading
0 (the background). An affine distortion draws, per image, a rotation, a scale, a shear and a
shift within the given bounds and maps every pixel through them; the two can be combined (their
displacements add).

Everything here works on host NumPy arrays of uint8 images, square (n, side * side) or (n, side,
side), and returns uint8 images of the same shape: the distorted images go to the backend like
any others, so every backend trains on exactly the same pixels. The random numbers come from
the generator passed in; :func:`epoch_generator` gives the one a training run uses for an epoch,
drawn from the run's seed and the epoch number alone, so a resumed run distorts its images as
the uninterrupted one did. Resampling uses ``scipy.ndimage`` (``pip install "nnscratch[augment]"``),
imported when an image is first distorted.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["Distortion", "ELASTIC_ALPHA", "ELASTIC_SIGMA", "epoch_generator",
           "displacement_fields", "warp", "distort", "gaussian_matrix", "SCIPY_HINT", "CHUNK"]

#: The paper's values for MNIST: a displacement of up to about alpha times the smoothed noise,
#: whose features are about sigma pixels wide.
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0
SCIPY_HINT = 'pip install "nnscratch[augment]"'
# The stream of random numbers for distortions, apart from the weights' and the batch order's:
# mixed with the run's seed and the epoch number (numpy.random.SeedSequence's entropy).
_STREAM = 0x5173A4D
#: Images distorted at a time by :func:`distort`: part of its definition (the fields of each
#: chunk are drawn in turn), so changing it changes the images a seed gives.
CHUNK = 4096


@dataclass(frozen=True)
class Distortion:
    """How to distort images: ``elastic`` (with ``alpha`` and ``sigma``, in pixels) and the
    bounds of a random affine map, each drawn uniformly per image: ``rotate`` (degrees either
    way), ``scale`` (a factor within 1 +- scale), ``shear`` (a horizontal shear factor within
    +- shear) and ``shift`` (pixels either way, in each direction). All zero: no distortion."""

    elastic: bool = False
    alpha: float = ELASTIC_ALPHA
    sigma: float = ELASTIC_SIGMA
    rotate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        for name in ("alpha", "sigma", "rotate", "scale", "shear", "shift"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value >= 0):
                raise ConfigError(f"distortion {name} must be a finite number of at least 0; "
                                  f"got {value!r:.40}")
        if self.elastic and self.sigma == 0:
            raise ConfigError("elastic distortions need sigma > 0 (the width of the smoothing, "
                              "in pixels)")
        if self.scale >= 1:
            raise ConfigError(f"distortion scale must be below 1 (a factor within 1 +- scale); "
                              f"got {self.scale}")

    @property
    def affine(self) -> bool:
        return bool(self.rotate or self.scale or self.shear or self.shift)


def epoch_generator(seed: int, epoch: int) -> np.random.Generator:
    """The generator that distorts the images of ``epoch`` (1-based) of a run seeded ``seed``:
    independent of the weights' and the batch order's streams, and of every other epoch's."""
    return np.random.default_rng([_STREAM, seed, epoch])


@functools.lru_cache(maxsize=8)
def gaussian_matrix(side: int, sigma: float) -> np.ndarray:
    """The (side, side) matrix that smooths a line of ``side`` values by a Gaussian of standard
    deviation ``sigma``, values beyond the ends counting as 0: ``G @ u`` equals
    ``scipy.ndimage.gaussian_filter1d(u, sigma, mode="constant")`` (whose kernel is cut at
    4 sigma and normalised to sum 1). Smoothing a field of many images is then two matrix
    products, not a convolution per image."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    distance = j - i
    matrix = np.where(np.abs(distance) <= radius,
                      kernel[np.clip(distance + radius, 0, 2 * radius)], 0.0)
    matrix.setflags(write=False)
    return matrix


def _smoothed(noise: np.ndarray, sigma: float) -> np.ndarray:
    """``noise`` (n, side, side) smoothed along both image axes (G @ noise[k] @ G.T)."""
    n, side, _ = noise.shape
    g = gaussian_matrix(side, sigma)
    # Each axis in turn as one (n * side, side) @ (side, side) product: one BLAS call, where a
    # broadcast (side, side) @ (n, side, side) would make n small ones (7.6 s against 1.2 s
    # for the two fields of 60,000 images, random numbers included).
    rows = (noise.reshape(n * side, side) @ g.T).reshape(n, side, side)  # along x
    columns = np.ascontiguousarray(rows.transpose(0, 2, 1)).reshape(n * side, side) @ g.T
    return columns.reshape(n, side, side).transpose(0, 2, 1)  # along y


def displacement_fields(rng: np.random.Generator, n: int, side: int,
                        distortion: Distortion) -> tuple[np.ndarray, np.ndarray]:
    """``(dy, dx)``, each (n, side, side) float64: for output pixel (y, x) of image k, the
    input is read at (y + dy[k, y, x], x + dx[k, y, x]). Elastic fields are drawn first, then
    the affine maps, in that order, from ``rng``."""
    dy = np.zeros((n, side, side))
    dx = np.zeros((n, side, side))
    if distortion.elastic:
        noise = rng.uniform(-1.0, 1.0, size=(2, n, side, side))
        dy += distortion.alpha * _smoothed(noise[0], distortion.sigma)
        dx += distortion.alpha * _smoothed(noise[1], distortion.sigma)
    if distortion.affine:
        d = distortion
        angle = np.deg2rad(rng.uniform(-d.rotate, d.rotate, n))
        factor = 1.0 + rng.uniform(-d.scale, d.scale, n)
        shear = rng.uniform(-d.shear, d.shear, n)
        shift = rng.uniform(-d.shift, d.shift, (2, n))
        cos, sin = np.cos(angle) / factor, np.sin(angle) / factor
        # where each output pixel reads: center + M (p - center) - shift, M = R(angle) S / factor
        center = (side - 1) / 2
        y, x = np.meshgrid(np.arange(side) - center, np.arange(side) - center, indexing="ij")
        sy = cos[:, None, None] * y - sin[:, None, None] * x
        sx = sin[:, None, None] * y + cos[:, None, None] * x + shear[:, None, None] * y
        dy += sy - y - shift[0][:, None, None]
        dx += sx - x - shift[1][:, None, None]
    return dy, dx


def _scipy_ndimage() -> Any:
    try:
        from scipy import ndimage
    except ImportError:
        raise ConfigError(f"distorting images needs SciPy, which is not installed: "
                          f"{SCIPY_HINT}") from None
    return ndimage


def _square(images: np.ndarray) -> tuple[np.ndarray, int]:
    """(n, side, side) uint8 images and their side, from (n, side * side) or (n, side, side)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ConfigError(f"images to distort must be uint8 pixels; got {images.dtype}")
    if images.ndim == 3 and images.shape[1] == images.shape[2]:
        return images, images.shape[1]
    side = math.isqrt(images.shape[1]) if images.ndim == 2 else 0
    if images.ndim != 2 or side * side != images.shape[1] or side == 0:
        raise ConfigError(f"images to distort must be square, (n, side * side) or (n, side, "
                          f"side); got shape {images.shape}")
    return images.reshape(-1, side, side), side


def warp(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``images`` resampled at their pixels' positions plus ``(dy, dx)`` (from
    :func:`displacement_fields`) by bilinear interpolation, outside the image reading 0;
    rounded to uint8, in the shape given."""
    ndimage = _scipy_ndimage()
    square, side = _square(images)
    grid_y, grid_x = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    out = np.empty(square.shape, np.float64)
    for k in range(len(square)):
        ndimage.map_coordinates(square[k].astype(np.float64),
                                [grid_y + dy[k], grid_x + dx[k]], output=out[k], order=1,
                                mode="grid-constant", cval=0.0)
    np.clip(np.rint(out, out=out), 0, 255, out=out)
    return out.astype(np.uint8).reshape(np.shape(images))


def distort(images: np.ndarray, rng: np.random.Generator, distortion: Distortion) -> np.ndarray:
    """``images`` (uint8, (n, side * side) or (n, side, side)) distorted as ``distortion``
    says, with random numbers from ``rng``; a new uint8 array of the same shape.

    The images are taken :data:`CHUNK` at a time (their fields drawn in that order), so the
    float64 fields never take more than a chunk's worth of memory."""
    square, side = _square(images)
    out = np.empty_like(square)
    for start in range(0, len(square), CHUNK):
        part = square[start:start + CHUNK]
        dy, dx = displacement_fields(rng, len(part), side, distortion)
        out[start:start + CHUNK] = warp(part, dy, dx)
    return out.reshape(np.shape(images))
