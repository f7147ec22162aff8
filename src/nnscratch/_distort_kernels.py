"""The compiled loops behind :mod:`nnscratch.augment`: random fields, smoothing and the warp.

Importing this module imports numba; :mod:`nnscratch.augment` imports it when an image is first
distorted. It is host code that makes training images, not a backend: every backend trains on
what it makes. It is compiled because SciPy's ``map_coordinates`` (one call per image) and a
vectorised NumPy gather each took about 340 ms for 4,096 MNIST digits, where the warp here takes
about 22 ms, and an epoch of 784-800-10 takes about 2.5 s (benchmarks/NOTES.md, "Distortions").

Numerics: the same inputs give the same bits on a given machine, whatever the thread or the
part of the images a call is given. The noise is counter-based (a SplitMix64 hash of a key and
the number of the pixel), so an image's distortion depends only on the key and the image's
index. The smoothing lets LLVM fuse multiplies and adds (``fastmath={"contract"}``, 1.3 times
faster), so on a machine without FMA instructions its last bits, and rarely a rounded pixel,
may differ. Kernels are ``nogil``: the trainer makes the next epoch's images in a Python
thread while the backend trains on the current ones.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TOP24 = np.float32(2.0 ** -23)  # 24 random bits times this: [0, 2)
#: Images whose fields are smoothed together, interleaved so that the innermost loops run over
#: them: a loop over one image's 28 values vectorised badly (8 against 3 us a field).
GROUP = 128


@njit(cache=True, nogil=True, inline="always")
def _number(key, counter):
    """The ``counter``-th number of the stream ``key`` (see :func:`fill_uniform`)."""
    w = key + counter * _GOLDEN
    w = (w ^ (w >> np.uint64(30))) * _MIX1
    w = (w ^ (w >> np.uint64(27))) * _MIX2
    w = w ^ (w >> np.uint64(31))
    # through int32: converting a uint64 to a float is several times slower
    return np.float32(np.int32(w >> np.uint64(40))) * _TOP24 - np.float32(1.0)


@_jit
def fill_uniform(key, first, out):
    """out.flat[j] = the (first + j)-th number of the stream ``key``: SplitMix64 of ``key +
    (first + j)`` golden steps, its top 24 bits as a float32 in [-1, 1), a multiple of 2**-23."""
    flat = out.reshape(out.size)
    for j in range(flat.size):
        flat[j] = _number(key, np.uint64(first + j))


@njit(cache=True, nogil=True, fastmath={"contract"})
def smooth(fields, first, second, radius, scratch, out):
    """out[y, x, b] = (B (F_b A^T))[y, x] for the fields F_b = fields[:, :, b] (side, side, m):
    each field multiplied along x by ``first`` (A), then along y by ``second`` (B), both (side,
    side) and zero beyond ``radius`` of the diagonal. ``scratch`` is like ``out``."""
    side, m = fields.shape[0], fields.shape[2]
    for y in range(side):
        for x in range(side):
            for b in range(m):
                scratch[y, x, b] = 0
            for j in range(max(0, x - radius), min(side, x + radius + 1)):
                g = first[x, j]
                for b in range(m):
                    scratch[y, x, b] += g * fields[y, j, b]
    # along y, each row of all the fields at once: one long loop
    flat_out = out.reshape(side, side * m)
    flat_scratch = scratch.reshape(side, side * m)
    for y in range(side):
        for i in range(side * m):
            flat_out[y, i] = 0
        for j in range(max(0, y - radius), min(side, y + radius + 1)):
            g = second[y, j]
            for i in range(side * m):
                flat_out[y, i] += g * flat_scratch[j, i]


@_jit
def pad_image(image, padded):
    """``image`` (side, side) uint8 into the middle of ``padded`` ((side + 3)^2 float64, zero
    around it: one row and column before, two after)."""
    side = image.shape[0]
    width = side + 3
    for y in range(side):
        for x in range(side):
            padded[(y + 1) * width + x + 1] = image[y, x]


@njit(cache=True, nogil=True, inline="always")
def sample(padded, side, sy, sx):
    """The image in ``padded`` (see :func:`pad_image`) at the real position (sy, sx), by
    bilinear interpolation, pixels outside the image reading 0, as
    ``scipy.ndimage.map_coordinates(order=1, mode="grid-constant")`` computes it; rounded half
    up to a pixel value (0-255, as a float).

    Positions beyond the padding are moved onto it, where every neighbour reads 0, so no
    branch is needed; past -1 the position (plus 1, now at least 0) is truncated, which is
    flooring."""
    width = side + 3
    py = min(max(sy + 1.0, 0.0), side + 1.0)
    px = min(max(sx + 1.0, 0.0), side + 1.0)
    iy = np.intp(py)
    ix = np.intp(px)
    wy = py - iy
    wx = px - ix
    i = iy * width + ix
    value = (1.0 - wy) * (1.0 - wx) * padded[i]
    value += (1.0 - wy) * wx * padded[i + 1]
    value += wy * (1.0 - wx) * padded[i + width]
    value += wy * wx * padded[i + width + 1]
    return min(value + 0.5, 255.0)


@_jit
def warp(images, dy, dx, out):
    """out[k, y, x] = images[k] sampled at (y + dy[k, y, x], x + dx[k, y, x]), rounded."""
    n, side = images.shape[0], images.shape[1]
    padded = np.zeros((side + 3) * (side + 3))
    row = np.empty(side)
    for k in range(n):
        pad_image(images[k], padded)
        for y in range(side):
            for x in range(side):
                row[x] = sample(padded, side, y + dy[k, y, x], x + dx[k, y, x])
            for x in range(side):
                out[k, y, x] = np.uint8(row[x])


@_jit
def uniform_at(key, counter):
    """The ``counter``-th number of the stream ``key``, as a float64."""
    return np.float64(_number(key, np.uint64(counter)))


@_jit
def affine_map(key, index, bounds):
    """(cos, sin, shear, shift y, shift x) of image ``index``: rotation, scale, shear and
    shift each uniform within ``bounds`` (radians, factor, shear factor, pixels) either way,
    from numbers ``5 index`` onwards of the stream ``key``; cos and sin are divided by the
    scale factor."""
    angle = bounds[0] * uniform_at(key, 5 * index)
    factor = 1.0 + bounds[1] * uniform_at(key, 5 * index + 1)
    shear = bounds[2] * uniform_at(key, 5 * index + 2)
    shift_y = bounds[3] * uniform_at(key, 5 * index + 3)
    shift_x = bounds[3] * uniform_at(key, 5 * index + 4)
    return np.cos(angle) / factor, np.sin(angle) / factor, shear, shift_y, shift_x


@_jit
def _group_fields(key, first, smoothing, scaled, radius, grouped, scratch, fields):
    """The elastic fields (2, side, side, m) of images first .. first + m - 1 into ``fields``:
    image i's field f is noise numbers (2 i + f) side^2 onwards, row by row."""
    side, m = grouped.shape[0], grouped.shape[2]
    area = side * side
    for f in range(2):
        for y in range(side):
            for x in range(side):
                base = np.uint64((2 * first + f) * area + y * side + x)
                for b in range(m):  # images side by side: their numbers are 2 side^2 apart
                    grouped[y, x, b] = _number(key, base + np.uint64(2 * area * b))
        smooth(grouped, smoothing, scaled, radius, scratch, fields[f])


