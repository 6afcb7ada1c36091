"""End-to-end speed of the photo-to-card pipeline: `python bench/pipeline_speed.py
[--bundle bundles/demo | --full-size] [--batches 1 16 64] [--repeats 10] [--scale 1 2]`.

Per photo pair: decode both photos, find and crop each person (keypoints on the photo),
keypoints and parsing on the crops, encode, generate, encode the PNG: what `infer.py` does
after loading the bundle. Printed per stage and in total, at batch 1 (latency) and larger
batches (cards/s, what `infer.py --batch` and the web page's queue get), with peak memory; on
the CPU always and on the GPU when one is visible (the generator in bf16). `--scale`: cards
that many times the generator's size (`infer.py --scale`), one table row set per scale.

`--full-size` times a bundle of random networks of the shapes a real 256x176 bundle has
(the CPU configs' keypoint and parsing networks at 256x176, the reference-size generator):
speed does not depend on the weights. Random keypoint weights find nobody, so the keypoint
network runs and the stand-in `StandingPerson` answers in its place.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import machine_line, peak_mb, summarize
from common.hardware import PRECISIONS
from common.image_io import encode_image, load_image
from studio.backdrop import AUTO, Backdrop, parse_backdrop
from studio.framing import CARD_SCALES
from studio.pipeline import Job, Pipeline

ROOT = Path(__file__).resolve().parent.parent


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_once(
    pipe: Pipeline, source: bytes, pose: bytes, batch: int, device: str, backdrop: Backdrop
) -> dict:
    """Seconds per stage for `batch` cards (each its own pair of photos)."""
    t = {"decode": time.perf_counter()}
    photos = []
    for i in range(batch):
        photos += [(load_image(source), f"source{i}"), (load_image(pose), f"pose{i}")]
    t["people"] = time.perf_counter()
    views = pipe.people(photos, parse=[i % 2 == 0 for i in range(len(photos))])  # as infer.py
    _sync(device)
    t["generate"] = time.perf_counter()
    jobs = [Job(views[2 * i], views[2 * i + 1], backdrop=backdrop) for i in range(batch)]
    cards = pipe.generate_many(jobs)
    _sync(device)
    t["png"] = time.perf_counter()
    for card in cards:
        encode_image(card, ".png")
    t["end"] = time.perf_counter()
    names = list(t)
    return {a: t[b] - t[a] for a, b in itertools.pairwise(names)}


def full_size_bundle(out: Path) -> Path:
    """Random networks of a real 256x176 bundle's shapes (see the module docstring)."""
    from adgan.model import Generator, GeneratorConfig
    from common.config import from_dict, load_yaml
    from keypoints.model import PoseNet, PoseNetConfig
    from parsing.model import ParserNet, ParserNetConfig
    from studio.stub import bundle_of

    def model_section(name: str) -> dict:
        return {**load_yaml(ROOT / "configs" / name)["model"], "input_size": [256, 176]}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no VGG-19 weights": random is the point here
        networks = {
            "keypoints": PoseNet(
                from_dict(PoseNetConfig, model_section("keypoints-synth-cpu.yaml"))
            ),
            "parser": ParserNet(
                from_dict(ParserNetConfig, model_section("parsing-synth-cpu.yaml"))
            ),
            "generator": Generator(GeneratorConfig(image_size=(256, 176))),
        }
    return bundle_of(
        networks, out, "random weights at full size (bench/pipeline_speed.py --full-size)"
    )


def bench(
    bundle: Path,
    device: str,
    batches: list[int],
    repeats: int,
    photos: tuple,
    stand_in: bool,
    precision: str,
    backdrop: Backdrop = AUTO,
    scale: int = 1,
) -> list:
    pipe = Pipeline.from_bundle(bundle, device, precision, card_scale=scale)
    print(f"# {device}: generator in {pipe.transfer.precision}, cards {pipe.card_size()}")
    if stand_in:
        from studio.stub import StandingPersonAfter

        pipe.keypoints = StandingPersonAfter(pipe.keypoints)
    source, pose = (p.read_bytes() for p in photos)
    rows = []
    for batch in batches:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        runs = [run_once(pipe, source, pose, batch, device, backdrop) for _ in range(repeats + 2)]
        runs = runs[2:]
        for stage in ("decode", "people", "generate", "png", "total"):
            times = [sum(r.values()) if stage == "total" else r[stage] for r in runs]
            rows.append((device, scale, batch, stage, *summarize(times, batch), peak_mb(device)))
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
    p.add_argument(
        "--full-size", action="store_true", help="random networks of a 256x176 bundle's shapes"
    )
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument(
        "--backdrop", type=parse_backdrop, default=AUTO, help="auto, photo or a colour (white, ...)"
    )
    p.add_argument("--gpu-only", action="store_true", help="skip the CPU rows")
    p.add_argument("--scale", type=int, nargs="+", choices=CARD_SCALES, default=[1])
    args = p.parse_args()
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as tmp:
        if args.full_size:
            args.bundle = full_size_bundle(Path(tmp) / "bundle")
        print(machine_line("cuda" if cuda else "cpu"))
        print(f"# bundle {'random, full size' if args.full_size else args.bundle}")
        photos = (args.source, args.pose)
        common = (args.repeats, photos, args.full_size, args.precision, args.backdrop)
        rows = []
        for scale in args.scale:
            if not (args.gpu_only and cuda):
                rows += bench(args.bundle, "cpu", args.batches, *common, scale)
            if cuda:
                rows += bench(args.bundle, "cuda", args.gpu_batches, *common, scale)
    print(
        "| device | scale | batch | stage | cards/s | mean ms/batch | p50 ms | p95 ms | peak MB |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for device, scale, batch, stage, rate, mean, p50, p95, peak in rows:
        print(
            f"| {device} | {scale} | {batch} | {stage} | {rate:.1f} | {mean:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
