"""A frozen VGG-19 trunk that stops at the deepest layer anyone asks for.

ADGAN uses VGG-19 twice: inside the generator (the component encoder reads relu1_1,
relu2_1, relu3_1 and relu4_1 of each masked component) and in the losses (perceptual L1 on
relu1_2, contextual loss on relu3_2 and relu4_2). The reference runs the whole network (all
16 convolutions) each time; this trunk keeps only the layers up to the deepest tap.

Weights come from a local file: torchvision's `vgg19` ImageNet state dict
(`vgg19-dcbb9e9d.pth`, keys `features.N.weight`), or one without the `features.` prefix.
Nothing is downloaded. Without a file the trunk is random (tests, or training it).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision.models import vgg19

# torchvision's vgg19().features index of each ReLU output, by the usual name.
LAYERS = {
    "relu1_1": 1,
    "relu1_2": 3,
    "relu2_1": 6,
    "relu2_2": 8,
    "relu3_1": 11,
    "relu3_2": 13,
    "relu3_3": 15,
    "relu3_4": 17,
    "relu4_1": 20,
    "relu4_2": 22,
    "relu4_3": 24,
    "relu4_4": 26,
    "relu5_1": 29,
}
WEIGHTS_ENV = "VGG19_WEIGHTS"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_weights(path: str) -> Path | None:
    """The configured file, else $VGG19_WEIGHTS, else None; a named file must exist."""
    path = path or os.environ.get(WEIGHTS_ENV, "")
    if not path:
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"VGG-19 weights {file}: no such file")
    return file


def load_vgg19_features(path: Path) -> dict[str, torch.Tensor]:
    """torchvision vgg19 state dict -> {"N.weight": ...} of `features`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle refuses anything that is not plain tensors
        raise ValueError(f"{path}: not a readable VGG-19 state dict ({exc})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    if any(k.startswith("features.") for k in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    return state


class VGGTrunk(nn.Module):
    """x [B, 3, H, W] -> {tap name: ReLU output}, computing nothing past the last tap.

    `normalize="imagenet"` maps inputs in [-1, 1] to ImageNet statistics first (what the
    perceptual loss does); `"none"` feeds them as they are (what the reference's component
    encoder does with its masked [-1, 1] images).
    """

    def __init__(
        self,
        taps: tuple[str, ...],
        weights: str = "",
        *,
        normalize: str = "imagenet",
        trainable: bool = False,
        what: str = "VGG-19",
    ) -> None:
        super().__init__()
        unknown = [t for t in taps if t not in LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG layer(s) {unknown}; known: {', '.join(LAYERS)}")
        if normalize not in ("imagenet", "none"):
            raise ValueError(f"normalize must be 'imagenet' or 'none', got {normalize!r}")
        self.taps = tuple(sorted(taps, key=LAYERS.__getitem__))
        self.normalize = normalize
        last = LAYERS[self.taps[-1]]
        self.layers = nn.Sequential(*list(vgg19(weights=None).features.children())[: last + 1])
        for m in self.layers:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # taps are read after the ReLU; keep them intact
        file = resolve_weights(weights)
        self.pretrained = file is not None
        if file is not None:
            state = load_vgg19_features(file)
            wanted = self.layers.state_dict()
            missing = [k for k in wanted if k not in state]
            if missing:
                raise ValueError(f"{file}: not a VGG-19 state dict (no {missing[0]})")
            for k, v in wanted.items():
                if state[k].shape != v.shape:
                    raise ValueError(
                        f"{file}: {k} has shape {tuple(state[k].shape)}, "
                        f"VGG-19 needs {tuple(v.shape)}"
                    )
            self.layers.load_state_dict({k: state[k] for k in wanted})
        elif not trainable:
            warnings.warn(
                f"{what}: no VGG-19 weights given (config or ${WEIGHTS_ENV}); using a random "
                "frozen VGG, fine for tests, not for a real run",
                stacklevel=2,
            )
        self.trainable = trainable
        for p in self.layers.parameters():
            p.requires_grad_(trainable)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._index = {LAYERS[t]: t for t in self.taps}

    def train(self, mode: bool = True) -> VGGTrunk:
        super().train(mode)
        if not self.trainable:
            self.layers.eval()  # frozen: nothing in VGG depends on the mode, but be explicit
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize == "imagenet":
            x = ((x + 1) / 2 - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self._index:
                out[self._index[i]] = x
        return out
