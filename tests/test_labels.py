import numpy as np
import pytest
import torch
from PIL import Image

from common.image_io import ImageError
from parsing.formats import read_label_png
from parsing.labels import (
    ADGAN_CLASSES,
    ATR_CLASSES,
    CELEBAMASK_CLASSES,
    LABEL_SETS,
    LIP_CLASSES,
    MERGE_TABLES,
    class_map,
    colorize,
    label_set,
    merge_labels,
    merge_table,
    overlay,
)


def test_adgan_order_and_lip_merge_are_the_published_ones():
    assert ADGAN_CLASSES == (
        "background",
        "pants",
        "hair",
        "skirt",
        "face",
        "upper_clothes",
        "arms",
        "legs",
    )
    # DESIGN.md / the ADGAN author's semantic_merge3 table, indexed by LIP id.
    assert MERGE_TABLES["lip"] == (0, 2, 2, 6, 4, 5, 5, 5, 7, 1, 4, 5, 3, 4, 6, 6, 7, 7, 7, 7)
    lip = dict(zip(LIP_CLASSES, MERGE_TABLES["lip"], strict=True))
    assert lip["hat"] == lip["hair"] == 2 and lip["glove"] == 6
    assert lip["dress"] == lip["coat"] == lip["scarf"] == 5
    assert lip["socks"] == lip["left_shoe"] == 7


@pytest.mark.parametrize(
    "name, classes",
    [
        ("lip", LIP_CLASSES),
        ("cihp", LIP_CLASSES),
        ("atr", ATR_CLASSES),
        ("celebamask", CELEBAMASK_CLASSES),
    ],
)
def test_every_table_covers_its_label_set(name, classes):
    table = merge_table(name)
    assert len(table) == len(classes)
    assert set(table) <= set(range(len(ADGAN_CLASSES)))
    assert table[0] == 0


def test_merge_labels_and_errors():
    lip = np.array([[0, 13, 5], [9, 12, 19]])
    np.testing.assert_array_equal(merge_labels(lip, "lip"), [[0, 4, 5], [1, 3, 7]])
    with pytest.raises(ImageError, match=r"label values 20 are outside 0\.\.19"):
        merge_labels(np.array([[20]]), "lip")
    valid = "valid: adgan_person, atr, celebamask, celebamask_hair, cihp, lip"
    with pytest.raises(KeyError, match=valid):
        merge_table("pascal")
    with pytest.raises(KeyError, match="adgan8"):
        label_set("coco")


def test_palettes_and_overlay():
    for s in LABEL_SETS.values():
        assert len(s.palette) == s.num_classes
        assert len(set(s.palette)) == s.num_classes  # distinct colours
    labels = np.array([[0, 5]])
    assert colorize(labels)[0, 1].tolist() == [255, 85, 0]
    image = np.full((1, 2, 3), 100, np.uint8)
    out = overlay(image, labels, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert out[0, 1].tolist() == [178, 92, 50]


@pytest.mark.real_data
def test_real_cihp_labels_merge(shared_data):
    folder = shared_data / "real-formats" / "cihp-lip-labels" / "cihp_labels"
    for path in sorted(folder.glob("*.png")):
        raw = read_label_png(path, num_classes=20)
        merged = read_label_png(path, "cihp")
        assert merged.shape == raw.shape and merged.max() < 8
        np.testing.assert_array_equal(merged == 4, np.isin(raw, [4, 10, 13]))
    # CIHP id 10 is torso skin (the neck) in the real labels: it sits between face and
    # upper clothes, and merges into face.
    raw = read_label_png(folder / "0002190.png", num_classes=20)
    ys, _ = np.nonzero(raw == 10)
    face_ys, _ = np.nonzero(raw == 13)
    assert ys.size and np.median(ys) > np.median(face_ys)


@pytest.mark.real_data
def test_real_celebamask_label_maps(shared_data):
    for path in sorted((shared_data / "real-formats" / "celebamask-hq").glob("*.png")):
        labels = read_label_png(path, num_classes=len(CELEBAMASK_CLASSES))
        assert labels.shape == (512, 512)
        merged = read_label_png(path, "celebamask")
        assert set(np.unique(merged)) <= {0, 2, 4, 5}
        # the person's left eye (4) lies on the image's right
        l_eye = np.nonzero(labels == 4)[1].mean()
        r_eye = np.nonzero(labels == 5)[1].mean()
        assert l_eye > r_eye


def test_read_label_png_refuses_bad_values(tmp_path):
    Image.fromarray(np.array([[0, 25]], np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(ImageError, match=r"bad\.png: label values 25 are outside 0\.\.19"):
        read_label_png(tmp_path / "bad.png", "lip")


def test_class_map_is_argmax_over_the_classes_first_on_ties():
    torch.manual_seed(0)
    scores = torch.rand(2, 8, 5, 7)
    assert torch.equal(class_map(scores), scores.argmax(1))
    tied = torch.zeros(1, 8, 2, 2)
    tied[:, 3] = tied[:, 5] = 1.0
    assert (class_map(tied) == 3).all()
    assert (class_map(torch.zeros(1, 4, 3)) == 0).all()  # all equal: the first class
