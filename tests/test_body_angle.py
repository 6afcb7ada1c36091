"""keypoints.skeleton.body_angle / turns_to_upright: a person on their side or upside down
(a photo whose orientation tag was lost) is told from one leaning or bending over."""

import numpy as np
import pytest

from common.geometry import apply_to_points, quarter_turn
from keypoints.formats import read_annotations
from keypoints.skeleton import body_angle, legs_angle, torso_angle, turns_to_upright
from studio.stub import STANDING
from synth.posebank import read_bank

TOLERANCE = 30.0
MARGIN = 400.0  # poses go on past their 256x176 frame: a photo large enough to hold them
FRAME = (256 + 2 * int(MARGIN), 176 + 2 * int(MARGIN))


def _turned(keypoints: np.ndarray, turns: int) -> np.ndarray:
    """The pose in the photo turned `turns` quarter turns anticlockwise."""
    kp = np.where(keypoints >= 0, keypoints + MARGIN, -1.0)
    return apply_to_points(quarter_turn(turns, FRAME), kp)


def _turned_back_upright(poses: list[np.ndarray]) -> tuple[int, int]:
    """(recovered, tried): each upright pose turned 1-3 quarter turns, then stood up again."""
    recovered = tried = 0
    for kp in poses:
        angle = body_angle(kp)
        if angle is None or abs(angle) >= TOLERANCE:
            continue
        for turns in (1, 2, 3):
            tried += 1
            recovered += (turns_to_upright(_turned(kp, turns), TOLERANCE) + turns) % 4 == 0
    return recovered, tried


def test_the_pose_banks_people_stand_and_any_quarter_turn_of_them_is_undone():
    poses = [p.keypoints for p in read_bank()]
    assert all(turns_to_upright(kp, TOLERANCE) == 0 for kp in poses)
    recovered, tried = _turned_back_upright(poses)
    assert tried >= 3 * 0.95 * len(poses) and recovered == tried


def test_leaning_and_bending_over_are_not_a_photo_on_its_side():
    standing = STANDING * np.array([176.0, 256.0])
    assert abs(body_angle(standing)) < 5
    hips = standing[[8, 11]].mean(0)
    upper = [0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17]
    bent = standing.copy()  # the torso folded forward level over upright legs
    offset = bent[upper] - hips
    bent[upper] = hips + np.stack([-offset[:, 1], offset[:, 0]], 1)
    assert 30 < abs(body_angle(bent)) < 60
    assert turns_to_upright(bent, TOLERANCE) == 0
    # the same body lying on its side is turned, whichever side
    assert turns_to_upright(_turned(standing, 1), TOLERANCE) == 3
    assert turns_to_upright(_turned(standing, 3), TOLERANCE) == 1
    assert turns_to_upright(_turned(standing, 2), TOLERANCE) == 2


def test_a_crooked_body_line_falls_back_on_the_torso():
    """Legs an estimator guessed off to the side (a child behind a table): the body's line
    leans too far to decide, and the torso decides."""
    crooked = STANDING * np.array([176.0, 256.0])
    hips = crooked[[8, 11]].mean(0)
    a = np.radians(75)  # knees and ankles swung to the side about the hips
    legs = crooked[[9, 10, 12, 13]] - hips
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    crooked[[9, 10, 12, 13]] = hips + legs @ rotation.T
    assert abs(body_angle(crooked)) > TOLERANCE and abs(torso_angle(crooked)) < 5
    assert turns_to_upright(crooked, TOLERANCE) == 0
    for turns in (1, 2, 3):  # stood up again, except where the turned legs stand upright
        turned = _turned(crooked, turns)  # under a level torso: that is bending over
        expected = 0 if abs(legs_angle(turned)) <= TOLERANCE else (4 - turns) % 4
        assert turns_to_upright(turned, TOLERANCE) == expected


def test_without_hips_the_head_counts_only_where_the_shoulders_agree():
    missing = np.full((18, 2), -1.0, np.float32)
    front = missing.copy()  # an upper-body close-up: neck, level shoulders, face above
    front[[1, 2, 5, 0, 14, 15]] = [[88, 120], [50, 125], [126, 125], [88, 70], [80, 62], [96, 62]]
    assert abs(body_angle(front)) < 5
    assert turns_to_upright(_turned(front, 1), TOLERANCE) == 3
    # a side view's nose far out to the side (a real DeepFashion row, upright): no angle
    side = missing.copy()
    side[[0, 1, 2, 5]] = [[139, 4], [92, 27], [107, 29], [79, 25]]
    assert body_angle(side) is None and turns_to_upright(side, TOLERANCE) == 0
    assert body_angle(missing) is None


@pytest.mark.real_data
def test_no_real_deepfashion_pose_is_turned(shared_data):
    """The 4,038 real test-split rows (OpenPose on catalogue photos) all stand; turned by
    quarter turns, each within the tolerance is stood up again."""
    poses = list(
        read_annotations(
            shared_data / "deepfashion" / "fashion-resize-annotation-test.csv"
        ).values()
    )
    assert not any(turns_to_upright(kp, TOLERANCE) for kp in poses)
    recovered, tried = _turned_back_upright(poses)
    assert tried > 9000 and recovered == tried
