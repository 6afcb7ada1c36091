"""The card's frame: a source cut at the thigh gives a card cut at the thigh of the new
pose, the person larger, head and hands inside; a source that shows the legs, a donor that
does, or framing "pose" keep the pose photo's frame. A source cut at the mouth gives a card
cut at the mouth, unless a hair or face donor shows the head."""

import numpy as np
import pytest

import infer
from common.geometry import apply_to_points, box_to_input
from studio.framing import FRAMINGS, FramingConfig, body_shown, frame_to_source, head_cut
from studio.pipeline import person_box

SIZE = (256, 176)
CONFIG = FramingConfig()


def standing(dx: float = 0.0) -> np.ndarray:
    """A front view filling a 256x176 crop: head at the top, ankles at the bottom."""
    kp = np.array(
        [
            [88, 40],  # nose
            [88, 62],  # neck
            [70, 64],
            [64, 100],
            [62, 134],  # right arm
            [106, 64],
            [112, 100],
            [114, 134],  # left arm
            [78, 132],
            [78, 180],
            [78, 228],  # right leg
            [98, 132],
            [98, 180],
            [98, 228],  # left leg
            [84, 36],
            [92, 36],
            [80, 40],
            [96, 40],  # eyes, ears
        ],
        np.float32,
    )
    kp[:, 0] += dx
    return kp


def labels_down_to(row: int) -> np.ndarray:
    labels = np.zeros(SIZE, np.uint8)
    labels[20 : row + 1, 60:116] = 1
    return labels


def cut_at_thigh() -> tuple[np.ndarray, np.ndarray]:
    """A catalogue photo: the person ends halfway down the thighs, no knees or ankles."""
    kp = standing()
    kp[[9, 10, 12, 13]] = -1
    return kp, labels_down_to(132 + 30)


def test_how_far_down_the_legs_a_photo_shows():
    kp, labels = cut_at_thigh()
    torso = np.linalg.norm(kp[1] - (kp[8] + kp[11]) / 2)
    assert body_shown(kp, labels, CONFIG) == pytest.approx(30 / (CONFIG.thigh_per_torso * torso))
    with_knees = standing()
    with_knees[[10, 13]] = -1
    shin = 0.5 * CONFIG.thigh_per_torso * torso  # half a shin below the knees
    assert body_shown(with_knees, labels_down_to(int(180 + shin)), CONFIG) == pytest.approx(
        1.5, abs=0.02
    )
    assert body_shown(standing(), labels_down_to(240), CONFIG) == 2.0  # ankles shown
    assert body_shown(kp, np.zeros(SIZE, np.uint8), CONFIG) is None  # nothing to measure by
    face = standing()
    face[2:14] = -1  # a face close-up: no torso
    assert body_shown(face, labels_down_to(240), CONFIG) is None


def test_a_source_cut_at_the_thigh_cuts_the_card_there_and_enlarges_the_person():
    pose = standing(dx=-10)
    matrix = frame_to_source(pose, [cut_at_thigh()], SIZE, CONFIG)
    assert matrix is not None
    card = apply_to_points(matrix, pose)
    height, width = SIZE
    assert matrix[0, 0] > 1.3  # zoomed in
    level = body_shown(*cut_at_thigh(), CONFIG)
    cut = pose[8, 1] + level * (pose[9, 1] - pose[8, 1])  # as far down the new thighs
    bottom = apply_to_points(matrix, np.array([[88.0, cut]]))[0, 1]
    assert abs(bottom - height) < 2  # the card's last row
    assert (card[[9, 10, 12, 13], 1] > height).all()  # knees and ankles below the card
    inside = [i for i in range(18) if i not in (9, 10, 12, 13)]
    assert (card[inside] >= 0).all() and (card[inside, 0] < width).all()
    assert card[[14, 15], 1].min() > 0.08 * height  # room above the eyes for the head
    hands = card[[4, 7]] + CONFIG.hand_room * (card[[4, 7]] - card[[3, 6]])
    assert (hands[:, 0] > 0).all() and (hands[:, 0] < width).all()


def test_legs_shown_anywhere_keep_the_pose_frame():
    pose, half = standing(), cut_at_thigh()
    whole = (standing(), labels_down_to(240))
    assert frame_to_source(pose, [whole], SIZE, CONFIG) is None
    # a donor whose trousers are shown to the ankles brings the legs back; one whose legs
    # cannot be measured does not count, and a source's keeps the frame
    assert frame_to_source(pose, [half, whole], SIZE, CONFIG) is None
    unmeasured = (standing(), np.zeros(SIZE, np.uint8))
    assert frame_to_source(pose, [half, unmeasured], SIZE, CONFIG) is not None
    assert frame_to_source(pose, [unmeasured, half], SIZE, CONFIG) is None
    assert FRAMINGS["pose"](pose, [half], SIZE, CONFIG) is None
    # a pose photo cropped at the waist, as the pipeline crops one, is not enlarged further
    waist_up = standing()
    waist_up[[9, 10, 12, 13]] = -1
    crop = box_to_input(person_box(waist_up, SIZE[1] / SIZE[0]), SIZE)
    waist_up = apply_to_points(crop, waist_up)
    assert frame_to_source(waist_up, [half], SIZE, CONFIG) is None


