"""The DensePose convention: 24 body parts, 14 coarse parts, U/V charts, IUV images.

Part index I: 0 background, then the 24 DensePose-COCO parts (names below; "front/back"
for torso and legs, "inside/outside" for arms, checked against real IUV maps: on a person
facing the camera the torso is 2, the legs 9/10/13/14, the right hand 3 and right foot 6 lie
on the image's left). U and V lie in [0, 1] within each part's chart.

An IUV image stores I, U*255, V*255 in three 8-bit channels. Two channel orders exist in
the wild: R=I, G=U, B=V (DensePose maps distributed with DeepFashion) and the order that
DensePose-RCNN's `infer_simple` writes with OpenCV, which PIL reads as R=V, G=U, B=I.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from common.image_io import ImageError, load_image, save_image

NUM_PARTS = 24
PART_NAMES: tuple[str, ...] = (
    "background",
    "torso_back",
    "torso_front",
    "right_hand",
    "left_hand",
    "left_foot",
    "right_foot",
    "upper_leg_right_back",
    "upper_leg_left_back",
    "upper_leg_right_front",
    "upper_leg_left_front",
    "lower_leg_right_back",
    "lower_leg_left_back",
    "lower_leg_right_front",
    "lower_leg_left_front",
    "upper_arm_left_inside",
    "upper_arm_right_inside",
    "upper_arm_left_outside",
    "upper_arm_right_outside",
    "lower_arm_left_inside",
    "lower_arm_right_inside",
    "lower_arm_left_outside",
    "lower_arm_right_outside",
    "head_right",
    "head_left",
)
PART_INDEX = {name: i for i, name in enumerate(PART_NAMES)}

# The 14 coarse parts of `dp_masks` (index 0 = background).
COARSE_NAMES: tuple[str, ...] = (
    "background",
    "torso",
    "right_hand",
    "left_hand",
    "left_foot",
    "right_foot",
    "upper_leg_right",
    "upper_leg_left",
    "lower_leg_right",
    "lower_leg_left",
    "upper_arm_left",
    "upper_arm_right",
    "lower_arm_left",
    "lower_arm_right",
    "head",
)
NUM_COARSE = len(COARSE_NAMES) - 1
FINE_TO_COARSE: tuple[int, ...] = (
    0,
    1,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    6,
    7,
    8,
    9,
    8,
    9,
    10,
    11,
    10,
    11,
    12,
    13,
    12,
    13,
    14,
    14,
)

# Horizontal flip: part i of a mirrored image is part FLIP_PARTS[i] of the original
# (detectron2's POINT_LABEL_SYMMETRIES and MASK_LABEL_SYMMETRIES). U/V also change under a
# flip; DensePose-COCO needs its UV symmetry tables for that, our synthetic charts do not
# (see synth.render).
FLIP_PARTS: tuple[int, ...] = (
    0,
    1,
    2,
    4,
    3,
    6,
    5,
    8,
    7,
    10,
    9,
    12,
    11,
    14,
    13,
    16,
    15,
    18,
    17,
    20,
    19,
    22,
    21,
    24,
    23,
)
FLIP_COARSE: tuple[int, ...] = (0, 1, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 14)

# Which way U and V run on each part, as (U source, V source) over body-frame coordinates:
# "a" runs along the part from its proximal end (neck for the torso, hip->knee,
# shoulder->elbow, wrist->fingertips, ankle->toes) and "r" across it towards the person's
# right; "1-x" reverses. Measured on the real IUV maps in shared/data (correlation of U and V
# with the image axes on front and back views); lower legs seen from the back (11, 12),
# hands and feet had too few real pixels and follow the mirror symmetry of their neighbours.
# The head (23, 24) is an azimuth chart: U goes face midline -> ear -> back midline
# (0.5 at the ear), V grows from the chin to the crown.
UV_AXES: dict[int, tuple[str, str]] = {
    1: ("a", "r"),
    2: ("a", "r"),
    3: ("r", "a"),
    4: ("1-r", "a"),
    5: ("1-r", "a"),
    6: ("r", "a"),
    7: ("a", "r"),
    8: ("a", "1-r"),
    9: ("1-a", "1-r"),
    10: ("1-a", "r"),
    11: ("1-a", "r"),
    12: ("1-a", "1-r"),
    13: ("a", "r"),
    14: ("a", "1-r"),
    15: ("a", "1-r"),
    16: ("a", "r"),
    17: ("a", "1-r"),
    18: ("a", "r"),
    19: ("1-a", "r"),
    20: ("1-a", "1-r"),
    21: ("a", "1-r"),
    22: ("a", "r"),
}

# The texture atlas of the DensePose texture-transfer notebook: 24 tiles in 6 rows x 4
# columns; part p (1..24) sits in column (p-1)//6, row (p-1)%6; inside a tile the row is
# (1 - V) and the column U.
ATLAS_ROWS, ATLAS_COLS = 6, 4

IUVOrder = Literal["IUV", "VUI", "auto"]


def atlas_tile(part: int) -> tuple[int, int]:
    """(row, column) of part 1..24's tile in the 6x4 texture atlas."""
    if not 1 <= part <= NUM_PARTS:
        raise ValueError(f"part must be 1..{NUM_PARTS}, got {part}")
    return (part - 1) % ATLAS_ROWS, (part - 1) // ATLAS_ROWS


