"""Parsing and DensePose of a photo: `DensePredictor` and `python -m parsing.predict`.

    python -m parsing.predict photo.jpg --checkpoint runs/parsing/00000-x \\
        [--checkpoint runs/densepose/00000-y] --out parse.png --iuv iuv.png --overlay o.png \\
        [--box x,y,w,h]

The photo, or the person box grown by the product's margin, is letterboxed to the model's
aspect; results come back at the photo's resolution. The networks see one person filling
the crop, as in DeepFashion: give `--box` for a person in a wider photo. `parse.png` is a
palette PNG (pixel values are class ids, the palette shows them); `iuv.png` stores R=I,
G=U*255, B=V*255. A checkpoint may hold a parsing head, a DensePose head or both; with two
checkpoints each contributes its heads.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from common.checkpoint import DEMO_BUNDLE, CheckpointError, stored_module_name
from common.folding import fold_batchnorm
from common.geometry import (
    Box,
    apply_to_points,
    box_to_input,
    invert,
    parse_box,
    person_crop,
    warp,
    warp_labels,
)
from common.image_io import ImageError, load_image, save_image, write_label_png
from keypoints.estimators import builtin_backend
from parsing.densepose import save_iuv
from parsing.guides import guide_maps
from parsing.labels import class_map, label_set, overlay
from parsing.model import Parser, parser_from_checkpoint, predicted_iuv
from parsing.neighbours import drop_other_heads, on_the_body
from parsing.skin import forbid_unlike_skin, unlike_skin

LETTERBOX_FILL = (255, 255, 255)  # a parser's own `letterbox_fill` (SCHP: black) wins
MASK_THRESHOLD = 0.5  # a given person mask at or above this is the person
FACE_THRESHOLD = 0.5  # a given face outline at or above this is face
HAND_THRESHOLD = 0.5  # a given hands' outline at or above this is arms, and the person
SKIN_THRESHOLD = 3.0  # standard deviations from the face's chromaticity bare skin may lie
SKIN_CLASSES = ("arms", "legs")  # ADGAN's bare-skin classes (sleeves are upper clothes)
HEAD_SLACK = 0.03  # a head point this close (share of the crop's height) to a head region owns it
HEAD_CLASSES = ("hair", "face")
BODY_REACH = 0.01  # mask regions this near the skeleton (share of the crop's height) are the body


class Guide(NamedTuple):
    """What a real-world model says about the person, in the photo's pixels (None: unknown)."""

    keypoints: np.ndarray | None  # [18, 2]
    mask: np.ndarray | None  # [H, W] the person's probability
    face: np.ndarray | None = None  # [H, W] 1 inside the face's outline (`keypoints.face`)
    hands: np.ndarray | None = None  # [H, W] 1 inside the hands' outline (`hand_outlines`)


@dataclass
class DenseResult:
    labels: np.ndarray | None  # [H, W] class ids at the photo's resolution
    parts: np.ndarray | None  # [H, W] DensePose I
    u: np.ndarray | None
    v: np.ndarray | None


def _union(
    mask: np.ndarray | None, hands: np.ndarray | None, threshold: float
) -> np.ndarray | None:
    """The person mask with the hands' outline added (where a mask is given)."""
    if mask is None or hands is None:
        return mask
    return np.where(hands >= threshold, 1.0, mask).astype(np.float32)


def _certain(
    model: Parser,
    probs: torch.Tensor,
    outlines: list[np.ndarray | None],
    threshold: float | None,
    name: str,
) -> torch.Tensor:
    """probs [B, K, H, W] with class `name` certain wherever each crop's outline (if any)
    reaches `threshold`; unchanged where the rule is off or the label set lacks the class."""
    classes = label_set(model.config.label_set).classes
    if threshold is None or name not in classes:
        return probs
    out = probs
    for i, outline in enumerate(outlines):
        if outline is None or not (outline >= threshold).any():
            continue
        if out is probs:
            out = probs.clone()
        inside = torch.from_numpy(outline >= threshold).to(probs.device)
        out[i][:, inside] = 0.0
        out[i, classes.index(name)][inside] = 1.0
    return out


