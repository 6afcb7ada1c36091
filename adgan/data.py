"""Pair datasets in the DeepFashion/ADGAN layout (real DeepFashion, or SynthFashion):

    ROOT/fashion_resize/<split>/<name>.jpg              photos (256x176 in DeepFashion)
    ROOT/fashion-resize-annotation-<split>.csv          18 keypoints per photo (y, x lists)
    ROOT/fashion-resize-pairs-<split>.csv               from,to
    ROOT/semantic_merge3/<G>/<Cat>/id_<ID>/<k>_<v>.npy  8-class maps (ADGAN's layout)

An item is a (source, target) pair: both photos in [-1, 1], the source's one-hot parsing,
the keypoints of both (pose maps are drawn from them on the device, in the batch, by the
task: cheaper than the reference's precomputed 18-channel .npy files), and, for
evaluation, the target's parsing. Photos of another size are resized to the model's (the
keypoints scaled with them). A flip mirrors source and target together and swaps the
left/right keypoint names (the reference mirrors its pose maps without swapping them).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from adgan.generators import one_hot, to_tensor
from common.deepfashion import parse_flat
from common.image_io import load_image, read_semantic_map
from keypoints.formats import read_annotations, read_pairs
from keypoints.skeleton import flip_keypoints, visible
from parsing.labels import NUM_ADGAN_CLASSES, component_classes


@dataclass
class PairDataConfig:
    root: str = "data/synthfashion"
    train_split: str = "train"
    val_split: str = "test"
    semantic_dir: str = "semantic_merge3"
    flip_probability: float = 0.0  # the reference trains without flips
    # share of training items that are garment swaps (SynthFashion's swap ground truth of
    # the train split, `python -m synth --out ROOT --add-swaps train`): ADGAN has no swap
    # truth and learns swaps only through pose transfer; with it, what a swapped garment
    # uncovers or covers (legs under a skirt that became shorts) is taught directly
    swap_fraction: float = 0.0


@dataclass(frozen=True)
class Person:
    """One photo and where its annotations are."""

    image: Path
    keypoints: np.ndarray  # [18, 2] (x, y), -1 missing, in the photo's pixels
    semantic: Path


class DeepFashionPeople:
    """The photos, keypoints and semantic maps of one split, by file name."""

    def __init__(self, root: str | Path, split: str, semantic_dir: str = "semantic_merge3"):
        self.root = Path(root)
        self.images = self.root / "fashion_resize" / split
        if not self.images.is_dir():
            raise FileNotFoundError(f"{self.images}: no such folder (DeepFashion layout?)")
        self.annotations = read_annotations(self.root / f"fashion-resize-annotation-{split}.csv")
        self.semantic_dir = semantic_dir

    def __getitem__(self, name: str) -> Person:
        if name not in self.annotations:
            raise KeyError(f"{name}: not in the annotation CSV of {self.images}")
        return Person(
            self.images / name,
            self.annotations[name],
            self.root / parse_flat(name).semantic_path(self.semantic_dir),
        )


def load_person(
    person: Person, size: tuple[int, int], *, parsing: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(RGB uint8 [H, W, 3], keypoints [18, 2], labels uint8 [H, W] or None) at `size`."""
    image = load_image(person.image)
    labels = read_semantic_map(person.semantic) if parsing else None
    if labels is not None and labels.shape != image.shape[:2]:
        raise ValueError(
            f"{person.semantic}: map of {labels.shape[1]}x{labels.shape[0]} for a photo of "
            f"{image.shape[1]}x{image.shape[0]} ({person.image.name})"
        )
    kp = person.keypoints.copy()
    h, w = size
    if image.shape[:2] != (h, w):
        sy, sx = h / image.shape[0], w / image.shape[1]
        shown = visible(kp)
        kp[shown] = (kp[shown] + 0.5) * np.array([sx, sy], np.float32) - 0.5
        area = sy < 1 and sx < 1
        image = cv2.resize(
            image, (w, h), interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR
        )
        if labels is not None:
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    return image, kp, labels


