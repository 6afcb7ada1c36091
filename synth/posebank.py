"""The pose bank: real DeepFashion poses, completed, with a fitted head, and their jitter.

Built once from the real test-split annotation CSV (`python -m synth.posebank --csv ...`)
and committed as `synth/data/posebank.csv` (keypoint rows may be copied; no image is).

- Rows qualify when the torso is visible: neck, both shoulders and at least one hip
  (and the view is not "flat", a garment laid flat).
- Missing body joints (legs below the frame in upper-body shots, a hidden arm in side
  views) are completed from the most similar fully annotated row: the donor is aligned by
  a similarity transform on the joints both rows have, and each missing joint is placed
  from its parent with the donor's bone, scaled and rotated. Legs thus continue below the
  frame, as in the real photo.
- The head is fitted (`synth.head.fit_head`) to whatever face points the row has; rows
  whose head cannot sit on the neck (detector errors) are dropped.
- Rows are split train/test by the source person (the DeepFashion item id), so synthetic
  test identities stand in poses of real people that training never saw.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.deepfashion import parse_flat
from common.fileio import write_text
from keypoints.formats import read_annotations
from keypoints.skeleton import FLIP_PERMUTATION, NUM_KEYPOINTS, visible
from synth.config import PoseJitterConfig
from synth.head import FACE_KEYPOINTS, HeadPose, face_keypoints, fit_head

BANK_PATH = Path(__file__).parent / "data" / "posebank.csv"
FRAME = (256, 176)  # (H, W) of the DeepFashion crops the bank's coordinates live in

BODY = tuple(range(1, 14))  # neck .. l_ankle
PARENT = {2: 1, 3: 2, 4: 3, 5: 1, 6: 5, 7: 6, 8: 1, 9: 8, 10: 9, 11: 1, 12: 11, 13: 12}
FILL_ORDER = (8, 11, 2, 5, 3, 6, 4, 7, 9, 12, 10, 13)  # parents before children
TEST_FRACTION_PERCENT = 20


@dataclass
class BankPose:
    """One bank row: 18 keypoints (face points from the head model), head, provenance."""

    name: str
    split: str
    view: str
    keypoints: np.ndarray  # [18, 2] in the 256x176 frame, all present
    observed: np.ndarray  # [18] bool: annotated in the real row
    head: HeadPose


def torso_length(kp: np.ndarray) -> float:
    hips = [kp[i] for i in (8, 11) if kp[i, 0] >= 0]
    mid_hip = np.mean(hips, axis=0)
    shoulders = np.linalg.norm(kp[2] - kp[5])
    return float(max(np.linalg.norm(kp[1] - mid_hip), 0.9 * shoulders, 1.0))


def body_up(kp: np.ndarray) -> np.ndarray:
    hips = [kp[i] for i in (8, 11) if kp[i, 0] >= 0]
    v = kp[1] - np.mean(hips, axis=0)
    n = np.linalg.norm(v)
    return v / n if n > 1e-6 else np.array([0.0, -1.0])


def _align(
    donors: np.ndarray,
    target: np.ndarray,
    mask: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity-align each donor [D, J, 2] to target [J, 2] on joints `mask` [J].

    Returns the complex scale-rotation a [D], translation t [D] (complex) and the RMS
    residual [D], with points as complex numbers: target ~ a * donor + t.
    """
    d = donors[:, mask, 0] + 1j * donors[:, mask, 1]
    t = target[mask, 0] + 1j * target[mask, 1]
    d_mean, t_mean = d.mean(axis=1, keepdims=True), t.mean()
    dc, tc = d - d_mean, t - t_mean
    a = (np.conj(dc) * tc).sum(axis=1) / np.maximum((np.abs(dc) ** 2).sum(axis=1), 1e-9)
    shift = t_mean - a * d_mean[:, 0]
    residual = np.sqrt((np.abs(a[:, None] * d + shift[:, None] - t) ** 2).mean(axis=1))
    return a, shift, residual


