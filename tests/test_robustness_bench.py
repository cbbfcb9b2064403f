"""bench/robustness.py alters faces the way its names say (the bench's figures depend on it)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import robustness  # noqa: E402


def square(side=24):
    img = np.zeros((48, 48), np.float32)
    lo = (48 - side) // 2
    img[lo:lo + side, lo:lo + side] = 200
    return img


def bright_side(img):
    rows, cols = np.nonzero(img > 100)
    return cols.max() - cols.min() + 1, (cols.mean(), rows.mean())


def test_every_condition_keeps_the_face_shape_and_range():
    rng = np.random.default_rng(1)
    face = rng.uniform(0, 255, (48, 48)).astype(np.float32)
    for name, alter in robustness.conditions(seed=0).items():
        out = np.clip(alter(face.copy()), 0, 255)
        assert out.shape == (48, 48), name
        assert np.isfinite(out).all(), name
    assert np.array_equal(robustness.conditions(0)["clean"](face), face)


def test_framing_scales_and_moves_the_face():
    rng = np.random.default_rng(0)
    face = square(24)
    assert np.allclose(robustness.framing(1.0, 0.0, rng)(face), face, atol=1e-3)
    side, centre = bright_side(robustness.framing(2.0, 0.0, rng)(face))  # a box twice as wide: half the face
    assert side == pytest.approx(12, abs=1)
    assert centre == pytest.approx((23.5, 23.5), abs=0.6)
    moved = [bright_side(robustness.framing(1.0, 0.1, rng)(face))[1] for _ in range(20)]
    shifts = np.abs(np.array(moved) - 23.5)
    assert shifts.max() <= 0.1 * 48 + 0.5 and shifts.max() > 1


def test_tone_blur_and_compression_do_what_they_say():
    rng = np.random.default_rng(0)
    grey = np.full((48, 48), 128, np.float32)
    assert robustness.gamma(2.0)(grey).mean() < 70 < 180 < robustness.gamma(0.5)(grey).mean()
    dim = robustness.low_light(0.25, 3.0, rng)(grey)
    assert 28 < dim.mean() < 36 and dim.std() > 1
    boosted = robustness.low_light(0.25, 3.0, rng, exposure=4.0)(grey)
    assert 115 < boosted.mean() < 140 and boosted.std() > 4 * 0.9 * dim.std() * 0.9
    face = square(24)
    soft = robustness.blur(1.5)(face)                      # the square spans pixels 12-35
    assert soft[24, 24] == pytest.approx(200, abs=1) and 0 < soft[24, 11] < soft[24, 12] < 200
    squeezed = robustness.jpeg(10)(face)
    assert 0 < np.abs(squeezed - face).mean() < 30
    assert np.abs(robustness.small(20)(face) - face).mean() > 1
