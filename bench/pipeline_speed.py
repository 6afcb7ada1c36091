"""End-to-end speed of the photo-to-card pipeline: `python bench/pipeline_speed.py
[--bundle bundles/demo] [--batches 1 16 64] [--repeats 10]`.

Per photo pair: decode both photos, find and crop each person (keypoints on the photo),
keypoints and parsing on the crops, encode, generate, encode the PNG: what `infer.py` does
after loading the bundle. Printed per stage and in total, at batch 1 (latency) and larger
batches (cards/s, what `infer.py --batch` and the web page's queue get), with peak memory; on
the CPU always and on the GPU when one is visible (the generator in bf16).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adgan.pipeline import Job, Pipeline
from bench.timing import peak_mb, summarize
from common.image_io import encode_image, load_image

ROOT = Path(__file__).resolve().parent.parent


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_once(pipe: Pipeline, source: bytes, pose: bytes, batch: int, device: str) -> dict:
    """Seconds per stage for `batch` cards (each its own pair of photos)."""
    t = {"decode": time.perf_counter()}
    photos = []
    for i in range(batch):
        photos += [(load_image(source), f"source{i}"), (load_image(pose), f"pose{i}")]
    t["people"] = time.perf_counter()
    views = pipe.people(photos)
    _sync(device)
    t["generate"] = time.perf_counter()
    cards = pipe.generate_many([Job(views[2 * i], views[2 * i + 1]) for i in range(batch)])
    _sync(device)
    t["png"] = time.perf_counter()
    for card in cards:
        encode_image(card, ".png")
    t["end"] = time.perf_counter()
    names = list(t)
    return {a: t[b] - t[a] for a, b in itertools.pairwise(names)}


def bench(bundle: Path, device: str, batches: list[int], repeats: int, photos: tuple) -> list:
    pipe = Pipeline.from_bundle(bundle, device)
    source, pose = (p.read_bytes() for p in photos)
    rows = []
    for batch in batches:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        runs = [run_once(pipe, source, pose, batch, device) for _ in range(repeats + 2)][2:]
        for stage in ("decode", "people", "generate", "png", "total"):
            times = [sum(r.values()) if stage == "total" else r[stage] for r in runs]
            rows.append((device, batch, stage, *summarize(times, batch), peak_mb(device)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bundle", type=Path, default=ROOT / "bundles" / "demo")
    p.add_argument("--source", type=Path, default=ROOT / "examples" / "model.jpg")
    p.add_argument("--pose", type=Path, default=ROOT / "examples" / "shopper.jpg")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--gpu-batches", type=int, nargs="+", default=[1, 64, 256])
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), bundle {args.bundle}"
    )
    photos = (args.source, args.pose)
    rows = bench(args.bundle, "cpu", args.batches, args.repeats, photos)
    if torch.cuda.is_available():
        print(f"# GPU: {torch.cuda.get_device_name()}")
        rows += bench(args.bundle, "cuda", args.gpu_batches, args.repeats, photos)
    print("| device | batch | stage | cards/s | mean ms/batch | p50 ms | p95 ms | peak MB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for device, batch, stage, rate, mean, p50, p95, peak in rows:
        print(
            f"| {device} | {batch} | {stage} | {rate:.1f} | {mean:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
