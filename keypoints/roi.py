"""mediapipe's rotated regions of interest, shared by BlazePose and Face Mesh.

Both models look at a rotated square of the photo resampled to their input size, and give
points in that square; mediapipe places the square, crops it (ImageToTensorCalculator,
corners onto corners) and projects the points back (LandmarkProjectionCalculator) the same
way for every model. Coordinates are photo pixels; rotation is clockwise in the image (y
down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def rect_matrix(
    center: tuple[float, float],
    size: tuple[float, float],
    rotation: float,
    out_size: tuple[int, int],
) -> np.ndarray:
    """Affine [2, 3] taking a rotated rectangle of the photo onto an out_size (W, H) image,
    corners onto corners, as mediapipe's ImageToTensorCalculator (OpenCV path) does."""
    c, s = math.cos(rotation), math.sin(rotation)
    sx, sy = out_size[0] / size[0], out_size[1] / size[1]
    a = np.array([[sx * c, sx * s], [-sy * s, sy * c]])  # scale @ R(rotation)^T
    t = np.array([out_size[0] / 2, out_size[1] / 2]) - a @ np.asarray(center, np.float64)
    return np.concatenate([a, t[:, None]], axis=1)


def rotation_of(start, end, target: float) -> float:
    """mediapipe's ComputeRotation: the turn that brings start -> end to `target` radians
    (counter-clockwise from the x axis, y up), normalised to [-pi, pi)."""
    rotation = target - math.atan2(-(end[1] - start[1]), end[0] - start[0])
    return rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))


@dataclass
class Roi:
    """The rotated square a model looks at, in photo pixels."""

    center: tuple[float, float]
    size: float  # side length
    rotation: float  # radians, clockwise in the image (y down)

    def matrix(self, out_size: int) -> np.ndarray:
        """Affine [2, 3]: photo pixels -> crop pixels (mediapipe's corner-to-corner mapping)."""
        return rect_matrix(self.center, (self.size, self.size), self.rotation, (out_size,) * 2)

    def transformed(self, matrix: np.ndarray) -> Roi:
        """This ROI in another frame, under a [2, 3] similarity from this one's pixels (a
        uniform scale, a turn, a shift)."""
        m = np.asarray(matrix, np.float64)
        scale = math.sqrt(abs(np.linalg.det(m[:, :2])))
        centre = m[:, :2] @ np.asarray(self.center, np.float64) + m[:, 2]
        turn = math.atan2(m[1, 0], m[0, 0])
        return Roi((float(centre[0]), float(centre[1])), self.size * scale, self.rotation + turn)

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """[N, 2] points normalised to the crop (0..1) -> photo pixels, float64."""
        local = (np.asarray(points, np.float64) - 0.5) * self.size
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        return np.stack(
            [
                self.center[0] + c * local[:, 0] - s * local[:, 1],
                self.center[1] + s * local[:, 0] + c * local[:, 1],
            ],
            1,
        )
