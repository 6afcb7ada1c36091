"""Readers and writers of parsing ground truth: ADGAN semantic maps, label PNGs and the
CelebAMask-HQ attribute masks.

- ADGAN semantic maps: `.npy` integer label maps (256x176 for DeepFashion) in the 8 ADGAN
  classes, stored as `semantic_merge3/<GENDER>/<Category>/id_<ID>/<NN>_<k>_<view>.npy`
  (see `common.deepfashion.FashionName.semantic_path`).
- LIP / CIHP / ATR labels: single-channel PNGs of source ids, merged to 8 classes by the
  tables in `parsing.labels`.
- CelebAMask-HQ: `CelebA-HQ-img/<i>.jpg` and one binary PNG per present attribute,
  `CelebAMask-HQ-mask-anno/<i // 2000>/<i:05d>_<attribute>.png`; merged in the attribute
  order of the dataset's own `g_mask.py` (a later attribute overwrites an earlier one).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.image_io import ImageError, check_label_values, load_label_map, save_image
from parsing.labels import (
    CELEBAMASK_ATTRIBUTES,
    CELEBAMASK_CLASSES,
    merge_labels,
)

CELEBAMASK_IMAGE_DIR = "CelebA-HQ-img"
CELEBAMASK_MASK_DIR = "CelebAMask-HQ-mask-anno"
CELEBAMASK_FOLDER_SIZE = 2000


def read_label_png(
    path: str | os.PathLike[str], merge: str | None = None, *, num_classes: int | None = None
) -> np.ndarray:
    """A label PNG, optionally merged to ADGAN classes with a named table ('lip', ...)."""
    labels = load_label_map(path, num_classes=num_classes)
    if merge is None:
        return labels.astype(np.uint8)
    return merge_labels(labels, merge, name=os.fspath(path))


def celebamask_mask_path(root: str | os.PathLike[str], index: int, attribute: str) -> Path:
    if attribute not in CELEBAMASK_ATTRIBUTES:
        raise KeyError(
            f"unknown CelebAMask-HQ attribute {attribute!r}; valid: "
            f"{', '.join(CELEBAMASK_ATTRIBUTES)}"
        )
    return (
        Path(root)
        / CELEBAMASK_MASK_DIR
        / str(index // CELEBAMASK_FOLDER_SIZE)
        / f"{index:05d}_{attribute}.png"
    )


def celebamask_image_path(root: str | os.PathLike[str], index: int) -> Path:
    return Path(root) / CELEBAMASK_IMAGE_DIR / f"{index}.jpg"


def read_celebamask_masks(root: str | os.PathLike[str], index: int) -> np.ndarray:
    """Merge the per-attribute masks of face `index` into a 19-class label map (uint8).

    A face needs at least one attribute file; all must share one size.
    """
    merged: np.ndarray | None = None
    for class_id, attribute in enumerate(CELEBAMASK_ATTRIBUTES, start=1):
        path = celebamask_mask_path(root, index, attribute)
        if not path.is_file():
            continue
        mask = load_label_map(path)
        if merged is None:
            merged = np.zeros(mask.shape, dtype=np.uint8)
        elif mask.shape != merged.shape:
            raise ImageError(
                f"{path}: size {mask.shape} differs from the face's other masks {merged.shape}"
            )
        merged[mask > 0] = class_id
    if merged is None:
        raise ImageError(
            f"{Path(root) / CELEBAMASK_MASK_DIR}: no attribute mask for face "
            f"{index} (expected e.g. {celebamask_mask_path(root, index, 'skin')})"
        )
    return merged


def write_celebamask_masks(
    root: str | os.PathLike[str], index: int, labels: np.ndarray
) -> list[str]:
    """Write one 0/255 PNG per attribute present in a 19-class label map; returns them."""
    labels = np.asarray(labels)
    check_label_values(labels, len(CELEBAMASK_CLASSES), name=f"face {index} labels")
    written = []
    for class_id, attribute in enumerate(CELEBAMASK_ATTRIBUTES, start=1):
        mask = labels == class_id
        if mask.any():
            save_image(celebamask_mask_path(root, index, attribute), (mask * 255).astype(np.uint8))
            written.append(attribute)
    return written
