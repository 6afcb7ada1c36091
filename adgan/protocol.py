"""The published evaluation protocol of pose transfer on DeepFashion, and its table.

    python -m adgan.protocol --checkpoint runs/adgan/<run> --data data/deepfashion \\
        --fid pt_inception-2015-12-05-6726825d.pth --is inception_v3_google-0cc3c7bd.pth \\
        --lpips alexnet-owt-7be5be79.pth --keypoints runs/keypoints/<run> \\
        --table results.md --name "ours, 800 epochs"
    # or images generated elsewhere, one per pair, named <from stem>___<to stem>.png
    python -m adgan.protocol --generated DIR --data data/deepfashion --table results.md

Each column is computed the way the papers that report it compute it (`COLUMNS` names the
protocol, and the table prints it under the numbers):

- SSIM as PATN's and ADGAN's `tool/getMetrics_fashion.py`: both 256x176 images are first
  padded with 40 white columns on each side to 256x256 (`addBounding`), then skimage's
  Gaussian-weighted SSIM (sigma 1.5, population covariance, data range of the padded
  generated image). The white bands are identical in both images, so this SSIM is higher
  than the plain one; both are reported.
- IS as the same script: on the padded generated images.
- FID as GFLA and PISE report it: the generated test images against the statistics of the
  *training* images (pytorch-fid's Inception), cached under a hash of the image list and
  the weights.
- LPIPS (AlexNet, v0.1) of each generated image against its target, unpadded.
- PCKh@0.5 with the head-box rule of `tool/calPCKH_fashion.py` (`keypoints.metrics`): our
  keypoint estimator on the generated images against the target's annotated keypoints
  (the papers ran OpenPose; name the estimator with the number).

Network metrics need their weight files (nothing is downloaded): a metric whose flag is
not given is left out of the table; an empty path (`--fid ""`) takes the environment
variable of `adgan.metrics`, or else a random network with a warning (for tests only).
FID's matrix square root of two 2048x2048 covariances takes about 25 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from adgan.data import DeepFashionPeople, PairDataset, load_person
from adgan.evaluate import generate_pairs, keypoint_pckh, spread_subset
from adgan.generators import generator_from_checkpoint, to_image
from adgan.metrics import (
    LPIPS,
    FIDInception,
    ISInception,
    feature_statistics,
    frechet_distance_from_statistics,
    inception_score,
    l1,
    ssim,
)
from common.checkpoint import CheckpointError, find_checkpoint, read_config
from common.fileio import atomic_path, write_json, write_text
from common.image_io import ImageError, load_image
from keypoints.formats import FormatError

PUBLISHED_PAD = 40  # white columns each side: 256x176 -> 256x256


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    protocol: str
    digits: int = 4


COLUMNS: tuple[Column, ...] = (
    Column(
        "fid",
        "FID ↓",
        "pytorch-fid Inception-v3 pool features; generated test images vs the statistics "
        "of all training images (GFLA/PISE)",
        3,
    ),
    Column(
        "ssim_padded",
        "SSIM ↑",
        "PATN/ADGAN getMetrics_fashion: 40 white columns padded on each side (256x256), "
        "skimage Gaussian SSIM (sigma 1.5, population covariance, data range of the "
        "padded generated image)",
    ),
    Column("ssim", "SSIM (no pad) ↑", "the same SSIM on the 256x176 images as they are"),
    Column(
        "mask_ssim",
        "mask-SSIM ↑",
        "the unpadded SSIM of both images times the target's person mask (8-class map > 0; "
        "PATN draws its mask from the keypoints)",
    ),
    Column("lpips", "LPIPS ↓", "lpips v0.1, AlexNet, generated vs target, unpadded"),
    Column(
        "is",
        "IS ↑",
        "torchvision Inception-v3, 10 splits, on the padded generated images (getMetrics)",
        3,
    ),
    Column(
        "pckh",
        "PCKh ↑",
        "PCKh@0.5, head box of nose/neck/eyes/ears (calPCKH_fashion): our keypoint "
        "estimator on the generated images vs the target's annotation (the papers: OpenPose)",
        3,
    ),
)


# -- the pieces --------------------------------------------------------------------------


def pad_white(images: np.ndarray, pad: int | None = None) -> np.ndarray:
    """PATN's `addBounding`: `pad` white columns on each side of uint8 [.., H, W, 3].

    The default makes the image square: 40 columns at 256x176, as published."""
    w = images.shape[-2]
    pad = (images.shape[-3] - w) // 2 if pad is None else pad
    widths = [(0, 0)] * images.ndim
    widths[-2] = (pad, pad)
    return np.pad(images, widths, constant_values=255)


def ssim_padded(reference: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """SSIM per image after the published white padding (see the module docstring)."""
    return ssim(pad_white(reference), pad_white(generated))


def _tensors(images: Iterable[np.ndarray], batch_size: int, device: str) -> Iterator[torch.Tensor]:
    """uint8 [H, W, 3] images -> float batches [B, 3, H, W] in [0, 1]."""
    batch: list[np.ndarray] = []
    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(255).to(device)
            batch = []
    if batch:
        yield torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(255).to(device)


def inception_features(
    net: torch.nn.Module, images: Iterable[np.ndarray], batch_size: int, device: str
) -> np.ndarray:
    return torch.cat([net(b).cpu() for b in _tensors(images, batch_size, device)]).numpy()


def _weights_id(path: str) -> str:
    """What names a weight file in a cache key: its name and size (hashing 100 MB each
    time would cost more than the statistics)."""
    file = Path(path)
    return f"{file.name}:{file.stat().st_size}" if file.is_file() else path


def training_statistics(
    root: Path,
    split: str,
    size: tuple[int, int],
    net: torch.nn.Module,
    *,
    weights: str,
    cache_dir: Path,
    max_images: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, covariance, image count) of the Inception features of the training photos
    at the generator's size; cached as .npz under a hash of the list, size and weights."""
    folder = root / "fashion_resize" / split
    names = sorted(p.name for p in folder.glob("*.jpg"))
    if len(names) < 2:
        raise FileNotFoundError(f"{folder}: FID needs the training photos (found {len(names)})")
    names = [names[i] for i in spread_subset(len(names), max_images)]
    key = hashlib.sha256(
        json.dumps([names, list(size), _weights_id(weights)]).encode()
    ).hexdigest()[:16]
    cache = cache_dir / f"fid-{split}-{len(names)}-{key}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return data["mu"], data["sigma"], len(names)

    def photos() -> Iterator[np.ndarray]:
        for name in tqdm(names, desc=f"FID {split} statistics", disable=not progress):
            image = load_image(folder / name)
            if image.shape[:2] != tuple(size):
                image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            yield image

    mu, sigma = feature_statistics(inception_features(net, photos(), batch_size, device))
    with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mu=mu, sigma=sigma)
    return mu, sigma, len(names)


