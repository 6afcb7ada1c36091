"""`python -m keypoints.evaluate`: PCKh@0.5 (PATN/ADGAN protocol) and COCO OKS AP.

    # a checkpoint on a DeepFashion-layout split (real DeepFashion or SynthFashion)
    python -m keypoints.evaluate --checkpoint RUN --data data/synthfashion --split test
    # and write its predictions in the annotation-CSV format
    python -m keypoints.evaluate --checkpoint RUN --data ... --write-predictions pred.csv
    # two annotation CSVs (e.g. keypoints found on generated images vs the targets)
    python -m keypoints.evaluate --predictions pred.csv --targets fashion-resize-annotation-test.csv
    # COCO keypoints (ground-truth person boxes)
    python -m keypoints.evaluate --checkpoint RUN --coco person_keypoints_val2017.json \\
        --coco-images val2017/

Each result is printed and appended, with the checkpoint it measured, to --log (jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.checkpoint import CheckpointError
from common.image_io import ImageError, load_image
from keypoints.data import Item, coco_items, deepfashion_items
from keypoints.formats import FormatError, read_annotations, write_annotations
from keypoints.metrics import oks_ap, pckh_counts
from keypoints.predict import KeypointPredictor, KeypointResult


def predict_items(
    predictor: KeypointPredictor, items: list[Item], batch_size: int = 32, progress: bool = True
) -> list[KeypointResult]:
    results: list[KeypointResult] = []
    for start in tqdm(range(0, len(items), batch_size), disable=not progress, desc="predict"):
        chunk = items[start : start + batch_size]
        results += predictor.predict_many(
            [load_image(it.path) for it in chunk], [it.box for it in chunk]
        )
    return results


def coco_detections(items: list[Item], results: list[KeypointResult]) -> list[dict]:
    """Predictions in the form `keypoints.metrics.oks_ap` takes."""
    return [
        {
            "image_id": it.image_id,
            "keypoints": r.keypoints,
            "scores": np.where(r.keypoints[:, 0] >= 0, r.scores, 0),
            "score": r.person_score,
        }
        for it, r in zip(items, results, strict=True)
    ]


def pckh_report(predictions: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
    correct, total, skipped = pckh_counts(predictions, targets)
    return {
        "pckh@0.5": correct / total if total else float("nan"),
        "correct": correct,
        "points": total,
        "skipped_images": skipped,
        "images": len(targets),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Evaluate keypoints: PCKh@0.5 and OKS AP.")
    p.add_argument("--checkpoint", type=Path, help="keypoint checkpoint or run folder")
    p.add_argument("--data", type=Path, help="a DeepFashion-layout folder")
    p.add_argument("--split", default="test")
    p.add_argument("--predictions", type=Path, help="annotation CSV of predicted keypoints")
    p.add_argument("--targets", type=Path, help="annotation CSV of target keypoints")
    p.add_argument("--coco", type=Path, help="COCO person-keypoints JSON")
    p.add_argument("--coco-images", type=Path)
    p.add_argument("--write-predictions", type=Path, help="save predictions as a CSV")
    p.add_argument("--max-images", type=int, default=0)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--threshold", type=float, default=0.2)
    p.add_argument("--person-threshold", type=float, default=0.5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--log", type=Path, default=Path("keypoint-metrics.jsonl"))
    args = p.parse_args(argv)
    try:
        if args.predictions or args.targets:
            if not (args.predictions and args.targets):
                p.error("--predictions and --targets go together")
            pred, target = read_annotations(args.predictions), read_annotations(args.targets)
            names = [n for n in pred if n in target]
            if not names:
                raise FormatError(f"{args.predictions}: no name in common with {args.targets}")
            report = pckh_report([pred[n] for n in names], [target[n] for n in names])
            report["source"] = str(args.predictions)
        else:
            if args.checkpoint is None or (args.data is None) == (args.coco is None):
                p.error("give --checkpoint and one of --data or --coco")
            predictor = KeypointPredictor.from_checkpoint(
                args.checkpoint,
                device=args.device,
                flip_test=not args.no_flip,
                threshold=args.threshold,
                person_threshold=args.person_threshold,
            )
            if args.data is not None:
                items = deepfashion_items(args.data, args.split)
            else:
                size = predictor.input_size
                items = coco_items(args.coco, args.coco_images, aspect=size[1] / size[0])
            if args.max_images:
                items = items[: args.max_images]
            results = predict_items(predictor, items)
            report = pckh_report([r.keypoints for r in results], [it.keypoints for it in items])
            if args.coco is not None:
                dets = coco_detections(items, results)
                report.update({f"oks_{k}": v for k, v in oks_ap(str(args.coco), dets).items()})
            if args.write_predictions:
                write_annotations(
                    args.write_predictions,
                    {it.name: r.keypoints for it, r in zip(items, results, strict=True)},
                )
            report["checkpoint"] = str(args.checkpoint)
            report["data"] = str(args.data or args.coco)
    except (CheckpointError, FormatError, ImageError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in report.items():
        print(f"{key:>16}: {value:.4f}" if isinstance(value, float) else f"{key:>16}: {value}")
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
