"""Stand-ins for running the pipeline and the web service without trained weights.

Random keypoint weights find nobody in any photo, so nothing would ever reach the
generator: the tests and the load bench put `StandingPerson` in the pipeline's place of
the keypoint estimator, and `random_bundle` gives networks of the right shapes in seconds.
Nothing here is used when a real bundle is served.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import save_checkpoint
from keypoints.predict import KeypointResult
from studio.bundle import make_bundle

# One person standing, facing the camera, as fractions of the photo's width and height,
# in OpenPose-COCO order (nose, neck, r-shoulder, ..., l-ear).
STANDING = np.array(
    [
        [0.50, 0.16],
        [0.50, 0.27],
        [0.34, 0.28],
        [0.30, 0.43],
        [0.27, 0.57],
        [0.66, 0.28],
        [0.70, 0.43],
        [0.73, 0.57],
        [0.41, 0.59],
        [0.40, 0.76],
        [0.40, 0.94],
        [0.59, 0.59],
        [0.60, 0.76],
        [0.60, 0.94],
        [0.47, 0.14],
        [0.53, 0.14],
        [0.43, 0.15],
        [0.57, 0.15],
    ],
    dtype=np.float32,
)


class StandingPerson:
    """A keypoint predictor that sees `STANDING` in every photo, scaled to its size, except
    in a nearly black photo (mean below 10), where it sees nobody: so that "no person
    found" can be exercised too."""

    def predict_many(self, images: list[np.ndarray], boxes: object = None) -> list[KeypointResult]:
        results = []
        for image in images:
            h, w = image.shape[:2]
            kp, score = STANDING * np.array([w, h], np.float32), 0.9
            if image.mean() < 10:
                kp[:], score = -1.0, 0.02
            results.append(KeypointResult(kp, np.full(len(kp), score, np.float32), score))
        return results


class StandingPersonAfter:
    """Runs `estimator` (so a benchmark pays for the real network) and answers what
    `StandingPerson` sees: random weights find nobody, which would stop the pipeline."""

    def __init__(self, estimator: object) -> None:
        self.estimator = estimator

    def predict_many(self, images: list[np.ndarray], boxes: object = None) -> list[KeypointResult]:
        self.estimator.predict_many(images, boxes)  # type: ignore[attr-defined]
        return StandingPerson().predict_many(images, boxes)


def save_part(folder: Path, name: str, module: torch.nn.Module, task: str) -> Path:
    """A checkpoint folder holding one network, as a training run would leave it."""
    config = {"task": task, "step": 1, "modules": {name: module.describe()}, "config": {}}
    return save_checkpoint(folder, {name: module}, config)


def tiny_networks(
    image_size: tuple[int, int] = (32, 24),
    input_size: tuple[int, int] = (64, 44),
    seed: int = 0,
) -> dict[str, torch.nn.Module]:
    """Small random networks of every kind a bundle holds (and a DensePose one): generator
    at `image_size`, keypoints and dense networks at `input_size`."""
    from adgan.model import Generator, GeneratorConfig
    from keypoints.model import PoseNet, PoseNetConfig
    from parsing.model import ParserNet, ParserNetConfig

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no VGG-19 weights": random is the point here
        generator = Generator(
            GeneratorConfig(
                image_size=image_size, channels=8, code_size=8, mlp_channels=16, res_blocks=2
            )
        )
    return {
        "keypoints": PoseNet(PoseNetConfig(head_channels=16, input_size=input_size)),
        "parser": ParserNet(ParserNetConfig(encoder="resnet18", input_size=input_size)),
        "generator": generator,
        "densepose": ParserNet(
            ParserNetConfig(encoder="resnet18", heads=("densepose",), input_size=input_size)
        ),
    }


# Each network's module name in its checkpoint and the training task that writes it.
PART_TASKS = {
    "keypoints": ("model", "keypoints"),
    "parser": ("model", "parsing"),
    "generator": ("generator", "adgan"),
    "densepose": ("model", "densepose"),
}


def save_parts(networks: dict[str, torch.nn.Module], root: Path) -> dict[str, Path]:
    """Each network of `tiny_networks` as the checkpoint folder its training run leaves."""
    saved = {}
    for name, net in networks.items():
        module, task = PART_TASKS[name]
        saved[name] = save_part(root / name, module, net, task)
    return saved


def bundle_of(networks: dict[str, torch.nn.Module], out: str | Path, notes: str) -> Path:
    """A bundle at `out` of the keypoint, parser and generator networks given."""
    with tempfile.TemporaryDirectory() as tmp:
        parts = save_parts(networks, Path(tmp))
        return make_bundle(
            parts["keypoints"], parts["parser"], parts["generator"], out, notes=notes
        )


def random_bundle(
    out: str | Path,
    *,
    image_size: tuple[int, int] = (32, 24),
    input_size: tuple[int, int] = (64, 44),
    seed: int = 0,
) -> Path:
    """A bundle of small random networks, the shapes a real bundle has; built in a few
    seconds on a CPU."""
    networks = tiny_networks(image_size, input_size, seed)
    networks.pop("densepose")
    return bundle_of(
        networks, out, "random weights (studio.stub.random_bundle): for tests and benchmarks only"
    )
