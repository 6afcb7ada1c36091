"""Sampling a segment of the warp only where it reaches.

A segment covers a tenth to a third of a card: each is sampled (`grid_sample`) only within
the box of target pixels where its support exceeds a threshold, and a batch's boxes are
joined per segment, so that one call serves the batch and a batch gives what one item at a
time gives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Span = tuple[int, int, int, int]  # rows y0:y1 and columns x0:x1 of an image


def sampled_boxes(reach: torch.Tensor, threshold: float) -> torch.Tensor:
    """[B, S, 4] (y0, y1, x0, x1) on the CPU: per batch item and segment of reach [B, S, H,
    W], the rows and columns holding every pixel where it exceeds `threshold` (the whole
    image at 0; y0 == y1 where none does)."""
    b, n_seg, h, w = reach.shape
    if threshold <= 0:
        return torch.tensor([0, h, 0, w]).expand(b, n_seg, 4)
    over = reach > threshold
    spans = []
    for lines, n in ((over.any(3), h), (over.any(2), w)):  # [B, S, H] rows, [B, S, W] columns
        at = torch.arange(n, device=reach.device)
        first = torch.where(lines, at, n).amin(-1)
        last = torch.where(lines, at, -1).amax(-1) + 1
        spans += [first.clamp_max(last), last.clamp_min(0)]
    boxes = torch.stack(spans, -1).cpu()
    boxes[boxes[..., 0] >= boxes[..., 1]] = 0  # nothing over the threshold: empty
    return boxes


def sample_within(
    images: torch.Tensor, grid: torch.Tensor, box: Span, padding: str
) -> torch.Tensor:
    """images [B, C, H, W] sampled (bilinear) by grid [B, H, W, 2] over `box`'s rows and
    columns: [B, C, y1 - y0, x1 - x0]."""
    y0, y1, x0, x1 = box
    return F.grid_sample(
        images, grid[:, y0:y1, x0:x1], mode="bilinear", padding_mode=padding, align_corners=True
    )


def union_box(boxes: torch.Tensor) -> Span | None:
    """The box [4] holding every non-empty one of boxes [N, 4]; None if all are empty."""
    boxes = boxes[boxes[:, 0] < boxes[:, 1]]
    if len(boxes) == 0:
        return None
    return (
        int(boxes[:, 0].min()),
        int(boxes[:, 1].max()),
        int(boxes[:, 2].min()),
        int(boxes[:, 3].max()),
    )


def sample_in_boxes(
    stack: torch.Tensor, sample_grid: torch.Tensor, boxes: torch.Tensor
) -> torch.Tensor:
    """stack [B, S, C, H, W] sampled by each segment's grid [B, S, H, W, 2] within each batch
    item's box of it (`sampled_boxes`; bilinear, zeros past the source frame). Beyond its
    box a segment takes nothing: zero, but for the last channel (inside the frame), 1: no
    hole of its own there either. One sampling call per segment, over the batch's union of
    its boxes; each item's own box then decides, so that a batch gives what one at a time
    gives."""
    b, n_seg, c, h, w = stack.shape
    if bool((boxes == torch.tensor([0, h, 0, w])).all()):  # one call for all
        return F.grid_sample(
            stack.reshape(b * n_seg, c, h, w),
            sample_grid.reshape(b * n_seg, h, w, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        ).reshape(b, n_seg, c, h, w)
    nothing = torch.zeros(c, dtype=stack.dtype, device=stack.device)
    nothing[-1] = 1.0
    warped = stack.new_zeros(b, n_seg, c, h, w)
    warped[:, :, -1] = 1.0
    for s in range(n_seg):
        union = union_box(boxes[:, s])
        if union is None:
            continue
        y0, y1, x0, x1 = union
        sampled = sample_within(stack[:, s], sample_grid[:, s], union, "zeros")
        if bool((boxes[:, s] != torch.tensor(union)).any()):  # an item's own box is smaller
            own = boxes[:, s].to(stack.device)
            ys = torch.arange(y0, y1, device=stack.device)[None, :, None]
            xs = torch.arange(x0, x1, device=stack.device)[None, None, :]
            keep = (ys >= own[:, 0, None, None]) & (ys < own[:, 1, None, None])
            keep = keep & (xs >= own[:, 2, None, None]) & (xs < own[:, 3, None, None])
            sampled = torch.where(keep[:, None], sampled, nothing[None, :, None, None])
        warped[:, s, :, y0:y1, x0:x1] = sampled
    return warped
