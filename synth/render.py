"""Rendering one synthetic person with exact ground truth.

The figure is built from the 18 keypoints and the head pose: a torso in a frame along the
spine, tapered capsules for limbs, hands and feet, an ellipsoidal head with hair, ears and
a face. Garments are regions of these shapes (a sleeve is the upper arm up to the sleeve
end, drawn wider), painted with their texture at the garment's own surface coordinates.

Every shape knows its body-frame coordinates: `a` along the part from its proximal end
and `r` across it towards the person's right. DensePose U, V come from those through the
per-part axes of `parsing.densepose.UV_AXES`, so the same point of the body gets the same
(I, U, V) and the same colour in every pose.

Depth order: each segment's depth follows the body's yaw (near limbs in front, arms in
front of the torso when the person faces the camera and behind it from the back, long
hair behind the shoulders from the front and over the back from behind). Keypoint
visibility is read off the finished owner buffer: a joint is occluded when a segment that
does not meet at it covers its pixel; face points also need to face the camera.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from parsing.densepose import UV_AXES
from parsing.labels import ADGAN_INDEX
from synth.config import SynthConfig
from synth.head import (
    FACE_KEYPOINTS,
    HeadPose,
    face_keypoints,
    head_frame,
    head_shape,
    skull_normal,
    surface_point,
)
from synth.identity import LONG_UPPERS, Garment, Identity
from synth.posebank import PoseSample
from synth.raster import (
    Canvas,
    across_normal,
    capsule,
    coverage,
    ellipse_box,
    ellipse_field,
    segment_field,
)
from synth.scene import apply_camera, background, cast_shadow, light
from synth.textures import Texture

PANTS, HAIR, SKIRT, FACE, UPPER, ARMS, LEGS = (
    ADGAN_INDEX[n] for n in ("pants", "hair", "skirt", "face", "upper_clothes", "arms", "legs")
)

SEGMENTS = (
    "torso",
    "neck",
    "head",
    "hair_curtain",
    "bun",
    "ear_r",
    "ear_l",
    "upper_arm_r",
    "lower_arm_r",
    "hand_r",
    "upper_arm_l",
    "lower_arm_l",
    "hand_l",
    "upper_leg_r",
    "lower_leg_r",
    "foot_r",
    "upper_leg_l",
    "lower_leg_l",
    "foot_l",
    "skirt",
)
OWNER = {name: i for i, name in enumerate(SEGMENTS, start=1)}

# Segments that may cover each keypoint without hiding it.
_KEYPOINT_OWNERS: dict[int, tuple[str, ...]] = {
    0: ("head",),
    14: ("head",),
    15: ("head",),
    16: ("head", "ear_r", "hair_curtain"),
    17: ("head", "ear_l", "hair_curtain"),
    1: ("neck", "torso", "head", "hair_curtain"),
    2: ("torso", "upper_arm_r", "neck", "hair_curtain"),
    3: ("upper_arm_r", "lower_arm_r"),
    4: ("lower_arm_r", "hand_r"),
    5: ("torso", "upper_arm_l", "neck", "hair_curtain"),
    6: ("upper_arm_l", "lower_arm_l"),
    7: ("lower_arm_l", "hand_l"),
    8: ("torso", "upper_leg_r", "skirt"),
    9: ("upper_leg_r", "lower_leg_r", "skirt"),
    10: ("lower_leg_r", "foot_r"),
    11: ("torso", "upper_leg_l", "skirt"),
    12: ("upper_leg_l", "lower_leg_l", "skirt"),
    13: ("lower_leg_l", "foot_l"),
}
# [18, segments + 1] lookup: may segment s cover keypoint k without hiding it?
KEYPOINT_OWNER_TABLE = np.zeros((18, len(SEGMENTS) + 1), dtype=bool)
for _k, _names in _KEYPOINT_OWNERS.items():
    KEYPOINT_OWNER_TABLE[_k, [OWNER[n] for n in _names]] = True

# DensePose parts per side: (front/inside, back/outside).
_PARTS = {
    "r": {
        "upper_arm": (16, 18),
        "lower_arm": (20, 22),
        "hand": (3, 3),
        "upper_leg": (9, 7),
        "lower_leg": (13, 11),
        "foot": (6, 6),
    },
    "l": {
        "upper_arm": (15, 17),
        "lower_arm": (19, 21),
        "hand": (4, 4),
        "upper_leg": (10, 8),
        "lower_leg": (14, 12),
        "foot": (5, 5),
    },
}
_JOINTS = {"r": (2, 3, 4, 8, 9, 10), "l": (5, 6, 7, 11, 12, 13)}


def chart_uv(part: int, a: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame (a along, r towards the person's right) -> DensePose (U, V) of a part."""

    def axis(name: str) -> np.ndarray:
        value = a if name[-1] == "a" else r
        return 1.0 - value if name.startswith("1-") else value

    u_axis, v_axis = UV_AXES[part]
    return axis(u_axis), axis(v_axis)


