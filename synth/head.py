"""A head as a sphere with a face: five face keypoints, yaw, roll, fitted to real rows.

The head frame: centre `c` at ear level, radius `R`, yaw `psi` (0 = face to the camera,
positive = face turned towards the image's right, pi = facing away), roll `rho` (image-plane
rotation, positive = clockwise on screen). Face points sit on the sphere at fixed azimuths
and elevations, calibrated on the real DeepFashion rows (eyes ~0.45 rad from the midline
and ~0.28 rad above the ears, nose slightly below ear level and protruding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.raster import Box, Canvas, EllipseField, coverage, ellipse_box, ellipse_field

# (azimuth from the face midline towards image-right when facing the camera, elevation,
# radius) of nose, r-eye, l-eye, r-ear, l-ear. The person's right eye is on the image's
# left when they face the camera, hence its negative azimuth.
FACE_POINTS = np.array(
    [
        (0.0, -0.05, 1.15),
        (-0.45, 0.28, 1.0),
        (0.45, 0.28, 1.0),
        (-0.95 * np.pi / 2, 0.0, 1.0),
        (0.95 * np.pi / 2, 0.0, 1.0),
    ],
    dtype=np.float64,
)
FACE_KEYPOINTS = (0, 14, 15, 16, 17)  # our skeleton indices of the rows above
# A face point counts as seen when its surface normal faces the camera by this much
# (ears are thin and stick out, so they stay visible a little past the silhouette).
VISIBLE_Z = np.array([0.25, 0.2, 0.2, -0.1, -0.1])

HEAD_RADIUS_PER_TORSO = 0.155  # median head radius / torso length on the real rows


@dataclass
class HeadPose:
    cx: float
    cy: float
    radius: float
    yaw: float
    roll: float

    def flipped(self, width: int) -> HeadPose:
        return HeadPose(width - 1 - self.cx, self.cy, self.radius, -self.yaw, -self.roll)

    def as_array(self) -> np.ndarray:
        return np.array([self.cx, self.cy, self.radius, self.yaw, self.roll], dtype=np.float64)

    def up(self) -> np.ndarray:
        """Unit vector from chin to crown in image coordinates (y down)."""
        return np.array([np.sin(self.roll), -np.cos(self.roll)])

    def right(self) -> np.ndarray:
        """Unit vector towards the image's right in the head's (rolled) frame."""
        return np.array([np.cos(self.roll), np.sin(self.roll)])


def model_points(yaw: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face points in the unrolled head frame for each yaw: (xy [..., 5, 2] with y up,
    depth towards the camera [..., 5])."""
    yaw = np.asarray(yaw, dtype=np.float64)[..., None]
    azimuth = FACE_POINTS[:, 0] + yaw
    elevation, radius = FACE_POINTS[:, 1], FACE_POINTS[:, 2]
    x = radius * np.cos(elevation) * np.sin(azimuth)
    y = radius * np.sin(elevation) * np.ones_like(azimuth)
    z = radius * np.cos(elevation) * np.cos(azimuth)
    return np.stack([x, y], axis=-1), z / radius


def face_keypoints(head: HeadPose) -> tuple[np.ndarray, np.ndarray]:
    """Image positions [5, 2] of nose, r-eye, l-eye, r-ear, l-ear and whether each one
    faces the camera [5]."""
    xy, z = model_points(head.yaw)
    right, up = head.right(), head.up()
    pts = np.array([head.cx, head.cy]) + head.radius * (xy[:, :1] * right + xy[:, 1:] * up)
    return pts, z > VISIBLE_Z


def fit_head(
    face: np.ndarray, present: np.ndarray, neck: np.ndarray, up: np.ndarray, torso_length: float
) -> HeadPose:
    """Fit a HeadPose to the present face points of a real row.

    `face` [5, 2] in FACE_KEYPOINTS order, `present` [5] bool, `neck` the neck point, `up`
    the body's unit up vector. A grid over yaw and roll, with centre and radius solved by
    least squares under weak priors (the head sits above the neck at the usual size), so
    rows with one or two face points still get a plausible head. Points that are present
    but would face away, or absent but would face the camera squarely, are penalised.
    """
    r_prior = HEAD_RADIUS_PER_TORSO * torso_length
    roll_prior = float(np.arctan2(up[0], -up[1]))
    c_prior = neck + up * 1.45 * r_prior
    yaws = np.linspace(-np.pi, np.pi, 72, endpoint=False)
    rolls = roll_prior + np.deg2rad(np.arange(-30, 31, 5))
    xy, z = model_points(yaws)  # [Y, 5, 2], [Y, 5]
    right = np.stack([np.cos(rolls), np.sin(rolls)], -1)[:, None, None, :]  # [R, 1, 1, 2]
    upv = np.stack([np.sin(rolls), -np.cos(rolls)], -1)[:, None, None, :]
    direction = xy[None, ..., :1] * right + xy[None, ..., 1:] * upv  # [R, Y, 5, 2]
    idx = np.flatnonzero(present)
    n_rolls, n_yaws = len(rolls), len(yaws)
    # Unknowns (cx, cy, R) with point_k = c + R * direction_k, plus weak priors on c and R.
    w_c, w_r = 0.3, 0.5
    a_rows = np.zeros((n_rolls, n_yaws, 2 * len(idx) + 3, 3))
    b_rows = np.zeros(2 * len(idx) + 3)
    for j, k in enumerate(idx):
        a_rows[:, :, 2 * j, 0] = 1.0
        a_rows[:, :, 2 * j + 1, 1] = 1.0
        a_rows[:, :, 2 * j, 2] = direction[:, :, k, 0]
        a_rows[:, :, 2 * j + 1, 2] = direction[:, :, k, 1]
        b_rows[2 * j : 2 * j + 2] = face[k]
    a_rows[:, :, -3, 0] = a_rows[:, :, -2, 1] = w_c
    a_rows[:, :, -1, 2] = w_r
    b_rows[-3:] = (w_c * c_prior[0], w_c * c_prior[1], w_r * r_prior)
    ata = np.einsum("ryki,rykj->ryij", a_rows, a_rows)
    atb = np.einsum("ryki,k->ryi", a_rows, b_rows)
    sol = np.linalg.solve(ata, atb[..., None])[..., 0]  # [R, Y, 3]
    residual = ((np.einsum("ryki,ryi->ryk", a_rows, sol) - b_rows) ** 2).sum(-1)
    radius = sol[..., 2]
    seen = z > VISIBLE_Z  # [Y, 5]
    penalty = 2.0 * (present & ~seen).sum(-1) + 0.6 * (~present & (z > 0.6)).sum(-1)  # [Y]
    score = (
        residual / np.maximum(radius, 1e-6) ** 2
        + penalty[None, :]
        + 0.5 * ((rolls - roll_prior) ** 2)[:, None]
    )
    score = np.where(radius > 0.3 * r_prior, score, np.inf)
    ri, yi = np.unravel_index(int(np.argmin(score)), score.shape)
    cx, cy, rad = sol[ri, yi]
    return HeadPose(float(cx), float(cy), float(rad), float(yaws[yi]), float(rolls[ri]))


