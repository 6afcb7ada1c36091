"""What lies beside the person is not the person: a neighbour's head, the mask's regions
apart from the body (parsing/neighbours.py and DensePredictor)."""

from __future__ import annotations

import numpy as np
import torch

from parsing.model import ParserNet, ParserNetConfig
from parsing.neighbours import drop_other_heads, on_the_body
from parsing.predict import DensePredictor, Guide

BACKGROUND, HAIR, FACE, UPPER = 0, 2, 4, 5  # ADGAN's ids
HEADS = (HAIR, FACE)
NOSE, R_EYE, L_EYE, R_EAR, L_EAR = 0, 14, 15, 16, 17


def _parser_of(label: int, size: tuple[int, int]) -> ParserNet:
    """A guided parser that calls every pixel `label`."""
    torch.manual_seed(0)
    model = ParserNet(ParserNetConfig(encoder="resnet18", input_size=size, guides=("mask", "pose")))
    with torch.no_grad():
        model.net.segmentation_head[0].bias[label] += 100.0
    return model


def _group_photo_labels() -> np.ndarray:
    """The person's head (hair over face) at the left, a neighbour's face at the right, a
    stray hair blob at the bottom, the person's top below the head."""
    labels = np.zeros((64, 48), np.uint8)
    labels[4:10, 8:20] = HAIR
    labels[10:20, 10:18] = FACE
    labels[20:50, 6:22] = UPPER
    labels[8:20, 34:44] = FACE  # the neighbour
    labels[56:60, 20:26] = HAIR  # a stray blob
    return labels


def _keypoints() -> np.ndarray:
    kp = np.full((18, 2), -1.0, np.float32)
    kp[NOSE] = (14, 15)
    kp[R_EYE], kp[L_EYE] = (12, 13), (16, 13)
    kp[R_EAR] = (8, 14)  # 2 px beside the face: within the slack
    kp[1] = (14, 22)  # the neck, not a head point
    return kp


def test_only_the_head_regions_holding_the_persons_head_points_stay():
    labels = _group_photo_labels()
    out = drop_other_heads(labels, _keypoints(), HEADS, slack=2)
    assert (out[8:20, 34:44] == BACKGROUND).all()  # the neighbour's face
    assert (out[56:60, 20:26] == BACKGROUND).all()  # the stray hair
    own = np.zeros_like(labels, bool)
    own[:56, :26] = True
    np.testing.assert_array_equal(out[own], labels[own])  # the person's head and top
    assert labels[8, 34] == FACE  # the input is left alone


def test_a_point_beside_a_region_owns_it_within_the_slack():
    labels = _group_photo_labels()
    kp = np.full((18, 2), -1.0, np.float32)
    kp[L_EAR] = (31, 14)  # 3 px left of the neighbour's face
    assert (drop_other_heads(labels, kp, HEADS, slack=3)[8:20, 34:44] == FACE).all()
    # the person's own head holds none of these points now: it is background
    assert (drop_other_heads(labels, kp, HEADS, slack=3)[10:20, 10:18] == BACKGROUND).all()
    # too far for a slack of 2: nothing says which head is whose, so nothing changes
    np.testing.assert_array_equal(drop_other_heads(labels, kp, HEADS, slack=2), labels)


def test_hair_cut_from_the_face_by_a_thin_band_is_still_the_persons():
    labels = _group_photo_labels()
    labels[9, 8:20] = UPPER  # a hairband: the hair no longer touches the face
    out = drop_other_heads(labels, _keypoints(), HEADS, slack=2)
    assert (out[4:9, 8:20] == HAIR).all()
    assert (out[8:20, 34:44] == BACKGROUND).all()  # the neighbour, 14 px away, still goes


def test_without_head_points_the_parse_is_kept():
    labels = _group_photo_labels()
    kp = _keypoints()
    kp[[NOSE, R_EYE, L_EYE, R_EAR, L_EAR]] = -1.0  # a back view cut at the ears
    np.testing.assert_array_equal(drop_other_heads(labels, kp, HEADS, slack=2), labels)


