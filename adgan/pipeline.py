"""From photos to a generated person: what `infer.py` (and later the batch cards and the web
page) call.

    pipe = Pipeline.from_bundle("bundles/demo")
    source = pipe.person(load_image("model.jpg"), "model.jpg")    # find, crop, keypoints, parse
    pose = pipe.person(load_image("shopper.jpg"), "shopper.jpg")
    result = pipe.generate(source, pose, swaps={"upper": pipe.person(garment, "g.jpg")})

A person is found by the keypoint estimator on the whole photo (letterboxed); the crop is
the box around the visible keypoints, grown (head room above, a margin all round) to the
generator's aspect; keypoints and parsing are then taken again on that crop, the frame the
generator works in. A photo where no person is found raises NoPersonError, naming the photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adgan.bundle import load_bundle
from adgan.transfer import AttributeTransfer
from common.geometry import Box, box_to_input, expand_box, warp
from keypoints.draw import draw_pose
from keypoints.predict import LETTERBOX_FILL, KeypointPredictor
from keypoints.skeleton import visible
from parsing.labels import colorize
from parsing.predict import DensePredictor

MIN_KEYPOINTS = 4  # fewer visible keypoints than this is not a person we can re-pose


class NoPersonError(ValueError):
    """A photo in which the keypoint estimator finds no person."""


@dataclass
class PersonView:
    """A person as the generator sees them: the crop, its keypoints and its parsing."""

    name: str
    crop: np.ndarray  # uint8 RGB at the generator's size
    keypoints: np.ndarray  # [18, 2] in crop pixels, -1 missing
    labels: np.ndarray  # uint8 [H, W], the 8 ADGAN classes
    box: Box  # where the crop lies in the photo
    person_score: float


def person_box(keypoints: np.ndarray, aspect: float, margin: float = 1.15) -> Box:
    """Box around the visible keypoints with head room (keypoints stop at the eyes and
    ears) and feet room, grown by `margin` and to width/height = `aspect`."""
    kp = keypoints[visible(keypoints)]
    x0, y0 = kp.min(0)
    x1, y1 = kp.max(0)
    h = max(y1 - y0, 1.0)
    y0, y1 = y0 - 0.12 * h, y1 + 0.04 * h
    return expand_box((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), margin, aspect)


class Pipeline:
    def __init__(
        self,
        keypoints: KeypointPredictor,
        parser: DensePredictor,
        transfer: AttributeTransfer,
        *,
        margin: float = 1.15,
    ) -> None:
        self.keypoints, self.parser, self.transfer = keypoints, parser, transfer
        self.size = transfer.size
        self.margin = margin

    @classmethod
    def from_bundle(cls, path: str | Path, device: str | torch.device = "cpu") -> Pipeline:
        bundle = load_bundle(path, device)
        return cls(
            KeypointPredictor(bundle.keypoints, device=device),
            DensePredictor([bundle.parser], device=device),
            AttributeTransfer(bundle.generator, device),
        )

    def person(self, photo: np.ndarray, name: str = "photo") -> PersonView:
        found = self.keypoints.predict(photo)
        if visible(found.keypoints).sum() < MIN_KEYPOINTS:
            raise NoPersonError(
                f"{name}: no person found (person score {found.person_score:.2f}); use a "
                "photo that shows one person, head to at least the hips"
            )
        h, w = self.size
        box = person_box(found.keypoints, w / h, self.margin)
        crop = warp(photo, box_to_input(box, self.size), self.size, LETTERBOX_FILL)
        again = self.keypoints.predict(crop)
        labels = self.parser.predict(crop).labels
        return PersonView(name, crop, again.keypoints, labels, box, again.person_score)

    def generate(
        self,
        source: PersonView,
        pose: PersonView,
        swaps: dict[str, PersonView] | None = None,
    ) -> np.ndarray:
        """`source`'s person in `pose`'s pose, with each named component (upper, lower,
        hair, ... see `adgan.transfer`) taken from another person; uint8 RGB."""
        codes = self.transfer.encode(source.crop, source.labels)
        donors = {c: self.transfer.encode(p.crop, p.labels) for c, p in (swaps or {}).items()}
        return self.transfer.generate(pose.keypoints, codes, donors)

    def panel(self, source: PersonView, pose: PersonView, result: np.ndarray) -> np.ndarray:
        """source | target pose | source parsing | result, for a person to look at."""
        h, w = self.size
        return np.concatenate(
            [source.crop, draw_pose(pose.keypoints, h, w), colorize(source.labels), result],
            axis=1,
        )
