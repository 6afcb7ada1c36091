"""Image filters the part warp and its fills share: a square dilation, a push-pull fill and
a Gaussian blur, batched [B, C, H, W] and differentiable."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def square_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """[B, C, H, W]: the maximum over the (2 radius + 1)-pixel square around each pixel (a
    dilation; the same size out), as a row pass and a column pass: a 9x9 square in one pass
    is 81 comparisons a pixel, in two 18."""
    k = 2 * radius + 1
    x = F.max_pool2d(x, (1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(x, (k, 1), stride=1, padding=(radius, 0))


def fill_background(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Push-pull fill: image [B, C, H, W] where known [B, 1, H, W] (soft 0..1) is 1, the
    rest filled from the surroundings, smoothly (a pyramid of masked means)."""
    levels = [(image * known, known)]
    while min(levels[-1][0].shape[-2:]) > 1:
        c, m = levels[-1]
        levels.append((F.avg_pool2d(c, 2, ceil_mode=True), F.avg_pool2d(m, 2, ceil_mode=True)))
    c, m = levels[-1]
    filled = c / m.clamp_min(1e-6)
    for c, m in reversed(levels[:-1]):
        up = F.interpolate(filled, size=c.shape[-2:], mode="bilinear", align_corners=False)
        # a pixel with enough known neighbours keeps their mean, otherwise the coarser fill
        conf = m.clamp(0, 1)
        filled = c / m.clamp_min(1e-6) * conf + up * (1 - conf)
    return filled


def blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] (edges replicated)."""
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    c = image.shape[1]
    out = F.pad(image, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
