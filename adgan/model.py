"""The attribute-decomposed generator (ADGAN, Men et al., CVPR 2020).

    target pose maps [B, 18, H, W] ── pose encoder ─────────────────────┐  (content)
    source image [B, 3, H, W] ┐                                          ▼
    source parsing [B, 8, H, W]┴─ component encoder ─ codes [B, 8, 64] ─ fuse ─ MLP ─► AdaIN
                                                                          decoder ─► image

- pose encoder: conv7 + 2 stride-2 convs + 8 residual blocks, instance norm;
- component encoder: the source split into 8 masked images, all of them through one VGG-19
  pass (batch B*8, stopped at relu4_1; the reference loops 8 times over the whole VGG); a
  learned conv branch concatenates relu1_1/2_1/3_1/4_1 at each scale, then global pooling
  and a 1x1 conv give 64 numbers per component;
- fuse (linear 512 -> 512) and MLP (512 -> 256 -> 256 -> all AdaIN scales and biases);
- decoder: 8 residual blocks with AdaIN, 2 x (nearest upsampling, conv5, layer norm),
  conv7 + tanh.

Images are in [-1, 1]. AdaIN parameters are passed to the decoder as a tensor, not written
into the modules as the reference does, so the model is re-entrant (DDP, several
generations in flight, torch.compile). The reference's layout of that tensor is kept (per
AdaIN layer in order: the biases, then the scales), so its MLP weights import unchanged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from adgan.generators import Appearance, PoseGenerator, register
from adgan.vgg import VGGTrunk

ENCODER_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@dataclass
class GeneratorConfig:
    """Architecture of the generator (stored with every checkpoint)."""

    arch: Literal["adgan"] = "adgan"
    image_size: tuple[int, int] = (256, 176)  # (height, width); divisible by 2**downsample
    pose_channels: int = 18
    pose_sigma: float = 6.0  # Gaussian of the pose maps in pixels at 256 rows (ADGAN's), scaled
    components: int = 8  # the ADGAN parsing classes
    channels: int = 64  # first conv width (ngf)
    code_size: int = 64  # per component; the style vector is components x code_size
    downsample: int = 2
    res_blocks: int = 8
    mlp_channels: int = 256
    vgg_weights: str = ""  # torchvision vgg19 state dict; "" = $VGG19_WEIGHTS or random
    vgg_trainable: bool = False  # without weights: train the encoder's VGG instead
    vgg_input: Literal["none", "imagenet"] = "none"  # the reference feeds [-1, 1] as it is
    # On a CPU the B x 8 masked images go through the component encoder in chunks of about
    # this many pixels: a cache-sized chunk runs 1.5-2x faster than one big batch (2 cores,
    # bf16). GPUs take them all at once. 0 = all at once everywhere. Speed only.
    cpu_chunk_pixels: int = 65536

    def __post_init__(self) -> None:
        h, w = self.image_size
        step = 2**self.downsample  # the component encoder pools globally: any size works
        if h % step or w % step:
            raise ValueError(f"image_size {h}x{w}: height and width must be multiples of {step}")

    @property
    def style_size(self) -> int:
        return self.components * self.code_size


class ConvBlock(nn.Module):
    """pad -> conv -> norm -> activation, the reference's building block."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        *,
        norm: Literal["in", "ln", "none"] = "none",
        act: Literal["relu", "tanh", "none"] = "relu",
    ) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d((kernel - 1) // 2 if stride == 1 else 1)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        if norm == "in":
            self.norm: nn.Module = nn.InstanceNorm2d(cout)
        elif norm == "ln":
            self.norm = LayerNorm(cout)
        else:
            self.norm = nn.Identity()
        self.act = {"relu": nn.ReLU(), "tanh": nn.Tanh(), "none": nn.Identity()}[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class LayerNorm(nn.Module):
    """MUNIT's layer norm (the reference's): per sample over (C, H, W), divided by the
    unbiased std + eps, then a per-channel affine (scale initialised uniform in [0, 1))."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.rand(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1).float()
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1).view(-1, 1, 1, 1)
        x = ((x.float() - mean) / (std + self.eps)).to(x.dtype)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class ResBlock(nn.Module):
    """x + conv3(norm, relu) -> conv3(norm); instance norm, or AdaIN with given parameters."""

    def __init__(self, channels: int, adain: bool = False) -> None:
        super().__init__()
        norm = "none" if adain else "in"
        self.adain = adain
        self.conv1 = ConvBlock(channels, channels, 3, norm=norm, act="none")
        self.conv2 = ConvBlock(channels, channels, 3, norm=norm, act="none")

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv1(x)
        if self.adain:
            y = adain(y, params[:, 0], params[:, 1])  # type: ignore[index]
        y = F.relu(y)
        y = self.conv2(y)
        if self.adain:
            y = adain(y, params[:, 2], params[:, 3])  # type: ignore[index]
        return x + y


def adain(x: torch.Tensor, bias: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Instance norm (biased variance, eps 1e-5), then per-sample scale and bias [B, C]."""
    x = F.instance_norm(x.float()).to(x.dtype)
    return x * scale[:, :, None, None] + bias[:, :, None, None]


class PoseEncoder(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.stem = ConvBlock(cfg.pose_channels, c, 7, norm="in")
        down = []
        for _ in range(cfg.downsample):
            down.append(ConvBlock(c, 2 * c, 4, 2, norm="in"))
            c *= 2
        self.down = nn.Sequential(*down)
        self.res = nn.Sequential(*[ResBlock(c) for _ in range(cfg.res_blocks)])
        self.out_channels = c

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        return self.res(self.down(self.stem(pose)))


class ComponentEncoder(nn.Module):
    """(image, one-hot parsing) -> one code per component, [B, K, code_size]."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.vgg = VGGTrunk(
            ENCODER_TAPS,
            cfg.vgg_weights,
            normalize=cfg.vgg_input,
            trainable=cfg.vgg_trainable,
            what="generator's component encoder",
        )
        # conv_k's output is concatenated with the VGG tap of the same scale; at 64
        # channels the widths are the reference's (3->64, 128->128, 256->256, 512->512).
        taps = (64, 128, 256, 512)
        self.convs = nn.ModuleList(
            [
                ConvBlock(3, c, 7),
                ConvBlock(c + taps[0], 2 * c, 4, 2),
                ConvBlock(2 * c + taps[1], 4 * c, 4, 2),
                ConvBlock(4 * c + taps[2], 8 * c, 4, 2),
            ]
        )
        self.to_code = nn.Conv2d(8 * c + taps[3], cfg.code_size, 1)
        self.components = cfg.components
        self.cpu_chunk_pixels = cfg.cpu_chunk_pixels

    def forward(self, image: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        b, k = image.shape[0], parsing.shape[1]
        masked = (image[:, None] * parsing[:, :, None]).flatten(0, 1)  # [B*K, 3, H, W]
        chunk = masked.shape[0]
        if masked.device.type == "cpu" and self.cpu_chunk_pixels > 0:
            chunk = max(1, self.cpu_chunk_pixels // (masked.shape[2] * masked.shape[3]))
        codes = [self._encode(part) for part in masked.split(chunk)]
        return torch.cat(codes).view(b, k, -1)

    def _encode(self, masked: torch.Tensor) -> torch.Tensor:
        """Masked images [N, 3, H, W] -> codes [N, code_size, 1, 1]; images are independent."""
        taps = self.vgg(masked)
        x = masked
        for conv, tap in zip(self.convs, ENCODER_TAPS, strict=True):
            x = torch.cat([conv(x), taps[tap]], dim=1)
        return self.to_code(x.mean(dim=(2, 3), keepdim=True))  # global average pooling


class Decoder(nn.Module):
    def __init__(self, cfg: GeneratorConfig, channels: int) -> None:
        super().__init__()
        self.res_channels = channels
        self.res = nn.ModuleList([ResBlock(channels, adain=True) for _ in range(cfg.res_blocks)])
        up = []
        for _ in range(cfg.downsample):
            up.append(ConvBlock(channels, channels // 2, 5, norm="ln"))
            channels //= 2
        self.up = nn.ModuleList(up)
        self.to_rgb = ConvBlock(channels, 3, 7, act="tanh")

    @property
    def num_adain_params(self) -> int:
        return len(self.res) * 4 * self.res_channels

    def forward(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        # [B, blocks * 2 layers * (bias, scale) * C] -> [B, blocks, 4, C] in the reference's
        # order: layer 1 bias, layer 1 scale, layer 2 bias, layer 2 scale.
        params = adain_params.view(adain_params.shape[0], len(self.res), 4, -1)
        x = content
        for i, block in enumerate(self.res):
            x = block(x, params[:, i])
        for conv in self.up:
            x = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.to_rgb(x)


@register
class Generator(PoseGenerator):
    """ADGen: see the module docstring. Its appearance is {"codes": [B, K, code_size]}."""

    Config = GeneratorConfig

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.pose_encoder = PoseEncoder(config)
        self.component_encoder = ComponentEncoder(config)
        self.decoder = Decoder(config, self.pose_encoder.out_channels)
        self.fuse = nn.Sequential(nn.Linear(config.style_size, config.style_size), nn.ReLU())
        m = config.mlp_channels
        self.mlp = nn.Sequential(
            nn.Linear(config.style_size, m),
            nn.ReLU(),
            nn.Linear(m, m),
            nn.ReLU(),
            nn.Linear(m, self.decoder.num_adain_params),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The reference's init: conv and linear weights N(0, 0.02) (biases and VGG kept)."""
        for name, m in self.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and ".vgg." not in f".{name}.":
                nn.init.normal_(m.weight, 0.0, 0.02)

    def encode(
        self, image: torch.Tensor, parsing: torch.Tensor, keypoints: torch.Tensor | None = None
    ) -> Appearance:
        """Component codes of a source image and its one-hot parsing (keypoints unused)."""
        return {"codes": self.component_encoder(image, parsing)}

    def decode(self, appearance: Appearance, keypoints: torch.Tensor) -> torch.Tensor:
        """An image in [-1, 1] of the person the codes describe, in the pose of keypoints."""
        return self.decode_maps(appearance["codes"], self.pose_input(keypoints))

    def decode_maps(self, codes: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """`decode` from pose maps [B, 18, H, W] (the training step draws them once)."""
        style = self.fuse(codes.flatten(1))
        return self.decoder(self.pose_encoder(pose), self.mlp(style))

    @classmethod
    def for_weights(cls, config: GeneratorConfig) -> Generator:
        return generator_for_weights(config)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable and frozen parameters (the reference: ~28.8 M + 20.0 M frozen VGG)."""
        counts = {"trainable": 0, "frozen": 0}
        for p in self.parameters():
            counts["trainable" if p.requires_grad else "frozen"] += p.numel()
        return counts


def generator_for_weights(config: GeneratorConfig) -> Generator:
    """A generator whose weights, its VGG trunk included, come from a checkpoint next: no
    VGG file is looked for (the config keeps naming the one it was trained with)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = Generator(replace(config, vgg_weights="", vgg_trainable=False))
    generator.config = config
    return generator
