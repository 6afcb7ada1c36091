"""What a card's person stands on: a plain colour, the source photo's scene, or, by default,
the source's own wall where it is a plain one and a studio grey where it is not.

The generator's own background is the source photo's with the person cut out and the hole
filled: on a street a smear, and on a studio photo a clean wall only as far as the cut
follows the person. Hair the parse leaves out, or a shoulder, is smeared into the fill as
a faint ghost of the source standing behind the new pose, which on a plain wall shows
most. So `auto` (the default) looks at the source's background around the person, and
where it is one colour (a studio wall, a sheet of snow) stands the person on that colour
through the generator's matte, as `--backdrop COLOUR` does; on anything busier, on the
catalogue's light grey (`WallRule.otherwise`): a product card on a smeared street is no
product card, and a real-world pose model reads the person on the grey better
(docs/product.md). `photo` keeps the photo's scene whatever it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from common.colour import NAMED, Colour, parse_colour

AUTO = "auto"  # the source's wall where it is plain, else `WallRule.otherwise`
PHOTO = "photo"  # the source photo's scene, the person cut out and filled
Backdrop = Colour | str  # a colour (RGB 0-255), AUTO or PHOTO


@dataclass(frozen=True)
class WallRule:
    """When the background around a person counts as one plain colour.

    Measured on the real photos of ../shared/data (docs/product.md, "The background"): the
    studio and snow backgrounds lie 4.5-5.2 CIE76 units from their median colour at the
    75th percentile, every street, party and sports crowd 19.7 or more.
    """

    tolerance: float = 10.0  # CIE76 distance (Lab) from the wall's median colour ...
    quantile: float = 0.75  # ... that this share of the wall's pixels keeps within
    min_share: float = 0.1  # of the crop: less background than this tells nothing
    margin: float = 0.04  # of the crop's height: pixels this near the person are not wall
    # what `auto` stands a card on where the wall is not plain (None: the photo's scene)
    otherwise: Colour | None = NAMED["studio"]

    def __post_init__(self) -> None:
        if not (0 < self.quantile <= 1 and 0 < self.min_share < 1 and self.margin >= 0):
            raise ValueError("quantile in (0, 1], min_share in (0, 1), margin >= 0")

    def is_plain(self, wall: Wall | None) -> bool:
        """Whether enough of the wall shows and it is one colour."""
        return wall is not None and wall.share >= self.min_share and wall.spread <= self.tolerance


def parse_backdrop(text: str) -> Backdrop:
    """'auto', 'photo' or a colour (`common.colour.parse_colour`); a ValueError names all."""
    value = text.strip().lower()
    if value in (AUTO, PHOTO):
        return value
    try:
        return parse_colour(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; or {AUTO} or {PHOTO}") from None


@dataclass(frozen=True)
class Wall:
    """The background around a person, as `WallRule` judges it."""

    share: float  # of the crop: wall pixels, away from the person and inside the photo
    spread: float  # CIE76 distance from the median colour that `quantile` of them keep within
    colour: Colour  # the median colour, RGB 0-255


def measure_wall(
    crop: np.ndarray, labels: np.ndarray, frame: np.ndarray | None, rule: WallRule
) -> Wall | None:
    """The wall behind the person in `crop` (uint8 RGB, parsed as `labels`, 0 = background;
    `frame` 0 where the crop is letterbox, not photo); None where no pixel is wall."""
    wall = (labels == 0).astype(np.uint8)
    if frame is not None:
        wall &= (frame > 0).astype(np.uint8)
    reach = round(rule.margin * crop.shape[0])
    if reach > 0:
        wall = cv2.erode(wall, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    seen = wall.astype(bool)
    if not seen.any():
        return None
    pixels = crop[seen]
    lab = cv2.cvtColor(pixels[None].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[0]
    spread = np.linalg.norm(lab - np.median(lab, 0), axis=1)
    r, g, b = (int(v) for v in np.median(pixels, 0).round())
    return Wall(float(seen.mean()), float(np.quantile(spread, rule.quantile)), (r, g, b))


def wall_colour(
    crop: np.ndarray,
    labels: np.ndarray,
    frame: np.ndarray | None = None,
    rule: WallRule | None = None,
) -> Colour | None:
    """The colour of the plain wall behind the person (see `measure_wall`), or None where
    the background is not one colour or too little of it shows."""
    rule = rule or WallRule()
    wall = measure_wall(crop, labels, frame, rule)
    return wall.colour if rule.is_plain(wall) else None
