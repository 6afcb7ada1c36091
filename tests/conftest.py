"""Shared fixtures: the real-format samples in ../shared/data and a tiny SynthFashion set."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from common.augment import AugmentConfig
from common.config import load_config
from studio.stub import StandingPerson, save_part, save_parts, tiny_networks
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


def augmentation_off(cls: type[AugmentConfig] = AugmentConfig, **on) -> AugmentConfig:
    """`cls` (the shared augmentation or a task's extension of it) with every augmentation
    off except those set in `on`: a test switches them on one at a time."""
    off = dict(
        scale=0,
        rotation_probability=0,
        shift=0,
        flip_probability=0,
        colour=0,
        hue=0,
        grayscale_probability=0,
        blur_probability=0,
        noise=0,
        erase_probability=0,
    )
    off.update({f.name: 0 for f in dataclasses.fields(cls) if f.name == "half_body_probability"})
    return cls(**{**off, **on})


def checkpoint(folder, name, module, task):
    return save_part(folder, name, module, task)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Checkpoints of tiny random networks: keypoints, parser, generator, DensePose."""
    networks = tiny_networks()
    found = save_parts(networks, tmp_path_factory.mktemp("parts"))
    return {**found, "generator_module": networks["generator"]}


def torchrun_train(args: list[str], tmp_path: Path, port: int):
    """`torchrun --nproc_per_node 2 train.py ARGS` on CPU (gloo), one thread per process."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        str(ROOT / "train.py"),
        "--runs",
        str(tmp_path),
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_bundle(parts, tmp_path_factory):
    """A bundle of the tiny random networks (fp16)."""
    from studio.bundle import make_bundle

    out = tmp_path_factory.mktemp("bundle") / "b"
    return make_bundle(parts["keypoints"], parts["parser"], parts["generator"], out)


@contextmanager
def uvicorn_in_thread(config: Any) -> Iterator[int]:
    """uvicorn with `config` (a uvicorn.Config) on a free loopback port, in a thread; the port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def offered(pipe, box: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The box the pipeline offers for another person the estimator outlined in `box`:
    grown to a crop as the person used is."""
    from common.geometry import expand_box

    h, w = pipe.size
    return tuple(float(v) for v in expand_box(box, pipe.margin, w / h))


def box_text(box) -> str:
    """A box as a note lists it and a user passes it back."""
    return ",".join(str(round(float(v))) for v in box)


class StandingInACrowd(StandingPerson):
    """`StandingPerson`, with someone else in box `other` of every photo searched whole
    (none where a box is given: the caller chose)."""

    def __init__(self, other: tuple[float, float, float, float] = (5, 5, 20, 40)) -> None:
        self.other = other

    def predict_many(self, images, boxes=None):
        found = super().predict_many(images, boxes)
        for n, f in enumerate(found):
            if boxes is None or boxes[n] is None:
                f.others = [self.other]
        return found


class LyingOnItsSide(StandingPerson):
    """A photo turned a quarter turn clockwise (an orientation tag lost): the whole photo's
    look sees `STANDING` lying with its head to the right, filling `box` (x, y, w, h) of the
    photo turned upright (None: all of it); a look inside a box sees it upright, as
    BlazePose does on the pipeline's upright crop."""

    def __init__(self, box: tuple[float, float, float, float] | None = None) -> None:
        self.box = box

    def predict_many(self, images, boxes=None):
        import numpy as np

        from common.geometry import apply_to_points, invert, quarter_turn
        from studio.stub import STANDING

        found = super().predict_many(images, boxes)
        for n, (f, image) in enumerate(zip(found, images, strict=True)):
            if boxes is not None and boxes[n] is not None:
                continue
            h, w = image.shape[:2]  # upright, the photo is w rows by h columns
            x, y, bw, bh = self.box or (0.0, 0.0, float(h), float(w))
            upright = STANDING * np.array([bw, bh]) + np.array([x, y])
            f.keypoints = apply_to_points(invert(quarter_turn(1, image.shape)), upright)
        return found
