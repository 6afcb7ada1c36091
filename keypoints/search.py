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

A catalogue photo often leaves the model's head out. BlazePose's detector finds people by
their faces: there it finds nobody, or a "face" in a hand or a print with a small body drawn
around it, and a window may show a forearm as a person upside down. Where the answer is
doubtful so, the estimator is asked for a person cut off at the top edge
(`BlazePose.headless_many`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from common.geometry import Box
from keypoints.estimators import KeypointEstimator, KeypointResult
from keypoints.skeleton import visible

SEARCH_SCALES = (1.0, 0.75, 0.5)
SEARCH_THRESHOLD = 0.6
# `doubtful_person`: a person shorter than this share of the photo's height
DOUBT_HEIGHT = 0.5


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
    `searcher` (None: `estimator`). An estimator that can find a person whose head the
    photo's top edge cuts off (`headless_many`: BlazePose) is asked for one where the
    answer so far is doubtful (`doubtful_person`, or a window's), and its person is taken
    where that answer differs (`agree`), sees no nose, or sees one below its shoulders."""
    searcher = searcher or estimator
    found = estimator.predict_many(list(photos))
    images, boxes, owner = [], [], []
    for i, (photo, result) in enumerate(zip(photos, found, strict=True)):
        if visible(result.keypoints).sum() < min_keypoints:
            windows = search_windows(*photo.shape[:2], aspect, scales)
            images += [photo] * len(windows)
            boxes += windows
            owner += [i] * len(windows)
    best: dict[int, tuple[tuple[int, float], KeypointResult]] = {}
    if boxes:
        for i, result in zip(owner, searcher.predict_many(images, boxes), strict=True):
            rank = (int(visible(result.keypoints).sum()), result.person_score)
            sure = result.person_score >= threshold and rank[0] >= min_keypoints
            if sure and (i not in best or rank > best[i][0]):
                best[i] = (rank, result)
    found = [best[i][1] if i in best else f for i, f in enumerate(found)]
    return headless_where_doubtful(estimator, photos, found, min_keypoints, searched=set(best))


def headless_where_doubtful(
    estimator: KeypointEstimator,
    photos: Sequence[np.ndarray],
    found: list[KeypointResult],
    min_keypoints: int,
    boxes: Sequence[Box | None] | None = None,
    searched: Collection[int] = (),
) -> list[KeypointResult]:
    """`found` (one look per photo, or per a user's box in it) with the person whose head
    the photo's top edge cuts off in place of a doubtful answer (`doubtful_person`, a
    window's: `searched`), where the estimator can find one (`headless_many`) and it
    differs from the answer (`agree`), or the answer sees no nose or one below its
    shoulders."""
    headless = getattr(estimator, "headless_many", None)
    if headless is None:
        return found
    boxes = list(boxes) if boxes is not None else [None] * len(photos)
    found = list(found)
    doubtful = [
        i
        for i, (photo, box, result) in enumerate(zip(photos, boxes, found, strict=True))
        if i in searched
        or doubtful_person(
            result.keypoints, photo.shape[0] if box is None else box[3], min_keypoints
        )
    ]
    if not doubtful:
        return found
    cuts = headless([photos[i] for i in doubtful], [boxes[i] for i in doubtful])
    for i, cut in zip(doubtful, cuts, strict=True):
        if visible(cut.keypoints).sum() >= min_keypoints and (
            not agree(cut.keypoints, found[i].keypoints)
            or not visible(found[i].keypoints[:1])[0]
            or nose_below_shoulders(found[i].keypoints, cut.keypoints)
        ):
            found[i] = cut
    return found


def nose_below_shoulders(nose_from: np.ndarray, shoulders_from: np.ndarray) -> bool:
    """Whether the nose `nose_from` sees lies below the shoulders `shoulders_from` sees (the
    same reading, or one of the same photo whose head its top edge cuts off): the "face" of
    a print or a hand."""
    shoulders = shoulders_from[[2, 5]][visible(shoulders_from[[2, 5]])]
    if not visible(nose_from[:1])[0] or not len(shoulders):
        return False
    return bool(nose_from[0, 1] > shoulders[:, 1].mean())


def doubtful_person(keypoints: np.ndarray, photo_height: int, min_keypoints: int) -> bool:
    """Whether a photo's person may be a misreading of one whose head the photo cuts off
    (`headless_many` is asked then): nobody found, a person under `DOUBT_HEIGHT` of the
    photo's height (a small body drawn around a "face" in a print or a hand), no nose, or a
    nose below the shoulders. A catalogue photo of a whole person, and a shopper's photo
    that shows one, is none of these and pays nothing."""
    shown = visible(keypoints)
    if shown.sum() < min_keypoints or not shown[0]:
        return True
    if np.ptp(keypoints[shown, 1]) < DOUBT_HEIGHT * photo_height:
        return True
    return nose_below_shoulders(keypoints, keypoints)


def agree(a: np.ndarray, b: np.ndarray, alpha: float = 0.5) -> bool:
    """Whether two readings of one photo are the same person in the same pose: at least
    half the points both show lie within `alpha` of a's shoulder width (or of its torso's
    length, whichever is longer) of each other."""
    both = visible(a) & visible(b)
    if both.sum() < 2:
        return False
    scale = max(
        float(np.linalg.norm(a[2] - a[5])) if visible(a[[2, 5]]).all() else 0.0,
        float(np.linalg.norm(a[1] - a[[8, 11]].mean(0))) if visible(a[[1, 8, 11]]).all() else 0.0,
    )
    if scale <= 0:
        return False
    close = np.linalg.norm(a[both] - b[both], axis=1) < alpha * scale
    return bool(close.mean() >= 0.5)