def head_uv(
    theta_right: np.ndarray,
    height: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azimuth from the face midline towards the person's right (radians) and height in
    [0, 1] (chin to crown) -> (I, U, V) on the head's two charts."""
    theta = np.mod(theta_right + np.pi, 2 * np.pi) - np.pi
    right = theta > 0
    part = np.where(right, 23, 24).astype(np.uint8)
    u = np.where(right, 1.0 - theta / np.pi, -theta / np.pi)
    return part, np.clip(u, 0, 1).astype(np.float32), np.clip(height, 0, 1).astype(np.float32)


_SKIRT_MAX_SPREAD = 3.0  # hem half-width over waist half-width, at most


@dataclass
class Covering:
    """A garment over part of a limb: from a_from to a_to along it, drawn `scale` wider."""

    label: int
    texture: Texture
    a_from: float
    a_to: float
    scale: float
    circumference: float  # garment units across the limb (front half), in L
    length: float  # garment units along the limb, in L
    offset: float


@dataclass
class RenderOutput:
    image: np.ndarray  # uint8 [H, W, 3], the photo
    labels: np.ndarray  # uint8 [H, W], ADGAN classes
    parts: np.ndarray  # uint8 [H, W], DensePose I
    u: np.ndarray  # float32 [H, W]
    v: np.ndarray
    keypoints: np.ndarray  # [18, 2] visible points, (-1, -1) otherwise
    keypoints_all: np.ndarray  # [18, 2] every point's position, even occluded or outside
    visibility: np.ndarray  # [18] COCO meaning: 0 outside the frame, 1 occluded, 2 visible
    person_rgb: np.ndarray  # float32 [H, W, 3], the person layer, premultiplied, no camera
    coverage: np.ndarray  # float32 [H, W]
    owner: np.ndarray  # int16 [H, W], index into SEGMENTS (+1), 0 = background
    jpeg_quality: int

    @property
    def person_mask(self) -> np.ndarray:
        return self.labels > 0


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 1e-6 else np.array([0.0, 1.0])


def _swept_box(canvas: Canvas, a: np.ndarray, b: np.ndarray, half_width: float):
    """Bounding box of a flat-ended band of `half_width` around segment a-b."""
    n = _unit(b - a)
    ex = abs(n[1]) * half_width + 2.0
    ey = abs(n[0]) * half_width + 2.0
    return canvas.box(
        min(a[0], b[0]) - ex, max(a[0], b[0]) + ex, min(a[1], b[1]) - ey, max(a[1], b[1]) + ey
    )


class PersonPainter:
    """Geometry of one identity in one pose, and the painters of its segments."""

    def __init__(self, identity: Identity, pose: PoseSample, cfg: SynthConfig) -> None:
        self.id = identity
        self.body = cfg.body
        kp = pose.keypoints.astype(np.float64)
        self.kp = kp
        mid_sho = (kp[2] + kp[5]) / 2
        mid_hip = (kp[8] + kp[11]) / 2
        self.mid_sho, self.mid_hip = mid_sho, mid_hip
        spine = mid_sho - mid_hip
        self.L = max(float(np.hypot(*spine)), 0.9 * float(np.hypot(*(kp[2] - kp[5]))), 4.0)
        self.up = _unit(spine) if np.hypot(*spine) > 1e-3 else np.array([0.0, -1.0])
        self.down = -self.up
        image_right = np.array([-self.up[1], self.up[0]])  # perpendicular to the spine
        spread = float(np.dot(kp[5] - kp[2], image_right))
        cos_yaw = float(np.clip(spread / (0.61 * self.L), -1.0, 1.0))
        sin_sign = 1.0 if math.sin(pose.head.yaw) >= 0 else -1.0
        self.cos_yaw = cos_yaw
        self.sin_yaw = sin_sign * math.sqrt(max(0.0, 1.0 - cos_yaw**2))
        self.facing = 1.0 if cos_yaw >= 0 else -1.0
        head = pose.head
        self.head = HeadPose(
            head.cx, head.cy, head.radius * identity.head_scale, head.yaw, head.roll
        )
        # Some real rows put a small head far above the neck point; a neck longer than
        # `max_neck_length` L pulls the head down (its face keypoints move with it).
        centre = np.array([self.head.cx, self.head.cy])
        to_head = centre - kp[1]
        distance = float(np.hypot(*to_head))
        gap = distance - 0.98 * self.head.radius
        limit = self.body.max_neck_length * self.L
        if gap > limit and distance > 1e-6:
            centre = centre - to_head / distance * (gap - limit)
            self.head.cx, self.head.cy = float(centre[0]), float(centre[1])
        # The identity's head size moves the face points: keep keypoints on the drawing.
        face_pts, self.face_seen = face_keypoints(self.head)
        self.kp[list(FACE_KEYPOINTS)] = face_pts
        self.skin = identity.skin
        self.w = identity.width

    # -- shared helpers -------------------------------------------------------------

    def _shade(self, perp: np.ndarray, strength: float = 1.0) -> np.ndarray:
        s = self.body.shading * strength
        return ((1.0 - s) + s * np.sqrt(np.clip(1.0 - perp * perp, 0.0, 1.0)))[..., None]

    def _r(self, perp: np.ndarray) -> np.ndarray:
        return (0.5 + 0.5 * perp * self.facing).astype(np.float32)

    # -- limbs ----------------------------------------------------------------------

    def limb(
        self,
        canvas: Canvas,
        name: str,
        a: np.ndarray,
        b: np.ndarray,
        ra: float,
        rb: float,
        parts: tuple[int, int],
        skin_label: int,
        coverings: tuple[Covering, ...] = (),
    ) -> None:
        cap = capsule(canvas, a, b, ra, rb, widest=max([1.0] + [c.scale for c in coverings]))
        if cap is None:
            return
        box, f = cap.box, cap.segment
        t = f.t
        scale = np.ones_like(t)
        which = np.full(t.shape, -1, np.int8)
        for k, c in enumerate(coverings):
            m = (t >= c.a_from) & (t < c.a_to)
            scale[m] = c.scale
            which[m] = k
        radius = cap.radius * scale
        excess = radius - f.dist
        alpha = coverage(excess)
        inside = excess >= 0
        perp = np.clip(f.side / radius, -1.0, 1.0)
        r = self._r(perp)
        shade = self._shade(perp)
        colour = np.broadcast_to(self.skin, (*t.shape, 3)) * shade
        label = np.full(t.shape, skin_label, np.uint8)
        seen = alpha > 0
        for k, c in enumerate(coverings):
            m = (which == k) & seen
            if not m.any():
                continue
            back = 0.0 if self.facing > 0 else c.circumference
            gx = r[m] * c.circumference + (back + c.offset)
            colour[m] = c.texture.sample(gx, t[m] * c.length + c.offset) * shade[m]
            label[m] = c.label
        part = parts[0] if self.facing > 0 else parts[1]
        u, v = chart_uv(part, t, r)
        canvas.paint(
            box,
            alpha,
            colour,
            inside,
            label=label,
            owner=OWNER[name],
            part=part,
            u=u,
            v=v,
            normal=across_normal(a, b, perp),
        )

    def _sleeves(self, side: str) -> tuple[tuple[Covering, ...], tuple[Covering, ...]]:
        up = self.id.upper
        if up.sleeve <= 0:
            return (), ()
        loose = 1.17 if up.sleeve < 1.0 else 1.1
        tex, w = up.sleeve_texture or up.texture, self.w
        upper_end = up.sleeve if up.sleeve < 1.0 else 2.0  # past 1: the whole upper arm
        upper = (Covering(UPPER, tex, -1.0, upper_end, loose, 0.34 * w, 0.6, 5.0),)
        lower = ()
        if up.sleeve > 1.0:
            lower = (Covering(UPPER, tex, -1.0, up.sleeve - 1.0, 1.1, 0.27 * w, 0.55, 7.0),)
        return upper, lower

    def _trouser_legs(self) -> tuple[tuple[Covering, ...], tuple[Covering, ...]]:
        low = self.id.lower
        if low is None or low.kind == "skirt":
            return (), ()
        tex, w = low.texture, self.w
        if low.kind == "shorts":
            return (Covering(PANTS, tex, -1.0, low.hem, 1.25, 0.52 * w, 0.85, 11.0),), ()
        upper = (Covering(PANTS, tex, -1.0, 2.0, 1.13, 0.52 * w, 0.85, 11.0),)
        lower = (
            Covering(PANTS, tex, -1.0, 2.0 * low.hem - 1.0, 1.12 + low.flare, 0.34 * w, 0.85, 13.0),
        )
        return upper, lower

    def _shoe(self) -> Covering:
        tex = Texture("solid", self.id.shoes[None, None, :], 1.0)
        return Covering(LEGS, tex, 0.9, 2.0, 1.15, 1.0, 1.0, 0.0)

    def arm(self, canvas: Canvas, side: str) -> None:
        sho, elb, wri = (self.kp[j] for j in _JOINTS[side][:3])
        b, w, parts = self.body, self.w * self.L, _PARTS[side]
        upper_cov, lower_cov = self._sleeves(side)
        self.limb(
            canvas,
            f"upper_arm_{side}",
            sho,
            elb,
            0.92 * b.upper_arm_radius * w,
            b.lower_arm_radius * w,
            parts["upper_arm"],
            ARMS,
            upper_cov,
        )
        self.limb(
            canvas,
            f"lower_arm_{side}",
            elb,
            wri,
            b.lower_arm_radius * w,
            b.wrist_radius * w,
            parts["lower_arm"],
            ARMS,
            lower_cov,
        )

    def hand(self, canvas: Canvas, side: str) -> None:
        _, elb, wri = (self.kp[j] for j in _JOINTS[side][:3])
        tip = wri + _unit(wri - elb) * self.body.hand_length * self.L
        r = self.body.wrist_radius * self.w * self.L
        self.limb(canvas, f"hand_{side}", wri, tip, 1.1 * r, 0.75 * r, _PARTS[side]["hand"], ARMS)

    def leg(self, canvas: Canvas, side: str, which: str) -> None:
        hip, knee, ank = (self.kp[j] for j in _JOINTS[side][3:])
        b, w, parts = self.body, self.w * self.L, _PARTS[side]
        upper_cov, lower_cov = self._trouser_legs()
        if which == "upper":
            self.limb(
                canvas,
                f"upper_leg_{side}",
                hip,
                knee,
                b.thigh_radius * w * self.id.hips,
                b.knee_radius * w,
                parts["upper_leg"],
                LEGS,
                upper_cov,
            )
        else:
            self.limb(
                canvas,
                f"lower_leg_{side}",
                knee,
                ank,
                0.95 * b.knee_radius * w,
                b.ankle_radius * w,
                parts["lower_leg"],
                LEGS,
                (*lower_cov, self._shoe()),
            )

    def foot(self, canvas: Canvas, side: str) -> None:
        ank = self.kp[_JOINTS[side][5]]
        sideways = abs(self.sin_yaw)
        # Feet point at the camera (foreshortened) from the front, sideways in profile.
        direction = _unit(
            self.down * (0.35 + 0.3 * abs(self.cos_yaw)) + np.array([self.sin_yaw * 0.95, 0.0])
        )
        length = self.body.foot_length * self.L * (0.35 + 0.65 * sideways)
        r = self.body.ankle_radius * self.w * self.L
        self.limb(
            canvas,
            f"foot_{side}",
            ank,
            ank + direction * length,
            r,
            0.8 * r,
            _PARTS[side]["foot"],
            LEGS,
            (Covering(LEGS, self._shoe().texture, -1.0, 2.0, 1.15, 1.0, 1.0, 0.0),),
        )

    # -- torso ----------------------------------------------------------------------

    def _torso_profile(self) -> dict[str, float]:
        b, L = self.body, self.L
        image_right = np.array([-self.up[1], self.up[0]])
        sho_spread = abs(float(np.dot(self.kp[5] - self.kp[2], image_right)))
        hip_spread = abs(float(np.dot(self.kp[11] - self.kp[8], image_right)))
        ws = (
            max(sho_spread / 2 + 0.7 * b.upper_arm_radius * self.w * L, b.torso_depth * L * self.w)
            * self.id.shoulders
        )
        wh = (
            max(
                hip_spread / 2 + 0.75 * b.thigh_radius * self.w * L,
                0.9 * b.torso_depth * L * self.w,
            )
            * self.id.hips
        )
        ratio = b.waist_ratio_women if self.id.gender == "WOMEN" else b.waist_ratio_men
        torso_len = float(np.hypot(*(self.mid_sho - self.mid_hip)))
        top_ext, bottom_ext = 0.15 * L, 0.12 * L
        total = torso_len + top_ext + bottom_ext
        a_sh = top_ext / total
        a_hip = (top_ext + torso_len) / total
        return {
            "ws": ws,
            "wh": wh,
            "ww": ratio * min(ws, wh),
            "a_sh": a_sh,
            "a_hip": a_hip,
            "a_waist": a_sh + 0.62 * (a_hip - a_sh),
            "top_ext": top_ext,
            "bottom_ext": bottom_ext,
            "total": total,
        }

    @staticmethod
    def _torso_width(t: np.ndarray, p: dict[str, float]) -> np.ndarray:
        """Half-width along the torso: rounded over the shoulders, in at the waist, out at
        the hips, narrowing at the crotch. Tabulated once, interpolated per pixel."""
        a_sh, a_w, a_hip = p["a_sh"], p["a_waist"], p["a_hip"]
        ws, ww, wh = p["ws"], p["ww"], p["wh"]
        knots_t = np.concatenate(
            [np.linspace(0.0, a_sh, 9), [a_w, a_hip], np.linspace(a_hip, 1.0, 6)[1:]]
        )
        top = ws * (0.36 + 0.64 * np.sqrt(np.linspace(0.0, 1.0, 9)))
        below = wh * (1.0 - 0.35 * np.linspace(0.0, 1.0, 6)[1:] ** 2)
        knots_w = np.concatenate([top, [ww, wh], below])
        return np.interp(t, knots_t, knots_w).astype(np.float32)

    def torso(self, canvas: Canvas) -> None:
        p = self._torso_profile()
        top = self.mid_sho + self.up * p["top_ext"]
        bottom = self.mid_hip - self.up * p["bottom_ext"]
        box = _swept_box(canvas, top, bottom, max(p["ws"], p["wh"]))
        if box is None:
            return
        f = segment_field(box, top, bottom)
        t = f.t_raw
        half = self._torso_width(np.clip(t, 0, 1), p)
        excess = np.minimum(half - np.abs(f.side), np.minimum(t * f.length, (1.0 - t) * f.length))
        alpha = coverage(excess)
        inside = excess >= 0
        tc = np.clip(t, 0.0, 1.0)
        perp = np.clip(f.side / np.maximum(half, 1e-3), -1.0, 1.0)
        r = self._r(perp)
        shade = self._shade(perp, 0.6)
        up, low = self.id.upper, self.id.lower
        a_sh, a_w, a_hip = p["a_sh"], p["a_waist"], p["a_hip"]
        waistband = a_w + 0.3 * (a_hip - a_w)
        if up.kind in LONG_UPPERS:
            upper_end = 2.0
        elif up.tucked:
            upper_end = waistband
        else:
            upper_end = a_hip * up.hem
        upper = tc < upper_end
        # The neck opening shows skin (torso skin merges into face, as CIHP's does). Its
        # depth is in L from the top of the torso; a V-neck goes deeper in the middle.
        nw = 0.34
        depth = up.neckline * self.L / p["total"] * (1.0 if self.facing > 0 else 0.35)
        if up.v_neck and self.facing > 0:
            opening = depth * 1.8 * np.clip(1.0 - np.abs(perp) / nw, 0.0, 1.0)
        else:
            opening = depth * np.sqrt(np.clip(1.0 - (perp / nw) ** 2, 0.0, 1.0))
        neck_skin = (tc < opening) & (np.abs(perp) < nw)
        shoulder_skin = (
            ((tc < a_sh + 0.08) & (np.abs(perp) > 0.58))
            if up.kind == "tank"
            else np.zeros_like(upper)
        )
        colour = np.broadcast_to(self.skin, (*t.shape, 3)) * shade
        label = np.full(t.shape, FACE, np.uint8)
        gx = r * 0.7 * self.id.shoulders + (0.0 if self.facing > 0 else 10.0)
        gy = tc * 1.25
        seen = alpha > 0
        cover_upper = upper & ~neck_skin & ~shoulder_skin
        m = cover_upper & seen
        top_colour = up.texture.sample(gx[m], gy[m])
        if up.decal is not None and self.facing > 0:
            top_colour = self._decal(up.decal, top_colour, r[m], tc[m], a_sh)
        colour[m] = top_colour * shade[m]
        label[cover_upper] = UPPER
        label[shoulder_skin & upper] = ARMS
        if low is not None:
            lower = (tc >= waistband) & ~cover_upper
            m = lower & seen
            colour[m] = low.texture.sample(gx[m] + 20.0, gy[m] + 20.0) * shade[m]
            label[lower] = SKIRT if low.kind == "skirt" else PANTS
        part = 2 if self.facing > 0 else 1
        u, v = chart_uv(part, tc, r)
        canvas.paint(
            box,
            alpha,
            colour,
            inside,
            label=label,
            owner=OWNER["torso"],
            part=part,
            u=u,
            v=v,
            normal=across_normal(top, bottom, perp, 0.7),
        )
        self._profile = p

    @staticmethod
    def _decal(
        decal: np.ndarray, colour: np.ndarray, r: np.ndarray, t: np.ndarray, a_sh: float
    ) -> np.ndarray:
        size = decal.shape[0]
        t0, t1 = a_sh + 0.1, a_sh + 0.36
        col = ((0.78 - r) / 0.56 * size).astype(np.int64)  # image left -> right on the front
        row = ((t - t0) / (t1 - t0) * size).astype(np.int64)
        m = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        rgba = np.zeros((*colour.shape[:-1], 4), np.float32)
        rgba[m] = decal[row[m], col[m]]
        a = rgba[..., 3:4]
        return colour * (1 - a) + rgba[..., :3] * a

    # -- skirt (and the part of a dress or coat below the waist) ------------------------

    def skirt(self, canvas: Canvas) -> None:
        """A skirt, then a dress's or coat's part below the waist over it."""
        up, low = self.id.upper, self.id.lower
        if low is not None and low.kind == "skirt":
            self._skirt_of(canvas, low, SKIRT)
        if up.kind in LONG_UPPERS:
            self._skirt_of(canvas, up, UPPER)

    def _skirt_of(self, canvas: Canvas, garment: Garment, label: int) -> None:
        p = getattr(self, "_profile", None) or self._torso_profile()
        top_pt = self.mid_sho + self.up * p["top_ext"]
        waist_t = p["a_waist"] + 0.3 * (p["a_hip"] - p["a_waist"])
        start = top_pt + self.down * waist_t * p["total"]
        mid_ankle = (self.kp[10] + self.kp[13]) / 2
        leg_len = float(np.hypot(*(mid_ankle - self.mid_hip)))
        axis = _unit(0.5 * _unit(mid_ankle - self.mid_hip) + 0.5 * self.down)
        hip_gap = float(np.dot(self.mid_hip - start, axis))
        length = max(hip_gap + garment.hem * leg_len, 0.2 * self.L)
        end = start + axis * length
        w_top = 1.04 * float(self._torso_width(np.array([waist_t]), p)[0])
        across = np.array([-axis[1], axis[0]])
        spread = 0.0
        for j, rad in (
            (9, self.body.knee_radius),
            (12, self.body.knee_radius),
            (10, self.body.ankle_radius),
            (13, self.body.ankle_radius),
        ):
            along = float(np.dot(self.kp[j] - start, axis))
            if along < length:
                spread = max(
                    spread,
                    abs(float(np.dot(self.kp[j] - start, across))) + 1.3 * rad * self.w * self.L,
                )
        # Legs spread wider than a skirt can stretch (a stride, a kick) leave its hem.
        w_bot = max(w_top * (1.0 + garment.flare), min(spread, _SKIRT_MAX_SPREAD * w_top))
        box = _swept_box(canvas, start, end, max(w_top, w_bot))
        if box is None:
            return
        f = segment_field(box, start, end)
        s = np.clip(f.t_raw, 0.0, 1.0)
        half = w_top + (w_bot - w_top) * s**0.7
        excess = np.minimum(
            half - np.abs(f.side), np.minimum(f.t_raw * f.length + 2.0, (1.0 - f.t_raw) * f.length)
        )
        alpha = coverage(excess)
        inside = excess >= 0
        perp = np.clip(f.side / np.maximum(half, 1e-3), -1.0, 1.0)
        r = self._r(perp)
        shade = self._shade(perp, 0.5)
        gx = r * 1.1 + (0.0 if self.facing > 0 else 10.0) + 30.0
        colour = garment.texture.sample(gx, s * length / self.L + 30.0) * shade
        # Where no body lies under the skirt, map it to the upper leg on that side.
        right_half = r > 0.5
        part = np.where(
            right_half,
            _PARTS["r"]["upper_leg"][0 if self.facing > 0 else 1],
            _PARTS["l"]["upper_leg"][0 if self.facing > 0 else 1],
        ).astype(np.uint8)
        leg_r = np.where(right_half, 2 * r - 1, 2 * r).astype(np.float32)
        u = np.zeros(s.shape, np.float32)
        v = np.zeros(s.shape, np.float32)
        a_leg = np.clip(s * 1.2, 0, 1).astype(np.float32)
        for pid in np.unique(part):
            m = part == pid
            uu, vv = chart_uv(int(pid), a_leg, leg_r)
            u[m], v[m] = uu[m], vv[m]
        ys, xs = box.slices
        bare = canvas.part[ys, xs] == 0
        canvas.paint(
            box,
            alpha,
            colour,
            inside,
            label=label,
            owner=OWNER["skirt"],
            part=part,
            u=u,
            v=v,
            iuv_mask=inside & bare,
            normal=across_normal(start, end, perp, 0.6),
        )

    # -- neck, head, hair ------------------------------------------------------------

    def neck(self, canvas: Canvas) -> None:
        h = self.head
        chin = np.array([h.cx, h.cy]) - h.up() * 0.7 * h.radius
        base = self.kp[1]
        r = self.body.neck_radius * self.w * self.L
        cap = capsule(canvas, chin, base, r, r)
        if cap is None:
            return
        box, f, perp = cap.box, cap.segment, cap.perp
        alpha = coverage(cap.excess)
        inside = cap.excess >= 0
        rr = self._r(perp)
        theta = (rr - 0.5) * np.pi * 0.9
        if self.facing < 0:
            theta = np.pi - theta
        part, u, v = head_uv(theta, 0.12 * (1.0 - f.t))
        colour = np.broadcast_to(self.skin * 0.93, (*f.t.shape, 3)) * self._shade(perp)
        canvas.paint(
            box,
            alpha,
            colour,
            inside,
            label=FACE,
            owner=OWNER["neck"],
            part=part,
            u=u,
            v=v,
            normal=across_normal(chin, base, perp),
        )

    def paint_head(self, canvas: Canvas) -> None:
        ident = self.id
        shape = head_shape(canvas, self.head, ident.hair_style)
        if shape is None:
            return
        box, skull, theta = shape.box, shape.skull, shape.theta
        is_face, is_hair, in_skull = shape.is_face, shape.is_hair, shape.in_skull
        shade = self._shade(np.clip(skull.rho, 0, 1), 0.7)
        strands = (0.9 + 0.1 * np.sin(theta * 23.0 + skull.yn * 3.0))[..., None]
        colour = np.where(
            is_hair[..., None], ident.hair_colour * strands * shade, self.skin * shade
        )
        colour = self._face_features(box, colour, is_face)
        label = np.where(is_hair, HAIR, FACE).astype(np.uint8)
        part, u, v = head_uv(theta, 0.12 + 0.88 * (skull.yn + 1.0) / 2.0)
        # Hair standing off the skull is not body surface: no DensePose there.
        part = np.where(in_skull, part, 0).astype(np.uint8)
        u, v = np.where(in_skull, u, 0.0), np.where(in_skull, v, 0.0)
        canvas.paint(
            box,
            shape.alpha,
            colour,
            is_face | is_hair,
            label=label,
            owner=OWNER["head"],
            part=part,
            u=u,
            v=v,
            normal=skull_normal(shape.skull, self.head),
        )

    def _face_features(self, box, colour: np.ndarray, is_face: np.ndarray) -> np.ndarray:
        """Eyes, brows, nose shadow and mouth where the face is visible."""
        h = self.head
        pts, seen = face_keypoints(h)
        right, up = h.right(), h.up()
        R = h.radius
        out = colour.copy()

        def blot(centre, half_w, half_h, tint, strength):
            nonlocal out
            if half_w < 0.15:
                return
            f = ellipse_field(box, centre, right, up, half_w, half_h)
            a = (coverage(f.excess * 2.0) * strength)[..., None] * is_face[..., None]
            out = out * (1 - a) + tint * a

        dark = np.array([0.1, 0.08, 0.08], np.float32)
        for k in (1, 2):  # eyes
            if seen[k]:
                foreshort = abs(math.cos(h.yaw + (-0.45 if k == 1 else 0.45)))
                blot(pts[k], 0.15 * R * foreshort, 0.09 * R, dark, 0.9)
                blot(
                    pts[k] + up * 0.22 * R,
                    0.19 * R * foreshort,
                    0.05 * R,
                    self.id.hair_colour * 0.7,
                    0.85,
                )
        cy = math.cos(h.yaw)
        if cy > 0.15:
            nose = pts[0]
            blot(nose + up * 0.02 * R, 0.07 * R, 0.05 * R, self.skin * 0.75, 0.6)
            mouth, _ = surface_point(h, 0.0, -0.5)
            lips = self.skin * np.array([0.82, 0.55, 0.55], np.float32)
            blot(mouth, 0.22 * R * cy, 0.065 * R, lips, 0.85)
        return out

    def ear(self, canvas: Canvas, side: str) -> None:
        if self.id.hair_style in ("long", "bob"):
            return
        h = self.head
        pts, _ = face_keypoints(h)
        k = 3 if side == "r" else 4
        azimuth = h.yaw + (-0.95 if side == "r" else 0.95) * np.pi / 2
        if math.cos(azimuth) < -0.15:
            return
        outward = math.copysign(1.0, math.sin(azimuth))
        centre = pts[k] + h.right() * outward * 0.08 * h.radius
        aw, ah = 0.17 * h.radius, 0.27 * h.radius
        box = ellipse_box(canvas, centre, ah + 2)
        if box is None:
            return
        f = ellipse_field(box, centre, h.right(), h.up(), aw, ah)
        alpha = coverage(f.excess)
        inside = f.excess >= 0
        colour = np.broadcast_to(self.skin * 0.95, (*f.rho.shape, 3)) * self._shade(f.rho)
        part = 23 if side == "r" else 24
        canvas.paint(
            box,
            alpha,
            colour,
            inside,
            label=FACE,
            owner=OWNER[f"ear_{side}"],
            part=part,
            u=0.5,
            v=0.55,
        )

    def hair_curtain(self, canvas: Canvas) -> None:
        if self.id.hair_style != "long":
            return
        h = self.head
        centre, aw, _ = head_frame(h)
        behind = -math.sin(h.yaw) * 0.35 * aw * h.right()
        top = centre + h.up() * 0.2 * aw + behind
        chin = np.array([h.cx, h.cy]) - h.up() * h.radius
        bottom = chin + self.down * self.id.hair_length * self.L + behind
        self.limb_like_hair(canvas, top, bottom, 1.05 * aw, 1.3 * aw, "hair_curtain")

    def bun(self, canvas: Canvas) -> None:
        if self.id.hair_style != "bun":
            return
        h = self.head
        centre, aw, ah = head_frame(h)
        c = centre + h.up() * 0.95 * ah - math.sin(h.yaw) * 0.45 * aw * h.right()
        self.limb_like_hair(
            canvas, c, c + h.up() * 0.05 * aw, 0.42 * h.radius, 0.42 * h.radius, "bun"
        )

    def limb_like_hair(
        self, canvas: Canvas, a: np.ndarray, b: np.ndarray, ra: float, rb: float, name: str
    ) -> None:
        cap = capsule(canvas, a, b, ra, rb)
        if cap is None:
            return
        perp = cap.perp
        strands = (0.88 + 0.12 * np.sin(perp * 17.0))[..., None]
        colour = self.id.hair_colour * strands * self._shade(perp)
        # Hair over the back hides the body surface: no DensePose under it.
        canvas.paint(
            cap.box,
            coverage(cap.excess),
            colour,
            cap.excess >= 0,
            label=HAIR,
            owner=OWNER[name],
            part=0,
            u=0.0,
            v=0.0,
            normal=across_normal(a, b, perp),
        )

    # -- order ----------------------------------------------------------------------

    def draw_list(self) -> list[tuple[float, Callable[[Canvas], None]]]:
        """(depth, painter) for every segment; painted in increasing depth."""
        cy, sy = self.cos_yaw, self.sin_yaw
        items: list[tuple[float, Callable[[Canvas], None]]] = [
            (-0.6 * math.cos(self.head.yaw), self.hair_curtain),
            (0.0, self.torso),
            (0.05, self.skirt),
            (0.3, self.neck),
            (0.39, lambda c: self.ear(c, "r")),
            (0.39, lambda c: self.ear(c, "l")),
            (0.4, self.paint_head),
            (0.4 - 0.05 * math.cos(self.head.yaw), self.bun),
        ]
        for side, lam in (("r", 1.0), ("l", -1.0)):
            arm_depth = 0.25 * cy + lam * sy * 0.8
            leg_depth = -0.3 + lam * sy * 0.1
            items += [
                (arm_depth, lambda c, s=side: self.arm(c, s)),
                (arm_depth + 0.01, lambda c, s=side: self.hand(c, s)),
                (leg_depth, lambda c, s=side: self.leg(c, s, "lower")),
                (leg_depth + 0.005, lambda c, s=side: self.leg(c, s, "upper")),
                (leg_depth + 0.01, lambda c, s=side: self.foot(c, s)),
            ]
        return items


def keypoint_visibility(
    keypoints: np.ndarray,
    owner: np.ndarray,
    face_seen: np.ndarray,
) -> np.ndarray:
    """COCO visibility per keypoint: 0 outside the frame, 1 occluded, 2 visible."""
    height, width = owner.shape
    cols = np.rint(keypoints[:, 0]).astype(np.int64)
    rows = np.rint(keypoints[:, 1]).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    found = owner[np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)]
    seen = KEYPOINT_OWNER_TABLE[np.arange(len(keypoints)), found]
    face = np.ones(len(keypoints), dtype=bool)
    face[list(FACE_KEYPOINTS)] = face_seen
    return np.where(inside, np.where(seen & face, 2, 1), 0).astype(np.int8)


