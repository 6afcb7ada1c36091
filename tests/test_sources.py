"""Data sources of the keypoint and parsing tasks: chosen by name, strict, each reading its
own layout."""

import pytest

import train
from common.config import ConfigError
from keypoints.sources import CocoSource, DeepFashionSource, keypoint_source
from parsing.sources import DensePoseCocoSource, dense_source
from tests.conftest import ROOT


def test_a_source_is_chosen_by_name_and_its_keys_are_strict():
    assert isinstance(keypoint_source({"name": "coco"}), CocoSource)
    assert keypoint_source({}).name == "deepfashion"  # the default
    with pytest.raises(ConfigError, match=r"data.source.name: unknown 'lip'; valid: coco"):
        keypoint_source({"name": "lip"})
    with pytest.raises(ConfigError, match=r"unknown key.*'coco_json'.*valid keys"):
        keypoint_source({"name": "coco", "coco_json": "x.json"})  # the old flat key
    with pytest.raises(ConfigError, match="valid: celebamask, deepfashion, densepose_coco"):
        dense_source({"name": "coco"})


def test_every_shipped_config_names_a_known_source():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name.split("-")[0] in ("keypoints", "parsing", "densepose"):
            _, config = train.load_task(path, [])
            assert config.data.source.name in ("deepfashion", "coco", "label_png", "celebamask",
                                               "densepose_coco"), path  # fmt: skip


def test_deepfashion_source_reads_its_splits(synth_dataset):
    source = DeepFashionSource(root=str(synth_dataset))
    source.check()
    train_items, val_items = source.items(True, 0.75), source.items(False, 0.75)
    assert train_items and val_items
    assert {i.name for i in train_items}.isdisjoint(i.name for i in val_items)
    with pytest.raises(ValueError, match=r"data.source.root: .*not found"):
        DeepFashionSource(root=str(synth_dataset / "nowhere")).check()


@pytest.mark.real_data
def test_coco_source_reads_the_real_sample(shared_data):
    folder = shared_data / "real-formats" / "coco-keypoints"
    json, images = str(folder / "test_coco.json"), str(folder)
    source = CocoSource(train_json=json, train_images=images, val_json=json, val_images=images)
    source.check()
    items = source.items(False, 176 / 256)
    assert len(items) == 12 and source.oks_annotations() == json  # people with keypoints
    box = items[0].box
    assert box is not None and box[2] / box[3] == pytest.approx(176 / 256)


def test_densepose_coco_has_no_parsing_and_is_not_mirrored(tmp_path):
    source = DensePoseCocoSource(train_json=str(tmp_path / "x.json"))
    assert not source.has_parsing and not source.mirrors_densepose
    with pytest.raises(ValueError, match=r"data.source.train_json: .*not found"):
        source.check()
    with pytest.raises(ValueError, match="no parsing labels"):
        task, _ = train.load_task(
            ROOT / "configs" / "densepose-coco.yaml", ["model.heads=[parsing, densepose]"]
        )
        task.check()
