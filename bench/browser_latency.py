"""Per-frame latency of the page's pipeline in headless Chromium (wasm backend), next to
face-api's own expression pipeline on the same frames.

    python bench/browser_latency.py [--frames 30] [--backend wasm]

Frames come from the Hamilton clip through Chromium's fake camera. Both pipelines use
face-api's TinyFaceDetector (the page's live detector); then ours crops 48x48 gray faces
and runs the FER+ model, face-api runs its FaceExpressionNet on its own face crops.
Prints median milliseconds (detection, classification, total) and download sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import MEDIA, start_server, stop_server, wait_for  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

MEASURE = """async ([count, gapMs]) => {
  const { tf, faceapi } = await import('/js/tf.js');
  const f = window.ferlive;
  const video = document.getElementById('video');
  const frames = [];
  while (frames.length < count) {               // snapshot frames first, then stop the live loop
    frames.push(tf.browser.fromPixels(video));
    await new Promise((r) => setTimeout(r, gapMs));
  }
  f.stopCamera();
  await faceapi.nets.faceExpressionNet.loadFromUri('/vendor/face-api-models/');
  const opts = f.detector.options;
  const ours = []; const theirs = [];
  for (const [i, frame] of frames.entries()) {
    let t0 = performance.now();
    const boxes = await f.detector.detect(frame);
    let t1 = performance.now();
    f.classifier.classify(frame, boxes);
    let t2 = performance.now();
    if (i > 0) ours.push({ faces: boxes.length, detect: t1 - t0, classify: t2 - t1, total: t2 - t0 });
    t0 = performance.now();
    const dets = await faceapi.detectAllFaces(frame, opts);
    t1 = performance.now();
    if (dets.length) {
      const faces = await faceapi.extractFaceTensors(frame, dets);   // what withFaceExpressions() does
      const out = await faceapi.nets.faceExpressionNet.predictExpressions(faces.length === 1 ? faces[0] : faces);
      faces.forEach((t) => t.dispose());
      void out;
    }
    t2 = performance.now();
    if (i > 0) theirs.push({ faces: dets.length, detect: t1 - t0, classify: t2 - t1, total: t2 - t0 });
    frame.dispose();
  }
  return { ours, theirs, backend: tf.getBackend(), isolated: crossOriginIsolated };
}"""


def size(paths):
    return sum(p.stat().st_size for p in paths)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--backend", default="wasm")
    ap.add_argument("--clip", default=str(MEDIA / "fr_short_hamilton_clip_5s_10fps.y4m"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--log-level", "warning"])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=FLAGS + [f"--use-file-for-fake-video-capture={args.clip}"])
            page = browser.new_page()
            page.goto(f"{url}/?backend={args.backend}")
            wait_for(page, "window.ferlive && window.ferlive.ready", timeout=90_000)
            page.click("#start")
            wait_for(page, "window.ferlive.state && window.ferlive.state.frame > 3", timeout=60_000)
            result = page.evaluate(MEASURE, [args.frames + 1, 120])
            browser.close()
    finally:
        stop_server(proc)

    web = REPO / "web"
    vendor = web / "vendor" / "face-api-models"
    tiny = size(vendor.glob("tiny_face_detector_model*"))
    ours_bytes = size((web / "model").glob("*.json")) + size((web / "model").glob("*.bin"))
    theirs_bytes = size(vendor.glob("face_expression_model*"))
    print(f"headless Chromium, tfjs backend {result['backend']} ({'threads' if result['isolated'] else 'no threads'}), "
          f"{args.frames} frames of {Path(args.clip).name}, {os.cpu_count()} CPUs; median ms per frame")
    print(f"{'pipeline':<48} {'detect':>7} {'classify':>9} {'total':>7} {'faces/frame':>12} {'download':>10}")
    for name, rows, extra in (("fer-live (TinyFaceDetector + FER+ CNN)", result["ours"], ours_bytes),
                              ("face-api (TinyFaceDetector + FaceExpressionNet)", result["theirs"], theirs_bytes)):
        med = {k: statistics.median(r[k] for r in rows) for k in ("detect", "classify", "total")}
        with_faces = [r["classify"] for r in rows if r["faces"]]
        faces = statistics.mean(r["faces"] for r in rows)
        print(f"{name:<48} {med['detect']:>7.1f} {med['classify']:>9.1f} {med['total']:>7.1f} {faces:>12.2f} "
              f"{(tiny + extra) / 1e6:>8.2f}MB")
        if with_faces:
            print(f"{'':<48} classification on frames with a face: median {statistics.median(with_faces):.1f} ms "
                  f"(expression model alone {extra / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
