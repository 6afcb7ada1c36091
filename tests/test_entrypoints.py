"""train.py and infer.py today: they check their input and say plainly what is missing."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import infer
import train
from common.image_io import save_image

ROOT = Path(__file__).resolve().parent.parent


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
    with pytest.raises(SystemExit) as exc:
        infer.main(["--source", str(good), "--pose", str(good), "--swap", "upper"])
    assert exc.value.code == 2
    assert "COMPONENT=PHOTO" in capsys.readouterr().err
    assert infer.main(["--source", str(good), "--pose", str(good), "--swap", f"hat={good}"]) == 2
    assert "unknown component 'hat'" in capsys.readouterr().err
    assert infer._swap_arg("upper=g.jpg") == ("upper_clothes", Path("g.jpg"))


def _infer_in_a_subprocess(*args: str) -> subprocess.CompletedProcess:
    """infer.main in a fresh interpreter; prints whether torch was imported by then."""
    code = (
        "import sys, infer\n"
        "rc = infer.main(sys.argv[1:])\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_infer_reports_a_missing_or_empty_photo_before_importing_torch(tmp_path):
    good = tmp_path / "good.png"
    save_image(good, np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases = [
        (["--source", str(tmp_path / "missing.jpg"), "--pose", str(good)], "no such file"),
        (["--source", str(good), "--pose", str(tmp_path / "empty.jpg")], "empty file"),
        (["--source", str(good), "--pose", str(good), "--swap", "upper=nope.jpg"], "no such"),
        (["--source", str(good), "--pose", str(tmp_path)], "is a folder"),
        (["--source", str(good), "--pose", str(good), "--swap", f"hat={good}"], "valid: "),
        (["--batch", str(tmp_path / "jobs.csv"), "--out-dir", str(tmp_path)], "no such file"),
    ]
    for args, message in cases:
        run = _infer_in_a_subprocess(*args)
        assert run.returncode == 2, run.stderr
        assert message in run.stderr and "error:" in run.stderr
        assert "torch imported: False" in run.stdout  # so the answer is immediate


def test_infer_defaults_agree_with_the_packages():
    from common.hardware import resolve_device

    args = infer.build_parser().parse_args(["--source", "a.jpg", "--pose", "b.jpg"])
    assert args.device == "auto"  # as python -m studio.serve
    assert resolve_device("auto") in ("cpu", "cuda") and resolve_device("cpu") == "cpu"


def test_infer_warns_that_the_demo_bundle_is_synthetic_only(tmp_path, capsys):
    """The README's top command, written into a folder that does not exist yet."""
    out, panel = tmp_path / "new" / "out.png", tmp_path / "other" / "panel.png"
    examples = ROOT / "examples"
    args = ["--source", str(examples / "model.jpg"), "--pose", str(examples / "shopper.jpg")]
    assert infer.main([*args, "--out", str(out), "--panel", str(panel), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "synthetic people only" in warnings[0]
    assert out.is_file() and panel.is_file() and "wrote" in captured.out


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
    root_key = "data.root" if task == "adgan" else "data.source.root"  # pairs have one layout
    data = [f"{root_key}={synth_dataset}"]
    if task == "keypoints":
        data.append(f"data.negatives={synth_dataset / 'backgrounds' / 'train'}")
    args = ["--config", f"configs/{task}-synth-gpu.yaml", "--runs", str(tmp_path)]
    assert train.main(args + data + _ON_THIS_CPU + _SMALL_EVAL[task]) == 0
    run = next((tmp_path / task).iterdir())
    assert (run / "checkpoints" / "step-00000001").is_dir()
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("config", [[], ["--config", "configs/adgan-partwarp-256-gpu.yaml"]])
def test_the_generator_speed_bench_runs(config):
    """It times `AdganTask.train_step` and the generator's forward on made-up batches: a
    change of either's interface must not leave it broken unseen."""
    root = Path(__file__).resolve().parent.parent
    args = [*config, "--size", "64x44", "--train-batch", "2", "--train-steps", "1"]
    args += ["--infer-batch", "1", "--repeats", "1", "--device", "cpu"]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "adgan_speed.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| training step, ours | 2 |" in done.stdout
    assert "| inference (" in done.stdout
