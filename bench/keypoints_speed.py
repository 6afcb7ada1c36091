"""Keypoint inference speed: `python bench/keypoints_speed.py [--config C | --checkpoint R |
--openpose]`.

Prints crops/s and latency (mean, p50, p95) at batch 1 and at larger batches, with and
without the flip test, and peak memory, on CPU and, when one is visible, on the GPU
(bf16 autocast, channels_last). Weights do not matter for speed: a config alone is enough.
`--openpose` times the CMU body network (random weights, the importer's shapes) on the
crop `keypoints.openpose` reads a person at (368 rows, one scale); BlazePose has its own
script, `bench/blazepose_speed.py`.
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
from keypoints.openpose import OpenPoseBody, OpenPoseEstimator
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


def bench_openpose(device: str, batches: list[int], repeats: int) -> tuple[list[tuple], str]:
    """The body network alone (peak finding and part grouping run on the CPU after it)."""
    estimator = OpenPoseEstimator(OpenPoseBody(), device=device)
    h, w = estimator.input_size
    model = estimator.model
    cuda = device == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    rows = []
    for batch in batches:
        x = torch.rand(batch, 3, h, w, device=device) - 0.5
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
            torch.cuda.reset_peak_memory_stats()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            timed(lambda x=x: model(x), 2)
            t = timed(lambda x=x: model(x), repeats)
        rows.append((device, batch, False, *summarize(t, batch), peak_mb(device)))
    return rows, f"OpenPose body (CMU, 6 stages) at {h}x{w}"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", type=Path, default=Path("configs/keypoints-synth-cpu.yaml"))
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--size", default="256x176", help="input HxW (with --config)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--openpose", action="store_true", help="the CMU body network instead")
    p.add_argument("--gpu-only", action="store_true", help="skip the CPU rows")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    devices = [("cpu", [1, 16])] if not (args.gpu_only and cuda) else []
    if cuda:
        devices.append(("cuda", [1, 64, 256]))
    if args.openpose:
        rows = []
        for device, batches in devices:
            device_rows, title = bench_openpose(device, batches, args.repeats)
            rows += device_rows
        print_table(title, rows)
        return
    if args.checkpoint:
        model = PoseNet.from_checkpoint(args.checkpoint)
    else:
        h, w = (int(v) for v in args.size.split("x"))
        cfg = load_config(KeypointsConfig, args.config, [f"model.input_size=[{h}, {w}]"])
        model = PoseNet(cfg.model)
    rows = []
    for device, batches in devices:
        rows += bench(model, device, batches, args.repeats)
    c = model.config
    print_table(f"PoseNet {c.backbone}/{c.head} at {c.input_size[0]}x{c.input_size[1]}", rows)


def print_table(title: str, rows: list[tuple]) -> None:
    print(machine_line("cuda" if torch.cuda.is_available() else "cpu"))
    print(title)
    print("| device | batch | flip test | crops/s | ms/batch mean | p50 | p95 | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for d, b, f, rate, mean, p50, p95, peak in rows:
        print(
            f"| {d} | {b} | {'yes' if f else 'no'} | {rate:.1f} | {mean:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
