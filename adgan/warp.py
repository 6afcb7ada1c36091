"""Explicit, differentiable per-segment part warping for pose transfer.

The geometry of pose transfer is known from the keypoints of both people: each body segment
(head, torso, upper arms, forearms with the hands, thighs, shins with the feet) moves by its
own transform, found from the segment's keypoints in the source and in the target. For every
target pixel and every segment, the transform gives the source pixel it comes from
(backward warping with `grid_sample`); the segments are then layered in the target, front
to back, each painting only where

- the target pixel lies in that segment's soft capsule around the target bone, and
- the warped source pixel really belongs to that segment in the source: a person pixel of
  the source parsing, owned by the segment (soft-min over the source capsules, with a
  prior of which classes each segment can carry: bare arms are only ever arms).

Transforms (target pixel -> source pixel):

- limbs: along the bone, scaled by the bone lengths (a foreshortened bone is shorter);
  across the bone, scaled by the ratio of body sizes (a foreshortened arm is not thinner);
  beyond the ends (hands, feet, the top of a thigh) by the ratio of body sizes too;
- torso: least-squares affine of neck, shoulders and hips (plus a point at the bottom of
  the spine, extrapolated when the hips are missing: upper-body shots), with a small ridge
  towards the spine's similarity, so that 3 nearly collinear points stay well posed; an
  affine may mirror, which is what a front view to back view change asks of the torso;
- head: the same fit on nose, eyes, ears and neck, with a stronger ridge.

Missing points (-1): a missing neck is the mid-shoulder point, or (no shoulders either)
a point below the face; missing knees and ankles continue the leg straight down (upper-body
shots are cut at the thigh, their thighs still in the photo; `complete_legs`). Then a
segment whose points are missing in the target is absent there; a segment present in the
target whose points are missing in the source cannot be filled: it is a hole (its classes'
masks are 0 there, `holes` says where). Holes also mark where a segment's source location
is hidden behind another segment (`occlusion_opacity`) and, for a target showing the back
of the head, the face a frontal source would put there (`back_of_head`). The background is
the source's, the person cut out, lightly blurred (its noise is its own) and the hole
filled by a push-pull (pyramid) fill.

The body size (the unit of every width) is the torso length (neck to mid-hip) where neck
and hips are seen, else estimated from shoulders, hips, head and bones (the largest of
the estimates, each about a lower bound of it under foreshortening).

Outputs are per ADGAN class: class c's layer is the source's class-c pixels carried by the
segment transforms, its mask where it is seen in the target; masks and holes partition the
image, and `composite` adds them up (occlusion is resolved in the masks).

Prior art read for ideas (code written anew): Balakrishnan et al., CVPR 2018, posewarp
(per-limb similarity transforms from keypoints, foreground layers over a background);
Siarohin et al., CVPR 2018, Deformable GANs (10 part affine transforms).

Everything is batched and torch only (a loop over the ~10 segments, none over pixels or
people), runs on any device and is differentiable in the source image, its parsing and
both sets of keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import pairwise

import torch
import torch.nn.functional as F

from adgan.box_sampling import sample_in_boxes, sampled_boxes
from adgan.filters import blur, fill_background, square_max
from adgan.segments import (
    ARM_CHAINS,
    BONE_LENGTH,
    FACE_POINTS,
    KINDS,
    L_HIP,
    L_SHOULDER,
    LEG_CHAINS,
    LIMBS,
    NECK,
    NECK_BELOW_HEAD,
    R_HIP,
    R_SHOULDER,
    SEGMENT_NAMES,
    SEGMENTS,
    SIZE_ESTIMATORS,
    SKIRT,
    THIGHS,
    TORSO,
    TORSO_POINTS,
    TWIN,
    WORN,
    Segment,
)
from adgan.unseen import extend_legs_past_the_edge, garment_under_arms
from keypoints.skeleton import FACE_FRONT
from parsing.labels import ADGAN_CLASSES, NUM_ADGAN_CLASSES

PixelGrid = tuple[torch.Tensor, torch.Tensor]  # x [1, W], y [H, 1] (`_pixel_grid`)


def _default_compatibility() -> dict[str, tuple[float, ...]]:
    # Which ADGAN classes (0 background, 1 pants, 2 hair, 3 skirt, 4 face, 5 upper clothes,
    # 6 arms, 7 legs) each kind of segment may carry from the source, as prior weights.
    return {
        "head": (0.0, 0.0, 1.0, 0.0, 1.0, 0.05, 0.0, 0.0),
        "torso": (0.0, 1.0, 0.3, 1.0, 0.2, 1.0, 0.0, 0.0),
        "upper_arm": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0),
        "forearm": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0),
        "thigh": (0.0, 1.0, 0.0, 0.3, 0.0, 0.05, 0.0, 1.0),
        "shin": (0.0, 1.0, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0),
    }


@dataclass
class WarpConfig:
    """What a researcher tunes. Widths are fractions of the body size (the torso length,
    neck to mid-hip, about 54 px at 128x88 in a full-body shot)."""

    # capsule radii around each kind of bone (support in the target, ownership in the source)
    head_radius: float = 0.28
    torso_radius: float = 0.25
    upper_arm_radius: float = 0.12
    forearm_radius: float = 0.10
    thigh_radius: float = 0.18
    shin_radius: float = 0.15
    # the torso's support in the target reaches this far below the hips (skirts, dresses
    # and long tops hang there; the warped source parsing decides what is really there)
    torso_reach: float = 0.6
    hand_length: float = 0.15  # forearm capsules go this far past the wrist (the hand)
    foot_length: float = 0.15  # shin capsules go this far past the ankle (the foot)
    # soft edge of a segment's support in the target, in units of its radius (smaller is
    # harder); the silhouette itself comes from the warped source parsing
    softness: float = 0.1
    # temperature of the soft-min that gives each source pixel to a segment (units of radius)
    ownership_temperature: float = 0.1
    # layer order in the target, front to back, by kind; a segment in front covers those behind
    layer_order: tuple[str, ...] = ("forearm", "upper_arm", "head", "torso", "shin", "thigh")
    # in the source, a segment k places in front gets k * front_bonus / (kinds - 1) of its
    # radius extra in the soft-min (an arm lying on the torso keeps its own pixels)
    front_bonus: float = 0.35
    # prior weights of which ADGAN classes each kind of segment carries
    compatibility: dict[str, tuple[float, ...]] = field(default_factory=_default_compatibility)
    # ridge of the torso / head least-squares affines towards the spine's similarity
    torso_ridge: float = 0.05
    head_ridge: float = 0.5
    neck_weight_in_head: float = 1.0  # weight of the neck among the head's fitting points
    # weight of a spine-bottom point extrapolated from the shoulders when hips are missing
    virtual_hip_weight: float = 0.2
    min_bone: float = 0.08  # shortest bone, in body sizes (a bone seen end-on)
    # source person mask grown by this many pixels per 128 rows before the background fill
    background_dilation: float = 1.0
    # Gaussian blur of the source background (sigma in pixels per 128 rows): its noise and
    # JPEG are its own, not the target photo's
    background_blur: float = 1.0
    # Gaussian blur of the source parsing's classes (sigma in pixels per 128 rows): a label
    # map's one-pixel staircase, magnified by a re-posing zoom, is a sawtooth along hair and
    # sleeves; inference only (trained on hard labels)
    parsing_blur: float = 0.0
    # complete missing knees / ankles (elbows / wrists) straight down from the joint above:
    # upper-body shots are cut at the thigh but their thighs are still in the photo
    complete_legs: bool = True
    complete_arms: bool = False
    # the support of a segment in the target is this many times its capsule radius
    support_scale: float = 1.0
    # ... and the head's this many times more: a real head's hair reaches far past the
    # capsule a synthetic head fills, and the support would cut it off in a ring of the
    # network's haze (the hair and face the head carries still decide its shape)
    head_support: float = 1.0
    # the head's capsule runs from the face's centre this share of the way to the neck
    # (0: a disc, as trained); inference only
    head_neck_reach: float = 0.0
    # in the source, the face within this many head radii of the head's capsule is the
    # head's alone (0: off, as trained): a bowed head's face lies on the torso's capsule,
    # and the torso (which carries the neck, labelled face) took the chin and mouth down to
    # the target's neck; inference only
    head_owns_face: float = 0.0
    # in the source, what an arm hides of the torso within this many torso radii of its
    # capsule is the torso's garment, its colour and class spread from what the torso shows
    # there (0: off, as trained): arms hanging at the sides, as in most catalogue photos,
    # hide the torso's flanks, which show when the target's arms are elsewhere, and were
    # left to the network as a hole; inference only
    torso_under_arms: float = 0.0
    # ... and what a hand hides of a thigh within this many thigh radii of its capsule, the
    # thigh's garment (0: off, as trained): a catalogue model's hand rests on her thigh, and
    # where the target's hand is elsewhere the thigh showed a hole there; cut by the photo's
    # edge, the leg went on past the edge without the hand's width; inference only
    thighs_under_hands: float = 0.0
    # a skirt (and a dress below the hips) is the torso's alone, carried in one piece by the
    # torso's transform and painted down to the target legs' envelope (a cone from the hips
    # to the knees and ankles) where the torso carries skirt; as trained, the thighs and
    # shins carried it too, each with its own bone, and split it into two trouser legs;
    # inference only
    skirt_in_one_piece: bool = False
    # A segment present in the target but missing in the source is a hole: it hides the
    # segments behind it by this opacity (1: strictly, 0: they show through); where nothing
    # behind paints, it is a hole whatever this is (never background)
    hole_opacity: float = 0.25
    # where a segment's transform reaches outside the source frame, a hole of this opacity
    # (hiding the segments behind; measured: 0 gives the better warp-only composite)
    outside_opacity: float = 0.0
    # ... for the head (None: as the others): a head cut by the photo's top edge has hair
    # past it, which a wide `head_support` would otherwise end in the frame's straight edge
    head_outside_opacity: float | None = None
    # where a thigh's or shin's transform reaches past the source photo (a catalogue photo
    # cut at the thigh re-posed to a full body, or seated), what the photo's edge shows
    # there, trousers or skirt or skin, goes on along the leg instead of leaving the
    # network to invent legs; inference only (trained without it)
    legs_past_the_edge: bool = False
    # ... the edge's colour averaged over the leg's own pixels near it first (Gaussian, sigma
    # in pixels per 128 rows; 0: the edge row as it is): a fold, a highlight or a print at
    # the edge, replicated down a whole leg, is a stripe along it
    legs_edge_blur: float = 3.0
    # a limb the source does not show (its joints hidden behind the body, or cut off) while
    # its twin on the other side is seen is carried from that twin, mirrored across the
    # bone: sleeves, trouser legs and skin come in pairs; inference only (trained without)
    borrow_twin_limbs: bool = False
    # where a segment's transform lands on another segment's pixels in the source (hidden
    # behind it there) and no layer paints, a hole of this strength (else background)
    occlusion_opacity: float = 0.3
    # a target showing the back of the head (no nose or eyes) gets no face from a source
    # that shows it: the face's place is a hole
    back_of_head: bool = True
    # a plain backdrop's matte always covers each segment's capsule to this share of its
    # radius (the warp's own masks decide the rest); inference only
    matte_core: float = 0.6
    # ... and is steepened about 0.5: values from 0.5 - ramp / 2 to 0.5 + ramp / 2 become 0
    # to 1 (1: as the warp gives it). The warp's support fades over several pixels past a
    # capsule's reach, a faint veil of the network's background around the person (a
    # tenth of the card on SynthFashion) and a faint blot where a head's support reaches
    # past a catalogue photo's top edge; inference only
    matte_ramp: float = 0.4
    # each segment is sampled from the source only within the box of target pixels where
    # its support (or, for a torso carrying a skirt, the skirt's cone) exceeds this; beyond
    # it every layer, hole and claim of the segment weighs less than this (0: everywhere).
    # A segment covers a tenth to a third of a card, so this is most of the sampling saved
    sample_support: float = 1e-4

    def __post_init__(self) -> None:
        if not 0 < self.matte_ramp <= 1:
            raise ValueError(f"matte_ramp must be in (0, 1], got {self.matte_ramp}")
        if not 0 <= self.sample_support < 0.01:
            raise ValueError(f"sample_support must be in [0, 0.01), got {self.sample_support}")
        bad = set(self.layer_order) ^ set(KINDS)
        if bad or len(self.layer_order) != len(KINDS):
            raise ValueError(f"layer_order must order each of {KINDS} once, got {self.layer_order}")
        missing = set(KINDS) - set(self.compatibility)
        if missing:
            raise ValueError(f"compatibility lacks kinds {sorted(missing)}")
        for kind, row in self.compatibility.items():
            if len(row) != NUM_ADGAN_CLASSES:
                raise ValueError(f"compatibility[{kind!r}] needs {NUM_ADGAN_CLASSES} weights")

    def radius(self, kind: str) -> float:
        return getattr(self, f"{kind}_radius")


@dataclass
class PartWarp:
    """The source warped into the target pose, per ADGAN component.

    `masks` of the 8 classes and `holes` sum to 1 at every pixel; class 0 is the background
    (its layer the filled source background). Occlusion between segments is resolved:
    `masks[:, c]` is where class c is *seen* in the target."""

    layers: torch.Tensor  # [B, 8, 3, H, W] in [-1, 1]
    masks: torch.Tensor  # [B, 8, 1, H, W]
    holes: torch.Tensor  # [B, 1, H, W] person pixels the source cannot fill
    background: torch.Tensor  # [B, 3, H, W] source background, the person filled in
    background_mask: torch.Tensor  # [B, 1, H, W] 1 where the source background is seen
    segments: torch.Tensor  # [B, S, 1, H, W] what each segment covers in the target (paint
    # and holes, after occlusion), in the order of `segment_names`
    # Only with `warp_parts(..., layout=True)` (a backdrop's matte, a garment swap), else
    # None: [B, 1, H, W] the target body's extent, its segments' capsules; and where it
    # surely is: the core of each capsule (`matte_core`), and all of it where the segment
    # comes from outside the source photo (legs below a crop: the network paints them)
    body: torch.Tensor | None = None
    core: torch.Tensor | None = None
    # Only with `warp_parts(..., detail=True)` (a card larger than the warp, `fine_detail`),
    # else None: [B, S, H, W, 2] the source pixel each segment takes at each target pixel,
    # and [B, S, 8, H, W] how much of class c's colour there is segment s's own source pixel
    # (not a fill: the torso's garment spread under the arms)
    coords: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    segment_names: tuple[str, ...] = SEGMENT_NAMES
    matte_ramp: float = 1.0  # `WarpConfig.matte_ramp`

    @property
    def person(self) -> torch.Tensor:  # [B, 1, H, W] the warped person's coverage
        return self.masks[:, 1:].sum(1)

    @property
    def matte(self) -> torch.Tensor:
        """[B, 1, H, W] where the generated person is: the warped garments' own shapes and
        the holes, their thin seams closed, and the body's `core`, steepened by `matte_ramp`.
        Not the whole capsules: they reach past a head or an arm into the network's
        background, a grey fringe on a plain backdrop."""
        if self.core is None:
            raise ValueError("a matte needs the body layout: warp with layout=True")
        seen = (self.person + self.holes).clamp(0, 1)
        k = 2 * max(1, round(seen.shape[-2] / 64)) + 1  # a closing: grow, then shrink back
        seen = -square_max(-square_max(seen, k // 2), k // 2)
        matte = torch.maximum(seen, self.core).clamp(0, 1)
        return ((matte - 0.5) / self.matte_ramp + 0.5).clamp(0, 1)

    def on_backdrop(self, colours: torch.Tensor, used: torch.Tensor) -> PartWarp:
        """The warp with the rows where `used` [B] (bool) standing on a plain colour
        (colours [B, 3] in [-1, 1]) instead of the source's scene: their background layer
        is that colour, seen everywhere. A card cut out onto a backdrop then gets, where its
        matte is soft or reaches past the person, the backdrop's colour from the network
        too, not the scene's (on held-out SynthFashion cards on grey: SSIM 0.725 → 0.737)."""
        use = used.to(self.background.device)[:, None, None, None]
        plain = colours.to(self.background)[:, :, None, None].expand_as(self.background)
        background = torch.where(use, plain, self.background)
        layers = self.layers.clone()
        layers[:, 0] = background
        seen = torch.where(use, torch.ones_like(self.background_mask), self.background_mask)
        return replace(self, layers=layers, background=background, background_mask=seen)


