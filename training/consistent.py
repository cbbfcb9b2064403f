"""Consistent distillation at the cost of fixed targets: the teachers answer once, offline, on
a fixed set of augmented copies of every Train face, and the student trains on those very copies.

With `--teacher` alone the teachers answer on the plain face while the student sees a shifted,
rotated, flipped, cut-out version of it, so the target describes a picture the student never
sees ("fixed teacher" in Beyer et al. 2022, "Knowledge distillation: a good teacher is patient
and consistent"; it did worst there). Answering on the student's own crop ("consistent") did
best, but running three teachers on every batch would double an epoch on this CPU. FKD (Shen &
Xing 2022) keeps the benefit offline: store the teacher's answers on pre-drawn crops and
replay them. Here: `copies` augmented versions of each face, drawn with numpy and OpenCV from
the run's seed (so any machine redraws the same pixels and reuses the committed answers), the
geometry and cut-out of `training.augment` mirrored; the photometric changes (tone, blur,
noise), which barely move a teacher's answer, stay on the fly in the student's augmentation.
"""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np

SIZE = 48


def copy_parameters(count: int, copies: int, seed: int) -> dict[str, np.ndarray]:
    """Per face and copy: flip, rotation, shift, zoom and a cut-out box, like
    training.augment.create_augmentation at strength 1. Copy 0 is the plain face."""
    rng = np.random.default_rng([seed, 20261202])
    shape = (count, copies)
    params = {
        "flip": rng.random(shape) < 0.5,
        "degrees": rng.uniform(-0.03 * 360, 0.03 * 360, shape),  # RandomRotation(0.03): a fraction of a turn
        "dx": rng.uniform(-0.1, 0.1, shape) * SIZE,  # RandomTranslation(0.1, 0.1)
        "dy": rng.uniform(-0.1, 0.1, shape) * SIZE,
        "scale": 1.0 - rng.uniform(-0.15, 0.1, shape),  # RandomZoom((-0.15, 0.1)): negative zooms in
        "erase": rng.random(shape) < 0.5,  # RandomErasing(factor=0.5, scale=(0.02, 0.15))
        "erase_area": rng.uniform(0.02, 0.15, shape),
        "erase_ratio": np.exp(rng.uniform(math.log(0.3), math.log(3.3), shape)),
        "erase_x": rng.random(shape),
        "erase_y": rng.random(shape),
        "erase_value": rng.integers(0, 256, shape),
    }
    for key, plain in (("flip", False), ("degrees", 0.0), ("dx", 0.0), ("dy", 0.0), ("scale", 1.0), ("erase", False)):
        params[key][:, 0] = plain
    return params


def draw_copies(images: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """uint8 (faces, copies, 48, 48, 1): the augmented copies of `images` (faces, 48, 48, 1)."""
    p = copy_parameters(len(images), copies, seed)
    out = np.empty((len(images), copies, SIZE, SIZE, 1), np.uint8)
    centre = ((SIZE - 1) / 2, (SIZE - 1) / 2)
    for i, face in enumerate(np.clip(np.rint(images[..., 0]), 0, 255).astype(np.uint8)):
        for k in range(copies):
            src = face[:, ::-1] if p["flip"][i, k] else face
            matrix = cv2.getRotationMatrix2D(centre, float(p["degrees"][i, k]), float(p["scale"][i, k]))
            matrix[:, 2] += (p["dx"][i, k], p["dy"][i, k])
            copy = cv2.warpAffine(np.ascontiguousarray(src), matrix, (SIZE, SIZE),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            if p["erase"][i, k]:
                area = p["erase_area"][i, k] * SIZE * SIZE
                h = int(min(SIZE, max(1, round(math.sqrt(area * p["erase_ratio"][i, k])))))
                w = int(min(SIZE, max(1, round(math.sqrt(area / p["erase_ratio"][i, k])))))
                y, x = int(p["erase_y"][i, k] * (SIZE - h + 1)), int(p["erase_x"][i, k] * (SIZE - w + 1))
                copy[y:y + h, x:x + w] = p["erase_value"][i, k]
            out[i, k, :, :, 0] = copy
    return out


def fingerprint(copies: np.ndarray) -> str:
    """Names the exact pixels, so answers cached for other copies are never reused."""
    return hashlib.sha256(np.ascontiguousarray(copies).tobytes()).hexdigest()[:16]


def copy_choice(count: int, copies: int, seed: int, epoch: int) -> np.ndarray:
    """Which copy of each face the student sees in this epoch, fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 7]).integers(copies, size=count)
