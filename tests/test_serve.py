"""The web service on a tiny random bundle: the API (happy path, every refusal and its
message, busy answers, batching, nothing kept on disk, the OpenAPI schema) through
FastAPI's test client, and the page end to end in real headless Chromium.

Random keypoint weights find nobody, so the pipeline's keypoint estimator is replaced by
`studio.stub.StandingPerson`: one person in every photo except nearly black ones, where it
sees nobody, so that "no person found" can be tested too.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from common.checkpoint import read_config
from common.config import ConfigError
from studio import serve
from studio.pipeline import Pipeline
from studio.serve import ServeSettings, create_app, load_settings, server_config
from studio.stub import StandingPerson
from studio.worker import GenerateRequest, ModelWorker, Photo
from tests.conftest import (
    LyingOnItsSide,
    StandingInACrowd,
    box_text,
    offered,
    uvicorn_in_thread,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Watched:
    """The pipeline, with its batches recorded and optionally held at a gate or slowed."""

    def __init__(self, pipe: Pipeline, *, gate: threading.Event | None = None, delay=0.0):
        self.pipe, self.gate, self.delay = pipe, gate, delay
        self.people_calls: list[int] = []
        self.boxes: list[list] = []
        self.generate_calls: list[int] = []
        self.framings: list[str] = []
        self.parsed: list[list[bool]] = []
        self.fail_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)

    def people(self, photos, boxes=None, parse=None):
        self.people_calls.append(len(photos))
        self.boxes.append(list(boxes or []))
        self.parsed.append(list(parse or []))
        if self.gate is not None:
            assert self.gate.wait(30)
        return self.pipe.people(photos, boxes, parse)

    def generate_many(self, jobs):
        self.generate_calls.append(len(jobs))
        self.framings += [job.framing for job in jobs]
        time.sleep(self.delay)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("simulated CUDA out of memory")
        return self.pipe.generate_many(jobs)


def png(h: int = 100, w: int = 80, seed: int = 0, value: int | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (
        np.full((h, w, 3), value, np.uint8)
        if value is not None
        else rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    )
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def jpeg(h: int = 100, w: int = 80) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def files(**fields: bytes | tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    out = []
    for field, value in fields.items():
        name, data = value if isinstance(value, tuple) else (f"{field}.png", value)
        out.append((field, (name, data, "image/png")))
    return out


GOOD = {"source": png(seed=1), "pose": png(seed=2)}
HEIC = (Path(__file__).parent / "data" / "model.heic").read_bytes()


@pytest.fixture(scope="module")
def bundle(tiny_bundle) -> Path:
    return tiny_bundle


@pytest.fixture(scope="module")
def pipe(bundle) -> Pipeline:
    pipe = Pipeline.from_bundle(bundle)
    pipe.keypoints = StandingPerson()
    return pipe


@contextmanager
def client_for(pipeline: Any, bundle: Path, **settings: Any) -> Iterator[TestClient]:
    app = create_app(pipeline, ServeSettings(**settings), info=read_config(bundle))
    with TestClient(app) as client:
        yield client


LIMITS = {  # budgets high: these tests send many bad requests from one address
    "refused_burst": 1000,
    "client_burst": 1000,
    "max_photo_mb": 0.1,
    "max_request_mb": 0.25,
    "max_pixels": 250_000,
    "max_side": 2000,
    "max_swaps": 2,
}


@pytest.fixture(scope="module")
def client(pipe, bundle) -> Iterator[TestClient]:
    with client_for(pipe, bundle, **LIMITS) as client:
        yield client


def is_png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n")


def test_generate_returns_the_png(client):
    r = client.post("/v1/generate", files=files(**GOOD))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and is_png(r.content)
    assert np.asarray(Image.open(io.BytesIO(r.content))).shape == (32, 24, 3)
    assert r.headers["x-batch-size"] == "1"
    # swaps, a JPEG, and a PNG whose name and declared type say text: content decides
    swapped = files(source=jpeg(), pose=GOOD["pose"], swap_upper=png(seed=3))
    swapped.append(("swap_lower", ("notes.txt", png(seed=4), "text/plain")))
    r = client.post("/v1/generate", files=swapped)
    assert r.status_code == 200, r.text
    assert is_png(r.content)


def test_a_request_chooses_its_backdrop(pipe, bundle):
    def corner(client, backdrop=None):
        sent = files(**GOOD)
        if backdrop is not None:
            sent.append(("backdrop", (None, backdrop.encode(), None)))
        r = client.post("/v1/generate", files=sent)
        assert r.status_code == 200, r.text
        return tuple(np.asarray(Image.open(io.BytesIO(r.content)))[0, 0])

    with client_for(pipe, bundle) as client:
        assert corner(client, "#00ff00") == (0, 255, 0)
        assert corner(client) not in ((0, 255, 0), (0, 0, 255))  # the photo's background
        assert corner(client, "auto") == corner(client)  # the service's default: auto
    with client_for(pipe, bundle, backdrop="0,0,255") as client:
        assert corner(client) == (0, 0, 255)  # the server's default
        assert corner(client, "photo") != (0, 0, 255)  # a request keeps the photo's


def test_a_request_chooses_its_framing(pipe, bundle, monkeypatch):
    framings: list[str] = []
    generate_many = pipe.generate_many

    def spy(jobs):
        framings.extend(job.framing for job in jobs)
        return generate_many(jobs)

    monkeypatch.setattr(pipe, "generate_many", spy)
    for default, asked, used in (("source", "pose", "pose"), ("source", None, "source")):
        with client_for(pipe, bundle, framing=default) as client:
            sent = files(**GOOD) + ([("framing", (None, asked.encode(), None))] if asked else [])
            assert client.post("/v1/generate", files=sent).status_code == 200
        assert framings.pop() == used
    with client_for(pipe, bundle, framing="pose") as client:  # the server's default
        assert client.post("/v1/generate", files=files(**GOOD)).status_code == 200
    assert framings.pop() == "pose"
    with pytest.raises(ValueError, match="framing 'tight'"):
        ServeSettings(framing="tight")


def test_a_request_chooses_its_card_size(pipe, bundle):
    def shape(client, asked=None):
        sent = files(**GOOD) + ([("scale", (None, asked.encode(), None))] if asked else [])
        r = client.post("/v1/generate", files=sent)
        assert r.status_code == 200, r.text
        return np.asarray(Image.open(io.BytesIO(r.content))).shape

    with client_for(pipe, bundle) as client:
        assert shape(client) == (32, 24, 3)  # the generator's size: card_scale 1
        assert shape(client, "2") == (64, 48, 3)
    with client_for(pipe, bundle, card_scale=3) as client:
        assert shape(client) == (96, 72, 3)  # the server's default
        assert shape(client, "1") == (32, 24, 3)
        assert client.get("/healthz").json()["image_size"] == [96, 72]  # a card by default


def test_a_request_picks_a_person_by_box_and_hears_of_the_others(pipe, bundle, monkeypatch):
    given: list = []
    people = pipe.people

    def spy(photos, boxes=None, parse=None):
        given.append(list(boxes or []))
        return people(photos, boxes, parse)

    monkeypatch.setattr(pipe, "people", spy)
    monkeypatch.setattr(pipe, "keypoints", StandingInACrowd((40, 10, 30, 60)))
    box = [("source_box", (None, b"10,20,60,70", None))]
    with client_for(pipe, bundle) as client:
        answer = client.post("/v1/generate", files=files(**GOOD) + box)
        assert answer.status_code == 200, answer.text
        assert given.pop() == [(10.0, 20.0, 60.0, 70.0), None]
        note = answer.headers["X-Note"]  # the pose photo's pick, and the other person's box
        other = offered(pipe, (40, 10, 30, 60))
        assert "pose.png): 2 people found" in note and box_text(other) in note
        listed = json.loads(answer.headers["X-People"])  # the same, for the page
        assert list(listed) == ["pose"] and listed["pose"]["others"] == [[round(v) for v in other]]
        assert len(listed["pose"]["used"]) == 4 and listed["pose"]["frame"] == [80, 100]
        bad = [("pose_box", (None, b"10,20", None))]
        refused = client.post("/v1/generate", files=files(**GOOD) + bad)
        assert refused.status_code == 422 and "pose_box" in refused.json()["detail"]
        # the person of a swap's photo, by the box field beside it
        swap = [*files(swap_upper=png(seed=3)), ("swap_upper_box", (None, b"1,2,30,40", None))]
        assert client.post("/v1/generate", files=files(**GOOD) + swap).status_code == 200
        assert given.pop() == [None, None, (1.0, 2.0, 30.0, 40.0)]
        stray = [("swap_hair_box", (None, b"1,2,30,40", None))]
        refused = client.post("/v1/generate", files=files(**GOOD) + stray)
        assert refused.status_code == 422
        assert "no 'swap_hair' photo" in refused.json()["detail"]
    # a photo longer than work_side is read shrunk: the boxes' frame says so, for the page
    with client_for(pipe, bundle, work_side=50) as client:
        answer = client.post("/v1/generate", files=files(**GOOD))
        assert answer.status_code == 200, answer.text
        assert json.loads(answer.headers["X-People"])["pose"]["frame"] == [40, 50]


def test_a_photo_read_turned_upright_is_told(pipe, bundle, monkeypatch):
    """A person lying on their side (an orientation tag lost): the service reads the photo
    turned upright, X-Note says so, and X-Turned names the photo fields, for the page."""
    monkeypatch.setattr(pipe, "keypoints", LyingOnItsSide())
    with client_for(pipe, bundle) as client:
        answer = client.post("/v1/generate", files=files(**GOOD))
        assert answer.status_code == 200, answer.text
        assert json.loads(answer.headers["X-Turned"]) == {"source": 1, "pose": 1}
        assert (
            "(source.png): the person in this photo lies on their side" in answer.headers["X-Note"]
        )
    monkeypatch.setattr(pipe, "keypoints", StandingPerson())
    with client_for(pipe, bundle) as client:
        answer = client.post("/v1/generate", files=files(**GOOD))
        assert answer.status_code == 200 and "X-Turned" not in answer.headers


class BackInTheLight(StandingPerson):
    """`StandingPerson`, seen from behind (no nose, no eyes) in light photos (and their
    crops: median over 180)."""

    def predict_many(self, images, boxes=None):
        found = super().predict_many(images, boxes)
        for image, f in zip(images, found, strict=True):
            if np.median(image) > 180:
                f.keypoints[[0, 14, 15]] = -1.0
        return found


def test_a_source_seen_from_behind_for_a_front_pose_is_told(pipe, bundle, monkeypatch):
    """The catalogue person seen from behind, the shopper from the front: the card shows
    the back, and X-Note and X-Behind (for the page) say so; the other way round names the
    pose; the same side in both, neither."""
    monkeypatch.setattr(pipe, "keypoints", BackInTheLight())
    light = png(value=210)
    with client_for(pipe, bundle) as client:
        answer = client.post("/v1/generate", files=files(source=light, pose=GOOD["pose"]))
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Behind"] == "source"
        assert "(source.png): its person is seen from behind" in answer.headers["X-Note"]
        answer = client.post("/v1/generate", files=files(source=GOOD["source"], pose=light))
        assert answer.headers["X-Behind"] == "pose"
        answer = client.post("/v1/generate", files=files(**GOOD))
        assert "X-Behind" not in answer.headers and "X-Note" not in answer.headers


BAD_CASES = {
    "missing pose": (files(source=GOOD["source"]), 422, "missing field 'pose'"),
    "unknown field": (files(photo=png(), **GOOD), 422, "unknown field 'photo'"),
    "text as an image": (
        [("source", ("a.jpg", b"hello, I am text", "image/jpeg")), *files(pose=GOOD["pose"])],
        415,
        "catalogue photo (a.jpg): not a JPEG, PNG or WebP",
    ),
    "HEIC (the service reads JPEG, PNG, WebP; phones' browsers convert)": (
        [("source", ("a.heic", HEIC, "image/heic")), *files(pose=GOOD["pose"])],
        415,
        "catalogue photo (a.heic): not a JPEG, PNG or WebP",
    ),
    "empty file": (files(source=b"", pose=GOOD["pose"]), 422, "the file is empty"),
    "photo over the byte limit": (
        files(source=GOOD["source"], pose=b"\x89PNG\r\n\x1a\n" + bytes(150_000)),
        413,
        "shopper's photo (pose.png): 0.14 MB is over the limit of 0.1 MB",
    ),
    "request over the byte limit": (
        files(source=png(175, 175, 5), pose=png(175, 175, 6), swap_hair=png(175, 175, 7)),
        413,
        "the request is over the limit of 0.25 MB",
    ),
    "too many pixels": (
        files(source=png(600, 600, value=90), pose=GOOD["pose"]),
        413,
        "600x600 pixels is over the limit (0.2 megapixels",
    ),
    "a side too long": (
        files(source=GOOD["source"], pose=png(8, 2500, value=90)),
        413,
        "2500x8 pixels is over the limit",
    ),
    "corrupt image": (
        files(source=GOOD["source"][: len(GOOD["source"]) // 2], pose=GOOD["pose"]),
        422,
        "catalogue photo (source.png): truncated or corrupt",
    ),
    "no person": (
        files(source=GOOD["source"], pose=("dark.png", png(value=3))),
        422,
        "the shopper's photo (dark.png): no person found",
    ),
    "bad swap component": (
        files(**GOOD, swap_cape=png()),
        422,
        "field 'swap_cape': unknown component 'cape'; valid: background, pants",
    ),
    "the same component twice": (
        files(**GOOD, swap_upper=png(), swap_top=png()),
        422,
        "'swap_upper' and 'swap_top' swap the same component",
    ),
    "too many swaps": (
        files(**GOOD, swap_hair=png(), swap_face=png(), swap_arms=png()),
        422,
        "3 swaps; at most 2",
    ),
    "a text field": ([*files(pose=GOOD["pose"]), ("source", (None, b"x", None))], 422, "not text"),
    "a bad backdrop": (
        [*files(**GOOD), ("backdrop", (None, b"sky", None))],
        422,
        "field 'backdrop': colour 'sky'",
    ),
    "a long backdrop": (
        [*files(**GOOD), ("backdrop", (None, b"w" * 100, None))],
        422,
        "field 'backdrop': at most 64 characters",
    ),
    "two backdrops": (
        [*files(**GOOD), *[("backdrop", (None, b"white", None))] * 2],
        422,
        "field 'backdrop' is given twice",
    ),
    "a bad framing": (
        [*files(**GOOD), ("framing", (None, b"tight", None))],
        422,
        "field 'framing': 'tight'; choose one of source, pose",
    ),
    "a bad scale": (
        [*files(**GOOD), ("scale", (None, b"4", None))],
        422,
        "field 'scale': '4'; choose one of 1, 2, 3",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_a_4xx_with_a_message(client, case):
    sent, status, message = BAD_CASES[case]
    r = client.post("/v1/generate", files=sent)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "kind", "status", "message"),
    [
        (b'{"source": 1}', "application/json", 415, "send multipart/form-data"),
        (b"garbage", "multipart/form-data; boundary=xyz", 400, "malformed multipart form"),
        (b"x", "multipart/form-data", 400, "Missing boundary"),
    ],
)
def test_bad_body_is_a_4xx_with_a_message(client, body, kind, status, message):
    r = client.post("/v1/generate", content=body, headers={"content-type": kind})
    assert r.status_code == status and message in r.json()["detail"]


def test_a_declared_length_over_the_limit_is_refused_before_reading(client):
    r = client.post(
        "/v1/generate",
        content=b"",
        headers={"content-type": "multipart/form-data; boundary=x", "content-length": "10000000"},
    )
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]


def test_a_streamed_body_is_cut_off_at_the_limit(client):
    def chunks():  # no Content-Length: the limit must hold while the body streams in
        yield b'--x\r\nContent-Disposition: form-data; name="source"; filename="a.png"\r\n\r\n'
        for _ in range(100):
            yield bytes(10_000)

    kind = {"content-type": "multipart/form-data; boundary=x"}
    r = client.post("/v1/generate", content=chunks(), headers=kind)
    assert r.status_code == 413 and "the request is over the limit of 0.25 MB" in r.json()["detail"]


def test_still_answering_after_bad_input(client):
    for sent, _, _ in BAD_CASES.values():
        client.post("/v1/generate", files=sent)
    r = client.post("/v1/generate", files=files(**GOOD))
    assert r.status_code == 200 and is_png(r.content)
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["queue_depth"] == 0


REFUSALS_BY_REASON = {  # a request for each reason /healthz counts refusals under
    "malformed": {"content": b"garbage", "kind": "multipart/form-data; boundary=xyz"},
    "not_multipart": {"content": b'{"source": 1}', "kind": "application/json"},
    "too_large": {"files": BAD_CASES["photo over the byte limit"][0]},
    "not_an_image": {"files": BAD_CASES["text as an image"][0]},
    "bad_field": {"files": BAD_CASES["unknown field"][0]},
    "bad_image": {"files": BAD_CASES["empty file"][0]},
    "no_person": {"files": BAD_CASES["no person"][0]},
}


def test_healthz_counts_refused_requests_by_reason(pipe, bundle):
    with client_for(pipe, bundle, **LIMITS) as client:
        before = client.get("/healthz").json()
        assert before["refused"] == 0 and set(before["refused_by_reason"]) >= {"busy"}
        for reason, request in REFUSALS_BY_REASON.items():
            if "files" in request:
                r = client.post("/v1/generate", files=request["files"])
            else:
                headers = {"content-type": request["kind"]}
                r = client.post("/v1/generate", content=request["content"], headers=headers)
            assert 400 <= r.status_code < 500
            counts = client.get("/healthz").json()["refused_by_reason"]
            assert counts[reason] == 1, (reason, counts)
        client.post("/v1/generate", files=REFUSALS_BY_REASON["no_person"]["files"])
        assert client.post("/v1/generate", files=files(**GOOD)).status_code == 200
        health = client.get("/healthz").json()
    by_reason = health["refused_by_reason"]
    assert by_reason["no_person"] == 2 and by_reason["busy"] == 0
    assert health["refused"] == len(REFUSALS_BY_REASON) + 1 and health["served"] == 1


def test_a_client_sending_garbage_is_throttled_and_its_neighbours_are_not(pipe, bundle):
    # behind a proxy (the test client's address) each X-Forwarded-For is a client
    limits = {**LIMITS, "refused_burst": 3, "refused_rate": 0.01, "throttle_delay_s": 0}
    with client_for(pipe, bundle, forwarded_by="testclient", **limits) as client:

        def post(who: str, kind: str = "", **request):
            headers = {"x-forwarded-for": who} | ({"content-type": kind} if kind else {})
            return client.post("/v1/generate", headers=headers, **request)

        garbage = {"content": b"garbage", "kind": "application/json"}
        statuses = [post("6.6.6.6", **garbage).status_code for _ in range(5)]
        assert statuses == [415, 415, 415, 429, 429]
        r = post("6.6.6.6", files=files(**GOOD))  # the sender of garbage waits, even for this
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 99
        assert "too many refused requests from your address" in r.json()["detail"]
        assert post("7.7.7.7", files=files(**GOOD)).status_code == 200  # a neighbour does not
        health = client.get("/healthz").json()
    assert health["refused_by_reason"]["not_multipart"] == 3
    assert health["refused_by_reason"]["rate_limited"] == 3
    assert health["guard"]["clients_out_of_refusals"] == 1 and health["served"] == 1


def test_a_synthetic_only_bundle_says_so_beside_every_result(pipe, bundle):
    info = {**read_config(bundle), "synthetic_only": True}
    with TestClient(create_app(pipe, ServeSettings(), info=info)) as client:
        r = client.post("/v1/generate", files=files(**GOOD))
        assert r.status_code == 200 and "synthetic people only" in r.headers["x-warning"]
        assert "synthetic people only" in client.get("/healthz").json()["warning"]
    with client_for(pipe, bundle) as client:  # a bundle that saw real people: no warning
        assert "x-warning" not in client.post("/v1/generate", files=files(**GOOD)).headers
        assert client.get("/healthz").json()["warning"] is None


def test_a_model_failure_fails_that_request_only(pipe, bundle):
    watched = Watched(pipe)
    with client_for(watched, bundle) as client:
        watched.fail_next = True
        r = client.post("/v1/generate", files=files(**GOOD))
        assert r.status_code == 500 and "generation failed" in r.json()["detail"]
        assert client.post("/v1/generate", files=files(**GOOD)).status_code == 200
        health = client.get("/healthz").json()
        assert health["failed"] == 1 and health["refused"] == 0


def post_in_threads(
    client: TestClient, requests: list[list]
) -> tuple[list, list[threading.Thread]]:
    answers: list = [None] * len(requests)

    def post(i: int) -> None:
        answers[i] = client.post("/v1/generate", files=requests[i])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    return answers, threads


def test_concurrent_requests_share_one_model_batch(pipe, bundle):
    watched = Watched(pipe)
    with client_for(watched, bundle, max_batch=4, max_wait_ms=10_000) as client:
        sent = [files(**GOOD) for _ in range(3)]
        sent.append(files(source=GOOD["source"], pose=("dark.png", png(value=3))))
        answers, threads = post_in_threads(client, sent)
        for t in threads:
            t.join(60)
    assert [a.status_code for a in answers] == [200, 200, 200, 422]
    assert watched.people_calls == [8]  # every photo of the 4 requests in one batch
    assert watched.generate_calls == [3]  # the request without a person cost the others nothing
    assert all(a.headers["x-batch-size"] == "4" for a in answers[:3])


def test_a_full_queue_answers_429_with_retry_after(pipe, bundle):
    gate = threading.Event()
    watched = Watched(pipe, gate=gate)
    settings = {"max_batch": 1, "max_wait_ms": 0, "max_queue": 1, "retry_after_s": 3}
    with client_for(watched, bundle, **settings) as client:
        worker = client.app.state.worker
        answers, threads = post_in_threads(client, [files(**GOOD)])
        while not watched.people_calls:  # the first request is held inside the model
            time.sleep(0.01)
        more, threads2 = post_in_threads(client, [files(**GOOD)])
        while worker.depth < 2:  # the second waits in the queue
            time.sleep(0.01)
        r = client.post("/v1/generate", files=files(**GOOD))
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert "already waiting" in r.json()["detail"]
        assert client.get("/healthz").json()["queue_depth"] == 2
        gate.set()
        for t in threads + threads2:
            t.join(60)
        assert [a.status_code for a in answers + more] == [200, 200]
        health = client.get("/healthz").json()
        assert health["refused"] == 1 and health["refused_by_reason"]["busy"] == 1


def test_a_request_given_up_while_queued_costs_the_model_nothing(pipe):
    gate = threading.Event()
    watched = Watched(pipe, gate=gate)
    worker = ModelWorker(watched, max_batch=1, max_wait_ms=0, max_queue=4)
    worker.start()
    try:
        photos = [np.asarray(Image.open(io.BytesIO(GOOD[k]))) for k in ("source", "pose")]
        request = GenerateRequest(Photo(photos[0], "a"), Photo(photos[1], "b"))
        first = worker.submit(request)
        while not watched.people_calls:
            time.sleep(0.01)
        second, third = worker.submit(request), worker.submit(request)
        assert second.cancel()  # the client disconnected
        gate.set()
        assert first.result(30).image.shape == (32, 24, 3)
        assert third.result(30).batch_size == 1
        assert watched.people_calls == [2, 2]  # the second was never run
    finally:
        worker.stop()


def test_uploads_are_not_kept_unless_asked(pipe, bundle, tmp_path, monkeypatch):
    tmp, cwd, kept = tmp_path / "tmp", tmp_path / "cwd", tmp_path / "kept"
    tmp.mkdir(), cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(cwd)

    def no_rollover(self):
        raise AssertionError("an upload was spooled to disk")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", no_rollover)
    big = files(source=png(700, 600, seed=8), pose=GOOD["pose"])  # over starlette's 1 MB spool
    assert len(big[0][1][1]) > 2**20
    with client_for(pipe, bundle) as client:
        assert client.post("/v1/generate", files=big).status_code == 200
    assert list(tmp.iterdir()) == [] and list(cwd.iterdir()) == []

    with client_for(pipe, bundle, keep_uploads=str(kept)) as client:
        assert client.post("/v1/generate", files=big).status_code == 200
        dark = files(source=GOOD["source"], pose=("dark.png", png(value=3)))
        assert client.post("/v1/generate", files=dark).status_code == 422
    folders = sorted(kept.iterdir())
    assert len(folders) == 2
    names = {sorted(p.name for p in f.iterdir())[-1] for f in folders}
    assert names == {"source-source.png"}
    contents = [sorted(p.name for p in f.iterdir()) for f in folders]
    assert ["answer.json", "pose-pose.png", "result.png", "source-source.png"] in contents
    assert ["answer.json", "pose-dark.png", "source-source.png"] in contents


def test_healthz_page_and_openapi(client, bundle):
    health = client.get("/healthz").json()
    assert health["bundle"]["version"] == read_config(bundle)["version"]
    assert health["image_size"] == [32, 24] and health["limits"]["max_swaps"] == 2
    assert health["limits"]["work_side"] > 0  # the frame of the boxes a request gives
    assert health["limits"]["refused_burst"] == 1000 and health["guard"]["uploads_reading"] == 0
    assert {"rate_limited", "slow_body", "slow_headers"} <= set(health["refused_by_reason"])
    page = client.get("/")
    assert page.status_code == 200 and "Processing…" in page.text
    assert client.get("/static/app.js").status_code == 200
    icon = client.get("/favicon.ico")  # browsers ask for it: no 404 in their console
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/v1/generate"]["post"]
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["source", "pose"] and "swap_upper" in form["properties"]
    assert "image/png" in op["responses"]["200"]["content"]
    assert {"400", "413", "415", "422", "429"} <= set(op["responses"])
    assert "/healthz" in schema["paths"]


def test_settings_file_is_strict_and_matches_the_defaults():
    assert load_settings() == ServeSettings()
    with pytest.raises(ConfigError, match="valid keys for ServeSettings: backdrop, body_min_rate"):
        load_settings(overrides=["max_batches=4"])
    assert load_settings(overrides=["backdrop='#ffffff'"]).backdrop == "#ffffff"
    assert load_settings().backdrop == "auto"
    with pytest.raises(ConfigError, match="colour 'sky'"):
        load_settings(overrides=["backdrop=sky"])
    assert load_settings(overrides=["card_scale=2"]).card_scale == 2
    with pytest.raises(ConfigError, match="card_scale 5"):
        load_settings(overrides=["card_scale=5"])


def test_cli_without_a_bundle_says_so(tmp_path, capsys):
    assert serve.main(["--bundle", str(tmp_path / "nothing")]) == 2
    assert "no model bundle at" in capsys.readouterr().err


@contextmanager
def serving(app) -> Iterator[str]:
    """uvicorn on a free loopback port, in a thread."""
    with uvicorn_in_thread(server_config(app, ServeSettings(), log_level="warning")) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)
def test_page_end_to_end_in_headless_chromium(pipe, bundle, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "model.png").write_bytes(png(240, 160, seed=11))
    (tmp_path / "me.jpg").write_bytes(jpeg(240, 160))
    (tmp_path / "notes.png").write_bytes(b"not an image at all")
    watched = Watched(pipe, delay=1.0)  # long enough to see the spinner
    info = {**read_config(bundle), "synthetic_only": True}  # as the demo bundle
    app = create_app(watched, ServeSettings(), info=info)
    failed: list[str] = []
    with serving(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(accept_downloads=True)
            page.on(
                "response",
                lambda r: failed.append(r.url) if r.status >= 400 and "/v1/" not in r.url else None,
            )
            page.goto(url)
            expect(page).to_have_title("Try it on: pose-guided person generation")
            expect(page.locator("#generate")).to_be_disabled()
            page.set_input_files("#source-input", str(tmp_path / "model.png"))
            page.set_input_files("#pose-input", str(tmp_path / "me.jpg"))
            expect(page.locator("#source-preview")).to_be_visible()
            expect(page.locator("#pose-preview")).to_be_visible()
            page.click("#generate")
            expect(page.locator("#spinner")).to_be_visible()
            expect(page.locator("#spinner")).to_contain_text("Processing…")
            expect(page.locator("#result-image")).to_be_visible(timeout=30_000)
            expect(page.locator("#spinner")).to_be_hidden()
            expect(page.locator("#warning")).to_be_visible()  # the demo's note, by the result
            expect(page.locator("#warning")).to_contain_text("synthetic people only")
            width = page.eval_on_selector("#result-image", "img => img.naturalWidth")
            assert width == 24
            with page.expect_download() as download:
                page.click("#download")
            saved = Path(download.value.path())
            assert is_png(saved.read_bytes())
            assert download.value.suggested_filename == "result.png"

            # a plain white background, chosen on the page: the new result's corner is white;
            # and the pose photo's frame
            page.select_option("#backdrop", "white")
            page.select_option("#framing", "pose")
            page.select_option("#scale", "2")
            page.click("#generate")
            corner = """() => {
                const img = document.getElementById("result-image");
                if (!img.complete || !img.naturalWidth) return null;
                const canvas = document.createElement("canvas");
                canvas.width = img.naturalWidth;
                canvas.height = img.naturalHeight;
                const context = canvas.getContext("2d");
                context.drawImage(img, 0, 0);
                return Array.from(context.getImageData(0, 0, 1, 1).data);
            }"""
            page.wait_for_function(f"({corner})()?.join() === '255,255,255,255'", timeout=30_000)
            width = page.eval_on_selector("#result-image", "img => img.naturalWidth")
            assert width == 48  # twice the generator's size, as chosen

            # which person of the catalogue photo, by the box typed on the page
            page.fill("#source-box", "10,20,60,70")
            page.click("#generate")
            page.wait_for_function(
                "() => !document.getElementById('spinner').hidden", timeout=30_000
            )
            expect(page.locator("#spinner")).to_be_hidden(timeout=30_000)
            assert watched.boxes[-1] == [(10.0, 20.0, 60.0, 70.0), None]
            page.fill("#source-box", "")

            # a garment from a third photo, and which of its people, in the swap's row
            page.click("#add-swap")
            row = page.locator(".swap-row")
            row.locator("select").select_option("upper")
            row.locator("input[type=file]").set_input_files(str(tmp_path / "model.png"))
            row.locator("input.box").fill("5,6,70,80")
            page.click("#generate")
            page.wait_for_function(
                "() => !document.getElementById('spinner').hidden", timeout=30_000
            )
            expect(page.locator("#spinner")).to_be_hidden(timeout=30_000)
            assert watched.boxes[-1] == [None, None, (5.0, 6.0, 70.0, 80.0)]
            assert watched.parsed[-1] == [True, False, True]  # the pose photo: keypoints only
            row.locator(".remove").click()

            # several people in both photos: the page offers each, and a click picks one
            pipe.keypoints = StandingInACrowd((5, 5, 20, 40))
            page.click("#generate")
            expect(page.locator("#people-found")).to_be_visible(timeout=30_000)
            source_row = page.locator('.people-row[data-field="source"] button.person')
            expect(source_row).to_have_count(2)
            expect(page.locator('.people-row[data-field="pose"] button.person')).to_have_count(2)
            expect(source_row.nth(0)).to_have_attribute("aria-pressed", "true")
            expect(page.locator("#note")).to_contain_text("the highlighted one was used")
            source_row.nth(1).click()
            other = [round(v) for v in offered(pipe, (5, 5, 20, 40))]
            expect(page.locator("#source-box")).to_have_value(box_text(other))
            expect(source_row.nth(1)).to_have_attribute("aria-pressed", "true")
            page.click("#generate")  # with the person picked; the thumbnails stay to pick from
            page.wait_for_function(
                "() => !document.getElementById('spinner').hidden", timeout=30_000
            )
            expect(page.locator("#spinner")).to_be_hidden(timeout=30_000)
            assert watched.boxes[-1] == [tuple(float(v) for v in other), None]
            expect(source_row).to_have_count(2)
            source_row.nth(0).click()  # back to the service's pick
            expect(page.locator("#source-box")).to_have_value("")
            pipe.keypoints = StandingPerson()

            # a bad photo: the page shows the service's message, and still works after
            page.set_input_files("#pose-input", str(tmp_path / "notes.png"))
            page.click("#generate")
            expect(page.locator("#error")).to_contain_text("not a JPEG, PNG or WebP image")
            expect(page.locator("#result")).to_be_hidden()
        finally:
            browser.close()
    assert watched.generate_calls == [1, 1, 1, 1, 1, 1]
    assert watched.framings == ["source"] + ["pose"] * 5  # the service's default, then the page's
    assert failed == []  # the favicon too


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)
def test_the_pages_thumbnails_show_where_the_service_saw_the_people(
    pipe, bundle, tmp_path, monkeypatch
):
    """A photo longer than work_side is read shrunk, and the people's boxes are in that
    frame: the page cuts each thumbnail from its full-size preview at the scaled place."""
    from playwright.sync_api import expect

    halves = np.zeros((240, 160, 3), np.uint8)
    halves[:, :80] = (255, 0, 0)
    halves[:, 80:] = (0, 0, 255)
    Image.fromarray(halves).save(tmp_path / "halves.png")
    # read at 53x80: a box at x 30..50 there is the blue half (x 90..150) of the preview
    monkeypatch.setattr(pipe, "keypoints", StandingInACrowd((30, 20, 20, 40)))
    app = create_app(pipe, ServeSettings(work_side=80), info=read_config(bundle))
    with page_generating(app, tmp_path / "halves.png", tmp_path / "halves.png") as page:
        expect(page.locator("#people-found")).to_be_visible(timeout=30_000)
        other = page.locator('.people-row[data-field="source"] button.person canvas').nth(1)
        centre = other.evaluate(
            "c => Array.from(c.getContext('2d').getImageData(24, 32, 1, 1).data)"
        )
        assert centre[:3] == [0, 0, 255], centre


LYING, LIGHT, SHOPPER = png(240, 160, seed=11), png(240, 160, value=210), png(240, 160, seed=12)


@pytest.mark.parametrize(
    ("estimator", "source", "pose", "note"),
    [
        (
            LyingOnItsSide,
            LYING,
            LYING,
            "The person in the catalogue photo lay on their side: the photo was read "
            "turned upright. The person in your photo lay on their side: the photo was "
            "read turned upright.",
        ),
        (
            BackInTheLight,
            LIGHT,
            SHOPPER,
            "The person in the catalogue photo is seen from behind: the card shows their "
            "back where the front should be. Use a photo of the person from the front.",
        ),
    ],
    ids=["turned upright", "seen from behind"],
)
def test_the_page_says_what_the_card_makes_of_each_photo(
    pipe, bundle, tmp_path, monkeypatch, estimator, source, pose, note
):
    """Both photos read turned upright (a person lying on their side in each), and a
    catalogue person seen from behind for a shopper seen from the front."""
    from playwright.sync_api import expect

    (tmp_path / "model.png").write_bytes(source)
    (tmp_path / "shopper.png").write_bytes(pose)
    monkeypatch.setattr(pipe, "keypoints", estimator())
    app = create_app(pipe, ServeSettings(), info=read_config(bundle))
    with page_generating(app, tmp_path / "model.png", tmp_path / "shopper.png") as page:
        expect(page.locator("#result")).to_be_visible(timeout=30_000)
        expect(page.locator("#note")).to_have_text(note)
        expect(page.locator("#note")).not_to_contain_text("Several people")


@contextmanager
def page_generating(app: Any, source: Path, pose: Path) -> Iterator[Any]:
    """The page of `app` in headless Chromium, `source` and `pose` chosen, Generate clicked."""
    from playwright.sync_api import sync_playwright

    with serving(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            page.set_input_files("#source-input", str(source))
            page.set_input_files("#pose-input", str(pose))
            page.click("#generate")
            yield page
        finally:
            browser.close()
