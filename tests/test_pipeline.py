"""The photo-to-photo pipeline and infer.py on a tiny random bundle: cropping, generation,
swaps, the panel, and the errors a user can act on. (Random weights find no person, so the
people are given from SynthFashion's ground truth where a test needs one.)"""

import copy
from dataclasses import replace

import cv2
import numpy as np
import pytest

import infer
from adgan.data import DeepFashionPeople, load_person
from common.colour import parse_colour
from common.geometry import apply_to_points, parse_box
from common.image_io import load_image
from keypoints.predict import KeypointResult
from keypoints.skeleton import keypoint_box, visible
from studio.backdrop import PHOTO
from studio.pipeline import BoxError, Job, NoPersonError, PersonView, Pipeline, person_box
from tests.conftest import LyingOnItsSide

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights")


def view(people: DeepFashionPeople, name: str, size=(32, 24)) -> PersonView:
    crop, kp, labels = load_person(people[name], size)
    return PersonView(name, crop, kp, labels, (0.0, 0.0, 88.0, 128.0), 1.0)


def test_person_box_holds_every_keypoint_at_the_generator_aspect(synth_dataset):
    people = DeepFashionPeople(synth_dataset, "test")
    for name, kp in list(people.annotations.items())[:5]:
        x, y, w, h = person_box(kp, 24 / 32)
        shown = kp[visible(kp)]
        assert w / h == pytest.approx(24 / 32)
        assert (shown[:, 0] >= x).all() and (shown[:, 0] <= x + w).all(), name
        assert (shown[:, 1] >= y).all() and (shown[:, 1] <= y + h).all(), name


def test_generate_swap_and_panel(tiny_bundle, synth_dataset):
    pipe = Pipeline.from_bundle(tiny_bundle)
    people = DeepFashionPeople(synth_dataset, "test")
    names = sorted(people.annotations)
    source, pose, donor = (view(people, n) for n in (names[0], names[1], names[4]))
    result = pipe.generate(source, pose)
    assert result.shape == (32, 24, 3) and result.dtype == np.uint8
    swapped = pipe.generate(source, pose, swaps={"upper": donor, "lower": donor})
    assert swapped.shape == result.shape
    panel = pipe.panel(source, pose, result)
    assert panel.shape == (256, 4 * 8 * 24, 3)  # enlarged 8x to 256 rows
    pose_column = panel[:, 8 * 24 : 16 * 24].astype(int)
    assert pose_column.std() > 5  # the pose photo, dimmed, under the skeleton: not black
    enlarged = cv2.resize(source.crop, (192, 256)).astype(int)
    assert np.abs(panel[:, :192].astype(int) - enlarged).mean() < 10


def test_a_batch_gives_what_one_at_a_time_gives(tiny_bundle, synth_dataset):
    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32")
    people = DeepFashionPeople(synth_dataset, "test")
    a, b, c = (view(people, n) for n in sorted(people.annotations)[:3])
    jobs = [Job(a, b), Job(b, c, {"upper": a}), Job(a, c, {"hair": b, "lower": b})]
    batch = pipe.generate_many(jobs)
    for job, out in zip(jobs, batch, strict=True):
        alone = pipe.generate(job.source, job.pose, job.swaps).astype(int)
        assert np.abs(alone - out).max() <= 1
    assert pipe.generate_many([]) == []


def test_precision_auto_follows_the_hardware_and_bf16_stays_close(
    tiny_bundle, synth_dataset, monkeypatch
):
    import common.hardware

    for has_amx, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(common.hardware, "cpu_has_bf16_matmul", lambda v=has_amx: v)
        assert Pipeline.from_bundle(tiny_bundle).transfer.precision == expected
    with pytest.raises(ValueError, match="precision must be"):
        Pipeline.from_bundle(tiny_bundle, precision="fp16")
    people = DeepFashionPeople(synth_dataset, "test")
    a, b = (view(people, n) for n in sorted(people.annotations)[:2])
    exact = Pipeline.from_bundle(tiny_bundle, precision="fp32").generate(a, b).astype(int)
    fast = Pipeline.from_bundle(tiny_bundle, precision="bf16").generate(a, b).astype(int)
    assert np.abs(exact - fast).mean() < 2.0  # levels of 255; bf16 keeps 8 mantissa bits


