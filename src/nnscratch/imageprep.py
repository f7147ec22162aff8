"""Turning a photo or scan of one handwritten digit into the 28x28 input an MNIST model expects.

MNIST's digits were made from scans of black ink on white paper: each was scaled to fit a 20x20
box keeping its aspect ratio (anti-aliased, hence the grey edges), then placed in a 28x28 field
so that its centre of mass falls on the field's centre, as white ink on black. A model trained
on them knows nothing else, so :func:`prepare_digit` repeats those steps on any picture:

1. gray levels; a light background (judged from the picture's border) is inverted, since MNIST
   is light ink on black;
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
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import DataError, NNScratchError

__all__ = ["read_digit", "prepare_digit", "read_grayscale", "save_digit", "PILLOW_HINT"]

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
    paper; a photo's EXIF orientation is applied."""
    Image = _pillow()
    from PIL import ImageOps

    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow only warns about a huge image; a digit never needs one, so refuse it.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = ImageOps.exif_transpose(image)
                gray = _on_white(image, Image).convert("L")
                gray.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
                return np.asarray(gray, dtype=np.float32)
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an image") from None
    except Image.UnidentifiedImageError:
        raise DataError(f"{path} is not an image that Pillow can read (PNG, JPEG, ...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path} is too large an image to be a photo of one digit") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt image data
        raise DataError(f"{path} cannot be decoded as an image "
                        f"({' '.join(str(exc).split())})") from exc


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
    if gray.ndim != 2 or min(gray.shape) < 2:
        raise DataError(f"{name} must be a 2-D picture at least 2 pixels a side; got shape "
                        f"{gray.shape}")
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
