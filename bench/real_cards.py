"""Cards from real photos: does a card show the asked pose? `python bench/real_cards.py`.

    python bench/real_cards.py [--data ../shared/data] [--bundle bundles/demo] [--draw DIR]

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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.real_photos import SHARED, real_photos  # noqa: E402
from bench.timing import machine_line  # noqa: E402
from common.checkpoint import DEMO_BUNDLE  # noqa: E402
from common.image_io import load_image, save_image  # noqa: E402
from keypoints.metrics import pckh_counts  # noqa: E402
from keypoints.skeleton import visible  # noqa: E402
from studio.framing import FRAMINGS  # noqa: E402
from studio.pipeline import Job, NoPersonError, PersonView, Pipeline, check_job  # noqa: E402

BACKDROP = (240, 240, 240)


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    p.add_argument("--draw", type=Path, help="write each framing's cards as one sheet here")
    args = p.parse_args(argv)
    if not (args.data / "real-formats").is_dir():
        print(f"no {args.data / 'real-formats'}: nothing to measure")
        return 0
    print(machine_line())
    pipe = Pipeline.from_bundle(args.bundle)
    photos = real_photos(args.data)
    found = pipe.people([(load_image(path), path.name) for path in photos])
    people: list[PersonView] = [v for v in found if not isinstance(v, NoPersonError)]
    print(f"# {len(people)} of {len(photos)} real photos with a person")
    ceiling = [r.keypoints for r in pipe.keypoints.predict_many([v.crop for v in people])]
    ok, total, _ = pckh_counts(ceiling, [v.keypoints for v in people])
    print("| framing | cards | PCKh@0.5 of the asked pose in the card | points |")
    print("|---|---|---|---|")
    print(f"| (the pose photos' own crops) | {len(people)} | {ok / total:.3f} | {total} |")
    for framing in FRAMINGS:
        jobs = [
            Job(source, pose, backdrop=BACKDROP, framing=framing)
            for source in people
            for pose in people
            if pose is not source
        ]
        jobs = [job for job in jobs if usable(job)]
        cards = pipe.generate_many(jobs)
        asked = [inside_card(pipe.card_pose(job).keypoints, pipe.size) for job in jobs]
        seen = [r.keypoints for r in pipe.keypoints.predict_many(cards)]
        ok, total, skipped = pckh_counts(seen, asked)
        print(f"| {framing} | {len(cards)} | {ok / total:.3f} | {total} ({skipped} skipped) |")
        if args.draw is not None:
            save_image(args.draw / f"cards-{framing}.png", sheet(cards))
    return 0


if __name__ == "__main__":
    sys.exit(main())
