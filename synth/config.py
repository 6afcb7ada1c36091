"""SynthFashion's knobs, one dataclass per concern, filled from `configs/synth.yaml`.

Lengths in the body and garment sections are in units of the figure's torso length L
(neck to mid-hip in the image), so they hold at any image size and any framing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PoseJitterConfig:
    """How a real bank pose is perturbed before rendering."""

    flip_probability: float = 0.5
    scale_range: tuple[float, float] = (0.92, 1.08)
    rotation_deg: float = 3.0  # std of the whole-figure rotation
    shift_fraction: tuple[float, float] = (0.05, 0.03)  # max shift, fraction of (W, H)
    arm_deg: float = 8.0  # std of the bend of each arm chain about its joint
    leg_deg: float = 3.0
    joint_noise: float = 0.012  # std of per-joint noise, in L
    head_yaw_deg: float = 8.0
    head_roll_deg: float = 3.0
    # Action poses: the bank holds catalogue poses (standing, arms near the body), real
    # photos do not. This share of poses re-draws limbs at free angles (reaching, running,
    # sitting, crouching) and leans the upper body. 0 draws nothing from the generator.
    action_probability: float = 0.0
    action_limb_probability: float = 0.7  # each limb is re-drawn with this probability
    action_arm_deg: tuple[float, float] = (-40.0, 175.0)  # upper arm from hanging; + outward
    action_elbow_deg: tuple[float, float] = (0.0, 150.0)  # forearm bend, either way
    action_hip_deg: tuple[float, float] = (-30.0, 75.0)  # thigh from hanging; + outward
    action_knee_deg: tuple[float, float] = (0.0, 130.0)  # shin bend, either way
    action_foreshorten: tuple[float, float] = (0.35, 1.0)  # bone length seen (out of plane)
    action_foreshorten_probability: float = 0.4
    action_lean_deg: float = 15.0  # std of the upper body's lean about the hips

    @classmethod
    def still(cls, scale: float = 1.0) -> PoseJitterConfig:
        """No jitter at all: the bank pose as it is, at `scale`, never mirrored."""
        return cls(
            flip_probability=0.0,
            scale_range=(scale, scale),
            rotation_deg=0.0,
            shift_fraction=(0.0, 0.0),
            arm_deg=0.0,
            leg_deg=0.0,
            joint_noise=0.0,
            head_yaw_deg=0.0,
            head_roll_deg=0.0,
        )


@dataclass
class BodyConfig:
    """Body build, relative to L, and how identities vary around it."""

    women_probability: float = 0.6
    width_range: tuple[float, float] = (0.85, 1.2)  # scales every limb radius
    shoulder_range: tuple[float, float] = (0.95, 1.12)
    hip_range: tuple[float, float] = (0.92, 1.15)
    head_scale_range: tuple[float, float] = (0.93, 1.07)
    upper_arm_radius: float = 0.1
    lower_arm_radius: float = 0.078
    wrist_radius: float = 0.055
    thigh_radius: float = 0.14
    knee_radius: float = 0.09
    ankle_radius: float = 0.056
    neck_radius: float = 0.085
    max_neck_length: float = 0.22  # chin to neck keypoint, at most (real photos: ~0.25)
    hand_length: float = 0.22
    foot_length: float = 0.26
    torso_depth: float = 0.2  # half-width of the torso seen from the side
    waist_ratio_women: float = 0.8  # waist half-width / min(shoulder, hip) half-width
    waist_ratio_men: float = 0.92
    shading: float = 0.22  # cylinder shading depth across a limb (0 = flat)


@dataclass
class GarmentConfig:
    """What people wear; weights need not sum to one."""

    upper_women: dict[str, float] = field(
        default_factory=lambda: {"tee": 0.3, "long_sleeve": 0.25, "tank": 0.15, "dress": 0.3}
    )
    upper_men: dict[str, float] = field(
        default_factory=lambda: {"tee": 0.45, "long_sleeve": 0.45, "tank": 0.1}
    )
    lower_women: dict[str, float] = field(
        default_factory=lambda: {"trousers": 0.4, "shorts": 0.25, "skirt": 0.35}
    )
    lower_men: dict[str, float] = field(default_factory=lambda: {"trousers": 0.65, "shorts": 0.35})
    patterns: dict[str, float] = field(
        default_factory=lambda: {
            "solid": 0.4,
            "stripes": 0.18,
            "checks": 0.1,
            "dots": 0.1,
            "floral": 0.22,
        }
    )
    lower_patterns: dict[str, float] = field(
        default_factory=lambda: {"solid": 0.75, "stripes": 0.08, "checks": 0.08, "floral": 0.09}
    )
    chest_print_probability: float = 0.25  # a graphic on the front of a top
    # Sleeves of another fabric than the body of the top (a shirt under a vest or a jacket,
    # raglan and colour-block tops), still upper clothes: on real photos the parser called
    # white shirt sleeves under a vest bare arms. 0 renders every earlier set unchanged.
    layered_probability: float = 0.0
    tucked_probability: float = 0.3
    skirt_length_range: tuple[float, float] = (0.28, 0.95)  # fraction of hip-to-ankle
    skirt_flare_range: tuple[float, float] = (0.05, 0.6)
    # A coat (upper kind "coat", weight 0 by default) goes on below the hips over whatever
    # is worn there: its length past the waist as a fraction of hip to ankle, and its flare.
    coat_length_range: tuple[float, float] = (0.15, 0.65)
    coat_flare_range: tuple[float, float] = (0.0, 0.25)
    tile_size: int = 64  # texture tile side in texels
    tile_period_range: tuple[float, float] = (0.25, 0.7)  # tile side in L
    fold_strength_range: tuple[float, float] = (0.08, 0.3)  # shading depth of fabric folds


@dataclass
class HairConfig:
    styles_women: dict[str, float] = field(
        default_factory=lambda: {"long": 0.6, "short": 0.15, "bun": 0.2, "bob": 0.05}
    )
    styles_men: dict[str, float] = field(
        default_factory=lambda: {"short": 0.75, "bald": 0.1, "long": 0.05, "bob": 0.1}
    )
    long_length_range: tuple[float, float] = (0.3, 0.9)  # below the chin, in L


@dataclass
class BackgroundConfig:
    """The scene around the person: backdrop, shadow and the light's side."""

    clutter_probability: float = 0.3
    clutter_shapes: tuple[int, int] = (6, 16)
    clutter_blur_range: tuple[float, float] = (0.5, 2.5)  # depth of field, pixels at 256 px
    floor_probability: float = 0.5
    shadow_probability: float = 0.6
    lightness_range: tuple[float, float] = (0.78, 0.99)  # studio backgrounds
    light_strength_range: tuple[float, float] = (0.05, 0.35)  # side light on the person


