"""The real page in real headless Chromium (Debian's), driven by Playwright, with a fake
camera fed from ../shared/media. What the page shows is read from window.ferlive.state."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MEDIA, PAGE_MODEL, REPO, wait_for

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
BASE_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"Chromium not found at {CHROMIUM}")


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def watch_problems(page, server) -> list[str]:
    """A list that fills with the page's script errors, CSP reports and requests leaving the server."""
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: problems.append(f"off-device request {r.url}")
            if not r.url.startswith((server, "data:", "blob:")) else None)
    return problems


@pytest.fixture
def open_page(playwright, server):
    """open_page(clip=None, deny_camera=False, bundle=None) -> a page on the app, model loaded
    (from the folder `bundle` instead of web/model/ where given)."""
    browsers = []

    def _open(clip: str | None = None, deny_camera: bool = False, bundle: Path | None = None):
        flags = list(BASE_FLAGS)
        if clip:
            flags += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={MEDIA / clip}"]
            flags.append("--deny-permission-prompts" if deny_camera else "--use-fake-ui-for-media-stream")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        browsers.append(browser)
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        errors = watch_problems(page, server)
        if bundle:
            page.route("**/model/*", lambda route: route.fulfill(path=bundle / route.request.url.rsplit("/", 1)[1]))
        page.goto(server)
        wait_for(page, "window.ferlive && (window.ferlive.ready || window.ferlive.error)", timeout=90_000)
        assert page.evaluate("window.ferlive.error") is None
        page.errors = errors
        return page

    yield _open
    for b in browsers:
        b.close()


def collect_states(page, seconds: float, interval: float = 0.15):
    states, end = [], time.time() + seconds
    while time.time() < end:
        state = page.evaluate("window.ferlive.state")
        if state:
            states.append(state)
        time.sleep(interval)
    return states


def test_camera_face_gets_a_box_and_label(open_page, media):
    page = open_page("fr_short_hamilton_clip_5s_10fps.y4m")
    started = time.time()
    page.click("#start")
    wait_for(page, "window.ferlive.state && window.ferlive.state.faces.length > 0", timeout=60_000)
    # The clip opens on a small frontal face: it is labelled within seconds, not "No face in view".
    assert time.time() - started < 10
    state = page.evaluate("window.ferlive.state")
    face = state["faces"][0]
    assert state["mode"] == "camera" and state["mirrored"] is True
    assert face["label"] in state_classes(page) and 0 < face["score"] <= 1
    b = face["box"]
    assert 0 <= b["x"] < state["width"] and 0 <= b["y"] < state["height"] and b["width"] > 20
    assert state["timings"]["detect"] > 0 and state["timings"]["classify"] > 0
    # The readout a person sees
    assert page.text_content("#detect-ms").endswith("ms") and page.text_content("#backend") in ("wasm (threads)", "wasm (no threads)", "webgl", "cpu")
    assert page.evaluate("crossOriginIsolated") is True
    assert not page.errors, page.errors


def state_classes(page):
    return page.evaluate("window.ferlive.meta.classes")


