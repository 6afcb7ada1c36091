"""Who is rendered: body build, skin, hair and the garment set of one synthetic person.

An identity is drawn once from its own seed and then rendered in many poses; swapping a
garment between two identities (`Identity.wearing`) gives the ground truth for attribute
transfer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth.config import SynthConfig
from synth.textures import (
    HAIR_COLOURS,
    SHOE_COLOURS,
    SKIN_TONES,
    Texture,
    jitter_colour,
    make_decal,
    make_texture,
    pick_colour,
)

UPPER_KINDS = ("tee", "long_sleeve", "tank", "dress", "coat")
# Upper garments that go on below the hips, drawn there like a skirt (and labelled upper
# clothes, as LIP's dress and coat): a dress instead of a lower garment, a coat over one.
LONG_UPPERS = ("dress", "coat")
LOWER_KINDS = ("trousers", "shorts", "skirt")

# DeepFashion category names for file names, by the garment that defines the look.
_CATEGORY = {
    ("WOMEN", "dress"): "Dresses",
    ("WOMEN", "skirt"): "Skirts",
    ("WOMEN", "shorts"): "Shorts",
    ("WOMEN", "tee"): "Tees_Tanks",
    ("WOMEN", "tank"): "Tees_Tanks",
    ("WOMEN", "long_sleeve"): "Blouses_Shirts",
    ("WOMEN", "coat"): "Jackets_Coats",
    ("MEN", "coat"): "Jackets_Vests",
    ("MEN", "shorts"): "Shorts",
    ("MEN", "skirt"): "Shorts",  # a kilt, off by default: DeepFashion's men have no Skirts
    ("MEN", "tee"): "Tees_Tanks",
    ("MEN", "tank"): "Tees_Tanks",
    ("MEN", "long_sleeve"): "Shirts_Polos",
    ("MEN", "trousers"): "Pants",
    ("WOMEN", "trousers"): "Pants",
}


@dataclass
class Garment:
    """One garment: its kind, texture and the shape parameters its kind uses."""

    kind: str
    texture: Texture
    sleeve: float = 0.0  # upper: sleeve end along the arm (0 none, 1 elbow, 2 wrist)
    hem: float = 1.0  # upper: hem along the torso (0 neck .. 1 hips); lower, and the part
    # of a dress or coat below the waist: length as a fraction of hip to ankle
    neckline: float = 0.08  # upper: depth of the neck opening from the torso top, in L
    v_neck: bool = False
    flare: float = 0.0  # skirt, dress and coat: widening at the hem
    decal: np.ndarray | None = None  # upper: chest print RGBA
    tucked: bool = False
    sleeve_texture: Texture | None = None  # upper: sleeves of another fabric (layered)

    def describe(self) -> dict[str, Any]:
        d = {
            "kind": self.kind,
            "pattern": self.texture.pattern,
            "colour": [round(float(c), 3) for c in self.texture.tile.mean(axis=(0, 1))],
        }
        if self.kind in UPPER_KINDS:
            d.update(
                sleeve=round(self.sleeve, 3),
                hem=round(self.hem, 3),
                chest_print=self.decal is not None,
            )
            if self.sleeve_texture is not None:
                d["sleeve_pattern"] = self.sleeve_texture.pattern
        else:
            d.update(length=round(self.hem, 3))
        if self.flare:
            d["flare"] = round(self.flare, 3)
        return d


@dataclass
class Identity:
    index: int
    split: str
    gender: str  # "MEN" or "WOMEN"
    skin: np.ndarray
    hair_colour: np.ndarray
    hair_style: str  # long, short, bun, bob, bald
    hair_length: float  # long hair: below the chin, in L
    width: float
    shoulders: float
    hips: float
    head_scale: float
    upper: Garment
    lower: Garment | None  # None when the upper garment is a dress
    shoes: np.ndarray

    @property
    def category(self) -> str:
        if self.upper.kind == "dress":
            return "Dresses"
        featured = (
            self.lower.kind
            if self.lower and self.lower.kind in ("shorts", "skirt")
            else self.upper.kind
        )
        return _CATEGORY[(self.gender, featured)]

    @property
    def item_id(self) -> str:
        """8 digits, as the DeepFashion item ids."""
        return f"{self.index:08d}"

    def wearing(self, component: str, donor: Identity) -> Identity:
        """This person in `donor`'s upper or lower garment (everything else unchanged)."""
        if component == "upper":
            if (self.upper.kind == "dress") != (donor.upper.kind == "dress"):
                raise ValueError("a dress can only be swapped for a dress")
            return dataclasses.replace(self, upper=donor.upper)
        if component == "lower":
            if self.lower is None or donor.lower is None:
                raise ValueError("both people need a lower garment to swap it")
            return dataclasses.replace(self, lower=donor.lower)
        raise ValueError(f"unknown component {component!r}; valid: upper, lower")

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "split": self.split,
            "gender": self.gender,
            "category": self.category,
            "item": self.item_id,
            "skin": [round(float(c), 3) for c in self.skin],
            "hair": {
                "style": self.hair_style,
                "colour": [round(float(c), 3) for c in self.hair_colour],
            },
            "build": {
                "width": round(self.width, 3),
                "shoulders": round(self.shoulders, 3),
                "hips": round(self.hips, 3),
            },
            "upper": self.upper.describe(),
            "lower": self.lower.describe() if self.lower else None,
            "shoes": [round(float(c), 3) for c in self.shoes],
        }


