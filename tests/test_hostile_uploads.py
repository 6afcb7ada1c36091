"""The hostile-upload corpus (tests/hostile_uploads.py) against the service: every broken
or hostile file is a 4xx that names the problem and the next good request succeeds; odd
but valid photos are accepted and converted right; against a real server in its own
process, memory stays bounded (peak RSS within 1.5x of the RSS of a server that has
answered once; the peak of loading the bundle is reset first)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.checkpoint import read_config
from studio.pipeline import Pipeline
from studio.serve import ROOT, ServeSettings, create_app
from studio.stub import StandingPerson
from studio.uploads import decode_photo
from tests.hostile_uploads import (
    cmyk_jpeg,
    corpus,
    encode,
    exif_rotated_jpeg,
    hostile,
    photo,
    png16,
    post_kwargs,
    reset_peak,
    run_corpus,
    vm_kb,
    zip_bytes,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights")

UNTHROTTLED = {"refused_burst": 100_000, "client_burst": 100_000}  # one address sends it all
GOOD = {k: encode(photo(seed=i), "PNG") for i, k in enumerate(("source", "pose"))}
GOOD_FILES = [(k, (f"{k}.png", v, "image/png")) for k, v in GOOD.items()]
ACCEPTED = [k for k, c in corpus().items() if c.status == 200]


@pytest.fixture(scope="module")
def client(tiny_bundle):
    pipe = Pipeline.from_bundle(tiny_bundle)
    pipe.keypoints = StandingPerson()
    app = create_app(pipe, ServeSettings(**UNTHROTTLED), info=read_config(tiny_bundle))
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("name", list(hostile()))
def test_a_hostile_upload_is_a_4xx_with_a_message_and_the_next_request_succeeds(client, name):
    case = corpus()[name]
    r = client.post("/v1/generate", **post_kwargs(case))
    assert r.status_code == case.status, r.text
    assert case.message in r.json()["detail"]
    assert client.post("/v1/generate", files=GOOD_FILES).status_code == 200


@pytest.mark.parametrize("name", ACCEPTED)
def test_an_odd_but_valid_photo_is_accepted(client, name):
    r = client.post("/v1/generate", **post_kwargs(corpus()[name]))
    assert r.status_code == 200, r.text


LIMITS = dict(max_bytes=10 * 2**20, max_pixels=40_000_000, max_side=12_000, work_side=1024)


def decoded(data: bytes) -> np.ndarray:
    return decode_photo(data, "photo", **LIMITS).astype(np.float64)


def test_odd_photos_are_converted_right():
    upright = decoded(exif_rotated_jpeg(1))  # as stored: 240 high, 180 wide
    turned = decoded(exif_rotated_jpeg(6))  # EXIF 6: shown turned 90 degrees clockwise
    assert upright.shape == (240, 180, 3) and turned.shape == (180, 240, 3)
    assert np.abs(turned - np.rot90(upright, k=-1)).mean() < 1.0
    assert np.abs(decoded(exif_rotated_jpeg(99)) - upright).mean() < 1.0  # invalid: ignored
    rgb = photo(seed=4).astype(np.float64)
    assert np.abs(decoded(cmyk_jpeg()) - rgb).mean() < 8  # JPEG's loss, not inverted ink
    grey = decoded(png16())
    assert grey.shape == (240, 180, 3) and np.all(grey == 128)  # 32896 / 257
    jpeg = encode(photo(seed=2), "JPEG", quality=90)
    assert np.array_equal(decoded(jpeg + zip_bytes()), decoded(jpeg))
    wide = decoded(encode(photo(300, 3000), "JPEG"))  # aspect 10, the most accepted
    assert wide.shape == (102, 1024, 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_corpus_against_a_real_server_keeps_its_memory_bounded(tiny_bundle):
    """The server in its own process (the load bench's, with stand-in keypoints), so that
    its peak RSS (VmHWM) is its own. Run with -s to see the table."""
    import httpx

    port = free_port()
    settings = [f"--set={k}={v}" for k, v in UNTHROTTLED.items()]
    cmd = [sys.executable, str(ROOT / "bench" / "serve_load.py"), "--serve-port", str(port)]
    cmd += ["--bundle", str(tiny_bundle), "--stub", *settings]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert httpx.post(f"{url}/v1/generate", files=GOOD_FILES, timeout=60).status_code == 200
        reset_peak(server.pid)  # loading the bundle peaked higher than serving
        idle = vm_kb(server.pid, "VmRSS") / 1024
        answers = run_corpus(f"{url}/v1/generate", server.pid, GOOD, corpus())
        health = httpx.get(f"{url}/healthz").json()
    finally:
        server.terminate()
        server.wait(30)
    print(f"\nserver RSS after one good request: {idle:.0f} MB")
    print("| upload | status | next good request | server peak RSS MB | detail |")
    print("|---|---|---|---|---|")
    for a in answers:
        print(f"| {a.name} | {a.status} | {a.next_status} | {a.peak_mb:.0f} | {a.detail[:90]} |")
    for a in answers:
        assert a.status == corpus()[a.name].status, a
        assert a.next_status == 200, a
    peak = max(a.peak_mb for a in answers)
    assert peak <= 1.5 * idle, (peak, idle)
    assert health["failed"] == 0 and health["refused"] == len(hostile())
