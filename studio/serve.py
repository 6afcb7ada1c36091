"""The web service: `python -m studio.serve [--host 127.0.0.1 --port 8000 --bundle DIR]`.

A page at `/` (upload the catalogue photo and your own, optional garment swaps, the
result, download) and a JSON API documented at `/docs` (OpenAPI at `/openapi.json`):

    curl -F source=@model.jpg -F pose=@me.jpg -F swap_upper=@garment.jpg \
        http://127.0.0.1:8000/v1/generate -o result.png
    curl http://127.0.0.1:8000/healthz

This module is the HTTP layer only: `studio.limits.RequestGuard` stands in front of the
app (per-client budgets, header checks, the body read under a deadline), uploads are
parsed and checked by `studio.uploads`, the model runs in `studio.worker`'s single thread,
which batches concurrent requests. Every bad input is a 4xx with `{"detail": message}`;
nothing uploaded is written anywhere unless `--keep-uploads DIR` (or `keep_uploads` in
configs/serve.yaml) says so.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from common.checkpoint import CheckpointError, read_config
from common.config import ConfigError, load_config
from common.fileio import write_bytes, write_json
from common.geometry import Box, parse_box
from common.hardware import Precision, resolve_device
from common.image_io import encode_image
from parsing.labels import ADGAN_CLASSES, COMPONENT_ALIASES, component_classes
from studio.backdrop import AUTO, Backdrop, parse_backdrop
from studio.bundle import real_photo_warning
from studio.framing import CARD_SCALES, DEFAULT_FRAMING, FRAMINGS
from studio.limits import GuardMiddleware, RequestGuard, guarded_h11
from studio.pipeline import NoPersonError, Pipeline
from studio.uploads import Upload, UploadError, clean_filename, decode_photo, read_form
from studio.worker import Busy, GenerateRequest, ModelWorker, Photo

ROOT = Path(__file__).resolve().parent.parent
WEB = Path(__file__).resolve().parent / "web"
DEFAULT_CONFIG = ROOT / "configs" / "serve.yaml"
DEFAULT_BUNDLE = ROOT / "bundles" / "demo"  # as infer.py's
COMPONENTS = (*ADGAN_CLASSES[1:], *COMPONENT_ALIASES)  # what a swap_<component> field may name
# the text fields of a request (every other field is a photo)
TEXT_FIELDS = (
    "backdrop",
    "framing",
    "scale",
    "source_box",
    "pose_box",
    *(f"swap_{c}_box" for c in COMPONENTS),
)
UPLOAD_PATH = "/v1/generate"
# Why a request was refused, as /healthz counts them: by status, and for 415 and 422 by the
# stage that refused it (reading the form, decoding a photo, finding the person). The
# guard's refusals (studio.limits) are counted here too.
REASONS = (
    "malformed",  # 400: the multipart body does not parse
    "slow_headers",  # 408: the request's headers trickled in (slow-loris)
    "slow_body",  # 408: the body trickled in
    "too_large",  # 413: the request, or a photo's bytes or pixels, over a limit
    "not_multipart",  # 415: the request is not multipart/form-data
    "not_an_image",  # 415: a photo that is not JPEG, PNG or WebP by content
    "bad_field",  # 422: a missing, unknown, repeated or text field, a bad swap
    "bad_image",  # 422: an empty, truncated, corrupt, tiny or sliver-shaped photo
    "no_person",  # 422: no person found in a photo
    "rate_limited",  # 429: this address is out of requests or of refusals
    "busy",  # 429: the queue is full, or too many uploads are being received
)
_BY_STATUS = {400: "malformed", 413: "too_large", 429: "busy"}
FAVICON = (  # a small inline SVG, so the page's favicon request is answered
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<circle cx="8" cy="4" r="3" fill="#345"/><path d="M3 16v-5a5 4 0 0 1 10 0v5z" '
    'fill="#345"/></svg>'
)
log = logging.getLogger("studio.serve")


@dataclass
class ServeSettings:
    """Every limit and knob of the service (configs/serve.yaml, strict)."""

    host: str = "127.0.0.1"
    port: int = 8000
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Precision = "auto"  # the generator's
    max_request_mb: float = 32.0  # the whole multipart body
    max_photo_mb: float = 10.0  # each photo's file
    max_pixels: int = 40_000_000  # each photo, from its header, before decoding
    max_side: int = 12_000
    min_side: int = 32  # each photo's shorter side
    max_aspect: float = 10.0  # longer side over shorter side
    work_side: int = 1024  # photos are shrunk to this longer side before they queue
    max_decoding: int = 2  # photos decoded at once (a 40-megapixel one holds ~0.4 GB)
    max_swaps: int = 3
    max_batch: int = 8  # requests per model batch
    max_wait_ms: float = 10.0  # how long a batch's first request waits for company
    max_queue: int = 64  # waiting requests beyond which the service answers 429
    retry_after_s: int = 2  # for a full queue
    keep_uploads: str = ""  # a folder: keep each request's photos and answer there
    backdrop: str = AUTO  # studio.backdrop: a plain colour (white, #rrggbb), photo or auto
    framing: str = DEFAULT_FRAMING  # studio.framing: "source" (as far as it shows) or "pose"
    card_scale: int = 1  # cards this many times the generator's size, unless asked (`scale`)
    # The guard in front of the app (studio.limits.RequestGuard): budgets per client address
    client_rate: float = 2.0  # requests a second, sustained
    client_burst: int = 20  # requests at once (the page alone makes 5)
    refused_rate: float = 0.2  # refused requests (4xx) a second, sustained
    refused_burst: int = 10  # refused requests at once; then 429 until refilled
    throttle_delay_s: float = 1.0  # a throttled client's 429 is held this long
    max_held: int = 256  # throttled answers held at once; beyond, answered at once
    forwarded_by: str = ""  # a reverse proxy's address: trust its X-Forwarded-For
    # ... and its bounds on receiving
    max_reading: int = 32  # request bodies being received at once
    max_reading_per_client: int = 4
    header_timeout_s: float = 20.0  # the request head must arrive within this
    body_timeout_s: float = 20.0  # the body within this plus 1 s per body_min_rate bytes
    body_min_rate: float = 500.0  # bytes a second

    def __post_init__(self) -> None:
        counts = (self.max_batch, self.max_queue, self.work_side, self.max_pixels)
        if min(counts) < 1 or min(self.max_decoding, self.max_reading, self.min_side) < 1:
            raise ValueError(
                "max_batch, max_queue, work_side, max_pixels, max_decoding, max_reading and "
                "min_side must be >= 1"
            )
        if min(self.client_burst, self.refused_burst, self.max_reading_per_client) < 1:
            raise ValueError("client_burst, refused_burst, max_reading_per_client must be >= 1")
        parse_backdrop(self.backdrop)
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing {self.framing!r}: choose one of {', '.join(FRAMINGS)}")
        if self.card_scale not in CARD_SCALES:
            raise ValueError(f"card_scale {self.card_scale}: choose one of {CARD_SCALES}")


class ErrorBody(BaseModel):
    detail: str


class Refusal(Exception):
    """An `UploadError` with the reason /healthz counts it under."""

    def __init__(self, error: UploadError, reason: str) -> None:
        super().__init__(error.message)
        self.status, self.message, self.reason = error.status, error.message, reason


def _refusal(error: UploadError, by_stage: dict[int, str]) -> Refusal:
    """`error` with its reason: from its status, or for 415/422 from the stage's table."""
    return Refusal(error, _BY_STATUS.get(error.status) or by_stage.get(error.status, "bad_field"))


