"""The dense network: a segmentation-models-pytorch encoder-decoder with named heads.

Heads share the decoder and split the output channels of its final convolution:

    parsing     K class logits (the ADGAN 8, or any label set a config names)
    densepose   25 part-index logits (background + 24), 24 U and 24 V (one per part,
                read at the true part, as DensePose's chart heads), 15 coarse-mask logits
                (background + the 14 coarse parts of dp_masks)

Images enter as RGB in [0, 1] and are normalised inside; any size works (padded to the
encoder's stride, cropped back). Outputs are at the input's resolution.

Parsers behind one interface, in a registry (`PARSERS`) the bundle and `DensePredictor` use:
a parser takes RGB [B, 3, H, W] in [0, 1] and answers a dict of head outputs ("parsing":
class logits at the input's resolution); its `config` has `input_size` (H, W: the crop it
reads a person at), `heads`, `label_set` and `parsing_classes`, and it has
`parsing_probabilities(images, flip_test, logits=...)`. A guided parser (a ParserNet whose
config names `guides`) also reads the keypoint backend's person mask and keypoint maps
(`parsing.guides`): `model(images, guides)`; `DensePredictor` builds them.
Registered: `ParserNet` (the default; `DenseNet` is its older name) and `SCHPNet`, the
public Self-Correction Human Parsing LIP model (`parsing.schp`). A checkpoint or bundle
stores the parser under its class name; `parser_from_checkpoint` builds whichever it holds
and loads it strictly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint import load_module
from common.config import from_dict
from parsing.densepose import NUM_COARSE, NUM_PARTS
from parsing.guides import guide_channels, guide_maps, mirror_guides
from parsing.labels import class_map, flip_table, label_set

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEADS = ("parsing", "densepose")
DENSEPOSE_CHANNELS = {
    "index": NUM_PARTS + 1,
    "u": NUM_PARTS,
    "v": NUM_PARTS,
    "coarse": NUM_COARSE + 1,
}


@dataclass
class ParserNetConfig:
    """Architecture of the dense network (stored with every checkpoint)."""

    arch: Literal["Unet", "Linknet", "FPN", "DeepLabV3Plus"] = "Unet"
    encoder: str = "mobilenet_v2"  # an smp encoder, or "tu-<timm model>"
    heads: tuple[str, ...] = ("parsing",)
    parsing_classes: int = 8
    label_set: str = "adgan8"  # names and colours of the parsing classes
    input_size: tuple[int, int] = (256, 176)
    # Unet/Unet++ decoder widths, deepest first; empty = smp's (256, 128, 64, 32, 16).
    # Halving them halves a CPU training step at 128x88 (the decoder dominates there).
    decoder_channels: tuple[int, ...] = ()
    # Channels read beside the photo, from the keypoint backend (`parsing.guides`): "mask"
    # (the person mask), "pose" (18 keypoint maps of Gaussians `guide_sigma` px at 256 rows).
    guides: tuple[str, ...] = ()
    guide_sigma: float = 6.0

    def __post_init__(self) -> None:
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown or not self.heads:
            raise ValueError(f"heads {list(self.heads)}: each must be one of {list(HEADS)}")
        guide_channels(tuple(self.guides))  # raises on an unknown guide


class FlipTestParsing:
    """What every parser shares on top of its `forward`: class probabilities, optionally
    averaged with the mirrored image's (left/right classes swapped back)."""

    config: Any  # with `label_set`

    def parsing_probabilities(
        self,
        images: torch.Tensor,
        flip_test: bool = False,
        logits: torch.Tensor | None = None,
        guides: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class probabilities [B, K, H, W]; with `flip_test`, averaged with the mirrored
        image's (its left/right classes swapped back), the usual test-time flip. `logits`:
        the parsing output for `images` when the caller already has it; `guides`: a guided
        parser's extra channels (`parsing.guides`)."""
        extra = {} if guides is None else {"guides": guides}
        if logits is None:
            logits = self(images, **extra)["parsing"]
        probs = torch.softmax(logits.float(), dim=1)
        if flip_test:
            if guides is not None:
                extra = {"guides": mirror_guides(tuple(self.config.guides), guides)}
            mirrored = self(images.flip(-1), **extra)["parsing"].float()
            mirrored = torch.softmax(mirrored, dim=1).flip(-1)
            probs = 0.5 * (probs + mirrored[:, list(self.flip_classes)])
        return probs

    @property
    def flip_classes(self) -> tuple[int, ...]:
        return flip_table(label_set(self.config.label_set).classes)


class ParserNet(FlipTestParsing, nn.Module):
    """RGB [B, 3, H, W] in [0, 1] (and, if the config names guides, their channels
    [B, G, H, W]) -> {head name: logits/values at [B, C, H, W]}."""

    # Config fields a bundle may set (`studio.bundle --parser-set`): fully convolutional,
    # the size it reads a crop at changes no weight.
    INFERENCE_SETTINGS: ClassVar[tuple[str, ...]] = ("input_size",)

    def __init__(self, config: ParserNetConfig) -> None:
        super().__init__()
        self.config = config
        self.slices: dict[str, slice] = {}
        start = 0
        if "parsing" in config.heads:
            self.slices["parsing"] = slice(start, start + config.parsing_classes)
            start += config.parsing_classes
        if "densepose" in config.heads:
            for name, n in DENSEPOSE_CHANNELS.items():
                self.slices[name] = slice(start, start + n)
                start += n
        extra = {"decoder_channels": config.decoder_channels} if config.decoder_channels else {}
        self.guide_channels = guide_channels(tuple(config.guides))
        self.net = smp.create_model(
            config.arch,
            encoder_name=config.encoder,
            encoder_weights=None,
            in_channels=3 + self.guide_channels,
            classes=start,
            **extra,
        )
        self.pad_to = 32  # every smp encoder downsamples five times
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(
        self, images: torch.Tensor, guides: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        b, _, h, w = images.shape
        x = (images - self.mean) / self.std
        if self.guide_channels:  # none given: no keypoints, an unknown mask
            if guides is None:
                guides = guide_maps(tuple(self.config.guides), (h, w), None, None)
                guides = guides.expand(b, -1, -1, -1).to(x)
            x = torch.cat([x, (guides.to(x) - 0.5) * 2], dim=1)
        ph, pw = (-h) % self.pad_to, (-w) % self.pad_to
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        out = self.net(x)[..., :h, :w]  # [B, C, H, W]
        heads = {name: out[:, s] for name, s in self.slices.items()}
        if "u" in heads:  # U and V live in [0, 1]
            heads["u"] = torch.sigmoid(heads["u"])
            heads["v"] = torch.sigmoid(heads["v"])
        return heads

    def describe(self) -> dict:
        return {"class": "ParserNet", "config": asdict(self.config)}

    @classmethod
    def from_config(cls, config: dict) -> ParserNet:
        return cls(from_dict(ParserNetConfig, config))

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "cpu", *, name: str = "model"
    ) -> ParserNet:
        """A parser from a run, checkpoint or bundle folder, in eval mode on `device`
        (`DenseNet`, its name before, is read too)."""
        builders = {"ParserNet": cls.from_config, "DenseNet": cls.from_config}
        model = load_module(path, name, builders, what="parsing/DensePose")
        return model.to(device).eval()


class Parser(Protocol):
    """What the bundle and `DensePredictor` ask of a parser (ParserNet, SCHPNet)."""

    config: Any  # input_size (H, W), heads, label_set, parsing_classes

    def __call__(
        self, images: torch.Tensor, guides: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]: ...

    def parsing_probabilities(
        self,
        images: torch.Tensor,
        flip_test: bool = False,
        logits: torch.Tensor | None = None,
        guides: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    def describe(self) -> dict: ...


PARSERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}  # builders by stored class


def register_parser(class_name: str, build: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Add a parser class; the same name again replaces itself (a module run as `-m`)."""
    PARSERS[class_name] = build


def parsers() -> dict[str, Callable[[dict[str, Any]], nn.Module]]:
    """Every registered parser builder, by class name (the built-in ones first)."""
    from parsing.schp import SCHPNet

    register_parser("ParserNet", ParserNet.from_config)
    register_parser("DenseNet", ParserNet.from_config)  # ParserNet's name before
    register_parser("SCHPNet", SCHPNet.from_config)
    return PARSERS


def parser_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, name: str = "model"
) -> nn.Module:
    """The parser stored as `name` in a run, checkpoint or bundle folder, whichever
    registered class it is, in eval mode on `device`; anything else is a CheckpointError."""
    module = load_module(path, name, parsers(), what="parsing/DensePose")
    return module.to(device).eval()


def predicted_iuv(out: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: argmax part, and U, V read from that part's chart ([B, H, W] each).

    The part head learns only at annotated points, all on the body, so it names a part
    everywhere; the coarse mask, trained on every pixel, decides where the body is, as
    detectron2's DensePose inference does (fine argmax times coarse foreground)."""
    index = class_map(out["index"]) * (class_map(out["coarse"]) > 0)  # [B, H, W]
    chart = (index - 1).clamp_min(0)[:, None]
    u = out["u"].gather(1, chart)[:, 0] * (index > 0)
    v = out["v"].gather(1, chart)[:, 0] * (index > 0)
    return index.cpu().numpy(), u.float().cpu().numpy(), v.float().cpu().numpy()
