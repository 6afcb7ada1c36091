"""Bare skin is the colour of the person's own face.

In ADGAN's classes arms and legs are bare skin (a sleeve is upper clothes, a trouser leg is
pants). A parser that learnt on synthetic people tells skin from cloth badly on real photos
(dark trousers become legs, sleeves arms), but the photo itself says what this person's
skin looks like: the face the parser found. So a pixel may be arms or legs only where its
chromaticity (r, g = R, G over R + G + B: the same under more or less light, so an arm in
shadow is still skin) lies within a few standard deviations of the face's. The rule only
takes the skin classes away where the colour cannot be skin; it never adds them. Nor can a
pixel far darker than the face be lit skin: there the chromaticity of a few grey levels is
noise, and black trousers would pass for skin by chance.
"""

from __future__ import annotations

import numpy as np
import torch

from parsing.labels import class_map

MIN_FACE_PIXELS = 15  # fewer face pixels than this (a back view): no rule
# Added to the face's chromaticity covariance (percentage points squared): an evenly lit
# face must still allow the spread of skin over arms and legs in other light.
COVARIANCE_FLOOR = 4.0
# Darker than this share of the face's median brightness (R + G + B): not skin, whatever its
# chromaticity (0.2 to 0.4 did alike on the real CIHP people).
DARKEST_SKIN = 0.3


def chromaticity(image: np.ndarray) -> np.ndarray:
    """[H, W, 2]: r and g in percent of R + G + B (float RGB [H, W, 3]). sRGB values under
    k times the light are about k^(1/2.4) times each, so their ratios stay."""
    image = np.asarray(image, np.float64)
    return 100.0 * image[..., :2] / np.maximum(image.sum(-1, keepdims=True), 1e-3)


def skin_distance(image: np.ndarray, face: np.ndarray) -> np.ndarray | None:
    """Mahalanobis distance [H, W] of each pixel's chromaticity from the face's (float RGB
    [H, W, 3] in [0, 1], face a boolean [H, W]); infinite where a pixel is too dark to tell;
    None where too little face is seen."""
    if face.sum() < MIN_FACE_PIXELS:
        return None
    chroma = chromaticity(image)
    sample = chroma[face]
    centre = np.median(sample, axis=0)
    covariance = np.cov((sample - centre).T) + COVARIANCE_FLOOR * np.eye(2)
    offset = chroma - centre
    distance = np.sqrt(np.einsum("hwi,ij,hwj->hw", offset, np.linalg.inv(covariance), offset))
    brightness = np.asarray(image, np.float64).sum(-1)
    distance[brightness < DARKEST_SKIN * np.median(brightness[face])] = np.inf
    return distance


def unlike_skin(
    probs: torch.Tensor, images: torch.Tensor, face: int, threshold: float
) -> list[np.ndarray | None]:
    """Per crop, [H, W] bool: where the colour cannot be this person's skin, more than
    `threshold` (standard deviations) from the chromaticity of what probs [B, K, H, W] call
    face (class `face`); None where too little face is seen to tell. images [B, 3, H, W] in
    [0, 1], at the probabilities' size."""
    faces = (class_map(probs) == face).cpu().numpy()
    pictures = images.permute(0, 2, 3, 1).float().cpu().numpy()
    out: list[np.ndarray | None] = []
    for picture, seen in zip(pictures, faces, strict=True):
        distance = skin_distance(picture, seen)
        out.append(None if distance is None else distance > threshold)
    return out


def forbid_unlike_skin(
    probs: torch.Tensor,
    images: torch.Tensor,
    face: int,
    skin: tuple[int, ...],
    threshold: float,
    unlike: list[np.ndarray | None] | None = None,
) -> torch.Tensor:
    """probs [B, K, H, W] with the `skin` classes' probabilities zeroed wherever a pixel
    lies more than `threshold` (standard deviations) from the face's chromaticity; images
    [B, 3, H, W] in [0, 1], at the probabilities' size. `unlike`: `unlike_skin`'s answer,
    where already known."""
    out = probs.clone()
    if unlike is None:
        unlike = unlike_skin(probs, images, face, threshold)
    for i, where in enumerate(unlike):
        if where is None:
            continue
        mask = torch.from_numpy(where).to(probs.device)
        for c in skin:
            out[i, c][mask] = 0.0
    return out
