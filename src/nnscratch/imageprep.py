"""Turning a photo or scan of one handwritten digit into the 28x28 input an MNIST model expects.

MNIST's digits were made from scans of black ink on white paper: each was scaled to fit a 20x20
box keeping its aspect ratio (anti-aliased, hence the grey edges), then placed in a 28x28 field
so that its centre of mass falls on the field's centre, as white ink on black. A model trained
on them knows nothing else, so :func:`prepare_digit` repeats those steps on any picture:

1. gray levels (a 16-bit or 32-bit picture rescaled to 0-255, not clipped); a light
   background (judged from the picture's border) is inverted, since MNIST is light ink on black;
2. the background level is subtracted and the ink stretched to full strength, and faint marks
   (below a fifth of the strongest ink, or within the noise seen on the border: paper texture,
   shadows, JPEG noise) are dropped;
3. crop to the ink's bounding box;
4. scale it so that its longer side is 20 pixels, keeping the aspect ratio;
5. place it in 28x28 with its centre of mass on pixel (14, 14), where MNIST's lie (their mean
   is (13.99, 14.01)).

Reading image files needs Pillow (``pip install 'nnscratch[images]'``), which is imported only
when an image is read or written.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._fileio import as_path, open_regular
from .errors import DataError, NNScratchError

__all__ = ["read_digit", "prepare_digit", "read_grayscale", "gray_levels", "save_digit",
           "PILLOW_HINT"]

PILLOW_HINT = "pip install 'nnscratch[images]' (or: pip install pillow)"

SIDE = 28  # the field MNIST digits sit in
BOX = 20  # the box their longer side is scaled to
CENTRE = 14.0  # where their centre of mass lies (row and column, 0-based pixel indices)

# Ink weaker than this fraction of the strongest, or than NOISE_SIGMAS standard deviations of
# the border's noise, is background (paper texture, a shadow, JPEG ringing, sensor noise): left
# in, it would stretch the crop to the whole picture. Measured on 1,000 MNIST test digits
# re-rendered dark on light at 60-200 px: fraction 0.2 costs nothing on clean PNGs and keeps
# JPEGs at their accuracy; without the noise term, noise of 8 (16) gray levels drops the
# accuracy from 96% to 92% (20%); with 6 sigmas, 96% (92%).
NOISE_FLOOR = 0.2
NOISE_SIGMAS = 6.0
# Below this contrast (in gray levels) nothing stands out from the background: no digit.
MIN_CONTRAST = 24.0
# Larger pictures are shrunk first: the result has 400 pixels, and the work should not grow with
# a 12-megapixel photo.
MAX_SIDE = 1000


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise NNScratchError(f"reading images needs Pillow, which is not installed: "
                             f"{PILLOW_HINT}") from None
    return Image


def read_digit(path: str | os.PathLike) -> np.ndarray:
    """The picture at ``path`` prepared as MNIST was (see the module docstring): uint8 (28, 28),
    light ink on black."""
    return prepare_digit(read_grayscale(path), name=str(path))


def read_grayscale(path: str | os.PathLike) -> np.ndarray:
    """The picture at ``path`` (any format Pillow reads) as float32 gray levels 0-255, shape
    (height, width), at most :data:`MAX_SIDE` pixels a side. Transparent parts count as white
    paper; a photo's EXIF orientation is applied. Pictures of more than 8 bits a pixel (16-bit
    PNGs, 32-bit integer or float TIFFs) are rescaled to 0-255, not clipped (see
    :func:`gray_levels`). A folder, a FIFO or a device is refused before anything waits on it."""
    Image = _pillow()
    path = _image_path(path)
    try:
        with warnings.catch_warnings():
            # Pillow only warns about a huge image; a digit never needs one, so refuse it.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path, DataError, "an image") as handle, \
                    Image.open(handle) as image:
                return _gray(image, str(path))
    except NNScratchError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{path} is not an image that Pillow can read (PNG, JPEG, ...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path} is too large an image to be a photo of one digit") from None
    except _DECODING_ERRORS as exc:  # truncated or corrupt image data
        raise DataError(f"{path} cannot be decoded as an image: {_damage(exc)}") from None


def _damage(exc: BaseException) -> str:
    """What a decoder's error says about the picture, in words (Pillow's own name bytes)."""
    words = " ".join(str(exc).split())
    if "not available" in words:  # "decoder jpeg2k not available": a format, not damage
        return f"this Pillow cannot decode its format ({words})"
    if "truncat" in words.lower():
        return "it is cut short"
    return "its data is damaged"


# What Pillow's decoders raise on damaged data, besides their own errors.
_DECODING_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
                    ZeroDivisionError, struct.error, zlib.error)


def _image_path(path: Any) -> Path:
    return as_path(path, DataError, "an image to read")


# Modes of more than 8 bits a pixel: 16-bit gray, 32-bit integers, 32-bit floats.
_WIDE_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _gray(image: Any, name: str) -> np.ndarray:
    """An opened picture as gray levels 0-255, upright and at most MAX_SIDE a side."""
    Image = _pillow()
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    wide = image.mode in _WIDE_MODES
    # Pillow's "L" clips wider values at 255; "F" keeps them, to be rescaled below.
    if not wide:
        gray = _on_white(image, Image).convert("L")
    else:  # 16-bit gray goes to floats by way of 32-bit integers
        gray = (image if image.mode in ("I", "F") else image.convert("I")).convert("F")
    gray.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    levels = np.asarray(gray, dtype=np.float32)
    return gray_levels(levels, image.mode, name) if wide else levels


def gray_levels(values: np.ndarray, mode: str, name: str = "the image") -> np.ndarray:
    """Pixel ``values`` of a picture of Pillow mode ``mode`` ("I;16", "I" or "F") as gray levels
    0-255 (float32), rescaled rather than clipped.

    Values are divided by their type's full scale: 1 for floats in [0, 1], 255 for values that
    fit in 0-255 (an 8-bit picture stored wider), 65535 for 16-bit ones. Values beyond those
    (negative, or past 65535) are stretched from their own lowest to their highest. A full
    scale keeps a faint picture faint, so that one with no digit is still seen to have none.
    """
    finite = np.isfinite(values)
    if not finite.all():
        raise DataError(f"{name} has {np.count_nonzero(~finite)} pixel(s) that are not numbers "
                        f"(NaN or infinite)")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    scales = (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0)
    full = next((scale for scale in scales if low >= 0 and high <= scale), None)
    if full is not None:
        return (values * (255.0 / full)).astype(np.float32)
    if high == low:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) * (255.0 / (high - low))).astype(np.float32)


def _on_white(image: Any, Image: Any) -> Any:
    """``image`` with any transparency composited onto white, as on paper."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)


