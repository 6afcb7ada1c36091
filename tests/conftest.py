"""Shared fixtures: the real-format samples in ../shared/data and a tiny SynthFashion set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.config import load_config
from synth.config import SynthConfig
from synth.dataset import generate

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: the real samples are not part of the project."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-format samples not found at {SHARED_DATA}")
    return SHARED_DATA


def small_config(size: tuple[int, int] = (128, 88), **dataset) -> SynthConfig:
    overrides = [f"size=[{size[0]}, {size[1]}]", "faces.size=64"]
    overrides += [f"dataset.{k}={v}" for k, v in dataset.items()]
    return load_config(SynthConfig, ROOT / "configs" / "synth.yaml", overrides)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 people x 3 poses at 128x88 (the last 2 people are the test split)."""
    out = tmp_path_factory.mktemp("synthfashion")
    generate(
        out,
        identities=6,
        poses=3,
        seed=7,
        config=small_config(test_fraction=0.34),
        workers=1,
        progress=False,
        overwrite=True,
    )
    return out
