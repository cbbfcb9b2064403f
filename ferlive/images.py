"""Decoding untrusted image bytes: in memory, bounded, with clear errors."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = int(os.environ.get("FERLIVE_MAX_PIXELS", 40_000_000))  # a 40 MP photo is fine, a bomb is not
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


class BadImage(ValueError):
    """The bytes are not an image we can read; the message says why."""


class ImageTooLarge(BadImage):
    """The image's dimensions are over the pixel limit (or a decompression bomb)."""


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Bytes -> RGB uint8 array (h, w, 3), EXIF orientation applied (phone photos)."""
    if not data:
        raise BadImage("empty image: the upload has no bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageTooLarge(f"image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}")
                im.load()  # truncated files fail here, not later
                im = ImageOps.exif_transpose(im)
                return np.asarray(im.convert("RGB"))
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"image dimensions are too large: {e}") from None
    except UnidentifiedImageError:
        raise BadImage(f"not an image in a supported format ({', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"cannot decode the image, it may be truncated or corrupt: {e}") from None
