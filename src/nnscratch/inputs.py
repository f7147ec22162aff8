"""Checking the images and labels a user hands the model, and turning them into model input.

:func:`as_pixels` and :func:`as_labels` accept what a user is likely to have (nested lists, any
integer or float dtype, one image or many, flat or 28x28) and return C-contiguous arrays the
backends can take as they are; anything else is a :class:`~nnscratch.errors.DataError` of one
sentence. The data readers share the range checks, so a bad label reads the same everywhere.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from .errors import DataError

__all__ = [
    "IMAGE_SIDE",
    "PIXELS",
    "NUM_CLASSES",
    "as_array",
    "as_pixels",
    "as_labels",
    "pixel_width",
    "class_count",
    "label_codes",
    "class_labels",
    "as_features",
    "fit_scaling",
    "scaled_features",
    "apply_scaling",
    "first_bad_label",
    "first_bad_pixel",
]

IMAGE_SIDE = 28
PIXELS = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10

# Float pixels by byte size: float16 is too coarse to compute in, so it becomes float32.
_FLOAT_RESULT = {2: np.dtype(np.float32), 4: np.dtype(np.float32), 8: np.dtype(np.float64)}


def first_bad_label(labels: np.ndarray, classes: int = NUM_CLASSES) -> int | None:
    """Index of the first label outside 0..classes-1 (0..9 for digits), or None."""
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    return int(bad[0]) if bad.size else None


def first_bad_pixel(pixels: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first value outside 0..255 in 2-D ``pixels``, or None."""
    if pixels.dtype == np.uint8:
        return None
    bad = np.argwhere((pixels < 0) | (pixels > 255))
    return (int(bad[0, 0]), int(bad[0, 1])) if len(bad) else None


def as_pixels(x: ArrayLike, width: int = PIXELS) -> np.ndarray:
    """Check images a user gives the model and return them as C-contiguous (n, width) rows.

    Accepts (n, width) rows or one image as (width,), and, when ``width`` is a square (784 is
    28x28), (n, side, side) or one (side, side) image. uint8 is returned as is (possibly sharing
    memory with ``x``); other integers must be 0..255 and become uint8; floats count as already
    scaled, must be finite and in [0, 1], and become float32 (float64 stays).
    """
    arr = as_array(x, "images")
    is_float = arr.dtype.kind == "f" and arr.dtype.itemsize in _FLOAT_RESULT
    if arr.dtype.kind not in "iu" and not is_float:
        raise DataError("images must be uint8, integers in 0..255 or floats in [0, 1]; got "
                        f"dtype {arr.dtype}")
    rows = _pixel_rows(arr, width)
    if arr.dtype == np.uint8:
        return rows
    if arr.dtype.kind in "iu":
        return _integer_pixels(rows)
    return _float_pixels(rows)


def as_array(x: ArrayLike, what: str) -> np.ndarray:
    """``x`` as a NumPy array (not copied when it is one), or a DataError naming ``what``."""
    try:
        arr = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise DataError(f"{what} must be a rectangular array of numbers: its rows have "
                        f"different lengths") from None
    except TypeError:  # objects NumPy cannot make an array of
        raise DataError(f"{what} must be a rectangular array of numbers; got "
                        f"{type(x).__name__}") from None
    if arr.ndim == 0:
        raise DataError(f"{what} must be an array; got a single {type(x).__name__}")
    return arr


def _pixel_rows(arr: np.ndarray, width: int) -> np.ndarray:
    shape, side = arr.shape, math.isqrt(width)
    image = (side, side) if side * side == width else None  # rows may come as square images
    single = shape == (width,) or shape == image
    batch = (arr.ndim == 2 and shape[1] == width) or (
        image is not None and arr.ndim == 3 and shape[1:] == image)
    if not (single or batch):
        square = f" (or be {side}x{side})" if image else ""
        raise DataError(f"images must have {width} pixels per row{square}; got shape {shape}")
    n = 1 if single else shape[0]
    if n == 0:
        raise DataError(f"images must hold at least one image; got shape {shape}")
    return np.ascontiguousarray(arr.reshape(n, width))


def _integer_pixels(rows: np.ndarray) -> np.ndarray:
    low, high = rows.min(), rows.max()
    if low < 0 or high > 255:
        raise DataError(f"integer images must have pixel values in 0..255; got values from "
                        f"{low} to {high}")
    return rows.astype(np.uint8)


def _float_pixels(rows: np.ndarray) -> np.ndarray:
    finite = np.isfinite(rows)
    if not finite.all():
        raise DataError(f"float images must be finite; got {np.count_nonzero(~finite)} NaN or "
                        "infinite values")
    low, high = rows.min(), rows.max()
    if low < 0 or high > 1:
        raise DataError(f"float images must be scaled to [0, 1] (divide 0..255 pixels by 255); "
                        f"got values from {low:g} to {high:g}")
    return rows.astype(_FLOAT_RESULT[rows.dtype.itemsize], copy=False)


