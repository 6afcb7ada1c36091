import csv
import math

import numpy as np
import pytest

from common.deepfashion import parse_flat
from synth.config import PoseJitterConfig
from synth.head import HeadPose, face_keypoints, fit_head
from synth.posebank import (
    BANK_PATH,
    build_bank,
    complete_body,
    jitter_pose,
    read_bank,
    torso_length,
)

STILL = PoseJitterConfig.still()


def test_committed_bank_is_sane():
    bank = read_bank()
    assert len(bank) > 3000
    kp = np.stack([row.keypoints for row in bank])
    assert np.isfinite(kp).all()
    items = {s: {parse_flat(r.name).item for r in bank if r.split == s} for s in ("train", "test")}
    assert not items["train"] & items["test"]  # split by the real person
    assert 0.15 < len([r for r in bank if r.split == "test"]) / len(bank) < 0.3
    views = {r.view for r in bank}
    assert {"front", "side", "back"} <= views and "flat" not in views


@pytest.mark.slow
@pytest.mark.real_data
def test_bank_rebuilds_from_the_real_csv(shared_data, tmp_path):
    from synth.posebank import write_bank

    bank = build_bank(shared_data / "deepfashion" / "fashion-resize-annotation-test.csv")
    write_bank(tmp_path / "bank.csv", bank)
    rebuilt = list(csv.reader((tmp_path / "bank.csv").open()))
    committed = list(csv.reader(BANK_PATH.open()))
    assert rebuilt[0] == committed[0] and len(rebuilt) == len(committed)
    for new, old in zip(rebuilt[1:], committed[1:], strict=True):
        assert new[:4] == old[:4]  # name, split, view, observed
        # The head's fit is an optimisation: another CPU's float path may move its printed
        # last digit (seen on an AMD EPYC without AVX-512: 2 of 3,154 rows by 1e-4).
        for a, b in zip(new[4:], old[4:], strict=True):
            assert abs(float(a) - float(b)) <= 1.01 * 10.0 ** -len(b.split(".")[1]), (new, old)


def test_completion_continues_missing_legs_downwards():
    bank = read_bank()
    full = [r.keypoints for r in bank if r.observed[1:14].all()]
    donors = np.stack(full[1:])
    target = full[0].copy()
    target[[9, 10, 12, 13]] = -1
    done = complete_body(target, donors)
    for hip, knee, ankle in ((8, 9, 10), (11, 12, 13)):
        assert done[hip, 1] < done[knee, 1] < done[ankle, 1]
        thigh = np.linalg.norm(done[knee] - done[hip]) / torso_length(done)
        assert 0.5 < thigh < 1.3
    np.testing.assert_array_equal(done[:9], target[:9])


@pytest.mark.parametrize("yaw, n_seen", [(0.3, 4), (-1.2, 3), (math.pi, 2)])
def test_head_fit_recovers_a_known_head(yaw, n_seen):
    truth = HeadPose(cx=90.0, cy=40.0, radius=17.0, yaw=yaw, roll=0.08)
    pts, mask = face_keypoints(truth)  # only the points facing the camera are "annotated"
    assert mask.sum() == n_seen
    neck = np.array([90.0 - 40 * math.sin(0.08), 40.0 + 40 * math.cos(0.08)])
    up = np.array([math.sin(0.08), -math.cos(0.08)])
    fit = fit_head(pts, mask, neck, up, torso_length=110.0)
    assert abs(math.remainder(fit.yaw - yaw, 2 * math.pi)) < math.radians(8)
    if mask.sum() >= 3:
        assert abs(fit.cx - truth.cx) < 2 and abs(fit.cy - truth.cy) < 3


def test_jitter_is_seeded_and_flips_mirror_the_head():
    row = read_bank()[0]
    jitter = PoseJitterConfig(flip_probability=0.5)
    a = jitter_pose(row, np.random.default_rng(3), jitter, size=(256, 176))
    b = jitter_pose(row, np.random.default_rng(3), jitter, size=(256, 176))
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    plain = jitter_pose(row, np.random.default_rng(0), STILL, size=(256, 176))
    np.testing.assert_allclose(plain.keypoints, row.keypoints, atol=1e-3)
    half = jitter_pose(row, np.random.default_rng(0), STILL, size=(128, 88))
    np.testing.assert_allclose(half.keypoints, (row.keypoints + 0.5) / 2 - 0.5, atol=1e-3)
    flipped = jitter_pose(row, np.random.default_rng(0), STILL, size=(256, 176), flip=True)
    assert flipped.head.yaw == pytest.approx(-row.head.yaw)
    np.testing.assert_allclose(flipped.keypoints[5, 0], 175 - row.keypoints[2, 0], atol=1e-3)


def test_action_poses_free_the_limbs_and_keep_the_bones():
    row = next(r for r in read_bank() if r.view == "front")
    catalogue = PoseJitterConfig.still()
    action = PoseJitterConfig.still()
    action.action_probability = 1.0
    action.action_limb_probability = 1.0
    action.action_foreshorten_probability = 0.0
    plain = jitter_pose(row, np.random.default_rng(0), catalogue, size=(256, 176))
    # Zero probability draws nothing: the catalogue pose comes out bit for bit.
    catalogue.action_probability = 0.0
    again = jitter_pose(row, np.random.default_rng(0), catalogue, size=(256, 176))
    np.testing.assert_array_equal(plain.keypoints, again.keypoints)

    raised = 0
    for seed in range(40):
        pose = jitter_pose(row, np.random.default_rng(seed), action, size=(256, 176))
        kp = pose.keypoints
        for a, b in ((2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13)):
            bone = np.linalg.norm(row.keypoints[b] - row.keypoints[a])
            assert np.linalg.norm(kp[b] - kp[a]) == pytest.approx(bone, rel=1e-4)
        # The torso is rigid under the lean, the head rides on it.
        for a, b in ((1, 2), (2, 5), (8, 11)):
            gap = np.linalg.norm(row.keypoints[b] - row.keypoints[a])
            assert np.linalg.norm(kp[b] - kp[a]) == pytest.approx(gap, rel=1e-4)
        neck_to_head = np.hypot(pose.head.cx - kp[1, 0], pose.head.cy - kp[1, 1])
        assert neck_to_head == pytest.approx(
            np.hypot(row.head.cx - row.keypoints[1, 0], row.head.cy - row.keypoints[1, 1]),
            rel=1e-4,
        )
        raised += int(kp[4, 1] < kp[2, 1] or kp[7, 1] < kp[5, 1])  # a wrist above its shoulder
    # Catalogue rows almost never raise a hand; free arms do often (uniform up to 175 deg).
    assert not (
        row.keypoints[4, 1] < row.keypoints[2, 1] or row.keypoints[7, 1] < row.keypoints[5, 1]
    )
    assert raised >= 10
