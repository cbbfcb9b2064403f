"""The image API against the running app (uvicorn server:app in a subprocess)."""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

LIMIT = 3 * 1024 * 1024  # FERLIVE_MAX_BYTES the server fixture sets


def post_file(url, path, **kw):
    return httpx.post(f"{url}/api/predict", files={"file": (path.name, path.read_bytes())}, timeout=60, **kw)


def test_health_and_model(server):
    assert httpx.get(f"{server}/api/health").json()["status"] == "ok"
    info = httpx.get(f"{server}/api/model").json()
    assert info["classes"] == ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
    assert info["input"]["width"] == 48 and info["params"] > 0
    assert info["limits"]["max_bytes"] == LIMIT
    assert info["detector"]["name"].startswith("BlazeFace") and info["detector"]["input"]["width"] == 192
    assert info["crop_margin"] == 0.1


def test_openapi_describes_the_api(server):
    spec = httpx.get(f"{server}/openapi.json").json()
    predict = spec["paths"]["/api/predict"]["post"]
    assert "multipart/form-data" in predict["requestBody"]["content"]
    assert "image/jpeg" in predict["requestBody"]["content"]
    assert {"200", "400", "413", "415", "422"} <= set(predict["responses"])
    assert predict["responses"]["200"]["content"]["application/json"]["example"]["faces"]
    assert {"/api/health", "/api/model"} <= set(spec["paths"])
    assert httpx.get(f"{server}/docs").status_code == 200


