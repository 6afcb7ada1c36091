"""train.py and infer.py today: they check their input and say plainly what is missing."""

import json

import numpy as np
import pytest

import infer
import train
from common.image_io import save_image


def test_infer_names_a_bad_photo_and_the_missing_bundle(tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    good = tmp_path / "good.png"
    save_image(good, np.zeros((8, 8, 3), np.uint8))
    assert infer.main(["--source", str(tmp_path / "broken.jpg"), "--pose", str(good)]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert (
        infer.main(["--source", str(good), "--pose", str(good), "--bundle", str(tmp_path / "none")])
        == 2
    )
    assert "no model bundle" in capsys.readouterr().err


def test_infer_swap_argument_is_validated(tmp_path, capsys):
    good = tmp_path / "good.png"
    save_image(good, np.zeros((8, 8, 3), np.uint8))
    try:
        infer.main(["--source", str(good), "--pose", str(good), "--swap", "hat=x.jpg"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "COMPONENT=PHOTO" in capsys.readouterr().err
    assert infer._swap_arg("upper=g.jpg") == ("upper_clothes", __import__("pathlib").Path("g.jpg"))


def test_train_explains_bad_data_and_unknown_tasks(tmp_path, capsys):
    config = tmp_path / "k.yaml"
    config.write_text(f"task: adgan\ndata:\n  root: {tmp_path / 'nowhere'}\n")
    assert train.main(["--config", str(config)]) == 2
    assert "nowhere/fashion_resize/train: no such folder" in capsys.readouterr().err
    config.write_text("task: keypoints\nmodel:\n  backbone_name: resnet18\n")
    assert train.main(["--config", str(config)]) == 2
    assert "unknown key(s) 'backbone_name'" in capsys.readouterr().err
    config.write_text("task: dancing\n")
    assert train.main(["--config", str(config)]) == 2
    assert "must be one of adgan, densepose, keypoints, parsing" in capsys.readouterr().err
    assert train.main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_every_shipped_config_is_valid():
    from pathlib import Path

    from common.config import load_config
    from studio.serve import ServeSettings
    from synth.config import SynthConfig

    configs = sorted(Path("configs").glob("*.yaml"))
    assert len(configs) >= 10
    for path in configs:
        if path.name == "synth.yaml":
            load_config(SynthConfig, path)
            continue
        if path.name == "serve.yaml":
            load_config(ServeSettings, path)
            continue
        task, config = train.load_task(path, [])
        assert task.name == config.task == path.name.split("-")[0], path


# Only what a CPU and a tiny dataset need; every other number (model, input size, loss,
# schedule, augmentation, AMP) is the GPU config's own.
_ON_THIS_CPU = [
    "train.device=cpu",
    "train.steps=1",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.max_minutes=0",
    "train.checkpoint_every=1",
]
_SMALL_EVAL = {
    "keypoints": ["eval.max_images=2"],
    "parsing": ["eval.max_images=2"],
    "densepose": ["eval.max_images=2"],
    "adgan": ["eval.max_pairs=2", "eval.max_swaps=2", "eval.batch_size=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(_SMALL_EVAL))
def test_gpu_config_trains_a_step_at_full_size_on_cpu(task, synth_dataset, tmp_path):
    """The GPU configs are written ahead of the GPU sessions that run them: each must at
    least build its full-size model, read the data layout and checkpoint here."""
    data = [f"data.root={synth_dataset}"]
    if task == "keypoints":
        data.append(f"data.negatives={synth_dataset / 'backgrounds' / 'train'}")
    args = ["--config", f"configs/{task}-synth-gpu.yaml", "--runs", str(tmp_path)]
    assert train.main(args + data + _ON_THIS_CPU + _SMALL_EVAL[task]) == 0
    run = next((tmp_path / task).iterdir())
    assert (run / "checkpoints" / "step-00000001").is_dir()
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 1
