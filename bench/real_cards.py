"""Cards from real photos: does a card show the asked pose? `python bench/real_cards.py`.

    python bench/real_cards.py [--data ../shared/data] [--bundle bundles/demo] [--draw DIR]
                               [--scale 2] [--walls] [--truth] [--swaps]
                               [--backdrop auto|photo|COLOUR]

Every real photo of ../shared/data in which the pipeline finds a person is re-posed into
every other one's pose (the demo bundle by default, on a plain backdrop) where the job is
usable (the pose shows head and hips, the source a torso), once with each framing
(`studio.framing`). The bundle's own keypoint estimator then reads each card, and PCKh@0.5
compares what it finds with the pose the card was asked to show (the pose photo's keypoints
moved into the card; points the card's frame cuts off are not counted, nor those the pose
photo's own estimate left out). No ground truth is involved: this says whether a real-world
pose model sees the asked pose in the card, which is what a shopper looks for. The same
estimator on the pose photos' own crops is the yardstick's ceiling. Without ../shared/data
it says so and exits 0.

`--truth` anchors it: the poses are instead the real COCO people of
real-formats/coco-keypoints, each picked by its ground-truth box as a user would (those too
small for a card left out), and each card is compared with COCO's own keypoints for that
person, moved into the card. This judges the whole chain, the pipeline's reading of the
pose photo included, against people annotated by hand.

`--walls` prints instead, for each photo with a person and the examples' photos, how the
default backdrop (`studio.backdrop`, `--backdrop auto`) judges the background around the
person: how much of the crop is wall, its spread from its median colour, and whether the
card stands the person on that colour or on the colour `auto` takes otherwise.

Each card is also read back as a photo (found, cropped and parsed by the same pipeline), and
for the garments and hair it shows, each class's mean colour is compared with that class's
mean colour in the source (CIE76 distance in Lab, `COLOUR_CLASSES`, classes covering at least
`MIN_SHARE` of both crops): does the card wear the source's clothes in their colours? A hand
under trousers spread as pink down an invented leg raises it; so do the parser's own errors on
either photo, which is why it is a yardstick for comparing bundles and settings on the same
photos, not an absolute figure.

`--swaps` measures garment swaps instead: each person with a top (or trousers) covering
`MIN_SHARE` of the crop gets every other such person's top (trousers), in their own pose and
frame (`infer.py --swap upper=...`), where the two garments' colours differ by at least
`SWAP_CONTRAST` (CIE76), and the card is read back as above: a swap succeeds where the
card's top (trousers) is nearer the donor's colour than the source's own (SynthFashion's
swap success, on real photos), and the classes not swapped should keep the source's colours.

`--backdrop` sets what the cards stand on (`infer.py --backdrop`; the studio grey by
default): `photo` measures them on the photo's scene, as `auto` made them before.

`--scale 2` (or 3) makes the cards that many times larger (`infer.py --scale`) and adds,
per framing, how they compare with the same cards at the generator's size: the mean
difference once shrunk back to it (0 would be the same picture), and how much more fine
detail the person has than the small card enlarged (the mean absolute Laplacian of the
card where it is not the plain backdrop, as a ratio: 1 would be no sharper).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.real_photos import SHARED, coco_pose_views, real_photos  # noqa: E402
from bench.timing import machine_line  # noqa: E402
from common.checkpoint import DEMO_BUNDLE  # noqa: E402
from common.geometry import apply_to_points  # noqa: E402
from common.image_io import load_image, save_image  # noqa: E402
from keypoints.metrics import pckh_counts  # noqa: E402
from keypoints.skeleton import visible  # noqa: E402
from parsing.labels import ADGAN_INDEX  # noqa: E402
from studio.backdrop import measure_wall, parse_backdrop  # noqa: E402
from studio.framing import CARD_SCALES, FRAMINGS  # noqa: E402
from studio.pipeline import Job, NoPersonError, PersonView, Pipeline, check_job  # noqa: E402

BACKDROP = (240, 240, 240)
COLOUR_CLASSES = ("upper_clothes", "pants", "skirt", "hair")
MIN_SHARE = 0.02  # of the crop's pixels, in both the source's crop and the card's
SWAP_CONTRAST = 15.0  # CIE76: a swap is judged only between garments this far apart
SWAPPED = {"upper": "upper_clothes", "lower": "pants"}  # infer.py's names: the class read


def inside_card(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The asked keypoints, those outside the card's frame marked missing."""
    h, w = size
    kp = keypoints.copy()
    kp[(kp[:, 0] > w - 1) | (kp[:, 1] > h - 1) | ~visible(kp)] = -1.0
    return kp


def usable(job: Job) -> bool:
    try:
        check_job(job)
    except NoPersonError:
        return False
    return True


def sheet(cards: list[np.ndarray]) -> np.ndarray:
    """The cards in a near-square grid."""
    per_row = int(np.ceil(np.sqrt(len(cards))))
    cards = cards + [np.zeros_like(cards[0])] * (-len(cards) % per_row)
    rows = [np.concatenate(cards[i : i + per_row], 1) for i in range(0, len(cards), per_row)]
    return np.concatenate(rows, 0)