class Health(BaseModel):
    status: str
    bundle: dict[str, Any]
    device: str
    image_size: list[int]
    queue_depth: int
    max_queue: int
    max_batch: int
    served: int
    batches: int
    refused: int  # every refused request (4xx), the sum of refused_by_reason
    refused_by_reason: dict[str, int]
    failed: int  # requests the model failed on (5xx)
    warning: str | None  # what users must be told about this bundle's results, if anything
    guard: dict[str, int]  # uploads being received, throttled answers held, clients limited
    limits: dict[str, float | int]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


GENERATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The generated person as a PNG (the generator's size). Headers: "
        "X-Batch-Size (requests that shared the model batch), X-Queue-Ms, X-Run-Ms; "
        "X-Warning, the bundle's own; where a photo showed several people, X-Note (which "
        "one was used, the others' boxes) and X-People, the same as JSON: photo field -> "
        '{"used": [x, y, w, h], "others": [[x, y, w, h], ...], "frame": [width, height]}, '
        "the boxes in the pixels of the photo as the service read it (its longer side shrunk "
        "to work_side), whose size is the frame. Where a photo's person lay on their side or "
        "upside down (an orientation tag lost), the photo was read turned upright: X-Note "
        'says so, and X-Turned as JSON: photo field -> quarter turns anticlockwise, {"pose": 1}. '
        "Where one photo's person is seen from behind and the other's faces the camera (the "
        "card shows the side the source shows), X-Note says so, and X-Behind names that photo "
        "field (source or pose).",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    },
    400: _error("Malformed multipart body."),
    408: _error("The request's headers or body came in too slowly."),
    413: _error("Request or photo over the byte limit, or a photo over the pixel limit."),
    415: _error("Not multipart/form-data, or a photo that is not JPEG, PNG or WebP by content."),
    422: _error(
        "Missing or unknown field, bad swap component, undecodable, tiny or sliver-shaped "
        "photo, or no person found (the message names the photo)."
    ),
    429: _error(
        "Too many requests or refused requests from this address, or the queue is full; "
        "retry after the Retry-After header's seconds."
    ),
}

