"""From photos to a generated person: what `infer.py`, the batch cards and the web page call.

    pipe = Pipeline.from_bundle("bundles/demo")
    source = pipe.person(load_image("model.jpg"), "model.jpg")    # find, crop, keypoints, parse
    pose = pipe.person(load_image("shopper.jpg"), "shopper.jpg")
    result = pipe.generate(source, pose, swaps={"upper": pipe.person(garment, "g.jpg")})

A person is found by the keypoint estimator on the whole photo (letterboxed), or, where that
shows nobody, in overlapping windows (`keypoints.search`: a small person in a wide photo);
the crop is the box around the visible keypoints, grown (head room above, a margin all
round) to the generator's aspect; keypoints and parsing are then taken again on that box,
read from the photo at the largest of the networks' resolutions (not from the generator's
smaller crop, where a small estimator can lose the person), and mapped into the generator's
frame. An estimator that can follow a person (BlazePose's `follow_many`) is given the first
look's person there instead of a box to search in, where the first look saw nobody else; a
photo that only gives a job its pose (`people`'s `parse`) gets keypoints only.

What a user can act on is said, naming the photo (`NoPersonError` and its kinds, which
`infer.py`, the cards and the service report as a bad input):

- no person found: NoPersonError;
- the person too small to read (under `min_person_height` rows in the photo, or the
  generator's height if that is less): PersonTooSmallError, with the size found, or, for
  a photo whose diagonal is shorter than that, with the photo's size before any network
  looks at it;
- a pose photo without a head or without hips (the pose map needs them), or a source
  photo without a torso (no neck or shoulders: a face close-up): IncompletePoseError from
  `generate_many` (and `check_job`), saying what is missing; a source shown only part of
  the way down (cut at the chest, the waist, the thigh) is used, and the card ends where it
  ends (`studio.framing`);
- several people: not an error; the estimator's pick is used (BlazePose: the tallest) and
  `PersonView.notes` says which one and how to choose another (crop the photo, or pass
  `box=` to `person` / `boxes=` to `people`);
- a person lying on their side or upside down (a photo whose orientation tag was lost, or a
  camera held on its side): not an error; the crop is read from the photo turned upright by
  quarter turns (the networks learnt upright people), and a note says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from adgan.generators import Appearance, concat, mix_appearance, take
from adgan.transfer import AttributeTransfer
from common.colour import Colour
from common.geometry import (
    PERSON_MARGIN,
    Box,
    apply_to_points,
    box_to_input,
    compose,
    expand_box,
    invert,
    quarter_turn,
    warp,
    warp_labels,
)
from common.hardware import Precision, keep_freed_memory
from keypoints.draw import draw_skeleton
from keypoints.estimators import KeypointEstimator
from keypoints.predict import LETTERBOX_FILL
from keypoints.search import find_people, headless_where_doubtful
from keypoints.skeleton import (
    HEAD_POINTS,
    MISSING,
    keypoint_box,
    seen_from_behind,
    turns_to_upright,
    visible,
)
from parsing.labels import ADGAN_INDEX, colorize, component_classes
from parsing.predict import DensePredictor, Guide
from studio.backdrop import AUTO, PHOTO, Backdrop, WallRule, wall_colour
from studio.bundle import load_bundle
from studio.framing import CARD_SCALES, DEFAULT_FRAMING, FRAMINGS, FramingConfig, head_cut

MIN_KEYPOINTS = 4  # fewer visible keypoints than this is not a person we can re-pose
MIN_PERSON_HEIGHT = 120  # rows of the photo a person needs (see Pipeline.min_person_height)
# a face the face model does not find, whose highest point lies within this share of the
# nose's distance to the neck of the photo's top edge, is cut off (`_face_cut_by_top_edge`)
FACE_CUT_BAND = 0.5
UPRIGHT_TOLERANCE = 30.0  # degrees from sideways or upside down a body is turned upright within
HIP_POINTS = (8, 11)
SHOULDER_POINTS = (1, 2, 5)  # the neck, or either shoulder
PANEL_HEIGHT = 256  # rows of `Pipeline.panel`, at least
# classes whose donor decides how far down the body a card shows (not hair, face or arms)
BODY_CLOTHES = {ADGAN_INDEX[c] for c in ("upper_clothes", "pants", "skirt", "legs")}
HEAD_CLASSES = {ADGAN_INDEX[c] for c in ("hair", "face")}  # a donor of these shows the head


class NoPersonError(ValueError):
    """A photo from which no usable person comes (this class itself: nobody found); the
    message names the photo and what to do."""


class BoxError(NoPersonError):
    """A person box, given to pick one of several people, that cannot be used: no area, or
    no part of it inside the photo."""


class PersonTooSmallError(NoPersonError):
    """The person found is too few pixels tall to read and re-pose."""


class IncompletePoseError(NoPersonError):
    """The pose photo's person lacks what the generator's pose needs (head, hips), or the
    source's lacks the torso the clothes are taken from."""


