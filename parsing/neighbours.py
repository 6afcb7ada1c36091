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

from keypoints.skeleton import HEAD_POINTS, visible


def drop_other_heads(
    labels: np.ndarray, keypoints: np.ndarray, head_classes: tuple[int, ...], slack: float
) -> np.ndarray:
    """labels [H, W] class ids with the head classes' regions that hold none of this
    person's head points set to 0 (background); regions and points within `slack` pixels
    of each other count as touching. keypoints [18, 2] in the same frame, -1 missing.
    Returns a new array."""
    points = keypoints[list(HEAD_POINTS)]
    points = points[visible(points)]
    head = np.isin(labels, head_classes)
    if not len(points) or not head.any():
        return labels.copy()
    # Regions closer than the slack are one (a hairband between hair and face does not cut
    # the person's hair off), and a point within the slack of a region lies in it.
    r = max(0, round(slack))
    grown = head.astype(np.uint8)
    if r:
        grown = cv2.dilate(grown, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    _, regions = cv2.connectedComponents(grown, connectivity=8)
    h, w = labels.shape
    own = set()
    for x, y in np.round(points).astype(int):
        if 0 <= x < w and 0 <= y < h:
            own.add(int(regions[y, x]))
    own.discard(0)
    if not own:  # the points lie off every head region: nothing says which is whose
        return labels.copy()
    others = head & ~np.isin(regions, sorted(own))
    out = labels.copy()
    out[others] = 0
    return out
