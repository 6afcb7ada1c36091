"""Batch product cards: `infer.py --batch jobs.csv --out-dir cards/`.

    source,pose,name,swaps
    catalogue/dress-12.jpg,shoppers/anna.jpg,anna-dress-12.png,
    catalogue/dress-12.jpg,shoppers/ben.jpg,ben-dress-12.png,upper=catalogue/shirt-3.jpg

`source`, `pose` and `name` are required; `swaps` is optional, `component=photo` items joined
by `;`, and so are `source_box` and `pose_box`: which person to use in a photo that shows
several, a box around them as `x,y,w,h` in photo pixels (quoted, for the commas; the
several-people note of a first run lists the boxes found), and `swap_boxes`, the same for
the swaps' photos as `component=x,y,w,h` items joined by `;`. Relative photo paths are read
from the CSV's folder; `name` is the card's path inside the output folder (its suffix picks
PNG or JPEG; none means .png).

Rows run in batches (every distinct photo of a batch is found and parsed once, all cards of
the batch generated in one pass). Each card is written atomically (a temporary file beside
it, renamed over it), so a card on disk is a finished card: a re-run skips them and a killed
run loses nothing and repeats nothing (a test SIGKILLs a run 10 times at random moments);
the temporary files a kill leaves are removed by the next run. A bad row (missing or
corrupt photo, nobody in it, an unknown component, a duplicate name) goes to `failures.csv`
with its reason and the run carries on; the exit status is 1 if any row failed. A card made
from one of several people in a photo goes to `notes.csv` with which person was used and
the others' boxes (what a `source_box`, `pose_box` or `swap_boxes` column takes). A card that
cannot be written (a full disk, no permission) stops the run at once with a message and
exit status 3, leaving no part of that card. Under `torchrun`, rank r of N takes rows r,
r+N, ... on its own GPU and writes `failures-rank<r>.csv`; nothing is shared between ranks
but the output folder.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from common.fileio import write_text
from common.geometry import Box, parse_box, parse_named_box
from common.image_io import ImageError, load_image, save_image
from parsing.labels import canonical_component
from studio.backdrop import AUTO, Backdrop
from studio.framing import DEFAULT_FRAMING
from studio.pipeline import Job, NoPersonError, PersonView, Pipeline, check_job, job_notes

REQUIRED = ("source", "pose", "name")
SUFFIXES = (".png", ".jpg", ".jpeg")


class JobsFileError(ValueError):
    """A jobs CSV that cannot be read at all (as opposed to one bad row)."""


class OutputError(RuntimeError):
    """The output folder cannot take a card (a full disk, no permission): the run stops,
    since every later card would fail the same way."""


@dataclass
class CardRow:
    number: int  # 1-based row number in the CSV, header excluded
    name: str
    source: Path
    pose: Path
    swaps: dict[str, Path] = field(default_factory=dict)
    source_box: Box | None = None  # which person of the photo (None: the pipeline's pick)
    pose_box: Box | None = None
    swap_boxes: dict[str, Box] = field(default_factory=dict)  # keyed as `swaps`

    @property
    def people(self) -> list[tuple[Path, Box | None]]:
        """Every (photo, person box) the card needs: source, pose, then the swaps'."""
        return [(self.source, self.source_box), (self.pose, self.pose_box)] + [
            (p, self.swap_boxes.get(c)) for c, p in self.swaps.items()
        ]

    @property
    def clothes_from(self) -> list[tuple[Path, Box | None]]:
        """The people whose clothes the card takes (parsed): all but the pose's."""
        source, _, *donors = self.people
        return [source, *donors]


@dataclass
class Failure:
    """A row, and why it made no card (or, in `Summary.notes`, what to know about its card)."""

    number: int
    name: str
    reason: str


@dataclass
class Summary:
    written: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    # cards made from one of several people in a photo: which one, and the others' boxes
    notes: list[Failure] = field(default_factory=list)


def _card_name(text: str) -> str:
    """A relative path inside the output folder, with an image suffix."""
    name = text.strip()
    path = PurePosixPath(name.replace("\\", "/"))
    if not name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"name {text!r} must be a relative path inside the output folder")
    if path.suffix.lower() not in SUFFIXES:
        path = path.with_name(path.name + ".png")
    return str(path)


def _swaps(text: str, base: Path) -> dict[str, Path]:
    swaps = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        component, sep, photo = item.partition("=")
        if not sep or not photo.strip():
            raise ValueError(f"swap {item!r} must be component=photo")
        key = canonical_component(component)  # names the valid components if unknown
        if key in swaps:
            raise ValueError(f"swaps: two photos for {key}")
        swaps[key] = base / photo.strip()
    return swaps