def generate(pipe: Pipeline, jobs: list[Job], batch: int = 8) -> list[np.ndarray]:
    """The cards, `batch` jobs per pass (a larger card's warp holds more memory)."""
    return [
        card for i in range(0, len(jobs), batch) for card in pipe.generate_many(jobs[i : i + batch])
    ]


def against_small_cards(
    pipe: Pipeline, jobs: list[Job], cards: list[np.ndarray]
) -> tuple[float, float]:
    """(mean difference in levels of 255 of the cards shrunk to the generator's size from
    the same jobs' cards made at that size, the cards' fine detail over that of the small
    cards enlarged); see the module docstring."""
    smalls = generate(pipe, [replace(job, scale=1) for job in jobs])
    h, w = pipe.card_size()
    off, detail = [], []
    for card, small in zip(cards, smalls, strict=True):
        shrunk = cv2.resize(card, small.shape[1::-1], interpolation=cv2.INTER_AREA)
        off.append(np.abs(shrunk.astype(float) - small).mean())
        enlarged = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        person = (np.abs(card.astype(int) - BACKDROP).max(-1) > 8) & (
            np.abs(enlarged.astype(int) - BACKDROP).max(-1) > 8
        )
        fine = [
            np.abs(cv2.Laplacian(c.astype(np.float32), cv2.CV_32F)).mean(-1)[person].mean()
            for c in (card, enlarged)
        ]
        detail.append(fine[0] / fine[1])
    return float(np.mean(off)), float(np.mean(detail))