@dataclass
class PersonView:
    """A person as the generator sees them: the crop, its keypoints and its parsing."""

    name: str
    crop: np.ndarray  # uint8 RGB at the generator's size
    keypoints: np.ndarray  # [18, 2] in crop pixels, -1 missing
    # uint8 [H, W], the 8 ADGAN classes; None: read for its pose only (`Pipeline.people`'s
    # `parse`), which can be a job's pose but not its source or a donor
    labels: np.ndarray | None
    box: Box  # where the crop lies in the photo
    person_score: float
    notes: list[str] = field(default_factory=list)  # what the user should be told (several people)
    others: list[Box] = field(default_factory=list)  # the other people's boxes in the photo
    # uint8 [H, W]: 1 where the crop shows the photo, 0 on the letterbox past its edge (None:
    # all photo); the generator fills the letterbox as it fills the person's place
    frame: np.ndarray | None = None
    # [2, 3] from photo pixels to crop pixels (None: the letterbox of `box`); a person lying
    # sideways or upside down in the photo is cropped turned upright (`Pipeline`)
    to_crop: np.ndarray | None = None
    turns: int = 0  # quarter turns anticlockwise the photo was read turned by (0: as it is)
    # the photo the crop was read from (a reference, not a copy): a card larger than the
    # generator reads the person from it again at its size (None: the crop enlarged)
    photo: np.ndarray | None = None
    # the photo's top edge cuts the person's head off (a catalogue photo cut at the mouth or
    # the shoulders): no face points, and no back view either
    head_cut_off: bool = False

    def photo_to_crop(self) -> np.ndarray:
        """[2, 3] from the photo's pixels to the crop's."""
        if self.to_crop is not None:
            return self.to_crop
        return box_to_input(self.box, self.crop.shape[:2])


@dataclass
class Job:
    """One picture to make: `source`'s person in `pose`'s pose, components swapped in."""

    source: PersonView
    pose: PersonView
    swaps: dict[str, PersonView] = field(default_factory=dict)
    # what the person stands on (`studio.backdrop`): a plain colour (RGB 0-255); PHOTO, the
    # generator's own background, the source photo's scene with the person cut out and
    # filled; AUTO, the source's own wall colour where it is plain, else the studio grey
    backdrop: Backdrop = AUTO
    # how the card frames the person (`studio.framing`): "source", as far down the body as
    # the source photo (and any donor) shows; "pose", the pose photo's frame
    framing: str = DEFAULT_FRAMING
    # the card is this many times the generator's size (`CARD_SCALES`; None: the
    # pipeline's `card_scale`)
    scale: int | None = None


def person_box(keypoints: np.ndarray, aspect: float, margin: float = PERSON_MARGIN) -> Box:
    """`keypoint_box` grown by `margin` and to width/height = `aspect`: the crop."""
    return expand_box(keypoint_box(keypoints), margin, aspect)


def missing_for_pose(keypoints: np.ndarray) -> list[str]:
    """What a pose lacks that the generator needs: "head" (no nose, eye or ear) and/or
    "hips" (neither hip), as "its person shows no ..." names them."""
    shown = visible(keypoints)
    missing = []
    if not shown[list(HEAD_POINTS)].any():
        missing.append("head (no nose, eye or ear)")
    if not shown[list(HIP_POINTS)].any():
        missing.append("hips")
    return missing


def missing_for_source(keypoints: np.ndarray) -> list[str]:
    """What a source lacks of the torso its clothes and body are read from: "shoulders" (no
    neck or shoulder: a face close-up). A source cut above the hips has a torso: the card
    ends where it ends (`studio.framing`)."""
    shown = visible(keypoints)
    return [] if shown[list(SHOULDER_POINTS)].any() else ["shoulders"]


