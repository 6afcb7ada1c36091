"""`python -m synth --out DIR --identities N --poses K --size 256x176 --seed S`

`python -m synth --out DIR --add-swaps train [--swap-identities N]` renders garment-swap
ground truth for another split of a dataset already in DIR (training on swaps)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.config import ConfigError, load_config
from synth.config import SynthConfig
from synth.dataset import SPLITS, add_swaps, generate

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "synth.yaml"


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 256x176 (HxW)") from None
    if height < 32 or width < 24:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (at least 32x24)")
    return height, width


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m synth",
        description="Render a SynthFashion dataset (synthetic people with exact keypoints, "
        "8-class parsing, DensePose IUV, face masks and garment-swap ground "
        "truth) in the DeepFashion / DensePose-COCO / CelebAMask-HQ formats.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (empty or new)")
    p.add_argument("--identities", type=positive, default=100, help="number of people")
    p.add_argument("--poses", type=positive, default=4, help="images per person")
    p.add_argument(
        "--size",
        type=parse_size,
        default=None,
        help="image size HxW (default: the config's, 256x176)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set background.clutter_probability=0.5 (repeatable)",
    )
    p.add_argument("--workers", type=positive, default=os.cpu_count() or 1)
    p.add_argument(
        "--overwrite", action="store_true", help="replace a previous SynthFashion output in --out"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--add-swaps",
        choices=SPLITS,
        metavar="SPLIT",
        help="render nothing else: garment-swap ground truth for SPLIT of the dataset already "
        "in --out (its own seed and config), e.g. train, to train a generator on swaps",
    )
    p.add_argument(
        "--swap-identities",
        type=int,
        default=0,
        help="with --add-swaps: the first N identities of the split (0: all)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.add_swaps:
        if not (args.out / "manifest.json").is_file():
            print(f"error: {args.out}: no SynthFashion dataset (manifest.json)", file=sys.stderr)
            return 2
        n = add_swaps(
            args.out,
            args.add_swaps,
            identities=args.swap_identities,
            workers=args.workers,
            progress=not args.quiet,
        )
        print(f"wrote {n} {args.add_swaps} swaps to {args.out}")
        return 0
    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"size=[{args.size[0]}, {args.size[1]}]")
    try:
        config = load_config(SynthConfig, args.config, overrides)
        manifest = generate(
            args.out,
            identities=args.identities,
            poses=args.poses,
            seed=args.seed,
            config=config,
            workers=args.workers,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    except (ConfigError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = manifest["counts"]
    total = sum(c["images"] for c in counts.values())
    print(
        f"wrote {total} images of {args.identities} people to {args.out} in "
        f"{manifest['seconds']:.1f} s ({total / max(manifest['seconds'], 1e-9):.0f} images/s); "
        + "; ".join(
            f"{s}: {c['images']} images, {c['pairs']} pairs, {c['faces']} faces, "
            f"{c['swaps']} swaps, {c['backgrounds']} backgrounds"
            for s, c in counts.items()
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
