"""Load on the image API over loopback: requests/s and p50/p99 latency at several concurrencies.

    python bench/api_load.py                       # starts uvicorn server:app itself
    python bench/api_load.py --url http://127.0.0.1:8000 --seconds 20

Each level runs for a bounded time (--seconds) and a bounded number of requests
(--max-requests); the photo is fr_two_people.jpg resized to 640x480 (two faces).
Clients behave well: a 503 (server busy) is counted under `busy` and the client waits the
`Retry-After` seconds before its next request; any other non-200 is an error.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def photo_640x480() -> bytes:
    im = Image.open(REPO.parent / "shared" / "media" / "fr_two_people.jpg").convert("RGB").resize((640, 480))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def run_level(url: str, data: bytes, concurrency: int, seconds: float, max_requests: int):
    latencies, errors, busy, lock = [], 0, 0, threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(_):
        nonlocal errors, busy
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() < deadline:
                with lock:
                    if len(latencies) + errors + busy >= max_requests:
                        return
                t = time.perf_counter()
                r = client.post(f"{url}/api/predict", content=data, headers={"content-type": "image/jpeg"})
                with lock:
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t)
                    elif r.status_code == 503:
                        busy += 1
                    else:
                        errors += 1
                if r.status_code == 503:
                    time.sleep(min(float(r.headers.get("retry-after", 1)), max(0.0, deadline - time.perf_counter())))

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0] * 1000] * 99
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, len(latencies), busy, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server; default: start one on a free port")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 48])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--max-requests", type=int, default=2000)
    args = ap.parse_args()
    proc = None
    url = args.url
    if not url:
        from tests.conftest import start_server, stop_server
        proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--log-level", "warning"])
    try:
        data = photo_640x480()
        client_warm = httpx.post(f"{url}/api/predict", content=data, headers={"content-type": "image/jpeg"}, timeout=60)
        faces = len(client_warm.json()["faces"])
        print(f"POST /api/predict, 640x480 JPEG ({len(data) / 1e3:.0f} kB, {faces} faces), {os.cpu_count()} CPUs, "
              f"{args.seconds:.0f} s per level")
        print(f"{'concurrency':>11} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'ok':>6} {'busy':>6} {'errors':>6}")
        for level in args.levels:
            rps, p50, p99, ok, busy, errors = run_level(url, data, level, args.seconds, args.max_requests)
            print(f"{level:>11} {rps:>7.1f} {p50:>8.0f} {p99:>8.0f} {ok:>6} {busy:>6} {errors:>6}")
    finally:
        if proc:
            stop_server(proc)


if __name__ == "__main__":
    main()
