"""The card's frame: the pose photo's, or only as much of the body as the source photo shows.

A catalogue photo is most often cut at the thigh (most of DeepFashion is). Re-posed into a
shopper's full-length photo, such a source leaves the card with legs the generator never
saw, and it paints faint, blurred ones. Framing `source` ends the card where the source's
person ends, measured along the body: a source whose person ends 60% of the way down the
thighs gives a card that ends 60% of the way down the new pose's thighs, and one that ends
at the chest (no hips in view), a card that ends as far down the new pose's torso. The card
keeps the generator's size, so the person is drawn larger, with room for the head above the
eyes and for the hands beyond the wrists. It only ever zooms in: a source that shows the
legs (or a pose photo already framed closer) keeps the pose photo's frame. A donor of
clothes or legs counts as a source: a swapped pair of trousers shown to the ankles brings
the legs back (a hair or face donor does not: a face close-up says nothing about legs).

The top works the same way for a face. Catalogue photos are often cut at the mouth or the
nose (the garment is the subject, not the model's face): there the card starts as far above
the new pose's neck as the source's photo does (`head_cut`), instead of showing a face the
generator would have to invent from a chin. A photo that shows the eyes keeps its card's
head (hair cut by the photo's edge is painted, as before), and a hair or face donor shows
the head, and keeps it.

Framing `pose` keeps the pose photo's frame, whatever the source shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from common.geometry import Box, box_to_input, expand_box
from keypoints.skeleton import HEAD_POINTS, mean_point, neck_point, visible

NOSE, NECK = 0, 1
SHOULDERS, HIPS = (2, 5), (8, 11)
# A card is this many times the generator's size (176x256 at 1): `Pipeline.card_scale`.
CARD_SCALES = (1, 2, 3)
EYES_AND_EARS = (14, 15, 16, 17)
EYES = (14, 15)
ARMS = ((3, 4), (6, 7))  # (elbow, wrist), right then left
LEGS = ((8, 9, 10), (11, 12, 13))  # (hip, knee, ankle), right then left
WHOLE_LEGS = 2.0  # body levels: -1 the neck, 0 the hips, 1 the knees, 2 the ankles


@dataclass(frozen=True)
class FramingConfig:
    """Body proportions and room, relative to the person: they hold at any photo size."""

    thigh_per_torso: float = 0.85  # hip to knee (and knee to ankle) over neck to mid-hip
    torso_per_shoulders: float = 1.3  # neck to mid-hip over shoulder to shoulder (no hips seen)
    head_room: float = 1.2  # above the highest head point, in nose-to-neck lengths
    hand_room: float = 0.45  # beyond the wrist, in forearm lengths
    margin: float = 1.15  # the card's width over the body's (as the product's crops)
    min_gain: float = 0.9  # reframe only where the body shown takes at most this much height
    max_zoom: float = 2.5  # the card never enlarges the pose photo's crop more than this
    head_top: float = 1.0  # a photo's top edge cuts the head below this, in torso lengths
    # above the neck (higher, it cuts an arm raised above the head, or nothing)
    face_top: float = 2.0  # a top edge closer above the eyes than this, in eye-to-nose
    # lengths, cuts the forehead: the card is cut there too (`head_cut`)


def _torso(keypoints: np.ndarray) -> float | None:
    """Neck (or mid-shoulders) to mid-hip, in pixels."""
    hips = mean_point(keypoints, HIPS)
    neck = neck_point(keypoints)
    if hips is None or neck is None:
        return None
    return float(np.linalg.norm(hips - neck))


def body_shown(keypoints: np.ndarray, labels: np.ndarray, config: FramingConfig) -> float | None:
    """How far down the body a person's photo shows it, from -1 (the neck) through 0 (the
    hips) and 1 (the knees) to 2 (the ankles): where the person's labelled pixels end, along
    the lowest bone the keypoints give (without hips, the torso's length is guessed from the
    shoulders' width). None where that cannot be told (no shoulders, no labels)."""
    kp = np.asarray(keypoints, np.float64)
    shown = visible(kp)
    torso = _torso(kp)
    rows = np.flatnonzero((np.asarray(labels) > 0).any(axis=1))
    if len(rows) == 0:
        return None
    if torso is None:
        neck = neck_point(kp)
        if neck is None or not shown[list(SHOULDERS)].all():
            return None
        torso = config.torso_per_shoulders * float(np.linalg.norm(kp[2] - kp[5]))
        return -1.0 + float(np.clip((rows.max() - neck[1]) / max(torso, 1.0), 0.0, 1.0))
    if shown[[10, 13]].any():
        return WHOLE_LEGS
    bone = config.thigh_per_torso * torso
    knees = mean_point(kp, (9, 12))
    if knees is not None:
        return 1.0 + float(np.clip((rows.max() - knees[1]) / bone, 0.0, 1.0))
    hips = mean_point(kp, HIPS)
    assert hips is not None  # _torso found them
    return float(np.clip((rows.max() - hips[1]) / bone, 0.0, 1.0))


def head_cut(
    keypoints: np.ndarray, labels: np.ndarray, frame: np.ndarray | None, config: FramingConfig
) -> float | None:
    """How far above the neck, in torso lengths, a person's photo cuts off their face at its
    top edge (a catalogue photo cut at the mouth: about 0.3), where the person's labelled
    pixels reach that edge above the shoulders and neither eye nor ear is shown, or the
    edge runs through the forehead (`_forehead_cut`); None otherwise (a face shown whose
    hair alone the photo cuts: the card paints that hair), or where the cut lies above
    `config.head_top`. `frame`: 1 where the crop shows the photo (None: all of it), so the
    letterbox above a photo is no cut."""
    kp = np.asarray(keypoints, np.float64)
    shown = visible(kp)
    neck = neck_point(kp)
    if neck is None:
        return None
    photo_rows = np.flatnonzero(frame.any(axis=1)) if frame is not None else np.arange(1)
    if len(photo_rows) == 0:
        return None
    top = int(photo_rows[0])
    if shown[list(EYES_AND_EARS)].any() and not _forehead_cut(kp, top, config):
        return None
    width = float(np.linalg.norm(kp[2] - kp[5])) if shown[list(SHOULDERS)].all() else None
    torso = _torso(kp) or (config.torso_per_shoulders * width if width else None)
    if not torso:
        return None
    half = 0.5 * width if width else 0.25 * torso  # the columns above the shoulders
    x0, x1 = max(int(neck[0] - half), 0), int(neck[0] + half) + 1
    if not (np.asarray(labels)[top, x0:x1] > 0).any():
        return None
    cut = (neck[1] - top) / torso
    return float(cut) if cut <= config.head_top else None


def _forehead_cut(keypoints: np.ndarray, top: int, config: FramingConfig) -> bool:
    """Whether a photo's top edge, at row `top`, runs through the face whose eyes it shows:
    less than `config.face_top` eye-to-nose lengths above the eyes (the forehead). Above
    it lies only hair, which the card paints; through the forehead, the generator made a
    white cap of the head's missing top."""
    shown = visible(keypoints)
    eyes = [k for k in EYES if shown[k]]
    if not eyes or not shown[NOSE]:
        return False
    eye = float(np.mean([keypoints[k, 1] for k in eyes]))
    drop = float(keypoints[NOSE, 1]) - eye
    return drop > 0 and eye - top < config.face_top * drop


def _leg_point(keypoints: np.ndarray, leg: tuple[int, int, int], level: float, bone: float):
    """The point `level` of the way down one leg (missing joints continued straight down)."""
    shown = visible(keypoints)
    hip, knee, ankle = (keypoints[i].astype(np.float64) for i in leg)
    down = np.array([0.0, bone])
    knee = knee if shown[leg[1]] else hip + down
    ankle = ankle if shown[leg[2]] else knee + down
    if level <= 1.0:
        return hip + level * (knee - hip)
    return knee + (level - 1.0) * (ankle - knee)


def body_box(keypoints: np.ndarray, level: float, config: FramingConfig) -> Box | None:
    """The box of a pose's body down to `level` (see `body_shown`), with the head in it and
    the hands (all of them where the cut is on the legs; those above it where it is on the
    torso); None where the pose gives no torso to measure by."""
    kp = np.asarray(keypoints, np.float64)
    shown = visible(kp)
    torso = _torso(kp)
    if torso is None:
        return None
    bone = config.thigh_per_torso * torso
    below = {9, 12} if level < 1.0 else set()
    below |= {10, 13} if level < WHOLE_LEGS else set()
    hands = [
        kp[wrist] + config.hand_room * (kp[wrist] - kp[elbow])
        for elbow, wrist in ARMS
        if shown[elbow] and shown[wrist]
    ]
    if level < 0.0:  # the cut is on the torso: nothing below it but what is raised above it
        neck, hips = neck_point(kp), mean_point(kp, HIPS)
        assert neck is not None and hips is not None  # _torso found them
        cut = neck + (1.0 + level) * (hips - neck)
        points = [kp[i] for i in range(len(kp)) if shown[i] and kp[i, 1] <= cut[1]]
        points += [cut] + [hand for hand in hands if hand[1] <= cut[1]]
    else:
        points = [kp[i] for i in range(len(kp)) if shown[i] and i not in below]
        points += [_leg_point(kp, leg, level, bone) for leg in LEGS if shown[leg[0]]]
        points += hands
    points_arr = np.array(points)
    x0, y0 = points_arr.min(axis=0)
    x1, bottom = points_arr.max(axis=0)
    if shown[list(HEAD_POINTS)].any():
        head_top = min(kp[i, 1] for i in HEAD_POINTS if shown[i])
        to_neck = np.linalg.norm(kp[NECK] - kp[NOSE]) if shown[[NOSE, NECK]].all() else 0.3 * torso
        y0 = min(y0, head_top - config.head_room * to_neck)
    return (float(x0), float(y0), float(x1 - x0), float(bottom - y0))


def frame_to_source(
    pose_keypoints: np.ndarray,
    shown: Sequence[tuple[np.ndarray, np.ndarray]],
    size: tuple[int, int],
    config: FramingConfig,
    head: float | None = None,
) -> np.ndarray | None:
    """[2, 3] from the pose crop to a card that ends where the sources' people end, and
    starts where the source's photo cuts its head (`head`, see `head_cut`; None: the head
    whole); None to keep the pose crop. `shown`: (keypoints, labels) of the source, then of
    each donor of clothes or legs. A source whose legs cannot be measured keeps the bottom
    of the frame; such a donor does not count."""
    levels = [body_shown(kp, labels, config) for kp, labels in shown]
    level = WHOLE_LEGS
    if levels and levels[0] is not None:
        level = max(v for v in levels if v is not None)
    box = body_box(pose_keypoints, level, config)
    if box is None:
        return None
    top = _head_cut_row(pose_keypoints, head)
    top = top if top is not None and top > box[1] else None  # a cut above the head: none
    if level >= WHOLE_LEGS and top is None:
        return None
    height, width = size
    cut = box[1] + box[3] if level < WHOLE_LEGS else float(height)
    if top is not None:  # the card starts at the head's cut; what the aspect adds goes below
        x, _, w, h = expand_box((box[0], top, box[2], cut - top), config.margin, width / height)
        y, h = top, max(h, cut - top)
    else:  # the margin goes above and to the sides, never below the cut
        x, y, w, h = expand_box(box, config.margin, width / height)
        y = cut - h
    if top is None and h > config.min_gain * height:  # too little to gain; a head the
        return None  # source does not show is never worth inventing, however small the cut
    if h < height / config.max_zoom:
        grow = height / config.max_zoom / h
        x, w, h = x + w / 2 - w * grow / 2, w * grow, h * grow
        y = y if top is not None else cut - h
    return box_to_input((x, y, w, h), size)


def _head_cut_row(pose_keypoints: np.ndarray, head: float | None) -> float | None:
    """The row of the pose crop `head` torso lengths above the pose's neck (None: no cut)."""
    if head is None:
        return None
    kp = np.asarray(pose_keypoints, np.float64)
    neck, torso = neck_point(kp), _torso(kp)
    if neck is None or torso is None:
        return None
    return float(neck[1] - head * torso)


Framing = Callable[
    [
        np.ndarray,
        Sequence[tuple[np.ndarray, np.ndarray]],
        tuple[int, int],
        FramingConfig,
        "float | None",
    ],
    "np.ndarray | None",
]

FRAMINGS: dict[str, Framing] = {
    "source": frame_to_source,
    "pose": lambda pose_keypoints, shown, size, config, head=None: None,
}
DEFAULT_FRAMING = "source"
