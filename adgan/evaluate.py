"""Evaluating a generator: `python -m adgan.evaluate --checkpoint RUN [options]`.

Pose transfer on held-out pairs: SSIM, mask-SSIM (person mask from the target's 8-class
map) and L1 (on [0, 1]); with `--lpips`, `--fid`, `--is` the network metrics (weights from
local files, see `adgan.metrics`); with `--keypoints CKPT` the PCKh of the generated images
through our keypoint estimator against the target keypoints. On SynthFashion's swap set:
the garment region of each generated swap is compared with the ground-truth swap and with
the shopper's own garment; `swap_closer` is the fraction closer to the ground truth.

The published protocol (SSIM with PATN's white padding and without, FID against the
training images' statistics, IS, LPIPS, PCKh) and its Markdown table in the papers'
layout: `python -m adgan.protocol` (`adgan/protocol.py`), built on these functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from adgan.data import DeepFashionPeople, PairDataset, load_person, read_swap_pairs
from adgan.generators import (
    PoseGenerator,
    generator_from_checkpoint,
    mix_appearance,
    one_hot,
    take,
    to_image,
    to_tensor,
)
from adgan.metrics import (
    LPIPS,
    FIDInception,
    ISInception,
    frechet_distance,
    inception_score,
    l1,
    ssim,
)
from common.checkpoint import CheckpointError, find_checkpoint, read_config
from common.fileio import write_text
from common.image_io import ImageError, save_image
from keypoints.formats import FormatError
from parsing.labels import component_classes


@dataclass
class EvalConfig:
    max_pairs: int = 200  # of the validation pairs, evenly spaced (0 = all)
    batch_size: int = 16
    max_swaps: int = 200  # of SynthFashion's swap set when the data has one (0 = all)


def spread_subset(n: int, limit: int) -> list[int]:
    """`limit` indices spread evenly over `n` (all of them when limit is 0 or n is smaller):
    a fixed, reproducible evaluation subset that covers every identity range."""
    return (
        list(range(n))
        if not limit or n <= limit
        else np.linspace(0, n - 1, limit).astype(int).tolist()
    )


@torch.no_grad()
def generate_pairs(
    generator: PoseGenerator,
    data: PairDataset,
    indices: list[int],
    batch_size: int,
    device: torch.device | str,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
):
    """Yield (items, generated uint8 [B, H, W, 3]) batch by batch."""
    generator.eval()
    for start in range(0, len(indices), batch_size):
        items = [data[i] for i in indices[start : start + batch_size]]
        batch = {
            key: torch.stack([it[key] for it in items]).to(device)
            for key in ("source", "source_parsing", "source_keypoints", "target_keypoints")
        }
        with autocast() if autocast else contextlib.nullcontext():
            fake = generator(
                batch["source"],
                batch["source_parsing"],
                batch["source_keypoints"],
                batch["target_keypoints"],
            )
        yield items, np.stack([to_image(f) for f in fake])


def evaluate_generator(
    generator: PoseGenerator,
    data: PairDataset,
    cfg: EvalConfig,
    device: torch.device | str,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
    *,
    swap_root: str | Path | None = None,
    swap_split: str = "test",
) -> dict[str, float]:
    """SSIM, mask-SSIM, L1 on the pairs; swap metrics when `swap_root` has a swap set."""
    scores: dict[str, list[np.ndarray]] = {"ssim": [], "mask_ssim": [], "l1": []}
    for items, fake in generate_pairs(
        generator, data, spread_subset(len(data), cfg.max_pairs), cfg.batch_size, device, autocast
    ):
        real = np.stack([to_image(it["target"]) for it in items])
        mask = np.stack([it["target_labels"].numpy() > 0 for it in items])
        scores["ssim"].append(ssim(real, fake))
        scores["mask_ssim"].append(ssim(real, fake, mask))
        scores["l1"].append(l1(real, fake))
    report = {k: float(np.concatenate(v).mean()) for k, v in scores.items()}
    report["pairs"] = float(sum(len(v) for v in scores["l1"]))
    if swap_root is not None and (Path(swap_root) / f"swap-pairs-{swap_split}.csv").is_file():
        report.update(
            evaluate_swaps(generator, swap_root, swap_split, cfg.max_swaps, device, autocast)
        )
    return report


@torch.no_grad()
def evaluate_swaps(
    generator: PoseGenerator,
    root: str | Path,
    split: str,
    limit: int,
    device: torch.device | str,
    autocast: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> dict[str, float]:
    """Is a generated garment swap the donor's garment, or still the shopper's own?

    For each swap: the shopper's appearance with the component's from the donor, decoded
    in the pose of the ground truth. In the garment region (the component's classes in
    the ground-truth swap or in the shopper's own photo in that pose) the L1 to the
    ground truth is compared with the L1 to the shopper's own photo."""
    generator.eval()
    size = tuple(generator.config.image_size)
    people = DeepFashionPeople(root, split)
    swaps = read_swap_pairs(root, split)
    closer, gt_l1, own_l1 = [], [], []
    for i in spread_subset(len(swaps), limit):
        s = swaps[i]
        classes = component_classes(s.component)
        person, person_kp, person_labels = load_person(people[s.person], size)
        donor, donor_kp, donor_labels = load_person(people[s.donor], size)
        own, pose_kp, own_labels = load_person(people[s.pose], size)
        truth, _, truth_labels = load_person(
            replace(people[s.pose], image=s.target, semantic=s.target.with_suffix(".npy")), size
        )
        images = torch.stack([to_tensor(person), to_tensor(donor)]).to(device)
        parsing = torch.stack([one_hot(person_labels), one_hot(donor_labels)]).to(device)
        keypoints = torch.as_tensor(np.stack([person_kp, donor_kp]), device=device)
        with autocast() if autocast else contextlib.nullcontext():
            look = generator.encode(images, parsing, keypoints)
            mixed = mix_appearance(take(look, 0), take(look, 1), classes)
            target = torch.as_tensor(pose_kp[None], device=device)
            fake = to_image(generator.decode(mixed, target)[0]).astype(np.float32)
        region = np.isin(truth_labels, classes) | np.isin(own_labels, classes)
        if not region.any():
            continue
        to_truth = np.abs(fake - truth.astype(np.float32))[region].mean() / 255
        to_own = np.abs(fake - own.astype(np.float32))[region].mean() / 255
        closer.append(to_truth < to_own)
        gt_l1.append(to_truth)
        own_l1.append(to_own)
    if not closer:
        return {}
    return {
        "swap_closer": float(np.mean(closer)),
        "swap_l1_truth": float(np.mean(gt_l1)),
        "swap_l1_own": float(np.mean(own_l1)),
        "swaps": float(len(closer)),
    }


def network_metrics(
    generated: list[np.ndarray],
    real: list[np.ndarray],
    *,
    lpips_weights: str | None,
    fid_weights: str | None,
    is_weights: str | None,
    device: torch.device | str,
    batch_size: int = 32,
) -> dict[str, float]:
    """LPIPS (paired), FID (generated vs real), IS (generated); None skips a metric."""

    def batches(images: list[np.ndarray]):
        for start in range(0, len(images), batch_size):
            yield torch.stack([to_tensor(im) for im in images[start : start + batch_size]]).to(
                device
            )

    report: dict[str, float] = {}
    if lpips_weights is not None:
        net = LPIPS(lpips_weights).to(device)
        values = [net(g, r).cpu() for g, r in zip(batches(generated), batches(real), strict=True)]
        report["lpips"] = float(torch.cat(values).mean())
    if fid_weights is not None:
        net = FIDInception(fid_weights).to(device)
        feats = [
            torch.cat([net((b + 1) / 2).cpu() for b in batches(images)]).numpy()
            for images in (generated, real)
        ]
        report["fid"] = frechet_distance(*feats)
    if is_weights is not None:
        net = ISInception(is_weights).to(device)
        probs = torch.cat([net((b + 1) / 2).cpu() for b in batches(generated)]).numpy()
        report["is"], report["is_std"] = inception_score(probs)
    return report


def keypoint_pckh(
    generated: list[np.ndarray], targets: list[np.ndarray], checkpoint: str, device: str
) -> float:
    """PCKh@0.5 of our keypoint estimator on the generated images vs the target keypoints."""
    from keypoints.metrics import pckh
    from keypoints.predict import KeypointPredictor

    predictor = KeypointPredictor.from_checkpoint(checkpoint, device=device)
    predicted = [r.keypoints for r in predictor.predict_many(generated)]
    return pckh(predicted, targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate an ADGAN generator.")
    parser.add_argument("--checkpoint", required=True, help="an adgan run or checkpoint folder")
    parser.add_argument("--data", help="dataset root (default: the run's data.root)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-pairs", type=int, default=0, help="0 = all pairs")
    parser.add_argument("--max-swaps", type=int, default=0, help="0 = all swaps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--lpips",
        nargs="?",
        const="",
        metavar="ALEXNET_PTH",
        help="LPIPS (AlexNet backbone file; or $ALEXNET_WEIGHTS)",
    )
    parser.add_argument(
        "--fid",
        nargs="?",
        const="",
        metavar="PT_INCEPTION_PTH",
        help="FID (pytorch-fid Inception file; or $FID_INCEPTION_WEIGHTS)",
    )
    parser.add_argument(
        "--is",
        dest="inception",
        nargs="?",
        const="",
        metavar="INCEPTION_PTH",
        help="Inception Score (torchvision inception_v3 file)",
    )
    parser.add_argument("--keypoints", help="keypoint checkpoint: PCKh of generated images")
    parser.add_argument("--out", type=Path, help="write generated images here")
    parser.add_argument("--json", type=Path, help="write the metrics as JSON here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    try:
        folder = find_checkpoint(args.checkpoint)
        generator = generator_from_checkpoint(folder, args.device)
        root = args.data or read_config(folder)["config"]["data"]["root"]
        data = PairDataset(root, args.split, generator.config.image_size, target_parsing=True)
        cfg = EvalConfig(
            max_pairs=args.max_pairs, batch_size=args.batch_size, max_swaps=args.max_swaps
        )
        report = evaluate_generator(
            generator, data, cfg, args.device, swap_root=root, swap_split=args.split
        )
        want_images = any(
            v is not None for v in (args.lpips, args.fid, args.inception, args.keypoints, args.out)
        )
        if want_images:
            generated, real, target_kp = [], [], []
            for items, fake in generate_pairs(
                generator,
                data,
                spread_subset(len(data), args.max_pairs),
                args.batch_size,
                args.device,
            ):
                for it, f in zip(items, fake, strict=True):
                    generated.append(f)
                    real.append(to_image(it["target"]))
                    target_kp.append(it["target_keypoints"].numpy())
                    if args.out is not None:
                        save_image(args.out / f"{it['name'].replace('.jpg', '')}.png", f)
            report.update(
                network_metrics(
                    generated,
                    real,
                    lpips_weights=args.lpips,
                    fid_weights=args.fid,
                    is_weights=args.inception,
                    device=args.device,
                )
            )
            if args.keypoints:
                report["pckh"] = keypoint_pckh(generated, target_kp, args.keypoints, args.device)
    except (
        CheckpointError,
        FileNotFoundError,
        ImageError,
        FormatError,
        ValueError,
        KeyError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for k, v in report.items():
        print(f"{k:>14} {v:.4f}")
    if args.json is not None:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
