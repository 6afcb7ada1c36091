"""The CMU OpenPose COCO-18 body model, imported from its public PyTorch weights, with
part-affinity-field grouping: multi-person keypoints on real photos for anyone who has
`body_pose_model.pth` (Cao et al., CVPR 2017; the port used by pytorch-openpose).

    python -m keypoints.openpose import body_pose_model.pth --out weights/openpose
    python -m keypoints.openpose predict photo.jpg --weights weights/openpose --draw out.png

The network: VGG-19 up to conv4_2, two CPM convs, then six stages with a PAF branch (38
channels: x and y of 19 limbs) and a heatmap branch (18 parts + background), stride 8. It
reads BGR pixels scaled to x / 256 - 0.5. The file stores flat layer names
(`conv1_1.weight`, `conv5_1_CPM_L1.weight`, `Mconv1_stage2_L2.weight`, ...), which the
importer maps onto this module after checking every shape. Unlike that port (a typo in its
list leaves a ReLU on the last heatmap layer), no stage output is rectified, as in CMU's
original Caffe model.
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter, maximum_filter
from torch import nn

from common.checkpoint import (
    CheckpointError,
    check_state_dict,
    load_module,
    read_weights,
    save_checkpoint,
    stored_module_name,
)
from common.geometry import Box
from common.image_io import ImageError, load_image, save_image
from keypoints.draw import draw_skeleton
from keypoints.estimators import Backend, KeypointResult, register_backend
from keypoints.skeleton import LIMBS, NUM_KEYPOINTS

# PAF channels (x, y) of each limb in LIMBS order (the port's mapIdx minus 19).
PAF_CHANNELS: tuple[tuple[int, int], ...] = (
    (12, 13),
    (20, 21),
    (14, 15),
    (16, 17),
    (22, 23),
    (24, 25),
    (0, 1),
    (2, 3),
    (4, 5),
    (6, 7),
    (8, 9),
    (10, 11),
    (28, 29),
    (30, 31),
    (34, 35),
    (32, 33),
    (36, 37),
    (18, 19),
    (26, 27),
)
STEM = (  # name, in, out, kernel; "pool" = 2x2 max pool
    ("conv1_1", 3, 64, 3),
    ("conv1_2", 64, 64, 3),
    ("pool1", 0, 0, 0),
    ("conv2_1", 64, 128, 3),
    ("conv2_2", 128, 128, 3),
    ("pool2", 0, 0, 0),
    ("conv3_1", 128, 256, 3),
    ("conv3_2", 256, 256, 3),
    ("conv3_3", 256, 256, 3),
    ("conv3_4", 256, 256, 3),
    ("pool3", 0, 0, 0),
    ("conv4_1", 256, 512, 3),
    ("conv4_2", 512, 512, 3),
    ("conv4_3_CPM", 512, 256, 3),
    ("conv4_4_CPM", 256, 128, 3),
)


def _branch(layers: list[tuple[str, int, int, int]]) -> nn.Sequential:
    modules: dict[str, nn.Module] = {}
    for i, (name, cin, cout, k) in enumerate(layers):
        modules[name] = nn.Conv2d(cin, cout, k, padding=k // 2)
        if i < len(layers) - 1:
            modules[f"{name}_relu"] = nn.ReLU(inplace=True)
    return nn.Sequential(OrderedDict(modules))


def _stage_layers(stage: int, branch: int, out: int) -> list[tuple[str, int, int, int]]:
    if stage == 1:
        return [
            (f"conv5_1_CPM_L{branch}", 128, 128, 3),
            (f"conv5_2_CPM_L{branch}", 128, 128, 3),
            (f"conv5_3_CPM_L{branch}", 128, 128, 3),
            (f"conv5_4_CPM_L{branch}", 128, 512, 1),
            (f"conv5_5_CPM_L{branch}", 512, out, 1),
        ]
    return (
        [(f"Mconv1_stage{stage}_L{branch}", 185, 128, 7)]
        + [(f"Mconv{i}_stage{stage}_L{branch}", 128, 128, 7) for i in range(2, 6)]
        + [
            (f"Mconv6_stage{stage}_L{branch}", 128, 128, 1),
            (f"Mconv7_stage{stage}_L{branch}", 128, out, 1),
        ]
    )


class OpenPoseBody(nn.Module):
    """BGR image [B, 3, H, W] scaled to x/256 - 0.5 -> (PAFs [B, 38, H/8, W/8],
    heatmaps [B, 19, H/8, W/8])."""

    def __init__(self) -> None:
        super().__init__()
        stem: dict[str, nn.Module] = {}
        for name, cin, cout, k in STEM:
            if name.startswith("pool"):
                stem[name] = nn.MaxPool2d(2, 2)
            else:
                stem[name] = nn.Conv2d(cin, cout, k, padding=k // 2)
                stem[f"{name}_relu"] = nn.ReLU(inplace=True)
        self.stem = nn.Sequential(OrderedDict(stem))
        self.paf = nn.ModuleList(_branch(_stage_layers(s, 1, 38)) for s in range(1, 7))
        self.heat = nn.ModuleList(_branch(_stage_layers(s, 2, 19)) for s in range(1, 7))

    @classmethod
    def from_config(cls, config: dict) -> OpenPoseBody:
        if config:
            raise ValueError(f"the OpenPose body model takes no config, got {sorted(config)}")
        return cls()

    def describe(self) -> dict:
        return {"class": "OpenPoseBody", "config": {}}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.stem(x)
        out = features
        for paf, heat in zip(self.paf, self.heat, strict=True):
            p, h = paf(out), heat(out)
            out = torch.cat([p, h, features], dim=1)
        return p, h


def public_to_ours(key: str) -> str:
    """Flat public layer name ('Mconv3_stage4_L2.weight') -> our key ('heat.3.Mconv3_...')."""
    layer = key.rsplit(".", 1)[0]
    if layer.startswith("conv5_"):
        stage, branch = 1, int(layer[-1])
    elif layer.startswith("Mconv"):
        stage, branch = int(layer.split("stage")[1].split("_")[0]), int(layer[-1])
    else:
        return f"stem.{key}"
    return f"{'paf' if branch == 1 else 'heat'}.{stage - 1}.{key}"


def import_public(path: str | Path) -> OpenPoseBody:
    """Load `body_pose_model.pth` (a plain tensor dict; opened with weights_only=True, so no
    code in it can run) or a .safetensors copy into an OpenPoseBody."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        public = read_weights(path)
    else:
        try:
            public = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a plain PyTorch state dict ({exc})") from None
    if not isinstance(public, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(public).__name__}")
    model = OpenPoseBody()
    renamed = {public_to_ours(k): v for k, v in public.items()}
    check_state_dict(model.state_dict(), renamed, name=f"{path} (OpenPose body model)")
    model.load_state_dict(renamed, strict=True)
    return model.eval()


