"""Dense metrics: per-class IoU, mean IoU and pixel accuracy from a confusion matrix, and
DensePose accuracy at annotated points.

mIoU averages the classes that occur (in the targets or the predictions) in the evaluated
set, as the usual confusion-matrix evaluation does; a class never seen and never predicted
has no IoU and does not count.
"""

from __future__ import annotations

import numpy as np
import torch

IGNORE = 255


def confusion(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    ignore: int = IGNORE,
) -> np.ndarray:
    """[num_classes, num_classes] counts: rows are targets, columns predictions."""
    pred = np.asarray(pred, dtype=np.int64).ravel()
    target = np.asarray(target, dtype=np.int64).ravel()
    keep = target != ignore
    flat = target[keep] * num_classes + pred[keep]
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_report(matrix: np.ndarray, class_names: tuple[str, ...]) -> dict[str, float]:
    """Per-class IoU (`iou/<name>`), mIoU and pixel accuracy from a confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - tp
    report: dict[str, float] = {}
    ious = []
    for k, name in enumerate(class_names):
        if union[k] > 0:
            report[f"iou/{name}"] = tp[k] / union[k]
            ious.append(tp[k] / union[k])
    report["miou"] = float(np.mean(ious)) if ious else float("nan")
    report["pixel_accuracy"] = float(tp.sum() / max(matrix.sum(), 1))
    return report


def densepose_point_metrics(
    index_pred: np.ndarray,
    u_pred: np.ndarray,
    v_pred: np.ndarray,
    index_true: np.ndarray,
    u_true: np.ndarray,
    v_true: np.ndarray,
) -> dict[str, float]:
    """At annotated points: part accuracy; mean |U - U*| and |V - V*| read from the TRUE
    part's chart (`uv_error`), and on points whose part is right (`uv_error_correct`)."""
    if len(index_true) == 0:
        return {
            "part_accuracy": float("nan"),
            "uv_error": float("nan"),
            "uv_error_correct": float("nan"),
            "points": 0.0,
        }
    right = index_pred == index_true
    err = 0.5 * (np.abs(u_pred - u_true) + np.abs(v_pred - v_true))
    return {
        "part_accuracy": float(right.mean()),
        "uv_error": float(err.mean()),
        "uv_error_correct": float(err[right].mean()) if right.any() else float("nan"),
        "points": float(len(index_true)),
    }
