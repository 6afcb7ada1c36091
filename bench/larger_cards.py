"""Larger cards against ground truth: `python bench/larger_cards.py [--scale 2]`.

    python bench/larger_cards.py [--bundle bundles/demo] [--scale 2] [--identities 60]
                                 [--pairs 144] [--data DIR]

SynthFashion people rendered at `scale` times the generator's size (a seed of their own, so
people the demo never trained on; or `--data`, a set rendered so), and for each held-out
test pair the card at that size three ways, each scored against the target photo at that
size: the source photo itself (copy), the generator's card at its own size enlarged
(bicubic), and the larger card (`PoseGenerator.render_card` with the source photo read at
the card's size: `infer.py --scale`). The generator reads the source at its own size (the
photo shrunk, as the pipeline's crop is) with the ground-truth parse and keypoints, so the
rows differ only in how the card is made larger. SSIM and mask-SSIM (`adgan.metrics`), L1,
and the fine detail of the person: the mean absolute Laplacian inside the target's person,
against the target photo's own (1 would be as sharp as the truth).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adgan.data import PairDataset  # noqa: E402
from adgan.evaluate import spread_subset  # noqa: E402
from adgan.generators import enlarge, generator_from_checkpoint, to_image  # noqa: E402
from adgan.metrics import l1, ssim  # noqa: E402
from bench.timing import machine_line  # noqa: E402
from common.checkpoint import DEMO_BUNDLE  # noqa: E402
from studio.framing import CARD_SCALES  # noqa: E402

SEED = 20261130  # the people of this bench: not the seed any training set was rendered with


def render(out: Path, identities: int, size: tuple[int, int]) -> Path:
    """A SynthFashion set of `identities` people at `size` (HxW) in `out`."""
    h, w = size
    cmd = [sys.executable, "-m", "synth", "--out", str(out), "--identities", str(identities)]
    cmd += ["--size", f"{h}x{w}", "--seed", str(SEED), "--quiet"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out


def fine_detail_ratio(card: np.ndarray, truth: np.ndarray, person: np.ndarray) -> float:
    """Mean absolute Laplacian of `card` inside `person` over the truth's there."""

    def laplacian(image: np.ndarray) -> np.ndarray:
        return np.abs(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F)).mean(-1)

    return float(laplacian(card)[person].mean() / max(laplacian(truth)[person].mean(), 1e-6))


@torch.no_grad()
def cards(
    bundle: Path, data: Path, scale: int, pairs: int, batch: int = 8
) -> dict[str, list[np.ndarray]]:
    generator = generator_from_checkpoint(bundle, "cpu")
    small = tuple(generator.config.image_size)
    large = (small[0] * scale, small[1] * scale)
    at_small = PairDataset(data, "test", small)
    at_large = PairDataset(data, "test", large, target_parsing=True)
    chosen = spread_subset(len(at_small), pairs)
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("truth", "person", "copy", "small", "large")
    }
    for start in range(0, len(chosen), batch):
        items = [(at_small[i], at_large[i]) for i in chosen[start : start + batch]]
        s = {k: torch.stack([a[k] for a, _ in items]) for k in items[0][0] if k != "name"}
        big = {k: torch.stack([b[k] for _, b in items]) for k in ("source", "target")}
        look = generator.encode(s["source"], s["source_parsing"], s["source_keypoints"])
        enlarged = enlarge(generator.decode(look, s["target_keypoints"]), scale, "bicubic")
        detail = generator.detail_rows(big["source"]) if generator.uses_detail else None
        card = generator.render_card(look, s["target_keypoints"], scale=scale, detail=detail)[0]
        out["truth"] += [to_image(t) for t in big["target"]]
        out["person"] += [b["target_labels"].numpy() > 0 for _, b in items]
        out["copy"] += [to_image(t) for t in big["source"]]
        out["small"] += [to_image(t.clamp(-1, 1)) for t in enlarged]
        out["large"] += [to_image(t) for t in card]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    p.add_argument("--scale", type=int, choices=[s for s in CARD_SCALES if s > 1], default=2)
    p.add_argument("--identities", type=int, default=60, help="people rendered (a fifth test)")
    p.add_argument("--pairs", type=int, default=144, help="test pairs scored")
    p.add_argument("--data", type=Path, help="a SynthFashion set at the larger size already")
    args = p.parse_args(argv)
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            size = generator_from_checkpoint(args.bundle, "cpu").config.image_size
            large = (size[0] * args.scale, size[1] * args.scale)
            args.data = render(Path(tmp) / "synth", args.identities, large)
        made = cards(args.bundle, args.data, args.scale, args.pairs)
    truth, person = np.stack(made["truth"]), np.stack(made["person"])
    h, w = truth.shape[1:3]
    print(f"# {len(truth)} held-out SynthFashion pairs, cards at {w}x{h}, bundle {args.bundle}")
    print("| the card at the larger size | SSIM | mask-SSIM | L1 | fine detail / the truth's |")
    print("|---|---:|---:|---:|---:|")
    names = {
        "copy": "the source photo (copy)",
        "small": "the card at the generator's size, enlarged (bicubic)",
        "large": "the larger card (`--scale`)",
    }
    for key, name in names.items():
        got = np.stack(made[key])
        detail = np.mean(
            [fine_detail_ratio(g, t, m) for g, t, m in zip(got, truth, person, strict=True)]
        )
        print(
            f"| {name} | {ssim(truth, got).mean():.3f} | {ssim(truth, got, person).mean():.3f} "
            f"| {l1(truth, got).mean():.4f} | {detail:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
