"""The web service under load, abuse and slow clients: `python bench/serve_load.py
[--seconds 80] [--clients 32] [--burst-clients 8] [--slow-clients 20] [--bundle DIR]
[--set key=value ...]`, or `--hostile` for the hostile-upload corpus and the server's memory.

Starts the service (`studio.serve`'s app under uvicorn, as `python -m studio.serve` runs
it) in a subprocess on a free loopback port: with `--bundle DIR`, or the demo bundle when
it exists, or else a tiny random bundle with the stand-in keypoint estimator
(`studio.stub`); the output says which. Every client has its own loopback address
(127.0.1.x good, 127.0.2.x malformed, 127.0.3.x slow), as clients on the internet do: the
service's budgets are per address.

`--clients` clients post good requests (two photos from examples/) back to back for
`--warmup` seconds (not measured: the first batches find an empty queue), then through
four phases of `--seconds / 4`:

- before: nothing else;
- malformed: `--burst-clients` more post malformed uploads flat out, or `--burst-rate` a
  second in all (text as a photo, a truncated PNG, an 11 MB photo over the byte limit, a
  48-megapixel one over the pixel limit, a missing field, a bad swap component, a broken
  multipart body, a JSON body), ignoring Retry-After;
- slow: `--slow-clients` slow-loris connections; half send their request head a byte every
  `--slow-interval` seconds, half a whole head and then the body at that pace; each opens a
  new connection when the server closes one;
- after: nothing else.

Prints a Markdown table per phase: good requests started in it, their statuses, p50/p99
latency of those answered 200, results/s (200s that finished in it), the ratio of results/s
and of p99 to the phase before, and the CPU seconds used by the server, by this load
generator (they share the machine) and by every other process (a training run, say); then
the malformed and slow clients' outcomes, the 5xx count, the server's /healthz counts and
peak RSS. Exits 1 if any request got a 5xx or no answer.

`--hostile`: posts every file of the hostile-upload corpus (tests/hostile_uploads.py), each
followed by a good request, from one address with budgets high enough for all of them,
to the bundle's networks with the stand-in keypoint estimator (the corpus' made-up
pictures show nobody a real one would find), and prints each answer with the server's
peak RSS (VmHWM, reset after loading the bundle and one good request); exits 1 if a hostile
file is not refused, a good request fails, or the peak passes 1.5x the RSS before the
corpus.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.timing import machine_line  # noqa: E402
from studio.serve import DEFAULT_BUNDLE  # noqa: E402

PHASES = ("before", "malformed", "slow", "after")


@dataclass
class Sample:
    start: float  # seconds since the load began
    status: int | str  # HTTP status, or the client error's name
    seconds: float


def serve_main(args: argparse.Namespace) -> int:
    """The subprocess: the service on `--port`, stand-in keypoints if `--stub`."""
    import uvicorn

    from studio.serve import _bundle_pipeline, create_app, load_settings, server_config
    from studio.stub import StandingPerson

    settings = load_settings(overrides=args.set)
    pipeline, info = _bundle_pipeline(args.bundle, settings.device, settings.precision)
    if args.stub:
        pipeline.keypoints = StandingPerson()
    app = create_app(pipeline, settings, info=info)
    config = server_config(
        app, settings, host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run()
    return 0


def png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def malformed_requests() -> list[tuple[str, dict]]:
    """(name, httpx.post keyword arguments) of each kind of bad upload."""
    model = (ROOT / "examples" / "model.jpg").read_bytes()
    good = png(np.full((64, 48, 3), 120, np.uint8))
    bomb = png(np.zeros((6000, 8000, 3), np.uint8))  # 48 megapixels in a small file
    big = b"\x89PNG\r\n\x1a\n" + os.urandom(11 * 2**20)  # over the 10 MB photo limit

    def form(**fields: bytes) -> dict:
        return {"files": [(k, (f"{k}.png", v, "image/png")) for k, v in fields.items()]}

    return [
        ("text as a photo", form(source=b"GIF? no, text" * 20, pose=good)),
        ("truncated PNG", form(source=model, pose=good[: len(good) // 2])),
        ("over the byte limit", form(source=model, pose=big)),
        ("over the pixel limit", form(source=bomb, pose=good)),
        ("missing field", form(source=model)),
        ("bad swap component", form(source=model, pose=good, swap_cape=good)),
        (
            "broken multipart",
            {
                "content": b"--x\r\nbroken\r\n\r\n",
                "headers": {"content-type": "multipart/form-data; boundary=x"},
            },
        ),
        ("JSON body", {"json": {"source": "model.jpg"}}),
    ]


def client_at(address: str, timeout: float = 120):
    """An httpx.AsyncClient whose connections come from `address` (a loopback one)."""
    import httpx

    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(transport=transport, timeout=timeout)


async def good_client(address: str, url: str, files: list, t0: float, end: float, out: list):
    async with client_at(address) as client:
        while (now := time.perf_counter()) < end:
            try:
                r = await client.post(url, files=files)
                status: int | str = r.status_code
            except Exception as exc:
                status = type(exc).__name__
            out.append(Sample(now - t0, status, time.perf_counter() - now))


async def bad_client(
    address: str, url: str, kinds: list, t0: float, start: float, end: float, rate: float, out
) -> None:
    """Malformed uploads from `start` to `end`, `rate` a second (0: back to back)."""
    await asyncio.sleep(max(start - time.perf_counter(), 0))
    i = 0
    async with client_at(address) as client:
        while (now := time.perf_counter()) < end:
            _, kwargs = kinds[i % len(kinds)]
            i += 1
            if rate > 0:
                await asyncio.sleep(max(start + i / rate - time.perf_counter(), 0))
            try:
                r = await client.post(url, **kwargs)
                status: int | str = r.status_code
            except Exception as exc:
                status = type(exc).__name__
            out.append(Sample(now - t0, status, time.perf_counter() - now))


async def slow_client(
    address: str, port: int, body: bool, interval: float, start: float, end: float, out: Counter
) -> None:
    """A slow-loris from `start` to `end`: a request head (and with `body`, then a body)
    sent a byte every `interval` seconds; a new connection whenever the server closes."""
    head = b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 200000\r\n\r\n"
    await asyncio.sleep(max(start - time.perf_counter(), 0))
    while time.perf_counter() < end:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(address, 0)
            )
        except OSError as exc:
            out[f"connect failed: {type(exc).__name__}"] += 1
            await asyncio.sleep(interval)
            continue
        out["connections"] += 1
        answer = asyncio.ensure_future(reader.read(200))
        try:
            writer.write(head)
            payload = (b"x" * 10**6) if body else (b"X-Slow: " + b"y" * 10**6)
            for byte in payload:
                if answer.done() or time.perf_counter() >= end:
                    break
                writer.write(bytes([byte]))
                await asyncio.wait([answer], timeout=interval)
            text = answer.result() if answer.done() else b""
            if text.startswith(b"HTTP/1.1 "):
                out[f"answered {text[9:12].decode()}"] += 1
            elif answer.done():
                out["closed without an answer"] += 1
            else:
                out["still open at the end"] += 1
        except (OSError, ConnectionError) as exc:
            out[f"dropped: {type(exc).__name__}"] += 1
        finally:
            answer.cancel()
            writer.close()


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """CPU seconds (user + system) used so far by the server `pid`, by this process, and
    by the whole machine (so that what other processes took shows)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / tick
    me = os.times()
    busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    machine = sum(int(busy[i]) for i in (0, 1, 2, 5, 6, 7)) / tick  # all but idle, iowait
    return server, me.user + me.system, machine


