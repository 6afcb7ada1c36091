"""Image-quality metrics of pose transfer, as the papers compute them.

- SSIM: skimage's `compare_ssim(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, multichannel=True, data_range=gen.max() - gen.min())` on
  uint8 images, the call of the PATN/ADGAN evaluation scripts: an 11x11 Gaussian window
  (radius 5), population covariances, mean over the valid region and the channels.
- mask-SSIM: the same on both images multiplied by the person mask.
- LPIPS: the `lpips` package (AlexNet, v0.1); its linear layers ship with the package, the
  AlexNet backbone comes from a local torchvision `alexnet` state dict.
- FID: pytorch-fid's definition: its Inception-v3 variant (blocks from the `pytorch_fid`
  package), 2048-d pool features of images resized to 299x299 bilinearly, Frechet distance
  of the two Gaussians as `pytorch_fid.fid_score.calculate_frechet_distance` defines it, with
  our own exact matrix square root (`trace_sqrt_product`); weights from the local
  `pt_inception-2015-12-05-6726825d.pth`.
- IS: torchvision's Inception-v3 classifier (local `inception_v3_google-*.pth`), 10 splits,
  exp(E KL(p(y|x) || p(y))).

Without weight files every network is random (tests); the numbers are then only
self-consistent, and the caller says so.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# -- SSIM -----------------------------------------------------------------------------


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    reference: np.ndarray | torch.Tensor,
    generated: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """SSIM per image of uint8 RGB batches [N, H, W, 3] (or one image [H, W, 3]); with a
    mask [N, H, W] (0/1) both images are multiplied by it first (mask-SSIM)."""
    ref = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    gen = torch.as_tensor(np.asarray(generated), dtype=torch.float64)
    single = ref.ndim == 3
    if single:
        ref, gen = ref[None], gen[None]
    # data_range from each (unmasked) generated image, as the evaluation scripts pass it
    data_range = (gen.flatten(1).max(1).values - gen.flatten(1).min(1).values).clamp_min(1e-12)
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask), dtype=torch.float64)
        m = m[None] if m.ndim == 2 else m
        ref, gen = ref * m[..., None], gen * m[..., None]
    x = ref.permute(0, 3, 1, 2)  # [N, 3, H, W]
    y = gen.permute(0, 3, 1, 2)
    g = _gaussian_window()
    k = len(g)
    c = x.shape[1]
    wy = g.view(1, 1, k, 1).repeat(c, 1, 1, 1)
    wx = g.view(1, 1, 1, k).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # valid region only: skimage crops it so
        return F.conv2d(F.conv2d(t, wy, groups=c), wx, groups=c)

    ux, uy = blur(x), blur(y)
    vx = blur(x * x) - ux * ux
    vy = blur(y * y) - uy * uy
    vxy = blur(x * y) - ux * uy
    r = data_range.view(-1, 1, 1, 1)
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    out = s.mean(dim=(1, 2, 3)).numpy()
    return out[0] if single else out


def l1(reference: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Mean absolute difference per image of uint8 batches, on the [0, 1] scale."""
    diff = np.abs(reference.astype(np.float32) - generated.astype(np.float32)) / 255.0
    return diff.reshape(diff.shape[0], -1).mean(1)


# -- weights --------------------------------------------------------------------------


def _weights(path: str, env: str, what: str) -> dict[str, torch.Tensor] | None:
    """A local state dict, from the argument or an environment variable; None (with a
    warning) when neither names one; a named file that is missing is an error."""
    path = path or os.environ.get(env, "")
    if not path:
        warnings.warn(
            f"{what}: no weights given (argument or ${env}); using a random network, so the "
            "numbers only compare runs of this same random network",
            stacklevel=3,
        )
        return None
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what} weights {file}: no such file")
    return torch.load(file, map_location="cpu", weights_only=True)


# -- LPIPS ----------------------------------------------------------------------------


class LPIPS(nn.Module):
    """LPIPS distance of images in [-1, 1] ([N, 3, H, W]) -> [N]; images under 64 pixels
    on a side are upsampled first."""

    def __init__(self, alexnet_weights: str = "") -> None:
        super().__init__()
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's "pretrained" deprecation notes
            # Nothing is downloaded: pretrained=True reads the linear layers shipped inside
            # the lpips package; pnet_rand=True builds AlexNet without fetching weights.
            self.net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        state = _weights(alexnet_weights, "ALEXNET_WEIGHTS", "LPIPS AlexNet backbone")
        self.pretrained = state is not None
        if state is not None:
            # the lpips backbone slices keep torchvision's `features` indices as names
            layers = {
                name.rsplit(".", 1)[-1]: m
                for name, m in self.net.net.named_modules()
                if isinstance(m, nn.Conv2d)
            }
            for index, conv in layers.items():
                conv.weight.data.copy_(state[f"features.{index}.weight"])
                conv.bias.data.copy_(state[f"features.{index}.bias"])
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.float(), y.float()
        short = min(x.shape[-2:])
        if short < 64:  # AlexNet's strides and pools leave nothing of tiny images
            size = [round(s * 64 / short) for s in x.shape[-2:]]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return self.net(x, y).flatten()


