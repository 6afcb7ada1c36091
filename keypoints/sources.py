"""Where keypoint training and evaluation read people from: data sources in a registry.

A config names its source and gives that source's own keys, nothing else:

    data:
      source: {name: deepfashion, root: data/synthfashion-128}
      source: {name: coco, train_json: ..., train_images: ..., val_json: ..., val_images: ...}

A new source is one dataclass with a `name` field and the three methods of `KeypointSource`,
added to `KEYPOINT_SOURCES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from common.config import check_paths, from_registry
from keypoints.data import Item, coco_items, deepfashion_items


class KeypointSource(Protocol):
    name: str

    def items(self, train: bool, aspect: float) -> list[Item]:
        """The training (or validation) people; boxes grown to width/height `aspect`."""
        ...

    def check(self) -> None:
        """Raise ValueError naming the key whose file or folder is missing."""
        ...

    def oks_annotations(self) -> str:
        """A COCO keypoints JSON of the validation people for OKS AP, or "" for none."""
        ...


@dataclass
class DeepFashionSource:
    """A DeepFashion/ADGAN-layout folder: the real one, prepared, or SynthFashion."""

    name: Literal["deepfashion"] = "deepfashion"
    root: str = "data/synthfashion"
    train_split: str = "train"
    val_split: str = "test"

    def items(self, train: bool, aspect: float) -> list[Item]:
        return deepfashion_items(self.root, self.train_split if train else self.val_split)

    def check(self) -> None:
        for split in (self.train_split, self.val_split):
            csv = Path(self.root) / f"fashion-resize-annotation-{split}.csv"
            if not csv.is_file():
                raise ValueError(
                    f"data.source.root: {csv} not found (make one with "
                    f"`python -m synth --out {self.root} ...`)"
                )

    def oks_annotations(self) -> str:
        return ""


@dataclass
class CocoSource:
    """COCO keypoints JSON files and their image folders (COCO-17 converted to our 18)."""

    name: Literal["coco"] = "coco"
    train_json: str = ""
    train_images: str = ""
    val_json: str = ""
    val_images: str = ""

    def items(self, train: bool, aspect: float) -> list[Item]:
        if train:
            return coco_items(self.train_json, self.train_images, aspect=aspect)
        return coco_items(self.val_json, self.val_images, aspect=aspect)

    def check(self) -> None:
        keys = ("train_json", "train_images", "val_json", "val_images")
        check_paths(self, keys, where="data.source")

    def oks_annotations(self) -> str:
        return self.val_json


KEYPOINT_SOURCES: dict[str, type] = {"deepfashion": DeepFashionSource, "coco": CocoSource}


def keypoint_source(data: dict[str, Any] | Any) -> KeypointSource:
    """The source a config's `data.source` mapping names (strict, as every config)."""
    return from_registry(
        KEYPOINT_SOURCES, data, key="name", where="data.source", default="deepfashion"
    )