def test_a_pose_photo_is_read_for_its_pose_only(tiny_bundle, synth_dataset):
    """`people(parse=...)`: a photo that only gives a job its pose is not parsed, keeps the
    keypoints a parsed read gives, and makes the same card; as a source or a donor it is
    refused (a caller's mistake, not a user's)."""
    from studio.stub import StandingPerson

    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32")
    pipe.keypoints = StandingPerson()  # the tiny bundle's random estimator finds nobody
    people = DeepFashionPeople(synth_dataset, "test")
    a, b = (load_image(people[n].image) for n in sorted(people.annotations)[:2])
    parsed = pipe.people([(a, "a.jpg"), (b, "b.jpg")])
    source, pose = pipe.people([(a, "a.jpg"), (b, "b.jpg")], parse=[True, False])
    assert pose.labels is None and source.labels is not None
    np.testing.assert_array_equal(pose.keypoints, parsed[1].keypoints)
    card = pipe.generate(source, pose).astype(int)
    assert np.abs(card - pipe.generate(parsed[0], parsed[1])).max() <= 1
    for job in (Job(pose, source), Job(source, source, {"upper": pose})):
        with pytest.raises(ValueError, match=r"b\.jpg: read for the pose only"):
            pipe.generate_many([job])
    with pytest.raises(ValueError, match="parse"):
        pipe.people([(a, "a.jpg")], parse=[True, False])


def test_the_closer_look_follows_a_person_alone_and_searches_again_beside_others(tiny_bundle):
    """An estimator that can follow (BlazePose's `follow_many`) is handed the first look's
    person where that look saw nobody else; beside others the crop is searched again, told
    whom to look at (over a crowd, a first look may put a head on a neighbour). Which photos
    are read for the pose only reaches it as `pose_only`."""
    from studio.stub import StandingPerson

    calls = []

    class Following(StandingPerson):
        accepts_pose_only = True

        def predict_many(self, images, boxes=None, pose_only=None):
            calls.append(("search", len(images), pose_only))
            found = super().predict_many(images, boxes)
            for f, image in zip(found, images, strict=True):
                if boxes is None and image.mean() > 100:  # the bright photo shows two people
                    f.others = [(5.0, 5.0, 20.0, 40.0)]
            return found

        def follow_many(self, images, firsts, to_images, pose_only=None):
            calls.append(("follow", len(images), pose_only))
            assert all(m.shape == (2, 3) for m in to_images) and len(firsts) == len(images)
            return StandingPerson().predict_many(images)

    pipe = Pipeline.from_bundle(tiny_bundle)
    pipe.keypoints = Following()
    crowd, alone = np.full((300, 200, 3), 150, np.uint8), np.full((300, 200, 3), 60, np.uint8)
    views = pipe.people([(crowd, "crowd.jpg"), (alone, "alone.jpg")], parse=[True, False])
    assert all(isinstance(v, PersonView) for v in views)
    assert calls[0] == ("search", 2, None)  # the first look, both whole photos
    assert calls[1:] == [("follow", 1, [True]), ("search", 1, [False])]
    assert views[0].labels is not None and views[1].labels is None


def test_no_person_is_named(tiny_bundle):
    pipe = Pipeline.from_bundle(tiny_bundle)

    class Nobody:
        def predict_many(self, images, boxes=None):
            nobody = np.full((18, 2), -1.0, np.float32)
            return [KeypointResult(nobody, np.zeros(18), 0.03) for _ in images]

    pipe.keypoints = Nobody()
    with pytest.raises(NoPersonError, match=r"wall\.jpg: no person found"):
        pipe.person(np.full((64, 44, 3), 200, np.uint8), "wall.jpg")


