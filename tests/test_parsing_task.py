"""Parsing and DensePose end to end on a tiny SynthFashion set: train.py, evaluate, predict,
texture transfer, and the errors a user can act on."""

import json

import numpy as np
import pytest
import torch

import train
from common.image_io import load_label_map, save_image
from parsing import evaluate, predict, texture_transfer
from parsing.densepose import load_iuv

TINY = [
    "model.encoder=resnet18",
    "model.input_size=[64, 44]",
    "train.device=cpu",
    "train.batch_size=4",
    "train.num_workers=0",
    "train.checkpoint_every=5",
    "train.sample_every=5",
    "train.log_every=2",
    "train.max_minutes=0",
    "eval.max_images=4",
    "eval.batch_size=4",
]


@pytest.fixture(scope="module")
def runs(synth_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for config in ("parsing-synth-cpu", "densepose-synth-cpu"):
        assert (
            train.main(
                [
                    "--config",
                    f"configs/{config}.yaml",
                    "--runs",
                    str(root),
                    f"data.source.root={synth_dataset}",
                    "train.steps=5",
                    *TINY,
                ]
            )
            == 0
        )
    return {task: next((root / task).iterdir()) for task in ("parsing", "densepose")}


def test_runs_are_complete(runs):
    for task, run in runs.items():
        metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        key = "miou" if task == "parsing" else "part_accuracy"
        assert 0.0 <= metrics[key] <= 1.0
        assert (run / "samples" / "step-00000005.png").is_file()
    dp = json.loads((runs["densepose"] / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < dp["densepose_loss"] < 10 and dp["points"] > 0
    assert 0.0 <= dp["foreground_iou"] <= 1.0


def test_evaluate_predict_and_overlays(runs, synth_dataset, tmp_path, capsys):
    assert (
        evaluate.main(
            [
                "--checkpoint",
                str(runs["parsing"]),
                "--overlays",
                str(tmp_path / "ov"),
                "--count",
                "2",
                "--log",
                str(tmp_path / "m.jsonl"),
                "eval.max_images=3",
            ]
        )
        == 0
    )
    assert "miou" in capsys.readouterr().out and len(list((tmp_path / "ov").iterdir())) == 2
    photo = next((synth_dataset / "fashion_resize" / "test").iterdir())
    assert (
        predict.main(
            [
                str(photo),
                "--checkpoint",
                str(runs["parsing"]),
                "--checkpoint",
                str(runs["densepose"]),
                "--out",
                str(tmp_path / "parse.png"),
                "--iuv",
                str(tmp_path / "iuv.png"),
                "--overlay",
                str(tmp_path / "o.png"),
            ]
        )
        == 0
    )
    labels = load_label_map(tmp_path / "parse.png", num_classes=8)
    parts, _, _ = load_iuv(tmp_path / "iuv.png")
    assert labels.shape == parts.shape == (128, 88)  # the photo's size, not the input's


def test_texture_transfer_moves_the_top(synth_dataset, tmp_path):
    test = sorted((synth_dataset / "fashion_resize" / "test").iterdir())
    garment, person = test[0], test[3]  # two different people
    iuv = synth_dataset / "densepose" / "test"
    out = tmp_path / "out.png"
    assert (
        texture_transfer.main(
            [
                "--garment",
                str(garment),
                "--garment-iuv",
                str(iuv / f"{garment.stem}_iuv.png"),
                "--person",
                str(person),
                "--person-iuv",
                str(iuv / f"{person.stem}_iuv.png"),
                "--out",
                str(out),
                "--atlas",
                str(tmp_path / "atlas.png"),
            ]
        )
        == 0
    )
    from common.image_io import load_image

    before, after = load_image(person).astype(int), load_image(out).astype(int)
    parts, _, _ = load_iuv(iuv / f"{person.stem}_iuv.png")
    torso = np.isin(parts, [1, 2])
    assert np.abs(after - before)[torso].mean() > 5  # the torso changed
    assert np.abs(after - before)[parts == 0].mean() < 1  # the background did not
    assert load_image(tmp_path / "atlas.png").shape == (1200, 800, 3)


def test_texture_transfer_in_a_wide_photo_stays_in_the_person_box(
    synth_dataset, tmp_path, monkeypatch
):
    from common.image_io import load_image
    from parsing.model import ParserNet, ParserNetConfig
    from parsing.predict import DensePredictor

    # A network that sees the torso's front (part 2, coarse part 1) in every pixel it is shown.
    net = ParserNet(ParserNetConfig(encoder="resnet18", heads=("densepose",), input_size=(64, 44)))
    bias = net.net.segmentation_head[0].bias
    with torch.no_grad():
        bias[net.slices["index"].start + 2] = 50.0
        bias[net.slices["coarse"].start + 1] = 50.0
    predictor = DensePredictor([net])
    monkeypatch.setattr(DensePredictor, "from_checkpoints", lambda *a, **k: predictor)

    test = sorted((synth_dataset / "fashion_resize" / "test").iterdir())
    garment, iuv = test[0], synth_dataset / "densepose" / "test" / f"{test[0].stem}_iuv.png"
    wide = np.full((128, 300, 3), 120, np.uint8)  # a street, say, around the person
    wide[:, 100:188] = load_image(test[3])
    save_image(tmp_path / "wide.png", wide)
    common = ["--garment", str(garment), "--garment-iuv", str(iuv)]
    common += ["--person", str(tmp_path / "wide.png"), "--checkpoint", "any", "--parts", "all"]

    def run(*extra: str) -> np.ndarray:
        out = tmp_path / "out.png"
        assert texture_transfer.main([*common, *extra, "--out", str(out)]) == 0
        return load_image(out).astype(int)

    changed = np.abs(run("--person-box", "100,0,88,128") - wide).sum(-1) > 0
    # the box grown by the margin (1.15) is x 93..195: inside it the torso is painted,
    # outside nothing changes
    assert changed[:, 100:188].mean() > 0.5
    assert not changed[:, :90].any() and not changed[:, 198:].any()
    changed = np.abs(run() - wide).sum(-1) > 0  # without the box: the whole photo
    assert changed[:, :90].mean() > 0.5
    refused = texture_transfer.main(
        [*common, "--person-box", "400,0,50,50", "--out", str(tmp_path / "x.png")]
    )
    assert refused == 2


def test_bad_inputs_are_named(runs, synth_dataset, tmp_path, capsys):
    (tmp_path / "bad.jpg").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert predict.main([str(tmp_path / "bad.jpg"), "--checkpoint", str(runs["parsing"])]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    photo = tmp_path / "p.png"
    save_image(photo, np.zeros((20, 20, 3), np.uint8))
    assert (
        predict.main(
            [str(photo), "--checkpoint", str(runs["parsing"]), "--iuv", str(tmp_path / "x.png")]
        )
        == 2
    )
    assert "DensePose head" in capsys.readouterr().err
    assert evaluate.main(["--checkpoint", str(runs["parsing"]), "data.sorce=x"]) == 2
    assert "unknown key(s) 'sorce'" in capsys.readouterr().err
    bad_labels = tmp_path / "labels"
    bad_labels.mkdir()
    save_image(tmp_path / "img.png", np.zeros((8, 8, 3), np.uint8))
    save_image(bad_labels / "img.png", np.full((8, 8), 40, np.uint8))  # not a LIP id
    from parsing.data import DenseDataset, label_png_items

    data = DenseDataset(
        label_png_items(tmp_path, bad_labels), (8, 8), heads=("parsing",), merge="lip"
    )
    with pytest.raises(ValueError, match=r"labels/img\.png: label values 40"):
        data[0]
