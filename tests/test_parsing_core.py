"""The dense network, its losses and metrics, the mirror rule and the datasets."""

import math

import numpy as np
import pytest
import torch

from common.augment import AugmentConfig
from parsing.data import (
    DenseDataset,
    celebamask_items,
    deepfashion_items,
    densepose_coco_items,
    label_png_items,
)
from parsing.densepose import flip_iuv
from parsing.losses import densepose_losses, parsing_loss, sample_at, soft_dice
from parsing.metrics import confusion, densepose_point_metrics, iou_report
from parsing.model import ParserNet, ParserNetConfig, predicted_iuv
from tests.conftest import augmentation_off

BOTH = ("parsing", "densepose")


@pytest.mark.parametrize("arch", ["Unet", "Linknet", "FPN", "DeepLabV3Plus"])
def test_every_architecture_gives_every_head(arch):
    model = ParserNet(
        ParserNetConfig(arch=arch, encoder="resnet18", heads=BOTH, input_size=(64, 44))
    ).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 44))
    assert out["parsing"].shape == (2, 8, 64, 44)
    assert out["index"].shape == (2, 25, 64, 44) and out["coarse"].shape == (2, 15, 64, 44)
    assert out["u"].shape == (2, 24, 64, 44) and out["u"].min() >= 0 and out["v"].max() <= 1
    with pytest.raises(ValueError, match="each must be one of"):
        ParserNetConfig(heads=("parsing", "depth"))


def test_parsing_loss_and_dice_by_hand():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]))[..., None, None]
    logits = logits.permute(2, 1, 0, 3)  # [1, 3, 2, 1]
    labels = torch.tensor([[[0], [1]]])  # [1, 2, 1]
    ce = parsing_loss(logits, labels)["parse_ce"]
    assert ce.item() == pytest.approx(-(math.log(0.7) + math.log(0.8)) / 2, rel=1e-5)
    # dice of classes 0 and 1: (2*0.7+1)/(0.7+0.1+1+1) and (2*0.8+1)/(0.2+0.8+1+1)
    expected = 1 - ((2.4 / 2.8) + (2.6 / 3.0)) / 2
    assert soft_dice(logits, labels).item() == pytest.approx(expected, rel=1e-5)
    ignored = torch.tensor([[[0], [255]]])
    assert parsing_loss(logits, ignored)["parse_ce"].item() == pytest.approx(-math.log(0.7))


def test_densepose_loss_at_points_reads_the_true_part():
    h, w = 6, 5
    index = torch.full((1, 25, h, w), -10.0)
    index[0, 3] = 5.0  # part 3 everywhere
    u = torch.full((1, 24, h, w), 0.5)
    u[0, 2] = 0.25  # chart of part 3
    out = {"index": index, "u": u, "v": u.clone(), "coarse": torch.zeros(1, 15, h, w)}
    batch = {
        "points": torch.tensor([[[1.0, 2.0], [3.5, 4.0]]]),
        "point_index": torch.tensor([[3, 3]]),
        "point_u": torch.tensor([[0.25, 0.45]]),
        "point_v": torch.tensor([[0.25, 0.25]]),
        "point_valid": torch.tensor([[True, True]]),
        "coarse": torch.zeros(1, h, w, dtype=torch.long),
    }
    losses = densepose_losses(out, batch)
    assert losses["dp_index"].item() < 1e-3
    assert losses["dp_u"].item() == pytest.approx(0.5 * 0.2**2 / 2, rel=1e-4)  # smooth-L1
    assert losses["dp_v"].item() == pytest.approx(0.0, abs=1e-7)
    assert losses["dp_coarse"].item() == pytest.approx(math.log(15), rel=1e-5)
    grid = torch.arange(12.0).view(1, 1, 3, 4)
    assert sample_at(grid, torch.tensor([[[1.5, 1.0]]])).item() == pytest.approx(5.5)


