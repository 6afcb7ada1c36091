"""Reading the web service's uploads safely: the multipart form parsed in memory, photos
accepted by their bytes, pixel limits checked from the header before anything is decoded.

The request's headers, its size and the pace of its body are the guard's
(`studio.limits.RequestGuard`, in front of the app): by the time `read_form` runs, the
whole body is in memory and under the cap. Every refusal here is an `UploadError` carrying
the HTTP status and a message that names the field and says what to do. Nothing here
writes to disk: the form parser's spool is as big as the request cap, so an upload never
rolls over into a temporary file.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from common.image_io import ImageError, load_image

# Every malformed body is answered with a 400 already; the form parser's own warnings
# would flood the log under a burst of them.
logging.getLogger("python_multipart").setLevel(logging.ERROR)

# Accepted photo formats, recognised by their first bytes (never the name or the declared
# content type, which a client controls): what phones and shop systems send.
SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {
    "JPEG": ((0, b"\xff\xd8\xff"),),
    "PNG": ((0, b"\x89PNG\r\n\x1a\n"),),
    "WebP": ((0, b"RIFF"), (8, b"WEBP")),
}


def megabytes(n: float) -> str:
    """`n` bytes for a message: "0.25 MB", "10 MB"."""
    return f"{n / 2**20:.2f}".rstrip("0").rstrip(".") + " MB"


class UploadError(Exception):
    """A request the service refuses: `status` (4xx) and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Upload:
    field: str
    filename: str  # cleaned for messages and for --keep-uploads
    data: bytes


def sniff(data: bytes) -> str | None:
    """The format whose signature `data` starts with, or None."""
    for fmt, marks in SIGNATURES.items():
        if all(data[at : at + len(mark)] == mark for at, mark in marks):
            return fmt
    return None


def clean_filename(name: str | None, fallback: str) -> str:
    """A client's file name, safe to print and to use as a file name: base name only,
    odd characters replaced, at most 80 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[:80]
    return base or fallback


class _InMemoryParser(MultiPartParser):
    spool_max_size = 2**62  # never roll an upload over into a temporary file


MAX_TEXT = 64  # characters of a text field: a setting's value, never content


async def read_form(
    request: Request, *, max_files: int, text_fields: tuple[str, ...] = ()
) -> tuple[list[Upload], dict[str, str]]:
    """The file fields of a multipart/form-data request, in order, and the text fields
    named in `text_fields` (short settings such as a colour; any other text field is an
    error: every other field of this API is a photo). `max_files` is the parser's guard
    against a body of thousands of parts; the caller checks which fields it wants."""
    parser = _InMemoryParser(
        request.headers, request.stream(), max_files=max_files, max_fields=max_files
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadError(400, f"malformed multipart form: {exc}") from None
    uploads, texts = [], {}
    try:
        for key, value in form.multi_items():
            if not isinstance(value, UploadFile):
                if key not in text_fields:
                    raise UploadError(422, f"field {key!r} must be a file upload, not text")
                if key in texts:
                    raise UploadError(422, f"field {key!r} is given twice")
                if len(value) > MAX_TEXT:
                    raise UploadError(422, f"field {key!r}: at most {MAX_TEXT} characters")
                texts[key] = value
                continue
            data = await value.read()
            uploads.append(Upload(key, clean_filename(value.filename, key), data))
    finally:
        await form.close()
    return uploads, texts


def decode_photo(
    data: bytes,
    label: str,
    *,
    max_bytes: int,
    max_pixels: int,
    max_side: int,
    work_side: int,
    min_side: int = 1,
    max_aspect: float = float("inf"),
) -> np.ndarray:
    """An uploaded photo as uint8 RGB, upright, its longer side at most `work_side`.

    Refusals: over `max_bytes` (413), not JPEG/PNG/WebP by its bytes (415), over
    `max_pixels` or `max_side` by its header (413, a decompression bomb included: the
    header is all that is read), a shorter side under `min_side` or a longer side over
    `max_aspect` times the shorter (422: nobody can be found in a sliver, and a 12000x16
    photo would shrink to 1024x1), undecodable (422). Large photos are shrunk (area
    filter) before they are queued: the model sees a crop of a few hundred pixels, and 64
    queued 40-megapixel photos would hold gigabytes. CMYK, 16-bit, palette and alpha
    photos are converted to RGB and EXIF orientation is applied (`load_image`); bytes
    after a JPEG's end (phones append motion clips and maker data there, a polyglot a zip)
    are never read.
    """
    if not data:
        raise UploadError(422, f"{label}: the file is empty")
    if len(data) > max_bytes:
        raise UploadError(
            413, f"{label}: {megabytes(len(data))} is over the limit of {megabytes(max_bytes)}"
        )
    if sniff(data) is None:
        raise UploadError(
            415,
            f"{label}: not a JPEG, PNG or WebP image (judged by its content, not its name)",
        )
    over = f"is over the limit ({max_pixels / 1e6:.1f} megapixels, {max_side} pixels a side)"
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "WEBP")) as img:
            width, height = img.size
    except Image.DecompressionBombError:  # PIL's own bound, far above ours
        raise UploadError(413, f"{label}: the header's size {over}") from None
    except Exception:  # corrupt headers are reported by load_image below
        width = height = 0
    if width * height > max_pixels or max(width, height) > max_side:
        raise UploadError(413, f"{label}: {width}x{height} pixels {over}")
    if width and height and min(width, height) < min_side:
        raise UploadError(
            422, f"{label}: {width}x{height} pixels is too small (at least {min_side} a side)"
        )
    if width and height and max(width, height) > max_aspect * min(width, height):
        raise UploadError(
            422,
            f"{label}: {width}x{height} pixels is too narrow (at most {max_aspect:g} times "
            "as long as wide); send a photo of a person",
        )
    try:
        image = load_image(data, name=label, max_pixels=max_pixels, max_side=max_side)
    except ImageError as exc:
        raise UploadError(422, str(exc)) from None
    h, w = image.shape[:2]
    if max(h, w) > work_side:
        scale = work_side / max(h, w)
        size = (max(round(w * scale), 1), max(round(h * scale), 1))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image
