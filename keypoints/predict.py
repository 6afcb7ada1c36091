"""Keypoints of a photo: `KeypointPredictor` and `python -m keypoints.predict`.

    python -m keypoints.predict photo.jpg --checkpoint runs/keypoints/00000-x \\
        --out pose.json --draw pose.png

The photo (or a given person box) is letterboxed to the model's aspect, the network runs
on it and on its mirror image (flip test), heatmaps are decoded with DARK, and keypoints
go back to the photo's pixels. A keypoint whose heatmap peak is below `threshold` is
missing. The person score is the mean of the 8 highest peaks; below `person_threshold`
(0.5: trained SynthFashion models score people ~0.87 and person-free scenes ~0.09) every
keypoint is missing: a photo without a person gives no skeleton and a low score. The CLI
searches windows of a photo where the whole shows nobody (`keypoints.search`; `--no-search`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import DEMO_BUNDLE, CheckpointError, stored_module_name
from common.fileio import write_json
from common.geometry import Box, apply_to_points, box_to_input, invert, warp
from common.image_io import ImageError, load_image, save_image
from keypoints.draw import draw_skeleton
from keypoints.estimators import (
    Backend,
    KeypointEstimator,
    KeypointResult,
    load_estimator_module,
    register_backend,
)
from keypoints.heatmaps import decode, flip_heatmaps
from keypoints.model import PoseNet
from keypoints.search import find_people

LETTERBOX_FILL = (255, 255, 255)


class KeypointPredictor:
    def __init__(
        self,
        model: PoseNet,
        *,
        device: str | torch.device = "cpu",
        flip_test: bool = True,
        threshold: float = 0.2,
        person_threshold: float = 0.5,
        sigma: float = 2.0,
    ) -> None:
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.flip_test, self.threshold, self.sigma = flip_test, threshold, sigma
        self.person_threshold = person_threshold
        self.input_size = tuple(model.config.input_size)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, *, device: str = "cpu", **kwargs
    ) -> KeypointPredictor:
        return cls(PoseNet.from_checkpoint(checkpoint, device), device=device, **kwargs)

    @torch.no_grad()
    def heatmaps(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops [B, 3, H, W] in [0, 1] -> heatmaps, averaged with the mirrored pass."""
        crops = crops.to(self.device)
        if not self.flip_test:
            return self.model(crops).float()
        both = self.model(torch.cat([crops, crops.flip(-1)])).float()
        n = crops.shape[0]
        return 0.5 * (both[:n] + flip_heatmaps(both[n:]))

    @torch.no_grad()
    def predict_crops(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints [B, 18, 2] in crop pixels and scores [B, 18]."""
        return decode(self.heatmaps(crops), self.input_size, sigma=self.sigma)

    def predict(self, image: np.ndarray, box: Box | None = None) -> KeypointResult:
        return self.predict_many([image], [box])[0]

    def predict_many(
        self,
        images: list[np.ndarray],
        boxes: list[Box | None] | None = None,
    ) -> list[KeypointResult]:
        boxes = boxes or [None] * len(images)
        crops, matrices = [], []
        for image, box in zip(images, boxes, strict=True):
            h, w = image.shape[:2]
            m = box_to_input(box or (0.0, 0.0, float(w), float(h)), self.input_size)
            crops.append(warp(image, m, self.input_size, LETTERBOX_FILL))
            matrices.append(m)
        batch = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).float() / 255
        coords, scores = self.predict_crops(batch)
        results = []
        for m, c, s in zip(matrices, coords.cpu().numpy(), scores.cpu().numpy(), strict=True):
            kp = apply_to_points(invert(m), c)
            kp[s < self.threshold] = -1.0
            person_score = float(np.sort(s)[::-1][:8].mean())
            if person_score < self.person_threshold:  # nobody here: no keypoint at all
                kp[:] = -1.0
            results.append(KeypointResult(kp, s.astype(np.float32), person_score))
        return results


register_backend(
    Backend(
        name="posenet",
        module_class="PoseNet",
        build=PoseNet.from_config,
        estimator=lambda model, device: KeypointPredictor(model, device=device),
    )
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="18 OpenPose-COCO keypoints of the person in a photo.")
    p.add_argument("photo", type=Path)
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=DEMO_BUNDLE,
        help="a keypoint run, checkpoint, imported OpenPose folder or bundle "
        "(default: the demo bundle)",
    )
    p.add_argument("--out", type=Path, help="write keypoints as JSON")
    p.add_argument("--draw", type=Path, help="write the photo with the skeleton drawn on it")
    p.add_argument("--threshold", type=float, default=0.2, help="per-keypoint peak (our network)")
    p.add_argument(
        "--person-threshold",
        type=float,
        default=0.5,
        help="below this person score, report no keypoint at all",
    )
    p.add_argument("--no-flip", action="store_true", help="skip the mirrored pass")
    p.add_argument(
        "--no-search",
        action="store_true",
        help="only the whole photo: no window search where it shows nobody (keypoints.search)",
    )
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        image = load_image(args.photo)
        name = stored_module_name(args.checkpoint, ("model", "keypoints"))
        backend, module = load_estimator_module(args.checkpoint, name)
    except (ImageError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    predictor: KeypointEstimator
    if isinstance(module, PoseNet):
        predictor = KeypointPredictor(
            module,
            device=args.device,
            threshold=args.threshold,
            person_threshold=args.person_threshold,
            flip_test=not args.no_flip,
        )
    else:
        predictor = backend.estimator(module, args.device)
    if args.no_search:
        result = predictor.predict_many([image])[0]
    else:
        h, w = predictor.input_size
        result = find_people(predictor, [image], aspect=w / h)[0]
    found = int((result.keypoints[:, 0] >= 0).sum())
    print(f"{args.photo}: {found}/18 keypoints, person score {result.person_score:.2f}")
    if args.out:
        write_json(args.out, result.to_json())
    if args.draw:
        save_image(args.draw, draw_skeleton(image, result.keypoints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
