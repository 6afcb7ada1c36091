"""Pose and attribute transfer with a trained generator: the library calls the pipeline,
the evaluation and the web page use.

Every architecture's appearance is per component (`adgan.generators`), so a garment swap
is a row swap: encode the shopper and the garment's owner, take the owner's rows for the
garment's classes, decode in the wanted pose.

    gen = AttributeTransfer(generator, device)
    shopper = gen.encode(image, labels, keypoints)  # uint8 photo, 8-class map, 18 points
    garment = gen.encode(other_image, other_labels, other_keypoints)
    out = gen.generate(target_keypoints, shopper, swaps={"upper": garment})
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from adgan.generators import (
    Appearance,
    Backdrops,
    PoseGenerator,
    mix_appearance,
    one_hot,
    to_image,
    to_tensor,
)
from common.colour import Colour
from common.hardware import Precision, resolve_precision
from parsing.labels import component_classes


class AttributeTransfer:
    """A generator in eval mode on a device, with numpy in and out."""

    def __init__(
        self,
        generator: PoseGenerator,
        device: torch.device | str = "cpu",
        precision: Precision = "auto",
    ) -> None:
        self.generator = generator.eval().to(device)
        # Convolutions over B*8 masked images (ADGAN's component encoder): channels_last
        # makes them 1.3x (fp32) to 1.7x (bf16) faster on a CPU at 256x176.
        self.generator.to(memory_format=torch.channels_last)
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.size = tuple(generator.config.image_size)

    def _check(self, image: np.ndarray, labels: np.ndarray) -> None:
        if image.shape[:2] != self.size or labels.shape != self.size:
            raise ValueError(
                f"image {image.shape[:2]} and labels {labels.shape} must both be the "
                f"generator's size {self.size}"
            )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _keypoints(self, keypoints: np.ndarray) -> torch.Tensor:
        kp = torch.as_tensor(np.asarray(keypoints, np.float32))
        return (kp[None] if kp.ndim == 2 else kp).to(self.device)

    def encode(self, image: np.ndarray, labels: np.ndarray, keypoints: np.ndarray) -> Appearance:
        """One person's appearance (uint8 RGB, 8-class map and [18, 2] keypoints at the
        model's size)."""
        return self.encode_many([image], [labels], np.asarray(keypoints)[None])

    @torch.no_grad()
    def encode_many(
        self,
        images: list[np.ndarray],
        labels: list[np.ndarray],
        keypoints: np.ndarray,
        frames: Sequence[np.ndarray | None] | None = None,
    ) -> Appearance:
        """Appearances of several people in one batch (keypoints [B, 18, 2]). frames: per
        image, where it shows its photo ([H, W], nonzero; None: everywhere), so that the
        letterbox of a crop past the photo's edge is not taken for background."""
        for image, label in zip(images, labels, strict=True):
            self._check(image, label)
        x = torch.stack([to_tensor(i) for i in images]).to(self.device)
        p = torch.stack([one_hot(m) for m in labels]).to(self.device)
        with self._autocast():
            look = self.generator.encode(x, p, self._keypoints(keypoints))
        if frames is not None and any(f is not None for f in frames):
            shown = [np.ones(self.size, bool) if f is None else f > 0 for f in frames]
            frame = torch.from_numpy(np.stack(shown)).to(self.device, torch.float32)
            look = self.generator.with_frame(look, frame)
        return {k: v.float() if v.is_floating_point() else v for k, v in look.items()}

    def generate(
        self,
        keypoints: np.ndarray,
        appearance: Appearance,
        swaps: dict[str, Appearance] | None = None,
    ) -> np.ndarray:
        """The person `appearance` describes, in the pose of `keypoints`, with each swapped
        component taken from the given donor's; uint8 RGB at model size."""
        for name, donor in (swaps or {}).items():
            appearance = mix_appearance(appearance, donor, component_classes(name))
        return self.generate_many(np.asarray(keypoints)[None], appearance)[0]

    @torch.no_grad()
    def detail_many(self, images: list[np.ndarray]) -> Appearance | None:
        """Rows for a card `scale` times the model's size (`generate_many`'s `detail`): each
        person's photo read at that size (uint8, the same place as the model-size crop
        `encode_many` took, not that crop enlarged), in `encode_many`'s order. None where
        the generator draws nothing from them."""
        if not self.generator.uses_detail:
            return None
        scale = images[0].shape[0] // self.size[0]
        big = (self.size[0] * scale, self.size[1] * scale)
        for image in images:
            if image.shape[:2] != big:
                raise ValueError(
                    f"detail image {image.shape[:2]} must be {big}, a whole multiple of the "
                    f"generator's {self.size}"
                )
        x = torch.stack([to_tensor(i) for i in images]).to(self.device)
        return self.generator.detail_rows(x)

    @torch.no_grad()
    def generate_many(
        self,
        keypoints: np.ndarray,
        appearance: Appearance,
        backdrops: Sequence[Colour | None] | None = None,
        *,
        scale: int = 1,
        detail: Appearance | None = None,
    ) -> list[np.ndarray]:
        """Keypoints [B, 18, 2] and (already mixed) appearances -> B uint8 images. Where a
        row's backdrop is a colour (RGB 0-255), its person stands on that plain colour
        instead of the generator's background (the source's, the person cut out and
        filled: on a busy photo, a smeared scene). scale: the images are that many times
        the model's size; `detail` (`detail_many`, mixed as the appearances are) gives the
        generator the photos at that size to draw from (None: the model-size image
        enlarged)."""
        look = {k: v.to(self.device) for k, v in appearance.items()}
        colours = list(backdrops) if backdrops is not None else []
        plain_wanted = any(c is not None for c in colours)
        told = None
        if plain_wanted:  # the generator paints its edges and unseen parts on these colours
            rgb = [c if c is not None else (0, 0, 0) for c in colours]
            told = Backdrops(
                torch.tensor(rgb, dtype=torch.float32, device=self.device) / 127.5 - 1,
                torch.tensor([c is not None for c in colours], device=self.device),
            )
        with self._autocast():
            out, matte = self.generator.render_card(
                look,
                self._keypoints(keypoints),
                scale=scale,
                detail=detail,
                matte=plain_wanted,
                backdrops=told,
            )
            if told is not None:
                plain = told.colours.to(out.dtype)[..., None, None]  # [B, 3, 1, 1]
                use = told.used[:, None, None, None]
                matte = torch.where(use, matte, torch.ones_like(matte))
                out = matte * out + (1 - matte) * plain
        return [to_image(o) for o in out]
