"""Procedural garment textures and the colour palettes of skin, hair and fabric.

A texture is a small seamless tile (solid with fabric grain, stripes, checks, dots, or a
floral all-over print), sampled by the garment's own surface coordinates, so a garment
looks the same in every pose. A chest print is a decal placed in the chart of the torso
front only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# sRGB 0..255. Fashion base colours: the neutrals dominate DeepFashion, so they repeat.
FABRIC_COLOURS = (
    np.array(
        [
            (244, 244, 240),
            (242, 240, 232),
            (30, 30, 33),
            (28, 28, 30),
            (128, 128, 131),
            (172, 172, 174),
            (36, 46, 82),
            (52, 82, 168),
            (142, 182, 222),
            (178, 32, 42),
            (112, 26, 42),
            (234, 162, 182),
            (240, 202, 196),
            (228, 122, 52),
            (210, 170, 52),
            (240, 220, 92),
            (110, 110, 60),
            (52, 122, 72),
            (172, 222, 192),
            (32, 122, 122),
            (216, 196, 166),
            (190, 150, 100),
            (112, 76, 52),
            (72, 96, 136),
            (102, 62, 132),
            (192, 172, 222),
            (240, 122, 102),
            (240, 232, 212),
        ],
        dtype=np.float32,
    )
    / 255.0
)

SKIN_TONES = (
    np.array(
        [
            (255, 226, 200),
            (243, 198, 170),
            (226, 176, 144),
            (204, 150, 114),
            (176, 124, 92),
            (146, 98, 68),
            (114, 76, 52),
            (84, 56, 40),
        ],
        dtype=np.float32,
    )
    / 255.0
)

HAIR_COLOURS = (
    np.array(
        [
            (26, 21, 20),
            (26, 21, 20),
            (56, 36, 26),
            (98, 64, 40),
            (150, 110, 72),
            (214, 184, 132),
            (148, 62, 32),
            (172, 170, 168),
        ],
        dtype=np.float32,
    )
    / 255.0
)

SHOE_COLOURS = (
    np.array(
        [
            (28, 28, 30),
            (240, 240, 238),
            (112, 76, 52),
            (180, 40, 48),
            (190, 160, 120),
            (60, 60, 64),
        ],
        dtype=np.float32,
    )
    / 255.0
)


def jitter_colour(
    rng: np.random.Generator,
    colour: np.ndarray,
    amount: float = 0.06,
) -> np.ndarray:
    """A nearby colour: small changes of brightness and of each channel."""
    scale = 1.0 + rng.uniform(-amount, amount)
    out = colour * scale + rng.uniform(-amount / 2, amount / 2, size=3)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def pick_colour(
    rng: np.random.Generator,
    palette: np.ndarray,
    amount: float = 0.06,
) -> np.ndarray:
    return jitter_colour(rng, palette[rng.integers(len(palette))], amount)


@dataclass
class Texture:
    """A seamless tile [T, T, 3] repeating every `period` L of garment surface."""

    pattern: str
    tile: np.ndarray
    period: float
    # Fabric folds: smooth shading [F, F] in -0.5..0.5, one tile per `fold_period` L across
    # and three along the garment (folds hang along it), scaled by `fold_strength`.
    folds: np.ndarray | None = None
    fold_period: float = 1.0
    fold_strength: float = 0.0

    def __post_init__(self) -> None:
        for tile in (self.tile, self.folds):
            if tile is None:
                continue
            size = tile.shape[0]
            if size & (size - 1) or tile.shape[1] != size:
                raise ValueError(
                    f"texture tiles are square with a power-of-two side, got {tile.shape[:2]}"
                )

    @staticmethod
    def _lookup(
        tile: np.ndarray, gx: np.ndarray, gy: np.ndarray, period_x: float, period_y: float
    ) -> np.ndarray:
        size = tile.shape[0]
        sx, sy = np.float32(size / period_x), np.float32(size / period_y)
        # Garment coordinates are >= -1000 L; the offset keeps the truncation a floor.
        ix = (gx * sx + np.float32(1000.0) * sx).astype(np.int32) & (size - 1)
        iy = (gy * sy + np.float32(1000.0) * sy).astype(np.int32) & (size - 1)
        return tile[iy, ix]

    def sample(self, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """Colour [..., 3] at garment coordinates (gx across, gy along, in L)."""
        colour = self._lookup(self.tile, gx, gy, self.period, self.period)
        if self.folds is None or self.fold_strength == 0:
            return colour
        fold = self._lookup(self.folds, gx, gy, self.fold_period, 3.0 * self.fold_period)
        return colour * (1.0 + np.float32(self.fold_strength) * fold)[..., None]


def _seamless_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth periodic noise in [0, 1] of shape [size, size]."""
    grid = rng.random((cells, cells)).astype(np.float32)
    tiled = np.tile(grid, (3, 3))
    big = cv2.resize(tiled, (3 * size, 3 * size), interpolation=cv2.INTER_CUBIC)
    out = big[size : 2 * size, size : 2 * size]
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _two_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    base = pick_colour(rng, FABRIC_COLOURS)
    for _ in range(8):
        accent = pick_colour(rng, FABRIC_COLOURS)
        if np.abs(accent - base).sum() > 0.5:
            break
    return base, accent


