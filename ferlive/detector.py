"""Face detection for the API and CLI: MediaPipe's BlazeFace, full range, on the CPU.

It runs the same weight files the page loads (web/vendor/blazeface/, a TensorFlow.js graph
model) through ferlive/tfjs_graph.py, and decodes them with ferlive/blazeface.py, whose
JavaScript twin the page uses: the page and the API box the same faces the same way.

Photos over MAX_SIDE pixels are shrunk to it first, as the page does. Every photo is looked
at whole (letterboxed into the 192x192 input); a photo larger than TILE_ABOVE pixels is also
looked at in overlapping tiles, which finds small faces in group shots; a photo where neither
finds a face gets a last look with a black border around it, which finds faces that fill the
frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferlive import blazeface as bf

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "web" / "vendor" / "blazeface" / "facemesh-detection-full.json"
FACE_OUTPUT = "Identity:0"  # the model's other head (Identity_1) finds people, not faces


@dataclass(frozen=True)
class Detection:
    x: float
    y: float
    width: float
    height: float
    score: float
    found_by: str  # "photo", "tile" or "padded": which look at the photo found it


class FaceDetector:
    """Build once (loading takes a second), call `detect` from any thread."""

    def __init__(self, path: str | Path = WEIGHTS, min_score: float = bf.MIN_SCORE):
        import tensorflow as tf

        if not Path(path).is_file():
            raise FileNotFoundError(f"face detector weights {path} not found")
        from ferlive.tfjs_graph import LiteRunner, load_graph_model

        self._tf = tf
        graph = load_graph_model(path, FACE_OUTPUT)
        try:
            self._net = LiteRunner(graph, (bf.INPUT_SIZE, bf.INPUT_SIZE, 3))
        except Exception as e:  # noqa: BLE001 (a TensorFlow without tf.lite: the graph itself is slower, not wrong)
            log.warning("TensorFlow Lite unavailable (%s); running the detector as a TensorFlow graph", e)
            self._net = lambda batch: graph(batch).numpy()
        self.min_score = min_score
        self.detect(np.zeros((bf.INPUT_SIZE, bf.INPUT_SIZE, 3), np.uint8))  # build the kernels now

    def _look(self, image, looks, width, height):
        """(name, region) pairs -> boxes (x0, y0, x1, y1 photo pixels), scores, and the name
        of the look that found each. All regions are cut out and resized in one call."""
        tf = self._tf
        regions = [region for _, region in looks]
        batch = tf.image.crop_and_resize(image, bf.crop_boxes(regions, width, height),
                                         tf.zeros(len(regions), tf.int32),
                                         (bf.INPUT_SIZE, bf.INPUT_SIZE), extrapolation_value=0.0)
        boxes, scores, names = [np.zeros((0, 4))], [np.zeros(0)], []
        for (name, region), raw in zip(looks, self._net(batch / 127.5 - 1)):
            b, s = bf.weighted_nms(*bf.decode(raw, self.min_score))
            boxes.append(bf.to_image(b, region))
            scores.append(s)
            names += [name] * len(s)
        return np.concatenate(boxes), np.concatenate(scores), names

    def detect(self, rgb: np.ndarray, tiles: bool = True) -> list[Detection]:
        """Faces in an RGB (or gray) uint8/float image, largest first, boxes in its pixels."""
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        full_height, full_width = rgb.shape[:2]
        if min(full_width, full_height) < bf.MIN_IMAGE_SIDE:
            return []
        # A 40-megapixel photo as float32 is half a gigabyte; the page shrinks photos to the same size.
        scale = min(1.0, bf.MAX_SIDE / max(full_width, full_height))
        if scale < 1:
            from PIL import Image

            size = (max(1, round(full_width * scale)), max(1, round(full_height * scale)))
            small = Image.fromarray(np.asarray(rgb[..., :3], np.uint8)).resize(size, Image.BILINEAR, reducing_gap=2.0)
            rgb = np.asarray(small)
        height, width = rgb.shape[:2]
        image = self._tf.convert_to_tensor(rgb[None, ..., :3], self._tf.float32)
        looks = [("photo", bf.letterbox(width, height))]
        looks += [("tile", region) for region in bf.tiles(width, height)] if tiles else []
        boxes, scores, names = self._look(image, looks, width, height)
        if not len(scores):
            boxes, scores, names = self._look(image, [("padded", bf.padded(width, height))], width, height)
        keep = bf.merge(boxes, scores)
        # A tile magnifies hands and fabric into faces too; a real face is found again in a close-up.
        doubtful = [i for i in keep if names[i] == "tile"]
        if doubtful:
            close_boxes, _, owners = self._look(image, [(i, bf.close_up(boxes[i])) for i in doubtful], width, height)
            owners = np.array(owners)
            keep = [i for i in keep if i not in doubtful or bf.confirmed(boxes[i], close_boxes[owners == i])]
        faces = [Detection(*bf.round_box(boxes[i] / scale, full_width, full_height), float(scores[i]), names[i])
                 for i in keep]
        return sorted((f for f in faces if f.width >= 1 and f.height >= 1), key=lambda f: -f.width * f.height)
