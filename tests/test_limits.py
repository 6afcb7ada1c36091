"""The guard in front of the web service (studio.limits): token buckets on an injected
clock, every refusal the guard makes from the headers (and that the app behind it never
sees), per-client budgets, body deadlines, bounds on bodies being read, the header
deadline of uvicorn's protocol."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from studio.limits import ClientBuckets, GuardMiddleware, RequestGuard, TokenBucket, guarded_h11
from tests.conftest import uvicorn_in_thread

UPLOAD = "/v1/generate"
MULTIPART = {"content-type": "multipart/form-data; boundary=x"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spends_its_burst_then_refills_at_its_rate():
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token comes in 1/2 s
    assert bucket.take(0.25) == pytest.approx(0.25)  # nothing was spent by asking
    assert bucket.take(0.5) == 0.0
    assert bucket.full(10.0) and bucket.take(10.0) == 0.0
    bucket.tokens = 3
    for _ in range(10):  # refusals counted after the fact: the debt is bounded by the burst
        bucket.spend(10.0)
    assert bucket.tokens == -3 and bucket.wait(10.0) == pytest.approx(2.0)
    assert TokenBucket(rate=0.0, burst=1, now=0.0).take(5.0) == 0.0
    never = TokenBucket(rate=0.0, burst=1, now=0.0)
    never.take(0.0)
    assert never.wait(1e6) == float("inf")


def test_client_buckets_are_bounded():
    buckets = ClientBuckets(rate=1.0, burst=2, max_clients=100)
    for i in range(1000):  # a scan from many addresses, each spending a token
        buckets.get(f"10.0.{i // 256}.{i % 256}", float(i) / 1000).take(float(i) / 1000)
    assert len(buckets) <= 100
    assert buckets.get("10.0.3.231", 1.0).wait(1.0) == 0.0  # the newest are kept


async def echo_app(scope, receive, send):
    """Answers 200 with the body's length; 422 if the path says so."""
    size = 0
    if scope["method"] == "POST":
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
    status = 422 if scope["path"] == "/refuse" else 200
    body = json.dumps({"size": size}).encode()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


def guard(**options) -> tuple[RequestGuard, Counter]:
    counts: Counter = Counter()
    settings = dict(
        upload_paths={UPLOAD: "multipart/form-data", "/refuse": "multipart/form-data"},
        max_body=1000,
        throttle_delay_s=0.0,
        on_refused=lambda reason: counts.update([reason]),
    )
    settings.update(options)
    return RequestGuard(**settings), counts


