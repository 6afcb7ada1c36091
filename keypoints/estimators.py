"""Keypoint estimators behind one interface, in a registry the bundle and the pipeline use.

Every estimator answers `predict_many(images, boxes)` with one `KeypointResult` per photo
(18 OpenPose-COCO keypoints in the photo's pixels, -1 missing, and a person score), and
says at which crop size (`input_size`, H x W) it reads a person best, so the pipeline's
closer look can give it enough pixels. A backend is registered by the module that
implements it:

- `posenet`: our trained network (`keypoints.predict`), from a training run or bundle;
- `openpose`: the CMU body model (`keypoints.openpose`), from
  `python -m keypoints.openpose import body_pose_model.pth --out DIR` or a bundle;
- `blazepose`: Google's BlazePose detector + landmark model (`keypoints.blazepose`), with
  built-in weights converted from the mediapipe wheel: no checkpoint folder needed.

A checkpoint or bundle stores the estimator's module under a class name; the registry maps
that name to its backend, so `estimator_from_checkpoint` loads whichever a folder holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from common.checkpoint import load_module
from common.geometry import Box
from keypoints.skeleton import KEYPOINT_NAMES


@dataclass
class KeypointResult:
    keypoints: np.ndarray  # [18, 2] in the photo's pixels, (-1, -1) where missing
    scores: np.ndarray  # [18] per-keypoint confidence
    person_score: float  # how sure the estimator is that a person is there: low = nobody
    # Boxes (x, y, w, h, photo pixels) of the other people the estimator saw in the photo
    # (or box), not the one these keypoints are of; empty where it saw one, or cannot tell.
    others: list[Box] = field(default_factory=list, kw_only=True)

    def to_json(self) -> dict:
        return {
            "names": list(KEYPOINT_NAMES),
            "keypoints": [
                [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                for (x, y), s in zip(self.keypoints, self.scores, strict=True)
            ],
            "person_score": round(self.person_score, 4),
        }


class KeypointEstimator(Protocol):
    """May also offer `finder()`: a cheaper estimator for only finding the person in a whole
    photo (BlazePose without its face model), which the pipeline's first look uses; and
    `searcher()`: the finder for the windows the pipeline's search picks itself, which
    answers only where it detects a person (BlazePose without its box fallback: a box
    nobody vouched for is no reason to look for a person in it). One that sets
    `accepts_pose_only` takes `predict_many(..., pose_only=[bool per photo])` and leaves out
    for those photos what only a parser reads (BlazePose: the person mask and the face
    outline), giving the same keypoints."""

    input_size: tuple[int, int]  # (H, W) of the crop it reads a person best at

    def predict_many(
        self, images: list[np.ndarray], boxes: list[Box | None] | None = None
    ) -> list[KeypointResult]: ...


@dataclass(frozen=True)
class Backend:
    """How a stored estimator comes back: `build` makes its module from the stored config
    (strict), `estimator` wraps the loaded module for inference on a device."""

    name: str  # what a user and the README call it
    module_class: str  # the class name stored in config.json
    build: Callable[[dict[str, Any]], nn.Module]
    estimator: Callable[[nn.Module, torch.device | str], KeypointEstimator]
    # The module with weights that ship with the code (a bundle can be made from the
    # backend's name alone), and what they are; None: weights come from a checkpoint.
    builtin: Callable[[], nn.Module] | None = None
    builtin_source: str = ""


BACKENDS: dict[str, Backend] = {}  # by module class


def register_backend(backend: Backend) -> Backend:
    """Add a backend; the same backend again (a module run as `python -m`, imported twice)
    replaces itself, another one for the same module class is an error."""
    known = BACKENDS.get(backend.module_class)
    if known is not None and known.name != backend.name:
        raise ValueError(
            f"{backend.module_class} is already the {known.name!r} keypoint backend; "
            f"cannot register {backend.name!r} for it"
        )
    BACKENDS[backend.module_class] = backend
    return backend


def backends() -> dict[str, Backend]:
    """Every registered backend, by module class (the built-in ones imported first)."""
    import keypoints.blazepose
    import keypoints.openpose
    import keypoints.predict  # noqa: F401

    return BACKENDS


def builtin_backend(name: str) -> Backend | None:
    """The backend called `name` if it has built-in weights, else None."""
    return next((b for b in backends().values() if b.name == name and b.builtin), None)


def builtin_names() -> list[str]:
    return sorted(b.name for b in backends().values() if b.builtin)


def load_estimator_module(path: str | Path, name: str = "model") -> tuple[Backend, nn.Module]:
    """The estimator module stored as `name` in a run, checkpoint or bundle folder, with its
    backend; a folder holding anything else is a CheckpointError naming it."""
    known = backends()
    module = load_module(path, name, {k: b.build for k, b in known.items()}, what="keypoint")
    return known[type(module).__name__], module


def estimator_from_checkpoint(
    path: str | Path, device: torch.device | str = "cpu", *, name: str = "model"
) -> KeypointEstimator:
    backend, module = load_estimator_module(path, name)
    return backend.estimator(module, device)
