"""The card's backdrop: a source's plain wall is found, a busy background is not."""

import numpy as np
import pytest

from studio.backdrop import AUTO, PHOTO, WallRule, parse_backdrop, wall_colour

WALL = (231, 226, 219)


def studio_photo(rng: np.random.Generator, size=(256, 176)) -> tuple[np.ndarray, np.ndarray]:
    """A person (a dark column, label 5) before a wall of one colour with camera noise and a
    soft light fall-off, as a catalogue photo."""
    h, w = size
    crop = np.empty((h, w, 3), np.float64)
    crop[:] = WALL
    crop += np.linspace(-4, 4, h)[:, None, None]  # lighter at the top
    crop += rng.normal(0, 2, crop.shape)
    labels = np.zeros(size, np.uint8)
    labels[30:250, 60:116] = 5
    crop[labels > 0] = (40, 30, 60)
    return crop.clip(0, 255).astype(np.uint8), labels


def test_a_plain_wall_gives_its_own_colour():
    crop, labels = studio_photo(np.random.default_rng(0))
    colour = wall_colour(crop, labels)
    assert colour is not None
    assert np.abs(np.subtract(colour, WALL)).max() <= 2


def test_a_busy_background_gives_none():
    rng = np.random.default_rng(1)
    crop, labels = studio_photo(rng)
    street = rng.integers(0, 256, crop.shape, dtype=np.uint8)
    assert wall_colour(np.where(labels[..., None] > 0, crop, street), labels) is None
    # a wall of two halves is no plain wall either: a door beside it
    doorway = crop.copy()
    doorway[:, 120:] = (90, 60, 40)
    assert wall_colour(doorway, labels) is None


def test_what_the_parse_leaves_round_the_person_is_not_wall():
    # hair the parse missed: a dark fringe just outside the person's region
    crop, labels = studio_photo(np.random.default_rng(2))
    crop[24:256, 52:124][labels[24:256, 52:124] == 0] = (60, 40, 30)
    strict = WallRule(quantile=0.95)  # the fringe is 13% of the background
    assert wall_colour(crop, labels, rule=strict) is not None
    assert wall_colour(crop, labels, rule=WallRule(quantile=0.95, margin=0.0)) is None


def test_too_little_background_and_the_letterbox_tell_nothing():
    crop, labels = studio_photo(np.random.default_rng(3))
    full = labels.copy()
    full[:, 8:168] = 5  # the person fills the crop: 9% of it is wall
    assert wall_colour(crop, full) is None
    # a letterbox past the photo's edge (frame 0) is not the wall, whatever its colour
    frame = np.ones(labels.shape, np.uint8)
    frame[:, :50] = 0
    boxed = crop.copy()
    boxed[:, :50] = 0
    assert wall_colour(boxed, labels) is None
    assert wall_colour(boxed, labels, frame) is not None


def test_backdrop_names_and_colours_are_parsed():
    assert parse_backdrop(" Auto") == AUTO
    assert parse_backdrop("photo") == PHOTO
    assert parse_backdrop("#ff0000") == (255, 0, 0)
    with pytest.raises(ValueError, match=r"colour 'sky'.*auto or photo"):
        parse_backdrop("sky")
    with pytest.raises(ValueError, match="quantile"):
        WallRule(quantile=0.0)