class PairDataset(Dataset):
    """(source, target) pairs of one split; items are indexed by SampleKey (index, seed)
    when training (the seed decides the flip) or by a plain index."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        size: tuple[int, int],
        *,
        semantic_dir: str = "semantic_merge3",
        flip_probability: float = 0.0,
        target_parsing: bool = False,
        pairs: list[tuple[str, str]] | None = None,
    ) -> None:
        self.people = DeepFashionPeople(root, split, semantic_dir)
        self.pairs = (
            pairs
            if pairs is not None
            else read_pairs(Path(root) / f"fashion-resize-pairs-{split}.csv")
        )
        if not self.pairs:
            raise ValueError(f"{root}: the {split} pairs file lists no pairs")
        missing = [n for pair in self.pairs for n in pair if n not in self.people.annotations]
        if missing:
            raise ValueError(
                f"{root}: {len(missing)} paired name(s) have no keypoints in the annotation "
                f"CSV, e.g. {missing[0]}"
            )
        self.size, self.flip, self.target_parsing = tuple(size), flip_probability, target_parsing

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        index, seed = (key, None) if isinstance(key, int) else (key[0], key[1])
        src_name, tgt_name = self.pairs[index]
        source, src_kp, src_labels = load_person(self.people[src_name], self.size)
        target, tgt_kp, tgt_labels = load_person(
            self.people[tgt_name], self.size, parsing=self.target_parsing
        )
        flip = seed is not None and np.random.default_rng(seed).random() < self.flip
        if flip:
            width = self.size[1]
            source, target = source[:, ::-1], target[:, ::-1]
            src_labels = src_labels[:, ::-1]
            tgt_labels = tgt_labels[:, ::-1] if tgt_labels is not None else None
            src_kp, tgt_kp = flip_keypoints(src_kp, width), flip_keypoints(tgt_kp, width)
        item: dict[str, torch.Tensor | str] = {
            "source": to_tensor(np.ascontiguousarray(source)),
            "target": to_tensor(np.ascontiguousarray(target)),
            "source_parsing": one_hot(np.ascontiguousarray(src_labels)),
            "source_keypoints": torch.from_numpy(src_kp),
            "target_keypoints": torch.from_numpy(tgt_kp),
            "name": f"{src_name}___{tgt_name}",
        }
        if tgt_labels is not None:
            item["target_labels"] = torch.from_numpy(np.ascontiguousarray(tgt_labels))
        return item


@dataclass(frozen=True)
class SwapPair:
    """SynthFashion's garment-swap ground truth: `person` (a photo of A) wearing `donor`'s
    `component`, in the pose of A's photo `pose`; `target` renders exactly that (its 8-class
    map beside it, same stem, `.npy`)."""

    person: str
    donor: str
    component: str
    pose: str
    target: Path


def read_swap_pairs(root: str | Path, split: str = "test") -> list[SwapPair]:
    path = Path(root) / f"swap-pairs-{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no swap set (SynthFashion writes one with swaps on)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    want = {"person", "donor", "component", "pose", "target"}
    if rows and not want <= set(rows[0]):
        raise ValueError(f"{path}: expected columns {sorted(want)}")
    return [
        SwapPair(
            r["person"],
            r["donor"],
            r["component"],
            r["pose"],
            Path(root) / "swap" / split / r["target"],
        )
        for r in rows
    ]


class SwapMixDataset(Dataset):
    """Training items of which a share (`fraction`, decided by each item's seed) are garment
    swaps: `person`'s photo as the source, `donor`'s photo giving the swapped component,
    the ground-truth swap in the pose of another photo of `person` as the target. Every item
    has the same keys, so a batch mixes both: a plain pair's donor is its own source and it
    takes nothing from it (`take`, [8] bool: the components from the donor)."""

    def __init__(self, pairs: PairDataset, root: str | Path, split: str, fraction: float):
        self.pairs, self.fraction = pairs, fraction
        self.swaps = read_swap_pairs(root, split)
        if not self.swaps:
            raise ValueError(f"{root}: the {split} swap set lists no swaps")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor | str]:
        seed = None if isinstance(key, int) else key[1]
        rng = np.random.default_rng([seed, 1]) if seed is not None else None
        if rng is None or rng.random() >= self.fraction:
            item = self.pairs[key]
            item["donor"] = item["source"]
            item["donor_parsing"] = item["source_parsing"]
            item["donor_keypoints"] = item["source_keypoints"]
            item["take"] = torch.zeros(NUM_ADGAN_CLASSES, dtype=torch.bool)
            return item
        return self._swap(self.swaps[int(rng.integers(len(self.swaps)))], rng)

    def _swap(self, s: SwapPair, rng: np.random.Generator) -> dict[str, torch.Tensor | str]:
        people, size = self.pairs.people, self.pairs.size
        truth_of = replace(people[s.pose], image=s.target, semantic=s.target.with_suffix(".npy"))
        person, person_kp, person_labels = load_person(people[s.person], size)
        donor, donor_kp, donor_labels = load_person(people[s.donor], size)
        truth, truth_kp, _ = load_person(truth_of, size, parsing=False)
        if rng.random() < self.pairs.flip:
            width = size[1]
            person, donor, truth = person[:, ::-1], donor[:, ::-1], truth[:, ::-1]
            person_labels, donor_labels = person_labels[:, ::-1], donor_labels[:, ::-1]
            person_kp, donor_kp, truth_kp = (
                flip_keypoints(k, width) for k in (person_kp, donor_kp, truth_kp)
            )
        take = torch.zeros(NUM_ADGAN_CLASSES, dtype=torch.bool)
        take[list(component_classes(s.component))] = True
        c = np.ascontiguousarray
        return {
            "source": to_tensor(c(person)),
            "target": to_tensor(c(truth)),
            "source_parsing": one_hot(c(person_labels)),
            "source_keypoints": torch.from_numpy(person_kp),
            "target_keypoints": torch.from_numpy(truth_kp),
            "donor": to_tensor(c(donor)),
            "donor_parsing": one_hot(c(donor_labels)),
            "donor_keypoints": torch.from_numpy(donor_kp),
            "take": take,
            "name": f"{s.person}___{s.target.name}",
        }
