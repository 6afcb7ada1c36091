"""Label sets and the merge tables between them, in one place, as data.

The generator works on ADGAN's 8 classes in ADGAN's own order (the order of its
`semantic_merge3` maps, given by the ADGAN author in menyifang/ADGAN issue #10):

    0 background, 1 pants, 2 hair, 3 skirt, 4 face, 5 upper clothes, 6 arms, 7 legs

Parsers and datasets speak other label sets; each has a lookup table into these 8 classes.

A note on LIP/CIHP id 10: it is "Jumpsuits" in LIP but "Torso-skin" in CIHP (in the real
CIHP labels it marks the bare neck). ADGAN's merge sends it to face, which is right for the
CIHP meaning; we keep the author's table so that maps match the published checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from common.image_io import check_label_values

if TYPE_CHECKING:
    import torch

ADGAN_CLASSES: tuple[str, ...] = (
    "background",
    "pants",
    "hair",
    "skirt",
    "face",
    "upper_clothes",
    "arms",
    "legs",
)
NUM_ADGAN_CLASSES = len(ADGAN_CLASSES)
ADGAN_INDEX = {name: i for i, name in enumerate(ADGAN_CLASSES)}


def class_map(scores: torch.Tensor) -> torch.Tensor:
    """Class scores [B, K, ...] -> labels [B, ...]: the index of the largest, the first one
    on ties (as `argmax(1)`). Why not `argmax(1)`: on a CPU torch's argmax over a dimension
    that is not the innermost is 5-8x slower than `max(1)` (torch 2.14, 2 cores: 6.7 ms
    against 0.9 ms for [2, 8, 192, 132], the parser's batch of two crops)."""
    return scores.max(1).indices


LIP_CLASSES: tuple[str, ...] = (
    "background",
    "hat",
    "hair",
    "glove",
    "sunglasses",
    "upper_clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "jumpsuits",
    "scarf",
    "skirt",
    "face",
    "left_arm",
    "right_arm",
    "left_leg",
    "right_leg",
    "left_shoe",
    "right_shoe",
)
CIHP_CLASSES: tuple[str, ...] = (*LIP_CLASSES[:10], "torso_skin", *LIP_CLASSES[11:])

ATR_CLASSES: tuple[str, ...] = (
    "background",
    "hat",
    "hair",
    "sunglasses",
    "upper_clothes",
    "skirt",
    "pants",
    "dress",
    "belt",
    "left_shoe",
    "right_shoe",
    "face",
    "left_leg",
    "right_leg",
    "left_arm",
    "right_arm",
    "bag",
    "scarf",
)

# The merged 19-class CelebAMask-HQ label map (0 = background, then its 18 attribute files).
CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "nose",
    "eye_g",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "l_ear",
    "r_ear",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "hat",
    "ear_r",
    "neck_l",
    "neck",
    "cloth",
)
CELEBAMASK_ATTRIBUTES = CELEBAMASK_CLASSES[1:]

# Lookup tables: entry i is the ADGAN class of source label i.
LIP_TO_ADGAN: tuple[int, ...] = (0, 2, 2, 6, 4, 5, 5, 5, 7, 1, 4, 5, 3, 4, 6, 6, 7, 7, 7, 7)
CIHP_TO_ADGAN = LIP_TO_ADGAN
# ATR: belt joins pants (it sits on the waistband), a bag is not the person.
ATR_TO_ADGAN: tuple[int, ...] = (0, 2, 2, 4, 5, 3, 1, 5, 1, 7, 7, 4, 7, 7, 6, 6, 0, 5)
# CelebAMask-HQ: all facial parts, ears, earrings, necklace and neck are face; hat is hair.
CELEBAMASK_TO_ADGAN: tuple[int, ...] = (0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 4, 4, 4, 5)

# Two-class tasks: CelebAMask-HQ hair (and hat) vs the rest; ADGAN person vs background.
CELEBAMASK_TO_HAIR: tuple[int, ...] = tuple(
    int(c in ("hair", "hat"))
    for c in (
        "background",
        "skin",
        "nose",
        "eye_g",
        "l_eye",
        "r_eye",
        "l_brow",
        "r_brow",
        "l_ear",
        "r_ear",
        "mouth",
        "u_lip",
        "l_lip",
        "hair",
        "hat",
        "ear_r",
        "neck_l",
        "neck",
        "cloth",
    )
)
ADGAN_TO_PERSON: tuple[int, ...] = (0, 1, 1, 1, 1, 1, 1, 1)

MERGE_TABLES: dict[str, tuple[int, ...]] = {
    "lip": LIP_TO_ADGAN,
    "cihp": CIHP_TO_ADGAN,
    "atr": ATR_TO_ADGAN,
    "celebamask": CELEBAMASK_TO_ADGAN,
    "celebamask_hair": CELEBAMASK_TO_HAIR,
    "adgan_person": ADGAN_TO_PERSON,
}

