"""What the source photo does not show, filled in at inference from what it does.

A real catalogue photo hides parts of the body a new pose shows: the arms hide the torso's
flanks, a hand rests on the thigh, the photo's edge cuts the legs. The network, trained on
SynthFashion, paints such places as a blurred guess; these rules give the warp the
garment's own class and colour there instead (`WarpConfig.torso_under_arms`,
`thighs_under_hands`, `legs_past_the_edge`, `legs_edge_blur`; docs/generator.md). Each is
an inference setting: the demo bundle sets them, training does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adgan.box_sampling import sample_within, sampled_boxes, union_box
from adgan.filters import blur, fill_background, square_max
from adgan.segments import SEGMENT_NAMES, SEGMENTS, SKIRT, TORSO, WORN
from parsing.labels import NUM_ADGAN_CLASSES


def garment_under_arms(
    source: torch.Tensor,
    owned: torch.Tensor,
    dist: torch.Tensor,
    available: torch.Tensor,
    reach: dict[int, float],
    softness: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each segment s of `reach` (the torso: `WarpConfig.torso_under_arms`; the thighs:
    `thighs_under_hands`), its colour [B, N, 3, H, W], its garment classes [B, N, K, H, W]
    (`WORN`) and how much of its colour is the fill [B, N, 1, H, W], in `reach`'s order:
    where the source's arms own the pixels within reach[s] of its radii (dist [B, S, H, W],
    in each segment's radii), the segment carries its own garment's colour and classes there,
    spread from the pixels it owns (a push-pull fill: a garment's mean colour, not its
    print). The segments are filled together, as one batch."""
    arms = [i for i, s in enumerate(SEGMENTS) if s.kind in ("upper_arm", "forearm")]
    segments = list(reach)
    garment = owned[:, segments][:, :, list(WORN)]  # [B, N, K, H, W]
    shown = garment.sum(2, keepdim=True).clamp(0, 1)  # [B, N, 1, H, W]
    limit = torch.tensor([reach[s] for s in segments]).to(dist)[:, None, None]
    near = torch.sigmoid((limit - dist[:, segments]) / softness)[:, :, None]
    hands = owned[:, arms].sum((1, 2))[:, None, None].clamp(0, 1)  # [B, 1, 1, H, W]
    under = hands * near * (1 - shown) * available[:, segments, None, None, None]
    # the fill is smooth: at half the resolution, then enlarged
    b, n, k, h, w = garment.shape
    flat = [t.flatten(0, 1) for t in (source[:, None] * shown, garment, shown)]
    half = [F.avg_pool2d(t, 2, ceil_mode=True) for t in flat]
    filled = fill_background(torch.cat(half[:2], 1) / half[2].clamp_min(1e-6), half[2])
    filled = F.interpolate(filled, size=(h, w), mode="bilinear", align_corners=False)
    filled = filled.view(b, n, 3 + k, h, w)
    colour = torch.lerp(source[:, None], filled[:, :, :3], under)
    return colour, garment + under * filled[:, :, 3:], under