def class_colours(view: PersonView) -> dict[str, np.ndarray]:
    """Each of `COLOUR_CLASSES` covering at least `MIN_SHARE` of the person's crop: its mean
    colour in Lab (L 0-100)."""
    lab = cv2.cvtColor(view.crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    out = {}
    for name in COLOUR_CLASSES:
        inside = view.labels == ADGAN_INDEX[name]
        if inside.mean() >= MIN_SHARE:
            out[name] = lab[inside].mean(0)
    return out


def colour_gap(pipe: Pipeline, jobs: list[Job], cards: list[np.ndarray]) -> tuple[float, int]:
    """(mean CIE76 distance between a class's colour in the card and in its source, over
    every card and class both show; how many such pairs), each card read back as a photo."""
    sources = {id(job.source): class_colours(job.source) for job in jobs}
    read = pipe.people([(card, f"card {i}") for i, card in enumerate(cards)])
    gaps = []
    for job, view in zip(jobs, read, strict=True):
        if isinstance(view, NoPersonError):
            continue
        theirs, ours = sources[id(job.source)], class_colours(view)
        gaps += [float(np.linalg.norm(ours[c] - theirs[c])) for c in ours.keys() & theirs.keys()]
    return (float(np.mean(gaps)) if gaps else float("nan")), len(gaps)


def swaps(pipe: Pipeline, people: list[PersonView], draw: Path | None) -> None:
    """Garment swaps on the real people, judged by colour (see the module docstring)."""
    colours = [class_colours(view) for view in people]
    print(
        "| swapped | cards | nearer the donor's colour | CIE76 to the donor's"
        " | the rest, to the source's |"
    )
    print("|---|---|---|---|---|")
    # the reference: each person in their own pose and frame, nothing swapped
    own = [Job(view, view, backdrop=BACKDROP, framing="source") for view in people]
    own = [job for job in own if usable(job)]
    gap, pairs = colour_gap(pipe, own, generate(pipe, own))
    print(f"| nothing (their own colours, read back) | {len(own)} | | | {gap:.1f} ({pairs}) |")
    for component, name in SWAPPED.items():
        jobs, pairs = [], []
        for i, source in enumerate(people):
            for j, donor in enumerate(people):
                mine, theirs = colours[i].get(name), colours[j].get(name)
                if i == j or mine is None or theirs is None:
                    continue
                if np.linalg.norm(mine - theirs) < SWAP_CONTRAST:
                    continue
                job = Job(source, source, {component: donor}, backdrop=BACKDROP, framing="source")
                if usable(job):
                    jobs.append(job)
                    pairs.append((i, j))
        cards = generate(pipe, jobs)
        read = pipe.people([(card, f"card {k}") for k, card in enumerate(cards)])
        nearer, to_donor, kept = [], [], []
        for (i, j), view in zip(pairs, read, strict=True):
            if isinstance(view, NoPersonError):
                continue
            got = class_colours(view)
            if name in got:
                gap_donor = float(np.linalg.norm(got[name] - colours[j][name]))
                nearer.append(gap_donor < np.linalg.norm(got[name] - colours[i][name]))
                to_donor.append(gap_donor)
            kept += [
                float(np.linalg.norm(got[c] - colours[i][c]))
                for c in got.keys() & colours[i].keys()
                if c != name
            ]
        print(
            f"| {component} | {len(cards)} | {np.mean(nearer):.2f} ({len(nearer)} read) "
            f"| {np.mean(to_donor):.1f} | {np.mean(kept):.1f} ({len(kept)}) |"
        )
        if draw is not None:
            save_image(draw / f"swaps-{component}.png", sheet(cards))


def coco_poses(pipe: Pipeline, data: Path) -> list[tuple[PersonView, np.ndarray]]:
    """The real COCO people as pose photos, each picked by its ground-truth box as a user
    picks one, with COCO's keypoints for them in the crop's pixels; the people the pipeline
    refuses (too small for a card) are left out."""
    return [
        (view, apply_to_points(view.photo_to_crop(), it.keypoints))
        for it, view in coco_pose_views(pipe, data)
        if not isinstance(view, NoPersonError)
    ]


def walls(pipe: Pipeline, people: list[PersonView]) -> None:
    """The default backdrop's judgement of each person's background, as a table."""
    rule = pipe.wall
    print(f"| source | wall, share of the crop | spread, CIE76 at {rule.quantile:.0%} | card on |")
    print("|---|---|---|---|")
    for view in people:
        wall = measure_wall(view.crop, view.labels, view.frame, rule)
        share, spread = (wall.share, f"{wall.spread:.1f}") if wall else (0.0, "-")
        plain = rule.is_plain(wall) and wall is not None
        colour = wall.colour if plain and wall is not None else rule.otherwise
        on = "the photo's scene" if colour is None else "#{:02x}{:02x}{:02x}".format(*colour)
        on = f"its wall, {on}" if plain else on
        print(f"| {view.name} | {share:.2f} | {spread} | {on} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    p.add_argument("--draw", type=Path, help="write each framing's cards as one sheet here")
    p.add_argument("--scale", type=int, choices=CARD_SCALES, default=1, help="card size x")
    p.add_argument("--walls", action="store_true", help="only the default backdrop's choice")
    p.add_argument(
        "--backdrop",
        type=parse_backdrop,
        default=BACKDROP,
        help="what the cards stand on, as infer.py's (default: studio)",
    )
    p.add_argument(
        "--truth", action="store_true", help="posed as the COCO people, against COCO's keypoints"
    )
    p.add_argument("--swaps", action="store_true", help="garment swaps, judged by colour")
    args = p.parse_args(argv)
    if not (args.data / "real-formats").is_dir():
        print(f"no {args.data / 'real-formats'}: nothing to measure")
        return 0
    print(machine_line())
    pipe = Pipeline.from_bundle(args.bundle, card_scale=args.scale)
    photos = real_photos(args.data)
    if args.walls:
        photos += sorted((ROOT / "examples").glob("*.jpg"))
    found = pipe.people([(load_image(path), path.name) for path in photos])
    people: list[PersonView] = [v for v in found if not isinstance(v, NoPersonError)]
    print(f"# {len(people)} of {len(photos)} photos with a person")
    if args.walls:
        walls(pipe, people)
        return 0
    if args.swaps:
        swaps(pipe, people, args.draw)
        return 0
    # the poses and what each card is asked to show, in the pose crop's pixels: the pipeline's
    # own keypoints, or (--truth) COCO's for its people
    poses = coco_poses(pipe, args.data) if args.truth else [(v, v.keypoints) for v in people]
    ceiling = [r.keypoints for r in pipe.keypoints.predict_many([v.crop for v, _ in poses])]
    shown = [inside_card(t, pipe.size) if args.truth else t for _, t in poses]
    ok, total, _ = pckh_counts(ceiling, shown)
    larger = args.scale > 1
    extra = " | shrunk, off the 1x card (levels) | detail vs the 1x card enlarged" if larger else ""
    against = "COCO's keypoints of the pose" if args.truth else "the asked pose"
    print(
        f"| framing | cards | PCKh@0.5 of {against} in the card | points"
        f" | colour off the source's, CIE76 (classes){extra} |"
    )
    print("|---|---|---|---|---|" + "---|---|" * larger)
    print(f"| (the pose photos' own crops) | {len(poses)} | {ok / total:.3f} | {total} | |")
    enlarge = np.array(
        [[args.scale, 0, (args.scale - 1) / 2], [0, args.scale, (args.scale - 1) / 2]]
    )
    for framing in FRAMINGS:
        jobs, asked = [], []
        for source in people:
            for pose, truth in poses:
                job = Job(source, pose, backdrop=args.backdrop, framing=framing)
                if pose is source or not usable(job):
                    continue
                frame = pipe.card_frame(job)
                shown = truth if frame is None else apply_to_points(frame, truth)
                jobs.append(job)
                asked.append(inside_card(apply_to_points(enlarge, shown), pipe.card_size()))
        cards = generate(pipe, jobs)
        seen = [r.keypoints for r in pipe.keypoints.predict_many(cards)]
        ok, total, skipped = pckh_counts(seen, asked)
        gap, pairs = colour_gap(pipe, jobs, cards)
        row = (
            f"| {framing} | {len(cards)} | {ok / total:.3f} | {total} ({skipped} skipped)"
            f" | {gap:.1f} ({pairs}) |"
        )
        if larger:
            row += " {:.2f} | {:.2f}x |".format(*against_small_cards(pipe, jobs, cards))
        print(row)
        if args.draw is not None:
            save_image(args.draw / f"cards-{framing}.png", sheet(cards))
    return 0


if __name__ == "__main__":
    sys.exit(main())
