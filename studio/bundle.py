"""The model bundle: the three networks the pipeline needs, in one folder.

    BUNDLE/
      config.json             format, version, each network's class and config (the
                              generator's names its architecture), the keypoint and parsing
                              conventions, the image size, where each part came from
      keypoints.safetensors   any registered keypoint backend (`keypoints.estimators`: our
                              PoseNet, the imported CMU OpenPose body model, BlazePose);
                              config.json's `keypoint_backend` names it
      parser.safetensors      any registered parser (`parsing.model`: our ParserNet, the
                              imported SCHP LIP model) with a parsing head on the 8 ADGAN
                              classes
      generator.safetensors   any registered generator architecture (`adgan.generators`)

The image size belongs to the bundle (its generator's): the pipeline crops people to it and
every card has it.

It is a checkpoint folder (`common.checkpoint`): safetensors only, nothing is unpickled,
written under a temporary name and renamed into place; loading checks every key and shape
and names the file that does not fit. Weights may be stored in fp16 (half the size; the
pipeline computes in fp32 on CPU and bf16 on GPU anyway) or as weight-only int8 with
per-channel scales (a quarter; `common.checkpoint`), which is how the demo bundle fits in 30 MB.
A network that does not survive int8 (BlazePose: `int8_weights = False`) stays fp16 in an
int8 bundle; config.json's `storage` says how each file is stored.

    python -m studio.bundle --keypoints runs/keypoints/<run> --parser runs/parsing/<run> \
        --generator runs/adgan/<run> --out bundles/mine [--dtype int8] [--notes "trained on ..."]
    python -m studio.bundle --keypoints blazepose ...    # a backend with built-in weights

A bundle from the three public checkpoints (CMU OpenPose, SCHP LIP, the official ADGAN
generator) is made by `python -m studio.public_bundle`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adgan.generators import PoseGenerator, generator_from_checkpoint
from common.checkpoint import (
    CheckpointError,
    find_checkpoint,
    read_config,
    save_checkpoint,
    stored_module_name,
)
from common.config import ConfigError, apply_overrides, from_dict, parse_override, to_dict
from keypoints.estimators import (
    Backend,
    KeypointEstimator,
    backends,
    builtin_backend,
    builtin_names,
    load_estimator_module,
)
from keypoints.skeleton import KEYPOINT_NAMES
from parsing.labels import ADGAN_CLASSES
from parsing.model import Parser, parser_from_checkpoint

FORMAT = "adgan-bundle"
STORAGE: dict[str, torch.dtype | None] = {
    "float32": None,
    "float16": torch.float16,
    "int8": torch.int8,  # weight-only, per-channel scales
}
VERSION = 1
PARTS = ("keypoints", "parser", "generator")  # module names in the folder and config.json


@dataclass
class Bundle:
    keypoints: nn.Module  # any registered keypoint backend's module
    keypoint_backend: Backend
    parser: Parser  # any registered parser (ParserNet, SCHPNet)
    generator: PoseGenerator  # any registered architecture
    info: dict[str, Any]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the cards it makes: the generator's, which the pipeline and CLIs use."""
        return tuple(self.generator.config.image_size)

    def keypoint_estimator(self, device: torch.device | str = "cpu") -> KeypointEstimator:
        return self.keypoint_backend.estimator(self.keypoints, device)


def real_photo_warning(info: dict[str, Any]) -> str | None:
    """What a user must be told when the networks a bundle trained itself never saw a real
    person (`synthetic_only`); a keypoint backend with built-in pretrained weights
    (BlazePose) is said to be the exception."""
    if not info.get("synthetic_only"):
        return None
    name = info.get("keypoint_backend")
    pretrained = any(b.name == name and b.builtin is not None for b in backends().values())
    who = (
        f"this bundle's parser and generator were trained on synthetic people only "
        f"(SynthFashion; its keypoints, {name}, on real people)"
        if pretrained
        else "this bundle was trained on synthetic people only (SynthFashion)"
    )
    return (
        f"{who}: on real photos expect wrong garment regions and a rough picture. Use a "
        "bundle trained on DeepFashion (README: Real data)"
    )


def conventions(generator: PoseGenerator) -> dict[str, Any]:
    return {
        "keypoints": list(KEYPOINT_NAMES),
        "parsing_classes": list(ADGAN_CLASSES),
        "image_size": list(generator.config.image_size),
        "image_range": "[-1, 1] inside the generator; uint8 RGB outside",
    }


