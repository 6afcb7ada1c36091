"""Speed of `python -m prepare deepfashion` on a fake raw In-shop tree.

    python bench/prepare_speed.py [--images 400] [--workers 2] [--size 256x176]

SynthFashion photos are written in the raw layout (256x256 with white side bands, as
`img.zip`), then each step is timed on its own: cutting the photos (1 and N worker
processes), keypoints from the published-style CSVs, 8-class maps merged from LIP label
PNGs, pairs and checksums; and, with tiny random networks, our estimator and parser
(their speed is the network's: see bench/keypoints_speed.py and bench/parsing_speed.py).
Prints a table of images per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.timing import machine_line
from common.config import load_config
from common.deepfashion import parse_flat
from common.image_io import load_image, read_semantic_map, save_image
from prepare.deepfashion import Sources, prepare_deepfashion
from synth.config import SynthConfig
from synth.dataset import generate

ROOT = Path(__file__).resolve().parent.parent
LIP_ID = np.array([0, 9, 2, 12, 13, 5, 14, 16], np.uint8)  # one LIP id per ADGAN class


def raw_tree(synth: Path, root: Path) -> None:
    """SynthFashion as the raw download: square photos, LIP PNGs of them, CSVs, lists."""
    (root / "annotations").mkdir(parents=True)
    for split in ("train", "test"):
        for photo in sorted((synth / "fashion_resize" / split).glob("*.jpg")):
            name = parse_flat(photo.name)
            image = load_image(photo)
            h, w = image.shape[:2]
            pad = ((0, 0), ((h - w) // 2, h - w - (h - w) // 2))
            save_image(
                root / "raw" / "img" / name.raw, np.pad(image, (*pad, (0, 0)), constant_values=255)
            )
            lip = LIP_ID[read_semantic_map(synth / name.semantic_path())]
            save_image(root / "lip" / name.raw.replace(".jpg", ".png"), np.pad(lip, pad))
        for file in (f"fashion-resize-annotation-{split}.csv", f"{split}.lst"):
            shutil.copy(synth / file, root / "annotations")


def tiny_checkpoints(root: Path) -> tuple[Path, Path]:
    import torch

    from keypoints.model import PoseNet, PoseNetConfig
    from parsing.model import ParserNet, ParserNetConfig
    from tests.conftest import checkpoint

    torch.manual_seed(0)
    kp = PoseNet(PoseNetConfig(head_channels=16, input_size=(128, 88)))
    parser = ParserNet(ParserNetConfig(encoder="resnet18", input_size=(128, 88)))
    return (
        checkpoint(root / "kp", "model", kp, "keypoints"),
        checkpoint(root / "parse", "model", parser, "parsing"),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=400, help="photos in the fake raw tree")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--size", default="256x176")
    p.add_argument("--no-networks", action="store_true", help="skip estimator and parser")
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="prepare-bench-"))
    try:
        config = load_config(
            SynthConfig,
            ROOT / "configs" / "synth.yaml",
            [f"size=[{size[0]}, {size[1]}]", "dataset.faces=false", "dataset.swaps=false"],
        )
        generate(
            tmp / "synth",
            identities=args.images // 4,
            poses=4,
            seed=0,
            config=config,
            workers=args.workers,
            progress=False,
            overwrite=True,
        )
        raw_tree(tmp / "synth", tmp)
        n = sum(1 for _ in (tmp / "raw" / "img").rglob("*.jpg"))
        published = Sources(annotations=tmp / "annotations", labels=tmp / "lip", merge="lip")
        rows = []
        for workers in sorted({1, args.workers}):
            out = tmp / f"out{workers}"
            t = time.perf_counter()
            m = prepare_deepfashion(
                tmp / "raw", out, published, size=size, workers=workers, progress=False
            )
            total = time.perf_counter() - t
            s = m["this_run"]["seconds"]
            rows.append((f"published CSVs + LIP PNGs, {workers} worker(s)", n, total, s))
        t = time.perf_counter()
        m = prepare_deepfashion(
            tmp / "raw",
            tmp / f"out{args.workers}",
            published,
            size=size,
            workers=args.workers,
            progress=False,
        )
        rows.append(
            (
                "re-run, everything already there",
                n,
                time.perf_counter() - t,
                m["this_run"]["seconds"],
            )
        )
        if not args.no_networks:
            kp, parser = tiny_checkpoints(tmp / "ckpt")
            ours = Sources(keypoints=kp, parser=parser)
            t = time.perf_counter()
            m = prepare_deepfashion(
                tmp / "raw",
                tmp / "ours",
                ours,
                lists=tmp / "annotations",
                size=size,
                workers=args.workers,
                batch_size=16,
                progress=False,
            )
            rows.append(
                (
                    "our estimator + parser (tiny nets, 128x88 input)",
                    n,
                    time.perf_counter() - t,
                    m["this_run"]["seconds"],
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{machine_line()}")
    print(f"{n} raw photos -> {size[0]}x{size[1]}\n")
    print("| run | images/s overall | cut photos | keypoints | 8-class maps | checksums |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, count, total, s in rows:
        rate = [
            f"{count / s[k]:.0f}" if s[k] > 0.01 else "–"
            for k in ("images", "keypoints", "parsing", "checksums")
        ]
        print(f"| {label} | {count / total:.0f} | " + " | ".join(rate) + " |")


if __name__ == "__main__":
    main()
