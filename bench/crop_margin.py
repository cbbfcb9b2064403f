"""How much margin around a detector's box reproduces FER2013's framing?

    python bench/crop_margin.py [--images 300]

1. Framing: FER+ Valid faces are upscaled to 192 px and run through the face detector
   (BlazeFace, the same in the page and the API). The margin that turns its box back into
   the whole FER crop is side_of_image / side_of_box - 1; we print its median and the box
   centre's offset.
2. Accuracy: the labelled real photos in ../shared/media (the four face-api expression
   photos and the middle frame of each segment of expressions_7x_5fps), classified by
   the committed model through the detector's boxes at several margins.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import FERPLUS, MEDIA  # noqa: E402

UPSCALE = 192


def fer_faces(n):
    from training.data import load_ferplus, protocol_mask

    test = load_ferplus(FERPLUS)["valid"]
    keep = np.flatnonzero(protocol_mask(test.votes, "ferplus_majority"))[:n]
    return [Image.fromarray(test.images[i, ..., 0]).resize((UPSCALE, UPSCALE), Image.BICUBIC) for i in keep]


def framing(boxes_per_image):
    found = [b for b in boxes_per_image if b]
    margins = [UPSCALE / max(b[0][2], b[0][3]) - 1 for b in found]
    dx = [(b[0][0] + b[0][2] / 2 - UPSCALE / 2) / b[0][2] for b in found]
    dy = [(b[0][1] + b[0][3] / 2 - UPSCALE / 2) / b[0][3] for b in found]
    if not found:
        return "no face found"
    return (f"found in {len(found)}/{len(boxes_per_image)}; margin median {statistics.median(margins):+.2f} "
            f"(IQR {np.percentile(margins, 25):+.2f}..{np.percentile(margins, 75):+.2f}); "
            f"box centre offset x {statistics.median(dx):+.2f}, y {statistics.median(dy):+.2f} box sides")


def labelled_photos():
    photos = [(MEDIA / f"faceapi_{n}.jpg", label) for n, label in
              (("happy", "happiness"), ("surprised", "surprise"), ("angry", "anger"), ("sad", "sadness"))]
    images = [(np.asarray(Image.open(p).convert("RGB")), label, p.name) for p, label in photos]
    import cv2

    clip = json.loads((MEDIA / "expressions_7x_5fps.json").read_text())
    cap = cv2.VideoCapture(str(MEDIA / "expressions_7x_5fps.mjpeg"))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    for seg in clip["segments"]:
        mid = (seg["first_frame"] + seg["last_frame"]) // 2
        if mid < len(frames):
            images.append((frames[mid], seg["label"], f"clip frame {mid}"))
    return images


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=300)
    ap.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.4])
    args = ap.parse_args()

    from ferlive.crop import crop_face, to_gray
    from ferlive.classifier import EmotionClassifier
    from ferlive.detector import FaceDetector

    faces = fer_faces(args.images)
    detector = FaceDetector()
    found = [detector.detect(np.asarray(f.convert("RGB"))) for f in faces]
    how = Counter(f[0].found_by for f in found if f)
    print(f"1. Framing of {len(faces)} FER+ Valid faces (upscaled to {UPSCALE} px), BlazeFace boxes")
    print(f"   {framing([[(d.x, d.y, d.width, d.height) for d in f] for f in found])}")
    print(f"   found by: {dict(how)}")

    classifier = EmotionClassifier()
    photos = labelled_photos()
    print(f"\n2. Labelled photos ({len(photos)}), committed model, BlazeFace boxes: accuracy and mean p(true class)")
    classes = classifier.info.classes
    for margin in args.margins:
        hits, p_true, labels = 0, [], []
        for rgb, label, _ in photos:
            gray = to_gray(rgb)
            boxes = detector.detect(rgb)
            if not boxes:
                labels.append("-")
                continue
            box = boxes[0]
            probs = classifier.predict(crop_face(gray, (box.x, box.y, box.width, box.height), margin)[None])[0]
            hits += classes[int(probs.argmax())] == label
            p_true.append(float(probs[classes.index(label)]))
            labels.append(classes[int(probs.argmax())][:4])
        print(f"   margin {margin:+.2f}: {hits}/{len(photos)} right, mean p(true) {np.mean(p_true):.2f}   "
              + " ".join(labels))
    print("   truth:        " + " ".join(label[:4] for _, label, _ in photos))


if __name__ == "__main__":
    main()
