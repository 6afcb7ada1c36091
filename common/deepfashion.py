"""DeepFashion In-shop file naming, shared by the readers, SynthFashion and data preparation.

The raw download stores `img/<GENDER>/<Category>/id_<8 digits>/<NN>_<view no>_<view>.jpg`;
the pose-transfer papers flatten that to `fashion<GENDER><Category>id<8 digits><NN>_<view
no><view>.jpg` (e.g. `fashionWOMENTees_Tanksid0000508545_1front.jpg`). ADGAN keeps its
semantic maps in the raw tree's shape under `semantic_merge3/` (its `split_name`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FLAT = re.compile(
    r"^fashion(?P<gender>MEN|WOMEN)(?P<category>[A-Za-z_]+?)id(?P<item>\d{8})(?P<outfit>\d{2})"
    r"_(?P<view_no>\d+)(?P<view>[a-z]+)\.(?P<ext>jpg|jpeg|png)$"
)
_RAW = re.compile(
    r"^(?:.*/)?(?P<gender>MEN|WOMEN)/(?P<category>[A-Za-z_]+)/id_(?P<item>\d{8})/"
    r"(?P<outfit>\d{2})_(?P<view_no>\d+)_(?P<view>[a-z]+)\.(?P<ext>jpg|jpeg|png)$"
)

VIEWS = ("front", "side", "back", "full", "additional", "flat")


@dataclass(frozen=True)
class FashionName:
    """The parts of one DeepFashion In-shop image name."""

    gender: str  # "MEN" or "WOMEN"
    category: str  # e.g. "Tees_Tanks"
    item: str  # 8-digit product id: one person wearing one product
    outfit: str  # 2-digit image group of that item
    view_no: int
    view: str  # front, side, back, full, additional, flat
    ext: str = "jpg"

    @property
    def flat(self) -> str:
        """The pose-transfer file name."""
        return (
            f"fashion{self.gender}{self.category}id{self.item}{self.outfit}"
            f"_{self.view_no}{self.view}.{self.ext}"
        )

    @property
    def raw(self) -> str:
        """The path inside the raw In-shop `img/` folder."""
        return (
            f"{self.gender}/{self.category}/id_{self.item}/"
            f"{self.outfit}_{self.view_no}_{self.view}.{self.ext}"
        )

    @property
    def identity(self) -> str:
        """Images sharing this key show the same person in the same clothes."""
        return f"{self.gender}{self.category}id{self.item}{self.outfit}"

    def semantic_path(self, folder: str = "semantic_merge3") -> str:
        """Where ADGAN reads this image's 8-class `.npy` map (its `split_name`)."""
        return f"{folder}/{self.raw.rsplit('.', 1)[0]}.npy"


def parse_flat(name: str) -> FashionName:
    match = _FLAT.match(name)
    if not match:
        raise ValueError(
            f"{name!r} is not a DeepFashion pose-transfer name like "
            f"'fashionWOMENTees_Tanksid0000508545_1front.jpg'"
        )
    return _from_match(match)


def parse_raw(path: str) -> FashionName:
    match = _RAW.match(path.replace("\\", "/"))
    if not match:
        raise ValueError(
            f"{path!r} is not a raw In-shop path like 'WOMEN/Tees_Tanks/id_00005085/45_1_front.jpg'"
        )
    return _from_match(match)


def _from_match(match: re.Match[str]) -> FashionName:
    g = match.groupdict()
    return FashionName(
        gender=g["gender"],
        category=g["category"],
        item=g["item"],
        outfit=g["outfit"],
        view_no=int(g["view_no"]),
        view=g["view"],
        ext=g["ext"],
    )
