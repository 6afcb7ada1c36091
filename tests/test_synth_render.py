"""Behaviour of the SynthFashion renderer: its ground truth must be exact and coherent."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from parsing.labels import ADGAN_INDEX, CELEBAMASK_CLASSES
from synth.config import PoseJitterConfig, SynthConfig
from synth.faces import render_face
from synth.identity import sample_identity
from synth.posebank import jitter_pose, read_bank
from synth.render import OWNER, render_person

BANK = read_bank()
GARMENTS = [ADGAN_INDEX[n] for n in ("upper_clothes", "pants", "skirt")]


def _pose(cfg, row_index, seed, flip=False):
    return jitter_pose(
        BANK[row_index], np.random.default_rng(seed), cfg.pose, size=cfg.size, flip=flip
    )


def _render(cfg, identity_seed, row_index, render_seed=0, identity=None):
    ident = identity or sample_identity(
        identity_seed, "train", np.random.default_rng(identity_seed), cfg
    )
    return render_person(
        ident, _pose(cfg, row_index, render_seed), cfg, np.random.default_rng(render_seed)
    )


def _front_rows(n):
    return [i for i, r in enumerate(BANK) if r.view == "front" and r.observed[8:14].all()][:n]


@pytest.mark.parametrize("size", [(256, 176), (128, 88)])
def test_outputs_are_exact_and_coherent(size):
    cfg = SynthConfig(size=size)
    for seed in range(6):
        out = _render(cfg, seed, seed * 97)
        h, w = size
        assert out.image.shape == (h, w, 3) and out.image.dtype == np.uint8
        assert out.labels.shape == out.parts.shape == out.u.shape == (h, w)
        assert out.labels.max() <= 7 and out.parts.max() <= 24
        assert out.u.min() >= 0 and out.u.max() <= 1 and out.v.min() >= 0 and out.v.max() <= 1
        # DensePose only on the person, and on all of it but hair off the skull
        assert not (out.parts > 0)[out.labels == 0].any()
        person = out.labels > 0
        assert (out.parts[person & (out.labels != ADGAN_INDEX["hair"])] > 0).mean() > 0.99
        # a visible keypoint is in the frame, on the person
        vis = out.visibility == 2
        assert vis.sum() >= 5
        cols = np.rint(out.keypoints[vis, 0]).astype(int)
        rows = np.rint(out.keypoints[vis, 1]).astype(int)
        assert person[rows, cols].all()
        assert (out.keypoints[~vis] == -1).all()
        # the photo differs from the background where the person is
        assert out.coverage[person].min() >= 0.5


def test_rendering_is_deterministic():
    cfg = SynthConfig()
    a, b = _render(cfg, 3, 100, 5), _render(cfg, 3, 100, 5)
    for field in ("image", "labels", "parts", "u", "v", "keypoints", "visibility"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    c = _render(cfg, 3, 100, 6)
    assert not np.array_equal(a.image, c.image)


def _garment_pixels(out, part):
    # Skirts hang loose: their colour follows the skirt, not the leg surface under it.
    return (
        (out.parts == part)
        & np.isin(out.labels, GARMENTS)
        & (out.coverage == 1)
        & (out.owner != OWNER["skirt"])
    )


def _same_point_colour_agreement(a, b):
    """Fraction of garment pixels of `a` whose body point (same I, U, V within 0.002) is
    also a garment pixel of `b` of the same colour (before camera effects, within 0.05:
    neighbouring texels differ by the fabric grain)."""
    agree, total = 0, 0
    for part in range(1, 25):
        ma, mb = _garment_pixels(a, part), _garment_pixels(b, part)
        if ma.sum() < 20 or mb.sum() < 20:
            continue
        tree = cKDTree(np.stack([b.u[mb], b.v[mb]], 1))
        dist, idx = tree.query(np.stack([a.u[ma], a.v[ma]], 1))
        close = dist < 0.002
        ca, cb = a.person_rgb[ma][close], b.person_rgb[mb][idx[close]]
        agree += int((np.abs(ca - cb).max(axis=1) < 0.05).sum())
        total += int(close.sum())
    return agree / max(total, 1), total


def test_same_identity_same_texture_in_two_poses():
    """UV consistency: a garment point keeps its colour from pose to pose."""
    cfg = SynthConfig()
    rows = _front_rows(2)
    for seed in (11, 12, 13):
        a = _render(cfg, seed, rows[0], 1)
        b = _render(cfg, seed, rows[1], 2)
        same, matched = _same_point_colour_agreement(a, b)
        other = _render(cfg, seed + 100, rows[1], 2)  # another person in b's pose
        control, _ = _same_point_colour_agreement(a, other)
        assert matched > 50
        assert same > 0.85, same
        assert control < 0.3, control


def test_swap_changes_only_the_swapped_garment():
    cfg = SynthConfig()
    person = sample_identity(1, "test", np.random.default_rng(21), cfg)
    donor = sample_identity(2, "test", np.random.default_rng(22), cfg)
    if person.upper.kind == "dress" or donor.upper.kind == "dress":
        pytest.skip("seeds drew a dress")
    row = _front_rows(1)[0]
    original = _render(cfg, 0, row, 4, identity=person)
    swapped = _render(cfg, 0, row, 4, identity=person.wearing("upper", donor))
    upper = ADGAN_INDEX["upper_clothes"]
    untouched = (original.labels != upper) & (swapped.labels != upper)
    np.testing.assert_array_equal(original.labels[untouched], swapped.labels[untouched])
    np.testing.assert_array_equal(original.keypoints, swapped.keypoints)
    far = untouched & (original.labels == 0)
    diff = np.abs(original.image.astype(int) - swapped.image.astype(int))
    assert diff[far].mean() < 1.0  # same background and camera
    both_upper = (original.labels == upper) & (swapped.labels == upper)
    assert diff[both_upper].mean() > 10  # a different garment
    with pytest.raises(ValueError):
        person.wearing("shoes", donor)


def test_side_views_hide_the_far_arm():
    cfg = SynthConfig()
    side = [i for i, r in enumerate(BANK) if r.view == "side"][:30]
    occluded = 0
    for k, row in enumerate(side):
        out = _render(cfg, k, row, k)
        occluded += int((out.visibility == 1).sum())
        owner_at = out.owner[
            np.clip(np.rint(out.keypoints_all[:, 1]).astype(int), 0, 255),
            np.clip(np.rint(out.keypoints_all[:, 0]).astype(int), 0, 175),
        ]
        hidden = out.visibility == 1
        # an occluded body joint (not a face point) lies under another segment
        body = hidden.copy()
        body[[0, 14, 15, 16, 17]] = False
        assert (owner_at[body] != 0).all()
    assert occluded >= 10


def test_faces_have_the_celebamask_classes_on_the_right_sides():
    cfg = SynthConfig()
    cfg.faces.yaw_deg = 0.0
    cfg.faces.size = 128
    seen = set()
    for seed in range(6):
        ident = sample_identity(seed, "train", np.random.default_rng(seed), cfg)
        out = render_face(ident, np.random.default_rng(seed), cfg)
        assert out.image.shape == (128, 128, 3) and out.labels.max() < len(CELEBAMASK_CLASSES)
        seen |= set(np.unique(out.labels).tolist())
        l_eye = np.nonzero(out.labels == 4)[1]
        r_eye = np.nonzero(out.labels == 5)[1]
        if l_eye.size and r_eye.size:
            assert l_eye.mean() > r_eye.mean()  # the person's left eye is on the image's right
    for name in (
        "skin",
        "nose",
        "l_eye",
        "r_eye",
        "l_brow",
        "u_lip",
        "l_lip",
        "hair",
        "neck",
        "cloth",
    ):
        assert CELEBAMASK_CLASSES.index(name) in seen, name


def test_owner_ids_cover_every_segment():
    assert sorted(OWNER.values()) == list(range(1, len(OWNER) + 1))


def _chart_correlations(parts, u, v):
    """Per part: correlation of (U, V) with the image axes, [U~x, U~y, V~x, V~y]."""
    out = {}
    for part in range(1, 25):
        mask = parts == part
        if mask.sum() < 200:
            continue
        ys, xs = np.nonzero(mask)
        out[part] = np.array(
            [
                np.corrcoef(u[mask], xs)[0, 1],
                np.corrcoef(u[mask], ys)[0, 1],
                np.corrcoef(v[mask], xs)[0, 1],
                np.corrcoef(v[mask], ys)[0, 1],
            ]
        )
    return out


@pytest.mark.real_data
def test_synthetic_charts_run_like_real_densepose(shared_data):
    """U and V grow in the same image directions as on real DensePose maps of DeepFashion
    photos, front and back (signs of the clear correlations, |r| > 0.6)."""
    from parsing.densepose import load_iuv

    folder = shared_data / "real-formats" / "densepose-iuv-fashion"
    cfg = SynthConfig()
    still = PoseJitterConfig.still()
    agree = total = 0
    for view, name in (
        ("front", "fashionWOMENDressesid0000262902_1front_iuv.png"),
        ("back", "fashionWOMENDressesid0000262902_3back_iuv.png"),
    ):
        real = _chart_correlations(*load_iuv(folder / name))
        rows = [r for r in BANK if r.view == view and r.observed[1:14].all()][:15]
        synth = {}
        for k, row in enumerate(rows):
            ident = sample_identity(k, "train", np.random.default_rng(k), cfg)
            pose = jitter_pose(row, np.random.default_rng(0), still, size=cfg.size)
            out = render_person(ident, pose, cfg, np.random.default_rng(k))
            for part, c in _chart_correlations(out.parts, out.u, out.v).items():
                synth.setdefault(part, []).append(c)
        for part, r in real.items():
            if part not in synth:
                continue
            s = np.median(synth[part], axis=0)
            clear = np.abs(r) > 0.6
            agree += int((np.sign(r[clear]) == np.sign(s[clear])).sum())
            total += int(clear.sum())
    assert total > 30
    assert agree / total > 0.85, (agree, total)  # measured: 44 of 49


def test_one_session_shares_the_backdrop_and_a_new_one_does_not():
    """Two poses of one person: the background they both show is the same photo session's
    (up to sensor noise) when a session generator is given, and a different room without."""
    cfg = SynthConfig(size=(128, 88))
    cfg.background.clutter_probability = 1.0  # rooms: two draws can never look alike
    ident = sample_identity(3, "train", np.random.default_rng(3), cfg)
    rows = _front_rows(2)

    def photo(k, session):
        rng = np.random.default_rng(100 + k)
        return render_person(ident, _pose(cfg, rows[k], k), cfg, rng, session)

    def background_difference(a, b):
        both = (a.labels == 0) & (b.labels == 0)
        return np.abs(a.image.astype(float) - b.image.astype(float))[both].mean()

    shared = background_difference(
        photo(0, np.random.default_rng(7)), photo(1, np.random.default_rng(7))
    )
    separate = background_difference(photo(0, None), photo(1, None))
    assert shared < 6.0 and separate > 5 * shared, (shared, separate)


def _coat_identity(cfg, lower_kind):
    """The first identity whose draws give a coat over `lower_kind` (coats only)."""
    for seed in range(200):
        ident = sample_identity(seed, "train", np.random.default_rng(seed), cfg)
        if ident.lower is not None and ident.lower.kind == lower_kind:
            return ident
    raise AssertionError(f"no coat over {lower_kind} in 200 draws")


@pytest.mark.parametrize("lower_kind", ["trousers", "skirt"])
def test_a_coat_is_upper_clothes_below_the_hips_over_what_is_worn_there(lower_kind):
    cfg = SynthConfig()
    cfg.garments.upper_women = {"coat": 1.0}
    cfg.garments.upper_men = {"coat": 1.0}
    cfg.garments.coat_length_range = (0.3, 0.3)  # to mid-thigh
    cfg.garments.skirt_length_range = (0.8, 0.8)  # a skirt shows below it
    ident = _coat_identity(cfg, lower_kind)
    assert ident.upper.kind == "coat" and ident.upper.sleeve > 1.8
    row = _front_rows(1)[0]
    out = _render(cfg, 0, row, 1, identity=ident)
    kp = out.keypoints_all
    hip_y, knee_y = (kp[8, 1] + kp[11, 1]) / 2, (kp[9, 1] + kp[12, 1]) / 2
    ankle_y = (kp[10, 1] + kp[13, 1]) / 2
    centre_x = round((kp[8, 0] + kp[11, 0]) / 2)
    column = out.labels[:, centre_x - 2 : centre_x + 3]
    upper = ADGAN_INDEX["upper_clothes"]
    below = ADGAN_INDEX["pants" if lower_kind == "trousers" else "skirt"]
    just_below_hips = column[round(hip_y + 0.15 * (knee_y - hip_y))]
    assert (just_below_hips == upper).all()  # the coat covers the hips
    lower_rows = column[round(knee_y) : round(ankle_y)]
    assert (lower_rows == below).any()  # what is worn under it shows below its hem


def test_adding_the_coat_leaves_every_earlier_identity_as_it_was():
    """Datasets rendered before the coat existed must render again the same: the default
    config draws no coats, and each identity's draws are unchanged (pinned values)."""
    cfg = SynthConfig()
    people = [sample_identity(i, "train", np.random.default_rng(i), cfg) for i in range(300)]
    assert all(p.upper.kind != "coat" for p in people)
    first = people[0].describe()
    assert first["category"] == "Tees_Tanks" and first["upper"]["kind"] == "tee"
    assert first["build"] == {"width": 1.175, "shoulders": 1.092, "hips": 1.126}
    assert first["hair"]["colour"] == [0.699, 0.668, 0.657]


