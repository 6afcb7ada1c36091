"""DeepFashion preparation from a raw In-shop tree (SynthFashion photos in the raw naming and
layout), the published pairs recipe on the real annotations, DensePose-COCO checks, and a
dry run of the researchers' whole workflow: raw -> prepare -> train -> evaluate -> bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from adgan import protocol
from common.deepfashion import parse_flat
from common.image_io import load_image, read_semantic_map, save_image
from keypoints.formats import read_annotations, read_pairs
from prepare import densepose_coco as dp_prepare
from prepare.__main__ import main as prepare_main
from prepare.images import fit_to_size, read_split
from prepare.pairs import recipe_pairs
from studio import bundle
from tests.conftest import ROOT, checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights", "ignore:.*random network")

# one LIP id per ADGAN class: the fake parser output merges back to the true map
ADGAN_TO_A_LIP_ID = np.array([0, 9, 2, 12, 13, 5, 14, 16], np.uint8)


@pytest.fixture(scope="module")
def tiny_estimators(tmp_path_factory):
    """Checkpoints of tiny random keypoint and parsing networks (as conftest's `parts`)."""
    import torch

    from keypoints.model import PoseNet, PoseNetConfig
    from parsing.model import ParserNet, ParserNetConfig

    root = tmp_path_factory.mktemp("estimators")
    torch.manual_seed(0)
    kp = PoseNet(PoseNetConfig(head_channels=16, input_size=(64, 44)))
    parser = ParserNet(ParserNetConfig(encoder="resnet18", input_size=(64, 44)))
    return {
        "keypoints": checkpoint(root / "kp", "model", kp, "keypoints"),
        "parser": checkpoint(root / "parse", "model", parser, "parsing"),
    }


def make_raw_tree(synth: Path, root: Path) -> dict[str, Path]:
    """The SynthFashion set as a raw In-shop download: square photos with white side bands
    in img/<G>/<Cat>/id_<ID>/NN_k_view.jpg, LIP label PNGs of the raw photos in the same
    shape, the published-style CSVs and lists; plus one corrupt photo, one listed photo
    that is missing and one that no list names."""
    raw, annotations, labels = root / "raw", root / "annotations", root / "lip"
    for split in ("train", "test"):
        for photo in sorted((synth / "fashion_resize" / split).glob("*.jpg")):
            name = parse_flat(photo.name)
            image = load_image(photo)
            h, w = image.shape[:2]
            pad = ((0, 0), ((h - w) // 2, h - w - (h - w) // 2))
            save_image(raw / "img" / name.raw, np.pad(image, (*pad, (0, 0)), constant_values=255))
            lip = ADGAN_TO_A_LIP_ID[read_semantic_map(synth / name.semantic_path())]
            save_image(labels / name.raw.replace(".jpg", ".png"), np.pad(lip, pad))
        shutil.copy(synth / f"fashion-resize-annotation-{split}.csv", annotations)
        shutil.copy(synth / f"{split}.lst", annotations)
    test = (annotations / "test.lst").read_text().split()
    corrupt, missing = parse_flat(test[0]), parse_flat(test[1])
    (raw / "img" / corrupt.raw).write_bytes(b"not a jpeg")
    (raw / "img" / missing.raw).unlink()
    extra = raw / "img" / "MEN" / "Denim" / "id_00000001" / "01_7_flat.jpg"
    save_image(extra, np.full((32, 32, 3), 200, np.uint8))
    return {
        "raw": raw,
        "annotations": annotations,
        "labels": labels,
        "corrupt": corrupt.flat,
        "missing": missing.flat,
    }


@pytest.fixture(scope="module")
def raw_tree(synth_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("inshop")
    (root / "annotations").mkdir()
    return make_raw_tree(synth_dataset, root)


def test_fit_to_size_keeps_the_centre_176_of_256():
    image = np.zeros((256, 256, 3), np.uint8)
    image[:, 40:216] = 7
    assert (fit_to_size(image, (256, 176)) == 7).all()
    tall = np.arange(1101 * 750).reshape(1101, 750).astype(np.uint8)
    assert fit_to_size(tall, (256, 176), nearest=True).shape == (256, 176)


def test_prepare_from_published_files_and_label_pngs(raw_tree, synth_dataset, tmp_path, capsys):
    out = tmp_path / "deepfashion"
    args = ["deepfashion", "--raw", str(raw_tree["raw"]), "--out", str(out)]
    args += ["--annotations", str(raw_tree["annotations"]), "--labels", str(raw_tree["labels"])]
    args += ["--size", "128x88", "--workers", "1", "--quiet"]
    assert prepare_main(args) == 0
    assert "2 problem file(s)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    problems = {p["file"].split("/")[-1]: p["problem"] for p in manifest["problems"]}
    assert "unreadable" in problems[parse_flat(raw_tree["corrupt"]).raw.split("/")[-1]]
    assert "not in the raw tree" in problems[raw_tree["missing"]]
    assert manifest["this_run"]["unlisted_raw_photos"] == 1
    test = manifest["counts"]["test"]
    assert test["images"] == test["listed"] - 2 == test["keypoint_rows"] == test["semantic_maps"]
    # photos and maps are the originals (the white bands cut away exactly)
    name = (out / "test.lst").read_text().split()[0]
    ours, original = (
        load_image(out / "fashion_resize" / "test" / name),
        load_image(synth_dataset / "fashion_resize" / "test" / name),
    )
    assert ours.shape == original.shape and np.abs(ours.astype(int) - original).mean() < 3
    semantic = parse_flat(name).semantic_path()
    np.testing.assert_array_equal(
        read_semantic_map(out / semantic), read_semantic_map(synth_dataset / semantic)
    )
    # the recipe's pairs: same person, shoulders and hips, both orders
    rows = read_annotations(out / "fashion-resize-annotation-train.csv")
    assert read_pairs(out / "fashion-resize-pairs-train.csv") == recipe_pairs(rows)
    assert manifest["sources"]["pairs"] == {"train": "recipe", "test": "recipe"}
    checksums = (out / "checksums.sha256").read_text().splitlines()
    assert len(checksums) == manifest["checksums"]["files"]
    # a re-run writes nothing new and gives the same dataset
    assert prepare_main(args) == 0
    again = json.loads((out / "manifest.json").read_text())
    assert again["this_run"]["images_written"] == 0
    assert again["this_run"]["semantic_maps_written"] == 0
    assert again["checksums"] == manifest["checksums"]


@pytest.mark.slow
def test_prepare_with_our_estimators(raw_tree, tiny_estimators, tmp_path):
    out = tmp_path / "df"
    args = ["deepfashion", "--raw", str(raw_tree["raw"]), "--out", str(out), "--quiet"]
    args += ["--lists", str(raw_tree["annotations"]), "--size", "128x88", "--workers", "2"]
    args += ["--keypoints", str(tiny_estimators["keypoints"])]
    args += ["--parser", str(tiny_estimators["parser"])]
    assert prepare_main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]["train"]
    assert counts["images"] == counts["keypoint_rows"] == counts["semantic_maps"] > 0
    assert manifest["this_run"]["keypoints_predicted"] == sum(
        c["images"] for c in manifest["counts"].values()
    )
    assert "estimator" in manifest["sources"]["keypoints"]
    assert prepare_main(args) == 0  # the estimator's rows are reused, not predicted again
    assert json.loads((out / "manifest.json").read_text())["this_run"]["keypoints_predicted"] == 0


def test_prepare_errors_say_what_to_do(raw_tree, tmp_path, capsys):
    base = ["deepfashion", "--out", str(tmp_path / "o"), "--quiet"]
    assert prepare_main([*base, "--raw", str(tmp_path), "--labels", str(tmp_path)]) == 2
    assert "--keypoints CKPT" in capsys.readouterr().err
    a = ["--annotations", str(raw_tree["annotations"])]
    assert prepare_main([*base, "--raw", str(raw_tree["raw"]), *a]) == 2
    assert "--parser CKPT" in capsys.readouterr().err
    assert prepare_main([*base, "--raw", str(tmp_path), *a, "--labels", str(tmp_path)]) == 2
    assert "unpack img.zip" in capsys.readouterr().err
    lists = ["--lists", str(tmp_path)]
    args = [*base, "--raw", str(raw_tree["raw"]), "--keypoints", "k", "--labels", "l", *lists]
    assert prepare_main(args) == 2
    assert "train.lst and test.lst not found" in capsys.readouterr().err


# -- the real published files --------------------------------------------------------------


@pytest.mark.real_data
def test_recipe_gives_the_published_test_pairs(shared_data):
    folder = shared_data / "deepfashion"
    rows = read_annotations(folder / "fashion-resize-annotation-test.csv")
    published = read_pairs(folder / "fashion-resize-pairs-test.csv")
    ours = recipe_pairs(rows)
    assert len(ours) == len(published) == 8570
    assert set(ours) == set(published)


@pytest.mark.real_data
def test_published_split_is_read(shared_data):
    folder = shared_data / "deepfashion"
    split = read_split({s: folder / f"{s}.lst" for s in ("train", "test")})
    assert sum(s == "train" for s in split.values()) == 48674
    assert sum(s == "test" for s in split.values()) == 4038


# -- DensePose-COCO --------------------------------------------------------------------------


def test_densepose_layout_counts_and_index(synth_dataset, tmp_path, capsys):
    coco, annotations = tmp_path / "coco", tmp_path / "densepose"
    (coco / "val2014").mkdir(parents=True)
    annotations.mkdir()
    shutil.copytree(synth_dataset / "fashion_resize" / "train", coco / "train2014")
    for split, synth_split in (("train", "train"), ("minival", "test")):
        shutil.copy(
            synth_dataset / "densepose" / f"densepose_synth_{synth_split}.json",
            annotations / f"densepose_coco_2014_{split}.json",
        )
    people = json.loads((annotations / "densepose_coco_2014_train.json").read_text())
    gone = people["images"][0]["file_name"]
    (coco / "train2014" / gone).unlink()
    out = tmp_path / "out"
    args = ["densepose", "--coco", str(coco), "--annotations", str(annotations)]
    assert prepare_main([*args, "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "densepose_manifest.json").read_text())
    train = manifest["splits"]["train"]
    assert train["people"] == len(people["annotations"]) == train["indexed"] + 1
    assert train["missing_image_names"] == [gone]
    minival = manifest["splits"]["minival"]
    assert minival["indexed"] == 0 and minival["missing_images"] == minival["images"] > 0
    assert "people with DensePose points" in capsys.readouterr().out
    # training reads the index: only people whose photo is there, with its crops
    from parsing.data import densepose_coco_items

    items = densepose_coco_items(
        annotations / "densepose_coco_2014_train.json",
        coco / "train2014",
        aspect=192 / 256,
        index=out / "densepose_train_crops.csv",
    )
    assert len(items) == train["indexed"] and all(it.image.is_file() for it in items)
    shutil.rmtree(coco / "val2014")
    assert prepare_main([*args, "--out", str(out), "--quiet"]) == 2
    assert "val2014: no such folder" in capsys.readouterr().err


@pytest.mark.real_data
def test_densepose_real_annotation_is_indexed(shared_data, tmp_path):
    sample = shared_data / "real-formats" / "densepose"
    (tmp_path / "coco" / "train2014").mkdir(parents=True)
    (tmp_path / "ann").mkdir()
    shutil.copy(sample / "demo_dp_single_ann_ICrop.jpg", tmp_path / "coco" / "train2014")
    shutil.copy(
        sample / "densepose_coco_style_single_ann.json",
        tmp_path / "ann" / "densepose_coco_2014_train.json",
    )
    manifest = dp_prepare.prepare_densepose(
        tmp_path / "coco", tmp_path / "ann", tmp_path / "out", progress=False
    )
    train = manifest["splits"]["train"]
    assert (train["people"], train["indexed"], train["points"]) == (1, 1, 125)
    assert train["people_with_masks"] == 0


# -- the evaluation protocol -----------------------------------------------------------------


def test_padded_ssim_matches_scikit_image_on_padded_images():
    skimage = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 256, (2, 64, 44, 3), dtype=np.uint8)
    gen = np.clip(ref.astype(int) + rng.integers(-60, 60, ref.shape), 0, 255).astype(np.uint8)
    padded = protocol.pad_white(ref)
    assert padded.shape == (2, 64, 64, 3) and (padded[:, :, :10] == 255).all()
    ours = protocol.ssim_padded(ref, gen)
    for i in range(2):
        a = np.pad(ref[i], ((0, 0), (10, 10), (0, 0)), constant_values=255)
        b = np.pad(gen[i], ((0, 0), (10, 10), (0, 0)), constant_values=255)
        theirs = skimage.structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=2,
            data_range=float(b.max()) - float(b.min()),
        )
        assert ours[i] == pytest.approx(theirs, abs=1e-6)
    assert protocol.pad_white(np.zeros((256, 176, 3), np.uint8)).shape == (256, 256, 3)


def test_fid_from_statistics_is_the_closed_form_frechet_distance():
    from adgan.metrics import feature_statistics, frechet_distance_from_statistics

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    var_a, var_b = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    # two Gaussians with covariances diagonal in one rotated basis: they commute, so
    # FD = |mu_a - mu_b|^2 + sum(var_a + var_b - 2 sqrt(var_a var_b))
    sigma_a, sigma_b = q @ np.diag(var_a) @ q.T, q @ np.diag(var_b) @ q.T
    want = ((mu_a - mu_b) ** 2).sum() + (var_a + var_b - 2 * np.sqrt(var_a * var_b)).sum()
    got = frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b)
    assert got == pytest.approx(want, rel=1e-6)
    samples = rng.multivariate_normal(mu_a, sigma_a, 20000)
    mu, sigma = feature_statistics(samples)
    assert frechet_distance_from_statistics(mu, sigma, mu_a, sigma_a) < 0.01


def test_fid_against_cached_training_statistics(synth_dataset, tmp_path):
    import torch

    class MeanColour(torch.nn.Module):  # a 3-d stand-in for the Inception features
        calls = 0

        def forward(self, x):
            MeanColour.calls += 1
            return x.mean(dim=(2, 3))

    train = sorted((synth_dataset / "fashion_resize" / "train").glob("*.jpg"))
    photos = [load_image(p) for p in train]
    kwargs = dict(weights="", cache_dir=tmp_path, batch_size=4, progress=False)
    net = MeanColour()
    fid, n = protocol.fid_against_training(photos, synth_dataset, "train", net, **kwargs)
    assert n == len(train) and fid == pytest.approx(0.0, abs=1e-6)  # the set itself
    calls = MeanColour.calls
    dark = [p // 2 for p in photos]
    fid, _ = protocol.fid_against_training(dark, synth_dataset, "train", net, **kwargs)
    assert MeanColour.calls == calls + len(range(0, len(dark), 4))  # statistics from cache
    assert len(list(tmp_path.glob("fid-train-*.npz"))) == 1
    features = np.stack([p.reshape(-1, 3).mean(0) / 255 for p in photos])
    from adgan.metrics import frechet_distance

    assert fid == pytest.approx(frechet_distance(features / 2, features), rel=0.05)


def test_table_in_the_papers_layout(tmp_path):
    table = tmp_path / "results.md"
    protocol.write_table(table, "run A", {"pairs": 8570, "ssim_padded": 0.77, "fid": 14.5})
    text = protocol.write_table(table, "run B", {"pairs": 10, "ssim": 0.5})
    lines = text.splitlines()
    assert lines[0].startswith("| Model | Pairs | FID ↓ | SSIM ↑ | SSIM (no pad) ↑")
    assert lines[2].startswith("| run A | 8,570 | 14.500 | 0.7700 | – |")
    assert lines[3].startswith("| run B | 10 | – | – | 0.5000 |")
    assert "40 white columns" in text and "training images" in text
    text = protocol.write_table(table, "run A", {"pairs": 1, "ssim": 0.1})  # replaced
    assert text.count("| run A |") == 1 and "| run A | 1 |" in text


# -- the whole workflow ---------------------------------------------------------------------


TINY_ADGAN = [
    "model.image_size=[32, 24]",
    "model.pose_sigma=1.0",
    "model.channels=8",
    "model.code_size=8",
    "model.mlp_channels=16",
    "model.res_blocks=2",
    "discriminator.channels=8",
    "discriminator.blocks=1",
    "data.flip_probability=0.0",
    "train.device=cpu",
    "train.steps=1",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.checkpoint_every=1",
    "train.sample_every=0",
    "train.eval_every=0",
    "train.log_every=1",
    "train.max_minutes=0",
    "eval.max_pairs=2",
    "eval.batch_size=4",
]


@pytest.mark.slow
def test_dry_run_raw_to_bundle(raw_tree, tiny_estimators, tmp_path, capsys):
    """raw In-shop tree -> prepare -> train (the DeepFashion config, tiny) -> the published
    protocol's table -> bundle, on CPU at 128x88 photos and a 32x24 generator."""
    import train

    started = time.perf_counter()
    data = tmp_path / "deepfashion"
    args = ["deepfashion", "--raw", str(raw_tree["raw"]), "--out", str(data), "--quiet"]
    args += ["--annotations", str(raw_tree["annotations"]), "--labels", str(raw_tree["labels"])]
    assert prepare_main([*args, "--size", "128x88", "--workers", "2"]) == 0
    runs = tmp_path / "runs"
    config = ["--config", "configs/adgan-deepfashion.yaml", "--runs", str(runs)]
    assert train.main([*config, f"data.root={data}", "model.vgg_weights=''", *TINY_ADGAN]) == 0
    run = next((runs / "adgan").iterdir())
    table = tmp_path / "results.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = ["--checkpoint", str(run), "--table", str(table), "--name", "dry run"]
        args += ["--keypoints", str(tiny_estimators["keypoints"]), "--lpips", ""]
        assert protocol.main([*args, "--device", "cpu"]) == 0
    text = table.read_text()
    assert "| dry run |" in text and "PCKh" in text
    row = [c.strip() for c in text.splitlines()[2].split("|")]
    assert row[3] == "–" and all(row[i] != "–" for i in (4, 5, 6, 7, 9))  # no FID weights
    out = tmp_path / "bundle"
    args = ["--keypoints", str(tiny_estimators["keypoints"]), "--out", str(out)]
    args += ["--parser", str(tiny_estimators["parser"]), "--generator", str(run)]
    assert bundle.main(args) == 0
    assert (out / "generator.safetensors").is_file()
    print(f"dry run: {time.perf_counter() - started:.1f} s")


def test_prepare_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "prepare", "deepfashion", "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "--annotations" in done.stdout, done.stderr


@pytest.mark.parametrize(
    "name", ["adgan-deepfashion", "parsing-deepfashion", "keypoints-deepfashion", "densepose-coco"]
)
def test_real_data_configs_are_valid(name):
    import train

    _, config = train.load_task(ROOT / "configs" / f"{name}.yaml", [])
    assert config.train.device == "cuda"
    if name == "densepose-coco":  # the crop index of prepare.densepose_coco is a known key
        train.load_task(ROOT / "configs" / f"{name}.yaml", ["data.source.train_index=x.csv"])
