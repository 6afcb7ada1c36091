"""Keypoint training data: items from DeepFashion-layout folders or COCO keypoints JSON, and
the top-down dataset with its augmentation.

Every random choice of an item's augmentation comes from the item's own seed (the
SampleKey the shared loop hands out), so an epoch looks the same whatever the number of
loader workers, and a resumed run continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from common.augment import AugmentConfig, draw, paste_bystander, photometric, random_affine
from common.deepfashion import parse_flat
from common.geometry import (
    Box,
    apply_to_points,
    box_to_input,
    expand_box,
    warp,
)
from common.image_io import load_image, read_semantic_map
from keypoints.formats import read_annotations, read_coco_keypoints
from keypoints.heatmaps import encode
from keypoints.skeleton import NUM_KEYPOINTS, swap_sides, visible

UPPER_BODY = (0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17)
LOWER_BODY = (8, 9, 10, 11, 12, 13)


@dataclass
class KeypointAugmentConfig(AugmentConfig):
    """The shared augmentation plus half-body crops (for close-up shots)."""

    half_body_probability: float = 0.15  # crop to the upper or the lower body


@dataclass
class Item:
    """One person: where the image is, the 18 keypoints in its pixels, the person box."""

    path: Path
    keypoints: np.ndarray  # [18, 2]
    box: Box | None  # None: the whole image (DeepFashion crops)
    name: str
    image_id: int | None = None  # COCO image id, for OKS evaluation
    mask: Path | None = None  # its 8-class map, if any: the person's pixels (bystanders)


def deepfashion_items(root: str | Path, split: str) -> list[Item]:
    """Items of a DeepFashion/ADGAN-layout folder (the real one or SynthFashion)."""
    root = Path(root)
    csv = root / f"fashion-resize-annotation-{split}.csv"
    folder = root / "fashion_resize" / split
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no such image folder (expected the "
            f"DeepFashion layout: fashion_resize/{split}/*.jpg)"
        )
    rows = read_annotations(csv)
    items = []
    for name, kp in rows.items():
        try:
            mask = root / parse_flat(name).semantic_path()
        except ValueError:  # not a DeepFashion name: no semantic map to look for
            mask = None
        items.append(
            Item(folder / name, kp, None, name, mask=mask if mask and mask.is_file() else None)
        )
    return items


def person_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 [H, W], 1 on the person: a semantic map's non-background, at the photo's size."""
    mask = (read_semantic_map(path) > 0).astype(np.uint8)
    if mask.shape != tuple(shape[:2]):
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return mask


def coco_items(
    json_path: str | Path,
    image_root: str | Path,
    *,
    min_keypoints: int = 1,
    box_expand: float = 1.25,
    aspect: float = 176 / 256,
) -> list[Item]:
    """Person crops of a COCO keypoints file (COCO-17 converted to our 18 points)."""
    people = read_coco_keypoints(json_path)
    items = []
    for p in people:
        if int(visible(p.keypoints).sum()) < min_keypoints or p.bbox[2] < 2 or p.bbox[3] < 2:
            continue
        box = expand_box(p.bbox, box_expand, aspect)
        items.append(
            Item(
                Path(image_root) / p.file_name,
                p.keypoints,
                box,
                f"{p.file_name}#{p.annotation_id}",
                p.image_id,
            )
        )
    return items


