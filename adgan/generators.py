"""The generator family: one interface, architectures in a registry, one way to load them.

Every architecture keeps ADGAN's decomposition: `encode` turns a source person (image,
8-class parsing, keypoints) into an *appearance*, a dict of tensors that all have one row
per component (`[B, K, ...]`), and `decode` renders an appearance in a target pose. A
garment swap is therefore the same for every architecture: copy the donor's rows of the
swapped components (`mix_appearance`), then decode.

    generator = build_generator({"arch": "adgan", "image_size": [256, 176]})
    look = generator.encode(image, parsing, source_keypoints)
    fake = generator.decode(look, target_keypoints)            # [B, 3, H, W] in [-1, 1]

A new architecture is one class: subclass `PoseGenerator`, give it a config dataclass whose
first field is `arch: Literal["name"] = "name"`, and decorate it with `@register`. The YAML
chooses it with `model.arch: name`; checkpoints and bundles store the arch in the config.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.checkpoint import load_module
from common.config import from_registry
from keypoints.posemap import pose_maps, scaled_sigma
from parsing.labels import NUM_ADGAN_CLASSES

Appearance = dict[str, torch.Tensor]  # every tensor [B, K, ...]: one row per component


class Backdrops(NamedTuple):
    """The plain colour each card will stand on (`PoseGenerator.render_card`). A generator
    that reads the source's background is told it, so that what it paints where its matte
    is soft or wrong (the person's edges, the parts it invents) is that colour, not a veil
    of the photo's scene."""

    colours: torch.Tensor  # [B, 3] in [-1, 1]
    used: torch.Tensor  # [B] bool; False: that card keeps the generator's own background


DEFAULT_ARCH = "adgan"  # checkpoints written before the registry name no arch


# -- images and parsing maps as every architecture takes them --------------------------


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, H, W] in [-1, 1] (a read-only array, as PIL gives, is
    copied: torch warns on a tensor over memory it may not write)."""
    if not image.flags.writeable:
        image = image.copy()
    return torch.from_numpy(image).permute(2, 0, 1).float().div(127.5).sub(1)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """float [3, H, W] in [-1, 1] -> uint8 [H, W, 3]."""
    t = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5).round()
    return t.byte().permute(1, 2, 0).cpu().numpy()


def one_hot(labels: np.ndarray, classes: int = NUM_ADGAN_CLASSES) -> torch.Tensor:
    """uint8 [H, W] -> float [classes, H, W]."""
    t = torch.from_numpy(labels.astype(np.int64))
    return torch.nn.functional.one_hot(t, classes).permute(2, 0, 1).float()


def enlarge(tensor: torch.Tensor, scale: int, mode: str = "bilinear") -> torch.Tensor:
    """[B, C, H, W] -> [B, C, sH, sW]: the image's pixel (x, y) becomes the s x s block
    whose centre is s (x + 0.5) - 0.5, as every warp here counts pixels."""
    if scale == 1:
        return tensor
    corners = None if mode == "nearest" else False
    return F.interpolate(tensor.float(), scale_factor=scale, mode=mode, align_corners=corners)


class PoseGenerator(nn.Module, abc.ABC):
    """What every generator architecture offers to the training task, the evaluation, the
    attribute transfer and the product (`encode` and `decode` are each architecture's own)."""

    Config: ClassVar[type]
    config: Any  # a dataclass with at least `arch`, `image_size`, `pose_sigma`
    # Config fields that change only how a trained network is used, never its weights: a
    # bundle may set them (`studio.bundle --generator-set`).
    INFERENCE_SETTINGS: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def encode(
        self, image: torch.Tensor, parsing: torch.Tensor, keypoints: torch.Tensor
    ) -> Appearance:
        """image [B, 3, H, W] in [-1, 1], one-hot parsing [B, K, H, W], keypoints [B, 18, 2]."""

    @abc.abstractmethod
    def decode(self, appearance: Appearance, keypoints: torch.Tensor) -> torch.Tensor:
        """The person `appearance` describes in the pose of keypoints [B, 18, 2]; [-1, 1]."""

    def with_frame(self, appearance: Appearance, frame: torch.Tensor) -> Appearance:
        """`appearance` told where each source photo ends inside its crop (frame [B, H, W],
        1 on the photo, 0 on the letterbox a crop past the photo's edge gets). A generator
        that fills the source's background in keeps it; the others need not."""
        return appearance

    def decode_with_matte(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(`decode`'s picture, where the person is in it [B, 1, H, W] in [0, 1]): what a
        backdrop goes behind. Without a warp of its own, the body that the keypoints outline
        (`adgan.warp.body_layout`); a generator that paints every pixel from the person's
        codes alone reads no background, and `backdrops` changes nothing."""
        from adgan.warp import body_layout  # the geometry loads with a generator that needs it

        picture = self.decode(appearance, keypoints)
        return picture, body_layout(keypoints, tuple(picture.shape[-2:])).to(picture)

    # Whether `render_card` draws on `detail` rows (a crop of the photo at the card's size):
    # a generator that warps the photo's own pixels does; one that paints every pixel does not.
    uses_detail: ClassVar[bool] = False

    def detail_rows(self, image: torch.Tensor) -> Appearance:
        """What `render_card` reads of each person at a larger size than the network's: the
        photo read there, image [B, 3, sH, sW] in [-1, 1], as rows per component, so that a
        swap mixes them as it mixes `encode`'s. Only for a generator that `uses_detail`."""
        raise NotImplementedError(f"{type(self).__name__} draws nothing from detail rows")

    def render_card(
        self,
        appearance: Appearance,
        keypoints: torch.Tensor,
        *,
        scale: int = 1,
        detail: Appearance | None = None,
        matte: bool = False,
        backdrops: Backdrops | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the picture [B, 3, sH, sW] in [-1, 1], its matte [B, 1, sH, sW] or None unless
        asked): `decode` (`decode_with_matte`) at `scale` times the network's size, keypoints
        in the network's pixels, told the `backdrops` the caller will stand it on. Here the
        network's picture enlarged (bicubic): a generator that paints every pixel has no
        sharper one to give; `detail` is not read."""
        if matte:
            picture, mask = self.decode_with_matte(appearance, keypoints, backdrops)
        else:
            picture, mask = self.decode(appearance, keypoints), None
        if scale == 1:
            return picture, mask
        picture = enlarge(picture, scale, "bicubic").clamp(-1, 1)
        return picture, None if mask is None else enlarge(mask, scale).clamp(0, 1)

    def forward(
        self,
        image: torch.Tensor,
        parsing: torch.Tensor,
        source_keypoints: torch.Tensor,
        target_keypoints: torch.Tensor,
        donor: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """donor: (image, parsing, keypoints, take [B, K] bool), a garment swap in training:
        each sample's components where `take` is true come from its donor."""
        look = self.encode(image, parsing, source_keypoints)
        if donor is not None and donor[-1].any():  # a batch of plain pairs takes nothing
            *person, chosen = donor
            look = mix_rows(look, self.encode(*person), chosen)
        return self.decode(look, target_keypoints)

    @property
    def device(self) -> torch.device:
        tensor = next(self.parameters(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    def pose_input(self, keypoints: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Keypoints [..., 18, 2] (x, y in its pixels, -1 missing) -> Gaussian pose maps
        [..., 18, H, W] on its device; sigma is `pose_sigma` at 256 rows, scaled."""
        h, w = self.config.image_size
        sigma = scaled_sigma(self.config.pose_sigma, h)
        return pose_maps(keypoints, h, w, sigma, device=self.device)

    def describe(self) -> dict[str, Any]:
        return {"class": "Generator", "config": dataclasses.asdict(self.config)}

    @classmethod
    def for_weights(cls, config: Any) -> PoseGenerator:
        """A module whose weights all come from a checkpoint next (no external file is
        read); architectures with external weights (a VGG file) override this."""
        return cls(config)


ARCHITECTURES: dict[str, type[PoseGenerator]] = {}


def register(cls: type[PoseGenerator]) -> type[PoseGenerator]:
    arch = cls.Config.__dataclass_fields__["arch"].default
    known = ARCHITECTURES.get(arch)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"generator architecture {arch!r} is already {known.__qualname__}")
    ARCHITECTURES[arch] = cls
    return cls


def generator_config(data: dict[str, Any] | Any) -> Any:
    """The architecture's typed config from a mapping (`arch` picks the class; unknown keys
    are refused, listing the valid ones). A config dataclass passes through."""
    load_architectures()
    configs = {arch: cls.Config for arch, cls in ARCHITECTURES.items()}
    return from_registry(configs, data, key="arch", where="model", default=DEFAULT_ARCH)


def build_generator(config: dict[str, Any] | Any, *, for_weights: bool = False) -> PoseGenerator:
    """A generator of the architecture the config names (`for_weights`: its weights come
    from a checkpoint next, so no external file is read)."""
    config = generator_config(config)  # refuses an unknown arch, listing the valid ones
    cls = ARCHITECTURES[config.arch]
    return cls.for_weights(config) if for_weights else cls(config)


def generator_from_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, name: str = "generator"
) -> PoseGenerator:
    """The generator of a run, checkpoint or bundle folder, in eval mode on `device`."""
    builder = functools.partial(build_generator, for_weights=True)
    module = load_module(path, name, {"Generator": builder}, what="generator")
    return module.to(device).eval()


def load_architectures() -> None:
    """Import the modules that register the built-in architectures (they import this one)."""
    import adgan.baselines
    import adgan.model
    import adgan.partwarp  # noqa: F401


def mix_appearance(base: Appearance, donor: Appearance, classes: tuple[int, ...]) -> Appearance:
    """base's appearance with the rows of the given components taken from donor's."""
    first = next(iter(base.values()))
    chosen = torch.zeros(first.shape[:2], dtype=torch.bool, device=first.device)
    chosen[:, list(classes)] = True
    return mix_rows(base, donor, chosen)


def mix_rows(base: Appearance, donor: Appearance, take: torch.Tensor) -> Appearance:
    """Per sample, `mix_appearance`: base's rows, and donor's where take [B, K] is true."""
    mixed = {}
    for key, value in base.items():
        pick = take.view(*take.shape, *([1] * (value.dim() - 2))).to(value.device)
        mixed[key] = torch.where(pick, donor[key].to(value.dtype), value)
    return mixed


def take(appearance: Appearance, index: int | slice) -> Appearance:
    """Some people of a batched appearance, batch dimension kept."""
    index = slice(index, index + 1) if isinstance(index, int) else index
    return {key: value[index] for key, value in appearance.items()}


def concat(appearances: list[Appearance]) -> Appearance:
    return {key: torch.cat([a[key] for a in appearances]) for key in appearances[0]}
