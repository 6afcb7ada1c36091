"""Gaussian pose maps: the 18-channel pose input of the generator (and heatmap targets).

Channel k holds exp(-((x - x_k)^2 + (y - y_k)^2) / (2 sigma^2)) over the pixel grid
(pixel centres at integer coordinates, as the keypoints), zero where point k is missing.
This is the float encoding of PATN/ADGAN's `cords_to_map` (sigma 6 at 256x176). The
Gaussian is separable, so a map costs two small exponentials and an outer product, batched,
on any device.
"""

from __future__ import annotations

import numpy as np
import torch

REFERENCE_HEIGHT = 256  # ADGAN's sigma of 6 px is for 256x176 images


def scaled_sigma(sigma_at_256: float, height: int) -> float:
    """A Gaussian width given at 256 rows, at `height` rows: one config value for all sizes."""
    return sigma_at_256 * height / REFERENCE_HEIGHT


def pose_maps(
    keypoints: np.ndarray | torch.Tensor,
    height: int,
    width: int,
    sigma: float = 6.0,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Keypoints [..., K, 2] (x, y; -1 missing) -> float32 maps [..., K, height, width]."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    kp = torch.as_tensor(keypoints, dtype=torch.float32, device=device)
    if kp.shape[-1] != 2:
        raise ValueError(f"keypoints must end in (x, y), got shape {tuple(kp.shape)}")
    present = (kp[..., 0] >= 0) & (kp[..., 1] >= 0)  # [..., K]
    xs = torch.arange(width, dtype=torch.float32, device=kp.device)
    ys = torch.arange(height, dtype=torch.float32, device=kp.device)
    gx = torch.exp(-((xs - kp[..., 0:1]) ** 2) / (2 * sigma**2))  # [..., K, W]
    gy = torch.exp(-((ys - kp[..., 1:2]) ** 2) / (2 * sigma**2))  # [..., K, H]
    gy = gy * present[..., None].to(gy.dtype)
    return gy[..., :, None] * gx[..., None, :]  # [..., K, H, W]
