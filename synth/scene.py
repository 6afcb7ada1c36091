"""Everything around the person: the background, the cast shadow and the camera.

DeepFashion photos are studio shots (light, nearly uniform backgrounds, a floor line, a
soft shadow); shoppers' photos are rooms. Both kinds are drawn, the cluttered one with a
probability. The camera then adds what every real photo has: exposure and white balance,
lens blur and sensor noise (JPEG compression happens when the file is written).
"""

from __future__ import annotations

import cv2
import numpy as np

from synth.config import BackgroundConfig, CameraConfig
from synth.raster import Canvas
from synth.textures import FABRIC_COLOURS, make_texture


def _low_frequency(
    rng: np.random.Generator,
    height: int,
    width: int,
    cells: int,
) -> np.ndarray:
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) - 0.5


def studio_background(
    rng: np.random.Generator, height: int, width: int, cfg: BackgroundConfig
) -> np.ndarray:
    """A light backdrop with a slow gradient, blotches and often a floor line."""
    lightness = rng.uniform(*cfg.lightness_range)
    tint = lightness * (1.0 + rng.uniform(-0.04, 0.04, size=3))
    # One small random field, resized: the gradient and blotches in a single cubic resize.
    field = 1.0 + 0.05 * (rng.random((4, 3, 1)) - 0.5)
    field = field + rng.uniform(-0.04, 0.04) * np.linspace(-1, 1, 4)[:, None, None]
    img = cv2.resize(
        (field * tint).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )
    if rng.random() < cfg.floor_probability:
        horizon = rng.uniform(0.72, 0.95) * height
        rows = np.arange(height, dtype=np.float32)
        floor = 1.0 / (1.0 + np.exp(-(rows - horizon) / (0.01 * height + 0.5)))
        img *= (1.0 - rng.uniform(0.04, 0.12) * floor)[:, None, None].astype(np.float32)
    return np.clip(img, 0, 1, out=img)


def cluttered_background(
    rng: np.random.Generator, height: int, width: int, cfg: BackgroundConfig
) -> np.ndarray:
    """A room-like backdrop: walls, furniture-like blocks, textured patches, out of focus."""
    base = FABRIC_COLOURS[rng.integers(len(FABRIC_COLOURS))] * rng.uniform(0.5, 1.0)
    img = np.empty((height, width, 3), np.float32)
    img[:] = base
    img *= (1.0 + 0.25 * _low_frequency(rng, height, width, 2))[..., None]
    for _ in range(int(rng.integers(*cfg.clutter_shapes))):
        colour = FABRIC_COLOURS[rng.integers(len(FABRIC_COLOURS))] * rng.uniform(0.4, 1.1)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(0.05, 0.6) * width, rng.uniform(0.05, 0.6) * height
        kind = rng.integers(4)
        x0, x1 = int(max(cx - w / 2, 0)), int(min(cx + w / 2, width))
        y0, y1 = int(max(cy - h / 2, 0)), int(min(cy + h / 2, height))
        if x1 <= x0 or y1 <= y0:
            continue
        if kind == 0:  # a block (furniture, a door, a picture)
            img[y0:y1, x0:x1] = colour
        elif kind == 1:  # a round object
            yy, xx = np.ogrid[y0:y1, x0:x1]
            mask = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 < 1
            img[y0:y1, x0:x1][mask] = colour
        elif kind == 2:  # a textured patch (a rug, a curtain, a poster)
            tex = make_texture(
                rng,
                str(rng.choice(["stripes", "checks", "floral", "dots"])),
                tile_size=32,
                period=float(rng.uniform(20, 80)),
            )
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            img[y0:y1, x0:x1] = tex.sample(xx, yy)
        else:  # a thin line (a shelf edge, a frame)
            thickness = max(1, int(rng.uniform(0.005, 0.02) * height))
            if rng.random() < 0.5:
                img[y0 : min(y0 + thickness, height), x0:x1] = colour
            else:
                img[y0:y1, x0 : min(x0 + thickness, width)] = colour
    sigma = rng.uniform(*cfg.clutter_blur_range) * height / 256
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma)) if sigma > 0.3 else img
    return np.clip(img, 0, 1)


def background(
    rng: np.random.Generator, height: int, width: int, cfg: BackgroundConfig
) -> np.ndarray:
    if rng.random() < cfg.clutter_probability:
        return cluttered_background(rng, height, width, cfg)
    return studio_background(rng, height, width, cfg)


def light(rng: np.random.Generator, canvas: Canvas, cfg: BackgroundConfig) -> np.ndarray:
    """The person layer lit from a random side: brighter where the surface normal faces
    the light. Colours in `canvas.rgb` (albedo and cylinder shading) stay untouched."""
    strength = np.float32(rng.uniform(*cfg.light_strength_range))
    angle = rng.uniform(0.0, 2.0 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)], np.float32) * strength
    gain = 1.0 + canvas.normal @ direction  # [H, W]
    return canvas.rgb * gain[..., None]


def cast_shadow(
    rng: np.random.Generator, bg: np.ndarray, coverage: np.ndarray, cfg: BackgroundConfig
) -> np.ndarray:
    """Darken the background under a shifted, blurred silhouette of the person."""
    if rng.random() >= cfg.shadow_probability:
        return bg
    height, width = coverage.shape
    dx = rng.uniform(-0.06, 0.06) * width
    dy = rng.uniform(0.0, 0.02) * height
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    shifted = cv2.warpAffine(coverage, m, (width, height), borderValue=0)
    sigma = rng.uniform(0.01, 0.03) * height
    soft = cv2.GaussianBlur(shifted, (0, 0), sigmaX=float(sigma))
    return bg * (1.0 - rng.uniform(0.08, 0.22) * soft)[..., None]


_NOISE_POOL: np.ndarray | None = None


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal noise of `shape`: a slice of a per-process pool at a random offset,
    ten times cheaper than fresh draws and still fixed by the seed."""
    global _NOISE_POOL
    size = int(np.prod(shape))
    if _NOISE_POOL is None or _NOISE_POOL.size < 2 * size:
        _NOISE_POOL = np.random.default_rng(12345).standard_normal(
            max(4 * size, 1 << 20), dtype=np.float32
        )
    start = int(rng.integers(0, _NOISE_POOL.size - size))
    return _NOISE_POOL[start : start + size].reshape(shape)


def apply_camera(
    rng: np.random.Generator,
    image: np.ndarray,
    cfg: CameraConfig,
    noise_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """float RGB [H, W, 3] in [0, 1] -> uint8, with exposure, cast, blur and noise. `rng`
    draws the settings, `noise_rng` (default `rng`) the sensor noise: one session's photos
    share settings but not noise."""
    height = image.shape[0]
    gain = (
        rng.uniform(*cfg.brightness_range)
        * (1.0 + rng.uniform(-cfg.color_cast, cfg.color_cast, size=3))
    ).astype(np.float32)
    contrast = np.float32(rng.uniform(*cfg.contrast_range))
    out = image - np.float32(0.5)
    out *= contrast
    out += np.float32(0.5)
    out *= gain * np.float32(255.0)
    sigma = rng.uniform(*cfg.blur_range) * height / 256
    if sigma > 0.25:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(sigma))
    noise = np.float32(rng.uniform(*cfg.noise_range))
    out += _noise(noise_rng if noise_rng is not None else rng, out.shape) * noise
    out += np.float32(0.5)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)