def fid_against_training(
    generated: list[np.ndarray],
    root: Path,
    train_split: str,
    net: torch.nn.Module,
    *,
    weights: str,
    cache_dir: Path,
    max_images: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[float, float]:
    """(FID of the generated images against the training photos' statistics, how many
    training photos); `net` maps [B, 3, H, W] in [0, 1] to features [B, D]."""
    mu, sigma, n = training_statistics(
        root,
        train_split,
        generated[0].shape[:2],
        net,
        weights=weights,
        cache_dir=cache_dir,
        max_images=max_images,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    features = inception_features(net, generated, batch_size, device)
    return frechet_distance_from_statistics(*feature_statistics(features), mu, sigma), float(n)


# -- the protocol ------------------------------------------------------------------------


@dataclass
class Generated:
    """What the protocol needs of the test pairs (all uint8 / float arrays, same size)."""

    generated: list[np.ndarray]  # [H, W, 3]
    targets: list[np.ndarray]  # [H, W, 3]
    masks: list[np.ndarray]  # [H, W] bool: the target's person
    keypoints: list[np.ndarray]  # [18, 2]: the target's annotation


def from_checkpoint(
    checkpoint: str, root: Path, split: str, max_pairs: int, batch_size: int, device: str
) -> Generated:
    generator = generator_from_checkpoint(checkpoint, device)
    data = PairDataset(root, split, generator.config.image_size, target_parsing=True)
    out = Generated([], [], [], [])
    indices = spread_subset(len(data), max_pairs)
    for items, fake in generate_pairs(generator, data, indices, batch_size, device):
        for it, f in zip(items, fake, strict=True):
            out.generated.append(f)
            out.targets.append(to_image(it["target"]))
            out.masks.append(it["target_labels"].numpy() > 0)
            out.keypoints.append(it["target_keypoints"].numpy())
    return out


_PAIR_FILE = re.compile(r"^(?P<src>.+?)___(?P<tgt>.+)\.(png|jpg|jpeg)$")


def from_folder(folder: Path, root: Path, split: str, max_pairs: int) -> Generated:
    """Images generated elsewhere: one per pair, `<from stem>___<to stem>.png`."""
    files = sorted(p for p in folder.glob("*") if _PAIR_FILE.match(p.name))
    if not files:
        raise FileNotFoundError(f"{folder}: no generated image named <from>___<to>.png")
    people = DeepFashionPeople(root, split)
    out = Generated([], [], [], [])
    for i in spread_subset(len(files), max_pairs):
        fake = load_image(files[i])
        target_name = _PAIR_FILE.match(files[i].name)["tgt"] + ".jpg"
        target, kp, labels = load_person(people[target_name], fake.shape[:2])
        out.generated.append(fake)
        out.targets.append(target)
        out.masks.append(labels > 0)
        out.keypoints.append(kp)
    return out


def protocol_metrics(
    gen: Generated,
    *,
    root: Path,
    train_split: str = "train",
    fid_weights: str | None = None,
    is_weights: str | None = None,
    lpips_weights: str | None = None,
    keypoints: str | None = None,
    fid_train_max: int = 0,
    cache_dir: Path | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, float]:
    """Every column of `COLUMNS` whose inputs are given, plus L1 and the counts."""
    fake, real = np.stack(gen.generated), np.stack(gen.targets)
    report: dict[str, float] = {
        "pairs": float(len(fake)),
        "ssim_padded": float(ssim_padded(real, fake).mean()),
        "ssim": float(ssim(real, fake).mean()),
        "mask_ssim": float(ssim(real, fake, np.stack(gen.masks)).mean()),
        "l1": float(l1(real, fake).mean()),
    }
    if fid_weights is not None:
        report["fid"], report["fid_train_images"] = fid_against_training(
            gen.generated,
            root,
            train_split,
            FIDInception(fid_weights).to(device),
            weights=fid_weights,
            cache_dir=cache_dir or root / ".cache",
            max_images=fid_train_max,
            batch_size=batch_size,
            device=device,
            progress=progress,
        )
    if is_weights is not None:
        net = ISInception(is_weights).to(device)
        probs = torch.cat([net(b).cpu() for b in _tensors(pad_white(fake), batch_size, device)])
        report["is"], report["is_std"] = inception_score(probs.numpy())
    if lpips_weights is not None:
        net = LPIPS(lpips_weights).to(device)
        values = [
            net(a * 2 - 1, b * 2 - 1).cpu()
            for a, b in zip(
                _tensors(fake, batch_size, device), _tensors(real, batch_size, device), strict=True
            )
        ]
        report["lpips"] = float(torch.cat(values).mean())
    if keypoints is not None:
        report["pckh"] = keypoint_pckh(gen.generated, gen.keypoints, keypoints, device)
    return report


# -- the table ---------------------------------------------------------------------------

TABLE_TITLE = "| Model | Pairs |"


def _row(name: str, report: dict[str, float]) -> str:
    cells = [name.replace("|", "/"), f"{int(report.get('pairs', 0)):,}"]
    for c in COLUMNS:
        cells.append(f"{report[c.key]:.{c.digits}f}" if c.key in report else "–")
    return "| " + " | ".join(cells) + " |"


def write_table(path: Path, name: str, report: dict[str, float]) -> str:
    """Add (or replace) the row `name` in a Markdown table in the papers' layout, models
    as rows, with the protocol of each column written under it; returns the text."""
    header = TABLE_TITLE + "".join(f" {c.title} |" for c in COLUMNS)
    rows: list[str] = []
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines and lines[0] == header:
            rows = [ln for ln in lines[2:] if ln.startswith("| ")]
    rows = [r for r in rows if r.split("|")[1].strip() != name.replace("|", "/")]
    rows.append(_row(name, report))
    notes = "\n".join(f"- **{c.title.rstrip(' ↑↓')}**: {c.protocol}." for c in COLUMNS)
    text = (
        f"{header}\n|---|---:|{'---:|' * len(COLUMNS)}\n"
        + "\n".join(rows)
        + "\n\nDeepFashion test pairs; – = not measured. Protocols:\n\n"
        + notes
        + "\n"
    )
    write_text(path, text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The published pose-transfer protocol, as a table.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="an adgan run or checkpoint folder")
    src.add_argument("--generated", type=Path, help="folder of <from>___<to>.png images")
    p.add_argument("--data", type=Path, help="dataset root (default: the run's data.root)")
    p.add_argument("--split", default="test")
    p.add_argument("--train-split", default="train", help="FID's real statistics")
    p.add_argument("--max-pairs", type=int, default=0, help="0 = all pairs (the protocol)")
    p.add_argument("--fid", metavar="PT_INCEPTION_PTH", help="pytorch-fid Inception weights")
    p.add_argument("--fid-train-max", type=int, default=0, help="0 = every training photo")
    p.add_argument("--is", dest="inception", metavar="INCEPTION_PTH", help="IS classifier")
    p.add_argument("--lpips", metavar="ALEXNET_PTH", help="LPIPS AlexNet backbone weights")
    p.add_argument("--keypoints", help="keypoint checkpoint for PCKh")
    p.add_argument("--table", type=Path, help="Markdown table to add this model's row to")
    p.add_argument("--name", help="the row's name (default: the run or folder name)")
    p.add_argument("--json", type=Path, help="write the numbers as JSON")
    p.add_argument("--cache", type=Path, help="FID statistics cache (default DATA/.cache)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    try:
        if args.checkpoint:
            folder = find_checkpoint(args.checkpoint)
            root = args.data or Path(read_config(folder)["config"]["data"]["root"])
            gen = from_checkpoint(
                args.checkpoint, root, args.split, args.max_pairs, args.batch_size, args.device
            )
        else:
            if args.data is None:
                p.error("--generated needs --data (the dataset of its targets)")
            root = args.data
            gen = from_folder(args.generated, root, args.split, args.max_pairs)
        report = protocol_metrics(
            gen,
            root=root,
            train_split=args.train_split,
            fid_weights=args.fid,
            is_weights=args.inception,
            lpips_weights=args.lpips,
            keypoints=args.keypoints,
            fid_train_max=args.fid_train_max,
            cache_dir=args.cache,
            batch_size=args.batch_size,
            device=args.device,
        )
    except (CheckpointError, FileNotFoundError, ImageError, FormatError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for key, value in report.items():
        print(f"{key:>16} {value:.4f}")
    if args.table is not None:
        name = args.name or Path(args.checkpoint or args.generated).name
        print(write_table(args.table, name, report))
    if args.json is not None:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
