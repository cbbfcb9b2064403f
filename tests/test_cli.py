"""`python -m ferlive predict` gives what the API gives; `serve --https` serves."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from PIL import Image

from tests.conftest import REPO, start_server, stop_server


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ferlive", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def without_timings(d):
    return {k: v for k, v in d.items() if k not in ("timings_ms", "file")}


def test_photos_match_the_api_and_annotate(server, media, tmp_path):
    photos = [media / "faceapi_bbt4.jpg", media / "faceapi_happy.jpg"]
    out = tmp_path / "annotated.jpg"
    r = run_cli("predict", *photos, "--json", "--out", out)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(p) for p in photos]
    for line, photo in zip(lines, photos):
        api = httpx.post(f"{server}/api/predict", files={"file": ("x", photo.read_bytes())}, timeout=60).json()
        assert without_timings(line) == without_timings(api)
    assert Image.open(tmp_path / "annotated-1.jpg").size == (710, 473)
    assert (tmp_path / "annotated-2.jpg").is_file()


def test_video_gives_one_json_line_per_frame(media):
    r = run_cli("predict", media / "fr_short_hamilton_clip.mp4", "--json", "--every", "25")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["frame"] for line in lines] == list(range(0, 275, 25))
    assert lines[1]["time_s"] > 0 and (lines[0]["width"], lines[0]["height"]) == (640, 360)
    assert sum(len(line["faces"]) > 0 for line in lines) >= 5


def test_human_readable_output_and_errors(media, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    r = run_cli("predict", media / "fr_obama.jpg", bad, tmp_path / "missing.png")
    assert r.returncode == 1
    assert "fr_obama.jpg: 1 face:" in r.stdout
    assert "broken.jpg" in r.stderr and "missing.png: no such file" in r.stderr
    assert "Traceback" not in r.stderr


def test_https_serves_with_a_self_signed_certificate(tmp_path):
    proc, url = start_server(["-m", "ferlive", "serve", "--https", "--cert-dir", str(tmp_path)], scheme="https")
    try:
        r = httpx.get(f"{url}/", verify=False)
        assert r.status_code == 200 and "fer-live" in r.text
        assert (tmp_path / "cert.pem").is_file() and (tmp_path / "key.pem").stat().st_mode & 0o077 == 0
        try:
            httpx.get(f"{url}/", verify=True)
            raise AssertionError("a self-signed certificate should not verify against public roots")
        except httpx.ConnectError:
            pass
    finally:
        stop_server(proc)