@dataclass
class Person:
    keypoints: np.ndarray  # [18, 2], (-1, -1) missing
    scores: np.ndarray  # [18]
    score: float


def find_peaks(
    heatmaps: np.ndarray,
    threshold: float = 0.1,
    sigma: float = 3.0,
) -> list[np.ndarray]:
    """Per part, local maxima of the smoothed map above threshold: arrays [n, 3] (x, y, s)."""
    peaks = []
    for part in range(NUM_KEYPOINTS):
        smooth = gaussian_filter(heatmaps[part], sigma=sigma)
        is_peak = (smooth == maximum_filter(smooth, size=3)) & (smooth > threshold)
        ys, xs = np.nonzero(is_peak)
        peaks.append(
            np.stack([xs, ys, heatmaps[part][ys, xs]], 1).astype(np.float32)
            if len(xs)
            else np.zeros((0, 3), np.float32)
        )
    return peaks


def group_people(
    peaks: list[np.ndarray],
    pafs: np.ndarray,
    image_height: int,
    *,
    paf_threshold: float = 0.05,
    samples: int = 10,
    min_parts: int = 4,
    min_mean_score: float = 0.4,
) -> list[Person]:
    """OpenPose grouping: score every candidate limb by the PAF along it, keep the best
    one-to-one connections per limb type, then join limbs that share a part into people."""
    connections: list[list[tuple[int, int, float]]] = []
    for (a, b), (cx, cy) in zip(LIMBS, PAF_CHANNELS, strict=True):
        ca, cb = peaks[a], peaks[b]
        found: list[tuple[int, int, float]] = []
        if len(ca) and len(cb):
            vec = cb[None, :, :2] - ca[:, None, :2]  # [nA, nB, 2]
            norm = np.maximum(np.linalg.norm(vec, axis=-1), 1e-3)
            unit = vec / norm[..., None]
            t = np.linspace(0, 1, samples)
            pts = ca[:, None, None, :2] + t[None, None, :, None] * vec[:, :, None, :]
            xs = np.clip(np.rint(pts[..., 0]).astype(int), 0, pafs.shape[2] - 1)
            ys = np.clip(np.rint(pts[..., 1]).astype(int), 0, pafs.shape[1] - 1)
            along = pafs[cx][ys, xs] * unit[..., None, 0] + pafs[cy][ys, xs] * unit[..., None, 1]
            score = along.mean(-1) + np.minimum(0.5 * image_height / norm - 1, 0)
            ok = ((along > paf_threshold).sum(-1) > 0.8 * samples) & (score > 0)
            used_a, used_b = set(), set()
            for i, j in sorted(zip(*np.nonzero(ok), strict=True), key=lambda ij: -score[ij]):
                if i in used_a or j in used_b:
                    continue
                used_a.add(i)
                used_b.add(j)
                found.append((int(i), int(j), float(score[i, j])))
                if len(found) >= min(len(ca), len(cb)):
                    break
        connections.append(found)
    # people: for each part, the index of its peak (or -1), plus total score and count
    people: list[dict] = []
    for k, ((a, b), found) in enumerate(zip(LIMBS, connections, strict=True)):
        for i, j, s in found:
            owners = [p for p in people if p["parts"][a] == i or p["parts"][b] == j]
            if len(owners) == 1:
                p = owners[0]
                if p["parts"][b] != j:
                    p["parts"][b] = j
                    p["count"] += 1
                    p["score"] += peaks[b][j, 2] + s
            elif len(owners) == 2:
                p, q = owners
                if not ((p["parts"] >= 0) & (q["parts"] >= 0)).any():  # disjoint: merge
                    p["parts"] = np.maximum(p["parts"], q["parts"])
                    p["count"] += q["count"]
                    p["score"] += q["score"] + s
                    people.remove(q)
                else:
                    p["parts"][b] = j
                    p["count"] += 1
                    p["score"] += peaks[b][j, 2] + s
            elif not owners and k < 17:  # the two ear-shoulder links only join
                parts = np.full(NUM_KEYPOINTS, -1, int)
                parts[a], parts[b] = i, j
                people.append(
                    {"parts": parts, "count": 2, "score": peaks[a][i, 2] + peaks[b][j, 2] + s}
                )
    result = []
    for p in people:
        if p["count"] < min_parts or p["score"] / p["count"] < min_mean_score:
            continue
        kp = np.full((NUM_KEYPOINTS, 2), -1.0, np.float32)
        sc = np.zeros(NUM_KEYPOINTS, np.float32)
        for part, idx in enumerate(p["parts"]):
            if idx >= 0:
                kp[part] = peaks[part][idx, :2]
                sc[part] = peaks[part][idx, 2]
        result.append(Person(kp, sc, float(p["score"])))
    return sorted(result, key=lambda person: -person.score)