def prepare_digit(gray: ArrayLike, *, name: str = "the image") -> np.ndarray:
    """Gray levels 0-255 (height, width) of one digit, dark on light or light on dark, made into
    an MNIST input: uint8 (28, 28), light ink on black, fitted into 20x20 and centred by mass.
    ``name`` names the picture in errors."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2:
        raise DataError(f"{name} must be a 2-D array of gray levels (height, width); got shape "
                        f"{gray.shape}")
    if min(gray.shape) < 2:
        height, width = gray.shape  # said as a user sees a picture: width x height
        raise DataError(f"{name} is {width}x{height} pixels: a digit needs at least 2 pixels "
                        f"a side")
    ink = _ink(gray, name)
    rows, cols = np.nonzero(ink)
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return _centre_by_mass(_fit(crop, BOX))


def _ink(gray: np.ndarray, name: str) -> np.ndarray:
    """Ink strength in [0, 1]: 0 for the background, 1 for the strongest strokes."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - background)))  # its std. dev., robustly
    ink = background - gray if background >= 128 else gray - background
    peak = float(ink.max())
    if peak < MIN_CONTRAST + NOISE_SIGMAS * noise:
        raise DataError(f"{name} shows no digit: nothing in it stands out from its background")
    floor = max(NOISE_FLOOR * peak, NOISE_SIGMAS * noise)
    return np.clip((ink - floor) / (peak - floor), 0.0, 1.0)


def _fit(crop: np.ndarray, box: int) -> np.ndarray:
    """``crop`` scaled (anti-aliased) so that its longer side is ``box`` pixels."""
    Image = _pillow()
    height, width = crop.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(crop.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)  # Lanczos overshoots a little


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """``digit`` placed in a black 28x28 field with its centre of mass on pixel (14, 14)."""
    rows, cols = np.indices(digit.shape)
    mass = digit.sum()
    top = int(round(CENTRE - (rows * digit).sum() / mass))
    left = int(round(CENTRE - (cols * digit).sum() / mass))
    field = np.zeros((SIDE, SIDE), dtype=np.float32)
    # Clip the placement to the field: a digit whose mass sits at one end may overhang it.
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + digit.shape[0], SIDE), min(left + digit.shape[1], SIDE)
    field[r0:r1, c0:c1] = digit[r0 - top:r1 - top, c0 - left:c1 - left]
    return np.rint(field * 255).astype(np.uint8)


def save_digit(digit: ArrayLike, path: str | os.PathLike) -> Path:
    """Write a prepared (28, 28) uint8 digit as an image file (format from the suffix)."""
    Image = _pillow()
    path = Path(path)
    try:
        Image.fromarray(np.asarray(digit, dtype=np.uint8)).save(path)
    except ValueError:  # Pillow's "unknown file extension"
        raise NNScratchError(f"cannot write the input image to {path}: its suffix names no image "
                             "format Pillow knows (use .png)") from None
    except OSError as exc:
        raise NNScratchError(f"cannot write the input image to {path} "
                             f"({exc.strerror or exc})") from exc
    return path
