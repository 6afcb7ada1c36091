"""Writing a SynthFashion dataset in the real datasets' own formats.

    OUT/
      fashion_resize/{train,test}/fashion<G><Cat>id<ID>01_<k><view>.jpg
      fashion-resize-annotation-{train,test}.csv     visible keypoints, DeepFashion CSV
      fashion-resize-pairs-{train,test}.csv          same person, two poses (from,to)
      {train,test}.lst
      semantic_merge3/<G>/<Cat>/id_<ID>/01_<k>_<view>.npy   8-class maps (ADGAN layout)
      densepose/{train,test}/<stem>_iuv.png          exact IUV (R=I, G=U, B=V)
      densepose/densepose_synth_{train,test}.json    DensePose-COCO (+ COCO keypoints)
      faces/CelebA-HQ-img/<j>.jpg, faces/CelebAMask-HQ-mask-anno/<j//2000>/<j:05d>_<attr>.png
      faces/{train,test}.txt                         face indices per split
      swap/test/<stem>.jpg|.npy|_iuv.png             person A in donor B's garment
      swap-pairs-test.csv                            person,donor,component,pose,target
      backgrounds/{train,test}/bg_<i>.jpg            person-free scenes (negatives)
      identities.json, manifest.json                 (manifest last: its presence = complete)

Every random choice draws from a generator seeded by (seed, purpose, identity, ...), so
a dataset is the same whatever the number of worker processes. A swap target reuses the
pose and the camera of the person's own photo in that pose: the two images differ only
in the swapped garment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from common.config import from_dict, to_dict
from common.deepfashion import FashionName
from common.fileio import write_json, write_text
from common.image_io import save_image, write_semantic_map
from keypoints.formats import write_annotations, write_pairs
from keypoints.skeleton import to_coco17
from parsing.densepose import coarse_parts, save_iuv
from parsing.densepose_coco import make_annotation, write_densepose_coco
from parsing.formats import celebamask_image_path, write_celebamask_masks
from synth.config import SynthConfig
from synth.faces import render_face
from synth.identity import Identity, sample_identity
from synth.posebank import BANK_PATH, BankPose, PoseSample, jitter_pose, read_bank
from synth.render import RenderOutput, render_person
from synth.scene import apply_camera, background

SPLITS = ("train", "test")
_CSV_PREFIXES = ("fashion-resize-annotation", "fashion-resize-pairs", "swap-pairs")
OUTPUT_NAMES = (
    "fashion_resize",
    "semantic_merge3",
    "densepose",
    "faces",
    "swap",
    "backgrounds",
    "identities.json",
    "manifest.json",
    *(f"{prefix}-{split}.csv" for prefix in _CSV_PREFIXES for split in SPLITS),
    *(f"{split}.lst" for split in SPLITS),
)

# 2: one photo session per identity (dataset.session_per_identity); 1: a session per photo.
FORMAT_VERSION = 2

# Purposes of the seeded generators.
_IDENTITY, _POSE, _RENDER, _POINTS, _FACE, _SWAP, _CHOICE, _BACKGROUND, _SESSION = range(9)


def rng_for(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, purpose, *keys])


def session_for(job: Job, index: int) -> np.random.Generator | None:
    """The photo session of identity `index` (a fresh generator of the same seed for each
    of its photos), or None for a new session per photo."""
    if not job.config.dataset.session_per_identity:
        return None
    return rng_for(job.seed, _SESSION, index)


def split_of(index: int, n_identities: int, test_fraction: float) -> str:
    """The last round(n * test_fraction) identities are test (at least one of two)."""
    n_test = round(n_identities * test_fraction)
    if n_identities >= 2 and test_fraction > 0:
        n_test = max(n_test, 1)
    return "test" if index >= n_identities - n_test else "train"


@dataclass
class Job:
    out: Path
    seed: int
    n_identities: int
    poses: int
    config: SynthConfig


@dataclass
class ImageRecord:
    name: str
    split: str
    image_id: int
    keypoints: np.ndarray  # visible points, for the CSV
    image_entry: dict[str, Any]
    annotation: dict[str, Any] | None


@dataclass
class IdentityRecord:
    index: int
    split: str
    description: dict[str, Any]
    images: list[ImageRecord] = field(default_factory=list)
    faces: list[int] = field(default_factory=list)


_BANK: list[BankPose] | None = None


def _bank() -> list[BankPose]:
    global _BANK
    if _BANK is None:
        _BANK = read_bank(BANK_PATH)
    return _BANK


def make_identity(job: Job, index: int) -> Identity:
    split = split_of(index, job.n_identities, job.config.dataset.test_fraction)
    return sample_identity(index, split, rng_for(job.seed, _IDENTITY, index), job.config)


def identity_bank_rows(job: Job, index: int, split: str) -> list[BankPose]:
    """The bank rows identity `index` is rendered in: distinct rows of its split."""
    pool = [row for row in _bank() if row.split == split] or _bank()
    rng = rng_for(job.seed, _CHOICE, index)
    replace = job.poses > len(pool)
    picks = rng.choice(len(pool), size=job.poses, replace=replace)
    return [pool[int(i)] for i in picks]


def make_pose(job: Job, index: int, k: int, row: BankPose) -> PoseSample:
    rng = rng_for(job.seed, _POSE, index, k)
    return jitter_pose(row, rng, job.config.pose, size=job.config.size)


def image_name(identity: Identity, k: int, view: str) -> FashionName:
    return FashionName(
        gender=identity.gender,
        category=identity.category,
        item=identity.item_id,
        outfit="01",
        view_no=k + 1,
        view=view,
    )


def _write_ground_truth(
    image_path: Path, semantic_path: Path, iuv_path: Path, result: RenderOutput
) -> None:
    save_image(image_path, result.image, quality=result.jpeg_quality)
    write_semantic_map(semantic_path, result.labels)
    save_iuv(iuv_path, result.parts, result.u, result.v)


def _densepose_annotation(
    result: RenderOutput, image_id: int, n_points: int, rng: np.random.Generator
) -> dict[str, Any] | None:
    if not result.person_mask.any():
        return None
    rows, cols = np.nonzero(result.parts)
    if rows.size:
        take = rng.choice(rows.size, size=min(n_points, rows.size), replace=False)
        take.sort()
        rows, cols = rows[take], cols[take]
    return make_annotation(
        annotation_id=image_id,
        image_id=image_id,
        person_mask=result.person_mask,
        coarse_image=coarse_parts(result.parts),
        point_rows=rows,
        point_cols=cols,
        parts=result.parts[rows, cols],
        u=result.u[rows, cols],
        v=result.v[rows, cols],
        keypoints_coco=to_coco17(result.keypoints_all, result.visibility),
    )


def render_identity(job: Job, index: int) -> IdentityRecord:
    """Render and write every image (and face) of one identity; return its records."""
    cfg, out = job.config, job.out
    identity = make_identity(job, index)
    record = IdentityRecord(index=index, split=identity.split, description=identity.describe())
    height, width = cfg.size
    for k, row in enumerate(identity_bank_rows(job, index, identity.split)):
        pose = make_pose(job, index, k, row)
        result = render_person(
            identity, pose, cfg, rng_for(job.seed, _RENDER, index, k), session_for(job, index)
        )
        name = image_name(identity, k, row.view)
        split = identity.split
        _write_ground_truth(
            out / "fashion_resize" / split / name.flat,
            out / name.semantic_path(),
            out / "densepose" / split / f"{Path(name.flat).stem}_iuv.png",
            result,
        )
        image_id = index * job.poses + k + 1
        annotation = _densepose_annotation(
            result, image_id, cfg.dataset.densepose_points, rng_for(job.seed, _POINTS, index, k)
        )
        record.images.append(
            ImageRecord(
                name=name.flat,
                split=split,
                image_id=image_id,
                keypoints=result.keypoints,
                image_entry={
                    "id": image_id,
                    "file_name": name.flat,
                    "height": height,
                    "width": width,
                },
                annotation=annotation,
            )
        )
    if cfg.dataset.faces:
        for m in range(cfg.faces.per_identity):
            j = index * cfg.faces.per_identity + m
            face = render_face(identity, rng_for(job.seed, _FACE, index, m), cfg)
            save_image(
                celebamask_image_path(out / "faces", j), face.image, quality=face.jpeg_quality
            )
            write_celebamask_masks(out / "faces", j, face.labels)
            record.faces.append(j)
    return record


@dataclass
class SwapTask:
    person: int  # identity index of A
    donor: int  # identity index of B
    component: str  # "upper" or "lower"
    pose_k: int  # A's image whose pose (and camera) the target takes
    source_k: int  # A's image given as the source


def plan_swaps(job: Job, records: list[IdentityRecord]) -> list[SwapTask]:
    cfg = job.config.dataset
    if not cfg.swaps or cfg.swap_per_identity <= 0:
        return []
    tasks = []
    by_index = {r.index: r for r in records}
    for rec in records:
        if rec.split not in cfg.swap_splits:
            continue
        peers = [r for r in records if r.split == rec.split and r.index != rec.index]
        for j in range(cfg.swap_per_identity):
            rng = rng_for(job.seed, _SWAP, rec.index, j)
            for component in ("upper", "lower") if j % 2 == 0 else ("lower", "upper"):
                donors = [p.index for p in peers if _compatible(rec, by_index[p.index], component)]
                if donors:
                    donor = donors[int(rng.integers(len(donors)))]
                    poses = job.poses
                    tasks.append(
                        SwapTask(
                            rec.index, donor, component, pose_k=(j + 1) % poses, source_k=j % poses
                        )
                    )
                    break
    return tasks


def _compatible(a: IdentityRecord, b: IdentityRecord, component: str) -> bool:
    a_upper, b_upper = a.description["upper"], b.description["upper"]
    if component == "upper":
        return (a_upper["kind"] == "dress") == (b_upper["kind"] == "dress") and a_upper != b_upper
    return (
        a.description["lower"] is not None
        and b.description["lower"] is not None
        and a.description["lower"] != b.description["lower"]
    )


def render_swap(job: Job, task: SwapTask) -> dict[str, str]:
    person = make_identity(job, task.person)
    donor = make_identity(job, task.donor)
    rows = identity_bank_rows(job, task.person, person.split)
    pose = make_pose(job, task.person, task.pose_k, rows[task.pose_k])
    dressed = person.wearing(task.component, donor)
    result = render_person(
        dressed,
        pose,
        job.config,
        rng_for(job.seed, _RENDER, task.person, task.pose_k),
        session_for(job, task.person),
    )
    pose_name = image_name(person, task.pose_k, rows[task.pose_k].view)
    source_name = image_name(person, task.source_k, rows[task.source_k].view)
    donor_rows = identity_bank_rows(job, task.donor, donor.split)
    donor_name = image_name(donor, 0, donor_rows[0].view)
    stem = f"{Path(pose_name.flat).stem}_{task.component}_from_id{donor.item_id}"
    folder = job.out / "swap" / person.split
    _write_ground_truth(
        folder / f"{stem}.jpg", folder / f"{stem}.npy", folder / f"{stem}_iuv.png", result
    )
    return {
        "person": source_name.flat,
        "donor": donor_name.flat,
        "component": task.component,
        "pose": pose_name.flat,
        "target": f"{stem}.jpg",
        "split": person.split,
    }


def _run(fn, items: list, workers: int, desc: str, progress: bool) -> list:
    if workers <= 1:
        return [fn(item) for item in tqdm(items, desc=desc, disable=not progress)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(
            tqdm(
                pool.map(fn, items, chunksize=max(1, len(items) // (8 * workers))),
                total=len(items),
                desc=desc,
                disable=not progress,
            )
        )


class _IdentityWorker:
    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, index: int) -> IdentityRecord:
        return render_identity(self.job, index)


def render_background(job: Job, task: tuple[str, int]) -> str:
    """A person-free scene: the backdrop and camera of SynthFashion photos, no one in it."""
    split, index = task
    cfg = job.config
    rng = rng_for(job.seed, _BACKGROUND, SPLITS.index(split), index)
    scene_cfg = dataclasses.replace(
        cfg.background, clutter_probability=cfg.dataset.background_clutter_probability
    )
    height, width = cfg.size
    image = apply_camera(rng, background(rng, height, width, scene_cfg), cfg.camera)
    name = f"bg_{index:06d}.jpg"
    save_image(
        job.out / "backgrounds" / split / name,
        image,
        quality=int(rng.integers(*cfg.camera.jpeg_quality_range)),
    )
    return name


class _BackgroundWorker:
    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, task: tuple[str, int]) -> str:
        return render_background(self.job, task)


class _SwapWorker:
    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, task: SwapTask) -> dict[str, str]:
        return render_swap(self.job, task)


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse to mix with existing files unless asked; then clear only what we write."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    existing = [p.name for p in out.iterdir()] if out.exists() else []
    if existing and not overwrite:
        raise FileExistsError(
            f"{out}: not empty ({', '.join(sorted(existing)[:5])}...); "
            f"choose an empty folder or pass --overwrite"
        )
    for name in OUTPUT_NAMES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _ordered_pairs(names: list[str], limit: int) -> Iterable[tuple[str, str]]:
    pairs = [(a, b) for a in names for b in names if a != b]
    return pairs[:limit] if limit > 0 else pairs


def generate(
    out: str | os.PathLike[str],
    *,
    identities: int,
    poses: int,
    seed: int,
    config: SynthConfig,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Render and write a whole dataset; returns the manifest (also written last)."""
    if identities < 1 or poses < 1:
        raise ValueError("need at least one identity and one pose")
    out = Path(out)
    prepare_output(out, overwrite)
    started = time.perf_counter()
    job = Job(out=out, seed=seed, n_identities=identities, poses=poses, config=config)
    records: list[IdentityRecord] = _run(
        _IdentityWorker(job), list(range(identities)), workers, "people", progress
    )
    records.sort(key=lambda r: r.index)
    swaps = _run(_SwapWorker(job), plan_swaps(job, records), workers, "swaps", progress)
    background_tasks = [
        (split, i)
        for split in SPLITS
        for i in range(
            round(
                config.dataset.background_fraction
                * job.poses
                * sum(r.split == split for r in records)
            )
        )
    ]
    _run(_BackgroundWorker(job), background_tasks, workers, "backgrounds", progress)
    counts: dict[str, Any] = {}
    for split in SPLITS:
        recs = [r for r in records if r.split == split]
        images = [im for r in recs for im in r.images]
        write_annotations(
            out / f"fashion-resize-annotation-{split}.csv", {im.name: im.keypoints for im in images}
        )
        pairs = [
            p
            for r in recs
            for p in _ordered_pairs(
                [im.name for im in r.images], config.dataset.max_pairs_per_identity
            )
        ]
        write_pairs(out / f"fashion-resize-pairs-{split}.csv", pairs)
        write_text(out / f"{split}.lst", "".join(f"{im.name}\n" for im in images))
        write_densepose_coco(
            out / "densepose" / f"densepose_synth_{split}.json",
            [im.image_entry for im in images],
            [im.annotation for im in images if im.annotation is not None],
            description=f"SynthFashion {split}, seed {seed}",
        )
        faces = [j for r in recs for j in r.faces]
        if config.dataset.faces:
            write_text(out / "faces" / f"{split}.txt", "".join(f"{j}\n" for j in faces))
        split_swaps = [s for s in swaps if s["split"] == split]
        if split in config.dataset.swap_splits and config.dataset.swaps:
            _write_swap_pairs(out / f"swap-pairs-{split}.csv", split_swaps)
        counts[split] = {
            "identities": len(recs),
            "images": len(images),
            "pairs": len(pairs),
            "faces": len(faces),
            "backgrounds": sum(t[0] == split for t in background_tasks),
            "swaps": len(split_swaps),
        }
    write_json(out / "identities.json", [r.description for r in records])
    manifest = {
        "dataset": "SynthFashion",
        "version": FORMAT_VERSION,
        "seed": seed,
        "identities": identities,
        "poses_per_identity": poses,
        "size": list(config.size),
        "counts": counts,
        "pose_bank_sha256": hashlib.sha256(BANK_PATH.read_bytes()).hexdigest(),
        "seconds": round(time.perf_counter() - started, 2),
        "workers": workers,
        "config": to_dict(config),
    }
    write_json(out / "manifest.json", manifest)
    return manifest


