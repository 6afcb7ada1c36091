"""Bare skin is the colour of the person's own face (`parsing.skin`)."""

import numpy as np
import torch

from parsing.labels import ADGAN_INDEX
from parsing.skin import forbid_unlike_skin, skin_distance

FACE, ARMS, LEGS, PANTS = (ADGAN_INDEX[c] for c in ("face", "arms", "legs", "pants"))
SKIN = (0.80, 0.60, 0.48)  # RGB in [0, 1]
TROUSERS = (0.15, 0.18, 0.35)
BLACK = np.array(SKIN) * 0.08  # skin's chromaticity, a few grey levels: black cloth


def _person(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A 40x30 picture: a face, a bare arm in shadow (same skin, half the light), trousers,
    and black shoes that happen to share the skin's chromaticity."""
    image = np.full((40, 30, 3), 0.9, np.float32)
    regions = np.zeros((40, 30), np.int64)
    image[2:10, 10:20], regions[2:10, 10:20] = SKIN, FACE
    image[12:24, 2:8], regions[12:24, 2:8] = np.array(SKIN) * 0.5, ARMS
    image[24:38, 10:20], regions[24:38, 10:20] = TROUSERS, PANTS
    image[38:40, 10:20], regions[38:40, 10:20] = BLACK, LEGS  # LIP's legs hold shoes
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    return image.clip(0, 1), regions


def test_the_faces_chroma_measures_skin_in_any_light():
    image, regions = _person(np.random.default_rng(0))
    distance = skin_distance(image, regions == FACE)
    assert distance is not None and distance.shape == regions.shape
    assert np.median(distance[regions == ARMS]) < 3.0  # shadowed skin is still skin
    assert distance[regions == PANTS].min() > 3.0
    assert np.isinf(distance[regions == LEGS]).all()  # too dark to be lit skin
    assert skin_distance(image, np.zeros_like(regions, bool)) is None  # no face: no rule


def test_skin_classes_are_taken_only_where_the_colour_cannot_be_skin():
    image, regions = _person(np.random.default_rng(1))
    probs = torch.full((1, 8, 40, 30), 0.01)
    probs[0, FACE][torch.from_numpy(regions == FACE)] = 0.9
    probs[0, ARMS][torch.from_numpy(regions == ARMS)] = 0.9  # right
    probs[0, LEGS][torch.from_numpy(regions == PANTS)] = 0.6  # wrong: trousers called legs
    probs[0, PANTS][torch.from_numpy(regions == PANTS)] = 0.3
    images = torch.from_numpy(image).permute(2, 0, 1)[None]
    out = forbid_unlike_skin(probs, images, FACE, (ARMS, LEGS), 3.0)
    labels = out.argmax(1)[0].numpy()
    assert (labels[regions == PANTS] == PANTS).all()
    assert (labels[regions == ARMS] == ARMS).mean() > 0.95
    assert torch.equal(out[:, [0, FACE, PANTS]], probs[:, [0, FACE, PANTS]])  # others untouched
    no_face = probs.clone()
    no_face[0, FACE] = 0.01  # a back view: the parser saw no face, nothing changes
    assert torch.equal(forbid_unlike_skin(no_face, images, FACE, (ARMS, LEGS), 3.0), no_face)
