"""Losses of the dense network, as small pure functions.

Parsing: cross-entropy (optionally class-weighted) plus soft Dice.

DensePose, in the sense of detectron2's `DensePoseChartLoss`: at the annotated points,
cross-entropy of the 25-way part index and smooth-L1 of U and V read from the channels of
the TRUE part; over the box, cross-entropy of the 15-way coarse mask (dp_masks). Each term
here is a mean (over points, or over mask pixels); detectron2 instead sums U/V over the
points of a batch and weighs them 0.01, the index 1 and the mask 5. `densepose_loss` below
is the plain sum of the four means, our "mean loss": a chance-level network scores about
ln 25 + ln 15 + 2 * 0.04 = 6.0 on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = 255


def soft_dice(
    logits: torch.Tensor, labels: torch.Tensor, *, ignore: int = IGNORE, eps: float = 1.0
) -> torch.Tensor:
    """1 - mean soft Dice over the classes present in the batch (logits [B, K, H, W])."""
    k = logits.shape[1]
    valid = (labels != ignore).unsqueeze(1)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(labels.clamp(0, k - 1), k).permute(0, 3, 1, 2).float() * valid
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    dice = (2 * inter + eps) / (total + eps)
    return 1.0 - dice[present].mean() if present.any() else logits.sum() * 0.0


def parsing_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_weights: torch.Tensor | None = None,
    dice_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    ce = F.cross_entropy(logits.float(), labels, weight=class_weights, ignore_index=IGNORE)
    out = {"parse_ce": ce}
    if dice_weight:
        out["parse_dice"] = soft_dice(logits, labels)
    out["parse_total"] = ce + dice_weight * out.get("parse_dice", 0.0)
    return out


def sample_at(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of maps [B, C, H, W] at pixel points [B, N, 2] (x, y) -> [B, C, N]."""
    _, _, h, w = maps.shape
    grid = torch.stack(
        [points[..., 0] / max(w - 1, 1) * 2 - 1, points[..., 1] / max(h - 1, 1) * 2 - 1], dim=-1
    )  # [B, N, 2]
    return F.grid_sample(maps.float(), grid[:, :, None, :], mode="bilinear", align_corners=True)[
        ..., 0
    ]


def densepose_losses(
    out: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The four DensePose terms (means) from the network's heads and a batch's annotations:
    points [B, N, 2], point_index [B, N] (1..24), point_u/point_v [B, N], point_valid
    [B, N], coarse [B, H, W] (0..14, 255 unknown)."""
    valid = batch["point_valid"]
    index = sample_at(out["index"], batch["points"])  # [B, 25, N]
    true = batch["point_index"].clamp(1, 24) - 1  # [B, N] channel of the true part
    u = sample_at(out["u"], batch["points"]).gather(1, true[:, None]).squeeze(1)  # [B, N]
    v = sample_at(out["v"], batch["points"]).gather(1, true[:, None]).squeeze(1)
    zero = out["index"].sum() * 0.0
    if valid.any():
        ce = F.cross_entropy(index.permute(0, 2, 1)[valid], batch["point_index"][valid])
        u_loss = F.smooth_l1_loss(u[valid], batch["point_u"][valid])
        v_loss = F.smooth_l1_loss(v[valid], batch["point_v"][valid])
    else:
        ce = u_loss = v_loss = zero
    coarse = batch["coarse"]
    mask_loss = (
        F.cross_entropy(out["coarse"].float(), coarse, ignore_index=IGNORE)
        if (coarse != IGNORE).any()
        else zero
    )
    return {
        "dp_index": ce,
        "dp_u": u_loss,
        "dp_v": v_loss,
        "dp_coarse": mask_loss,
        "densepose_loss": ce + u_loss + v_loss + mask_loss,
    }
