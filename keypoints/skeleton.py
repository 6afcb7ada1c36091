"""The 18-keypoint OpenPose-COCO skeleton every part of the project shares.

Keypoints are float arrays [18, 2] of (x, y) pixel coordinates, pixel centres at integer
values, missing points at (-1, -1). The DeepFashion CSV stores y first; its reader and
writer convert, nothing else ever sees (y, x).

Points 14-17 are r-eye, l-eye, r-ear, l-ear. Some pose-transfer code (ADGAN's
`tool/pose_utils.py` LABELS) names them the other way round, but in the real DeepFashion
rows point 14 lies on the same side as point 2 (r-shoulder); the tests check that.
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 18
MISSING = -1.0

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
KEYPOINT_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
HEAD_POINTS = (0, 14, 15, 16, 17)  # nose, eyes, ears: what says where a head is
FACE_FRONT = (0, 14, 15)  # nose and eyes: what a head seen from behind does not show
SHOULDERS_AND_EARS = (2, 5, 16, 17)  # what a person seen from behind still shows

# OpenPose's 19 connections in its own order (the PAF order); the last two (ear-shoulder)
# only serve grouping and are not drawn.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
    (2, 16),
    (5, 17),
)
DRAWN_LIMBS = LIMBS[:17]

# Index i of a horizontally flipped image holds what index FLIP_PERMUTATION[i] held.
FLIP_PERMUTATION: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

# OpenPose's drawing colours (RGB), one per keypoint; limb i takes colour i.
COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# For each of our 18 points, its COCO-17 index; the neck (-1) is the mid-shoulder point.
COCO17_TO_18: tuple[int, ...] = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
# For each COCO-17 point, our index.
OURS_TO_COCO17: tuple[int, ...] = tuple(COCO17_TO_18.index(c) for c in range(17))

# COCO's per-keypoint OKS sigmas, in our order; the neck takes the shoulders' value.
OKS_SIGMAS: tuple[float, ...] = (
    0.026,
    0.079,
    0.079,
    0.072,
    0.062,
    0.079,
    0.072,
    0.062,
    0.107,
    0.087,
    0.089,
    0.107,
    0.087,
    0.089,
    0.025,
    0.025,
    0.035,
    0.035,
)


def visible(keypoints: np.ndarray) -> np.ndarray:
    """Boolean mask [..., 18]: the point is present (both coordinates >= 0)."""
    kp = np.asarray(keypoints)
    return (kp[..., 0] >= 0) & (kp[..., 1] >= 0)


SHOULDERS_AGREE = 30.0  # degrees the head's direction may lie off the shoulders' normal


def _degrees(vector: np.ndarray) -> float:
    """Degrees clockwise from straight up (image y points down)."""
    return float(np.degrees(np.arctan2(vector[0], -vector[1])))


def keypoint_box(keypoints: np.ndarray) -> tuple[float, float, float, float]:
    """The box (x, y, w, h) around the visible keypoints, with room for the head above them
    (they stop at the eyes and ears) and for the feet below: a person's extent, as the
    pipeline crops it and as a caller is offered the others of a group photo."""
    kp = keypoints[visible(keypoints)]
    x0, y0 = kp.min(0)
    x1, y1 = kp.max(0)
    h = max(y1 - y0, 1.0)
    y0, y1 = y0 - 0.12 * h, y1 + 0.04 * h
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def seen_from_behind(keypoints: np.ndarray) -> bool:
    """Whether the keypoints are those of a person seen from behind: an ear or a shoulder
    seen, but neither the nose nor an eye (how OpenPose, the DeepFashion rows and the
    BlazePose backend leave a back view)."""
    shown = visible(keypoints)
    return not shown[list(FACE_FRONT)].any() and bool(shown[list(SHOULDERS_AND_EARS)].any())


def mean_point(keypoints: np.ndarray, indices: tuple[int, ...]) -> np.ndarray | None:
    """The mean of those of `indices` that are shown (None: none is)."""
    shown = [keypoints[i] for i in indices if visible(keypoints)[i]]
    return np.mean(shown, axis=0) if shown else None


def neck_point(keypoints: np.ndarray) -> np.ndarray | None:
    """The neck, or the middle of the shoulders shown."""
    return keypoints[1] if visible(keypoints)[1] else mean_point(keypoints, (2, 5))


def _line_angle(low: np.ndarray | None, high: np.ndarray | None) -> float | None:
    if low is None or high is None or np.all(low == high):
        return None
    return _degrees(high - low)


def body_angle(keypoints: np.ndarray) -> float | None:
    """Degrees clockwise from straight up of the line from the lowest part of the body shown
    (ankles, else knees, else hips) to the neck (or mid-shoulders): the whole body, since a
    person bending over has a level torso over upright legs (about 40 degrees). Without
    hips, knees or ankles, the line from the neck to the head, where it agrees with the
    normal of the shoulders' line (alone it leans up to 64 degrees in upright DeepFashion
    photos: a side view's nose, a head at the top edge). None with too little shown."""
    kp = np.asarray(keypoints, np.float64)
    top = neck_point(kp)
    for lower in ((10, 13), (9, 12), (8, 11)):
        angle = _line_angle(mean_point(kp, lower), top)
        if angle is not None:
            return angle
    head = _line_angle(top, mean_point(kp, HEAD_POINTS))
    if head is None or not visible(kp)[[2, 5]].all():
        return None
    normal = _degrees(kp[5] - kp[2]) - 90.0  # up for a front view, down for a back view
    off = (head - normal + 90.0) % 180.0 - 90.0
    return head if abs(off) <= SHOULDERS_AGREE else None