@dataclass
class CameraConfig:
    """Everything a real photo adds after the scene: exposure, blur, noise, JPEG."""

    brightness_range: tuple[float, float] = (0.88, 1.1)
    contrast_range: tuple[float, float] = (0.85, 1.15)
    color_cast: float = 0.05  # max per-channel gain deviation
    blur_range: tuple[float, float] = (0.0, 0.9)  # Gaussian sigma at 256 px height
    noise_range: tuple[float, float] = (0.5, 3.5)  # sensor noise std, 8-bit levels
    jpeg_quality_range: tuple[int, int] = (75, 96)


@dataclass
class FaceSetConfig:
    """The CelebAMask-HQ-like face crops."""

    size: int = 256
    per_identity: int = 1
    yaw_deg: float = 25.0
    roll_deg: float = 8.0
    glasses_probability: float = 0.15
    hat_probability: float = 0.08
    earrings_probability: float = 0.2
    necklace_probability: float = 0.15


@dataclass
class DatasetConfig:
    """What the dataset writer produces."""

    test_fraction: float = 0.2
    max_pairs_per_identity: int = 0  # 0 = all ordered pairs (the published recipe)
    densepose_points: int = 120  # points per person, like DensePose-COCO's ~100-150
    swap_per_identity: int = 2  # ground-truth garment swaps per test identity
    swap_splits: tuple[str, ...] = ("test",)
    faces: bool = True
    swaps: bool = True
    # Person-free scenes (same backdrops and camera), as negatives for the estimators:
    # this many per person image, in backgrounds/{train,test}/.
    background_fraction: float = 0.1
    background_clutter_probability: float = 0.7
    # DeepFashion's in-shop photos of one item come from one studio session: the same
    # backdrop, light, shadow direction and camera settings in every pose (sensor noise and
    # JPEG differ). Pose transfer depends on it: with a new backdrop per photo, the target's
    # background cannot be predicted from the source (at 64x44 a perfect person over the
    # source's backdrop colour scored SSIM 0.70 against 0.85 over its own). False = a new
    # session for each photo.
    session_per_identity: bool = True


@dataclass
class SynthConfig:
    size: tuple[int, int] = (256, 176)  # (H, W)
    pose: PoseJitterConfig = field(default_factory=PoseJitterConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    garments: GarmentConfig = field(default_factory=GarmentConfig)
    hair: HairConfig = field(default_factory=HairConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    faces: FaceSetConfig = field(default_factory=FaceSetConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