# -- geometry helpers -------------------------------------------------------------------


def _norm(v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return torch.sqrt((v * v).sum(-1) + eps)


def _perp(v: torch.Tensor) -> torch.Tensor:
    """v rotated by +90 degrees in image coordinates (x right, y down)."""
    return torch.stack([-v[..., 1], v[..., 0]], -1)


def present(keypoints: torch.Tensor) -> torch.Tensor:
    """[B, 18, 2] -> [B, 18] float 1 where the point is annotated (not -1)."""
    return (keypoints >= 0).all(-1).to(keypoints.dtype)


def body_size(keypoints: torch.Tensor, default: float) -> torch.Tensor:
    """Torso length (neck to mid-hip) in pixels, [B]: measured where the neck and both
    hips are seen, else the largest estimate from other lengths; `default` where nothing
    tells."""
    ok = present(keypoints)
    mid_hip = (keypoints[:, R_HIP] + keypoints[:, L_HIP]) / 2
    estimates = [_norm(keypoints[:, NECK] - mid_hip) * ok[:, NECK] * ok[:, R_HIP] * ok[:, L_HIP]]
    for a, b, ratio in SIZE_ESTIMATORS:
        estimates.append(_norm(keypoints[:, a] - keypoints[:, b]) / ratio * ok[:, a] * ok[:, b])
    size = torch.stack(estimates[1:], -1).amax(-1)
    size = torch.where(estimates[0] > 1.0, estimates[0], size)  # the torso, where seen
    return torch.where(size > 1.0, size, torch.full_like(size, default))


def _weighted_mean(points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B, N, 2], [B, N] -> [B, 2] (0 where every weight is 0)."""
    return (points * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp_min(1e-6)


@dataclass
class _Skeleton:
    """Per-person geometry derived from the keypoints."""

    kp: torch.Tensor  # [B, 18, 2]
    ok: torch.Tensor  # [B, 18]
    size: torch.Tensor  # [B]
    head: torch.Tensor  # [B, 2] centre of the face points
    head_ok: torch.Tensor  # [B]
    down: torch.Tensor  # [B, 2] unit vector down the spine
    bottom: torch.Tensor  # [B, 2] bottom of the spine (mid-hip, or extrapolated)
    hips_ok: torch.Tensor  # [B]
    torso_ok: torch.Tensor  # [B]


def _complete_limbs(
    kp: torch.Tensor, ok: torch.Tensor, size: torch.Tensor, chains: tuple[tuple[int, ...], ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Missing joints down each chain (e.g. hip, knee, ankle) continue the chain straight
    down the image by a typical bone length: in catalogue photos a missing knee is mostly
    below the frame (upper-body shots) or hidden, and the limb hangs."""
    kp, ok = kp.clone(), ok.clone()
    down = torch.tensor([0.0, 1.0]).to(kp)
    for chain in chains:
        for parent, child in pairwise(chain):
            fill = ok[:, parent] * (1 - ok[:, child])  # [B]
            guess = kp[:, parent] + down * (BONE_LENGTH[child] * size)[:, None]
            kp[:, child] = torch.where(fill[:, None] > 0, guess, kp[:, child])
            ok[:, child] = torch.maximum(ok[:, child], fill)
    return kp, ok


def _skeleton(
    kp: torch.Tensor, default_size: float, complete: tuple[tuple[int, ...], ...] = ()
) -> _Skeleton:
    ok = present(kp)
    # a missing neck is the mid-shoulder point (COCO's convention); it counts as annotated
    shoulders_ok = ok[:, R_SHOULDER] * ok[:, L_SHOULDER]
    mid_shoulder = (kp[:, R_SHOULDER] + kp[:, L_SHOULDER]) / 2
    neck_ok = torch.maximum(ok[:, NECK], shoulders_ok)
    kp = kp.clone()
    kp[:, NECK] = torch.where(ok[:, NECK, None] > 0, kp[:, NECK], mid_shoulder)
    ok = ok.clone()
    ok[:, NECK] = neck_ok
    size = body_size(kp, default_size)
    if complete:
        kp, ok = _complete_limbs(kp, ok, size, complete)
    face = list(FACE_POINTS)
    head = _weighted_mean(kp[:, face], ok[:, face])
    head_ok = (ok[:, face].sum(1) > 0).to(kp.dtype)
    # still no neck (side views hide it, and a shoulder with it): below the head
    from_head = head_ok * (1 - neck_ok)
    below = head + torch.stack([torch.zeros_like(size), NECK_BELOW_HEAD * size], -1)
    kp[:, NECK] = torch.where(from_head[:, None] > 0, below, kp[:, NECK])
    neck_ok = torch.maximum(neck_ok, from_head)
    ok[:, NECK] = neck_ok
    hips_ok = ok[:, R_HIP] * ok[:, L_HIP]
    neck = kp[:, NECK]
    mid_hip = (kp[:, R_HIP] + kp[:, L_HIP]) / 2
    # down: from the neck to the hips, else across the shoulder line (away from the head)
    across = _perp(kp[:, L_SHOULDER] - kp[:, R_SHOULDER])
    up_hint = torch.where(
        (head_ok * neck_ok)[:, None] > 0, neck - head, torch.tensor([0.0, 1.0]).to(kp)
    )
    across = across * torch.where((across * up_hint).sum(-1) < 0, -1.0, 1.0)[:, None]
    fallback = torch.where(
        shoulders_ok[:, None] > 0, across, torch.where((head_ok * neck_ok)[:, None] > 0, up_hint, 0)
    )
    fallback = fallback + torch.tensor([0.0, 1e-3]).to(kp)
    one_hip = torch.where(ok[:, R_HIP, None] > 0, kp[:, R_HIP], kp[:, L_HIP])
    spine = torch.where(
        (hips_ok * neck_ok)[:, None] > 0,
        mid_hip - neck,
        torch.where(
            (torch.maximum(ok[:, R_HIP], ok[:, L_HIP]) * neck_ok)[:, None] > 0,
            one_hip - neck,
            fallback,
        ),
    )
    down = spine / _norm(spine)[:, None]
    bottom = torch.where((hips_ok * neck_ok)[:, None] > 0, mid_hip, neck + down * size[:, None])
    torso_ok = neck_ok * (ok[:, list(TORSO_POINTS[1:])].sum(1) >= 1).to(kp.dtype)
    return _Skeleton(kp, ok, size, head, head_ok, down, bottom, hips_ok, torso_ok)


def _bone_affine(
    a_t: torch.Tensor,
    b_t: torch.Tensor,
    a_s: torch.Tensor,
    b_s: torch.Tensor,
    ratio: torch.Tensor,
    min_len_t: torch.Tensor,
) -> torch.Tensor:
    """Affine [B, 2, 3] taking target pixels to source pixels that maps bone a_t->b_t onto
    a_s->b_s along the bone and scales by `ratio` across it (no mirroring)."""
    dt, ds = b_t - a_t, b_s - a_s
    lt, ls = _norm(dt).clamp_min(1e-3), _norm(ds)
    ut, us = dt / lt[:, None], ds / ls.clamp_min(1e-3)[:, None]
    lt = torch.maximum(lt, min_len_t)
    rt, rs = torch.stack([ut, _perp(ut)], -1), torch.stack([us, _perp(us)], -1)  # [B, 2, 2]
    scale = torch.diag_embed(torch.stack([ls / lt, ratio], -1))
    lin = rs @ scale @ rt.transpose(1, 2)
    trans = a_s - (lin @ a_t[..., None])[..., 0]
    return torch.cat([lin, trans[..., None]], -1)


def _fit_affine(
    x: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor,
    prior: torch.Tensor,
    ridge: float,
    centre: torch.Tensor,
    scale: torch.Tensor,
) -> torch.Tensor:
    """Weighted least-squares affine [B, 2, 3] with y ~ A x + t (x target, y source
    pixels, [B, N, 2], weights [B, N]) and a ridge pulling A towards prior's, in the target
    frame normalised by (centre [B, 2], scale [B]); with no points it is the prior."""
    xn = (x - centre[:, None]) / scale[:, None, None]
    xh = torch.cat([xn, torch.ones_like(xn[..., :1])], -1)  # [B, N, 3]
    lin0 = prior[:, :, :2] * scale[:, None, None]
    trans0 = (prior[:, :, :2] @ centre[..., None])[..., 0] + prior[:, :, 2]
    theta0 = torch.cat([lin0, trans0[..., None]], -1).transpose(1, 2)  # [B, 3, 2]
    d = torch.diag(torch.tensor([ridge, ridge, 1e-4])).to(x)
    m = xh.transpose(1, 2) @ (w[..., None] * xh) + d
    rhs = xh.transpose(1, 2) @ (w[..., None] * y) + d @ theta0
    theta = torch.linalg.solve(m, rhs).transpose(1, 2)  # [B, 2, 3]
    lin = theta[:, :, :2] / scale[:, None, None]
    trans = theta[:, :, 2] - (lin @ centre[..., None])[..., 0]
    return torch.cat([lin, trans[..., None]], -1)


def _capsule_projection(
    grid: PixelGrid, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels against segments a->b [B, S, 2]: (where the closest point of each segment
    lies, 0 at a and 1 at b, [B, S, H, W]; the distance to it, [B, S, H, W])."""
    x, y = grid
    ab = b - a
    abx, aby = ab[..., 0, None, None], ab[..., 1, None, None]
    dx, dy = x - a[..., 0, None, None], y - a[..., 1, None, None]  # [B, S, 1, W], [B, S, H, 1]
    length2 = (ab * ab).sum(-1).clamp_min(1e-6)[..., None, None]
    t = ((dx * abx + dy * aby) / length2).clamp(0, 1)
    ex, ey = dx - t * abx, dy - t * aby
    return t, torch.sqrt(ex * ex + ey * ey + 1e-4)


def _capsule_distance(grid: PixelGrid, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance of pixels to segments a->b [B, S, 2] -> [B, S, H, W]."""
    return _capsule_projection(grid, a, b)[1]


def _pixel_grid(h: int, w: int, like: torch.Tensor) -> PixelGrid:
    """The pixels' coordinates, kept separable: x [1, W] and y [H, 1]. Every distance and
    transform of the warp is then a row plus a column until its last step; as one [H, W, 2]
    grid, whose (x, y) pairs each op reduces over, they took a third of the warp's time."""
    x = torch.arange(w, dtype=like.dtype, device=like.device)[None]
    y = torch.arange(h, dtype=like.dtype, device=like.device)[:, None]
    return x, y


def _capsules(sk: _Skeleton, cfg: WarpConfig, skirt: float = 0.0) -> tuple[torch.Tensor, ...]:
    """Segment capsules (start [B, S, 2], end [B, S, 2], radius [B, S]) in one image; the
    torso's reaches `skirt` body sizes below the hips."""
    kp, size = sk.kp, sk.size
    # the head: a disc about the face's points, drawn out towards the neck by
    # `head_neck_reach` of the way (the chin and neck of a head tilted or seen large)
    neck_ok = (sk.head_ok * sk.ok[:, NECK])[:, None]
    chin = sk.head + (kp[:, NECK] - sk.head) * cfg.head_neck_reach * neck_ok
    starts, ends, radii = [sk.head], [chin], [cfg.head_radius * size]
    starts.append(kp[:, NECK])
    # the torso capsule ends half a radius short of the spine bottom: its round end then
    # reaches just past the hips (plus `skirt`)
    reach = (skirt - 0.5 * cfg.torso_radius) * size
    ends.append(sk.bottom + sk.down * reach[:, None])
    radii.append(cfg.torso_radius * size)
    for seg in LIMBS:
        a, b = kp[:, seg.start], kp[:, seg.end]
        extend = {"forearm": cfg.hand_length, "shin": cfg.foot_length}.get(seg.kind, 0.0)
        u = (b - a) / _norm(b - a).clamp_min(1e-3)[:, None]
        starts.append(a)
        ends.append(b + u * (extend * size)[:, None])
        radii.append(cfg.radius(seg.kind) * size)
    return torch.stack(starts, 1), torch.stack(ends, 1), torch.stack(radii, 1)


def _support_distance(sk: _Skeleton, grid: PixelGrid, cfg: WarpConfig) -> torch.Tensor:
    """[B, S, H, W] distance to each segment's capsule in this (target) image, in units of
    its support radius."""
    a, e, r = _capsules(sk, cfg, skirt=cfg.torso_reach)
    scale = torch.ones_like(r)
    scale[:, SEGMENT_NAMES.index("head")] = cfg.head_support
    return _capsule_distance(grid, a, e) / (cfg.support_scale * scale * r)[..., None, None]


def _hanging_from_hips(skirt: torch.Tensor, torso_distance: torch.Tensor) -> torch.Tensor:
    """[B, H, W] 1 on the source's skirt (probabilities [B, H, W]) that hangs from the
    hips: the skirt pixels joined to those within the torso's capsule (torso_distance, in
    its radii). A parser's stray skirt pixels down a trouser leg or at the feet are not a
    skirt to carry in one piece. Found at a quarter of the resolution (a geodesic
    dilation), without gradients (a choice of owner, like the labels themselves)."""
    with torch.no_grad():
        garment = (skirt > 0.5).float()[:, None]  # [B, 1, H, W]
        seed = garment * (torso_distance[:, None] <= 1.0).float()
        coarse = F.max_pool2d(garment, 4, ceil_mode=True)
        grown = F.max_pool2d(seed, 4, ceil_mode=True)
        for _ in range(sum(coarse.shape[-2:])):
            wider = F.max_pool2d(grown, 3, stride=1, padding=1) * coarse
            if torch.equal(wider, grown):
                break
            grown = wider
        joined = F.interpolate(grown, size=skirt.shape[-2:], mode="nearest")
        return (joined * garment)[:, 0].to(skirt)


def _skirt_envelope(sk: _Skeleton, grid: PixelGrid, cfg: WarpConfig) -> torch.Tensor:
    """[B, H, W] where a skirt may hang in this (target) image: a cone about the line from
    the mid-hip to the mid-ankle (or past the mid-knee by a shin, or down the spine), its
    radius growing from the hips' half width to the legs' half spread at the bottom, each
    plus the leg's capsule radius (`WarpConfig.skirt_in_one_piece`)."""
    kp, ok, size = sk.kp, sk.ok, sk.size
    top = sk.bottom
    knees_ok = (ok[:, 9] * ok[:, 12])[:, None] > 0
    ankles_ok = (ok[:, 10] * ok[:, 13])[:, None] > 0
    knees, ankles = (kp[:, 9] + kp[:, 12]) / 2, (kp[:, 10] + kp[:, 13]) / 2
    below_knees = knees + (knees - top) * (BONE_LENGTH[10] / BONE_LENGTH[9])
    down_spine = top + sk.down * (size * (BONE_LENGTH[9] + BONE_LENGTH[10]))[:, None]
    end = torch.where(ankles_ok, ankles, torch.where(knees_ok, below_knees, down_spine))
    hip_half = _norm(kp[:, R_HIP] - kp[:, L_HIP]) / 2 * sk.hips_ok
    spread = torch.maximum(
        _norm(kp[:, 9] - kp[:, 12]) * knees_ok[:, 0], _norm(kp[:, 10] - kp[:, 13]) * ankles_ok[:, 0]
    )
    r_top = hip_half + cfg.thigh_radius * size
    r_end = torch.maximum(spread / 2, hip_half) + cfg.shin_radius * size
    t, off = (v[:, 0] for v in _capsule_projection(grid, top[:, None], end[:, None]))
    radius = r_top[:, None, None] + t * (r_end - r_top)[:, None, None]
    return torch.sigmoid((1 - off / radius.clamp_min(1e-3)) / cfg.softness)


def _soft_support(dist: torch.Tensor, available: torch.Tensor, cfg: WarpConfig) -> torch.Tensor:
    """[B, S, H, W] each segment's soft extent; 0 for a segment whose points are missing."""
    return torch.sigmoid((1 - dist) / cfg.softness) * available[..., None, None]


def _chains(cfg: WarpConfig) -> tuple[tuple[int, ...], ...]:
    return (LEG_CHAINS if cfg.complete_legs else ()) + (ARM_CHAINS if cfg.complete_arms else ())


def body_layout(
    keypoints: torch.Tensor,
    size: tuple[int, int],
    config: WarpConfig | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> torch.Tensor:
    """[B, 1, H, W] the extent of a body with these keypoints [B, 18, 2] in an image of size
    (H, W): the soft union of its segments' capsules (of those `kinds`), as the warp paints
    them (the matte of a generator that has no warp of its own)."""
    cfg = config or WarpConfig()
    h, w = size
    kp = keypoints.float()
    sk = _skeleton(kp, h / 4, _chains(cfg))
    support = _soft_support(_support_distance(sk, _pixel_grid(h, w, kp), cfg), _available(sk), cfg)
    support = support[:, [i for i, s in enumerate(SEGMENTS) if s.kind in kinds]]
    return 1 - torch.prod(1 - support, 1, keepdim=True)


def _available(sk: _Skeleton) -> torch.Tensor:
    """[B, S] 1 where the segment's points are annotated in this image."""
    ok = sk.ok
    cols = [sk.head_ok * ok[:, NECK], sk.torso_ok]
    cols += [ok[:, s.start] * ok[:, s.end] for s in LIMBS]
    return torch.stack(cols, 1)


# -- transforms -------------------------------------------------------------------------


def _borrowed(src_avail: torch.Tensor, tgt_avail: torch.Tensor) -> torch.Tensor:
    """[B, S] 1 where a limb the target shows is missing in the source and its twin is
    seen there (`WarpConfig.borrow_twin_limbs`)."""
    return tgt_avail * (1 - src_avail) * src_avail[:, list(TWIN)]


def _source_coordinates(
    src: _Skeleton,
    tgt: _Skeleton,
    grid: PixelGrid,
    cfg: WarpConfig,
    borrow: torch.Tensor | None = None,
) -> torch.Tensor:
    """For each segment and target pixel, the source pixel it comes from: [B, S, H, W, 2].
    borrow [B, S]: those limbs come from their twin's bone, mirrored across it."""
    ratio = src.size / tgt.size
    min_len = cfg.min_bone * tgt.size
    out = []
    # head: least squares on the face points and the neck, ridge to the neck->head bone
    both = src.ok * tgt.ok
    face = [*FACE_POINTS, NECK]
    w_head = both[:, face] * torch.tensor([1.0] * len(FACE_POINTS) + [cfg.neck_weight_in_head]).to(
        both
    )
    # prior: the neck and a point above it, up the spine (face points seen in one image
    # only, e.g. a back view, say nothing of the head's tilt)
    tops = [sk.kp[:, NECK] - sk.down * (0.5 * sk.size)[:, None] for sk in (tgt, src)]
    prior = _bone_affine(tgt.kp[:, NECK], tops[0], src.kp[:, NECK], tops[1], ratio, min_len)
    head = _fit_affine(
        tgt.kp[:, face], src.kp[:, face], w_head, prior, cfg.head_ridge, tgt.head, tgt.size
    )
    out.append(head)
    # torso: neck, shoulders, hips and the spine bottom, ridge to the spine bone
    pts = list(TORSO_POINTS)
    x = torch.cat([tgt.kp[:, pts], tgt.bottom[:, None]], 1)
    y = torch.cat([src.kp[:, pts], src.bottom[:, None]], 1)
    bottom_w = torch.where(
        src.hips_ok * tgt.hips_ok > 0,
        torch.ones_like(ratio),
        torch.full_like(ratio, cfg.virtual_hip_weight),
    ) * (src.ok[:, NECK] * tgt.ok[:, NECK])
    w = torch.cat([both[:, pts], bottom_w[:, None]], 1)
    prior = _bone_affine(tgt.kp[:, NECK], tgt.bottom, src.kp[:, NECK], src.bottom, ratio, min_len)
    torso = _fit_affine(x, y, w, prior, cfg.torso_ridge, tgt.kp[:, NECK], tgt.size)
    out.append(torso)
    affines = torch.stack(out, 1)[..., None, None]  # [B, 2, 2, 3, 1, 1]
    x, y = grid
    coords = [
        torch.stack([m[:, :, 0] * x + m[:, :, 1] * y + m[:, :, 2] for m in affines.unbind(2)], -1)
    ]
    # limbs: along the bone by the bone lengths (past its ends by the body sizes), across
    # it by the body sizes
    a_t = torch.stack([tgt.kp[:, s.start] for s in LIMBS], 1)  # [B, L, 2]
    b_t = torch.stack([tgt.kp[:, s.end] for s in LIMBS], 1)
    a_s = torch.stack([src.kp[:, s.start] for s in LIMBS], 1)
    b_s = torch.stack([src.kp[:, s.end] for s in LIMBS], 1)
    mirror = torch.ones_like(a_s[..., 0])  # [B, L]
    if borrow is not None:
        twin = [TWIN[i] - 2 for i in range(2, len(SEGMENTS))]  # limb index of each twin
        take = borrow[:, 2:, None] > 0
        a_s, b_s = torch.where(take, a_s[:, twin], a_s), torch.where(take, b_s[:, twin], b_s)
        mirror = 1 - 2 * borrow[:, 2:]
    lt, ls = _norm(b_t - a_t).clamp_min(1e-3), _norm(b_s - a_s).clamp_min(1e-3)
    ut, us = (b_t - a_t) / lt[..., None], (b_s - a_s) / ls[..., None]
    lt = torch.maximum(lt, min_len[:, None])
    a_t, a_s, ut, us = (v[..., None, None] for v in (a_t, a_s, ut, us))  # [B, L, 2, 1, 1]
    rx, ry = x - a_t[:, :, 0], y - a_t[:, :, 1]  # [B, L, 1, W], [B, L, H, 1]
    along = rx * ut[:, :, 0] + ry * ut[:, :, 1]  # [B, L, H, W]
    across = ry * ut[:, :, 0] - rx * ut[:, :, 1]  # along _perp(ut)
    r = ratio[:, None, None, None]
    lt4, ls4 = lt[:, :, None, None], ls[:, :, None, None]
    along_s = torch.where(
        along < 0, along * r, torch.where(along > lt4, ls4 + (along - lt4) * r, along * ls4 / lt4)
    )
    across_s = across * r * mirror[..., None, None]
    coords.append(
        torch.stack(
            [
                a_s[:, :, 0] + along_s * us[:, :, 0] - across_s * us[:, :, 1],
                a_s[:, :, 1] + along_s * us[:, :, 1] + across_s * us[:, :, 0],
            ],
            -1,
        )
    )
    return torch.cat(coords, 1)


def _to_probabilities(parsing: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One-hot / soft [B, 8, H, W] or labels [B, H, W] -> float [B, 8, H, W]."""
    if parsing.dim() == 3:
        return F.one_hot(parsing.long(), NUM_ADGAN_CLASSES).permute(0, 3, 1, 2).to(like)
    if parsing.dim() != 4 or parsing.shape[1] != NUM_ADGAN_CLASSES:
        raise ValueError(
            f"parsing must be [B, H, W] labels or [B, 8, H, W], got {tuple(parsing.shape)}"
        )
    return parsing.to(like)


# -- the warp ---------------------------------------------------------------------------


def warp_parts(
    source: torch.Tensor,
    source_parsing: torch.Tensor,
    source_keypoints: torch.Tensor,
    target_keypoints: torch.Tensor,
    config: WarpConfig | None = None,
    *,
    layout: bool = False,
    frame: torch.Tensor | None = None,
    detail: bool = False,
) -> PartWarp:
    """Warp the source person into the target pose, per ADGAN component.

    source [B, 3, H, W] in [-1, 1]; source_parsing [B, 8, H, W] (one-hot or soft) or labels
    [B, H, W]; keypoints [B, 18, 2] (x, y) pixels of this size, -1 missing. layout: also
    the target body's `body` and `core` (a few ms at 256x176 that training and a plain
    card do not need). frame [B, 1, H, W]: 1 where the source crop shows its photo, 0 on
    the letterbox past the photo's edge, whose fill is no background (None: all photo).
    detail: also the `coords` and `weights` that carry a larger photo's detail
    (`fine_detail`)."""
    cfg = config or WarpConfig()
    b, _, h, w = source.shape
    if source_keypoints.shape != (b, 18, 2) or target_keypoints.shape != (b, 18, 2):
        raise ValueError(
            f"keypoints must be [{b}, 18, 2], got {tuple(source_keypoints.shape)} and "
            f"{tuple(target_keypoints.shape)}"
        )
    probs = _to_probabilities(source_parsing, source)  # [B, 8, H, W]
    if probs.shape[-2:] != (h, w):
        raise ValueError(f"parsing of {tuple(probs.shape[-2:])} for an image of {(h, w)}")
    if cfg.parsing_blur > 0:  # the classes still sum to 1: the blur is linear and normalised
        probs = blur(probs, cfg.parsing_blur * h / 128)
    skp, tkp = source_keypoints.to(source), target_keypoints.to(source)
    chains = _chains(cfg)
    src, tgt = _skeleton(skp, h / 4, chains), _skeleton(tkp, h / 4, chains)
    grid = _pixel_grid(h, w, source)
    n_seg = len(SEGMENTS)
    src_avail, tgt_avail = _available(src), _available(tgt)  # [B, S]
    borrow = _borrowed(src_avail, tgt_avail) if cfg.borrow_twin_limbs else None

    # -- who owns each source pixel: soft-min over the source capsules + class prior
    rank = {kind: i for i, kind in enumerate(reversed(cfg.layer_order))}
    bonus = torch.tensor([cfg.front_bonus * rank[s.kind] / (len(KINDS) - 1) for s in SEGMENTS]).to(
        source
    )
    compat = torch.tensor([cfg.compatibility[s.kind] for s in SEGMENTS]).to(source)  # [S, 8]
    a, e, r = _capsules(src, cfg)
    dist = _capsule_distance(grid, a, e) / r[..., None, None]  # [B, S, H, W]
    logits = (1 + bonus[None, :, None, None] - dist) / cfg.ownership_temperature
    logits = logits + torch.log(src_avail.clamp_min(1e-12))[..., None, None]
    logits = logits[:, :, None] + torch.log(compat.clamp_min(1e-12))[None, :, :, None, None]
    if cfg.head_owns_face > 0:
        head, face = SEGMENT_NAMES.index("head"), ADGAN_CLASSES.index("face")
        in_head = torch.sigmoid((cfg.head_owns_face - dist[:, head]) / cfg.softness)
        in_head = in_head * src_avail[:, head, None, None]
        others = [i for i in range(n_seg) if i != head]
        logits[:, others, face] += torch.log((1 - in_head).clamp_min(1e-12))[:, None]
    own = torch.softmax(logits, 1)  # [B, S, 8, H, W] per class
    if cfg.skirt_in_one_piece:  # the torso alone carries a skirt hanging from the hips
        hanging = _hanging_from_hips(probs[:, SKIRT], dist[:, TORSO])[:, None]  # [B, 1, H, W]
        if hanging.amax() > 0:
            alone = torch.zeros_like(own[:1, :, SKIRT])  # [1, S, H, W]
            alone[:, TORSO] = 1.0
            own = own.clone()
            own[:, :, SKIRT] = torch.lerp(own[:, :, SKIRT], alone, hanging)
    person_probs = probs.clone()
    person_probs[:, 0] = 0
    owned = own * person_probs[:, None] * src_avail[..., None, None, None]  # [B, S, 8, H, W]
    if borrow is not None:  # a borrowed limb carries what its twin owns
        for i in torch.nonzero(borrow.amax(0)).flatten().tolist():
            take = borrow[:, i, None, None, None] > 0
            owned[:, i] = torch.where(take, owned[:, TWIN[i]], owned[:, i])
        src_avail = torch.maximum(src_avail, borrow)
    usable = src_avail * tgt_avail

    # -- warp image and owned classes with each segment's transform
    coords = _source_coordinates(src, tgt, grid, cfg, borrow)  # [B, S, H, W, 2]
    norm = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)]).to(source)
    sample_grid = (coords * norm - 1).reshape(b * n_seg, h, w, 2)
    ones = torch.ones_like(owned[:, :, :1])
    anyone = person_probs.sum(1, keepdim=True)[:, None].expand(b, n_seg, 1, h, w)
    stack = torch.cat([source[:, None].expand(b, n_seg, 3, h, w), owned, anyone, ones], 2)
    # the garment under the source's arms: the torso's and the thighs' (a fresh stack: in place)
    under_arms = {TORSO: cfg.torso_under_arms} if cfg.torso_under_arms > 0 else {}
    if cfg.thighs_under_hands > 0:
        under_arms.update({i: cfg.thighs_under_hands for i in THIGHS})
    filled = None  # [B, N, 1, H, W] how much of those segments' colour is a fill
    dressed = source  # the source's colour, the garments under the hands filled in
    if under_arms:
        colour, worn, filled = garment_under_arms(
            source, owned, dist, src_avail, under_arms, cfg.softness
        )
        for j, s in enumerate(under_arms):
            stack[:, s, :3] = colour[:, j]
            stack[:, s, [3 + c for c in WORN]] = worn[:, j]
            dressed = torch.lerp(dressed, colour[:, j], filled[:, j])
    # -- support of each segment in the target (the target's alone): where it is sampled
    dist = _support_distance(tgt, grid, cfg)
    support = _soft_support(dist, tgt_avail, cfg)  # [B, S, H, W]
    cone = reach = None  # the skirt's cone, where the torso may carry one
    if cfg.skirt_in_one_piece and probs[:, SKIRT].amax() > 0:
        cone = _skirt_envelope(tgt, grid, cfg) * tgt_avail[:, TORSO, None, None]
        reach = support.clone()
        reach[:, TORSO] = torch.maximum(support[:, TORSO], cone)
    boxes = sampled_boxes(support if reach is None else reach, cfg.sample_support)
    grids = sample_grid.reshape(b, n_seg, h, w, 2)
    warped = sample_in_boxes(stack, grids, boxes)
    if cfg.legs_past_the_edge:
        photo = None if frame is None else frame.to(stack)
        warped = extend_legs_past_the_edge(
            stack,
            grids,
            warped,
            boxes,
            skirt=cfg.skirt_in_one_piece,
            frame=photo,
            edge_blur=cfg.legs_edge_blur * h / 128,
            dressed=dressed,
        )
    colour, carried = warped[:, :, :3], warped[:, :, 3:-2]  # [B, S, 3|8, H, W]
    someone = warped[:, :, -2]  # [B, S, H, W] the source pixel is a person (any segment's)
    inside = warped[:, :, -1]  # [B, S, H, W] 1 where the source location is in the frame

    # -- layering front to back
    valid = carried.sum(2).clamp(0, 1)  # [B, S, H, W]
    if cfg.skirt_in_one_piece and carried[:, TORSO, SKIRT].amax() > 0:
        # the torso's support reaches the legs' envelope where it carries a skirt
        skirt_share = carried[:, TORSO, SKIRT] / valid[:, TORSO].clamp_min(1e-6)
        if cone is None:
            cone = _skirt_envelope(tgt, grid, cfg) * tgt_avail[:, TORSO, None, None]
        support = support.clone()
        support[:, TORSO] = torch.maximum(support[:, TORSO], cone * skirt_share.clamp(0, 1))
    # what the source cannot show: the segment is missing there, or its transform reaches
    # outside the source frame
    missing = (tgt_avail * (1 - src_avail))[..., None, None]  # [B, S, 1, 1]
    outside = usable[..., None, None] * (1 - inside)
    # the source pixel is a person, but another segment's (an arm lying over the torso)
    hidden = (someone - valid).clamp(0, 1) * usable[..., None, None]
    opacity = torch.full((n_seg,), cfg.outside_opacity).to(source)
    if cfg.head_outside_opacity is not None:
        opacity[SEGMENT_NAMES.index("head")] = cfg.head_outside_opacity
    unseen = outside * opacity[None, :, None, None]
    # segments that cannot be filled at all also claim what nothing behind them painted,
    # and so do the parts of a segment that the source hides, by `occlusion_opacity`
    # (measured: claiming what falls outside the source frame makes the composite worse)
    claims = missing + hidden * cfg.occlusion_opacity
    if cfg.back_of_head:
        # the target shows the back of the head (no nose, no eyes) and the source the face:
        # the face cannot be carried there, it is a hole (hair is the best guess to fill)
        face = ADGAN_CLASSES.index("face")
        front = list(FACE_FRONT)
        back = (present(tkp)[:, front].sum(1) == 0) & (present(skp)[:, front].sum(1) > 0)
        if back.any():
            head = SEGMENT_NAMES.index("head")
            drop = back.to(carried)[:, None, None]  # [B, 1, 1]
            face_there = (drop * carried[:, head, face]).clamp(0, 1)  # [B, H, W]
            unseen, claims = unseen.clone(), claims.expand_as(unseen).clone()
            unseen[:, head] += face_there
            claims[:, head] += face_there
            carried = carried.clone()
            carried[:, head, face] = carried[:, head, face] * (1 - drop)
            valid = carried.sum(2).clamp(0, 1)
    paint = support * valid * usable[..., None, None]
    hole = support * (missing * cfg.hole_opacity + unseen)
    alpha = (paint + hole).clamp(0, 1)
    order = sorted(range(n_seg), key=lambda i: cfg.layer_order.index(SEGMENTS[i].kind))
    transmit = torch.ones_like(alpha[:, 0])  # [B, H, W]
    seen = torch.zeros_like(alpha)  # [B, S, H, W] what of each segment is seen
    for i in order:
        seen[:, i] = transmit * alpha[:, i]
        transmit = transmit * (1 - alpha[:, i])
    share = seen / (paint + hole).clamp_min(1e-6)  # fraction of each segment that shows
    weight = (share * support * usable[..., None, None])[:, :, None] * carried  # [B, S, 8, H, W]
    masks = weight.sum(1)  # [B, 8, H, W]
    # sum over segments of weight x colour, one segment at a time: the [B, S, 8, 3, H, W]
    # product would be the warp's largest tensor (2.3x slower on a CPU)
    layers = weight[:, 0, :, None] * colour[:, 0, None]  # [B, 8, 3, H, W]
    for s in range(1, n_seg):
        layers = layers + weight[:, s, :, None] * colour[:, s, None]
    layers = layers / masks[:, :, None].clamp_min(1e-6)
    holes = (share * hole).sum(1, keepdim=True)  # [B, 1, H, W]
    # what no layer painted but a hole covers is a hole, not background (a hole lets the
    # layers behind it show through by 1 - its opacity, never the background)
    claimed = 1 - torch.prod(1 - (support * claims).clamp(0, 1), 1)  # [B, H, W]
    holes = (holes + (transmit * claimed)[:, None]).clamp(0, 1)

    # -- background: the source's, the person cut out and filled
    person_src = (1 - probs[:, :1]).clamp(0, 1)  # [B, 1, H, W]
    grow = max(0, round(cfg.background_dilation * h / 128))
    if grow:
        person_src = square_max(person_src, grow)
    background_mask = 1 - person_src
    if frame is not None:  # the letterbox past the photo's edge is unknown, filled as the hole
        background_mask = background_mask * frame.to(background_mask)
    background = source
    sigma = cfg.background_blur * h / 128
    if sigma > 0:  # the source's own noise and JPEG do not carry over to the target's photo
        known = blur(background_mask, sigma)
        background = blur(source * background_mask, sigma) / known.clamp_min(1e-6)
    background = fill_background(background, background_mask)  # [B, 3, H, W]

    masks = masks.clone()
    masks[:, 0] = (1 - masks[:, 1:].sum(1) - holes[:, 0]).clamp_min(0)
    layers = layers.clone()
    layers[:, 0] = background
    coords_kept = weights = None
    if detail:
        own = inside.clone()  # [B, S, H, W] the segment's colour is its source pixel's
        if filled is not None:
            for j, s in enumerate(under_arms):
                fill = F.grid_sample(filled[:, j], grids[:, s], align_corners=True)[:, 0]
                own[:, s] = own[:, s] * (1 - fill)
        coords_kept, weights = coords, weight * own[:, :, None]
    body = core = None
    if layout:
        body = 1 - torch.prod(1 - support, 1, keepdim=True)
        sure = torch.maximum(
            support * outside, _soft_support(dist / cfg.matte_core, tgt_avail, cfg)
        )
        core = 1 - torch.prod(1 - sure, 1, keepdim=True)
    return PartWarp(
        layers=layers,
        masks=masks[:, :, None],
        holes=holes,
        background=background,
        background_mask=background_mask,
        segments=seen[:, :, None],
        body=body,
        core=core,
        coords=coords_kept,
        weights=weights,
        matte_ramp=cfg.matte_ramp,
    )


def fine_detail(
    coords: torch.Tensor, weights: torch.Tensor, detail: torch.Tensor, scale: int
) -> torch.Tensor:
    """What a card `scale` times the warp's size gains from a photo read at its size:
    detail [B, 3, sH, sW] (that photo less the warp's source enlarged: its fine detail) taken
    by each segment from where it takes its colour, coords [B, S, H, W, 2] enlarged, and
    added up by weights [B, S, H, W] enlarged (each segment's share of the warped person's
    colour at each pixel, source pixels only: `PartWarp.coords`, `PartWarp.weights` summed
    over the classes a card shows). [B, 3, sH, sW]. The geometry stays the warp's: 4 bilinear
    reads per segment and pixel instead of the whole warp again at the larger size."""
    b, n_seg, h, w, _ = coords.shape
    big_h, big_w = detail.shape[-2:]
    # coarse pixels (centres at integers) -> fine ones -> grid_sample's [-1, 1]
    where = coords.permute(0, 1, 4, 2, 3).reshape(b, n_seg * 2, h, w) * scale + (scale - 1) / 2
    where = F.interpolate(where, size=(big_h, big_w), mode="bilinear", align_corners=False)
    where = where.reshape(b, n_seg, 2, big_h, big_w).permute(0, 1, 3, 4, 2)
    norm = torch.tensor([2 / max(big_w - 1, 1), 2 / max(big_h - 1, 1)]).to(where)
    taken = F.grid_sample(
        detail[:, None].expand(b, n_seg, 3, big_h, big_w).reshape(b * n_seg, 3, big_h, big_w),
        (where * norm - 1).reshape(b * n_seg, big_h, big_w, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    ).reshape(b, n_seg, 3, big_h, big_w)
    share = F.interpolate(weights, size=(big_h, big_w), mode="bilinear", align_corners=False)
    return torch.einsum("bshw,bschw->bchw", share, taken)


def composite(warp: PartWarp, hole_fill: str | torch.Tensor = "person") -> torch.Tensor:
    """The warp-only image [B, 3, H, W]: the class layers over the background (occlusion
    between segments is already resolved in the masks, front to back). Holes (person the
    source cannot show) take `hole_fill`: "person" (the warped person's colours spread into
    them by a push-pull fill), "background", or an image [B, 3, H, W]."""
    person = warp.masks[:, 1:]  # [B, 7, 1, H, W]
    fg = (person * warp.layers[:, 1:]).sum(1)  # [B, 3, H, W] premultiplied
    cover = person.sum(1).clamp(0, 1)  # [B, 1, H, W]
    if isinstance(hole_fill, torch.Tensor):
        fill = hole_fill
    elif hole_fill == "background":
        fill = warp.background
    elif hole_fill == "person":
        fill = fill_background(fg / cover.clamp_min(1e-6), cover)
        # nothing of the person is seen at all: the background
        fill = torch.where(cover.flatten(1).amax(1)[:, None, None, None] > 0, fill, warp.background)
    else:
        raise ValueError(f"hole_fill must be 'person', 'background' or an image, not {hole_fill!r}")
    return fg + warp.masks[:, 0] * warp.layers[:, 0] + warp.holes * fill


__all__ = [
    "KINDS",
    "SEGMENTS",
    "SEGMENT_NAMES",
    "PartWarp",
    "Segment",
    "WarpConfig",
    "body_layout",
    "body_size",
    "composite",
    "fill_background",
    "fine_detail",
    "warp_parts",
]
