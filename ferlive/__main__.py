"""Command line: classify faces in photos and videos, or run the web app.

    python -m ferlive predict photo.jpg [more.jpg ...] [--json] [--out annotated.jpg]
    python -m ferlive predict clip.mp4 [--every 5]           # one JSON line per frame
    python -m ferlive serve [--host 0.0.0.0] [--port 8000] [--https]
    python -m ferlive evaluate FOLDER --out DIR [--modes photo faces]   # labels.csv + images/

`predict` runs the same code as POST /api/predict (ferlive.pipeline.Analyser), so it
prints the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".mjpeg", ".y4m", ".m4v"}


def _summary(name: str, result) -> str:
    if not result.faces:
        return f"{name}: no face found"
    faces = ", ".join(f"{f.emotion} {f.confidence:.0%} at ({f.box['x']:.0f}, {f.box['y']:.0f}, "
                      f"{f.box['width']:.0f}x{f.box['height']:.0f})" for f in result.faces)
    return f"{name}: {len(result.faces)} face{'s' if len(result.faces) > 1 else ''}: {faces}"


def _out_path(out: Path | None, index: int, count: int) -> Path | None:
    if out is None or count == 1:
        return out
    return out.with_name(f"{out.stem}-{index + 1}{out.suffix}")  # one file per input


def predict_photo(analyser, path: Path, args, index: int, count: int) -> bool:
    from ferlive.annotate import annotate
    from ferlive.images import BadImage, decode_image

    try:
        rgb = decode_image(path.read_bytes())
    except (OSError, BadImage) as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return False
    result = analyser.analyse(rgb)
    print(json.dumps({"file": str(path), **result.to_dict()}) if args.json else _summary(str(path), result))
    out = _out_path(args.out, index, count)
    if out:
        annotate(rgb, result).save(out)
        if not args.json:
            print(f"  annotated image -> {out}")
    return True


def predict_video(analyser, path: Path, args, index: int, count: int) -> bool:
    import cv2
    import numpy as np

    from ferlive.annotate import annotate

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        print(f"error: {path}: cannot open as a video", file=sys.stderr)
        return False
    fps = cap.get(cv2.CAP_PROP_FPS) or 0
    out, writer = _out_path(args.out, index, count), None
    frame_index = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if frame_index % args.every == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            result = analyser.analyse(rgb)
            record = {"file": str(path), "frame": frame_index,
                      "time_s": round(frame_index / fps, 3) if fps else None, **result.to_dict()}
            print(json.dumps(record) if args.json else _summary(f"{path} frame {frame_index}", result), flush=True)
            if out:
                if writer is None:
                    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"),
                                             (fps or 25) / args.every, (rgb.shape[1], rgb.shape[0]))
                writer.write(cv2.cvtColor(np.asarray(annotate(rgb, result)), cv2.COLOR_RGB2BGR))
        frame_index += 1
    cap.release()
    if writer:
        writer.release()
    if frame_index == 0:
        print(f"error: {path}: no frames could be decoded", file=sys.stderr)
        return False
    return True


def cmd_predict(args) -> int:
    missing = [p for p in args.inputs if not p.is_file()]
    for p in missing:
        print(f"error: {p}: no such file", file=sys.stderr)
    inputs = [p for p in args.inputs if p.is_file()]
    if not inputs:
        return 2
    from ferlive.pipeline import Analyser

    analyser = Analyser(args.model)
    ok = True
    for i, path in enumerate(inputs):
        is_video = path.suffix.lower() in VIDEO_SUFFIXES
        ok &= (predict_video if is_video else predict_photo)(analyser, path, args, i, len(inputs))
    return 0 if ok and not missing else 1


def cmd_serve(args) -> int:
    import uvicorn

    ssl = {}
    if args.https:
        from ferlive.tls import ensure_certificate

        cert, key = ensure_certificate(Path(args.cert_dir))
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    scheme = "https" if args.https else "http"
    print(f"serving on {scheme}://{args.host}:{args.port}/  (API docs at /docs)", flush=True)
    uvicorn.run("server:app", host=args.host, port=args.port, **ssl)
    return 0


def cmd_evaluate(args) -> int:
    from ferlive.evaluate import FolderError, evaluate, summary

    try:
        report = evaluate(args.folder, args.out, modes=args.modes, model=args.model, bootstrap=args.bootstrap)
    except FolderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(report))
    print(f"metrics, confusion matrices and contact sheets of the mistakes -> {args.out}/")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the results
    ap = argparse.ArgumentParser(prog="python -m ferlive", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="faces and expressions in photos or videos")
    p.add_argument("inputs", nargs="+", type=Path, help="image or video files")
    p.add_argument("--json", action="store_true", help="JSON (one line per photo or video frame), as the API returns")
    p.add_argument("--out", type=Path, help="write the annotated image (or video) here; numbered when several inputs")
    p.add_argument("--every", type=int, default=1, help="videos: analyse every Nth frame")
    p.add_argument("--model", type=Path, help="a .keras model (default: FERLIVE_MODEL or models/api/model.keras)")
    p.set_defaults(func=cmd_predict)
    s = sub.add_parser("serve", help="run the web app and API (uvicorn server:app)")
    s.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to reach it from other devices on your LAN")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--https", action="store_true", help="serve over HTTPS with a self-signed certificate (phones need it)")
    s.add_argument("--cert-dir", default=str(Path(__file__).resolve().parents[1] / ".certs"))
    s.set_defaults(func=cmd_serve)
    e = sub.add_parser("evaluate", help="accuracy on a folder of labelled photos (labels.csv + images/)")
    e.add_argument("folder", type=Path, help="holds labels.csv (image,emotion[,person]) and images/")
    e.add_argument("--out", type=Path, required=True, help="folder for metrics.json, confusion and mistakes images")
    e.add_argument("--modes", nargs="+", choices=["photo", "faces"], default=["photo", "faces"],
                   help="photo: detect, score the largest face (no face = miss); faces: each image is the face")
    e.add_argument("--bootstrap", type=int, default=1000, help="resamples of people for the 95%% intervals (0: none)")
    e.add_argument("--model", type=Path, help="a .keras model (default: FERLIVE_MODEL or models/api/model.keras)")
    e.set_defaults(func=cmd_evaluate)
    args = ap.parse_args(argv)
    if getattr(args, "every", 1) < 1:
        ap.error("--every must be at least 1")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