def post(g: RequestGuard, *requests: dict, client: str = "1.2.3.4") -> list[httpx.Response]:
    """Each request (httpx `request` keyword arguments) in turn, from `client`."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(GuardMiddleware(echo_app, g), client=(client, 9))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return [await http.request(**{"method": "POST", "url": UPLOAD, **r}) for r in requests]

    return asyncio.run(run())


GOOD = {"content": b"--x--\r\n", "headers": MULTIPART}


def test_a_client_out_of_requests_gets_429_with_retry_after_and_others_do_not():
    clock = Clock()
    g, counts = guard(client_rate=0.5, client_burst=3, clock=clock)
    answers = post(g, *[GOOD] * 4)
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[3].headers["retry-after"] == "2"  # one request per 2 s
    assert "connection" not in answers[3].headers  # a short body: uvicorn drops it, no reset
    assert "more than 0.5 requests a second from your address" in answers[3].json()["detail"]
    assert post(g, GOOD, client="5.6.7.8")[0].status_code == 200
    clock.now += 2
    assert post(g, GOOD)[0].status_code == 200
    assert counts == {"rate_limited": 1}
    for _ in range(5):  # the health probe is never throttled
        assert post(g, {"method": "GET", "url": "/healthz"})[0].status_code == 200


def test_a_client_that_only_sends_garbage_runs_out_of_refusals_fast():
    clock = Clock()
    g, counts = guard(refused_rate=0.1, refused_burst=3, client_burst=100, clock=clock)
    bad = {"url": "/refuse", **GOOD}
    assert [r.status_code for r in post(g, *[bad] * 3)] == [422] * 3  # the app refused them
    answers = post(g, bad, GOOD)  # now even a good request waits
    assert [r.status_code for r in answers] == [429, 429]
    assert "too many refused requests from your address" in answers[0].json()["detail"]
    assert answers[0].headers["retry-after"] == "10"
    assert post(g, GOOD, client="5.6.7.8")[0].status_code == 200  # a neighbour is not
    clock.now += 10
    assert post(g, GOOD)[0].status_code == 200
    assert counts == {"rate_limited": 2}
    assert g.state()["clients_out_of_refusals"] == 0


def test_refusals_from_the_headers_never_reach_the_app_or_read_the_body():
    g, counts = guard(client_burst=100, refused_burst=100)
    read: list[str] = []

    async def untouchable(scope, receive, send):
        read.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def run(**request) -> httpx.Response:
        transport = httpx.ASGITransport(GuardMiddleware(untouchable, g))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.request(**{"method": "POST", "url": UPLOAD, **request})

    cases = [
        ({"content": b"x" * 2000, "headers": MULTIPART}, 413, "over the limit of 0 MB"),
        ({"json": {"a": 1}}, 415, "send multipart/form-data with the photos as files"),
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "'text/plain'"),
        ({"url": "/other", "content": b"x" * 10}, 413, "/other takes no request body"),
    ]
    closed = []
    for request, status, message in cases:
        r = asyncio.run(run(**request))
        assert r.status_code == status and message in r.json()["detail"], r.text
        closed.append(r.headers.get("connection") == "close")
    assert closed == [True, False, False, False]  # over the cap: not worth draining
    assert read == []
    assert counts == {"too_large": 2, "not_multipart": 2}
    # a request without a body on another path, or a GET, passes through untouched
    assert asyncio.run(run(method="GET", url=UPLOAD)).status_code == 204
    assert read == [UPLOAD]


def test_a_streamed_body_over_the_cap_is_cut_off():
    g, counts = guard()

    async def chunks():  # no Content-Length: the cap holds while it streams in
        for _ in range(5):
            yield b"x" * 400

    r = post(g, {"content": chunks(), "headers": MULTIPART})[0]
    assert r.status_code == 413 and counts == {"too_large": 1}
    assert r.headers["connection"] == "close"  # the rest of the body is not waited for


async def call(g: RequestGuard, receive, client: str = "1.2.3.4") -> list[dict]:
    """The guard called directly with `receive`; the messages it sent."""
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": UPLOAD,
        "client": (client, 9),
        "headers": [
            (b"content-type", MULTIPART["content-type"].encode()),
            (b"transfer-encoding", b"chunked"),
        ],
    }
    await g(echo_app, scope, receive, send)
    return sent


def test_a_body_that_trickles_in_is_answered_408():
    g, counts = guard(body_timeout_s=0.2, body_min_rate=1000)

    async def trickle():  # a byte every 20 ms: 50 bytes/s, under the 1000 required
        await asyncio.sleep(0.02)
        return {"type": "http.request", "body": b"x", "more_body": True}

    sent = asyncio.run(call(g, trickle))
    assert sent[0]["status"] == 408 and counts == {"slow_body": 1}
    assert b"the upload came in too slowly" in sent[1]["body"]

    async def silent():
        await asyncio.Event().wait()

    sent = asyncio.run(call(g, silent))
    assert sent[0]["status"] == 408

    def fast():  # 100 bytes at once per call: deadlines move with the data
        pieces = [b"y" * 100] * 9

        async def receive():
            data = pieces.pop()
            return {"type": "http.request", "body": data, "more_body": bool(pieces)}

        return receive

    sent = asyncio.run(call(g, fast()))
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"]) == {"size": 900}
    assert g.state()["uploads_reading"] == 0


def test_uploads_being_read_are_bounded_per_client_and_in_all():
    g, counts = guard(max_reading=3, max_reading_per_client=2, client_burst=100)

    async def scenario() -> list[list[dict]]:
        gate = asyncio.Event()

        async def held():
            await gate.wait()
            return {"type": "http.request", "body": b"", "more_body": False}

        first = [asyncio.ensure_future(call(g, held)) for _ in range(2)]
        await asyncio.sleep(0.01)
        third = await call(g, held)  # the same client's third upload at once
        other = asyncio.ensure_future(call(g, held, client="5.6.7.8"))
        await asyncio.sleep(0.01)
        full = await call(g, held, client="9.9.9.9")  # 3 being read: the bound
        state = g.state()
        gate.set()
        return [third, full, *await asyncio.gather(*first, other)], state

    (third, full, *rest), state = asyncio.run(scenario())
    assert state["uploads_reading"] == 3
    assert third[0]["status"] == 429 and b"2 uploads from your address" in third[1]["body"]
    assert full[0]["status"] == 429 and b"too many uploads at once" in full[1]["body"]
    assert [r[0]["status"] for r in rest] == [200, 200, 200]
    assert counts == {"rate_limited": 1, "busy": 1}
    assert g.state()["uploads_reading"] == 0


def test_a_client_that_hangs_up_mid_body_is_not_answered():
    g, counts = guard()

    async def gone():
        return {"type": "http.disconnect"}

    assert asyncio.run(call(g, gone)) == [] and not counts


def test_x_forwarded_for_is_trusted_from_the_named_proxy_only():
    g, _ = guard(forwarded_by="10.0.0.1")
    proxied = {"type": "http", "client": ("10.0.0.1", 1)}
    header = [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4")]  # the proxy appended the last
    assert g.client_of({**proxied, "headers": header}) == "1.2.3.4"
    assert g.client_of({**proxied, "headers": []}) == "10.0.0.1"
    assert g.client_of({"type": "http", "client": ("7.7.7.7", 1), "headers": header}) == "7.7.7.7"
    assert guard()[0].client_of({**proxied, "headers": header}) == "10.0.0.1"


async def fast_empty() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_a_throttled_answer_is_held_and_the_hold_is_bounded():
    g, _ = guard(client_burst=1, client_rate=0.01, throttle_delay_s=0.05, max_held=1)

    async def scenario():
        first = await call(g, fast_empty)  # spends the only token
        assert first[0]["status"] == 200
        held = asyncio.ensure_future(call(g, fast_empty))
        await asyncio.sleep(0.01)
        during = g.state()["throttled_held"]
        at_once = await call(g, fast_empty)  # max_held reached: answered now
        still_waiting = not held.done()
        return during, at_once, still_waiting, await held

    during, at_once, still_waiting, held = asyncio.run(scenario())
    assert during == 1 and still_waiting
    assert at_once[0]["status"] == 429 and held[0]["status"] == 429


@contextmanager
def uvicorn_serving(app, http) -> Iterator[int]:
    import uvicorn

    config = uvicorn.Config(app, http=http, log_level="warning", lifespan="off")
    with uvicorn_in_thread(config) as port:
        yield port


def test_headers_that_trickle_in_are_cut_off_by_the_protocol():
    timeouts: list[int] = []
    protocol = guarded_h11(0.3, lambda: timeouts.append(1))
    with uvicorn_serving(echo_app, protocol) as port:
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.settimeout(30)
        answer = b""
        while chunk := slow.recv(4096):  # the server answers, then closes
            answer += chunk
        slow.close()
        assert answer.startswith(b"HTTP/1.1 408 ") and b"came in too slowly" in answer
        assert timeouts == [1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            # a request that comes in whole is not cut off, nor is the next on its connection
            assert http.get("/").status_code == 200
            time.sleep(0.5)  # past the header deadline, idle on keep-alive between requests
            assert http.post("/", content=b"abc").json() == {"size": 3}
        assert timeouts == [1]  # an idle connection is closed without an answer


def test_a_throttled_client_mid_upload_still_gets_its_answer():
    """Refused before its 11 MB body is read, the client is still writing it: closing
    the connection then would reset it, and the client could lose the 429 too. Under the
    cap, uvicorn drops the body instead and every request gets its answer."""
    g, counts = guard(max_body=32 * 2**20, client_burst=1, client_rate=0.01)
    app = GuardMiddleware(echo_app, g)
    body = b"x" * (11 * 2**20)
    with (
        uvicorn_serving(app, guarded_h11(30, lambda: None)) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
    ):
        statuses = [http.post(UPLOAD, content=body, headers=MULTIPART).status_code]
        for _ in range(8):
            statuses.append(http.post(UPLOAD, content=body, headers=MULTIPART).status_code)
    assert statuses == [200] + [429] * 8
    assert counts == {"rate_limited": 8}