def _check_parts(parser: Parser, generator: PoseGenerator, where: str) -> None:
    if "parsing" not in parser.config.heads or parser.config.label_set != "adgan8":
        raise CheckpointError(
            f"{where}: the parser must have a parsing head on the 8 ADGAN classes "
            f"(it has heads {list(parser.config.heads)}, labels {parser.config.label_set!r})"
        )
    g = generator.config
    components = getattr(g, "components", len(ADGAN_CLASSES))
    pose_channels = getattr(g, "pose_channels", len(KEYPOINT_NAMES))
    if components != len(ADGAN_CLASSES) or pose_channels != len(KEYPOINT_NAMES):
        raise CheckpointError(
            f"{where}: the generator takes {components} components and {pose_channels} "
            f"pose channels; the pipeline gives {len(ADGAN_CLASSES)} and {len(KEYPOINT_NAMES)}"
        )


def _keypoint_part(keypoints: str | Path) -> tuple[Backend, nn.Module, str]:
    """(backend, module, where it came from) of a keypoint folder or a built-in backend name."""
    backend = builtin_backend(str(keypoints))
    if backend is not None and backend.builtin is not None and not Path(keypoints).exists():
        return backend, backend.builtin(), backend.builtin_source or backend.name
    if not Path(keypoints).exists():
        raise CheckpointError(
            f"{keypoints}: no such keypoint run or checkpoint folder, nor a keypoint backend "
            f"with built-in weights ({', '.join(builtin_names())})"
        )
    backend, module = load_estimator_module(
        keypoints, stored_module_name(keypoints, ("model", "keypoints"))
    )
    return backend, module, str(keypoints)


def _stored_as(module: nn.Module, dtype: str) -> str:
    """How `save_checkpoint` stores `module` for bundle storage `dtype` (common.checkpoint)."""
    if dtype == "int8" and getattr(module, "int8_weights", True) is False:
        return "float16"
    return dtype


def with_settings(module: nn.Module, settings: list[str], what: str) -> nn.Module:
    """`module` (the bundle's `what`) with inference settings (`key=value`, its class's
    `INFERENCE_SETTINGS`) changed in its config; a field that shapes the weights is refused."""
    if not settings:
        return module
    allowed = getattr(type(module), "INFERENCE_SETTINGS", ())
    for text in settings:
        keys, _ = parse_override(text)
        if ".".join(keys) not in allowed:
            kind = getattr(module.config, "arch", type(module).__name__)
            raise ConfigError(
                f"{what} setting {text!r}: a {kind} {what}'s inference settings are "
                f"{', '.join(allowed) or 'none'}"
            )
    data = apply_overrides(to_dict(module.config), settings)
    module.config = from_dict(type(module.config), data, where=what)
    return module


def _source(path: str | Path, part: str) -> str:
    """Where a part came from: its folder, or, taken from another bundle, what that bundle
    says of it (a rebuilt bundle keeps its training run's name)."""
    try:
        recorded = read_config(find_checkpoint(path)).get("sources", {}).get(part)
    except (CheckpointError, FileNotFoundError):
        recorded = None
    return f"{recorded} (via {path})" if recorded else str(path)


