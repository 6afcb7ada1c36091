"""Render the README's example photos into examples/ (deterministic).

    python scripts/make_examples.py

- model.jpg    a catalogue model on a studio backdrop, 256x176 (DeepFashion framing)
- shopper.jpg  a shopper at home, another pose, a larger 384x288 photo with a cluttered room
- garment.jpg  a third person wearing the top to try on
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.config import load_config  # noqa: E402
from common.image_io import save_image  # noqa: E402
from synth.config import PoseJitterConfig, SynthConfig  # noqa: E402
from synth.identity import sample_identity  # noqa: E402
from synth.posebank import jitter_pose, read_bank  # noqa: E402
from synth.render import render_person  # noqa: E402

CONFIG = ROOT / "configs" / "synth.yaml"
# (file, size, identity seed, bank row name, overrides, render seed, figure scale)
EXAMPLES = (
    (
        "model.jpg",
        (256, 176),
        31,
        "fashionWOMENCardigansid0000192601_1front.jpg",
        ["background.clutter_probability=0.0"],
        4,
        1.0,
    ),
    (
        "shopper.jpg",
        (384, 288),
        51,
        "fashionWOMENCardigansid0000085303_2side.jpg",
        ["background.clutter_probability=1.0"],
        9,
        0.72,
    ),
    (
        "garment.jpg",
        (256, 176),
        37,
        "fashionMENSweatersid0000495903_4full.jpg",
        ["background.clutter_probability=0.0"],
        4,
        1.0,
    ),
)


def render(size, identity_seed, row_name, overrides, render_seed, scale=1.0):
    cfg = load_config(SynthConfig, CONFIG, [f"size=[{size[0]}, {size[1]}]", *overrides])
    bank = {row.name: row for row in read_bank()}
    identity = sample_identity(identity_seed, "test", np.random.default_rng(identity_seed), cfg)
    pose = jitter_pose(
        bank[row_name],
        np.random.default_rng(render_seed),
        PoseJitterConfig.still(scale),
        size=cfg.size,
    )
    return render_person(identity, pose, cfg, np.random.default_rng(render_seed))


def main() -> None:
    out_dir = ROOT / "examples"
    for name, size, identity_seed, row_name, overrides, render_seed, scale in EXAMPLES:
        out = render(size, identity_seed, row_name, overrides, render_seed, scale)
        save_image(out_dir / name, out.image, quality=92)
        print(f"wrote {out_dir / name}")


if __name__ == "__main__":
    main()