def check_job(job: Job) -> None:
    """IncompletePoseError naming the photo where the pose photo's person cannot give a
    pose, or the source's person shows no torso to take the clothes from (a garment donor
    needs neither: a hair donor may be a face). A ValueError where the source or a donor
    was read for its pose only (`Pipeline.people`'s `parse`): a caller's mistake."""
    unparsed = [v.name for v in (job.source, *job.swaps.values()) if v.labels is None]
    if unparsed:
        raise ValueError(
            f"{', '.join(unparsed)}: read for the pose only (Pipeline.people's parse), so it "
            "cannot give a card its clothes"
        )
    missing = missing_for_pose(job.pose.keypoints)
    if missing:
        raise IncompletePoseError(
            f"{job.pose.name}: as the pose photo, its person shows no "
            f"{' and no '.join(missing)}; the generator places the body from them. Use a "
            "photo that shows the person from the head to at least the hips"
        )
    missing = missing_for_source(job.source.keypoints)
    if missing:
        raise IncompletePoseError(
            f"{job.source.name}: as the source photo, its person shows no "
            f"{' and no '.join(missing)}; the clothes and the body are taken from the torso, "
            "and the generator would invent them. Use a photo that shows the person from the "
            "head down to at least the chest (to the hips or further for a whole outfit)"
        )


def from_behind(job: Job) -> str | None:
    """Which of a job's two photos, "source" or "pose", shows its person from behind while
    the other's faces the camera; None where both show the same side."""
    source, pose = (
        seen_from_behind(v.keypoints) and not v.head_cut_off for v in (job.source, job.pose)
    )
    return None if source == pose else "source" if source else "pose"


def job_notes(job: Job) -> list[str]:
    """What a user should know about a card that is no error: the source and the pose photo
    show their people from opposite sides (`from_behind`), and the generator knows only
    the side it sees."""
    behind = from_behind(job)
    if behind is None:
        return []
    if behind == "source":
        return [
            f"{job.source.name}: its person is seen from behind, and {job.pose.name}'s from "
            "the front: the card shows the person's back, clothes and head, where their "
            "front and face should be. Use a photo of the person from the front"
        ]
    return [
        f"{job.pose.name}: its person is seen from behind: the card shows "
        f"{job.source.name}'s person from behind, with the clothes' front where their back "
        "should be (the generator cannot know the back)"
    ]


def person_height(keypoints: np.ndarray) -> float:
    """Rows the person spans: the visible keypoints' height with the head room above the
    eyes and below the ankles that `person_box` adds."""
    kp = keypoints[visible(keypoints)]
    return float(kp[:, 1].max() - kp[:, 1].min()) * 1.16


def _box_text(box: Box) -> str:
    x, y, w, h = (round(float(v)) for v in box)
    return f"x={x}, y={y}, {w}x{h} px"


