"""What the web service refuses before any of its own code runs: a per-client budget of
requests and of refusals, the request's headers, uploads that trickle in.

Why in front of FastAPI: a malformed burst used to cost the service its CPU, not its
answers. Every bad request was read in full (an 11 MB upload over the photo limit went
through h11, starlette's multipart parser and a spool before it was refused) and the
event loop that did it took the cores the model thread needed: 8 clients sending garbage
flat out cut the good clients' throughput from 5.2 to 2.0 results/s on 2 cores.
`RequestGuard` is a pure-ASGI middleware that decides from the peer address and the
headers alone and answers with a small JSON body, so the body of a refused request never
reaches Python's multipart parser (uvicorn drops it as it comes in, at memcpy cost, when
its declared length is under the cap; a longer, chunked or trickling one gets its
connection closed instead: closing on unread data resets the connection, and the client
may then lose the answer too):

- every address has two token buckets: requests (`client_rate`/`client_burst`) and
  refusals (`refused_rate`/`refused_burst`; a 4xx from anywhere behind the guard spends
  one). A shopper never notices them; a client that only sends garbage is out of refusals
  after `refused_burst` of them and gets 429 with `Retry-After` from then on;
- a throttled client's 429 is held for `throttle_delay_s` first (at most `max_held`
  connections at once): a client that ignores Retry-After and loops costs a sleeping
  coroutine, not a request-answer cycle per millisecond (on a shared 2-core machine the
  loop's own CPU is what the model loses);
- Content-Length over the cap (413) and a Content-Type the path does not take (415) are
  refused from the headers; a body is only taken on the upload paths;
- the body is read here, under a bound on uploads being read (`max_reading` in all,
  `max_reading_per_client` per address) and a deadline: `body_timeout_s` plus one second
  per `body_min_rate` bytes received (Apache's mod_reqtimeout rule), else 408. Headers
  that trickle in are cut off the same way by `GuardedH11Protocol` (uvicorn has no header
  timeout of its own). The app then gets the body in one message.

The clock is injected (`clock=`), so tests step time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Why the guard refused, as /healthz counts them (the app's own reasons are beside them).
GUARD_REASONS = {
    408: "slow_body",  # the body (or the headers) came in slower than the deadline allows
    413: "too_large",
    415: "not_multipart",
    429: "rate_limited",
}


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` a second; time is passed in."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.stamp = rate, burst, burst, now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0.0: one is there now); nothing is spent."""
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return math.inf if self.rate <= 0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> float:
        """Spend a token and return 0.0, or return `wait` and spend nothing."""
        wait = self.wait(now)
        if wait == 0.0:
            self.tokens -= 1.0
        return wait

    def spend(self, now: float) -> None:
        """Spend a token even if none is left (the balance goes negative, up to -burst):
        refusals are counted after the fact, and a flood of them must cost more."""
        self._refill(now)
        self.tokens = max(self.tokens - 1.0, -self.burst)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class ClientBuckets:
    """One `TokenBucket` per client address, created full. Bounded: past `max_clients`
    addresses, full buckets are dropped (a full bucket is the same as none), then the
    oldest ones, so a scan from many addresses cannot grow the table without end."""

    def __init__(self, rate: float, burst: float, *, max_clients: int = 10_000) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def get(self, client: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._prune(now)
            bucket = self._buckets[client] = TokenBucket(self.rate, self.burst, now)
        return bucket

    def _prune(self, now: float) -> None:
        self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
        excess = len(self._buckets) - self.max_clients // 2
        for key in list(self._buckets)[: max(excess, 0)]:  # oldest first (insertion order)
            del self._buckets[key]

    def limited(self, now: float) -> int:
        """How many addresses have no token left now."""
        return sum(1 for b in self._buckets.values() if b.wait(now) > 0)


def json_answer(
    status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None, *, close: bool
) -> tuple[Message, Message]:
    """The two ASGI messages of a small JSON error; `close`: and close the connection."""
    body = json.dumps({"detail": detail}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *([(b"connection", b"close")] if close else []),
            *(headers or []),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class _Refused(Exception):
    def __init__(
        self, status: int, detail: str, retry_after: float | None = None, reason: str = ""
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after
        self.reason = reason or GUARD_REASONS[status]


def _megabytes(n: float) -> str:
    return f"{n / 2**20:.2f}".rstrip("0").rstrip(".") + " MB"


class RequestGuard:
    """The decisions and the state (budgets, bodies being read, answers held) of the
    middleware in front of the app (`GuardMiddleware`); see the module docstring."""

    def __init__(
        self,
        *,
        upload_paths: dict[str, str],
        max_body: int,
        client_rate: float = 2.0,
        client_burst: float = 20.0,
        refused_rate: float = 0.2,
        refused_burst: float = 10.0,
        throttle_delay_s: float = 1.0,
        max_held: int = 256,
        max_reading: int = 32,
        max_reading_per_client: int = 4,
        body_timeout_s: float = 20.0,
        body_min_rate: float = 500.0,
        exempt_paths: tuple[str, ...] = ("/healthz",),
        forwarded_by: str = "",
        max_clients: int = 10_000,
        on_refused: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`upload_paths` maps each path that takes a body to the content type it must
        have ("multipart/form-data"); any other request with a body is refused (413).
        `max_body` bytes at most per body. Budgets per client address: `client_rate`
        requests a second with bursts of `client_burst`; `refused_rate` refusals a second
        with bursts of `refused_burst`. A throttled client's 429 waits `throttle_delay_s`
        (at most `max_held` such answers wait at once). `max_reading` bodies are read at
        once, `max_reading_per_client` of them from one address. A body must arrive within
        `body_timeout_s` plus 1 s per `body_min_rate` bytes. `exempt_paths` (the health
        probe) skip the budgets. `forwarded_by`: the address of a reverse proxy whose
        X-Forwarded-For names the client (empty: the peer address is the client).
        `on_refused(reason)` is told of every refusal made here (reasons in
        `GUARD_REASONS`)."""
        if min(client_burst, refused_burst) < 1 or min(max_reading, max_reading_per_client) < 1:
            raise ValueError("bursts and reading bounds must be >= 1")
        self.upload_paths = upload_paths
        self.max_body = max_body
        self.requests = ClientBuckets(client_rate, client_burst, max_clients=max_clients)
        self.refusals = ClientBuckets(refused_rate, refused_burst, max_clients=max_clients)
        self.throttle_delay_s, self.max_held = throttle_delay_s, max_held
        self.max_reading, self.max_reading_per_client = max_reading, max_reading_per_client
        self.body_timeout_s, self.body_min_rate = body_timeout_s, body_min_rate
        self.exempt_paths = exempt_paths
        self.forwarded_by = forwarded_by
        self.on_refused = on_refused or (lambda reason: None)
        self.clock = clock
        self.held = 0  # throttled answers being held now
        self.reading: dict[str, int] = {}  # bodies being read now, by client

    # -- who, and may they ----------------------------------------------------------------

    def client_of(self, scope: Scope) -> str:
        peer = (scope.get("client") or ("unknown", 0))[0]
        if self.forwarded_by and peer == self.forwarded_by:
            for name, value in scope.get("headers", []):
                if name == b"x-forwarded-for":  # the proxy appends the address it saw
                    return value.decode("latin-1").rsplit(",", 1)[-1].strip() or peer
        return peer

    def _budget(self, client: str) -> None:
        """Raise 429 when `client` is out of refusals or requests (spends a request)."""
        now = self.clock()
        wait = min(self.refusals.get(client, now).wait(now), 86_400.0)  # a rate of 0: a day
        if wait > 0:
            raise _Refused(
                429,
                "too many refused requests from your address; fix the request (earlier "
                f"answers said what was wrong) and retry in {math.ceil(wait)} s",
                wait,
            )
        wait = min(self.requests.get(client, now).take(now), 86_400.0)
        if wait > 0:
            rate = self.requests.rate
            raise _Refused(
                429,
                f"more than {rate:g} requests a second from your address; retry in "
                f"{math.ceil(wait)} s",
                wait,
            )

    @staticmethod
    def _length(scope: Scope) -> int | None:
        """The declared body length; None for a chunked body (length unknown)."""
        headers = dict(scope.get("headers", []))
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return None
        text = headers.get(b"content-length", b"").decode("latin-1").strip()
        return int(text) if text.isdigit() else 0

    def _check_headers(self, scope: Scope, length: int | None) -> bool:
        """Whether the request has a body to read; 413/415 from the headers alone."""
        headers = dict(scope.get("headers", []))
        has_body = length is None or length > 0
        takes_body = scope.get("method") in ("POST", "PUT", "PATCH")
        wanted = self.upload_paths.get(scope.get("path", "")) if takes_body else None
        if wanted is None:
            if has_body:
                raise _Refused(413, f"{scope.get('path')} takes no request body")
            return False
        kind = headers.get(b"content-type", b"").decode("latin-1")
        if not kind.lower().startswith(wanted):
            raise _Refused(
                415, f"send {wanted} with the photos as files (got {kind[:60] or 'none'!r})"
            )
        if length is not None and length > self.max_body:
            raise _Refused(413, f"the request is over the limit of {_megabytes(self.max_body)}")
        return has_body

    # -- reading the body ---------------------------------------------------------------

    async def _read_body(self, client: str, receive: Receive) -> bytes | None:
        """The whole body within its deadline, or None if the client went away."""
        if self.reading.get(client, 0) >= self.max_reading_per_client:
            raise _Refused(
                429,
                f"{self.max_reading_per_client} uploads from your address are already "
                "being received; send one at a time",
                1.0,
            )
        if sum(self.reading.values()) >= self.max_reading:
            detail = "the service is receiving too many uploads at once; retry shortly"
            raise _Refused(429, detail, 1.0, reason="busy")
        self.reading[client] = self.reading.get(client, 0) + 1
        try:
            return await self._receive_all(receive)
        finally:
            self.reading[client] -= 1
            if not self.reading[client]:
                del self.reading[client]

    async def _receive_all(self, receive: Receive) -> bytes | None:
        start = self.clock()
        deadline = start + self.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                left = deadline - self.clock()
                if left <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                raise _Refused(
                    408,
                    f"the upload came in too slowly ({size} bytes in "
                    f"{self.clock() - start:.0f} s; at least {self.body_min_rate:g} bytes a "
                    "second are needed); retry on a better connection",
                ) from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _Refused(413, f"the request is over the limit of {_megabytes(self.max_body)}")
            chunks.append(chunk)
            deadline += len(chunk) / self.body_min_rate
            if not message.get("more_body", False):
                return b"".join(chunks)

    # -- the ASGI entry -----------------------------------------------------------------

    async def __call__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request here, or pass it to `app` with its body in one message."""
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        client = self.client_of(scope)
        exempt = scope.get("path") in self.exempt_paths
        length = self._length(scope)
        reading = False
        try:
            if not exempt:
                self._budget(client)
            reading = self._check_headers(scope, length)
            body = await self._read_body(client, receive) if reading else b""
        except _Refused as refusal:
            # a body cut off, trickling, too long or of unknown length: close; else
            # uvicorn drops the unread body as it arrives and the connection lives on
            unread = length is None or length > self.max_body
            close = unread or (refusal.status in (408, 413) and reading)
            await self._refuse(client, refusal, send, close=close)
            return
        if body is None:  # the client hung up while sending
            return

        delivered = False

        async def replay() -> Message:
            nonlocal body, delivered
            if not delivered:
                delivered = True
                data, body = body, b""  # the app holds the only copy from here
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if 400 <= status < 500 and status != 429 and not exempt:
                    now = self.clock()
                    self.refusals.get(client, now).spend(now)
            await send(message)

        await app(scope, replay, watch)

    async def _refuse(self, client: str, refusal: _Refused, send: Send, *, close: bool) -> None:
        self.on_refused(refusal.reason)
        headers = []
        if refusal.status == 429:
            retry = refusal.retry_after or 1.0
            headers.append((b"retry-after", str(max(math.ceil(retry), 1)).encode()))
            throttled = refusal.reason == "rate_limited"
            if throttled and self.held < self.max_held and self.throttle_delay_s > 0:
                self.held += 1
                try:  # a client that loops on 429s waits here instead of costing CPU
                    await asyncio.sleep(min(self.throttle_delay_s, retry))
                finally:
                    self.held -= 1
        else:
            now = self.clock()
            self.refusals.get(client, now).spend(now)
        start, body = json_answer(refusal.status, refusal.detail, headers, close=close)
        await send(start)
        await send(body)

    def state(self) -> dict[str, int]:
        """For /healthz: what the guard holds now."""
        now = self.clock()
        return {
            "uploads_reading": sum(self.reading.values()),
            "throttled_held": self.held,
            "clients_out_of_refusals": self.refusals.limited(now),
            "clients_out_of_requests": self.requests.limited(now),
        }


class GuardMiddleware:
    """The ASGI middleware around an app: `app.add_middleware(GuardMiddleware, guard=g)`."""

    def __init__(self, app: ASGIApp, guard: RequestGuard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard(self.app, scope, receive, send)


def guarded_h11(header_timeout_s: float, on_timeout: Callable[[], None]) -> type:
    """uvicorn's h11 protocol with a deadline on the request headers: a connection that
    has not sent a whole request head `header_timeout_s` after it opened (or after its
    last answer) gets a 408 and is closed. uvicorn has keep-alive and no header timeout,
    so without this a slow-loris client sending a header byte a second holds its
    connection for ever (no worker, but a socket and a slot in every count)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    start, body = json_answer(408, "the request headers came in too slowly", close=True)
    head = b"HTTP/1.1 408 Request Timeout\r\n" + b"".join(
        k + b": " + v + b"\r\n" for k, v in start["headers"]
    )
    answer = head + b"\r\n" + body["body"]

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered: the body has its own deadline
            if self.conn.trailing_data[0]:  # part of a request head: a slow client
                on_timeout()
                self.transport.write(answer)
            self.transport.close()  # else an idle connection: closed without a word

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a whole request head arrived
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11Protocol
