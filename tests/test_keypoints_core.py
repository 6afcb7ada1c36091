"""Keypoint network, heatmap codec, metrics and data: behaviour on small inputs."""

import numpy as np
import pytest
import torch

from keypoints.data import KeypointAugmentConfig, KeypointDataset, coco_items, deepfashion_items
from keypoints.heatmaps import decode, encode, flip_heatmaps
from keypoints.metrics import head_size, oks_ap, pckh, pckh_counts
from keypoints.model import PoseNet, PoseNetConfig
from keypoints.predict import KeypointResult
from keypoints.search import find_people, search_windows
from keypoints.skeleton import KEYPOINT_INDEX, flip_keypoints
from tests.conftest import augmentation_off


@pytest.mark.parametrize(
    "backbone, head, size",
    [
        ("resnet18", "fpn", (64, 44)),
        ("resnet18", "deconv", (128, 88)),
        ("hrnet_w18_small", "fpn", (64, 44)),  # HRNet needs multiples of 32: padded inside
    ],
)
def test_posenet_shapes(backbone, head, size):
    model = PoseNet(
        PoseNetConfig(backbone=backbone, head=head, head_channels=16, input_size=size)
    ).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 18, size[0] // 4, size[1] // 4)
    assert model.describe()["config"]["backbone"] == backbone