async def sample_cpu(pid: int, at: list[float], out: list[tuple[float, float, float]]) -> None:
    for t in at:
        await asyncio.sleep(max(t - time.perf_counter(), 0))
        out.append(cpu_seconds(pid))


@dataclass
class Load:
    good: list[Sample]
    bad: list[Sample]
    slow: Counter
    cpu: list[tuple[float, float, float]]


async def load(url: str, port: int, pid: int, args: argparse.Namespace) -> Load:
    files = [
        ("source", ("model.jpg", (ROOT / "examples" / "model.jpg").read_bytes(), "image/jpeg")),
        ("pose", ("shopper.jpg", (ROOT / "examples" / "shopper.jpg").read_bytes(), "image/jpeg")),
    ]
    kinds = malformed_requests()
    result = Load([], [], Counter(), [])
    t0 = time.perf_counter() + args.warmup  # samples' times count from here
    end = t0 + args.seconds
    span = args.seconds / len(PHASES)
    at = {name: (t0 + i * span, t0 + (i + 1) * span) for i, name in enumerate(PHASES)}
    rate = args.burst_rate / max(args.burst_clients, 1)
    tasks = [
        good_client(f"127.0.1.{i + 1}", url, files, t0, end, result.good)
        for i in range(args.clients)
    ]
    tasks += [
        bad_client(f"127.0.2.{i + 1}", url, kinds, t0, *at["malformed"], rate, result.bad)
        for i in range(args.burst_clients)
    ]
    tasks += [
        slow_client(
            f"127.0.3.{i + 1}", port, i % 2 == 1, args.slow_interval, *at["slow"], result.slow
        )
        for i in range(args.slow_clients)
    ]
    tasks.append(sample_cpu(pid, [t0 + i * span for i in range(len(PHASES) + 1)], result.cpu))
    await asyncio.gather(*tasks)
    return result


