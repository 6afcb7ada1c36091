"""The committed demo bundle: on a fresh clone the README's first command works with it."""

from pathlib import Path

import cv2
import numpy as np
import pytest

import infer
from common.image_io import load_image
from keypoints.skeleton import visible
from studio.bundle import load_bundle
from studio.pipeline import NoPersonError, Pipeline

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bundles" / "demo"
EXAMPLES = ROOT / "examples"


def test_the_demo_bundle_is_small_and_says_what_it_is():
    assert (DEMO / "config.json").is_file(), "bundles/demo is part of the repository"
    assert sum(f.stat().st_size for f in DEMO.iterdir()) <= 30 * 2**20
    bundle = load_bundle(DEMO)
    assert bundle.info["dtype"] == "int8" and "SynthFashion" in bundle.info["notes"]
    assert bundle.image_size[0] >= 256 and bundle.image_size[1] >= 176  # a product card


@pytest.mark.slow
def test_the_readme_command_runs_on_the_examples(tmp_path, capsys):
    out, panel = tmp_path / "out.png", tmp_path / "panel.png"
    args = ["--source", str(EXAMPLES / "model.jpg"), "--pose", str(EXAMPLES / "shopper.jpg")]
    args += [
        "--swap",
        f"upper={EXAMPLES / 'garment.jpg'}",
        "--out",
        str(out),
        "--panel",
        str(panel),
    ]
    assert infer.main(args) == 0, capsys.readouterr().err
    h, w = load_bundle(DEMO).generator.config.image_size
    assert load_image(out).shape == (h, w, 3)
    k = -(-256 // h)  # the panel is enlarged to at least 256 rows
    assert load_image(panel).shape == (k * h, 4 * k * w, 3)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3])
def test_the_demo_bundle_makes_larger_cards(tmp_path, capsys, scale):
    """--scale with every inference setting the demo bundle sets: a larger photo's detail is
    carried through each of them (the garment filled in under the arms and hands as well)."""
    out = tmp_path / "out.png"
    args = ["--source", str(EXAMPLES / "model.jpg"), "--pose", str(EXAMPLES / "shopper.jpg")]
    assert infer.main([*args, "--scale", str(scale), "--out", str(out)]) == 0, capsys.readouterr()
    h, w = load_bundle(DEMO).generator.config.image_size
    assert load_image(out).shape == (scale * h, scale * w, 3)


def test_a_small_person_in_a_wide_photo_is_found():
    """The catalogue model at half the height of a wide, plain photo: BlazePose's detector
    (or, for a top-down estimator, the window search) finds them, and the crop holds them."""
    pipe = Pipeline.from_bundle(DEMO)
    model = load_image(EXAMPLES / "model.jpg")
    small = cv2.resize(model, (150, 218), interpolation=cv2.INTER_AREA)
    photo = np.full((436, 1000, 3), 235, np.uint8)
    x, y = 760, 190
    photo[y : y + 218, x : x + 150] = small
    person = pipe.person(photo, "wide.jpg")
    bx, by, bw, bh = person.box
    overlap = max(0, min(bx + bw, x + 150) - max(bx, x)) * max(
        0, min(by + bh, y + 218) - max(by, y)
    )
    assert overlap / (150 * 218) > 0.9 and bw * bh < 3 * 150 * 218
    with pytest.raises(NoPersonError, match=r"blank\.jpg"):
        pipe.person(np.full((436, 1000, 3), 235, np.uint8), "blank.jpg")


@pytest.mark.slow
def test_in_bf16_the_demo_card_is_the_fp32_card():
    """`auto` precision is bf16 on a GPU and on a CPU with AMX: there the demo's generator
    must draw what it draws in fp32 (its warp stays fp32; the network's rounding is all)."""
    cards = []
    for precision in ("fp32", "bf16"):
        pipe = Pipeline.from_bundle(DEMO, precision=precision)
        people = [pipe.person(load_image(EXAMPLES / f), f) for f in ("model.jpg", "shopper.jpg")]
        cards.append(pipe.generate(*people).astype(int))
    assert np.abs(cards[0] - cards[1]).mean() < 1.0  # levels of 255


def test_a_photo_turned_on_its_side_or_upside_down_gives_the_upright_persons_view():
    """The catalogue model turned by each quarter turn (a photo whose orientation tag was
    lost): BlazePose finds the person lying, the pipeline reads the photo turned upright,
    and the crop, keypoints and parse are the upright photo's, within a few pixels."""
    pipe = Pipeline.from_bundle(DEMO)
    photo = load_image(EXAMPLES / "model.jpg")
    upright = pipe.person(photo, "model.jpg")
    assert upright.notes == []
    for turns in (1, 2, 3):
        view = pipe.person(np.ascontiguousarray(np.rot90(photo, turns)), "turned.jpg")
        assert len(view.notes) == 1 and "to stand them upright" in view.notes[0]
        moved = np.linalg.norm(view.keypoints - upright.keypoints, axis=1)
        assert (visible(view.keypoints) == visible(upright.keypoints)).all()
        assert moved[visible(upright.keypoints)].max() < 10  # px in a 176x256 crop
        assert np.abs(view.crop.astype(int) - upright.crop).mean() < 8  # levels of 255
        assert (view.labels == upright.labels).mean() > 0.95
