"""A corpus of hostile and odd uploads, made at test time (no binaries in the repository):
what a broken phone app, a fuzzer or an attacker sends to a public upload form.

`corpus()` maps a name to a `Case`: the multipart fields to post (or a raw body), and what
the service must answer. Broken and hostile files must get a 4xx with a message; valid
photos in unusual encodings (CMYK, 16-bit, EXIF-rotated, a JPEG with a zip after its end)
are accepted and converted, and `tests/test_hostile_uploads.py` checks the conversion.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Case:
    fields: dict[str, bytes] = field(default_factory=dict)  # field -> file bytes
    status: int = 200  # the answer's status
    message: str = ""  # text a 4xx answer's detail must hold
    raw: tuple[bytes, str] | None = None  # (body, content type) instead of fields
    why: str = ""


def photo(h: int = 240, w: int = 180, seed: int = 0) -> np.ndarray:
    """A smooth colour picture (compresses like a photo, not like noise), big enough for
    the stand-in keypoint estimator's person to pass the pipeline's height check."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.02, 0.08, 2)
    rgb = np.stack([128 + 100 * np.sin(a * x), 128 + 100 * np.cos(b * y), (x + y) % 256], -1)
    return rgb.astype(np.uint8)


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk, with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of_zeros(width: int, height: int, *, before_idat: bytes = b"", rows: int = -1) -> bytes:
    """A greyscale PNG of `width` x `height` black pixels built by hand (nothing of that
    size is ever held: the compressed rows are made one at a time), with `before_idat`
    chunks inserted, and only the first `rows` rows present when `rows` >= 0."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte 0 + the pixels
    parts = [packer.compress(row) for _ in range(height if rows < 0 else rows)]
    parts.append(packer.flush() if rows < 0 else packer.flush(zlib.Z_SYNC_FLUSH))
    idat = b"".join(parts)
    tail = chunk(b"IEND", b"") if rows < 0 else b""
    return PNG_MAGIC + chunk(b"IHDR", ihdr) + before_idat + chunk(b"IDAT", idat) + tail


def with_chunk(png: bytes, extra: bytes) -> bytes:
    """`png` with `extra` chunks inserted right after IHDR (before any pixel data)."""
    at = len(PNG_MAGIC) + 8 + 13 + 4
    return png[:at] + extra + png[at:]


def inflating_to(n: int) -> bytes:
    """A few kilobytes of zlib that inflate to `n` zero bytes."""
    packer = zlib.compressobj(9)
    block = bytes(2**20)
    out = [packer.compress(block) for _ in range(n // len(block))]
    return b"".join(out) + packer.compress(bytes(n % len(block))) + packer.flush()


def jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header (SOF0/SOF2) claiming `width` x `height`."""
    i = 2
    while i < len(jpeg):
        marker, length = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC2):
            return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]
        i += 2 + length
    raise ValueError("no frame header")


