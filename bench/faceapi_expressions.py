"""face-api's expression network on a labelled photo folder, scored like `python -m ferlive evaluate`.

    python bench/faceapi_expressions.py ../shared/data/wild-photos --out models/fernet/wild-photos

The baseline for the end-to-end figures: face-api 1.7.15 (vendored in web/vendor/face-api/
for benchmarks only) in headless Chromium, tfjs wasm backend. Two modes, as ours:
- photo: its TinyFaceDetector (512 px, score 0.4, the settings face-api's demos use for video),
  the largest face, its FaceExpressionNet on face-api's own crop; no face is a miss.
- faces: the whole image through FaceExpressionNet.
Its seven classes map onto FER+'s (it has no contempt). Writes faceapi_metrics.json next to
ours and prints the same summary.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ferlive.evaluate import MODES, NO_FACE, read_folder, score, summary  # noqa: E402
from tests.conftest import start_server, stop_server, wait_for  # noqa: E402
from training.data import EMOTIONS  # noqa: E402

TO_FERPLUS = {"neutral": "neutral", "happy": "happiness", "surprised": "surprise", "sad": "sadness",
              "angry": "anger", "disgusted": "disgust", "fearful": "fear"}

SETUP = """async () => {
  const faceapi = await import('/vendor/face-api/face-api.esm.js');
  faceapi.tf.setWasmPaths('/vendor/');
  await faceapi.tf.setBackend('wasm');
  await faceapi.tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromUri('/vendor/face-api/');
  await faceapi.nets.faceExpressionNet.loadFromUri('/vendor/face-api/');
  window.bench = { faceapi, opts: new faceapi.TinyFaceDetectorOptions({ inputSize: 512, scoreThreshold: 0.4 }) };
  return faceapi.tf.getBackend();
}"""

CLASSIFY = """async ([images, mode]) => {
  const { faceapi, opts } = window.bench;
  const out = [];
  for (const b64 of images) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes]));
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width; canvas.height = bitmap.height;
    canvas.getContext('2d').drawImage(bitmap, 0, 0);
    if (mode === 'faces') {
      out.push({ scores: await faceapi.nets.faceExpressionNet.predictExpressions(canvas), box: null });
      continue;
    }
    const found = (await faceapi.detectAllFaces(canvas, opts).withFaceExpressions())
      .sort((a, b) => b.detection.box.area - a.detection.box.area);
    out.push(found.length ? { scores: found[0].expressions, box: found[0].detection.box } : { scores: null, box: null });
  }
  return out.map(({ scores, box }) => ({ scores: scores && Object.fromEntries(Object.entries(scores)),
    box: box && { x: box.x, y: box.y, width: box.width, height: box.height } }));
}"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    items = read_folder(args.folder)
    report = {"folder": str(args.folder), "photos": len(items), "people": len({i.person for i in items}),
              "model_version": "face-api 1.7.15 FaceExpressionNet (TinyFaceDetector 512 in photo mode)", "modes": {}}
    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--log-level", "warning"])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.goto(url)
            wait_for(page, "window.ferlive && window.ferlive.ready", timeout=90_000)
            report["backend"] = page.evaluate(SETUP)
            for mode in args.modes:
                predictions, start = [], time.perf_counter()
                for i in range(0, len(items), 25):
                    batch = [base64.b64encode(it.image.read_bytes()).decode() for it in items[i:i + 25]]
                    for r in page.evaluate(CLASSIFY, [batch, mode]):
                        top = max(r["scores"], key=r["scores"].get) if r["scores"] else None
                        predictions.append(EMOTIONS.index(TO_FERPLUS[top]) if top else NO_FACE)
                    print(f"  {mode} mode: {len(predictions)}/{len(items)} photos "
                          f"({len(predictions) / (time.perf_counter() - start):.1f}/s)", file=sys.stderr, flush=True)
                report["modes"][mode] = score([it.label for it in items], predictions, [it.person for it in items],
                                              bootstrap=args.bootstrap)
            browser.close()
    finally:
        stop_server(proc)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "faceapi_metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))


if __name__ == "__main__":
    main()
