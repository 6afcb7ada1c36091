"""Real photos as phones degrade them: `python bench/pose_robustness.py`.

    python bench/pose_robustness.py [--data ../shared/data] [--bundle bundles/demo]

Each real photo of ../shared/data in which the pipeline finds a person is read again after
one of the things a shopper's phone does to a photo: tilted (rotated 12 and -20 degrees, the
corners reflected), taken in a dim room (x0.35 brightness), compressed hard (JPEG quality
10), small (half the size), noisy (sensor noise of std 12 levels); or as shoppers and shops
take them: a phone held before the face (a mirror selfie), a catalogue photo that leaves the
head out (cut at the mouth, or at the shoulders: the points cut off are not asked for, and the
head size that sets PCKh's tolerance is the clean photo's). The person is picked by a
box drawn around their keypoints in the clean photo (moved with the photo), as a user picks
one of several people, so a crowd's other people do not count; and again whole, as most
users send one (the pipeline picks the tallest person). Prints per variant how many
of the people are still found (the pipeline refuses a person under 120 px tall: half size
loses some) and PCKh@0.5 of the degraded photo's keypoints against the clean photo's, both
in the degraded photo's pixels (a person not found misses every point). No ground truth is
involved: this says how far the pose read from a worse photo of the same person moves.
"clean, boxed" is the clean photo read again through the same box, the reference: a box
around the person is itself a different first look (`Pipeline.people`). Without
../shared/data it says so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.real_photos import SHARED, keypoints_in_photo, real_photos  # noqa: E402
from bench.timing import machine_line  # noqa: E402
from common.checkpoint import DEMO_BUNDLE  # noqa: E402
from common.geometry import Box, apply_to_points  # noqa: E402
from common.image_io import load_image  # noqa: E402
from keypoints.metrics import head_size, pckh_counts  # noqa: E402
from keypoints.skeleton import visible  # noqa: E402
from studio.pipeline import NoPersonError, Pipeline  # noqa: E402

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# (the clean photo, its person's keypoints) -> a degraded photo and the 2x3 map from the
# clean photo's pixels to its pixels
Variant = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def rotated(degrees: float) -> Variant:
    def turn(photo: np.ndarray, _: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = photo.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        return cv2.warpAffine(photo, m, (w, h), borderMode=cv2.BORDER_REFLECT), m

    return turn


def darker(factor: float) -> Variant:
    return lambda photo, _: ((photo * factor).round().astype(np.uint8), IDENTITY)


def jpeg(quality: int) -> Variant:
    def compress(photo: np.ndarray, _: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, data = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]), IDENTITY

    return compress


def smaller(factor: float) -> Variant:
    def shrink(photo: np.ndarray, _: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        return out, IDENTITY * factor

    return shrink


def noisy(std: float) -> Variant:
    def add(photo: np.ndarray, _: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        noise = np.random.default_rng(0).normal(0.0, std, photo.shape)
        return np.clip(photo + noise, 0, 255).round().astype(np.uint8), IDENTITY

    return add


def _head(keypoints: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(the face's centre, the head's width) from the nose, eyes and ears, or None."""
    face = keypoints[[0, 14, 15, 16, 17]]
    face = face[visible(face)]
    if len(face) < 2:
        return None
    centre = keypoints[0] if visible(keypoints[0:1])[0] else face.mean(0)
    return centre, 1.3 * max(float(np.ptp(face, 0).max()), 6.0)


