"""Face detection for the API and CLI: OpenCV's Haar cascades, run on the CPU.

Why Haar: it ships inside opencv-python-headless 4.x (no weights to fetch), needs no
GPU, and on the group photos in ../shared/media it finds every frontal face. Its weak
spot is false positives (a hand, a patterned shirt), so a box is kept only where two
independent cascades (`alt2` and `default`) agree; profile faces are missed, as by
any frontal detector. Images are shrunk to at most `max_side` pixels first: faster,
and far fewer tiny false positives.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


class HaarFaceDetector:
    def __init__(self, max_side: int = 640, min_face_fraction: float = 0.05, agree_iou: float = 0.3):
        root = cv2.data.haarcascades
        self._paths = (root + "haarcascade_frontalface_alt2.xml", root + "haarcascade_frontalface_default.xml")
        self._local = threading.local()  # CascadeClassifier is not safe to share across threads
        self.max_side, self.min_face_fraction, self.agree_iou = max_side, min_face_fraction, agree_iou

    def _cascades(self):
        if not hasattr(self._local, "cascades"):
            self._local.cascades = tuple(cv2.CascadeClassifier(p) for p in self._paths)
            if any(c.empty() for c in self._local.cascades):
                raise RuntimeError(f"cannot load Haar cascades from {cv2.data.haarcascades}")
        return self._local.cascades

    def detect(self, gray: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Boxes (x, y, w, h) in the pixels of `gray` (uint8 or float), largest first."""
        gray = np.clip(gray, 0, 255).astype(np.uint8)
        scale = min(1.0, self.max_side / max(gray.shape))
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        small = cv2.equalizeHist(small)
        min_side = max(20, int(min(small.shape) * self.min_face_fraction))
        primary, confirm = (c.detectMultiScale(small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
                            for c in self._cascades())
        boxes = [tuple(map(float, b)) for b in primary
                 if any(iou(b, c) >= self.agree_iou for c in confirm)]
        boxes = [tuple(v / scale for v in b) for b in boxes]
        return sorted(boxes, key=lambda b: -b[2] * b[3])