def test_the_predictor_drops_a_neighbours_head_when_it_has_the_keypoints():
    """A parser that calls everything hair, and a person mask that holds two people: the
    region without the person's head points is background, unless the rule is off."""
    model = _parser_of(HAIR, (32, 24))
    photo = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)
    mask = np.zeros((64, 48), np.float32)
    mask[4:40, 4:20] = 1.0  # the person
    mask[4:40, 30:44] = 1.0  # a neighbour the mask took along
    kp = np.full((18, 2), -1.0, np.float32)
    kp[NOSE], kp[R_EYE], kp[L_EYE] = (12, 12), (10, 10), (14, 10)
    guide = Guide(kp, mask)
    person, neighbour = np.s_[8:36, 8:16], np.s_[8:36, 34:40]
    labels = DensePredictor([model], flip_test=False).predict(photo, guide=guide).labels
    assert (labels[person] == HAIR).all()
    assert (labels[neighbour] == BACKGROUND).all()
    off = DensePredictor([model], flip_test=False, head_slack=None, body_reach=None)
    assert (off.predict(photo, guide=guide).labels[neighbour] == HAIR).all()


NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, R_HIP, L_HIP = 1, 2, 3, 4, 5, 8, 11


def _child_behind_a_table() -> tuple[np.ndarray, np.ndarray]:
    """A person mask (soft rims of 0.3) holding a torso, a forearm the mask cuts off at the
    elbow, a tablet standing below the hips, and a bit of a neighbour at the side; the
    person's skeleton (the hips at the table's edge)."""
    mask = np.zeros((80, 60), np.float32)
    rim = np.s_[9:51, 9:31], np.s_[31:41, 37:49], np.s_[59:71, 11:29], np.s_[1:9, 51:59]
    for region in rim:
        mask[region] = 0.3
    mask[10:50, 10:30] = 1.0  # head and torso
    mask[32:40, 38:48] = 1.0  # the forearm, apart from the torso
    mask[60:70, 12:28] = 1.0  # the tablet
    mask[2:8, 52:58] = 1.0  # the neighbour
    kp = np.full((18, 2), -1.0, np.float32)
    kp[NOSE], kp[NECK] = (20, 14), (20, 22)
    kp[R_SHOULDER], kp[L_SHOULDER] = (12, 22), (28, 22)
    kp[R_ELBOW], kp[R_WRIST] = (34, 34), (46, 36)  # the bone crosses the forearm's region
    kp[R_HIP], kp[L_HIP] = (14, 48), (26, 48)
    return mask, kp


def test_mask_regions_apart_from_the_skeleton_are_not_the_person():
    mask, kp = _child_behind_a_table()
    kept = on_the_body(mask, kp, threshold=0.5, reach=1.0)
    assert (kept[10:50, 10:30] == 1).all() and (kept[32:40, 38:48] == 1).all()
    assert (kept[9, 9:31] == 0.3).all()  # the body's soft rim stays
    assert not kept[59:71, 11:29].any() and not kept[1:9, 51:59].any()  # with their rims
    assert (mask[60:70, 12:28] == 1).all()  # a new array


def test_a_mask_in_one_piece_or_a_person_barely_seen_is_kept():
    mask, kp = _child_behind_a_table()
    whole = mask.copy()
    whole[40:60, 15:20] = 1.0  # the table joins the tablet to the body
    np.testing.assert_array_equal(on_the_body(whole, kp, 0.5, 1.0)[60:70, 12:28], 1.0)
    one = np.full((18, 2), -1.0, np.float32)
    one[NOSE] = kp[NOSE]
    np.testing.assert_array_equal(on_the_body(mask, one, 0.5, 1.0), mask)
    away = np.full((18, 2), -1.0, np.float32)
    away[NOSE], away[NECK] = (2, 75), (4, 78)  # off every region: nothing says whose
    np.testing.assert_array_equal(on_the_body(mask, away, 0.5, 1.0), mask)


def test_the_predictor_takes_a_region_apart_from_the_body_for_background():
    """A parser that calls everything upper clothes: inside the mask's tablet, background,
    unless the rule is off."""
    model = _parser_of(UPPER, (80, 60))
    photo = (np.random.default_rng(0).random((80, 60, 3)) * 255).astype(np.uint8)
    mask, kp = _child_behind_a_table()
    guide = Guide(kp, mask)
    torso, tablet = np.s_[14:46, 14:26], np.s_[62:68, 14:26]
    labels = DensePredictor([model], flip_test=False).predict(photo, guide=guide).labels
    assert (labels[torso] == UPPER).all() and (labels[tablet] == BACKGROUND).all()
    off = DensePredictor([model], flip_test=False, body_reach=None)
    assert (off.predict(photo, guide=guide).labels[tablet] == UPPER).all()
