"""The page on the fake camera for a long time: does it leak tensors or memory?

    python bench/page_soak.py [--minutes 10] [--interval 15]

Plays the Hamilton clip (looping) through Chromium's fake camera into the real page, with the
app's own headers (CSP on), and samples every --interval seconds after a warm-up: frames
processed, tfjs tensors alive (`tf.memory().numTensors`), tfjs bytes, and the JS heap after a
forced garbage collection (DevTools protocol). Exits 1 on a leak: more tensors at the end than
after the warm-up, a JS heap that grew by more than 20% (and 5 MB), or frames that stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import MEDIA, start_server, stop_server, wait_for  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
CLIP = MEDIA / "fr_short_hamilton_clip_5s_10fps.y4m"
TF_MEMORY = """async () => {
  const { tf } = await import('/js/tf.js');
  const m = tf.memory();
  return { tensors: m.numTensors, bytes: m.numBytes, frame: window.ferlive.state ? window.ferlive.state.frame : 0 };
}"""


def soak(url: str, seconds: float, interval: float, warmup: float = 20, clip: Path = CLIP, log=print,
         playwright=None) -> list[dict]:
    """Samples (t, frame, tensors, bytes, heap) from a page running the camera for `seconds`.
    Pass a running `playwright` (as the tests have one) or it starts its own."""
    if playwright is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            return soak(url, seconds, interval, warmup, clip, log, playwright=p)
    browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                         args=FLAGS + [f"--use-file-for-fake-video-capture={clip}"])
    try:
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)
        page.goto(url)
        wait_for(page, "window.ferlive && (window.ferlive.ready || window.ferlive.error)", 90_000)
        page.click("#start")
        wait_for(page, "window.ferlive.state && window.ferlive.state.frame > 3", 60_000)
        time.sleep(warmup)
        samples, start = [], time.time()
        while True:
            cdp.send("HeapProfiler.collectGarbage")
            heap = cdp.send("Runtime.getHeapUsage")["usedSize"]
            sample = {"t": round(time.time() - start), **page.evaluate(TF_MEMORY), "heap": heap}
            samples.append(sample)
            log(f"{sample['t']:>6} s  frame {sample['frame']:>6}  tensors {sample['tensors']:>5}  "
                f"tfjs {sample['bytes'] / 1e6:7.2f} MB  JS heap {heap / 1e6:7.2f} MB")
            if time.time() - start >= seconds:
                return samples
            time.sleep(interval)
    finally:
        browser.close()


def leaks(samples: list[dict]) -> list[str]:
    """What looks like a leak (or a stall) in a soak's samples; empty if none."""
    first, last = samples[0], samples[-1]
    problems = []
    if last["tensors"] > first["tensors"]:
        problems.append(f"tfjs tensors grew from {first['tensors']} to {last['tensors']}")
    growth = last["heap"] - first["heap"]
    if growth > max(5e6, 0.2 * first["heap"]):
        problems.append(f"JS heap grew by {growth / 1e6:.1f} MB ({first['heap'] / 1e6:.1f} -> {last['heap'] / 1e6:.1f} MB)")
    if last["frame"] <= first["frame"]:
        problems.append("no frame was processed during the soak")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", type=float, default=15, help="seconds between samples")
    args = ap.parse_args()
    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--log-level", "warning"])
    try:
        samples = soak(url, args.minutes * 60, args.interval)
    finally:
        stop_server(proc)
    problems = leaks(samples)
    frames = samples[-1]["frame"] - samples[0]["frame"]
    print(f"{args.minutes:g} min, {frames} frames ({frames / max(1, samples[-1]['t']):.1f}/s): "
          + ("; ".join(problems) if problems else "no leak: tensors constant, heap bounded"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
