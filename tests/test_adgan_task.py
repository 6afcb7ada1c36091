"""ADGAN end to end on a tiny SynthFashion set: pair data, train.py (resume, DDP), the
evaluation CLI, attribute transfer and the errors a user can act on."""

import json

import numpy as np
import pytest
import torch

import train
from adgan import evaluate
from adgan.data import PairDataset, load_person, read_swap_pairs
from adgan.generators import generator_from_checkpoint, mix_appearance
from adgan.transfer import AttributeTransfer
from keypoints.skeleton import flip_keypoints
from parsing.labels import component_classes
from tests.conftest import torchrun_train

pytestmark = pytest.mark.filterwarnings("ignore:.*no VGG-19 weights", "ignore:.*random network")
TINY = [
    "model.image_size=[32, 24]",
    "model.pose_sigma=1.0",
    "model.channels=8",
    "model.code_size=8",
    "model.mlp_channels=16",
    "model.res_blocks=2",
    "discriminator.channels=8",
    "discriminator.blocks=1",
    "train.device=cpu",
    "train.batch_size=2",
    "train.num_workers=0",
    "train.checkpoint_every=3",
    "train.sample_every=3",
    "train.eval_every=0",
    "train.log_every=1",
    "train.max_minutes=0",
    "eval.max_pairs=4",
    "eval.batch_size=4",
    "eval.max_swaps=3",
]


