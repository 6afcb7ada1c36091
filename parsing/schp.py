"""Self-Correction Human Parsing (SCHP, Li et al., TPAMI 2020), imported from its public LIP
model, with its 20 LIP classes merged to the 8 ADGAN classes (`parsing.labels`):

    python -m parsing.schp import exp-schp-201908261155-lip.pth --out weights/schp-lip

The network is that of the public code (GoGoDuck912/Self-Correction-Human-Parsing,
`networks/AugmentCE2P.py`, the CE2P design): a ResNet-101 with a deep stem (three 3x3
convolutions), layer4 dilated (output stride 16), a PSP context module on it, a parsing
decoder that joins the context with layer1, an edge branch on layers 1-3, and a fusion branch
on the decoder's and the edge branch's features. The fusion branch's logits, at a quarter of
the input's resolution, upsampled bilinearly (align_corners=True) to the input, are the
parsing (as its `simple_extractor.py` does). Its batch norms are InPlace-ABN: they scale by
|weight| + eps, not weight, and the ones outside the backbone end in a leaky ReLU (0.01);
that is reproduced here, in inference form (running statistics, always).

Inputs are RGB in [0, 1], as for `ParserNet`; the public model reads BGR normalised with the
ImageNet statistics in BGR order, which `forward` does inside. It was trained on 473x473
crops of one person, letterboxed in black (its affine crop's border), which is this
module's `input_size` and `letterbox_fill`.

Merged output (`label_set` "adgan8"): the probabilities of the LIP classes that make one
ADGAN class are summed, so the argmax is of merged classes; `forward` returns the log of
those sums (a logsumexp per merged class), whose softmax is exactly the merged
probabilities. `label_set` "lip20" returns the 20 LIP logits as they are.

Key names: ours are the public ones without `module.`, except that each (convolution, batch
norm) pair is one `ConvABN` block (`.conv`, `.bn`) named by its role; `public_name` is the
rule, one regular expression per kind of block, and the importer inverts it over our
state dict, so every problem is reported in the file's own names.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint import (
    CheckpointError,
    check_state_dict,
    load_module,
    read_weights,
    save_checkpoint,
)
from common.config import from_dict
from parsing.labels import merge_table
from parsing.model import FlipTestParsing

# The public model's normalisation: BGR channel order, ImageNet statistics in that order.
BGR_MEAN = (0.406, 0.456, 0.485)
BGR_STD = (0.225, 0.224, 0.229)
LIP_CLASSES = 20
LEAKY_SLOPE = 0.01  # InPlace-ABN's default activation
ABN_EPS = 1e-5
LABEL_SETS = {"adgan8": 8, "lip20": LIP_CLASSES}  # what `forward` returns: merged or LIP's


@dataclass
class SCHPConfig:
    """Architecture of the public SCHP network (stored with every checkpoint)."""

    # Bottlenecks per ResNet stage; the published model is ResNet-101. Fewer blocks are
    # for tests (the widths stay the published ones).
    blocks: tuple[int, int, int, int] = (3, 4, 23, 3)
    label_set: str = "adgan8"  # "adgan8": LIP merged to the 8 ADGAN classes; "lip20": raw
    parsing_classes: int = 8  # of `label_set` (8 or 20)
    heads: tuple[str, ...] = ("parsing",)
    input_size: tuple[int, int] = (473, 473)  # (H, W): the crop LIP's model was trained on

    def __post_init__(self) -> None:
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(f"blocks {list(self.blocks)}: four stages of at least one block")
        if self.label_set not in LABEL_SETS:
            raise ValueError(
                f"label_set {self.label_set!r}: must be one of {', '.join(LABEL_SETS)}"
            )
        if self.parsing_classes != LABEL_SETS[self.label_set]:
            raise ValueError(
                f"parsing_classes {self.parsing_classes}: label set {self.label_set!r} has "
                f"{LABEL_SETS[self.label_set]}"
            )
        if tuple(self.heads) != ("parsing",):
            raise ValueError(f"heads {list(self.heads)}: SCHP has only a parsing head")


class ABN(nn.Module):
    """InPlace-ABN in inference: batch norm with running statistics that scales by
    |weight| + eps (what its kernels compute), then an optional activation."""

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        if activation not in ("none", "relu", "leaky_relu"):
            raise ValueError(f"activation {activation!r}")
        self.activation = activation
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight.abs() + ABN_EPS
        x = F.batch_norm(
            x, self.running_mean, self.running_var, scale, self.bias, False, 0.0, ABN_EPS
        )
        if self.activation == "relu":
            return F.relu(x)
        if self.activation == "leaky_relu":
            return F.leaky_relu(x, LEAKY_SLOPE)
        return x


class ConvABN(nn.Module):
    """A bias-free convolution and its ABN (one public (conv, batch norm) pair)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        *,
        stride: int = 1,
        dilation: int = 1,
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        pad = dilation * (kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, dilation, bias=False)
        self.bn = ABN(cout, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck, stride on the 3x3 (the public code's), ReLU activations."""

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvABN(cin, planes, 1, activation="relu")
        self.conv2 = ConvABN(planes, planes, 3, stride=stride, dilation=dilation, activation="relu")
        self.conv3 = ConvABN(planes, planes * 4, 1, activation="none")
        self.downsample = (
            ConvABN(cin, planes * 4, 1, stride=stride, activation="none")
            if stride != 1 or cin != planes * 4
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + skip)


def _stage(cin: int, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    layers = [Bottleneck(cin, planes, stride, dilation)]
    layers += [Bottleneck(planes * 4, planes, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class PSP(nn.Module):
    """Pyramid pooling (bins 1, 2, 3, 6) on layer4, fused by a 3x3 ConvABN."""

    BINS = (1, 2, 3, 6)

    def __init__(self, cin: int = 2048, cout: int = 512) -> None:
        super().__init__()
        self.stages = nn.ModuleList(ConvABN(cin, cout) for _ in self.BINS)
        self.bottleneck = ConvABN(cin + len(self.BINS) * cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        priors = [
            _up(stage(F.adaptive_avg_pool2d(x, b)), size)
            for b, stage in zip(self.BINS, self.stages, strict=True)
        ]
        return self.bottleneck(torch.cat([*priors, x], 1))


class Edge(nn.Module):
    """Edge branch: layers 1-3 reduced to 256 channels each; one shared 3x3 classifier
    (2 channels) per scale, fused by a 1x1. Returns (edge logits, features), at layer1's
    resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(ConvABN(c, 256) for c in (256, 512, 1024))
        self.classifier = nn.Conv2d(256, 2, 3, padding=1)
        self.fuse = nn.Conv2d(6, 2, 1)

    def forward(self, *features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = features[0].shape[-2:]
        reduced = [r(f) for r, f in zip(self.reduce, features, strict=True)]
        edges = [_up(self.classifier(r), size) for r in reduced]
        return self.fuse(torch.cat(edges, 1)), torch.cat([_up(r, size) for r in reduced], 1)


class Decoder(nn.Module):
    """Parsing decoder: the context (512) reduced and upsampled to layer1, joined with
    layer1 reduced to 48. Returns (parsing logits, 256 features)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.context = ConvABN(512, 256)
        self.skip = ConvABN(256, 48)
        self.merge1 = ConvABN(304, 256)
        self.merge2 = ConvABN(256, 256)
        self.classifier = nn.Conv2d(256, classes, 1)

    def forward(
        self, context: torch.Tensor, low: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([_up(self.context(context), low.shape[-2:]), self.skip(low)], 1)
        x = self.merge2(self.merge1(x))
        return self.classifier(x), x


class Fusion(nn.Module):
    """The fusion branch on decoder + edge features (1024 channels): the parsing used."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.reduce = ConvABN(1024, 256)
        self.classifier = nn.Conv2d(256, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.reduce(x))


class SCHPNet(FlipTestParsing, nn.Module):
    """RGB [B, 3, H, W] in [0, 1] -> {"parsing": logits [B, K, H, W]} (K = 8 merged ADGAN
    classes, or LIP's 20); the same interface as `ParserNet`."""

    letterbox_fill = (0, 0, 0)  # the public crop's border: what it saw around people

    def __init__(self, config: SCHPConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SCHPConfig()
        self.stem = nn.Sequential(
            OrderedDict(
                conv1=ConvABN(3, 64, 3, stride=2, activation="relu"),
                conv2=ConvABN(64, 64, 3, activation="relu"),
                conv3=ConvABN(64, 128, 3, activation="relu"),
                pool=nn.MaxPool2d(3, 2, 1),
            )
        )
        b = config.blocks
        self.layer1 = _stage(128, 64, b[0], 1, 1)
        self.layer2 = _stage(256, 128, b[1], 2, 1)
        self.layer3 = _stage(512, 256, b[2], 2, 1)
        self.layer4 = _stage(1024, 512, b[3], 1, 2)  # dilated: output stride 16
        self.psp = PSP()
        self.edge = Edge()
        self.decoder = Decoder(LIP_CLASSES)
        self.fusion = Fusion(LIP_CLASSES)
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(BGR_STD).view(1, 3, 1, 1), persistent=False)
        merge = merge_table("lip") if config.label_set == "adgan8" else tuple(range(LIP_CLASSES))
        self.groups = [
            [i for i, k in enumerate(merge) if k == c] for c in range(config.parsing_classes)
        ]

    def public_outputs(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The public forward's three outputs, at a quarter of the input's resolution:
        (decoder parsing [B, 20, h, w], fusion parsing [B, 20, h, w], edge [B, 2, h, w])."""
        x = (images.flip(1) - self.mean) / self.std  # RGB -> BGR, normalised
        x1 = self.stem(x)
        x2 = self.layer1(x1)  # [B, 256, H/4, W/4]
        x3 = self.layer2(x2)  # [B, 512, H/8, W/8]
        x4 = self.layer3(x3)  # [B, 1024, H/16, W/16]
        x5 = self.layer4(x4)  # [B, 2048, H/16, W/16]
        parsing, parsing_features = self.decoder(self.psp(x5), x2)
        edge, edge_features = self.edge(x2, x3, x4)
        fused = self.fusion(torch.cat([parsing_features, edge_features], 1))
        return parsing, fused, edge

    def forward(
        self, images: torch.Tensor, guides: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """`guides` only for the parser interface's one signature: SCHP reads none."""
        if guides is not None:
            raise ValueError("the SCHP parser reads no guides")
        logits = _up(self.public_outputs(images)[1], images.shape[-2:])  # [B, 20, H, W]
        if self.config.label_set == "lip20":
            return {"parsing": logits}
        merged = [torch.logsumexp(logits[:, g], 1) for g in self.groups]
        return {"parsing": torch.stack(merged, 1)}  # [B, 8, H, W]: log of summed probs

    def describe(self) -> dict:
        return {"class": "SCHPNet", "config": asdict(self.config)}

    @classmethod
    def from_config(cls, config: dict) -> SCHPNet:
        return cls(from_dict(SCHPConfig, config))

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "cpu", *, name: str = "model"
    ) -> SCHPNet:
        model = load_module(path, name, {"SCHPNet": cls.from_config}, what="SCHP parser")
        return model.to(device).eval()


# -- the public checkpoint ------------------------------------------------------------------

# Our key -> the public one (without `module.`). A ConvABN's `.conv` / `.bn` is the public
# pair: `convN` / `bnN` attributes in the stem and the bottlenecks, `.0` / `.1` of a
# Sequential elsewhere (the decoder's second pair is `conv3.2` / `conv3.3`).
_PUBLIC_NAMES: tuple[tuple[str, str], ...] = (
    (r"stem\.conv(\d)\.conv\.(.+)", r"conv\1.\2"),
    (r"stem\.conv(\d)\.bn\.(.+)", r"bn\1.\2"),
    (r"(layer\d\.\d+)\.conv(\d)\.conv\.(.+)", r"\1.conv\2.\3"),
    (r"(layer\d\.\d+)\.conv(\d)\.bn\.(.+)", r"\1.bn\2.\3"),
    (r"(layer\d\.\d+)\.downsample\.conv\.(.+)", r"\1.downsample.0.\2"),
    (r"(layer\d\.\d+)\.downsample\.bn\.(.+)", r"\1.downsample.1.\2"),
    (r"psp\.stages\.(\d)\.conv\.(.+)", r"context_encoding.stages.\1.1.\2"),
    (r"psp\.stages\.(\d)\.bn\.(.+)", r"context_encoding.stages.\1.2.\2"),
    (r"psp\.bottleneck\.conv\.(.+)", r"context_encoding.bottleneck.0.\1"),
    (r"psp\.bottleneck\.bn\.(.+)", r"context_encoding.bottleneck.1.\1"),
    (r"edge\.reduce\.0\.(conv|bn)\.(.+)", r"edge.conv1.\1.\2"),
    (r"edge\.reduce\.1\.(conv|bn)\.(.+)", r"edge.conv2.\1.\2"),
    (r"edge\.reduce\.2\.(conv|bn)\.(.+)", r"edge.conv3.\1.\2"),
    (r"edge\.classifier\.(.+)", r"edge.conv4.\1"),
    (r"edge\.fuse\.(.+)", r"edge.conv5.\1"),
    (r"decoder\.context\.(conv|bn)\.(.+)", r"decoder.conv1.\1.\2"),
    (r"decoder\.skip\.(conv|bn)\.(.+)", r"decoder.conv2.\1.\2"),
    (r"decoder\.merge1\.(conv|bn)\.(.+)", r"decoder.conv3.\1.\2"),
    (r"decoder\.merge2\.conv\.(.+)", r"decoder.conv3.2.\1"),
    (r"decoder\.merge2\.bn\.(.+)", r"decoder.conv3.3.\1"),
    (r"decoder\.classifier\.(.+)", r"decoder.conv4.\1"),
    (r"fusion\.reduce\.(conv|bn)\.(.+)", r"fushion.\1.\2"),  # sic: the public spelling
    (r"fusion\.classifier\.(.+)", r"fushion.3.\1"),  # fushion.2 is a dropout
)
_PAIR = {"conv": "0", "bn": "1"}  # a Sequential (conv, ABN) pair's indices


def public_name(key: str) -> str:
    """Our state-dict key -> the public model's (without `module.`)."""
    for pattern, template in _PUBLIC_NAMES:
        if m := re.fullmatch(pattern, key):
            name = m.expand(template)
            # (conv|bn) captured inside a Sequential pair -> its index
            return re.sub(r"\.(conv|bn)\.(?=[^.]+$)", lambda p: f".{_PAIR[p[1]]}.", name)
    raise KeyError(f"{key}: no public name (a parameter this importer does not know)")


def read_public(path: str | Path) -> dict[str, torch.Tensor]:
    """The public file's tensors by public name (`module.` dropped): a checkpoint dict
    holding `state_dict` (the release) or a bare state dict, opened with weights_only=True
    (nothing in it can run); a .safetensors copy is read too."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        found: Any = read_weights(path)
    else:
        try:
            found = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle refuses anything that is not plain data
            raise CheckpointError(f"{path}: not a plain PyTorch checkpoint ({exc})") from None
    if not isinstance(found, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(found).__name__}")
    if "state_dict" in found:
        found = found["state_dict"]
        if not isinstance(found, Mapping):
            raise CheckpointError(
                f"{path}: its 'state_dict' is a {type(found).__name__}, not a dict of tensors"
            )
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in found.items() if not torch.is_tensor(v)]
    if not_tensors:
        more = f" (+{len(not_tensors) - 5} more)" if len(not_tensors) > 5 else ""
        raise CheckpointError(
            f"{path}: not a state dict of tensors: {', '.join(not_tensors[:5])}{more}"
        )
    return {str(k).removeprefix("module."): v for k, v in found.items()}


def stage_blocks(public: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    """Bottlenecks per ResNet stage in a public state dict (0 for a stage it lacks)."""
    found = [m.groups() for k in public if (m := re.match(r"layer([1-4])\.(\d+)\.", k))]
    return tuple(
        1 + max((int(b) for s, b in found if int(s) == stage), default=-1) for stage in (1, 2, 3, 4)
    )


def import_public(path: str | Path, config: SCHPConfig | None = None) -> SCHPNet:
    """The public SCHP LIP model (`exp-schp-201908261155-lip.pth`) as an SCHPNet in eval
    mode; `config` defaults to the published layout (ResNet-101, LIP merged to ADGAN's 8).
    Every missing, unexpected or misshapen tensor is named in the file's own key names."""
    model = SCHPNet(config)
    public = read_public(path)
    ours = model.state_dict()
    expected = {public_name(k): v for k, v in ours.items()}
    try:
        check_state_dict(expected, public, name=f"{path} (SCHP LIP model)")
    except CheckpointError as exc:
        found = stage_blocks(public)
        if found != tuple(model.config.blocks):
            raise CheckpointError(
                f"{exc} | its ResNet has {'/'.join(map(str, found))} blocks per stage, this "
                f"model {'/'.join(map(str, model.config.blocks))} (ResNet-101: 3/4/23/3)"
            ) from None
        raise
    model.load_state_dict({k: public[public_name(k)].float() for k in ours}, strict=True)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Self-Correction Human Parsing (LIP): import.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="convert exp-schp-...-lip.pth to safetensors + JSON")
    imp.add_argument("weights", type=Path)
    imp.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    imp.add_argument(
        "--labels",
        choices=sorted(LABEL_SETS),
        default="adgan8",
        help="adgan8: LIP merged to the 8 ADGAN classes (what a bundle needs); lip20: raw",
    )
    args = parser.parse_args(argv)
    try:
        config = SCHPConfig(label_set=args.labels, parsing_classes=LABEL_SETS[args.labels])
        model = import_public(args.weights, config)
        save_checkpoint(
            args.out,
            {"model": model},
            {"modules": {"model": model.describe()}, "source": str(args.weights)},
        )
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"imported {args.weights} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
