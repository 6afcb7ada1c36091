"""Small tensor operations the packages share."""

from __future__ import annotations

import torch


def class_map(scores: torch.Tensor) -> torch.Tensor:
    """Scores [B, K, ...] -> the index of the largest [B, ...], the first one on ties (as
    `argmax(1)`). Why not `argmax(1)`: on a CPU torch's argmax over a dimension that is not
    the innermost is 5-8x slower than `max(1)` (torch 2.14, 2 cores: 6.7 ms against 0.9 ms
    for [2, 8, 192, 132], the parser's batch of two crops)."""
    return scores.max(1).indices
