"""Affine geometry of crops: a person box -> the network input, and back.

A 2x3 matrix maps original-image pixels to input pixels (pixel centres at integers both
sides). Training composes it with random scale, rotation, shift and flip about the input's
centre; prediction uses the plain box mapping (a letterbox: aspect kept, centred) and its
inverse to put keypoints back on the photo.
"""

from __future__ import annotations

import argparse
import math

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in pixels


def box_to_input(box: Box, input_size: tuple[int, int]) -> np.ndarray:
    """Matrix [2, 3] fitting `box` inside the input with its aspect kept, centred."""
    x, y, w, h = box
    H, W = input_size
    scale = min(W / max(w, 1e-6), H / max(h, 1e-6))
    cx, cy = x + w / 2 - 0.5, y + h / 2 - 0.5  # box centre in pixel-centre coordinates
    return np.array(
        [[scale, 0.0, (W - 1) / 2 - scale * cx], [0.0, scale, (H - 1) / 2 - scale * cy]],
        dtype=np.float64,
    )


def parse_box(text: str) -> Box:
    """A command line's person box, `x,y,w,h` in pixels (COCO's order), as an argparse type."""
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a box is x,y,w,h in pixels, e.g. 120,40,200,460"
        ) from None
    if not (w > 0 and h > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: the box's width and height must be > 0")
    return (x, y, w, h)


def parse_named_box(text: str) -> tuple[str, Box]:
    """`NAME=x,y,w,h`: a swap donor's person box, keyed by the component it gives."""
    name, sep, box = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} must be COMPONENT=x,y,w,h, e.g. upper=120,40,200,460"
        )
    return name.strip(), parse_box(box.strip())


PERSON_MARGIN = 1.15  # room the crop leaves around a person's box (the product's crops)


def person_crop(box: Box, shape: tuple[int, ...]) -> Box:
    """A user's person box grown by the product's margin; refused if it misses the photo
    of `shape` (H, W, ...)."""
    x, y, w, h = box
    height, width = shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(f"box {x:g},{y:g},{w:g},{h:g} lies outside the {width}x{height} photo")
    return expand_box(box, PERSON_MARGIN, w / h)


def expand_box(box: Box, factor: float, aspect: float) -> Box:
    """Grow a box about its centre and widen or heighten it to width/height = aspect."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    w, h = w * factor, h * factor
    if w / max(h, 1e-6) < aspect:
        w = h * aspect
    else:
        h = w / aspect
    return (cx - w / 2, cy - h / 2, w, h)


def about_centre(
    input_size: tuple[int, int],
    *,
    scale: float = 1.0,
    degrees: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    flip: bool = False,
) -> np.ndarray:
    """Matrix [3, 3] acting on input pixels: flip, rotate, scale about the centre, shift."""
    H, W = input_size
    c = np.array([(W - 1) / 2, (H - 1) / 2])
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * scale
    m = np.eye(3)
    if flip:
        m = np.array([[-1.0, 0.0, W - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    step = np.eye(3)
    step[:2, :2] = rot
    step[:2, 2] = c - rot @ c + np.asarray(shift)
    return step @ m


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """outer [3, 3] after inner [2, 3] -> [2, 3]."""
    return (outer @ np.vstack([inner, [0.0, 0.0, 1.0]]))[:2]


def quarter_turn(turns: int, shape: tuple[int, ...]) -> np.ndarray:
    """Matrix [2, 3] from the pixels of a photo of `shape` (H, W, ...) to those of the same
    photo turned `turns` quarter turns anticlockwise (`np.rot90(photo, turns)`), exactly."""
    h, w = shape[:2]
    matrix = np.eye(3)
    for _ in range(turns % 4):  # one quarter turn: x' = y, y' = W - 1 - x; then W and H swap
        matrix = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]]) @ matrix
        h, w = w, h
    return matrix[:2]


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def apply_to_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map [K, 2] points; missing ones (-1, -1) stay missing."""
    pts = np.asarray(points, np.float64)
    present = (pts[:, 0] >= 0) & (pts[:, 1] >= 0)
    out = pts @ matrix[:, :2].T + matrix[:, 2]
    out[~present] = -1.0
    return out.astype(np.float32)


