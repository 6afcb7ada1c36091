"""The top-down keypoint network: a timm backbone and a head to 1/4-resolution heatmaps.

Two heads: "fpn" (a feature pyramid: lateral 1x1 convs, top-down sums, stride-4 output;
light, and keeps detail at small inputs) and "deconv" (SimpleBaseline, Xiao et al. 2018:
three stride-2 deconvolutions on the deepest feature). Images enter as RGB in [0, 1] and are
normalised inside; any input size works: it is padded to the backbone's stride (HRNet needs
multiples of 32, 176 is not) and the heatmaps cropped back to (H/4, W/4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import timm
import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint import load_module
from common.config import from_dict
from keypoints.skeleton import NUM_KEYPOINTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class PoseNetConfig:
    """Architecture of the keypoint network (stored with every checkpoint)."""

    backbone: str = "resnet18"  # any timm model with features_only (resnet18, hrnet_w32, ...)
    head: Literal["fpn", "deconv"] = "fpn"
    head_channels: int = 96
    num_keypoints: int = NUM_KEYPOINTS
    input_size: tuple[int, int] = (256, 176)  # (H, W) of the person crop
    heatmap_stride: int = 4


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class FPNHead(nn.Module):
    """Top-down pyramid over the backbone levels of stride >= 4, output at stride 4."""

    def __init__(self, channels: list[int], width: int, outputs: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.smooth = _conv_bn_relu(width, width)
        self.out = nn.Conv2d(width, outputs, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](features[-1])
        for lateral, feature in zip(
            reversed(self.lateral[:-1]), reversed(features[:-1]), strict=True
        ):
            x = lateral(feature) + F.interpolate(x, size=feature.shape[-2:], mode="nearest")
        return self.out(self.smooth(x))


class DeconvHead(nn.Module):
    """SimpleBaseline: stride-2 4x4 deconvolutions from the deepest feature to stride 4."""

    def __init__(self, channels: int, width: int, outputs: int, layers: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [
                nn.ConvTranspose2d(
                    channels if i == 0 else width, width, 4, stride=2, padding=1, bias=False
                ),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
        self.deconv = nn.Sequential(*blocks)
        self.out = nn.Conv2d(width, outputs, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.out(self.deconv(features[-1]))


class PoseNet(nn.Module):
    """Person crop [B, 3, H, W] in [0, 1] -> heatmaps [B, K, H/stride, W/stride]."""

    def __init__(self, config: PoseNetConfig) -> None:
        super().__init__()
        self.config = config
        probe = timm.create_model(config.backbone, pretrained=False, features_only=True)
        strides = probe.feature_info.reduction()
        # levels from the heatmap stride down; the pyramid needs nothing finer
        self.levels = [i for i, s in enumerate(strides) if s >= config.heatmap_stride]
        if not self.levels or strides[self.levels[0]] != config.heatmap_stride:
            raise ValueError(
                f"{config.backbone} has no stride-{config.heatmap_stride} level (strides {strides})"
            )
        self.backbone = timm.create_model(
            config.backbone, pretrained=False, features_only=True, out_indices=self.levels
        )
        channels = self.backbone.feature_info.channels()
        self.pad_to = max(self.backbone.feature_info.reduction())
        if config.head == "fpn":
            self.head: nn.Module = FPNHead(channels, config.head_channels, config.num_keypoints)
        else:
            layers = int(math.log2(self.pad_to // config.heatmap_stride))
            self.head = DeconvHead(channels[-1], config.head_channels, config.num_keypoints, layers)
        # Heatmaps start near zero (SimpleBaseline's N(0, 0.001)): no time spent shrinking
        # large random outputs before localisation can be learnt.
        nn.init.normal_(self.head.out.weight, std=0.001)
        nn.init.zeros_(self.head.out.bias)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _, _, h, w = images.shape  # [B, 3, H, W]
        x = (images - self.mean) / self.std
        ph, pw = (-h) % self.pad_to, (-w) % self.pad_to
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        heatmaps = self.head(self.backbone(x))
        out_h, out_w = h // self.config.heatmap_stride, w // self.config.heatmap_stride
        if heatmaps.shape[-2] < out_h or heatmaps.shape[-1] < out_w:
            heatmaps = F.interpolate(
                heatmaps,
                size=(max(out_h, heatmaps.shape[-2]), max(out_w, heatmaps.shape[-1])),
                mode="bilinear",
                align_corners=False,
            )
        return heatmaps[..., :out_h, :out_w]  # [B, K, H/4, W/4]

    def describe(self) -> dict:
        return {"class": "PoseNet", "config": asdict(self.config)}

    @classmethod
    def from_config(cls, config: dict) -> PoseNet:
        return cls(from_dict(PoseNetConfig, config))

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "cpu", *, name: str = "model"
    ) -> PoseNet:
        """A PoseNet from a run, checkpoint or bundle folder, in eval mode on `device`."""
        model = load_module(path, name, {"PoseNet": cls.from_config}, what="keypoint")
        return model.to(device).eval()
