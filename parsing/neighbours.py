"""A neighbour's head is not the person's.

In a group photo the crop around one person holds the heads of the people beside them, and
a parser (or the person mask, which often takes two people who touch as one) labels those
hair and face too. The generator then carries the neighbour's face along with the person's
head. The person's own keypoints say which head is theirs: every connected region of the
head classes that none of the person's head points (nose, eyes, ears) lies in, or next to,
is a neighbour's, and becomes background. A person whose head points are all missing is
left as parsed.
"""

from __future__ import annotations

import cv2
import numpy as np

from keypoints.skeleton import visible

HEAD_POINTS = (0, 14, 15, 16, 17)  # nose, eyes, ears (OpenPose-18 order)


def drop_other_heads(
    labels: np.ndarray, keypoints: np.ndarray, head_classes: tuple[int, ...], slack: float
) -> np.ndarray:
    """labels [H, W] class ids with the head classes' regions that hold none of this
    person's head points (within `slack` pixels) set to 0 (background); keypoints [18, 2]
    in the same frame, -1 missing. Returns a new array."""
    points = keypoints[list(HEAD_POINTS)]
    points = points[visible(points)]
    head = np.isin(labels, head_classes)
    if not len(points) or not head.any():
        return labels.copy()
    _, regions = cv2.connectedComponents(head.astype(np.uint8), connectivity=8)
    h, w = labels.shape
    r = max(0, round(slack))
    own = set()
    for x, y in np.round(points).astype(int):
        x0, x1 = max(0, x - r), min(w, x + r + 1)
        y0, y1 = max(0, y - r), min(h, y + r + 1)
        if x0 < x1 and y0 < y1:
            own.update(np.unique(regions[y0:y1, x0:x1]).tolist())
    own.discard(0)
    if not own:  # the points lie off every head region: nothing says which is whose
        return labels.copy()
    others = head & ~np.isin(regions, sorted(own))
    out = labels.copy()
    out[others] = 0
    return out
