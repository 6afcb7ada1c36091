"""Batch product cards: bad rows are listed and skipped, a re-run or a killed run repeats
nothing and loses nothing (also under SIGKILLs at random moments), a full disk stops the
run with a message and no part of a card, ranks share the rows, and infer.py's exit status
tells."""

import csv
import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import infer
from common.image_io import load_image, save_image
from studio import cards
from studio.cards import JobsFileError, read_jobs, run_cards
from studio.pipeline import Pipeline
from studio.stub import StandingPerson
from tests.conftest import ROOT, StandingInACrowd, box_text, offered

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights")


@pytest.fixture
def pipe(tiny_bundle):
    pipe = Pipeline.from_bundle(tiny_bundle)
    pipe.keypoints = StandingPerson()
    return pipe


@pytest.fixture
def photos(synth_dataset, tmp_path):
    """A folder of photos: three people, a dark one (nobody), a corrupt file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    images = sorted((synth_dataset / "fashion_resize" / "test").glob("*.jpg"))[:3]
    for i, path in enumerate(images):
        shutil.copy(path, folder / f"p{i}.jpg")
    save_image(folder / "dark.png", np.zeros((128, 88, 3), np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


def write_jobs(path, rows, header=("source", "pose", "name", "swaps")):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOOD = [
    ("photos/p0.jpg", "photos/p1.jpg", "a", ""),
    ("photos/p1.jpg", "photos/p2.jpg", "sub/b.jpg", "upper=photos/p0.jpg"),
    ("photos/p2.jpg", "photos/p0.jpg", "c.png", "hair=photos/p1.jpg; lower=photos/p1.jpg"),
]
BAD = [
    ("photos/missing.jpg", "photos/p1.jpg", "d", ""),  # row 4
    ("photos/broken.jpg", "photos/p1.jpg", "e", ""),  # row 5
    ("photos/p0.jpg", "photos/dark.png", "f", ""),  # row 6: nobody in the pose photo
    ("photos/p0.jpg", "photos/p1.jpg", "g", "sleeves=photos/p2.jpg"),  # row 7
    ("photos/p0.jpg", "photos/p1.jpg", "a.png", ""),  # row 8: row 1 makes a.png
    ("photos/p0.jpg", "photos/p1.jpg", "../escape", ""),  # row 9
]


def test_cards_are_made_and_each_bad_row_is_named(pipe, photos, tmp_path):
    jobs = write_jobs(tmp_path / "jobs.csv", GOOD + BAD)
    out = tmp_path / "cards"
    summary = run_cards(pipe, jobs, out, batch_size=2, progress=False)
    assert summary.written == 3 and summary.skipped == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "a.png",
        "c.png",
        "failures.csv",
        "sub/b.jpg",
    ]
    assert load_image(out / "sub" / "b.jpg").shape == (32, 24, 3)
    with (out / "failures.csv").open() as f:
        reasons = {int(r["row"]): r["reason"] for r in csv.DictReader(f)}
    assert sorted(reasons) == [4, 5, 6, 7, 8, 9]
    assert "missing.jpg" in reasons[4] and "broken.jpg" in reasons[5]
    assert "dark.png: no person found" in reasons[6]
    assert "unknown component 'sleeves'" in reasons[7]
    assert "duplicate name 'a.png' (row 1" in reasons[8]
    assert "inside the output folder" in reasons[9]
    assert not (tmp_path / "escape.png").exists()


def test_a_rerun_repeats_nothing_and_a_killed_run_loses_nothing(pipe, photos, tmp_path):
    jobs = write_jobs(tmp_path / "jobs.csv", GOOD)
    out = tmp_path / "cards"

    def killed(batch):
        raise KeyboardInterrupt  # a kill after the first batch's cards are on disk

    with pytest.raises(KeyboardInterrupt):
        run_cards(pipe, jobs, out, batch_size=2, progress=False, on_batch=killed)
    first = {p.name: p.stat().st_mtime_ns for p in out.rglob("*.*")}
    assert sorted(first) == ["a.png", "b.jpg"]  # finished cards only, no temporary files
    generated = []
    original = pipe.generate_many
    pipe.generate_many = lambda jobs: generated.append(len(jobs)) or original(jobs)
    summary = run_cards(pipe, jobs, out, batch_size=2, progress=False)
    assert (summary.written, summary.skipped, generated) == (1, 2, [1])
    assert all(p.stat().st_mtime_ns == first[p.name] for p in out.rglob("*.*") if p.name in first)
    summary = run_cards(pipe, jobs, out, batch_size=2, progress=False)
    assert (summary.written, summary.skipped, generated) == (0, 3, [1])


def test_ranks_take_disjoint_shares_of_the_rows(pipe, photos, tmp_path):
    jobs = write_jobs(tmp_path / "jobs.csv", GOOD + BAD[:1])
    shares = [
        run_cards(pipe, jobs, tmp_path / "cards", rank=r, world=2, progress=False) for r in (0, 1)
    ]
    assert [s.written for s in shares] == [2, 1]
    assert [len(s.failures) for s in shares] == [0, 1]  # row 4 is rank 1's
    assert (tmp_path / "cards" / "failures-rank1.csv").is_file()
    assert not (tmp_path / "cards" / "failures-rank0.csv").exists()


def test_infer_batch_exit_status(pipe, photos, tmp_path, monkeypatch, capsys, tiny_bundle):
    monkeypatch.setattr(infer, "load_pipeline", lambda bundle, device, precision, scale: pipe)
    out = tmp_path / "cards"
    good = write_jobs(tmp_path / "good.csv", GOOD)
    assert infer.main(["--batch", str(good), "--out-dir", str(out)]) == 0
    assert "3 cards written, 0 already there" in capsys.readouterr().out
    mixed = write_jobs(tmp_path / "mixed.csv", GOOD + BAD[:2])
    assert infer.main(["--batch", str(mixed), "--out-dir", str(out)]) == 1
    assert "0 cards written, 3 already there, 2 failed" in capsys.readouterr().out
    wrong = write_jobs(tmp_path / "wrong.csv", GOOD, header=("photo", "pose", "name", "swaps"))
    assert infer.main(["--batch", str(wrong), "--out-dir", str(out)]) == 2
    assert "missing source" in capsys.readouterr().err
    assert infer.main(["--batch", str(tmp_path / "none.csv"), "--out-dir", str(out)]) == 2
    assert "none.csv: no such file" in capsys.readouterr().err
    plain = tmp_path / "plain"
    args = ["--batch", str(good), "--out-dir", str(plain), "--backdrop", "0,255,0"]
    assert infer.main(args) == 0
    cards = [p for p in plain.rglob("*") if p.suffix in (".png", ".jpg")]
    assert len(cards) == 3
    for card in cards:  # every card on the colour (a JPEG card near it)
        assert np.abs(load_image(card)[0, 0].astype(int) - (0, 255, 0)).max() <= 8


def test_read_jobs_resolves_paths_from_the_csv_folder(tmp_path):
    jobs = write_jobs(tmp_path / "jobs.csv", GOOD[1:2], header=("source", "pose", "name", "swaps"))
    rows, bad = read_jobs(jobs)
    assert bad == [] and rows[0].source == tmp_path / "photos" / "p1.jpg"
    assert rows[0].swaps == {"upper_clothes": tmp_path / "photos" / "p0.jpg"}  # one spelling
    twice = ("photos/p1.jpg", "photos/p2.jpg", "t", "upper=photos/p0.jpg;top=photos/p2.jpg")
    _, bad = read_jobs(write_jobs(tmp_path / "twice.csv", [twice]))
    assert len(bad) == 1 and "two photos for upper_clothes" in str(bad[0])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(JobsFileError, match="found nothing"):
        read_jobs(tmp_path / "empty.csv")
    assert cards.shard() == (0, 1)


class HeadlessBelowTheWaist(StandingPerson):
    """StandingPerson, except that in a bright photo (mean above 200) it sees no hips."""

    def predict_many(self, images, boxes=None):
        results = super().predict_many(images, boxes)
        for image, result in zip(images, results, strict=True):
            if image.mean() > 200:
                result.keypoints[[8, 11]] = -1.0
        return results


def test_a_row_picks_a_person_by_box_and_a_bad_box_fails_its_row(pipe, photos, tmp_path):
    header = ("source", "pose", "name", "swaps", "source_box", "pose_box")
    rows = [
        ("photos/p0.jpg", "photos/p1.jpg", "whole", "", "", ""),
        ("photos/p0.jpg", "photos/p1.jpg", "boxed", "", "10,20,60,100", ""),
        ("photos/p0.jpg", "photos/p1.jpg", "typo", "", "", "10,20,60"),  # row 3
        ("photos/p0.jpg", "photos/p1.jpg", "outside", "", "", "900,0,10,10"),  # row 4
    ]
    jobs = write_jobs(tmp_path / "jobs.csv", rows, header)
    parsed, bad = read_jobs(jobs)
    assert [r.source_box for r in parsed] == [None, (10, 20, 60, 100), None]
    assert [(b.number, "pose_box" in b.reason and "x,y,w,h" in b.reason) for b in bad] == [
        (3, True)
    ]
    given = []
    real = pipe.people
    pipe.people = lambda photos, boxes=None, parse=None: (
        given.append(list(boxes)) or real(photos, boxes, parse)
    )
    pipe.keypoints = StandingInACrowd((5, 5, 20, 40))
    out = tmp_path / "cards"
    summary = run_cards(pipe, jobs, out, progress=False)
    assert summary.written == 2
    # the photos searched whole showed someone else too: the notes say so, with the box
    with (out / "notes.csv").open() as f:
        notes = list(csv.DictReader(f))
    assert {(n["row"], n["name"]) for n in notes} == {("1", "whole.png"), ("2", "boxed.png")}
    other = box_text(offered(pipe, (5, 5, 20, 40)))
    assert all("2 people found" in n["note"] and other in n["note"] for n in notes)
    assert "notes.csv" in cards.report(summary, out, 1, 0)
    expected = [None, None, (10.0, 20.0, 60.0, 100.0), (900.0, 0.0, 10.0, 10.0)]
    assert sorted(given[0], key=str) == sorted(expected, key=str)  # each person found once
    (row4,) = [f for f in summary.failures if f.number == 4]
    assert "the person box 900,0,10,10 (x,y,w,h) lies outside" in row4.reason


def test_a_row_picks_the_person_of_a_swap_photo_by_box(pipe, photos, tmp_path):
    header = ("source", "pose", "name", "swaps", "swap_boxes")
    rows = [
        ("photos/p0.jpg", "photos/p1.jpg", "boxed", "upper=photos/p2.jpg", "top=1,2,30,40"),
        ("photos/p0.jpg", "photos/p1.jpg", "stray", "upper=photos/p2.jpg", "hair=1,2,30,40"),
        ("photos/p0.jpg", "photos/p1.jpg", "typo", "upper=photos/p2.jpg", "upper=1,2,30"),
    ]
    parsed, bad = read_jobs(write_jobs(tmp_path / "jobs.csv", rows, header))
    (row,) = parsed
    assert row.people[-1] == (tmp_path / "photos" / "p2.jpg", (1, 2, 30, 40))
    assert [b.number for b in bad] == [2, 3]
    assert "the row's swaps take no hair" in bad[0].reason
    assert "swap_boxes" in bad[1].reason and "x,y,w,h" in bad[1].reason
    given, parsed = [], []
    real = pipe.people
    pipe.people = lambda photos, boxes=None, parse=None: (
        given.append(list(boxes)) or parsed.append(list(parse)) or real(photos, boxes, parse)
    )
    summary = run_cards(pipe, write_jobs(tmp_path / "jobs.csv", rows, header), tmp_path / "out")
    assert summary.written == 1
    assert (1.0, 2.0, 30.0, 40.0) in given[0]
    # p0 the source, p1 the pose (its keypoints only), p2 the donor, in the order found
    assert parsed[0] == [True, False, True] and given[0][2] == (1.0, 2.0, 30.0, 40.0)


def test_a_pose_photo_without_hips_fails_its_card_not_the_batch(pipe, photos, tmp_path):
    save_image(photos / "bright.png", np.full((128, 88, 3), 230, np.uint8))
    pipe.keypoints = HeadlessBelowTheWaist()
    rows = [*GOOD[:2], ("photos/p0.jpg", "photos/bright.png", "h", "")]
    out = tmp_path / "cards"
    summary = run_cards(pipe, write_jobs(tmp_path / "jobs.csv", rows), out, batch_size=3)
    assert summary.written == 2
    assert [f.number for f in summary.failures] == [3]
    assert "hips" in summary.failures[0].reason


def test_a_full_disk_stops_the_run_with_a_message_and_no_part_of_a_card(
    pipe, photos, tmp_path, monkeypatch, capsys
):
    jobs = write_jobs(tmp_path / "jobs.csv", GOOD)
    out = tmp_path / "cards"
    real_write = Path.write_bytes
    written: list[str] = []

    def full_after_one(self, data):  # the second card: half of it fits, then ENOSPC
        if written:
            with open(self, "wb") as f:
                f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        written.append(self.name)
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_after_one)
    assert cards.main_batch(lambda device: pipe, jobs, out, "cpu", 1) == 3
    err = capsys.readouterr().err
    assert f"error: cannot write {out / 'sub' / 'b.jpg'}: No space left on device" in err
    assert "The run stopped after writing 1 cards, which are whole and kept" in err
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["a.png"]  # no half card, no temporary file, no failures.csv
    monkeypatch.undo()
    assert cards.main_batch(lambda device: pipe, jobs, out, "cpu", 1) == 0
    assert "2 cards written, 1 already there" in capsys.readouterr().out


def test_a_rerun_removes_what_a_killed_write_left(pipe, photos, tmp_path):
    out = tmp_path / "cards"
    (out / "sub").mkdir(parents=True)
    stale = [out / ".a.png.x1y2.tmp.png", out / "sub" / ".b.jpg.abc.tmp.jpg"]
    for path in stale:
        path.write_bytes(b"half a card")
    other = out / ".z.png.q.tmp.png"  # not a card of these jobs: another rank's, say
    other.write_bytes(b"someone else's")
    run_cards(pipe, write_jobs(tmp_path / "jobs.csv", GOOD), out, progress=False)
    assert not any(p.exists() for p in stale) and other.exists()


def _batch_rows() -> tuple[list[tuple[str, str, str, str]], set[int]]:
    """50 rows: good ones (some with swaps, some JPEG cards in a subfolder) and every
    tenth-and-a-bit a bad one."""
    people = ["photos/p0.jpg", "photos/p1.jpg", "photos/p2.jpg"]
    bad_kinds = [
        ("photos/missing.jpg", "photos/p1.jpg", ""),
        ("photos/broken.jpg", "photos/p1.jpg", ""),
        ("photos/p0.jpg", "photos/dark.png", ""),
        ("photos/p0.jpg", "photos/p1.jpg", "sleeves=photos/p2.jpg"),
        ("photos/p2.jpg", "photos/dark.png", "upper=photos/p0.jpg"),
    ]
    rows, bad = [], set()
    for i in range(50):
        if i % 10 == 7:
            source, pose, swaps = bad_kinds[i // 10]
            bad.add(i + 1)
        else:
            source, pose = people[i % 3], people[(i + 1 + i // 3) % 3]
            swaps = "upper=photos/p2.jpg" if i % 4 == 0 else ""
        name = f"sub/card-{i:02d}.jpg" if i % 5 == 0 else f"card-{i:02d}.png"
        rows.append((source, pose, name, swaps))
    return rows, bad


@pytest.mark.slow
def test_a_batch_killed_at_random_moments_loses_nothing_and_repeats_nothing(
    photos, tmp_path, tiny_bundle
):
    """10 SIGKILLs of `infer.py --batch` (a child process, tests/batch_child.py) over a
    50-row job, most of them while cards are being written, some while it starts; then a
    run to the end. A card, once on disk, must decode at the generator's size and never be
    written again (same inode and mtime: an atomic write makes a new inode)."""
    rows, bad = _batch_rows()
    jobs = write_jobs(tmp_path / "jobs.csv", rows)
    out = tmp_path / "cards"
    cmd = [sys.executable, str(ROOT / "tests" / "batch_child.py"), str(tiny_bundle)]
    cmd += [str(jobs), str(out), "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    rng = random.Random(22)
    seen: dict[str, tuple[int, int]] = {}

    def cards_now() -> dict[str, tuple[int, int]]:
        found = {}
        for p in out.rglob("*") if out.is_dir() else ():
            if p.is_file() and not p.name.startswith(".") and p.name != "failures.csv":
                st = p.stat()
                found[p.relative_to(out).as_posix()] = (st.st_ino, st.st_mtime_ns)
        return found

    def check_cards() -> None:
        for name, identity in cards_now().items():
            if name not in seen:  # new since the last look: whole?
                assert load_image(out / name).shape == (32, 24, 3), name
            assert seen.setdefault(name, identity) == identity, f"{name} was written again"

    kills, progress, temporaries = 0, [], []
    while kills < 10:
        before = len(cards_now())
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills % 4 == 3:  # while it starts (importing, loading the bundle) or just after
            time.sleep(rng.uniform(0.0, 3.0))
        else:  # while it writes: at a random moment of the cycle of one card after the next
            deadline = time.monotonic() + 120
            stamps = []
            for target in (before + 1, before + 2):
                while child.poll() is None and len(cards_now()) < target:
                    assert time.monotonic() < deadline, "the batch made no progress"
                    time.sleep(0.002)
                stamps.append(time.monotonic())
            time.sleep(rng.uniform(0.0, stamps[1] - stamps[0]))
        if child.poll() is not None:
            pytest.fail(f"the batch finished before kill {kills + 1}: {child.stderr.read()}")
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stderr.close()
        kills += 1
        check_cards()
        progress.append(len(seen))
        temporaries.append(len(list(out.rglob(".*.tmp*"))))  # cut-off writes, if any
    print(f"\ncards on disk after each kill: {progress}; temporary files left: {temporaries}")
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 1, final.stderr  # 1: some rows failed, by design
    check_cards()
    good = {name for i, (_, _, name, _) in enumerate(rows) if i + 1 not in bad}
    assert set(seen) == good  # none lost, none made for a bad row
    assert f"{len(good) - progress[-1]} cards written, {progress[-1]} already there" in (
        final.stdout
    )
    with (out / "failures.csv").open() as f:
        failed = {int(r["row"]): r for r in csv.DictReader(f)}
    assert set(failed) == bad and all(failed[n]["reason"] for n in bad)
    assert not [p for p in out.rglob(".*")]  # no temporary file left by any kill
    assert progress[-1] > progress[0]  # the kills did land while cards were being written
