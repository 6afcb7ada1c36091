"""Generator speed: `python bench/adgan_speed.py [--config configs/adgan-*.yaml]
[--size 256x176] [--device cpu|cuda]`.

Prints, on the device, in the training loop's precision (bf16 autocast and channels_last on
CUDA and on CPUs with bf16 units, AMX; fp32 elsewhere, or with `--fp32`):
- training steps/s and images/s (one step of `adgan.task`: the config's generator and
  losses, ADGAN's defaults without one) at `--train-batch`; for ADGAN also the
  reference's structure (its component encoder runs the 8 masked images one after another
  through the whole VGG-19), side by side in one run;
- on CUDA, the largest training batch that fits (doubling until out of memory);
- inference images/s at each `--infer-batch`; peak memory of each row.
Weights do not matter for speed: everything is random. CPU defaults are small (128x88,
inference batches 1 and 8) so that the script ends in minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import vgg19

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adgan.generators import DEFAULT_ARCH
from adgan.model import ENCODER_TAPS, ComponentEncoder
from adgan.task import AdganConfig, AdganTask
from adgan.vgg import LAYERS
from bench.timing import machine_line, peak_mb
from common.config import load_config
from common.training import TrainConfig, make_context

warnings.filterwarnings("ignore", message=".*no VGG-19 weights")


class ReferenceStructureEncoder(nn.Module):
    """The same weights, run the reference's way: a Python loop over the components, each
    masked image through every layer of VGG-19 (taps read on the way)."""

    def __init__(self, ours: ComponentEncoder) -> None:
        super().__init__()
        self.ours = ours
        self.full = vgg19(weights=None).features
        self.full.load_state_dict(ours.vgg.layers.state_dict(), strict=False)
        self.full.requires_grad_(False)
        self.taps = {LAYERS[t]: t for t in ENCODER_TAPS}

    def forward(self, image: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        codes = []
        for k in range(parsing.shape[1]):
            x = image * parsing[:, k : k + 1]
            taps, y = {}, x
            for i, layer in enumerate(self.full):
                y = layer(y)
                if i in self.taps:
                    taps[self.taps[i]] = y
            for conv, tap in zip(self.ours.convs, ENCODER_TAPS, strict=True):
                x = torch.cat([conv(x), taps[tap]], 1)
            codes.append(self.ours.to_code(x.mean(dim=(2, 3), keepdim=True)).flatten(1))
        return torch.stack(codes, 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fake_batch(batch: int, size: tuple[int, int], device: torch.device) -> dict:
    h, w = size
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([w - 1.0, h - 1.0])
    labels = torch.randint(0, 8, (batch, h, w), generator=g)
    return {
        "source": (torch.rand(batch, 3, h, w, generator=g) * 2 - 1).to(device),
        "target": (torch.rand(batch, 3, h, w, generator=g) * 2 - 1).to(device),
        "source_parsing": nn.functional.one_hot(labels, 8).permute(0, 3, 1, 2).float().to(device),
        "source_keypoints": (torch.rand(batch, 18, 2, generator=g) * scale).to(device),
        "target_keypoints": (torch.rand(batch, 18, 2, generator=g) * scale).to(device),
    }


def make_task(base: AdganConfig, batch, device_name, reference: bool, amp: bool = True):
    cfg = copy.deepcopy(base)
    cfg.train = TrainConfig(device=device_name, batch_size=batch, steps=10**6, amp=amp)
    ctx = make_context(cfg.train, Path("."))
    task = AdganTask(cfg)
    task.build(ctx)
    if reference:
        encoder = ReferenceStructureEncoder(task.generator.component_encoder).to(ctx.device)
        if ctx.channels_last:
            encoder = encoder.to(memory_format=torch.channels_last)
        task.generator.component_encoder = encoder
    return task, ctx


def time_training(
    cfg: AdganConfig, batch, device_name, steps, reference=False, amp=True
) -> tuple[float, float]:
    size = tuple(cfg.model.image_size)
    task, ctx = make_task(cfg, batch, device_name, reference, amp)
    data = ctx.to_device(fake_batch(batch, size, ctx.device))
    task.train_step(data, ctx)  # warm-up
    sync(ctx.device)
    if ctx.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(ctx.device)
    start = time.perf_counter()
    for _ in range(steps):
        task.train_step(data, ctx)
    sync(ctx.device)
    return steps / (time.perf_counter() - start), peak_mb(ctx.device)


def largest_training_batch(cfg: AdganConfig, device_name, start: int = 8, cap: int = 512) -> int:
    best, batch = 0, start
    while batch <= cap:
        try:
            time_training(cfg, batch, device_name, steps=1)
            best, batch = batch, batch * 2
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return best


@torch.no_grad()
def time_inference(
    cfg: AdganConfig, batch, device_name, repeats, amp=True
) -> tuple[float, float, float]:
    task, ctx = make_task(cfg, 1, device_name, reference=False, amp=amp)
    generator = task.generator.eval()
    data = ctx.to_device(fake_batch(batch, tuple(cfg.model.image_size), ctx.device))
    inputs = ("source", "source_parsing", "source_keypoints", "target_keypoints")
    times = []
    for i in range(repeats + 1):
        sync(ctx.device)
        start = time.perf_counter()
        with ctx.autocast():
            generator(*(data[k] for k in inputs))
        sync(ctx.device)
        if i:  # the first call warms up
            times.append(time.perf_counter() - start)
    mean = sum(times) / len(times)
    return batch / mean, 1000 * mean, peak_mb(ctx.device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--config", type=Path, help="a training config (default: ADGAN's)")
    parser.add_argument("--size", help="HxW (default 256x176 on CUDA, 128x88 on CPU)")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-steps", type=int, help="timed steps (default 20 CUDA, 2 CPU)")
    parser.add_argument("--infer-batch", type=int, nargs="+", help="default 1 64 (CUDA), 1 8")
    parser.add_argument("--repeats", type=int, help="timed inference calls (20 CUDA, 3 CPU)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast, even where fast")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    size = tuple(int(v) for v in (args.size or ("256x176" if cuda else "128x88")).split("x"))
    steps = args.train_steps or (20 if cuda else 2)
    infer = args.infer_batch or ([1, 64] if cuda else [1, 8])
    repeats = args.repeats or (20 if cuda else 3)
    amp = not args.fp32
    bf16 = make_context(TrainConfig(device=args.device, amp=amp), Path(".")).amp_dtype
    h, w = size
    if args.config:
        cfg = load_config(AdganConfig, args.config, [f"model.image_size=[{h}, {w}]"])
    else:
        cfg = AdganConfig(model={"arch": DEFAULT_ARCH, "image_size": [h, w]})
    arch = cfg.model.arch
    print(machine_line(args.device))
    print(
        f"{arch} generator ({args.config or 'ADGAN defaults'}) at {h}x{w} on "
        f"{'the GPU' if cuda else 'the CPU'}, "
        f"{'bf16 autocast, channels_last' if bf16 else 'fp32'}"
    )
    print("| what | batch | steps/s | images/s | peak MB |")
    print("|---|---|---|---|---|")
    train = (cfg, args.train_batch, args.device, steps)
    ours, mem = time_training(*train, amp=amp)
    print(
        f"| training step, ours | {args.train_batch} | {ours:.2f} | "
        f"{ours * args.train_batch:.1f} | {mem:.0f} |"
    )
    if arch == "adgan":
        ref, mem = time_training(*train, True, amp)
        print(
            f"| training step, reference structure | {args.train_batch} | {ref:.2f} | "
            f"{ref * args.train_batch:.1f} | {mem:.0f} |"
        )
        print(f"| speed-up | | {ours / ref:.2f}x | | |")
    for batch in infer:
        rate, ms, mem = time_inference(cfg, batch, args.device, repeats, amp)
        print(f"| inference ({ms:.1f} ms per batch) | {batch} | | {rate:.1f} | {mem:.0f} |")
    if cuda:  # last: the search is the slowest row
        largest = largest_training_batch(cfg, args.device)
        print(f"| largest training batch that fits | {largest} | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
