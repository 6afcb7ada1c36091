"""BlazePose (Google's pretrained pose detector + full landmark model) in plain PyTorch.

The networks come from the mediapipe 0.10.14 wheel (Apache-2.0), converted once by
scripts/convert_mediapipe.py and run by `keypoints.tflite_graph`; nothing of mediapipe or
TFLite is needed at run time. The pre- and post-processing re-implements mediapipe's public
graphs (modules/pose_detection/pose_detection_cpu.pbtxt, modules/pose_landmark/
pose_landmark_cpu.pbtxt and their subgraphs) as mediapipe runs them for a still photo
(`solutions.pose.Pose(static_image_mode=True, model_complexity=1)`), so the numbers match:

1. detector: the photo (or a box of it) letterboxed into 224x224, black border, values in
   [-1, 1]; 2254 SSD anchors (strides 8, 16, 32, 32, 32, fixed size); boxes and 4 alignment
   keypoints decoded per anchor, sigmoid scores >= 0.5, weighted NMS at IoU 0.3.
2. ROI: centre = the mid-hip keypoint, side = 2 x its distance to the full-body scale point,
   x 1.25, rotated so the hip -> scale-point vector points up.
3. landmark model on that rotated square resampled to 256x256 (edge pixels replicated, values
   in [0, 1]): 39 landmarks (x, y, z, visibility, presence), a person flag (< 0.5: nobody),
   64x64 heatmaps that refine each landmark (7x7 weighted mean where the peak >= 0.5), and
   256x256 segmentation logits, all mapped back to the photo through the ROI.

Coordinates are photo pixels as mediapipe gives them (normalised x times the width).
Landmark order is BlazePose's 33-point topology; `to_openpose18` maps it onto our skeleton.
`BlazePose.predict_many` fits the project's KeypointEstimator protocol (keypoints.estimators)
and returns `BlazePoseResult`, a `KeypointResult` with the box, the mask and the 33 landmarks.

Beside the pose, the wheel's face landmark model (`keypoints.face`) outlines each person's face
from the pose's face points: `BlazePoseResult.face`, what the parser needs to tell face from
hair on real photos.

As the `blazepose` keypoint backend, the graphs are one module, `BlazePoseNets`, which a
bundle stores like any network (`keypoints.safetensors`, loaded strictly); its built-in
weights are the package's `mediapipe_weights/`, so `python -m studio.bundle --keypoints
blazepose ...` needs no checkpoint folder.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from common.checkpoint import read_weights
from common.config import from_dict
from common.geometry import Box, warp
from keypoints.estimators import Backend, KeypointResult, register_backend
from keypoints.face import Face, FaceLandmarks
from keypoints.roi import Roi, rect_matrix, rotation_of
from keypoints.skeleton import FACE_FRONT, MISSING, NUM_KEYPOINTS, keypoint_box, visible
from keypoints.tflite_graph import GraphError, TfliteGraph

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "mediapipe_weights"
GRAPHS = ("detector", "landmark", "face")  # the converted graphs, {name}.json + .safetensors
# The wheel's .tflite files the package's graphs were converted from (their JSON says so).
SOURCE_SHA256 = {
    "detector": "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    "landmark": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    "face": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
}
DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 33  # the public topology; the model's 6 more are ROI helpers
DETECTOR_OUTPUTS = ("Identity", "Identity_1")  # boxes + keypoints, score logits
LANDMARK_OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3")  # +seg, heatmaps
PICKS = ("largest", "surest")  # which of several detected people gets the landmarks
# For each of our 18 points, its BlazePose landmark; the neck (-1) is the mid-shoulder point.
# BlazePose's left/right are the person's own, like ours: r-eye = 5, l-eye = 2, r-ear = 8.
BLAZEPOSE_TO_OURS: tuple[int, ...] = (
    0,
    -1,
    12,
    14,
    16,
    11,
    13,
    15,
    24,
    26,
    28,
    23,
    25,
    27,
    5,
    2,
    8,
    7,
)


MID_SHOULDER = 2  # of a Detection's 4 keypoints
# Each hand's wrist, pinky, index and thumb in the 33-point topology (left, right).
HANDS = ((15, 17, 19, 21), (16, 18, 20, 22))
HAND_VISIBILITY = 0.5  # a hand is outlined only where all four of its points are seen
HAND_GROW = 0.4  # the outline grown by this share of wrist-to-index: fingers reach past them
# The pinky and index points are knuckles: the fingertips lie about a palm's length (wrist to
# knuckles) past them, and a hand resting on trousers was outlined only to its knuckles (its
# fingers stayed trousers, and went with the legs into the card)
FINGER_REACH = 1.0
OUTLINED = 8  # of the people a whole photo shows, how many get a landmark look to compare
MIN_OUTLINED = 3  # keypoints a person needs seen for a box of them
HEAD_ROOM = 0.12  # a rough body box's room above the face, in detector boxes
BODY_PER_FACE = (1.6, 4.5)  # a standing body's width and height in detector (face) boxes


def _face_x(detection: Detection) -> float:
    """The column of the detected face's centre (the detector's box covers the face)."""
    return detection.box[0] + detection.box[2] / 2


def _face_inside(detection: Detection, box: Box) -> bool:
    """Whether the detected face's centre lies within the box's columns."""
    return box[0] <= _face_x(detection) <= box[0] + box[2]


def _face_within(detection: Detection, box: Box) -> bool:
    """Whether the detected face's centre lies inside the box (its columns and its rows)."""
    _, y, _, h = detection.box
    return _face_inside(detection, box) and box[1] <= y + h / 2 <= box[1] + box[3]


@dataclass
class Detection:
    """A person found by the detector, in photo pixels."""

    box: Box  # x, y, w, h
    score: float
    keypoints: np.ndarray  # [4, 2]: mid-hip, full-body scale point, mid-shoulder, upper-body scale


@dataclass
class PoseLandmarks:
    """One person's 33 landmarks in photo pixels, from one ROI."""

    points: np.ndarray  # [33, 3]: x, y in photo pixels; z (depth, hips ~0) in pixels, scaled as x
    visibility: np.ndarray  # [33] in 0..1: in view and not occluded
    presence: np.ndarray  # [33] in 0..1: inside the ROI
    person_score: float  # the model's person flag; mediapipe drops the pose below 0.5
    roi: Roi
    mask: np.ndarray | None  # [H, W] float32 0..1 in the photo frame, when asked for
    # The model's two alignment points (its landmarks 33 and 34: mid-hip and the full-body
    # scale point, photo pixels), from which mediapipe makes the next frame's ROI.
    alignment: np.ndarray | None = None
    # found by `BlazePose.headless_many`, head cut off by the photo's top edge: a closer look
    # on a crop, whose letterbox shows a flat band where the head would be, loses the body
    headless: bool = False

    def transformed(self, matrix: np.ndarray) -> PoseLandmarks:
        """These landmarks in another frame, under a [2, 3] similarity from this one (a
        uniform scale, a turn, a shift: the pipeline's crops); depth scales as x does, and
        the mask is left behind (it is a map of the old frame)."""
        m = np.asarray(matrix, np.float64)
        scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
        points = self.points.copy()
        points[:, :2] = self.points[:, :2] @ m[:, :2].T + m[:, 2]
        points[:, 2] = self.points[:, 2] * scale
        alignment = None if self.alignment is None else self.alignment @ m[:, :2].T + m[:, 2]
        return PoseLandmarks(
            points.astype(np.float32),
            self.visibility,
            self.presence,
            self.person_score,
            self.roi.transformed(m),
            None,
            None if alignment is None else alignment.astype(np.float32),
            self.headless,
        )