def cut_below(where: float) -> Variant:
    """The photo cut across the person, as a catalogue photo that leaves the head out: at
    `where` of the way from the eyes down to the neck (the middle of the shoulders)."""

    def cut(photo: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eyes = keypoints[[14, 15]][visible(keypoints[[14, 15]])]
        if not len(eyes) or not visible(keypoints[1:2])[0]:
            return photo, IDENTITY
        top = eyes[:, 1].mean()
        y = round(float(top + where * (keypoints[1, 1] - top)))
        return np.ascontiguousarray(photo[max(y, 0) :]), IDENTITY - [[0, 0, 0], [0, 0, max(y, 0)]]

    return cut


def phone_over_face(photo: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A phone held before the face, as in a mirror selfie: a dark 0.55 x 1.1 head-width
    rectangle over the nose."""
    head = _head(keypoints)
    if head is None:
        return photo, IDENTITY
    (x, y), size = head
    out = photo.copy()
    x0, x1 = round(x - 0.275 * size), round(x + 0.275 * size)
    y0, y1 = round(y - 0.45 * size), round(y + 0.65 * size)
    out[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = (25, 25, 30)
    return out, IDENTITY


VARIANTS: dict[str, Variant] = {
    "clean, boxed": lambda photo, _: (photo, IDENTITY),
    "tilted 12 degrees": rotated(12.0),
    "tilted -20 degrees": rotated(-20.0),
    "dim room, x0.35": darker(0.35),
    "JPEG quality 10": jpeg(10),
    "half the size": smaller(0.5),
    "sensor noise, std 12": noisy(12.0),
    "a phone over the face (mirror selfie)": phone_over_face,
    "cut at the mouth (catalogue photo)": cut_below(0.5),
    "cut at the shoulders (catalogue photo)": cut_below(1.0),
}


def inside(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`keypoints` with those outside a photo of `size` (H, W) missing."""
    h, w = size
    x, y = keypoints[:, 0], keypoints[:, 1]
    shown = visible(keypoints) & (x >= 0) & (y >= 0) & (x <= w - 1) & (y <= h - 1)
    return np.where(shown[:, None], keypoints, -1.0)


def scaled(size: tuple[float, float] | None, m: np.ndarray) -> tuple[float, float] | None:
    """A head's (width, height) in the clean photo, in the pixels of the photo `m` maps to."""
    if size is None:
        return None
    k = float(np.sqrt(abs(np.linalg.det(np.asarray(m)[:, :2]))))
    return size[0] * k, size[1] * k


def around(keypoints: np.ndarray, to_variant: np.ndarray, size: tuple[int, int]) -> Box:
    """A user's box around the seen keypoints (x 1.3, y 1.4 their extent, more room above
    for the head), moved by `to_variant` and kept inside a photo of `size` (H, W)."""
    kp = keypoints[visible(keypoints)]
    (x0, y0), (x1, y1) = kp.min(0), kp.max(0)
    mx, my = 0.15 * (x1 - x0), 0.1 * (y1 - y0)
    corners = np.array(
        [[x0 - mx, y0 - 2 * my], [x1 + mx, y0 - 2 * my], [x0 - mx, y1 + my], [x1 + mx, y1 + my]]
    )
    moved = apply_to_points(to_variant, corners)
    h, w = size
    lo = np.maximum(moved.min(0), 0.0)
    hi = np.minimum(moved.max(0), [w - 1.0, h - 1.0])
    return (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--bundle", type=Path, default=DEMO_BUNDLE)
    args = p.parse_args(argv)
    if not (args.data / "real-formats").is_dir():
        print(f"no {args.data / 'real-formats'}: nothing to measure")
        return 0
    print(machine_line())
    pipe = Pipeline.from_bundle(args.bundle)
    photos = [(load_image(path), path.name) for path in real_photos(args.data)]
    clean = pipe.people(photos, parse=[False] * len(photos))
    people = [(photo, view) for photo, view in zip(photos, clean, strict=True)]
    people = [(photo, view) for photo, view in people if not isinstance(view, NoPersonError)]
    print(f"# {len(people)} of {len(photos)} photos with a person")
    print(
        "| the photo | people found, boxed | PCKh@0.5 against the clean photo's keypoints, boxed "
        "| people found, the whole photo | PCKh@0.5, the whole photo | points |"
    )
    print("|---|---|---|---|---|---|")
    named = [photo_name for (_, photo_name), _ in people]
    for name, degrade in VARIANTS.items():
        made = [degrade(photo, keypoints_in_photo(view)) for (photo, _), view in people]
        boxes = [
            around(keypoints_in_photo(view), m, out.shape[:2])
            for (_, view), (out, m) in zip(people, made, strict=True)
        ]
        moved = [
            np.where(visible(kp)[:, None], apply_to_points(m, kp), -1.0)
            for kp, (_, m) in zip((keypoints_in_photo(v) for _, v in people), made, strict=True)
        ]
        # points the degraded photo no longer shows (cut off) are not asked for; the head's
        # size, which sets the tolerance, is the one the clean photo showed
        asked = [inside(kp, out.shape[:2]) for kp, (out, _) in zip(moved, made, strict=True)]
        sizes = [
            scaled(head_size(keypoints_in_photo(v)), m)
            for (_, v), (_, m) in zip(people, made, strict=True)
        ]
        row = [name]
        for where in (boxes, None):  # as a user picks one, and as most send a photo
            views = pipe.people(
                [(out, photo_name) for (out, _), photo_name in zip(made, named, strict=True)],
                where,
                parse=[False] * len(people),
            )
            seen = [
                np.full((18, 2), -1.0) if isinstance(v, NoPersonError) else keypoints_in_photo(v)
                for v in views
            ]
            ok, total, _ = pckh_counts(seen, asked, head_sizes=sizes)
            found = sum(not isinstance(v, NoPersonError) for v in views)
            row += [f"{found} of {len(people)}", f"{ok / total:.3f}"]
        print(f"| {' | '.join(row)} | {total} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