_PHOTO = {"type": "string", "format": "binary"}
GENERATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["source", "pose"],
                    "properties": {
                        "source": {**_PHOTO, "description": "Catalogue photo: who to render."},
                        "pose": {**_PHOTO, "description": "Shopper's photo: the pose to take."},
                        **{
                            f"swap_{c}": {**_PHOTO, "description": f"Take the {c} from here."}
                            for c in COMPONENTS
                        },
                        "backdrop": {
                            "type": "string",
                            "description": "A plain colour to stand the person on (white, "
                            "studio, #rrggbb or r,g,b); photo: the source photo's "
                            "background with the person removed; auto: the source's own "
                            "wall colour where it is plain, else studio. Default: the "
                            "server's.",
                        },
                        **{
                            f"{role}_box": {
                                "type": "string",
                                "description": f"Which person of the {what} photo to use when "
                                "it shows several: a box around them, x,y,w,h in the pixels of the "
                                "photo as the service reads it (its longer side shrunk to "
                                "work_side, in /healthz's limits, if it was longer): the X-Note "
                                "header of an answer lists the boxes found in that frame. "
                                "Default: the largest.",
                            }
                            for role, what in (("source", "catalogue"), ("pose", "shopper's"))
                        },
                        **{
                            f"swap_{c}_box": {
                                "type": "string",
                                "description": f"Which person of the swap_{c} photo to take the "
                                f"{c} from when it shows several: a box, x,y,w,h, in the frame of "
                                "source_box.",
                            }
                            for c in COMPONENTS
                        },
                        "framing": {
                            "type": "string",
                            "enum": list(FRAMINGS),
                            "description": "source: the card ends where the catalogue "
                            "photo's person ends (a photo cut at the thigh, a card cut at the "
                            "thigh, the person larger); pose: the shopper's photo's frame. "
                            "Default: the server's.",
                        },
                        "scale": {
                            "type": "string",
                            "enum": [str(s) for s in CARD_SCALES],
                            "description": "The card's size in multiples of the generator's "
                            "(176x256): 2 gives 352x512, the person's fine detail carried from "
                            "the photo. Default: the server's card_scale.",
                        },
                    },
                }
            }
        },
    }
}


def _roles(uploads: list[Upload], max_swaps: int) -> dict[str, tuple[Upload, str]]:
    """field -> (upload, how messages name it); every field name checked, nothing decoded."""
    out: dict[str, tuple[Upload, str]] = {}
    taken: dict[int, str] = {}
    for up in uploads:
        if up.field in out:
            raise UploadError(422, f"field {up.field!r} is given twice")
        if up.field == "source":
            out[up.field] = (up, f"the catalogue photo ({up.filename})")
        elif up.field == "pose":
            out[up.field] = (up, f"the shopper's photo ({up.filename})")
        elif up.field.startswith("swap_"):
            component = up.field.removeprefix("swap_")
            try:
                classes = component_classes(component)
            except ValueError as exc:
                raise UploadError(422, f"field {up.field!r}: {exc}") from None
            for k in classes:
                if k in taken:
                    raise UploadError(
                        422, f"fields {taken[k]!r} and {up.field!r} swap the same component"
                    )
                taken[k] = up.field
            out[up.field] = (up, f"the {component} photo ({up.filename})")
        else:
            raise UploadError(
                422,
                f"unknown field {up.field!r}; the fields are source, pose and "
                f"swap_<component> with component one of {', '.join(COMPONENTS)}",
            )
    for name, what in (("source", "the catalogue photo to render"), ("pose", "your photo")):
        if name not in out:
            raise UploadError(422, f"missing field {name!r}: {what}")
    if len(out) - 2 > max_swaps:
        raise UploadError(422, f"{len(out) - 2} swaps; at most {max_swaps} per request")
    return out