def test_the_second_look_maps_into_the_crop_and_keeps_the_person(tiny_bundle, synth_dataset):
    """Keypoints of the closer look come back in the generator's crop; where that look
    finds nobody (a small estimator on a small crop), the first look's keypoints stay."""
    from common.geometry import apply_to_points, box_to_input

    pipe = Pipeline.from_bundle(tiny_bundle)
    people = DeepFashionPeople(synth_dataset, "test")
    person = people[sorted(people.annotations)[0]]
    photo, truth = load_image(person.image), person.keypoints
    seen, given = [], []

    class Oracle:  # the truth on the photo; on the closer look, the truth or nobody
        def __init__(self, second_look_finds: bool) -> None:
            self.finds = second_look_finds

        def predict_many(self, images, boxes=None):
            seen.append([im.shape[:2] for im in images])
            given.append(boxes)
            if len(seen) % 2 == 1:
                return [KeypointResult(truth.copy(), np.ones(18), 0.9) for _ in images]
            box = person_box(truth, 24 / 32, pipe.margin)
            detail = apply_to_points(box_to_input(box, pipe.detail_size), truth)
            found = detail if self.finds else np.full((18, 2), -1.0, np.float32)
            return [KeypointResult(found, np.ones(18), 0.9 if self.finds else 0.1)] * len(images)

    for finds in (True, False):
        pipe.keypoints = Oracle(finds)
        got = pipe.person(photo, "model.jpg")
        assert seen[-1] == [pipe.detail_size]  # the closer look reads the photo, not the crop
        # ... and is told whom to look at: a box around the first look's person
        x, y, w, h = given[-1][0]
        crop_box = person_box(truth, 24 / 32, pipe.margin)
        inside = apply_to_points(box_to_input(crop_box, pipe.detail_size), truth)
        inside = inside[(truth >= 0).all(1)]
        assert (inside[:, 0] >= x - 1e-3).all() and (inside[:, 0] <= x + w + 1e-3).all()
        assert (inside[:, 1] >= y - 1e-3).all() and (inside[:, 1] <= y + h + 1e-3).all()
        expected = apply_to_points(box_to_input(got.box, pipe.size), truth)
        np.testing.assert_allclose(got.keypoints, expected, atol=1e-3)
        assert got.crop.shape == (32, 24, 3) and got.labels.shape == (32, 24)


def test_a_backdrop_takes_the_background_and_keeps_the_person(tiny_bundle, synth_dataset):
    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32")
    people = DeepFashionPeople(synth_dataset, "test")
    source, pose = (view(people, n) for n in sorted(people.annotations)[:2])
    own = pipe.generate(source, pose).astype(int)
    card = pipe.generate(source, pose, backdrop=(0, 255, 0)).astype(int)
    plain = (card == (0, 255, 0)).all(-1)
    w = plain.shape[1]
    assert plain[0, 0] and plain[0, w - 1]  # the corners, far from the person
    assert 0.1 < plain.mean() < 0.9
    neck = pose.keypoints[1].round().astype(int)  # on the person: the generator's own picture
    assert np.abs(card[neck[1], neck[0]] - own[neck[1], neck[0]]).max() <= 2
    # in a batch, each card has its own: a plain one beside one on the photo's background
    both = pipe.generate_many([Job(source, pose, backdrop=(0, 255, 0)), Job(source, pose)])
    assert np.abs(both[0].astype(int) - card).max() <= 1
    assert np.abs(both[1].astype(int) - own).max() <= 1


def test_the_generator_is_told_each_cards_backdrop(tiny_bundle, synth_dataset, monkeypatch):
    """What the generator paints where its matte is soft is the backdrop's colour only if it
    knows that colour (`Backdrops`): each plain card's, and none for a card on the photo."""
    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32")
    people = DeepFashionPeople(synth_dataset, "test")
    source, pose = (view(people, n) for n in sorted(people.annotations)[:2])
    generator = pipe.transfer.generator
    told = []

    def render_card(*args, **kwargs):
        told.append(kwargs.get("backdrops"))
        return type(generator).render_card(generator, *args, **kwargs)

    monkeypatch.setattr(generator, "render_card", render_card)
    pipe.generate_many([Job(source, pose, backdrop=(0, 255, 0)), Job(source, pose, backdrop=PHOTO)])
    colours, used = told[-1]
    assert used.tolist() == [True, False]
    np.testing.assert_allclose(colours[0].numpy(), [-1.0, 1.0, -1.0])
    pipe.generate_many([Job(source, pose, backdrop=PHOTO)])
    assert told[-1] is None


