import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from common.image_io import ImageError, load_image, load_label_map, save_image

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = _save(Image.fromarray(arr), tmp_path / "rot.jpg", exif=exif, quality=98)
    out = load_image(path)
    assert out.shape == (40, 20, 3)
    assert out[5, 10, 0] > 200 and out[35, 10, 0] < 60  # red now on top


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_becomes_white(tmp_path, mode):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (10, 200, 30)
    rgba[:, 4:, 3] = 255  # left half transparent
    img = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        img = img.convert("LA")
    elif mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        img.info["transparency"] = img.getpixel((0, 0))
    out = load_image(_save(img, tmp_path / f"t_{mode}.png"))
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert (out[:, :4] == 255).all()
    assert not (out[:, 4:] == 255).all()


def test_greyscale_bilevel_cmyk_and_palette(tmp_path):
    grey = Image.fromarray(np.full((6, 7), 90, np.uint8), "L")
    out = load_image(_save(grey, tmp_path / "g.png"))
    assert out.shape == (6, 7, 3) and (out == 90).all()
    out = load_image(_save(grey.convert("1"), tmp_path / "b.png"))
    assert set(np.unique(out)) <= {0, 255}
    cmyk = Image.new("CMYK", (5, 5), (0, 0, 0, 0))
    out = load_image(_save(cmyk, tmp_path / "c.jpg"))
    assert out.shape == (5, 5, 3) and out.min() > 240
    pal = Image.fromarray(np.full((4, 4, 3), (0, 0, 255), np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    assert (load_image(_save(pal, tmp_path / "p.png"))[..., 2] == 255).all()


def test_sixteen_bit_and_float_are_scaled_by_depth(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    out = load_image(_save(Image.fromarray(values), tmp_path / "g16.png"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255])
    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[..., 2] = 65535  # cv2 is BGR: red
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16)
    np.testing.assert_array_equal(load_image(tmp_path / "rgb16.png")[0, 0], [255, 0, 0])
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F")
    out = load_image(_save(floats, tmp_path / "f.tiff"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255])


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    out = load_image(tmp_path / "a.gif")
    assert out[0, 0, 0] > 200 and out[0, 0, 1] < 50


def test_bytes_and_streams(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (3, 2), (1, 2, 3)).save(buf, format="PNG")
    assert load_image(buf.getvalue()).shape == (2, 3, 3)
    buf.seek(0)
    assert load_image(buf).shape == (2, 3, 3)


def test_bad_files_get_clear_errors(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "notes.jpg").write_text("not a picture")
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(tmp_path / "notes.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match=r"upload\.png: empty file"):
        load_image(b"", name="upload.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, format="JPEG"
    )
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(ImageError, match=r"upload\.png: not an image"):
        load_image(b"garbage", name="upload.png")


def test_size_limits_are_checked_before_decoding(tmp_path):
    path = _save(Image.new("RGB", (400, 300)), tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"400x300 is 0\.1 megapixels, over the limit"):
        load_image(path, max_pixels=100_000)
    with pytest.raises(ImageError, match="side over the limit of 256"):
        load_image(path, max_side=256)
    assert load_image(path, max_pixels=120_000).shape == (300, 400, 3)


def test_an_iphones_heic_photo_reads_as_its_jpeg_does():
    """tests/data/model.heic is examples/model.jpg saved as HEIC (pillow-heif, quality 85)."""
    heic = load_image(DATA / "model.heic")
    jpeg = load_image(EXAMPLES / "model.jpg")
    assert heic.shape == jpeg.shape == (256, 176, 3)
    assert np.abs(heic.astype(int) - jpeg).mean() < 2  # levels of 255
    with pytest.raises(ImageError, match="side over the limit of 200"):
        load_image(DATA / "model.heic", max_side=200)


def test_label_maps_keep_raw_values(tmp_path):
    labels = (np.arange(20, dtype=np.uint8).repeat(3)[None, :]).repeat(2, axis=0)
    pal = Image.fromarray(labels, "P")
    pal.putpalette([v for i in range(256) for v in (i * 7 % 256, i * 13 % 256, i * 29 % 256)])
    np.testing.assert_array_equal(load_label_map(_save(pal, tmp_path / "p.png")), labels)
    np.testing.assert_array_equal(
        load_label_map(_save(Image.fromarray(labels, "L"), tmp_path / "l.png")), labels
    )
    grey_rgb = np.repeat(labels[..., None], 3, axis=2)
    np.testing.assert_array_equal(
        load_label_map(_save(Image.fromarray(grey_rgb), tmp_path / "rgb.png")), labels
    )
    colour = grey_rgb.copy()
    colour[0, 0] = (1, 2, 3)
    with pytest.raises(ImageError, match="colour image"):
        load_label_map(_save(Image.fromarray(colour), tmp_path / "c.png"))
    with pytest.raises(ImageError, match=r"l\.png: label values 8, 9, .* outside 0\.\.7"):
        load_label_map(tmp_path / "l.png", num_classes=8)
    assert load_label_map(tmp_path / "l.png", num_classes=19, ignore_index=19).max() == 19


def test_save_image_round_trip(tmp_path):
    arr = np.random.default_rng(1).integers(0, 255, (10, 12, 3), np.uint8)
    save_image(tmp_path / "x.png", arr)
    np.testing.assert_array_equal(load_image(tmp_path / "x.png"), arr)
    gx, gy = np.meshgrid(np.linspace(0, 255, 12), np.linspace(0, 255, 10))
    smooth = np.stack([gx, gy, np.full_like(gx, 128.0)], axis=-1).astype(np.uint8)
    save_image(tmp_path / "x.jpg", smooth, quality=95)
    assert np.abs(load_image(tmp_path / "x.jpg").astype(int) - smooth).mean() < 4
    with pytest.raises(ValueError, match="suffix"):
        save_image(tmp_path / "x.bmp", arr)
