import numpy as np
import pytest
import torch

from keypoints.draw import draw_pose, draw_skeleton
from keypoints.posemap import pose_maps
from keypoints.skeleton import COLORS, DRAWN_LIMBS


def test_pose_map_matches_the_closed_form():
    kp = np.full((18, 2), -1, np.float32)
    kp[0] = (10.0, 20.0)
    kp[5] = (30.5, 5.25)
    maps = pose_maps(kp, 40, 44, sigma=6.0)
    assert maps.shape == (18, 40, 44) and maps.dtype == torch.float32
    assert maps[0, 20, 10].item() == pytest.approx(1.0)
    assert maps[0, 23, 14].item() == pytest.approx(np.exp(-(9 + 16) / 72), rel=1e-6)
    assert maps[5, 5, 30].item() == pytest.approx(np.exp(-(0.25 + 0.0625) / 72), rel=1e-6)
    assert maps[1].abs().sum() == 0  # missing points give empty channels
    assert int(maps[5].argmax()) == 5 * 44 + 30  # nearest pixel to (30.5, 5.25)


def test_pose_maps_batch_and_partially_missing_point():
    kp = torch.tensor([[[3.0, 4.0]] * 18, [[-1.0, 7.0]] * 18])  # [2, 18, 2]
    maps = pose_maps(kp, 16, 12, sigma=2.0)
    assert maps.shape == (2, 18, 16, 12)
    assert maps[1].abs().sum() == 0  # x = -1 means missing even with a valid y
    with pytest.raises(ValueError):
        pose_maps(kp, 16, 12, sigma=0.0)


def test_draw_skeleton_colours_limbs_and_skips_missing():
    kp = np.full((18, 2), -1, np.float32)
    kp[1], kp[2] = (50, 20), (30, 40)  # neck -> r-shoulder: limb 0
    image = np.zeros((100, 80, 3), np.uint8)
    out = draw_skeleton(image, kp, alpha=1.0)
    assert image.sum() == 0  # input untouched
    assert tuple(out[30, 40]) == COLORS[0]  # the limb's midpoint
    assert DRAWN_LIMBS[0] == (1, 2)
    assert out[80:, :].sum() == 0  # nothing drawn for missing points
    assert draw_pose(kp, 100, 80)[20, 50].any()
    with pytest.raises(ValueError):
        draw_skeleton(image[..., 0], kp)
