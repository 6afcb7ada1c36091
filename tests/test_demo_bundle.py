"""The committed demo bundle: on a fresh clone the README's first command works with it."""

import copy
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import infer
from common.config import to_dict
from common.image_io import load_image
from keypoints.skeleton import visible
from studio.bundle import load_bundle, with_settings
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


def test_the_demo_script_sets_what_the_demo_bundle_holds():
    """scripts/make_demo_bundle.sh's generator settings are accepted by the bundle writer and
    are what the committed demo's generator runs with: the script remakes the demo."""
    script = (ROOT / "scripts" / "make_demo_bundle.sh").read_text()
    settings = re.findall(r"--generator-set (\S+)", script)
    assert len(settings) >= 10
    demo = load_bundle(DEMO).generator
    remade = with_settings(copy.deepcopy(demo), settings, "generator")
    assert to_dict(remade.config) == to_dict(demo.config)


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


@pytest.mark.real_data
def test_a_catalogue_photo_without_the_head_gives_a_card_from_the_cut_down(shared_data):
    """The DeepFashion lace-top photo cut at the shoulders and at the mouth, as shops cut
    catalogue photos: her body is found where the uncut photo has it (once, a forearm read
    upside down), the head has no points (the card goes from the cut down instead of carrying
    a chunk of chin and letterbox as a head), no back-view note is given for the missing
    face, and a card is made. The uncut photo keeps her head. The frisbee player cut at the
    neck is parsed (once, an empty parse and a traceback)."""
    from studio.pipeline import Job, job_notes

    (path,) = (shared_data / "real-formats" / "densepose-iuv-fashion").glob("*front.png")
    photo = load_image(path)
    pipe = Pipeline.from_bundle(DEMO)
    whole = pipe.person(photo, "whole.png")
    assert not whole.head_cut_off and visible(whole.keypoints[[0, 14, 15]]).all()
    in_photo = cv2.invertAffineTransform(whole.photo_to_crop())
    truth = whole.keypoints @ in_photo[:, :2].T + in_photo[:, 2]  # photo pixels
    width = float(np.linalg.norm(truth[2] - truth[5]))
    w = photo.shape[1]
    pose = pipe.person(load_image(EXAMPLES / "model.jpg"), "model.jpg")
    for where in (truth[1, 1], (truth[0, 1] + truth[1, 1]) / 2):  # the shoulders, the mouth
        top = int(where)
        view = pipe.person(np.ascontiguousarray(photo[top:]), "cut.png")
        assert view.head_cut_off and not visible(view.keypoints[[0, 14, 15, 16, 17]]).any()
        back = cv2.invertAffineTransform(view.photo_to_crop())
        found = view.keypoints @ back[:, :2].T + back[:, 2] + [0, top]
        for k in (8, 11, 4, 7):  # hips and wrists where the uncut photo has them
            assert np.linalg.norm(found[k] - truth[k]) < 0.25 * width, (where, k)
        job = Job(view, pose)
        assert job_notes(job) == []
        card = pipe.generate(view, pose)
        assert card.shape[:2] == (256, 176) and card.std() > 10
    # cut at the shoulders and picked by a box from the top edge down: the same
    top = int(truth[1, 1])
    boxed = pipe.person(np.ascontiguousarray(photo[top:]), "cut.png", box=(0, 0, w, 300))
    assert boxed.head_cut_off
    # the frisbee player cut at the neck: his crop shows a flat letterbox band over him, the
    # landmark model's person flag falls there, and his mask (and so his parse) was empty
    photo = load_image(shared_data / "real-formats" / "densepose" / "demo_dp_single_ann_ICrop.jpg")
    neck = pipe.person(photo, "frisbee.jpg")
    in_photo = cv2.invertAffineTransform(neck.photo_to_crop())
    top = int((neck.keypoints @ in_photo[:, :2].T + in_photo[:, 2])[1, 1])
    view = pipe.person(np.ascontiguousarray(photo[top:]), "cut.jpg")
    assert view.head_cut_off and (view.labels > 0).mean() > 0.2
