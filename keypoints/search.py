"""Finding a small person in a wide photo, for a top-down estimator that has no detector.

Letterboxed whole, a wide or busy photo shows its person as a thumbnail, and the estimator
says "nobody". Where it does, `find_people` looks again in overlapping windows at the
estimator's aspect (heights 1, 3/4 and 1/2 of the photo's, overlapping by half) and keeps
the most complete person (a window cut at the knees loses to one that holds the feet), then
the surest, among windows with a person score of at least SEARCH_THRESHOLD: stricter than
the estimator's own 0.5, since dozens of windows give a busy background dozens of chances.
Those windows are boxes nobody vouched for, so an estimator that, told a box, looks inside
it even where its detector saw nobody (BlazePose's box fallback, which a user's box
deserves) answers them through a stricter self (`searcher`): with the fallback, BlazePose's
landmark model found a "person" in a DensePose UV atlas and a sheet of hand textures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from common.geometry import Box
from keypoints.estimators import KeypointEstimator, KeypointResult
from keypoints.skeleton import visible

SEARCH_SCALES = (1.0, 0.75, 0.5)
SEARCH_THRESHOLD = 0.6


def search_windows(height: int, width: int, aspect: float, scales: Sequence[float]) -> list[Box]:
    """Windows of width/height `aspect` at each scale of the photo's height, overlapping
    by half, all inside the photo; the whole photo itself is not among them."""
    boxes = []
    for scale in scales:
        h = height * scale
        w = min(float(width), h * aspect)
        if h >= height and w >= width:
            continue
        ys = np.linspace(0.0, height - h, int(np.ceil((height - h) / (h / 2))) + 1)
        xs = np.linspace(0.0, width - w, int(np.ceil((width - w) / (w / 2))) + 1)
        boxes += [(float(x), float(y), w, h) for y in ys for x in xs]
    return boxes


def find_people(
    estimator: KeypointEstimator,
    photos: Sequence[np.ndarray],
    *,
    aspect: float,
    scales: Sequence[float] = SEARCH_SCALES,
    threshold: float = SEARCH_THRESHOLD,
    min_keypoints: int = 4,
    searcher: KeypointEstimator | None = None,
) -> list[KeypointResult]:
    """One person per photo, keypoints in photo pixels: the whole photo's look, or where
    that shows fewer than `min_keypoints`, the best window if one is sure enough (else the
    whole photo's answer stands). All windows of all photos go in one batch, through
    `searcher` (None: `estimator`)."""
    searcher = searcher or estimator
    found = estimator.predict_many(list(photos))
    images, boxes, owner = [], [], []
    for i, (photo, result) in enumerate(zip(photos, found, strict=True)):
        if visible(result.keypoints).sum() < min_keypoints:
            windows = search_windows(*photo.shape[:2], aspect, scales)
            images += [photo] * len(windows)
            boxes += windows
            owner += [i] * len(windows)
    if not boxes:
        return found
    best: dict[int, tuple[tuple[int, float], KeypointResult]] = {}
    for i, result in zip(owner, searcher.predict_many(images, boxes), strict=True):
        rank = (int(visible(result.keypoints).sum()), result.person_score)
        sure = result.person_score >= threshold and rank[0] >= min_keypoints
        if sure and (i not in best or rank > best[i][0]):
            best[i] = (rank, result)
    return [best[i][1] if i in best else f for i, f in enumerate(found)]