def test_metrics_by_hand():
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 1]])
    m = confusion(pred, target, 3)
    assert m.sum() == 7  # the ignored pixel is left out
    report = iou_report(m, ("bg", "a", "b"))
    assert report["iou/bg"] == pytest.approx(1 / 3)  # tp 1, fp 1, fn 1
    assert report["iou/a"] == pytest.approx(3 / 4)
    assert report["iou/b"] == pytest.approx(1 / 2)
    assert report["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert report["pixel_accuracy"] == pytest.approx(5 / 7)
    dp = densepose_point_metrics(
        np.array([1, 2]),
        np.array([0.5, 0.2]),
        np.array([0.5, 0.1]),
        np.array([1, 3]),
        np.array([0.4, 0.2]),
        np.array([0.5, 0.3]),
    )
    assert dp["part_accuracy"] == 0.5
    assert dp["uv_error"] == pytest.approx(0.5 * (0.05 + 0.1))
    assert dp["uv_error_correct"] == pytest.approx(0.05)


def test_predicted_iuv_is_body_only_where_the_coarse_mask_says_so():
    # The part head never learns background (points lie on the body): it names part 3
    # everywhere here; the coarse mask says the left half is background.
    out = {
        "index": torch.zeros(1, 25, 2, 4),
        "u": torch.full((1, 24, 2, 4), 0.25),
        "v": torch.full((1, 24, 2, 4), 0.75),
        "coarse": torch.zeros(1, 15, 2, 4),
    }
    out["index"][:, 3] = 5.0
    out["coarse"][:, 0, :, :2] = 5.0  # background on the left
    out["coarse"][:, 2, :, 2:] = 5.0  # a coarse body part on the right
    parts, u, v = predicted_iuv(out)
    assert (parts[0, :, :2] == 0).all() and (parts[0, :, 2:] == 3).all()
    assert (u[0, :, :2] == 0).all() and (v[0, :, :2] == 0).all()
    assert np.allclose(u[0, :, 2:], 0.25) and np.allclose(v[0, :, 2:], 0.75)


def test_mirror_rule_matches_a_mirrored_render():
    """flip_iuv of a mirrored IUV map equals the IUV the renderer draws for the mirror pose."""
    from synth.config import PoseJitterConfig, SynthConfig
    from synth.identity import sample_identity
    from synth.posebank import jitter_pose, read_bank
    from synth.render import paint_person

    cfg = SynthConfig()
    row = next(r for r in read_bank() if r.view == "front" and r.observed[1:14].all())
    person = sample_identity(4, "train", np.random.default_rng(4), cfg)
    still = PoseJitterConfig.still()
    maps = []
    for flip in (False, True):
        pose = jitter_pose(row, np.random.default_rng(0), still, size=cfg.size, flip=flip)
        canvas, _ = paint_person(person, pose, cfg)
        maps.append((canvas.part, canvas.u, canvas.v))
    parts, u, v = flip_iuv(*(m[:, ::-1] for m in maps[0]))
    mparts, mu, mv = maps[1]
    both = (parts > 0) & (mparts > 0)
    assert (parts[both] == mparts[both]).mean() > 0.9
    same = both & (parts == mparts)
    assert np.median(np.abs(u[same] - mu[same])) < 0.05
    assert np.median(np.abs(v[same] - mv[same])) < 0.05


def test_dataset_from_synthfashion(synth_dataset):
    items = deepfashion_items(synth_dataset, "train")
    assert all(it.labels and it.iuv for it in items)
    data = DenseDataset(items, (64, 44), heads=BOTH, points_per_image=32)
    s = data[0]
    assert s["image"].shape == (3, 64, 44) and s["labels"].shape == (64, 44)
    assert s["labels"].max() < 8 and s["coarse"].max() <= 14
    assert s["point_valid"].sum() == 32
    on = s["point_valid"]
    rows, cols = s["points"][on, 1].long(), s["points"][on, 0].long()
    assert (s["labels"][rows, cols] > 0).all()  # points lie on the person
    rich = DenseDataset(items, (64, 44), heads=BOTH, augment=AugmentConfig())
    a, b = rich[(1, 7)], rich[(1, 7)]
    assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["points"], b["points"])


def test_bystanders_leave_labels_and_points_exact(synth_dataset):
    """A person pasted behind the subject is background; its pixels are the only change."""
    items = deepfashion_items(synth_dataset, "train")
    quiet, crowded = augmentation_off(), augmentation_off(bystander_probability=1.0)
    plain = DenseDataset(items, (128, 88), heads=BOTH, augment=quiet, points_per_image=32)
    busy = DenseDataset(items, (128, 88), heads=BOTH, augment=crowded, points_per_image=32)
    changed = []
    for index, seed in [(0, 5), (2, 6), (4, 7)]:
        a, b = plain[(index, seed)], busy[(index, seed)]
        assert torch.equal(a["labels"], b["labels"]) and torch.equal(a["coarse"], b["coarse"])
        on = a["labels"] > 0
        points = b["points"][b["point_valid"]].long()  # drawn afresh, still on the subject
        assert len(points) == 32 and on[points[:, 1], points[:, 0]].all()
        assert torch.equal(a["image"][:, on], b["image"][:, on])
        changed.append((a["image"] - b["image"]).abs().amax(0)[~on].gt(0.05).float().mean())
    assert max(changed) > 0.05


