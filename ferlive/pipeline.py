"""Image -> faces with boxes and emotions: the path the API and the CLI share."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ferlive.classifier import EmotionClassifier
from ferlive.crop import DEFAULT_MARGIN, crop_face, to_gray
from ferlive.detector import Detection, FaceDetector


@dataclass
class Face:
    box: dict  # x, y, width, height in image pixels
    found_by: str  # "photo", "tile" (part of a large photo), "padded" (a face filling the frame), "given"
    detector_score: float
    emotion: str
    confidence: float
    scores: dict  # all 8 emotions


@dataclass
class Result:
    width: int
    height: int
    faces: list[Face]
    model_version: str
    timings_ms: dict

    def to_dict(self) -> dict:
        return asdict(self)


class Analyser:
    """Detector + crop + classifier. Build once, call from any thread."""

    def __init__(self, model_path=None, margin: float = DEFAULT_MARGIN):
        self.classifier = EmotionClassifier(model_path)
        self.detector = FaceDetector()
        self.margin = margin

    def analyse(self, rgb: np.ndarray, whole_image_is_face: bool = False) -> Result:
        """Every face in an RGB image. `whole_image_is_face` skips the detector and takes the
        image itself as the one face (for photos already cropped to a face)."""
        t0 = time.perf_counter()
        height, width = rgb.shape[:2]
        found = ([Detection(0.0, 0.0, float(width), float(height), 1.0, "given")] if whole_image_is_face
                 else self.detector.detect(rgb))
        t1 = time.perf_counter()
        gray = to_gray(rgb)
        boxes = [(f.x, f.y, f.width, f.height) for f in found]
        crops = np.stack([crop_face(gray, b, self.margin) for b in boxes]) if boxes else np.zeros((0, 48, 48, 1))
        probs = self.classifier.predict(crops)
        t2 = time.perf_counter()
        classes = self.classifier.info.classes
        faces = [
            Face(box={"x": round(f.x, 1), "y": round(f.y, 1), "width": round(f.width, 1), "height": round(f.height, 1)},
                 found_by=f.found_by, detector_score=round(f.score, 4), emotion=classes[int(p.argmax())],
                 confidence=round(float(p.max()), 4), scores={c: round(float(v), 4) for c, v in zip(classes, p)})
            for f, p in zip(found, probs)
        ]
        return Result(width=int(width), height=int(height), faces=faces,
                      model_version=self.classifier.info.version,
                      timings_ms={"detect": round((t1 - t0) * 1000, 1), "classify": round((t2 - t1) * 1000, 1),
                                  "total": round((t2 - t0) * 1000, 1)})
