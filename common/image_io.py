"""The one image loader: every photo and label map in the project enters through here.

Users upload whatever their phone or shop system makes, so the loader accepts anything PIL
opens, HEIC/HEIF too (an iPhone's own format, through `pi_heif`), and normalises it: EXIF
orientation applied, first frame of animations, alpha
composited on white, palette, greyscale, CMYK, 16-bit and float converted to 8-bit RGB.
Limits on side length and pixel count are checked from the header, before anything is
decoded. Every failure is an `ImageError` whose message starts with the file's name.

Label maps (class ids as pixel values) are read by `load_label_map`, which keeps the raw
values: palette indices are labels there, so no colour conversion may touch them.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pi_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from common.fileio import atomic_path, write_npy

ImageSource = str | os.PathLike[str] | bytes | BinaryIO

pi_heif.register_heif_opener()  # PIL then opens .heic/.heif (the web service's own allowlist
# of JPEG, PNG and WebP, studio.uploads, is unchanged: phones' browsers convert for it)

DEFAULT_MAX_PIXELS = 40_000_000  # a 8000x5000 photo; larger ones are refused, not decoded
DEFAULT_MAX_SIDE = 16_384
# ADGAN semantic maps (`.npy`) hold its 8 parsing classes (parsing.labels names them).
SEMANTIC_MAP_CLASSES = 8
_BACKGROUND = (255, 255, 255)  # transparent regions become white, like a shop's product card


class ImageError(ValueError):
    """An image that cannot be used, with the file name and the reason in the message."""


def _source_name(src: ImageSource, name: str | None) -> str:
    if name:
        return name
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (bytes, bytearray)):
        return "<bytes>"
    return getattr(src, "name", "<stream>")


def _open(src: ImageSource, name: str, max_pixels: int, max_side: int) -> Image.Image:
    """Open, check the header against the limits, decode, and apply EXIF orientation."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    elif isinstance(src, (bytes, bytearray)):
        fh = io.BytesIO(src)
    else:
        fh = src
    try:
        with warnings.catch_warnings():
            # Our own limits below are stricter than PIL's bomb warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                img = Image.open(fh)
            except Image.DecompressionBombError as exc:
                raise ImageError(f"{name}: too many pixels to decode safely ({exc})") from None
            except UnidentifiedImageError:
                empty = fh.seek(0, os.SEEK_END) == 0 if fh.seekable() else False
                what = "empty file" if empty else "not an image format that can be read"
                raise ImageError(f"{name}: {what}") from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from None
        width, height = img.size
        if width < 1 or height < 1:
            raise ImageError(f"{name}: empty image ({width}x{height})")
        if max(width, height) > max_side:
            raise ImageError(
                f"{name}: {width}x{height} has a side over the limit of {max_side} pixels"
            )
        if width * height > max_pixels:
            raise ImageError(
                f"{name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, over the "
                f"limit of {max_pixels / 1e6:.1f}"
            )
        try:
            img.seek(0)
            img.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from None
        # A broken EXIF block is no reason to refuse the pixels.
        with contextlib.suppress(OSError, SyntaxError, ValueError, TypeError):
            img = ImageOps.exif_transpose(img)
        return img
    finally:
        if isinstance(src, (str, os.PathLike)):
            fh.close()


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info):
        return np.asarray(_composite_on_white(img), dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (and 32-bit int) greyscale: scale by bit depth, not by the data's range,
        # so a dark 16-bit photo stays dark.
        values = np.asarray(img).astype(np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0
        grey = np.clip(np.rint(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)  # 1, L, P, CMYK, YCbCr, LAB, HSV


def load_image(
    src: ImageSource,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
) -> np.ndarray:
    """Read a photo as uint8 RGB [H, W, 3], upright as its EXIF says.

    `src` is a path, the file's bytes, or a binary stream; `name` overrides the name used
    in error messages (the upload's file name, say).
    """
    label = _source_name(src, name)
    img = _open(src, label, max_pixels, max_side)
    return np.ascontiguousarray(_to_rgb8(img))


def load_label_map(
    src: ImageSource,
    *,
    name: str | None = None,
    num_classes: int | None = None,
    ignore_index: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
) -> np.ndarray:
    """Read a single-channel label map (class id per pixel) as int64 [H, W].

    Palette PNGs give their indices, greyscale and 16-bit PNGs their values. A colour
    image is accepted only if its three channels are equal. With `num_classes`, values
    outside 0..num_classes-1 (other than `ignore_index`) are an error that lists them.
    """
    label = _source_name(src, name)
    img = _open(src, label, max_pixels, max_side)
    if img.mode in ("P", "L", "I", "1") or img.mode.startswith("I;16"):
        labels = np.asarray(img).astype(np.int64)
    elif img.mode in ("RGB", "RGBA"):
        rgb = np.asarray(img)[..., :3]
        if not (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
        ):
            raise ImageError(
                f"{label}: a colour image, but a label map must be single-channel "
                f"(greyscale, palette or 16-bit) with class ids as pixel values"
            )
        labels = rgb[..., 0].astype(np.int64)
    else:
        raise ImageError(f"{label}: image mode {img.mode} cannot hold class ids")
    if num_classes is not None:
        check_label_values(labels, num_classes, name=label, ignore_index=ignore_index)
    return labels


def check_label_values(
    labels: np.ndarray, num_classes: int, *, name: str, ignore_index: int | None = None
) -> None:
    """Raise `ImageError` naming the file and the offending values if any are out of range."""
    values = np.unique(labels)
    bad = values[(values < 0) | (values >= num_classes)]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:10])
        more = "" if bad.size <= 10 else f" and {bad.size - 10} more"
        raise ImageError(f"{name}: label values {shown}{more} are outside 0..{num_classes - 1}")


def read_semantic_map(
    path: str | os.PathLike[str], num_classes: int = SEMANTIC_MAP_CLASSES
) -> np.ndarray:
    """An ADGAN `.npy` label map -> uint8 [H, W]; bad shapes and values name the file."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such semantic map")
    try:
        labels = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ImageError(f"{path}: not a readable .npy array ({exc})") from None
    if labels.ndim != 2:
        raise ImageError(f"{path}: expected a 2-D label map, got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.array_equal(labels, np.round(labels)):
            raise ImageError(f"{path}: float label map with non-integer values")
    elif labels.dtype.kind not in "iub":
        raise ImageError(f"{path}: label map of dtype {labels.dtype}")
    check_label_values(labels, num_classes, name=os.fspath(path))
    return labels.astype(np.uint8)


def write_semantic_map(
    path: str | os.PathLike[str], labels: np.ndarray, num_classes: int = SEMANTIC_MAP_CLASSES
) -> None:
    labels = np.asarray(labels)
    check_label_values(labels, num_classes, name=os.fspath(path))
    write_npy(path, labels.astype(np.uint8))


def write_label_png(
    path: str | os.PathLike[str], labels: np.ndarray, palette: tuple[tuple[int, int, int], ...]
) -> None:
    """A palette PNG: pixel values are the class ids, the palette shows them in colour."""
    labels = np.asarray(labels)
    check_label_values(labels, len(palette), name=os.fspath(path))
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette([c for colour in palette for c in colour])
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def encode_image(array: np.ndarray, suffix: str, *, quality: int = 95) -> bytes:
    """Encode uint8 [H, W, 3] RGB or [H, W] single-channel as JPEG or PNG bytes."""
    suffix = suffix.lower().lstrip(".")
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    img = Image.fromarray(array)
    buf = io.BytesIO()
    if suffix in ("jpg", "jpeg"):
        img.save(buf, format="JPEG", quality=quality)
    elif suffix == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"unsupported image suffix {suffix!r}; use .jpg or .png")
    return buf.getvalue()


def save_image(path: str | os.PathLike[str], array: np.ndarray, *, quality: int = 95) -> None:
    """Write an image atomically; the format follows the suffix (.jpg, .jpeg, .png)."""
    data = encode_image(array, Path(path).suffix, quality=quality)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