class OpenPoseEstimator:
    """Multi-person keypoints with the imported CMU model; as a `KeypointEstimator` it
    answers with the most confident person of each photo (or box)."""

    def __init__(
        self,
        model: OpenPoseBody,
        *,
        device: str | torch.device = "cpu",
        box_size: int = 368,
        scales: tuple[float, ...] = (1.0,),
    ) -> None:
        self.model = model.to(device).eval()
        self.device, self.box_size, self.scales = device, box_size, scales
        # The crop it reads a standing person well at: box_size rows, DeepFashion's aspect.
        self.input_size = (box_size, round(box_size * 176 / 256))

    @classmethod
    def from_folder(cls, folder: str | Path, **kwargs) -> OpenPoseEstimator:
        """An imported folder (`import` below) or a bundle whose keypoints are OpenPose."""
        name = stored_module_name(folder, ("model", "keypoints"))
        body = load_module(
            folder, name, {"OpenPoseBody": OpenPoseBody.from_config}, what="OpenPose"
        )
        return cls(body, **kwargs)

    def predict_many(
        self, images: list[np.ndarray], boxes: list[Box | None] | None = None
    ) -> list[KeypointResult]:
        """The surest person of each photo (inside its box, if given), in photo pixels; the
        person score is the mean of the 8 best part scores, as our network's."""
        boxes = boxes or [None] * len(images)
        results = []
        for image, box in zip(images, boxes, strict=True):
            x0 = y0 = 0
            if box is not None:  # the part of the box inside the photo
                x, y, w, h = box
                x0, y0 = max(0, int(x)), max(0, int(y))
                image = image[y0 : max(y0, int(np.ceil(y + h))), x0 : max(x0, int(np.ceil(x + w)))]
            people = self(image) if min(image.shape[:2]) >= 8 else []
            if not people:
                nobody = np.full((NUM_KEYPOINTS, 2), -1.0, np.float32)
                results.append(KeypointResult(nobody, np.zeros(NUM_KEYPOINTS, np.float32), 0.0))
                continue
            best = people[0]
            kp = best.keypoints.astype(np.float32).copy()
            shown = kp[:, 0] >= 0
            kp[shown] += np.array([x0, y0], np.float32)
            scores = best.scores.astype(np.float32)
            results.append(KeypointResult(kp, scores, float(np.sort(scores)[::-1][:8].mean())))
        return results

    @torch.no_grad()
    def maps(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(PAFs [38, H, W], heatmaps [19, H, W]) at the image's resolution."""
        h, w = image.shape[:2]
        bgr = image[..., ::-1].astype(np.float32) / 256.0 - 0.5
        paf_sum = np.zeros((38, h, w), np.float32)
        heat_sum = np.zeros((19, h, w), np.float32)
        for scale in self.scales:
            f = scale * self.box_size / h
            sh, sw = max(8, round(h * f)), max(8, round(w * f))
            x = torch.from_numpy(cv2.resize(bgr, (sw, sh), interpolation=cv2.INTER_CUBIC))
            x = x.permute(2, 0, 1)[None].to(self.device)
            ph, pw = (-sh) % 8, (-sw) % 8
            x = F.pad(x, (0, pw, 0, ph), value=0.0)  # the port pads with grey (128/256-0.5)
            paf, heat = self.model(x)
            for out, acc in ((paf, paf_sum), (heat, heat_sum)):
                up = F.interpolate(out, scale_factor=8, mode="bicubic", align_corners=False)
                up = up[..., :sh, :sw]
                acc += (
                    F.interpolate(up, size=(h, w), mode="bicubic", align_corners=False)[0]
                    .cpu()
                    .numpy()
                )
        n = len(self.scales)
        return paf_sum / n, heat_sum / n

    def __call__(self, image: np.ndarray) -> list[Person]:
        pafs, heat = self.maps(image)
        return group_people(find_peaks(heat), pafs, image.shape[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CMU OpenPose body model: import and run.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="convert body_pose_model.pth to safetensors + JSON")
    imp.add_argument("weights", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    pred = sub.add_parser("predict", help="multi-person keypoints of a photo")
    pred.add_argument("photo", type=Path)
    pred.add_argument("--weights", type=Path, required=True, help="an imported folder")
    pred.add_argument("--draw", type=Path)
    pred.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        if args.command == "import":
            model = import_public(args.weights)
            save_checkpoint(
                args.out,
                {"model": model},
                {
                    "modules": {"model": model.describe()},
                    "source": str(args.weights),
                },
            )
            print(f"imported {args.weights} -> {args.out}")
            return 0
        estimator = OpenPoseEstimator.from_folder(args.weights, device=args.device)
        image = load_image(args.photo)
    except (CheckpointError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    people = estimator(image)
    print(f"{args.photo}: {len(people)} people")
    for i, p in enumerate(people):
        print(f"  person {i}: {int((p.keypoints[:, 0] >= 0).sum())} keypoints, score {p.score:.2f}")
    if args.draw:
        canvas = image
        for p in people:
            canvas = draw_skeleton(canvas, p.keypoints, alpha=1.0)
        save_image(args.draw, canvas)
    return 0


if __name__ == "__main__":
    sys.exit(main())


register_backend(
    Backend(
        name="openpose",
        module_class="OpenPoseBody",
        build=OpenPoseBody.from_config,
        estimator=lambda model, device: OpenPoseEstimator(model, device=device),
    )
)
