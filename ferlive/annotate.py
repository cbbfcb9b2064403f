"""Draw boxes and labels on an image, like the original upload endpoint did."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ferlive.pipeline import Result

COLOURS = {"neutral": "#9e9e9e", "happiness": "#ffca28", "surprise": "#26c6da", "sadness": "#42a5f5",
           "anger": "#ef5350", "disgust": "#66bb6a", "fear": "#ab47bc", "contempt": "#8d6e63"}


def annotate(rgb: np.ndarray, result: Result) -> Image.Image:
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    line = max(2, round(min(im.size) / 250))
    font = ImageFont.load_default(size=max(12, round(min(im.size) / 30)))
    for face in result.faces:
        b = face.box
        colour = COLOURS.get(face.emotion, "#ffffff")
        x0, y0, x1, y1 = b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=line)
        label = f"{face.emotion} {face.confidence:.0%}"
        tx0, ty0, tx1, ty1 = draw.textbbox((x0, y0), label, font=font)
        ty = y0 - (ty1 - ty0) - 2 * line if y0 - (ty1 - ty0) - 2 * line >= 0 else y1
        draw.rectangle([x0, ty, x0 + (tx1 - tx0) + 2 * line, ty + (ty1 - ty0) + 2 * line], fill=colour)
        draw.text((x0 + line, ty + line - (ty0 - y0)), label, fill="black", font=font)
    return im


def encode(im: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()
