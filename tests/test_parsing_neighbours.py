"""A neighbour's head is not the person's (parsing/neighbours.py and DensePredictor)."""

from __future__ import annotations

import numpy as np
import torch

from parsing.model import ParserNet, ParserNetConfig
from parsing.neighbours import drop_other_heads
from parsing.predict import DensePredictor, Guide

BACKGROUND, HAIR, FACE, UPPER = 0, 2, 4, 5  # ADGAN's ids
HEADS = (HAIR, FACE)
NOSE, R_EYE, L_EYE, R_EAR, L_EAR = 0, 14, 15, 16, 17


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
    torch.manual_seed(0)
    config = ParserNetConfig(encoder="resnet18", input_size=(32, 24), guides=("mask", "pose"))
    model = ParserNet(config)
    with torch.no_grad():
        model.net.segmentation_head[0].bias[HAIR] += 100.0
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
    off = DensePredictor([model], flip_test=False, head_slack=None)
    assert (off.predict(photo, guide=guide).labels[neighbour] == HAIR).all()
