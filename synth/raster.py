"""Rasterising shapes with exact ground truth.

Every shape is a distance field evaluated on its bounding box only. The same field gives a
soft coverage for colour (anti-aliased edges, like a camera's) and a hard inside-mask for
the labels, so ground truth is exact and pixels are not jagged. Shapes are painted back to
front onto a `Canvas` holding premultiplied colour and coverage plus the label, DensePose
(I, U, V) and owner (which body segment) buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """Pixel rows y0:y1, columns x0:x1, clipped to the canvas."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (yy, xx), float32 [h, w]."""
        ys = np.arange(self.y0, self.y1, dtype=np.float32)
        xs = np.arange(self.x0, self.x1, dtype=np.float32)
        return np.broadcast_to(ys[:, None], (len(ys), len(xs))), np.broadcast_to(
            xs[None, :], (len(ys), len(xs))
        )


class Canvas:
    """The person layer and its ground-truth buffers."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.rgb = np.zeros((height, width, 3), np.float32)  # premultiplied by coverage
        self.alpha = np.zeros((height, width), np.float32)
        self.label = np.zeros((height, width), np.uint8)
        self.part = np.zeros((height, width), np.uint8)
        self.u = np.zeros((height, width), np.float32)
        self.v = np.zeros((height, width), np.float32)
        self.owner = np.zeros((height, width), np.int16)
        # Image-plane part of the surface normal (x, y): lights the person when composited.
        self.normal = np.zeros((height, width, 2), np.float32)

    def box(self, xmin: float, xmax: float, ymin: float, ymax: float) -> Box | None:
        x0, x1 = max(int(np.floor(xmin)), 0), min(int(np.ceil(xmax)) + 1, self.width)
        y0, y1 = max(int(np.floor(ymin)), 0), min(int(np.ceil(ymax)) + 1, self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        return Box(y0, y1, x0, x1)

    def paint(
        self,
        box: Box,
        alpha: np.ndarray,
        colour: np.ndarray,
        inside: np.ndarray,
        *,
        label: np.ndarray | int,
        owner: int,
        part: np.ndarray | int,
        u: np.ndarray | float,
        v: np.ndarray | float,
        iuv_mask: np.ndarray | None = None,
        normal: np.ndarray | None = None,
    ) -> None:
        """Composite one shape over the layer; ground truth where `inside` (DensePose only
        where `iuv_mask`, default `inside`: a loose garment keeps the body's IUV below).
        `normal` [h, w, 2] is the surface normal's image-plane part (None: facing us)."""
        ys, xs = box.slices
        rgb = self.rgb[ys, xs]
        delta = colour - rgb  # rgb += (colour - rgb) * alpha, with one temporary
        delta *= alpha[..., None]
        rgb += delta
        cov = self.alpha[ys, xs]
        cov += (1.0 - cov) * alpha
        np.copyto(self.label[ys, xs], np.asarray(label, np.uint8), where=inside)
        np.copyto(self.owner[ys, xs], np.int16(owner), where=inside)
        where = inside if iuv_mask is None else iuv_mask
        np.copyto(self.part[ys, xs], np.asarray(part, np.uint8), where=where)
        np.copyto(self.u[ys, xs], np.asarray(u, np.float32), where=where)
        np.copyto(self.v[ys, xs], np.asarray(v, np.float32), where=where)
        np.copyto(self.normal[ys, xs], 0.0 if normal is None else normal, where=inside[..., None])


@dataclass
class SegmentField:
    """Coordinates of a box's pixels relative to a segment A->B."""

    t_raw: np.ndarray  # projection along A->B, 0 at A, 1 at B
    t: np.ndarray  # clamped to [0, 1]
    dist: np.ndarray  # distance to the closest point of the segment, px
    side: np.ndarray  # signed distance across, px; positive along n = rot90(B - A)
    length: float


def segment_field(box: Box, a: np.ndarray, b: np.ndarray) -> SegmentField:
    yy, xx = box.grid()
    d = b - a
    length = float(np.hypot(*d))
    if length < 1e-3:
        d = np.array([0.0, 1e-3])
        length = 1e-3
    px, py = xx - np.float32(a[0]), yy - np.float32(a[1])
    dx, dy = np.float32(d[0]), np.float32(d[1])
    t_raw = (px * dx + py * dy) / np.float32(length * length)
    t = np.clip(t_raw, 0.0, 1.0)
    cx, cy = px - t * dx, py - t * dy
    dist = np.sqrt(cx * cx + cy * cy)
    side = (cx * -dy + cy * dx) / np.float32(length)
    return SegmentField(t_raw, t, dist, side, length)


def across_normal(
    a: np.ndarray, b: np.ndarray, perp: np.ndarray, flatness: float = 1.0
) -> np.ndarray:
    """Image-plane normal [h, w, 2] of a round shape along a-b: `perp` (-1..1 across it)
    times the unit vector across, scaled down by `flatness` for flatter bodies."""
    dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
    k = flatness / max(float(np.hypot(dx, dy)), 1e-6)
    out = np.empty((*perp.shape, 2), np.float32)
    np.multiply(perp, np.float32(-dy * k), out=out[..., 0])
    np.multiply(perp, np.float32(dx * k), out=out[..., 1])
    return out


def segment_box(canvas: Canvas, a: np.ndarray, b: np.ndarray, reach: float) -> Box | None:
    """Bounding box of everything within `reach` pixels of segment a-b."""
    return canvas.box(
        min(a[0], b[0]) - reach,
        max(a[0], b[0]) + reach,
        min(a[1], b[1]) - reach,
        max(a[1], b[1]) + reach,
    )


@dataclass
class CapsuleField:
    """A tapered capsule's field over its box: radius ra at A to rb at B, round ends."""

    box: Box
    segment: SegmentField
    radius: np.ndarray  # px, at each pixel's position along the axis
    excess: np.ndarray  # radius - distance: >= 0 inside
    perp: np.ndarray  # across the capsule in [-1, 1], positive along rot90(B - A)


def capsule(
    canvas: Canvas, a: np.ndarray, b: np.ndarray, ra: float, rb: float, *, widest: float = 1.0
) -> CapsuleField | None:
    """Evaluate a tapered capsule over its box (None when it lies off the canvas). A caller
    that widens parts of it (a loose sleeve) passes the largest factor as `widest`."""
    box = segment_box(canvas, a, b, max(ra, rb) * widest + 2.0)
    if box is None:
        return None
    f = segment_field(box, a, b)
    radius = np.float32(ra) + np.float32(rb - ra) * f.t
    return CapsuleField(box, f, radius, radius - f.dist, np.clip(f.side / radius, -1.0, 1.0))


def coverage(excess: np.ndarray) -> np.ndarray:
    """Soft coverage from a signed distance inside the edge (px): 0.5 on the edge."""
    return np.clip(excess + 0.5, 0.0, 1.0)


@dataclass
class EllipseField:
    """Normalised ellipse coordinates: xn along `right`, yn along `up`, rho = radius."""

    xn: np.ndarray
    yn: np.ndarray
    rho: np.ndarray
    excess: np.ndarray  # approximate distance inside the edge, px


def ellipse_field(
    box: Box,
    centre: np.ndarray,
    right: np.ndarray,
    up: np.ndarray,
    half_width: float,
    half_height: float,
) -> EllipseField:
    yy, xx = box.grid()
    dx, dy = xx - np.float32(centre[0]), yy - np.float32(centre[1])
    xn = (dx * np.float32(right[0]) + dy * np.float32(right[1])) / np.float32(half_width)
    yn = (dx * np.float32(up[0]) + dy * np.float32(up[1])) / np.float32(half_height)
    rho = np.sqrt(xn * xn + yn * yn)
    excess = (1.0 - rho) * np.float32(min(half_width, half_height))
    return EllipseField(xn, yn, rho, excess)


def ellipse_box(canvas: Canvas, centre: np.ndarray, extent: float) -> Box | None:
    return canvas.box(
        centre[0] - extent, centre[0] + extent, centre[1] - extent, centre[1] + extent
    )
