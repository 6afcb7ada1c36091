"""Behaviour of the explicit per-segment part warp (adgan/warp.py) on SynthFashion people."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adgan.filters import square_max
from adgan.generators import one_hot, to_tensor
from adgan.metrics import ssim
from adgan.unseen import smoothed_by_class, spread_into_person
from adgan.warp import (
    KINDS,
    SEGMENT_NAMES,
    PartWarp,
    WarpConfig,
    body_layout,
    composite,
    warp_parts,
)
from keypoints.skeleton import flip_keypoints
from parsing.labels import ADGAN_INDEX
from synth.config import SynthConfig
from synth.identity import sample_identity
from synth.posebank import jitter_pose, read_bank
from synth.render import render_person

SIZE = (128, 88)
KINDS_BACK_TO_FRONT = tuple(reversed(KINDS))
BANK = read_bank()
# full-body front rows with every arm and leg point annotated
FRONT = [
    i
    for i, r in enumerate(BANK)
    if r.view == "front" and r.observed[2:14].all() and r.observed[[0, 14, 15]].all()
]


def _person(seed: int, row: int):
    cfg = SynthConfig(size=SIZE)
    ident = sample_identity(seed, "test", np.random.default_rng(seed), cfg)
    pose = jitter_pose(BANK[row], np.random.default_rng(seed), cfg.pose, size=SIZE, flip=False)
    return render_person(ident, pose, cfg, np.random.default_rng(seed))


def _all_visible(out) -> bool:
    return bool((out.keypoints[2:14] >= 0).all())


@pytest.fixture(scope="module")
def people():
    """Full-body front renders with all limb points visible."""
    found = []
    for k, row in enumerate(FRONT[:60]):
        out = _person(100 + k, row)
        if _all_visible(out):
            found.append(out)
        if len(found) == 4:
            break
    assert len(found) == 4
    return found


def _wearing(label: int, pixels: int, first_seed: int, count: int = 3) -> list:
    """The first `count` full-body front renders with every limb point visible and more
    than `pixels` of class `label`."""
    found = []
    for k, row in enumerate(FRONT):
        person = _person(first_seed + k, row)
        if _all_visible(person) and (person.labels == label).sum() > pixels:
            found.append(person)
        if len(found) == count:
            return found
    raise AssertionError(f"fewer than {count} people wear class {label}")


def _tensors(outs, images=None):
    images = images if images is not None else [o.image for o in outs]
    src = torch.stack([to_tensor(im) for im in images])
    parsing = torch.stack([one_hot(o.labels) for o in outs])
    kp = torch.stack([torch.from_numpy(o.keypoints.astype(np.float32)) for o in outs])
    return src, parsing, kp


def _uint8(t: torch.Tensor) -> np.ndarray:
    return t.detach().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()


def test_output_shapes_and_masks_partition_the_image(people):
    src, parsing, kp = _tensors(people[:2])
    tgt = kp.flip(0)  # each to the other's pose
    warp = warp_parts(src, parsing, kp, tgt)
    b, (h, w), s = 2, SIZE, len(SEGMENT_NAMES)
    assert isinstance(warp, PartWarp)
    assert warp.layers.shape == (b, 8, 3, h, w)
    assert warp.masks.shape == (b, 8, 1, h, w)
    assert warp.holes.shape == warp.background_mask.shape == (b, 1, h, w)
    assert warp.background.shape == (b, 3, h, w)
    assert warp.segments.shape == (b, s, 1, h, w)
    total = warp.masks.sum(1) + warp.holes
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-4, rtol=0)
    assert composite(warp).shape == (b, 3, h, w)
    # a label map gives the same as its one-hot
    labels = torch.stack([torch.from_numpy(o.labels.astype(np.int64)) for o in people[:2]])
    again = warp_parts(src, labels, kp, tgt)
    torch.testing.assert_close(composite(again), composite(warp))


def test_own_pose_gives_back_the_person(people):
    src, parsing, kp = _tensors(people)
    warp = warp_parts(src, parsing, kp, kp)
    out = composite(warp)
    person = torch.stack([torch.from_numpy(o.labels > 0) for o in people])  # [B, H, W]
    err = (out - src).abs().mean(1) / 2  # [B, H, W] on [0, 1]
    assert err[person].mean() < 0.03, err[person].mean()
    # most of the person is carried as the person (not left to the background)
    assert warp.person[:, 0][person].mean() > 0.9
    scores = ssim(_uint8(src), _uint8(out))
    assert scores.min() > 0.9, scores
    # class masks follow the source parsing
    labels = warp.masks[:, :, 0].argmax(1)
    truth = torch.stack([torch.from_numpy(o.labels.astype(np.int64)) for o in people])
    assert (labels == truth)[person].float().mean() > 0.9


def test_left_and_right_are_kept(people):
    """The right arm painted red lands on the target's right arm, the left (blue) on its
    left, when the target is the mirrored pose (right and left arms swap places)."""
    outs = people[:2]
    images = []
    for o in outs:
        im = o.image.copy()
        arm = o.labels > 0
        ys, xs = np.mgrid[: SIZE[0], : SIZE[1]]
        for joints, colour in (((3, 4), (255, 0, 0)), ((6, 7), (0, 0, 255))):
            a, b = o.keypoints[joints[0]], o.keypoints[joints[1]]
            near = np.zeros(SIZE, bool)
            for t in np.linspace(0, 1, 8):
                p = a + t * (b - a)
                near |= (xs - p[0]) ** 2 + (ys - p[1]) ** 2 < 9
            im[arm & near] = colour
        images.append(im)
    src, parsing, kp = _tensors(outs, images)
    tgt = torch.stack([torch.from_numpy(flip_keypoints(o.keypoints, SIZE[1])) for o in outs])
    out = _uint8(composite(warp_parts(src, parsing, kp, tgt))).astype(int)
    for j in range(len(outs)):
        for joints, want in (((3, 4), 0), ((6, 7), 2)):  # right: red channel, left: blue
            a, b = tgt[j, joints[0]].numpy(), tgt[j, joints[1]].numpy()
            pts = [a + t * (b - a) for t in (0.4, 0.5, 0.6, 0.7)]
            colours = np.array([out[j, round(p[1]), round(p[0])] for p in pts])
            other = 2 - want
            assert (colours[:, want] - colours[:, other]).mean() > 60, (joints, colours)


def test_missing_points_drop_or_hole_their_segments(people):
    src, parsing, kp = _tensors(people[:1])
    r_upper, r_fore = SEGMENT_NAMES.index("r_upper_arm"), SEGMENT_NAMES.index("r_forearm")
    # missing in the target: the segment is absent
    tgt = kp.clone()
    tgt[:, 4] = -1  # r-wrist
    warp = warp_parts(src, parsing, kp, tgt)
    assert warp.segments[:, r_fore].max() == 0
    assert warp.segments[:, r_upper].max() > 0.5
    # missing in the source: the target's forearm cannot be filled
    bad = kp.clone()
    bad[:, 4] = -1
    warp = warp_parts(src, parsing, bad, kp, WarpConfig(hole_opacity=1.0))
    a, b = kp[0, 3].numpy(), kp[0, 4].numpy()
    for t in (0.3, 0.5, 0.7):
        x, y = (round(v) for v in a + t * (b - a))
        assert warp.person[0, 0, y, x] < 0.05
        assert warp.holes[0, 0, y, x] > 0.9
    assert warp.segments[:, r_upper].max() > 0.5
    # nothing annotated in the source: nothing of the person, and no NaN
    none = torch.full_like(kp, -1.0)
    warp = warp_parts(src, parsing, none, kp)
    assert warp.person.max() < 1e-4
    assert torch.isfinite(composite(warp)).all()


def test_the_matte_covers_the_target_body_even_where_the_source_cannot_show_it(people):
    src, parsing, kp = _tensors(people[:1])
    tgt = kp.clone()  # its own pose
    cut = kp.clone()
    cut[:, [9, 10, 12, 13]] = -1  # the source is cut above the knees: no shins to carry
    warp = warp_parts(src, parsing, cut, tgt, layout=True)
    h, w = SIZE
    torch.testing.assert_close(warp.body, body_layout(tgt, SIZE), atol=1e-5, rtol=0)
    for knee, ankle in ((9, 10), (12, 13)):  # the target's shins are in the matte
        x, y = (round(v) for v in ((tgt[0, knee] + tgt[0, ankle]) / 2).tolist())
        assert warp.person[0, 0, y, x] < 0.5 < warp.matte[0, 0, y, x]
    # the warped garments' own shape is in it, and the photo's corners are not; it is
    # tighter than the capsules, which reach past the person
    solid = warp.person >= 0.5 + WarpConfig().matte_ramp / 2
    assert solid.sum() > 100 and (warp.matte[solid] > 1 - 1e-6).all()
    assert (warp.core <= warp.body + 1e-6).all()
    assert warp.matte.sum() < 0.95 * warp.body.sum()
    for y, x in ((0, 0), (0, w - 1), (h - 1, 0)):
        assert warp.matte[0, 0, y, x] < 0.05
    # no body, no matte
    assert body_layout(torch.full_like(tgt, -1.0), SIZE).max() < 1e-6


def test_the_matte_is_steepened_about_its_middle(people):
    """The warp's support fades over pixels: unsteepened, a tenth of a SynthFashion card is a
    faint veil of matte, the network's background showing through on a plain backdrop."""
    src, parsing, kp = _tensors(people[:2])
    tgt = kp.flip(0).clone()
    loose = warp_parts(src, parsing, kp, tgt, WarpConfig(matte_ramp=1.0), layout=True).matte
    steep = warp_parts(src, parsing, kp, tgt, layout=True).matte
    ramp = WarpConfig().matte_ramp
    torch.testing.assert_close(steep, ((loose - 0.5) / ramp + 0.5).clamp(0, 1))
    veil = (loose > 0.02) & (loose < 0.5 - ramp / 2)
    assert veil.float().mean() > 0.005 and (steep[veil] == 0).all()
    with pytest.raises(ValueError, match="matte_ramp"):
        WarpConfig(matte_ramp=0.0)