def _backdrop(text: str | None, default: Backdrop) -> Backdrop:
    """A request's `backdrop` field: absent, the server's setting; else a colour, "photo"
    or "auto" (`studio.backdrop.parse_backdrop`)."""
    if text is None:
        return default
    try:
        return parse_backdrop(text)
    except ValueError as exc:
        raise UploadError(422, f"field 'backdrop': {exc}") from None


def _swap_boxes(texts: dict[str, str], roles: dict[str, tuple[Upload, str]]) -> dict[str, Box]:
    """The `swap_<component>_box` fields, keyed by their photo's field, which must be given."""
    boxes = {}
    for key, text in texts.items():
        if key.startswith("swap_") and key.endswith("_box"):
            photo = key.removesuffix("_box")
            if photo not in roles:
                raise UploadError(422, f"field {key!r}: no {photo!r} photo to pick a person in")
            box = _box(key, text)
            if box is not None:
                boxes[photo] = box
    return boxes


def _box(field: str, text: str | None) -> Box | None:
    """A request's `..._box` field (a photo's person): absent or empty, the pipeline's pick."""
    if text is None or not text.strip():
        return None
    try:
        return parse_box(text.strip())
    except argparse.ArgumentTypeError as exc:
        raise UploadError(422, f"field '{field}': {exc}") from None


def _header_text(text: str) -> str:
    """A header value: one line of printable ASCII (photo names come from the client)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _framing(text: str | None, default: str) -> str:
    """A request's `framing` field: absent, the server's setting; else one of FRAMINGS."""
    if text is None:
        return default
    if text.strip().lower() not in FRAMINGS:
        raise UploadError(422, f"field 'framing': {text!r}; choose one of {', '.join(FRAMINGS)}")
    return text.strip().lower()


def _scale(text: str | None, default: int) -> int:
    """A request's `scale` field: absent, the server's `card_scale`; else one of CARD_SCALES."""
    if text is None:
        return default
    choices = ", ".join(str(s) for s in CARD_SCALES)
    if text.strip() not in [str(s) for s in CARD_SCALES]:
        raise UploadError(422, f"field 'scale': {text!r}; choose one of {choices}")
    return int(text.strip())


def _keep(folder: Path, uploads: list[Upload], status: int, detail: str, png: bytes) -> None:
    """--keep-uploads: the request's photos, its answer and the result, in a new folder."""
    where = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    for up in uploads:
        # field names come from the client too: cleaned like file names
        write_bytes(where / clean_filename(f"{up.field}-{up.filename}", "upload"), up.data)
    if png:
        write_bytes(where / "result.png", png)
    write_json(where / "answer.json", {"status": status, "detail": detail})


