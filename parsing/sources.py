"""Where parsing and DensePose training read people from: data sources in a registry.

A config names its source and gives that source's own keys, nothing else:

    data:
      source: {name: deepfashion, root: data/synthfashion-128}
      source: {name: label_png, train_images: ..., train_labels: ..., val_images: ..., ...}
      source: {name: celebamask, root: data/CelebAMask-HQ}
      source: {name: densepose_coco, train_json: ..., train_images: ..., val_json: ..., ...}

A new source is one dataclass with a `name` field and the members of `DenseSource`, added
to `DENSE_SOURCES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from common.config import check_paths, from_registry
from parsing.data import (
    DenseItem,
    celebamask_items,
    celebamask_split,
    deepfashion_items,
    densepose_coco_items,
    label_png_items,
)


class DenseSource(Protocol):
    name: str
    has_parsing: ClassVar[bool]  # labels every pixel with a class
    mirrors_densepose: ClassVar[bool]  # its charts can be mirrored (we know their symmetry)

    def items(self, train: bool, aspect: float) -> list[DenseItem]:
        """The training (or validation) people; boxes grown to width/height `aspect`."""
        ...

    def check(self) -> None:
        """Raise ValueError naming the key whose file or folder is missing."""
        ...


@dataclass
class DeepFashionSource:
    """A DeepFashion/ADGAN-layout folder: photos, 8-class maps and (SynthFashion) IUV maps."""

    name: Literal["deepfashion"] = "deepfashion"
    root: str = "data/synthfashion"
    train_split: str = "train"
    val_split: str = "test"
    has_parsing: ClassVar[bool] = True
    mirrors_densepose: ClassVar[bool] = True

    def items(self, train: bool, aspect: float) -> list[DenseItem]:
        return deepfashion_items(self.root, self.train_split if train else self.val_split)

    def check(self) -> None:
        check_paths(self, ("root",), where="data.source")


@dataclass
class LabelPngSource:
    """Photos and label PNGs paired by file stem (LIP, CIHP, ATR; `data.merge` maps ids)."""

    name: Literal["label_png"] = "label_png"
    train_images: str = ""
    train_labels: str = ""
    val_images: str = ""
    val_labels: str = ""
    has_parsing: ClassVar[bool] = True
    mirrors_densepose: ClassVar[bool] = True

    def items(self, train: bool, aspect: float) -> list[DenseItem]:
        if train:
            return label_png_items(self.train_images, self.train_labels)
        return label_png_items(self.val_images, self.val_labels)

    def check(self) -> None:
        check_paths(
            self,
            (
                "train_images",
                "train_labels",
                "val_images",
                "val_labels",
            ),
            where="data.source",
        )


@dataclass
class CelebAMaskSource:
    """CelebAMask-HQ faces; `<root>/<split>.txt` lists a split's indices (else every face)."""

    name: Literal["celebamask"] = "celebamask"
    root: str = "data/synthfaces/faces"
    train_split: str = "train"
    val_split: str = "test"
    has_parsing: ClassVar[bool] = True
    mirrors_densepose: ClassVar[bool] = True

    def items(self, train: bool, aspect: float) -> list[DenseItem]:
        split = self.train_split if train else self.val_split
        return celebamask_items(self.root, celebamask_split(self.root, split))

    def check(self) -> None:
        check_paths(self, ("root",), where="data.source")


@dataclass
class DensePoseCocoSource:
    """DensePose-COCO persons (points and coarse masks; no parsing labels). Never mirrored:
    its charts' symmetry tables are not available here."""

    name: Literal["densepose_coco"] = "densepose_coco"
    train_json: str = ""
    train_images: str = ""
    train_index: str = ""  # person-crop index of `python -m prepare densepose` (optional)
    val_json: str = ""
    val_images: str = ""
    val_index: str = ""
    box_expand: float = 1.15
    has_parsing: ClassVar[bool] = False
    mirrors_densepose: ClassVar[bool] = False

    def items(self, train: bool, aspect: float) -> list[DenseItem]:
        json, images, index = (
            (self.train_json, self.train_images, self.train_index)
            if train
            else (self.val_json, self.val_images, self.val_index)
        )
        return densepose_coco_items(
            json, images, aspect=aspect, box_expand=self.box_expand, index=index or None
        )

    def check(self) -> None:
        check_paths(
            self,
            (
                "train_json",
                "train_images",
                "val_json",
                "val_images",
            ),
            where="data.source",
        )


DENSE_SOURCES: dict[str, type] = {
    "deepfashion": DeepFashionSource,
    "label_png": LabelPngSource,
    "celebamask": CelebAMaskSource,
    "densepose_coco": DensePoseCocoSource,
}


def dense_source(data: dict[str, Any] | Any) -> DenseSource:
    """The source a config's `data.source` mapping names (strict, as every config)."""
    return from_registry(
        DENSE_SOURCES, data, key="name", where="data.source", default="deepfashion"
    )
