"""Import the official ADGAN generator (`latest_net_netG.pth` of menyifang/ADGAN):

    python -m adgan.importer latest_net_netG.pth --out runs/adgan/official

The result is an ordinary checkpoint folder (`generator.safetensors` + `config.json`) that
`adgan.evaluate`, the pipeline and the bundle read. The official pose input is ours:
18 Gaussian maps with sigma 6 at 256x176 from the DeepFashion keypoint CSV; its component
encoder feeds the masked [-1, 1] images to VGG without ImageNet normalisation
(`vgg_input: none`).

Key names differ (the reference nests `Sequential`s and writes AdaIN parameters into its
modules); the mapping below is explicit. Its AdaIN running statistics are unused dummies
and its VGG layers past relu4_1 are never read by the encoder's taps: both are dropped.
Anything else that does not map, or maps with another shape, is listed and refused.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from adgan.model import Generator, GeneratorConfig, generator_for_weights
from adgan.vgg import LAYERS
from common.checkpoint import CheckpointError, save_checkpoint

_LAST_TAP = LAYERS["relu4_1"]

# official key pattern -> our name, from the match groups
_RULES: list[tuple[str, Callable[[tuple[str, ...]], str]]] = [
    (
        r"enc_style\.vgg\.(\d+)\.(weight|bias)",
        lambda g: f"component_encoder.vgg.layers.{g[0]}.{g[1]}",
    ),
    (
        r"enc_style\.conv([1-4])\.conv\.(weight|bias)",
        lambda g: f"component_encoder.convs.{int(g[0]) - 1}.conv.{g[1]}",
    ),
    (r"enc_style\.model\.1\.(weight|bias)", lambda g: f"component_encoder.to_code.{g[0]}"),
    (r"enc_content\.model\.0\.conv\.(weight|bias)", lambda g: f"pose_encoder.stem.conv.{g[0]}"),
    (
        r"enc_content\.model\.([12])\.conv\.(weight|bias)",
        lambda g: f"pose_encoder.down.{int(g[0]) - 1}.conv.{g[1]}",
    ),
    (
        r"enc_content\.model\.3\.model\.(\d+)\.model\.([01])\.conv\.(weight|bias)",
        lambda g: f"pose_encoder.res.{g[0]}.conv{int(g[1]) + 1}.conv.{g[2]}",
    ),
    (
        r"dec\.model\.0\.model\.(\d+)\.model\.([01])\.conv\.(weight|bias)",
        lambda g: f"decoder.res.{g[0]}.conv{int(g[1]) + 1}.conv.{g[2]}",
    ),
    (
        r"dec\.model\.([24])\.conv\.(weight|bias)",
        lambda g: f"decoder.up.{int(g[0]) // 2 - 1}.conv.{g[1]}",
    ),
    (
        r"dec\.model\.([24])\.norm\.(gamma|beta)",
        lambda g: f"decoder.up.{int(g[0]) // 2 - 1}.norm.{g[1]}",
    ),
    (r"dec\.model\.5\.conv\.(weight|bias)", lambda g: f"decoder.to_rgb.conv.{g[0]}"),
    (r"fc\.fc\.(weight|bias)", lambda g: f"fuse.0.{g[0]}"),
    (r"mlp\.model\.([012])\.fc\.(weight|bias)", lambda g: f"mlp.{2 * int(g[0])}.{g[1]}"),
]
_DROPPED = [
    r"dec\.model\.0\.model\.\d+\.model\.[01]\.norm\.running_(mean|var)",  # AdaIN dummies
]


class ImportMismatch(CheckpointError):
    """The official state dict does not fit our generator; the message lists where."""


def _our_name(key: str) -> str | None:
    for pattern, name in _RULES:
        if m := re.fullmatch(pattern, key):
            return name(m.groups())
    return None


def convert_official(
    state: dict[str, torch.Tensor], generator: Generator
) -> dict[str, torch.Tensor]:
    """Official netG state dict -> ours, or ImportMismatch listing every difference."""
    ours = generator.state_dict()
    out: dict[str, torch.Tensor] = {}
    unknown, wrong = [], []
    for key, value in state.items():
        key = key.removeprefix("module.")  # saved from DataParallel
        if any(re.fullmatch(p, key) for p in _DROPPED):
            continue
        vgg = re.fullmatch(r"enc_style\.vgg\.(\d+)\.(weight|bias)", key)
        if vgg and int(vgg.group(1)) > _LAST_TAP:
            continue  # past relu4_1: the encoder never reads these layers
        name = _our_name(key)
        if name is None or name not in ours:
            unknown.append(key)
        elif tuple(ours[name].shape) != tuple(value.shape):
            wrong.append(f"{key} {tuple(value.shape)} -> {name} {tuple(ours[name].shape)}")
        else:
            out[name] = value.float()
    missing = [k for k in ours if k not in out]
    if unknown or wrong or missing:
        parts = []
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong[:8]))
        if unknown:
            parts.append("official keys with no place here: " + ", ".join(unknown[:8]))
        if missing:
            parts.append("our parameters the file does not give: " + ", ".join(missing[:8]))
        raise ImportMismatch("the official generator does not fit: " + " | ".join(parts))
    return out


def official_config(image_size: tuple[int, int] = (256, 176)) -> GeneratorConfig:
    """The published model's architecture and input conventions."""
    return GeneratorConfig(image_size=image_size, pose_sigma=6.0, vgg_input="none")


def import_official(path: str | Path, out: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict")
    generator = generator_for_weights(official_config())
    generator.load_state_dict(convert_official(state, generator))
    config = {
        "task": "adgan",
        "step": 0,
        "modules": {"generator": generator.describe()},
        "config": {"imported_from": str(path)},
    }
    return save_checkpoint(Path(out), {"generator": generator}, config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Import the official ADGAN generator.")
    parser.add_argument("checkpoint", help="latest_net_netG.pth of menyifang/ADGAN")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    args = parser.parse_args(argv)
    try:
        folder = import_official(args.checkpoint, args.out)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"imported {args.checkpoint} -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
