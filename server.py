"""The web app: serves the page in web/ and the image API under /api.

    uvicorn server:app                 # http://127.0.0.1:8000
    python -m ferlive serve --https    # LAN + self-signed certificate, for phones

Uploads are read into memory up to a size limit and never written to disk; the
client's filename is never used. Limits come from the environment:
FERLIVE_MAX_BYTES (default 10 MB) and FERLIVE_MAX_PIXELS (default 40 MP); the load limits
(FERLIVE_WORKERS, FERLIVE_QUEUE, FERLIVE_QUEUE_WAIT_S) are in ferlive/admission.py.
"""

from __future__ import annotations

import mimetypes
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from python_multipart.multipart import MultipartParser, parse_options_header

from ferlive import blazeface as bf
from ferlive.admission import Admission, Busy
from ferlive.images import MAX_PIXELS, BadImage, ImageTooLarge, decode_image

WEB = Path(__file__).resolve().parent / "web"
MAX_BYTES = int(os.environ.get("FERLIVE_MAX_BYTES", 10 * 1024 * 1024))
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".mjs")


def _analyser():
    from ferlive.pipeline import Analyser

    return Analyser()


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.analyser = await run_in_threadpool(_analyser)  # load the model once, before serving
    app.state.admission = Admission.from_env()
    yield


app = FastAPI(
    title="fer-live",
    version="0.1.0",
    summary="Facial-expression recognition (the 8 FER+ emotions) for every face in an image.",
    lifespan=lifespan,
    docs_url=None,  # served below from vendored files: FastAPI's default loads Swagger UI from a CDN
    redoc_url=None,
)


# Only this origin: scripts, styles, model files, images. 'wasm-unsafe-eval' lets tfjs compile
# its WebAssembly backend (and nothing else); its threads are workers whose scripts are blob:
# URLs made by the page itself (a blob: URL can only be made by this origin's scripts);
# photos are shown from blob: URLs; Swagger UI (/docs) sets inline styles.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self' blob: 'wasm-unsafe-eval'", "worker-src 'self' blob:",
    "connect-src 'self' blob: data:", "img-src 'self' blob: data:", "media-src 'self' blob: mediastream:",
    "style-src 'self' 'unsafe-inline'", "font-src 'self' data:", "object-src 'none'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    # COOP/COEP make the page cross-origin isolated, which tfjs-wasm threads need.
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The camera for this origin only; nothing else the page never uses.
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    "Referrer-Policy": "no-referrer",
}


@app.middleware("http")
async def security_headers(request: Request, call_next):
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    return response


@app.exception_handler(Busy)
async def busy(request: Request, exc: Busy):
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after_s)})