# A warp that shrinks the image by more than this (output pixels per input pixel) first
# averages the pixels it reads (`area_prefilter`).
PREFILTER_BELOW = 0.5


def area_prefilter(
    image: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(image, matrix) for a warp into `output_size` (H, W) that shrinks by more than
    1 / PREFILTER_BELOW: the part of `image` the output reads, shrunk by pixel averaging
    (cv2.INTER_AREA) to about the output's scale, and the matrix from that. Why: bilinear
    sampling reads 4 pixels per output pixel, so a 25x shrink (a 5580x3000 photo whole into
    BlazePose's 224x224 detector) skips 99% of the photo, and its aliasing hid the person
    that the same photo at 1116x600 shows plainly. Other warps pass through unchanged."""
    matrix = np.asarray(matrix, np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if not 0 < scale < PREFILTER_BELOW:
        return image, matrix
    h, w = output_size
    inverse = invert(matrix)
    corners = np.array([[-1.0, -1.0], [w, -1.0], [-1.0, h], [w, h]]) @ inverse[:, :2].T
    corners += inverse[:, 2]
    margin = 2.0 / scale  # the bilinear neighbours of the outermost output pixels
    x0 = max(math.floor(corners[:, 0].min() - margin), 0)
    y0 = max(math.floor(corners[:, 1].min() - margin), 0)
    x1 = min(math.ceil(corners[:, 0].max() + margin) + 1, image.shape[1])
    y1 = min(math.ceil(corners[:, 1].max() + margin) + 1, image.shape[0])
    if x1 - x0 < 2 or y1 - y0 < 2:  # the output lies (almost) wholly outside the image
        return image, matrix
    size = (max(round((x1 - x0) * scale), 1), max(round((y1 - y0) * scale), 1))
    small = cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    fx, fy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    # a pixel centre u of `small` lies at (u + 0.5) / f - 0.5 in the crop's pixel centres
    to_image = np.array([[1 / fx, 0.0, 0.5 / fx - 0.5 + x0], [0.0, 1 / fy, 0.5 / fy - 0.5 + y0]])
    return small, compose(matrix, to_image)


def warp(
    image: np.ndarray,
    matrix: np.ndarray,
    input_size: tuple[int, int],
    border: tuple[int, int, int] | int | float = (255, 255, 255),
    *,
    nearest: bool = False,
    replicate: bool = False,
) -> np.ndarray:
    """`image` through `matrix` into an (H, W) canvas; `nearest` for label maps and other
    values that must not be blended, `border` fills what lies outside the image (with
    `replicate`, the image's edge pixels go on instead). A blended warp that shrinks the
    image a lot averages first (`area_prefilter`)."""
    H, W = input_size
    if not nearest:
        image, matrix = area_prefilter(image, matrix, input_size)
    return cv2.warpAffine(
        image,
        np.asarray(matrix, np.float64),
        (W, H),
        flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def warp_labels(
    labels: np.ndarray, matrix: np.ndarray, output_size: tuple[int, int], border: int = 0
) -> np.ndarray:
    """A label map (uint8 class ids [H, W]) through `matrix` into an (H, W) canvas, each
    output pixel the class whose one-hot map, resampled bilinearly, is largest there. A
    nearest-neighbour warp that enlarges keeps the source grid's staircase, a step per
    source pixel; this draws the boundaries between classes as the straight and curved
    lines the staircase samples (`border` fills what lies outside the map)."""
    h, w = output_size
    classes = np.unique(labels)
    if len(classes) == 1:
        return warp(labels, matrix, output_size, border, nearest=True)
    best = np.full((h, w), -1.0, np.float32)
    out = np.full((h, w), border, np.uint8)
    for c in classes:
        share = warp((labels == c).astype(np.float32), matrix, output_size, 0.0)
        take = share > best
        out[take], best[take] = c, share[take]
    outside = warp(np.ones(labels.shape, np.uint8), matrix, output_size, 0, nearest=True) == 0
    out[outside] = border  # past the map, as a nearest-neighbour warp finds it
    return out
