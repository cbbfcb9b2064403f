"""Per-frame latency of the page's pipeline in headless Chromium (wasm backend), next to
face-api's own pipeline on the same frames, same backend, same run.

    python bench/browser_latency.py [--frames 30] [--backend wasm]

Frames come from the Hamilton clip through Chromium's fake camera. Ours: BlazeFace full range
(the page's detector), then 48x48 gray crops through the FER+ model. face-api's: its
TinyFaceDetector at 512 px (the page's detector until BlazeFace), then its FaceExpressionNet
on its own face crops; face-api runs its own bundled tfjs, set to the same backend.
Prints the seconds from Start to the first labelled face, median milliseconds per frame
(detection, classification, total), faces found per frame, and download sizes.

Per face, on the same faces: each frame's BlazeFace boxes are classified by our model and by
face-api's FaceExpressionNet (cut at the same boxes, as face-api cuts them), so the two expression
networks are timed on identical work; `--classifier DIR` times another exported bundle there too
(a candidate page model, e.g. from `export/convert.py --out /tmp/candidate`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import MEDIA, start_server, stop_server, wait_for  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

MEASURE = """async ([count, gapMs, backend, candidateUrl]) => {
  const { tf } = await import('/js/tf.js');
  const { ExpressionClassifier } = await import('/js/classifier.js');
  const candidate = candidateUrl ? await ExpressionClassifier.load(candidateUrl) : null;
  const faceapi = await import('/vendor/face-api/face-api.esm.js');
  const f = window.ferlive;
  const video = document.getElementById('video');
  const canvases = [];
  while (canvases.length < count) {             // snapshot frames first, then stop the live loop
    const c = document.createElement('canvas');
    c.width = video.videoWidth; c.height = video.videoHeight;
    c.getContext('2d').drawImage(video, 0, 0);
    canvases.push(c);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  f.stopCamera();
  faceapi.tf.setWasmPaths('/vendor/');
  await faceapi.tf.setBackend(backend);
  await faceapi.tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromUri('/vendor/face-api/');
  await faceapi.nets.faceExpressionNet.loadFromUri('/vendor/face-api/');
  const opts = new faceapi.TinyFaceDetectorOptions({ inputSize: 512, scoreThreshold: 0.4 });
  const ours = []; const theirs = []; const sameFaces = [];
  for (const [i, canvas] of canvases.entries()) {
    const frame = tf.browser.fromPixels(canvas);
    let t0 = performance.now();
    const boxes = await f.detector.detect(frame);
    let t1 = performance.now();
    f.classifier.classify(frame, boxes);
    let t2 = performance.now();
    frame.dispose();
    if (i > 0) ours.push({ faces: boxes.length, detect: t1 - t0, classify: t2 - t1, total: t2 - t0 });
    if (i > 0 && boxes.length) {                 // the same faces through each expression network
      const row = { faces: boxes.length, ours: t2 - t1 };
      const sameFrame = faceapi.tf.browser.fromPixels(canvas);
      const rects = boxes.map((b) => new faceapi.Rect(b.x, b.y, b.width, b.height));
      let s0 = performance.now();
      const crops = await faceapi.extractFaceTensors(sameFrame, rects);
      const out = await faceapi.nets.faceExpressionNet.predictExpressions(crops.length === 1 ? crops[0] : crops);
      row.faceapi = performance.now() - s0;
      crops.forEach((t) => t.dispose());
      sameFrame.dispose();
      void out;
      if (candidate) {
        const pixels = tf.browser.fromPixels(canvas);
        s0 = performance.now();
        candidate.classify(pixels, boxes);
        row.candidate = performance.now() - s0;
        pixels.dispose();
      }
      sameFaces.push(row);
    }
    const theirFrame = faceapi.tf.browser.fromPixels(canvas);
    t0 = performance.now();
    const dets = await faceapi.detectAllFaces(theirFrame, opts);
    t1 = performance.now();
    if (dets.length) {
      const faces = await faceapi.extractFaceTensors(theirFrame, dets);   // what withFaceExpressions() does
      const out = await faceapi.nets.faceExpressionNet.predictExpressions(faces.length === 1 ? faces[0] : faces);
      faces.forEach((t) => t.dispose());
      void out;
    }
    t2 = performance.now();
    theirFrame.dispose();
    if (i > 0) theirs.push({ faces: dets.length, detect: t1 - t0, classify: t2 - t1, total: t2 - t0 });
  }
  return { ours, theirs, sameFaces, backend: tf.getBackend(), theirBackend: faceapi.tf.getBackend(), isolated: crossOriginIsolated };
}"""


def size(paths):
    return sum(p.stat().st_size for p in paths)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--backend", default="wasm")
    ap.add_argument("--clip", default=str(MEDIA / "fr_short_hamilton_clip_5s_10fps.y4m"))
    ap.add_argument("--classifier", type=Path, help="an exported bundle (model.json, meta.json, shards) to time beside ours")
    args = ap.parse_args()
    staged = REPO / "web" / ".bench-classifier"      # served by the app while the bench runs (git-ignored)
    if args.classifier:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(args.classifier, staged)
    from playwright.sync_api import sync_playwright

    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--log-level", "warning"])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=FLAGS + [f"--use-file-for-fake-video-capture={args.clip}"])
            page = browser.new_page()
            page.goto(f"{url}/?backend={args.backend}")
            wait_for(page, "window.ferlive && window.ferlive.ready", timeout=90_000)
            started = time.perf_counter()
            page.click("#start")
            wait_for(page, "window.ferlive.state && window.ferlive.state.faces.length > 0", timeout=60_000)
            first_face_s = time.perf_counter() - started
            result = page.evaluate(MEASURE, [args.frames + 1, 120, args.backend,
                                             "/.bench-classifier/" if args.classifier else None])
            browser.close()
    finally:
        stop_server(proc)
        shutil.rmtree(staged, ignore_errors=True)

    web = REPO / "web"
    vendor = web / "vendor"
    blaze = size((vendor / "blazeface").glob("*.json")) + size((vendor / "blazeface").glob("*.bin"))
    tiny = size((vendor / "face-api").glob("tiny_face_detector_model*"))
    ours_bytes = size((web / "model").glob("*.json")) + size((web / "model").glob("*.bin"))
    theirs_bytes = size((vendor / "face-api").glob("face_expression_model*"))
    print(f"headless Chromium, tfjs backend {result['backend']} / face-api's {result['theirBackend']} "
          f"({'threads' if result['isolated'] else 'no threads'}), {args.frames} frames of {Path(args.clip).name}, "
          f"{os.cpu_count()} CPUs; median ms per frame")
    print(f"page: first labelled face {first_face_s:.1f} s after Start (camera start and model warm-up included)")
    print(f"{'pipeline':<52} {'detect':>7} {'classify':>9} {'total':>7} {'faces/frame':>12} {'download':>10}")
    for name, rows, det, extra in (("fer-live (BlazeFace full + FER+ CNN)", result["ours"], blaze, ours_bytes),
                                   ("face-api (TinyFaceDetector 512 + FaceExpressionNet)", result["theirs"], tiny,
                                    theirs_bytes)):
        med = {k: statistics.median(r[k] for r in rows) for k in ("detect", "classify", "total")}
        with_faces = [r["classify"] for r in rows if r["faces"]]
        faces = statistics.mean(r["faces"] for r in rows)
        print(f"{name:<52} {med['detect']:>7.1f} {med['classify']:>9.1f} {med['total']:>7.1f} {faces:>12.2f} "
              f"{(det + extra) / 1e6:>8.2f}MB")
        if with_faces:
            print(f"{'':<52} classification on frames with a face: median {statistics.median(with_faces):.1f} ms "
                  f"(expression model alone {extra / 1e6:.2f} MB)")
    same = result["sameFaces"]
    if same:
        n = sum(r["faces"] for r in same)
        print(f"same faces ({n} BlazeFace faces on {len(same)} frames, crop and network included), ms per face "
              f"(median over frames of frame time / faces):")
        nets = [("fer-live page model", "ours", ours_bytes), ("face-api FaceExpressionNet", "faceapi", theirs_bytes)]
        if args.classifier:
            cand = size(args.classifier.glob("*.json")) + size(args.classifier.glob("*.bin"))
            nets.append((f"candidate {args.classifier}", "candidate", cand))
        for name, key, nbytes in nets:
            per_face = statistics.median(r[key] / r["faces"] for r in same)
            print(f"  {name:<50} {per_face:>6.1f} ms/face  download {nbytes / 1e6:.2f} MB")
    ratio = statistics.median(r["detect"] for r in result["ours"]) / statistics.median(r["detect"] for r in result["theirs"])
    print(f"detection time, BlazeFace / TinyFaceDetector-512: {ratio:.2f}")


if __name__ == "__main__":
    main()
