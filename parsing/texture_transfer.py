"""Texture transfer, the DensePose way to try clothes on.

From the garment photo's IUV, every visible body-surface pixel is written into a 24-part UV
texture atlas (the 6 x 4 tile layout of DensePose's texture-transfer notebook); empty texels
of a tile take the colour of the nearest filled one. The atlas is then rendered onto the
shopper's IUV and composited over the shopper, on the chosen body parts only.

    python -m parsing.texture_transfer --garment g.jpg --person p.jpg --out out.png \\
        --checkpoint runs/densepose/00000-x          # IUV from our DensePose model
    python -m parsing.texture_transfer --garment g.jpg --garment-iuv g_iuv.png \\
        --person p.jpg --person-iuv p_iuv.png --out out.png   # IUV maps given

It moves the surface's colour, not the garment's shape: a long sleeve onto a bare arm
works, a skirt onto trousers does not (that is what the generator is for).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

from common.checkpoint import CheckpointError
from common.geometry import Box, parse_box, person_crop
from common.image_io import ImageError, load_image, save_image
from parsing.densepose import ATLAS_COLS, ATLAS_ROWS, NUM_PARTS, atlas_pixel, load_iuv

PART_SETS: dict[str, tuple[int, ...]] = {
    "upper": (1, 2, 15, 16, 17, 18, 19, 20, 21, 22),  # torso and arms
    "lower": (7, 8, 9, 10, 11, 12, 13, 14),  # legs
    "all": tuple(p for p in range(1, NUM_PARTS + 1) if p not in (23, 24)),  # not the head
}


def texture_atlas(
    image: np.ndarray, parts: np.ndarray, u: np.ndarray, v: np.ndarray, tile: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Atlas [6*tile, 4*tile, 3] (uint8) and, per part, whether any texel was seen [25].

    Texels seen several times take the mean colour; holes in a seen part's tile take the
    nearest seen texel of that tile."""
    h, w = ATLAS_ROWS * tile, ATLAS_COLS * tile
    total = np.zeros((h * w, 3), np.float64)
    count = np.zeros(h * w, np.float64)
    fg = parts > 0
    rows, cols = atlas_pixel(parts[fg], u[fg], v[fg], tile)
    flat = rows * w + cols
    np.add.at(total, flat, image[fg].astype(np.float64))
    np.add.at(count, flat, 1.0)
    seen = (count > 0).reshape(h, w)
    atlas = (total / np.maximum(count, 1)[:, None]).reshape(h, w, 3)
    present = np.zeros(NUM_PARTS + 1, bool)
    for part in range(1, NUM_PARTS + 1):
        r0, c0 = ((part - 1) % ATLAS_ROWS) * tile, ((part - 1) // ATLAS_ROWS) * tile
        block, known = atlas[r0 : r0 + tile, c0 : c0 + tile], seen[r0 : r0 + tile, c0 : c0 + tile]
        if not known.any():
            continue
        present[part] = True
        _, (ri, ci) = distance_transform_edt(~known, return_indices=True)
        atlas[r0 : r0 + tile, c0 : c0 + tile] = block[ri, ci]
    return np.clip(np.rint(atlas), 0, 255).astype(np.uint8), present


def render_atlas(
    atlas: np.ndarray,
    parts: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
) -> np.ndarray:
    """Colour [H, W, 3] of each foreground pixel of an IUV map, read from the atlas."""
    tile = atlas.shape[0] // ATLAS_ROWS
    out = np.zeros((*parts.shape, 3), np.uint8)
    fg = parts > 0
    rows, cols = atlas_pixel(parts[fg], u[fg], v[fg], tile)
    out[fg] = atlas[rows, cols]
    return out


def transfer(
    garment: np.ndarray,
    garment_iuv: tuple[np.ndarray, np.ndarray, np.ndarray],
    person: np.ndarray,
    person_iuv: tuple[np.ndarray, np.ndarray, np.ndarray],
    parts: tuple[int, ...] = PART_SETS["upper"],
    tile: int = 200,
    feather: float = 1.0,
) -> np.ndarray:
    """The person with the garment photo's surface colours on `parts` (where the garment
    photo shows them), composited with a slightly feathered edge."""
    atlas, present = texture_atlas(garment, *garment_iuv, tile=tile)
    rendered = render_atlas(atlas, *person_iuv)
    target = np.isin(person_iuv[0], [p for p in parts if present[p]])
    alpha = target.astype(np.float32)
    if feather > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=feather) * target
    out = person.astype(np.float32) * (1 - alpha[..., None]) + rendered * alpha[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _iuv(photo: np.ndarray, iuv_path: Path | None, order: str, predictor, box: Box | None):
    if iuv_path is not None:
        parts, u, v = load_iuv(iuv_path, order)
        if parts.shape != photo.shape[:2]:
            raise ImageError(
                f"{iuv_path}: IUV map is {parts.shape[1]}x{parts.shape[0]}, the "
                f"photo {photo.shape[1]}x{photo.shape[0]}"
            )
        return parts, u, v
    result = predictor.predict(photo, person_crop(box, photo.shape) if box else None)
    return result.parts, result.u, result.v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Put a garment photo's texture on a person (DensePose texture transfer)."
    )
    p.add_argument("--garment", type=Path, required=True)
    p.add_argument("--person", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, help="a DensePose checkpoint or run")
    p.add_argument("--garment-iuv", type=Path)
    p.add_argument("--person-iuv", type=Path)
    p.add_argument(
        "--iuv-order",
        choices=("auto", "IUV", "VUI"),
        default="auto",
        help="channel order of given IUV maps (VUI: DensePose-RCNN output; auto: each map's "
        "own, from where its part values lie)",
    )
    for who in ("garment", "person"):
        p.add_argument(
            f"--{who}-box",
            type=parse_box,
            help=f"the {who}'s box x,y,w,h in a wider photo (for the predicted IUV)",
        )
    p.add_argument("--parts", choices=sorted(PART_SETS), default="upper")
    p.add_argument("--atlas", type=Path, help="also write the garment's texture atlas")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        garment, person = load_image(args.garment), load_image(args.person)
        predictor = None
        if args.garment_iuv is None or args.person_iuv is None:
            if args.checkpoint is None:
                raise CheckpointError("give --checkpoint (a DensePose model) or both IUV maps")
            from parsing.predict import DensePredictor

            predictor = DensePredictor.from_checkpoints([args.checkpoint], device=args.device)
            if "densepose" not in predictor.heads:
                raise CheckpointError(f"{args.checkpoint}: has no DensePose head")
        garment_iuv = _iuv(garment, args.garment_iuv, args.iuv_order, predictor, args.garment_box)
        person_iuv = _iuv(person, args.person_iuv, args.iuv_order, predictor, args.person_box)
    except (ImageError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.atlas:
        save_image(args.atlas, texture_atlas(garment, *garment_iuv)[0])
    save_image(args.out, transfer(garment, garment_iuv, person, person_iuv, PART_SETS[args.parts]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