def webp_canvas(webp: bytes, width: int, height: int) -> bytes:
    """A WebP whose extended header (VP8X) claims a `width` x `height` canvas around the
    small image of `webp` (a simple lossy one)."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + webp[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.sh", "#!/bin/sh\necho owned\n" * 50)
    return buf.getvalue()


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """A 240x180 (h x w) picture stored sideways with EXIF orientation `orientation`."""
    img = Image.fromarray(photo(seed=3))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif.tobytes())


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(photo(seed=4)).convert("CMYK"), "JPEG")


def png16() -> bytes:
    """A 16-bit greyscale PNG, mid-grey (32896 of 65535), 240x180."""
    return encode(Image.fromarray(np.full((240, 180), 32896, np.uint16)), "PNG")


def many_parts(n: int) -> tuple[bytes, str]:
    """A multipart body of `n` tiny file parts."""
    boundary = "hostile"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"; filename="a.png"\r\n'
        f"Content-Type: image/png\r\n\r\nx\r\n"
        for i in range(n)
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


def cut_form(source: bytes, pose: bytes) -> bytes:
    """A multipart body of both photos that stops in the middle of the second."""
    head = 'Content-Disposition: form-data; name="{}"; filename="{}.png"\r\n\r\n'
    body = b"".join(
        b"--hostile\r\n" + head.format(name, name).encode() + data + b"\r\n"
        for name, data in (("source", source), ("pose", pose))
    )
    return body[: -len(pose) // 2]


@cache
def corpus() -> dict[str, Case]:
    """Every case, built once per process (a few hundred milliseconds)."""
    good = encode(photo(seed=1), "PNG")
    jpeg = encode(photo(seed=2), "JPEG", quality=90)
    png = encode(photo(seed=5), "PNG")
    webp = encode(photo(seed=6), "WEBP", quality=80)
    corrupt = "truncated or corrupt"
    over = "over the limit"

    def pose(data: bytes, status: int, message: str = "", why: str = "") -> Case:
        return Case({"source": good, "pose": data}, status, message, why=why)

    cases = {
        "truncated JPEG": pose(jpeg[: len(jpeg) // 2], 422, corrupt),
        "truncated PNG": pose(png[: len(png) // 2], 422, corrupt),
        "truncated WebP": pose(webp[: len(webp) // 2], 422, corrupt),
        "JPEG header only": pose(jpeg[:200], 422, corrupt),
        "truncated 36-megapixel PNG": pose(
            png_of_zeros(6000, 6000, rows=100), 422, corrupt, why="within the limits: decoded"
        ),
        "38.5 megapixels of black in 40 kB": pose(
            png_of_zeros(7000, 5500),
            422,
            "no person found",
            why="within the limits: decoded (two at a time), shrunk, nobody in it",
        ),
        "PNG bomb, 60000x60000 in a few kB": pose(png_of_zeros(60000, 60000, rows=1), 413, over),
        "PNG bomb, 48 megapixels": pose(png_of_zeros(8000, 6000), 413, "8000x6000 pixels"),
        "JPEG claiming 65000x65000": pose(jpeg_with_size(jpeg, 65000, 65000), 413, over),
        "WebP claiming a 16383x16383 canvas": pose(webp_canvas(webp, 16383, 16383), 413, over),
        "PNG, iCCP inflating to 64 MB": pose(
            with_chunk(png, chunk(b"iCCP", b"icc\x00\x00" + inflating_to(64 * 2**20))),
            422,
            corrupt,
        ),
        "PNG, zTXt inflating to 64 MB": pose(
            with_chunk(png, chunk(b"zTXt", b"Comment\x00\x00" + inflating_to(64 * 2**20))),
            422,
            corrupt,
        ),
        "polyglot: JPEG magic, then a zip": pose(b"\xff\xd8\xff\xe0" + zip_bytes(), 422, corrupt),
        "GIF": pose(encode(photo(), "GIF"), 415, "not a JPEG, PNG or WebP"),
        "a zero-byte photo": pose(b"", 422, "the file is empty"),
        "1x1 pixels": pose(encode(photo(1, 1), "PNG"), 422, "too small"),
        "a 4000x40 sliver": pose(encode(photo(40, 4000), "PNG"), 422, "too narrow"),
        "a 20x20 thumbnail": pose(encode(photo(20, 20), "PNG"), 422, "too small"),
        "5,000 multipart parts": Case(raw=many_parts(5000), status=400, message="Too many files"),
        "a body that ends inside a photo": Case(
            raw=(cut_form(good, png), "multipart/form-data; boundary=hostile"),
            status=422,
            message="missing field 'pose'",
            why="the parser drops the unfinished part",
        ),
        # valid photos in unusual encodings: accepted, converted (checked separately)
        "a JPEG followed by a zip": pose(
            jpeg + zip_bytes(), 200, why="bytes after the JPEG's end are never read"
        ),
        "EXIF-rotated JPEG": pose(exif_rotated_jpeg(), 200, why="turned upright"),
        "EXIF orientation 99 (invalid)": pose(exif_rotated_jpeg(99), 200, why="ignored"),
        "CMYK JPEG": pose(cmyk_jpeg(), 200, why="converted to RGB"),
        "16-bit greyscale PNG": pose(png16(), 200, why="scaled to 8 bits"),
        "PNG with 8 MB of tEXt": pose(
            with_chunk(png, chunk(b"tEXt", b"Comment\x00" + bytes(8 * 2**20))),
            200,
            why="plain metadata under the byte limit: read past",
        ),
        "a 1500x300 panorama": pose(encode(photo(300, 1500), "JPEG"), 200, why="aspect 5"),
    }
    return cases


def hostile() -> dict[str, Case]:
    """The cases that must be refused."""
    return {k: c for k, c in corpus().items() if c.status >= 400}


def post_kwargs(case: Case) -> dict:
    """httpx / TestClient `post` keyword arguments for `case`."""
    if case.raw is not None:
        body, kind = case.raw
        return {"content": body, "headers": {"content-type": kind}}
    return {
        "files": [(k, (f"{k}.bin", v, "application/octet-stream")) for k, v in case.fields.items()]
    }


def vm_kb(pid: int, field: str) -> int:
    """A /proc/<pid>/status memory field in kB: VmRSS (now), VmHWM (peak so far)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """Set the process's VmHWM back to its VmRSS (Linux >= 4.0), so that the peak measured
    after is the peak of what came after, not of loading the model."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


@dataclass
class Answer:
    name: str
    status: int
    detail: str
    next_status: int  # the good request's, sent right after
    peak_mb: float  # the server's peak RSS after both


def run_corpus(url: str, pid: int, good: dict[str, bytes], cases: dict[str, Case]) -> list[Answer]:
    """Post every case to the service at `url` (the server process `pid`), each followed
    by the good request `good` (field -> bytes)."""
    import httpx

    answers = []
    good_files = [(k, (f"{k}.png", v, "image/png")) for k, v in good.items()]
    with httpx.Client(timeout=120) as http:
        for name, case in cases.items():
            r = http.post(url, **post_kwargs(case))
            detail = r.json().get("detail", "") if r.status_code != 200 else ""
            after = http.post(url, files=good_files).status_code
            peak = vm_kb(pid, "VmHWM") / 1024
            answers.append(Answer(name, r.status_code, detail, after, peak))
    return answers