def phase(sample: Sample, seconds: float, *, end: bool = False) -> str:
    """The phase in which `sample` started (or, with `end`, finished)."""
    t = sample.start + sample.seconds * end
    if t < 0 or t >= seconds:
        return "warm-up" if t < 0 else "past the end"
    return PHASES[int(len(PHASES) * t / seconds)]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 300) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode}")
        try:
            return httpx.get(f"{url}/healthz", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("the server did not answer /healthz")


def vm_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(result: Load, args: argparse.Namespace) -> int:
    print(
        "| phase | good requests | statuses | p50 ms | p99 ms | results/s | results/s vs "
        "before | p99 vs before | CPU s server / bench / other processes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    span = args.seconds / len(PHASES)
    base: tuple[float, float] | None = None
    cpu = result.cpu
    for i, name in enumerate(PHASES):
        rows = [s for s in result.good if phase(s, args.seconds) == name]
        ok = np.array([s.seconds for s in rows if s.status == 200]) * 1e3
        done = sum(
            1 for s in result.good if s.status == 200 and phase(s, args.seconds, end=True) == name
        )
        counts = ", ".join(
            f"{k}: {v}" for k, v in sorted(Counter(s.status for s in rows).items(), key=str)
        )
        p50, p99 = (np.percentile(ok, 50), np.percentile(ok, 99)) if ok.size else (np.nan,) * 2
        rate = done / span
        base = base or (rate, p99)
        when = f"{name} ({i * span:.0f}-{(i + 1) * span:.0f} s)"
        server, bench, machine = (cpu[i + 1][k] - cpu[i][k] for k in range(3))
        used = f"{server:.1f} / {bench:.1f} / {max(machine - server - bench, 0):.1f}"
        print(
            f"| {when} | {len(rows)} | {counts} | {p50:.0f} | {p99:.0f} | {rate:.2f} | "
            f"{rate / base[0]:.2f} | {p99 / base[1]:.2f} | {used} |"
        )
    counts = Counter(s.status for s in result.bad)
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str))
    print(f"\nmalformed burst: {len(result.bad)} requests; {shown}")
    print(f"slow clients: {', '.join(f'{k}: {v}' for k, v in sorted(result.slow.items()))}")
    every = result.good + result.bad
    fives = sum(1 for s in every if isinstance(s.status, int) and s.status >= 500)
    errors = sum(1 for s in every if not isinstance(s.status, int))
    print(f"requests: {len(every)}; 5xx: {fives}; client errors (no answer): {errors}")
    return 1 if fives or errors else 0