def test_expressions_clip_labels(open_page, media):
    """The labelled clip: 7 photos x 7 frames at 5 fps. Read the label shown mid-segment."""
    segments = json.loads((media / "expressions_7x_5fps.json").read_text())["segments"]
    page = open_page("expressions_7x_5fps.y4m")
    page.click("#start")
    wait_for(page, "window.ferlive.state && window.ferlive.state.faces.length > 0", timeout=60_000)
    states = collect_states(page, 25)
    shown = {s["label"]: Counter() for s in segments}
    for st in states:
        if not st["faces"]:
            continue
        frame = int(st["videoTime"] * 5) % 49
        seg = segments[frame // 7]
        if 2 <= frame - seg["first_frame"] <= 5:  # away from the cuts, where smoothing lags
            shown[seg["label"]][st["faces"][0]["label"]] += 1
    report = {k: v.most_common(1)[0][0] if v else None for k, v in shown.items()}
    print("label shown per segment:", report)
    for expected in ("happiness", "surprise", "neutral"):
        assert report[expected] == expected, report


def test_camera_permission_denied_shows_a_message(open_page):
    page = open_page("fr_short_hamilton_clip_5s_10fps.y4m", deny_camera=True)
    page.click("#start")
    wait_for(page, "document.getElementById('message').textContent.length > 0 && "
                           "!document.getElementById('message').textContent.startsWith('Starting')", timeout=30_000)
    message = page.text_content("#message")
    assert "permission" in message.lower() and "denied" in message.lower(), message
    assert page.is_visible("#start") and page.text_content("#start") == "Try again"


def test_camera_that_stops_gives_a_message_and_restarts(open_page, media):
    """A camera unplugged or taken away ends its track: the page says so and offers a restart
    instead of freezing on the last frame. (A track's own stop() fires no 'ended', so the test
    ends the track and then delivers the event the browser would.)"""
    page = open_page("fr_short_hamilton_clip_5s_10fps.y4m")
    started = time.time()
    page.click("#start")
    wait_for(page, "window.ferlive.state && window.ferlive.state.faces.length > 0", timeout=60_000)
    # The clip opens on a small frontal face: it is labelled within seconds, not "No face in view".
    assert time.time() - started < 10
    page.evaluate("""() => {
        const track = document.getElementById('video').srcObject.getVideoTracks()[0];
        track.stop();
        track.dispatchEvent(new Event('ended'));
    }""")
    wait_for(page, "document.getElementById('message').classList.contains('error')", timeout=10_000)
    assert "camera stopped" in page.text_content("#message")
    assert page.text_content("#start") == "Restart camera" and page.is_visible("#start")
    frame = page.evaluate("window.ferlive.state")
    assert frame is None  # nothing is presented as live any more
    page.click("#start")
    wait_for(page, "window.ferlive.state && window.ferlive.state.faces.length > 0", timeout=60_000)
    assert page.text_content("#message") == "" or "face" in page.text_content("#message")
    assert not page.errors, page.errors


def drop_file(page, selector, path):
    data = base64.b64encode(path.read_bytes()).decode()
    page.evaluate("""([selector, name, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, { type: 'image/jpeg' }));
        document.querySelector(selector).dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true }));
    }""", [selector, path.name, data])


@pytest.mark.parametrize("name, at_least", [("faceapi_bbt4.jpg", 6), ("faceapi_bbt1.jpg", 4)])
def test_dropped_group_photo_gets_a_box_per_face(open_page, media, name, at_least):
    page = open_page()
    drop_file(page, "#viewport", media / name)
    wait_for(page, "window.ferlive.state && window.ferlive.state.mode === 'photo'", timeout=90_000)
    state = page.evaluate("window.ferlive.state")
    assert len(state["faces"]) >= at_least, state["faces"]
    assert all(f["label"] in state_classes(page) for f in state["faces"])
    assert page.text_content("#message").startswith(f"{len(state['faces'])} faces found")


def test_detector_decoding_matches_python(open_page):
    """web/js/blazeface.js and ferlive/blazeface.py turn the same raw outputs into the same boxes,
    and look at the same regions (letterbox, tiles, padding, close-ups, crop boxes)."""
    from ferlive import blazeface as bf

    rng = np.random.default_rng(7)
    raws = []
    for _ in range(4):
        raw = rng.normal(0, 3, (bf.GRID * bf.GRID, 17)).astype(np.float32)
        raw[:, 0] = rng.normal(-6, 4, len(raw))  # mostly "no face", a few dozen candidates
        raw[:, 3:5] = np.abs(raw[:, 3:5]) * 10 + 8
        raws.append(raw)
    regions = [bf.letterbox(640, 480), *bf.tiles(2000, 1400)[:2], bf.padded(300, 200)]
    boxes, scores = [], []
    for raw, region in zip(raws, regions):
        b, sc = bf.weighted_nms(*bf.decode(raw))
        boxes.append(bf.to_image(b, region))
        scores.append(sc)
    boxes, scores = np.concatenate(boxes), np.concatenate(scores)
    kept = bf.merge(boxes, scores)
    page = open_page()
    js = page.evaluate("""async ([raws, regions]) => {
        const bf = await import('/js/blazeface.js');
        const boxes = []; const scores = [];
        raws.forEach((raw, i) => {
            const found = bf.weightedNms(bf.decode(Float32Array.from(raw.flat())));
            const [left, top, side] = regions[i];
            boxes.push(...bf.toImage(found.boxes, { left, top, side }));
            scores.push(...found.scores);
        });
        const asList = (r) => [r.left, r.top, r.side];
        const looks = regions.map(([left, top, side]) => ({ left, top, side }));
        return { boxes, scores, kept: bf.merge(boxes, scores),
                 tiles: bf.tiles(2000, 1400).map(asList), letterbox: asList(bf.letterbox(640, 480)),
                 padded: asList(bf.padded(300, 200)), closeUps: boxes.map((b) => asList(bf.closeUp(b))),
                 cropBoxes: bf.cropBoxes(looks, 640, 480),
                 rounded: boxes.map((b) => bf.roundBox(b, 640, 480)).map((r) => [r.x, r.y, r.width, r.height]) };
    }""", [[r.tolist() for r in raws], [list(r) for r in regions]])
    assert len(boxes) > 4 and len(kept) > 1  # the fixture exercises suppression and merging
    assert np.allclose(js["boxes"], boxes, atol=1e-9) and np.allclose(js["scores"], scores, atol=1e-12)
    assert js["kept"] == kept
    assert js["tiles"] == [list(t) for t in bf.tiles(2000, 1400)]
    assert js["letterbox"] == list(bf.letterbox(640, 480)) and js["padded"] == list(bf.padded(300, 200))
    assert np.allclose(js["closeUps"], [bf.close_up(b) for b in boxes], atol=1e-9)
    assert np.allclose(js["cropBoxes"], bf.crop_boxes(regions, 640, 480), atol=1e-6)  # float32 in Python
    assert np.allclose(js["rounded"], [bf.round_box(b, 640, 480) for b in boxes], atol=1e-9)


PARITY_PHOTOS = ["faceapi_bbt1.jpg", "faceapi_bbt2.jpg", "faceapi_bbt4.jpg", "fr_two_people.jpg",
                 "fr_obama_and_biden.jpg", "fr_kit_with_rose.jpg", "faceapi_happy.jpg"]


def test_page_and_api_find_the_same_boxes(open_page, server, media):
    """The same photo through the page's photo mode and through the API: the same faces, boxes
    overlapping by IoU >= 0.7 (the page shrinks photos over 1600 px, so not to the pixel)."""
    import httpx

    from ferlive.blazeface import iou

    page = open_page()
    for name in PARITY_PHOTOS:
        api = httpx.post(f"{server}/api/predict", content=(media / name).read_bytes(),
                         headers={"content-type": "image/jpeg"}, timeout=60).json()["faces"]
        page.evaluate("window.ferlive.state = null")
        drop_file(page, "#viewport", media / name)
        wait_for(page, "window.ferlive.state && window.ferlive.state.mode === 'photo'", timeout=60_000)
        state = page.evaluate("window.ferlive.state")
        to_box = lambda b, k=1.0: np.array([b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]]) / k  # noqa: E731
        ours = [to_box(f["box"], state["scale"]) for f in state["faces"]]
        theirs = np.array([to_box(f["box"]) for f in api])
        assert len(ours) == len(theirs), (name, state["faces"], api)
        for box in ours:
            assert iou(box, theirs).max() >= 0.7, (name, box, theirs)