def create_app(
    pipeline: Pipeline, settings: ServeSettings, *, info: dict[str, Any] | None = None
) -> FastAPI:
    """The service around a ready pipeline (tests pass one with stand-in parts), behind
    its `RequestGuard` (`app.state.guard`); `info` is the bundle's config.json, shown by
    /healthz. `app.state.refused` counts refusals by reason (`REASONS`)."""
    worker = ModelWorker(
        pipeline,
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
    )
    s = settings
    mb = 2**20
    decode_limits = {
        "max_bytes": int(s.max_photo_mb * mb),
        "max_pixels": s.max_pixels,
        "max_side": s.max_side,
        "work_side": s.work_side,
        "min_side": s.min_side,
        "max_aspect": s.max_aspect,
    }
    info = info or {}
    warning = real_photo_warning(info)
    keep = Path(s.keep_uploads) if s.keep_uploads else None
    default_backdrop = parse_backdrop(s.backdrop)
    refused = dict.fromkeys(REASONS, 0)
    decoding = asyncio.Semaphore(s.max_decoding)

    def count(reason: str) -> None:
        refused[reason] += 1

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="Pose-guided person generation",
        version=str(info.get("version", "dev")),
        description="Renders the person of a catalogue photo in the pose of a shopper's "
        "photo, optionally with garments from other photos (ADGAN-style). The page is "
        'at `/`. Errors are JSON `{"detail": message}` with a 4xx status.',
        lifespan=lifespan,
    )
    app.state.worker = worker
    app.state.settings = settings
    app.state.refused = refused
    guard = RequestGuard(
        upload_paths={UPLOAD_PATH: "multipart/form-data"},
        max_body=int(s.max_request_mb * mb),
        client_rate=s.client_rate,
        client_burst=s.client_burst,
        refused_rate=s.refused_rate,
        refused_burst=s.refused_burst,
        throttle_delay_s=s.throttle_delay_s,
        max_held=s.max_held,
        max_reading=s.max_reading,
        max_reading_per_client=s.max_reading_per_client,
        body_timeout_s=s.body_timeout_s,
        body_min_rate=s.body_min_rate,
        forwarded_by=s.forwarded_by,
        on_refused=count,
    )
    app.state.guard = guard
    app.add_middleware(GuardMiddleware, guard=guard)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    @app.get("/healthz", response_model=Health, summary="Liveness, bundle and queue depth")
    async def healthz() -> Health:
        return Health(
            status="ok",
            bundle={k: info[k] for k in ("format", "version", "dtype", "notes") if k in info},
            device=str(pipeline.transfer.device),
            image_size=list(pipeline.card_size(s.card_scale)),  # a card by default
            queue_depth=worker.depth,
            max_queue=s.max_queue,
            max_batch=s.max_batch,
            served=worker.stats.requests,
            batches=worker.stats.batches,
            refused=sum(refused.values()),
            refused_by_reason=dict(refused),
            failed=worker.stats.failed,
            warning=warning,
            guard=guard.state(),
            limits={
                "max_request_mb": s.max_request_mb,
                "max_photo_mb": s.max_photo_mb,
                "max_pixels": s.max_pixels,
                "max_side": s.max_side,
                "min_side": s.min_side,
                "work_side": s.work_side,
                "max_swaps": s.max_swaps,
                "client_rate": s.client_rate,
                "client_burst": s.client_burst,
                "refused_rate": s.refused_rate,
                "refused_burst": s.refused_burst,
                "body_timeout_s": s.body_timeout_s,
                "header_timeout_s": s.header_timeout_s,
            },
        )

    async def _generate(uploads: list[Upload], texts: dict[str, str]) -> Response:
        try:
            roles = _roles(uploads, s.max_swaps)
            backdrop = _backdrop(texts.get("backdrop"), default_backdrop)
            framing = _framing(texts.get("framing"), s.framing)
            scale = _scale(texts.get("scale"), s.card_scale)
            boxes = {
                role: _box(f"{role}_box", texts.get(f"{role}_box")) for role in ("source", "pose")
            }
            boxes |= _swap_boxes(texts, roles)
        except UploadError as exc:
            raise _refusal(exc, {422: "bad_field"}) from None

        def decode() -> dict[str, Photo]:
            return {
                field: Photo(decode_photo(up.data, label, **decode_limits), label)
                for field, (up, label) in roles.items()
            }

        try:
            async with decoding:  # bounds the memory of photos being decoded
                photos = await run_in_threadpool(decode)
        except UploadError as exc:
            raise _refusal(exc, {415: "not_an_image", 422: "bad_image"}) from None
        for field, box in boxes.items():
            photos[field].box = box
        swaps = {f.removeprefix("swap_"): p for f, p in photos.items() if f.startswith("swap_")}
        try:
            request = GenerateRequest(
                photos.pop("source"), photos.pop("pose"), swaps, backdrop, framing, scale
            )
            future = worker.submit(request)
        except Busy as exc:
            raise Refusal(UploadError(429, str(exc)), "busy") from None
        del photos, swaps, request  # the worker holds the only copy until the answer
        try:
            result = await asyncio.wrap_future(future)
        except NoPersonError as exc:
            raise Refusal(UploadError(422, str(exc)), "no_person") from None
        png = await run_in_threadpool(encode_image, result.image, ".png")
        headers = {
            "X-Batch-Size": str(result.batch_size),
            "X-Queue-Ms": f"{result.queued_s * 1e3:.0f}",
            "X-Run-Ms": f"{result.run_s * 1e3:.0f}",
        }
        if warning:
            headers["X-Warning"] = warning
        if result.notes:  # which of several people was used, and the others' boxes
            headers["X-Note"] = _header_text(" | ".join(result.notes))
        if result.people:  # the same as data, for the page to offer the others
            headers["X-People"] = json.dumps(result.people, separators=(",", ":"))
        if result.turned:  # photos read turned upright, for the page to say so
            headers["X-Turned"] = json.dumps(result.turned, separators=(",", ":"))
        if result.behind:  # the photo seen from behind while the other faces the camera
            headers["X-Behind"] = result.behind
        return Response(png, media_type="image/png", headers=headers)

    @app.post(
        UPLOAD_PATH,
        summary="Render the catalogue person in the shopper's pose",
        response_class=Response,
        responses=GENERATE_RESPONSES,
        openapi_extra=GENERATE_BODY,
    )
    async def generate(request: Request) -> Response:
        """Multipart form: `source` (catalogue photo), `pose` (shopper's photo), and
        optionally `swap_<component>` photos (upper, lower, hair, face, ...) and the text
        fields of `TEXT_FIELDS` (a photo's `..._box` picks one of several people in it).
        Photos are JPEG, PNG or WebP, recognised by content. Returns the PNG."""
        uploads: list[Upload] = []
        try:
            try:
                uploads, texts = await read_form(
                    request,
                    max_files=4 * (2 + s.max_swaps),
                    text_fields=TEXT_FIELDS,
                )
            except UploadError as exc:
                raise _refusal(exc, {422: "bad_field"}) from None
            response = await _generate(uploads, texts)
        except (Refusal, UploadError) as error:
            exc = error if isinstance(error, Refusal) else _refusal(error, {})
            refused[exc.reason] += 1
            if keep is not None and uploads:
                await run_in_threadpool(_keep, keep, uploads, exc.status, exc.message, b"")
            headers = {"Retry-After": str(s.retry_after_s)} if exc.status == 429 else None
            return JSONResponse({"detail": exc.message}, exc.status, headers=headers)
        except Exception:  # a model failure: this request fails, the server stays up
            log.exception("generate failed")
            detail = "generation failed on the server; the error is in its log"
            return JSONResponse({"detail": detail}, 500)
        if keep is not None:
            await run_in_threadpool(_keep, keep, uploads, 200, "ok", bytes(response.body))
        return response

    return app


