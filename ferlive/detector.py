"""Face detection for the API and CLI: OpenCV's Haar cascades, run on the CPU.

Why Haar: it ships inside opencv-python-headless 4.x (no weights to fetch), needs no
GPU, and on the group photos in ../shared/media it finds every face. Its weak spot is
false positives (a hand, a patterned shirt), so a frontal box is kept only where two
independent cascades (`alt2` and `default`) agree. Faces turned sideways (or looking
down) come from the profile cascade, run on the image and its mirror, and count only
where no frontal face already is. Images are shrunk to at most `max_side` pixels first:
faster, and far fewer tiny false positives.
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
        self._paths = tuple(root + name for name in ("haarcascade_frontalface_alt2.xml",
                                                     "haarcascade_frontalface_default.xml",
                                                     "haarcascade_profileface.xml"))
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
        frontal, confirm, profile = self._cascades()

        def run(cascade, image, step=1.1):
            return [tuple(map(float, b)) for b in
                    cascade.detectMultiScale(image, scaleFactor=step, minNeighbors=5, minSize=(min_side, min_side))]

        # Confirm each frontal candidate by running the second cascade on its surroundings only.
        boxes = [b for b in run(frontal, small) if self._confirmed(confirm, small, b)]
        width = small.shape[1]
        mirrored = small[:, ::-1].copy()
        turned = run(profile, small, 1.15) + [(width - x - w, y, w, h) for x, y, w, h in run(profile, mirrored, 1.15)]
        for b in sorted(turned, key=lambda b: -b[2] * b[3]):
            if not any(_overlaps(b, kept) for kept in boxes):
                boxes.append(b)
        boxes = [tuple(v / scale for v in b) for b in boxes]
        return sorted(boxes, key=lambda b: -b[2] * b[3])

    def _confirmed(self, cascade, image, box) -> bool:
        x, y, w, h = box
        pad = 0.5 * w
        x0, y0 = int(max(0, x - pad)), int(max(0, y - pad))
        x1, y1 = int(min(image.shape[1], x + w + pad)), int(min(image.shape[0], y + h + pad))
        found = cascade.detectMultiScale(image[y0:y1, x0:x1], scaleFactor=1.1, minNeighbors=5,
                                         minSize=(int(0.6 * w), int(0.6 * h)))
        return any(iou(box, (fx + x0, fy + y0, fw, fh)) >= self.agree_iou for fx, fy, fw, fh in found)


def _overlaps(a, b) -> bool:
    """Same face: they overlap noticeably, or one's centre lies inside the other."""
    def centre_in(p, q):
        cx, cy = p[0] + p[2] / 2, p[1] + p[3] / 2
        return q[0] <= cx <= q[0] + q[2] and q[1] <= cy <= q[1] + q[3]
    return iou(a, b) >= 0.2 or centre_in(a, b) or centre_in(b, a)