def head_azimuth(xn: np.ndarray, yn: np.ndarray, yaw: float) -> np.ndarray:
    """Azimuth from the face midline towards the person's right, in (-pi, pi], of the
    visible surface point at normalised head-frame coordinates (xn right, yn up)."""
    ring = np.sqrt(np.clip(1.0 - yn * yn, 1e-3, 1.0))
    phi = np.arcsin(np.clip(xn / ring, -1.0, 1.0))  # from the camera, towards image-right
    return np.mod(yaw - phi + np.pi, 2 * np.pi) - np.pi


def surface_point(
    head: HeadPose, azimuth: float, elevation: float, radius: float = 1.0
) -> tuple[np.ndarray, float]:
    """Image position of a point on the head sphere (azimuth towards image-right when
    facing the camera, elevation up) and how squarely it faces the camera (-1..1)."""
    a = head.yaw + azimuth
    x = radius * np.cos(elevation) * np.sin(a)
    y = radius * np.sin(elevation)
    point = np.array([head.cx, head.cy]) + head.radius * (x * head.right() + y * head.up())
    return point, float(np.cos(elevation) * np.cos(a))


# Hair standing off the skull, as (width, height) of the outer ellipse over the skull's,
# and the hairline's height on the skull (in its normalised frame) at the face midline.
HAIR_VOLUME = {
    "long": (1.1, 1.07),
    "short": (1.06, 1.05),
    "bun": (1.05, 1.04),
    "bob": (1.2, 1.08),
    "bald": (1.0, 1.0),
}
HAIRLINE = {"bald": 1.5, "short": 0.42, "long": 0.36, "bun": 0.4, "bob": 0.3}
FACE_HALF_WIDTH = 1.25  # radians of azimuth either side of the midline


@dataclass
class HeadShape:
    """The skull and the hair around it, over a box: which pixels are face, which hair."""

    box: Box
    skull: EllipseField
    theta: np.ndarray  # azimuth from the face midline towards the person's right
    in_skull: np.ndarray
    is_face: np.ndarray
    is_hair: np.ndarray
    alpha: np.ndarray  # soft coverage of skull and hair together


def head_frame(head: HeadPose) -> tuple[np.ndarray, float, float]:
    """Skull ellipse: centre above ear level, half-width, half-height."""
    centre = np.array([head.cx, head.cy]) + head.up() * 0.3 * head.radius
    return centre, 1.0 * head.radius, 1.28 * head.radius


def head_shape(canvas: Canvas, head: HeadPose, hair_style: str) -> HeadShape | None:
    centre, aw, ah = head_frame(head)
    wide, tall = HAIR_VOLUME[hair_style]
    box = ellipse_box(canvas, centre, max(aw * wide, ah * tall) * 1.2 + 2)
    if box is None:
        return None
    right, up = head.right(), head.up()
    skull = ellipse_field(box, centre, right, up, aw, ah)
    outer = ellipse_field(box, centre + up * 0.04 * ah, right, up, aw * wide, ah * tall)
    lowest = -0.55 if hair_style == "bob" else -0.1  # a bob reaches down to the jaw
    in_skull = skull.rho <= 1.0
    hair_volume = (outer.rho <= 1.0) & ~in_skull & (outer.yn > lowest)
    theta = head_azimuth(skull.xn, skull.yn, head.yaw)
    hairline = HAIRLINE[hair_style] - 0.45 * (theta / FACE_HALF_WIDTH) ** 2
    face_zone = (np.abs(theta) < FACE_HALF_WIDTH) & (skull.yn < hairline)
    is_face = in_skull & (face_zone | (hair_style == "bald"))
    alpha = coverage(np.maximum(skull.excess, np.where(outer.yn > lowest, outer.excess, -1.0)))
    return HeadShape(
        box, skull, theta, in_skull, is_face, (in_skull | hair_volume) & ~is_face, alpha
    )


def skull_normal(skull: EllipseField, head: HeadPose) -> np.ndarray:
    """Image-plane normal [h, w, 2] of the skull ellipsoid (for lighting)."""
    scale = np.minimum(1.0, 1.0 / np.maximum(skull.rho, 1e-6))[..., None]
    right, up = head.right().astype(np.float32), head.up().astype(np.float32)
    return (skull.xn[..., None] * right + skull.yn[..., None] * up) * scale