def _where_skin(
    outlines: list[np.ndarray | None], unlike: list[np.ndarray | None]
) -> list[np.ndarray | None]:
    """Each crop's hand outlines where the colour may be skin (`unlike`: where it cannot,
    None where no face tells): an outline reaches past the fingers into the trousers a hand
    rests on, which stay trousers, and the room between fingers held away from the body,
    which stays background."""
    return [
        h if h is None or u is None else np.where(u, 0.0, h).astype(h.dtype)
        for h, u in zip(outlines, unlike, strict=True)
    ]


def _back(values: np.ndarray, inverse: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Crop-space map -> photo-space map, nearest neighbour, zero outside the crop."""
    return warp(values, inverse, shape, 0, nearest=True)


class DensePredictor:
    def __init__(
        self,
        models: list[Parser],
        *,
        device: str | torch.device = "cpu",
        flip_test: bool = True,
        mask_threshold: float | None = MASK_THRESHOLD,
        face_threshold: float | None = FACE_THRESHOLD,
        skin_threshold: float | None = SKIN_THRESHOLD,
        hand_threshold: float | None = HAND_THRESHOLD,
        head_slack: float | None = HEAD_SLACK,
        body_reach: float | None = BODY_REACH,
    ) -> None:
        """mask_threshold: where a guide gives the person mask (BlazePose's, learnt on real
        photos), the mask decides person from background, both ways: background outside it,
        and inside it the most likely person class (a parser that learnt on synthetic people
        calls real clothes background). face_threshold: where a guide gives the face's outline
        (a face model learnt on real faces), the pixels inside it are face (the parser paints
        hair over real faces). skin_threshold: arms and legs only where the colour is within
        this many standard deviations of the face's (`parsing.skin`), after the face rule.
        hand_threshold: where a guide outlines the hands (from a pose model's hand points),
        the pixels inside are arms (as LIP counts hands and gloves), and the person even
        outside the mask, after the skin rule. head_slack: where a guide gives the
        keypoints, hair and face regions that hold none of the person's head points (within
        this share of the crop's height) are a neighbour's, and background
        (`parsing.neighbours`). body_reach: where a guide gives keypoints and mask, the
        mask's regions that come no nearer than this share of the crop's height to the
        person's skeleton are not the person (`parsing.neighbours.on_the_body`: a tablet
        before a child hidden by a table). None: the parser alone decides."""
        if not models:
            raise ValueError("need at least one model")
        # The models are made ready for inference in place: BatchNorm folded into the
        # convolutions (`common.folding`) and channels_last: ParserNet runs 1.4x faster so
        # on a CPU at batch 1, 1.1-1.3x at 16 (192x132; bench/parsing_speed.py against
        # --contiguous); SCHP as fast either way
        for m in models:
            fold_batchnorm(m.to(device).eval())
        self.models = [m.to(memory_format=torch.channels_last) for m in models]
        self.device = torch.device(device)
        self.flip_test = flip_test  # parsing averaged with the mirrored photo's
        self.mask_threshold = mask_threshold
        self.face_threshold = face_threshold
        self.skin_threshold = skin_threshold
        self.hand_threshold = hand_threshold
        self.head_slack = head_slack
        self.body_reach = body_reach

    @classmethod
    def from_checkpoints(
        cls, checkpoints: list[str | Path], *, device: str = "cpu", flip_test: bool = True
    ) -> DensePredictor:
        models = [
            parser_from_checkpoint(c, device, name=stored_module_name(c, ("model", "parser")))
            for c in checkpoints
        ]
        return cls(models, device=device, flip_test=flip_test)

    @property
    def heads(self) -> set[str]:
        return {h for m in self.models for h in m.config.heads}

    @property
    def parsing_model(self) -> Parser | None:
        return next((m for m in self.models if "parsing" in m.config.heads), None)

    @property
    def guided(self) -> bool:
        """Whether a model reads guides (`parsing.guides`): then give `guides` to predict."""
        return any(getattr(m.config, "guides", ()) for m in self.models)

    def predict(
        self, image: np.ndarray, box: Box | None = None, guide: Guide | None = None
    ) -> DenseResult:
        return self.predict_many([image], [box], None if guide is None else [guide])[0]

    @torch.no_grad()
    def predict_many(
        self,
        images: list[np.ndarray],
        boxes: list[Box | None] | None = None,
        guides: list[Guide] | None = None,
    ) -> list[DenseResult]:
        """One batch per model for all photos (the batch cards and the web page's queue).
        `guides`: per photo, what the keypoint estimator says of the person (`Guide`): the
        guided parsers read keypoints and mask, and the mask and face outline overrule any
        parser (see the thresholds)."""
        boxes = boxes or [None] * len(images)
        guides = [Guide(*g) for g in guides] if guides else [Guide(None, None)] * len(images)
        results = [DenseResult(None, None, None, None) for _ in images]
        for model in self.models:
            size = tuple(model.config.input_size)
            fill = getattr(model, "letterbox_fill", LETTERBOX_FILL)
            crops, inverses, maps, masks, faces, hands, points = [], [], [], [], [], [], []
            names = tuple(getattr(model.config, "guides", ()))
            for image, box, guide in zip(images, boxes, guides, strict=True):
                keypoints, mask, face, hand = guide
                h, w = image.shape[:2]
                m = box_to_input(box or (0.0, 0.0, float(w), float(h)), size)
                crops.append(warp(image, m, size, fill))
                inverses.append(invert(m))
                mk = None if mask is None else warp(mask.astype(np.float32), m, size, 0.0)
                faces.append(None if face is None else warp(face.astype(np.float32), m, size, 0.0))
                hands.append(None if hand is None else warp(hand.astype(np.float32), m, size, 0.0))
                kp = None if keypoints is None else apply_to_points(m, keypoints)
                if mk is not None and kp is not None and self.body_reach is not None:
                    reach = self.body_reach * size[0]
                    mk = on_the_body(mk, kp, self.mask_threshold or MASK_THRESHOLD, reach)
                masks.append(mk)
                points.append(kp)
                if names:
                    maps.append(guide_maps(names, size, kp, mk, model.config.guide_sigma))
            x = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).float() / 255
            x = x.to(self.device).contiguous(memory_format=torch.channels_last)
            g = torch.stack(maps).to(self.device) if names else None
            out = model(x, g)
            labels = parts = None
            if "parsing" in out and results[0].labels is None:
                probs = model.parsing_probabilities(
                    x, self.flip_test, logits=out["parsing"], guides=g
                )
                probs = self._face(model, probs, faces)
                unlike = self._unlike_skin(model, x, probs)
                probs = self._skin(model, x, probs, unlike)
                hands = _where_skin(hands, unlike)
                probs = self._hands(model, probs, hands)
                if self.hand_threshold is not None:  # the hands are the person, too
                    masks = [
                        _union(m, h, self.hand_threshold) for m, h in zip(masks, hands, strict=True)
                    ]
                labels = self._own_heads(model, self._labels(probs, masks), points)
            if "index" in out and results[0].parts is None:
                parts, u, v = predicted_iuv(out)
            for i, (result, image, inverse) in enumerate(
                zip(results, images, inverses, strict=True)
            ):
                shape = image.shape[:2]
                if labels is not None:
                    result.labels = warp_labels(labels[i], inverse, shape)
                if parts is not None:
                    result.parts = _back(parts[i].astype(np.uint8), inverse, shape)
                    result.u = _back(u[i].astype(np.float32), inverse, shape)
                    result.v = _back(v[i].astype(np.float32), inverse, shape)
        return results

    def _face(
        self, model: Parser, probs: torch.Tensor, faces: list[np.ndarray | None]
    ) -> torch.Tensor:
        """Certain face inside each given face outline (for label sets with a face)."""
        return _certain(model, probs, faces, self.face_threshold, "face")

    def _unlike_skin(
        self, model: Parser, images: torch.Tensor, probs: torch.Tensor
    ) -> list[np.ndarray | None]:
        """Per crop, where the colour cannot be the person's skin (`parsing.skin`; None
        where the rule is off, the label set lacks face or skin, or too little face shows)."""
        classes = label_set(model.config.label_set).classes
        if self.skin_threshold is None or not {"face", *SKIN_CLASSES} <= set(classes):
            return [None] * len(probs)
        return unlike_skin(probs, images, classes.index("face"), self.skin_threshold)

    def _skin(
        self,
        model: Parser,
        images: torch.Tensor,
        probs: torch.Tensor,
        unlike: list[np.ndarray | None],
    ) -> torch.Tensor:
        """The bare-skin classes taken away where the colour is unlike the face's (for
        label sets with a face and those classes)."""
        classes = label_set(model.config.label_set).classes
        if all(u is None for u in unlike):
            return probs
        skin = tuple(classes.index(c) for c in SKIN_CLASSES)
        face = classes.index("face")
        return forbid_unlike_skin(probs, images, face, skin, self.skin_threshold, unlike)

    def _hands(
        self, model: Parser, probs: torch.Tensor, hands: list[np.ndarray | None]
    ) -> torch.Tensor:
        """Certain arms inside each given hands' outline (for label sets with arms)."""
        return _certain(model, probs, hands, self.hand_threshold, "arms")

    def _own_heads(
        self, model: Parser, labels: np.ndarray, points: list[np.ndarray | None]
    ) -> np.ndarray:
        """A neighbour's hair and face made background, for crops with keypoints."""
        classes = label_set(model.config.label_set).classes
        if self.head_slack is None or not set(HEAD_CLASSES) <= set(classes):
            return labels
        heads = tuple(classes.index(c) for c in HEAD_CLASSES)
        slack = self.head_slack * labels.shape[1]
        for i, kp in enumerate(points):
            if kp is not None:
                labels[i] = drop_other_heads(labels[i], kp, heads, slack)
        return labels

    def _labels(self, probs: torch.Tensor, masks: list[np.ndarray | None]) -> np.ndarray:
        """uint8 [B, H, W] class ids from probabilities [B, K, H, W] (class 0 background)
        and each crop's person mask, where given (see `mask_threshold`)."""
        labels = class_map(probs).cpu().numpy().astype(np.uint8)
        if self.mask_threshold is None:
            return labels
        person = (class_map(probs[:, 1:]) + 1).cpu().numpy().astype(np.uint8)
        for i, mask in enumerate(masks):
            if mask is not None:
                labels[i] = np.where(mask >= self.mask_threshold, person[i], 0)
        return labels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Human parsing and DensePose IUV of a photo.")
    p.add_argument("photo", type=Path)
    p.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        help="a parsing and/or DensePose checkpoint, run or bundle (repeatable; default: the "
        "demo bundle's parser)",
    )
    p.add_argument("--out", type=Path, help="parsing as a palette PNG (values = class ids)")
    p.add_argument("--iuv", type=Path, help="DensePose IUV PNG (R=I, G=U, B=V)")
    p.add_argument("--overlay", type=Path, help="the parsing drawn over the photo")
    p.add_argument("--box", type=parse_box, help="the person's box x,y,w,h in pixels")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        image = load_image(args.photo)
        box = person_crop(args.box, image.shape) if args.box else None
        checkpoints = args.checkpoint or [DEMO_BUNDLE]
        predictor = DensePredictor.from_checkpoints(checkpoints, device=args.device)
        if (args.out or args.overlay) and "parsing" not in predictor.heads:
            raise CheckpointError("--out/--overlay need a checkpoint with a parsing head")
        if args.iuv and "densepose" not in predictor.heads:
            raise CheckpointError("--iuv needs a checkpoint with a DensePose head")
    except (ImageError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    guide = None
    if predictor.guided:  # what the pipeline gives it: the real-world backend's person
        blazepose = builtin_backend("blazepose")
        found = blazepose.estimator(blazepose.builtin(), args.device).predict(image, box)
        guide = Guide(found.keypoints, found.mask, found.face_mask, found.hands_mask)
    result = predictor.predict(image, box, guide)
    if result.labels is not None:
        palette = label_set(predictor.parsing_model.config.label_set).palette
        if args.out:
            write_label_png(args.out, result.labels, palette)
        if args.overlay:
            save_image(args.overlay, overlay(image, result.labels, palette))
        counts = np.bincount(result.labels.ravel(), minlength=len(palette))
        print(f"{args.photo}: person pixels {int(counts[1:].sum())} of {result.labels.size}")
    if args.iuv and result.parts is not None:
        save_iuv(args.iuv, result.parts, result.u, result.v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
