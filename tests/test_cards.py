"""Batch product cards: bad rows are listed and skipped, a re-run or a killed run repeats
nothing and loses nothing, ranks share the rows, and infer.py's exit status tells."""

import csv
import shutil

import numpy as np
import pytest

import infer
from common.image_io import load_image, save_image
from studio import cards
from studio.cards import JobsFileError, read_jobs, run_cards
from studio.pipeline import Pipeline
from studio.stub import StandingPerson

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
    monkeypatch.setattr(infer, "load_pipeline", lambda bundle, device, precision: pipe)
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


def test_read_jobs_resolves_paths_from_the_csv_folder(tmp_path):
    jobs = write_jobs(tmp_path / "jobs.csv", GOOD[1:2], header=("source", "pose", "name", "swaps"))
    rows, bad = read_jobs(jobs)
    assert bad == [] and rows[0].source == tmp_path / "photos" / "p1.jpg"
    assert rows[0].swaps == {"upper": tmp_path / "photos" / "p0.jpg"}
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


def test_a_pose_photo_without_hips_fails_its_card_not_the_batch(pipe, photos, tmp_path):
    save_image(photos / "bright.png", np.full((128, 88, 3), 230, np.uint8))
    pipe.keypoints = HeadlessBelowTheWaist()
    rows = [*GOOD[:2], ("photos/p0.jpg", "photos/bright.png", "h", "")]
    out = tmp_path / "cards"
    summary = run_cards(pipe, write_jobs(tmp_path / "jobs.csv", rows), out, batch_size=3)
    assert summary.written == 2
    assert [f.number for f in summary.failures] == [3]
    assert "hips" in summary.failures[0].reason