def _write_swap_pairs(path: Path, swaps: list[dict[str, str]]) -> None:
    header = "person,donor,component,pose,target\n"
    rows = "".join(
        f"{s['person']},{s['donor']},{s['component']},{s['pose']},{s['target']}\n" for s in swaps
    )
    write_text(path, header + rows)


def add_swaps(
    out: str | os.PathLike[str],
    split: str,
    *,
    identities: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> int:
    """Garment-swap ground truth for `split` of a SynthFashion folder already written (a
    dataset renders it for the test split only: ADGAN has no swap truth to learn from, a
    generator trained here can). The people, poses and photo sessions are the folder's own,
    re-made from its manifest's seed and config; `identities` > 0 takes the first that many
    of the split (every identity's donors are drawn among them). Writes swap/<split>/ and
    swap-pairs-<split>.csv, updates the manifest; returns the number of swaps."""
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    config = from_dict(SynthConfig, manifest["config"], where="manifest config")
    config.dataset = dataclasses.replace(config.dataset, swaps=True, swap_splits=(split,))
    job = Job(out, manifest["seed"], manifest["identities"], manifest["poses_per_identity"], config)
    described = json.loads((out / "identities.json").read_text())
    records = [IdentityRecord(d["index"], d["split"], d) for d in described if d["split"] == split]
    if identities > 0:
        records = records[:identities]
    folder = out / "swap" / split
    if folder.is_dir():
        shutil.rmtree(folder)
    swaps = _run(_SwapWorker(job), plan_swaps(job, records), workers, "swaps", progress)
    _write_swap_pairs(out / f"swap-pairs-{split}.csv", swaps)
    manifest["counts"][split]["swaps"] = len(swaps)
    write_json(out / "manifest.json", manifest)
    return len(swaps)
