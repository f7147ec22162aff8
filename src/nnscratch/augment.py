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
any others, so every backend trains on exactly the same pixels. The random numbers come from a
``key``: image i's distortion depends only on the key and i (the noise is counter-based), so
images can be distorted in any order or in parts. :func:`epoch_key` gives the key of an epoch of
a training run, drawn from the run's seed and the epoch number alone, so a resumed run distorts
its images as the uninterrupted one did; :class:`EpochImages` makes the next epoch's images in a
background thread while the current epoch trains.

The loops are compiled with Numba (``pip install "nnscratch[augment]"``), imported when an image
is first distorted: SciPy's ``map_coordinates`` was 9 times slower (benchmarks/NOTES.md), and is
the oracle the tests compare the warp with.
"""

from __future__ import annotations

import contextlib
import functools
import math
from contextlib import AbstractContextManager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["Distortion", "ELASTIC_ALPHA", "ELASTIC_SIGMA", "AFFINE_BOUNDS", "epoch_key",
           "displacement_fields", "warp", "distort", "gaussian_matrix", "EpochImages",
           "AUGMENT_HINT"]

#: The paper's values for MNIST: a displacement of up to about alpha times the smoothed noise,
#: whose features are about sigma pixels wide.
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0
#: Default affine bounds: rotation (degrees), scale, shear, shift (pixels), each either way.
AFFINE_BOUNDS = (15.0, 0.15, 0.15, 2.0)
AUGMENT_HINT = 'pip install "nnscratch[augment]"'
# The stream of random numbers for distortions, apart from the weights' and the batch order's:
# mixed with the run's seed and the epoch number (numpy.random.SeedSequence's entropy).
_STREAM = 0x5173A4D
# The affine maps' stream: the elastic key with these bits flipped.
_AFFINE_STREAM = 0xA0F1_4E5E_ED5A_1234


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

    @classmethod
    def from_settings(cls, settings: Any) -> Distortion | None:
        """The distortion a :class:`~nnscratch.TrainSettings` (or its JSON record) asks for
        (its ``augment``, ``elastic_*`` and ``affine``); None without ``augment``."""
        get = settings.get if isinstance(settings, dict) else functools.partial(getattr,
                                                                                settings)
        augment = get("augment")
        if augment is None:
            return None
        kinds = augment.split("+")
        rotate, scale, shear, shift = get("affine") if "affine" in kinds else (0, 0, 0, 0)
        return cls(elastic="elastic" in kinds, alpha=float(get("elastic_alpha")),
                   sigma=float(get("elastic_sigma")), rotate=float(rotate),
                   scale=float(scale), shear=float(shear), shift=float(shift))


def epoch_key(seed: int, epoch: int) -> int:
    """The key that distorts the images of ``epoch`` (1-based) of a run seeded ``seed``:
    independent of the weights' and the batch order's streams, and of every other epoch's."""
    return int(np.random.default_rng([_STREAM, seed, epoch]).integers(
        0, 2 ** 64, dtype=np.uint64))


@functools.lru_cache(maxsize=8)
def gaussian_matrix(side: int, sigma: float) -> np.ndarray:
    """The (side, side) matrix that smooths a line of ``side`` values by a Gaussian of standard
    deviation ``sigma``, values beyond the ends counting as 0: ``G @ u`` equals
    ``scipy.ndimage.gaussian_filter1d(u, sigma, mode="constant")`` (whose kernel is cut at
    4 sigma and normalised to sum 1). A field F is smoothed as G F G^T."""
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


@functools.lru_cache(maxsize=1)
def _kernels() -> ModuleType:
    try:
        from . import _distort_kernels
    except ImportError as exc:
        if getattr(exc, "name", None) not in ("numba", "llvmlite"):
            raise
        raise ConfigError(f"distorting images needs Numba, which is not installed: "
                          f"{AUGMENT_HINT}") from None
    return _distort_kernels


