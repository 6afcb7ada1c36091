"""Keypoint backends on the real photos in ../shared/data: `python bench/real_photos.py`.

    python bench/real_photos.py [--data ../shared/data] [--draw /work/scratch/real]
        [--openpose DIR] [--keypoints DIR ...] [--int8] [--variants] [--turned]

Prints, for each backend available (blazepose: the built-in weights; the demo bundle's own
estimator where it is another; openpose: only with --openpose, an imported body-model
folder; --keypoints: any keypoint run, checkpoint or bundle, e.g. our synthetic network):

1. PCKh@0.5 on the real COCO people of real-formats/coco-keypoints, on the ground-truth
   person boxes as `keypoints.evaluate` crops them (`keypoints.data.coco_items`, 1.25x,
   at the estimator's aspect); and through the pipeline, each box given as a user's box:
   the keypoints a card is made from (a person too small for a card misses every point);
2. for each of the 12 real photos (4 COCO, 5 CIHP, 2 DensePose, 1 DeepFashion), whether the
   pipeline (`studio.pipeline.Pipeline.people`, the demo bundle's parser and generator)
   finds a person, and what it says when it does not or when it saw several people; with
   --draw, the pipeline's keypoints drawn on each photo (`<backend>-<photo>.png`).

--turned: each photo with a person, turned by one, two and three quarter turns (a photo whose
orientation tag was lost): is it read upright again (`Pipeline`'s upright_tolerance), and how
far do the crop's keypoints and parse lie from the upright photo's.
--variants adds what was tried for BlazePose's COCO PCKh (detector ROI vs the box's own ROI,
ROI scale, visibility threshold, which detected person, one landmark look or two); --int8
the keypoints of BlazePose with its weights through weight-only int8 against fp16 (max pixel
difference per photo).
Speed and memory: bench/blazepose_speed.py. Without ../shared/data it says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import machine_line  # noqa: E402
from common.checkpoint import (  # noqa: E402
    DEMO_BUNDLE,
    dequantize_state_dict,
    quantize_state_dict,
)
from common.geometry import apply_to_points, invert  # noqa: E402
from common.image_io import load_image, save_image  # noqa: E402
from keypoints.blazepose import BlazePose, BlazePoseNets, to_openpose18  # noqa: E402
from keypoints.data import coco_items  # noqa: E402
from keypoints.draw import draw_skeleton  # noqa: E402
from keypoints.estimators import KeypointEstimator, estimator_from_checkpoint  # noqa: E402
from keypoints.metrics import head_size, pckh_counts, pckh_interval  # noqa: E402
from keypoints.skeleton import visible  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))


def real_photos(data: Path) -> list[Path]:
    """The 12 real photos: 4 COCO, 5 CIHP, 2 DensePose, 1 DeepFashion (the front view)."""
    formats = data / "real-formats"
    return [
        *sorted((formats / "coco-keypoints").glob("*.jpg")),
        *sorted((formats / "cihp-lip-labels" / "cihp_images").glob("*.jpg")),
        formats / "densepose" / "demo_im.jpg",
        formats / "densepose" / "demo_dp_single_ann_ICrop.jpg",
        *sorted((formats / "densepose-iuv-fashion").glob("*front.png")),
    ]


def coco_pckh(
    estimator: KeypointEstimator, data: Path
) -> tuple[float, int, int, tuple[float, float]]:
    """PCKh@0.5 on the ground-truth person boxes, as keypoints.evaluate crops them, with its
    95% bootstrap interval over the people (`pckh_interval`)."""
    folder = data / "real-formats" / "coco-keypoints"
    h, w = estimator.input_size
    items = coco_items(folder / "test_coco.json", folder, aspect=w / h)
    results = estimator.predict_many(
        [load_image(it.path) for it in items], [it.box for it in items]
    )
    each = [
        pckh_counts([r.keypoints], [it.keypoints]) for r, it in zip(results, items, strict=True)
    ]
    counted = [(c, t) for c, t, skipped in each if not skipped]
    correct, total = sum(c for c, _ in counted), sum(t for _, t in counted)
    interval = pckh_interval([c for c, _ in counted], [t for _, t in counted])
    return correct / total, correct, total, interval


def coco_pose_views(pipe, data: Path) -> list[tuple]:
    """(COCO item, the pipeline's view of it or its NoPersonError) for each real COCO person,
    read as a pose photo (keypoints only) and picked by its ground-truth box as a user picks
    one (first look, crop, closer look; `Pipeline.people`)."""
    folder = data / "real-formats" / "coco-keypoints"
    items = coco_items(folder / "test_coco.json", folder, aspect=1.0)
    views = pipe.people(
        [(load_image(it.path), it.name) for it in items],
        [it.box for it in items],
        parse=[False] * len(items),
    )
    return list(zip(items, views, strict=True))


def keypoints_in_photo(view) -> np.ndarray:
    """A pipeline view's keypoints [18, 2] in its photo's pixels, -1 where missing."""
    kp = apply_to_points(invert(view.photo_to_crop()), view.keypoints)
    return np.where(visible(view.keypoints)[:, None], kp, -1.0).astype(np.float32)


def pipeline_coco_pckh(estimator: KeypointEstimator, data: Path) -> tuple[float, int, int]:
    """PCKh@0.5 of the keypoints the product uses (`coco_pose_views`), the crop's keypoints
    mapped back into the photo. A person the pipeline refuses (too small) misses every
    point."""
    from studio.pipeline import NoPersonError, Pipeline

    base = Pipeline.from_bundle(DEMO_BUNDLE)
    pipe = Pipeline(estimator, base.parser, base.transfer)
    pairs = coco_pose_views(pipe, data)
    items = [it for it, _ in pairs]
    found = []
    for _, view in pairs:
        if isinstance(view, NoPersonError):
            found.append(np.full((18, 2), -1.0, np.float32))
            continue
        found.append(keypoints_in_photo(view))
    correct, total, _ = pckh_counts(found, [it.keypoints for it in items])
    return correct / total, correct, total


# 0: every landmark inside the photo counts, occluded ones too (COCO annotates occluded
# points; the product wants only the seen ones, so that the warp leaves a hidden arm out)
VISIBILITIES = (0.5, 0.3, 0.0)


def per_person(nets: BlazePoseNets, data: Path) -> list[tuple[str, int, int, int, int]]:
    """(person, box side, head box height, correct at the model's visibility threshold,
    correct at 0, points) for each COCO person: where the misses are."""
    folder = data / "real-formats" / "coco-keypoints"
    items = coco_items(folder / "test_coco.json", folder, aspect=1.0)
    photos = [load_image(it.path) for it in items]

    model = BlazePose.from_nets(nets)
    found = model.predict_many(photos, [it.box for it in items], with_mask=False)
    rows = []
    for it, photo, result in zip(items, photos, found, strict=True):
        size = head_size(it.keypoints)
        if size is None or result.landmarks is None:
            continue
        lm = result.landmarks
        c, t, _ = pckh_counts([result.keypoints], [it.keypoints])
        every = to_openpose18(lm.points, lm.visibility, photo.shape[:2], 0.0)[0]
        c0, _, _ = pckh_counts([every], [it.keypoints])
        rows.append((it.name, round(it.box[2] / 1.25), round(size[1]), c, c0, t))
    return rows


def blazepose_variants(nets: BlazePoseNets, data: Path) -> list[tuple[str, float, int, int]]:
    """What moves BlazePose's COCO PCKh: how the landmark model's ROI is chosen inside the
    ground-truth box, its scale, the visibility threshold, which detected person."""
    folder = data / "real-formats" / "coco-keypoints"
    items = coco_items(folder / "test_coco.json", folder, aspect=1.0)
    photos = [load_image(it.path) for it in items]
    rows = []
    for vis in VISIBILITIES:
        for pick, looks in (("largest", 2), ("surest", 2), ("largest", 1)):
            model = BlazePose.from_nets(nets, visibility_threshold=vis, pick=pick, looks=looks)
            results = model.predict_many(photos, [it.box for it in items], with_mask=False)
            c, t, _ = pckh_counts([r.keypoints for r in results], [it.keypoints for it in items])
            what = f"detector ROI in the box, pick {pick}, vis {vis}, {looks} look(s)"
            rows.append((what, c / t, c, t))

    model = BlazePose.from_nets(nets)
    for scale in (1.0, 1.25, 1.5):
        # the box is the ground truth's grown 1.25x; the ROI is that box's square, x scale/1.25
        rois = [model.roi_from_box(it.box, scale / 1.25) for it in items]
        poses = model.landmarks(photos, rois, with_mask=False)
        for vis in VISIBILITIES:
            preds = []
            for photo, pose in zip(photos, poses, strict=True):
                if pose is None:
                    preds.append(np.full((18, 2), -1.0, np.float32))
                else:
                    preds.append(
                        to_openpose18(pose.points, pose.visibility, photo.shape[:2], vis)[0]
                    )
            c, t, _ = pckh_counts(preds, [it.keypoints for it in items])
            rows.append((f"ground-truth box ROI x{scale:g} (upright), vis {vis}", c / t, c, t))
    return rows


def int8_difference(nets: BlazePoseNets, photos: list[Path]) -> list[tuple[str, float, int]]:
    """(photo, max pixel difference of the 18 keypoints both find, keypoints found by only
    one) for BlazePose with int8-stored weights against its fp16 weights."""
    quantized = BlazePoseNets(nets.config)
    state = dequantize_state_dict(quantize_state_dict(nets.state_dict()))
    quantized.load_state_dict({k: v.float() for k, v in state.items()})
    images = [load_image(p) for p in photos]
    ref = BlazePose.from_nets(nets).predict_many(images, with_mask=False)
    got = BlazePose.from_nets(quantized).predict_many(images, with_mask=False)
    rows = []
    for path, a, b in zip(photos, ref, got, strict=True):
        ka, kb = a.keypoints[:, 0] >= 0, b.keypoints[:, 0] >= 0
        both = ka & kb
        diff = float(np.abs(a.keypoints[both] - b.keypoints[both]).max()) if both.any() else 0.0
        rows.append((path.name, diff, int((ka != kb).sum())))
    return rows


def pipeline_finds(estimator: KeypointEstimator, photos: list[Path], draw: Path | None, tag: str):
    """Which photos the pipeline takes a person from, and what it says."""
    from studio.pipeline import NoPersonError, Pipeline

    base = Pipeline.from_bundle(DEMO_BUNDLE)
    pipe = Pipeline(estimator, base.parser, base.transfer)
    images = [load_image(p) for p in photos]
    views = pipe.people([(im, p.name) for im, p in zip(images, photos, strict=True)])
    rows = []
    for path, image, view in zip(photos, images, views, strict=True):
        if isinstance(view, NoPersonError):
            rows.append((path.name, False, str(view)))
            continue
        rows.append((path.name, True, " ".join(view.notes)))
        if draw is not None:
            back = invert(view.photo_to_crop())
            kp = apply_to_points(back, view.keypoints)
            save_image(draw / f"{tag}-{path.stem}.png", draw_skeleton(image, kp))
    return rows


def turned_photos(photos: list[Path]) -> list[tuple]:
    """Per photo and quarter turn: (photo, turns, read upright, keypoints' median and max
    distance in crop pixels from the upright photo's, share of parse labels alike)."""
    from studio.pipeline import NoPersonError, Pipeline

    pipe = Pipeline.from_bundle(DEMO_BUNDLE)
    rows = []
    for path in photos:
        image = load_image(path)
        views = pipe.people(
            [(np.ascontiguousarray(np.rot90(image, t)), path.name) for t in range(4)]
        )
        upright = views[0]
        if isinstance(upright, NoPersonError):
            continue
        shown = upright.keypoints[:, 0] >= 0
        for turns, view in enumerate(views[1:], start=1):
            if isinstance(view, NoPersonError):
                rows.append((path.name, turns, "no person", "", "", ""))
                continue
            # read upright again: turned back by as much as the photo was turned
            upright_again = (view.turns + turns) % 4 == 0
            told = "yes" if upright_again else "wrong turn" if view.turns else "no"
            both = shown & (view.keypoints[:, 0] >= 0)
            moved = np.linalg.norm(view.keypoints[both] - upright.keypoints[both], axis=1)
            alike = float((view.labels == upright.labels).mean())
            rows.append(
                (
                    path.name,
                    turns,
                    told,
                    f"{np.median(moved):.1f}",
                    f"{moved.max():.1f}",
                    f"{alike:.3f}",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--draw", type=Path, help="write each photo with the pipeline's keypoints")
    p.add_argument("--openpose", type=Path, help="an imported OpenPose body-model folder")
    p.add_argument(
        "--keypoints", type=Path, action="append", default=[], help="another estimator's folder"
    )
    p.add_argument("--variants", action="store_true", help="BlazePose ROI/threshold variants")
    p.add_argument("--int8", action="store_true", help="BlazePose int8 vs fp16 keypoints")
    p.add_argument("--turned", action="store_true", help="the photos turned by quarter turns")
    p.add_argument("--skip-pipeline", action="store_true")
    args = p.parse_args(argv)
    if not (args.data / "real-formats").is_dir():
        print(f"no real samples at {args.data} (real-formats/): nothing to measure")
        return 0
    torch.manual_seed(0)
    print(machine_line())
    nets = BlazePoseNets()
    estimators: dict[str, KeypointEstimator] = {"blazepose (built-in)": BlazePose.from_nets(nets)}
    demo = estimator_from_checkpoint(DEMO_BUNDLE, name="keypoints")
    if not isinstance(demo, BlazePose):
        estimators[f"{type(demo).__name__} (demo bundle)"] = demo
    if args.openpose:
        estimators["openpose"] = estimator_from_checkpoint(args.openpose)
    for folder in args.keypoints:
        estimators[folder.name] = estimator_from_checkpoint(folder, name="keypoints")
    photos = real_photos(args.data)
    if args.draw:
        args.draw.mkdir(parents=True, exist_ok=True)

    print(
        "\n| backend | COCO PCKh@0.5 (GT boxes) | correct / points | 95% interval over the"
        " people (bootstrap) | through the pipeline |"
    )
    print("|---|---|---|---|---|")
    for name, est in estimators.items():
        score, c, t, (low, high) = coco_pckh(est, args.data)
        piped = "(--skip-pipeline)"
        if not args.skip_pipeline:
            piped = "{:.3f} ({} / {})".format(*pipeline_coco_pckh(est, args.data))
        print(f"| {name} | {score:.3f} | {c} / {t} | {low:.3f}-{high:.3f} | {piped} |")

    if args.variants:
        print("\n| BlazePose on COCO GT boxes: variant | PCKh@0.5 | correct / points |")
        print("|---|---|---|")
        for what, score, c, t in blazepose_variants(nets, args.data):
            print(f"| {what} | {score:.3f} | {c} / {t} |")
        print("\n| COCO person | box side px | head px | correct | correct at vis 0 | points |")
        print("|---|---|---|---|---|---|")
        for row in per_person(nets, args.data):
            print("| " + " | ".join(str(v) for v in row) + " |")

    if not args.skip_pipeline:
        for name, est in estimators.items():
            rows = pipeline_finds(est, photos, args.draw, name.split()[0])
            found = sum(ok for _, ok, _ in rows)
            print(f"\n{name}: the pipeline finds a person in {found} of {len(rows)} real photos")
            print("| photo | found | message |")
            print("|---|---|---|")
            for photo, ok, message in rows:
                print(f"| {photo} | {'yes' if ok else 'no'} | {message} |")

    if args.turned:
        rows = turned_photos(photos)
        told = sum(r[2] == "yes" for r in rows)
        print(f"\nturned photos: {told} of {len(rows)} read upright again")
        print(
            "| photo | quarter turns | read upright | keypoints moved, median px | max px |"
            " parse alike |"
        )
        print("|---|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(str(v) for v in row) + " |")

    if args.int8:
        print("\n| BlazePose int8 vs fp16: photo | max px difference | keypoints found by one |")
        print("|---|---|---|")
        for photo, diff, flips in int8_difference(nets, photos):
            print(f"| {photo} | {diff:.1f} | {flips} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