def hostile(url: str, pid: int) -> int:
    """The hostile-upload corpus, one file at a time, each followed by a good request."""
    import httpx

    from tests.hostile_uploads import corpus, encode, photo, reset_peak, run_corpus

    good = {k: encode(photo(seed=i), "PNG") for i, k in enumerate(("source", "pose"))}
    files = [(k, (f"{k}.png", v, "image/png")) for k, v in good.items()]
    assert httpx.post(url, files=files, timeout=120).status_code == 200
    reset_peak(pid)  # loading the bundle peaks higher than serving does
    idle = vm_mb(pid, "VmRSS")
    answers = run_corpus(url, pid, good, corpus())
    print(f"server RSS after one good request: {idle:.0f} MB\n")
    print("| upload | expected | status | next good request | server peak RSS MB | detail |")
    print("|---|---|---|---|---|---|")
    wrong = 0
    for a in answers:
        expected = corpus()[a.name].status
        wrong += a.status != expected or a.next_status != 200
        print(
            f"| {a.name} | {expected} | {a.status} | {a.next_status} | {a.peak_mb:.0f} | "
            f"{a.detail[:100]} |"
        )
    peak = max(a.peak_mb for a in answers)
    refused = [a for a in answers if corpus()[a.name].status >= 400]
    print(
        f"\n{sum(400 <= a.status < 500 for a in refused)} of {len(refused)} hostile files "
        f"refused with a 4xx; {wrong} answers not as expected; server peak RSS {peak:.0f} MB "
        f"= {peak / idle:.2f}x its RSS before the corpus"
    )
    return 1 if wrong or peak > 1.5 * idle else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=80.0, help="the 4 measured phases")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds before, not measured")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--burst-clients", type=int, default=8)
    p.add_argument(
        "--burst-rate", type=float, default=0.0, help="malformed uploads a second (0: flat out)"
    )
    p.add_argument("--slow-clients", type=int, default=20)
    p.add_argument("--slow-interval", type=float, default=1.0, help="seconds between bytes")
    p.add_argument("--hostile", action="store_true", help="the hostile-upload corpus instead")
    p.add_argument("--bundle", type=Path, help="default: bundles/demo, else a random bundle")
    p.add_argument("--stub", action="store_true", help="stand-in keypoints even with --bundle")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)  # the subprocess
    args = p.parse_args(argv)
    if args.serve_port is not None:
        args.port = args.serve_port
        return serve_main(args)

    if args.hostile:
        args.stub = True
        args.set = ["refused_burst=100000", "client_burst=100000", *args.set]
    with tempfile.TemporaryDirectory() as tmp:
        if args.bundle is None and (DEFAULT_BUNDLE / "config.json").is_file():
            args.bundle = DEFAULT_BUNDLE
        if args.bundle is None:
            from studio.stub import random_bundle

            args.bundle, args.stub = random_bundle(Path(tmp) / "random"), True
            what = "a tiny random bundle (studio.stub.random_bundle) with stand-in keypoints"
        else:
            what = f"bundle {args.bundle}" + (" with stand-in keypoints" if args.stub else "")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, __file__, "--serve-port", str(port), "--bundle", str(args.bundle)]
        cmd += ["--stub"] * args.stub + [f"--set={x}" for x in args.set]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            health = wait_healthy(url, proc)
            print(machine_line(health["device"]))
            print(
                f"server: {what}; device {health['device']}, generator "
                f"{'x'.join(map(str, health['image_size']))}, max_batch {health['max_batch']}, "
                f"max_queue {health['max_queue']}; settings overridden: {args.set or 'none'}"
            )
            if args.hostile:
                return hostile(f"{url}/v1/generate", proc.pid)
            span = args.seconds / len(PHASES)
            print(
                f"load: {args.clients} good clients for {args.warmup:.0f} + {args.seconds:.0f} s "
                "on loopback, each "
                f"from its own address; {args.burst_clients} clients of malformed uploads "
                f"({f'{args.burst_rate:g}/s' if args.burst_rate else 'flat out'}) from "
                f"{span:.0f} to {2 * span:.0f} s; {args.slow_clients} slow-loris clients (a "
                f"byte every {args.slow_interval:g} s) from {2 * span:.0f} to {3 * span:.0f} s\n"
            )
            result = asyncio.run(load(f"{url}/v1/generate", port, proc.pid, args))
            after = wait_healthy(url, proc, timeout=10)
            rss = vm_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
        status = report(result, args)
        mean_batch = after["served"] / max(after["batches"], 1)
        refused = {k: v for k, v in after["refused_by_reason"].items() if v}
        print(
            f"served {after['served']} in {after['batches']} model batches "
            f"(mean {mean_batch:.1f} requests a batch); refused {after['refused']} "
            f"({refused}); server peak RSS {rss:.0f} MB; /healthz after the run: "
            f"{after['status']}, guard {after['guard']}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