class Pipeline:
    def __init__(
        self,
        keypoints: KeypointEstimator,
        parser: DensePredictor,
        transfer: AttributeTransfer,
        *,
        margin: float = PERSON_MARGIN,
        min_person_height: int = MIN_PERSON_HEIGHT,
        framing: FramingConfig | None = None,
        upright_tolerance: float | None = UPRIGHT_TOLERANCE,
        card_scale: int = 1,
        wall: WallRule | None = None,
    ) -> None:
        """min_person_height: rows a person must span in the photo to be read and re-posed;
        a generator smaller than that asks only its own height (a 64x44 demo generator has
        nothing to gain from a person taller than 64 rows). Where the keypoint estimator
        also gives a person mask and a face outline (BlazePose), the parser is given them
        (`DensePredictor`: the mask decides person from background, the outline is face).
        upright_tolerance: a person whose body lies within this many degrees of sideways or
        upside down (`keypoints.skeleton.turns_to_upright`) is read from the photo turned
        upright, and a note says so: a photo whose orientation tag was lost, or a camera
        held on its side; the networks learnt upright people. None: never turned.
        card_scale: cards are this many times the generator's size unless a job says
        otherwise (`Job.scale`); the part-warp generator carries the person's fine detail
        from the photo read at that size into the enlarged card
        (`PoseGenerator.render_card`).
        wall: when a source's background counts as a plain wall, and what a card stands on
        where it does not (`Job.backdrop` AUTO)."""
        if card_scale not in CARD_SCALES:
            raise ValueError(f"card_scale must be one of {CARD_SCALES}, got {card_scale!r}")
        self.keypoints, self.parser, self.transfer = keypoints, parser, transfer
        self.card_scale, self.wall = card_scale, wall or WallRule()
        self.size = transfer.size
        self.margin, self.framing = margin, framing or FramingConfig()
        self.min_person_height = min(min_person_height, self.size[0])
        self.upright_tolerance = upright_tolerance
        sizes = [self.size, keypoints.input_size]
        sizes += [m.config.input_size for m in parser.models]
        self.detail_size = tuple(max(sizes, key=lambda s: s[0] * s[1]))  # the second look

    @property
    def finder(self) -> KeypointEstimator:
        """The estimator of the first look, which only finds the person: the keypoint
        estimator's cheaper self where it offers one (BlazePose without its face model)."""
        finder = getattr(self.keypoints, "finder", None)
        return finder() if finder is not None else self.keypoints

    @property
    def searcher(self) -> KeypointEstimator:
        """The first look's estimator for the windows its search picks (`find_people`):
        the keypoint estimator's strict self where it offers one, else the finder."""
        searcher = getattr(self.keypoints, "searcher", None)
        return searcher() if searcher is not None else self.finder

    @classmethod
    def from_bundle(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        precision: Precision = "auto",
        card_scale: int = 1,
    ) -> Pipeline:
        """`precision` is the generator's (see `common.hardware.resolve_precision`). On a
        CPU the process keeps freed memory for reuse (`common.hardware.keep_freed_memory`):
        each card frees what the next one asks for again."""
        if torch.device(device).type == "cpu":
            keep_freed_memory()
        bundle = load_bundle(path, device)
        return cls(
            bundle.keypoint_estimator(device),
            DensePredictor([bundle.parser], device=device),
            AttributeTransfer(bundle.generator, device, precision),
            card_scale=card_scale,
        )

    def card_size(self, scale: int | None = None) -> tuple[int, int]:
        """(height, width) of a card at `scale` (None: the pipeline's `card_scale`)."""
        s = self.card_scale if scale is None else scale
        return (self.size[0] * s, self.size[1] * s)

    def person(self, photo: np.ndarray, name: str = "photo", box: Box | None = None) -> PersonView:
        """The person of `photo` (inside `box`, x, y, w, h in photo pixels, if given: how a
        user picks one of several people)."""
        found = self.people([(photo, name)], [box])[0]
        if isinstance(found, NoPersonError):
            raise found
        return found

    def people(
        self,
        photos: Sequence[tuple[np.ndarray, str]],
        boxes: Sequence[Box | None] | None = None,
        parse: Sequence[bool] | None = None,
    ) -> list[PersonView | NoPersonError]:
        """Each (photo, name) found, cropped, keypointed and parsed, all in a few batches;
        a photo without a usable person gives its NoPersonError (or PersonTooSmallError) in
        its place (one bad photo in a batch of cards must not cost the others). `boxes`: a
        person box per photo (None: search the whole photo). `parse`: per photo, whether
        its person's clothes are read (None: all); a photo that only gives a job its pose
        needs no parse, person mask or face outline (`labels` None)."""
        h, w = self.size
        boxes = list(boxes) if boxes is not None else [None] * len(photos)
        parse = list(parse) if parse is not None else [True] * len(photos)
        if len(boxes) != len(photos) or len(parse) != len(photos):
            raise ValueError(f"{len(photos)} photos but {len(boxes)} boxes, {len(parse)} parse")
        out: list[PersonView | NoPersonError | None] = [None] * len(photos)
        for i, ((photo, name), box) in enumerate(zip(photos, boxes, strict=True)):
            problem = _box_problem(box, photo.shape[:2]) if box is not None else None
            if problem:
                out[i] = BoxError(f"{name}: {problem}")
            elif math.hypot(*photo.shape[:2]) < self.min_person_height:  # not even corner to corner
                ph, pw = photo.shape[:2]
                out[i] = PersonTooSmallError(
                    f"{name}: this photo is only {pw}x{ph} px; a person must be at least "
                    f"{self.min_person_height} px tall in it to read the pose and the clothes. "
                    "Use a larger photo"
                )
        look = [i for i in range(len(photos)) if out[i] is None]
        found = [None] * len(photos)
        firsts = self._first_look([photos[i][0] for i in look], [boxes[i] for i in look])
        for i, f in zip(look, firsts, strict=True):
            found[i] = f
        details, crop_boxes, to_details, where, subjects, turns = [], [], [], [], [], []
        photo_to_details = []
        for i, ((photo, name), f) in enumerate(zip(photos, found, strict=True)):
            if f is None:  # its box was refused above
                continue
            if visible(f.keypoints).sum() < MIN_KEYPOINTS:
                inside = f" inside the box {_box_text(boxes[i])}" if boxes[i] else ""
                what = "a box around one person" if boxes[i] else "a photo that shows one person"
                out[i] = NoPersonError(
                    f"{name}: no person found{inside} (person score {f.person_score:.2f}); "
                    f"use {what}, head to at least the hips"
                )
                continue
            turn = self._turns_to_upright(f.keypoints)
            photo_to_upright = quarter_turn(turn, photo.shape)
            upright = apply_to_points(photo_to_upright, f.keypoints)
            tall = person_height(upright)
            if tall < self.min_person_height:
                ph, pw = photo.shape[:2]
                out[i] = PersonTooSmallError(
                    f"{name}: the person found is only {tall:.0f} px tall in this {pw}x{ph} "
                    f"photo; at least {self.min_person_height} px are needed to read the pose "
                    "and the clothes. Use a larger photo, or one where the person fills more "
                    "of it"
                )
                continue
            box = person_box(upright, w / h, self.margin)  # in the upright photo's pixels
            detail = box_to_input(box, self.detail_size)
            photo_to_details.append(_after(detail, photo_to_upright))
            details.append(warp(photo, photo_to_details[-1], self.detail_size, LETTERBOX_FILL))
            # The closer look is told whom to look at: with a neighbour in the crop, the
            # estimator's own pick (the largest) may be the neighbour.
            x, y, bw, bh = keypoint_box(upright)
            corners = apply_to_points(detail, np.array([[x, y], [x + bw, y + bh]]))
            subjects.append((*corners[0], *(corners[1] - corners[0])))
            crop_boxes.append(box)
            to_details.append(detail)
            turns.append((turn, photo_to_upright))
            where.append(i)
        if details:
            again, parsed = self._closer_look(
                details,
                subjects,
                [found[i] for i in where],
                photo_to_details,
                [parse[i] for i in where],
            )
            looks = zip(where, crop_boxes, to_details, turns, again, parsed, strict=True)
            for i, box, to_detail, (turn, photo_to_upright), kp, labels in looks:
                photo, name = photos[i]
                upright_to_crop = box_to_input(box, self.size)
                to_crop = _after(upright_to_crop, photo_to_upright)
                detail_to_crop = _after(upright_to_crop, invert(to_detail))
                if visible(kp.keypoints).sum() >= MIN_KEYPOINTS:
                    keypoints = apply_to_points(detail_to_crop, kp.keypoints)
                else:  # the closer look lost the person: keep what the first one found
                    keypoints = apply_to_points(to_crop, found[i].keypoints)
                # a head the photo's top edge cuts off has no points: the card goes from
                # the chin down (`studio.framing.head_cut`) instead of carrying a chunk of
                # chin, hair and letterbox as a head
                cut_off = _head_cut_off(found[i]) or (
                    parse[i] and _face_cut_by_top_edge(kp, keypoints, to_crop)
                )
                if cut_off:
                    keypoints = keypoints.copy()
                    keypoints[list(HEAD_POINTS)] = MISSING
                in_photo = _box_back(box, photo_to_upright) if turn else box
                notes = [_turn_note(name, turn)] if turn else []
                others = self._others(found[i])
                out[i] = PersonView(
                    name,
                    warp(photo, to_crop, self.size, LETTERBOX_FILL),
                    keypoints,
                    None if labels is None else warp_labels(labels, detail_to_crop, self.size),
                    in_photo,
                    max(kp.person_score, found[i].person_score),
                    notes + self._several_people_note(name, others, in_photo),
                    others,
                    warp(np.ones(photo.shape[:2], np.uint8), to_crop, self.size, 0, nearest=True),
                    to_crop,
                    turn,
                    photo,
                    cut_off,
                )
        return out  # type: ignore[return-value]

    def _closer_look(
        self,
        details: list[np.ndarray],
        subjects: list[Box],
        firsts: list,
        to_details: list[np.ndarray],
        parse: list[bool],
    ) -> tuple[list, list[np.ndarray | None]]:
        """Keypoints of each person's detail crop, and the labels of those to be parsed
        (None for the others): an estimator batch for the people followed and one for the
        others, one parser batch. An estimator that `accepts_pose_only` skips for the
        others what only the parser reads; one that can `follow_many` is given the first
        look's person (`firsts`, and `to_details` from each photo to its crop) instead of a
        box to search (BlazePose: no detector), where that look saw the person alone."""
        pose_only = getattr(self.keypoints, "accepts_pose_only", False)
        can_follow = hasattr(self.keypoints, "follow_many")
        # A first look that saw others beside its person may have put some of its points on
        # a neighbour: there the crop is searched again, told whom to look at (followed
        # everywhere, the cards of three group photos read worse against COCO's keypoints,
        # docs/product.md); a person alone is followed.
        alone = [can_follow and not getattr(f, "others", None) for f in firsts]
        looks: list = [None] * len(details)
        for follow in (True, False):
            these = [k for k, a in enumerate(alone) if a == follow]
            if not these:
                continue
            kwargs = {"pose_only": [not parse[k] for k in these]} if pose_only else {}
            images = [details[k] for k in these]
            if follow:
                found = self.keypoints.follow_many(
                    images, [firsts[k] for k in these], [to_details[k] for k in these], **kwargs
                )
            else:
                found = self.keypoints.predict_many(images, [subjects[k] for k in these], **kwargs)
            for k, result in zip(these, found, strict=True):
                looks[k] = result
        labels: list[np.ndarray | None] = [None] * len(details)
        these = [k for k, p in enumerate(parse) if p]
        if these:
            guides = [
                Guide(
                    looks[k].keypoints,
                    getattr(looks[k], "mask", None),
                    getattr(looks[k], "face_mask", None),
                    getattr(looks[k], "hands_mask", None),
                )
                for k in these
            ]
            parsed = self.parser.predict_many([details[k] for k in these], guides=guides)
            for k, result in zip(these, parsed, strict=True):
                labels[k] = result.labels
        return looks, labels

    def _first_look(self, photos: list[np.ndarray], boxes: list[Box | None]) -> list:
        """One KeypointResult per photo, photo pixels: the whole photo (with the window
        search where it shows nobody), or the box a user gave."""
        found: list = [None] * len(photos)
        free = [i for i, b in enumerate(boxes) if b is None]
        given = [i for i, b in enumerate(boxes) if b is not None]
        if free:
            h, w = self.size
            search = find_people(
                self.finder,
                [photos[i] for i in free],
                aspect=w / h,
                min_keypoints=MIN_KEYPOINTS,
                searcher=self.searcher,
            )
            for i, f in zip(free, search, strict=True):
                found[i] = f
        if given:
            shown = [photos[i] for i in given]
            picks = [boxes[i] for i in given]
            looks = headless_where_doubtful(
                self.finder, shown, self.finder.predict_many(shown, picks), MIN_KEYPOINTS, picks
            )
            for i, f in zip(given, looks, strict=True):
                found[i] = f
        return found

    def _turns_to_upright(self, keypoints: np.ndarray) -> int:
        if self.upright_tolerance is None:
            return 0
        return turns_to_upright(keypoints, self.upright_tolerance)

    def _others(self, found) -> list[Box]:
        """The other people's boxes as the estimator outlined them, grown to crops as the
        person used is (`person_box`): what a user compares and gives back to pick one."""
        h, w = self.size
        return [
            tuple(float(v) for v in expand_box(b, self.margin, w / h))
            for b in getattr(found, "others", []) or []
        ]

    def _several_people_note(self, name: str, others: list[Box], box: Box) -> list[str]:
        if not others:
            return []
        rule = getattr(self.keypoints, "pick", None)
        which = {"largest": " (the tallest)", "surest": " (the most confident)"}.get(rule, "")
        if rule == "largest" and any(o[3] > box[3] for o in others):
            # a person the landmark model could not read is offered in a rough box around
            # the detector's face, which may be the taller (the CIHP graduate's mother)
            which = (
                " (the tallest whose body could be read; a taller box among the others is a "
                "rough one around a person whose body could not)"
            )
        listed = "; ".join(",".join(str(round(float(v))) for v in b) for b in others[:4])
        return [
            f"{name}: {len(others) + 1} people found; using the one in {_box_text(box)}{which}. "
            f"The others, as x,y,w,h: {listed}. To use another, give its box (infer.py: "
            "--source-box, --pose-box or --swap-box COMPONENT=BOX; a jobs file: source_box, "
            "pose_box or swap_boxes; a web request: source_box, pose_box or "
            "swap_<component>_box; Pipeline.person(..., box=)) or crop the photo to that "
            "person"
        ]

    def generate(
        self,
        source: PersonView,
        pose: PersonView,
        swaps: dict[str, PersonView] | None = None,
        backdrop: Backdrop = AUTO,
        framing: str = DEFAULT_FRAMING,
    ) -> np.ndarray:
        """`source`'s person in `pose`'s pose, with each named component (upper, lower,
        hair, ... see `adgan.transfer`) taken from another person, on `backdrop`, framed
        by `framing` (see `Job`); uint8 RGB."""
        return self.generate_many([Job(source, pose, swaps or {}, backdrop, framing)])[0]

    def card_frame(self, job: Job) -> np.ndarray | None:
        """[2, 3] from the pose crop to the card (`Job.framing`); None: the pose crop is the
        card."""
        if job.framing not in FRAMINGS:
            raise ValueError(f"framing {job.framing!r}: choose one of {', '.join(FRAMINGS)}")
        donors = [v for c, v in job.swaps.items() if set(component_classes(c)) & BODY_CLOTHES]
        shown = [(v.keypoints, v.labels) for v in (job.source, *donors)]
        head_donors = [c for c in job.swaps if set(component_classes(c)) & HEAD_CLASSES]
        source = job.source
        cut = (
            None
            if head_donors
            else head_cut(source.keypoints, source.labels, source.frame, self.framing)
        )
        return FRAMINGS[job.framing](job.pose.keypoints, shown, self.size, self.framing, cut)

    def card_pose(self, job: Job) -> PersonView:
        """The pose as the card frames it: its keypoints, and its crop for a panel."""
        matrix = self.card_frame(job)
        if matrix is None:
            return job.pose
        return replace(
            job.pose,
            keypoints=apply_to_points(matrix, job.pose.keypoints),
            crop=warp(job.pose.crop, matrix, self.size, LETTERBOX_FILL),
        )

    def generate_many(self, jobs: Sequence[Job]) -> list[np.ndarray]:
        """Every job in one encoder batch (each distinct person once) and one decoder batch
        per card size."""
        if not jobs:
            return []
        scales = [self.card_scale if job.scale is None else job.scale for job in jobs]
        for job, scale in zip(jobs, scales, strict=True):
            check_job(job)
            if scale not in CARD_SCALES:
                raise ValueError(f"card scale {scale!r}: choose one of {CARD_SCALES}")
            if isinstance(job.backdrop, str) and job.backdrop not in (AUTO, PHOTO):
                raise ValueError(f"backdrop {job.backdrop!r}: a colour, {AUTO!r} or {PHOTO!r}")
        frames = [self.card_frame(job) for job in jobs]  # before any network runs
        people: dict[int, PersonView] = {}
        for job in jobs:
            for view in (job.source, *job.swaps.values()):
                people.setdefault(id(view), view)
        order = list(people)
        looks = self.transfer.encode_many(
            [people[k].crop for k in order],
            [people[k].labels for k in order],
            np.stack([people[k].keypoints for k in order]),
            [people[k].frame for k in order],
        )
        row = {k: i for i, k in enumerate(order)}
        keypoints = np.stack(
            [
                job.pose.keypoints if m is None else apply_to_points(m, job.pose.keypoints)
                for job, m in zip(jobs, frames, strict=True)
            ]
        )
        cards: list[np.ndarray] = [None] * len(jobs)  # type: ignore[list-item]
        for scale in sorted(set(scales)):
            these = [i for i, s in enumerate(scales) if s == scale]
            group = [jobs[i] for i in these]
            # only this size's people are read again from their photos, once each
            theirs = list({id(v): None for j in group for v in (j.source, *j.swaps.values())})
            detail = self._detail([people[k] for k in theirs], scale)
            if detail is not None:
                detail = _mixed(group, detail, {k: i for i, k in enumerate(theirs)})
            made = self.transfer.generate_many(
                keypoints[these],
                _mixed(group, looks, row),
                [self.backdrop_colour(job) for job in group],
                scale=scale,
                detail=detail,
            )
            for i, card in zip(these, made, strict=True):
                cards[i] = card
        return cards

    def backdrop_colour(self, job: Job) -> Colour | None:
        """The plain colour `job`'s card stands on; None: the source photo's scene."""
        if job.backdrop == PHOTO:
            return None
        if job.backdrop == AUTO:
            source = job.source
            wall = wall_colour(source.crop, source.labels, source.frame, self.wall)
            return wall if wall is not None else self.wall.otherwise
        return job.backdrop  # type: ignore[return-value]

    def _detail(self, views: list[PersonView], scale: int) -> Appearance | None:
        """Each person's rows at `scale` times the size (None at 1, or where the generator
        draws nothing from them)."""
        if scale == 1 or not self.transfer.generator.uses_detail:
            return None
        return self.transfer.detail_many([self.fine_crop(v, scale) for v in views])

    def fine_crop(self, view: PersonView, scale: int) -> np.ndarray:
        """The view's crop at `scale` times the size: read again from its photo (the same
        place, the photo's own pixels), or, without the photo, the crop enlarged as the
        card is (no detail gained)."""
        h, w = self.card_size(scale)
        if view.photo is None:
            return cv2.resize(view.crop, (w, h), interpolation=cv2.INTER_LINEAR)
        grow = np.array([[scale, 0.0, (scale - 1) / 2], [0.0, scale, (scale - 1) / 2], [0, 0, 1]])
        return warp(view.photo, compose(grow, view.photo_to_crop()), (h, w), LETTERBOX_FILL)

    def panel(self, source: PersonView, pose: PersonView, result: np.ndarray) -> np.ndarray:
        """source | target pose | source parsing | result, for a person to look at.

        Enlarged by a whole factor to at least PANEL_HEIGHT rows (a 64x44 generator's crops
        are too small to judge), and the pose drawn over the pose photo's own crop, dimmed,
        so a wrong keypoint shows against the person it was read from.
        """
        k = max(1, -(-PANEL_HEIGHT // self.size[0]))
        kp = np.where(visible(pose.keypoints)[:, None], pose.keypoints * k + (k - 1) / 2, -1.0)
        backdrop = (_enlarge(pose.crop, k, cv2.INTER_CUBIC) * 0.45).astype(np.uint8)
        columns = [
            _enlarge(source.crop, k, cv2.INTER_CUBIC),
            draw_skeleton(backdrop, kp, alpha=1.0),
            _enlarge(colorize(source.labels), k, cv2.INTER_NEAREST),
            _fit(result, (self.size[0] * k, self.size[1] * k)),
        ]
        return np.concatenate(columns, axis=1)


def _mixed(jobs: Sequence[Job], rows: Appearance, row: dict[int, int]) -> Appearance:
    """Per job, its source's rows with each swapped component's taken from its donor (`row`:
    a person's index in `rows`, by the view's id)."""
    mixed = []
    for job in jobs:
        look = take(rows, row[id(job.source)])
        for component, donor in job.swaps.items():
            look = mix_appearance(look, take(rows, row[id(donor)]), component_classes(component))
        mixed.append(look)
    return concat(mixed)


def _head_cut_off(found) -> bool:
    """Whether the estimator found this person with their head cut off by the photo's top
    edge (`BlazePose.headless_many`: its nose lies above the photo, and the face points it
    places inside are squeezed under the edge)."""
    return bool(getattr(getattr(found, "landmarks", None), "headless", False))


def _face_cut_by_top_edge(result, keypoints: np.ndarray, to_crop: np.ndarray) -> bool:
    """Whether the photo's top edge cuts this person's face (a catalogue photo cut at the
    mouth): the estimator's face model found no face (`BlazePoseResult.face`; an estimator
    without one never says so), and the highest head point lies within half the nose's
    distance to the neck of the photo's top edge. BlazePose still places a nose and eyes
    there, squeezed under the edge, and the card carried a chunk of chin and hair as a
    head."""
    if getattr(result, "face", False) is not None:
        return False
    shown = visible(keypoints)
    if not shown[0] or not shown[1]:  # the nose and the neck
        return False
    head = [k for k in HEAD_POINTS if shown[k]]
    in_photo = apply_to_points(invert(to_crop), keypoints)
    reach = float(np.linalg.norm(in_photo[1] - in_photo[0]))
    return float(in_photo[head, 1].min()) < FACE_CUT_BAND * reach


def _after(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """[2, 3] `outer` after [2, 3] `inner`."""
    return compose(np.vstack([outer, [0.0, 0.0, 1.0]]), inner)


def _box_back(box: Box, photo_to_upright: np.ndarray) -> Box:
    """A box in the upright photo's pixels as the box it covers in the photo's own."""
    x, y, w, h = box
    corners = np.array([[x, y], [x + w, y + h]]) - 0.5  # pixel edges -> pixel centres
    back = invert(photo_to_upright)
    (x0, y0), (x1, y1) = np.sort(corners @ back[:, :2].T + back[:, 2] + 0.5, axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


TURN_WORDS = {1: "a quarter turn anticlockwise", 2: "half a turn", 3: "a quarter turn clockwise"}


def _turn_note(name: str, turns: int) -> str:
    lies = "upside down" if turns == 2 else "on their side"
    return (
        f"{name}: the person in this photo lies {lies}, so the photo was read turned "
        f"{TURN_WORDS[turns]} to stand them upright (as a photo whose orientation tag was "
        "lost, or that was taken with the camera on its side, needs). If they really lie "
        "so, use a photo of them standing or sitting"
    )


def _box_problem(box: Box, shape: tuple[int, int]) -> str | None:
    """Why a person box cannot be used on a photo of this (height, width), or None."""
    x, y, w, h = box
    height, width = shape
    text = ",".join(f"{float(v):g}" for v in box)
    if not (w > 0 and h > 0):
        return f"the person box {text} has no area"
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return f"the person box {text} (x,y,w,h) lies outside the {width}x{height} photo"
    return None


def _fit(result: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A card (at the generator's size or a multiple) at the panel's (height, width)."""
    h, w = size
    if result.shape[:2] == size:
        return result
    smaller = result.shape[0] > h
    return cv2.resize(result, (w, h), interpolation=cv2.INTER_AREA if smaller else cv2.INTER_CUBIC)


def _enlarge(image: np.ndarray, factor: int, interpolation: int) -> np.ndarray:
    if factor == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (w * factor, h * factor), interpolation=interpolation)
