"""SynthFashion throughput: `python bench/synth_speed.py [--size 256x176] [--images 300]`.

Three figures, one process unless said:
  render   one photo with all its ground truth (18 keypoints + visibility, 8-class map,
           DensePose I/U/V), in memory
  write    the same plus encoding and writing every file the dataset holds for it (JPEG,
           .npy map, IUV PNG, DensePose-COCO annotation with RLE masks)
  cli      `python -m synth` end to end with --workers processes (faces and swaps on)
`--profile` prints the top of a cProfile of the render loop instead of the cli run.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import machine_line, peak_mb
from common.config import load_config
from synth.__main__ import DEFAULT_CONFIG, parse_size
from synth.config import SynthConfig
from synth.dataset import (
    Job,
    generate,
    identity_bank_rows,
    make_identity,
    make_pose,
    render_identity,
)
from synth.render import render_person


def bench_render(job: Job, images: int) -> list[float]:
    times = []
    index = 0
    while len(times) < images:
        identity = make_identity(job, index)
        for k, row in enumerate(identity_bank_rows(job, index, identity.split)):
            pose = make_pose(job, index, k, row)
            start = time.perf_counter()
            render_person(identity, pose, job.config, np.random.default_rng([index, k]))
            times.append(time.perf_counter() - start)
        index += 1
    return times[:images]


def bench_write(job: Job, images: int) -> float:
    identities = max(1, images // job.poses)
    start = time.perf_counter()
    for index in range(identities):
        render_identity(job, index)
    return identities * job.poses / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=parse_size, default=(256, 176))
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    config = load_config(SynthConfig, DEFAULT_CONFIG, [f"size=[{args.size[0]}, {args.size[1]}]"])
    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        no_faces = load_config(
            SynthConfig,
            DEFAULT_CONFIG,
            [f"size=[{args.size[0]}, {args.size[1]}]", "dataset.faces=false"],
        )
        job = Job(out=tmp / "write", seed=0, n_identities=10**6, poses=4, config=no_faces)
        bench_render(job, 8)  # warm up: bank, noise pool, allocator
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            bench_render(job, args.images)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
            return
        times = np.array(bench_render(job, args.images))
        render_rss = peak_mb("cpu")
        write_rate = bench_write(job, args.images)
        write_rss = peak_mb("cpu")
        n_people = max(2, args.images // 4)
        start = time.perf_counter()
        generate(
            tmp / "cli",
            identities=n_people,
            poses=4,
            seed=0,
            config=config,
            workers=args.workers,
            progress=False,
        )
        cli_rate = n_people * 4 / (time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    h, w = args.size
    print(machine_line())
    print(f"SynthFashion at {h}x{w}, {args.images} images")
    print("| stage | processes | images/s | ms/image (mean / p50 / p95) | peak RSS |")
    print("|---|---|---|---|---|")
    print(
        f"| render + all ground truth | 1 | {1 / times.mean():.0f} | "
        f"{times.mean() * 1e3:.1f} / {np.median(times) * 1e3:.1f} / "
        f"{np.percentile(times, 95) * 1e3:.1f} | {render_rss:.0f} MB |"
    )
    print(
        f"| render + write all files | 1 | {write_rate:.0f} | {1e3 / write_rate:.1f} | "
        f"{write_rss:.0f} MB |"
    )
    print(
        f"| python -m synth (faces, swaps) | {args.workers} | {cli_rate:.0f} | "
        f"{1e3 / cli_rate:.1f} (wall) | main process {peak_mb('cpu'):.0f} MB |"
    )


if __name__ == "__main__":
    main()
