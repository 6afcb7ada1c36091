"""Guides: what a parser may read beside the photo, from a real-world keypoint backend.

A parser trained on SynthFashion alone learns SynthFashion's look: on real photos it paints a
face on the back of a head and lets garments bleed into the room. What does hold on real
people is the keypoint backend (BlazePose learnt on real photos): its keypoints say where
the head, torso and limbs are and which way the person faces (a back view has no eyes), its
segmentation mask where the person ends. A guided parser reads them as extra input
channels and is left to learn what they cannot say (which garment, skin or cloth):

    mask   1 channel: the person's probability in [0, 1]; 0.5 everywhere when unknown
    pose   18 channels: Gaussian maps of the 18 keypoints (`keypoints.posemap`), zero where
           a point is missing

At inference they come from the bundle's keypoint estimator (the pipeline passes them); in
training they are drawn from the ground truth with the errors a real estimator makes
(`GuideNoiseConfig`: jittered and dropped points, an eroded or dilated, blurred mask,
sometimes none), so the network learns to trust them only as far as they deserve.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from keypoints.posemap import pose_maps, scaled_sigma
from keypoints.skeleton import FLIP_PERMUTATION, NUM_KEYPOINTS

GUIDE_CHANNELS: dict[str, int] = {"mask": 1, "pose": NUM_KEYPOINTS}
UNKNOWN_MASK = 0.5  # the mask channel's value where no mask was given


def guide_channels(names: tuple[str, ...]) -> int:
    unknown = [n for n in names if n not in GUIDE_CHANNELS]
    if unknown:
        raise ValueError(f"guides {list(unknown)}: each must be one of {list(GUIDE_CHANNELS)}")
    return sum(GUIDE_CHANNELS[n] for n in names)


def guide_maps(
    names: tuple[str, ...],
    size: tuple[int, int],
    keypoints: np.ndarray | torch.Tensor | None,
    mask: np.ndarray | torch.Tensor | None,
    sigma_at_256: float = 6.0,
) -> torch.Tensor:
    """The guide channels [..., G, H, W] of one person or a batch, in the parser's input
    frame: `keypoints` [..., 18, 2] (x, y; -1 missing; None: all missing), `mask`
    [..., H, W] in [0, 1] (None: unknown)."""
    h, w = size
    lead: tuple[int, ...] = ()
    if keypoints is not None:
        lead = tuple(np.shape(keypoints)[:-2])
    elif mask is not None:
        lead = tuple(np.shape(mask)[:-2])
    maps = []
    for name in names:
        if name == "mask":
            if mask is None:
                maps.append(torch.full((*lead, 1, h, w), UNKNOWN_MASK))
            else:
                maps.append(torch.as_tensor(np.asarray(mask), dtype=torch.float32)[..., None, :, :])
        elif name == "pose":
            if keypoints is None:
                maps.append(torch.zeros((*lead, NUM_KEYPOINTS, h, w)))
            else:
                maps.append(pose_maps(keypoints, h, w, scaled_sigma(sigma_at_256, h)))
        else:
            guide_channels((name,))  # raises, naming the valid ones
    return torch.cat(maps, dim=-3)


def mirror_guides(names: tuple[str, ...], guides: torch.Tensor) -> torch.Tensor:
    """The guides of the mirrored photo: flipped, the pose maps' left and right swapped."""
    order, start = [], 0
    for name in names:
        n = GUIDE_CHANNELS[name]
        perm = FLIP_PERMUTATION if name == "pose" else range(n)
        order += [start + i for i in perm]
        start += n
    return guides.flip(-1)[..., order, :, :]


@dataclass
class GuideNoiseConfig:
    """The errors of a real keypoint backend, imitated on ground-truth guides in training."""

    jitter: float = 0.02  # std of each keypoint's shift, as a fraction of the input height
    drop: float = 0.05  # probability that a keypoint is missing
    pose_drop: float = 0.05  # probability that no keypoints are given at all
    mask_drop: float = 0.1  # probability that no mask is given (UNKNOWN_MASK)
    mask_edge: float = 0.03  # the mask is eroded or dilated by up to this x input height
    mask_blur: float = 0.5  # probability that the mask's edge is softened


def noisy_keypoints(
    keypoints: np.ndarray, height: int, cfg: GuideNoiseConfig, rng: np.random.Generator
) -> np.ndarray:
    """[18, 2] in input pixels, jittered, some dropped (missing stay missing)."""
    kp = np.asarray(keypoints, np.float32).copy()
    present = (kp >= 0).all(-1)
    if rng.random() < cfg.pose_drop:
        return np.full_like(kp, -1.0)
    kp += rng.normal(0.0, cfg.jitter * height, kp.shape).astype(np.float32)
    kp = np.maximum(kp, 0.0)  # a jittered point stays a point
    dropped = rng.random(len(kp)) < cfg.drop
    kp[~present | dropped] = -1.0
    return kp


def noisy_mask(
    mask: np.ndarray, cfg: GuideNoiseConfig, rng: np.random.Generator
) -> np.ndarray | None:
    """A person mask (uint8/bool [H, W]) as an estimator might give it, float32 in [0, 1];
    None for 'no mask given'."""
    if rng.random() < cfg.mask_drop:
        return None
    out = np.asarray(mask, np.uint8)
    radius = round(rng.uniform(0, cfg.mask_edge) * out.shape[0])
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
        out = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(out, kernel)
    soft = out.astype(np.float32)
    if rng.random() < cfg.mask_blur:
        k = 2 * int(rng.integers(1, 4)) + 1
        soft = cv2.GaussianBlur(soft, (k, k), 0)
    return soft
