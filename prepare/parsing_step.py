"""Step 3: 8-class maps `semantic_merge3/<G>/<Cat>/id_<ID>/<NN>_<k>_<view>.npy`.

Two sources: our parser run on the prepared photos (a parser on ADGAN's 8 classes as is,
one on LIP/CIHP/ATR labels merged with that set's table), or label PNGs made elsewhere
(LIP/SCHP/CIHP parsers' outputs) merged with the table named by `--merge`. A label PNG may
be named by the flat name's stem (`fashionWOMEN...front.png`) or sit in the raw tree's
shape (`WOMEN/<Cat>/id_<ID>/<NN>_<k>_<view>.png`); one made on the raw photo is cut and
resized exactly as the photo was (nearest neighbour). A map that exists is not remade.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.deepfashion import parse_flat, parse_raw
from common.image_io import ImageError, load_image, write_semantic_map
from parsing.formats import read_label_png
from parsing.labels import MERGE_TABLES
from prepare.images import SPLITS, PrepareError, Problem, fit_to_size

# A parser's label set -> the merge table into ADGAN's 8 classes (adgan8 needs none).
PARSER_MERGE = {"adgan8": None, "lip20": "lip", "cihp20": "cihp", "atr18": "atr"}


def semantic_path(out: Path, name: str) -> Path:
    return out / parse_flat(name).semantic_path()


def index_label_pngs(folder: Path) -> dict[str, Path]:
    """flat stem -> label PNG, for flat-named and raw-tree-shaped PNGs alike."""
    if not folder.is_dir():
        raise PrepareError(f"{folder}: no such folder of label PNGs")
    found: dict[str, Path] = {}
    for root, _, files in os.walk(folder):
        for file in files:
            if not file.lower().endswith(".png"):
                continue
            path = Path(root) / file
            if file.startswith("fashion"):
                found[path.stem] = path
                continue
            rel = path.relative_to(folder).with_suffix(".jpg").as_posix()
            try:
                found[Path(parse_raw(rel).flat).stem] = path
            except ValueError:
                continue
    return found


def from_label_pngs(
    out: Path,
    prepared: dict[str, list[str]],
    folder: Path,
    merge: str,
    size: tuple[int, int],
    progress: bool,
) -> tuple[int, list[Problem]]:
    """Merge and write the maps of the prepared photos; (written, problems)."""
    if merge not in MERGE_TABLES:
        raise PrepareError(f"--merge {merge!r}: valid tables are {', '.join(sorted(MERGE_TABLES))}")
    pngs = index_label_pngs(folder)
    written, problems = 0, []
    names = [n for s in SPLITS for n in prepared[s]]
    for name in tqdm(names, desc="parsing", unit="img", disable=not progress):
        dest = semantic_path(out, name)
        if dest.is_file():
            continue
        png = pngs.get(Path(name).stem)
        if png is None:
            problems.append(Problem(name, f"no label PNG for it in {folder}"))
            continue
        try:
            labels = fit_to_size(read_label_png(png, merge), size, nearest=True)
        except (ImageError, ValueError) as exc:
            problems.append(Problem(str(png), f"unusable label PNG: {exc}"))
            continue
        write_semantic_map(dest, labels)
        written += 1
    return written, problems


def from_parser(
    out: Path,
    prepared: dict[str, list[str]],
    checkpoint: str | Path,
    *,
    device: str,
    batch_size: int,
    progress: bool,
) -> tuple[int, list[Problem]]:
    """Our parser's maps of the prepared photos; (written, problems)."""
    from parsing.labels import merge_labels
    from parsing.predict import DensePredictor

    predictor = DensePredictor.from_checkpoints([checkpoint], device=device)
    model = predictor.parsing_model
    if model is None:
        raise PrepareError(f"--parser {checkpoint}: this checkpoint has no parsing head")
    label_set = model.config.label_set
    if label_set not in PARSER_MERGE:
        raise PrepareError(
            f"--parser {checkpoint}: its labels are {label_set!r}; a parser on one of "
            f"{', '.join(PARSER_MERGE)} is needed for ADGAN's 8 classes"
        )
    merge = PARSER_MERGE[label_set]
    todo = [
        (split, n)
        for split in SPLITS
        for n in prepared[split]
        if not semantic_path(out, n).is_file()
    ]
    written, problems = 0, []
    bar = tqdm(total=len(todo), desc="parsing", unit="img", disable=not progress)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        images, names = [], []
        for split, name in chunk:
            try:
                images.append(load_image(out / "fashion_resize" / split / name))
                names.append(name)
            except ImageError as exc:
                problems.append(Problem(name, f"unreadable for parsing: {exc}"))
        if images:
            for name, result in zip(names, predictor.predict_many(images), strict=True):
                labels = np.asarray(result.labels)
                if merge is not None:
                    labels = merge_labels(labels, merge, name=name)
                write_semantic_map(semantic_path(out, name), labels)
                written += 1
        bar.update(len(chunk))
    bar.close()
    return written, problems


def count_maps(out: Path, prepared: dict[str, list[str]]) -> dict[str, int]:
    return {s: sum(semantic_path(out, n).is_file() for n in prepared[s]) for s in SPLITS}
