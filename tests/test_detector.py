"""The face detector: BlazeFace decoding on fixtures, then the real network on real photos.
(The page's twin of the decoding is held to the same boxes in tests/test_browser.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ferlive import blazeface as bf


def raw_with(faces) -> np.ndarray:
    """A raw (2304, 17) output where each (row, col, logit, dx, dy, w, h) puts one detection
    at that grid cell; every other anchor is a sure 'no' (logit -10)."""
    raw = np.zeros((bf.GRID * bf.GRID, 17), np.float32)
    raw[:, 0] = -10
    for row, col, logit, dx, dy, w, h in faces:
        raw[row * bf.GRID + col, :5] = (logit, dx, dy, w, h)
    return raw


def test_decode_places_boxes_at_their_anchors():
    boxes, scores = bf.decode(raw_with([(10, 20, 3.0, 0, 0, 48, 48), (40, 5, 1.0, 4, -4, 19.2, 38.4)]))
    assert np.allclose(scores, [1 / (1 + np.exp(-3)), 1 / (1 + np.exp(-1))])  # best first
    # Cell (row 10, col 20): centre ((20.5) / 48, (10.5) / 48), 48 input pixels = 0.25 of the region.
    assert np.allclose(boxes[0], [20.5 / 48 - 0.125, 10.5 / 48 - 0.125, 20.5 / 48 + 0.125, 10.5 / 48 + 0.125])
    cx, cy = 5.5 / 48 + 4 / 192, 40.5 / 48 - 4 / 192
    assert np.allclose(boxes[1], [cx - 0.05, cy - 0.1, cx + 0.05, cy + 0.1])


def test_decode_drops_low_scores_and_survives_huge_logits():
    boxes, scores = bf.decode(raw_with([(0, 0, -0.1, 0, 0, 10, 10), (1, 1, 1e30, 0, 0, 10, 10)]))
    assert len(boxes) == 1 and scores[0] == 1.0


def test_weighted_nms_averages_a_cluster_and_keeps_separate_faces():
    boxes = np.array([[0.10, 0.10, 0.30, 0.30], [0.12, 0.12, 0.32, 0.32], [0.6, 0.6, 0.8, 0.8]])
    scores = np.array([0.9, 0.6, 0.7])
    out, kept = bf.weighted_nms(boxes, scores)
    assert len(out) == 2 and np.allclose(kept, [0.9, 0.7])
    assert np.allclose(out[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5)
    assert np.allclose(out[1], boxes[2])


def test_regions():
    assert bf.letterbox(640, 480) == (0, -80, 640)
    assert bf.tiles(640, 480) == []  # small photos are looked at whole only
    tiles = bf.tiles(2000, 1400)
    assert len(tiles) == 4 and all(side == 1200 for _, _, side in tiles)
    assert {(x, y) for x, y, _ in tiles} == {(0, 0), (800, 0), (0, 200), (800, 200)}  # they cover the photo
    left, top, side = bf.padded(300, 300)
    assert (left, top, side) == (-150, -150, 600)  # the photo sits in the middle half
    assert np.allclose(bf.to_image(np.array([[0.25, 0.25, 0.75, 0.75]]), (left, top, side)), [[0, 0, 300, 300]])
    # crop_and_resize's corners: first and last pixel of a region that starts above the image
    assert np.allclose(bf.crop_boxes([(0, -80, 640)], 640, 480), [[-80 / 479, 0, 559 / 479, 1]])


def test_merge_keeps_one_box_per_face():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 105, 105], [300, 0, 400, 100], [20, 20, 60, 60]], float)
    scores = np.array([0.7, 0.9, 0.8, 0.95])
    # The small box inside the first face has the best score: it stands for that face.
    assert bf.merge(boxes, scores) == [3, 2]


def test_round_box_clips_to_the_image():
    assert bf.round_box(np.array([-10, 5, 50, 70]), 40, 60) == (0, 5, 40, 55)


# The real network, on real photos

@pytest.fixture(scope="module")
def detector():
    from ferlive.detector import FaceDetector

    return FaceDetector()


def load(media, name) -> np.ndarray:
    return np.asarray(Image.open(media / name).convert("RGB"))


def iou(a, b) -> float:
    return float(bf.iou(np.array([a.x, a.y, a.x + a.width, a.y + a.height]),
                        np.array([[b.x, b.y, b.x + b.width, b.y + b.height]]))[0])


@pytest.mark.parametrize("name", ["faceapi_bbt4.jpg", "fr_two_people.jpg"])
def test_mirrored_photo_gives_mirrored_boxes(detector, media, name):
    from ferlive.detector import Detection

    rgb = load(media, name)
    width = rgb.shape[1]
    straight = detector.detect(rgb)
    mirrored = [Detection(width - f.x - f.width, f.y, f.width, f.height, f.score, f.found_by)
                for f in detector.detect(rgb[:, ::-1])]
    assert len(straight) == len(mirrored) >= 2
    for face in straight:
        assert max(iou(face, m) for m in mirrored) >= 0.8


def test_face_that_fills_the_frame_is_found_with_a_border(detector, media):
    rgb = load(media, "faceapi_happy.jpg")
    [face] = detector.detect(rgb)
    # Forehead to chin, ear to ear: the box itself, nothing around it.
    tight = rgb[int(face.y):int(face.y + face.height), int(face.x):int(face.x + face.width)]
    [found] = detector.detect(tight)
    assert found.found_by in ("photo", "padded")
    assert found.width > 0.6 * tight.shape[1]


def test_gray_and_tiny_images(detector):
    assert detector.detect(np.zeros((10, 10), np.uint8)) == []
    assert detector.detect(np.full((1, 1, 3), 255, np.uint8)) == []
    assert detector.detect(np.full((7, 500, 3), 255, np.uint8)) == []


def test_lite_runner_computes_what_the_graph_does():
    import tensorflow as tf

    from ferlive.detector import FACE_OUTPUT, WEIGHTS
    from ferlive.tfjs_graph import LiteRunner, load_graph_model

    graph = load_graph_model(WEIGHTS, FACE_OUTPUT)
    lite = LiteRunner(graph, (bf.INPUT_SIZE, bf.INPUT_SIZE, 3))
    batch = np.random.default_rng(3).uniform(-1, 1, (2, bf.INPUT_SIZE, bf.INPUT_SIZE, 3)).astype(np.float32)
    expected = graph(tf.constant(batch)).numpy()
    assert expected.shape == (2, bf.GRID * bf.GRID, 17)
    assert np.abs(lite(batch) - expected).max() < 1e-3


def test_detect_from_many_threads_at_once(detector, media):
    from concurrent.futures import ThreadPoolExecutor

    photos = [load(media, n) for n in ("faceapi_bbt4.jpg", "fr_two_people.jpg", "faceapi_happy.jpg")] * 4
    alone = [detector.detect(p) for p in photos]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(detector.detect, photos))
    assert together == alone
