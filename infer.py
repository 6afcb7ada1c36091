"""`python infer.py --source model.jpg --pose user.jpg [--swap upper=garment.jpg] ...`

Renders the catalogue model of `--source` in the pose of the person in `--pose`, with
optional garment swaps. The work happens in `adgan.pipeline` (issue 6); this file only
parses and checks arguments. Until a model bundle exists it loads and checks the photos,
says what is missing and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.image_io import ImageError, load_image
from parsing.labels import ADGAN_CLASSES

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "bundles" / "demo"


def parse_swap(text: str) -> tuple[str, Path]:
    component, sep, path = text.partition("=")
    if not sep or component not in ADGAN_CLASSES[1:]:
        raise argparse.ArgumentTypeError(
            f"--swap {text!r} must be COMPONENT=PHOTO with COMPONENT one of "
            f"{', '.join(ADGAN_CLASSES[1:])} (or upper/lower)"
        )
    return component, Path(path)


def _swap_arg(text: str) -> tuple[str, Path]:
    aliases = {"upper": "upper_clothes", "lower": "pants"}
    component, sep, path = text.partition("=")
    return parse_swap(f"{aliases.get(component, component)}{sep}{path}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Pose-guided person generation (ADGAN-style).")
    p.add_argument("--source", type=Path, help="photo of the person/garments to render")
    p.add_argument("--pose", type=Path, help="photo of the person whose pose to take")
    p.add_argument(
        "--swap",
        type=_swap_arg,
        action="append",
        default=[],
        metavar="COMPONENT=PHOTO",
        help="take a component from another photo",
    )
    p.add_argument("--out", type=Path, default=Path("out.png"))
    p.add_argument("--panel", type=Path, help="also write source | pose | parsing | result")
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=Path, help="a jobs CSV for batch product cards")
    p.add_argument("--out-dir", type=Path, help="output folder for --batch")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch is None and (args.source is None or args.pose is None):
        parser.error("give --source and --pose (or --batch jobs.csv)")
    try:
        photos = [args.source, args.pose] + [path for _, path in args.swap]
        for photo in photos if args.batch is None else []:
            load_image(photo)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (args.bundle / "bundle.json").is_file():
        print(
            f"error: no model bundle at {args.bundle} (bundle.json missing). The generator "
            f"and the demo bundle are not built yet (issues 5 and 6); today the project "
            f"renders SynthFashion data: python -m synth --help",
            file=sys.stderr,
        )
        return 2
    print("error: bundle loading lands with issue 6", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
