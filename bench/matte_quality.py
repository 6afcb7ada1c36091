"""How well a plain backdrop's matte fits the person: `python bench/matte_quality.py`.

    python bench/matte_quality.py [--bundle bundles/demo] [--data data/synthfashion-256]
        [--pairs 200] [--warps matte_ramp=1.0 matte_ramp=0.4 matte_ramp=0.4,matte_core=0.3]
        [--scene]

On held-out SynthFashion pairs at the generator's size, the part-warp generator's matte
(`PartWarp.matte`, what every card on a plain colour is cut with: `--backdrop COLOUR`, and
`--backdrop auto`, the default) with each of `--warps` (the bundle's `WarpConfig` with
those fields changed; by default `matte_ramp` from 1, unsteepened, to 0.2), against the
target's ground-truth person (its 8-class map's non-background): IoU at 0.5; spill (matte
outside the person) and miss (person outside the matte), each as a share of the person's
area; the faint share of the card (matte between 0.02 and 0.5: a veil of the network's
background on the backdrop); and the card on a plain grey against the ground truth on the
same grey (SSIM, L1 on [0, 1]), with the ghost, the mean difference from the grey (levels
of 255) more than 3 pixels off the person. The generator is told the grey
(`adgan.generators.Backdrops`), as the product tells it a card's plain backdrop; `--scene`
leaves it the source's filled scene instead.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adgan.data import PairDataset  # noqa: E402
from adgan.evaluate import spread_subset  # noqa: E402
from adgan.generators import Backdrops, to_image  # noqa: E402
from adgan.metrics import ssim  # noqa: E402
from bench.timing import machine_line  # noqa: E402
from common.checkpoint import DEMO_BUNDLE  # noqa: E402
from common.config import parse_override  # noqa: E402
from studio.bundle import load_bundle  # noqa: E402

GREY = 240 / 127.5 - 1  # the plain backdrop, in [-1, 1]


def parse_fields(text: str) -> dict[str, Any]:
    """'matte_ramp=0.4,under_arms_fill=mirror' -> {'matte_ramp': 0.4, 'under_arms_fill':
    'mirror'} (values read as YAML)."""
    return {".".join(keys): value for keys, value in map(parse_override, text.split(","))}


def images(batch: torch.Tensor) -> np.ndarray:
    return np.stack([to_image(x) for x in batch])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "synthfashion-256")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument(
        "--warps",
        nargs="+",
        default=[f"matte_ramp={r}" for r in (1.0, 0.6, 0.4, 0.2)],
        help="WarpConfig fields to set, field=value[,field=value] per variant",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--scene", action="store_true", help="the generator not told the grey (its own background)"
    )
    args = p.parse_args(argv)
    if not (args.data / "fashion-resize-pairs-test.csv").is_file():
        print(f"no SynthFashion test pairs at {args.data}: render them (docs/synthfashion.md)")
        return 0
    torch.manual_seed(0)
    print(machine_line())
    generator = load_bundle(args.bundle).generator.eval()
    if not hasattr(generator.config, "warp"):
        print(f"{args.bundle}: its generator has no warp, so no warp matte to measure")
        return 0
    size = tuple(generator.config.image_size)
    data = PairDataset(args.data, "test", size, target_parsing=True)
    indices = spread_subset(len(data), args.pairs)
    base = generator.config
    variants = {text: replace(base.warp, **parse_fields(text)) for text in args.warps}
    rows: dict[str, list[list[float]]] = {text: [[] for _ in range(7)] for text in variants}
    for start in range(0, len(indices), args.batch_size):
        items = [data[i] for i in indices[start : start + args.batch_size]]
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0] if k != "name"}
        truth = (batch["target_labels"][:, None] > 0).float()
        away = 1 - F.max_pool2d(truth, 7, 1, 3)  # more than 3 pixels off the person
        real = truth * batch["target"] + (1 - truth) * GREY
        for text, warp in variants.items():
            generator.config = replace(base, warp=warp)
            n = len(items)
            grey = Backdrops(torch.full((n, 3), GREY), torch.ones(n, dtype=torch.bool))
            told = None if args.scene else grey
            with torch.no_grad():
                look = generator.encode(
                    batch["source"], batch["source_parsing"], batch["source_keypoints"]
                )
                picture, matte = generator.decode_with_matte(look, batch["target_keypoints"], told)
            m = matte.float()
            card = m * picture.float() + (1 - m) * GREY
            area = truth.sum((1, 2, 3))
            inter = ((m > 0.5) & (truth > 0.5)).sum((1, 2, 3))
            union = ((m > 0.5) | (truth > 0.5)).sum((1, 2, 3))
            ghost = ((card - GREY).abs().mean(1, keepdim=True) * away).sum((1, 2, 3))
            measures = (
                inter / union,
                (m * (1 - truth)).sum((1, 2, 3)) / area,
                ((1 - m) * truth).sum((1, 2, 3)) / area,
                ((m > 0.02) & (m < 0.5)).float().mean((1, 2, 3)),
                torch.as_tensor(ssim(images(real), images(card))),
                (card - real).abs().mean((1, 2, 3)) / 2,
                ghost / away.sum((1, 2, 3)) * 127.5,
            )
            for column, values in zip(rows[text], measures, strict=True):
                column += values.tolist()
    told = "its own background" if args.scene else "told the grey"
    print(f"# {args.bundle} ({told}), {len(indices)} held-out pairs of {args.data}", end="")
    print(f" at {size[0]}x{size[1]}")
    print("| warp | IoU | spill | miss | faint share | SSIM on grey | L1 on grey | ghost |")
    print("|---|---|---|---|---|---|---|---|")
    for text, columns in rows.items():
        iou, spill, miss, faint, ss, l1, ghost = (float(np.mean(c)) for c in columns)
        print(
            f"| {text} | {iou:.4f} | {spill:.4f} | {miss:.4f} | {faint:.4f} | {ss:.4f} | "
            f"{l1:.4f} | {ghost:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