def server_config(app: FastAPI, settings: ServeSettings, **options: Any) -> Any:
    """The `uvicorn.Config` to serve `app` (made by `create_app`) with: uvicorn's h11
    protocol with a deadline on request headers (`studio.limits.guarded_h11`, counted as
    slow_headers). `options` are uvicorn.Config's (host, port, log_level, ...).

    uvicorn's `limit_concurrency` is left off on purpose: past it uvicorn answers 503 to
    everyone, good clients included; the guard's per-client budgets refuse the abuser
    instead, with a 429 that tells it when to come back."""
    import uvicorn

    refused = app.state.refused

    def headers_timed_out() -> None:
        refused["slow_headers"] += 1

    protocol = guarded_h11(settings.header_timeout_s, headers_timed_out)
    return uvicorn.Config(app, http=protocol, **options)


def load_settings(path: Path | None = None, overrides: list[str] | None = None) -> ServeSettings:
    return load_config(ServeSettings, path or DEFAULT_CONFIG, overrides or [])


def _bundle_pipeline(
    bundle: Path, device: str, precision: Precision = "auto"
) -> tuple[Pipeline, dict[str, Any]]:
    if not (bundle / "config.json").is_file():
        raise CheckpointError(
            f"no model bundle at {bundle}; assemble one from trained runs with "
            "python -m studio.bundle --help"
        )
    return Pipeline.from_bundle(bundle, resolve_device(device), precision), read_config(bundle)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The web page and JSON API (FastAPI + uvicorn).")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--host", help="default from the config (127.0.0.1)")
    p.add_argument("--port", type=int, help="default from the config (8000)")
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--keep-uploads", type=Path, metavar="DIR", help="keep every request here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        settings = load_settings(args.config, args.set)
        flags = {"host": args.host, "port": args.port, "device": args.device}
        if args.keep_uploads is not None:
            flags["keep_uploads"] = str(args.keep_uploads)
        settings = dataclasses.replace(settings, **{k: v for k, v in flags.items() if v})
        pipeline, info = _bundle_pipeline(args.bundle, settings.device, settings.precision)
    except (ConfigError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    app = create_app(pipeline, settings, info=info)
    print(f"bundle {args.bundle} on {pipeline.transfer.device}")
    if (warning := real_photo_warning(info)) is not None:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"settings {json.dumps(dataclasses.asdict(settings))}")
    uvicorn.Server(server_config(app, settings, host=settings.host, port=settings.port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
