"""The web service under load: `python bench/serve_load.py [--seconds 60] [--clients 32]
[--bundle DIR] [--set key=value ...]`.

Starts the service (`studio.serve`'s app under uvicorn) in a subprocess on a free loopback
port: with `--bundle DIR`, or the demo bundle when it exists, or else a tiny random
bundle with the stand-in keypoint estimator (`studio.stub`); the output says which.
`--clients` clients post good requests (two photos from examples/) back to back for
`--seconds`; during the middle third, `--burst-clients` more post malformed uploads as
fast as they can, or `--burst-rate` a second in all (text as a photo, a truncated PNG, an
11 MB photo over the byte limit, a 48-megapixel one over the pixel limit, a missing
field, a bad swap component, a broken multipart body, a JSON body).

Prints a Markdown table per third of the run: good requests started in it, their
statuses, p50/p99 latency of those answered 200, results/s (200s that finished in it),
and the CPU seconds the server and this load generator used (they share the machine);
then the malformed requests' statuses, the 5xx count, and the server's peak RSS. Exits 1
if any request got a 5xx or no answer.
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

PHASES = ("before", "during", "after")


@dataclass
class Sample:
    start: float  # seconds since the load began
    status: int | str  # HTTP status, or the client error's name
    seconds: float


def serve_main(args: argparse.Namespace) -> int:
    """The subprocess: the service on `--port`, stand-in keypoints if `--stub`."""
    import uvicorn

    from studio.serve import _bundle_pipeline, create_app, load_settings
    from studio.stub import StandingPerson

    settings = load_settings(overrides=args.set)
    pipeline, info = _bundle_pipeline(args.bundle, settings.device, settings.precision)
    if args.stub:
        pipeline.keypoints = StandingPerson()
    app = create_app(pipeline, settings, info=info)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
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


async def good_client(client, url: str, files: list, end: float, t0: float, out: list) -> None:
    while (now := time.perf_counter()) < end:
        try:
            r = await client.post(url, files=files)
            status: int | str = r.status_code
        except Exception as exc:
            status = type(exc).__name__
        out.append(Sample(now - t0, status, time.perf_counter() - now))


async def bad_client(
    client, url: str, kinds: list, t0: float, start: float, end: float, rate: float, out: list
) -> None:
    """Malformed uploads from `start` to `end`, `rate` a second (0: back to back)."""
    await asyncio.sleep(max(start - time.perf_counter(), 0))
    i = 0
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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by the server `pid` and by this process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    me = os.times()
    return server, me.user + me.system


async def sample_cpu(pid: int, at: list[float], out: list[tuple[float, float]]) -> None:
    for t in at:
        await asyncio.sleep(max(t - time.perf_counter(), 0))
        out.append(cpu_seconds(pid))


async def load(
    url: str, pid: int, args: argparse.Namespace
) -> tuple[list[Sample], list[Sample], list[tuple[float, float]]]:
    import httpx

    files = [
        ("source", ("model.jpg", (ROOT / "examples" / "model.jpg").read_bytes(), "image/jpeg")),
        ("pose", ("shopper.jpg", (ROOT / "examples" / "shopper.jpg").read_bytes(), "image/jpeg")),
    ]
    kinds = malformed_requests()
    good: list[Sample] = []
    bad: list[Sample] = []
    cpu: list[tuple[float, float]] = []
    limits = httpx.Limits(max_connections=args.clients + args.burst_clients + 4)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        t0 = time.perf_counter()
        end = t0 + args.seconds
        third = args.seconds / 3
        rate = args.burst_rate / max(args.burst_clients, 1)
        tasks = [good_client(client, url, files, end, t0, good) for _ in range(args.clients)]
        tasks += [
            bad_client(client, url, kinds, t0, t0 + third, t0 + 2 * third, rate, bad)
            for _ in range(args.burst_clients)
        ]
        tasks.append(sample_cpu(pid, [t0 + i * third for i in range(4)], cpu))
        await asyncio.gather(*tasks)
    return good, bad, cpu


def phase(sample: Sample, seconds: float, *, end: bool = False) -> str:
    """The third of the run in which `sample` started (or, with `end`, finished)."""
    t = sample.start + sample.seconds * end
    return PHASES[min(int(3 * t / seconds), 2)]


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


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(
    good: list[Sample], bad: list[Sample], cpu: list[tuple[float, float]], args: argparse.Namespace
) -> int:
    print(
        "| phase | good requests | statuses | p50 ms | p99 ms | results/s | CPU s server / bench |"
    )
    print("|---|---|---|---|---|---|---|")
    third = args.seconds / 3
    for i, name in enumerate(PHASES):
        rows = [s for s in good if phase(s, args.seconds) == name]
        ok = np.array([s.seconds for s in rows if s.status == 200]) * 1e3
        done = sum(1 for s in good if s.status == 200 and phase(s, args.seconds, end=True) == name)
        counts = ", ".join(
            f"{k}: {v}" for k, v in sorted(Counter(s.status for s in rows).items(), key=str)
        )
        p50, p99 = (np.percentile(ok, 50), np.percentile(ok, 99)) if ok.size else (np.nan,) * 2
        span = f"{name} ({i * third:.0f}-{(i + 1) * third:.0f} s)"
        used = "/".join(f"{cpu[i + 1][k] - cpu[i][k]:.1f}" for k in (0, 1))
        print(
            f"| {span} | {len(rows)} | {counts} | {p50:.0f} | {p99:.0f} | "
            f"{done / third:.1f} | {used} |"
        )
    counts = Counter(s.status for s in bad)
    shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str))
    print(f"| malformed burst | {len(bad)} | {shown} | | | | |")
    every = good + bad
    fives = sum(1 for s in every if isinstance(s.status, int) and s.status >= 500)
    errors = sum(1 for s in every if not isinstance(s.status, int))
    print(f"\nrequests: {len(every)}; 5xx: {fives}; client errors (no answer): {errors}")
    return 1 if fives or errors else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--burst-clients", type=int, default=8)
    p.add_argument(
        "--burst-rate", type=float, default=0.0, help="malformed uploads a second (0: flat out)"
    )
    p.add_argument("--bundle", type=Path, help="default: bundles/demo, else a random bundle")
    p.add_argument("--stub", action="store_true", help="stand-in keypoints even with --bundle")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)  # the subprocess
    args = p.parse_args(argv)
    if args.serve_port is not None:
        args.port = args.serve_port
        return serve_main(args)

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
                f"max_queue {health['max_queue']}"
            )
            print(
                f"load: {args.clients} clients for {args.seconds:.0f} s on loopback; "
                f"{args.burst_clients} clients of malformed uploads "
                f"({f'{args.burst_rate:g}/s' if args.burst_rate else 'flat out'}) from "
                f"{args.seconds / 3:.0f} to {2 * args.seconds / 3:.0f} s\n"
            )
            good, bad, cpu = asyncio.run(load(f"{url}/v1/generate", proc.pid, args))
            after = wait_healthy(url, proc, timeout=10)
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
        status = report(good, bad, cpu, args)
        mean_batch = after["served"] / max(after["batches"], 1)
        print(
            f"served {after['served']} in {after['batches']} model batches "
            f"(mean {mean_batch:.1f} requests a batch); refused {after['refused']} "
            f"({after['refused_by_reason']}); "
            f"server peak RSS {rss:.0f} MB; /healthz after the run: {after['status']}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
