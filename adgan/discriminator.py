"""The reference's residual discriminator, used twice: on (image, target pose maps) and on
(image, source image).

conv7 -> 2 stride-2 convs -> 3 residual blocks (dropout 0.5 inside), instance norm without
affine, reflection padding. As in the reference there is no final 1-channel layer: the
GAN loss is taken over the last feature map itself ([B, 4 * channels, H/4, W/4]).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class DiscriminatorConfig:
    channels: int = 64
    blocks: int = 3
    dropout: float = 0.5  # inside each residual block; 0 = none
    downsample: int = 2


class _Block(nn.Module):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Discriminator(nn.Module):
    def __init__(self, in_channels: int, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.in_channels, self.config = in_channels, config
        c = config.channels
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, c, 7),
            nn.InstanceNorm2d(c),
            nn.ReLU(),
        ]
        for _ in range(config.downsample):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU()]
            c *= 2
        layers += [_Block(c, config.dropout) for _ in range(config.blocks)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def describe(self) -> dict:
        return {
            "class": "Discriminator",
            "config": {"in_channels": self.in_channels, **asdict(self.config)},
        }
