"""BlazeFace (MediaPipe's full-range face detector): where to look, and what its output means.

Pure numpy, no model: web/js/blazeface.js is its twin for the page and tests/test_detector.py
holds the two to the same boxes on the same raw outputs. The constants are MediaPipe's
(mediapipe/modules/face_detection/face_detection_full_range.pbtxt): a 192x192 input in
[-1, 1], one anchor per cell of a 48x48 grid, 16 regressors per anchor (box centre and
size, then six keypoints) in input pixels, a logit score, and weighted non-max suppression.

A region is a square (left, top, side) in image pixels that is resized to the input;
it may reach past the image, where the input is black (crop_and_resize's extrapolation).
"""

from __future__ import annotations

import numpy as np

INPUT_SIZE = 192
GRID = 48               # 192 / stride 4
MIN_SCORE = 0.5         # MediaPipe uses 0.5 for short range; 0.5 keeps bbt2's half-hidden face (0.62)
MIN_IMAGE_SIDE = 8      # smaller images hold no face anyone could read (and break the resize)
NMS_IOU = 0.3           # MediaPipe's min_suppression_threshold
MAX_SIDE = 1600         # larger photos are shrunk to this first (as the page does): faces stay findable
TILE_ABOVE = 1024       # photos whose longer side exceeds this also get a tiled pass (small faces)
TILE_FRACTION = 0.6     # each tile's side, as a fraction of the photo's longer side
CLOSE_UP = 2.5          # a close-up's side, in face sides: where a tile's face is confirmed
PAD_FACTOR = 2.0        # the padded pass's side, in photo sides: a frame-filling face becomes half of it


def anchors() -> np.ndarray:
    """(2304, 2) anchor centres (x, y) in [0, 1], row by row."""
    ys, xs = np.mgrid[0:GRID, 0:GRID]
    return np.stack([(xs.ravel() + 0.5) / GRID, (ys.ravel() + 0.5) / GRID], axis=1)


def decode(raw: np.ndarray, min_score: float = MIN_SCORE) -> tuple[np.ndarray, np.ndarray]:
    """(2304, 17) raw output (logit, then 16 regressors) -> boxes (n, 4) as x0, y0, x1, y1 in
    [0, 1] of the region, and their scores, best first, before suppression."""
    raw = np.asarray(raw, np.float64)
    scores = 1 / (1 + np.exp(-np.clip(raw[:, 0], -100, 100)))
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    centre = anchors()[keep] + raw[keep, 1:3] / INPUT_SIZE
    half = raw[keep, 3:5] / INPUT_SIZE / 2
    return np.concatenate([centre - half, centre + half], axis=1), scores[keep]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0, y0, x1, y1 box with each of `boxes`."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_IOU):
    """MediaPipe's WEIGHTED suppression: each cluster of boxes overlapping the best one
    becomes their score-weighted mean, with the best one's score. Input best first."""
    out_boxes, out_scores = [], []
    while len(scores):
        cluster = iou(boxes[0], boxes) > threshold
        cluster[0] = True
        weights = scores[cluster][:, None]
        out_boxes.append((boxes[cluster] * weights).sum(axis=0) / weights.sum())
        out_scores.append(scores[0])
        boxes, scores = boxes[~cluster], scores[~cluster]
    return np.reshape(out_boxes, (-1, 4)), np.asarray(out_scores)


def letterbox(width: int, height: int) -> tuple[float, float, float]:
    """The square about the photo's centre that holds all of it."""
    side = max(width, height)
    return (width - side) / 2, (height - side) / 2, float(side)


def tiles(width: int, height: int) -> list[tuple[float, float, float]]:
    """Overlapping squares over a large photo, so a small face fills more of the input."""
    if max(width, height) <= TILE_ABOVE:
        return []
    side = round(TILE_FRACTION * max(width, height))
    def starts(extent):
        return [(extent - side) / 2] if extent <= side else [0.0, float(extent - side)]
    return [(x, y, float(side)) for y in starts(height) for x in starts(width)]


def padded(width: int, height: int) -> tuple[float, float, float]:
    """The photo, shrunk into the middle of a larger black square: detectors miss a face that
    fills the frame or touches its edges, and find it once it has a border around it."""
    left, top, side = letterbox(width, height)
    grow = side * (PAD_FACTOR - 1) / 2
    return left - grow, top - grow, side * PAD_FACTOR


def close_up(box: np.ndarray) -> tuple[float, float, float]:
    """The square about a face box (x0, y0, x1, y1) that shows it at the size detectors like best."""
    side = CLOSE_UP * max(box[2] - box[0], box[3] - box[1])
    return (box[0] + box[2] - side) / 2, (box[1] + box[3] - side) / 2, float(side)


def confirmed(box: np.ndarray, found: np.ndarray) -> bool:
    """Does a close-up's detection (x0, y0, x1, y1 rows) cover the face it was taken of?"""
    return bool(len(found)) and bool((iou(box, found) > NMS_IOU).any())


def crop_boxes(regions, width: int, height: int) -> np.ndarray:
    """Regions -> crop_and_resize boxes (y0, x0, y1, x1), normalised so that 0 and 1 are the
    first and last pixel, as both TensorFlow and TensorFlow.js define them."""
    return np.array([[top / (height - 1), left / (width - 1), (top + side - 1) / (height - 1),
                      (left + side - 1) / (width - 1)] for left, top, side in regions], np.float32)


def to_image(boxes: np.ndarray, region) -> np.ndarray:
    """Boxes in [0, 1] of a region -> x0, y0, x1, y1 in photo pixels."""
    left, top, side = region
    return boxes * side + np.array([left, top, left, top])


def _centre_inside(a: np.ndarray, b: np.ndarray) -> bool:
    cx, cy = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return b[0] <= cx <= b[2] and b[1] <= cy <= b[3]


def merge(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """Faces found by several regions -> one box each: the best-scored box of each group of
    boxes that overlap (IoU > NMS_IOU) or hold one another's centre. Returns indices kept."""
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if not any(iou(boxes[k], boxes[i:i + 1])[0] > NMS_IOU or _centre_inside(boxes[i], boxes[k])
                   or _centre_inside(boxes[k], boxes[i]) for k in kept):
            kept.append(int(i))
    return kept


def round_box(box, width: int, height: int) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 -> x, y, w, h clipped to the photo (a face half out of view keeps its
    visible part)."""
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    return x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0)