def _square(images: np.ndarray) -> tuple[np.ndarray, int]:
    """(n, side, side) uint8 images and their side, from (n, side * side) or (n, side, side)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ConfigError(f"images to distort must be uint8 pixels; got {images.dtype}")
    if images.ndim == 3 and images.shape[1] == images.shape[2] and images.shape[1] > 0:
        return np.ascontiguousarray(images), images.shape[1]
    side = math.isqrt(images.shape[1]) if images.ndim == 2 else 0
    if images.ndim != 2 or side * side != images.shape[1] or side == 0:
        raise ConfigError(f"images to distort must be square, (n, side * side) or (n, side, "
                          f"side); got shape {images.shape}")
    return np.ascontiguousarray(images).reshape(-1, side, side), side


def _run(images: np.ndarray, key: int, distortion: Distortion, first: int,
         fields: bool) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray | None]:
    square, side = _square(images)
    if first < 0:
        raise ConfigError(f"the first image's number must be at least 0; got {first}")
    k = _kernels()
    d = distortion
    empty = np.zeros((0, 0), np.float32)
    smoothing, scaled, radius = empty, empty, 0
    if d.elastic:
        g = gaussian_matrix(side, d.sigma)
        smoothing, scaled = g.astype(np.float32), (d.alpha * g).astype(np.float32)
        radius = min(int(4.0 * d.sigma + 0.5), side)
    bounds = np.array([math.radians(d.rotate), d.scale, d.shear, d.shift])
    out = np.empty_like(square)
    n = len(square) if fields else 0
    dy, dx = np.empty((n, side, side)), np.empty((n, side, side))
    key = np.uint64(key)
    k.distort(square, first, key, smoothing, scaled, radius, key ^ np.uint64(_AFFINE_STREAM),
              bounds, out, dy, dx)
    return out, side, (dy if fields else None), (dx if fields else None)


def displacement_fields(images: np.ndarray, key: int, distortion: Distortion, *,
                        first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(dy, dx)``, each (n, side, side) float64: where :func:`distort` reads output pixel
    (y, x) of image k, (y + dy[k, y, x], x + dx[k, y, x]) (the images give only n and side)."""
    _, _, dy, dx = _run(images, key, distortion, first, fields=True)
    return dy, dx


def warp(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``images`` resampled at their pixels' positions plus ``(dy, dx)`` by bilinear
    interpolation, outside the image reading 0; rounded (half up) to uint8, in the shape
    given. Pixel for pixel what ``scipy.ndimage.map_coordinates(order=1,
    mode="grid-constant")`` gives, rounded."""
    square, side = _square(images)
    shape = square.shape
    dy = np.ascontiguousarray(np.broadcast_to(dy, shape), dtype=np.float64)
    dx = np.ascontiguousarray(np.broadcast_to(dx, shape), dtype=np.float64)
    out = np.empty_like(square)
    _kernels().warp(square, dy, dx, out)
    return out.reshape(np.shape(images))


def distort(images: np.ndarray, key: int, distortion: Distortion, *,
            first: int = 0) -> np.ndarray:
    """``images`` (uint8, (n, side * side) or (n, side, side)) distorted as ``distortion``
    says with the random numbers of ``key``, the first being image number ``first`` of the
    stream; a new uint8 array of the same shape."""
    out, _, _, _ = _run(images, key, distortion, first, fields=False)
    return out.reshape(np.shape(images))


class EpochImages:
    """The distorted training images of each epoch of a run: :meth:`get` returns epoch
    ``epoch``'s and starts making the next one's in a background thread (the kernels release
    the GIL), up to ``last``. The images of an epoch depend only on ``seed`` and the epoch."""

    def __init__(self, images: np.ndarray, distortion: Distortion, seed: int,
                 last: int | None = None) -> None:
        _square(images)  # refused now, not in the background
        _kernels()
        self.images, self.distortion, self.seed, self.last = images, distortion, seed, last
        self._pool: ThreadPoolExecutor | None = None
        self._next: tuple[int, Future[np.ndarray]] | None = None
        self._blas: Any = None  # threadpoolctl's BLAS libraries, found when first needed

    def make(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s images, made now in this thread."""
        return distort(self.images, epoch_key(self.seed, epoch), self.distortion)

    def get(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s images (waiting for them if they are being made); then the next
        epoch's are started in the background, unless ``epoch`` is the last."""
        ahead, self._next = self._next, None
        images = (ahead[1].result() if ahead is not None and ahead[0] == epoch
                  else self.make(epoch))
        if self.last is None or epoch < self.last:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="nnscratch-augment")
            self._next = (epoch + 1, self._pool.submit(self.make, epoch + 1))
        return images

    def cores_shared(self) -> AbstractContextManager[Any]:
        """A context for training an epoch on the host's cores while the next epoch's images
        are being made: BLAS runs on one thread fewer than it would (at least one), its count
        put back on leaving; when no next epoch's images were started, or with one BLAS
        thread, it changes nothing. Whether the images are finished yet does not matter: the
        thread count, and with it the training's bits, depends on the epoch alone.

        The trainer holds it for the first :data:`~nnscratch.trainer.SHARED_PART` of an
        epoch's steps. Two-core measurement (benchmarks/augment_overhead.py, 784-800-10, batch
        128): training beside the distortions with BLAS's two threads made an epoch 1.35 times
        as long, its threads waiting for each other whenever the distortions held a core."""
        if self._next is None:
            return contextlib.nullcontext()
        if self._blas is None:
            from threadpoolctl import ThreadpoolController

            self._blas = ThreadpoolController().select(user_api="blas")
        threads = max((lib.num_threads for lib in self._blas.lib_controllers), default=1)
        if threads <= 1:
            return contextlib.nullcontext()
        return self._blas.limit(limits=threads - 1)

    def close(self) -> None:
        """Stop making images ahead (one being made is finished first)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._next = None, None
