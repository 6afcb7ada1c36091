"""Checking a DensePose-COCO download and indexing its person crops.

    python -m prepare densepose --coco data/coco --annotations data/densepose \\
        --out data/densepose [--input-size 256x192]

Expected layout (the README's "Getting the real data"):

    COCO/train2014/COCO_train2014_*.jpg        COCO/val2014/COCO_val2014_*.jpg
    ANNOTATIONS/densepose_coco_2014_{train,valminusminival,minival,test}.json

For each split it reads the JSON through pycocotools (`parsing.densepose_coco`), counts
the people with DensePose points (and with coarse masks, and their points), checks that
every photo they stand in is on disk, and writes the person-crop index that training
reads (`data.coco_index`): one row per person whose photo is present, with its box and
the crop the dense network sees (the box grown by `--box-expand` to the input's aspect,
as `parsing.data.densepose_coco_items` does). The test split has no DensePose points
(its ground truth is withheld): only its images are counted. `densepose_manifest.json`
holds the counts, the missing photos and the JSON files' checksums.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from common.fileio import write_json, write_text
from common.geometry import expand_box
from parsing.densepose_coco import (
    INDEX_FIELDS,
    DensePoseFormatError,
    DensePosePerson,
    read_densepose_coco,
)

# split -> the COCO image folder its photos are in
SPLIT_IMAGES = {
    "train": "train2014",
    "valminusminival": "val2014",
    "minival": "val2014",
    "test": "test2015",
}
POINT_SPLITS = ("train", "valminusminival", "minival")  # test has no DensePose points
BOX_EXPAND = 1.15  # parsing.data.densepose_coco_items's default


class LayoutError(ValueError):
    """The folders do not hold DensePose-COCO as expected; the message says what is missing."""


def annotation_path(annotations: Path, split: str) -> Path:
    return annotations / f"densepose_coco_2014_{split}.json"


def index_path(out: Path, split: str) -> Path:
    return out / f"densepose_{split}_crops.csv"


def check_layout(coco: Path, annotations: Path) -> dict[str, Path]:
    """The splits whose JSON is present (at least one with points), each with its photos'
    folder; anything missing that those need is an error naming it."""
    if not annotations.is_dir():
        raise LayoutError(f"{annotations}: no such folder (the DensePose-COCO JSON files)")
    present = {s: annotation_path(annotations, s) for s in SPLIT_IMAGES}
    present = {s: p for s, p in present.items() if p.is_file()}
    if not any(s in present for s in POINT_SPLITS):
        names = ", ".join(annotation_path(annotations, s).name for s in POINT_SPLITS)
        raise LayoutError(f"{annotations}: none of {names} is there")
    folders = {}
    for split in present:
        folder = coco / SPLIT_IMAGES[split]
        if not folder.is_dir():
            raise LayoutError(
                f"{folder}: no such folder, but {present[split].name} needs its photos "
                f"(COCO 2014 images from cocodataset.org)"
            )
        folders[split] = folder
    return folders


@dataclass
class SplitReport:
    images: int  # photos the JSON lists
    people: int  # people with DensePose points
    people_with_masks: int
    points: int
    indexed: int  # people whose photo is on disk (the index's rows)
    missing_images: list[str]


def crop_rows(
    people: Iterable[DensePosePerson], folder: Path, aspect: float, box_expand: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Index rows of the people whose photo exists, and the missing photos' names."""
    rows, missing, exists = [], set(), {}
    for p in people:
        if p.file_name not in exists:
            exists[p.file_name] = (folder / p.file_name).is_file()
        if not exists[p.file_name]:
            missing.add(p.file_name)
            continue
        crop = expand_box(p.bbox, box_expand, aspect)
        rows.append(
            {
                "annotation_id": p.annotation_id,
                "image_id": p.image_id,
                "file_name": p.file_name,
                "height": p.image_size[0],
                "width": p.image_size[1],
                **{f"box_{k}": round(v, 2) for k, v in zip("xywh", p.bbox, strict=True)},
                **{f"crop_{k}": round(v, 2) for k, v in zip("xywh", crop, strict=True)},
                "points": int(p.parts.size),
                "coarse_mask": int(p.coarse_mask is not None),
            }
        )
    return rows, sorted(missing)


