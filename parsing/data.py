"""Dense training data: parsing label maps and DensePose annotations, and their dataset.

Sources (`DenseItem` lists):
- `deepfashion_items`: the DeepFashion/ADGAN layout (real or SynthFashion): photos, 8-class
  `.npy` maps under `semantic_merge3/`, and (SynthFashion) exact IUV maps under
  `densepose/<split>/<stem>_iuv.png`;
- `label_png_items`: a folder of photos and a folder of label PNGs (LIP, CIHP, ATR), by stem;
- `celebamask_items`: CelebAMask-HQ (photos and per-attribute masks);
- `densepose_coco_items`: DensePose-COCO persons (boxes, points, coarse masks).

Dense IUV maps are turned into DensePose-COCO-like annotations on the fly: up to
`points_per_image` random foreground points and the coarse mask, so one loss serves both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from common.augment import AugmentConfig, draw, paste_bystander, photometric, random_affine
from common.deepfashion import parse_flat
from common.geometry import Box, apply_to_points, box_to_input, expand_box, warp
from common.image_io import load_image, read_semantic_map
from keypoints.formats import read_annotations
from keypoints.skeleton import swap_sides
from parsing.densepose import FINE_TO_COARSE, flip_iuv, load_iuv
from parsing.densepose_coco import (
    DensePosePerson,
    coarse_mask_to_image,
    read_densepose_coco,
    read_index,
)
from parsing.formats import celebamask_image_path, read_celebamask_masks, read_label_png
from parsing.guides import GuideNoiseConfig, guide_maps, noisy_keypoints, noisy_mask
from parsing.labels import flip_table, label_set, merge_labels, merge_table

IGNORE = 255
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass
class DenseItem:
    """One training/evaluation sample: the photo and whatever ground truth it has."""

    image: Path
    name: str
    labels: Path | None = None  # .npy semantic map or label PNG
    celebamask: tuple[Path, int] | None = None  # (root, index)
    iuv: Path | None = None  # dense IUV PNG (SynthFashion)
    densepose: DensePosePerson | None = None  # DensePose-COCO annotation
    box: Box | None = None  # None: the whole photo
    keypoints: np.ndarray | None = None  # [18, 2] (x, y) photo pixels, -1 missing (guides)


def deepfashion_items(root: str | Path, split: str) -> list[DenseItem]:
    root = Path(root)
    folder = root / "fashion_resize" / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected the DeepFashion layout)")
    annotations = root / f"fashion-resize-annotation-{split}.csv"
    keypoints = read_annotations(annotations) if annotations.is_file() else {}
    items = []
    for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        labels = root / parse_flat(image.name).semantic_path()
        iuv = root / "densepose" / split / f"{image.stem}_iuv.png"
        items.append(
            DenseItem(
                image,
                image.name,
                labels=labels if labels.is_file() else None,
                iuv=iuv if iuv.is_file() else None,
                keypoints=keypoints.get(image.name),
            )
        )
    return items


def label_png_items(images: str | Path, labels: str | Path) -> list[DenseItem]:
    images, labels = Path(images), Path(labels)
    for folder in (images, labels):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
    items = []
    for image in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        label = labels / f"{image.stem}.png"
        if label.is_file():
            items.append(DenseItem(image, image.name, labels=label))
    return items


def celebamask_items(root: str | Path, indices: list[int] | None = None) -> list[DenseItem]:
    """CelebAMask-HQ faces; `indices` from a split file, else every photo present."""
    root = Path(root)
    if indices is None:
        folder = root / "CelebA-HQ-img"
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (CelebAMask-HQ layout)")
        indices = sorted(int(p.stem) for p in folder.glob("*.jpg") if p.stem.isdigit())
    return [
        DenseItem(celebamask_image_path(root, i), f"{i}.jpg", celebamask=(root, i)) for i in indices
    ]


def celebamask_split(root: str | Path, split: str) -> list[int] | None:
    """Indices listed in <root>/<split>.txt (SynthFashion writes these), or None."""
    path = Path(root) / f"{split}.txt"
    return [int(v) for v in path.read_text().split()] if path.is_file() else None


def densepose_coco_items(
    json_path: str | Path,
    image_root: str | Path,
    *,
    aspect: float,
    box_expand: float = 1.15,
    index: str | Path | None = None,
) -> list[DenseItem]:
    """DensePose-COCO persons; with a person-crop `index` (`python -m prepare
    densepose`) only the persons it lists (their photo is on disk), with its crops."""
    crops = None
    if index:
        crops = read_index(index)
    return [
        DenseItem(
            Path(image_root) / p.file_name,
            f"{p.file_name}#{p.annotation_id}",
            densepose=p,
            box=crops[p.annotation_id] if crops else expand_box(p.bbox, box_expand, aspect),
        )
        for p in read_densepose_coco(json_path)
        if crops is None or p.annotation_id in crops
    ]


class DenseDataset(Dataset):
    """Samples for the dense network: the photo (or the person box) warped into the input,
    the parsing labels and the DensePose annotations warped with it.

    `merge` maps the source label ids to the trained label set (`parsing.labels`); a
    mirrored sample swaps left/right classes, DensePose parts and charts (SynthFashion's
    charts only: `mirror_densepose=False` for DensePose-COCO, whose UV symmetry tables are
    not available here).
    """

    def __init__(
        self,
        items: list[DenseItem],
        input_size: tuple[int, int],
        *,
        heads: tuple[str, ...],
        label_set_name: str = "adgan8",
        merge: str = "",
        augment: AugmentConfig | None = None,
        points_per_image: int = 128,
        mirror_densepose: bool = True,
        guides: tuple[str, ...] = (),
        guide_sigma: float = 6.0,
        guide_noise: GuideNoiseConfig | None = None,
    ) -> None:
        if not items:
            raise ValueError("no items: is the dataset folder empty?")
        self.items, self.input_size, self.heads = items, tuple(input_size), heads
        self.classes = label_set(label_set_name).classes
        self.merge = merge_table(merge) if merge else None
        self.label_flip = np.asarray(flip_table(self.classes), np.int64)
        if augment is not None and not mirror_densepose:
            augment = dataclasses.replace(augment, flip_probability=0.0)
        self.augment, self.points = augment, points_per_image
        if "parsing" in heads and not any(i.labels or i.celebamask for i in items[:1]):
            raise ValueError(f"{items[0].image}: no parsing labels for this item")
        if "densepose" in heads and not any(i.iuv or i.densepose for i in items[:1]):
            raise ValueError(f"{items[0].image}: no DensePose annotation for this item")
        self.guides, self.guide_sigma, self.guide_noise = guides, guide_sigma, guide_noise
        if "pose" in guides and items[0].keypoints is None:
            raise ValueError(
                f"{items[0].image}: no keypoints for the pose guide (a DeepFashion-layout "
                "source reads them from fashion-resize-annotation-<split>.csv)"
            )
        if "mask" in guides and "parsing" not in heads:
            raise ValueError("the mask guide is drawn from parsing labels: add the parsing head")

    def __len__(self) -> int:
        return len(self.items)

    def _labels(self, item: DenseItem) -> np.ndarray:
        if item.celebamask is not None:
            labels = read_celebamask_masks(*item.celebamask)
        elif item.labels.suffix == ".npy":
            labels = read_semantic_map(item.labels, num_classes=256)
        else:
            labels = read_label_png(item.labels)
        if self.merge is not None:
            labels = merge_labels(labels, self.merge, name=str(item.labels or item.image))
        if labels.max(initial=0) >= len(self.classes):
            raise ValueError(
                f"{item.labels or item.image}: label {int(labels.max())} is not "
                f"a class of the {len(self.classes)}-class label set"
            )
        return labels.astype(np.uint8)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, seed = (key, None) if isinstance(key, (int, np.integer)) else (key[0], key[1])
        item = self.items[index]
        rng = np.random.default_rng(seed) if (seed is not None and self.augment) else None
        image = load_image(item.image)
        h, w = image.shape[:2]
        base = box_to_input(item.box or (0.0, 0.0, float(w), float(h)), self.input_size)
        matrix, flip = base, False
        if rng is not None:
            matrix, flip = random_affine(rng, self.input_size, self.augment, base)
        crop = warp(image, matrix, self.input_size).astype(np.float32) / 255.0
        labels = self._labels(item) if "parsing" in self.heads else None
        if rng is not None:
            if draw(rng, self.augment.bystander_probability):
                crop = self._with_bystander(crop, item, labels, image.shape, matrix, rng)
            crop = photometric(crop, rng, self.augment)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "index": torch.tensor(index),
        }
        if labels is not None:
            labels = warp(labels, matrix, self.input_size, 0, nearest=True)
            if flip:
                labels = self.label_flip[labels].astype(np.uint8)
            sample["labels"] = torch.from_numpy(labels.astype(np.int64))
        if self.guides:
            sample["guides"] = self._guides(item, labels, matrix, flip, rng)
        if "densepose" in self.heads:
            sample.update(self._densepose(item, matrix, flip, (h, w), rng, index))
        return sample

    def _guides(
        self,
        item: DenseItem,
        labels: np.ndarray | None,
        matrix: np.ndarray,
        flip: bool,
        rng: np.random.Generator | None,
    ) -> torch.Tensor:
        """The guide channels from the ground truth, with an estimator's errors in training
        (`rng` and `guide_noise` given)."""
        keypoints = mask = None
        if item.keypoints is not None:
            keypoints = apply_to_points(matrix, item.keypoints)
            if flip:
                keypoints = swap_sides(keypoints)
        if labels is not None:
            mask = (labels > 0).astype(np.float32)
        noise = self.guide_noise if rng is not None else None
        if noise is not None:
            if keypoints is not None:
                keypoints = noisy_keypoints(keypoints, self.input_size[0], noise, rng)
            if mask is not None:
                mask = noisy_mask(mask, noise, rng)
        return guide_maps(self.guides, self.input_size, keypoints, mask, self.guide_sigma)

    def _person_mask(
        self, item: DenseItem, labels: np.ndarray | None, shape: tuple[int, ...]
    ) -> np.ndarray | None:
        """uint8 1 on the item's person, in its photo's pixels; None where the ground truth
        does not say (faces, DensePose-COCO, label maps of another size)."""
        if item.celebamask is not None or item.densepose is not None:
            return None
        if labels is None and item.labels is not None:
            labels = self._labels(item)
        if labels is not None:
            mask = labels > 0
        elif item.iuv is not None:
            mask = load_iuv(item.iuv)[0] > 0
        else:
            return None
        return mask.astype(np.uint8) if mask.shape == tuple(shape[:2]) else None

    def _with_bystander(
        self,
        crop: np.ndarray,
        item: DenseItem,
        labels: np.ndarray | None,
        shape: tuple[int, ...],
        matrix: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Another item's person pasted behind this one (bystanders are background)."""
        subject = self._person_mask(item, labels, shape)
        donor = self.items[int(rng.integers(len(self.items)))]
        if subject is None or (donor.labels is None and donor.iuv is None):
            return crop
        donor_image = load_image(donor.image)
        donor_mask = self._person_mask(donor, None, donor_image.shape)
        if donor_mask is None:
            return crop
        subject = warp(subject, matrix, self.input_size, 0, nearest=True)
        return paste_bystander(crop, subject, donor_image, donor_mask, rng, self.augment)

    def _densepose(
        self,
        item: DenseItem,
        matrix: np.ndarray,
        flip: bool,
        image_hw: tuple[int, int],
        rng: np.random.Generator | None,
        index: int,
    ) -> dict[str, torch.Tensor]:
        n = self.points
        pts = np.zeros((n, 2), np.float32)
        parts = np.ones(n, np.int64)
        u = np.zeros(n, np.float32)
        v = np.zeros(n, np.float32)
        valid = np.zeros(n, bool)
        H, W = self.input_size
        if item.iuv is not None:
            i_map, u_map, v_map = load_iuv(item.iuv)
            i_map = warp(i_map.astype(np.uint8), matrix, self.input_size, 0, nearest=True)
            u_map = warp(
                (u_map * 255).round().astype(np.uint8), matrix, self.input_size, 0, nearest=True
            ) / np.float32(255)
            v_map = warp(
                (v_map * 255).round().astype(np.uint8), matrix, self.input_size, 0, nearest=True
            ) / np.float32(255)
            if flip:  # the image is mirrored; its people are mirror images
                i_map, u_map, v_map = flip_iuv(i_map, u_map, v_map)
            coarse = np.asarray(FINE_TO_COARSE, np.int64)[i_map]
            rows, cols = np.nonzero(i_map)
            if rows.size:
                pick = (rng or np.random.default_rng(index)).choice(
                    rows.size, size=min(n, rows.size), replace=False
                )
                k = len(pick)
                pts[:k] = np.stack([cols[pick], rows[pick]], 1)
                parts[:k] = i_map[rows[pick], cols[pick]]
                u[:k], v[:k] = u_map[rows[pick], cols[pick]], v_map[rows[pick], cols[pick]]
                valid[:k] = True
        else:
            person = item.densepose
            box_mask = np.zeros(image_hw, np.uint8)
            x, y, bw, bh = (round(c) for c in person.bbox)
            box_mask[max(y, 0) : y + bh, max(x, 0) : x + bw] = 1
            inside = warp(box_mask, matrix, self.input_size, 0, nearest=True).astype(bool)
            coarse = np.full((H, W), IGNORE, np.int64)
            if person.coarse_mask is not None:
                pasted = coarse_mask_to_image(person.coarse_mask, person.bbox, *image_hw)
                coarse_in = warp(pasted, matrix, self.input_size, 0, nearest=True)
                coarse[inside] = coarse_in[inside]
            moved = apply_to_points(matrix, np.stack([person.x, person.y], 1))
            keep = (
                (moved[:, 0] >= 0)
                & (moved[:, 0] <= W - 1)
                & (moved[:, 1] >= 0)
                & (moved[:, 1] <= H - 1)
            )
            idx = np.flatnonzero(keep)[:n]
            k = len(idx)
            pts[:k], parts[:k] = moved[idx], person.parts[idx]
            u[:k], v[:k], valid[:k] = person.u[idx], person.v[idx], True
        return {
            "points": torch.from_numpy(pts),
            "point_index": torch.from_numpy(parts),
            "point_u": torch.from_numpy(u),
            "point_v": torch.from_numpy(v),
            "point_valid": torch.from_numpy(valid),
            "coarse": torch.from_numpy(coarse.astype(np.int64)),
        }