def atlas_pixel(
    parts: np.ndarray, u: np.ndarray, v: np.ndarray, tile_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Atlas (row, col) pixel of each (I, U, V) sample; I must be 1..24."""
    parts = np.asarray(parts, dtype=np.int64)
    tile_row = (parts - 1) % ATLAS_ROWS
    tile_col = (parts - 1) // ATLAS_ROWS
    inner_row = np.clip(
        ((1.0 - np.asarray(v)) * (tile_size - 1)).astype(np.int64), 0, tile_size - 1
    )
    inner_col = np.clip((np.asarray(u) * (tile_size - 1)).astype(np.int64), 0, tile_size - 1)
    return tile_row * tile_size + inner_row, tile_col * tile_size + inner_col


def encode_iuv(
    parts: np.ndarray, u: np.ndarray, v: np.ndarray, order: IUVOrder = "IUV"
) -> np.ndarray:
    """(I [H, W], U, V) -> uint8 [H, W, 3]; U and V are zeroed on the background."""
    parts = np.asarray(parts)
    if parts.min(initial=0) < 0 or parts.max(initial=0) > NUM_PARTS:
        raise ValueError(f"part indices must lie in 0..{NUM_PARTS}")
    fg = parts > 0
    u8 = np.where(fg, np.clip(np.rint(np.asarray(u) * 255), 0, 255), 0).astype(np.uint8)
    v8 = np.where(fg, np.clip(np.rint(np.asarray(v) * 255), 0, 255), 0).astype(np.uint8)
    channels = (parts.astype(np.uint8), u8, v8)
    if order == "VUI":
        channels = channels[::-1]
    return np.stack(channels, axis=-1)


def decode_iuv(
    image: np.ndarray, order: IUVOrder = "IUV", *, name: str = "IUV image"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 [H, W, 3] -> (I int64, U float32, V float32), U/V in [0, 1].

    `auto` takes the order whose part channel holds only 0..24, since maps come both ways:
    ours and DeepFashion's are IUV, DensePose-RCNN's (written by OpenCV) read as VUI."""
    if image.ndim != 3 or image.shape[2] < 3:
        raise ImageError(f"{name}: an IUV image has three channels")
    if order == "auto":
        fits = [o for o, c in (("IUV", 0), ("VUI", 2)) if int(image[..., c].max()) <= NUM_PARTS]
        if len(fits) != 1:
            raise ImageError(
                f"{name}: cannot tell the channel order (part values 0..{NUM_PARTS} in "
                f"{'both end channels' if fits else 'neither end channel'}); give IUV or VUI"
            )
        order = fits[0]
    if order == "IUV":
        i, u, v = image[..., 0], image[..., 1], image[..., 2]
    elif order == "VUI":
        v, u, i = image[..., 0], image[..., 1], image[..., 2]
    else:
        raise ValueError(f"unknown IUV channel order {order!r}; valid: IUV, VUI, auto")
    if int(i.max(initial=0)) > NUM_PARTS:
        raise ImageError(
            f"{name}: part channel holds {int(i.max())} > {NUM_PARTS}; "
            f"is the channel order {'VUI' if order == 'IUV' else 'IUV'}?"
        )
    return (i.astype(np.int64), u.astype(np.float32) / 255.0, v.astype(np.float32) / 255.0)


def save_iuv(path: str | os.PathLike[str], parts: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Write an IUV PNG (R=I, G=U, B=V) atomically."""
    if not os.fspath(path).lower().endswith(".png"):
        raise ValueError(f"{path}: IUV maps must be PNG (lossless)")
    save_image(path, encode_iuv(parts, u, v))


def load_iuv(
    path: str | os.PathLike[str], order: IUVOrder = "IUV"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return decode_iuv(load_image(path), order, name=os.fspath(path))


def flip_iuv(
    parts: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """I, U, V of a horizontally mirrored image, for the SynthFashion charts (UV_AXES): left
    and right parts swap, the torso's V and the head's U reverse, limbs keep theirs (their
    charts are mirror images of each other). Real DensePose-COCO charts need DensePose's UV
    symmetry tables instead, which are not available here: do not mirror those."""
    parts = np.asarray(FLIP_PARTS, dtype=np.int64)[np.asarray(parts)]
    u, v = np.array(u, dtype=np.float32), np.array(v, dtype=np.float32)
    torso = (parts == 1) | (parts == 2)
    head = (parts == 23) | (parts == 24)
    v[torso] = 1.0 - v[torso]
    u[head] = 1.0 - u[head]
    return parts, u, v


def coarse_parts(parts: np.ndarray) -> np.ndarray:
    """Fine part map (0..24) -> coarse part map (0..14)."""
    return np.asarray(FINE_TO_COARSE, dtype=np.uint8)[np.asarray(parts)]
