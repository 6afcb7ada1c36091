"""The generators' losses: ADGAN's L1, perceptual L1 (VGG-19 relu1_2), adversarial (LSGAN or
hinge) and contextual loss (Mechrez et al. 2018) on relu3_2 and relu4_2, sigma 0.5; and a
structural term, 1 - SSIM, for training without an ImageNet VGG.

One VGG pass per image serves the perceptual and the contextual terms. The reference runs
the contextual loss through a second VGG (a Caffe conversion fed [-1, 1] images as they
are); here both terms read the same torchvision VGG-19 on ImageNet-normalised inputs. With
both weights at 0 no VGG is built at all: a random VGG is not a perceptual metric, and
without the ImageNet file (these machines cannot fetch it) SSIM is the structural signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from adgan.vgg import VGGTrunk


@dataclass
class LossConfig:
    l1: float = 1.0
    perceptual: float = 1.0
    perceptual_layer: str = "relu1_2"
    adversarial: float = 5.0  # averaged over the two discriminators
    gan: Literal["lsgan", "hinge"] = "lsgan"
    contextual: float = 0.1
    contextual_layers: tuple[str, ...] = ("relu3_2", "relu4_2")
    contextual_sigma: float = 0.5
    contextual_b: float = 1.0
    vgg_weights: str = ""  # the same torchvision vgg19 file as the generator's, usually
    ssim: float = 0.0  # weight of 1 - SSIM (Gaussian window, sigma 1.5, as the evaluation)


def generator_gan_loss(pred: torch.Tensor, kind: str) -> torch.Tensor:
    pred = pred.float()
    if kind == "lsgan":
        return ((pred - 1) ** 2).mean()
    return -pred.mean()


def discriminator_gan_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean of the real and fake terms (the reference's 0.5 * (real + fake))."""
    real, fake = real.float(), fake.float()
    if kind == "lsgan":
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
    return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())


def contextual_loss(
    target: torch.Tensor, generated: torch.Tensor, sigma: float = 0.5, b: float = 1.0
) -> torch.Tensor:
    """CX(target, generated) of feature maps [B, C, H, W], batched.

    Centred by the target's mean over batch and positions, L2-normalised per position;
    cosine distances d_ij between generated position i and target position j, made relative
    (d_ij / (min_j d_ij + 1e-5)), turned into affinities exp((b - d) / sigma) normalised
    over j; CX = mean_j max_i of those, and the loss -log CX averaged over the batch.
    """
    t, g = target.float(), generated.float()
    mean = t.mean(dim=(0, 2, 3), keepdim=True)
    t = F.normalize((t - mean).flatten(2), dim=1)  # [B, C, Nt]
    g = F.normalize((g - mean).flatten(2), dim=1)  # [B, C, Ng]
    cosine = torch.bmm(g.transpose(1, 2), t)  # [B, Ng, Nt]
    dist = (1 - cosine) / 2
    relative = dist / (dist.min(dim=2, keepdim=True).values + 1e-5)
    affinity = torch.softmax((b - relative) / sigma, dim=2)  # exp / sum over target positions
    cx = affinity.max(dim=1).values.mean(dim=1)  # [B]
    return -torch.log(cx).mean()


def ssim_loss(generated: torch.Tensor, target: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """1 - mean SSIM of images [B, 3, H, W] in [-1, 1] (data range 2), Gaussian window as
    `adgan.metrics.ssim` (valid region), differentiable. Always fp32, autocast or not:
    the variances are differences of near-equal means, which bf16 cancels to noise."""
    with torch.autocast(generated.device.type, enabled=False):
        return _ssim_loss(generated.float(), target.float(), sigma)


def _ssim_loss(x: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3.5 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    wy, wx = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(v: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(v, wy, groups=c), wx, groups=c)

    ux, uy = blur(x), blur(y)
    vx, vy, vxy = blur(x * x) - ux * ux, blur(y * y) - uy * uy, blur(x * y) - ux * uy
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return 1 - s.mean()


class GeneratorLosses(nn.Module):
    """The non-adversarial terms: L1, SSIM, and those of one frozen VGG pass over generated
    and target (built only when a VGG term has weight)."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vgg: VGGTrunk | None = None
        if cfg.perceptual > 0 or cfg.contextual > 0:
            taps = {cfg.perceptual_layer, *cfg.contextual_layers}
            self.vgg = VGGTrunk(tuple(taps), cfg.vgg_weights, normalize="imagenet", what="losses")

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        terms = {"l1": F.l1_loss(generated.float(), target.float())}
        if cfg.ssim > 0:
            terms["ssim"] = ssim_loss(generated, target)
        if self.vgg is None:
            return terms
        fake = self.vgg(generated)
        with torch.no_grad():
            real = self.vgg(target)
        layer = cfg.perceptual_layer
        terms["perceptual"] = F.l1_loss(fake[layer].float(), real[layer].float())
        if cfg.contextual > 0:
            terms["contextual"] = sum(
                contextual_loss(real[k], fake[k], cfg.contextual_sigma, cfg.contextual_b)
                for k in cfg.contextual_layers
            )
        return terms
