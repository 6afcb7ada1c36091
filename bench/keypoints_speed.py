"""Keypoint inference speed: `python bench/keypoints_speed.py [--config C | --checkpoint R]`.

Prints crops/s and latency (mean, p50, p95) at batch 1 and at larger batches, with and
without the flip test, and peak memory, on CPU and, when one is visible, on the GPU
(bf16 autocast, channels_last). Weights do not matter for speed: a config alone is enough.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import machine_line, peak_mb, summarize
from common.config import load_config
from keypoints.model import PoseNet
from keypoints.predict import KeypointPredictor
from keypoints.task import KeypointsConfig


def timed(fn, repeats: int) -> np.ndarray:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return np.array(times)


def bench(model: PoseNet, device: str, batches: list[int], repeats: int) -> list[tuple]:
    rows = []
    h, w = model.config.input_size
    cuda = device == "cuda"
    model = model.to(device).eval()
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    for flip in (False, True):
        predictor = KeypointPredictor(model, device=device, flip_test=flip)
        for batch in batches:
            crops = torch.rand(batch, 3, h, w, device=device)
            if cuda:
                crops = crops.contiguous(memory_format=torch.channels_last)
                torch.cuda.reset_peak_memory_stats()
            ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.no_grad()
            with ctx, torch.no_grad():

                def run(predictor=predictor, crops=crops):
                    return predictor.predict_crops(crops)

                timed(run, 3)
                t = timed(run, repeats)
            rows.append((device, batch, flip, *summarize(t, batch), peak_mb(device)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", type=Path, default=Path("configs/keypoints-synth-cpu.yaml"))
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--size", default="256x176", help="input HxW (with --config)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        model = PoseNet.from_checkpoint(args.checkpoint)
    else:
        h, w = (int(v) for v in args.size.split("x"))
        cfg = load_config(KeypointsConfig, args.config, [f"model.input_size=[{h}, {w}]"])
        model = PoseNet(cfg.model)
    rows = bench(model, "cpu", [1, 16], args.repeats)
    if torch.cuda.is_available():
        rows += bench(model, "cuda", [1, 64, 256], args.repeats)
    c = model.config
    print(machine_line("cuda" if torch.cuda.is_available() else "cpu"))
    print(f"PoseNet {c.backbone}/{c.head} at {c.input_size[0]}x{c.input_size[1]}")
    print("| device | batch | flip test | crops/s | ms/batch mean | p50 | p95 | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for d, b, f, rate, mean, p50, p95, peak in rows:
        print(
            f"| {d} | {b} | {'yes' if f else 'no'} | {rate:.1f} | {mean:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
