"""Warp-only baseline of pose transfer: `python bench/warp_baseline.py --data DIR [--size 128x88]`.

On the test pairs of a DeepFashion-layout dataset (SynthFashion or real), prints SSIM (the
PATN/ADGAN protocol, `adgan.metrics.ssim`), L1 (on [0, 1]) and milliseconds per image for

- copy-source: the source photo as the answer;
- warp-only: `adgan.warp.warp_parts` + `composite` (no network, no training).

`--grid PNG` writes a few results (source | target truth | warp-only | masks | holes);
`--set field=value` overrides a `WarpConfig` field (repeatable) to try settings.
Single-threaded by default (`--threads`), so that the timing is per core.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adgan.data import PairDataset
from adgan.generators import to_image
from adgan.metrics import l1, ssim
from adgan.warp import WarpConfig, composite, warp_parts
from parsing.labels import ADGAN_PALETTE


def parse_size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def warp_config(overrides: list[str]) -> WarpConfig:
    valid = {f.name for f in dataclasses.fields(WarpConfig)}
    values = {}
    for item in overrides:
        key, _, text = item.partition("=")
        if key not in valid:
            raise SystemExit(f"--set {key}: not a WarpConfig field; valid: {sorted(valid)}")
        try:
            values[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[key] = text
    return WarpConfig(**values)


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    keys = ("source", "target", "source_parsing", "source_keypoints", "target_keypoints")
    return {k: torch.stack([it[k] for it in items]) for k in keys}


def grid_png(rows: list[np.ndarray], path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.concatenate(rows, 0)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/synthfashion-128"))
    p.add_argument("--split", default="test")
    p.add_argument("--size", type=parse_size, default=(128, 88), help="HxW")
    p.add_argument("--max-pairs", type=int, default=0, help="0: all pairs of the split")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--grid", type=Path, default=None, help="PNG of the first --grid-rows pairs")
    p.add_argument("--grid-rows", type=int, default=8)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="F=V")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = warp_config(args.overrides)
    data = PairDataset(args.data, args.split, args.size)
    n = len(data) if args.max_pairs <= 0 else min(args.max_pairs, len(data))
    if args.grid is not None and args.grid_rows > 0:
        # spread the grid over the set (pairs of one person come in runs)
        step = max(1, n // args.grid_rows)
        show = set(range(0, n, step)[: args.grid_rows])
    else:
        show = set()
    scores = {"copy-source": ([], []), "warp-only": ([], [])}
    seconds, rows = 0.0, []
    palette = np.asarray(ADGAN_PALETTE, np.uint8)
    for start in range(0, n, args.batch):
        idx = list(range(start, min(n, start + args.batch)))
        batch = {k: v.to(args.device) for k, v in collate([data[i] for i in idx]).items()}
        t0 = time.perf_counter()
        with torch.no_grad():
            warp = warp_parts(
                batch["source"],
                batch["source_parsing"],
                batch["source_keypoints"],
                batch["target_keypoints"],
                cfg,
            )
            out = composite(warp)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
        truth = np.stack([to_image(t) for t in batch["target"]])
        for name, images in (("copy-source", batch["source"]), ("warp-only", out)):
            gen = np.stack([to_image(t) for t in images])
            scores[name][0].extend(ssim(truth, gen).tolist())
            scores[name][1].extend(l1(truth, gen).tolist())
        for j, i in enumerate(idx):
            if i not in show:
                continue
            labels = warp.masks[j, :, 0].argmax(0).cpu().numpy()
            holes = (warp.holes[j, 0].cpu().numpy() * 255).astype(np.uint8)
            rows.append(
                np.concatenate(
                    [
                        to_image(batch["source"][j]),
                        truth[j],
                        to_image(out[j]),
                        palette[labels],
                        np.repeat(holes[..., None], 3, -1),
                    ],
                    1,
                )
            )
    h, w = args.size
    print(f"warp-only baseline: {args.data} {args.split} split, {n} pairs at {h}x{w}")
    print(f"device {args.device}, {args.threads} thread(s), batch {args.batch}")
    print(f"{'method':12s} {'SSIM':>7s} {'L1':>7s} {'ms/image':>9s}")
    for name, (s, d) in scores.items():
        ms = f"{seconds / n * 1e3:9.2f}" if name == "warp-only" else f"{0:9.2f}"
        print(f"{name:12s} {np.mean(s):7.4f} {np.mean(d):7.4f} {ms}")
    if rows:
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        grid_png(rows, args.grid)
        print(f"grid: {args.grid} (source | target | warp-only | masks | holes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
