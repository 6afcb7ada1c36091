"""The seams between the packages: what the product imports, a generator architecture added by
one registered class, a keypoint backend chosen by the bundle, one strict loader."""

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal

import pytest
import torch
from torch import nn

import infer
import keypoints.openpose as openpose
import train
from adgan.generators import (
    ARCHITECTURES,
    PoseGenerator,
    build_generator,
    generator_from_checkpoint,
    register,
)
from common.checkpoint import CheckpointError, save_checkpoint
from common.config import ConfigError
from common.image_io import load_image
from keypoints.estimators import estimator_from_checkpoint
from studio.bundle import load_bundle, make_bundle
from studio.pipeline import Pipeline
from tests.conftest import ROOT
from tests.test_openpose import public_state_dict, standing_people

# Modules the product must never load: the training loop, tasks, losses, data sources,
# evaluation, dataset preparation, and the libraries only they need.
TRAINING_ONLY = (
    "common.training",
    "common.augment",
    "keypoints.task",
    "keypoints.data",
    "keypoints.evaluate",
    "parsing.task",
    "parsing.data",
    "parsing.losses",
    "parsing.evaluate",
    "adgan.task",
    "adgan.data",
    "adgan.losses",
    "adgan.evaluate",
    "adgan.protocol",
    "adgan.discriminator",
    "prepare",
    "synth",
    "pycocotools",
)
PROJECT = ("common", "keypoints", "parsing", "adgan", "studio", "prepare", "synth")


@pytest.mark.parametrize("entry", ["studio.serve", "studio.pipeline", "studio.cards", "infer"])
def test_the_product_imports_no_training_code(entry):
    code = f"import sys, json, {entry}\nprint(json.dumps(sorted(m for m in sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    bad = [m for m in loaded if any(m == t or m.startswith(t + ".") for t in TRAINING_ONLY)]
    assert bad == [], f"{entry} imports {bad}"
    if entry == "studio.serve":
        ours = [m for m in loaded if m.split(".")[0] in PROJECT]
        # 30, then studio.limits, parsing.guides, parsing.skin, common.colour,
        # studio.framing, parsing.neighbours, studio.backdrop, common.folding
        assert len(ours) <= 38, ours


@dataclass
class PaintConfig:
    """A tiny architecture for the test: each component's mean colour, painted where a 1x1
    convolution of the target pose maps puts that component."""

    arch: Literal["test-paint"] = "test-paint"
    image_size: tuple[int, int] = (32, 24)
    pose_sigma: float = 6.0
    components: int = 8


class Paint(PoseGenerator):
    Config = PaintConfig

    def __init__(self, config: PaintConfig) -> None:
        super().__init__()
        self.config = config
        self.layout = nn.Conv2d(18, config.components, 1)

    def encode(self, image, parsing, keypoints):
        area = parsing.sum((2, 3)).clamp_min(1.0)  # [B, K]
        colours = torch.einsum("bchw,bkhw->bkc", image, parsing) / area[..., None]
        return {"colours": colours}  # [B, K, 3]

    def decode(self, appearance, keypoints):
        weights = self.layout(self.pose_input(keypoints)).softmax(1)  # [B, K, H, W]
        return torch.einsum("bkhw,bkc->bchw", weights, appearance["colours"]).tanh()


if "test-paint" not in ARCHITECTURES:
    register(Paint)


@pytest.mark.slow
def test_a_new_architecture_is_one_registered_class_and_a_yaml_key(synth_dataset, parts, tmp_path):
    with pytest.raises(ConfigError, match="valid: adgan"):
        build_generator({"arch": "no-such-arch"})
    with pytest.raises(ConfigError, match="unknown"):
        build_generator({"arch": "test-paint", "channels": 8})  # not a key of its config
    config = ROOT / "configs" / "adgan-synth-cpu.yaml"
    args = [
        "--config",
        str(config),
        "--runs",
        str(tmp_path),
        "model={arch: test-paint, image_size: [32, 24]}",
        f"data.root={synth_dataset}",
        "train.steps=2",
        "train.batch_size=2",
        "train.num_workers=0",
        "train.eval_every=0",
        "train.sample_every=0",
        "eval.max_pairs=2",
        "eval.max_swaps=2",
    ]
    assert train.main(args) == 0
    run = next(p for p in (tmp_path / "adgan").iterdir() if p.is_dir())
    generator = generator_from_checkpoint(run)
    assert isinstance(generator, Paint)
    bundle = make_bundle(parts["keypoints"], parts["parser"], run, tmp_path / "bundle")
    info = json.loads((bundle / "config.json").read_text())
    assert info["modules"]["generator"]["config"]["arch"] == "test-paint"
    assert isinstance(load_bundle(bundle).generator, Paint)


def test_loading_names_the_folder_and_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint or run folder"):
        generator_from_checkpoint(tmp_path / "nowhere")
    folder = save_checkpoint(
        tmp_path / "odd",
        {"generator": nn.Linear(2, 2)},
        {"modules": {"generator": {"class": "Generator", "config": {"arch": "adgan", "x": 1}}}},
    )
    with pytest.raises(CheckpointError, match=r"config.json: the generator config: .*'x'"):
        generator_from_checkpoint(folder)


@pytest.mark.slow
def test_an_openpose_bundle_runs_through_infer(parts, synth_dataset, tmp_path, monkeypatch):
    torch.save(public_state_dict(), tmp_path / "body_pose_model.pth")
    weights = str(tmp_path / "body_pose_model.pth")
    assert openpose.main(["import", weights, "--out", str(tmp_path / "op")]) == 0
    bundle = make_bundle(tmp_path / "op", parts["parser"], parts["generator"], tmp_path / "b")
    assert load_bundle(bundle).keypoint_backend.name == "openpose"
    estimator = estimator_from_checkpoint(bundle, name="keypoints")
    assert isinstance(estimator, openpose.OpenPoseEstimator)

    # Random weights find nobody; the network still runs on every photo, and the grouping
    # step is told where a standing person is, so the whole card gets made.
    calls = []
    real_maps = openpose.OpenPoseEstimator.maps

    def maps(self, image):
        calls.append(image.shape)
        return real_maps(self, image)

    monkeypatch.setattr(openpose.OpenPoseEstimator, "maps", maps)
    monkeypatch.setattr(openpose, "group_people", standing_people)
    photo = next((synth_dataset / "fashion_resize" / "test").iterdir())
    out = tmp_path / "card.png"
    argv = ["--source", str(photo), "--pose", str(photo), "--bundle", str(bundle)]
    assert infer.main([*argv, "--out", str(out)]) == 0
    assert calls, "the OpenPose network never ran"
    assert load_image(out).shape[:2] == tuple(Pipeline.from_bundle(bundle).size)