def test_the_default_backdrop_is_the_sources_wall_where_it_is_plain(tiny_bundle, synth_dataset):
    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32")
    people = DeepFashionPeople(synth_dataset, "test")
    source, pose = (view(people, n) for n in sorted(people.annotations)[:2])
    wall = (source.labels == 0)[..., None]
    plain = replace(source, crop=np.where(wall, np.uint8([200, 180, 160]), source.crop))
    noise = np.random.default_rng(0).integers(0, 256, source.crop.shape, dtype=np.uint8)
    busy = replace(source, crop=np.where(wall, noise, source.crop))
    assert pipe.backdrop_colour(Job(plain, pose)) == (200, 180, 160)
    assert pipe.backdrop_colour(Job(busy, pose)) == (240, 240, 240)  # the studio grey
    assert pipe.backdrop_colour(Job(plain, pose, backdrop=PHOTO)) is None
    scene = copy.copy(pipe)
    scene.wall = replace(pipe.wall, otherwise=None)  # `auto` as a caller may set it
    assert scene.backdrop_colour(Job(busy, pose)) is None
    cards = pipe.generate_many(
        [
            Job(plain, pose),
            Job(plain, pose, backdrop=(200, 180, 160)),
            Job(busy, pose),
            Job(busy, pose, backdrop=(240, 240, 240)),
            Job(busy, pose, backdrop=PHOTO),
        ]
    )
    np.testing.assert_array_equal(cards[0], cards[1])  # on the wall's colour
    np.testing.assert_array_equal(cards[2], cards[3])  # on the studio grey
    assert (cards[0][0, 0] == (200, 180, 160)).all()
    assert (cards[2][0, 0] == (240, 240, 240)).all()
    assert np.abs(cards[4][0, 0].astype(int) - 240).max() > 20  # the photo's noisy scene
    with pytest.raises(ValueError, match="backdrop 'sky'"):
        pipe.generate_many([Job(plain, pose, backdrop="sky")])