def _choose(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], dtype=np.float64)
    if p.sum() <= 0:
        raise ValueError(f"weights {weights} must have a positive sum")
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _texture(
    rng: np.random.Generator,
    cfg: SynthConfig,
    patterns: dict[str, float],
) -> Texture:
    g = cfg.garments
    return make_texture(
        rng,
        _choose(rng, patterns),
        tile_size=g.tile_size,
        period=float(rng.uniform(*g.tile_period_range)),
        fold_strength_range=g.fold_strength_range,
    )


def sample_identity(index: int, split: str, rng: np.random.Generator, cfg: SynthConfig) -> Identity:
    b, g, h = cfg.body, cfg.garments, cfg.hair
    women = rng.random() < b.women_probability
    gender = "WOMEN" if women else "MEN"
    upper_kind = _choose(rng, g.upper_women if women else g.upper_men)
    texture = _texture(rng, cfg, g.patterns)
    # Every kind's sleeve is drawn, whichever is worn, in this order: the random stream (and
    # so every dataset rendered before the coat was added) stays the same. A coat's are long.
    sleeves = {
        "tee": rng.uniform(0.35, 0.8),
        "long_sleeve": rng.uniform(1.85, 2.0),
        "tank": 0.0,
        "dress": float(rng.choice([0.0, 0.45, 1.9])),
    }
    upper = Garment(
        kind=upper_kind,
        texture=texture,
        sleeve=sleeves["long_sleeve" if upper_kind == "coat" else upper_kind],
        hem=float(rng.uniform(0.92, 1.12)),
        neckline=float(rng.uniform(0.05, 0.14)),
        v_neck=bool(rng.random() < 0.3),
        decal=make_decal(rng)
        if (upper_kind != "dress" and rng.random() < g.chest_print_probability)
        else None,
        tucked=bool(rng.random() < g.tucked_probability),
    )
    lower = None
    if upper_kind == "dress":
        upper.flare = float(rng.uniform(*g.skirt_flare_range))
        upper.hem = float(rng.uniform(*g.skirt_length_range))  # the skirt part's length
    elif upper_kind == "coat":
        upper.flare = float(rng.uniform(*g.coat_flare_range))
        upper.hem = float(rng.uniform(*g.coat_length_range))
    if upper_kind != "dress":
        lower_kind = _choose(rng, g.lower_women if women else g.lower_men)
        length = {
            "trousers": rng.uniform(0.9, 1.0),
            "shorts": rng.uniform(0.3, 0.6),
            "skirt": rng.uniform(*g.skirt_length_range),
        }[lower_kind]
        lower = Garment(
            kind=lower_kind,
            texture=_texture(rng, cfg, g.lower_patterns),
            hem=float(length),
            flare=float(rng.uniform(*g.skirt_flare_range))
            if lower_kind == "skirt"
            else float(rng.uniform(0.0, 0.15)),
        )
    hair_style = _choose(rng, h.styles_women if women else h.styles_men)
    identity = Identity(
        index=index,
        split=split,
        gender=gender,
        skin=jitter_colour(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 0.04),
        hair_colour=pick_colour(rng, HAIR_COLOURS, 0.05),
        hair_style=hair_style,
        hair_length=float(rng.uniform(*h.long_length_range)),
        width=float(rng.uniform(*b.width_range)),
        shoulders=float(rng.uniform(*b.shoulder_range)) * (1.06 if not women else 1.0),
        hips=float(rng.uniform(*b.hip_range)) * (1.06 if women else 1.0),
        head_scale=float(rng.uniform(*b.head_scale_range)),
        upper=upper,
        lower=lower,
        shoes=pick_colour(rng, SHOE_COLOURS, 0.05),
    )
    # Drawn last and only where layering is on: every set rendered without it stays the same,
    # and with it only the sleeves change.
    if g.layered_probability > 0 and upper.sleeve > 0 and rng.random() < g.layered_probability:
        upper.sleeve_texture = _texture(rng, cfg, g.patterns)
    return identity
