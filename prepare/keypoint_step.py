"""Step 2: `fashion-resize-annotation-{train,test}.csv` for the prepared photos.

Two sources, in the same CSV format (`name:keypoints_y:keypoints_x`, y first, -1 missing):
the published CSVs (OpenPose detections on the 256x176 crops, PATN/ADGAN), whose rows are
kept for the photos that were prepared (scaled when `--size` is not 256x176); or our
keypoint estimator run on the prepared photos. A photo the published CSV does not cover is
listed as a problem; the estimator's rows of a previous run with the same checkpoint are
kept, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.image_io import ImageError, load_image
from keypoints.formats import FormatError, read_annotations, write_annotations
from keypoints.skeleton import visible
from prepare.images import SPLITS, PrepareError, Problem

PUBLISHED_SIZE = (256, 176)  # the frame of the published annotation CSVs
FLUSH_EVERY = 2000  # estimator rows between partial writes of the CSV


def annotation_csv(root: Path, split: str) -> Path:
    return root / f"fashion-resize-annotation-{split}.csv"


def scale_keypoints(kp: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """Keypoints of a `src`-sized (H, W) frame in a `dst`-sized one (pixel centres kept)."""
    if tuple(src) == tuple(dst):
        return kp
    out = kp.copy()
    shown = visible(kp)
    scale = np.array([dst[1] / src[1], dst[0] / src[0]], np.float32)
    out[shown] = (kp[shown] + 0.5) * scale - 0.5
    return out


def from_published(
    annotations: Path, prepared: dict[str, list[str]], size: tuple[int, int]
) -> tuple[dict[str, dict[str, np.ndarray]], list[Problem]]:
    """The published rows of the prepared photos, per split."""
    rows: dict[str, dict[str, np.ndarray]] = {}
    problems: list[Problem] = []
    for split in SPLITS:
        path = annotation_csv(annotations, split)
        try:
            table = read_annotations(path)
        except FormatError as exc:
            raise PrepareError(f"{exc} (the published annotation CSV)") from None
        rows[split] = {}
        for name in prepared[split]:
            if name in table:
                rows[split][name] = scale_keypoints(table[name], PUBLISHED_SIZE, size)
            else:
                problems.append(Problem(name, f"no row in {path.name}"))
    return rows, problems


def _batches(names: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(names), size):
        yield names[start : start + size]


def from_estimator(
    out: Path,
    prepared: dict[str, list[str]],
    checkpoint: str | Path,
    *,
    reuse: bool,
    device: str,
    batch_size: int,
    progress: bool,
) -> tuple[dict[str, dict[str, np.ndarray]], list[Problem], int]:
    """Our estimator's keypoints of the prepared photos; (rows, problems, newly predicted)."""
    from keypoints.predict import KeypointPredictor

    predictor = KeypointPredictor.from_checkpoint(checkpoint, device=device)
    rows: dict[str, dict[str, np.ndarray]] = {}
    problems: list[Problem] = []
    predicted = 0
    for split in SPLITS:
        path = annotation_csv(out, split)
        old: dict[str, np.ndarray] = {}
        if reuse and path.is_file():
            try:
                old = read_annotations(path)
            except FormatError:
                old = {}  # a foreign or broken file: predict everything again
        rows[split] = {n: old[n] for n in prepared[split] if n in old}
        todo = [n for n in prepared[split] if n not in old]
        folder = out / "fashion_resize" / split
        bar = tqdm(total=len(todo), desc=f"keypoints {split}", unit="img", disable=not progress)
        since_flush = 0
        for chunk in _batches(todo, batch_size):
            images, names = [], []
            for name in chunk:
                try:
                    images.append(load_image(folder / name))
                    names.append(name)
                except ImageError as exc:
                    problems.append(Problem(name, f"unreadable for keypoints: {exc}"))
            if images:
                for name, result in zip(names, predictor.predict_many(images), strict=True):
                    rows[split][name] = result.keypoints
            predicted += len(names)
            since_flush += len(chunk)
            bar.update(len(chunk))
            if since_flush >= FLUSH_EVERY:  # an interrupted run keeps what it found
                write_annotations(path, rows[split])
                since_flush = 0
        bar.close()
    return rows, problems, predicted


def write_keypoints(out: Path, rows: dict[str, dict[str, np.ndarray]]) -> None:
    for split in SPLITS:
        write_annotations(annotation_csv(out, split), dict(sorted(rows[split].items())))
