"""Drawing an 18-point skeleton, OpenPose style, for panels, overlays and contact sheets."""

from __future__ import annotations

import cv2
import numpy as np

from keypoints.skeleton import COLORS, DRAWN_LIMBS, visible


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    *,
    radius: int | None = None,
    thickness: int | None = None,
    alpha: float = 0.8,
) -> np.ndarray:
    """Return a copy of uint8 RGB `image` with limbs and joints drawn over it.

    Sizes default to the image's scale (3 px joints at 256 px height). Missing points
    and limbs with a missing end are skipped.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("draw_skeleton expects a uint8 RGB image [H, W, 3]")
    height = image.shape[0]
    radius = radius if radius is not None else max(1, round(3 * height / 256))
    thickness = thickness if thickness is not None else max(1, round(2 * height / 256))
    kp = np.asarray(keypoints, dtype=np.float32)
    present = visible(kp)
    layer = image.copy()
    shift = 4  # cv2 sub-pixel drawing: coordinates in 1/16 px
    scale = 1 << shift
    for i, (a, b) in enumerate(DRAWN_LIMBS):
        if present[a] and present[b]:
            pa = tuple(round(v * scale) for v in kp[a])
            pb = tuple(round(v * scale) for v in kp[b])
            cv2.line(layer, pa, pb, COLORS[i], thickness, cv2.LINE_AA, shift)
    for i in np.flatnonzero(present):
        centre = tuple(round(v * scale) for v in kp[i])
        cv2.circle(layer, centre, radius * scale, COLORS[i], -1, cv2.LINE_AA, shift)
    return cv2.addWeighted(layer, alpha, image, 1 - alpha, 0)


def draw_pose(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """The skeleton alone on black, the way pose-transfer papers show a target pose."""
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    return draw_skeleton(canvas, keypoints, alpha=1.0)
