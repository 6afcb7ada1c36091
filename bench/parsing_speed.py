"""Dense-network inference speed: `python bench/parsing_speed.py [--config C | --checkpoint R
| --schp]`.

Prints crops/s and latency (mean, p50, p95) at batch 1 and larger batches, and peak memory,
on CPU and, when one is visible, on the GPU (bf16 autocast); channels_last, as the product
runs them (`--contiguous` for NCHW, to see what the layout gains). Weights do not
matter for speed: a config alone is enough (`--heads parsing densepose` for both heads). A
guided parser's config gets its guide channels (the no-keypoint guides `ParserNet` makes);
`--schp` times the public SCHP LIP network (ResNet-101) at its 473x473 crop.

`--fold` times instead the parse with its test-time flip as `DensePredictor` runs it,
BatchNorm folded into the convolutions (`common.folding`), against BatchNorm kept, the two
interleaved in one process (CPU only).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.timing import machine_line, peak_mb, summarize
from common.config import load_config
from common.folding import fold_batchnorm
from parsing.model import ParserNet
from parsing.schp import SCHPNet
from parsing.task import DenseConfig


def bench(
    model: ParserNet | SCHPNet,
    device: str,
    batches: list[int],
    repeats: int,
    memory_format: torch.memory_format = torch.channels_last,
) -> list[tuple]:
    rows = []
    h, w = model.config.input_size
    cuda = device == "cuda"
    model = model.to(device).eval().to(memory_format=memory_format)
    for batch in batches:
        x = torch.rand(batch, 3, h, w, device=device).contiguous(memory_format=memory_format)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(repeats + 3):
            start = time.perf_counter()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                model(x)
            if cuda:
                torch.cuda.synchronize()
            if i >= 3:
                times.append(time.perf_counter() - start)
        rows.append((device, batch, *summarize(times, batch), peak_mb(device)))
    return rows


def fold_rows(model: ParserNet | SCHPNet, batches: list[int], repeats: int) -> list[tuple]:
    """The parse with its flip test (two passes) on the CPU, BatchNorm kept and folded,
    interleaved repeat by repeat (the machine's own drift then falls on both alike)."""
    model = model.eval().to(memory_format=torch.channels_last)
    folded = copy.deepcopy(model)
    fold_batchnorm(folded)
    ways = {"BatchNorm kept": model, "folded (DensePredictor)": folded}
    h, w = model.config.input_size
    rows = []
    for batch in batches:
        x = torch.rand(batch, 3, h, w).contiguous(memory_format=torch.channels_last)
        times: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(repeats + 2):
            for name, net in ways.items():
                start = time.perf_counter()
                with torch.no_grad():
                    net.parsing_probabilities(x, True, net(x)["parsing"])
                if i >= 2:
                    times[name].append(time.perf_counter() - start)
        rows += [(name, batch, *summarize(t, batch)) for name, t in times.items()]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", type=Path, default=Path("configs/parsing-synth-cpu.yaml"))
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--size", default="256x176", help="input HxW (with --config)")
    p.add_argument("--heads", nargs="+", default=None)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--schp", action="store_true", help="the public SCHP LIP network instead")
    p.add_argument("--gpu-only", action="store_true", help="skip the CPU rows")
    p.add_argument(
        "--contiguous",
        action="store_true",
        help="NCHW-contiguous tensors instead of channels_last (what the product runs)",
    )
    p.add_argument(
        "--fold",
        action="store_true",
        help="the parse with its flip test, BatchNorm folded (as the product) and kept",
    )
    args = p.parse_args()
    layout = torch.contiguous_format if args.contiguous else torch.channels_last
    if args.schp:
        model = SCHPNet()
    elif args.checkpoint:
        model = ParserNet.from_checkpoint(args.checkpoint)
    else:
        h, w = (int(v) for v in args.size.split("x"))
        overrides = [f"model.input_size=[{h}, {w}]"]
        if args.heads:
            overrides.append(f"model.heads=[{', '.join(args.heads)}]")
        model = ParserNet(load_config(DenseConfig, args.config, overrides).model)
    if args.fold:
        print(machine_line("cpu"))
        c = model.config
        print(f"# {type(model).__name__} at {c.input_size[0]}x{c.input_size[1]}, channels_last")
        print("| parse with flip test | batch | crops/s | ms/batch mean | p50 | p95 |")
        print("|---|---|---|---|---|---|")
        for name, b, rate, mean, p50, p95 in fold_rows(model, [1, 2, 16], args.repeats):
            print(f"| {name} | {b} | {rate:.1f} | {mean:.1f} | {p50:.1f} | {p95:.1f} |")
        return
    cuda = torch.cuda.is_available()
    rows = [] if args.gpu_only and cuda else bench(model, "cpu", [1, 16], args.repeats, layout)
    if cuda:
        rows += bench(model, "cuda", [1, 64, 256], args.repeats, layout)
    c = model.config
    print(machine_line("cuda" if cuda else "cpu"))
    print(f"# layout: {'NCHW-contiguous' if args.contiguous else 'channels_last'}")
    if args.schp:
        depth = sum(c.blocks) * 3 + 2
        print(f"SCHP (ResNet-{depth}, PSP, edge, fusion) at {c.input_size[0]}x{c.input_size[1]}")
    else:
        guides = f", guides {list(c.guides)}" if c.guides else ""
        print(
            f"ParserNet {c.arch}/{c.encoder} heads {list(c.heads)}{guides} at "
            f"{c.input_size[0]}x{c.input_size[1]}"
        )
    print("| device | batch | crops/s | ms/batch mean | p50 | p95 | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for d, b, rate, mean, p50, p95, peak in rows:
        print(f"| {d} | {b} | {rate:.1f} | {mean:.1f} | {p50:.1f} | {p95:.1f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