def _error(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


async def _read_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BYTES:
        raise _error(413, f"upload is {int(declared):,} bytes; the limit is {MAX_BYTES:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise _error(413, f"upload is over the limit of {MAX_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _multipart_file(body: bytes, content_type: str, field: str = "file") -> bytes:
    """The bytes of one form field, parsed in memory (Starlette's own parser spools to disk)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise _error(400, "multipart upload without a boundary")
    parts: list[tuple[dict, bytearray]] = []
    header = {"name": b"", "value": b""}

    def on_part_begin():
        parts.append(({}, bytearray()))

    def on_header_field(data, start, end):
        header["name"] += data[start:end]

    def on_header_value(data, start, end):
        header["value"] += data[start:end]

    def on_header_end():
        parts[-1][0][header["name"].decode("latin-1").lower()] = header["value"].decode("latin-1")
        header["name"], header["value"] = b"", b""

    def on_part_data(data, start, end):
        parts[-1][1].extend(data[start:end])

    try:
        parser = MultipartParser(boundary, {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field,
            "on_header_value": on_header_value, "on_header_end": on_header_end, "on_part_data": on_part_data})
        parser.write(body)
        parser.finalize()
    except Exception as e:  # python-multipart raises its own error types for malformed bodies
        raise _error(400, f"malformed multipart body: {e}") from None
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get("content-disposition", ""))
        if disposition.get(b"name") == field.encode():
            return bytes(data)
    raise _error(422, f"multipart upload has no '{field}' field; send the image as file=@photo.jpg")


def _wants_image(request: Request, annotate: bool) -> str | None:
    if annotate:
        return "image/jpeg"
    accept = request.headers.get("accept", "")
    for kind in ("image/jpeg", "image/png"):
        if kind in accept:
            return kind
    return None


PREDICT_EXAMPLE = {
    "width": 640, "height": 480, "model_version": "api-c2e65e6d38",
    "timings_ms": {"detect": 41.2, "classify": 6.3, "total": 47.5},
    "faces": [{"box": {"x": 231.0, "y": 112.5, "width": 160.0, "height": 160.0}, "found_by": "photo",
               "detector_score": 0.93, "emotion": "happiness",
               "confidence": 0.97, "scores": {"neutral": 0.01, "happiness": 0.97, "surprise": 0.01, "sadness": 0.0,
                                              "anger": 0.0, "disgust": 0.0, "fear": 0.0, "contempt": 0.01}}],
}
ERROR_EXAMPLE = {"application/json": {"example": {"detail": "not an image in a supported format (JPEG, PNG, ...)"}}}


@app.post(
    "/api/predict",
    summary="Find every face in an image and classify its expression",
    description=(
        "Send the image as multipart field `file`, or as the raw body with an image content type. "
        "Returns every face: its box in image pixels, how the detector found it (`found_by`: `photo`, the whole "
        "image; `tile`, a closer look at part of a large photo; `padded`, a face that fills the frame), the detector's "
        "score, the top emotion, its confidence and all 8 scores. "
        "With `?annotate=true` or `Accept: image/jpeg` / `image/png` it returns the image with boxes and labels drawn. "
        f"Uploads over FERLIVE_MAX_BYTES (now {MAX_BYTES:,}) or FERLIVE_MAX_PIXELS (now {MAX_PIXELS:,}) are refused."
    ),
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
    }}},
    responses={
        200: {"description": "Faces found (possibly none)", "content": {
            "application/json": {"example": PREDICT_EXAMPLE},
            "image/jpeg": {}, "image/png": {}}},
        400: {"description": "Empty, corrupt, truncated or unreadable image", "content": ERROR_EXAMPLE},
        413: {"description": "File or image dimensions over the limit", "content": ERROR_EXAMPLE},
        415: {"description": "Content type is not an image or multipart form", "content": ERROR_EXAMPLE},
        422: {"description": "Multipart form without a `file` field", "content": ERROR_EXAMPLE},
        503: {"description": "Busy: too many images in work or waiting (FERLIVE_WORKERS, FERLIVE_QUEUE, "
                             "FERLIVE_QUEUE_WAIT_S); retry after the `Retry-After` seconds",
              "content": {"application/json": {"example": {"detail": "server busy: no worker free within 5 s; retry shortly"}}}},
    },
)
async def predict(request: Request,
                  annotate: bool = Query(False, description="return the annotated image instead of JSON")):
    start = time.perf_counter()
    content_type = request.headers.get("content-type", "")
    kind = content_type.lower()  # the type is case-insensitive; the multipart boundary is not
    if not (kind.startswith("multipart/form-data") or kind.startswith("image/")
            or kind.startswith("application/octet-stream")):
        raise _error(415, f"content type {content_type or '(none)'!r} is not an image; send multipart "
                          f"field 'file' or a raw body of type {', '.join(IMAGE_TYPES)}")
    admission: Admission = request.app.state.admission
    with admission.place():  # refused at once (503) when full, before the body is read
        body = await _read_body(request)
        data = _multipart_file(body, content_type) if kind.startswith("multipart/") else body
        async with admission.worker():
            try:
                rgb = await run_in_threadpool(decode_image, data)
            except BadImage as e:
                raise _error(413 if isinstance(e, ImageTooLarge) else 400, str(e)) from None
            result = await run_in_threadpool(request.app.state.analyser.analyse, rgb)
            image_type = _wants_image(request, annotate)
            if image_type:
                from ferlive.annotate import annotate as draw, encode

                payload = await run_in_threadpool(
                    lambda: encode(draw(rgb, result), "PNG" if image_type == "image/png" else "JPEG"))
                return Response(payload, media_type=image_type)
    out = result.to_dict()
    out["timings_ms"]["request"] = round((time.perf_counter() - start) * 1000, 1)
    return JSONResponse(out)


@app.get("/api/health", summary="Liveness: the model is loaded and the server answers")
async def health(request: Request):
    analyser = getattr(request.app.state, "analyser", None)
    return {"status": "ok" if analyser else "loading", "model_version": analyser.classifier.info.version if analyser else None}


@app.get("/api/model", summary="The classifier (classes, input, parameters, measured accuracy), the detector and the limits")
async def model_info(request: Request):
    info = request.app.state.analyser.classifier.info
    admission: Admission = request.app.state.admission
    test = info.metrics.get("test", {})
    return {
        "name": info.name, "version": info.version, "classes": info.classes,
        "input": {"width": info.input_size, "height": info.input_size, "channels": 1, "values": "gray 0-255"},
        "params": info.params,
        "accuracy": {f"test_{p}": test.get(p, {}).get("accuracy") for p in ("ferplus_majority", "all_majority")},
        "crop_margin": request.app.state.analyser.margin,
        "detector": {"name": "BlazeFace full range (MediaPipe)", "input": {"width": bf.INPUT_SIZE, "height": bf.INPUT_SIZE},
                     "min_score": request.app.state.analyser.detector.min_score, "photos_shrunk_above_px": bf.MAX_SIDE,
                     "tiles_above_px": bf.TILE_ABOVE},
        "limits": {"max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS, "workers": admission.workers,
                   "queue": admission.queue, "queue_wait_s": admission.wait_s},
    }


@app.get("/docs", include_in_schema=False)
async def docs():
    """Swagger UI from web/vendor/swagger-ui (pinned in web/package.json), so /docs works offline."""
    return FileResponse(WEB / "docs.html")


app.mount("/", StaticFiles(directory=WEB, html=True), name="web")