def write_index(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=INDEX_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _count_images(path: Path) -> int:
    data = json.loads(path.read_text(encoding="utf-8"))
    if "images" not in data:
        raise DensePoseFormatError(f"{path}: no 'images' list; not a COCO file")
    return len(data["images"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def prepare_densepose(
    coco: str | Path,
    annotations: str | Path,
    out: str | Path,
    *,
    input_size: tuple[int, int] = (256, 192),
    box_expand: float = BOX_EXPAND,
    progress: bool = True,
) -> dict[str, Any]:
    """Check the layout, count, write the crop indexes and the manifest; returns it."""
    coco, annotations, out = Path(coco), Path(annotations), Path(out)
    folders = check_layout(coco, annotations)
    aspect = input_size[1] / input_size[0]
    reports: dict[str, dict[str, Any]] = {}
    for split in tqdm(list(folders), desc="densepose splits", disable=not progress):
        path = annotation_path(annotations, split)
        if split not in POINT_SPLITS:
            reports[split] = {"images": _count_images(path), "people": 0}
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            people = read_densepose_coco(path)
        rows, missing = crop_rows(people, folders[split], aspect, box_expand)
        write_index(index_path(out, split), rows)
        report = SplitReport(
            images=len({p.image_id for p in people}),
            people=len(people),
            people_with_masks=sum(p.coarse_mask is not None for p in people),
            points=int(sum(p.parts.size for p in people)),
            indexed=len(rows),
            missing_images=missing,
        )
        reports[split] = {**report.__dict__, "missing_images": len(missing)}
        reports[split]["missing_image_names"] = missing
    manifest = {
        "dataset": "DensePose-COCO",
        "coco": str(coco),
        "annotations": str(annotations),
        "input_size": list(input_size),
        "box_expand": box_expand,
        "splits": reports,
        "checksums": {
            annotation_path(annotations, s).name: _sha256(annotation_path(annotations, s))
            for s in folders
        },
    }
    write_json(out / "densepose_manifest.json", manifest)
    return manifest


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} must look like 256x192 (HxW)") from None
    return h, w


def add_command(sub: argparse._SubParsersAction) -> None:
    """`python -m prepare densepose ...` (the CLI is `prepare.__main__`)."""
    d = sub.add_parser("densepose", help="check DensePose-COCO, count it, index its crops")
    d.add_argument("--coco", type=Path, required=True, help="folder with train2014/, val2014/")
    d.add_argument("--annotations", type=Path, required=True, help="densepose_coco_2014_*.json")
    d.add_argument("--out", type=Path, required=True, help="where the index and manifest go")
    d.add_argument("--input-size", type=_size, default=(256, 192), help="the network's HxW")
    d.add_argument("--box-expand", type=float, default=BOX_EXPAND)
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        manifest = prepare_densepose(
            args.coco,
            args.annotations,
            args.out,
            input_size=args.input_size,
            box_expand=args.box_expand,
            progress=not args.quiet,
        )
    except (LayoutError, DensePoseFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, r in manifest["splits"].items():
        if split in POINT_SPLITS:
            print(
                f"{split:>16}: {r['people']} people with DensePose points in {r['images']} "
                f"images ({r['people_with_masks']} with masks, {r['points']} points); "
                f"{r['indexed']} indexed, {r['missing_images']} photos missing"
            )
        else:
            print(f"{split:>16}: {r['images']} images (no DensePose ground truth)")
    print(f"manifest: {args.out / 'densepose_manifest.json'}")
    return 0