def make_texture(
    rng: np.random.Generator,
    pattern: str,
    *,
    tile_size: int,
    period: float,
    fold_strength_range: tuple[float, float] = (0.0, 0.0),
) -> Texture:
    """A texture tile of the named pattern with random colours and proportions."""
    t = tile_size
    yy, xx = np.mgrid[0:t, 0:t].astype(np.float32) / t
    base, accent = _two_colours(rng)
    if pattern == "solid":
        mask = np.zeros((t, t), np.float32)
    elif pattern == "stripes":
        n = int(rng.choice([2, 3, 4, 6, 8]))
        direction = rng.choice(["across", "along", "diagonal"], p=[0.6, 0.25, 0.15])
        coord = {"across": yy, "along": xx, "diagonal": (xx + yy) % 1.0}[direction]
        mask = ((coord * n) % 1.0 < rng.uniform(0.25, 0.6)).astype(np.float32)
    elif pattern == "checks":
        n = int(rng.choice([2, 3, 4, 6]))
        h = ((yy * n) % 1.0 < 0.5).astype(np.float32)
        v = ((xx * n) % 1.0 < 0.5).astype(np.float32)
        mask = 0.5 * (h + v)  # gingham: crossings full accent, bands half
    elif pattern == "dots":
        n = int(rng.choice([3, 4, 6, 8]))
        radius = rng.uniform(0.15, 0.32)
        cy = (yy * n) % 1.0 - 0.5
        row = np.floor(yy * n)
        cx = (xx * n + 0.5 * (row % 2)) % 1.0 - 0.5
        mask = ((cx**2 + cy**2) < radius**2).astype(np.float32)
    elif pattern == "floral":
        noise = _seamless_noise(rng, t, int(rng.integers(4, 9)))
        detail = _seamless_noise(rng, t, int(rng.integers(8, 16)))
        mask = ((noise > rng.uniform(0.45, 0.65)).astype(np.float32) + 0.5 * (detail > 0.75)).clip(
            0, 1
        )
    else:
        raise ValueError(
            f"unknown pattern {pattern!r}; valid: solid, stripes, checks, dots, floral"
        )
    grain = 1.0 + 0.035 * (_seamless_noise(rng, t, t // 4) - 0.5)  # fabric weave
    tile = (base * (1 - mask[..., None]) + accent * mask[..., None]) * grain[..., None]
    folds = _seamless_noise(rng, 32, int(rng.integers(3, 6))) - 0.5
    return Texture(
        pattern,
        np.clip(tile, 0, 1).astype(np.float32),
        period,
        folds=folds,
        fold_period=float(rng.uniform(0.3, 0.8)),
        fold_strength=float(rng.uniform(*fold_strength_range)),
    )


def make_decal(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A chest graphic: RGBA float [size, size, 4] of a few shapes and 'lettering'."""
    canvas = np.zeros((size, size, 4), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    colours = [pick_colour(rng, FABRIC_COLOURS, 0.1) for _ in range(3)]
    kind = rng.integers(3)
    if kind == 0:  # a badge: disc or ring with a band
        r = rng.uniform(0.3, 0.45)
        d = np.hypot(xx - 0.5, yy - 0.45)
        shape = d < r
        if rng.random() < 0.5:
            shape &= d > r * 0.6
        canvas[shape] = (*colours[0], 1.0)
    elif kind == 1:  # a block with a stripe
        shape = (np.abs(xx - 0.5) < 0.42) & (np.abs(yy - 0.45) < 0.3)
        canvas[shape] = (*colours[0], 1.0)
        canvas[shape & (np.abs(yy - 0.45) < 0.08)] = (*colours[1], 1.0)
    # lettering: two rows of short bars
    for row_y in (0.8, 0.92) if kind != 2 else (0.35, 0.5, 0.65):
        x = 0.08
        while x < 0.9:
            w = rng.uniform(0.04, 0.1)
            bar = (xx >= x) & (xx < x + w) & (np.abs(yy - row_y) < 0.04)
            canvas[bar] = (*colours[2], 1.0)
            x += w + rng.uniform(0.02, 0.05)
    return canvas