def test_the_zoom_is_bounded():
    pose = standing()
    head_and_shoulders = standing()
    head_and_shoulders[2:] = -1
    head_and_shoulders[[14, 15, 16, 17]] = standing()[[14, 15, 16, 17]]
    head_and_shoulders[[8, 11]] = standing()[[8, 11]]  # hips known, nothing below them shown
    matrix = frame_to_source(pose, [(head_and_shoulders, labels_down_to(132))], SIZE, CONFIG)
    assert matrix is not None and matrix[0, 0] <= CONFIG.max_zoom + 1e-6


def test_infer_offers_the_framings():
    args = infer.build_parser().parse_args(["--source", "a.jpg", "--pose", "b.jpg"])
    assert args.framing == "source"
    with pytest.raises(SystemExit):
        infer.build_parser().parse_args(["--framing", "tight"])


def test_a_source_cut_at_the_chest_cuts_the_card_on_the_torso():
    kp = standing()
    kp[8:14] = -1  # no hips, no legs: a chest-up photo
    labels = labels_down_to(100)
    width = np.linalg.norm(kp[2] - kp[5])
    level = body_shown(kp, labels, CONFIG)
    assert level == pytest.approx(-1 + (100 - 62) / (CONFIG.torso_per_shoulders * width))
    pose = standing()
    matrix = frame_to_source(pose, [(kp, labels)], SIZE, CONFIG)
    assert matrix is not None and matrix[0, 0] > 1.5
    cut = pose[1] + (1 + level) * ((pose[8] + pose[11]) / 2 - pose[1])
    assert abs(apply_to_points(matrix, cut[None])[0, 1] - SIZE[0]) < 2  # the card's last row
    card = apply_to_points(matrix, pose)
    assert (card[[0, 14, 15, 16, 17], 1] > 0).all()  # the head inside
    assert (card[[4, 7, 8, 11], 1] > SIZE[0]).all()  # hands and hips below the card


def photo_from(row: int) -> np.ndarray:
    """`frame` of a crop whose photo starts at `row` (letterbox above)."""
    frame = np.zeros(SIZE, np.uint8)
    frame[row:] = 1
    return frame


def test_where_a_photo_cuts_the_head():
    headless = standing()  # neck at row 62, hips at 132: a torso of 70 rows
    headless[[0, 14, 15, 16, 17]] = -1  # a photo cut at the mouth: no head points
    labels = labels_down_to(240)  # the person from row 20 down
    assert head_cut(headless, labels, photo_from(50), CONFIG) == pytest.approx(12 / 70)
    headless[0] = standing()[0]  # the nose at the photo's edge: still no eyes or ears
    assert head_cut(headless, labels, photo_from(40), CONFIG) == pytest.approx(22 / 70)
    # the eyes shown (36, the nose 4 rows below): an edge above the hair's top cuts only
    # hair, which the card paints; one within 2 eye-to-nose lengths of them, the forehead,
    # which the card cuts too (the generator made a white cap of the head's missing top)
    assert head_cut(standing(), labels, photo_from(22), CONFIG) is None
    assert head_cut(standing(), labels, photo_from(30), CONFIG) == pytest.approx(32 / 70)
    assert head_cut(headless, labels, None, CONFIG) is None  # the photo starts at row 0
    assert head_cut(headless, labels, photo_from(10), CONFIG) is None  # letterbox above
    raised = np.zeros(SIZE, np.uint8)  # only a raised hand reaches the top, beside the head
    raised[0:60, 130:140] = 1
    raised[60:240, 60:116] = 1
    assert head_cut(headless, raised, None, CONFIG) is None
    low = headless.copy()
    low[low[:, 0] >= 0, 1] += 80  # the neck 142 rows down: the top edge is no cut of this head
    assert head_cut(low, np.ones(SIZE, np.uint8), None, CONFIG) is None


def test_a_source_cut_at_the_mouth_cuts_the_card_there():
    pose = standing()
    cut = 0.2  # torso lengths above the neck: 14 rows, at row 48, under the nose (40)
    for shown in ([(standing(), labels_down_to(240))], [cut_at_thigh()]):
        matrix = frame_to_source(pose, shown, SIZE, CONFIG, head=cut)
        assert matrix is not None
        card = apply_to_points(matrix, pose)
        top = apply_to_points(matrix, np.array([[88.0, 62 - cut * 70]]))[0, 1]
        assert abs(top) < 1  # the card's first row
        assert (card[[0, 14, 15, 16, 17], 1] < 0).all()  # nose, eyes and ears above it
        assert (card[[2, 5], 1] > 0).all()  # the shoulders in it
    # legs shown whole: the card runs down to the pose crop's foot; a cut above the head is
    # none; framing "pose" keeps the pose's frame
    whole = frame_to_source(pose, [(standing(), labels_down_to(240))], SIZE, CONFIG, head=cut)
    assert apply_to_points(whole, pose)[[10, 13], 1].max() < SIZE[0]
    assert frame_to_source(pose, [(standing(), labels_down_to(240))], SIZE, CONFIG, 0.9) is None
    assert FRAMINGS["pose"](pose, [cut_at_thigh()], SIZE, CONFIG, cut) is None