def paint_person(
    identity: Identity,
    pose: PoseSample,
    cfg: SynthConfig,
) -> tuple[Canvas, PersonPainter]:
    """The person layer and its ground truth, no background or camera."""
    height, width = cfg.size
    canvas = Canvas(height, width)
    painter = PersonPainter(identity, pose, cfg)
    for _, paint in sorted(painter.draw_list(), key=lambda item: item[0]):
        paint(canvas)
    return canvas, painter


def render_person(
    identity: Identity,
    pose: PoseSample,
    cfg: SynthConfig,
    rng: np.random.Generator,
    session: np.random.Generator | None = None,
) -> RenderOutput:
    """One photo of `identity` in `pose` with all its ground truth. `session` draws the
    backdrop, light, shadow and camera settings: given a generator of the same seed for
    each photo of a person, the photos look like one studio session. Without it `rng`
    draws them too (a new session per photo)."""
    height, width = cfg.size
    canvas, painter = paint_person(identity, pose, cfg)
    keypoints = painter.kp.astype(np.float32)
    vis = keypoint_visibility(keypoints, canvas.owner, painter.face_seen)
    visible_kp = np.where((vis == 2)[:, None], keypoints, -1.0).astype(np.float32)
    scene_rng = session if session is not None else rng
    bg = background(scene_rng, height, width, cfg.background)
    bg = cast_shadow(scene_rng, bg, canvas.alpha, cfg.background)
    scene = bg * (1.0 - canvas.alpha[..., None]) + light(scene_rng, canvas, cfg.background)
    photo = apply_camera(scene_rng, scene, cfg.camera, noise_rng=rng)
    quality = int(
        rng.integers(cfg.camera.jpeg_quality_range[0], cfg.camera.jpeg_quality_range[1] + 1)
    )
    return RenderOutput(
        image=photo,
        labels=canvas.label,
        parts=canvas.part,
        u=canvas.u,
        v=canvas.v,
        keypoints=visible_kp,
        keypoints_all=keypoints,
        visibility=vis,
        person_rgb=canvas.rgb,
        coverage=canvas.alpha,
        owner=canvas.owner,
        jpeg_quality=quality,
    )
