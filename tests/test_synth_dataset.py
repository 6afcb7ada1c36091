"""A written SynthFashion dataset, read back by the real-format readers."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from common.deepfashion import parse_flat
from common.image_io import load_image, read_semantic_map
from keypoints.formats import read_annotations, read_pairs
from keypoints.skeleton import OURS_TO_COCO17, visible
from parsing.densepose import coarse_parts, load_iuv
from parsing.densepose_coco import coarse_mask_to_image, read_densepose_coco
from parsing.formats import read_celebamask_masks
from parsing.labels import ADGAN_INDEX, CELEBAMASK_CLASSES
from synth.__main__ import main
from synth.dataset import generate

SPLITS = ("train", "test")


def test_layout_counts_and_disjoint_identities(synth_dataset):
    manifest = json.loads((synth_dataset / "manifest.json").read_text())
    assert manifest["counts"]["train"]["images"] == 12 and manifest["counts"]["test"]["images"] == 6
    items = {}
    for split in SPLITS:
        names = (synth_dataset / f"{split}.lst").read_text().split()
        on_disk = sorted(p.name for p in (synth_dataset / "fashion_resize" / split).iterdir())
        assert sorted(names) == on_disk
        items[split] = {parse_flat(n).item for n in names}
    assert not items["train"] & items["test"]
    assert len(json.loads((synth_dataset / "identities.json").read_text())) == 6


@pytest.mark.parametrize("split", SPLITS)
def test_annotations_pairs_and_semantic_maps(synth_dataset, split):
    ann = read_annotations(synth_dataset / f"fashion-resize-annotation-{split}.csv")
    names = (synth_dataset / f"{split}.lst").read_text().split()
    assert list(ann) == names
    pairs = read_pairs(synth_dataset / f"fashion-resize-pairs-{split}.csv")
    assert len(pairs) == len(names) // 3 * 6  # 3 poses: all 6 ordered pairs per person
    for a, b in pairs:
        assert a != b and parse_flat(a).identity == parse_flat(b).identity
    for name, kp in ann.items():
        image = load_image(synth_dataset / "fashion_resize" / split / name)
        assert image.shape == (128, 88, 3)
        labels = read_semantic_map(synth_dataset / parse_flat(name).semantic_path())
        assert labels.shape == (128, 88)
        present = visible(kp)
        cols, rows = kp[present, 0].astype(int), kp[present, 1].astype(int)
        assert (labels[rows, cols] > 0).all()  # every written keypoint lies on the person
        parts, _, _ = load_iuv(synth_dataset / "densepose" / split / f"{Path(name).stem}_iuv.png")
        assert not (parts > 0)[labels == 0].any()


@pytest.mark.parametrize("split", SPLITS)
def test_densepose_json_agrees_with_the_maps(synth_dataset, split):
    path = synth_dataset / "densepose" / f"densepose_synth_{split}.json"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    people = read_densepose_coco(path)
    ann = read_annotations(synth_dataset / f"fashion-resize-annotation-{split}.csv")
    assert len(people) == len(ann)
    for person in people:
        stem = Path(person.file_name).stem
        parts, u, v = load_iuv(synth_dataset / "densepose" / split / f"{stem}_iuv.png")
        labels = read_semantic_map(synth_dataset / parse_flat(person.file_name).semantic_path())
        rows, cols = np.rint(person.y).astype(int), np.rint(person.x).astype(int)
        np.testing.assert_allclose(person.y, rows, atol=1e-2)
        np.testing.assert_array_equal(parts[rows, cols], person.parts)
        assert np.abs(u[rows, cols] - person.u).max() <= 1 / 255 + 1e-4
        assert np.abs(v[rows, cols] - person.v).max() <= 1 / 255 + 1e-4
        mask = coco.annToMask(coco.anns[person.annotation_id]).astype(bool)
        np.testing.assert_array_equal(mask, labels > 0)
        pasted = coarse_mask_to_image(person.coarse_mask, person.bbox, *person.image_size)
        assert (pasted == coarse_parts(parts))[labels > 0].mean() > 0.95
        # COCO keypoints: the visible ones are the CSV's, occluded ones are still labelled
        coco_kp = person.keypoints
        ours = ann[person.file_name]
        for coco_index, ours_index in enumerate(OURS_TO_COCO17):
            x, y, flag = coco_kp[coco_index]
            if flag == 2:
                assert np.abs(ours[ours_index] - (x, y)).max() <= 0.5 + 1e-4
            else:
                assert (ours[ours_index] == -1).all()


def test_faces_read_back_as_celebamask(synth_dataset):
    faces = synth_dataset / "faces"
    indices = [int(i) for s in SPLITS for i in (faces / f"{s}.txt").read_text().split()]
    assert sorted(indices) == list(range(6))
    for j in indices:
        assert load_image(faces / "CelebA-HQ-img" / f"{j}.jpg").shape == (64, 64, 3)
        labels = read_celebamask_masks(faces, j)
        assert labels.shape == (64, 64)
        for name in ("skin", "neck", "cloth"):
            assert (labels == CELEBAMASK_CLASSES.index(name)).any()


def test_swap_ground_truth(synth_dataset):
    lines = (synth_dataset / "swap-pairs-test.csv").read_text().splitlines()
    assert lines[0] == "person,donor,component,pose,target" and len(lines) > 1
    test_dir = synth_dataset / "fashion_resize" / "test"
    for line in lines[1:]:
        person, donor, component, pose, target = line.split(",")
        assert parse_flat(person).identity == parse_flat(pose).identity
        assert parse_flat(donor).identity != parse_flat(person).identity
        assert (test_dir / person).is_file() and (test_dir / donor).is_file()
        swapped = synth_dataset / "swap" / "test" / target
        original = read_semantic_map(synth_dataset / parse_flat(pose).semantic_path())
        labels = read_semantic_map(swapped.with_suffix(".npy"))
        changed = {
            "upper": [ADGAN_INDEX["upper_clothes"]],
            "lower": [ADGAN_INDEX["pants"], ADGAN_INDEX["skirt"]],
        }[component]
        keep = ~np.isin(original, changed) & ~np.isin(labels, changed)
        np.testing.assert_array_equal(original[keep], labels[keep])
        a = load_image(test_dir / pose).astype(int)
        b = load_image(swapped).astype(int)
        background = keep & (original == 0)
        assert np.abs(a - b)[background].mean() < 3  # same scene, only JPEG noise differs


def test_cli_and_worker_count_do_not_change_the_data(tmp_path):
    config_args = [
        "--size",
        "96x64",
        "--set",
        "faces.size=32",
        "--set",
        "dataset.test_fraction=0.5",
        "--quiet",
    ]
    assert (
        main(
            [
                "--out",
                str(tmp_path / "one"),
                "--identities",
                "2",
                "--poses",
                "2",
                "--seed",
                "3",
                "--workers",
                "1",
                *config_args,
            ]
        )
        == 0
    )
    generate(
        tmp_path / "two",
        identities=2,
        poses=2,
        seed=3,
        workers=2,
        progress=False,
        config=_config_96x64(),
    )
    files_one = sorted(
        p.relative_to(tmp_path / "one")
        for p in (tmp_path / "one").rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    files_two = sorted(
        p.relative_to(tmp_path / "two")
        for p in (tmp_path / "two").rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert files_one == files_two and len(files_one) > 20
    for rel in files_one:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def _config_96x64():
    from common.config import load_config
    from synth.__main__ import DEFAULT_CONFIG
    from synth.config import SynthConfig

    return load_config(
        SynthConfig, DEFAULT_CONFIG, ["size=[96, 64]", "faces.size=32", "dataset.test_fraction=0.5"]
    )


def test_cli_refuses_bad_input(tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    assert main(["--out", str(tmp_path / "busy"), "--identities", "1", "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me"
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--size", "256by176"])
    assert main(["--out", str(tmp_path / "y"), "--set", "body.wings=2", "--quiet"]) == 2
    assert "wings" in capsys.readouterr().err