def _swap_boxes(text: str, swaps: dict[str, Path]) -> dict[str, Box]:
    """`component=x,y,w,h` items joined by `;`, each keyed as the swap it picks a person
    for (both by `canonical_component`: `upper` finds the swap written `upper_clothes`)."""
    boxes: dict[str, Box] = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        try:
            component, box = parse_named_box(item)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"swap_boxes {exc}") from None
        key = canonical_component(component)
        if key not in swaps:
            raise ValueError(f"swap_boxes {component}: the row's swaps take no {component}")
        if key in boxes:
            raise ValueError(f"swap_boxes: two boxes for {key}")
        boxes[key] = box
    return boxes


def _box(text: str, column: str) -> Box | None:
    if not text:
        return None
    try:
        return parse_box(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"{column} {exc}") from None


def read_jobs(path: Path) -> tuple[list[CardRow], list[Failure]]:
    """The CSV's rows, and the rows that are wrong in themselves (before any photo is read)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobsFileError(f"{path}: cannot read the jobs file ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise JobsFileError(
            f"{path}: the header must name {', '.join(REQUIRED)} (and optionally swaps, "
            "source_box, pose_box, swap_boxes); "
            f"missing {', '.join(missing)}, found {', '.join(columns) or 'nothing'}"
        )
    base = path.parent
    rows, bad, seen = [], [], {}
    for number, raw in enumerate(reader, start=1):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        try:
            name = _card_name(row["name"])
            if name in seen:
                raise ValueError(f"duplicate name {name!r} (row {seen[name]} makes it)")
            if not row["source"] or not row["pose"]:
                raise ValueError("source and pose must both be given")
            seen[name] = number
            swaps = _swaps(row.get("swaps", ""), base)
            rows.append(
                CardRow(
                    number,
                    name,
                    base / row["source"],
                    base / row["pose"],
                    swaps,
                    _box(row.get("source_box", ""), "source_box"),
                    _box(row.get("pose_box", ""), "pose_box"),
                    _swap_boxes(row.get("swap_boxes", ""), swaps),
                )
            )
        except ValueError as exc:
            bad.append(Failure(number, row.get("name", ""), str(exc)))
    return rows, bad


def shard() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _batches(rows: list[CardRow], size: int) -> Iterator[list[CardRow]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


Person = tuple[Path, Box | None]  # a photo, and which of its people (None: the pipeline's pick)


def _people(
    pipe: Pipeline, people: set[Person], clothed: set[Person]
) -> dict[Person, PersonView | Exception]:
    """Each distinct person of a batch found once (parsed once where in `clothed`, whose
    clothes some card takes), each photo loaded once."""
    found: dict[Person, PersonView | Exception] = {}
    images: dict[Path, np.ndarray | ImageError] = {}
    wanted = []
    for path, box in sorted(people, key=lambda p: (str(p[0]), p[1] or ())):
        if path not in images:
            try:
                images[path] = load_image(path)
            except ImageError as exc:
                images[path] = exc
        image = images[path]
        if isinstance(image, ImageError):
            found[(path, box)] = image
        else:
            wanted.append((path, box, image))
    views = pipe.people(
        [(image, p.name) for p, _, image in wanted],
        [b for _, b, _ in wanted],
        [(p, b) in clothed for p, b, _ in wanted],
    )
    for (path, box, _), view in zip(wanted, views, strict=True):
        found[(path, box)] = view
    return found


def _reason(exc: Exception) -> str:
    return str(exc).replace("\n", " ")


def remove_stale_temporaries(out_dir: Path, rows: list[CardRow]) -> int:
    """Delete the temporary files that a killed run left beside `rows`' cards (named as
    `common.fileio.atomic_path` names them); only these rows', so that another rank's
    card being written is not touched. Returns how many were removed."""
    removed = 0
    for row in rows:
        card = out_dir / row.name
        pattern = f".{glob.escape(card.name)}.*.tmp{glob.escape(card.suffix)}"
        for stale in card.parent.glob(pattern) if card.parent.is_dir() else ():
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


def _save_card(path: Path, card: np.ndarray, written: int) -> None:
    try:
        save_image(path, card)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}. The run stopped after writing "
            f"{written} cards, which are whole and kept; a re-run once the output folder "
            "can take files makes the rest"
        ) from exc


def write_failures(path: Path, failures: list[Failure], column: str = "reason") -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "name", column])
    for f in sorted(failures, key=lambda f: f.number):
        writer.writerow([f.number, f.name, f.reason])
    write_text(path, buffer.getvalue())


def _rank_file(stem: str, world: int, rank: int) -> str:
    return f"{stem}.csv" if world == 1 else f"{stem}-rank{rank}.csv"


def run_cards(
    pipe: Pipeline,
    jobs: Path,
    out_dir: Path,
    *,
    batch_size: int = 16,
    rank: int = 0,
    world: int = 1,
    progress: bool = True,
    on_batch: Callable[[list[CardRow]], None] | None = None,
    backdrop: Backdrop = AUTO,
    framing: str = DEFAULT_FRAMING,
) -> Summary:
    """Make every card of `jobs` that is not in `out_dir` yet (this rank's share), on
    `backdrop` (`studio.backdrop`: a plain colour, the source photo's own background, or
    auto), framed by `framing` (`studio.framing`)."""
    rows, bad = read_jobs(jobs)
    rows = [r for r in rows if (r.number - 1) % world == rank]
    summary = Summary(failures=[b for b in bad if (b.number - 1) % world == rank])
    todo = [r for r in rows if not (out_dir / r.name).exists()]
    summary.skipped = len(rows) - len(todo)
    remove_stale_temporaries(out_dir, todo)
    bar = tqdm(total=len(todo), desc="cards", unit="card", disable=not progress)
    for batch in _batches(todo, batch_size):
        people = _people(
            pipe, {p for r in batch for p in r.people}, {p for r in batch for p in r.clothes_from}
        )
        ready: list[tuple[CardRow, Job]] = []
        for row in batch:
            views = [people[p] for p in row.people]
            problem = next((v for v in views if isinstance(v, Exception)), None)
            if problem is not None:
                summary.failures.append(Failure(row.number, row.name, _reason(problem)))
                continue
            source, pose, *donors = views
            swaps = dict(zip(row.swaps, donors, strict=True))
            job = Job(source, pose, swaps, backdrop, framing)  # type: ignore[arg-type]
            try:
                check_job(job)
            except NoPersonError as exc:  # a pose without hips, a source without a torso:
                summary.failures.append(Failure(row.number, row.name, _reason(exc)))
                continue  # this card fails, not the batch
            ready.append((row, job))
            for note in [n for v in (source, pose, *donors) for n in v.notes] + job_notes(job):
                summary.notes.append(Failure(row.number, row.name, note))
        cards = pipe.generate_many([job for _, job in ready])
        for (row, _), card in zip(ready, cards, strict=True):
            _save_card(out_dir / row.name, card, summary.written)
            summary.written += 1
        bar.update(len(batch))
        if on_batch is not None:
            on_batch(batch)
    bar.close()
    for stem, rows, column in (
        ("failures", summary.failures, "reason"),
        ("notes", summary.notes, "note"),
    ):
        path = out_dir / _rank_file(stem, world, rank)
        try:
            if rows:
                write_failures(path, rows, column)
            else:
                path.unlink(missing_ok=True)  # a clean re-run leaves no stale list
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return summary


def report(summary: Summary, out_dir: Path, world: int, rank: int) -> str:
    text = f"{summary.written} cards written, {summary.skipped} already there"
    if summary.failures:
        where = out_dir / _rank_file("failures", world, rank)
        text += f", {len(summary.failures)} failed (reasons in {where})"
    if summary.notes:
        where = out_dir / _rank_file("notes", world, rank)
        rows = len({n.number for n in summary.notes})
        text += (
            f"; {rows} made from one of several people in a photo (which one, and the "
            f"others' boxes for a source_box, pose_box or swap_boxes column, in {where})"
        )
    return text


def main_batch(
    pipe_factory: Callable[[str], Pipeline],
    jobs: Path,
    out_dir: Path,
    device: str,
    batch_size: int,
    *,
    backdrop: Backdrop = AUTO,
    framing: str = DEFAULT_FRAMING,
) -> int:
    """`infer.py --batch`: 0 when every row made its card, 1 when some failed, 2 when the
    jobs file itself is unusable, 3 when the output folder cannot be written."""
    rank, world = shard()
    if device == "cuda" and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    try:
        read_jobs(jobs)  # the file's own problems before any model is loaded
        pipe = pipe_factory(device)
        summary = run_cards(
            pipe,
            jobs,
            out_dir,
            batch_size=batch_size,
            rank=rank,
            world=world,
            backdrop=backdrop,
            framing=framing,
        )
    except JobsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(report(summary, out_dir, world, rank))
    return 1 if summary.failures else 0
