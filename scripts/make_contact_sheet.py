"""Draw docs/synthfashion.png, the contact sheet of SynthFashion (deterministic).

    python scripts/make_contact_sheet.py

Rows: six people (photo, 8-class map, DensePose IUV, visible keypoints); one person in four
poses next to a garment donor and the ground-truth swap; six face crops with their masks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.config import load_config  # noqa: E402
from common.image_io import save_image  # noqa: E402
from keypoints.draw import draw_skeleton  # noqa: E402
from parsing.labels import CELEBAMASK_PALETTE, colorize  # noqa: E402
from synth.config import SynthConfig  # noqa: E402
from synth.dataset import Job, identity_bank_rows, make_identity, make_pose  # noqa: E402
from synth.faces import render_face  # noqa: E402
from synth.render import render_person  # noqa: E402

SEED = 2024


def iuv_picture(out) -> np.ndarray:
    fg = out.parts > 0
    rgb = np.stack([out.u, out.v, out.parts / 24.0], axis=-1) * 255
    return np.where(fg[..., None], rgb, 0).astype(np.uint8)


def label_text(img: np.ndarray, text: str) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def main() -> None:
    cfg = load_config(SynthConfig, ROOT / "configs" / "synth.yaml")
    job = Job(out=Path("/nonexistent"), seed=SEED, n_identities=1000, poses=4, config=cfg)
    people = []
    for index in range(6):
        identity = make_identity(job, index)
        row = identity_bank_rows(job, index, identity.split)[0]
        out = render_person(
            identity, make_pose(job, index, 0, row), cfg, np.random.default_rng([SEED, index])
        )
        people.append(out)
    grid = [
        np.concatenate([o.image for o in people], 1),
        np.concatenate([colorize(o.labels) for o in people], 1),
        np.concatenate([iuv_picture(o) for o in people], 1),
        np.concatenate([draw_skeleton(o.image, o.keypoints) for o in people], 1),
    ]
    # One person in four poses, a donor, and the person in the donor's top (ground truth).
    person, donor = make_identity(job, 10), make_identity(job, 11)
    rows = identity_bank_rows(job, 10, person.split)
    poses = [make_pose(job, 10, k, rows[k]) for k in range(4)]
    shots = [
        render_person(person, p, cfg, np.random.default_rng([SEED, 10, k])).image
        for k, p in enumerate(poses)
    ]
    donor_row = identity_bank_rows(job, 11, donor.split)[0]
    donor_shot = render_person(
        donor, make_pose(job, 11, 0, donor_row), cfg, np.random.default_rng([SEED, 11])
    ).image
    swap = render_person(
        person.wearing("upper", donor), poses[1], cfg, np.random.default_rng([SEED, 10, 1])
    ).image
    grid.append(
        np.concatenate(
            [label_text(s, f"pose {k + 1}") for k, s in enumerate(shots)]
            + [label_text(donor_shot, "donor"), label_text(swap, "pose 2 + donor top")],
            1,
        )
    )
    faces = []
    for index in range(6):
        face = render_face(make_identity(job, index), np.random.default_rng([SEED, 50, index]), cfg)
        small = cv2.resize(face.image, (176, 176), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(
            colorize(face.labels, CELEBAMASK_PALETTE), (176, 176), interpolation=cv2.INTER_NEAREST
        )
        faces.append(np.concatenate([small, mask], 0))
    grid.append(np.concatenate(faces, 1))
    sheet = np.concatenate(grid, 0)
    save_image(ROOT / "docs" / "synthfashion.png", sheet)
    print(f"wrote docs/synthfashion.png {sheet.shape[1]}x{sheet.shape[0]}")


if __name__ == "__main__":
    main()
