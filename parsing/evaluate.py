"""`python -m parsing.evaluate`: per-class IoU, mIoU and pixel accuracy (parsing); mean loss,
part accuracy and U/V error at points (DensePose); overlay pictures.

    python -m parsing.evaluate --checkpoint runs/parsing/00000-x              # its own val split
    python -m parsing.evaluate --checkpoint RUN data.root=data/deepfashion eval.max_images=0
    python -m parsing.evaluate --checkpoint RUN --overlays out/ --count 12

The data come from the run's stored config; `key=value` overrides change them (another
folder, another split, another source). Results are printed and appended, with the
checkpoint, to --log (jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import CheckpointError, find_checkpoint, read_config
from common.config import ConfigError, apply_overrides, from_dict
from common.image_io import ImageError, save_image
from parsing.labels import class_map, label_set, overlay
from parsing.model import ParserNet, predicted_iuv
from parsing.task import DenseConfig, DenseTask, evaluate_dense, iuv_picture


def write_overlays(folder: Path, model, data, config: DenseConfig, count: int) -> None:
    """Photo | parsing overlay | IUV, side by side, for the first `count` items."""
    palette = label_set(config.model.label_set).palette
    for i in range(min(count, len(data))):
        sample = data[i]
        image = (sample["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        with torch.no_grad():
            guides = sample["guides"][None] if "guides" in sample else None
            out = model(sample["image"][None], guides)
        tiles = [image]
        if "parsing" in out:
            tiles.append(overlay(image, class_map(out["parsing"])[0].numpy(), palette))
        if "index" in out:
            tiles.append(iuv_picture(*(a[0] for a in predicted_iuv(out))))
        save_image(folder / f"{i:04d}.png", np.concatenate(tiles, axis=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Evaluate a parsing/DensePose checkpoint.")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--overlays", type=Path, help="write overlay pictures here")
    p.add_argument("--count", type=int, default=12, help="how many overlay pictures")
    p.add_argument("--device", default="cpu")
    p.add_argument("--log", type=Path, default=Path("dense-metrics.jsonl"))
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        folder = find_checkpoint(args.checkpoint)
        stored = read_config(folder).get("config")
        if not stored or stored.get("task") not in ("parsing", "densepose"):
            raise CheckpointError(f"{folder}: not a parsing/DensePose training checkpoint")
        config = from_dict(DenseConfig, apply_overrides(stored, args.overrides))
        model = ParserNet.from_checkpoint(folder, args.device)
        config.model = model.config  # the weights decide the architecture
        task = DenseTask(config)
        data = task._dataset(False, None)
        n = config.eval.max_images
        if n and len(data.items) > n:
            data.items = [data.items[i] for i in np.linspace(0, len(data.items) - 1, n).astype(int)]
        report = evaluate_dense(model, data, config, args.device)
        if args.overlays:
            write_overlays(args.overlays, model, data, config, args.count)
    except (CheckpointError, ConfigError, ImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in report.items():
        print(f"{key:>24}: {value:.4f}")
    record = {
        "checkpoint": str(folder),
        "data": asdict(config.data.source),
        **report,
    }
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
