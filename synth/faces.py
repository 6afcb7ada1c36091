"""CelebAMask-HQ-like face crops of the SynthFashion identities, with all 19 classes.

Same head model as the body renderer (`synth.head`), larger and with the parts the face
parsing task labels: skin, nose, eyes, brows, ears, lips, mouth, hair, neck, cloth and the
optional glasses, hat, earrings and necklace. Sides are the person's own, as in the
dataset (its `l_eye` lies on the image's right when the face looks at the camera).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parsing.labels import CELEBAMASK_CLASSES
from synth.config import SynthConfig
from synth.head import HeadPose, head_frame, head_shape, skull_normal, surface_point
from synth.identity import Identity
from synth.raster import Box, Canvas, capsule, coverage, ellipse_box, ellipse_field
from synth.scene import apply_camera, background, light
from synth.textures import FABRIC_COLOURS, pick_colour

C = {name: i for i, name in enumerate(CELEBAMASK_CLASSES)}


@dataclass
class FaceOutput:
    image: np.ndarray  # uint8 [S, S, 3]
    labels: np.ndarray  # uint8 [S, S], CelebAMask-HQ classes 0..18
    jpeg_quality: int


def _fill(
    canvas: Canvas,
    box: Box | None,
    excess: np.ndarray,
    colour: np.ndarray,
    label: int,
    where: np.ndarray | None = None,
) -> None:
    if box is None:
        return
    alpha = coverage(excess)
    inside = excess >= 0
    if where is not None:
        alpha = alpha * where
        inside = inside & where
    colour = np.broadcast_to(colour, (*excess.shape, 3)) if colour.ndim == 1 else colour
    canvas.paint(box, alpha, colour, inside, label=label, owner=0, part=0, u=0.0, v=0.0)


class FacePainter:
    def __init__(
        self, identity: Identity, head: HeadPose, rng: np.random.Generator, cfg: SynthConfig
    ) -> None:
        f = cfg.faces
        self.id, self.head, self.rng = identity, head, rng
        self.glasses = rng.random() < f.glasses_probability
        self.hat = rng.random() < f.hat_probability
        self.earrings = rng.random() < f.earrings_probability
        self.necklace = rng.random() < f.necklace_probability
        self.mouth_open = rng.random() < 0.25
        self.hat_colour = pick_colour(rng, FABRIC_COLOURS)
        self.metal = np.array(
            [0.85, 0.72, 0.35] if rng.random() < 0.5 else [0.8, 0.8, 0.82], np.float32
        )

    def ellipse(
        self,
        canvas: Canvas,
        centre: np.ndarray,
        half_w: float,
        half_h: float,
        colour: np.ndarray,
        label: int,
        where_fn=None,
    ) -> None:
        h = self.head
        box = ellipse_box(canvas, centre, max(half_w, half_h) + 2)
        if box is None or half_w < 0.3 or half_h < 0.3:
            return
        f = ellipse_field(box, centre, h.right(), h.up(), half_w, half_h)
        _fill(canvas, box, f.excess, colour, label, where_fn(f) if where_fn else None)

    def capsule(
        self,
        canvas: Canvas,
        a: np.ndarray,
        b: np.ndarray,
        ra: float,
        rb: float,
        colour_fn,
        label: int,
    ) -> None:
        cap = capsule(canvas, a, b, ra, rb)
        if cap is not None:
            _fill(canvas, cap.box, cap.excess, colour_fn(cap.perp), label)

    def paint(self, canvas: Canvas) -> None:
        h, ident = self.head, self.id
        R, up = h.radius, h.up()
        size = canvas.height
        centre = np.array([h.cx, h.cy])
        skin = ident.skin
        style = ident.hair_style

        def shaded(base, strength=0.2):
            return lambda perp: (
                base
                * ((1 - strength) + strength * np.sqrt(np.clip(1 - perp * perp, 0, 1)))[..., None]
            )

        # Hair falling behind the head and shoulders.
        if style in ("long", "bob"):
            length = 2.6 * R if style == "long" else 1.3 * R
            self.capsule(
                canvas,
                centre + up * 0.3 * R,
                centre - up * length,
                1.12 * R,
                1.3 * R if style == "long" else 1.15 * R,
                shaded(ident.hair_colour, 0.3),
                C["hair"],
            )
        # Shoulders in the top the identity wears.
        box = canvas.box(0, size - 1, size * 0.65, size - 1)
        if box is not None:
            f = ellipse_field(
                box,
                np.array([h.cx, size * 1.06]),
                np.array([1.0, 0.0]),
                np.array([0.0, -1.0]),
                0.62 * size,
                0.36 * size,
            )
            yy, xx = box.grid()
            cloth = ident.upper.texture.sample(xx / size * 1.5, yy / size * 1.5)
            shade = (0.8 + 0.2 * np.sqrt(np.clip(1 - f.xn**2, 0, 1)))[..., None]
            _fill(canvas, box, f.excess, cloth * shade, C["cloth"])
        chin = centre - up * 0.75 * R
        neck_bottom = np.array([h.cx, size * 0.98])
        self.capsule(canvas, chin, neck_bottom, 0.45 * R, 0.5 * R, shaded(skin * 0.92), C["neck"])
        if self.necklace:
            ring_centre = np.array([h.cx, neck_bottom[1] - 0.35 * R])
            self.ellipse(
                canvas,
                ring_centre,
                0.6 * R,
                0.45 * R,
                self.metal,
                C["neck_l"],
                lambda f: (np.abs(f.rho - 1.0) < 0.08) & (f.yn < 0),
            )
        self._ears(canvas)
        self._skull(canvas)
        if self.hat:
            self.ellipse(
                canvas,
                centre + up * 0.95 * R,
                1.2 * R,
                0.75 * R,
                self.hat_colour,
                C["hat"],
                lambda f: f.yn > -0.25,
            )
        self._features(canvas)

    def _ears(self, canvas: Canvas) -> None:
        h, R = self.head, self.head.radius
        if self.id.hair_style in ("long", "bob") and not self.earrings:
            return
        for side, sign, label in (("r", -1.0, C["r_ear"]), ("l", 1.0, C["l_ear"])):
            point, facing = surface_point(h, sign * 0.95 * np.pi / 2, 0.0)
            if facing < -0.15:
                continue
            outward = np.sign(np.sin(h.yaw + sign * 0.95 * np.pi / 2))
            ear = point + h.right() * outward * 0.1 * R
            if self.id.hair_style not in ("long", "bob"):
                self.ellipse(canvas, ear, 0.18 * R, 0.3 * R, self.id.skin * 0.95, label)
            if self.earrings:
                self.ellipse(
                    canvas, ear - h.up() * 0.38 * R, 0.07 * R, 0.07 * R, self.metal, C["ear_r"]
                )
            del side

    def _skull(self, canvas: Canvas) -> None:
        h, ident = self.head, self.id
        R = h.radius
        style = ident.hair_style
        shape = head_shape(canvas, h, style)
        if shape is None:
            return
        skull, theta, face = shape.skull, shape.theta, shape.is_face
        shade = 0.78 + 0.22 * np.sqrt(np.clip(1 - np.minimum(skull.rho, 1) ** 2, 0, 1))
        strands = 0.9 + 0.1 * np.sin(theta * 40.0 + skull.yn * 5.0)
        colour = np.where(
            face[..., None],
            ident.skin * shade[..., None],
            ident.hair_colour * (shade * strands)[..., None],
        )
        label = np.where(face, C["skin"], C["hair"]).astype(np.uint8)
        canvas.paint(
            shape.box,
            shape.alpha,
            colour,
            face | shape.is_hair,
            normal=skull_normal(skull, h),
            label=label,
            owner=0,
            part=0,
            u=0.0,
            v=0.0,
        )
        centre, aw, ah = head_frame(h)
        if style == "bun":
            bun = centre + h.up() * 0.95 * ah - np.sin(h.yaw) * 0.45 * aw * h.right()
            self.ellipse(canvas, bun, 0.45 * R, 0.45 * R, ident.hair_colour * 0.9, C["hair"])

    def _features(self, canvas: Canvas) -> None:
        h, ident, R = self.head, self.id, self.head.radius
        up = h.up()
        dark = np.array([0.12, 0.09, 0.08], np.float32)
        for sign, eye_label, brow_label in (
            (-1.0, C["r_eye"], C["r_brow"]),
            (1.0, C["l_eye"], C["l_brow"]),
        ):
            eye, facing = surface_point(h, sign * 0.45, 0.28)
            if facing < 0.15:
                continue
            fs = max(facing, 0.2)
            self.ellipse(
                canvas,
                eye + up * 0.24 * R,
                0.22 * R * fs,
                0.055 * R,
                ident.hair_colour * 0.75,
                brow_label,
            )
            if self.glasses:
                self.ellipse(
                    canvas,
                    eye,
                    0.3 * R * fs,
                    0.22 * R,
                    np.array([0.55, 0.6, 0.65], np.float32),
                    C["eye_g"],
                )
            self.ellipse(
                canvas,
                eye,
                0.15 * R * fs,
                0.08 * R,
                np.array([0.92, 0.9, 0.88], np.float32),
                eye_label,
            )
            self.ellipse(canvas, eye, 0.065 * R * fs, 0.065 * R, dark, eye_label)
            if self.glasses:
                self.ellipse(
                    canvas, eye, 0.3 * R * fs, 0.22 * R, dark, C["eye_g"], lambda f: f.rho > 0.85
                )
        if self.glasses:
            a, fa = surface_point(h, -0.2, 0.3)
            b, fb = surface_point(h, 0.2, 0.3)
            if min(fa, fb) > 0.1:
                self.capsule(canvas, a, b, 0.03 * R, 0.03 * R, lambda p: dark, C["eye_g"])
        nose, facing = surface_point(h, 0.0, -0.05, 1.1)
        if facing > 0.1:
            self.ellipse(
                canvas,
                nose + up * 0.12 * R,
                0.12 * R * max(facing, 0.4),
                0.2 * R,
                ident.skin * 0.9,
                C["nose"],
            )
        mouth, facing = surface_point(h, 0.0, -0.45)
        if facing > 0.15:
            lips = ident.skin * np.array([0.8, 0.5, 0.52], np.float32)
            fs = max(facing, 0.3)
            self.ellipse(canvas, mouth + up * 0.035 * R, 0.28 * R * fs, 0.055 * R, lips, C["u_lip"])
            self.ellipse(
                canvas, mouth - up * 0.06 * R, 0.24 * R * fs, 0.07 * R, lips * 1.08, C["l_lip"]
            )
            if self.mouth_open:
                self.ellipse(
                    canvas,
                    mouth - up * 0.01 * R,
                    0.2 * R * fs,
                    0.025 * R,
                    np.array([0.3, 0.08, 0.08], np.float32),
                    C["mouth"],
                )


def render_face(
    identity: Identity,
    rng: np.random.Generator,
    cfg: SynthConfig,
) -> FaceOutput:
    f = cfg.faces
    size = f.size
    head = HeadPose(
        cx=size * (0.5 + rng.normal(0, 0.02)),
        cy=size * (0.45 + rng.normal(0, 0.02)),
        radius=size * rng.uniform(0.21, 0.26),
        yaw=float(np.radians(rng.normal(0, f.yaw_deg))),
        roll=float(np.radians(rng.normal(0, f.roll_deg))),
    )
    canvas = Canvas(size, size)
    FacePainter(identity, head, rng, cfg).paint(canvas)
    bg = background(rng, size, size, cfg.background)
    scene = bg * (1.0 - canvas.alpha[..., None]) + light(rng, canvas, cfg.background)
    image = apply_camera(rng, scene, cfg.camera)
    quality = int(
        rng.integers(cfg.camera.jpeg_quality_range[0], cfg.camera.jpeg_quality_range[1] + 1)
    )
    return FaceOutput(image=image, labels=canvas.label.copy(), jpeg_quality=quality)
