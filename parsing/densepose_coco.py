"""DensePose-COCO annotation files: read through pycocotools, write files it loads.

Per person, DensePose-COCO adds to a COCO annotation: `dp_x`, `dp_y` (points in the
person box scaled to 256x256, so x = box_x + dp_x * box_w / 256), `dp_I` (1..24), `dp_U`,
`dp_V` (0..1) and `dp_masks`: 14 entries, one per coarse part, each an RLE of a 256x256
mask over the box or an empty list. Box and point coordinates are COCO's continuous
ones (pixel i spans [i, i+1)).

The real layout is `coco/{train2014,val2014}/*.jpg` with
`densepose/densepose_coco_2014_{train,valminusminival,minival,test}.json`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from common.fileio import write_json
from keypoints.skeleton import COCO17_NAMES
from parsing.densepose import NUM_COARSE, NUM_PARTS

DP_KEYS = ("dp_x", "dp_y", "dp_I", "dp_U", "dp_V")
MASK_SIZE = 256
# COCO's person skeleton (1-based keypoint indices), written into the category entry.
COCO_SKELETON = (
    (16, 14),
    (14, 12),
    (17, 15),
    (15, 13),
    (12, 13),
    (6, 12),
    (7, 13),
    (6, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (2, 3),
    (1, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
    (5, 7),
)


class DensePoseFormatError(ValueError):
    """A DensePose-COCO file or annotation that breaks the format; names file and id."""


# The person-crop index `python -m prepare densepose` writes and training reads.
INDEX_FIELDS = (
    "annotation_id",
    "image_id",
    "file_name",
    "height",
    "width",
    "box_x",
    "box_y",
    "box_w",
    "box_h",
    "crop_x",
    "crop_y",
    "crop_w",
    "crop_h",
    "points",
    "coarse_mask",
)


def read_index(path: str | Path) -> dict[int, tuple[float, float, float, float]]:
    """annotation id -> crop box (x, y, w, h) of a person-crop index."""
    path = Path(path)
    if not path.is_file():
        raise DensePoseFormatError(
            f"{path}: no such person-crop index (python -m prepare densepose)"
        )
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(INDEX_FIELDS) <= set(reader.fieldnames):
            raise DensePoseFormatError(f"{path}: not a person-crop index (columns {INDEX_FIELDS})")
        return {
            int(r["annotation_id"]): tuple(float(r[f"crop_{k}"]) for k in "xywh") for r in reader
        }


@dataclass
class DensePosePerson:
    """One annotated person: box, points in image pixels, optional coarse mask."""

    annotation_id: int
    image_id: int
    file_name: str
    image_size: tuple[int, int]  # (height, width)
    bbox: tuple[float, float, float, float]  # x, y, w, h (COCO continuous)
    x: np.ndarray  # [N] image pixel column of each point (pixel centres at integers)
    y: np.ndarray  # [N]
    parts: np.ndarray  # [N] int, 1..24
    u: np.ndarray  # [N] float, 0..1
    v: np.ndarray  # [N]
    coarse_mask: np.ndarray | None  # [256, 256] uint8 0..14 over the box, None if absent
    keypoints: np.ndarray | None = None  # COCO [17, 3] when the annotation has them
    extra: dict[str, Any] = field(default_factory=dict)


def _load_coco(path: Path) -> COCO:
    if not path.is_file():
        raise DensePoseFormatError(f"{path}: no such DensePose-COCO file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            return COCO(os.fspath(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DensePoseFormatError(f"{path}: not valid JSON ({exc})") from None
    except (KeyError, TypeError, AssertionError) as exc:
        raise DensePoseFormatError(f"{path}: not a COCO annotation file ({exc!r})") from None


def decode_coarse_mask(dp_masks: list[Any], *, where: str = "dp_masks") -> np.ndarray:
    """14 RLE entries (or []) -> uint8 [256, 256] coarse part map; later parts win."""
    if not isinstance(dp_masks, list) or len(dp_masks) != NUM_COARSE:
        raise DensePoseFormatError(f"{where}: dp_masks must be a list of {NUM_COARSE} entries")
    out = np.zeros((MASK_SIZE, MASK_SIZE), dtype=np.uint8)
    for index, rle in enumerate(dp_masks, start=1):
        if not rle:
            continue
        try:
            mask = mask_utils.decode(rle)
        except (TypeError, ValueError, KeyError) as exc:
            raise DensePoseFormatError(f"{where}[{index - 1}]: not an RLE mask ({exc})") from None
        if mask.shape != (MASK_SIZE, MASK_SIZE):
            raise DensePoseFormatError(
                f"{where}[{index - 1}]: mask is {mask.shape}, expected {MASK_SIZE}x{MASK_SIZE}"
            )
        out[mask > 0] = index
    return out


def encode_coarse_mask(coarse: np.ndarray) -> list[Any]:
    """uint8 [256, 256] coarse part map -> 14 RLE dicts (JSON-ready) or []."""
    coarse = np.asarray(coarse)
    if coarse.shape != (MASK_SIZE, MASK_SIZE):
        raise ValueError(f"coarse mask must be {MASK_SIZE}x{MASK_SIZE}, got {coarse.shape}")
    # RLE runs down columns: compare on the transposed map so each mask is already in
    # Fortran order (no copy per part).
    transposed = np.ascontiguousarray(coarse.T.astype(np.uint8))
    present = np.bincount(transposed.ravel(), minlength=NUM_COARSE + 1)
    out: list[Any] = []
    for index in range(1, NUM_COARSE + 1):
        if present[index] == 0:
            out.append([])
            continue
        rle = mask_utils.encode((transposed == index).view(np.uint8).T)
        out.append({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")})
    return out


def coarse_mask_to_image(
    coarse: np.ndarray, bbox: tuple[float, float, float, float], height: int, width: int
) -> np.ndarray:
    """Paste a 256x256 box-frame coarse mask into an image-sized map (nearest neighbour)."""
    x, y, w, h = bbox
    out = np.zeros((height, width), dtype=np.uint8)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    x1, y1 = int(np.ceil(x + w)), int(np.ceil(y + h))
    if x1 <= x0 or y1 <= y0:
        return out
    resized = cv2.resize(coarse, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST_EXACT)
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, width), min(y1, height)
    out[cy0:cy1, cx0:cx1] = resized[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return out


def image_to_coarse_mask(
    coarse_image: np.ndarray, bbox: tuple[float, float, float, float]
) -> np.ndarray:
    """Crop an image-sized coarse map to the (integer) box and resize it to 256x256."""
    x, y, w, h = (round(v) for v in bbox)
    crop = np.asarray(coarse_image)[y : y + h, x : x + w]
    return cv2.resize(
        crop.astype(np.uint8), (MASK_SIZE, MASK_SIZE), interpolation=cv2.INTER_NEAREST_EXACT
    )


def _person(ann: dict[str, Any], image: dict[str, Any], path: Path) -> DensePosePerson:
    where = f"{path}: annotation {ann.get('id')}"
    lengths = {k: len(ann[k]) for k in DP_KEYS}
    if len(set(lengths.values())) != 1:
        raise DensePoseFormatError(f"{where}: dp_* lists differ in length {lengths}")
    bx, by, bw, bh = (float(v) for v in ann["bbox"])
    if bw <= 0 or bh <= 0:
        raise DensePoseFormatError(f"{where}: empty box {ann['bbox']}")
    parts = np.asarray(ann["dp_I"], dtype=np.float64).round().astype(np.int64)
    if parts.size and (parts.min() < 1 or parts.max() > NUM_PARTS):
        raise DensePoseFormatError(f"{where}: dp_I outside 1..{NUM_PARTS}")
    u = np.asarray(ann["dp_U"], dtype=np.float32)
    v = np.asarray(ann["dp_V"], dtype=np.float32)
    if u.size and (u.min() < 0 or u.max() > 1 or v.min() < 0 or v.max() > 1):
        raise DensePoseFormatError(f"{where}: dp_U/dp_V outside [0, 1]")
    dp_x = np.asarray(ann["dp_x"], dtype=np.float32)
    dp_y = np.asarray(ann["dp_y"], dtype=np.float32)
    coarse = (
        decode_coarse_mask(ann["dp_masks"], where=f"{where} dp_masks")
        if "dp_masks" in ann
        else None
    )
    keypoints = (
        np.asarray(ann["keypoints"], dtype=np.float32).reshape(17, 3)
        if ann.get("keypoints")
        else None
    )
    return DensePosePerson(
        annotation_id=int(ann["id"]),
        image_id=int(ann["image_id"]),
        file_name=image["file_name"],
        image_size=(int(image["height"]), int(image["width"])),
        bbox=(bx, by, bw, bh),
        x=bx + dp_x * bw / MASK_SIZE - 0.5,
        y=by + dp_y * bh / MASK_SIZE - 0.5,
        parts=parts,
        u=u,
        v=v,
        coarse_mask=coarse,
        keypoints=keypoints,
    )


def read_densepose_coco(path: str | os.PathLike[str]) -> list[DensePosePerson]:
    """All persons with DensePose points in a DensePose-COCO JSON, via pycocotools.

    Persons without dp fields (most COCO persons) are skipped; a file in which no person
    has them is refused, since it is most likely a plain COCO file given by mistake.
    """
    path = Path(path)
    coco = _load_coco(path)
    people = []
    annotations = coco.dataset.get("annotations", [])
    for ann in annotations:
        present = [k for k in DP_KEYS if k in ann]
        if not present:
            continue
        if len(present) != len(DP_KEYS):
            missing = sorted(set(DP_KEYS) - set(present))
            raise DensePoseFormatError(
                f"{path}: annotation {ann.get('id')} lacks {', '.join(missing)}"
            )
        people.append(_person(ann, coco.imgs[ann["image_id"]], path))
    if not people:
        raise DensePoseFormatError(
            f"{path}: none of its {len(annotations)} annotations has DensePose fields "
            f"({', '.join(DP_KEYS)}); is it a plain COCO file?"
        )
    return people


def make_annotation(
    *,
    annotation_id: int,
    image_id: int,
    person_mask: np.ndarray,
    coarse_image: np.ndarray,
    point_rows: np.ndarray,
    point_cols: np.ndarray,
    parts: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    keypoints_coco: np.ndarray | None = None,
) -> dict[str, Any]:
    """One DensePose-COCO person annotation from image-space ground truth.

    `person_mask` [H, W] bool gives box, area and segmentation; `coarse_image` the coarse
    part map (0..14); points are pixel (row, col) indices with their I, U, V.
    """
    ys, xs = np.nonzero(person_mask)
    if xs.size == 0:
        raise ValueError("empty person mask")
    x0, y0 = int(xs.min()), int(ys.min())
    bw, bh = int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1
    bbox = (float(x0), float(y0), float(bw), float(bh))
    rle = mask_utils.encode(np.asfortranarray(person_mask.astype(np.uint8)))
    ann: dict[str, Any] = {
        "id": int(annotation_id),
        "image_id": int(image_id),
        "category_id": 1,
        "iscrowd": 0,
        "bbox": list(bbox),
        "area": float(person_mask.sum()),
        "segmentation": {
            "size": [int(s) for s in rle["size"]],
            "counts": rle["counts"].decode("ascii"),
        },
        "dp_x": [round(float(c), 3) for c in (point_cols + 0.5 - x0) * MASK_SIZE / bw],
        "dp_y": [round(float(r), 3) for r in (point_rows + 0.5 - y0) * MASK_SIZE / bh],
        "dp_I": [float(p) for p in parts],
        "dp_U": [round(float(x), 5) for x in u],
        "dp_V": [round(float(x), 5) for x in v],
        "dp_masks": encode_coarse_mask(image_to_coarse_mask(coarse_image, bbox)),
    }
    if keypoints_coco is not None:
        kp = np.asarray(keypoints_coco, dtype=np.float32).reshape(17, 3)
        ann["keypoints"] = [round(float(x), 2) for x in kp.reshape(-1)]
        ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
    return ann


def write_densepose_coco(
    path: str | os.PathLike[str],
    images: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    *,
    description: str = "",
) -> None:
    """Write a DensePose-COCO JSON atomically. `images` hold id, file_name, height, width."""
    data = {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": list(COCO17_NAMES),
                "skeleton": [list(p) for p in COCO_SKELETON],
            }
        ],
    }
    write_json(path, data, indent=None)
