"""The face's outline from mediapipe's face landmark model (Face Mesh, 468 points), in torch.

Why a face model beside the pose model: the parser learnt faces and hair on SynthFashion, and
on real people it paints hair over a quarter of the face (and a face on the back of a head).
Face Mesh learnt on real faces; where it finds a face, its outline (the 36-point face oval)
says which pixels are face for certain, and where it finds none (a back view) nothing is
claimed. The network comes from the mediapipe 0.10.14 wheel (Apache-2.0,
`mediapipe/modules/face_landmark/face_landmark.tflite`), converted by
scripts/convert_mediapipe.py and run by `keypoints.tflite_graph`.

How it is run follows mediapipe's public graphs (modules/face_landmark/face_landmark_cpu.pbtxt
and face_landmark_landmarks_to_roi.pbtxt), with one change: the first region of interest
comes from BlazePose's face landmarks (nose, eyes, ears, mouth) instead of a face detector,
as mediapipe's Holistic does, because the pose model has already found the person:

1. ROI: the box of the given face points, turned so the right-eye -> left-eye vector is
   horizontal, its long side x `pose_roi_scale`, square.
2. The rotated square resampled to 192x192 (edge pixels replicated, values in [0, 1]); the
   model gives 468 points (x, y, z in input pixels) and a face flag (sigmoid < 0.5: no face).
3. The points' own box (turned by the eye-corner line, points 33 -> 263), x 1.5, square: a
   second look from there, as mediapipe's tracking does on the next frame of a video.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from common.geometry import warp
from keypoints.roi import Roi, rotation_of
from keypoints.tflite_graph import GraphError, TfliteGraph

FACE_SIZE = 192  # the model's square input
NUM_FACE_LANDMARKS = 468
FACE_OUTPUTS = ("conv2d_21", "conv2d_31")  # 468 x (x, y, z), face flag logit
# The face oval of the Face Mesh topology (mediapipe's FACEMESH_FACE_OVAL), as one ring
# starting at the top of the forehead, going over the person's right side to the chin.
FACE_OVAL: tuple[int, ...] = (
    10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148,
    152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338,
)  # fmt: skip
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # the rotation vector of the landmarks' ROI
# BlazePose's 33-point topology: the face points and the two eyes that give the rotation.
POSE_FACE_POINTS = tuple(range(11))  # nose, eyes (inner, centre, outer), ears, mouth
POSE_RIGHT_EYE, POSE_LEFT_EYE = 5, 2


@dataclass
class Face:
    """One face found: its 468 points in photo pixels and the model's face flag."""

    points: np.ndarray  # [468, 2] x, y in photo pixels
    score: float  # the face flag, 0..1
    roi: Roi

    def oval(self) -> np.ndarray:
        """[36, 2] the face's outline, photo pixels, in ring order."""
        return self.points[list(FACE_OVAL)]

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """float32 [H, W]: 1 inside the face oval, 0 outside (sub-pixel polygon edges)."""
        out = np.zeros(shape, np.uint8)
        cv2.fillPoly(out, [np.round(self.oval() * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        return out.astype(np.float32)


def roi_around(points: np.ndarray, start: np.ndarray, end: np.ndarray, scale: float) -> Roi:
    """mediapipe's DetectionsToRects + RectTransformation (square_long): the box of `points`
    in the frame turned so start -> end is horizontal, centred on the box, side = the box's
    long side x scale."""
    rotation = rotation_of(start, end, 0.0)
    c, s = math.cos(rotation), math.sin(rotation)
    # Points in the turned frame (x along the eye line), their box, its centre back.
    turned = points @ np.array([[c, -s], [s, c]])
    lo, hi = turned.min(0), turned.max(0)
    centre_turned = (lo + hi) / 2
    centre = centre_turned @ np.array([[c, s], [-s, c]])
    side = float(max(hi - lo)) * scale
    return Roi((float(centre[0]), float(centre[1])), side, rotation)


class FaceLandmarks:
    """Face Mesh on torch, batched over faces: where a person's face is, its outline."""

    def __init__(
        self,
        graph: TfliteGraph,
        *,
        device: str | torch.device = "cpu",
        min_face_score: float = 0.5,
        pose_roi_scale: float = 2.0,
        landmark_roi_scale: float = 1.5,
        looks: int = 2,
        min_face_size: float = 8.0,
    ) -> None:
        """min_face_score: mediapipe's min_tracking_confidence, below it there is no face.
        pose_roi_scale: the first ROI's side over the long side of the pose's face points
        (ear to ear on a frontal face; 2 covers forehead and chin). landmark_roi_scale:
        mediapipe's for the ROI from the face's own points. looks: 1 = from the pose only,
        2 = once more from the first look's points. min_face_size: faces whose pose points
        span fewer photo pixels are not looked at (nothing to outline)."""
        have = {name for _, name in graph.outputs}
        if not set(FACE_OUTPUTS) <= have:
            raise GraphError(f"{graph.name}: outputs {sorted(have)}, expected {FACE_OUTPUTS}")
        if looks < 1:
            raise ValueError(f"looks must be at least 1, got {looks}")
        self.device = torch.device(device)
        # channels_last: Face Mesh's convolutions run 1.5x faster so on a CPU (192x192,
        # batch 1 and 2; the pose graphs gain nothing and stay as they are)
        self.graph = graph.to(self.device).eval().to(memory_format=torch.channels_last)
        self.min_face_score = min_face_score
        self.pose_roi_scale = pose_roi_scale
        self.landmark_roi_scale = landmark_roi_scale
        self.looks = looks
        self.min_face_size = min_face_size

    def roi_from_pose(self, landmarks: np.ndarray) -> Roi | None:
        """The first look's ROI from BlazePose's 33 landmarks [33, >=2] (photo pixels)."""
        pts = np.asarray(landmarks, np.float64)[list(POSE_FACE_POINTS), :2]
        if np.ptp(pts, axis=0).max() < self.min_face_size:
            return None
        right, left = pts[POSE_RIGHT_EYE], pts[POSE_LEFT_EYE]
        return roi_around(pts, right, left, self.pose_roi_scale)

    def roi_from_face(self, points: np.ndarray) -> Roi:
        """The next look's ROI from a face's own 468 points (photo pixels)."""
        pts = np.asarray(points, np.float64)
        return roi_around(pts, pts[RIGHT_EYE_OUTER], pts[LEFT_EYE_OUTER], self.landmark_roi_scale)

    @torch.no_grad()
    def look(self, images: Sequence[np.ndarray], rois: Sequence[Roi]) -> list[Face | None]:
        """The model once on each (photo, ROI), one batch; None where the flag says no face."""
        if not rois:
            return []
        crops = [
            warp(image, roi.matrix(FACE_SIZE), (FACE_SIZE, FACE_SIZE), replicate=True)
            for image, roi in zip(images, rois, strict=True)
        ]
        x = torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0).to(self.device)
        out = self.graph(x)
        raw = out[FACE_OUTPUTS[0]].float().cpu().numpy().reshape(len(crops), -1, 3)
        flags = torch.sigmoid(out[FACE_OUTPUTS[1]].float()).cpu().numpy().reshape(-1)
        faces: list[Face | None] = []
        for n, roi in enumerate(rois):
            if flags[n] < self.min_face_score:
                faces.append(None)
                continue
            points = roi.to_photo(raw[n, :, :2] / FACE_SIZE).astype(np.float32)
            faces.append(Face(points, float(flags[n]), roi))
        return faces

    def predict_many(
        self, images: Sequence[np.ndarray], pose_landmarks: Sequence[np.ndarray | None]
    ) -> list[Face | None]:
        """Each photo's face, from its person's BlazePose landmarks (None: no person)."""
        faces: list[Face | None] = [None] * len(images)
        todo, rois = [], []
        for n, landmarks in enumerate(pose_landmarks):
            roi = None if landmarks is None else self.roi_from_pose(landmarks)
            if roi is not None:
                todo.append(n)
                rois.append(roi)
        for look in range(self.looks):
            found = self.look([images[n] for n in todo], rois)
            if look > 0:  # a later look that loses the face keeps the earlier one
                found = [f or faces[n] for n, f in zip(todo, found, strict=True)]
            for n, face in zip(todo, found, strict=True):
                faces[n] = face
            kept = [
                (n, self.roi_from_face(f.points)) for n, f in zip(todo, found, strict=True) if f
            ]
            todo, rois = [n for n, _ in kept], [r for _, r in kept]
        return faces


def load_face_landmarks(
    folder: str | Path, device: str | torch.device = "cpu", **kwargs
) -> FaceLandmarks:
    """Face Mesh from face.{json,safetensors} in `folder` (scripts/convert_mediapipe.py)."""
    folder = Path(folder)
    graph = TfliteGraph.from_files(folder / "face.json", folder / "face.safetensors")
    return FaceLandmarks(graph, device=device, **kwargs)
