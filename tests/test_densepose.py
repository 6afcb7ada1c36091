import numpy as np
import pytest

from common.image_io import ImageError, load_image
from parsing.densepose import (
    COARSE_NAMES,
    FINE_TO_COARSE,
    FLIP_COARSE,
    FLIP_PARTS,
    NUM_PARTS,
    PART_NAMES,
    UV_AXES,
    atlas_pixel,
    atlas_tile,
    decode_iuv,
    encode_iuv,
    load_iuv,
    save_iuv,
)


def _side_swapped(name: str) -> str:
    for a, b in (("right", "@"), ("left", "right"), ("@", "left")):
        name = name.replace(a, b)
    return name


def test_tables_are_consistent_with_the_names():
    assert len(PART_NAMES) == NUM_PARTS + 1 and len(FINE_TO_COARSE) == NUM_PARTS + 1
    for fine, coarse in enumerate(FINE_TO_COARSE):
        stem = PART_NAMES[fine]
        for suffix in ("_front", "_back", "_inside", "_outside"):
            stem = stem.replace(suffix, "")
        if "head" in stem:
            stem = "head"
        assert stem == COARSE_NAMES[coarse], (fine, stem)
    for i, j in enumerate(FLIP_PARTS):
        assert PART_NAMES[j] == _side_swapped(PART_NAMES[i])
        assert FLIP_PARTS[j] == i
    for i, j in enumerate(FLIP_COARSE):
        assert COARSE_NAMES[j] == _side_swapped(COARSE_NAMES[i])
    for fine in range(1, NUM_PARTS + 1):  # the flips commute with fine -> coarse
        assert FINE_TO_COARSE[FLIP_PARTS[fine]] == FLIP_COARSE[FINE_TO_COARSE[fine]]
    assert set(UV_AXES) == set(range(1, 23))


@pytest.mark.parametrize("order", ["IUV", "VUI"])
def test_iuv_round_trip(tmp_path, order):
    rng = np.random.default_rng(0)
    parts = rng.integers(0, 25, (6, 7))
    u, v = rng.random((6, 7)), rng.random((6, 7))
    img = encode_iuv(parts, u, v, order)
    i2, u2, v2 = decode_iuv(img, order)
    np.testing.assert_array_equal(i2, parts)
    fg = parts > 0
    assert np.abs(u2 - u)[fg].max() <= 0.5 / 255 + 1e-6
    assert (u2[~fg] == 0).all() and (v2[~fg] == 0).all()
    save_iuv(tmp_path / "m.png", parts, u, v)
    np.testing.assert_array_equal(load_iuv(tmp_path / "m.png")[0], parts)
    with pytest.raises(ValueError, match="PNG"):
        save_iuv(tmp_path / "m.jpg", parts, u, v)


def test_wrong_channel_order_is_reported():
    img = encode_iuv(np.full((2, 2), 3), np.full((2, 2), 0.9), np.full((2, 2), 0.8))
    with pytest.raises(ImageError, match="is the channel order IUV"):
        decode_iuv(img, "VUI")


def test_auto_order_reads_both_orders_and_refuses_to_guess():
    rng = np.random.default_rng(1)
    parts = rng.integers(0, 25, (8, 8))
    u, v = rng.random((8, 8)), rng.random((8, 8))
    for order in ("IUV", "VUI"):
        i2, u2, _ = decode_iuv(encode_iuv(parts, u, v, order), "auto")
        np.testing.assert_array_equal(i2, parts)
        assert np.abs(u2 - u)[parts > 0].max() <= 0.5 / 255 + 1e-6
    dim = encode_iuv(parts, u * 0.05, v * 0.05)  # U and V under 24/255: either order fits
    with pytest.raises(ImageError, match="cannot tell the channel order"):
        decode_iuv(dim, "auto")


def test_atlas_layout():
    assert atlas_tile(1) == (0, 0) and atlas_tile(6) == (5, 0) and atlas_tile(7) == (0, 1)
    assert atlas_tile(24) == (5, 3)
    rows, cols = atlas_pixel(np.array([2, 24]), np.array([0.0, 1.0]), np.array([1.0, 0.0]), 200)
    assert rows.tolist() == [200, 1199] and cols.tolist() == [0, 799]


@pytest.mark.real_data
def test_real_iuv_maps_follow_the_convention(shared_data):
    fashion = shared_data / "real-formats" / "densepose-iuv-fashion"
    parts, _u, _v = load_iuv(fashion / "fashionWOMENDressesid0000262902_1front_iuv.png")
    assert parts.max() <= 24 and (parts == 2).sum() > (parts == 1).sum()  # torso front
    back, _, _ = load_iuv(fashion / "fashionWOMENDressesid0000262902_3back_iuv.png")
    assert (back == 1).sum() > (back == 2).sum()
    # DensePose-RCNN output read with PIL: channels R=V, G=U, B=I.
    demo = load_image(shared_data / "real-formats" / "densepose" / "demo_im_IUV.png")
    with pytest.raises(ImageError):
        decode_iuv(demo, "IUV")
    parts, _, _ = decode_iuv(demo, "VUI")
    np.testing.assert_array_equal(decode_iuv(demo, "auto")[0], parts)
    person = parts[:, 150:320]  # the person facing the camera on the left
    mean_x = {p: np.nonzero(person == p)[1].mean() for p in (3, 4, 5, 6, 9, 10)}
    assert mean_x[3] < mean_x[4]  # right hand on the image's left
    assert mean_x[6] < mean_x[5]  # right foot (6) on the same side as the right leg
    assert mean_x[9] < mean_x[10]


@pytest.mark.real_data
def test_real_texture_atlas_tiles(shared_data):
    atlas = load_image(shared_data / "real-formats" / "densepose" / "texture_atlas_200.png")
    assert atlas.shape == (1200, 800, 3)
    for part in range(1, 25):
        row, col = atlas_tile(part)
        tile = atlas[row * 200 : (row + 1) * 200, col * 200 : (col + 1) * 200]
        assert tile.mean() > 40  # every tile holds a chart, none is empty