def test_dropped_photo_that_is_just_a_face(open_page, media, tmp_path):
    face = tmp_path / "face.png"
    Image.open(media / "faceapi_happy.jpg").convert("RGB").crop((250, 75, 390, 215)).save(face)
    page = open_page()
    drop_file(page, "#viewport", face)
    wait_for(page, "window.ferlive.state && window.ferlive.state.mode === 'photo'", timeout=60_000)
    [found] = page.evaluate("window.ferlive.state.faces")
    assert found["foundBy"] == "padded" and found["label"] == "happiness"
    assert page.text_content("#message") == "1 face found. It fills the photo, so it was found with a border added around it."


def test_dropped_photo_without_a_face(open_page, media, tmp_path):
    from tests.test_api import NO_FACE_CROPS

    page = open_page()
    for name, left, top, right, bottom in NO_FACE_CROPS:
        part = Image.open(media / name).convert("RGB").crop((left, top, right, bottom))
        path = tmp_path / f"part-{name}"
        part.resize((part.width * 2, part.height * 2)).save(path, quality=92)  # > 1024 px: tiles too
        page.evaluate("window.ferlive.state = null")
        drop_file(page, "#viewport", path)
        wait_for(page, "window.ferlive.state && window.ferlive.state.mode === 'photo'", timeout=60_000)
        assert page.evaluate("window.ferlive.state.faces") == [], name
        assert page.text_content("#message") == "No face found in this photo."