def test_gradients_reach_image_and_keypoints(people):
    src, parsing, kp = _tensors(people[:2])
    tgt = kp.flip(0).clone()
    src.requires_grad_(True)
    kp.requires_grad_(True)
    tgt.requires_grad_(True)
    out = composite(warp_parts(src, parsing, kp, tgt))
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    for t in (src, kp, tgt):
        assert t.grad is not None and torch.isfinite(t.grad).all()
        assert t.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(
            torso_under_arms=1.0,
            skirt_in_one_piece=True,
            legs_past_the_edge=True,
            borrow_twin_limbs=True,
        ),
    ],
)
def test_a_batch_equals_one_at_a_time(people, overrides):
    src, parsing, kp = _tensors(people[:3])
    tgt = kp.roll(1, 0)
    tgt[1, 9:14] = -1  # a target cut at the thigh
    cfg = WarpConfig(**overrides)
    whole = warp_parts(src, parsing, kp, tgt, cfg)
    for j in range(3):
        one = warp_parts(src[j : j + 1], parsing[j : j + 1], kp[j : j + 1], tgt[j : j + 1], cfg)
        torch.testing.assert_close(one.layers, whole.layers[j : j + 1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(one.masks, whole.masks[j : j + 1], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(composite(one), composite(whole)[j : j + 1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("overrides", [{}, dict(skirt_in_one_piece=True, legs_past_the_edge=True)])
def test_sampling_each_segment_where_it_reaches_changes_nothing_that_shows(people, overrides):
    """`sample_support`: each segment sampled only within the box where its support (or a
    skirt's cone) exceeds 1e-4 gives the warp of sampling everywhere, to 1e-3."""
    src, parsing, kp = _tensors(people[:3])
    tgt = kp.roll(1, 0)
    tgt[1, 9:14] = -1  # a target cut at the thigh
    boxed = warp_parts(src, parsing, kp, tgt, WarpConfig(**overrides), layout=True)
    everywhere = warp_parts(
        src, parsing, kp, tgt, WarpConfig(**overrides, sample_support=0.0), layout=True
    )
    for name in ("layers", "masks", "holes", "segments", "core"):
        torch.testing.assert_close(
            getattr(boxed, name), getattr(everywhere, name), atol=1e-3, rtol=0
        )
    torch.testing.assert_close(composite(boxed), composite(everywhere), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="sample_support"):
        WarpConfig(sample_support=0.5)


def test_a_back_view_target_gets_no_face_and_its_batch_neighbour_keeps_one(people):
    """A target without nose and eyes shows the back of the head: the source's face is not
    carried there (a hole, hair the best guess), while a front-view target in the same batch
    keeps its face, as warped alone."""
    src, parsing, kp = _tensors(people[:2])
    tgt = kp.clone()
    tgt[0, [0, 14, 15]] = -1  # the first target is seen from behind
    face = ADGAN_INDEX["face"]
    cfg = WarpConfig(back_of_head=True)
    both = warp_parts(src, parsing, kp, tgt, cfg)
    front = warp_parts(src[1:], parsing[1:], kp[1:], tgt[1:], cfg)
    plain = warp_parts(src[:1], parsing[:1], kp[:1], tgt[:1], WarpConfig(back_of_head=False))
    face_px = plain.masks[0, face, 0] > 0.5
    assert face_px.sum() > 20  # without the rule the face is carried onto the back
    # the head's face goes (what the torso owns of the chin stays)
    carried = both.masks[0, face, 0][face_px].sum()
    assert carried < 0.5 * plain.masks[0, face, 0][face_px].sum()
    assert both.holes[0, 0][face_px].mean() > 0.4
    torch.testing.assert_close(both.masks[1:], front.masks, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(both.holes[1:], front.holes, atol=1e-5, rtol=1e-4)


def test_warp_moves_the_person_towards_the_target(people):
    """Another pose of a person beats the source photo, against the target rendered."""
    a, b = people[0], people[1]
    cfg = SynthConfig(size=SIZE)
    ident = sample_identity(100, "test", np.random.default_rng(100), cfg)
    # the first person (identity seed 100) in the second person's pose
    pose = jitter_pose(BANK[FRONT[1]], np.random.default_rng(101), cfg.pose, size=SIZE, flip=False)
    target = render_person(ident, pose, cfg, np.random.default_rng(100))
    del b
    src, parsing, kp = _tensors([a])
    tgt = torch.from_numpy(target.keypoints.astype(np.float32))[None]
    out = composite(warp_parts(src, parsing, kp, tgt))
    truth = target.image[None]
    assert ssim(truth, _uint8(out))[0] > ssim(truth, a.image[None])[0]


def test_hair_past_the_head_capsule_is_carried_with_a_wider_head_support(people):
    """Real hair reaches past the capsule a synthetic head fills: `head_support` lets the
    head carry it instead of cutting it off; elsewhere the warp is unchanged."""
    person = people[0]
    src, parsing, kp = _tensors([person])
    hair = ADGAN_INDEX["hair"]
    neck, nose = kp[0, 1], kp[0, 0]
    # a mane: hair out to 0.5 torso lengths around the nose, wherever the photo has background
    yy, xx = torch.meshgrid(torch.arange(SIZE[0]), torch.arange(SIZE[1]), indexing="ij")
    torso = float(torch.linalg.vector_norm(kp[0, 1] - (kp[0, 8] + kp[0, 11]) / 2))
    reach = torch.hypot(xx - nose[0], yy - nose[1]) / torso
    mane = (reach < 0.5) & (parsing[0, 0] > 0.5) & (yy < neck[1])
    parsing = parsing.clone()
    parsing[0, :, mane] = 0
    parsing[0, hair, mane] = 1
    # above the nose and beyond the head capsule's reach (0.28 torso lengths from its centre)
    far = mane & (reach > 0.36) & (reach < 0.44) & (yy < nose[1])
    assert far.sum() > 20

    plain = warp_parts(src, parsing, kp, kp, WarpConfig())
    wide = warp_parts(src, parsing, kp, kp, WarpConfig(head_support=1.6))
    assert plain.masks[0, hair, 0][far].mean() < 0.15
    assert wide.masks[0, hair, 0][far].mean() > 0.6
    below = yy > kp[0, 8, 1]  # under the hips nothing moves
    torch.testing.assert_close(wide.masks[0, :, 0][:, below], plain.masks[0, :, 0][:, below])


def test_a_head_cut_by_the_photo_edge_can_go_on_as_a_hole(people):
    """`head_outside_opacity`: where the head's transform reaches above the source photo
    (a head cut by its top edge), a hole (hair goes on past the frame), not background."""
    image, parsing, kp = _tensors(people[:1])
    cut = 10  # the source photo starts this many rows lower: the top of the head is cut off
    src = torch.cat([image[:, :, cut:], image[:, :, -1:].expand(-1, -1, cut, -1)], 2)
    src_parsing = torch.cat([parsing[:, :, cut:], parsing[:, :, -1:].expand(-1, -1, cut, -1)], 2)
    src_kp = torch.where(kp >= 0, kp - torch.tensor([0.0, cut]), kp)
    plain = warp_parts(src, src_parsing, src_kp, kp, WarpConfig(head_support=1.6))
    config = WarpConfig(head_support=1.6, head_outside_opacity=1.0)
    open_top = warp_parts(src, src_parsing, src_kp, kp, config)
    head = open_top.segments[0, SEGMENT_NAMES.index("head"), 0]
    region = torch.zeros_like(head, dtype=torch.bool)
    region[: cut - 1] = head[: cut - 1] > 0.5  # rows whose source lies above the photo
    assert region.sum() > 10
    assert plain.holes[0, 0][region].max() < 0.05
    assert open_top.holes[0, 0][region].min() > 0.5
    below = torch.arange(SIZE[0]) > cut + 20
    torch.testing.assert_close(open_top.masks[0, :, 0][:, below], plain.masks[0, :, 0][:, below])


def _edge_wiggle(warp: PartWarp, top: int, bottom: int) -> float:
    """Mean |second difference| down the rows of where the person's left edge crosses 0.5
    (sub-pixel): 0 for a straight or gently curved edge, large for a sawtooth."""
    person = warp.masks[0, 1:, 0].sum(0).numpy()
    xs = []
    for row in person[top:bottom]:
        inside = np.nonzero(row >= 0.5)[0]
        if len(inside) == 0 or inside[0] == 0:
            continue
        j = inside[0]
        xs.append(j - 1 + (0.5 - row[j - 1]) / (row[j] - row[j - 1]))
    xs = np.array(xs)
    assert len(xs) > 8
    return float(np.abs(xs[2:] - 2 * xs[1:-1] + xs[:-2]).mean())


def test_a_zoomed_parse_edge_is_smoother_with_parsing_blur(people):
    """A hard label map's pixel staircase, zoomed 2x by the re-posing, is a sawtooth along
    the head's outline; `parsing_blur` (0.5 px, the demo's at 256 rows) smooths it."""
    hard, soft = [], []
    for person in people:
        src, parsing, kp = _tensors([person])
        neck = kp[0, 1]
        zoomed = torch.where(kp >= 0, (kp - neck) * 2 + neck, kp)
        top, bottom = int(max(0, zoomed[0, 0, 1] - 30)), int(neck[1])
        hard.append(_edge_wiggle(warp_parts(src, parsing, kp, zoomed), top, bottom))
        blurred = warp_parts(src, parsing, kp, zoomed, WarpConfig(parsing_blur=0.5))
        soft.append(_edge_wiggle(blurred, top, bottom))
    assert all(s < h for s, h in zip(soft, hard, strict=True))
    assert sum(soft) < 0.95 * sum(hard)


def test_a_head_drawn_out_to_the_neck_carries_the_chin(people):
    """A target whose head sits higher above the shoulders than the source's (a tilted or
    lifted head, a close-up): as trained the head is a disc about the face's points, and
    what lies below it towards the neck is left to the network; with `head_neck_reach` the
    head's capsule runs towards the neck and carries the chin from the source."""
    face = [0, 14, 15, 16, 17]
    head_seg = SEGMENT_NAMES.index("head")
    steps = torch.linspace(0, 1, 51)

    def head_reach(warp: PartWarp, head: torch.Tensor, neck: torch.Tensor) -> float:
        """How far from the face's centre towards the neck the head paints (share of the way)."""
        points = (head + steps[:, None] * (neck - head)).round().long()
        cover = warp.segments[0, head_seg, 0, points[:, 1], points[:, 0]]
        return float(steps[cover > 0.5].max())

    for person in people:
        src, parsing, kp = _tensors([person])
        seen = [i for i in face if (kp[0, i] >= 0).all()]
        raised = kp.clone()
        raised[0, seen] = kp[0, seen] - torch.tensor([0.0, 6.0])
        head, neck = raised[0, seen].mean(0), raised[0, 1]
        as_trained = warp_parts(src, parsing, kp, raised)
        drawn_out = warp_parts(src, parsing, kp, raised, WarpConfig(head_neck_reach=0.3))
        assert head_reach(drawn_out, head, neck) >= head_reach(as_trained, head, neck) + 0.05
        # the face itself is the head's either way
        x, y = head.round().long().tolist()
        assert drawn_out.segments[0, head_seg, 0, y, x] > 0.99


def test_a_bowed_heads_face_stays_with_the_head(people):
    """A bowed head hides the neck: the neck point (mid-shoulders) lies under the chin, on
    the face, and the torso's capsule reaches into it. The torso carries the neck (labelled
    face), so as trained it took the chin and mouth down to the upright target's neck, a
    second face on the chest; with `head_owns_face` the face near the head is the head's."""
    face = ADGAN_INDEX["face"]
    torso, head = SEGMENT_NAMES.index("torso"), SEGMENT_NAMES.index("head")
    for person in people:
        src, parsing, kp = _tensors([person])
        seen = [i for i in (0, 14, 15, 16, 17) if (kp[0, i] >= 0).all()]
        centre = kp[0, seen].mean(0)
        bowed = kp.clone()
        bowed[0, 1] = centre + 0.4 * (kp[0, 1] - centre)  # the neck point on the chin

        carried = []
        for cfg in (WarpConfig(), WarpConfig(head_owns_face=2.0)):
            warp = warp_parts(src, parsing, bowed, kp, cfg)
            torso_face = warp.masks[0, face, 0] * (warp.segments[0, torso, 0] > 0.5)
            carried.append(float(torso_face.sum()))
        as_trained, owned = carried
        assert as_trained > 15 and owned < as_trained / 3, (as_trained, owned)
        x, y = centre.round().long().tolist()  # the face itself is still the head's
        assert warp.segments[0, head, 0, y, x] > 0.99 and warp.masks[0, face, 0, y, x] > 0.5


def test_the_torso_under_the_arms_is_carried_as_its_garment():
    """Hands resting in front of the torso hide it. Re-posed with the arms held out, the
    torso shows there: as trained that is a weak hole over background, which the network
    paints; with `torso_under_arms` the torso carries its own garment there, in the
    garment's colour."""
    upper, arms = ADGAN_INDEX["upper_clothes"], ADGAN_INDEX["arms"]
    cloth = [ADGAN_INDEX[c] for c in ("pants", "skirt", "upper_clothes")]
    arm_segments = [i for i, name in enumerate(SEGMENT_NAMES) if "arm" in name]
    # front rows whose wrists both lie near the spine: the hands in front of the torso
    hands_in_front = [
        i
        for i in FRONT
        if np.abs(BANK[i].keypoints[[4, 7], 0] - BANK[i].keypoints[[8, 11], 0].mean()).max()
        < 0.3 * abs(BANK[i].keypoints[2, 0] - BANK[i].keypoints[5, 0])
    ]
    people = [_person(seed, row) for row in hands_in_front for seed in range(200, 206)]
    people = [p for p in people if _all_visible(p)][:3]
    assert len(people) == 3
    for person in people:
        src, parsing, kp = _tensors([person])
        held_out = _arms_held_out(kp)  # the torso where it was
        torso = body_layout(held_out, SIZE, kinds=("torso",))[0, 0] > 0.5
        labels = parsing.argmax(1)[0]
        garment = src[0][:, labels == upper].mean(1)  # [3]
        warps = [
            warp_parts(src, parsing, kp, held_out, WarpConfig(torso_under_arms=reach))
            for reach in (0.0, 1.0)
        ]
        uncovered = warps[0].segments[0, arm_segments, 0].sum(0) < 0.05
        region = (labels == arms) & torso & uncovered  # where the hands were
        assert region.sum() > 30
        as_trained, filled = (w.masks[0, cloth, 0].sum(0)[region].mean() for w in warps)
        assert as_trained < 0.05 and filled > 0.8, (as_trained, filled)
        assert warps[1].holes[0, 0][region].mean() < warps[0].holes[0, 0][region].mean() / 4
        # the colour there is the garment's, not the hands' that hid it
        region = region & (warps[1].masks[0, upper, 0] > 0.5)
        colour = warps[1].layers[0, upper][:, region].mean(1)
        hands = src[0][:, region].mean(1)
        assert (colour - garment).norm() < (colour - hands).norm() / 2, (colour, garment, hands)


def _arms_held_out(kp: torch.Tensor) -> torch.Tensor:
    """kp [1, 18, 2] with both arms straight out sideways, the rest where it was."""
    held_out = kp.clone()
    for shoulder, elbow, wrist in ((2, 3, 4), (5, 6, 7)):
        side = torch.sign(kp[0, shoulder, 0] - kp[0, 1, 0])
        step = torch.stack([side * (kp[0, elbow] - kp[0, shoulder]).norm(), torch.tensor(0.0)])
        held_out[0, elbow] = kp[0, shoulder] + step
        held_out[0, wrist] = kp[0, shoulder] + 2 * step
    return held_out


def _hand_on_the_right_thigh(person, along: float, out: float):
    """The person's tensors with a red square (a hand, parsed as arms) on the right thigh,
    `along` the hip-knee bone and `out` thigh radii outwards from it, the right arm hanging
    down to it (the wrist at the hand), and the hand's pixels."""
    src, parsing, kp = _tensors([person])
    hip, knee, other = kp[0, 8], kp[0, 9], kp[0, 11]
    size = (kp[0, 1] - (hip + other) / 2).norm()  # the torso's length: the body size
    radius = WarpConfig().thigh_radius * float(size)
    outwards = torch.tensor([float(torch.sign(hip[0] - other[0])), 0.0])
    x, y = (hip + along * (knee - hip) + out * radius * outwards).round().long().tolist()
    half = max(2, round(0.5 * radius))
    hand = torch.zeros(SIZE, dtype=torch.bool)
    hand[y - half : y + half + 1, x - half : x + half + 1] = True
    kp = kp.clone()
    kp[0, 4] = torch.tensor([x, y - half], dtype=kp.dtype)  # the wrist, the hand below it
    kp[0, 3] = (kp[0, 2] + kp[0, 4]) / 2
    parsing = parsing.clone()
    parsing[0][:, hand] = 0.0
    parsing[0, ADGAN_INDEX["arms"]][hand] = 1.0
    src = src.clone()
    src[0][:, hand] = torch.tensor([1.0, -1.0, -1.0])[:, None]
    return src, parsing, kp, hand


def test_what_a_hand_hides_of_a_thigh_is_carried_as_the_thighs_garment():
    """A hand resting on the thigh hides the trousers under it. Re-posed with the arms held
    out, the thigh shows there: as trained that is a hole over background, which the network
    paints; with `thighs_under_hands` the thigh carries its trousers there, in their colour.
    A hand held beside the thigh, past that reach, leaves the leg as it is."""
    pants = ADGAN_INDEX["pants"]
    for person in _wearing(pants, 400, 300, count=2):
        labels = torch.from_numpy(person.labels)
        garment = to_tensor(person.image)[:, labels == pants].mean(1)  # [3]
        for along, out, carried in ((0.5, 0.0, True), (0.5, 2.5, False)):
            src, parsing, kp, hand = _hand_on_the_right_thigh(person, along, out)
            inner = ~square_max((~hand).float()[None, None], 1)[0, 0].bool()  # its inside
            tgt = _arms_held_out(kp)
            warps = [
                warp_parts(src, parsing, kp, tgt, WarpConfig(thighs_under_hands=reach))
                for reach in (0.0, 1.0)
            ]
            as_trained, filled = (w.masks[0, pants, 0][inner].mean() for w in warps)
            if not carried:  # beside the leg: nothing changes
                assert filled < 0.05 and as_trained < 0.05, (as_trained, filled)
                continue
            assert as_trained < 0.05 and filled > 0.8, (as_trained, filled)
            assert warps[1].holes[0, 0][inner].mean() < warps[0].holes[0, 0][inner].mean() / 4
            colour = warps[1].layers[0, pants][:, inner].mean(1)
            red = torch.tensor([1.0, -1.0, -1.0])
            assert (colour - garment).norm() < (colour - red).norm() / 2, (colour, garment)
            # a larger photo's detail is not carried there: the colour is a fill, not a pixel
            fine = warp_parts(
                src, parsing, kp, tgt, WarpConfig(thighs_under_hands=1.0), detail=True
            )
            thigh = SEGMENT_NAMES.index("r_thigh")
            assert fine.weights[0, thigh, pants][inner].max() < 0.1


def test_a_hand_on_a_thigh_at_the_photos_edge_goes_on_as_the_trousers():
    """A source cut at mid-thigh, a hand on the right thigh at the edge. Past the edge the
    leg goes on as the edge shows it, the hand's part of it as trousers
    (`thighs_under_hands`), in the trousers' colour: the colour averaged down the leg is the
    filled-in photo's, as the same photo without the hand gives it, not the hand's red."""
    pants = ADGAN_INDEX["pants"]
    person = _wearing(pants, 400, 300, count=1)[0]
    h = SIZE[0]
    with_hand = _hand_on_the_right_thigh(person, 0.6, 0.0)
    hand = with_hand[3]
    shift = h - int(torch.nonzero(hand.any(1)).flatten()[-1])  # the edge crosses the hand
    cfg = WarpConfig(legs_past_the_edge=True, thighs_under_hands=1.0)
    knee, ankle = with_hand[2][0, 9], with_hand[2][0, 10]
    on = torch.zeros(SIZE, dtype=torch.bool)
    for t in torch.linspace(0.2, 0.8, 7):  # the right shin's middle
        x, y = (knee + t * (ankle - knee)).round().long().tolist()
        on[y, x - 1 : x + 2] = True

    def shin(src, parsing, kp) -> tuple[float, torch.Tensor]:
        """How much of the shin's middle is trousers, and its mean colour."""
        src, parsing = (
            torch.cat([t[:, :, :1].expand(-1, -1, shift, -1), t[:, :, : h - shift]], 2)
            for t in (src, parsing)
        )
        src_kp = torch.where(kp >= 0, kp + torch.tensor([0.0, shift]), kp)
        src_kp = torch.where((src_kp[..., 1:] > h - 1).expand_as(src_kp), -1.0, src_kp)
        warp = warp_parts(src, parsing, src_kp, _arms_held_out(kp), cfg)
        return warp.masks[0, pants, 0][on].mean().item(), composite(warp)[0][:, on].mean(1)

    trousers, colour = shin(*with_hand[:3])
    src, parsing, _ = _tensors([person])
    unhidden, truth = shin(src, parsing, with_hand[2])  # no hand on the leg
    red = torch.tensor([1.0, -1.0, -1.0])
    assert trousers > max(0.8, unhidden)
    assert (colour - truth).norm() < (colour - red).norm() / 4, (colour, truth)


def test_a_skirt_goes_in_one_piece_between_legs_set_apart():
    """A skirt hangs from the hips in one piece. As trained, each thigh carried its share
    of it along its own bone, so legs set further apart than the source's split it like
    trouser legs, with a gap between them; with `skirt_in_one_piece` the torso carries it
    whole, and the gap between the thighs is skirt."""
    skirt = ADGAN_INDEX["skirt"]
    for person in _wearing(skirt, 250, first_seed=300):
        src, parsing, kp = _tensors([person])
        apart = kp.clone()
        middle = kp[0, [8, 11], 0].mean()
        for hip, knee, ankle in ((8, 9, 10), (11, 12, 13)):
            side = torch.sign(kp[0, hip, 0] - middle)
            apart[0, knee, 0] += side * 6.0
            apart[0, ankle, 0] += side * 12.0
        # the line between the two thighs' middles, where the source's skirt still hangs
        right, left = (apart[0, [hip, knee]].mean(0) for hip, knee in ((8, 9), (11, 12)))
        y = int(((right[1] + left[1]) / 2).round())
        x0, x1 = sorted((int(right[0]), int(left[0])))
        assert (person.labels[y] == skirt).sum() > 10  # the skirt reaches that far down
        gap = []
        for cfg in (WarpConfig(), WarpConfig(skirt_in_one_piece=True)):
            warp = warp_parts(src, parsing, kp, apart, cfg)
            gap.append(float(warp.masks[0, skirt, 0, y, x0 : x1 + 1].mean()))
        as_trained, one_piece = gap
        assert as_trained < 0.75 and one_piece > 0.85, gap


def test_stray_skirt_pixels_stay_with_their_leg():
    """Only a skirt hanging from the hips goes in one piece: a parser's stray skirt pixels
    at a trouser leg's ankle stay with that leg when it moves, as trained, instead of
    staying where the torso's transform would leave them."""
    skirt, pants = ADGAN_INDEX["skirt"], ADGAN_INDEX["pants"]
    for person in _wearing(pants, 600, first_seed=400):
        src, _, kp = _tensors([person])
        labels = person.labels.copy()
        ys, xs = np.nonzero(labels == pants)
        ankle = kp[0, 10].numpy()
        stray = (np.abs(ys - ankle[1]) < 6) & (np.abs(xs - ankle[0]) < 5)
        labels[ys[stray], xs[stray]] = skirt
        moved = kp.clone()  # the right leg swung out sideways
        side = torch.sign(kp[0, 8, 0] - kp[0, 11, 0])
        moved[0, 9, 0] += side * 5
        moved[0, 10, 0] += side * 10
        warp = warp_parts(
            src, one_hot(labels)[None], kp, moved, WarpConfig(skirt_in_one_piece=True)
        )
        carried = warp.masks[0, skirt, 0]
        assert carried.sum() > stray.sum() / 2
        x = (carried * torch.arange(SIZE[1])).sum() / carried.sum()
        assert abs(float(x - moved[0, 10, 0])) < 4, (float(x), moved[0, 10].tolist())


def test_the_letterbox_past_the_photo_is_no_background(people):
    """A crop that reaches past its photo's edge is letterboxed (white): told where the
    photo ends (`frame`), the warp fills that band from the photo's own background, as it
    fills the person's place, instead of carrying white bars into the card."""
    src, parsing, kp = _tensors(people[:1])
    band = slice(SIZE[1] - 12, SIZE[1])  # the last 12 columns: past the photo's right edge
    boxed = src.clone()
    boxed[..., band] = 1.0  # white
    labels = parsing.argmax(1)
    labels[..., band] = 0
    frame = torch.ones(1, 1, *SIZE)
    frame[..., band] = 0
    plain = warp_parts(boxed, labels, kp, kp)
    framed = warp_parts(boxed, labels, kp, kp, frame=frame)
    photo_edge = src[..., SIZE[1] - 20 : SIZE[1] - 12].mean((-1, -2))  # [1, 3], beside it
    filled = framed.background[..., band].mean((-1, -2))
    kept = plain.background[..., band].mean((-1, -2))
    assert (kept - 1).abs().max() < 0.05  # as before: white bars
    assert (filled - photo_edge).abs().max() < (kept - photo_edge).abs().max() / 2
    assert (framed.background_mask[..., band] == 0).all()
    # away from the band, the background the photo shows is the same
    seen = (plain.background_mask[0, 0] > 0.99) & (torch.arange(SIZE[1]) < SIZE[1] - 20)
    torch.testing.assert_close(framed.background[0][:, seen], plain.background[0][:, seen])


def test_legs_cut_by_the_photo_edge_can_go_on_as_the_edge_shows_them(people):
    """`legs_past_the_edge`: a source photo cut at mid-thigh, re-posed to the full body. As
    trained, the shins below the cut get nothing (the network paints them); with the
    setting, what the frame's edge shows on each leg goes on down it. The rest is as
    before."""
    image, parsing, kp = _tensors(people[:1])
    h = SIZE[0]
    hips, knees = kp[0, [8, 11], 1].mean(), kp[0, [9, 12], 1].mean()
    shift = int(h - (hips + knees) / 2)  # the person moved down: the bottom edge cuts mid-thigh
    src = torch.cat([image[:, :, :1].expand(-1, -1, shift, -1), image[:, :, : h - shift]], 2)
    src_parsing = torch.cat(
        [parsing[:, :, :1].expand(-1, -1, shift, -1), parsing[:, :, : h - shift]], 2
    )
    src_kp = torch.where(kp >= 0, kp + torch.tensor([0.0, shift]), kp)
    src_kp = torch.where((src_kp[..., 1:] > h - 1).expand_as(src_kp), -1.0, src_kp)
    assert (src_kp[0, [9, 10, 12, 13]] < 0).all()  # no knees or ankles in the source

    plain = warp_parts(src, src_parsing, src_kp, kp, WarpConfig())
    cut = warp_parts(src, src_parsing, src_kp, kp, WarpConfig(legs_past_the_edge=True))
    yy, xx = torch.meshgrid(torch.arange(SIZE[0]), torch.arange(SIZE[1]), indexing="ij")
    pixels = torch.stack([xx, yy], -1).float()  # [H, W, 2]
    shins = torch.zeros(SIZE, dtype=torch.bool)
    for knee, ankle in ((9, 10), (12, 13)):  # the middle of each shin bone, 2 px either side
        a, bone = kp[0, knee], kp[0, ankle] - kp[0, knee]
        t = ((pixels - a) @ bone / bone.pow(2).sum()).clamp(0, 1)
        near = torch.linalg.vector_norm(pixels - a - t[..., None] * bone, dim=-1) < 2
        shins |= near & (t > 0.1) & (t < 0.9)
    assert shins.sum() > 20

    def person(w: PartWarp) -> torch.Tensor:
        return w.masks[0, 1:, 0].sum(0)

    assert person(plain)[shins].mean() < 0.2
    assert person(cut)[shins].mean() > 0.8
    above = torch.arange(h) < hips - 5  # the torso, arms and head: unchanged
    torch.testing.assert_close(cut.masks[0, :, 0][:, above], plain.masks[0, :, 0][:, above])


def test_legs_past_the_edge_that_carry_nothing_keep_the_edge(people):
    """A source cut at mid-thigh whose parse shows no person at all (a photo whose keypoints
    lie on something else: a headless photo the estimator misread): its legs carry no class,
    and going on past the edge with the colour averaged class by class must still warp
    (it once raised inside the averaging, which had no class to average)."""
    image, _, kp = _tensors(people[:1])
    h = SIZE[0]
    hips, knees = kp[0, [8, 11], 1].mean(), kp[0, [9, 12], 1].mean()
    shift = int(h - (hips + knees) / 2)
    src = torch.cat([image[:, :, :1].expand(-1, -1, shift, -1), image[:, :, : h - shift]], 2)
    nobody = torch.zeros(1, *SIZE, dtype=torch.long)  # background everywhere
    src_kp = torch.where(kp >= 0, kp + torch.tensor([0.0, shift]), kp)
    src_kp = torch.where((src_kp[..., 1:] > h - 1).expand_as(src_kp), -1.0, src_kp)
    cfg = WarpConfig(legs_past_the_edge=True)
    assert cfg.legs_edge_blur > 0
    out = warp_parts(src, nobody, src_kp, kp, cfg)
    assert torch.isfinite(out.masks).all()
    assert out.masks[0, 1:, 0].sum() == 0  # nobody to carry


def test_legs_past_the_edge_carry_the_edges_colour_not_its_stripes(people):
    """A source cut at mid-thigh whose trousers show, along the photo's bottom edge, folds
    (black and white columns) and a hand resting on them (red, parsed as bare legs, as a parser
    will). Replicated as it is, the edge draws the folds down the whole shin as stripes;
    averaged class by class first (`legs_edge_blur`), the shins are the trousers' grey, even
    across the leg, with no red from the hand."""
    image, parsing, kp = _tensors(people[:1])
    h, w = SIZE
    hips, knees = kp[0, [8, 11], 1].mean(), kp[0, [9, 12], 1].mean()
    shift = int(h - (hips + knees) / 2)  # the bottom edge cuts mid-thigh
    src = torch.cat([image[:, :, :1].expand(-1, -1, shift, -1), image[:, :, : h - shift]], 2)
    labels = torch.cat([parsing[:, :, :1].expand(-1, -1, shift, -1), parsing[:, :, : h - shift]], 2)
    labels = labels.argmax(1)
    src_kp = torch.where(kp >= 0, kp + torch.tensor([0.0, shift]), kp)
    src_kp = torch.where((src_kp[..., 1:] > h - 1).expand_as(src_kp), -1.0, src_kp)
    pants, arms = ADGAN_INDEX["pants"], ADGAN_INDEX["arms"]
    band = torch.zeros(h, w, dtype=torch.bool)
    band[int(hips) + shift + 3 :] = True  # the thighs, from below the hips to the edge
    legs = band & (labels[0] > 0)
    labels[0][legs] = pants  # trousers, in folds
    stripes = (torch.arange(w) // 2 % 2).float()[None].expand(h, w)  # columns 0 0 1 1 0 0 ...
    src[0][:, legs] = (stripes[legs] * 2 - 1).expand(3, -1)
    xs = torch.nonzero(legs[h - 1]).flatten()
    first = xs[: int(torch.nonzero(xs.diff() > 1).flatten()[0]) + 1]  # one leg's columns
    mid = int(first[len(first) // 2])
    hand = band & (torch.arange(w) >= mid - 1) & (torch.arange(w) <= mid + 1)  # across it
    labels[0][hand] = arms
    src[0][:, hand] = torch.tensor([1.0, -1.0, -1.0])[:, None]

    def shins(warp: PartWarp) -> tuple[torch.Tensor, float]:
        """The card's colour [3, N] on the middle of both shins (2 px either side) where
        the person is, and how much of that middle is the person."""
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        pixels = torch.stack([xx, yy], -1).float()
        on = torch.zeros(h, w, dtype=torch.bool)
        for knee, ankle in ((9, 10), (12, 13)):
            a, bone = kp[0, knee], kp[0, ankle] - kp[0, knee]
            t = ((pixels - a) @ bone / bone.pow(2).sum()).clamp(0, 1)
            near = torch.linalg.vector_norm(pixels - a - t[..., None] * bone, dim=-1) < 2
            on |= near & (t > 0.2) & (t < 0.8)
        person = warp.person[0, 0]
        there = on & (person > 0.8)
        assert there.sum() > 20
        return composite(warp)[0][:, there], person[on].mean().item()

    cfg = WarpConfig(legs_past_the_edge=True)
    (as_is, _), (blurred, _) = (
        shins(warp_parts(src, labels, src_kp, kp, replace(cfg, legs_edge_blur=0))),
        shins(warp_parts(src, labels, src_kp, kp, cfg)),
    )

    def spread(colour: torch.Tensor) -> torch.Tensor:  # [3]: the middle half's width
        return colour.quantile(0.75, 1) - colour.quantile(0.25, 1)

    assert spread(as_is).min() > 0.6  # stripes: black and white along the shins
    assert (spread(blurred)[1:] < spread(as_is)[1:] / 3).all()  # even across the leg
    assert (blurred[0] - blurred[1]).abs().median() < 0.05  # the trousers' grey, not red


def test_the_edges_colour_is_averaged_class_by_class():
    """`smoothed_by_class`: trousers in black and white folds, and a red hand resting on
    them that the parse calls bare legs (both classes a leg carries), the parse soft at
    their border. Averaged class by class, the trousers are grey to their edge and the
    hand stays red: neither takes the other's colour."""
    h, w = 24, 24
    stripes = (torch.arange(w) // 2 % 2).float()[None].expand(h, w) * 2 - 1
    colour = stripes[None].expand(3, h, w).clone()
    hand = torch.zeros(h, w)
    hand[:, 16:] = 1.0
    hand[:, 15] = 0.5  # the parse's soft border
    colour[:, hand > 0.75] = torch.tensor([1.0, -1.0, -1.0])[:, None]
    classes = torch.zeros(8, h, w)
    classes[ADGAN_INDEX["pants"]], classes[ADGAN_INDEX["legs"]] = 1 - hand, hand
    smooth = smoothed_by_class(colour[None], classes[None], classes[None, None], 3.0)[0, 0]
    trousers, red = smooth[:, 6:18, 4:13], smooth[:, 6:18, 18:]
    assert trousers.abs().max() < 0.2  # the folds' grey (0), up to the hand
    assert (red - torch.tensor([1.0, -1.0, -1.0])[:, None, None]).abs().max() < 0.05


def test_a_hand_on_the_leg_at_the_edge_becomes_the_legs_garment():
    """`spread_into_person`: a trouser leg (grey, columns 4-15) with a hand lying across
    it (columns 8-11, a class legs cannot carry): past the edge the leg goes on, so the
    hand's pixels take the trousers' class and colour from beside them; a hand held away
    from it (columns 25-28) stays unowned."""
    h, w = 16, 32
    pants = torch.zeros(1, 8, h, w)
    pants[:, ADGAN_INDEX["pants"], :, 4:16] = 1.0
    colour = torch.zeros(1, 3, h, w)
    hand = torch.zeros(1, 1, h, w)
    for x0 in (8, 25):
        pants[:, :, :, x0 : x0 + 4] = 0.0
        colour[:, :, :, x0 : x0 + 4] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]
        hand[:, :, :, x0 : x0 + 4] = 1.0
    classes, rgb = spread_into_person(pants, colour, hand, 3.0)
    on_leg = classes[0, :, :, 8:12]
    assert (on_leg[ADGAN_INDEX["pants"]] > 0.9).all() and (on_leg.sum(0) < 1.01).all()
    assert rgb[0, :, :, 8:12].abs().max() < 0.1  # the trousers' grey (0), not the hand's red
    assert classes[0, :, :, 26:28].sum(0).max() < 0.05  # nothing owned near: the hand's
    torch.testing.assert_close(classes[..., 4:8], pants[..., 4:8])  # the leg itself as it was


def test_legs_go_on_from_the_photos_edge_where_the_crop_letterboxes_below_it(people):
    """A crop that reaches below its photo (a person cut at the thigh by the photo's bottom
    edge) is letterboxed there: white, background. Told where the photo ends (`frame`),
    `legs_past_the_edge` carries the photo's last row down the legs, not the letterbox's
    white; the rest of the warp is as it was."""
    image, parsing, kp = _tensors(people[:1])
    h = SIZE[0]
    hips, knees = kp[0, [8, 11], 1].mean(), kp[0, [9, 12], 1].mean()
    edge = int((hips + knees) / 2)  # the photo ends mid-thigh; below it, the letterbox
    src, labels = image.clone(), parsing.argmax(1)
    src[:, :, edge:] = 1.0
    labels[:, edge:] = 0
    frame = torch.ones(1, 1, *SIZE)
    frame[:, :, edge:] = 0
    src_kp = torch.where((kp[..., 1:] >= edge).expand_as(kp), -1.0, kp)
    cfg = WarpConfig(legs_past_the_edge=True)
    framed = warp_parts(src, labels, src_kp, kp, cfg, frame=frame)
    unframed = warp_parts(src, labels, src_kp, kp, cfg)
    below = (torch.arange(h) > knees + 3)[:, None].expand(SIZE)
    legs = torch.zeros(SIZE, dtype=torch.bool)
    for knee, ankle in ((9, 10), (12, 13)):  # 2 px either side of each shin bone
        a, bone = kp[0, knee], kp[0, ankle] - kp[0, knee]
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(SIZE[1]), indexing="ij")
        pixels = torch.stack([xx, yy], -1).float()
        t = ((pixels - a) @ bone / bone.pow(2).sum()).clamp(0, 1)
        legs |= torch.linalg.vector_norm(pixels - a - t[..., None] * bone, dim=-1) < 2
    shins = legs & below
    assert shins.sum() > 20

    def person(w: PartWarp) -> torch.Tensor:
        return w.masks[0, 1:, 0].sum(0)

    assert person(unframed)[shins].mean() < 0.2  # the white band carried on: nothing
    assert person(framed)[shins].mean() > 0.8
    # what the photo's edge row shows on the legs, in colour: not the letterbox's white
    shown = framed.layers[0, :, :, shins].mul(framed.masks[0, :, :, shins]).sum(0)
    assert (shown.mean(1) - 1).abs().max() > 0.2
    above = torch.arange(h) < hips - 5  # the torso, arms and head: unchanged
    torch.testing.assert_close(framed.masks[0, :, 0][:, above], unframed.masks[0, :, 0][:, above])


def test_a_limb_the_source_hides_can_be_carried_from_its_twin_mirrored(people):
    """`borrow_twin_limbs`: the source's right wrist is missing, the left forearm painted
    green on its outer side and blue on its inner side. As trained, the target's right
    forearm is a hole; with the setting it carries the left forearm mirrored across the
    bone: outer side green, inner side blue. Nothing else moves."""
    outs = people[:1]
    o = outs[0]
    im = o.image.copy()
    ys, xs = np.mgrid[: SIZE[0], : SIZE[1]]
    pixels = np.stack([xs, ys], -1).astype(np.float32)
    elbow, wrist = o.keypoints[6], o.keypoints[7]
    bone = wrist - elbow
    t = np.clip((pixels - elbow) @ bone / (bone @ bone), 0, 1)
    offset = pixels - elbow - t[..., None] * bone
    outward = np.sign(elbow[0] - o.keypoints[1][0])  # the left arm lies on this side
    side = offset[..., 0] * outward
    near = (np.linalg.norm(offset, axis=-1) < 6) & (t > 0) & (t < 1) & (o.labels > 0)
    im[near & (side > 0)] = (0, 255, 0)
    im[near & (side <= 0)] = (0, 0, 255)
    src, parsing, kp = _tensors(outs, [im])
    hidden = kp.clone()
    hidden[0, 4] = -1  # the right wrist is hidden in the source
    plain = warp_parts(src, parsing, hidden, kp, WarpConfig(hole_opacity=1.0))
    twin = warp_parts(
        src, parsing, hidden, kp, WarpConfig(hole_opacity=1.0, borrow_twin_limbs=True)
    )
    a, b = kp[0, 3].numpy(), kp[0, 4].numpy()
    for t in (0.3, 0.5, 0.7):
        x, y = (round(v) for v in a + t * (b - a))
        assert plain.holes[0, 0, y, x] > 0.9 and plain.person[0, 0, y, x] < 0.05
        assert twin.holes[0, 0, y, x] < 0.1 and twin.person[0, 0, y, x] > 0.9
    out = _uint8(composite(twin)).astype(int)[0]
    across = np.array([b[1] - a[1], a[0] - b[0]]) / np.linalg.norm(b - a)
    across *= np.sign(across[0] * (a[0] - kp[0, 1, 0].item()))  # pointing outwards
    for t in (0.4, 0.6):
        mid = a + t * (b - a)
        ox, oy = (round(v) for v in mid + 1.5 * across)
        ix, iy = (round(v) for v in mid - 1.5 * across)
        assert out[oy, ox, 1] - out[oy, ox, 2] > 40, out[oy, ox]  # outer: green
        assert out[iy, ix, 2] - out[iy, ix, 1] > 40, out[iy, ix]  # inner: blue
    # away from the right forearm (which lies in front), the other segments are as before
    r_fore = SEGMENT_NAMES.index("r_forearm")
    away = (plain.segments[0, r_fore, 0] + twin.segments[0, r_fore, 0]) < 1e-3
    others = [i for i in range(len(SEGMENT_NAMES)) if i != r_fore]
    torch.testing.assert_close(
        twin.segments[0, others, 0][:, away],
        plain.segments[0, others, 0][:, away],
        atol=1e-2,
        rtol=0,
    )


def test_config_is_checked():
    with pytest.raises(ValueError, match="layer_order"):
        WarpConfig(layer_order=("torso",))
    with pytest.raises(ValueError, match="compatibility"):
        WarpConfig(compatibility={"head": (1.0,) * 8})


@pytest.mark.parametrize(
    "overrides",
    [
        dict(complete_legs=False),
        dict(complete_arms=True),
        dict(back_of_head=False),
        dict(hole_opacity=1.0, outside_opacity=1.0, occlusion_opacity=1.0),
        dict(hole_opacity=0.0, occlusion_opacity=0.0),
        dict(background_blur=0.0, background_dilation=0.0),
        dict(support_scale=1.5, torso_reach=0.0, front_bonus=0.0),
        dict(head_support=1.6, head_outside_opacity=1.0, head_neck_reach=0.5),
        dict(head_owns_face=2.0, head_neck_reach=0.3, torso_under_arms=1.0),
        dict(torso_under_arms=1.0, thighs_under_hands=1.0, legs_past_the_edge=True),
        dict(borrow_twin_limbs=True, legs_past_the_edge=True, parsing_blur=0.5),
        dict(skirt_in_one_piece=True, legs_past_the_edge=True),
        dict(layer_order=("torso", "thigh", "shin", "head", "upper_arm", "forearm")),
    ],
)
def test_every_setting_keeps_the_masks_a_partition(people, overrides):
    src, parsing, kp = _tensors(people[:2])
    tgt = kp.flip(0).clone()
    tgt[0, 12:14] = -1  # a target missing its left shin
    bad = kp.clone()
    bad[1, 6:8] = -1  # a source missing its left forearm and elbow
    warp = warp_parts(src, parsing, bad, tgt, WarpConfig(**overrides), detail=True)
    assert warp.weights is not None and torch.isfinite(warp.weights).all()
    total = warp.masks.sum(1) + warp.holes
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-4, rtol=0)
    assert warp.masks.min() >= 0 and warp.holes.min() >= 0
    assert torch.isfinite(composite(warp)).all()


def test_composite_hole_fills(people):
    src, parsing, kp = _tensors(people[:1])
    bad = kp.clone()
    bad[:, 3:5] = -1
    warp = warp_parts(src, parsing, bad, kp, WarpConfig(hole_opacity=1.0))
    assert warp.holes.max() > 0.9
    person, background = composite(warp), composite(warp, "background")
    grey = composite(warp, torch.zeros_like(src))
    hole = warp.holes[:, 0] > 0.99
    torch.testing.assert_close(
        background.permute(0, 2, 3, 1)[hole],
        warp.background.permute(0, 2, 3, 1)[hole],
        atol=0.05,
        rtol=0,
    )
    assert grey.permute(0, 2, 3, 1)[hole].abs().max() < 0.05
    assert not torch.allclose(person, background)
    with pytest.raises(ValueError, match="hole_fill"):
        composite(warp, "nearest")


def test_config_round_trips_through_the_strict_loader():
    from common.config import ConfigError, from_dict, to_dict

    cfg = WarpConfig(torso_radius=0.4, layer_order=KINDS_BACK_TO_FRONT)
    assert from_dict(WarpConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="torso_radius"):
        from_dict(WarpConfig, {"torso_radus": 0.4})


def test_the_square_maximum_in_two_passes_is_the_square_maximum():
    """`square_max` (a row pass, then a column pass) equals one square max-pool, borders
    included."""
    x = torch.rand(2, 3, 37, 23)
    for radius in (1, 4):
        k = 2 * radius + 1
        torch.testing.assert_close(square_max(x, radius), F.max_pool2d(x, k, 1, radius))
