"""`python infer.py --source model.jpg --pose user.jpg [--swap upper=garment.jpg] ...`

Renders the catalogue model of `--source` in the pose of the person in `--pose`, with
optional component swaps. The work happens in `studio.pipeline`; this file parses the
arguments, reports what a user can act on (a missing or corrupt photo, a photo without a
person, a missing or mismatched bundle) with status 2, and writes the result atomically.

    python infer.py --batch jobs.csv --out-dir cards/ [--batch-size 16] [--device cuda]
    torchrun --nproc_per_node 8 infer.py --batch jobs.csv --out-dir cards/ --device cuda

makes product cards in batches (`studio.cards`: resumable, failures.csv, exit 1 if a row failed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adgan.transfer import PRECISIONS, Precision, component_classes
from common.checkpoint import CheckpointError
from common.image_io import ImageError, load_image, save_image
from parsing.labels import ADGAN_CLASSES
from studio.cards import main_batch
from studio.pipeline import NoPersonError, Pipeline

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "bundles" / "demo"


def parse_swap(text: str) -> tuple[str, Path]:
    component, sep, path = text.partition("=")
    try:
        if not sep or not path:
            raise ValueError("no photo")
        component_classes(component)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--swap {text!r} must be COMPONENT=PHOTO with COMPONENT one of "
            f"{', '.join(ADGAN_CLASSES[1:])} (or upper/top, lower/bottom)"
        ) from None
    return component, Path(path)


def _swap_arg(text: str) -> tuple[str, Path]:
    aliases = {"upper": "upper_clothes", "top": "upper_clothes"}
    component, sep, path = text.partition("=")
    return parse_swap(f"{aliases.get(component, component)}{sep}{path}")


def load_pipeline(bundle: Path, device: str, precision: Precision = "auto") -> Pipeline:
    if not (bundle / "config.json").is_file():
        raise CheckpointError(
            f"no model bundle at {bundle}; assemble one from trained runs with "
            "python -m studio.bundle --help (a fresh clone has the demo bundle in bundles/demo)"
        )
    return Pipeline.from_bundle(bundle, device, precision)


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
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="the generator's; auto: bf16 on a GPU or a CPU with bf16 hardware (AMX)",
    )
    p.add_argument("--batch", type=Path, help="a jobs CSV for batch product cards")
    p.add_argument("--out-dir", type=Path, help="output folder for --batch")
    p.add_argument("--batch-size", type=int, default=16, help="cards per pass in --batch")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.batch is None and (args.source is None or args.pose is None):
        parser.error("give --source and --pose (or --batch jobs.csv)")
    if args.batch is not None and args.out_dir is None:
        parser.error("--batch needs --out-dir")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        if args.batch is not None:
            return main_batch(
                lambda device: load_pipeline(args.bundle, device, args.precision),
                args.batch,
                args.out_dir,
                args.device,
                args.batch_size,
            )
        photos = {"source": load_image(args.source), "pose": load_image(args.pose)}
        donors = [(component, path, load_image(path)) for component, path in args.swap]
        pipe = load_pipeline(args.bundle, args.device, args.precision)
        source = pipe.person(photos["source"], args.source.name)
        pose = pipe.person(photos["pose"], args.pose.name)
        swaps = {component: pipe.person(image, path.name) for component, path, image in donors}
        result = pipe.generate(source, pose, swaps)
        save_image(args.out, result)
        if args.panel is not None:
            save_image(args.panel, pipe.panel(source, pose, result))
    except (ImageError, NoPersonError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}" + (f" and {args.panel}" if args.panel else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