def test_chosen_photo_that_is_not_an_image(open_page, tmp_path):
    page = open_page()
    bad = tmp_path / "notes.txt"
    bad.write_text("not a photo")
    page.set_input_files("#file", str(bad))
    wait_for(page, "document.getElementById('message').classList.contains('error')")
    assert "not an image" in page.text_content("#message")


def test_photo_that_fails_in_the_models_says_so(open_page, media):
    """A backend error mid-photo (a lost GPU context, say) ends in a message, not in
    'Looking for faces…' for ever."""
    page = open_page()
    page.evaluate("() => { window.ferlive.detector.detect = async () => { throw new Error('context lost'); }; }")
    drop_file(page, "#viewport", media / "faceapi_happy.jpg")
    wait_for(page, "document.getElementById('message').classList.contains('error')")
    assert page.text_content("#message") == 'Could not process "faceapi_happy.jpg": context lost. Reload the page to retry.'


def test_bundle_in_the_browser_matches_keras(open_page, ferplus_dir):
    from training.data import load_ferplus
    from training.models import load_model

    test = load_ferplus(ferplus_dir)["test"]
    images = test.images[:300].astype("float32")
    keras_probs = np.asarray(load_model(PAGE_MODEL).predict(images, verbose=0))
    page = open_page()
    browser_probs = np.array(page.evaluate("(batch) => window.ferlive.predictFaces(batch)", images[..., 0].tolist()))
    agreement = (browser_probs.argmax(1) == keras_probs.argmax(1)).mean()
    print(f"browser vs Keras on {len(images)} Test images: top-1 agreement {agreement:.4f}, "
          f"max |dp| {np.abs(browser_probs - keras_probs).max():.2e}")
    assert agreement >= 0.99
    # uint8 kernels move probabilities a little; the browser must add nothing to what the export measured
    meta = json.loads((REPO / "web" / "model" / "meta.json").read_text())
    assert np.abs(browser_probs - keras_probs).max() <= meta["parity"]["max_abs_prob_diff"] + 0.005


def test_kernels4_bundle_in_the_browser_matches_python(open_page, kernels4_bundle, ferplus_dir):
    """The page expands a bundle's 4-bit kernels (web/js/kernels4.js) as export/kernels4.py does."""
    from export.convert import run_bundle
    from training.data import load_ferplus

    images = load_ferplus(ferplus_dir)["test"].images[:100].astype("float32")
    page = open_page(bundle=kernels4_bundle)
    assert page.evaluate("window.ferlive.meta.quantization") == "kernels4"
    browser_probs = np.array(page.evaluate("(batch) => window.ferlive.predictFaces(batch)", images[..., 0].tolist()))
    python_probs = run_bundle(kernels4_bundle, images)
    assert np.abs(browser_probs - python_probs).max() < 1e-3, np.abs(browser_probs - python_probs).max()