# -- FID and IS -----------------------------------------------------------------------


class FIDInception(nn.Module):
    """pytorch-fid's Inception-v3: images in [0, 1] -> 2048-d pool features."""

    def __init__(self, weights: str = "") -> None:
        super().__init__()
        from pytorch_fid import inception as fid

        net = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = fid.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = fid.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = fid.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = fid.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = fid.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = fid.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = fid.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = fid.FIDInceptionE_1(1280)
        net.Mixed_7c = fid.FIDInceptionE_2(2048)
        state = _weights(weights, "FID_INCEPTION_WEIGHTS", "FID Inception")
        self.pretrained = state is not None
        if state is not None:
            net.load_state_dict(state)
        pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.features = nn.Sequential(
            net.Conv2d_1a_3x3,
            net.Conv2d_2a_3x3,
            net.Conv2d_2b_3x3,
            pool,
            net.Conv2d_3b_1x1,
            net.Conv2d_4a_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b,
            net.Mixed_5c,
            net.Mixed_5d,
            net.Mixed_6a,
            net.Mixed_6b,
            net.Mixed_6c,
            net.Mixed_6d,
            net.Mixed_6e,
            net.Mixed_7a,
            net.Mixed_7b,
            net.Mixed_7c,
            nn.AdaptiveAvgPool2d(1),
        )
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.features(2 * x - 1).flatten(1)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) of a feature set [N, D], as pytorch-fid keeps them:
    the statistics of a large real set are computed once and cached."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError("FID needs at least 2 images on each side")
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix (eigenvalues rounded below zero: 0)."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr sqrtm(sigma_a @ sigma_b) of two covariance matrices, exactly and stably.

    sigma_a @ sigma_b is not symmetric, but it is similar to the symmetric positive
    semi-definite M = sqrt(sigma_a) sigma_b sqrt(sigma_a) (conjugate by sqrt(sigma_a)), so
    tr sqrtm(sigma_a sigma_b) = tr sqrtm(M) = sum sqrt(eig(M)). As M = A A^T with
    A = sqrt(sigma_a) sqrt(sigma_b), sqrt(eig(M)) are A's singular values: the trace is A's
    nuclear norm. Two symmetric eigendecompositions and one SVD, no iterative square root;
    the SVD keeps rank-deficient covariances (fewer images than features) accurate to
    rounding, where sqrt(eig(M)) would lift each zero eigenvalue to ~1e-8."""
    a = np.asarray(sigma_a, np.float64)
    b = np.asarray(sigma_b, np.float64)
    return float(np.linalg.svd(_psd_sqrt(a) @ _psd_sqrt(b), compute_uv=False).sum())


def frechet_distance_from_statistics(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Frechet distance of two Gaussians, |mu_a - mu_b|^2 + tr(S_a + S_b - 2 sqrtm(S_a S_b)):
    pytorch-fid's `calculate_frechet_distance`, with the matrix square root's trace taken
    exactly by `trace_sqrt_product` (pytorch-fid calls scipy's iterative `sqrtm`)."""
    mu_a = np.atleast_1d(np.asarray(mu_a, np.float64))
    mu_b = np.atleast_1d(np.asarray(mu_b, np.float64))
    sigma_a = np.atleast_2d(np.asarray(sigma_a, np.float64))
    sigma_b = np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
        raise ValueError(
            f"FID statistics differ in shape: means {mu_a.shape} / {mu_b.shape}, "
            f"covariances {sigma_a.shape} / {sigma_b.shape}"
        )
    diff = mu_a - mu_b
    trace = np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt_product(sigma_a, sigma_b)
    return float(diff @ diff + trace)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets [N, D] (pytorch-fid's definition)."""
    return frechet_distance_from_statistics(
        *feature_statistics(features_a), *feature_statistics(features_b)
    )


class ISInception(nn.Module):
    """torchvision's Inception-v3 classifier: images in [0, 1] -> class probabilities."""

    def __init__(self, weights: str = "") -> None:
        super().__init__()
        from torchvision.models import inception_v3

        self.net = inception_v3(
            weights=None, aux_logits=True, init_weights=False, transform_input=False
        )
        state = _weights(weights, "IS_INCEPTION_WEIGHTS", "Inception Score classifier")
        self.pretrained = state is not None
        if state is not None:
            self.net.load_state_dict(state)
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return torch.softmax(self.net(2 * x - 1), dim=1)  # Google's weights expect [-1, 1]


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over splits of exp(E_x KL(p(y|x) || p(y)))."""
    p = np.asarray(probabilities, np.float64)
    splits = max(1, min(splits, len(p)))
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
