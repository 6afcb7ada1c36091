"""The model worker: one thread owns the pipeline; the web server's requests queue up in
front of it and run in batches.

Why one thread: the accelerator (or the CPU's cores) is one resource, and a network run
on a batch of 8 costs far less than 8 runs of 1. Requests that arrive while a batch is
running, or within `max_wait_ms` of the first one, share one `Pipeline.people` call (every
photo of every request) and one `Pipeline.generate_many` call. The queue is bounded: when
`max_queue` requests are already waiting, `submit` refuses at once with `Busy`, so a flood
turns into quick "try again" answers rather than unbounded memory and latency.

    worker = ModelWorker(pipeline, max_batch=8, max_wait_ms=10, max_queue=64)
    worker.start()
    result = worker.submit(GenerateRequest(Photo(a, "model.jpg"), Photo(b, "me.jpg"))).result()
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from common.geometry import Box
from studio.backdrop import AUTO, Backdrop
from studio.framing import DEFAULT_FRAMING
from studio.pipeline import (
    Job,
    NoPersonError,
    PersonView,
    Pipeline,
    check_job,
    from_behind,
    job_notes,
)

log = logging.getLogger(__name__)


class Busy(RuntimeError):
    """The queue is full; the caller should try again shortly."""


@dataclass
class Photo:
    image: np.ndarray  # uint8 RGB
    name: str  # how error messages name it ("the shopper's photo (me.jpg)")
    box: Box | None = None  # which of several people (x, y, w, h); None: the pipeline's pick


@dataclass
class GenerateRequest:
    """`source`'s person in `pose`'s pose, each component in `swaps` from that photo."""

    source: Photo
    pose: Photo
    swaps: dict[str, Photo] = field(default_factory=dict)
    backdrop: Backdrop = AUTO  # see `studio.pipeline.Job`
    framing: str = DEFAULT_FRAMING  # see `studio.framing`
    scale: int | None = None  # the card's size in generator sizes (None: the pipeline's)

    def photos(self) -> list[Photo]:
        return [self.source, self.pose, *self.swaps.values()]

    def parse(self) -> list[bool]:
        """Per photo of `photos()`: whether its person's clothes are read (all but the
        pose's: `Pipeline.people`'s `parse`)."""
        return [True, False, *(True for _ in self.swaps)]


@dataclass
class Result:
    image: np.ndarray  # uint8 RGB, the card (the generator's size times the job's scale)
    batch_size: int  # how many requests shared the batch
    queued_s: float  # from submit to the start of the batch
    run_s: float  # the batch's model time
    notes: list[str] = field(default_factory=list)  # which of several people each photo gave
    # per photo field with several people in it ("source", "pose", "swap_<component>"): the
    # box of the person used and the others' boxes, in the pixels of the photo as the service
    # read it, and that photo's [width, height] (what the page offers)
    people: dict[str, dict[str, list]] = field(default_factory=dict)
    # per photo field read turned upright (its person lay on their side or upside down): the
    # quarter turns anticlockwise (`PersonView.turns`)
    turned: dict[str, int] = field(default_factory=dict)
    # the photo field ("source" or "pose") whose person is seen from behind while the other's
    # faces the camera (`studio.pipeline.from_behind`: the card shows the other side), or None
    behind: str | None = None


@dataclass
class _Item:
    request: GenerateRequest
    future: Future[Result]
    submitted: float


@dataclass
class WorkerStats:
    requests: int = 0
    batches: int = 0
    largest_batch: int = 0
    failed: int = 0
    refused: int = 0


_STOP = None  # sentinel that ends the loop


class ModelWorker:
    def __init__(
        self,
        pipeline: Pipeline,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 10.0,
        max_queue: int = 64,
    ) -> None:
        """`max_batch` requests at most per batch; the first request of a batch waits at
        most `max_wait_ms` for others; `max_queue` requests at most wait (beyond the batch
        that is running) before `submit` raises `Busy`."""
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_ms >= 0")
        self.pipeline = pipeline
        self.max_batch, self.max_wait, self.max_queue = max_batch, max_wait_ms / 1e3, max_queue
        self.stats = WorkerStats()
        self._queue: queue.Queue[_Item | None] = queue.Queue()  # bounded by submit
        self._lock = threading.Lock()
        self._running = 0  # requests in the batch being run
        self._thread: threading.Thread | None = None

    # -- the front: called from the server's threads ------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="model-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the running batch, fail what still waits, end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(RuntimeError("the server is shutting down"))

    def submit(self, request: GenerateRequest) -> Future[Result]:
        """Queue a request; its future gets a `Result`, a `NoPersonError` naming the photo,
        or another exception. Raises `Busy` at once when the queue is full."""
        if self._thread is None:
            raise RuntimeError("the model worker is not running (call start())")
        with self._lock:
            if self._queue.qsize() >= self.max_queue:
                self.stats.refused += 1
                raise Busy(f"{self.max_queue} requests are already waiting; try again shortly")
            item = _Item(request, Future(), time.perf_counter())
            self._queue.put(item)
        return item.future

    @property
    def depth(self) -> int:
        """Requests waiting plus requests in the batch being run."""
        return self._queue.qsize() + self._running

    # -- the thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch, stop = self._collect()
            if batch:
                self._running = len(batch)
                try:
                    self._run(batch)
                finally:
                    self._running = 0
            if stop:
                return

    def _collect(self) -> tuple[list[_Item], bool]:
        """Block for the first request, then take more until `max_batch` or the deadline.
        Requests whose caller gave up (a cancelled future) are dropped here."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        deadline = time.perf_counter() + self.max_wait
        stop = False
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:  # past the deadline: still take what is already queued
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return [i for i in batch if i.future.set_running_or_notify_cancel()], stop

    def _run(self, batch: list[_Item]) -> None:
        start = time.perf_counter()
        try:
            given = [p for item in batch for p in item.request.photos()]
            parse = [p for item in batch for p in item.request.parse()]
            found = self.pipeline.people(
                [(p.image, p.name) for p in given], [p.box for p in given], parse
            )
        except Exception as exc:  # a model failure fails this batch, not the server
            self._fail(batch, exc)
            return
        jobs, owners, cursor = [], [], 0
        for item in batch:
            n = len(item.request.photos())
            views, cursor = found[cursor : cursor + n], cursor + n
            missing = [v for v in views if isinstance(v, NoPersonError)]
            if missing:
                item.future.set_exception(missing[0])
                continue
            source, pose, *donors = views
            assert all(isinstance(v, PersonView) for v in views)
            swaps = dict(zip(item.request.swaps, donors, strict=True))
            request = item.request
            job = Job(source, pose, swaps, request.backdrop, request.framing, request.scale)  # type: ignore[arg-type]
            try:
                check_job(job)  # a pose without hips, a source without a torso:
            except NoPersonError as exc:  # this request fails, not the batch
                item.future.set_exception(exc)
                continue
            jobs.append(job)
            owners.append((item, views, job))
        try:
            images = self.pipeline.generate_many(jobs)
        except Exception as exc:
            self._fail([item for item, _, _ in owners], exc)
            return
        run_s = time.perf_counter() - start
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for (item, views, job), image in zip(owners, images, strict=True):
            self.stats.requests += 1
            waited = start - item.submitted
            notes = [note for v in views for note in v.notes] + job_notes(job)
            people = _people(item.request, views)
            fields = _fields(item.request)
            turned = {f: v.turns for f, v in zip(fields, views, strict=True) if v.turns}
            item.future.set_result(
                Result(image, len(batch), waited, run_s, notes, people, turned, from_behind(job))
            )

    def _fail(self, items: list[_Item], exc: Exception) -> None:
        log.exception("model worker: a batch of %d failed", len(items), exc_info=exc)
        self.stats.failed += len(items)
        for item in items:
            item.future.set_exception(exc)


def _fields(request: GenerateRequest) -> list[str]:
    """The form field of each photo of `request`, in `photos()` order."""
    return ["source", "pose", *(f"swap_{c}" for c in request.swaps)]


def _people(request: GenerateRequest, views: list[PersonView]) -> dict[str, dict[str, list]]:
    """`Result.people`: the photos of `request` (in `photos()` order) that showed others."""
    return {
        f: {
            "used": [round(v) for v in view.box],
            "others": [[round(v) for v in b] for b in view.others],
            # the boxes' frame: the photo as the service read it (shrunk to `work_side`)
            "frame": [photo.image.shape[1], photo.image.shape[0]],
        }
        for f, photo, view in zip(_fields(request), request.photos(), views, strict=True)
        if view.others
    }
