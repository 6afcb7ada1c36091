"""Keypoint metrics: PCKh as the pose-transfer papers compute it, and COCO OKS AP.

PCKh follows PATN/ADGAN's `tool/calPCKH_fashion.py` exactly: the "head size" of a target is
the width and height of the box around its present head points (nose, neck, eyes, ears;
at least two, else the image is skipped); a predicted point is right when it exists and
lies within alpha * width horizontally AND alpha * height vertically of the target point;
every present target point of a counted image is in the denominator.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from keypoints.skeleton import to_coco17, visible

HEAD_POINTS = (0, 1, 14, 15, 16, 17)


def head_size(target: np.ndarray) -> tuple[float, float] | None:
    """(width, height) of the box of the present head points, or None with fewer than 2."""
    head = np.asarray(target)[list(HEAD_POINTS)]
    head = head[visible(head)]
    if len(head) < 2:
        return None
    span = head.max(axis=0) - head.min(axis=0)
    return float(span[0]), float(span[1])


def pckh_counts(
    predictions: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    alpha: float = 0.5,
    head_sizes: Sequence[tuple[float, float] | None] | None = None,
) -> tuple[int, int, int]:
    """(correct points, counted target points, images skipped for lack of a head box).
    head_sizes: each target's (width, height) to use instead of its own head points' (a
    photo cut below the head still has the head the uncut photo showed)."""
    if head_sizes is not None and len(head_sizes) != len(targets):
        raise ValueError(f"{len(targets)} targets but {len(head_sizes)} head sizes")
    correct = total = skipped = 0
    for n, (pred, target) in enumerate(zip(predictions, targets, strict=True)):
        size = head_size(target) if head_sizes is None else head_sizes[n]
        if size is None:
            skipped += 1
            continue
        pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
        valid = visible(target)
        found = valid & visible(pred)
        close = (np.abs(pred[:, 0] - target[:, 0]) < size[0] * alpha) & (
            np.abs(pred[:, 1] - target[:, 1]) < size[1] * alpha
        )
        correct += int((found & close).sum())
        total += int(valid.sum())
    return correct, total, skipped


def pckh_interval(
    correct: Sequence[int],
    total: Sequence[int],
    level: float = 0.95,
    draws: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """A percentile bootstrap interval of PCKh over images (people): each draw takes as many
    images as there are, with replacement, and pools their points. Why: a benchmark of a
    dozen people moves by whole people, and one crowded photo can hold half the misses; the
    interval says what such a figure can tell apart."""
    correct_a, total_a = np.asarray(correct, np.float64), np.asarray(total, np.float64)
    if correct_a.shape != total_a.shape or correct_a.ndim != 1 or not len(total_a):
        raise ValueError(
            f"need equal, non-empty per-image counts: {correct_a.shape} {total_a.shape}"
        )
    if not total_a.sum() > 0:
        raise ValueError("no points to count: every image's total is 0")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    picks = np.random.default_rng(seed).integers(0, len(total_a), (draws, len(total_a)))
    points = total_a[picks].sum(1)
    ratios = correct_a[picks].sum(1)[points > 0] / points[points > 0]
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def pckh(
    predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray], alpha: float = 0.5
) -> float:
    correct, total, _ = pckh_counts(predictions, targets, alpha)
    return correct / total if total else float("nan")


def oks_ap(ground_truth_json: str, results: list[dict]) -> dict[str, float]:
    """COCO keypoint AP of `results` ({image_id, keypoints [18, 2], scores [18], score})."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ground_truth_json)
        if not results:
            return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR": 0.0}
        dets = []
        for r in results:
            vis = np.where(np.asarray(r["scores"]) > 0, 2, 0)
            coco = to_coco17(np.asarray(r["keypoints"]), vis)
            coco[:, 2] = np.where(coco[:, 2] > 0, 1.0, 0.0)
            dets.append(
                {
                    "image_id": int(r["image_id"]),
                    "category_id": 1,
                    "keypoints": [float(v) for v in coco.reshape(-1)],
                    "score": float(r["score"]),
                }
            )
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.imgIds = sorted({d["image_id"] for d in dets})
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {"AP": float(s[0]), "AP50": float(s[1]), "AP75": float(s[2]), "AR": float(s[5])}
