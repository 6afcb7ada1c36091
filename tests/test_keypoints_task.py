"""The keypoint task end to end on a tiny SynthFashion set: train.py, resume, evaluate,
predict, and the errors a user can act on."""

import json

import numpy as np
import pytest
import torch

import train
from common.checkpoint import CheckpointError, save_checkpoint
from common.image_io import save_image
from keypoints import evaluate, predict
from keypoints.model import PoseNet, PoseNetConfig
from keypoints.predict import KeypointPredictor

TINY = [
    "model.backbone=resnet18",
    "model.head_channels=16",
    "model.input_size=[64, 44]",
    "data.sigma=1.0",
    "train.device=cpu",
    "train.batch_size=4",
    "train.num_workers=0",
    "train.checkpoint_every=6",
    "train.sample_every=6",
    "train.log_every=3",
    "train.max_minutes=0",
    "eval.max_images=6",
    "eval.batch_size=6",
]


def data_args(root) -> list[str]:
    """Point the shipped CPU config at the test's tiny SynthFashion set."""
    return [
        f"data.source.root={root}",
        f"data.negatives={root}/backgrounds/train",
        "data.negative_probability=0.2",
    ]


@pytest.fixture(scope="module")
def trained_run(synth_dataset, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    args = [
        "--config",
        "configs/keypoints-synth-cpu.yaml",
        "--runs",
        str(runs),
        *data_args(synth_dataset),
        "train.steps=12",
        *TINY,
    ]
    assert train.main(args) == 0
    (run,) = (runs / "keypoints").iterdir()
    return run


def test_training_writes_a_complete_run(trained_run):
    assert (trained_run / "config.yaml").is_file()
    assert (trained_run / "checkpoints" / "latest").read_text().strip() == "step-00000012"
    metrics = [
        json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()
    ]
    assert 0.0 <= metrics[-1]["pckh@0.5"] <= 1.0 and metrics[-1]["pckh_points"] > 0
    assert sorted(p.name for p in (trained_run / "samples").iterdir())[-1] == "step-00000012.png"
    model = PoseNet.from_checkpoint(trained_run)
    assert model.config.input_size == (64, 44)


def test_resume_continues_from_the_run(trained_run, synth_dataset, capsys):
    args = [
        "--config",
        "configs/keypoints-synth-cpu.yaml",
        "--resume",
        str(trained_run),
        *data_args(synth_dataset),
        "train.steps=15",
        *TINY,
    ]
    assert train.main([*args, "optim.lr=0.5"]) == 2  # not the run it was
    assert "resuming cannot change optim.lr" in capsys.readouterr().err
    assert train.main([*args, "train.batch_size=3"]) == 2  # the sampler order depends on it
    assert train.main(args) == 0
    assert (trained_run / "checkpoints" / "latest").read_text().strip() == "step-00000015"
    # without --config the stored config is used; train.* may still change
    assert train.main(["--resume", str(trained_run), "train.steps=17"]) == 0
    assert (trained_run / "checkpoints" / "latest").read_text().strip() == "step-00000017"


def test_evaluate_and_predict_clis(trained_run, synth_dataset, tmp_path, capsys):
    assert (
        evaluate.main(
            [
                "--checkpoint",
                str(trained_run),
                "--data",
                str(synth_dataset),
                "--split",
                "test",
                "--max-images",
                "4",
                "--write-predictions",
                str(tmp_path / "pred.csv"),
                "--log",
                str(tmp_path / "m.jsonl"),
            ]
        )
        == 0
    )
    assert "pckh@0.5" in capsys.readouterr().out
    targets = synth_dataset / "fashion-resize-annotation-test.csv"
    assert (
        evaluate.main(
            [
                "--predictions",
                str(targets),
                "--targets",
                str(targets),
                "--log",
                str(tmp_path / "m.jsonl"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])["pckh@0.5"] == 1.0
    photo = next((synth_dataset / "fashion_resize" / "test").iterdir())
    assert (
        predict.main(
            [
                str(photo),
                "--checkpoint",
                str(trained_run),
                "--out",
                str(tmp_path / "pose.json"),
                "--draw",
                str(tmp_path / "pose.png"),
            ]
        )
        == 0
    )
    pose = json.loads((tmp_path / "pose.json").read_text())
    assert len(pose["keypoints"]) == 18 and (tmp_path / "pose.png").is_file()


def test_bad_inputs_get_clear_errors(trained_run, tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert predict.main([str(tmp_path / "broken.jpg"), "--checkpoint", str(trained_run)]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    photo = tmp_path / "ok.png"
    save_image(photo, np.zeros((40, 30, 3), np.uint8))
    assert predict.main([str(photo), "--checkpoint", str(tmp_path / "nowhere")]) == 2
    assert "no such checkpoint or run folder" in capsys.readouterr().err
    other = save_checkpoint(
        tmp_path / "other",
        {"model": torch.nn.Linear(2, 2)},
        {"modules": {"model": {"class": "ParsingNet", "config": {}}}},
    )
    with pytest.raises(CheckpointError, match="not a keypoint checkpoint"):
        PoseNet.from_checkpoint(other)


def test_a_photo_without_a_person_gives_no_keypoints():
    """With heatmaps that stay flat (what training with missing_weight=1 teaches for
    'nobody here'), every keypoint is missing and the person score is low."""
    model = PoseNet(PoseNetConfig(head_channels=8, input_size=(64, 44)))
    torch.nn.init.zeros_(model.head.out.weight)
    torch.nn.init.constant_(model.head.out.bias, 0.01)
    blank = np.full((300, 200, 3), 235, np.uint8)
    result = KeypointPredictor(model, threshold=0.2).predict(blank)
    assert (result.keypoints == -1).all() and result.person_score < 0.05


def test_letterbox_maps_keypoints_back_to_the_photo():
    """A photo twice the crop size with an off-centre box: decoded points land on the photo."""
    from common.geometry import apply_to_points, box_to_input
    from keypoints.heatmaps import encode

    class Oracle(torch.nn.Module):  # heatmaps of known crop keypoints
        def __init__(self, crop_kp):
            super().__init__()
            self.config = PoseNetConfig(input_size=(64, 44))
            self.target = torch.from_numpy(encode(crop_kp, (64, 44), (16, 11), 1.0)[0])

        def forward(self, x):
            return self.target[None].expand(x.shape[0], -1, -1, -1)

    photo_kp = np.full((18, 2), -1, np.float32)
    photo_kp[[1, 2, 5]] = [(150, 90), (130, 100), (170, 100)]
    box = (100.0, 40.0, 100.0, 160.0)
    crop_kp = apply_to_points(box_to_input(box, (64, 44)), photo_kp)
    predictor = KeypointPredictor(
        Oracle(crop_kp), flip_test=False, threshold=0.5, person_threshold=0.0, sigma=1.0
    )
    result = predictor.predict(np.zeros((300, 400, 3), np.uint8), box)
    np.testing.assert_allclose(result.keypoints[[1, 2, 5]], photo_kp[[1, 2, 5]], atol=0.5)
    assert (result.keypoints[[0, 3, 4]] == -1).all()


@pytest.mark.slow
def test_train_py_under_torchrun_two_cpu_processes(synth_dataset, tmp_path):
    import os

    from tests.conftest import torchrun_train

    args = [
        "--config",
        "configs/keypoints-synth-cpu.yaml",
        *data_args(synth_dataset),
        "train.steps=6",
        *TINY,
    ]
    proc = torchrun_train(args, tmp_path, 29700 + os.getpid() % 200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (run,) = (tmp_path / "keypoints").iterdir()  # one run folder, made by rank 0
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert proc.stdout.count("keypoints: step 6") == 1  # the summary comes from rank 0