@dataclass
class BlazePoseResult(KeypointResult):
    """`KeypointResult` (18 keypoints, visibility as scores, person flag as person score) plus
    what BlazePose gives beyond it. A photo without a person: every keypoint missing, score 0,
    box None, an all-zero mask, no face."""

    box: Box | None  # the detector's person box, photo pixels
    detection_score: float
    # [H, W] float32 in 0..1; None where no mask was asked for (`BlazePose.masks`)
    mask: np.ndarray | None
    landmarks: PoseLandmarks | None
    image_size: tuple[int, int]  # (H, W) of the photo
    face: Face | None = None  # the face model's points, where it was run and found a face

    @property
    def face_mask(self) -> np.ndarray | None:
        """[H, W] float32: 1 inside the face's outline; None where no face was found."""
        return None if self.face is None else self.face.mask(self.image_size)

    @property
    def hands_mask(self) -> np.ndarray | None:
        """[H, W] float32: 1 inside the outline of each hand seen (`hand_outlines`); None
        where no hand is."""
        if self.landmarks is None:
            return None
        return hand_outlines(self.landmarks.points, self.landmarks.visibility, self.image_size)

    def to_json(self) -> dict:
        out = super().to_json()
        out["box"] = None if self.box is None else [round(float(v), 2) for v in self.box]
        out["detection_score"] = round(self.detection_score, 4)
        return out


def hand_outlines(
    points: np.ndarray, visibility: np.ndarray, shape: tuple[int, int]
) -> np.ndarray | None:
    """[H, W] float32, 1 inside each seen hand: the convex hull of its wrist, pinky, index,
    thumb and fingertips (FINGER_REACH palms past the knuckles) grown by HAND_GROW of the
    wrist-to-index length; None where no hand is seen.
    (LIP and the ADGAN classes count hands, and gloves, as arms; the hand points are where
    a model of real people puts them, often outside its own person mask.)"""
    out = np.zeros(shape, np.uint8)
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)
    for hand in HANDS:
        if (visibility[list(hand)] < HAND_VISIBILITY).any():
            continue
        xy = points[list(hand), :2].astype(np.float64)
        grow = HAND_GROW * float(np.linalg.norm(xy[2] - xy[0]))
        knuckles = (xy[1] + xy[2]) / 2
        xy = np.concatenate([xy, (knuckles + FINGER_REACH * (knuckles - xy[0]))[None]])
        ring = (xy[:, None] + grow * circle[None]).reshape(-1, 2)  # the hull grown by `grow`
        hull = cv2.convexHull(np.round(ring * 16).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1, cv2.LINE_8, 4)
    return out.astype(np.float32) if out.any() else None


def ssd_anchors(
    input_size: int = DETECTOR_SIZE,
    strides: Sequence[int] = (8, 16, 32, 32, 32),
    offset: float = 0.5,
) -> np.ndarray:
    """Anchor centres [N, 2] (x, y in 0..1) of pose_detection_cpu.pbtxt's SsdAnchorsCalculator:
    layers of one stride share a grid; each layer gives 2 anchors per cell (aspect 1 plus the
    interpolated scale), and with fixed_anchor_size every anchor is 1 x 1."""
    centres = []
    i = 0
    while i < len(strides):
        same = sum(1 for s in strides[i:] if s == strides[i])  # consecutive layers, one grid
        n = math.ceil(input_size / strides[i])
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grid = np.stack([(xs + offset) / n, (ys + offset) / n], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, 2 * same, axis=1).reshape(-1, 2))
        i += same
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """mediapipe's WEIGHTED non-max suppression: the best remaining detection absorbs every one
    overlapping it by IoU > threshold (itself included); the group's score-weighted mean box and
    keypoints go out with the best score. boxes [N, 4] as xmin, ymin, xmax, ymax."""
    order = np.argsort(-scores, kind="stable")
    out = []
    while len(order):
        best = boxes[order[0]]
        rest = boxes[order]
        iw = np.clip(np.minimum(best[2], rest[:, 2]) - np.maximum(best[0], rest[:, 0]), 0, None)
        ih = np.clip(np.minimum(best[3], rest[:, 3]) - np.maximum(best[1], rest[:, 1]), 0, None)
        inter = iw * ih
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        union = area(best) + area(rest) - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        group = iou > iou_threshold
        if not group.any():  # a degenerate box (as mediapipe: stop)
            break
        w = scores[order[group]][:, None]
        out.append(
            (
                (boxes[order[group]] * w).sum(0) / w.sum(),
                (keypoints[order[group]] * w[:, :, None]).sum(0) / w.sum(),
                float(scores[order[0]]),
            )
        )
        order = order[~group]
    return out


def refine_from_heatmaps(
    xy: np.ndarray, heatmaps: np.ndarray, kernel: int = 7, min_confidence: float = 0.5
) -> np.ndarray:
    """mediapipe's RefineLandmarksFromHeatmapCalculator, batched: xy [B, K, 2] normalised to
    the crop, heatmaps [B, h, w, K] logits. Each landmark moves to the sigmoid-weighted mean
    cell of the kernel x kernel window around it (cell index / size, no half-cell shift, as
    mediapipe) when the window's peak reaches min_confidence."""
    b, h, w, k = heatmaps.shape
    cols = np.trunc(xy[..., 0] * w).astype(np.int64)  # C++ int(): towards zero
    rows = np.trunc(xy[..., 1] * h).astype(np.int64)
    inside = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    r = (kernel - 1) // 2
    offsets = np.arange(-r, r + 1)
    cc = cols[..., None, None] + offsets[None, None, None, :]  # [B, K, 1, k]
    rr = rows[..., None, None] + offsets[None, None, :, None]  # [B, K, k, 1]
    valid = (cc >= 0) & (cc < w) & (rr >= 0) & (rr < h)
    cc_, rr_ = np.clip(cc, 0, w - 1), np.clip(rr, 0, h - 1)
    bi = np.arange(b)[:, None, None, None]
    ki = np.arange(k)[None, :, None, None]
    conf = _sigmoid(heatmaps[bi, rr_, cc_, ki])
    conf = np.where(valid, conf, 0.0)  # [B, K, k, k]
    total = conf.sum((2, 3))
    peak = conf.max((2, 3))
    safe = np.where(total > 0, total, 1.0)
    refined = np.stack(
        [
            (conf * np.broadcast_to(cc, conf.shape)).sum((2, 3)) / safe / w,
            (conf * np.broadcast_to(rr, conf.shape)).sum((2, 3)) / safe / h,
        ],
        -1,
    )
    use = inside & (peak >= min_confidence) & (total > 0)
    return np.where(use[..., None], refined, xy).astype(np.float32)