def test_posenet_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = PoseNet(PoseNetConfig(head_channels=16, input_size=(64, 44)))
    images = torch.rand(4, 3, 64, 44)
    kp = np.random.default_rng(0).uniform([5, 5], [38, 58], size=(4, 18, 2))
    target = torch.from_numpy(np.stack([encode(k, (64, 44), (16, 11), 1.0)[0] for k in kp]))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    losses = []
    for _ in range(60):
        loss = ((model(images) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_codec_round_trip_is_subpixel():
    rng = np.random.default_rng(1)
    errors = {True: [], False: []}
    for _ in range(10):
        kp = np.stack([rng.uniform(0, 175, 18), rng.uniform(0, 255, 18)], 1)
        target, present = encode(kp, (256, 176), (64, 44), 2.0)
        assert present.all()
        noisy = torch.from_numpy(target + rng.normal(0, 0.02, target.shape).astype(np.float32))
        for dark in (True, False):
            coords, _ = decode(noisy[None], (256, 176), dark=dark)
            errors[dark].append(np.abs(coords[0].numpy() - kp).mean())
    assert np.mean(errors[True]) < 0.35 < np.mean(errors[False])


def test_missing_and_outside_points_give_empty_maps_and_flip_is_exact():
    kp = np.full((18, 2), -1, np.float32)
    kp[2] = (30.0, 40.0)
    kp[3] = (200.0, 40.0)  # outside a 176-wide input
    target, present = encode(kp, (256, 176), (64, 44), 2.0)
    assert present.tolist() == [i == 2 for i in range(18)]
    assert target[3].max() == 0 and target[2].max() == pytest.approx(1.0, abs=0.02)
    flipped, _ = encode(flip_keypoints(kp, 176), (256, 176), (64, 44), 2.0)
    back = flip_heatmaps(torch.from_numpy(flipped)[None])[0].numpy()
    np.testing.assert_allclose(back, target, atol=1e-6)


def test_pckh_follows_the_patn_protocol():
    target = np.full((18, 2), -1.0)
    target[[0, 14, 15]] = [(50, 20), (45, 16), (55, 16)]  # head box 10 x 4
    target[2] = (40, 60)
    target[5] = (60, 60)
    assert head_size(target) == (10.0, 4.0)
    pred = target.copy()
    pred[2] = (44.9, 61.9)  # inside 0.5 * (10, 4) = (5, 2) on both axes
    pred[5] = (60, 62.5)  # 2.5 off vertically: wrong
    pred[0] = (-1, -1)  # predicted missing: wrong
    assert pckh_counts([pred], [target]) == (3, 5, 0)
    assert pckh([pred], [target]) == pytest.approx(0.6)
    lonely = np.full((18, 2), -1.0)
    lonely[[0, 2]] = [(1, 1), (5, 5)]  # one head point: no head box, image skipped
    assert pckh_counts([lonely], [lonely]) == (0, 0, 1)
    # a head size given from elsewhere (the uncut photo's) counts the image and sets the
    # tolerance: 2.5 px off vertically is right within 0.5 * 6
    assert pckh_counts([lonely], [lonely], head_sizes=[(10.0, 4.0)]) == (2, 2, 0)
    assert pckh_counts([pred], [target], head_sizes=[(10.0, 6.0)]) == (4, 5, 0)
    with pytest.raises(ValueError, match="head sizes"):
        pckh_counts([pred], [target], head_sizes=[])


def test_pckh_interval_pools_people_drawn_again():
    from keypoints.metrics import pckh_interval

    # every person at the same ratio: every draw pools to it
    assert pckh_interval([3, 6, 9], [4, 8, 12]) == pytest.approx((0.75, 0.75))
    # two people, 10 of 10 and 0 of 10: a draw is both once (0.5, probability 1/2) or one
    # of them twice (1 or 0, 1/4 each), so the 95% interval is the whole of 0..1 and the
    # 40% interval (30th to 70th percentile) is 0.5 alone
    assert pckh_interval([10, 0], [10, 10]) == pytest.approx((0.0, 1.0))
    assert pckh_interval([10, 0], [10, 10], level=0.4) == pytest.approx((0.5, 0.5))
    # the same seed, the same interval, and the pooled figure lies inside it
    low, high = pckh_interval([18, 5, 17, 9], [18, 17, 17, 17])
    assert (low, high) == pckh_interval([18, 5, 17, 9], [18, 17, 17, 17])
    assert low < 49 / 69 < high
    with pytest.raises(ValueError, match="per-image"):
        pckh_interval([1, 2], [3])
    with pytest.raises(ValueError, match="level"):
        pckh_interval([1], [2], level=1.0)


@pytest.mark.real_data
def test_oks_ap_on_the_real_coco_sample(shared_data):
    from keypoints.formats import read_coco_keypoints

    path = shared_data / "real-formats" / "coco-keypoints" / "test_coco.json"
    people = [p for p in read_coco_keypoints(path) if (p.visibility > 0).sum() >= 5]
    exact = [
        {
            "image_id": p.image_id,
            "keypoints": p.keypoints,
            "scores": (p.visibility > 0).astype(float),
            "score": 1.0,
        }
        for p in people
    ]
    assert oks_ap(str(path), exact)["AP"] > 0.99
    shifted = [
        {**r, "keypoints": np.where(r["keypoints"] >= 0, r["keypoints"] + 25, -1)} for r in exact
    ]
    assert oks_ap(str(path), shifted)["AP"] < 0.5


def test_dataset_items_augmentation_and_flip(synth_dataset):
    items = deepfashion_items(synth_dataset, "train")
    plain = KeypointDataset(items, (64, 44), sigma=1.0)
    sample = plain[0]
    assert sample["image"].shape == (3, 64, 44) and sample["target"].shape == (18, 16, 11)
    # no augmentation: the crop is the letterboxed photo, keypoints scaled with it
    kp = items[0].keypoints
    present = kp[:, 0] >= 0
    np.testing.assert_allclose(
        sample["keypoints"].numpy()[present], (kp[present] + 0.5) * 0.5 - 0.5, atol=1e-3
    )
    mirror = augmentation_off(KeypointAugmentConfig, flip_probability=1.0)
    flipped = KeypointDataset(items, (64, 44), sigma=1.0, augment=mirror)[(0, 5)]
    np.testing.assert_allclose(
        flipped["image"].numpy(), sample["image"].numpy()[..., ::-1], atol=1e-5
    )
    right, left = KEYPOINT_INDEX["r_shoulder"], KEYPOINT_INDEX["l_shoulder"]
    if present[left]:
        assert flipped["keypoints"][right, 0].item() == pytest.approx(
            43 - sample["keypoints"][left, 0].item(), abs=1e-3
        )
    rich = KeypointDataset(items, (64, 44), sigma=1.0, augment=KeypointAugmentConfig())
    a, b = rich[(1, 123)], rich[(1, 123)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["image"], rich[(1, 124)]["image"])


def test_bystanders_stand_behind_the_subject(synth_dataset):
    """Pasted people change the background only: the subject and its targets are untouched."""
    from common.geometry import box_to_input, warp
    from keypoints.data import person_mask

    items = deepfashion_items(synth_dataset, "train")
    assert all(it.mask is not None for it in items)  # SynthFashion writes semantic maps
    quiet = augmentation_off(KeypointAugmentConfig)
    crowded = augmentation_off(KeypointAugmentConfig, bystander_probability=1.0)
    plain = KeypointDataset(items, (128, 88), sigma=1.0, augment=quiet)
    busy = KeypointDataset(items, (128, 88), sigma=1.0, augment=crowded)
    changed = 0.0
    for index, seed in [(0, 1), (1, 2), (2, 3), (3, 4)]:
        a, b = plain[(index, seed)], busy[(index, seed)]
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["weight"], b["weight"])
        mask = person_mask(items[index].mask, (128, 88))
        subject = warp(mask, box_to_input((0, 0, 88, 128), (128, 88)), (128, 88), 0, nearest=True)
        on = torch.from_numpy(subject.astype(bool))
        assert torch.equal(a["image"][:, on], b["image"][:, on])
        changed += (a["image"] - b["image"]).abs().amax(0)[~on].gt(0.05).float().mean().item()
    assert changed / 4 > 0.03  # someone is really there, beside the subject


def test_negatives_are_person_free_crops(synth_dataset):
    from keypoints.data import person_free_images

    items = deepfashion_items(synth_dataset, "train")
    negatives = person_free_images(synth_dataset / "backgrounds" / "train")
    data = KeypointDataset(
        items,
        (64, 44),
        sigma=1.0,
        augment=KeypointAugmentConfig(),
        negatives=negatives,
        negative_probability=1.0,
    )
    sample = data[(0, 9)]
    assert sample["target"].abs().sum() == 0 and (sample["keypoints"] == -1).all()
    assert (sample["weight"] == 1).all() and sample["image"].shape == (3, 64, 44)
    assert torch.equal(sample["image"], data[(0, 9)]["image"])  # seeded like any sample
    with pytest.raises(ValueError, match="person-free"):
        KeypointDataset(items, (64, 44), negative_probability=0.5)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        person_free_images(synth_dataset / "nothing")


@pytest.mark.real_data
def test_coco_items_skip_people_without_keypoints(shared_data):
    folder = shared_data / "real-formats" / "coco-keypoints"
    items = coco_items(folder / "test_coco.json", folder)
    assert 0 < len(items) < 14 and all(it.path.is_file() for it in items)
    sample = KeypointDataset(items, (64, 44), sigma=1.0)[0]
    assert sample["image"].shape == (3, 64, 44)


def test_search_windows_tile_the_photo_at_the_estimators_aspect():
    height, width, aspect = 300, 800, 176 / 256
    for scales in ((1.0,), (0.75,), (0.5,)):
        boxes = np.array(search_windows(height, width, aspect, scales))
        x, y, w, h = boxes.T
        assert np.allclose(w / h, aspect) and np.allclose(h, height * scales[0])
        assert (x >= 0).all() and (y >= 0).all()
        assert (x + w <= width + 1e-9).all() and (y + h <= height + 1e-9).all()
        covered = np.zeros((height, width), bool)
        for bx, by, bw, bh in boxes:
            covered[round(by) : round(by + bh), round(bx) : round(bx + bw)] = True
        assert covered.all(), scales
        neighbours = np.diff(np.unique(x))
        assert (neighbours <= w[0] / 2 + 1e-9).all()  # overlapping by at least half
    # a portrait photo at the estimator's aspect is its own only full-height window: skipped
    assert search_windows(256, 176, aspect, (1.0,)) == []
    assert len(search_windows(256, 176, aspect, (1.0, 0.5))) == 9


class _SeesAPersonUpClose:
    """A stand-in estimator: a person stands in `PERSON` (x0, y0, x1, y1) of the photo and is
    seen (score 0.9) only where they fill at least 60% of the looked-at box's height; a box
    that cuts them shows 8 keypoints, one that holds them 18."""

    PERSON = (600.0, 150.0, 700.0, 350.0)  # half the height of a 400-row photo: unseen whole

    def __init__(self):
        self.calls = []

    def predict_many(self, images, boxes=None):
        boxes = boxes or [None] * len(images)
        self.calls.append(len(images))
        out = []
        for image, box in zip(images, boxes, strict=True):
            x, y, w, h = box or (0.0, 0.0, image.shape[1], image.shape[0])
            x0, y0, x1, y1 = self.PERSON
            seen_h = max(0.0, min(y1, y + h) - max(y0, y))
            inside = x <= x0 and x1 <= x + w and y <= y0 and y1 <= y + h
            kp = np.full((18, 2), -1.0, np.float32)
            if image.mean() > 10 and seen_h >= 0.6 * h and min(x1, x + w) > max(x0, x):
                kp[: 18 if inside else 8] = (x0 + x1) / 2, (y0 + y1) / 2
                out.append(KeypointResult(kp, np.full(18, 0.9, np.float32), 0.9))
            else:
                out.append(KeypointResult(kp, np.zeros(18, np.float32), 0.1))
        return out


def test_find_people_searches_only_where_nobody_is_seen_and_keeps_the_whole_person():
    estimator = _SeesAPersonUpClose()
    wide = np.full((400, 1000, 3), 200, np.uint8)
    dark = np.zeros((400, 1000, 3), np.uint8)  # nobody anywhere
    near = np.full((240, 165, 3), 200, np.uint8)  # filled by the person: no search
    assert estimator.predict_many([wide])[0].person_score == 0.1  # the search's case
    estimator.calls.clear()
    found = find_people(estimator, [wide, dark], aspect=176 / 256)
    assert estimator.calls[0] == 2 and len(estimator.calls) == 2  # one batch of windows
    assert (found[0].keypoints >= 0).all() and found[0].person_score == 0.9  # all 18: held
    assert found[0].keypoints[0].tolist() == [650.0, 250.0]
    assert (found[1].keypoints < 0).all() and found[1].person_score == 0.1  # stays nobody
    estimator.calls.clear()
    estimator.PERSON = (40.0, 0.0, 120.0, 240.0)
    assert find_people(estimator, [near], aspect=176 / 256)[0].person_score == 0.9
    assert estimator.calls == [1]
    # a window below the threshold is not taken, however many keypoints it shows
    estimator.PERSON = (600.0, 150.0, 700.0, 350.0)
    found = find_people(estimator, [wide], aspect=176 / 256, threshold=0.95)
    assert (found[0].keypoints < 0).all()
    # the windows go through `searcher` where given; the whole photo through the estimator
    strict = _SeesAPersonUpClose()
    strict.PERSON = (0.0, 0.0, 1.0, 1.0)  # sees nobody in any window
    estimator.calls.clear()
    found = find_people(estimator, [wide], aspect=176 / 256, searcher=strict)
    assert estimator.calls == [1] and len(strict.calls) == 1  # one batch of windows
    assert (found[0].keypoints < 0).all() and found[0].person_score == 0.1


def _standing(top: float, scale: float = 1.0, nose: bool = True) -> np.ndarray:
    """A standing person's 18 keypoints, head at `top`, 2 px per unit times `scale`."""
    kp = np.array(
        [[50, 10], [50, 20], [40, 20], [38, 35], [36, 50], [60, 20], [62, 35], [64, 50],
         [44, 55], [44, 75], [44, 95], [56, 55], [56, 75], [56, 95], [48, 8], [52, 8],
         [46, 9], [54, 9]],
        np.float32,
    )  # fmt: skip
    kp = (kp - [50, 8]) * 2 * scale + [100, top]
    if not nose:
        kp[[0, 14, 15, 16, 17]] = -1
    return kp


class _FindsHeadless:
    """An estimator whose first look gives `first` and whose `headless_many` gives `cut`;
    records which photos the headless search was asked about."""

    def __init__(self, first: np.ndarray, cut: np.ndarray | None) -> None:
        self.first, self.cut, self.asked = first, cut, []

    def predict_many(self, photos, boxes=None):
        return [KeypointResult(self.first.copy(), np.ones(18, np.float32), 0.9) for _ in photos]

    def headless_many(self, photos, boxes=None):
        self.asked.append(len(photos))
        kp = self.cut if self.cut is not None else np.full((18, 2), -1.0, np.float32)
        return [KeypointResult(kp.copy(), np.ones(18, np.float32), 0.9) for _ in photos]


def test_a_doubtful_person_is_replaced_by_one_whose_head_the_photo_cuts_off():
    """`find_people` asks an estimator that can find a person whose head the photo's top
    edge cuts off (BlazePose's `headless_many`) only where its answer is doubtful, and takes
    that person where the answers differ or the first sees a "face" below the shoulders."""
    photo = np.full((240, 200, 3), 200, np.uint8)
    cut = _standing(-20, scale=1.1, nose=False)  # head above the photo: nose missing
    whole = _standing(20)  # a whole person filling the photo, face and all: not doubtful
    estimator = _FindsHeadless(whole, cut)
    np.testing.assert_array_equal(find_people(estimator, [photo], aspect=0.7)[0].keypoints, whole)
    assert estimator.asked == []  # a catalogue photo of a whole person pays nothing
    # a small body drawn around a "face" in a print, nose below the cut person's shoulders
    small = _standing(100, scale=0.4)
    estimator = _FindsHeadless(small, cut)
    found = find_people(estimator, [photo], aspect=0.7)[0]
    assert estimator.asked == [1]
    np.testing.assert_array_equal(found.keypoints, cut)
    # no nose seen, and the same body: the cut person (it carries the headless reading)
    same = _standing(-20, scale=1.1, nose=False) + 1.0
    same[[0, 14, 15, 16, 17]] = -1
    estimator = _FindsHeadless(same, cut)
    found = find_people(estimator, [photo], aspect=0.7)[0]
    assert estimator.asked == [1]
    np.testing.assert_array_equal(found.keypoints, cut)
    # a doubtful person with no headless reading to replace it stays
    estimator = _FindsHeadless(small, None)
    np.testing.assert_array_equal(find_people(estimator, [photo], aspect=0.7)[0].keypoints, small)