@pytest.fixture(scope="module")
def run(synth_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    args = [
        "--config",
        "configs/adgan-synth-cpu.yaml",
        "--runs",
        str(root),
        f"data.root={synth_dataset}",
        "train.steps=3",
        *TINY,
    ]
    assert train.main(args) == 0
    return next((root / "adgan").iterdir())


def test_pairs_flip_and_resize(synth_dataset):
    data = PairDataset(synth_dataset, "train", (64, 44), flip_probability=1.0, target_parsing=True)
    plain = data[0]
    flipped = data[(0, 123)]
    assert plain["source"].shape == (3, 64, 44) and plain["source_parsing"].shape == (8, 64, 44)
    assert plain["source_parsing"].sum(0).eq(1).all()  # one class per pixel
    assert torch.equal(flipped["source"], plain["source"].flip(-1))
    assert torch.equal(flipped["target_labels"], plain["target_labels"].flip(-1))
    want = flip_keypoints(plain["target_keypoints"].numpy(), 44)
    assert np.allclose(flipped["target_keypoints"].numpy(), want)
    # photos of 128x88 loaded at 64x44: keypoints scale with them
    person = data.people[data.pairs[0][0]]
    _, kp_full, _ = load_person(person, (128, 88))
    _, kp_half, _ = load_person(person, (64, 44))
    shown = kp_full[:, 0] >= 0
    assert np.allclose((kp_full[shown] + 0.5) / 2 - 0.5, kp_half[shown])


def test_training_writes_a_complete_run(run):
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    for key in ("ssim", "mask_ssim", "l1", "swap_closer", "swap_l1_truth"):
        assert 0.0 <= metrics[key] <= 1.0, key
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert {"loss_g", "l1", "perceptual", "contextual", "adversarial", "d_pose", "d_image"} <= set(
        stats[0]
    )
    sample = run / "samples" / "step-00000003.png"
    from common.image_io import load_image

    assert load_image(sample).shape == (4 * 32, 4 * 24, 3)  # 4 rows: source|pose|fake|target
    checkpoint = run / "checkpoints" / "step-00000003"
    assert {p.name for p in checkpoint.glob("*.safetensors")} == {
        "generator.safetensors",
        "d_pose.safetensors",
        "d_image.safetensors",
    }


def test_resume_is_exact(synth_dataset, tmp_path):
    """3 steps, then 2 more with --resume, equal 5 steps straight, bit for bit (a constant
    learning rate, so that the two schedules agree)."""
    base = [f"data.root={synth_dataset}", "optim.decay_start=1.0", *TINY]
    config = ["--config", "configs/adgan-synth-cpu.yaml"]
    assert train.main([*config, "--runs", str(tmp_path / "a"), "train.steps=3", *base]) == 0
    resumed = next((tmp_path / "a" / "adgan").iterdir())
    assert train.main(["--resume", str(resumed), "train.steps=5"]) == 0
    assert train.main([*config, "--runs", str(tmp_path / "b"), "train.steps=5", *base]) == 0
    straight = next((tmp_path / "b" / "adgan").iterdir())
    a, b = (
        generator_from_checkpoint(resumed).state_dict(),
        generator_from_checkpoint(straight).state_dict(),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_cli_and_transfer(run, synth_dataset, tmp_path, capsys):
    out = tmp_path / "generated"
    assert (
        evaluate.main(
            [
                "--checkpoint",
                str(run),
                "--max-pairs",
                "3",
                "--max-swaps",
                "2",
                "--lpips",
                "--out",
                str(out),
                "--json",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "ssim" in printed and "lpips" in printed and "swap_closer" in printed
    assert len(list(out.iterdir())) == 3
    assert json.loads((tmp_path / "m.json").read_text())["pairs"] == 3
    gen = AttributeTransfer(generator_from_checkpoint(run))
    swap = read_swap_pairs(synth_dataset)[0]
    people = PairDataset(synth_dataset, "test", (32, 24)).people
    shopper, shopper_kp, shopper_labels = load_person(people[swap.person], (32, 24))
    donor, donor_kp, donor_labels = load_person(people[swap.donor], (32, 24))
    _, pose, _ = load_person(people[swap.pose], (32, 24))
    own = gen.encode(shopper, shopper_labels, shopper_kp)
    other = gen.encode(donor, donor_labels, donor_kp)
    plain = gen.generate(pose, own)
    assert plain.shape == (32, 24, 3) and plain.dtype == np.uint8
    assert np.array_equal(gen.generate(pose, own, swaps={"upper": own}), plain)
    with torch.no_grad():  # a 3-step model: the change is below 1/255, look at floats
        kp = torch.as_tensor(pose[None])
        mixed = gen.generator.decode(mix_appearance(own, other, component_classes("upper")), kp)
        assert not torch.equal(mixed, gen.generator.decode(own, kp))


def test_bad_inputs_are_named(run, synth_dataset, tmp_path, capsys):
    parsing_like = tmp_path / "ckpt"
    parsing_like.mkdir()
    (parsing_like / "config.json").write_text('{"modules": {"model": {"class": "ParserNet"}}}')
    assert evaluate.main(["--checkpoint", str(parsing_like)]) == 2
    assert "not a generator checkpoint" in capsys.readouterr().err
    # a generator checkpoint whose config says one thing and whose weights another
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run / "checkpoints" / "step-00000003", bad)
    config = json.loads((bad / "config.json").read_text())
    config["modules"]["generator"]["config"]["res_blocks"] = 3
    (bad / "config.json").write_text(json.dumps(config))
    assert evaluate.main(["--checkpoint", str(bad)]) == 2
    assert "generator.safetensors" in capsys.readouterr().err
    # a pairs file naming a photo the annotation CSV does not have
    (tmp_path / "data").mkdir()
    shutil.copytree(synth_dataset / "fashion_resize", tmp_path / "data" / "fashion_resize")
    for name in ("annotation", "pairs"):
        shutil.copy(synth_dataset / f"fashion-resize-{name}-test.csv", tmp_path / "data")
    with open(tmp_path / "data" / "fashion-resize-pairs-test.csv", "a") as fh:
        fh.write("fashionMENDenimid0000999901_1front.jpg,fashionMENDenimid0000999901_2side.jpg\n")
    with pytest.raises(ValueError, match="have no keypoints in the annotation CSV"):
        PairDataset(tmp_path / "data", "test", (32, 24))
    assert (
        train.main(
            [
                "--config",
                "configs/adgan-synth-cpu.yaml",
                f"data.root={synth_dataset}",
                "model.image_size=[30, 22]",
            ]
        )
        == 2
    )
    assert "multiples of 4" in capsys.readouterr().err


@pytest.mark.slow
def test_train_py_under_torchrun_two_cpu_processes(synth_dataset, tmp_path):
    args = [
        "--config",
        "configs/adgan-synth-cpu.yaml",
        f"data.root={synth_dataset}",
        "train.steps=2",
        *TINY,
    ]
    done = torchrun_train(args, tmp_path, 29533)
    assert done.returncode == 0, done.stderr[-3000:]
    run = next((tmp_path / "adgan").iterdir())
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000002"
    assert "ssim" in json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
