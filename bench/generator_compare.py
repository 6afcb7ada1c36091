"""Generators side by side on one fixed held-out SynthFashion test set, at one size.

    python bench/generator_compare.py copy warponly bundles/demo runs/adgan/<partwarp run> \\
        --data data/synthfashion-256 --size 256x176 --pairs 500 --swaps 200

Each entry is a baseline architecture (`copy`: the source unchanged; `warponly`: the part
warp, no network), a run, checkpoint or bundle folder, or `truth`: the target photos
themselves, whose PCKh is the estimator's own ceiling on these people. A generator made for
another size (the 64x44 demo ADGAN) reads its inputs at its own size and its pictures are
resized to the evaluation size (bicubic), so every row is scored against the same targets: SSIM and
mask-SSIM (the PATN/ADGAN protocol, `adgan.metrics`), L1, swap_closer (a garment swap is
closer to the swap's ground truth than to the person's own garment), PCKh@0.5 of the
generated people through a keypoint estimator (default: the demo bundle's) against the
target keypoints, and ms per image at batch 1 with its peak RSS.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adgan.data import PairDataset
from adgan.evaluate import evaluate_swaps, generate_pairs, spread_subset
from adgan.generators import (
    ARCHITECTURES,
    PoseGenerator,
    build_generator,
    generator_from_checkpoint,
    load_architectures,
    to_image,
)
from adgan.metrics import l1, ssim
from bench.timing import machine_line, peak_mb
from common.checkpoint import DEMO_BUNDLE, stored_module_name
from keypoints.estimators import estimator_from_checkpoint
from keypoints.metrics import pckh


def parse_size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def load(entry: str, size: tuple[int, int], device: str) -> PoseGenerator:
    load_architectures()
    if entry in ARCHITECTURES:
        return build_generator({"arch": entry, "image_size": list(size)}).to(device).eval()
    return generator_from_checkpoint(entry, device)


def ms_per_image(generator: PoseGenerator, data: PairDataset, device: str, n: int = 8) -> float:
    """Median wall time of one generation at batch 1 (after one warm-up)."""
    times = []
    keys = ("source", "source_parsing", "source_keypoints", "target_keypoints")
    with torch.no_grad():
        for i in range(n + 1):
            item = data[i]
            inputs = [item[k][None].to(device) for k in keys]
            start = time.perf_counter()
            generator(*inputs)
            times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:]))


def truth_row(args: argparse.Namespace, estimator) -> dict[str, float | str]:
    """The targets scored as if generated: what the keypoint estimator finds on real ones."""
    truth = PairDataset(args.data, args.split, args.size)
    items = [truth[i] for i in spread_subset(len(truth), args.pairs)]
    found = estimator.predict_many([to_image(it["target"]) for it in items])
    pck = pckh([r.keypoints for r in found], [it["target_keypoints"].numpy() for it in items])
    nan = float("nan")
    return {
        "generator": "truth",
        "arch": "-",
        "size": f"{args.size[0]}x{args.size[1]}",
        "ssim": 1.0,
        "mask_ssim": 1.0,
        "l1": 0.0,
        "pckh": pck,
        "swap_closer": nan,
        "ms/img": nan,
    }


def evaluate(entry: str, args: argparse.Namespace, estimator) -> dict[str, float | str]:
    if entry == "truth":
        return truth_row(args, estimator)
    generator = load(entry, args.size, args.device)
    own_size = tuple(generator.config.image_size)
    data = PairDataset(args.data, args.split, own_size)
    truth = PairDataset(args.data, args.split, args.size, target_parsing=True)
    indices = spread_subset(len(data), args.pairs)
    h, w = args.size
    scores: dict[str, list] = {"ssim": [], "mask_ssim": [], "l1": [], "generated": [], "kp": []}
    done = 0
    for _, fake in generate_pairs(generator, data, indices, args.batch_size, args.device):
        batch = [truth[i] for i in indices[done : done + len(fake)]]
        done += len(fake)
        if own_size != (h, w):
            fake = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in fake])
        real = np.stack([to_image(it["target"]) for it in batch])
        mask = np.stack([it["target_labels"].numpy() > 0 for it in batch])
        scores["ssim"].append(ssim(real, fake))
        scores["mask_ssim"].append(ssim(real, fake, mask))
        scores["l1"].append(l1(real, fake))
        scores["generated"] += list(fake)
        scores["kp"] += [it["target_keypoints"].numpy() for it in batch]
    found = [r.keypoints for r in estimator.predict_many(scores["generated"])]
    row: dict[str, float | str] = {
        "generator": entry if len(entry) < 40 else "..." + entry[-37:],
        "arch": generator.config.arch,
        "size": f"{own_size[0]}x{own_size[1]}",
        "ssim": float(np.concatenate(scores["ssim"]).mean()),
        "mask_ssim": float(np.concatenate(scores["mask_ssim"]).mean()),
        "l1": float(np.concatenate(scores["l1"]).mean()),
        "pckh": pckh(found, scores["kp"]),
        "ms/img": ms_per_image(generator, data, args.device),
    }
    swaps = evaluate_swaps(generator, args.data, args.split, args.swaps, args.device)
    row["swap_closer"] = swaps.get("swap_closer", float("nan"))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "entries", nargs="+", help="copy, warponly, truth, or run/checkpoint/bundle folders"
    )
    p.add_argument("--data", type=Path, required=True, help="a SynthFashion root")
    p.add_argument("--split", default="test")
    p.add_argument("--size", type=parse_size, default=(256, 176), help="evaluation HxW")
    p.add_argument("--pairs", type=int, default=500, help="spread over the split (0 = all)")
    p.add_argument("--swaps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--keypoints", type=Path, default=DEMO_BUNDLE, help="estimator for PCKh")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    print(machine_line(args.device))
    name = stored_module_name(args.keypoints, ("model", "keypoints"))
    estimator = estimator_from_checkpoint(args.keypoints, args.device, name=name)
    print(
        f"# {args.data} split {args.split} at {args.size[0]}x{args.size[1]}: {args.pairs or 'all'} "
        f"pairs, {args.swaps} swaps; PCKh by {args.keypoints}"
    )
    cols = ["generator", "arch", "size", "ssim", "mask_ssim", "l1", "swap_closer", "pckh", "ms/img"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for entry in args.entries:  # each row as it is measured: a run cut short keeps them
        r = evaluate(entry, args, estimator)
        cells = [r[c] if isinstance(r[c], str) else f"{r[c]:.3f}" for c in cols[:-1]]
        print("| " + " | ".join([*cells, f"{r['ms/img']:.0f}"]) + " |", flush=True)
    print(f"# peak RSS {peak_mb(args.device):.0f} MB (the whole run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