def faces_away(points: np.ndarray, depth: float) -> bool:
    """Whether BlazePose's landmarks [33, 3] show a head seen from behind: the nose further
    from the camera than the mid-ears by more than `depth` torso lengths (BlazePose's z is
    in the scale of x). Its visibility says nothing here: it places a face on the back of a
    head and calls it seen (1.00 on the police rider seen from behind in the DensePose
    street photo, whose nose lies 0.84 torsos behind his ears, and the COCO catcher seen from
    behind, 0.71; the people facing the camera in the real photos of `../shared/data` lie at
    -0.5 to -1.1, the side views near 0, and a COCO batter turned three-quarters away, whose
    nose and one eye COCO labels, at 0.1 to 0.4 as the crop moves: the default of 0.5 drops
    only heads seen from behind)."""
    pts = np.asarray(points, np.float32)
    if pts.shape[1] < 3:
        return False
    torso = np.linalg.norm((pts[11, :2] + pts[12, :2]) / 2 - (pts[23, :2] + pts[24, :2]) / 2)
    return bool(pts[0, 2] - (pts[7, 2] + pts[8, 2]) / 2 > depth * torso)


def brightened(image: np.ndarray, dim_level: float | None) -> np.ndarray:
    """`image` (uint8 RGB) with its levels stretched where it is dim: where the 99th
    percentile of its luminance lies under `dim_level`, the 1st to 99th percentile become 0 to
    255 (a gain of at most 8); else (and with `dim_level` None) the image itself. mediapipe's
    models learnt on well-exposed photos: a shopper's photo in a dim room, at a third of the
    exposure, lost its person or its pose (bench/pose_robustness.py). The geometry is
    unchanged, so every box, point and mask found on the result holds for the photo. The
    percentiles come from at most about 256 x 256 pixels of it."""
    if dim_level is None or image.dtype != np.uint8 or image.ndim != 3 or not image.size:
        return image  # (what is no photo is refused by name where it is read)
    step = max(1, max(image.shape[:2]) // 256)
    luminance = image[::step, ::step].mean(-1)
    low, high = np.percentile(luminance, [1.0, 99.0])
    if high >= dim_level:
        return image
    gain = 255.0 / max(high - low, 255.0 / 8)
    levels = np.clip((np.arange(256) - low) * gain, 0.0, 255.0).round().astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(image), levels)  # a table: 12 MP in 10 ms, not 400


def _each_brightened(images: Sequence[np.ndarray], dim_level: float | None) -> list[np.ndarray]:
    """`brightened` per image, once per photo: the window search passes one photo per window."""
    done: dict[int, np.ndarray] = {}
    for image in images:
        if id(image) not in done:
            done[id(image)] = brightened(image, dim_level)
    return [done[id(image)] for image in images]


def _extent(box: Box | None) -> float:
    """A body's size by its box: the longer side (a standing person's height)."""
    return -1.0 if box is None else max(box[2], box[3])


def landmark_box(
    pose: PoseLandmarks,
    image_size: tuple[int, int],
    threshold: float = 0.5,
    back_view_depth: float | None = None,
) -> Box | None:
    """The box of a person's keypoints (`keypoint_box`) as `to_openpose18` makes them from
    the landmarks in a photo of `image_size` (H, W), the same extent the pipeline crops the
    person used by; None where fewer than `MIN_OUTLINED` of them are seen."""
    keypoints, _ = to_openpose18(
        pose.points, pose.visibility, image_size, threshold, back_view_depth
    )
    if visible(keypoints).sum() < MIN_OUTLINED:
        return None
    return keypoint_box(keypoints)


def to_openpose18(
    points: np.ndarray,
    visibility: np.ndarray,
    image_size: tuple[int, int],
    threshold: float = 0.5,
    back_view_depth: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """BlazePose landmarks [33, >=2] (photo pixels) and visibility [33] -> our 18 keypoints
    [18, 2] and scores [18]. A point is missing (-1, -1) when its visibility is below
    `threshold` or it lies outside the photo of image_size (H, W); the neck is the mid-shoulder
    point with the smaller shoulder visibility. With `back_view_depth` (and depths in the
    landmarks), a head seen from behind (`faces_away`) has no nose and no eyes, as OpenPose
    and the DeepFashion keypoints leave them: the warp then paints the back of the head, and
    the guided parser, told by the missing eyes, no face there."""
    height, width = image_size
    pts = np.asarray(points, np.float32)[:, :2]
    vis = np.asarray(visibility, np.float32)
    keypoints = np.full((NUM_KEYPOINTS, 2), MISSING, np.float32)
    scores = np.zeros(NUM_KEYPOINTS, np.float32)
    for ours, theirs in enumerate(BLAZEPOSE_TO_OURS):
        if theirs < 0:
            keypoints[ours] = (pts[11] + pts[12]) / 2
            scores[ours] = min(vis[11], vis[12])
        else:
            keypoints[ours] = pts[theirs]
            scores[ours] = vis[theirs]
    if back_view_depth is not None and faces_away(points, back_view_depth):
        scores[list(FACE_FRONT)] = 0.0
    x, y = keypoints[:, 0], keypoints[:, 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    keypoints[~(inside & (scores >= threshold))] = MISSING
    return keypoints, scores


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings for large logits."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def _check_image(image: np.ndarray, where: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(
            f"{where}: expected a uint8 RGB array [H, W, 3] (common.image_io.load_image), got "
            f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        )
    if image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"{where}: expected [H, W, 3] with H, W >= 1, got {image.shape}")


@dataclass
class BlazePoseConfig:
    """What a stored BlazePose module is: the graphs it runs, named by the sha256 of the
    wheel's .tflite each was converted from (a bundle made from other graphs is refused, not
    run on the wrong structure), and how its landmarks become our 18 keypoints."""

    detector_sha256: str = SOURCE_SHA256["detector"]
    landmark_sha256: str = SOURCE_SHA256["landmark"]
    # None: no face model (the modules stored before it had none, and still load).
    face_sha256: str | None = SOURCE_SHA256["face"]
    visibility_threshold: float = 0.5  # an 18-point keypoint below it is missing
    # the nose this many torso lengths behind the ears: a head seen from behind, whose nose
    # and eyes are dropped (`faces_away`); None: never (bundles made before it load with 0.5)
    back_view_depth: float | None = 0.5
    # a photo whose luminance stays under this at its 99th percentile is brightened before
    # the networks look (`brightened`); None: never (bundles made before it load with 140)
    dim_level: float | None = 140.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.visibility_threshold <= 1.0:
            raise ValueError(
                f"visibility_threshold must be in [0, 1], got {self.visibility_threshold}"
            )


