"""`python -m prepare deepfashion ...` and `python -m prepare densepose ...` (see the package)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.checkpoint import CheckpointError
from keypoints.formats import FormatError
from parsing.labels import MERGE_TABLES
from prepare import densepose_coco
from prepare.deepfashion import Sources, prepare_deepfashion
from prepare.images import PrepareError


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 256x176 (HxW)") from None
    if height < 16 or width < 16:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small")
    return height, width


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m prepare",
        description="Prepare real datasets (DeepFashion In-shop, DensePose-COCO) from their "
        "downloads.",
    )
    sub = p.add_subparsers(dest="dataset", required=True)
    densepose_coco.add_command(sub)
    d = sub.add_parser(
        "deepfashion",
        help="DeepFashion In-shop: raw img/ tree -> the ADGAN pose-transfer layout",
        description="Raw In-shop photos -> fashion_resize/{train,test}, keypoint CSVs, "
        "8-class maps, pairs CSVs, manifest. Re-running finishes what is left.",
    )
    d.add_argument("--raw", type=Path, required=True, help="folder holding img/MEN, img/WOMEN")
    d.add_argument("--out", type=Path, required=True, help="the prepared dataset's folder")
    d.add_argument(
        "--annotations",
        type=Path,
        help="folder of the published files: fashion-resize-annotation-{train,test}.csv, "
        "fashion-resize-pairs-{train,test}.csv, train.lst, test.lst (any of them)",
    )
    d.add_argument("--lists", type=Path, help="folder of train.lst/test.lst, if elsewhere")
    d.add_argument("--keypoints", type=Path, help="keypoint checkpoint (no published CSVs)")
    d.add_argument("--parser", type=Path, help="parsing checkpoint for the 8-class maps")
    d.add_argument("--labels", type=Path, help="folder of LIP/CIHP/ATR label PNGs instead")
    d.add_argument("--merge", default="lip", choices=sorted(MERGE_TABLES))
    d.add_argument("--size", type=parse_size, default=(256, 176), help="HxW (256x176)")
    d.add_argument("--quality", type=int, default=95, help="JPEG quality of the crops")
    d.add_argument("--workers", type=int, default=2, help="processes cutting photos")
    d.add_argument("--batch-size", type=int, default=16, help="estimator / parser batch")
    d.add_argument("--device", default="cpu")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(run=run_deepfashion)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


def run_deepfashion(args: argparse.Namespace) -> int:
    sources = Sources(
        annotations=args.annotations,
        keypoints=args.keypoints,
        parser=args.parser,
        labels=args.labels,
        merge=args.merge,
    )
    try:
        manifest = prepare_deepfashion(
            args.raw,
            args.out,
            sources,
            lists=args.lists,
            size=args.size,
            quality=args.quality,
            workers=args.workers,
            batch_size=args.batch_size,
            device=args.device,
            progress=not args.quiet,
        )
    except (PrepareError, CheckpointError, FormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for split, c in manifest["counts"].items():
        print(
            f"{split:>5}: {c['images']}/{c['listed']} photos, {c['keypoint_rows']} keypoint rows, "
            f"{c['semantic_maps']} maps, {c['pairs']} pairs"
        )
    problems = manifest["problems"]
    if problems:
        print(f"{len(problems)} problem file(s), listed in {args.out / 'manifest.json'}:")
        for p in problems[:5]:
            print(f"  {p['file']}: {p['problem']}")
    print(f"checksums: {args.out / 'checksums.sha256'} ({manifest['checksums']['files']} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