def torso_angle(keypoints: np.ndarray) -> float | None:
    """Degrees clockwise from straight up of the line from the hips to the neck."""
    kp = np.asarray(keypoints, np.float64)
    return _line_angle(mean_point(kp, (8, 11)), neck_point(kp))


def legs_angle(keypoints: np.ndarray) -> float | None:
    """Degrees clockwise from straight up of the line from the ankles (else the knees) to
    the hips."""
    kp = np.asarray(keypoints, np.float64)
    feet = mean_point(kp, (10, 13))
    feet = feet if feet is not None else mean_point(kp, (9, 12))
    return _line_angle(feet, mean_point(kp, (8, 11)))


def _quarter(angle: float | None, tolerance: float) -> int | None:
    """The quarter turn (0-3, clockwise from up) `angle` lies within `tolerance` of."""
    if angle is None:
        return None
    turns = round(angle / 90.0)
    return turns % 4 if abs(angle - 90.0 * turns) <= tolerance else None


def turns_to_upright(keypoints: np.ndarray, tolerance: float) -> int:
    """Quarter turns anticlockwise (0-3) that stand a person upright whose body lies within
    `tolerance` degrees of sideways or upside down (`body_angle`); where the body's line is
    crooked (a lunge, legs an estimator guessed under a table), the torso's, unless the legs
    stand upright (a person bending over); 0 for anyone else. On the real photos of
    ../shared/data turned by quarter turns: 30 of 33 stood up again, none turned wrong (27
    by the body's line alone, 25 by the torso's alone; docs/product.md)."""
    turns = _quarter(body_angle(keypoints), tolerance)
    if turns is None:
        turns = _quarter(torso_angle(keypoints), tolerance)
        if turns and _quarter(legs_angle(keypoints), tolerance) == 0:
            turns = 0
    return turns or 0


def empty_keypoints() -> np.ndarray:
    return np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.float32)


def flip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Mirror keypoints of an image `width` pixels wide; left and right swap names."""
    kp = np.asarray(keypoints, dtype=np.float32)
    out = kp[..., FLIP_PERMUTATION, :].copy()
    present = visible(out)
    out[..., 0] = np.where(present, width - 1 - out[..., 0], MISSING)
    return out


def swap_sides(points: np.ndarray) -> np.ndarray:
    """After mirroring an image, index i must hold what was FLIP_PERMUTATION[i]."""
    return np.asarray(points)[..., FLIP_PERMUTATION, :]


def coco17_to_18(coco: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO [17, 3] (x, y, v) -> our (keypoints [18, 2], visibility [18]).

    Visibility keeps COCO's meaning: 0 not labelled, 1 labelled but occluded, 2 visible.
    Unlabelled points become (-1, -1). The neck exists when both shoulders are labelled;
    its visibility is the smaller of theirs.
    """
    coco = np.asarray(coco, dtype=np.float32).reshape(17, 3)
    keypoints = empty_keypoints()
    vis = np.zeros(NUM_KEYPOINTS, dtype=np.int64)
    for ours, theirs in enumerate(COCO17_TO_18):
        if theirs < 0:
            continue
        x, y, v = coco[theirs]
        if v > 0:
            keypoints[ours] = (x, y)
            vis[ours] = int(v)
    r_sho, l_sho = KEYPOINT_INDEX["r_shoulder"], KEYPOINT_INDEX["l_shoulder"]
    if vis[r_sho] > 0 and vis[l_sho] > 0:
        keypoints[1] = (keypoints[r_sho] + keypoints[l_sho]) / 2
        vis[1] = min(vis[r_sho], vis[l_sho])
    return keypoints, vis


def to_coco17(keypoints: np.ndarray, vis: np.ndarray | None = None) -> np.ndarray:
    """Our [18, 2] (+ optional visibility) -> COCO [17, 3]; the neck is dropped."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if vis is None:
        vis = np.where(visible(keypoints), 2, 0)
    out = np.zeros((17, 3), dtype=np.float32)
    for coco_index, ours in enumerate(OURS_TO_COCO17):
        if vis[ours] > 0:
            out[coco_index] = (*keypoints[ours], vis[ours])
    return out
