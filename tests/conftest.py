"""Shared fixtures: the real-format samples in ../shared/data and a tiny SynthFashion set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.checkpoint import save_checkpoint
from common.config import load_config
from synth.config import SynthConfig
from synth.dataset import generate

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: the real samples are not part of the project."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-format samples not found at {SHARED_DATA}")
    return SHARED_DATA


def small_config(size: tuple[int, int] = (128, 88), **dataset) -> SynthConfig:
    overrides = [f"size=[{size[0]}, {size[1]}]", "faces.size=64"]
    overrides += [f"dataset.{k}={v}" for k, v in dataset.items()]
    return load_config(SynthConfig, ROOT / "configs" / "synth.yaml", overrides)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 people x 3 poses at 128x88 (the last 2 people are the test split)."""
    out = tmp_path_factory.mktemp("synthfashion")
    generate(
        out,
        identities=6,
        poses=3,
        seed=7,
        config=small_config(test_fraction=0.34),
        workers=1,
        progress=False,
        overwrite=True,
    )
    return out


def checkpoint(folder, name, module, task):
    config = {"task": task, "step": 1, "modules": {name: module.describe()}, "config": {}}
    return save_checkpoint(folder, {name: module}, config)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Checkpoints of tiny random networks: keypoints, parser, generator, DensePose."""
    import warnings

    import torch

    from adgan.model import Generator, GeneratorConfig
    from keypoints.model import PoseNet, PoseNetConfig
    from parsing.model import DenseNet, DenseNetConfig

    root = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = Generator(
            GeneratorConfig(
                image_size=(32, 24), channels=8, code_size=8, mlp_channels=16, res_blocks=2
            )
        )
    kp = PoseNet(PoseNetConfig(head_channels=16, input_size=(64, 44)))
    parser = DenseNet(DenseNetConfig(encoder="resnet18", input_size=(64, 44)))
    dp = DenseNet(DenseNetConfig(encoder="resnet18", heads=("densepose",), input_size=(64, 44)))
    return {
        "keypoints": checkpoint(root / "kp", "model", kp, "keypoints"),
        "parser": checkpoint(root / "parse", "model", parser, "parsing"),
        "generator": checkpoint(root / "gen", "generator", generator, "adgan"),
        "densepose": checkpoint(root / "dp", "model", dp, "densepose"),
        "generator_module": generator,
    }


def torchrun_train(args: list[str], tmp_path: Path, port: int):
    """`torchrun --nproc_per_node 2 train.py ARGS` on CPU (gloo), one thread per process."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        str(ROOT / "train.py"),
        "--runs",
        str(tmp_path),
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_bundle(parts, tmp_path_factory):
    """A bundle of the tiny random networks (fp16)."""
    from adgan.bundle import make_bundle

    out = tmp_path_factory.mktemp("bundle") / "b"
    return make_bundle(parts["keypoints"], parts["parser"], parts["generator"], out)


class StubKeypoints:
    """Stands in for the keypoint estimator, whose random weights find nobody: an upright
    person filling the middle of any photo, and nobody in a photo that is nearly black."""

    # x, y as fractions of the photo (nose, neck, shoulders, elbows, wrists, hips, knees,
    # ankles, eyes, ears in OpenPose-COCO order)
    SKELETON = (
        (0.50, 0.15),
        (0.50, 0.25),
        (0.38, 0.26),
        (0.34, 0.40),
        (0.32, 0.52),
        (0.62, 0.26),
        (0.66, 0.40),
        (0.68, 0.52),
        (0.42, 0.55),
        (0.42, 0.72),
        (0.42, 0.90),
        (0.58, 0.55),
        (0.58, 0.72),
        (0.58, 0.90),
        (0.48, 0.13),
        (0.52, 0.13),
        (0.46, 0.14),
        (0.54, 0.14),
    )

    def predict_many(self, images, boxes=None):
        import numpy as np

        from keypoints.predict import KeypointResult

        results = []
        for image in images:
            h, w = image.shape[:2]
            kp = np.array(self.SKELETON, np.float32) * [w, h]
            score = 0.9
            if image.mean() < 10:
                kp[:], score = -1.0, 0.02
            results.append(KeypointResult(kp, np.full(18, score, np.float32), score))
        return results