def test_layered_sleeves_are_another_fabric_and_still_upper_clothes():
    """A shirt under a vest: the sleeves take their own texture, labelled upper clothes as
    the body of the top; the identity is otherwise the one drawn without layering."""
    plain, layered = SynthConfig(), SynthConfig()
    for cfg in (plain, layered):
        cfg.garments.upper_women = cfg.garments.upper_men = {"long_sleeve": 1.0}
        cfg.garments.patterns = {"solid": 1.0}
    layered.garments.layered_probability = 1.0
    seed = 3
    a = sample_identity(seed, "train", np.random.default_rng(seed), plain)
    b = sample_identity(seed, "train", np.random.default_rng(seed), layered)
    assert a.upper.sleeve_texture is None and b.upper.sleeve_texture is not None
    described = b.describe()
    assert described["upper"].pop("sleeve_pattern") == "solid"
    assert described == a.describe()

    row = _front_rows(1)[0]
    upper = ADGAN_INDEX["upper_clothes"]
    colours = {}
    for name, ident in (("plain", a), ("layered", b)):
        out = _render(layered, seed, row, identity=ident)
        sleeves = (out.labels == upper) & np.isin(
            out.owner, [OWNER[f"{s}_arm_{side}"] for s in ("upper", "lower") for side in "lr"]
        )
        body = (out.labels == upper) & (out.owner == OWNER["torso"])
        assert sleeves.sum() > 200 and body.sum() > 1000  # sleeves are upper clothes
        colours[name] = [np.median(out.image[m].astype(float), 0) for m in (sleeves, body)]
    sleeve_plain, body_plain = colours["plain"]
    sleeve_layered, body_layered = colours["layered"]
    assert np.abs(sleeve_plain - body_plain).max() < 40  # one fabric (shading apart)
    assert np.abs(body_layered - body_plain).max() < 10  # the body of the top unchanged
    expected = b.upper.sleeve_texture.tile.mean((0, 1)) * 255
    assert np.abs(sleeve_layered - sleeve_plain).max() > 40  # another fabric ...
    assert np.abs(sleeve_layered - expected).max() < 60  # ... the sleeves' own