def make_bundle(
    keypoints: str | Path,
    parser: str | Path,
    generator: str | Path,
    out: str | Path,
    *,
    dtype: str = "float16",
    notes: str = "",
    synthetic_only: bool = False,
    sources: dict[str, str] | None = None,
    generator_settings: list[str] | None = None,
    parser_settings: list[str] | None = None,
) -> Path:
    """Assemble a bundle from three checkpoints (run, checkpoint, import or bundle folders):
    any registered keypoint backend, any registered parser with the 8 ADGAN classes, any
    generator architecture. `keypoints` may also name a backend with built-in weights
    (`blazepose`) where no folder of that name exists. `sources`: where a part came from,
    when that is not the folder given (an import in a temporary folder).
    `generator_settings`, `parser_settings`: `key=value` inference settings of the generator
    and the parser (`with_settings`)."""
    if dtype not in STORAGE:
        raise ValueError(f"dtype must be one of {', '.join(STORAGE)}, got {dtype!r}")
    keypoint_backend, keypoint_module, keypoint_source = _keypoint_part(keypoints)
    parts = {
        "keypoints": keypoint_module,
        "parser": with_settings(
            parser_from_checkpoint(parser, name=stored_module_name(parser, ("model", "parser"))),
            parser_settings or [],
            "parser",
        ),
        "generator": with_settings(
            generator_from_checkpoint(generator), generator_settings or [], "generator"
        ),
    }
    _check_parts(parts["parser"], parts["generator"], "bundle")
    config = {
        "format": FORMAT,
        "version": VERSION,
        "modules": {name: module.describe() for name, module in parts.items()},
        "conventions": conventions(parts["generator"]),
        "keypoint_backend": keypoint_backend.name,
        "sources": {
            "keypoints": keypoint_source,
            "parser": _source(parser, "parser"),
            "generator": _source(generator, "generator"),
            **(sources or {}),
        },
        "dtype": dtype,
        "storage": {name: _stored_as(module, dtype) for name, module in parts.items()},
        "notes": notes,
        "synthetic_only": synthetic_only,
    }
    return save_checkpoint(Path(out), parts, config, dtype=STORAGE[dtype])


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """The three networks of a bundle in eval mode on `device`; anything that does not fit
    (format, version, conventions, a file's keys or shapes) is named in a CheckpointError."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such bundle folder")
    info = read_config(path)
    if info.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a model bundle (config.json has no format {FORMAT!r})")
    if int(info.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{path}: bundle version {info.get('version')} is newer than this code ({VERSION})"
        )
    for name in PARTS:
        if name not in info.get("modules", {}):
            raise CheckpointError(f"{path}: the bundle has no {name}")
    # Each network through its own strict loader; a file that does not fit is named.
    backend, keypoints = load_estimator_module(path, "keypoints")
    named = info.get("keypoint_backend", backend.name)  # bundles before it was recorded
    if named != backend.name:
        raise CheckpointError(
            f"{path}: config.json names keypoint backend {named!r} but keypoints.safetensors "
            f"holds a {type(keypoints).__name__} ({backend.name!r})"
        )
    parser = parser_from_checkpoint(path, device, name="parser")
    generator = generator_from_checkpoint(path, device)
    conv = info.get("conventions", {})
    if conv.get("keypoints") != list(KEYPOINT_NAMES):
        raise CheckpointError(f"{path}: its keypoints are not the 18 OpenPose-COCO points")
    if conv.get("parsing_classes") != list(ADGAN_CLASSES):
        raise CheckpointError(f"{path}: its parsing classes are not ADGAN's 8, in order")
    if list(conv.get("image_size", [])) != list(generator.config.image_size):
        raise CheckpointError(
            f"{path}: its image size {conv.get('image_size')} is not its generator's "
            f"{list(generator.config.image_size)}"
        )
    _check_parts(parser, generator, str(path))
    return Bundle(
        keypoints.float().to(device).eval(), backend, parser.float(), generator.float(), info
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Assemble a model bundle for infer.py.")
    p.add_argument(
        "--keypoints",
        required=True,
        help="keypoint run or checkpoint folder, or the name of a backend with built-in "
        f"weights ({', '.join(builtin_names())}: no folder needed)",
    )
    p.add_argument(
        "--parser",
        required=True,
        help="parsing run or checkpoint folder (ours, or an imported SCHP model)",
    )
    p.add_argument("--generator", required=True, help="adgan run, checkpoint or import")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--dtype", choices=sorted(STORAGE), default="float16", help="how weights are stored"
    )
    p.add_argument("--notes", default="", help="what the models were trained on, etc.")
    p.add_argument(
        "--synthetic-only",
        action="store_true",
        help="every network saw only synthetic people: users are warned on real photos",
    )
    p.add_argument(
        "--generator-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a generator inference setting, e.g. warp_trust=1.0 for partwarp (repeatable)",
    )
    p.add_argument(
        "--parser-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parser inference setting, e.g. input_size=[176,121]: the crop it reads",
    )
    args = p.parse_args(argv)
    try:
        out = make_bundle(
            args.keypoints,
            args.parser,
            args.generator,
            args.out,
            dtype=args.dtype,
            notes=args.notes,
            synthetic_only=args.synthetic_only,
            generator_settings=args.generator_set,
            parser_settings=args.parser_set,
        )
        load_bundle(out)  # what was written must load
    except (CheckpointError, ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"bundle {out}: {size:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
