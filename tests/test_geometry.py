"""common.geometry: crops through affine matrices, and the averaging before a large shrink."""

from __future__ import annotations

import cv2
import numpy as np

from common.geometry import (
    PREFILTER_BELOW,
    area_prefilter,
    box_to_input,
    quarter_turn,
    warp,
    warp_labels,
)


def _checkerboard(h: int, w: int) -> np.ndarray:
    """One-pixel black and white squares: what bilinear sampling aliases worst."""
    board = ((np.indices((h, w)).sum(0) % 2) * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, 2)


def test_a_warp_that_shrinks_little_is_cv2s_own():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    matrix = box_to_input((10.0, 20.0, 150.0, 220.0), (256, 176))  # a 0.86x shrink
    assert np.sqrt(np.linalg.det(matrix[:, :2])) > PREFILTER_BELOW
    plain = cv2.warpAffine(
        image, matrix, (176, 256), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255)
    )
    np.testing.assert_array_equal(warp(image, matrix, (256, 176)), plain)


def test_a_large_shrink_averages_the_pixels_instead_of_aliasing():
    image = _checkerboard(2000, 3000)
    matrix = box_to_input((0.0, 0.0, 3000.0, 2000.0), (128, 192))  # a 15.6x shrink
    plain = cv2.warpAffine(image, matrix, (192, 128), flags=cv2.INTER_LINEAR)
    ours = warp(image, matrix, (128, 192), 0)
    inner = (slice(2, -2), slice(2, -2))
    assert plain[inner].std() > 40  # moire: the samples land on single squares
    assert abs(float(ours[inner].mean()) - 127.5) < 2 and ours[inner].std() < 2


def test_the_averaged_warp_keeps_the_geometry():
    """A smooth ramp and a dot land where the plain warp puts them."""
    h, w = 1500, 2400
    ramp = np.tile(np.linspace(0, 255, w), (h, 1))
    image = np.repeat(ramp[..., None], 3, 2).astype(np.float32)
    matrix = box_to_input((300.0, 100.0, 1800.0, 1300.0), (160, 200))  # rotated below too
    angle = cv2.getRotationMatrix2D((100.0, 80.0), 20.0, 1.0)
    matrix = (np.vstack([angle, [0, 0, 1]]) @ np.vstack([matrix, [0, 0, 1]]))[:2]
    plain = cv2.warpAffine(image, matrix, (200, 160), flags=cv2.INTER_LINEAR, borderValue=-1)
    ours = warp(image, matrix, (160, 200), -1.0)
    inside = (plain[..., 0] >= 0) & (ours[..., 0] >= 0)
    inside = cv2.erode(inside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert inside.sum() > 20000
    assert np.abs(plain - ours)[inside].max() < 1.0  # of 255 across the ramp
    small, _ = area_prefilter(image, matrix, (160, 200))
    assert small.shape[0] < h / 4 and small.shape[1] < w / 4  # only the part read, shrunk
    dot = np.zeros((h, w), np.float32)
    dot[700:740, 1200:1240] = 1.0
    centre = np.array([1219.5, 719.5, 1.0]) @ matrix.T
    got = warp(dot, matrix, (160, 200), 0.0)
    ys, xs = np.nonzero(got > 0.5 * got.max())
    assert np.hypot(xs.mean() - centre[0], ys.mean() - centre[1]) < 0.5


def test_label_maps_are_never_averaged():
    labels = (np.indices((1000, 1000)).sum(0) % 3).astype(np.uint8)
    matrix = box_to_input((0.0, 0.0, 1000.0, 1000.0), (64, 64))
    out = warp(labels, matrix, (64, 64), 0, nearest=True)
    assert set(np.unique(out)) <= {0, 1, 2}


def test_a_quarter_turn_is_numpys_rot90_exactly():
    image = np.arange(7 * 5 * 3, dtype=np.uint8).reshape(7, 5, 3)
    for turns in range(-1, 6):
        turned = np.rot90(image, turns)
        matrix = quarter_turn(turns, image.shape)
        assert np.array_equal(warp(image, matrix, turned.shape[:2], 0, nearest=True), turned)


def test_enlarged_label_maps_follow_the_boundary_not_the_pixel_staircase():
    # a disc of class 3 on class 1, drawn at 24x24 and enlarged 8x: nearest neighbour keeps
    # 8-pixel steps along the circle; the one-hot maps resampled draw it round again
    small = np.ones((24, 24), np.uint8)
    cv2.circle(small, (12, 12), 7, 3, -1)
    grow = np.array([[8.0, 0.0, 3.5], [0.0, 8.0, 3.5]])  # pixel centres to pixel centres
    nearest = warp(small, grow, (192, 192), 0, nearest=True)
    smooth = warp_labels(small, grow, (192, 192))
    assert set(np.unique(smooth)) == {1, 3}  # class ids, never a blend of them

    def left_edge(labels: np.ndarray) -> np.ndarray:  # per row that holds the disc
        rows = (labels == 3).any(1)
        return (labels[rows] == 3).argmax(1)

    steps = [np.abs(np.diff(left_edge(m))) for m in (nearest, smooth)]
    assert (steps[0] > 0).mean() <= 1 / 8 + 0.01  # moves once per source row, in jumps
    assert (steps[1] > 0).mean() > 0.4 and steps[1].max() < steps[0].max()
    # the same grid: the same map; outside the map: the border
    assert (warp_labels(small, np.eye(2, 3), (24, 24)) == small).all()
    shifted = warp_labels(small, np.array([[1.0, 0, 10], [0, 1, 0]]), (24, 24), border=7)
    assert (shifted[:, :10] == 7).all() and (shifted[:, 10:] == small[:, :14]).all()