# Colours (RGB). The LIP palette is the one the LIP/CIHP tools draw with; ADGAN classes
# borrow the LIP colour of their main source label so overlays read the same.
LIP_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (128, 0, 0),
    (255, 0, 0),
    (0, 85, 0),
    (170, 0, 51),
    (255, 85, 0),
    (0, 0, 85),
    (0, 119, 221),
    (85, 85, 0),
    (0, 85, 85),
    (85, 51, 0),
    (52, 86, 128),
    (0, 128, 0),
    (0, 0, 255),
    (51, 170, 221),
    (0, 255, 255),
    (85, 255, 170),
    (170, 255, 85),
    (255, 255, 0),
    (255, 170, 0),
)
ADGAN_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (0, 85, 85),
    (255, 0, 0),
    (0, 128, 0),
    (0, 0, 255),
    (255, 85, 0),
    (51, 170, 221),
    (170, 255, 85),
)
ATR_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (128, 0, 0),
    (255, 0, 0),
    (170, 0, 51),
    (255, 85, 0),
    (0, 128, 0),
    (0, 85, 85),
    (0, 0, 85),
    (85, 85, 0),
    (255, 255, 0),
    (255, 170, 0),
    (0, 0, 255),
    (85, 255, 170),
    (170, 255, 85),
    (51, 170, 221),
    (0, 255, 255),
    (128, 64, 0),
    (52, 86, 128),
)
CELEBAMASK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (204, 0, 0),
    (76, 153, 0),
    (204, 204, 0),
    (51, 51, 255),
    (204, 0, 204),
    (0, 255, 255),
    (255, 204, 204),
    (102, 51, 0),
    (255, 0, 0),
    (102, 204, 0),
    (255, 255, 0),
    (0, 0, 153),
    (0, 0, 204),
    (255, 51, 153),
    (0, 204, 204),
    (0, 51, 0),
    (255, 153, 51),
    (0, 204, 0),
)


@dataclass(frozen=True)
class LabelSet:
    """A named list of classes with its overlay colours."""

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


LABEL_SETS: dict[str, LabelSet] = {
    s.name: s
    for s in (
        LabelSet("adgan8", ADGAN_CLASSES, ADGAN_PALETTE),
        LabelSet("lip20", LIP_CLASSES, LIP_PALETTE),
        LabelSet("cihp20", CIHP_CLASSES, LIP_PALETTE),
        LabelSet("atr18", ATR_CLASSES, ATR_PALETTE),
        LabelSet("celebamask19", CELEBAMASK_CLASSES, CELEBAMASK_PALETTE),
        LabelSet("hair2", ("background", "hair"), ((0, 0, 0), (255, 0, 0))),
        LabelSet("person2", ("background", "person"), ((0, 0, 0), (255, 255, 255))),
    )
}


def flip_table(classes: tuple[str, ...]) -> tuple[int, ...]:
    """For a mirrored label map: class i becomes FLIP[i] (left_x <-> right_x, l_x <-> r_x)."""
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for name in classes:
        for a, b in (("left_", "right_"), ("right_", "left_"), ("l_", "r_"), ("r_", "l_")):
            if name.startswith(a) and b + name[len(a) :] in index:
                out.append(index[b + name[len(a) :]])
                break
        else:
            out.append(index[name])
    return tuple(out)


def label_set(name: str) -> LabelSet:
    if name not in LABEL_SETS:
        raise KeyError(f"unknown label set {name!r}; valid: {', '.join(sorted(LABEL_SETS))}")
    return LABEL_SETS[name]


def merge_table(name: str) -> tuple[int, ...]:
    if name not in MERGE_TABLES:
        raise KeyError(f"unknown merge table {name!r}; valid: {', '.join(sorted(MERGE_TABLES))}")
    return MERGE_TABLES[name]


def merge_labels(
    labels: np.ndarray, table: str | tuple[int, ...], *, name: str = "label map"
) -> np.ndarray:
    """Map source label ids to ADGAN classes (uint8); out-of-range ids are an error."""
    lut = np.asarray(merge_table(table) if isinstance(table, str) else table, dtype=np.uint8)
    labels = np.asarray(labels)
    check_label_values(labels, len(lut), name=name)
    return lut[labels]


def colorize(
    labels: np.ndarray,
    palette: tuple[tuple[int, int, int], ...] = ADGAN_PALETTE,
) -> np.ndarray:
    """Label map [H, W] -> uint8 RGB [H, W, 3]."""
    colours = np.asarray(palette, dtype=np.uint8)
    labels = np.asarray(labels)
    check_label_values(labels, len(colours), name="label map")
    return colours[labels]


def overlay(
    image: np.ndarray,
    labels: np.ndarray,
    palette: tuple[tuple[int, int, int], ...] = ADGAN_PALETTE,
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend the coloured label map over a uint8 RGB image; background stays untouched."""
    colour = colorize(labels, palette).astype(np.float32)
    out = image.astype(np.float32)
    fg = (np.asarray(labels) > 0)[..., None]
    out = np.where(fg, (1 - alpha) * out + alpha * colour, out)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# Component names a user may swap: the 8 classes, and garment words for groups of them.
COMPONENT_ALIASES: dict[str, tuple[int, ...]] = {
    "upper": (ADGAN_INDEX["upper_clothes"],),
    "top": (ADGAN_INDEX["upper_clothes"],),
    "lower": (ADGAN_INDEX["pants"], ADGAN_INDEX["skirt"]),
    "bottom": (ADGAN_INDEX["pants"], ADGAN_INDEX["skirt"]),
}


def component_classes(name: str) -> tuple[int, ...]:
    """The ADGAN classes a component name stands for; unknown names list the valid ones."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ADGAN_INDEX:
        return (ADGAN_INDEX[key],)
    if key in COMPONENT_ALIASES:
        return COMPONENT_ALIASES[key]
    valid = ", ".join([*ADGAN_CLASSES, *COMPONENT_ALIASES])
    raise ValueError(f"unknown component {name!r}; valid: {valid}")


def canonical_component(name: str) -> str:
    """One spelling per component (upper, top -> upper_clothes; bottom -> lower), so that
    two names of one component are seen to be one; unknown names list the valid ones."""
    classes = component_classes(name)
    if len(classes) == 1:
        return ADGAN_CLASSES[classes[0]]
    return next(alias for alias, same in COMPONENT_ALIASES.items() if same == classes)
