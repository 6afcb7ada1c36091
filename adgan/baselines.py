"""Baselines in the generator registry: what a trained generator must beat.

- `copy`: the source photo unchanged (the person in the wrong pose: what SSIM gives for
  doing nothing);
- `warponly`: the explicit part warp (`adgan.warp`) composited over the source background,
  no network: geometry alone, and a generator that needs no training.

Both have no weights; `build_generator({"arch": "warponly", "image_size": [256, 176]})`
makes one, and a bundle can hold one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from adgan.generators import Appearance, Backdrops, PoseGenerator, register
from adgan.partwarp import frame_rows, person_rows, warp_rows
from adgan.warp import WarpConfig, composite
from parsing.labels import class_map


@dataclass
class CopySourceConfig:
    arch: Literal["copy"] = "copy"
    image_size: tuple[int, int] = (256, 176)
    pose_sigma: float = 6.0  # unused: no network reads pose maps
    components: int = 8


@register
class CopySource(PoseGenerator):
    """The background's person (row 0), unchanged, whatever the pose."""

    Config = CopySourceConfig

    def __init__(self, config: CopySourceConfig) -> None:
        super().__init__()
        self.config = config

    def encode(
        self, image: torch.Tensor, parsing: torch.Tensor, keypoints: torch.Tensor
    ) -> Appearance:
        return {"image": image[:, None].expand(-1, self.config.components, -1, -1, -1)}

    def decode(self, appearance: Appearance, keypoints: torch.Tensor) -> torch.Tensor:
        return appearance["image"][:, 0]


@dataclass
class WarpOnlyConfig:
    arch: Literal["warponly"] = "warponly"
    image_size: tuple[int, int] = (256, 176)
    pose_sigma: float = 6.0  # unused: no network reads pose maps
    components: int = 8
    warp: WarpConfig = field(default_factory=WarpConfig)


@register
class WarpOnly(PoseGenerator):
    """The warp alone, no network (`model.arch: warponly`): the part-warp generator's
    baseline, and a generator that needs no training."""

    Config = WarpOnlyConfig

    def __init__(self, config: WarpOnlyConfig) -> None:
        super().__init__()
        self.config = config

    def encode(
        self, image: torch.Tensor, parsing: torch.Tensor, keypoints: torch.Tensor
    ) -> Appearance:
        labels = class_map(parsing) if parsing.dim() == 4 else parsing.long()
        return person_rows(image, labels, keypoints, self.config.components)

    def with_frame(self, appearance: Appearance, frame: torch.Tensor) -> Appearance:
        return frame_rows(appearance, frame)

    def decode(self, appearance: Appearance, keypoints: torch.Tensor) -> torch.Tensor:
        return composite(warp_rows(appearance, keypoints, self.config.warp))

    def decode_with_matte(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        warped = warp_rows(appearance, keypoints, self.config.warp, layout=True)
        if backdrops is not None:
            warped = warped.on_backdrop(*backdrops)
        return composite(warped), warped.matte
