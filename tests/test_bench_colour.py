"""The real cards' colour yardstick (bench/real_cards.py) on hand-made crops."""

from types import SimpleNamespace

import cv2
import numpy as np

from bench.real_cards import MIN_SHARE, class_colours
from parsing.labels import ADGAN_INDEX


def _lab(rgb: tuple[int, int, int]) -> np.ndarray:
    return cv2.cvtColor(np.array([[rgb]], np.float32) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]


def test_each_class_colour_is_its_mean_in_lab_and_small_classes_are_left_out():
    """Trousers half red, half blue: their mean is the mean of the two colours in Lab; hair
    under `MIN_SHARE` of the crop is not measured; the background never is."""
    h, w = 100, 50
    crop = np.full((h, w, 3), 240, np.uint8)
    labels = np.zeros((h, w), np.uint8)
    labels[50:] = ADGAN_INDEX["pants"]
    crop[50:75], crop[75:] = (200, 0, 0), (0, 0, 200)
    hair = int(MIN_SHARE * h * w) - 1  # one pixel short of counting
    labels[0, :hair] = ADGAN_INDEX["hair"]
    found = class_colours(SimpleNamespace(crop=crop, labels=labels))
    assert set(found) == {"pants"}
    expected = (_lab((200, 0, 0)) + _lab((0, 0, 200))) / 2
    np.testing.assert_allclose(found["pants"], expected, atol=1e-3)
    assert np.linalg.norm(_lab((200, 0, 0)) - _lab((0, 0, 200))) > 50  # Lab, L in 0-100