def test_celebamask_source_and_merge(synth_dataset):
    items = celebamask_items(synth_dataset / "faces")
    hair = DenseDataset(
        items, (32, 32), heads=("parsing",), label_set_name="hair2", merge="celebamask_hair"
    )
    assert set(np.unique(hair[0]["labels"].numpy())) <= {0, 1}
    full = DenseDataset(items, (32, 32), heads=("parsing",), label_set_name="celebamask19")
    assert full[0]["labels"].max() < 19
    with pytest.raises(ValueError, match="not a class"):  # 19 classes into 2 without a merge
        DenseDataset(items, (32, 32), heads=("parsing",), label_set_name="hair2")[0]


@pytest.mark.real_data
def test_real_cihp_labels_through_the_dataset(shared_data):
    folder = shared_data / "real-formats" / "cihp-lip-labels"
    items = label_png_items(folder / "cihp_images", folder / "cihp_labels")
    assert len(items) == 5
    data = DenseDataset(items, (64, 44), heads=("parsing",), merge="cihp")
    assert data[0]["labels"].max() < 8


@pytest.mark.slow
def test_dense_net_overfits_two_people(synth_dataset):
    """Both heads learn two SynthFashion images: the losses and the model can fit."""
    torch.manual_seed(0)
    items = deepfashion_items(synth_dataset, "train")[:2]
    data = DenseDataset(items, (64, 44), heads=BOTH, points_per_image=64)
    batch = torch.utils.data.default_collate([data[0], data[1]])
    model = ParserNet(ParserNetConfig(encoder="resnet18", heads=BOTH, input_size=(64, 44)))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(120):
        out = model(batch["image"])
        terms = parsing_loss(out["parsing"], batch["labels"])
        loss = terms["parse_total"] + sum(densepose_losses(out, batch).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(batch["image"])
    pixel_accuracy = (out["parsing"].argmax(1) == batch["labels"]).float().mean()
    assert pixel_accuracy > 0.9
    index = sample_at(out["index"], batch["points"]).argmax(1)
    on = batch["point_valid"]
    assert (index[on] == batch["point_index"][on]).float().mean() > 0.8


@pytest.mark.real_data
def test_real_densepose_coco_points_through_the_dataset(shared_data):
    folder = shared_data / "real-formats" / "densepose"
    items = densepose_coco_items(
        folder / "densepose_coco_style_single_ann.json", folder, aspect=88 / 128
    )
    data = DenseDataset(
        items, (128, 88), heads=("densepose",), mirror_densepose=False, points_per_image=200
    )
    s = data[0]
    on = s["point_valid"]
    assert on.sum() == 125  # every annotated point, padded to 200
    assert (s["point_index"][on] >= 1).all() and (s["point_index"][on] <= 24).all()
    pts = s["points"][on]
    assert (pts[:, 0] >= 0).all() and (pts[:, 0] <= 87).all()
    assert (pts[:, 1] >= 0).all() and (pts[:, 1] <= 127).all()
    assert (s["coarse"] == 255).all()  # no dp_masks in this annotation: ignored, not background
    model = ParserNet(
        ParserNetConfig(encoder="resnet18", heads=("densepose",), input_size=(128, 88))
    )
    batch = torch.utils.data.default_collate([s])
    losses = densepose_losses(model(batch["image"]), batch)
    assert losses["dp_coarse"] == 0 and torch.isfinite(losses["densepose_loss"])


def test_flip_test_is_mirror_symmetric():
    """The flip-test prediction of a mirrored photo is the mirrored prediction, with left and
    right classes swapped (LIP's 20 classes have them)."""
    torch.manual_seed(0)
    model = ParserNet(
        ParserNetConfig(
            encoder="resnet18", parsing_classes=20, label_set="lip20", input_size=(32, 24)
        )
    ).eval()
    x = torch.rand(1, 3, 32, 24)
    with torch.no_grad():
        probs = model.parsing_probabilities(x, flip_test=True)
        mirrored = model.parsing_probabilities(x.flip(-1), flip_test=True)
    swap = list(model.flip_classes)
    assert swap != list(range(20))
    assert torch.allclose(mirrored, probs.flip(-1)[:, swap], atol=1e-5)
    assert torch.allclose(probs.sum(1), torch.ones(1, 32, 24), atol=1e-5)
