"""BlazePose speed on torch: `python bench/blazepose_speed.py [--threads N] [--repeats R]`.

Prints ms per crop (mean, p50, p95 per batch; crops/s) at batch 1 and 16 for the detector
(224x224), the landmark model (256x256) and Face Mesh (192x192) as `keypoints.tflite_graph`
runs them, then the whole `BlazePose.predict_many` per photo (detector, ROI crop, two
landmark looks, mask back to the photo, two Face Mesh looks), peak memory (RSS on CPU), on
CPU and, when one is visible, on the GPU; and whether this CPU has bf16 matrix units (the
graphs run fp32: their weights are fp16-exact). On the GPU each graph is timed under bf16
autocast too (`bf16` rows): what the graphs would gain, not what the product runs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import peak_mb, summarize  # noqa: E402
from common.hardware import cpu_has_bf16_matmul  # noqa: E402
from common.image_io import load_image  # noqa: E402
from keypoints.blazepose import DEFAULT_WEIGHTS, BlazePose  # noqa: E402


def timed(fn, repeats: int, device: str) -> np.ndarray:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return np.array(times)


def bench(model: BlazePose, photo: np.ndarray, device: str, batches: list[int], repeats: int):
    rows = []
    face = model.face.graph if model.face is not None else None
    model = BlazePose(model.detector, model.landmark, face, device=device)  # its own chunks
    graphs = [("detector", model.detector, 224), ("landmark", model.landmark, 256)]
    if face is not None:
        graphs.append(("face", face, 192))
    precisions = [False, True] if device == "cuda" else [False]
    for (name, graph, size), bf16, batch in itertools.product(graphs, precisions, batches):
        x = torch.rand(batch, size, size, 3, device=device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()

        def run(graph=graph, x=x, bf16=bf16):
            with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                return graph(x)

        what = f"{name}, bf16" if bf16 else name
        try:
            timed(run, 2, device)
        except RuntimeError as exc:  # an op without a bf16 kernel: say so, time the rest
            print(f"# {what} at batch {batch}: {str(exc).splitlines()[0]}")
            continue
        t = timed(run, repeats, device)
        rows.append((device, what, batch, *summarize(t, batch), peak_mb(device)))
    for batch in batches:
        photos = [photo] * batch

        def run(photos=photos):
            return model.predict_many(photos)

        timed(run, 2, device)
        t = timed(run, max(3, repeats // 4), device)
        rows.append((device, "predict_many (photo)", batch, *summarize(t, batch), peak_mb(device)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument("--photo", type=Path, default=ROOT / "examples" / "shopper.jpg")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--gpu-only", action="store_true", help="skip the CPU rows")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = BlazePose.from_folder(args.weights)
    photo = load_image(args.photo)
    cuda = torch.cuda.is_available()
    rows = [] if args.gpu_only and cuda else bench(model, photo, "cpu", [1, 16], args.repeats)
    if cuda:
        rows += bench(model, photo, "cuda", [1, 16, 64], args.repeats)
    print(
        f"BlazePose (mediapipe 0.10.14 graphs, fp32) on torch {torch.__version__}; CPU "
        f"{platform.processor() or platform.machine()} x{torch.get_num_threads()} threads of "
        f"{os.cpu_count()}, bf16 matrix units: {'yes' if cpu_has_bf16_matmul() else 'no'}"
        + (f"; GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
        + f"; photo {args.photo.name} {photo.shape[1]}x{photo.shape[0]}"
    )
    print("| device | what | batch | crops/s | ms per crop | ms/batch mean | p50 | p95 | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d, what, b, rate, mean, p50, p95, peak in rows:
        print(
            f"| {d} | {what} | {b} | {rate:.1f} | {mean / b:.1f} | {mean:.1f} | {p50:.1f} | "
            f"{p95:.1f} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
