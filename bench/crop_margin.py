"""How much margin around a detector's box reproduces FER2013's framing?

    python bench/crop_margin.py [--images 300] [--no-browser]

1. Framing: FER+ Test faces are upscaled to 192 px and run through each detector (Haar
   for the API, face-api's TinyFaceDetector and SSD MobileNet v1 for the page). The
   margin that turns a detector's box back into the whole FER crop is
   side_of_image / side_of_box - 1; we print its median and the box centre's offset.
2. Accuracy: the labelled real photos in ../shared/media (the four face-api expression
   photos and the middle frame of each segment of expressions_7x_5fps), classified by
   the committed model through the API's Haar boxes at several margins.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import FERPLUS, MEDIA, start_server, stop_server, wait_for  # noqa: E402

UPSCALE = 192


def fer_faces(n):
    from training.data import load_ferplus, protocol_mask

    test = load_ferplus(FERPLUS)["test"]
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


def browser_boxes(images):
    from playwright.sync_api import sync_playwright

    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--log-level", "warning"])
    urls = []
    for im in images:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.goto(url)
            wait_for(page, "window.ferlive && window.ferlive.ready", timeout=90_000)
            out = page.evaluate("""async (urls) => {
                const { FaceDetector } = await import('/js/detector.js');
                const result = {};
                for (const kind of ['tiny', 'ssd']) {
                  const det = await FaceDetector.load(kind);
                  result[kind] = [];
                  for (const u of urls) {
                    const img = new Image(); img.src = u; await img.decode();
                    result[kind].push((await det.detect(img)).map((b) => [b.x, b.y, b.width, b.height]));
                  }
                }
                return result;
            }""", urls)
            browser.close()
    finally:
        stop_server(proc)
    return out


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
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()

    from ferlive.crop import crop_face, to_gray
    from ferlive.detector import HaarFaceDetector
    from ferlive.classifier import EmotionClassifier

    faces = fer_faces(args.images)
    haar = HaarFaceDetector(min_face_fraction=0.3)
    print(f"1. Framing of {len(faces)} FER+ Test faces (upscaled to {UPSCALE} px)")
    print(f"   Haar (API):                 {framing([haar.detect(np.asarray(f, np.float32)) for f in faces])}")
    if not args.no_browser:
        boxes = browser_boxes(faces)
        print(f"   face-api Tiny (page, live): {framing(boxes['tiny'])}")
        print(f"   face-api SSD (page, photo): {framing(boxes['ssd'])}")

    classifier = EmotionClassifier()
    detector = HaarFaceDetector()
    photos = labelled_photos()
    print(f"\n2. Labelled photos ({len(photos)}), committed model, Haar boxes: accuracy and mean p(true class)")
    classes = classifier.info.classes
    for margin in args.margins:
        hits, p_true, labels = 0, [], []
        for rgb, label, _ in photos:
            gray = to_gray(rgb)
            boxes = detector.detect(gray)
            if not boxes:
                labels.append("-")
                continue
            probs = classifier.predict(crop_face(gray, boxes[0], margin)[None])[0]
            hits += classes[int(probs.argmax())] == label
            p_true.append(float(probs[classes.index(label)]))
            labels.append(classes[int(probs.argmax())][:4])
        print(f"   margin {margin:+.2f}: {hits}/{len(photos)} right, mean p(true) {np.mean(p_true):.2f}   "
              + " ".join(labels))
    print("   truth:        " + " ".join(label[:4] for _, label, _ in photos))


if __name__ == "__main__":
    main()
