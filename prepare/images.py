"""Step 1: the raw In-shop photos, cut and sized into `fashion_resize/{train,test}/`.

The published split is a pair of lists of flat names (`train.lst`: 48,674, `test.lst`:
4,038); a raw photo goes to the split that lists it, and one that no list names (the
`flat` product shots, for instance) is left out and counted. The raw `img.zip` photos are
256x256 with white bands at the sides; PATN's `generate_fashion_datasets.py` keeps the
centre 176 columns. We do the same for any size: cut the largest centre window of the
target aspect (exactly those 176 columns at 256x256; a few rows of the 1101x750
`img_highres` photos), then resize (area filter when shrinking).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.deepfashion import parse_raw
from common.image_io import ImageError, load_image, save_image

SPLITS = ("train", "test")
RAW_SUFFIXES = (".jpg", ".jpeg", ".png")


class PrepareError(ValueError):
    """Input the preparation cannot work with at all (the message says what to do)."""


@dataclass(frozen=True)
class Problem:
    """One file that could not be used; the run goes on and the manifest lists it."""

    file: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "problem": self.problem}


def find_image_root(raw: Path) -> Path:
    """The folder holding MEN/ and WOMEN/: `raw/img` (the unpacked zip) or `raw` itself."""
    for candidate in (raw / "img", raw / "img_highres", raw):
        if (candidate / "MEN").is_dir() or (candidate / "WOMEN").is_dir():
            return candidate
    raise PrepareError(
        f"{raw}: no In-shop photos here (expected img/MEN/... and img/WOMEN/...: unpack "
        f"img.zip from the DeepFashion In-shop benchmark into this folder)"
    )


def scan_raw(image_root: Path) -> tuple[dict[str, Path], list[Problem]]:
    """flat name -> raw photo, and the files whose path is not an In-shop name."""
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    for folder, _, files in os.walk(image_root):
        for file in files:
            if not file.lower().endswith(RAW_SUFFIXES):
                continue
            path = Path(folder) / file
            rel = path.relative_to(image_root).as_posix()
            try:
                name = parse_raw(rel)
            except ValueError:
                problems.append(Problem(rel, "not an In-shop name (<G>/<Cat>/id_<ID>/NN_k_view)"))
                continue
            # the published lists name every photo .jpg
            found[f"{Path(name.flat).stem}.jpg"] = path
    return dict(sorted(found.items())), problems


def find_split_lists(folders: Iterable[Path | None]) -> dict[str, Path]:
    """train.lst and test.lst from the first folder that has both."""
    searched = []
    for folder in folders:
        if folder is None:
            continue
        searched.append(str(folder))
        paths = {s: folder / f"{s}.lst" for s in SPLITS}
        if all(p.is_file() for p in paths.values()):
            return paths
    raise PrepareError(
        f"train.lst and test.lst not found in {', '.join(searched)}: they are the published "
        f"split (PATN's fashion_data/, or ADGAN's data files); pass their folder with --lists"
    )


def read_split(lists: dict[str, Path]) -> dict[str, str]:
    """flat name -> split; a name in both lists is an error (the split must be disjoint)."""
    split: dict[str, str] = {}
    for name in SPLITS:
        for line in lists[name].read_text(encoding="utf-8").split():
            if split.get(line, name) != name:
                raise PrepareError(f"{line} is in both train.lst and test.lst")
            split[line] = name
    if not split:
        raise PrepareError(f"{lists['train']} and {lists['test']} list no image")
    return split


def fit_to_size(image: np.ndarray, size: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """Cut the largest centred window of the target aspect, then resize to `size` (H, W);
    `nearest` for label maps, which must keep their values."""
    h, w = image.shape[:2]
    th, tw = size
    if w * th > h * tw:  # too wide: keep the centre columns
        cw = round(h * tw / th)
        x0 = (w - cw) // 2
        image = image[:, x0 : x0 + cw]
    elif w * th < h * tw:  # too tall: keep the centre rows
        ch = round(w * th / tw)
        y0 = (h - ch) // 2
        image = image[y0 : y0 + ch]
    if image.shape[:2] == (th, tw):
        return np.ascontiguousarray(image)
    if nearest:
        mode = cv2.INTER_NEAREST_EXACT
    else:
        mode = cv2.INTER_AREA if image.shape[0] > th else cv2.INTER_LINEAR
    return cv2.resize(image, (tw, th), interpolation=mode)


@dataclass(frozen=True)
class ImageJob:
    source: Path
    dest: Path
    size: tuple[int, int]
    quality: int


def prepare_one(job: ImageJob) -> Problem | None:
    try:
        image = load_image(job.source)
    except ImageError as exc:
        return Problem(str(job.source), f"unreadable: {exc}")
    save_image(job.dest, fit_to_size(image, job.size), quality=job.quality)
    return None


def run_jobs(jobs: list[ImageJob], workers: int, progress: bool) -> list[Problem]:
    """Cut and write every job's photo; unreadable ones come back as problems."""
    bar = dict(total=len(jobs), desc="images", unit="img", disable=not progress)
    if workers <= 1 or len(jobs) < 2 * workers:
        results = [prepare_one(j) for j in tqdm(jobs, **bar)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunk = max(1, min(64, len(jobs) // (8 * workers)))
            results = list(tqdm(pool.map(prepare_one, jobs, chunksize=chunk), **bar))
    return [r for r in results if r is not None]


@dataclass
class ImageReport:
    prepared: dict[str, list[str]]  # split -> names present in fashion_resize/<split>/
    written: int  # photos cut in this run (the rest were there already)
    missing: list[str]  # listed, but no raw photo
    unlisted: int  # raw photos that neither list names
    problems: list[Problem]


def prepare_images(
    image_root: Path,
    split_of: dict[str, str],
    out: Path,
    *,
    size: tuple[int, int],
    quality: int,
    workers: int,
    progress: bool,
) -> ImageReport:
    raw, problems = scan_raw(image_root)
    if not raw:
        raise PrepareError(f"{image_root}: no In-shop photo found under it")
    jobs = []
    for name, source in raw.items():
        split = split_of.get(name)
        dest = out / "fashion_resize" / (split or "") / name
        if split is not None and not dest.is_file():
            jobs.append(ImageJob(source, dest, tuple(size), quality))
    problems += run_jobs(jobs, workers, progress)
    failed = {Path(p.file) for p in problems}
    prepared: dict[str, list[str]] = {s: [] for s in SPLITS}
    for name, split in sorted(split_of.items()):
        if name in raw and raw[name] not in failed:
            prepared[split].append(name)
    return ImageReport(
        prepared=prepared,
        written=len(jobs) - sum(j.source in failed for j in jobs),
        missing=sorted(n for n in split_of if n not in raw),
        unlisted=sum(n not in split_of for n in raw),
        problems=problems,
    )
