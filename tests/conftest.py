"""Shared fixtures: paths, the real FER+ folder (skipped where absent), a running server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "media"
FERPLUS = Path(os.environ.get("FERPLUS_DATA", REPO.parent / "shared" / "data" / "ferplus"))
PAGE_MODEL = REPO / "models" / "pagenet" / "model.keras"  # web/model is its export
API_MODEL = REPO / "models" / "api" / "model.keras"  # what the API and the CLI serve by default

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def ferplus_dir() -> Path:
    if not (FERPLUS / "fer2013new.csv").is_file():
        pytest.skip(f"real FER+ data not found at {FERPLUS} (set FERPLUS_DATA to run this test)")
    return FERPLUS


@pytest.fixture(scope="session")
def media() -> Path:
    if not MEDIA.is_dir():
        pytest.skip(f"sample media not found at {MEDIA}")
    return MEDIA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: list[str], env: dict | None = None, scheme: str = "http", timeout: float = 120):
    """Start the real app in a subprocess; returns (process, base URL) once /api/health answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, *args, "--port", str(port)], cwd=REPO,
                            env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"{scheme}://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2, verify=False).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server did not answer within {timeout} s:\n{proc.stdout.read()}")


def wait_for(page, expression: str, timeout: float = 30_000):
    """Polls a JS expression in a Playwright page until it is truthy (timeout in ms).
    Playwright's wait_for_function evaluates its predicate with eval(), which the page's
    Content-Security-Policy forbids; page.evaluate goes through the DevTools protocol,
    which CSP does not govern, so tests and benches see the page as users get it."""
    deadline = time.time() + timeout / 1000
    while not page.evaluate(expression):
        if time.time() > deadline:
            raise TimeoutError(f"not true within {timeout / 1000:g} s: {expression}")
        time.sleep(0.1)


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server():
    """The real app (uvicorn server:app) on the committed model, with a small upload limit
    so the size checks need no huge files."""
    proc, url = start_server(["-m", "uvicorn", "server:app", "--host", "127.0.0.1"],
                             env={"FERLIVE_MAX_BYTES": str(3 * 1024 * 1024), "FERLIVE_MAX_PIXELS": str(30_000_000),
                                  # room for the load tests: every request waits for its turn
                                  "FERLIVE_QUEUE": "64", "FERLIVE_QUEUE_WAIT_S": "300"})
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def kernels4_bundle(tmp_path_factory) -> Path:
    """The committed page model exported with 4-bit kernels (export/kernels4.py), in-process: the
    export's Python and browser readers are both checked against it."""
    from export.convert import main as convert

    out = tmp_path_factory.mktemp("kernels4") / "model"
    convert(["--model", str(PAGE_MODEL), "--out", str(out), "--quantize", "kernels4", "--parity-images", "0"])
    return out
