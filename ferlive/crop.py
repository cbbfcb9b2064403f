"""Face box -> 48x48 gray model input, the one definition the Python side uses.

web/js/crop.js is its twin for the page; tests/test_crop_parity.py holds the two to the
same pixels. FER2013 faces are square and framed tightly around brows, eyes, mouth and
chin, so a detector's box is made square about its centre and grown by `margin` (a
fraction of its side) before resizing. bench/crop_margin.py measures the margin.
"""

from __future__ import annotations

import numpy as np

INPUT_SIZE = 48
DEFAULT_MARGIN = 0.1  # bench/crop_margin.py: BlazeFace boxes need +0.11 to cover a FER crop; best on real photos


def square_box(box, image_shape, margin: float = DEFAULT_MARGIN) -> tuple[float, float, float]:
    """(x, y, w, h) -> (left, top, side): a square about the box's centre, grown by
    `margin`, then shifted (and if need be shrunk) to lie inside the image, so no crop
    ever samples outside it."""
    x, y, w, h = box
    height, width = image_shape[:2]
    side = min(max(w, h) * (1 + margin), width, height)
    left = min(max(x + w / 2 - side / 2, 0), width - side)
    top = min(max(y + h / 2 - side / 2, 0), height - side)
    return left, top, side


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's convert('L') and the page both compute it."""
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    rgb = rgb[..., :3].astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


SUPERSAMPLE = 4  # sample 4x finer, then average 4x4 blocks: a cheap anti-aliased downscale


def crop_face(gray: np.ndarray, box, margin: float = DEFAULT_MARGIN, size: int = INPUT_SIZE) -> np.ndarray:
    """Crop a square around `box` from a float gray image and shrink it to size x size.

    Bilinear sampling on a grid SUPERSAMPLE times finer than the output, then the mean of each SUPERSAMPLE^2 block. This is what
    tf.image.cropAndResize followed by tf.avgPool computes in the page, so both sides
    feed the model the same numbers. Returns float32 values 0-255, shape (size, size, 1).
    """
    left, top, side = square_box(box, gray.shape, margin)
    h, w = gray.shape
    n = size * SUPERSAMPLE
    # cropAndResize places n samples from the box's first to its last pixel.
    step = (side - 1) / (n - 1)
    ys = np.clip(top + np.arange(n) * step, 0, h - 1)  # clip only guards float round-off
    xs = np.clip(left + np.arange(n) * step, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    upper = gray[y0][:, x0] * (1 - fx) + gray[y0][:, x1] * fx
    lower = gray[y1][:, x0] * (1 - fx) + gray[y1][:, x1] * fx
    fine = upper * (1 - fy) + lower * fy
    coarse = fine.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return coarse.astype(np.float32)[..., None]
