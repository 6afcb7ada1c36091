"""What lies beside the person is not the person.

A neighbour's head: in a group photo the crop around one person holds the heads of the
people beside them, and a parser (or the person mask, which often takes two people who touch
as one) labels those hair and face too. The generator then carries the neighbour's face
along with the person's head. The person's own keypoints say which head is theirs: every
connected region of the head classes that none of the person's head points (nose, eyes,
ears) lies in, or next to, is a neighbour's, and becomes background. A person whose head
points are all missing is left as parsed.

What the person mask holds apart from the body: BlazePose's mask covers, besides the person,
things it takes for a body part the photo hides, as a tablet standing on a table before a
child whose hips are behind it, and bits of the people around. A region of the mask that
neither holds nor touches the person's skeleton (the points seen and the bones between
them) is not this person (`on_the_body`). Something in front that touches the body stays:
it cannot be told from a garment this way.
"""

from __future__ import annotations

import cv2
import numpy as np

from keypoints.skeleton import DRAWN_LIMBS, HEAD_POINTS, visible


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


def on_the_body(
    mask: np.ndarray, keypoints: np.ndarray, threshold: float, reach: float
) -> np.ndarray:
    """mask [H, W] a person's probabilities, with each region at or above `threshold` that
    neither holds nor comes within `reach` pixels of the person's skeleton (keypoints [18, 2]
    in the same frame, -1 missing: the points seen and the bones joining them) set to 0, with
    its soft rim. A mask in one piece, or a person with fewer than two points seen, is left
    as it is. Returns a new array."""
    shown = visible(keypoints)
    solid = (mask >= threshold).astype(np.uint8)
    if shown.sum() < 2 or not solid.any():
        return mask.copy()
    count, regions = cv2.connectedComponents(solid, connectivity=8)
    if count <= 2:  # background and one region
        return mask.copy()
    skeleton = np.zeros_like(solid)
    ends = np.round(keypoints).astype(np.int32)
    width = max(1, 2 * round(reach) + 1)
    for a, b in DRAWN_LIMBS:
        if shown[a] and shown[b]:
            cv2.line(skeleton, tuple(map(int, ends[a])), tuple(map(int, ends[b])), 1, width)
    for x, y in ends[shown]:
        cv2.circle(skeleton, (int(x), int(y)), max(1, round(reach)), 1, -1)
    own = np.unique(regions[(skeleton > 0) & (solid > 0)])
    own = own[own > 0]
    if not len(own):  # the skeleton lies off every region: nothing says which is whose
        return mask.copy()
    kept = np.isin(regions, own)
    dropped = (solid > 0) & ~kept
    if not dropped.any():
        return mask.copy()
    # the dropped regions' soft rim goes with them, up to where a kept region's rim begins
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    away = cv2.dilate(dropped.astype(np.uint8), ring, iterations=2) > 0
    near_kept = cv2.dilate(kept.astype(np.uint8), ring, iterations=2) > 0
    out = mask.copy()
    out[dropped | (away & ~near_kept)] = 0
    return out
