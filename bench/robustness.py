"""How FER+ accuracy holds up when faces arrive the way cameras and detectors deliver them.

    python bench/robustness.py models/fernet/model.keras [runs/pagenet/model.keras ...] [--images 3199]

Each FER+ Valid face (FER+ majority protocol) is altered once per condition, with OpenCV and
numpy rather than the Keras layers training uses, so the bench does not grade the
augmentation by its own yardstick: the detector's framing (box scale and offset jitter),
tone (gamma, contrast, low light with sensor noise), blur, JPEG, rotation, and a face seen
small (48 -> 20 -> 48 px). Prints accuracy and mean class recall per condition and the drop
from the clean images. Valid only: models are chosen on it, Test is never read.
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from training.data import default_data_dir, load_ferplus, protocol_labels  # noqa: E402
from training.evaluate import predict, summarise  # noqa: E402

SIZE = 48


CENTRE = (SIZE - 1) / 2


def _warp(img, matrix, inverse=False):
    flags = cv2.INTER_LINEAR | (cv2.WARP_INVERSE_MAP if inverse else 0)
    return cv2.warpAffine(img, matrix, (SIZE, SIZE), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def framing(scale, shift, rng):
    """A detector's box: `scale` > 1 frames more than FER's crop (the face looks smaller), < 1
    cuts into it; the centre moves by up to `shift` of the side in x and y, at random per image.
    Outside FER's 48 px the edge pixels are repeated (the crop has no more context)."""
    def apply(img):
        dx, dy = rng.uniform(-shift, shift, 2) * SIZE
        s = scale if np.isscalar(scale) else rng.uniform(*scale)
        # output pixel p samples the input at centre + offset + (p - centre) * s
        matrix = np.array([[s, 0, CENTRE + dx - CENTRE * s], [0, s, CENTRE + dy - CENTRE * s]])
        return _warp(img, matrix, inverse=True)
    return apply


def rotation(degrees, rng):
    def apply(img):
        angle = degrees * rng.choice([-1, 1])
        return _warp(img, cv2.getRotationMatrix2D((CENTRE, CENTRE), angle, 1))
    return apply


def gamma(g):
    return lambda img: 255 * (img / 255) ** g


def contrast(factor):
    return lambda img: img.mean() + (img - img.mean()) * factor


def low_light(gain, noise, rng, exposure=1.0, face_px=96):
    """A dim room, seen by a camera where the face is `face_px` wide: the signal scaled down,
    sensor noise and 8-bit quantisation at that size; `exposure` is the gain a phone's auto
    exposure then applies (amplifying noise and banding alike); the crop shrinks it to 48."""
    def apply(img):
        big = cv2.resize(img, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        dim = np.round(np.clip(big * gain + rng.normal(0, noise, big.shape), 0, 255)) * exposure
        return cv2.resize(dim.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return apply


def blur(sigma):
    return lambda img: cv2.GaussianBlur(img, (0, 0), sigma)


def jpeg(quality, face_px=96):
    """The photo was a JPEG with the face `face_px` wide; the crop shrinks it back to 48."""
    def apply(img):
        big = cv2.resize(img, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        ok, data = cv2.imencode(".jpg", np.clip(big, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.resize(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE).astype(np.float32), (SIZE, SIZE),
                          interpolation=cv2.INTER_AREA)
    return apply


def small(side):
    def apply(img):
        tiny = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.resize(tiny, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    return apply


def conditions(seed):
    rng = np.random.default_rng(seed)
    return {
        "clean": lambda img: img,
        "box 15% wider": framing(1.15, 0.0, rng),
        "box 10% tighter": framing(0.9, 0.0, rng),
        "box offset up to 10%": framing(1.0, 0.1, rng),
        "box jitter (scale 0.9-1.2, offset 8%)": framing((0.9, 1.2), 0.08, rng),
        "gamma 0.5 (bright)": gamma(0.5),
        "gamma 2.0 (dark)": gamma(2.0),
        "contrast x0.5": contrast(0.5),
        "low light (x0.25, noise 3, 96 px face)": low_light(0.25, 3.0, rng),
        "the same, auto exposure x4": low_light(0.25, 3.0, rng, exposure=4.0),
        "blur sigma 1": blur(1.0),
        "blur sigma 1.5": blur(1.5),
        "JPEG quality 30 (96 px face)": jpeg(30),
        "JPEG quality 10 (96 px face)": jpeg(10),
        "rotation 15 deg": rotation(15, rng),
        "seen at 20 px": small(20),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help=".keras models")
    ap.add_argument("--images", type=int, default=0, help="first N Valid faces (0: all)")
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from training.models import load_model

    valid = load_ferplus(args.data)["valid"]
    mask, labels = protocol_labels(valid.votes, "ferplus_majority")
    images = valid.images[mask].astype(np.float32)
    if args.images:
        images, labels = images[:args.images], labels[:args.images]
    altered = {name: np.stack([np.clip(f(img[..., 0]), 0, 255) for img in images])[..., None].astype(np.float32)
               for name, f in conditions(args.seed).items()}

    models = {path: load_model(path) for path in args.models}
    print(f"FER+ Valid, FER+ majority protocol, {len(labels)} faces; accuracy / mean class recall (drop from clean)")
    print(f"{'condition':<40}" + "".join(f"{p:>36}" for p in models))
    clean = {}
    for name, batch in altered.items():
        row = f"{name:<40}"
        for path, model in models.items():
            s = summarise(labels, predict(model, batch).argmax(1))
            acc, mcr = s["accuracy"], s["mean_class_recall"]
            clean.setdefault(path, (acc, mcr))
            row += f"{acc:>14.4f} / {mcr:.3f} ({acc - clean[path][0]:+.3f})"
        print(row)


if __name__ == "__main__":
    main()