def test_one_face(server, media):
    r = post_file(server, media / "fr_obama.jpg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["width"], body["height"]) == (910, 1137)
    assert len(body["faces"]) == 1
    face = body["faces"][0]
    assert set(face["scores"]) == {"neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"}
    assert abs(sum(face["scores"].values()) - 1) < 1e-3
    assert face["emotion"] == max(face["scores"], key=face["scores"].get)
    b = face["box"]
    assert 0 <= b["x"] < 910 and 0 <= b["y"] < 1137 and b["width"] > 100
    assert body["model_version"] and body["timings_ms"]["total"] > 0


@pytest.mark.parametrize("name, faces", [
    ("faceapi_bbt1.jpg", 4), ("faceapi_bbt4.jpg", 6), ("fr_two_people.jpg", 2),
    ("faceapi_bbt2.jpg", 3),         # one man in profile, one small in the background
    ("fr_obama_and_biden.jpg", 3),   # with the girl at the lower right, looking down
    ("fr_kit_with_rose.jpg", 2),
])
def test_every_face_in_group_photos(server, media, name, faces):
    r = post_file(server, media / name)
    assert r.status_code == 200
    assert len(r.json()["faces"]) == faces


def test_photo_that_is_just_a_face(server, media):
    """Forehead to chin, touching every border: detectors miss such faces; the padded look finds it."""
    face = Image.open(media / "faceapi_happy.jpg").convert("RGB").crop((250, 75, 390, 215))
    png = io.BytesIO()
    face.save(png, format="PNG")
    r = httpx.post(f"{server}/api/predict", content=png.getvalue(), headers={"content-type": "image/png"}, timeout=60)
    [found] = r.json()["faces"]
    assert found["found_by"] == "padded" and found["emotion"] == "happiness"
    assert found["box"]["width"] > 100


NO_FACE_CROPS = [  # (photo, left, top, right, bottom): parts of real photos with no face in them
    ("fr_obama.jpg", 420, 600, 910, 1137),            # folded arms and a hand: a tile once took it for a face
    ("fr_obama_partial_face.jpg", 0, 560, 491, 1137),  # the same hand, another crop
    ("fr_obama_and_biden.jpg", 0, 1000, 700, 1428),    # suits, a tie, a lectern
]


@pytest.mark.parametrize("name, left, top, right, bottom", NO_FACE_CROPS)
def test_no_face_in_photos_without_one(server, media, name, left, top, right, bottom):
    part = Image.open(media / name).convert("RGB").crop((left, top, right, bottom))
    jpeg = io.BytesIO()
    part.resize((part.width * 2, part.height * 2)).save(jpeg, format="JPEG", quality=92)  # > 1024 px: tiles too
    r = httpx.post(f"{server}/api/predict", content=jpeg.getvalue(), headers={"content-type": "image/jpeg"}, timeout=60)
    assert r.status_code == 200 and r.json()["faces"] == [], r.json()["faces"]


def test_browser_style_multipart_boundary(server, media):
    """Browsers send boundaries like ----WebKitFormBoundaryAbC: case matters in a boundary."""
    boundary = "----WebKitFormBoundaryQx7TfZk2LmNwYp4a"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + (media / "faceapi_happy.jpg").read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    r = httpx.post(f"{server}/api/predict", content=body, timeout=60,
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 200, r.text
    assert len(r.json()["faces"]) == 1


def test_happy_face_is_happiness(server, media):
    r = httpx.post(f"{server}/api/predict", content=(media / "faceapi_happy.jpg").read_bytes(),
                   headers={"content-type": "image/jpeg"}, timeout=60)
    assert r.status_code == 200
    assert r.json()["faces"][0]["emotion"] == "happiness"


def test_annotated_image(server, media):
    r = post_file(server, media / "fr_two_people.jpg", params={"annotate": "true"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(r.content))
    assert im.size == (1126, 661)
    r = post_file(server, media / "fr_two_people.jpg", headers={"accept": "image/png"})
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).format == "PNG"


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming huge dimensions, with a tiny (compressed) body."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + b"\x00" * (width // 8 + 1)
    body = zlib.compress(row * 16, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind, send, status, message", [
    ("not an image", dict(files={"file": ("notes.txt", b"hello, not an image")}), 400, "not an image"),
    ("truncated", "truncated", 400, "truncated"),
    ("empty body", dict(content=b"", headers={"content-type": "image/jpeg"}), 400, "empty"),
    ("empty file", dict(files={"file": ("a.jpg", b"")}), 400, "empty"),
    ("wrong content type", dict(content=b"hello", headers={"content-type": "text/plain"}), 415, "not an image"),
    ("no file field", dict(files={"photo": ("a.jpg", b"123")}), 422, "'file'"),
    ("over the size limit", dict(content=b"\xff" * (LIMIT + 1), headers={"content-type": "image/jpeg"}), 413, "limit"),
    ("decompression bomb", dict(content=png_bomb(60000, 60000), headers={"content-type": "image/png"}), 413, "pixels"),
])
def test_bad_input_is_a_clear_4xx(server, media, kind, send, status, message):
    if send == "truncated":
        data = (media / "fr_biden.jpg").read_bytes()
        send = dict(files={"file": ("cut.jpg", data[: len(data) // 3])})
    r = httpx.post(f"{server}/api/predict", timeout=60, **send)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert httpx.get(f"{server}/api/health").status_code == 200  # still serving


def test_oversized_upload_is_refused_before_it_is_read(server):
    """A declared Content-Length over the limit is answered 413 before the body arrives."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(server)
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 671088640\r\n\r\n\xff\xd8")  # 640 MB promised, 2 bytes sent
        reply = s.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply


def test_32_concurrent_requests_all_answered(server, media):
    data = (media / "fr_two_people.jpg").read_bytes()

    def one(_):
        return httpx.post(f"{server}/api/predict", files={"file": ("p.jpg", data)}, timeout=180)

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(one, range(32)))
    assert [r.status_code for r in responses] == [200] * 32
    first = responses[0].json()["faces"]
    assert all(r.json()["faces"] == first for r in responses)  # same answer under load


def test_overload_is_refused_at_once_with_503_and_retry_after(media):
    """One worker, one place in the queue, a short wait: of 8 simultaneous uploads some are
    served and the rest refused quickly with 503 + Retry-After, and the server stays healthy."""
    from tests.conftest import start_server, stop_server

    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1"],
                             env={"FERLIVE_WORKERS": "1", "FERLIVE_QUEUE": "1", "FERLIVE_QUEUE_WAIT_S": "0.2"})
    try:
        data = (media / "fr_two_people.jpg").read_bytes()

        def one(_):
            r = httpx.post(f"{url}/api/predict", files={"file": ("p.jpg", data)}, timeout=60)
            return r.status_code, r.headers.get("retry-after"), r.elapsed.total_seconds(), r.json()

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(8)))
        statuses = sorted(status for status, *_ in results)
        assert set(statuses) <= {200, 503} and 200 in statuses and statuses.count(503) >= 5, statuses
        for status, retry_after, elapsed, body in results:
            if status == 503:
                assert retry_after and int(retry_after) >= 1 and "busy" in body["detail"]
                assert elapsed < 5, elapsed  # refused at once, not after a long wait
        assert httpx.get(f"{url}/api/health").json()["status"] == "ok"
        assert post_file(url, media / "fr_two_people.jpg").status_code == 200  # serves again once idle
        assert httpx.get(f"{url}/api/model").json()["limits"]["workers"] == 1
    finally:
        stop_server(proc)


def test_page_is_served_with_isolation_headers(server):
    r = httpx.get(f"{server}/")
    assert r.status_code == 200 and "fer-live" in r.text
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert r.headers["cross-origin-embedder-policy"] == "require-corp"
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval'" not in csp.replace("wasm-unsafe-eval'", "")
    assert "camera=(self)" in r.headers["permissions-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    wasm = httpx.get(f"{server}/vendor/tfjs-backend-wasm-simd.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
