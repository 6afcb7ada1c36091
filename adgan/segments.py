"""The body the part warp moves: its segments, their keypoints, twins and proportions.

Ten segments (head, torso, and for each side upper arm, forearm, thigh and shin), each a
bone between two of the 18 OpenPose-COCO keypoints (head and torso are fitted to several),
and the body proportions the warp falls back on where points are missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsing.labels import ADGAN_CLASSES


@dataclass(frozen=True)
class Segment:
    name: str
    kind: str  # head | torso | upper_arm | forearm | thigh | shin
    start: int  # keypoint index where the bone starts (limbs), unused for head and torso
    end: int


SEGMENTS: tuple[Segment, ...] = (
    Segment("head", "head", 1, 0),
    Segment("torso", "torso", 1, -1),
    Segment("r_upper_arm", "upper_arm", 2, 3),
    Segment("r_forearm", "forearm", 3, 4),
    Segment("l_upper_arm", "upper_arm", 5, 6),
    Segment("l_forearm", "forearm", 6, 7),
    Segment("r_thigh", "thigh", 8, 9),
    Segment("r_shin", "shin", 9, 10),
    Segment("l_thigh", "thigh", 11, 12),
    Segment("l_shin", "shin", 12, 13),
)
SEGMENT_NAMES = tuple(s.name for s in SEGMENTS)
KINDS = ("head", "torso", "upper_arm", "forearm", "thigh", "shin")
LIMBS = SEGMENTS[2:]
# each segment's twin on the other side of the body (itself for head and torso)
_SIDE = {"r": "l", "l": "r"}
TWIN = tuple(
    SEGMENT_NAMES.index(_SIDE[n[0]] + n[1:] if n[:2] in ("r_", "l_") else n) for n in SEGMENT_NAMES
)

NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = 1, 2, 5, 8, 11
# what a torso or a thigh wears under a hand that hides it (bare skin is no garment: a hand's
# own skin, parsed in part as bare legs, would be spread as the leg's colour)
WORN = tuple(ADGAN_CLASSES.index(c) for c in ("pants", "skirt", "upper_clothes"))
SKIRT = ADGAN_CLASSES.index("skirt")
TORSO = SEGMENT_NAMES.index("torso")
THIGHS = tuple(SEGMENT_NAMES.index(f"{s}_thigh") for s in "rl")
FACE_POINTS = (0, 14, 15, 16, 17)
TORSO_POINTS = (NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP)

# Body-size estimators: (point a, point b, length / torso length). The ratios are about the
# 90th percentile of SynthFashion's (DeepFashion's) poses, so each estimate is mostly a lower
# bound of the torso length, and their maximum survives foreshortening.
SIZE_ESTIMATORS: tuple[tuple[int, int, float], ...] = (
    (2, 5, 0.68),  # shoulder width
    (8, 11, 0.42),  # hip width
    (0, 1, 0.42),  # nose - neck
    (2, 3, 0.65),  # upper arms
    (5, 6, 0.65),
    (8, 9, 0.95),  # thighs
    (11, 12, 0.95),
    (16, 17, 0.37),  # ear - ear
)


# typical length of the bone ending at each joint, in torso lengths (SynthFashion medians)
BONE_LENGTH = {3: 0.57, 4: 0.5, 6: 0.57, 7: 0.5, 9: 0.8, 10: 0.78, 12: 0.8, 13: 0.78}
NECK_BELOW_HEAD = 0.4  # neck below the centre of the face points, in torso lengths
LEG_CHAINS = ((R_HIP, 9, 10), (L_HIP, 12, 13))
ARM_CHAINS = ((R_SHOULDER, 3, 4), (L_SHOULDER, 6, 7))
