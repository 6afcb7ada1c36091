"""Guided parsing: the person mask and keypoint maps beside the photo (`parsing.guides`)."""

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_erosion

from keypoints.skeleton import KEYPOINT_NAMES, flip_keypoints
from parsing.data import DenseDataset, deepfashion_items
from parsing.guides import (
    UNKNOWN_MASK,
    GuideNoiseConfig,
    guide_maps,
    mirror_guides,
    noisy_keypoints,
    noisy_mask,
)
from parsing.model import ParserNet, ParserNetConfig
from parsing.predict import DensePredictor, Guide
from tests.conftest import augmentation_off

GUIDES = ("mask", "pose")
L_WRIST, R_WRIST = KEYPOINT_NAMES.index("l_wrist"), KEYPOINT_NAMES.index("r_wrist")


def _person(h: int = 32, w: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints with a few missing, and a mask off-centre (so a mirror shows)."""
    rng = np.random.default_rng(0)
    kp = np.stack([rng.uniform(0, w - 1, 18), rng.uniform(0, h - 1, 18)], -1).astype(np.float32)
    kp[[3, 9]] = -1.0
    mask = np.zeros((h, w), np.float32)
    mask[4:28, 3:14] = 1.0
    return kp, mask


def test_guide_maps_channels_and_unknowns():
    kp, mask = _person()
    maps = guide_maps(GUIDES, (32, 24), kp, mask)
    assert maps.shape == (19, 32, 24)
    assert torch.equal(maps[0], torch.from_numpy(mask))
    x, y = np.round(kp[L_WRIST]).astype(int)
    assert maps[1 + L_WRIST].argmax() == y * 24 + x  # the peak is on the point
    assert maps[1 + 3].abs().max() == 0  # a missing point has an empty map
    unknown = guide_maps(GUIDES, (32, 24), None, None)
    assert torch.all(unknown[0] == UNKNOWN_MASK) and unknown[1:].abs().max() == 0
    batch = guide_maps(GUIDES, (32, 24), np.stack([kp, kp]), np.stack([mask, mask]))
    assert batch.shape == (2, 19, 32, 24) and torch.equal(batch[1], maps)
    with pytest.raises(ValueError, match="must be one of"):
        ParserNetConfig(guides=("depth",))


def test_mirrored_guides_are_the_mirrored_persons_guides():
    """Flipping the maps and swapping left/right channels = drawing the mirrored person."""
    kp, mask = _person()
    direct = guide_maps(GUIDES, (32, 24), flip_keypoints(kp, 24), mask[:, ::-1].copy())
    mirrored = mirror_guides(GUIDES, guide_maps(GUIDES, (32, 24), kp, mask))
    assert torch.allclose(direct, mirrored, atol=1e-6)


def test_noise_keeps_missing_points_missing_and_can_withhold_the_mask():
    kp, mask = _person()
    rng = np.random.default_rng(1)
    cfg = GuideNoiseConfig(jitter=0.05, drop=0.0, pose_drop=0.0, mask_drop=0.0)
    noisy = noisy_keypoints(kp, 32, cfg, rng)
    assert (noisy[[3, 9]] == -1).all() and (noisy[[0, 1, 2]] >= 0).all()
    assert 0 < np.abs(noisy[0] - kp[0]).max() < 8
    assert noisy_mask(mask, GuideNoiseConfig(mask_drop=1.0), rng) is None
    soft = noisy_mask(mask, GuideNoiseConfig(mask_drop=0.0, mask_edge=0.1), rng)
    assert soft.shape == mask.shape and soft.min() >= 0.0 and soft.max() <= 1.0
    assert 0.5 < (soft > 0.5).sum() / mask.sum() < 2.0  # still the same person


def test_guided_flip_test_is_mirror_symmetric():
    """The flip test of a guided parser mirrors the guides with the photo."""
    torch.manual_seed(0)
    config = ParserNetConfig(
        encoder="resnet18",
        parsing_classes=20,
        label_set="lip20",
        input_size=(32, 24),
        guides=GUIDES,
    )
    model = ParserNet(config).eval()
    kp, mask = _person()
    x = torch.rand(1, 3, 32, 24)
    g = guide_maps(GUIDES, (32, 24), kp, mask)[None]
    with torch.no_grad():
        probs = model.parsing_probabilities(x, flip_test=True, guides=g)
        mirrored = model.parsing_probabilities(
            x.flip(-1), flip_test=True, guides=mirror_guides(GUIDES, g)
        )
        unguided = model.parsing_probabilities(x, flip_test=True)
    assert torch.allclose(mirrored, probs.flip(-1)[:, list(model.flip_classes)], atol=1e-5)
    assert not torch.allclose(probs, unguided, atol=1e-3)  # the guides are read


def test_dataset_guides_follow_the_crop_and_the_mirror(synth_dataset):
    """Without noise the mask is the labels' person and each keypoint map peaks where the
    keypoint went; a mirrored sample's left wrist is the person's right wrist."""
    items = deepfashion_items(synth_dataset, "train")
    assert all(it.keypoints is not None for it in items)
    items = [it for it in items if (it.keypoints[R_WRIST] >= 0).all()][:1]
    plain = DenseDataset(items, (64, 44), heads=("parsing",), guides=GUIDES)
    s = plain[0]
    assert s["guides"].shape == (19, 64, 44)
    assert torch.equal(s["guides"][0] > 0.5, s["labels"] > 0)
    mirror = augmentation_off(flip_probability=1.0)
    flipped = DenseDataset(items, (64, 44), heads=("parsing",), augment=mirror, guides=GUIDES)
    f = flipped[(0, 3)]
    assert torch.equal(f["guides"][0], s["guides"][0].flip(-1))
    assert s["guides"][1 + R_WRIST].max() > 0.9
    assert torch.allclose(f["guides"][1 + L_WRIST], s["guides"][1 + R_WRIST].flip(-1), atol=1e-4)


def test_predictor_feeds_the_estimators_person_to_a_guided_parser():
    torch.manual_seed(0)
    config = ParserNetConfig(encoder="resnet18", input_size=(32, 24), guides=GUIDES)
    predictor = DensePredictor([ParserNet(config)], flip_test=False)
    assert predictor.guided
    photo = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)
    kp, mask = _person(64, 48)
    with_guides = predictor.predict(photo, guide=(kp, mask)).labels
    without = predictor.predict(photo).labels  # no estimator: runs, reading 'unknown'
    assert with_guides.shape == without.shape == (64, 48)
    assert not np.array_equal(with_guides, without)


def test_the_estimators_mask_decides_person_from_background_both_ways():
    torch.manual_seed(0)
    config = ParserNetConfig(encoder="resnet18", input_size=(32, 24), guides=GUIDES)
    photo = (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)
    kp, mask = _person(64, 48)
    # away from the mask's edge (the parser reads it at half this size)
    inside = binary_erosion(mask > 0.5, iterations=2)
    outside = binary_erosion(mask < 0.5, iterations=2)
    for favourite in (0, 5):  # a parser that sees background everywhere, or upper clothes
        model = ParserNet(config)
        with torch.no_grad():
            model.net.segmentation_head[0].bias[favourite] += 100.0
        gated = DensePredictor([model], flip_test=False).predict(photo, guide=(kp, mask))
        free = DensePredictor([model], flip_test=False, mask_threshold=None)
        alone = free.predict(photo, guide=(kp, mask)).labels
        assert (alone == favourite).all()  # what the parser alone says
        assert (gated.labels[outside] == 0).all()
        assert (gated.labels[inside] > 0).all()  # the mask overrules its background
        if favourite:  # and keeps the class it gave the person
            assert (gated.labels[inside] == favourite).all()


def _parser_that_paints(label: int) -> ParserNet:
    """A guided parser at 32x24 whose every pixel is `label`, whatever it sees."""
    torch.manual_seed(0)
    model = ParserNet(ParserNetConfig(encoder="resnet18", input_size=(32, 24), guides=GUIDES))
    with torch.no_grad():
        model.net.segmentation_head[0].bias[label] += 100.0
    return model


def _noise_photo() -> np.ndarray:
    return (np.random.default_rng(0).random((64, 48, 3)) * 255).astype(np.uint8)


def test_the_face_outline_is_face_and_only_there():
    """A parser that paints hair everywhere: inside the face model's outline the label is
    face, outside it the parser's hair stays; with no outline nothing changes."""
    hair, face = 2, 4  # ADGAN's ids
    model, photo = _parser_that_paints(hair), _noise_photo()
    kp, mask = _person(64, 48)
    outline = np.zeros((64, 48), np.float32)
    outline[8:20, 6:12] = 1.0
    predictor = DensePredictor([model], flip_test=False)
    labels = predictor.predict(photo, guide=Guide(kp, mask, outline)).labels
    inside = binary_erosion(outline > 0.5, iterations=2)
    person_not_face = binary_erosion((mask > 0.5) & (outline < 0.5), iterations=2)
    assert (labels[inside] == face).all()
    assert (labels[person_not_face] == hair).all()
    assert face not in predictor.predict(photo, guide=Guide(kp, mask)).labels
    off = DensePredictor([model], flip_test=False, face_threshold=None)
    assert face not in off.predict(photo, guide=Guide(kp, mask, outline)).labels


def test_inside_the_hands_outline_is_arms_and_the_person():
    """A parser that paints upper clothes everywhere: inside the hands' outline the label
    is arms, even where the person mask leaves the hand out; without the rule, background
    there."""
    upper, arms = 5, 6  # ADGAN's ids
    model, photo = _parser_that_paints(upper), _noise_photo()
    kp, mask = _person(64, 48)
    hands = np.zeros((64, 48), np.float32)
    hands[30:44, 16:30] = 1.0  # reaching out of the mask (rows 4-27, columns 3-13)
    inside = binary_erosion(hands > 0.5, iterations=2)
    labels = (
        DensePredictor([model], flip_test=False)
        .predict(photo, guide=Guide(kp, mask, None, hands))
        .labels
    )
    assert (labels[inside] == arms).all()
    body = binary_erosion(mask > 0.5, iterations=2)
    assert (labels[body] == upper).all()
    off = DensePredictor([model], flip_test=False, hand_threshold=None)
    assert (off.predict(photo, guide=Guide(kp, mask, None, hands)).labels[inside] == 0).all()


def test_the_hands_outline_is_arms_only_where_the_colour_may_be_skin():
    """The outline of a hand reaches past its fingers: into the trousers it rests on, or
    the room between fingers held away from the body. Where the face shows what this
    person's skin looks like, only the outline's skin-coloured pixels become arms (and the
    person); the rest stays what the parser and the mask say (here: background)."""
    upper, face, arms = 5, 4, 6  # ADGAN's ids
    model = _parser_that_paints(upper)
    rng = np.random.default_rng(0)
    photo = np.full((64, 48, 3), 128, np.uint8)
    skin = np.array([200, 140, 110])
    outline = np.zeros((64, 48), np.float32)
    outline[8:24, 4:14] = 1.0  # the face, inside the person mask
    photo[8:24, 4:14] = np.clip(skin + rng.normal(0, 4, (16, 10, 3)), 0, 255)
    hands = np.zeros((64, 48), np.float32)
    hands[30:44, 16:30] = 1.0  # out of the mask (rows 4-27, columns 3-13)
    photo[30:44, 16:23] = skin  # the hand
    photo[30:44, 23:30] = (40, 60, 200)  # blue beyond it, inside the outline
    kp, mask = _person(64, 48)
    labels = (
        DensePredictor([model], flip_test=False)
        .predict(photo, guide=Guide(kp, mask, outline, hands))
        .labels
    )
    hand = binary_erosion(np.pad(np.ones((14, 7), bool), ((30, 20), (16, 25))), iterations=2)
    beyond = binary_erosion(np.pad(np.ones((14, 7), bool), ((30, 20), (23, 18))), iterations=2)
    assert (labels[hand] == arms).all()
    assert (labels[beyond] == 0).all()
    assert (labels[binary_erosion(outline > 0.5, iterations=2)] == face).all()
    # without a face to tell skin by, the whole outline is arms, as before
    no_face = DensePredictor([model], flip_test=False).predict(
        photo, guide=Guide(kp, mask, None, hands)
    )
    assert (no_face.labels[beyond] == arms).all()