def complete_body(kp: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """Fill missing body joints of `kp` [18, 2] from the best-aligned donor [D, 18, 2]."""
    present = visible(kp)
    body_mask = np.zeros(NUM_KEYPOINTS, dtype=bool)
    body_mask[list(BODY)] = True
    if present[body_mask].all():
        return kp.copy()
    a, _, residual = _align(donors, kp, present & body_mask)
    best = int(np.argmin(residual))
    out = kp.copy()
    donor = donors[best]
    for j in FILL_ORDER:
        if present[j]:
            continue
        p = PARENT[j]
        bone = (donor[j, 0] - donor[p, 0]) + 1j * (donor[j, 1] - donor[p, 1])
        moved = a[best] * bone
        out[j] = out[p] + np.array([moved.real, moved.imag])
    return out


def plausible_head(head: HeadPose, kp: np.ndarray, length: float) -> bool:
    """Reject rows whose face points put the head where no neck reaches (detector
    errors in the real rows, ~4% of them): more than 35 degrees off the body's up axis,
    too near or far from the neck, or of an odd size."""
    offset = np.array([head.cx, head.cy]) - kp[1]
    distance = float(np.linalg.norm(offset))
    if not 0.25 <= distance / length <= 0.6 or not 0.09 <= head.radius / length <= 0.25:
        return False
    cos_angle = float(np.dot(offset / distance, body_up(kp)))
    return cos_angle >= math.cos(math.radians(35))


def _split_of(name: str) -> str:
    item = parse_flat(name).item
    return "test" if zlib.crc32(item.encode()) % 100 < TEST_FRACTION_PERCENT else "train"


def build_bank(annotation_csv: str | Path) -> list[BankPose]:
    """Bank rows from a real DeepFashion annotation CSV (see the module docstring)."""
    rows = read_annotations(annotation_csv)
    # "flat" views are garments laid flat; a skeleton found there is a false detection.
    torso_ok = {
        n: kp
        for n, kp in rows.items()
        if visible(kp)[[1, 2, 5]].all()
        and visible(kp)[[8, 11]].any()
        and parse_flat(n).view != "flat"
    }
    donors = np.stack([kp for kp in torso_ok.values() if visible(kp)[list(BODY)].all()])
    bank = []
    for name, kp in torso_ok.items():
        observed = visible(kp)
        full = complete_body(kp, donors)
        length = torso_length(full)
        face_idx = list(FACE_KEYPOINTS)
        head = fit_head(kp[face_idx], observed[face_idx], full[1], body_up(full), length)
        if not plausible_head(head, full, length):
            continue
        pts, _ = face_keypoints(head)
        full[face_idx] = pts
        bank.append(
            BankPose(
                name=name,
                split=_split_of(name),
                view=parse_flat(name).view,
                keypoints=full.astype(np.float32),
                observed=observed,
                head=head,
            )
        )
    return bank


def write_bank(path: str | Path, bank: list[BankPose]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    body = list(BODY)
    writer.writerow(
        ["name", "split", "view", "observed"]
        + [f"x{j}" for j in body]
        + [f"y{j}" for j in body]
        + ["head_cx", "head_cy", "head_r", "head_yaw", "head_roll"]
    )
    for row in bank:
        observed = "".join("1" if o else "0" for o in row.observed)
        writer.writerow(
            [row.name, row.split, row.view, observed]
            + [f"{row.keypoints[j, 0]:.2f}" for j in body]
            + [f"{row.keypoints[j, 1]:.2f}" for j in body]
            + [f"{v:.4f}" for v in row.head.as_array()]
        )
    write_text(path, buf.getvalue())


def read_bank(path: str | Path = BANK_PATH) -> list[BankPose]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no pose bank; build it with `python -m synth.posebank --csv "
            f"<fashion-resize-annotation-test.csv>`"
        )
    bank = []
    with open(path, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            kp = np.full((NUM_KEYPOINTS, 2), -1.0, dtype=np.float32)
            for j in BODY:
                kp[j] = (float(rec[f"x{j}"]), float(rec[f"y{j}"]))
            head = HeadPose(
                *(float(rec[k]) for k in ("head_cx", "head_cy", "head_r", "head_yaw", "head_roll"))
            )
            pts, _ = face_keypoints(head)
            kp[list(FACE_KEYPOINTS)] = pts
            observed = np.array([c == "1" for c in rec["observed"]], dtype=bool)
            bank.append(BankPose(rec["name"], rec["split"], rec["view"], kp, observed, head))
    return bank


@dataclass
class PoseSample:
    """A jittered pose ready to render, in the target image's pixels."""

    keypoints: np.ndarray  # [18, 2], all present (may lie outside the frame)
    head: HeadPose
    source: str  # the bank row's name
    view: str
    flipped: bool


def _rotate_about(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rel = points - centre
    return centre + rel @ np.array([[c, s], [-s, c]])


# Chains that rotate together about their first joint: (pivot, moved joints).
_CHAINS = (
    (2, (3, 4)),
    (3, (4,)),
    (5, (6, 7)),
    (6, (7,)),
    (8, (9, 10)),
    (9, (10,)),
    (11, (12, 13)),
    (12, (13,)),
)


_ARMS = ((2, 3, 4), (5, 6, 7))  # shoulder, elbow, wrist
_LEGS = ((8, 9, 10), (11, 12, 13))  # hip, knee, ankle
_UPPER_BODY = (1, 2, 3, 4, 5, 6, 7)  # what a lean moves (the head moves with it)


def _outward(
    joint: np.ndarray, centre: np.ndarray, down: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The unit direction across the body from its midline to `joint`; a side view (the
    joint on the midline) picks a side at random."""
    across = joint - centre
    across = across - np.dot(across, down) * down
    norm = float(np.linalg.norm(across))
    if norm < 1e-3:
        return np.array([-down[1], down[0]]) * (1.0 if rng.random() < 0.5 else -1.0)
    return across / norm


def _bone_scale(rng: np.random.Generator, jitter: PoseJitterConfig) -> float:
    if rng.random() < jitter.action_foreshorten_probability:
        return float(rng.uniform(*jitter.action_foreshorten))
    return 1.0


def action_pose(
    kp: np.ndarray, head: HeadPose, rng: np.random.Generator, jitter: PoseJitterConfig
) -> None:
    """Re-draw limbs at free angles and lean the upper body, in place (frame pixels).

    Each re-drawn limb keeps the row's bone lengths, shortened at times as a limb that
    points at the camera is; its proximal bone swings from hanging along the body
    (outward positive, so -30 degrees crosses the body and 170 reaches overhead) and the
    distal bone bends either way, as a knee seen from the side or an elbow does.
    """
    down = -body_up(kp)
    chains = [(c, jitter.action_arm_deg, jitter.action_elbow_deg, kp[1]) for c in _ARMS]
    mid_hip = (kp[8] + kp[11]) / 2
    chains += [(c, jitter.action_hip_deg, jitter.action_knee_deg, mid_hip) for c in _LEGS]
    for (root, middle, end), swing, bend, centre in chains:
        if rng.random() >= jitter.action_limb_probability:
            continue
        out = _outward(kp[root], centre, down, rng)
        angle = math.radians(rng.uniform(*swing))
        first = down * math.cos(angle) + out * math.sin(angle)
        turn = math.radians(rng.uniform(*bend)) * (1.0 if rng.random() < 0.5 else -1.0)
        second = _rotate_about(first[None], np.zeros(2), turn)[0]
        first_len = float(np.linalg.norm(kp[middle] - kp[root])) * _bone_scale(rng, jitter)
        second_len = float(np.linalg.norm(kp[end] - kp[middle])) * _bone_scale(rng, jitter)
        kp[middle] = kp[root] + first * first_len
        kp[end] = kp[middle] + second * second_len
    lean = math.radians(rng.normal(0.0, jitter.action_lean_deg))
    upper = list(_UPPER_BODY)
    kp[upper] = _rotate_about(kp[upper], mid_hip, lean)
    centre = _rotate_about(np.array([[head.cx, head.cy]]), mid_hip, lean)[0]
    head.cx, head.cy = float(centre[0]), float(centre[1])
    head.roll += lean


def jitter_pose(
    row: BankPose,
    rng: np.random.Generator,
    jitter: PoseJitterConfig,
    *,
    size: tuple[int, int],
    flip: bool | None = None,
) -> PoseSample:
    """Perturb a bank row and map it from the 256x176 frame into an image of `size`.

    `flip=None` draws the mirror image with the config's probability (the first draw from
    `rng`); True or False force it.
    """
    if flip is None:
        flip = bool(rng.random() < jitter.flip_probability)
    kp = row.keypoints.astype(np.float64).copy()
    head = HeadPose(*row.head.as_array())
    if flip:
        kp = kp[list(FLIP_PERMUTATION)]
        kp[:, 0] = FRAME[1] - 1 - kp[:, 0]
        head = head.flipped(FRAME[1])
    if jitter.action_probability > 0 and rng.random() < jitter.action_probability:
        action_pose(kp, head, rng, jitter)
    length = torso_length(kp)
    # Limb chains bend a little about their proximal joint.
    for pivot, moved in _CHAINS:
        limit = jitter.arm_deg if pivot in (2, 3, 5, 6) else jitter.leg_deg
        angle = math.radians(rng.normal(0.0, limit))
        kp[list(moved)] = _rotate_about(kp[list(moved)], kp[pivot], angle)
    body = list(BODY)
    kp[body] += rng.normal(0.0, jitter.joint_noise * length, size=(len(body), 2))
    head.yaw += math.radians(rng.normal(0.0, jitter.head_yaw_deg))
    head.roll += math.radians(rng.normal(0.0, jitter.head_roll_deg))
    # Whole-figure similarity about the frame centre, then into the target size.
    centre = np.array([(FRAME[1] - 1) / 2, (FRAME[0] - 1) / 2])
    scale = rng.uniform(*jitter.scale_range)
    angle = math.radians(rng.normal(0.0, jitter.rotation_deg))
    shift = rng.uniform(-1, 1, size=2) * np.array(jitter.shift_fraction) * np.array(FRAME[::-1])
    height, width = size
    to_target = min(height / FRAME[0], width / FRAME[1])
    target_centre = np.array([(width - 1) / 2, (height - 1) / 2])

    def place(points: np.ndarray) -> np.ndarray:
        p = _rotate_about(points, centre, angle)
        return ((p - centre) * scale + shift) * to_target + target_centre

    kp[body] = place(kp[body])
    hc = place(np.array([[head.cx, head.cy]]))[0]
    head = HeadPose(
        float(hc[0]), float(hc[1]), head.radius * scale * to_target, head.yaw, head.roll + angle
    )
    pts, _ = face_keypoints(head)
    kp[list(FACE_KEYPOINTS)] = pts
    return PoseSample(
        keypoints=kp.astype(np.float32), head=head, source=row.name, view=row.view, flipped=flip
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Build the SynthFashion pose bank from a real DeepFashion annotation CSV."
    )
    parser.add_argument("--csv", required=True, help="fashion-resize-annotation-*.csv")
    parser.add_argument("--out", default=str(BANK_PATH))
    args = parser.parse_args(argv)
    bank = build_bank(args.csv)
    write_bank(args.out, bank)
    splits = {s: sum(r.split == s for r in bank) for s in ("train", "test")}
    print(f"wrote {len(bank)} poses ({splits['train']} train, {splits['test']} test) to {args.out}")


if __name__ == "__main__":
    main()