def test_backdrop_colours_are_parsed_and_a_bad_one_is_refused(capsys):
    assert parse_colour("white") == (255, 255, 255)
    assert parse_colour("#F0e0d0") == (240, 224, 208)
    assert parse_colour(" 1, 2,3") == (1, 2, 3)
    for bad in ("blue", "#fff", "1,2", "0,0,256", "-1,0,0"):
        with pytest.raises(ValueError, match="colour"):
            parse_colour(bad)
    with pytest.raises(SystemExit) as exit_:
        infer.main(["--source", "a.jpg", "--pose", "b.jpg", "--backdrop", "blue"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--backdrop" in err and "auto or photo" in err


def test_infer_end_to_end(tiny_bundle, synth_dataset, tmp_path, monkeypatch, capsys):
    people = DeepFashionPeople(synth_dataset, "test")
    names = sorted(people.annotations)
    monkeypatch.setattr(
        Pipeline,
        "people",
        lambda self, photos, boxes=None, parse=None: [view(people, names[0])] * len(photos),
    )
    photo = people.images / names[0]
    out, panel = tmp_path / "out.png", tmp_path / "panel.png"
    args = [
        "--source",
        str(photo),
        "--pose",
        str(photo),
        "--swap",
        f"lower={photo}",
        "--bundle",
        str(tiny_bundle),
        "--out",
        str(out),
        "--panel",
        str(panel),
    ]
    assert infer.main(args) == 0
    assert load_image(out).shape == (32, 24, 3) and load_image(panel).shape == (256, 768, 3)
    assert "wrote" in capsys.readouterr().out
    assert infer.main([*args, "--scale", "2"]) == 0  # a card twice the size, the same panel
    assert load_image(out).shape == (64, 48, 3) and load_image(panel).shape == (256, 768, 3)
    monkeypatch.undo()  # the real person finder: random weights find nobody
    assert infer.main(args) == 2
    assert "no person found" in capsys.readouterr().err


def test_infer_takes_the_person_boxes_a_user_gives(
    tiny_bundle, synth_dataset, tmp_path, monkeypatch, capsys
):
    people = DeepFashionPeople(synth_dataset, "test")
    names = sorted(people.annotations)
    boxes = []
    monkeypatch.setattr(  # one batch for every photo of the card
        Pipeline,
        "people",
        lambda self, photos, given, parse=None: (
            boxes.extend(given) or [view(people, names[0])] * len(photos)
        ),
    )
    photo = str(people.images / names[0])
    args = ["--source", photo, "--pose", photo, "--bundle", str(tiny_bundle)]
    args += ["--out", str(tmp_path / "out.png"), "--source-box", "300,40,90,180"]
    assert infer.main(args) == 0
    assert boxes == [(300, 40, 90, 180), None]
    with pytest.raises(SystemExit) as exit_:
        infer.main([*args, "--pose-box", "1,2,3"])
    assert exit_.value.code == 2 and "x,y,w,h" in capsys.readouterr().err
    # a swap's photo too, by the component it gives (any name of it)
    swap = [*args, "--swap", f"upper={photo}", "--swap-box", "top=5,6,70,80"]
    boxes.clear()
    assert infer.main(swap) == 0
    assert boxes == [(300, 40, 90, 180), None, (5, 6, 70, 80)]
    capsys.readouterr()
    assert infer.main([*args, "--swap-box", "upper=5,6,70,80"]) == 2  # no such swap
    assert "--swap-box upper_clothes: no --swap upper_clothes=PHOTO" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        infer.main([*swap[:-1], "upper:5,6,70,80"])
    assert exit_.value.code == 2 and "COMPONENT=x,y,w,h" in capsys.readouterr().err


def test_a_source_and_a_pose_seen_from_opposite_sides_are_told(
    tiny_bundle, synth_dataset, tmp_path, monkeypatch, capsys
):
    """A back view (no nose, no eyes: how the keypoint backends leave it) as the source of a
    front pose, or as the pose of a front source: the card carries the side the source
    shows, and a note says so (infer.py, the cards' notes.csv and the service's X-Note
    take it from `job_notes`); the same side in both photos, nothing."""
    from studio.pipeline import job_notes

    people = DeepFashionPeople(synth_dataset, "test")
    front = view(people, sorted(people.annotations)[0])
    assert visible(front.keypoints)[[0, 14, 15]].any()
    back = replace(front, name="back.jpg", keypoints=front.keypoints.copy())
    back.keypoints[[0, 14, 15]] = -1.0
    (note,) = job_notes(Job(back, front))
    assert note.startswith("back.jpg: its person is seen from behind") and "from the front" in note
    (note,) = job_notes(Job(front, back))
    assert note.startswith("back.jpg: its person is seen from behind: the card shows")
    assert job_notes(Job(front, front)) == [] and job_notes(Job(back, back)) == []
    monkeypatch.setattr(Pipeline, "people", lambda self, photos, given, parse=None: [back, front])
    photo = str(people.images / sorted(people.annotations)[0])
    args = ["--source", photo, "--pose", photo, "--bundle", str(tiny_bundle)]
    assert infer.main([*args, "--out", str(tmp_path / "out.png")]) == 0
    assert "note: back.jpg: its person is seen from behind" in capsys.readouterr().err


# -- real-photo failure modes, each with a stand-in estimator ---------------------------------


class Seen:
    """A stand-in estimator: STANDING scaled into `box` of every photo (or of the box it is
    given), `others` boxes reported beside it, keypoints in `drop` missing."""

    def __init__(self, box=None, others=(), drop=()) -> None:
        self.box, self.others, self.drop = box, list(others), list(drop)
        self.boxes_given: list = []

    def predict_many(self, images, boxes=None):
        from studio.stub import STANDING

        self.boxes_given.append(boxes)
        out = []
        for n, image in enumerate(images):
            h, w = image.shape[:2]
            box = (boxes or [None] * len(images))[n] or self.box or (0, 0, w, h)
            x, y, bw, bh = box
            kp = (STANDING * np.array([bw, bh]) + np.array([x, y])).astype(np.float32)
            kp[self.drop] = -1.0
            others = self.others if boxes is None or boxes[n] is None else []
            out.append(KeypointResult(kp, np.full(18, 0.9, np.float32), 0.9, others=others))
        return out


def test_a_crop_past_the_photo_knows_where_the_photo_ends(tiny_bundle):
    """A person in a narrow photo: the crop (the generator's aspect) reaches past the
    photo's sides, and `frame` marks that letterbox, which the generator fills from the
    photo's background instead of taking its white for background."""
    pipe = Pipeline.from_bundle(tiny_bundle)
    pipe.keypoints = Seen(box=(10, 20, 80, 260))
    view = pipe.person(np.full((300, 100, 3), 90, np.uint8), "narrow.jpg")
    h, w = view.crop.shape[:2]
    assert view.frame.shape == (h, w)
    assert view.frame[:, 0].max() == 0 and view.frame[:, -1].max() == 0  # letterbox
    assert view.frame[h // 2, w // 2] == 1
    assert (view.crop[view.frame == 0] == 255).all()  # the white the frame says to ignore
    card = pipe.generate_many([Job(view, view)])[0]
    assert card.shape[:2] == (h, w)


def test_several_people_say_which_one_is_used_and_how_to_choose(tiny_bundle):
    from studio.stub import STANDING

    pipe = Pipeline.from_bundle(tiny_bundle)
    # beside the person used, one of the same size 280 px to the right, outlined by the
    # estimator as the box of their keypoints
    twin = keypoint_box(STANDING * np.array([100, 200]) + np.array([290, 20]))
    pipe.keypoints = Seen(box=(10, 20, 100, 200), others=[twin])
    photo = np.full((300, 400, 3), 120, np.uint8)
    view = pipe.person(photo, "group.jpg")
    (note,) = view.notes
    assert "group.jpg: 2 people found; using the one in" in note
    # the other is offered as a crop the way the one used is: the same size, where they stand
    (other,) = view.others  # the same as data (the page offers them)
    np.testing.assert_allclose(other, np.add(view.box, (280, 0, 0, 0)), atol=1e-3)
    given = ",".join(str(round(v)) for v in other)
    assert f"The others, as x,y,w,h: {given}." in note  # as a user passes them back
    assert "--source-box" in note and "source_box" in note and "crop the photo" in note
    x, _, w, _ = view.box
    assert x < 110 and x + w > 10  # the one the estimator picked
    chosen = pipe.person(photo, "group.jpg", box=parse_box(given))
    assert pipe.keypoints.boxes_given[-2] == [parse_box(given)]  # the first look, in the box
    assert chosen.notes == [] and chosen.box[0] > 250
    outside = r"group\.jpg: the person box 500,0,10,10 \(x,y,w,h\) lies outside the 400x300 photo"
    with pytest.raises(BoxError, match=outside):
        pipe.person(photo, "group.jpg", box=(500, 0, 10, 10))
    # in a batch, a bad box costs its own photo only
    views = pipe.people([(photo, "a.jpg"), (photo, "b.jpg")], [None, (500, 0, 10, 10)])
    assert isinstance(views[0], PersonView) and isinstance(views[1], BoxError)
    with pytest.raises(
        NoPersonError, match=r"wall\.jpg: no person found inside the box.*use a box"
    ):
        pipe.keypoints = Seen(drop=list(range(18)))
        pipe.person(photo, "wall.jpg", box=(0, 0, 100, 100))


def test_the_note_calls_the_person_used_the_tallest_only_where_the_boxes_agree(tiny_bundle):
    """BlazePose uses the tallest body it could read; a person it could not read is offered
    in a rough box that may be taller, and the note must not call the one used the tallest
    beside it."""
    pipe = Pipeline.from_bundle(tiny_bundle)
    photo = np.full((300, 400, 3), 120, np.uint8)
    for other, claim in (
        ((290, 60, 50, 100), "(the tallest)."),
        (
            (250, 0, 150, 300),
            "(the tallest whose body could be read; a taller box among the others is a",
        ),
    ):
        pipe.keypoints = Seen(box=(10, 20, 100, 200), others=[other])
        pipe.keypoints.pick = "largest"
        (note,) = pipe.person(photo, "group.jpg").notes
        assert claim in note


def test_a_person_too_small_is_named_with_the_size(tiny_bundle):
    from studio.pipeline import PersonTooSmallError

    pipe = Pipeline.from_bundle(tiny_bundle)
    assert pipe.min_person_height == 32  # the 32x24 generator asks its own height, not 120
    pipe.keypoints = Seen(box=(200, 100, 12, 20))
    with pytest.raises(PersonTooSmallError, match=r"far\.jpg: the person found is only 19 px"):
        pipe.person(np.full((300, 400, 3), 120, np.uint8), "far.jpg")
    found = pipe.people([(np.full((300, 400, 3), 120, np.uint8), "far.jpg")])
    assert isinstance(found[0], NoPersonError)  # a batch keeps going: the error in its place
    # a photo too small for anyone that tall, even corner to corner, is refused before any
    # network looks at it (BlazePose found a "person" 2 px tall in a 22x32 thumbnail)
    pipe.keypoints = None  # not consulted
    thumb = pipe.people([(np.full((20, 24, 3), 120, np.uint8), "thumb.png")])[0]
    assert isinstance(thumb, PersonTooSmallError)
    assert "thumb.png: this photo is only 24x20 px; a person must be at least 32 px" in str(thumb)


@pytest.mark.parametrize(
    "role, drop, missing",
    [
        ("pose", [8, 11], "no hips"),
        ("pose", [0, 14, 15, 16, 17], "shows no head \\(no nose"),
        ("pose", [0, 8, 11, 14, 15, 16, 17], "and"),
        ("source", [1, 2, 5], "no shoulders"),  # a face close-up
    ],
)
def test_a_person_the_job_cannot_use_says_what_is_missing(tiny_bundle, role, drop, missing):
    from studio.pipeline import IncompletePoseError

    pipe = Pipeline.from_bundle(tiny_bundle)
    photo = np.full((200, 150, 3), 120, np.uint8)
    pipe.keypoints = Seen()
    whole = pipe.person(photo, "whole.jpg")
    pipe.keypoints = Seen(drop=drop)
    part = pipe.person(photo, "part.jpg")  # found all the same
    source, pose = (whole, part) if role == "pose" else (part, whole)
    with pytest.raises(IncompletePoseError, match=rf"part\.jpg: as the {role} photo.*{missing}"):
        pipe.generate(source, pose)
    assert pipe.generate(whole, whole, swaps={"upper": part}).shape == (32, 24, 3)  # a donor may
    pipe.keypoints = Seen(drop=[8, 9, 10, 11, 12, 13])
    chest_up = pipe.person(photo, "chest.jpg")  # no hips: used, the card ends where it ends
    assert pipe.generate(chest_up, whole).shape == (32, 24, 3)


def test_a_source_cut_at_the_thigh_frames_the_card_there(tiny_bundle, synth_dataset):
    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32")
    views = [
        view(people, n)
        for people in (DeepFashionPeople(synth_dataset, s) for s in ("train", "test"))
        for n in sorted(people.annotations)
    ]
    source = pose = next(v for v in views if visible(v.keypoints)[[10, 13]].all())
    kp = source.keypoints.copy()
    kp[[9, 10, 12, 13]] = -1  # a catalogue photo: the person ends below the hips
    labels = source.labels.copy()
    labels[int(kp[[8, 11], 1].max()) + 2 :] = 0
    half = replace(source, keypoints=kp, labels=labels)
    card = pipe.card_pose(Job(half, pose))
    torso = lambda k: np.linalg.norm(k[1] - k[[8, 11]].mean(0))  # noqa: E731
    assert torso(card.keypoints) > 1.3 * torso(pose.keypoints)  # the person drawn larger
    assert (card.keypoints[[10, 13], 1] > pose.crop.shape[0]).all()  # the ankles off the card
    assert card.crop.shape == pose.crop.shape
    hair = pipe.card_pose(Job(half, pose, {"hair": source}))  # a hair donor says nothing of legs
    np.testing.assert_allclose(hair.keypoints, card.keypoints)
    kept = (Job(half, pose, framing="pose"), Job(source, pose), Job(half, pose, {"lower": source}))
    assert all(pipe.card_pose(job) is pose for job in kept)
    seen = []
    real = pipe.transfer.generate_many
    pipe.transfer.generate_many = lambda kp, *a, **kw: seen.append(kp) or real(kp, *a, **kw)
    pipe.generate(half, pose)
    assert np.allclose(seen[0][0], card.keypoints)  # the generator draws the card's pose
    with pytest.raises(ValueError, match="framing 'tight'"):
        pipe.generate(half, pose, framing="tight")


def test_a_person_on_their_side_is_read_upright_and_told(tiny_bundle):
    """A photo whose orientation tag was lost: the crop is turned so the person stands
    (the head, painted blue on the photo's right, at the crop's top), the box stays in the
    photo's own pixels, and a note says what was done; `upright_tolerance=None` keeps the
    photo as it is."""
    photo = np.zeros((200, 300, 3), np.uint8)
    photo[:, :150] = (200, 0, 0)  # the legs' half
    photo[:, 150:] = (0, 0, 200)  # the head's half
    pipe = Pipeline.from_bundle(tiny_bundle)
    pipe.keypoints = LyingOnItsSide(box=(20, 20, 160, 260))
    view = pipe.person(photo, "sideways.jpg")
    (note,) = view.notes
    assert "sideways.jpg: the person in this photo lies on their side" in note
    assert "a quarter turn anticlockwise" in note
    h = view.crop.shape[0]
    top, bottom = view.crop[: h // 4].reshape(-1, 3), view.crop[-h // 4 :].reshape(-1, 3)
    assert (top[:, 2] > top[:, 0]).mean() > 0.9 and (bottom[:, 0] > bottom[:, 2]).mean() > 0.9
    assert view.keypoints[1, 1] < view.keypoints[8, 1]  # the neck above the hip
    x, y, w, h = view.box  # where the crop lies in the photo: a landscape box
    assert w > h and x < 150 < x + w
    corners = np.array([[x, y], [x + w, y + h]]) - 0.5  # pixel edges -> pixel centres
    matrix = view.photo_to_crop()
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]  # the box's corners, in the crop
    crop_h, crop_w = view.crop.shape[:2]
    assert np.allclose(np.sort(mapped[:, 0]), [-0.5, crop_w - 0.5], atol=1.0)
    assert np.allclose(np.sort(mapped[:, 1]), [-0.5, crop_h - 0.5], atol=1.0)
    pipe.upright_tolerance = None
    kept = pipe.person(photo, "sideways.jpg")
    assert kept.notes == [] and kept.box[2] < kept.box[3]


def test_a_source_cut_at_the_mouth_frames_the_card_there_unless_a_donor_shows_the_head(
    tiny_bundle,
):
    """A catalogue photo cut at the mouth: the card starts there too, the pose's eyes above
    it; with a hair donor, the head is shown and the card keeps it."""
    from tests.test_framing import standing

    pipe = Pipeline.from_bundle(tiny_bundle)
    h, w = pipe.size
    scale = np.array([w / 176, h / 256], np.float32)
    kp = standing() * scale
    mouth = round(46 * h / 256)  # the photo starts there: letterbox above
    labels = np.zeros((h, w), np.uint8)
    labels[mouth:, w // 4 : 3 * w // 4] = 5  # upper clothes from the photo's first row down
    frame = np.zeros((h, w), np.uint8)
    frame[mouth:] = 1
    crop = np.zeros((h, w, 3), np.uint8)
    headless = kp.copy()
    headless[[0, 14, 15, 16, 17]] = -1
    source = PersonView("cut.jpg", crop, headless, labels, (0, 0, w, h), 1.0, frame=frame)
    pose = PersonView("pose.jpg", crop, kp, labels, (0, 0, w, h), 1.0)
    matrix = pipe.card_frame(Job(source, pose))
    assert matrix is not None
    eyes = apply_to_points(matrix, kp[[14, 15]])
    assert (eyes[:, 1] < 0).all()  # above the card
    donor = PersonView("hair.jpg", crop, kp, labels, (0, 0, w, h), 1.0)
    assert pipe.card_frame(Job(source, pose, swaps={"hair": donor})) is None


def test_a_larger_card_reads_the_person_from_the_photo_at_its_size(tiny_bundle, synth_dataset):
    """card_scale 2: the person is read again from the photo at twice the crop's size (the
    photo's own pixels, not the crop enlarged), and the card is twice the size; a job may
    ask for another size."""
    pipe = Pipeline.from_bundle(tiny_bundle, precision="fp32", card_scale=2)
    pipe.keypoints = Seen(box=(20, 12, 24, 52))  # the crop: about 64 rows of the photo
    y, x = np.mgrid[:80, :64]
    smooth = np.stack([x * 4, y * 3, 255 - x * 4], -1).astype(np.uint8)
    stripes = smooth.copy()
    stripes[:, ::2] = 0  # one-pixel stripes: the photo's finest detail
    person = pipe.person(smooth, "smooth.png")
    h, w = person.crop.shape[:2]
    fine = pipe.fine_crop(person, 2)
    assert pipe.card_size() == (2 * h, 2 * w) and fine.shape == (2 * h, 2 * w, 3)
    # the same place of the photo: at the crop's size, the fine crop is the crop
    small = cv2.resize(fine, (w, h), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(small - person.crop.astype(int)).mean() < 3
    # and it holds the photo's finer detail, which the crop enlarged does not
    person = pipe.person(stripes, "stripes.png")
    enlarged = cv2.resize(person.crop, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    fine = pipe.fine_crop(person, 2)
    detail = [np.abs(np.diff(im.astype(int), axis=1)).mean() for im in (fine, enlarged)]
    assert detail[0] > 2 * detail[1]
    cards = pipe.generate_many([Job(person, person), Job(person, person, backdrop=(0, 255, 0))])
    assert all(card.shape == (2 * h, 2 * w, 3) for card in cards)
    assert (cards[1][0, 0] == (0, 255, 0)).all()  # the plain colour reaches the corner
    # a view without its photo still gives a card of this size (its crop enlarged)
    people = DeepFashionPeople(synth_dataset, "test")
    other = view(people, sorted(people.annotations)[0])
    assert other.photo is None and pipe.generate(other, other).shape == (2 * h, 2 * w, 3)
    assert pipe.panel(other, other, cards[0]).shape == (256, 4 * 8 * w, 3)
    # each job its own size, in one call, in the jobs' order
    sizes = pipe.generate_many(
        [Job(person, person, scale=1), Job(person, person), Job(person, person, scale=3)]
    )
    assert [c.shape[:2] for c in sizes] == [(h, w), (2 * h, 2 * w), (3 * h, 3 * w)]
    assert np.array_equal(sizes[1], cards[0])
    with pytest.raises(ValueError, match="card scale 4"):
        pipe.generate_many([Job(person, person, scale=4)])
    with pytest.raises(ValueError, match="card_scale"):
        Pipeline.from_bundle(tiny_bundle, card_scale=4)