def extend_legs_past_the_edge(
    stack: torch.Tensor,
    sample_grid: torch.Tensor,
    warped: torch.Tensor,
    boxes: torch.Tensor,
    skirt: bool = False,
    frame: torch.Tensor | None = None,
    edge_blur: float = 0.0,
    dressed: torch.Tensor | None = None,
) -> torch.Tensor:
    """`warped` [B, S, C, H, W] with its leg segments, where they sample outside the source
    photo, sampled again with the photo's edge replicated: colour, classes and person go on as
    the edge shows them, the colour first averaged, class by class, over each leg's own pixels
    in the photo by a Gaussian of sigma `edge_blur` pixels (`smoothed_by_class`); what the edge
    shows of the person that a leg cannot carry (a hand on the thigh) becomes the leg's garment
    near it (`spread_into_person`). The photo is the crop, or where `frame` [B, 1, H, W] says
    the crop shows it (a crop past the photo's bottom edge is letterboxed: its white band is no
    edge). Past the edge a leg is one piece (a completed knee lies below the frame, so the shin
    owns nothing at the edge: it takes what its thigh owns). skirt: the torso's skirt goes on
    too, and only its skirt (`skirt_in_one_piece`: the torso alone carries it). The last
    channel, inside the frame, stays (what lies outside is still known to lie outside). Within
    each segment's boxes (`sampled_boxes`; beyond an item's own box its segment lies inside the
    photo, so nothing changes there). Changes `warped` in place (grid_sample's backward does not
    need its output)."""
    pairs = [(SEGMENT_NAMES.index(f"{s}_thigh"), SEGMENT_NAMES.index(f"{s}_shin")) for s in "rl"]
    legs = [i for pair in pairs for i in pair]
    going_on = [*legs, TORSO] if skirt else legs
    pieces = stack[:, going_on, :-1]  # [B, 4 (+1), C - 1, H, W], a copy: colour, classes, person
    for k, (thigh, shin) in enumerate(pairs):
        pieces[:, 2 * k : 2 * k + 2, 3:-1] = (stack[:, thigh, 3:-2] + stack[:, shin, 3:-2])[:, None]
    if skirt:
        classes = pieces[:, -1, 3:-1]  # [B, 8, H, W]: the torso's skirt alone, and its person
        kept = classes[:, SKIRT].clone()
        classes.zero_()[:, SKIRT] = kept
        pieces[:, -1, -1] = kept
    # past the edge only the leg goes on: what its edge row shows of the person that a leg
    # cannot carry (a hand resting on the thigh) is the leg's own garment around it, not a
    # gap down the leg
    leg = pieces[:, : len(legs)]
    worn = [3 + i for i in range(NUM_ADGAN_CLASSES) if leg[:, :, 3 + i].amax() > 1e-3]
    alien = [3 + i for i in range(1, NUM_ADGAN_CLASSES) if 3 + i not in worn]
    rest = stack[:, :, alien].sum((1, 2))[:, None, None]  # [B, 1, 1, H, W]
    if worn and rest.amax() > 0:  # once per pair: a thigh and its shin carry alike here
        one = leg[:, ::2]
        classes, colour = spread_into_person(
            one[:, :, worn], one[:, :, :3], rest, max(edge_blur, 1.0)
        )
        for j in range(len(legs)):
            pieces[:, j, worn], pieces[:, j, :3] = classes[:, j // 2], colour[:, j // 2]
    leg[:, :, -1] = leg[:, :, 3:-1].sum(2).clamp(0, 1)
    carried = [3 + i for i in range(NUM_ADGAN_CLASSES) if pieces[:, :, 3 + i].amax() > 1e-3]
    if edge_blur > 0 and carried:  # the classes a leg carries, their colour averaged within
        # the photo (a leg that carries none, as where the parse shows no person there, keeps
        # the edge's own colour)
        classes = stack[:, :, carried].sum(1)  # [B, K, H, W]: the person's, whoever owns it
        if frame is not None:
            classes = classes * frame
        shares = pieces[:, :, carried]  # [B, P, K, H, W]: each leg's own
        photo_colour = stack[:, 0, :3] if dressed is None else dressed
        pieces[:, :, :3] = smoothed_by_class(
            photo_colour, classes, shares, edge_blur, own=pieces[:, :, :3]
        )
    photo = None if frame is None else photo_box(frame)
    for j, s in enumerate(going_on):
        union = union_box(boxes[:, s])
        if union is None:
            continue
        y0, y1, x0, x1 = union
        grid = sample_grid[:, s]
        if photo is None:
            edge = sample_within(pieces[:, j], grid, union, "border")
        else:  # the photo's edge: its box's nearest row or column, as border padding does
            inside = torch.minimum(torch.maximum(grid, photo[0]), photo[1])
            edge = sample_within(pieces[:, j], inside, union, "border")
        there = warped[:, s, :, y0:y1, x0:x1]
        if frame is None:
            outside = 1 - there[:, -1:]
        else:
            outside = 1 - sample_within(frame, grid, union, "zeros")
        there[:, :-1] = there[:, :-1].lerp_(edge, outside)
    return warped


def spread_into_person(
    classes: torch.Tensor, colour: torch.Tensor, rest: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """classes [..., K, H, W] (what a segment owns) with `rest` [..., 1, H, W] (a share of
    the person the segment cannot carry) given to them in their proportions near each pixel,
    and that share's colour [..., 3, H, W] the owned pixels' colour near it (Gaussian,
    `sigma` pixels; computed at about sigma / 2 pixels and enlarged): where a hand lies on a
    trouser leg, trousers in the trousers' colour. Where nothing owned is near, it stays
    unowned."""
    c, rgb = classes.flatten(0, -4), colour.flatten(0, -4)
    _, k, h, w = c.shape
    rest = rest.expand(*classes.shape[:-3], 1, h, w).flatten(0, -4)
    mass = c.sum(1, keepdim=True)
    f = max(1, int(sigma / 2))
    small = F.interpolate(
        torch.cat([c, mass, rgb * mass], 1), size=(-(-h // f), -(-w // f)), mode="area"
    )
    near = blur(small, sigma / f)
    # the shares in full only where the owned classes fill a sixth of the neighbourhood or
    # more: a hand on or over the side of a trouser leg, not one held away from it
    shares = near[:, :k] / near[:, k : k + 1].clamp_min(0.15)
    near = torch.cat([shares, near[:, k + 1 :] / near[:, k : k + 1].clamp_min(1e-3)], 1)
    near = F.interpolate(near, size=(h, w), mode="bilinear")
    shares, tint = near[:, :k].clamp(0, 1), near[:, k:]
    given = rest * shares.sum(1, keepdim=True)  # how much of the pixel the segment now owns
    rgb = torch.lerp(rgb, tint, (given / (mass + given).clamp_min(1e-6)).clamp(0, 1))
    return (c + rest * shares).reshape(classes.shape), rgb.reshape(colour.shape)


def smoothed_by_class(
    colour: torch.Tensor,
    classes: torch.Tensor,
    shares: torch.Tensor,
    sigma: float,
    own: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, P, 3, H, W]: colour [B, 3, H, W] averaged class by class (Gaussian, `sigma` pixels):
    for each class of classes [B, K, H, W], its mean colour near each pixel (a normalised
    convolution over the class's inside, eroded by sigma: trousers take the trousers' colour,
    not the hand resting on them, the soft parse's border or the background beside them); each
    of P pieces mixes them by its shares [B, P, K, H, W] of the classes. Where a class has all
    but no weight nearby, and where a piece holds no class, the pixel keeps its own colour
    (`own` [B, P, 3, H, W], each piece's; else `colour`'s). Computed at a scale of about sigma /
    2 pixels and enlarged (what it gives is smooth): 5 ms a 256x176 card at batch 1, not 44."""
    b, k, h, w = classes.shape
    f = max(1, int(sigma / 2))
    small = F.interpolate(
        torch.cat([colour, classes], 1), size=(-(-h // f), -(-w // f)), mode="area"
    )
    c, p = small[:, :3], small[:, 3:]
    s = sigma / f
    inside = 1 - square_max(1 - p, max(1, round(s)))  # a class's edge is half its neighbour
    weight = inside + 0.01 * p  # ... or, where it is too narrow for an inside, all of it
    sums = blur(torch.cat([(c[:, None] * weight[:, :, None]).flatten(1, 2), weight], 1), s)
    eps = 1e-3
    means = sums[:, : 3 * k] / (sums[:, 3 * k :].repeat_interleave(3, 1) + eps)
    known = sums[:, 3 * k :] / (sums[:, 3 * k :] + eps)  # [B, K, h, w]
    both = F.interpolate(torch.cat([means, known], 1), size=(h, w), mode="bilinear")
    means, known = both[:, : 3 * k].view(b, 1, k, 3, h, w), both[:, 3 * k :, None, None]
    own = colour[:, None] if own is None else own  # [B, P or 1, 3, H, W]
    shares = shares / shares.sum(2, keepdim=True).clamp_min(1.0)
    mixed = shares[:, :, :, None] * torch.lerp(own[:, :, None], means, known.transpose(1, 2))
    return mixed.sum(2) + (1 - shares.sum(2)[:, :, None]) * own


def photo_box(frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The box that frame [B, 1, H, W] (over 0.5) shows the photo in, as the least and the
    greatest sampling coordinates inside it ([B, 1, 1, 2] each, (x, y) in grid_sample's
    [-1, 1] with aligned corners); the whole crop where no photo is shown."""
    _, _, h, w = frame.shape
    box = sampled_boxes(frame, 0.5)[:, 0].to(frame)  # [B, 4]: y0, y1, x0, x1 (exclusive)
    box[box[:, 0] >= box[:, 1]] = torch.tensor([0.0, h, 0.0, w]).to(frame)
    lo = torch.stack([box[:, 2], box[:, 0]], 1)  # (x, y) of the first column and row
    hi = torch.stack([box[:, 3], box[:, 1]], 1) - 1
    scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)]).to(frame)
    return (lo * scale - 1)[:, None, None], (hi * scale - 1)[:, None, None]