class KeypointDataset(Dataset):
    """Top-down samples: the person box warped into the input, heatmap targets, weights.

    `missing_weight` is the loss weight of keypoints that are not annotated (occluded,
    outside the frame): 1 teaches the network to answer "absent" with a flat heatmap,
    0 leaves those heatmaps free.
    """

    def __init__(
        self,
        items: list[Item],
        input_size: tuple[int, int],
        *,
        heatmap_stride: int = 4,
        sigma: float = 2.0,
        augment: KeypointAugmentConfig | None = None,
        missing_weight: float = 1.0,
        negatives: list[Path] | None = None,
        negative_probability: float = 0.0,
    ) -> None:
        if not items:
            raise ValueError("no training items: is the dataset folder empty?")
        if negative_probability > 0 and not negatives:
            raise ValueError("negative_probability > 0 needs person-free images (negatives)")
        self.items = items
        self.negatives, self.negative_probability = negatives or [], negative_probability
        self.input_size = tuple(input_size)
        self.heatmap_size = (input_size[0] // heatmap_stride, input_size[1] // heatmap_stride)
        self.sigma, self.augment, self.missing_weight = sigma, augment, missing_weight

    def __len__(self) -> int:
        return len(self.items)

    def matrix(
        self,
        item: Item,
        image_shape: tuple[int, ...],
        rng: np.random.Generator | None,
    ) -> tuple[np.ndarray, bool]:
        """Original pixels -> input pixels, and whether the sample is mirrored."""
        height, width = image_shape[:2]
        box = item.box or (0.0, 0.0, float(width), float(height))
        cfg = self.augment
        if cfg is None or rng is None:
            return box_to_input(box, self.input_size), False
        if rng.random() < cfg.half_body_probability:
            part = UPPER_BODY if rng.random() < 0.5 else LOWER_BODY
            pts = item.keypoints[list(part)]
            pts = pts[visible(pts)]
            if len(pts) >= 3:
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                aspect = self.input_size[1] / self.input_size[0]
                box = expand_box((lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]), 1.5, aspect)
        return random_affine(rng, self.input_size, cfg, box_to_input(box, self.input_size))

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, seed = (key, None) if isinstance(key, (int, np.integer)) else (key[0], key[1])
        item = self.items[index]
        rng = np.random.default_rng(seed) if (seed is not None and self.augment) else None
        if rng is not None and rng.random() < self.negative_probability:
            return self._negative(index, rng)
        image = load_image(item.path)
        matrix, flip = self.matrix(item, image.shape, rng)
        crop = warp(image, matrix, self.input_size).astype(np.float32) / 255.0
        keypoints = apply_to_points(matrix, item.keypoints)
        if flip:
            keypoints = swap_sides(keypoints)
        if rng is not None:
            if item.mask is not None and draw(rng, self.augment.bystander_probability):
                crop = self._with_bystander(crop, image.shape, item, matrix, rng)
            crop = photometric(crop, rng, self.augment)
        target, present = encode(keypoints, self.input_size, self.heatmap_size, self.sigma)
        weight = np.where(present, 1.0, self.missing_weight).astype(np.float32)
        keypoints[~present] = -1.0
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "target": torch.from_numpy(target),
            "weight": torch.from_numpy(weight),
            "keypoints": torch.from_numpy(keypoints),
            "matrix": torch.from_numpy(matrix.astype(np.float32)),
            "index": torch.tensor(index),
        }

    def _with_bystander(
        self,
        crop: np.ndarray,
        shape: tuple[int, ...],
        item: Item,
        matrix: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        donor = self.items[int(rng.integers(len(self.items)))]
        if donor.mask is None:
            return crop
        subject = warp(person_mask(item.mask, shape), matrix, self.input_size, 0, nearest=True)
        donor_image = load_image(donor.path)
        donor_mask = person_mask(donor.mask, donor_image.shape)
        return paste_bystander(crop, subject, donor_image, donor_mask, rng, self.augment)

    def _negative(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """A random crop of a person-free image: every heatmap empty, every point absent."""
        image = load_image(self.negatives[int(rng.integers(len(self.negatives)))])
        h, w = image.shape[:2]
        aspect = self.input_size[1] / self.input_size[0]
        crop_h = h * rng.uniform(0.4, 1.0)
        crop_w = min(w, crop_h * aspect)
        box = (rng.uniform(0, w - crop_w), rng.uniform(0, h - crop_h), crop_w, crop_w / aspect)
        matrix = box_to_input(box, self.input_size)
        crop = warp(image, matrix, self.input_size).astype(np.float32) / 255.0
        crop = photometric(crop, rng, self.augment)
        k = len(self.items[index].keypoints)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "target": torch.zeros((k, *self.heatmap_size)),
            "weight": torch.full((k,), max(self.missing_weight, 1.0)),
            "keypoints": torch.full((k, 2), -1.0),
            "matrix": torch.from_numpy(matrix.astype(np.float32)),
            "index": torch.tensor(index),
        }


def person_free_images(folder: str | Path) -> list[Path]:
    """The images of a folder of person-free scenes (SynthFashion's backgrounds/<split>)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of person-free images")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise FileNotFoundError(f"{folder}: holds no .jpg or .png image")
    return images


__all__ = [
    "NUM_KEYPOINTS",
    "Item",
    "KeypointAugmentConfig",
    "KeypointDataset",
    "coco_items",
    "deepfashion_items",
]