def test_face_crop_matches_python(open_page, media):
    """The page's crop (crop.js) and the API's (crop.py) feed the model the same numbers."""
    from ferlive.crop import crop_face, to_gray

    rgb = np.asarray(Image.open(media / "faceapi_happy.jpg").convert("RGB"))
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")  # lossless, no colour profile: both decoders agree
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    boxes = [{"x": 236, "y": 36, "width": 183, "height": 183}, {"x": -20, "y": 150, "width": 160, "height": 150}]
    page = open_page()
    js = np.array(page.evaluate("([url, boxes]) => window.ferlive.cropsOf(url, boxes)", [url, boxes]))
    margin = page.evaluate("window.ferlive.meta.crop_margin")
    gray = to_gray(rgb)
    py = np.stack([crop_face(gray, (b["x"], b["y"], b["width"], b["height"]), margin) for b in boxes])
    assert js.shape == py.shape == (2, 48, 48, 1)
    assert np.abs(js - py).max() < 0.5, np.abs(js - py).max()


def test_model_that_fails_to_load_shows_a_message(playwright, server):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BASE_FLAGS, headless=True)
    try:
        page = browser.new_page()
        page.route("**/model/model.json", lambda route: route.fulfill(status=404, body="gone"))
        page.goto(server)
        wait_for(page, "window.ferlive && window.ferlive.error", timeout=60_000)
        message = page.text_content("#message")
        assert "model failed to load" in message and "reload" in message.lower()
        assert page.is_disabled("#start")
    finally:
        browser.close()


def test_nothing_is_fetched_from_outside_the_server(open_page, media):
    page = open_page("fr_short_hamilton_clip_5s_10fps.y4m")
    page.click("#start")
    wait_for(page, "window.ferlive.state && window.ferlive.state.frame > 3", timeout=60_000)
    drop_file(page, "#viewport", media / "fr_two_people.jpg")   # also loads the photo detector
    wait_for(page, "window.ferlive.state.mode === 'photo'", timeout=90_000)
    assert not [e for e in page.errors if e.startswith("off-device")], page.errors


def test_api_docs_render_offline_and_try_out_works(playwright, server, media):
    """/docs is Swagger UI from the app's own files: it renders with no request leaving the
    server, lists the predict operation, and "Try it out" on a real photo answers 200."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BASE_FLAGS, headless=True)
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        problems = watch_problems(page, server)
        page.goto(f"{server}/docs")
        operation = page.locator(".opblock-post", has_text="/api/predict")
        operation.wait_for(timeout=30_000)
        operation.locator(".opblock-summary").click()
        page.get_by_role("button", name="Try it out").click()
        operation.locator("input[type=file]").set_input_files(str(media / "faceapi_happy.jpg"))
        page.get_by_role("button", name="Execute").click()
        status = operation.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(timeout=60_000)
        body = operation.locator(".live-responses-table .microlight").first.text_content()
        assert status.text_content().strip().startswith("200"), body
        assert '"emotion"' in operation.locator(".live-responses-table .microlight").first.text_content()
        assert not problems, problems
    finally:
        browser.close()


def test_long_run_keeps_tensors_and_heap_constant(playwright, server, media):
    """30 s of camera (bench/page_soak.py runs it for 10 minutes): no tfjs tensor leaks, the JS heap
    after garbage collection stays bounded, frames keep coming. The 10-minute figure is in README."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from page_soak import leaks, soak

    samples = soak(server, seconds=30, interval=6, warmup=10, playwright=playwright)
    assert len(samples) >= 5
    assert not leaks(samples), leaks(samples)