@_jit
def distort(images, first, key, smoothing, scaled, radius, affine_key, bounds, out, dy, dx):
    """Distort each image k of ``images`` (n, side, side) uint8 (image ``first + k`` of the
    stream) into ``out``; with ``dy`` and ``dx`` of n images (not 0), write the displacements
    there instead.

    With ``smoothing`` (a Gaussian smoothing's (side, side) matrix G, zero beyond ``radius``;
    empty: no elastic part), the elastic field of image i is two (side, side) fields of uniform
    noise, numbers ``(2 i + f) side^2`` onwards of the stream ``key`` for f = 0 (y) and 1 (x),
    each smoothed along x by G and along y by ``scaled`` (alpha G). With ``bounds`` not all
    zero, output pixel p = c + (yc, xc) (c the centre) also reads at c + (cos yc - sin xc,
    sin yc + cos xc + shear yc) - shift, from :func:`affine_map` of the stream
    ``affine_key``. The two displacements add.
    """
    n, side = images.shape[0], images.shape[1]
    elastic = smoothing.size > 0
    use_affine = bounds[0] != 0 or bounds[1] != 0 or bounds[2] != 0 or bounds[3] != 0
    grouped = np.empty((side, side, GROUP), np.float32)
    scratch = np.empty((side, side, GROUP), np.float32)
    fields = np.zeros((2, side, side, GROUP), np.float32)
    own = np.zeros((2, side, side))  # one image's fields
    padded = np.zeros((side + 3) * (side + 3))
    sy = np.empty(side)
    sx = np.empty(side)
    row = np.empty(side)
    centre = (side - 1) / 2.0
    for start in range(0, n, GROUP):
        m = min(GROUP, n - start)
        if m != grouped.shape[2]:  # the last group is smaller: arrays of its size
            grouped = np.empty((side, side, m), np.float32)
            scratch = np.empty((side, side, m), np.float32)
            fields = np.zeros((2, side, side, m), np.float32)
        if elastic:
            _group_fields(key, first + start, smoothing, scaled, radius, grouped, scratch,
                          fields)
        for b in range(m):
            k = start + b
            for f in range(2):
                for y in range(side):
                    for x in range(side):
                        own[f, y, x] = fields[f, y, x, b]
            if use_affine:
                cos, sin, shear, shift_y, shift_x = affine_map(affine_key, first + k, bounds)
            pad_image(images[k], padded)
            for y in range(side):
                yc = y - centre
                for x in range(side):
                    sy[x] = y + own[0, y, x]
                    sx[x] = x + own[1, y, x]
                if use_affine:
                    for x in range(side):
                        xc = x - centre
                        sy[x] += cos * yc - sin * xc - yc - shift_y
                        sx[x] += sin * yc + cos * xc + shear * yc - xc - shift_x
                if dy.shape[0]:
                    for x in range(side):
                        dy[k, y, x], dx[k, y, x] = sy[x] - y, sx[x] - x
                    continue
                for x in range(side):
                    row[x] = sample(padded, side, sy[x], sx[x])
                for x in range(side):
                    out[k, y, x] = np.uint8(row[x])
