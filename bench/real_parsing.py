"""The product's parsing of real people: `python bench/real_parsing.py [--bundle DIR ...]`.

    python bench/real_parsing.py --bundle bundles/demo --bundle /tmp/other [--draw DIR]

The 5 CIHP photos of ../shared/data/real-formats/cihp-lip-labels hold 17 people whose
ground truth is in the 20-class LIP set. Each person is cut by a hand-drawn box
(`PERSON_BOXES`, drawn once by looking at the photos; the labels hold no instances), given to
the pipeline as a user would pick them (`Pipeline.person(photo, box=...)`: BlazePose finds
the person inside, the crop and parsing follow, the person mask gates the labels), and the
pipeline's 8-class map is compared with the LIP labels merged to the same 8 classes, mapped
into the pipeline's crop. Pixels outside the hand box are ignored; inside it, a neighbour's
body counts (the boxes are tight, but people overlap in these photos).

Prints, per bundle, the people found, per-class IoU (summed over all people), mIoU and pixel
accuracy. --draw writes, per bundle, a panel of crop | prediction | truth for every person.
--synth DIR adds each parser's mIoU on a SynthFashion test split (all of it, flip test, at the
parser's input size; a guided parser reads the ground truth's keypoints and mask there), the
figure a real-photo gain must not be paid for. Without ../shared/data it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import machine_line  # noqa: E402
from common.checkpoint import DEMO_BUNDLE  # noqa: E402
from common.geometry import warp  # noqa: E402
from common.image_io import load_image, save_image  # noqa: E402
from parsing.data import DenseDataset, deepfashion_items  # noqa: E402
from parsing.labels import ADGAN_CLASSES, colorize, merge_labels  # noqa: E402
from parsing.metrics import IGNORE, confusion, iou_report  # noqa: E402
from parsing.task import DenseConfig, DenseEvalConfig, evaluate_dense  # noqa: E402
from studio.bundle import load_bundle  # noqa: E402
from studio.pipeline import NoPersonError, Pipeline  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
CIHP = Path("real-formats") / "cihp-lip-labels"
# (x, y, w, h) in photo pixels, one per labelled person, left to right.
PERSON_BOXES: dict[str, list[tuple[int, int, int, int]]] = {
    "0002190": [(0, 20, 110, 180), (30, 0, 200, 200)],
    "0005008": [
        (10, 40, 90, 273),
        (95, 38, 80, 262),
        (165, 30, 90, 283),
        (245, 30, 80, 283),
        (315, 55, 85, 258),
        (395, 50, 70, 263),
        (450, 30, 110, 283),
    ],
    "0012008": [(100, 25, 115, 430), (180, 5, 120, 445), (335, 60, 145, 390)],
    "0026375": [(0, 0, 180, 210), (175, 25, 175, 195), (345, 50, 155, 240)],
    "0032190": [(55, 170, 280, 582), (235, 165, 240, 587)],
}


def truth_in_box(labels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The 8-class truth, IGNORE outside the person's box."""
    x, y, w, h = box
    out = np.full_like(labels, IGNORE)
    out[y : y + h, x : x + w] = labels[y : y + h, x : x + w]
    return out


def evaluate(pipe: Pipeline, data: Path, draw: Path | None) -> tuple[dict[str, float], int, int]:
    """Confusion summed over every person found; (report, found, total)."""
    matrix = np.zeros((len(ADGAN_CLASSES),) * 2, np.int64)
    found = total = 0
    rows = []
    for stem, boxes in PERSON_BOXES.items():
        photo = load_image(data / CIHP / "cihp_images" / f"{stem}.jpg")
        lip = np.asarray(Image.open(data / CIHP / "cihp_labels" / f"{stem}.png"))
        truth = merge_labels(lip, "lip", name=f"{stem}.png")
        for i, box in enumerate(boxes):
            total += 1
            try:
                view = pipe.person(photo, f"{stem}#{i}", box=box)
            except NoPersonError as exc:
                print(f"  {stem}#{i}: {exc}")
                continue
            found += 1
            to_crop = view.photo_to_crop()
            gt = warp(truth_in_box(truth, box), to_crop, view.labels.shape, IGNORE, nearest=True)
            matrix += confusion(view.labels, gt, len(ADGAN_CLASSES))
            if draw is not None:
                shown = np.where(gt == IGNORE, 0, gt).astype(np.uint8)
                rows.append(np.hstack([view.crop, colorize(view.labels), colorize(shown)]))
    if draw is not None and rows:
        draw.parent.mkdir(parents=True, exist_ok=True)
        per_row = 3
        blank = np.zeros_like(rows[0])
        rows += [blank] * (-len(rows) % per_row)
        grid = [np.hstack(rows[r : r + per_row]) for r in range(0, len(rows), per_row)]
        save_image(draw, np.vstack(grid))
    return iou_report(matrix, ADGAN_CLASSES), found, total


def synth_miou(bundle: Path, root: Path) -> float:
    """The bundle's parser on SynthFashion's test split (`parsing.task.evaluate_dense`)."""
    parser = load_bundle(bundle).parser
    config = DenseConfig(model=parser.config, eval=DenseEvalConfig(max_images=0, flip_test=True))
    data = DenseDataset(
        deepfashion_items(root, "test"),
        parser.config.input_size,
        heads=("parsing",),
        guides=tuple(getattr(parser.config, "guides", ())),
        guide_sigma=getattr(parser.config, "guide_sigma", 6.0),
    )
    return evaluate_dense(parser, data, config, "cpu")["miou"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, action="append", help="repeatable; default: demo")
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--draw", type=Path, help="a folder for the panels")
    parser.add_argument("--synth", type=Path, help="a SynthFashion folder: its test mIoU too")
    args = parser.parse_args(argv)
    if not (args.data / CIHP).is_dir():
        print(f"no {args.data / CIHP}: nothing to measure")
        return 0
    print(machine_line())
    header = f"{'bundle':<28} {'found':>6} {'mIoU':>6} {'acc':>6} " + " ".join(
        f"{n[:7]:>7}" for n in ADGAN_CLASSES
    )
    if args.synth:
        header += f" {'synth':>6}"
    results = []
    for bundle in args.bundle or [DEMO_BUNDLE]:
        pipe = Pipeline.from_bundle(bundle)
        draw = args.draw / f"{bundle.name}.png" if args.draw else None
        report, found, total = evaluate(pipe, args.data, draw)
        ious = " ".join(f"{report.get(f'iou/{n}', float('nan')):>7.3f}" for n in ADGAN_CLASSES)
        line = (
            f"{str(bundle)[-28:]:<28} {found:>3}/{total:<2} {report['miou']:>6.3f} "
            f"{report['pixel_accuracy']:>6.3f} {ious}"
        )
        if args.synth:
            line += f" {synth_miou(bundle, args.synth):>6.3f}"
        results.append(line)
    print(header)
    print("\n".join(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
