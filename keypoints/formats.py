"""Readers and writers for keypoint files: the DeepFashion annotation and pairs CSVs, and
COCO person-keypoints JSON.

DeepFashion annotation CSV (pose-transfer layout, as in PATN and ADGAN):

    name:keypoints_y:keypoints_x
    fashionWOMENTees_Tanksid0000508545_1front.jpg:[40, 85, ...]:[88, 89, ...]

18 integers per list, y first, -1 for a missing point. The pairs CSV is `from,to`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.fileio import write_text
from keypoints.skeleton import NUM_KEYPOINTS, coco17_to_18, visible

ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"


class FormatError(ValueError):
    """A keypoint file that does not follow its format; names file and line."""


def _parse_int_list(text: str, where: str) -> list[float]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        raise FormatError(f"{where}: {text[:40]!r} is not a JSON list") from None
    if not isinstance(values, list) or len(values) != NUM_KEYPOINTS:
        raise FormatError(f"{where}: expected a list of {NUM_KEYPOINTS} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise FormatError(f"{where}: the list holds something that is not a number")
    return [float(v) for v in values]


def read_annotations(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """name -> keypoints [18, 2] float32 (x, y), in file order."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such annotation file")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != ANNOTATION_HEADER:
        raise FormatError(f"{path}: the first line must be {ANNOTATION_HEADER!r}")
    out: dict[str, np.ndarray] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split(":")
        if len(parts) != 3:
            raise FormatError(f"{path}:{number}: expected name:keypoints_y:keypoints_x")
        name, ys, xs = parts
        y = _parse_int_list(ys, f"{path}:{number}")
        x = _parse_int_list(xs, f"{path}:{number}")
        kp = np.stack([np.asarray(x, np.float32), np.asarray(y, np.float32)], axis=1)
        kp[~visible(kp)] = -1.0
        if name in out:
            raise FormatError(f"{path}:{number}: {name} appears twice")
        out[name] = kp
    return out


def format_annotation_row(name: str, keypoints: np.ndarray) -> str:
    kp = np.asarray(keypoints, dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
    present = visible(kp)
    xs = [round(v) if p else -1 for v, p in zip(kp[:, 0], present, strict=True)]
    ys = [round(v) if p else -1 for v, p in zip(kp[:, 1], present, strict=True)]
    return f"{name}:{json.dumps(ys)}:{json.dumps(xs)}"


def write_annotations(path: str | os.PathLike[str], annotations: Mapping[str, np.ndarray]) -> None:
    """Write the CSV atomically; coordinates are rounded to integers as in the real files."""
    rows = [ANNOTATION_HEADER] + [format_annotation_row(n, k) for n, k in annotations.items()]
    write_text(path, "\n".join(rows) + "\n")


def read_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such pairs file")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["from", "to"]:
            raise FormatError(f"{path}: the first line must be 'from,to'")
        pairs = []
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2:
                raise FormatError(f"{path}:{number}: expected two names, got {len(row)} fields")
            pairs.append((row[0].strip(), row[1].strip()))
    return pairs


def write_pairs(path: str | os.PathLike[str], pairs: Iterable[tuple[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["from", "to"])
    writer.writerows(pairs)
    write_text(path, buf.getvalue())


@dataclass
class CocoPerson:
    """One person annotation of a COCO keypoints file, converted to our 18 points."""

    image_id: int
    file_name: str
    image_size: tuple[int, int]  # (height, width)
    bbox: tuple[float, float, float, float]  # x, y, w, h
    keypoints: np.ndarray  # [18, 2]
    visibility: np.ndarray  # [18], 0 unlabelled, 1 occluded, 2 visible
    annotation_id: int
    iscrowd: bool


def read_coco_keypoints(
    path: str | os.PathLike[str], *, include_crowd: bool = False
) -> list[CocoPerson]:
    """All person annotations of a COCO keypoints JSON, as our 18-point skeleton.

    Persons with no labelled keypoint are kept (their points are all missing): detectors
    and 'no person' checks need them.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such COCO keypoints file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    for key in ("images", "annotations"):
        if key not in data:
            raise FormatError(f"{path}: no {key!r} list; not a COCO annotation file")
    images = {img["id"]: img for img in data["images"]}
    people = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) and not include_crowd:
            continue
        if "keypoints" not in ann:
            raise FormatError(f"{path}: annotation {ann.get('id')} has no 'keypoints'")
        image = images.get(ann["image_id"])
        if image is None:
            raise FormatError(
                f"{path}: annotation {ann.get('id')} names unknown image {ann['image_id']}"
            )
        kp, vis = coco17_to_18(np.asarray(ann["keypoints"], dtype=np.float32))
        people.append(
            CocoPerson(
                image_id=int(ann["image_id"]),
                file_name=image["file_name"],
                image_size=(int(image["height"]), int(image["width"])),
                bbox=tuple(float(v) for v in ann["bbox"]),
                keypoints=kp,
                visibility=vis,
                annotation_id=int(ann["id"]),
                iscrowd=bool(ann.get("iscrowd", 0)),
            )
        )
    return people
