"""Heatmap targets and their decoding, unbiased and sub-pixel.

Coordinates map between input pixels and heatmap cells with pixel centres aligned at both
ends (UDP, Huang et al. 2020): x_heat = x_in * (w - 1) / (W - 1). With that mapping a
horizontal flip of the input is exactly a flip of the heatmap, so flip testing needs no
half-pixel shift. Decoding refines the arg-max with DARK (Zhang et al. 2020): smooth the
heatmap with the training Gaussian, take its log, and step to the maximum of the
second-order Taylor expansion.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from keypoints.skeleton import FLIP_PERMUTATION


def scale_factors(
    input_size: tuple[int, int],
    heatmap_size: tuple[int, int],
) -> tuple[float, float]:
    """(sx, sy) with x_heat = x_in * sx."""
    (H, W), (h, w) = input_size, heatmap_size
    return (w - 1) / max(W - 1, 1), (h - 1) / max(H - 1, 1)


def encode(
    keypoints: np.ndarray, input_size: tuple[int, int], heatmap_size: tuple[int, int], sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [K, 2] in input pixels (-1 missing, or outside) -> Gaussian targets
    [K, h, w] float32 and presence [K] bool."""
    h, w = heatmap_size
    sx, sy = scale_factors(input_size, heatmap_size)
    kp = np.asarray(keypoints, dtype=np.float32)
    H, W = input_size
    present = (kp[:, 0] >= 0) & (kp[:, 1] >= 0) & (kp[:, 0] <= W - 1) & (kp[:, 1] <= H - 1)
    cx, cy = kp[:, 0] * sx, kp[:, 1] * sy
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    gx = np.exp(-((xs[None, :] - cx[:, None]) ** 2) / (2 * sigma**2))  # [K, w]
    gy = np.exp(-((ys[None, :] - cy[:, None]) ** 2) / (2 * sigma**2))  # [K, h]
    target = gy[:, :, None] * gx[:, None, :] * present[:, None, None]
    return target.astype(np.float32), present


def flip_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """Heatmaps of a mirrored input -> heatmaps of the original input."""
    return heatmaps.flip(-1)[:, list(FLIP_PERMUTATION)]


def _gaussian_kernel(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, K, h, w], per channel, edge-padded."""
    b, k, h, w = heatmaps.shape
    g = _gaussian_kernel(sigma, heatmaps.device)
    r = (len(g) - 1) // 2
    x = heatmaps.reshape(b * k, 1, h, w)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1))
    return x.reshape(b, k, h, w)


def decode(
    heatmaps: torch.Tensor, input_size: tuple[int, int], *, sigma: float = 2.0, dark: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps [B, K, h, w] -> (keypoints [B, K, 2] in input pixels, scores [B, K]).

    Scores are the heatmap maxima; thresholding them into missing points is the caller's
    choice (`keypoints.predict`)."""
    hm = heatmaps.detach().float()
    b, k, h, w = hm.shape
    flat = hm.reshape(b, k, -1)
    scores, index = flat.max(dim=-1)
    px = (index % w).float()
    py = torch.div(index, w, rounding_mode="floor").float()
    if dark and h >= 3 and w >= 3:
        smooth = _blur(hm, sigma)
        # keep each map's maximum (DARK's modulation), then work on the log
        peak = smooth.reshape(b, k, -1).amax(-1).clamp_min(1e-10)
        smooth = smooth * (scores.clamp_min(1e-10) / peak)[..., None, None]
        # Within the blur's reach of the border, padding would drag the peak outwards:
        # refine those on the raw map (already a Gaussian near a trained peak).
        r = max(1, math.ceil(3 * sigma))
        border = (px < r) | (px > w - 1 - r) | (py < r) | (py > h - 1 - r)
        smooth = torch.where(border[..., None, None], hm, smooth)
        log = torch.log(smooth.clamp_min(1e-10))
        padded = F.pad(log.reshape(b * k, 1, h, w), (1, 1, 1, 1), mode="replicate")
        padded = padded.reshape(b, k, h + 2, w + 2)
        ix, iy = px.long() + 1, py.long() + 1

        def at(dy: int, dx: int) -> torch.Tensor:
            flat_index = ((iy + dy) * (w + 2) + (ix + dx)).unsqueeze(-1)
            return padded.reshape(b, k, -1).gather(-1, flat_index).squeeze(-1)

        # central differences of the log (exact for a Gaussian); a peak on the border
        # has no neighbour on one side and stays unrefined
        centre = at(0, 0)
        dx = 0.5 * (at(0, 1) - at(0, -1))
        dy = 0.5 * (at(1, 0) - at(-1, 0))
        dxx = at(0, 1) - 2 * centre + at(0, -1)
        dyy = at(1, 0) - 2 * centre + at(-1, 0)
        dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
        det = dxx * dyy - dxy * dxy
        inner = (px > 0) & (px < w - 1) & (py > 0) & (py < h - 1)
        ok = inner & (det.abs() > 1e-12) & (dxx < 0) & (dyy < 0)
        safe = torch.where(ok, det, torch.ones_like(det))
        off_x = -(dyy * dx - dxy * dy) / safe
        off_y = -(dxx * dy - dxy * dx) / safe
        off_x = torch.where(ok, off_x.clamp(-1, 1), torch.zeros_like(off_x))
        off_y = torch.where(ok, off_y.clamp(-1, 1), torch.zeros_like(off_y))
        px, py = px + off_x, py + off_y
    sx, sy = scale_factors(input_size, (h, w))
    coords = torch.stack([px / sx, py / sy], dim=-1)  # [B, K, 2]
    return coords, scores
