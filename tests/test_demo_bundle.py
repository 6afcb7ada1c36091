"""The committed demo bundle: on a fresh clone the README's first command works with it."""

from pathlib import Path

import pytest

import infer
from adgan.bundle import load_bundle
from common.image_io import load_image

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bundles" / "demo"
EXAMPLES = ROOT / "examples"


def test_the_demo_bundle_is_small_and_says_what_it_is():
    assert (DEMO / "config.json").is_file(), "bundles/demo is part of the repository"
    assert sum(f.stat().st_size for f in DEMO.iterdir()) <= 30 * 2**20
    info = load_bundle(DEMO).info
    assert info["dtype"] == "int8" and "SynthFashion" in info["notes"]


@pytest.mark.slow
def test_the_readme_command_runs_on_the_examples(tmp_path, capsys):
    out, panel = tmp_path / "out.png", tmp_path / "panel.png"
    args = ["--source", str(EXAMPLES / "model.jpg"), "--pose", str(EXAMPLES / "shopper.jpg")]
    args += [
        "--swap",
        f"upper={EXAMPLES / 'garment.jpg'}",
        "--out",
        str(out),
        "--panel",
        str(panel),
    ]
    assert infer.main(args) == 0, capsys.readouterr().err
    h, w = load_bundle(DEMO).generator.config.image_size
    assert load_image(out).shape == (h, w, 3)
    k = -(-256 // h)  # the panel is enlarged to at least 256 rows
    assert load_image(panel).shape == (k * h, 4 * k * w, 3)