# `BlazePose.headless_many`: the upright squares it starts from, (centre's height over the
# photo's, side over the photo's long side); the looks each takes; the most a settled ROI
# may still move on its last look; the height (over the photo's) above which the settled
# person's nose must lie: their head is cut off
HEADLESS_STARTS = tuple((cy, side) for cy in (0.3, 0.5, 0.7) for side in (1.0, 1.5, 2.0))
HEADLESS_LOOKS = 4
HEADLESS_MAX_MOVE = 0.05
HEADLESS_TOP = 0.08


def _roi_move(a: Roi, b: Roi) -> float:
    """How far ROI b lies from a: the centre's shift over a's size, plus |log| of the size
    ratio."""
    shift = math.hypot(b.center[0] - a.center[0], b.center[1] - a.center[1]) / a.size
    return shift + abs(math.log(b.size / a.size))


def _graph_description(name: str, folder: Path = DEFAULT_WEIGHTS) -> dict:
    path = folder / f"{name}.json"
    if not path.is_file():
        raise GraphError(
            f"{path}: no such graph file; make it with scripts/convert_mediapipe.py from the "
            "mediapipe 0.10.14 wheel"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GraphError(f"{path}: not valid JSON ({exc})") from None


class BlazePoseNets(nn.Module):
    """The detector, landmark and face graphs as one module: what a bundle stores for the
    `blazepose` backend (state dict keys `detector.*`, `landmark.*`, `face.*`, in torch's
    layouts).

    The structure (ops, shapes) always comes from the package's JSON graphs, which must be
    the ones the config names; the weights start as the package's and are replaced by a
    checkpoint's when one is loaded (`common.checkpoint.load_module`, strict).

    Its weights stay fp16 in an int8 bundle (`int8_weights`, common.checkpoint): weight-only
    int8 per channel moved the landmarks by up to 240 px on the 12 real photos and lost the
    person in one (bench/real_photos.py --int8); fp16 is its published precision, exact."""

    int8_weights = False

    def __init__(self, config: BlazePoseConfig | None = None, *, folder: Path = DEFAULT_WEIGHTS):
        super().__init__()
        self.config = config or BlazePoseConfig()
        graphs: dict[str, TfliteGraph | None] = {}
        for name in GRAPHS:
            want = getattr(self.config, f"{name}_sha256")
            if want is None:
                graphs[name] = None
                continue
            description = _graph_description(name, folder)
            have = description.get("source_sha256")
            if have != want:
                raise GraphError(
                    f"{folder / name}.json: converted from a .tflite with sha256 {have}; "
                    f"the config asks for {want} (another mediapipe version's graphs: "
                    "convert those with scripts/convert_mediapipe.py)"
                )
            weights = read_weights(folder / f"{name}.safetensors")
            graphs[name] = TfliteGraph(description, weights, name=str(folder / f"{name}.json"))
        self.detector, self.landmark = graphs["detector"], graphs["landmark"]
        self.face = graphs["face"]

    @classmethod
    def from_config(cls, config: dict) -> BlazePoseNets:
        # A config stored before the face model existed has no face_sha256: no face graph.
        return cls(from_dict(BlazePoseConfig, {"face_sha256": None, **config}))

    def describe(self) -> dict:
        return {"class": "BlazePoseNets", "config": asdict(self.config)}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise TypeError(
            "BlazePoseNets holds several graphs; call .detector, .landmark or .face, or wrap "
            "it in BlazePose.from_nets for keypoints"
        )


class BlazePose:
    """BlazePose detector + landmark model on torch, batched over photos and people."""

    input_size = (LANDMARK_SIZE, LANDMARK_SIZE)  # the landmark model's square crop (H, W)
    accepts_pose_only = True  # predict_many's pose_only (keypoints.estimators)

    def __init__(
        self,
        detector: TfliteGraph,
        landmark: TfliteGraph,
        face: TfliteGraph | None = None,
        *,
        device: str | torch.device = "cpu",
        visibility_threshold: float = 0.5,
        back_view_depth: float | None = 0.5,
        dim_level: float | None = 140.0,
        min_detection_score: float = 0.5,
        min_person_score: float = 0.5,
        nms_iou: float = 0.3,
        box_fallback: bool = True,
        batch_size: int | None = None,
        pick: str = "largest",
        looks: int = 2,
        masks: bool = True,
    ) -> None:
        """visibility_threshold: an 18-point keypoint below it is missing. back_view_depth: see
        `BlazePoseConfig` (None: keep the face points of a head seen from behind). dim_level:
        see `brightened` (None: every photo as it is).
        min_detection_score, min_person_score, nms_iou: mediapipe's
        min_detection_confidence, min_tracking_confidence and NMS overlap. box_fallback:
        when the caller names a person box and the detector finds nobody in it, look at the
        box itself (a square ROI around it, upright). batch_size: crops per network call
        (None: 8 on a CPU, where the landmark model takes 21-27 ms a crop at 4-8 and 37-39 ms
        at 16, its activations out of cache; 64 on a GPU). pick: which of several people
        found gets the landmarks: "largest" (the largest body: the photo's subject; see
        `choose`) or "surest" (the highest detector score, as mediapipe); the others' boxes
        are reported in `KeypointResult.others` (`landmark_box`). face: the face landmark graph
        (`keypoints.face`); None: no face outlines. looks: landmark passes per person: 1
        from the detector's ROI only (mediapipe on a still photo), 2 once more from the ROI
        of the first pass's own alignment points (what mediapipe's tracking does on a
        video's next frame: on the COCO people 0.731 -> 0.782 PCKh, bench/real_photos.py).
        masks: whether results carry the person mask (a photo-sized float map each)."""
        if looks < 1:
            raise ValueError(f"looks must be at least 1, got {looks}")
        self.looks = looks
        self.masks = masks
        if pick not in PICKS:
            raise ValueError(f"pick must be one of {', '.join(PICKS)}, got {pick!r}")
        self.pick = pick
        self.device = torch.device(device)
        self.detector = detector.to(self.device).eval()
        self.landmark = landmark.to(self.device).eval()
        self.face = None if face is None else FaceLandmarks(face, device=self.device)
        self.visibility_threshold = visibility_threshold
        self.back_view_depth = back_view_depth
        self.dim_level = dim_level
        self.min_detection_score = min_detection_score
        self.min_person_score = min_person_score
        self.nms_iou = nms_iou
        self.box_fallback = box_fallback
        self.batch_size = batch_size or (8 if self.device.type == "cpu" else 64)
        for graph, names in ((detector, DETECTOR_OUTPUTS), (landmark, LANDMARK_OUTPUTS)):
            have = {name for _, name in graph.outputs}
            if not set(names) <= have:
                raise GraphError(f"{graph.name}: outputs {sorted(have)}, expected {list(names)}")
        self.anchors = ssd_anchors()
        if len(self.anchors) != detector.shapes[detector.outputs[0][0]][1]:
            raise GraphError(f"{detector.name}: anchor count does not match the detector's output")

    @classmethod
    def from_nets(
        cls, nets: BlazePoseNets, device: str | torch.device = "cpu", **kwargs
    ) -> BlazePose:
        """The estimator around a (loaded) `BlazePoseNets`, with its visibility threshold."""
        kwargs.setdefault("visibility_threshold", nets.config.visibility_threshold)
        kwargs.setdefault("back_view_depth", nets.config.back_view_depth)
        kwargs.setdefault("dim_level", nets.config.dim_level)
        return cls(nets.detector, nets.landmark, nets.face, device=device, **kwargs)

    @classmethod
    def from_folder(
        cls, path: str | Path = DEFAULT_WEIGHTS, device: str | torch.device = "cpu", **kwargs
    ) -> BlazePose:
        """Load detector, landmark and (where the folder has it) face .{json,safetensors} from
        `path` (made by scripts/convert_mediapipe.py); keyword arguments go to the
        constructor."""
        folder = Path(path)
        if not folder.is_dir():
            raise GraphError(
                f"{folder}: no BlazePose weights folder; make it with "
                "scripts/convert_mediapipe.py from the mediapipe 0.10.14 wheel"
            )
        nets = [
            TfliteGraph.from_files(folder / f"{n}.json", folder / f"{n}.safetensors")
            if n != "face" or (folder / "face.json").is_file()
            else None
            for n in GRAPHS
        ]
        return cls(*nets, device=device, **kwargs)

    def finder(self) -> BlazePose:
        """This estimator as the pipeline's first look wants it, which only finds the person
        in the whole photo and sets the crop: no face model, one landmark look (with the
        later look, the crops of 7 of the 15 real CIHP people of bench/real_parsing.py
        changed, one onto the background, and their parse fell 0.424 -> 0.361), and no
        mask: a photo-sized float map per look, and the window search over a 17-megapixel
        photo looks 48 times (3.2 GB and 7.5 s of mask warps, for masks nobody reads)."""
        quick = copy.copy(self)
        quick.face = None
        quick.looks = 1
        quick.masks = False
        return quick

    def searcher(self) -> BlazePose:
        """The finder for boxes nobody vouched for (the pipeline's window search): only a
        person the detector finds in a box counts, with no look at the box itself. With that
        fallback the landmark model, told someone is there, found a person in a DensePose UV
        atlas and in a sheet of hand textures, and the pipeline made cards of them."""
        strict = self.finder()
        strict.box_fallback = False
        return strict

    def headless_many(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None] | None = None
    ) -> list[BlazePoseResult]:
        """The person of each photo (or inside each box, x, y, w, h: a user's pick) whose head
        the photo's top edge cuts off (a catalogue photo cut at the mouth or the shoulders),
        or nobody. The detector finds people by their faces; without one it finds nobody, or
        a "face" in a hand or a print. The landmark model alone does find such a body, at the
        ROI its own landmarks settle on: from a few upright squares over the photo or the
        box (`HEADLESS_STARTS`), each look from the last look's own ROI (how mediapipe
        follows a person from one video frame to the next), `HEADLESS_LOOKS` times. The
        start whose last look moved its ROI least (centre shift over size plus log size
        change, at most `HEADLESS_MAX_MOVE`) with a person flag of at least
        `min_person_score` is the person, if their nose lies above `HEADLESS_TOP` of the
        photo's (the box's) height from the photo's top edge (and their hips lie between the
        box's sides); else nobody from here. A box whose top lies below the photo's edge
        gets nobody: the photo shows what the box cuts. On the real photos of ../shared/data
        cut at the shoulders, their landmarks' ROIs settle on the whole person where a start
        sees them; on uncut photos, on a head inside."""
        images = _each_brightened(images, self.dim_level)
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        frames = [
            (0.0, 0.0, float(image.shape[1]), float(image.shape[0])) if box is None else box
            for image, box in zip(images, boxes, strict=True)
        ]
        at_top = [n for n, (_, y, _, _) in enumerate(frames) if y < 1.0]
        n_starts = len(HEADLESS_STARTS)
        flat_images = [images[n] for n in at_top for _ in range(n_starts)]
        rois = [
            Roi((x + w / 2, y + cy * h), side * max(h, w), 0.0)
            for x, y, w, h in (frames[n] for n in at_top)
            for cy, side in HEADLESS_STARTS
        ]
        poses: list[PoseLandmarks] = []
        moves: list[float] = []
        for _ in range(HEADLESS_LOOKS if rois else 0):  # the flag decides below
            poses = self.landmarks(flat_images, rois, with_mask=False, min_person_score=0.0)
            settled = [self.roi_from_landmarks(pose) for pose in poses]
            moves = [_roi_move(a, b) for a, b in zip(rois, settled, strict=True)]
            rois = settled
        keep = self.min_person_score
        found: list[PoseLandmarks | None] = [None] * len(images)
        for j, n in enumerate(at_top):
            x, _, w, h = frames[n]
            span = range(j * n_starts, (j + 1) * n_starts)
            held = [k for k in span if poses[k].person_score >= keep]
            best = min(held, key=lambda k: moves[k], default=None)
            ok = best is not None and moves[best] <= HEADLESS_MAX_MOVE
            if ok:
                points = poses[best].points
                middle = points[[23, 24], 0].mean()  # the hips' x: the box's person
                ok = points[0, 1] < HEADLESS_TOP * h and x <= middle <= x + w
            if ok:
                poses[best].headless = True
                found[n] = poses[best]
        masked = [k for k, pose in enumerate(found) if pose is not None and self.masks]
        if masked:  # the mask from the settled ROI's own look
            looks = self.landmarks(
                [images[k] for k in masked], [found[k].roi for k in masked], with_mask=True
            )
            for k, look in zip(masked, looks, strict=True):
                found[k].mask = None if look is None else look.mask
        todo = list(range(len(images)))
        pose_only = [False] * len(images)
        others: list[list[Box]] = [[] for _ in images]
        picked = [None] * len(images)
        return self._results(
            images, todo, found, picked, others, [None] * len(images), self.masks, pose_only
        )

    @torch.no_grad()
    def _run(self, graph: TfliteGraph, crops: np.ndarray) -> dict[str, np.ndarray]:
        """crops [N, H, W, 3] float32 -> the graph's outputs as numpy, in chunks."""
        parts: list[dict[str, torch.Tensor]] = []
        for start in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(crops[start : start + self.batch_size]).to(self.device)
            parts.append({k: v.float().cpu() for k, v in graph(x).items()})
        return {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}

    def detect(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None] | None = None
    ) -> list[list[Detection]]:
        """People in each photo (or in its box), most confident first, photo pixels."""
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        if len(boxes) != len(images):
            raise ValueError(f"{len(images)} images but {len(boxes)} boxes")
        if not images:
            return []
        crops, inverse = [], []
        for n, (image, box) in enumerate(zip(images, boxes, strict=True)):
            _check_image(image, f"image {n}")
            h, w = image.shape[:2]
            x, y, bw, bh = box if box is not None else (0.0, 0.0, float(w), float(h))
            if bw <= 0 or bh <= 0:
                raise ValueError(f"image {n}: box {box} has no area")
            side = max(bw, bh)  # mediapipe's PadRoi: the letterbox is a square around the box
            m = rect_matrix((x + bw / 2, y + bh / 2), (side, side), 0.0, (DETECTOR_SIZE,) * 2)
            crop = warp(image, m, (DETECTOR_SIZE, DETECTOR_SIZE), (0, 0, 0))
            crops.append(crop.astype(np.float32) / 127.5 - 1.0)
            inverse.append(cv2.invertAffineTransform(m))
        out = self._run(self.detector, np.stack(crops))
        raw, logits = out["Identity"], out["Identity_1"][..., 0]  # [N, 2254, 12], [N, 2254]
        scores = _sigmoid(np.clip(logits, -100.0, 100.0))  # mediapipe's score clipping
        found = []
        for n in range(len(images)):
            r = raw[n] / DETECTOR_SIZE  # x, y, w, h, then 4 keypoints (x, y), anchor-relative
            centre = r[:, :2] + self.anchors
            half = r[:, 2:4] / 2
            xyxy = np.concatenate([centre - half, centre + half], 1)
            kps = (r[:, 4:12].reshape(-1, 4, 2) + self.anchors[:, None]).astype(np.float64)
            keep = (scores[n] >= self.min_detection_score) & (r[:, 2] >= 0) & (r[:, 3] >= 0)
            people = []
            for box_n, kp_n, score in weighted_nms(
                xyxy[keep].astype(np.float64), kps[keep], scores[n][keep], self.nms_iou
            ):
                corners = np.array([box_n[:2], box_n[2:]]) * DETECTOR_SIZE
                corners = corners @ inverse[n][:, :2].T + inverse[n][:, 2]
                pts = (kp_n * DETECTOR_SIZE) @ inverse[n][:, :2].T + inverse[n][:, 2]
                (x0, y0), (x1, y1) = corners
                people.append(
                    Detection(
                        (float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                        score,
                        pts.astype(np.float32),
                    )
                )
            found.append(people)
        return found

    @staticmethod
    def roi_from_detection(detection: Detection, scale: float = 1.25) -> Roi:
        """pose_detection_to_roi.pbtxt: centred on the mid-hip point, twice its distance to the
        full-body scale point (x scale), turned so that vector points up."""
        return BlazePose.roi_from_points(detection.keypoints[0], detection.keypoints[1], scale)

    @staticmethod
    def roi_from_landmarks(pose: PoseLandmarks, scale: float = 1.25) -> Roi:
        """pose_landmarks_to_roi.pbtxt: the same rule on the landmark model's own alignment
        points, which is how mediapipe places the ROI on a video's next frame."""
        return BlazePose.roi_from_points(pose.alignment[0], pose.alignment[1], scale)

    @staticmethod
    def roi_from_points(hip: np.ndarray, scale_point: np.ndarray, scale: float = 1.25) -> Roi:
        (x0, y0), (x1, y1) = hip, scale_point
        side = 2.0 * math.hypot(x1 - x0, y1 - y0) * scale
        rotation = rotation_of(hip, scale_point, math.pi / 2)
        return Roi((float(x0), float(y0)), float(side), float(rotation))

    @staticmethod
    def roi_from_box(box: Box, scale: float = 1.25) -> Roi:
        """An upright square ROI around a person box, for when the detector finds nobody."""
        x, y, w, h = box
        return Roi((x + w / 2, y + h / 2), max(w, h) * scale, 0.0)

    def landmarks(
        self,
        images: Sequence[np.ndarray],
        rois: Sequence[Roi],
        *,
        with_mask: bool | Sequence[bool] = True,
        min_person_score: float | None = None,
    ) -> list[PoseLandmarks | None]:
        """The landmark model on each (photo, ROI) pair, one batch; None where the person flag
        is below `min_person_score` (None: the estimator's; mediapipe reports no pose there).
        with_mask: for all, or per pair."""
        least = self.min_person_score if min_person_score is None else min_person_score
        if len(images) != len(rois):
            raise ValueError(f"{len(images)} images but {len(rois)} ROIs")
        if not images:
            return []
        masks = [with_mask] * len(images) if isinstance(with_mask, bool) else list(with_mask)
        crops, matrices = [], []
        for n, (image, roi) in enumerate(zip(images, rois, strict=True)):
            _check_image(image, f"image {n}")
            if not roi.size > 0:
                raise ValueError(f"ROI {n} has no area: {roi}")
            m = roi.matrix(LANDMARK_SIZE)
            crop = warp(image, m, (LANDMARK_SIZE, LANDMARK_SIZE), replicate=True)
            crops.append(crop.astype(np.float32) / 255.0)
            matrices.append(m)
        out = self._run(self.landmark, np.stack(crops))
        raw = out["Identity"].reshape(len(crops), -1, 5)  # [N, 39, (x, y, z, vis, presence)]
        flags = out["Identity_1"][:, 0]
        xy = refine_from_heatmaps(raw[..., :2] / LANDMARK_SIZE, out["Identity_3"])
        results: list[PoseLandmarks | None] = []
        for n, (image, roi) in enumerate(zip(images, rois, strict=True)):
            if flags[n] < least:
                results.append(None)
                continue
            xy_photo = roi.to_photo(xy[n, : NUM_LANDMARKS + 2])
            z = raw[n, : NUM_LANDMARKS + 2, 2] / LANDMARK_SIZE * roi.size
            points = np.concatenate([xy_photo, z[:, None]], 1).astype(np.float32)
            mask = None
            if masks[n]:
                h, w = image.shape[:2]
                mask = cv2.warpAffine(
                    _sigmoid(out["Identity_2"][n, :, :, 0]).astype(np.float32), matrices[n],
                    (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
                )  # fmt: skip
            results.append(
                PoseLandmarks(
                    points=points[:NUM_LANDMARKS],
                    visibility=_sigmoid(raw[n, :NUM_LANDMARKS, 3]).astype(np.float32),
                    presence=_sigmoid(raw[n, :NUM_LANDMARKS, 4]).astype(np.float32),
                    person_score=float(flags[n]),
                    roi=roi,
                    mask=mask,
                    alignment=points[NUM_LANDMARKS:, :2],
                )
            )
        return results

    def choose(
        self,
        people: Sequence[Detection],
        box: Box | None = None,
        outlines: Sequence[Box | None] | None = None,
    ) -> int:
        """Which of several people (an index) gets the landmarks (see `pick`). "largest"
        compares the bodies where they have had a landmark look (`outlines`: the boxes of
        their landmarks, None where there was none; the longer side, which sets the size
        of the pipeline's crop), else the ROIs the detector's body points give: the ROI of
        a catcher crouching in a COCO photo was larger than that of the batter standing
        before him, whose body is half as tall again. With a caller's `box`, the person
        whose face and shoulders are nearest the box's vertical centre line: the detector
        reads a square around the box, where a neighbour may be the larger, and the hip
        point the ROI is centred on wanders on people cut by the photo's edge."""
        if box is not None and len(people) > 1:
            centre_x = box[0] + box[2] / 2

            def off_centre(j: int) -> float:
                d = people[j]
                return abs((_face_x(d) + float(d.keypoints[MID_SHOULDER, 0])) / 2 - centre_x)

            return min(range(len(people)), key=off_centre)
        if self.pick == "surest":
            return 0  # detect() sorts by score
        if outlines and any(outlines):
            return max(range(len(people)), key=lambda j: _extent(outlines[j]))
        return max(range(len(people)), key=lambda j: self.roi_from_detection(people[j]).size)

    def _seen_whole(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Box | None],
        detections: list[list[Detection]],
    ) -> list[list[Detection]]:
        """Where the detector saw nobody in a caller's box, the people it sees in the whole
        photo whose face lies inside the box. Read in the box's square, a person filling it
        shows the detector a face larger than it finds well: a seated man in a compressed
        COCO photo scored 0.91 in the whole photo and nothing in his box, whose fallback
        (the landmark model on the box) then saw nobody either."""
        empty = [n for n, box in enumerate(boxes) if box is not None and not detections[n]]
        if not empty:
            return detections
        wholes = self.detect([images[n] for n in empty])
        out = list(detections)
        for n, people in zip(empty, wholes, strict=True):
            out[n] = [p for p in people if _face_within(p, boxes[n])]
        return out

    @staticmethod
    def person_box(detection: Detection, shape: tuple[int, int]) -> Box:
        """A rough upright box (x, y, w, h) around a detected person's body, inside a photo
        of `shape` (H, W), from the detector's box, which covers the face, and the body's
        usual proportions to it (`BODY_PER_FACE`). The detector's body points are no
        better: on the CIHP graduation photo the ROI they give a woman beside the graduate
        took in the whole photo and showed the landmark model nobody."""
        x, y, w, h = detection.box
        wide, tall = BODY_PER_FACE
        centre = x + w / 2
        x0, x1 = max(0.0, centre - wide * w / 2), min(float(shape[1]), centre + wide * w / 2)
        y0, y1 = max(0.0, y - HEAD_ROOM * h), min(float(shape[0]), y + tall * h)
        return (x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))

    def _bodies(
        self,
        images: Sequence[np.ndarray],
        detections: list[list[Detection]],
        boxes: Sequence[Box | None],
    ) -> list[list[PoseLandmarks | None]]:
        """Per photo, a landmark look (no mask) for each person detected, where a whole
        photo shows several (the first `OUTLINED`), in one batch: the pick compares their
        bodies, and the others a caller is offered are boxed by their landmarks
        (`landmark_box`). The detector's square around a body reaches past it: on the CIHP
        graduation photo a neighbour's took in the whole photo, the person used too. None
        for the people not looked at."""
        bodies: list[list[PoseLandmarks | None]] = [[None] * len(p) for p in detections]
        who = [
            (n, j)
            for n, people in enumerate(detections)
            if boxes[n] is None and len(people) > 1
            for j in range(min(len(people), OUTLINED))
        ]
        looks = self.landmarks(
            [images[n] for n, _ in who],
            [self.roi_from_detection(detections[n][j]) for n, j in who],
            with_mask=False,
        )
        for (n, j), look in zip(who, looks, strict=True):
            bodies[n][j] = look
        return bodies

    def predict(self, image: np.ndarray, box: Box | None = None) -> BlazePoseResult:
        return self.predict_many([image], [box])[0]

    def predict_many(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Box | None] | None = None,
        *,
        with_mask: bool | None = None,
        pose_only: Sequence[bool] | None = None,
    ) -> list[BlazePoseResult]:
        """The most confident person of each photo (or of each given box): 18 keypoints, scores,
        person score, box, mask and face outline in photo pixels. A few batched network calls
        in all (detector, landmarks, the face model's looks). with_mask: None: `masks`.
        pose_only: per photo, whether only its pose is wanted: no mask and no face outline,
        which only a parser reads (the same keypoints)."""
        with_mask = self.masks if with_mask is None else with_mask
        pose_only = list(pose_only) if pose_only is not None else [False] * len(images)
        if len(pose_only) != len(images):
            raise ValueError(f"{len(images)} images but {len(pose_only)} pose_only flags")
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        images = _each_brightened(images, self.dim_level)
        detections = self.detect(images, boxes)
        # A caller's box says where the person is: people whose face lies beside it are
        # neighbours the detector's square around the box also saw (and not among the
        # others a caller is told about).
        for n, box in enumerate(boxes):
            detections[n] = [p for p in detections[n] if box is None or _face_inside(p, box)]
        detections = self._seen_whole(images, boxes, detections)
        bodies = self._bodies(images, detections, boxes)
        todo, rois, picked, others, looked = [], [], [], [], []
        for n, (people, box) in enumerate(zip(detections, boxes, strict=True)):
            shape = images[n].shape[:2]
            outlines = [
                None
                if b is None
                else landmark_box(b, shape, self.visibility_threshold, self.back_view_depth)
                for b in bodies[n]
            ]
            chosen = None
            if people:
                chosen = self.choose(people, box, outlines)
                todo.append(n)
                rois.append(self.roi_from_detection(people[chosen]))
                picked.append(people[chosen])
                looked.append(bodies[n][chosen])
            elif box is not None and self.box_fallback:
                todo.append(n)
                rois.append(self.roi_from_box(box))
                picked.append(None)
                looked.append(None)
            others.append(
                [
                    outline or self.person_box(d, shape)
                    for j, (d, outline) in enumerate(zip(people, outlines, strict=True))
                    if j != chosen
                ]
            )
        masked = [with_mask and not pose_only[n] for n in todo]
        # The chosen one's look from the comparison serves where no mask is wanted.
        fresh = [k for k, body in enumerate(looked) if masked[k] or body is None]
        found = list(looked)
        firsts = self.landmarks(
            [images[todo[k]] for k in fresh],
            [rois[k] for k in fresh],
            with_mask=[masked[k] for k in fresh],
        )
        for k, pose in zip(fresh, firsts, strict=True):
            found[k] = pose
        # A caller's box says a person is there: where the detector's ROI shows the landmark
        # model nobody (a person cut by the photo's edge), look at the box itself.
        again = [
            k
            for k, (n, pose, det) in enumerate(zip(todo, found, picked, strict=True))
            if pose is None and det is not None and boxes[n] is not None and self.box_fallback
        ]
        if again:
            retry = self.landmarks(
                [images[todo[k]] for k in again],
                [self.roi_from_box(boxes[todo[k]]) for k in again],
                with_mask=[masked[k] for k in again],
            )
            for k, pose in zip(again, retry, strict=True):
                found[k] = pose
        for _ in range(self.looks - 1):  # a closer look from the landmarks' own ROI
            seen = [k for k, pose in enumerate(found) if pose is not None]
            closer = self.landmarks(
                [images[todo[k]] for k in seen],
                [self.roi_from_landmarks(found[k]) for k in seen],
                with_mask=False,
            )
            for k, pose in zip(seen, closer, strict=True):
                if pose is not None:  # a look that loses the person keeps the last
                    # The mask stays the detector's look's: its ROI frames the whole person,
                    # and the parse of the real CIHP people drops 0.424 -> 0.414 with the
                    # later look's mask (0.411 with both together: neighbours come in).
                    pose.mask = found[k].mask
                    found[k] = pose
        return self._results(images, todo, found, picked, others, boxes, with_mask, pose_only)

    def follow_many(
        self,
        images: Sequence[np.ndarray],
        found_before: Sequence[BlazePoseResult],
        to_images: Sequence[np.ndarray],
        *,
        pose_only: Sequence[bool] | None = None,
    ) -> list[BlazePoseResult]:
        """The person `found_before` (in another frame: a whole photo; `to_images`, a [2, 3]
        similarity from it to each image) looked at again, with no detector: the previous
        landmarks give the ROI (`roi_from_landmarks`, how mediapipe follows a person from
        one video frame to the next), `looks` - 1 times; the person mask comes from the
        previous look's own ROI, as `predict_many`'s comes from the detector's, which
        frames the whole person. The pipeline's closer look on its crop, for the landmark
        passes alone. pose_only: as `predict_many`'s."""
        n = len(images)
        if len(found_before) != n or len(to_images) != n:
            raise ValueError(f"{n} images, {len(found_before)} results, {len(to_images)} maps")
        if any(r.landmarks is None for r in found_before):
            raise ValueError("follow_many needs results with landmarks (a person found)")
        pose_only = list(pose_only) if pose_only is not None else [False] * n
        if len(pose_only) != n:
            raise ValueError(f"{n} images but {len(pose_only)} pose_only flags")
        previous = [
            r.landmarks.transformed(m) for r, m in zip(found_before, to_images, strict=True)
        ]
        images = _each_brightened(images, self.dim_level)
        todo = list(range(len(images)))
        masked = [k for k in todo if self.masks and not pose_only[k]]
        found: list[PoseLandmarks | None] = list(previous)
        closer_looks = self.looks - 1
        for look in range(max(closer_looks, 1 if masked else 0)):
            following = [k for k in todo if look < closer_looks and not previous[k].headless]
            framing = masked if look == 0 else []  # one batch with the first closer look
            passes = self.landmarks(
                [images[k] for k in following + framing],
                [self.roi_from_landmarks(found[k]) for k in following]
                + [previous[k].roi for k in framing],
                with_mask=[False] * len(following) + [True] * len(framing),
                min_person_score=0.0,
            )
            sure = [pose.person_score >= self.min_person_score for pose in passes]
            for k, pose, ok in zip(
                following, passes[: len(following)], sure[: len(following)], strict=True
            ):
                if ok:  # a look that loses the person keeps the last
                    pose.mask = found[k].mask
                    found[k] = pose
            for k, framed, ok in zip(
                framing, passes[len(following) :], sure[len(following) :], strict=True
            ):
                # a headless person's crop shows a flat letterbox band where the head would
                # be, and the person flag there falls: the mask is taken all the same
                found[k].mask = framed.mask if ok or previous[k].headless else None
        picked = [None] * len(todo)
        others: list[list[Box]] = [[] for _ in todo]
        return self._results(
            images, todo, found, picked, others, [None] * len(todo), self.masks, pose_only
        )

    def _results(
        self,
        images: Sequence[np.ndarray],
        todo: list[int],
        found: list[PoseLandmarks | None],
        picked: list[Detection | None],
        others: list[list[Box]],
        boxes: Sequence[Box | None],
        with_mask: bool,
        pose_only: Sequence[bool],
    ) -> list[BlazePoseResult]:
        """One result per image from the landmarks `found` for the images `todo` (the
        detections `picked` for them), with the face model's outlines."""
        faces: list[Face | None] = [None] * len(found)
        outlined = [k for k, n in enumerate(todo) if not pose_only[n] and found[k] is not None]
        if self.face is not None and outlined:
            looks = self.face.predict_many(
                [images[todo[k]] for k in outlined], [found[k].points for k in outlined]
            )
            for k, face in zip(outlined, looks, strict=True):
                faces[k] = face
        results = []
        by_image = dict(zip(todo, zip(found, picked, faces, strict=True), strict=True))
        for n, image in enumerate(images):
            h, w = image.shape[:2]
            pose, det, face = by_image.get(n, (None, None, None))
            mask = None
            if with_mask and not pose_only[n]:  # a person without a mask: an empty one
                mask = getattr(pose, "mask", None)
                mask = np.zeros((h, w), np.float32) if mask is None else mask
            if pose is None:
                results.append(
                    BlazePoseResult(
                        keypoints=np.full((NUM_KEYPOINTS, 2), MISSING, np.float32),
                        scores=np.zeros(NUM_KEYPOINTS, np.float32),
                        person_score=0.0,
                        box=det.box if det is not None else None,
                        detection_score=det.score if det is not None else 0.0,
                        mask=mask,
                        landmarks=None,
                        image_size=(h, w),
                        others=others[n],
                    )
                )
                continue
            kp, scores = to_openpose18(
                pose.points,
                pose.visibility,
                (h, w),
                self.visibility_threshold,
                self.back_view_depth,
            )
            results.append(
                BlazePoseResult(
                    keypoints=kp,
                    scores=scores,
                    person_score=pose.person_score,
                    box=det.box if det is not None else boxes[n],
                    detection_score=det.score if det is not None else 0.0,
                    mask=mask,
                    landmarks=pose,
                    image_size=(h, w),
                    face=face,
                    others=others[n],
                )
            )
        return results


register_backend(
    Backend(
        name="blazepose",
        module_class="BlazePoseNets",
        build=BlazePoseNets.from_config,
        estimator=lambda nets, device: BlazePose.from_nets(nets, device),
        builtin=BlazePoseNets,
        builtin_source=(
            "built-in BlazePose (mediapipe 0.10.14 pose_detection + pose_landmark_full, "
            "with face_landmark; Apache-2.0; keypoints/mediapipe_weights)"
        ),
    )
)
