"""Training augmentation shared by the keypoint and dense (parsing, DensePose) tasks.

Geometric: a random zoom, rotation, shift and mirror about the input's centre, composed
after the crop's box-to-input matrix, so images, label maps and points move together.
Photometric: brightness, contrast, saturation, hue, greyscale, blur and sensor noise, and
an occluding rectangle. Bystanders: another training person pasted behind the subject
(copy-paste, Ghiasi et al. 2021), because real photos have neighbours in the person box and
SynthFashion renders one person per image. All draws come from the sample's own generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from common.geometry import about_centre, box_to_input, compose, warp


@dataclass
class AugmentConfig:
    """Training augmentation; all zeros/false means none."""

    scale: float = 0.25  # zoom in [1 - scale, 1 + scale]
    rotation_deg: float = 30.0
    rotation_probability: float = 0.5
    shift: float = 0.06  # fraction of the input size
    flip_probability: float = 0.5
    colour: float = 0.3  # brightness, contrast and saturation jitter
    hue: float = 0.04  # fraction of the colour circle
    grayscale_probability: float = 0.05
    blur_probability: float = 0.2
    noise: float = 0.03  # std of pixel noise, as a fraction of full scale
    erase_probability: float = 0.3  # an occluding rectangle (a bag, an arm, a doorframe)
    # Another person behind the subject, labelled background as the single-person
    # conventions (ADGAN's maps, top-down pose) have it. Needs person masks (label maps or
    # IUV); samples without one are left alone.
    bystander_probability: float = 0.0
    bystander_scale: tuple[float, float] = (0.6, 1.1)  # relative to the subject's framing
    bystander_shift: tuple[float, float] = (0.25, 0.65)  # sideways, fraction of the width


def random_affine(
    rng: np.random.Generator, input_size: tuple[int, int], cfg: AugmentConfig, base: np.ndarray
) -> tuple[np.ndarray, bool]:
    """`base` [2, 3] (original -> input) followed by a random zoom, rotation, shift and
    mirror about the input's centre; returns the matrix and whether it mirrors."""
    flip = bool(rng.random() < cfg.flip_probability)
    degrees = 0.0
    if rng.random() < cfg.rotation_probability:
        limit = 2 * cfg.rotation_deg
        degrees = float(np.clip(rng.normal(0, cfg.rotation_deg), -limit, limit))
    height, width = input_size
    outer = about_centre(
        input_size,
        scale=rng.uniform(1 - cfg.scale, 1 + cfg.scale),
        degrees=degrees,
        flip=flip,
        shift=tuple(rng.uniform(-cfg.shift, cfg.shift, 2) * (width, height)),
    )
    return compose(outer, base), flip


def photometric(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """float32 RGB in [0, 1] -> jittered, same range (occluder included)."""
    if cfg.colour > 0:
        img = img * rng.uniform(1 - cfg.colour, 1 + cfg.colour)  # brightness
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - cfg.colour, 1 + cfg.colour) + mean  # contrast
        grey = img.mean(axis=2, keepdims=True)
        img = grey + (img - grey) * rng.uniform(1 - cfg.colour, 1 + cfg.colour)  # saturation
    if cfg.hue > 0:
        hsv = cv2.cvtColor(np.clip(img, 0, 1).astype(np.float32), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue, cfg.hue) * 360.0) % 360.0
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < cfg.grayscale_probability:
        img = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.random() < cfg.blur_probability:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(rng.uniform(0.3, 1.5)))
    if cfg.noise > 0:
        img = img + rng.normal(0.0, rng.uniform(0, cfg.noise), img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    if rng.random() < cfg.erase_probability:
        h, w = img.shape[:2]
        eh, ew = int(h * rng.uniform(0.1, 0.35)), int(w * rng.uniform(0.1, 0.35))
        y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
        img[y : y + eh, x : x + ew] = rng.random(3).astype(np.float32)
    return img


def draw(rng: np.random.Generator, probability: float) -> bool:
    """A coin with this probability; a zero one draws nothing, so switched-off options
    leave every later draw of the sample (and old runs' exact resume) as they were."""
    return probability > 0 and bool(rng.random() < probability)


def paste_bystander(
    crop: np.ndarray,
    subject: np.ndarray,
    donor: np.ndarray,
    donor_mask: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> np.ndarray:
    """Paste the person of `donor` (uint8 RGB, its own pixels, cut out where `donor_mask`
    is non-zero) beside and behind the subject of `crop` (float32 RGB in [0, 1]).

    `subject` [H, W] marks the subject's pixels in the crop; they stay in front, so the
    sample's labels, keypoints and DensePose points remain exact.
    """
    height, width = crop.shape[:2]
    dh, dw = donor.shape[:2]
    side = 1.0 if rng.random() < 0.5 else -1.0
    outer = about_centre(
        (height, width),
        scale=rng.uniform(*cfg.bystander_scale),
        flip=bool(rng.random() < 0.5),
        shift=(
            side * rng.uniform(*cfg.bystander_shift) * width,
            rng.uniform(-0.05, 0.2) * height,  # further back stands a little higher
        ),
    )
    matrix = compose(outer, box_to_input((0.0, 0.0, float(dw), float(dh)), (height, width)))
    person = warp(donor, matrix, (height, width), 0).astype(np.float32) / 255.0
    person = np.clip(person * rng.uniform(0.75, 1.15), 0.0, 1.0)  # not lit like the subject
    alpha = warp(donor_mask.astype(np.float32), matrix, (height, width), 0)  # soft edges
    alpha = (alpha * ~subject.astype(bool))[..., None]
    return (crop * (1.0 - alpha) + person * alpha).astype(np.float32)