def as_labels(y: ArrayLike, n: int, classes: int = NUM_CLASSES) -> np.ndarray:
    """Check labels a user gives the model: class numbers 0..classes-1 (the digits 0..9 by
    default), shape (n,); returned as new int64."""
    arr = as_array(y, "labels")
    if arr.dtype.kind not in "iu":
        raise DataError(f"labels must be integers 0..{classes - 1}; got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise DataError(f"labels must have shape ({n},), one per image; got shape {arr.shape}")
    bad = first_bad_label(arr, classes)
    if bad is not None:
        what = "digits" if classes == NUM_CLASSES else "class numbers"
        raise DataError(f"labels must be {what} 0..{classes - 1}; got {arr[bad]} at index {bad}")
    return arr.astype(np.int64)


def pixel_width(x: ArrayLike) -> int:
    """How many pixels each image of ``x`` has: the width of (n, d) rows, or h * w of (n, h, w)
    images. Training data sets the model's input size with it."""
    shape = as_array(x, "images").shape
    if len(shape) not in (2, 3) or 0 in shape[1:]:
        raise DataError(f"training images must be (n, d) rows or (n, h, w) images; got shape "
                        f"{shape}")
    return math.prod(shape[1:])


def class_count(*labels: ArrayLike) -> int:
    """How many classes labels numbered 0, 1, 2... name: one more than the largest (at least
    2). Training data sets the model's output size with it."""
    largest = -1
    for y in labels:
        arr = as_array(y, "labels")
        if arr.dtype.kind not in "iu":
            raise DataError(f"labels must be class numbers 0, 1, 2...; got dtype {arr.dtype}")
        if arr.size and arr.min() < 0:
            raise DataError(f"labels must be class numbers 0, 1, 2...; got {arr.min()}")
        largest = max(largest, int(arr.max()) if arr.size else -1)
    if largest < 1:
        raise DataError("labels must name at least two classes (0 and 1); "
                        f"the largest is {largest}")
    return largest + 1


def label_codes(y: ArrayLike, n: int, classes: tuple[object, ...]) -> np.ndarray:
    """The class number of each of ``n`` labels ``y``, which must be among ``classes`` (a
    model's labels: strings or integers); new int64 (n,)."""
    arr = as_array(y, "labels")
    if arr.shape != (n,):
        raise DataError(f"labels must have shape ({n},), one per image; got shape {arr.shape}")
    number = {label: code for code, label in enumerate(classes)}
    codes = np.empty(n, dtype=np.int64)
    for i, label in enumerate(arr.tolist()):
        code = number.get(label)
        if code is None or isinstance(label, bool):
            shown = ", ".join(map(repr, classes[:5])) + (", ..." if len(classes) > 5 else "")
            raise DataError(f"labels must be the model's classes ({shown}); got {label!r} at "
                            f"index {i}")
        codes[i] = code
    return codes


def class_labels(codes: np.ndarray, classes: tuple[object, ...]) -> np.ndarray:
    """The labels of class numbers ``codes``: a host array of strings or integers."""
    return np.asarray(classes)[codes]


def as_features(x: ArrayLike, width: int) -> np.ndarray:
    """Check numeric features a user gives the model: (n, width) rows or one row of ``width``
    finite numbers; returned as new float64 rows (never ``x`` itself)."""
    arr = as_array(x, "features")
    if arr.dtype.kind not in "iuf":
        raise DataError(f"features must be numbers; got dtype {arr.dtype}")
    if arr.shape == (width,):
        arr = arr.reshape(1, width)
    if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] == 0:
        raise DataError(f"features must be rows of {width} numbers; got shape {arr.shape}")
    rows = np.array(arr, dtype=np.float64, order="C")  # a copy: scaling works in place on it
    bad = np.argwhere(~np.isfinite(rows))
    if len(bad):
        raise DataError(f"features must be finite; got {rows[tuple(bad[0])]} in row "
                        f"{bad[0][0]}, column {bad[0][1]}")
    return rows


def fit_scaling(features: np.ndarray, scaling: str) -> dict[str, object]:
    """What a model keeps to prepare features like its training set's ``features``: for
    ``"standardize"`` each column's mean and spread (a constant column keeps spread 1, so it
    becomes 0 rather than a division by zero); for ``"none"``, nothing."""
    if scaling == "none":
        return {"scaling": "none"}
    spread = features.std(axis=0)
    spread[spread == 0] = 1.0
    return {"scaling": "standardize", "mean": features.mean(axis=0).tolist(),
            "scale": spread.tolist()}


def scaled_features(x: ArrayLike, inputs: dict[str, object], width: int) -> np.ndarray:
    """Features ``x`` prepared as described by ``inputs`` (from :func:`fit_scaling`)."""
    return apply_scaling(as_features(x, width), inputs)


def apply_scaling(rows: np.ndarray, inputs: dict[str, object]) -> np.ndarray:
    """In place on float64 ``rows`` already checked by :func:`as_features`: the scaling that
    ``inputs`` describes; returns ``rows``."""
    if inputs["scaling"] == "standardize":
        rows -= np.asarray(inputs["mean"])
        rows /= np.asarray(inputs["scale"])
    return rows
